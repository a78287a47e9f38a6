r"""Stochastic gradient descent with momentum and Nesterov momentum.

Polyak, 1964; Sutskever et al., *On the importance of initialization and momentum in deep
learning*, ICML 2013 (in torch's formulation).
"""

from typing import NamedTuple

import numpy as np

from adamkit.rules._common import copy, directed_gradient, with_l2_penalty
from adamkit.rules._spec import Quantities, Spec, StateSlot, Variant, check_flag
from adamkit.validation import check_nonnegative


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


def sgd_diagnostics(state, param, lr, momentum, nesterov, **_):
    r"""SGD: :math:`\gamma` for every element.

    With plain momentum the update is :math:`\gamma b`; with Nesterov momentum it is
    :math:`\gamma(g+\mu b)` and without momentum :math:`\gamma g`, which need the gradient: ``None``.
    """
    update = lr * state["momentum_buffer"] if momentum != 0 and not nesterov else None
    return Quantities(np.full_like(param, lr), update, None, None)


def check_nesterov(group):
    """Nesterov momentum needs a momentum and no dampening."""
    if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
        raise ValueError(
            f"nesterov=True requires momentum > 0 and dampening = 0, "
            f"got momentum={group['momentum']!r}, dampening={group['dampening']!r}"
        )


SGD = Spec(
    name="SGD",
    rule=sgd,
    defaults=dict(
        lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False
    ),
    checks={
        "lr": check_nonnegative,
        "momentum": check_nonnegative,
        "dampening": check_nonnegative,
        "weight_decay": check_nonnegative,
        "nesterov": check_flag,
        "maximize": check_flag,
    },
    slots=(StateSlot("momentum_buffer", fill=None, when=lambda group: group["momentum"] != 0),),
    checkpoint_keys=("lr", "momentum", "dampening", "weight_decay"),
    positional=("lr", "momentum", "dampening", "weight_decay", "nesterov"),
    check_group=check_nesterov,
    counts_steps=False,
    diagnostics=sgd_diagnostics,
    sparse_grads="dense",
    variants=(
        Variant("SGD", compare=False, bench=False),
        Variant("SGD-momentum", {"lr": 1e-3, "momentum": 0.9}, compare=False, trajectories=False),
        Variant(
            "SGD-Nesterov",
            {"momentum": 0.9, "nesterov": True},
            compare="sgd",
            compare_lrs={"logreg": 1.0, "mlp": 0.1, "cnn": 0.1},
            trajectories="nesterov",
            bench=False,
        ),
    ),
    cases=(
        ({"lr": 1e-2}, {"lr": 5e-2}),
        ({"lr": 1e-2, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}, {"momentum": 0.5}),
        ({"lr": 1e-2, "momentum": 0.9, "dampening": 0.3, "maximize": True}, {"weight_decay": 0.2}),
    ),
)
