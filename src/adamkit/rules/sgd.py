r"""Stochastic gradient descent with momentum and Nesterov momentum.

Polyak, 1964; Sutskever et al., *On the importance of initialization and momentum in deep
learning*, ICML 2013 (in torch's formulation).
"""

from typing import NamedTuple

import numpy as np

from adamkit.rules._common import copy, directed_gradient, with_l2_penalty


class SGDState(NamedTuple):
    param: np.ndarray
    momentum_buffer: np.ndarray | None


def sgd(
    param: np.ndarray,
    grad: np.ndarray,
    momentum_buffer: np.ndarray | None = None,
    *,
    lr: float = 1e-3,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
) -> SGDState:
    r"""One SGD step on one array; returns the new :class:`SGDState`.

    .. math::
        g &\leftarrow \pm\nabla f(\theta) + \lambda\theta \\
        b &\leftarrow \mu b + (1-\tau) g \quad (b \leftarrow g \text{ on the first step}) \\
        g &\leftarrow g + \mu b \text{ (Nesterov)}, \text{ else } g \leftarrow b \\
        \theta &\leftarrow \theta - \gamma g

    ``momentum_buffer`` is ``None`` before the first step; with ``momentum == 0`` it stays
    ``None``.
    """
    grad = with_l2_penalty(directed_gradient(grad, maximize), param, weight_decay)
    if momentum != 0:
        # The velocity: an exponential sum of past gradients.
        if momentum_buffer is None:
            momentum_buffer = copy(grad)
        else:
            momentum_buffer = momentum * momentum_buffer + (1 - dampening) * grad
        grad = grad + momentum * momentum_buffer if nesterov else momentum_buffer
    param = param - lr * grad
    return SGDState(param, momentum_buffer)
