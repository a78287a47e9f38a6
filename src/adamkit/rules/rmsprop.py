r"""RMSprop, with the centered variant and momentum.

Tieleman & Hinton, Lecture 6.5, COURSERA: Neural Networks for Machine Learning, 2012;
Graves, *Generating Sequences With Recurrent Neural Networks*, 2013, Eq. 38-45 (centered).
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


def rmsprop_diagnostics(state, lr, eps, momentum, centered, **_):
    r"""RMSprop: :math:`\gamma/(\sqrt{v}+\epsilon)` on the gradient (centered: :math:`\sqrt{v-\bar g^2}`).

    With momentum the update is :math:`\gamma b`; without it, it needs the gradient: ``None``.
    """
    variance = state["square_avg"] - state["grad_avg"] ** 2 if centered else state["square_avg"]
    scale = np.sqrt(variance)
    update = lr * state["momentum_buffer"] if momentum > 0 else None
    return Quantities(lr / (scale + eps), update, scale, eps)


RMSPROP = Spec(
    name="RMSprop",
    rule=rmsprop,
    defaults=dict(
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0.0,
        momentum=0.0,
        centered=False,
        maximize=False,
    ),
    checks={
        "lr": check_nonnegative,
        "alpha": check_unit_closed,
        "eps": check_nonnegative,
        "weight_decay": check_nonnegative,
        "momentum": check_nonnegative,
        "centered": check_flag,
        "maximize": check_flag,
    },
    slots=(
        StateSlot("square_avg"),
        StateSlot("momentum_buffer", when=lambda group: group["momentum"] > 0),
        StateSlot("grad_avg", when=lambda group: group["centered"]),
    ),
    checkpoint_keys=("lr", "alpha", "eps", "weight_decay"),
    positional=("lr", "alpha", "eps", "weight_decay", "momentum", "centered"),
    diagnostics=rmsprop_diagnostics,
    variants=(Variant("RMSprop", compare_lrs={"logreg": 3e-2, "mlp": 1e-3, "cnn": 1e-3}),),
    cases=(
        ({}, {"lr": 1e-3}),
        ({"centered": True, "momentum": 0.9, "weight_decay": 0.1}, {"centered": False}),
        ({"alpha": 0.9, "eps": 1e-4, "maximize": True, "momentum": 0.5}, {"alpha": 0.5}),
        ({"maximize": True, "weight_decay": 0.1, "centered": True}, {"lr": 3e-3}),
    ),
)
