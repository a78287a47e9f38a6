r"""Adam and AdamW.

Kingma & Ba, *Adam: A Method for Stochastic Optimization*, ICLR 2015, Algorithm 1;
Loshchilov & Hutter, *Decoupled Weight Decay Regularization*, ICLR 2019, Algorithm 2.
"""

import math
from typing import NamedTuple

import numpy as np

from adamkit.rules._common import directed_gradient, maximum, sqrt, with_l2_penalty
from adamkit.rules.cautious import cautious_direction
from adamkit.rules._spec import (
    Quantities,
    Spec,
    StateSlot,
    Variant,
    check_flag,
    check_pair,
    plain,
)
from adamkit.validation import check_nonnegative


class AdamState(NamedTuple):
    param: np.ndarray
    exp_avg: np.ndarray
    exp_avg_sq: np.ndarray
    max_exp_avg_sq: np.ndarray | None


class AdamScalars(NamedTuple):
    """The per-step scalars of Adam, computed once in double precision."""

    step_size: float
    bias_correction2_sqrt: float


def adam_scalars(step: float, lr: float, betas: tuple[float, float], eps_hat: bool = False) -> AdamScalars:
    r"""Return :math:`(\gamma / bc_1, \sqrt{bc_2})` with :math:`bc_i = 1 - \beta_i^t`.

    With ``eps_hat`` (the ε̂ form of the paper's Sec. 2, used by Keras and ``SparseAdam``)
    the step size is :math:`\gamma\sqrt{bc_2}/bc_1` and the denominator is not corrected.
    """
    beta1, beta2 = betas
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = math.sqrt(1 - beta2**step)
    if eps_hat:
        return AdamScalars(lr * bias_correction2_sqrt / bias_correction1, 1.0)
    return AdamScalars(lr / bias_correction1, bias_correction2_sqrt)


def adam(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    max_exp_avg_sq: np.ndarray | None = None,
    *,
    step: float,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
    eps_hat: bool = False,
    cautious: bool = False,
) -> AdamState:
    r"""One Adam step on one array; returns the new :class:`AdamState`.

    .. math::
        g &\leftarrow \pm\nabla f(\theta) \;(+\,\lambda\theta \text{ for L2 decay}) \\
        \theta &\leftarrow \theta(1 - \gamma\lambda) \quad\text{(decoupled decay, AdamW)} \\
        m &\leftarrow \beta_1 m + (1-\beta_1) g \\
        v &\leftarrow \beta_2 v + (1-\beta_2) g^2 \\
        v_{max} &\leftarrow \max(v_{max}, v) \quad\text{(AMSGrad, which then uses } v_{max}
            \text{ for } v \text{ below)} \\
        \theta &\leftarrow \theta - \frac{\gamma}{1-\beta_1^t}\,
            \frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon}

    ``step`` is :math:`t`, already counting this step. ``m`` and ``v`` are stored raw, not
    bias-corrected, as torch stores them. ``eps_hat=True`` is the opt-in ε̂ convention:
    :math:`\theta \leftarrow \theta - \gamma\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\frac{m}{\sqrt v + \hat\epsilon}`.
    ``cautious=True`` (Liang et al., 2024) replaces :math:`m` in the last line by
    :math:`m \odot \phi / \max(\overline\phi, 10^{-3})` with :math:`\phi = \mathbb{1}[m \odot g > 0]`
    over the whole array (:mod:`adamkit.rules.cautious`); the decoupled decay is not masked.

    >>> import numpy as np
    >>> s = adam(np.ones(2), np.ones(2), np.zeros(2), np.zeros(2), step=1, lr=0.1)
    >>> np.round(s.param, 6)
    array([0.9, 0.9])
    """
    before = param
    param, exp_avg, exp_avg_sq = adam_moments(
        param, grad, exp_avg, exp_avg_sq, lr, betas, weight_decay, maximize, decoupled_weight_decay
    )
    # AMSGrad keeps the largest second moment seen so far.
    if amsgrad:
        max_exp_avg_sq = maximum(max_exp_avg_sq, exp_avg_sq)
    second_moment = max_exp_avg_sq if amsgrad else exp_avg_sq
    # Bias-corrected step.
    step_size, bias_correction2_sqrt = adam_scalars(step, lr, betas, eps_hat)
    denom = sqrt(second_moment) / bias_correction2_sqrt + eps
    direction = exp_avg
    if cautious:
        # Keep the momentum where it agrees in sign with the gradient the moments took.
        l2 = 0.0 if decoupled_weight_decay else weight_decay
        direction = cautious_direction(exp_avg, with_l2_penalty(directed_gradient(grad, maximize), before, l2))
    param = param - step_size * (direction / denom)
    return AdamState(param, exp_avg, exp_avg_sq, max_exp_avg_sq)


def adam_moments(param, grad, exp_avg, exp_avg_sq, lr, betas, weight_decay, maximize, decoupled_weight_decay):
    r"""The start of a step that Adam and RAdam share: the gradient's direction, weight decay
    (decoupled, :math:`\theta(1 - \gamma\lambda)`, or L2) and the new moments; returns
    ``(param, exp_avg, exp_avg_sq)``."""
    beta1, beta2 = betas
    grad = directed_gradient(grad, maximize)
    if decoupled_weight_decay:
        param = param * (1 - lr * weight_decay)
    else:
        grad = with_l2_penalty(grad, param, weight_decay)
    # First moment estimate: momentum, an exponential average of gradients,
    # m + (1 - β1)(g - m) = β1 m + (1 - β1) g, written as torch's lerp computes it.
    exp_avg = exp_avg + (1 - beta1) * (grad - exp_avg)
    # Second raw moment estimate: an exponential average of squared gradients.
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
    return param, exp_avg, exp_avg_sq


def adam_scalars_per_step(step, lr, betas, eps_hat=False):
    """:func:`~adamkit.rules.adam_scalars` of the count ``step``, or, for an array of counts (the states of
    several steps stacked, as the diagnostics take them), the array of each field, element by
    element from :func:`~adamkit.rules.adam_scalars`."""
    if np.ndim(step) == 0:
        return adam_scalars(step, lr, betas, eps_hat)
    fields = zip(*(adam_scalars(count, lr, betas, eps_hat) for count in np.ravel(step).tolist()))
    return AdamScalars(*(np.reshape(field, np.shape(step)) for field in fields))


def bias_corrections(step, betas):
    r"""The factors :math:`(1-\beta_1^t,\ 1-\beta_2^t)`, from :func:`~adamkit.rules.adam_scalars`; ``step`` may
    be an array of counts."""
    unit = adam_scalars_per_step(step, 1.0, betas)
    return 1.0 / unit.step_size, unit.bias_correction2_sqrt**2


def adam_diagnostics(state, step, lr, betas, eps, amsgrad, eps_hat, **_):
    r"""Adam, AdamW and AMSGrad: :math:`\gamma/(\sqrt{\hat v}+\epsilon)` on :math:`\hat m`.

    The update is :math:`\frac{\gamma}{1-\beta_1^t}\frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t}+\epsilon}`
    with ``max_exp_avg_sq`` for ``v`` under AMSGrad; AdamW's decoupled decay
    :math:`\gamma\lambda\theta` is not part of it. With ``eps_hat`` the scale is the
    uncorrected :math:`\sqrt v`, as in the rule.
    """
    scalars = adam_scalars_per_step(step, lr, betas, eps_hat)
    bias_correction1, _ = bias_corrections(step, betas)
    second_moment = state["max_exp_avg_sq"] if amsgrad else state["exp_avg_sq"]
    scale = np.sqrt(second_moment) / scalars.bias_correction2_sqrt
    denom = scale + eps
    step_size = scalars.step_size * bias_correction1 / denom
    update = scalars.step_size * state["exp_avg"] / denom
    return Quantities(step_size, update, scale, eps)


ADAM_CHECKS = {
    "lr": check_nonnegative,
    "betas": check_pair,
    "eps": check_nonnegative,
    "weight_decay": check_nonnegative,
    "amsgrad": check_flag,
    "maximize": check_flag,
    "decoupled_weight_decay": check_flag,
    "eps_hat": check_flag,
}
"""The checks of Adam's hyperparameters, which Adamax shares."""
ADAM_CHECKPOINT_KEYS = ("lr", "betas", "eps", "weight_decay")
_CHECKS = {**ADAM_CHECKS, "cautious": check_flag}

_SLOTS = (
    StateSlot("exp_avg", code=np.int8),
    StateSlot("exp_avg_sq", code=np.uint8),
    StateSlot("max_exp_avg_sq", when=lambda group: group["amsgrad"], code=np.uint8),
)
_POSITIONAL = ("lr", "betas", "eps", "weight_decay", "amsgrad")
# The learning rates of adamkit compare's tasks, which Adam, AMSGrad and AdamW share.
_COMPARE_LRS = {"logreg": 0.1, "mlp": 3e-3, "cnn": 1e-2}

ADAM = Spec(
    name="Adam",
    rule=adam,
    defaults=dict(
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
        maximize=False,
        decoupled_weight_decay=False,
        eps_hat=False,
        cautious=False,
    ),
    checks=_CHECKS,
    slots=_SLOTS,
    checkpoint_keys=ADAM_CHECKPOINT_KEYS,
    positional=_POSITIONAL,
    uses_step=True,
    corrected_moments=2,
    diagnostics=adam_diagnostics,
    sparse_grads="lazy",
    variants=(
        Variant("Adam", compare_lrs=_COMPARE_LRS),
        Variant("AMSGrad", {"amsgrad": True}, compare_lrs=_COMPARE_LRS),
    ),
    cases=(
        ({}, {"lr": 3e-3}),
        ({"lr": 1e-2, "weight_decay": 0.1, "amsgrad": True}, {"amsgrad": False}),
        ({"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-3, "maximize": True}, {"eps": 1e-8}),
        ({"lr": 1e-2, "weight_decay": 0.05, "decoupled_weight_decay": True}, {"weight_decay": 0.0}),
        ({"lr": 1e-2, "maximize": True, "weight_decay": 0.1, "amsgrad": True}, {"lr": 3e-3}),
    ),
)

ADAMW = Spec(
    name="AdamW",
    rule=adam,
    defaults={**ADAM.defaults, "weight_decay": 1e-2, "decoupled_weight_decay": True},
    checks=_CHECKS,
    slots=_SLOTS,
    checkpoint_keys=ADAM_CHECKPOINT_KEYS,
    positional=_POSITIONAL,
    fixed=("decoupled_weight_decay",),
    uses_step=True,
    corrected_moments=2,
    diagnostics=adam_diagnostics,
    sparse_grads="lazy",
    # AdamW's default decoupled decay, λ = 1e-2; adamkit trajectories draws it only beside
    # Adam with L2 decay (--weight-decay).
    variants=(Variant("AdamW", compare_lrs=_COMPARE_LRS, trajectories=False),),
    cases=(
        ({}, {"weight_decay": 0.5}),
        ({"lr": 1e-2, "weight_decay": 0.1, "amsgrad": True, "maximize": True}, {"lr": 1e-3}),
    ),
)


def check_positive(name, value):
    """A finite real number > 0, as torch's SparseAdam requires of ``lr`` and ``eps``."""
    check_nonnegative(name, value)
    if plain(value) == 0:
        raise ValueError(f"Invalid {name}: {value!r} (must be a finite number > 0)")


def check_fixed(value):
    """The check of a hyperparameter that an optimizer fixes at ``value``."""

    def check(name, given):
        if given != value or type(given) is not type(value):
            raise ValueError(f"Invalid {name}: {given!r} (SparseAdam fixes it at {value!r})")

    return check


_SPARSE_ADAM_FIXED = dict(
    weight_decay=0.0, amsgrad=False, decoupled_weight_decay=False, eps_hat=True, sparse_mode="lazy", cautious=False
)

SPARSE_ADAM = Spec(
    name="SparseAdam",
    rule=adam,
    defaults=dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False, **_SPARSE_ADAM_FIXED),
    checks={
        **ADAM_CHECKS,
        "lr": check_positive,
        "eps": check_positive,
        **{name: check_fixed(value) for name, value in _SPARSE_ADAM_FIXED.items()},
    },
    slots=_SLOTS[:2],
    checkpoint_keys=("lr", "betas", "eps"),
    positional=("lr", "betas", "eps", "maximize"),
    fixed=tuple(_SPARSE_ADAM_FIXED),
    uses_step=True,
    corrected_moments=2,
    diagnostics=adam_diagnostics,
    sparse_grads="lazy",
    variants=(),
    cases=(),
)
"""torch's SparseAdam: Adam in the ε̂ form, stepped lazily on the rows of sparse gradients only
(:mod:`adamkit.torch._sparse`), without weight decay. It takes no dense gradient, so it is not
in :data:`adamkit.rules.SPECS`, whose optimizers every dense path runs."""
