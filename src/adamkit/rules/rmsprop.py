r"""RMSprop, with the centered variant and momentum.

Tieleman & Hinton, Lecture 6.5, COURSERA: Neural Networks for Machine Learning, 2012;
Graves, *Generating Sequences With Recurrent Neural Networks*, 2013, Eq. 38-45 (centered).
"""

from typing import NamedTuple

import numpy as np

from adamkit.rules._common import directed_gradient, sqrt, with_l2_penalty


class RMSpropState(NamedTuple):
    param: np.ndarray
    square_avg: np.ndarray
    momentum_buffer: np.ndarray | None
    grad_avg: np.ndarray | None


def rmsprop(
    param: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    momentum_buffer: np.ndarray | None = None,
    grad_avg: np.ndarray | None = None,
    *,
    step: float,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> RMSpropState:
    r"""One RMSprop step on one array; returns the new :class:`RMSpropState`.

    .. math::
        g &\leftarrow \pm\nabla f(\theta) + \lambda\theta \\
        v &\leftarrow \alpha v + (1-\alpha) g^2 \\
        \bar g &\leftarrow \alpha \bar g + (1-\alpha) g \quad\text{(centered)} \\
        d &\leftarrow \sqrt{v - \bar g^2} + \epsilon \;\text{(centered), else}\; \sqrt{v} + \epsilon \\
        b &\leftarrow \mu b + g / d, \quad \theta \leftarrow \theta - \gamma b
            \quad\text{(momentum, else } \theta \leftarrow \theta - \gamma g/d)

    ``step`` is counted but unused.
    """
    del step
    grad = with_l2_penalty(directed_gradient(grad, maximize), param, weight_decay)
    # Moving average of the squared gradient.
    square_avg = alpha * square_avg + (1 - alpha) * grad * grad
    if centered:
        # Moving average of the gradient; subtracting its square estimates the variance.
        grad_avg = grad_avg + (1 - alpha) * (grad - grad_avg)
        avg = sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = sqrt(square_avg) + eps
    if momentum > 0:
        momentum_buffer = momentum * momentum_buffer + grad / avg  # type: ignore[operator]  # given with momentum
        param = param - lr * momentum_buffer
    else:
        param = param - lr * (grad / avg)
    return RMSpropState(param, square_avg, momentum_buffer, grad_avg)
