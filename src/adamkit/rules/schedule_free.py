r"""Schedule-Free AdamW: no learning-rate schedule, an average of the iterates instead.

Defazio, Yang, Mehta, Mishchenko, Khaled and Cutkosky, *The Road Less Scheduled*, NeurIPS 2024,
Algorithm 1 (the AdamW variant), as the authors' package ``schedulefree`` (its
``AdamWScheduleFree``) computes it: the same state, group keys and order of operations.

Three sequences: :math:`z` (the base, fast sequence), :math:`x` (the weighted average of the
:math:`z`, where the model is evaluated) and :math:`y = (1-\beta_1)z + \beta_1 x`, where the
gradient is taken. During training the parameters hold :math:`y` and the state holds :math:`z`
(``state["z"]``); :math:`x` is never stored, since :math:`x = (y - (1-\beta_1)z)/\beta_1`:
:func:`to_x` and :func:`to_y` move the parameters between the two points (the optimizers'
``eval()`` and ``train()``).

The averaging weight :math:`c_{k+1}` depends on the whole group (its ``k``, ``lr_max`` and
``weight_sum``, kept in the parameter group as ``schedulefree`` keeps them), so it is computed
once per group and step by ``advance_group``, which the front ends call through
``Spec.advance_group``; the rule takes it per tensor as its ``step``
(:class:`ScheduleFreeCount`).
"""

from typing import NamedTuple

import numpy as np

from adamkit.rules._common import copy, sqrt
from adamkit.rules._spec import Quantities, Spec, StateSlot, Variant, check_pair, plain
from adamkit.validation import as_float, check_nonnegative


class ScheduleFreeState(NamedTuple):
    param: np.ndarray
    z: np.ndarray
    exp_avg_sq: np.ndarray


class ScheduleFreeCount(NamedTuple):
    """What every tensor of a group reads at a step: the group's step count :math:`k+1` (this
    step included), the scheduled learning rate and the averaging weight :math:`c_{k+1}`."""

    step: float
    scheduled_lr: float
    ckp1: float


GROUP_STATE = {"k": 0, "train_mode": False, "weight_sum": 0.0, "lr_max": -1.0, "scheduled_lr": 0.0}
"""The keys each parameter group keeps besides its hyperparameters, with their initial values,
as ``schedulefree.AdamWScheduleFree`` keeps them: the step count ``k``, whether the parameters
hold :math:`y` (``train_mode``), the sum of the averaging weights, the largest scheduled
learning rate so far and the last one."""


def advance_group(group) -> ScheduleFreeCount:
    r"""Advance ``group``'s ``k``, ``scheduled_lr``, ``lr_max`` and ``weight_sum`` in place by one
    step, as ``schedulefree`` does, and return what the rule takes for every tensor of the group.

    .. math::
        \gamma_k &= \gamma\min\!\big(1, \tfrac{k+1}{\text{warmup}}\big), \qquad
        \gamma_{\max} = \max_{i\le k}\gamma_i \\
        w_k &= (k+1)^r\,\gamma_{\max}^{p}, \qquad
        c_{k+1} = w_k \Big/ \sum_{i\le k} w_i \quad (0 \text{ if the sum is } 0)
    """
    k = group["k"]
    warmup_steps = group["warmup_steps"]
    # Linear warmup in place of a schedule.
    schedule = (k + 1) / warmup_steps if k < warmup_steps else 1.0
    lr = plain(group["lr"]) * schedule
    group["scheduled_lr"] = lr
    lr_max = group["lr_max"] = max(lr, group["lr_max"])
    # The weight of this iterate in the average x.
    weight = ((k + 1) ** group["r"]) * (lr_max ** group["weight_lr_power"])
    weight_sum = group["weight_sum"] = group["weight_sum"] + weight
    ckp1 = weight / weight_sum if weight_sum != 0 else 0.0
    group["k"] = k + 1
    return ScheduleFreeCount(k + 1, lr, ckp1)


def lerp(start, end, weight: float):
    r""":math:`\text{start} + w(\text{end} - \text{start})` as ``torch.lerp`` computes it: from
    ``end`` backwards when :math:`|w| \ge 0.5`, so that :math:`w = 1` gives ``end`` exactly."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


def to_x(y, z, beta1: float):
    r"""The evaluation point from the training point: :math:`x = y + (1 - 1/\beta_1)(z - y)`
    (``schedulefree``'s ``eval()``). It raises ``ZeroDivisionError`` for :math:`\beta_1 = 0`,
    where :math:`y = z` holds nothing of :math:`x`, as ``schedulefree`` does."""
    return lerp(y, z, 1 - 1 / beta1)


def to_y(x, z, beta1: float):
    r"""The training point from the evaluation point: :math:`y = x + (1-\beta_1)(z - x)`
    (``schedulefree``'s ``train()``)."""
    return lerp(x, z, 1 - beta1)


def eval_point(param, state, group):
    """The parameter at x, from its value at y and its ``state``; ``None`` before its first step."""
    return to_x(param, state["z"], plain(group["betas"][0])) if "z" in state else None


def train_point(param, state, group):
    """The parameter at y, from its value at x and its ``state``; ``None`` before its first step."""
    return to_y(param, state["z"], plain(group["betas"][0])) if "z" in state else None


def schedule_free_adamw(
    param: np.ndarray,
    grad: np.ndarray,
    z: np.ndarray | None,
    exp_avg_sq: np.ndarray,
    *,
    step: ScheduleFreeCount,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> ScheduleFreeState:
    r"""One Schedule-Free AdamW step on one array holding :math:`y`; returns the new
    :class:`ScheduleFreeState`.

    .. math::
        v &\leftarrow \beta_2 v + (1-\beta_2) g^2 \\
        u &= \frac{g}{\sqrt{v/(1-\beta_2^{k+1})} + \epsilon} + \lambda y \\
        y &\leftarrow (1 - c_{k+1})\,y + c_{k+1} z
            + \gamma_k\big(\beta_1(1 - c_{k+1}) - 1\big)\,u \\
        z &\leftarrow z - \gamma_k u

    ``step`` is the group's :class:`ScheduleFreeCount` :math:`(k+1, \gamma_k, c_{k+1})`
    (``advance_group``). The update of :math:`y` is that of :math:`x \leftarrow
    (1-c_{k+1})x + c_{k+1}z` and :math:`y = (1-\beta_1)z + \beta_1 x`, without :math:`x`.
    Weight decay is taken at :math:`y`. ``z`` is ``None`` before the first step, and starts
    as the parameter.

    >>> import numpy as np
    >>> s = schedule_free_adamw(np.ones(2), np.ones(2), None, np.zeros(2), step=ScheduleFreeCount(1, 0.1, 1.0))
    >>> np.round(s.param, 4), np.round(s.z, 4)
    (array([0.9, 0.9]), array([0.9, 0.9]))
    """
    beta1, beta2 = betas
    count, lr, ckp1 = step
    if z is None:
        z = copy(param)
    # Second raw moment estimate, corrected for bias in the denominator.
    exp_avg_sq = exp_avg_sq * beta2 + (1 - beta2) * grad * grad
    denom = sqrt(exp_avg_sq / (1 - beta2**count)) + eps
    # The normalised gradient, and the weight decay taken at y.
    normed_grad = grad / denom
    if weight_decay != 0:
        normed_grad = normed_grad + weight_decay * param
    # y moves with the average x towards z, then with the gradient step of x and z.
    param = lerp(param, z, ckp1)
    param = param + (lr * (beta1 * (1 - ckp1) - 1)) * normed_grad
    # The base sequence takes a plain step.
    z = z - lr * normed_grad
    return ScheduleFreeState(param, z, exp_avg_sq)


def schedule_free_diagnostics(state, param, betas, eps, k, scheduled_lr, **_):
    r"""Schedule-Free AdamW: :math:`\gamma_k/(\sqrt{\hat v}+\epsilon)` on the gradient of the base
    sequence :math:`z`, with :math:`\hat v = v/(1-\beta_2^k)` at the group's count ``k`` and
    its last scheduled learning rate. The parameters' update mixes :math:`z` in, which the
    step size does not describe, so no update is reported."""
    _, beta2 = betas
    scale = np.sqrt(state["exp_avg_sq"] / (1 - beta2**k)) if k > 0 else np.sqrt(state["exp_avg_sq"])
    return Quantities(scheduled_lr / (scale + eps), None, scale, eps)


def check_warmup_steps(name, value):
    """A whole number of steps >= 0."""
    check_nonnegative(name, value)
    if isinstance(value, bool) or float(value) != int(float(value)):
        raise ValueError(f"Invalid {name}: {value!r} (must be a whole number of steps >= 0)")


def check_real(name, value):
    """A finite real number."""
    number = as_float(name, value)
    if not np.isfinite(number):
        raise ValueError(f"Invalid {name}: {value!r} (must be a finite number)")


ADAMW_SCHEDULE_FREE = Spec(
    name="AdamWScheduleFree",
    rule=schedule_free_adamw,
    defaults=dict(
        lr=0.0025,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        warmup_steps=0,
        r=0.0,
        weight_lr_power=2.0,
    ),
    checks={
        "lr": check_nonnegative,
        "betas": check_pair,
        "eps": check_nonnegative,
        "weight_decay": check_nonnegative,
        "warmup_steps": check_warmup_steps,
        "r": check_real,
        "weight_lr_power": check_real,
    },
    slots=(StateSlot("z", fill=None), StateSlot("exp_avg_sq")),
    checkpoint_keys=("lr", "betas", "eps", "weight_decay", "warmup_steps", "r", "weight_lr_power", *GROUP_STATE),
    positional=("lr", "betas", "eps", "weight_decay", "warmup_steps", "r", "weight_lr_power"),
    counts_steps=False,
    uses_step=True,
    diagnostics=schedule_free_diagnostics,
    group_state=GROUP_STATE,
    advance_group=advance_group,
    eval_point=eval_point,
    train_point=train_point,
    full_precision_state=(
        "z is not a moment but the iterate the weights follow (y and x average it), so 8-bit "
        "codes would move the weights by up to 1/127 of each block's largest |z| at every step, "
        "and bfloat16 would make them bfloat16 weights; exp_avg_sq alone could be compact, "
        "beside a full-precision z, which the kernels do not step"
    ),
    variants=(
        Variant(
            "AdamWScheduleFree",
            compare="schedulefree",
            compare_lrs={"logreg": 0.1, "mlp": 3e-3, "cnn": 1e-2},
            trajectories="schedulefree",
            bench=False,
        ),
    ),
    cases=(
        ({"lr": 1e-2, "betas": (0.8, 0.99), "weight_decay": 0.1, "warmup_steps": 5}, {"r": 1.0, "weight_decay": 0.0}),
        ({"lr": 3e-3, "eps": 1e-3, "r": 0.5, "weight_lr_power": 0.0}, {"betas": (0.5, 0.9), "warmup_steps": 3}),
    ),
)
