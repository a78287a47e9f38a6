r"""Adadelta.

Zeiler, *ADADELTA: An Adaptive Learning Rate Method*, 2012, Algorithm 1 (with torch's ``lr``).
"""

from typing import NamedTuple

import numpy as np

from adamkit.rules._common import directed_gradient, sqrt, with_l2_penalty


class AdadeltaState(NamedTuple):
    param: np.ndarray
    square_avg: np.ndarray
    acc_delta: np.ndarray


def adadelta(
    param: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    acc_delta: np.ndarray,
    *,
    step: float,
    lr: float = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> AdadeltaState:
    r"""One Adadelta step on one array; returns the new :class:`AdadeltaState`.

    .. math::
        g &\leftarrow \pm\nabla f(\theta) + \lambda\theta \\
        v &\leftarrow \rho v + (1-\rho) g^2 \\
        \Delta &\leftarrow \frac{\sqrt{u + \epsilon}}{\sqrt{v + \epsilon}}\, g \\
        u &\leftarrow \rho u + (1-\rho)\Delta^2 \\
        \theta &\leftarrow \theta - \gamma\Delta

    The ratio of RMS values gives Δ the units of θ. ``step`` is counted but unused.
    """
    del step
    grad = with_l2_penalty(directed_gradient(grad, maximize), param, weight_decay)
    # Accumulate the squared gradient.
    square_avg = rho * square_avg + (1 - rho) * grad * grad
    # The unit-correcting ratio RMS[Δθ] / RMS[g].
    std = sqrt(square_avg + eps)
    delta = sqrt(acc_delta + eps) / std * grad
    # Accumulate the squared update.
    acc_delta = rho * acc_delta + (1 - rho) * delta * delta
    param = param - lr * delta
    return AdadeltaState(param, square_avg, acc_delta)
