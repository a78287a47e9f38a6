r"""AdaBelief: Adam whose step is scaled by the belief in the observed gradient.

Zhuang, Tang, Ding, Tatikonda, Dvornek, Papademetris & Duncan, *AdaBelief Optimizer: Adapting
Stepsizes by the Belief in Observed Gradients*, NeurIPS 2020, Algorithm 2; the rectification
(``rectify=True``) is Liu et al.'s, *On the Variance of the Adaptive Learning Rate and Beyond*,
ICLR 2020 (RAdam), as the authors' package ``adabelief_pytorch`` applies it.
"""

import math
from typing import NamedTuple

import numpy as np

from adamkit.rules._common import directed_gradient, maximum, sqrt, with_l2_penalty
from adamkit.rules._spec import Quantities, Spec, StateSlot, Variant, check_flag
from adamkit.rules.adam import ADAM_CHECKPOINT_KEYS, ADAM_CHECKS, bias_corrections

# Rectification needs a long enough average: below this length of the approximated simple
# moving average (ρ_t) the step is SGD with momentum, as in the authors' package and RAdam.
RECTIFY_THRESHOLD = 5.0


class AdaBeliefState(NamedTuple):
    param: np.ndarray
    exp_avg: np.ndarray
    exp_avg_var: np.ndarray
    max_exp_avg_var: np.ndarray | None


class AdaBeliefScalars(NamedTuple):
    """The per-step scalars of AdaBelief, computed once in double precision."""

    step_size: float
    bias_correction2_sqrt: float
    sgd_step: bool  # rectification's early steps: no denominator, θ ← θ − step_size·m


def adabelief_scalars(step: float, lr: float, betas: tuple[float, float], rectify: bool = False) -> AdaBeliefScalars:
    r"""Return the step size, :math:`\sqrt{1-\beta_2^t}` and whether the step is SGD's.

    Without rectification: :math:`(\gamma/(1-\beta_1^t),\ \sqrt{1-\beta_2^t},\ \text{False})`.
    With it, :math:`\rho_\infty = 2/(1-\beta_2) - 1` and
    :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)`; while :math:`\rho_t < 5` the step is
    SGD with momentum, :math:`(\gamma/(1-\beta_1^t),\ 1,\ \text{True})`; from then on it is
    :math:`(\gamma r_t/(1-\beta_1^t),\ 1,\ \text{False})` with
    :math:`r_t = \sqrt{(1-\beta_2^t)\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}`:
    the bias correction of :math:`s` moves into :math:`r_t`, and ε is added to :math:`\sqrt{s}`.
    """
    beta1, beta2 = betas
    bias_correction1 = 1 - beta1**step
    beta2_t = beta2**step
    if not rectify:
        return AdaBeliefScalars(lr / bias_correction1, math.sqrt(1 - beta2_t), False)
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * beta2_t / (1 - beta2_t)
    if rho_t < RECTIFY_THRESHOLD:
        return AdaBeliefScalars(lr / bias_correction1, 1.0, True)
    rectification = math.sqrt(
        (1 - beta2_t) * (rho_t - 4) / (rho_inf - 4) * (rho_t - 2) / rho_t * rho_inf / (rho_inf - 2)
    )
    return AdaBeliefScalars(lr * rectification / bias_correction1, 1.0, False)


def adabelief(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_var: np.ndarray,
    max_exp_avg_var: np.ndarray | None = None,
    *,
    step: float,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-16,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = True,
    amsgrad: bool = False,
    rectify: bool = False,
    maximize: bool = False,
) -> AdaBeliefState:
    r"""One AdaBelief step on one array; returns the new :class:`AdaBeliefState`.

    .. math::
        \theta &\leftarrow \theta(1 - \gamma\lambda) \quad\text{(decoupled decay, the default;}
            \text{ else } g \leftarrow g + \lambda\theta) \\
        m &\leftarrow \beta_1 m + (1-\beta_1) g \\
        s &\leftarrow \beta_2 s + (1-\beta_2)(g - m)^2 + \epsilon \\
        s_{max} &\leftarrow \max(s_{max}, s) \quad\text{(AMSGrad, which then uses } s_{max}
            \text{ for } s \text{ below)} \\
        \theta &\leftarrow \theta - \frac{\gamma}{1-\beta_1^t}\,
            \frac{m}{\sqrt{s}/\sqrt{1-\beta_2^t} + \epsilon}

    ``g`` is :math:`\pm\nabla f(\theta)` (``maximize``). ε enters twice, as in the paper's
    Algorithm 2: inside the stored ``s`` and outside the root. With ``rectify=True`` the last
    line is RAdam's (:func:`adabelief_scalars`): SGD with momentum,
    :math:`\theta \leftarrow \theta - \frac{\gamma}{1-\beta_1^t} m`, while :math:`\rho_t < 5`,
    then :math:`\theta \leftarrow \theta - \frac{\gamma r_t}{1-\beta_1^t}\frac{m}{\sqrt{s} + \epsilon}`
    (with :math:`s_{max}` under AMSGrad).

    >>> import numpy as np
    >>> s = adabelief(np.ones(2), np.ones(2), np.zeros(2), np.zeros(2), step=1, lr=0.1)
    >>> np.round(s.param, 6)
    array([0.9, 0.9])
    """
    beta1, beta2 = betas
    grad = directed_gradient(grad, maximize)
    if decoupled_weight_decay:
        param = param * (1 - lr * weight_decay)
    else:
        grad = with_l2_penalty(grad, param, weight_decay)
    # First moment estimate: the prediction of the next gradient.
    exp_avg = beta1 * exp_avg + (1 - beta1) * grad
    # The belief: an exponential average of the squared error of that prediction, plus ε.
    residual = grad - exp_avg
    exp_avg_var = beta2 * exp_avg_var + (1 - beta2) * residual * residual + eps
    # AMSGrad keeps the largest belief seen so far.
    if amsgrad:
        max_exp_avg_var = maximum(max_exp_avg_var, exp_avg_var)
    second_moment = max_exp_avg_var if amsgrad else exp_avg_var
    step_size, bias_correction2_sqrt, sgd_step = adabelief_scalars(step, lr, betas, rectify)
    if sgd_step:
        param = param - step_size * exp_avg
    else:
        denom = sqrt(second_moment) / bias_correction2_sqrt + eps
        param = param - step_size * (exp_avg / denom)
    return AdaBeliefState(param, exp_avg, exp_avg_var, max_exp_avg_var)


def adabelief_diagnostics(state, step, lr, betas, eps, amsgrad, rectify, **_):
    r"""AdaBelief: :math:`\gamma/(\sqrt{\hat s}+\epsilon)` on :math:`\hat m`; with ``rectify``
    the rectified factor, and :math:`\gamma` alone while the step is SGD's (whose ``scale``,
    :math:`\sqrt{s}`, is then reported but unused).

    The update is the rule's last line; the decoupled decay :math:`\gamma\lambda\theta` is not
    part of it.
    """
    each = [adabelief_scalars(count, lr, betas, rectify) for count in np.ravel(step).tolist()]
    step_size, bias_correction2_sqrt, sgd_step = (np.reshape(field, np.shape(step)) for field in zip(*each))
    bias_correction1, _ = bias_corrections(step, betas)
    second_moment = state["max_exp_avg_var"] if amsgrad else state["exp_avg_var"]
    scale = np.sqrt(second_moment) / bias_correction2_sqrt
    denom = np.where(sgd_step, 1.0, scale + eps)
    return Quantities(step_size * bias_correction1 / denom, step_size * state["exp_avg"] / denom, scale, eps)


ADABELIEF = Spec(
    name="AdaBelief",
    rule=adabelief,
    defaults=dict(
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-16,
        weight_decay=0.0,
        decoupled_weight_decay=True,
        amsgrad=False,
        rectify=False,
        maximize=False,
    ),
    checks={**ADAM_CHECKS, "rectify": check_flag},
    slots=(
        StateSlot("exp_avg", code=np.int8),
        StateSlot("exp_avg_var", code=np.uint8),
        StateSlot("max_exp_avg_var", when=lambda group: group["amsgrad"], code=np.uint8),
    ),
    checkpoint_keys=ADAM_CHECKPOINT_KEYS,
    positional=("lr", "betas", "eps", "weight_decay"),
    uses_step=True,
    corrected_moments=2,
    diagnostics=adabelief_diagnostics,
    sparse_grads="lazy",
    variants=(Variant("AdaBelief", compare_lrs={"logreg": 0.1, "mlp": 3e-3, "cnn": 3e-3}),),
    cases=(
        (
            {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-8, "weight_decay": 0.1, "amsgrad": True},
            {"decoupled_weight_decay": False, "maximize": True},
        ),
        ({"lr": 1e-2, "eps": 1e-10, "weight_decay": 0.05, "rectify": True, "betas": (0.9, 0.9)}, {"amsgrad": True}),
    ),
)
