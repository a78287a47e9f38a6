r"""Adagrad.

Duchi, Hazan & Singer, *Adaptive Subgradient Methods for Online Learning and Stochastic
Optimization*, JMLR 2011 (diagonal form, with torch's ``lr_decay``).
"""

from typing import NamedTuple

import numpy as np

from adamkit.rules._common import directed_gradient, sqrt, with_l2_penalty


class AdagradState(NamedTuple):
    param: np.ndarray
    sum: np.ndarray


def adagrad_lr(step: float, lr: float, lr_decay: float) -> float:
    r"""The decayed learning rate of step :math:`t`: :math:`\tilde\gamma = \gamma / (1 + (t-1)\eta)`."""
    return lr / (1 + (step - 1) * lr_decay)


def adagrad(
    param: np.ndarray,
    grad: np.ndarray,
    sum: np.ndarray,  # noqa: A002 - torch's state key
    *,
    step: float,
    lr: float = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> AdagradState:
    r"""One Adagrad step on one array; returns the new :class:`AdagradState`.

    .. math::
        g &\leftarrow \pm\nabla f(\theta) + \lambda\theta \\
        \tilde\gamma &\leftarrow \gamma / (1 + (t-1)\eta) \\
        s &\leftarrow s + g^2 \\
        \theta &\leftarrow \theta - \tilde\gamma\, \frac{g}{\sqrt{s} + \epsilon}

    ``s`` starts at ``initial_accumulator_value``, which the front end sets.
    """
    grad = with_l2_penalty(directed_gradient(grad, maximize), param, weight_decay)
    clr = adagrad_lr(step, lr, lr_decay)
    # Sum of all squared gradients so far.
    sum = sum + grad * grad  # noqa: A001
    std = sqrt(sum) + eps
    param = param - clr * (grad / std)
    return AdagradState(param, sum)
