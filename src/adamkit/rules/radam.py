r"""RAdam, Adam with the variance of its adaptive learning rate rectified.

Liu, Jiang, He, Chen, Liu, Gao & Han, *On the Variance of the Adaptive Learning Rate and
Beyond*, ICLR 2020, Algorithm 2, as ``torch.optim.RAdam`` defines it (ε added to
:math:`\sqrt{v_t}`, L2 or decoupled weight decay).
"""

from typing import NamedTuple

import numpy as np

from adamkit.rules._common import reciprocal, sqrt
from adamkit.rules._spec import Quantities, Spec, StateSlot, Variant, check_flag
from adamkit.rules.adam import ADAM_CHECKPOINT_KEYS, ADAM_CHECKS, adam_moments

# The length of the approximated simple moving average above which the variance of the
# adaptive learning rate is tractable (the paper's threshold, ρ_t > 4, made 5 by torch).
RECTIFICATION_THRESHOLD = 5.0


class RAdamState(NamedTuple):
    param: np.ndarray
    exp_avg: np.ndarray
    exp_avg_sq: np.ndarray


class RAdamScalars(NamedTuple):
    r"""The per-step scalars of RAdam for one parameter, computed once in double precision.

    ``rect`` is the variance rectification term :math:`r_t`, or ``None`` while
    :math:`\rho_t \le 5` (then the step is momentum SGD on :math:`\hat m`).
    """

    bias_correction1: float
    bias_correction2_sqrt: float
    rect: float | None


def radam_scalars(step: float, betas: tuple[float, float]) -> RAdamScalars:
    r"""Return :math:`(1-\beta_1^t,\ \sqrt{1-\beta_2^t},\ r_t)`, with

    .. math::
        \rho_\infty = \frac{2}{1-\beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2t\beta_2^t}{1-\beta_2^t}, \qquad
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}

    and :math:`r_t` ``None`` while :math:`\rho_t \le 5`; Python doubles in torch's order.
    """
    beta1, beta2 = betas
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    # Maximum length of the approximated simple moving average.
    rho_inf = 2 / (1 - beta2) - 1
    # Length of the approximated simple moving average at step t.
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    rect = None
    if rho_t > RECTIFICATION_THRESHOLD:
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
    return RAdamScalars(bias_correction1, bias_correction2**0.5, rect)


def radam(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    *,
    step: float,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> RAdamState:
    r"""One RAdam step on one array; returns the new :class:`RAdamState`.

    .. math::
        g &\leftarrow \pm\nabla f(\theta) \;(+\,\lambda\theta \text{ for L2 decay}) \\
        \theta &\leftarrow \theta(1 - \gamma\lambda) \quad\text{(decoupled decay)} \\
        m &\leftarrow \beta_1 m + (1-\beta_1) g \\
        v &\leftarrow \beta_2 v + (1-\beta_2) g^2 \\
        \theta &\leftarrow \theta - \gamma\,\frac{m}{1-\beta_1^t}\,
            \frac{\sqrt{1-\beta_2^t}}{\sqrt{v} + \epsilon}\, r_t
            \quad\text{if } \rho_t > 5, \text{ else }
            \theta - \gamma\,\frac{m}{1-\beta_1^t}

    with :math:`\rho_t` and :math:`r_t` of :func:`radam_scalars`. ``step`` is :math:`t`,
    already counting this step; ``m`` and ``v`` are stored raw, as torch stores them.

    >>> import numpy as np
    >>> s = radam(np.ones(2), np.ones(2), np.zeros(2), np.zeros(2), step=1, lr=0.1)
    >>> np.round(s.param, 6)
    array([0.9, 0.9])
    """
    # Weight decay and the moments, as in Adam.
    param, exp_avg, exp_avg_sq = adam_moments(
        param, grad, exp_avg, exp_avg_sq, lr, betas, weight_decay, maximize, decoupled_weight_decay
    )
    bias_correction1, bias_correction2_sqrt, rect = radam_scalars(step, betas)
    # Bias-corrected first moment, times the learning rate.
    scaled_exp_avg = exp_avg / bias_correction1 * lr
    if rect is None:
        # The variance is intractable: momentum SGD on the corrected first moment.
        return RAdamState(param - scaled_exp_avg, exp_avg, exp_avg_sq)
    # Adaptive learning rate √(1 - β2^t) / (√v + ε), as torch's scalar / tensor computes it.
    adaptive_lr = reciprocal(sqrt(exp_avg_sq) + eps) * bias_correction2_sqrt
    # Rectified adaptive step.
    return RAdamState(param - scaled_exp_avg * adaptive_lr * rect, exp_avg, exp_avg_sq)


def radam_diagnostics(state, step, lr, betas, eps, **_):
    r"""RAdam: :math:`\gamma r_t\sqrt{1-\beta_2^t}/(\sqrt{v}+\epsilon)` on :math:`\hat m` once
    rectified, :math:`\gamma` before. The scale is the uncorrected :math:`\sqrt v`, to which
    the rectified step adds ε.

    ``step`` may be an array of counts (stacked states); each row takes its own branch.
    """
    counts = np.asarray(step, dtype=np.float64)
    scalars = [radam_scalars(count, betas) for count in np.ravel(counts).tolist()]

    def per_row(values):
        return np.reshape(values, counts.shape)

    bias_correction1 = per_row([s.bias_correction1 for s in scalars])
    rectified_lr = per_row([lr * (s.rect or 0.0) * s.bias_correction2_sqrt for s in scalars])
    rectified = per_row([s.rect is not None for s in scalars])
    scale = np.sqrt(state["exp_avg_sq"])
    step_size = np.where(rectified, rectified_lr / (scale + eps), lr)
    update = step_size * state["exp_avg"] / bias_correction1
    return Quantities(step_size, update, scale, eps)


RADAM = Spec(
    name="RAdam",
    rule=radam,
    defaults=dict(
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        decoupled_weight_decay=False,
        maximize=False,
    ),
    checks={**{key: ADAM_CHECKS[key] for key in ("lr", "betas", "eps", "weight_decay", "maximize")},
            "decoupled_weight_decay": check_flag},
    slots=(StateSlot("exp_avg", code=np.int8), StateSlot("exp_avg_sq", code=np.uint8)),
    checkpoint_keys=ADAM_CHECKPOINT_KEYS,
    positional=("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay"),
    uses_step=True,
    corrected_moments=2,
    diagnostics=radam_diagnostics,
    sparse_grads="lazy",
    variants=(Variant("RAdam", compare_lrs={"logreg": 3.0, "mlp": 0.03, "cnn": 0.1}),),
    cases=(
        ({"lr": 1e-2, "betas": (0.8, 0.99), "weight_decay": 0.1}, {"lr": 3e-3, "maximize": True}),
        (
            {"lr": 1e-2, "eps": 1e-3, "weight_decay": 0.05, "decoupled_weight_decay": True},
            {"betas": (0.9, 0.999), "weight_decay": 0.0},
        ),
    ),
)
