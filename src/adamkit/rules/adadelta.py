r"""Adadelta.

Zeiler, *ADADELTA: An Adaptive Learning Rate Method*, 2012, Algorithm 1 (with torch's ``lr``).
"""

from typing import NamedTuple

import numpy as np

from adamkit.rules._common import directed_gradient, sqrt, with_l2_penalty
from adamkit.rules._spec import (
    Quantities,
    Spec,
    StateSlot,
    Variant,
    check_flag,
    check_unit_closed,
)
from adamkit.validation import check_nonnegative


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


def adadelta_diagnostics(state, lr, eps, **_):
    r"""Adadelta: :math:`\gamma\sqrt{u+\epsilon}/\sqrt{v+\epsilon}`, the factor on the next gradient.

    It uses the stored :math:`u`, which already includes the last step's
    :math:`\Delta^2`, so it is the factor the next step starts from, not exactly the last one.
    ε is added to :math:`v` under the root, so the scale it competes with is :math:`v`. The
    last update is not stored: ``update`` is ``None``.
    """
    step_size = lr * np.sqrt(state["acc_delta"] + eps) / np.sqrt(state["square_avg"] + eps)
    return Quantities(step_size, None, state["square_avg"], eps)


ADADELTA = Spec(
    name="Adadelta",
    rule=adadelta,
    defaults=dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False),
    checks={
        "lr": check_nonnegative,
        "rho": check_unit_closed,
        "eps": check_nonnegative,
        "weight_decay": check_nonnegative,
        "maximize": check_flag,
    },
    slots=(StateSlot("square_avg", code=np.uint8), StateSlot("acc_delta", code=np.uint8)),
    checkpoint_keys=("lr", "rho", "eps", "weight_decay"),
    positional=("lr", "rho", "eps", "weight_decay"),
    diagnostics=adadelta_diagnostics,
    sparse_grads="lazy",
    # On the test functions, lr = 1: Zeiler's rule unscaled.
    variants=(
        Variant("Adadelta", compare_lrs={"logreg": 30.0, "mlp": 3.0, "cnn": 3.0}, trajectory_lr=1.0),
    ),
    cases=(
        ({}, {"lr": 0.5}),
        ({"rho": 0.5, "weight_decay": 0.1, "eps": 1e-4, "maximize": True}, {"rho": 0.95}),
    ),
)
