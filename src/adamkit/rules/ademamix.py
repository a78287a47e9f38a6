r"""AdEMAMix: Adam with a mixture of a fast and a slow exponential moving average of gradients.

Pagliardini, Ablin & Grangier, *The AdEMAMix Optimizer: Better, Faster, Older*, 2024,
Algorithm 1 and Section 3 (the schedulers of α and β3).
"""

import math
from typing import NamedTuple

import numpy as np

from adamkit.rules._common import directed_gradient, sqrt, with_l2_penalty
from adamkit.rules.cautious import cautious_direction
from adamkit.rules._spec import Quantities, Spec, StateSlot, Variant, check_flag
from adamkit.validation import as_float, check_betas, check_nonnegative, check_unit_interval


class AdEMAMixState(NamedTuple):
    param: np.ndarray
    exp_avg_fast: np.ndarray
    exp_avg_slow: np.ndarray
    exp_avg_sq: np.ndarray


class AdEMAMixScalars(NamedTuple):
    """The per-step scalars of AdEMAMix, computed once in double precision."""

    bias_correction1: float
    bias_correction2_sqrt: float
    alpha: float
    beta3: float


def alpha_scheduler(step, alpha, t_alpha_beta3):
    r"""The paper's linear warmup of α: :math:`\alpha_t = \min(t\alpha/T_{\alpha}, \alpha)`."""
    return min(step * alpha / t_alpha_beta3, alpha)


def beta3_scheduler(step, beta1, beta3, t_alpha_beta3):
    r"""The paper's warmup of β3, linear in the half-life of the slow average:

    .. math::
        \beta_3(t) = \min\Big(\exp\Big(\frac{\ln\beta_1 \ln\beta_3}
            {(1 - t/T)\ln\beta_3 + (t/T)\ln\beta_1}\Big),\ \beta_3\Big)
    """
    log_beta1, log_beta3 = math.log(beta1), math.log(beta3)
    fraction = step / t_alpha_beta3
    return min(math.exp(log_beta1 * log_beta3 / ((1 - fraction) * log_beta3 + fraction * log_beta1)), beta3)


def ademamix_scalars(step, betas, alpha, t_alpha_beta3):
    r"""Return :math:`(1-\beta_1^t,\ \sqrt{1-\beta_2^t},\ \alpha_t,\ \beta_3(t))` at the 1-based
    step ``t``: α and β3 as given without ``t_alpha_beta3``, else warmed up by the schedulers."""
    beta1, beta2, beta3 = betas
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = math.sqrt(1 - beta2**step)
    if t_alpha_beta3 is not None:
        alpha = alpha_scheduler(step, alpha, t_alpha_beta3)
        beta3 = beta3_scheduler(step, beta1, beta3, t_alpha_beta3)
    return AdEMAMixScalars(bias_correction1, bias_correction2_sqrt, alpha, beta3)


def ademamix(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg_fast: np.ndarray,
    exp_avg_slow: np.ndarray,
    exp_avg_sq: np.ndarray,
    *,
    step: float,
    lr: float = 1e-3,
    betas: tuple[float, float, float] = (0.9, 0.999, 0.9999),
    alpha: float = 5.0,
    t_alpha_beta3: float | None = None,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = True,
    maximize: bool = False,
    cautious: bool = False,
) -> AdEMAMixState:
    r"""One AdEMAMix step on one array; returns the new :class:`AdEMAMixState`.

    .. math::
        g &\leftarrow \pm\nabla f(\theta) \;(+\,\lambda\theta \text{ for L2 decay}) \\
        m_1 &\leftarrow \beta_1 m_1 + (1-\beta_1) g \\
        v &\leftarrow \beta_2 v + (1-\beta_2) g^2 \\
        m_2 &\leftarrow \beta_3(t) m_2 + (1-\beta_3(t)) g \\
        \theta &\leftarrow \theta - \gamma\Big(\frac{m_1/(1-\beta_1^t) + \alpha_t m_2}
            {\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon} + \lambda\theta\Big)

    where the decay term :math:`\lambda\theta` is there with ``decoupled_weight_decay`` (the
    paper's), and :math:`\alpha_t`, :math:`\beta_3(t)` are α and β3, or, with
    ``t_alpha_beta3``, their schedulers (``adamkit.rules.ademamix.ademamix_scalars``). The slow average is not
    corrected for bias. ``step`` is :math:`t`, counting this step. ``cautious=True`` (Liang et
    al., 2024) multiplies the mixture over its denominator, :math:`u`, by
    :math:`\phi / \max(\overline\phi, 10^{-3})` with :math:`\phi = \mathbb{1}[u \odot g > 0]` over
    the whole array (:mod:`adamkit.rules.cautious`), before the decoupled decay is added.
    """
    beta1, beta2, _ = betas
    grad = directed_gradient(grad, maximize)
    if not decoupled_weight_decay:
        grad = with_l2_penalty(grad, param, weight_decay)
    bias_correction1, bias_correction2_sqrt, alpha_t, beta3_t = ademamix_scalars(step, betas, alpha, t_alpha_beta3)
    # Fast EMA of gradients, in torch's lerp form: m1 + (1 - β1)(g - m1).
    exp_avg_fast = exp_avg_fast + (1 - beta1) * (grad - exp_avg_fast)
    # Second raw moment estimate.
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
    # Slow EMA of gradients, not corrected for bias.
    exp_avg_slow = exp_avg_slow + (1 - beta3_t) * (grad - exp_avg_slow)
    denom = sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
    update = (exp_avg_fast / bias_correction1 + alpha_t * exp_avg_slow) / denom
    if cautious:
        update = cautious_direction(update, grad)
    if decoupled_weight_decay:
        update = update + weight_decay * param
    param = param - lr * update
    return AdEMAMixState(param, exp_avg_fast, exp_avg_slow, exp_avg_sq)


def ademamix_diagnostics(state, step, lr, betas, alpha, t_alpha_beta3, eps, **_):
    r"""AdEMAMix: :math:`\gamma/(\sqrt{\hat v}+\epsilon)` on the mixture :math:`\hat m_1 + \alpha_t m_2`;
    the decoupled decay :math:`\gamma\lambda\theta` is not part of the update reported."""
    fields = [ademamix_scalars(count, betas, alpha, t_alpha_beta3) for count in np.ravel(step).tolist()]
    bias_correction1, bias_correction2_sqrt, alpha_t, _ = (np.reshape(f, np.shape(step)) for f in zip(*fields))
    scale = np.sqrt(state["exp_avg_sq"]) / bias_correction2_sqrt
    denom = scale + eps
    mixture = state["exp_avg_fast"] / bias_correction1 + alpha_t * state["exp_avg_slow"]
    return Quantities(lr / denom, lr * mixture / denom, scale, eps)


def check_triple(name, value):
    """AdEMAMix's ``betas``, (β1, β2, β3), each in [0, 1)."""
    try:
        triple = tuple(value)
    except TypeError:
        raise TypeError(f"betas must be a triple of numbers, got {value!r}") from None
    if len(triple) != 3:
        raise ValueError(f"Invalid betas: {value!r} (must be a triple (beta1, beta2, beta3))")
    check_betas(triple[:2])
    check_unit_interval("betas[2]", triple[2], closed_above=False)


def check_warmup(name, value):
    """``None`` or a finite number of steps > 0."""
    if value is None:
        return
    check_nonnegative(name, value)
    if as_float(name, value) == 0:
        raise ValueError(f"Invalid {name}: {value!r} (must be None or a finite number > 0)")


def check_warmed_betas(group):
    """The β3 scheduler takes logarithms of β1 and β3: with ``t_alpha_beta3`` both must be > 0."""
    if group.get("t_alpha_beta3") is None:
        return
    for index in (0, 2):
        if as_float(f"betas[{index}]", group["betas"][index]) == 0:
            raise ValueError(
                f"Invalid betas[{index}]: 0.0 (t_alpha_beta3={group['t_alpha_beta3']!r} warms β3 up "
                "through log(beta1) and log(beta3), which need betas[0] > 0 and betas[2] > 0)"
            )


ADEMAMIX = Spec(
    name="AdEMAMix",
    rule=ademamix,
    defaults=dict(
        lr=1e-3,
        betas=(0.9, 0.999, 0.9999),
        alpha=5.0,
        t_alpha_beta3=None,
        eps=1e-8,
        weight_decay=0.0,
        decoupled_weight_decay=True,
        maximize=False,
        cautious=False,
    ),
    checks={
        "lr": check_nonnegative,
        "betas": check_triple,
        "alpha": check_nonnegative,
        "t_alpha_beta3": check_warmup,
        "eps": check_nonnegative,
        "weight_decay": check_nonnegative,
        "decoupled_weight_decay": check_flag,
        "maximize": check_flag,
        "cautious": check_flag,
    },
    check_group=check_warmed_betas,
    slots=(
        StateSlot("exp_avg_fast", code=np.int8),
        StateSlot("exp_avg_slow", code=np.int8),
        StateSlot("exp_avg_sq", code=np.uint8),
    ),
    checkpoint_keys=("lr", "betas", "alpha", "t_alpha_beta3", "eps", "weight_decay"),
    positional=("lr", "betas", "alpha", "t_alpha_beta3", "eps", "weight_decay"),
    uses_step=True,
    corrected_moments=2,
    diagnostics=ademamix_diagnostics,
    variants=(Variant("AdEMAMix", compare_lrs={"logreg": 0.1, "mlp": 3e-3, "cnn": 1e-2}),),
    cases=(
        ({"lr": 1e-2, "betas": (0.8, 0.99, 0.999), "alpha": 3.0, "weight_decay": 0.1}, {"t_alpha_beta3": 20.0}),
        (
            {"lr": 1e-2, "t_alpha_beta3": 30, "weight_decay": 0.05, "decoupled_weight_decay": False, "maximize": True},
            {"alpha": 8.0, "eps": 1e-3},
        ),
    ),
)
