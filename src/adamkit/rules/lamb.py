r"""LAMB, Adam with a layer-wise trust ratio.

You, Li, Reddi, Hseu, Kumar, Bhojanapalli, Song, Demmel, Keutzer & Hsieh, *Large Batch
Optimization for Deep Learning: Training BERT in 76 minutes*, ICLR 2020, Algorithm 2, as
``optax.lamb`` implements it (the norm scaling :math:`\phi` is the identity).
"""

import math
from typing import NamedTuple

import numpy as np

from adamkit.rules._common import directed_gradient, sqrt, with_l2_penalty
from adamkit.rules._spec import Quantities, Spec, StateSlot, Variant, check_flag, check_pair
from adamkit.validation import as_float, check_nonnegative

NORM_BLOCK = 4096
"""The block of the norms' fixed order of summation (:func:`adamkit.rules.lamb.squared_norm`)."""

NORM_LANES = 16
"""The partial sums of each block (:func:`adamkit.rules.lamb.squared_norm`), whatever a CPU's
vector width: one per residue of the element index modulo ``NORM_LANES``."""


class LambState(NamedTuple):
    param: np.ndarray
    exp_avg: np.ndarray
    exp_avg_sq: np.ndarray


def squared_norm(x) -> float:
    r""":math:`\|x\|^2` over the whole array, in float64 and in a fixed order.

    Each element is squared in float64. Within each block of ``NORM_BLOCK`` consecutive
    elements, ``NORM_LANES`` partial sums each add, one by one in element order, the squares
    of the elements whose index is their lane modulo ``NORM_LANES``; a fixed tree then adds
    the lanes, halving them (lane ``j`` plus lane ``j + w/2`` of ``w`` lanes, until one is
    left). The blocks' sums are added one by one, in block order. The C kernels sum in this
    order, which vector registers of 1, 4, 8 or 16 lanes follow alike, so their bits equal the
    rule's on any instruction set and thread count (each thread sums whole blocks). A list of
    torch tensors (the device path) sums each tensor with torch's own reduction in float64
    instead.
    """
    if hasattr(x, "squared_norms"):
        return x.squared_norms()
    squares = np.square(np.ravel(x).astype(np.float64))
    if squares.size == 0:
        return 0.0
    blocks = np.zeros(-(-squares.size // NORM_BLOCK) * NORM_BLOCK)
    blocks[: squares.size] = squares
    # np.cumsum adds strictly in order: its last row is each lane's sequential sum.
    lanes = np.cumsum(blocks.reshape(-1, NORM_BLOCK // NORM_LANES, NORM_LANES), axis=1)[:, -1]
    while lanes.shape[1] > 1:
        half = lanes.shape[1] // 2
        lanes = lanes[:, :half] + lanes[:, half:]
    return float(np.cumsum(lanes[:, 0])[-1])


def trust_ratio(param_squared_norm, update_squared_norm, trust_clip=None):
    r"""The layer-wise trust ratio :math:`\|\theta\| / \|r\|`, in float64.

    It is 1 where either norm is 0 (as in ``optax.scale_by_trust_ratio``): a zero parameter
    (a fresh bias) takes a plain Adam step, a zero update leaves the parameter as it is. With
    ``trust_clip`` every ratio, those set to 1 included, is at most ``trust_clip`` (as timm's
    ``Lamb(trust_clip=True)`` clips at 1; optax has no clip, and pytorch_optimizer's ``Lamb``
    clamps ``‖θ‖`` at 10 instead); a NaN ratio stays NaN.
    """
    if hasattr(param_squared_norm, "trust_ratios"):
        return param_squared_norm.trust_ratios(update_squared_norm, trust_clip)
    if param_squared_norm == 0 or update_squared_norm == 0:
        ratio = 1.0
    else:
        ratio = math.sqrt(param_squared_norm) / math.sqrt(update_squared_norm)
    return trust_clip if trust_clip is not None and ratio > trust_clip else ratio


def lamb(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    *,
    step: float,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    trust_clip: float | None = None,
    maximize: bool = False,
) -> LambState:
    r"""One LAMB step on one array (one layer); returns the new :class:`LambState`.

    .. math::
        g &\leftarrow \pm\nabla f(\theta) \\
        m &\leftarrow \beta_1 m + (1-\beta_1) g \\
        v &\leftarrow \beta_2 v + (1-\beta_2) g^2 \\
        r &\leftarrow \frac{m/(1-\beta_1^t)}{\sqrt{v/(1-\beta_2^t)} + \epsilon} + \lambda\theta \\
        \theta &\leftarrow \theta - \gamma\,\frac{\|\theta\|}{\|r\|}\, r

    The norms are over the whole array (:func:`adamkit.rules.lamb.squared_norm`), and the ratio is 1 where
    either is 0 (:func:`adamkit.rules.lamb.trust_ratio`), at most ``trust_clip`` when it is given. Unlike
    ``pytorch_optimizer.Lamb``, both moments are bias-corrected inside the ratio's update, so
    :math:`\gamma` multiplies the ratio alone.

    >>> import numpy as np
    >>> s = lamb(np.full(2, 3.0), np.ones(2), np.zeros(2), np.zeros(2), step=1, lr=0.1)
    >>> np.round(s.param, 6)
    array([2.7, 2.7])
    """
    beta1, beta2 = betas
    grad = directed_gradient(grad, maximize)
    # First moment estimate.
    exp_avg = beta1 * exp_avg + (1 - beta1) * grad
    # Second raw moment estimate.
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
    # Both bias-corrected, then the Adam ratio, with decoupled weight decay added.
    bias_correction1, bias_correction2 = 1 - beta1**step, 1 - beta2**step
    update = (exp_avg / bias_correction1) / (sqrt(exp_avg_sq / bias_correction2) + eps)
    update = with_l2_penalty(update, param, weight_decay)
    # Layer-wise adaptation: the step is scaled by the trust ratio ||θ|| / ||r||.
    step_size = lr * trust_ratio(squared_norm(param), squared_norm(update), trust_clip)
    param = param - step_size * update
    return LambState(param, exp_avg, exp_avg_sq)


def lamb_diagnostics(state, step, lr, betas, eps, **_):
    r"""LAMB: :math:`\gamma/(\sqrt{\hat v}+\epsilon)` on :math:`\hat m`, before the trust ratio;
    the scale is :math:`\sqrt{\hat v}`. The last update is not reported: it needs the trust
    ratio, which needs the parameter before the step, not kept in the state."""
    _, beta2 = betas
    scale = np.sqrt(state["exp_avg_sq"] / (1 - np.power(beta2, step)))
    return Quantities(lr / (scale + eps), None, scale, eps)


def check_trust_clip(name, value):
    """``None``, or a positive number."""
    if value is None:
        return
    number = as_float(name, value)
    if not (0.0 < number and math.isfinite(number)):
        raise ValueError(f"Invalid {name}: {value!r} (must be None or a finite number > 0)")


LAMB = Spec(
    name="LAMB",
    rule=lamb,
    defaults=dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, trust_clip=None, maximize=False),
    checks={
        "lr": check_nonnegative,
        "betas": check_pair,
        "eps": check_nonnegative,
        "weight_decay": check_nonnegative,
        "trust_clip": check_trust_clip,
        "maximize": check_flag,
    },
    slots=(StateSlot("exp_avg"), StateSlot("exp_avg_sq")),
    checkpoint_keys=("lr", "betas", "eps", "weight_decay"),
    positional=("lr", "betas", "eps", "weight_decay"),
    uses_step=True,
    corrected_moments=2,
    norm_pass=True,
    diagnostics=lamb_diagnostics,
    variants=(Variant("LAMB", compare_lrs={"logreg": 0.1, "mlp": 0.03, "cnn": 0.03}),),
    cases=(
        ({}, {"lr": 1e-2}),
        ({"lr": 1e-2, "weight_decay": 0.1, "betas": (0.5, 0.9), "trust_clip": 0.5, "maximize": True}, {"eps": 1e-3}),
    ),
)
