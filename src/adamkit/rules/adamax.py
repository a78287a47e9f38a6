r"""Adamax, the infinity-norm variant of Adam.

Kingma & Ba, *Adam: A Method for Stochastic Optimization*, ICLR 2015, Sec. 7.1, Algorithm 2.
"""

from typing import NamedTuple

import numpy as np

from adamkit.rules._common import absolute, directed_gradient, maximum, with_l2_penalty
from adamkit.rules._spec import Quantities, Spec, StateSlot, Variant
from adamkit.rules.adam import (
    ADAM_CHECKPOINT_KEYS,
    ADAM_CHECKS,
    adam_scalars_per_step,
    bias_corrections,
)


class AdamaxState(NamedTuple):
    param: np.ndarray
    exp_avg: np.ndarray
    exp_inf: np.ndarray


def adamax(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_inf: np.ndarray,
    *,
    step: float,
    lr: float = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> AdamaxState:
    r"""One Adamax step on one array; returns the new :class:`AdamaxState`.

    .. math::
        g &\leftarrow \pm\nabla f(\theta) + \lambda\theta \\
        m &\leftarrow \beta_1 m + (1-\beta_1) g \\
        u &\leftarrow \max(\beta_2 u,\; |g| + \epsilon) \\
        \theta &\leftarrow \theta - \frac{\gamma}{1-\beta_1^t}\,\frac{m}{u}

    As in torch, ε is added inside the max, which keeps ``u`` away from zero.
    """
    beta1, beta2 = betas
    grad = with_l2_penalty(directed_gradient(grad, maximize), param, weight_decay)
    # First moment estimate, β1 m + (1 - β1) g, in torch's lerp form.
    exp_avg = exp_avg + (1 - beta1) * (grad - exp_avg)
    # Exponentially weighted infinity norm.
    exp_inf = maximum(beta2 * exp_inf, absolute(grad) + eps)
    # Only the first moment needs bias correction.
    step_size = lr / (1 - beta1**step)
    param = param - step_size * (exp_avg / exp_inf)
    return AdamaxState(param, exp_avg, exp_inf)


def adamax_diagnostics(state, step, lr, betas, **_):
    r"""Adamax: :math:`\gamma/u` on :math:`\hat m`; ε sits inside the max, so no scale is reported.

    The update is :math:`\frac{\gamma}{1-\beta_1^t}\frac{m}{u}`.
    """
    scalars = adam_scalars_per_step(step, lr, betas)
    bias_correction1, _ = bias_corrections(step, betas)
    step_size = scalars.step_size * bias_correction1 / state["exp_inf"]
    update = scalars.step_size * state["exp_avg"] / state["exp_inf"]
    return Quantities(step_size, update, None, None)


ADAMAX = Spec(
    name="Adamax",
    rule=adamax,
    defaults=dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False),
    checks=ADAM_CHECKS,
    slots=(StateSlot("exp_avg", code=np.int8), StateSlot("exp_inf", code=np.uint8)),
    checkpoint_keys=ADAM_CHECKPOINT_KEYS,
    positional=("lr", "betas", "eps", "weight_decay"),
    uses_step=True,
    corrected_moments=1,
    diagnostics=adamax_diagnostics,
    sparse_grads="lazy",
    variants=(Variant("Adamax", compare_lrs={"logreg": 0.3, "mlp": 1e-2, "cnn": 1e-2}),),
    cases=(
        ({}, {"lr": 1e-2}),
        ({"lr": 1e-2, "weight_decay": 0.1, "betas": (0.5, 0.9), "maximize": True}, {"eps": 1e-3}),
    ),
)
