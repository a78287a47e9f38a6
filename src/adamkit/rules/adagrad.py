r"""Adagrad.

Duchi, Hazan & Singer, *Adaptive Subgradient Methods for Online Learning and Stochastic
Optimization*, JMLR 2011 (diagonal form, with torch's ``lr_decay``).
"""

from typing import NamedTuple

import numpy as np

from adamkit.rules._common import directed_gradient, sqrt, with_l2_penalty
from adamkit.rules._spec import Quantities, Spec, StateSlot, Variant, check_flag
from adamkit.validation import check_nonnegative


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


def adagrad_diagnostics(state, step, lr, lr_decay, eps, **_):
    r"""Adagrad: :math:`\tilde\gamma/(\sqrt{s}+\epsilon)` on the gradient, with the decayed
    :math:`\tilde\gamma = \gamma/(1+(t-1)\eta)`. The update needs the gradient: ``None``."""
    decayed_lr = adagrad_lr(step, lr, lr_decay)
    scale = np.sqrt(state["sum"])
    return Quantities(decayed_lr / (scale + eps), None, scale, eps)


ADAGRAD = Spec(
    name="Adagrad",
    rule=adagrad,
    defaults=dict(
        lr=1e-2,
        lr_decay=0.0,
        weight_decay=0.0,
        initial_accumulator_value=0.0,
        eps=1e-10,
        maximize=False,
    ),
    checks={
        "lr": check_nonnegative,
        "lr_decay": check_nonnegative,
        "weight_decay": check_nonnegative,
        "initial_accumulator_value": check_nonnegative,
        "eps": check_nonnegative,
        "maximize": check_flag,
    },
    slots=(StateSlot("sum", fill=lambda group: group["initial_accumulator_value"]),),
    checkpoint_keys=("lr", "lr_decay", "eps", "weight_decay"),
    positional=("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"),
    uses_step=True,
    eager_state=True,
    diagnostics=adagrad_diagnostics,
    sparse_grads="lazy",
    variants=(Variant("Adagrad", compare_lrs={"logreg": 0.3, "mlp": 1e-2, "cnn": 1e-2}),),
    cases=(
        ({}, {"lr": 0.1}),
        (
            {"lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.1, "maximize": True},
            {"eps": 1e-4},
        ),
    ),
)
