r"""NAdam: Adam with Nesterov momentum and a warming momentum schedule.

Dozat, *Incorporating Nesterov Momentum into Adam*, ICLR 2016 Workshop, Algorithm 2, with
torch.optim.NAdam's schedule :math:`\mu_t = \beta_1(1 - \tfrac12 0.96^{t\psi})`.

Besides ``step``, NAdam keeps one scalar per parameter, the product
:math:`\prod_{i\le t}\mu_i` (torch's ``state["mu_product"]``, a 0-d tensor of torch's scalar
dtype, float32 unless the default dtype is float64). The front ends advance it with
:func:`advanced_mu_product` exactly as torch does (``mu_product *= mu``, rounded to that
dtype), and the rule and the kernels read the advanced value as a double, as torch's
``mu_product.item()``: the rule takes it per tensor with the step count (:class:`NAdamCount`).
"""

from typing import NamedTuple

import numpy as np

from adamkit.rules._common import directed_gradient, sqrt, with_l2_penalty
from adamkit.rules._spec import Quantities, Spec, StateSlot, Variant, check_flag, check_pair, plain
from adamkit.rules.adam import ADAM_CHECKPOINT_KEYS
from adamkit.validation import check_nonnegative


class NAdamState(NamedTuple):
    param: np.ndarray
    exp_avg: np.ndarray
    exp_avg_sq: np.ndarray


class NAdamCount(NamedTuple):
    """What NAdam reads per tensor at a step: the step count and the momentum product through it."""

    step: float
    mu_product: float


class NAdamScalars(NamedTuple):
    """The per-step scalars of NAdam, computed once in double precision."""

    bias_correction2: float
    grad_step_size: float
    momentum_step_size: float


def momentum_schedule(step: float, beta1: float, momentum_decay: float) -> float:
    r""":math:`\mu_t = \beta_1 (1 - \tfrac12\, 0.96^{t\psi})`."""
    return beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))


def advanced_mu_product(mu_product, step: float, beta1: float, momentum_decay: float):
    r"""``mu_product`` (a 0-d array or tensor) times :math:`\mu_t`, in place and in its own
    dtype: torch's ``mu_product *= mu``, which rounds :math:`\mu_t` to that dtype first."""
    mu_product *= momentum_schedule(step, beta1, momentum_decay)
    return mu_product


def nadam_count(state, step: float, group) -> NAdamCount:
    """Advance ``state["mu_product"]`` to ``step`` (:func:`advanced_mu_product`) and return the
    rule's per-tensor argument: the front ends call it after counting the step."""
    beta1 = plain(group["betas"][0])
    mu_product = advanced_mu_product(state["mu_product"], step, beta1, plain(group["momentum_decay"]))
    return NAdamCount(step, float(mu_product))


def nadam_scalars(count: NAdamCount, lr: float, betas: tuple[float, float], momentum_decay: float) -> NAdamScalars:
    r"""Return :math:`(1-\beta_2^t,\; -\gamma\frac{1-\mu_t}{1-\prod_{i\le t}\mu_i},\;
    -\gamma\frac{\mu_{t+1}}{1-\prod_{i\le t+1}\mu_i})`, as torch's for-loop computes them."""
    beta1, beta2 = betas
    step, mu_product = count
    mu = momentum_schedule(step, beta1, momentum_decay)
    mu_next = momentum_schedule(step + 1, beta1, momentum_decay)
    return NAdamScalars(
        1 - beta2**step,
        -lr * (1.0 - mu) / (1.0 - mu_product),
        (-lr * mu_next) / (1.0 - mu_product * mu_next),
    )


def nadam(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    *,
    step: NAdamCount,
    lr: float = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> NAdamState:
    r"""One NAdam step on one array; returns the new :class:`NAdamState`.

    .. math::
        g &\leftarrow \pm\nabla f(\theta) \;(+\,\lambda\theta \text{ for L2 decay}) \\
        \theta &\leftarrow \theta(1 - \gamma\lambda) \quad\text{(decoupled decay, NAdamW)} \\
        \mu_t &= \beta_1\big(1 - \tfrac12 0.96^{t\psi}\big) \\
        m &\leftarrow \beta_1 m + (1-\beta_1) g \\
        v &\leftarrow \beta_2 v + (1-\beta_2) g^2 \\
        d &= \sqrt{v/(1-\beta_2^t)} + \epsilon \\
        \theta &\leftarrow \theta - \gamma\frac{1-\mu_t}{1-\prod_{i\le t}\mu_i}\frac{g}{d}
            - \gamma\frac{\mu_{t+1}}{1-\prod_{i\le t+1}\mu_i}\frac{m}{d}

    ``step`` is the :class:`NAdamCount` :math:`(t, \prod_{i\le t}\mu_i)`, already counting
    this step; :math:`\psi` is ``momentum_decay``. ``m`` and ``v`` are stored raw, as torch
    stores them.

    >>> import numpy as np
    >>> s = nadam(np.ones(2), np.ones(2), np.zeros(2), np.zeros(2), step=NAdamCount(1, 0.45007347), lr=0.1)
    >>> np.round(s.param, 4)
    array([0.8944, 0.8944])
    """
    beta1, beta2 = betas
    grad = directed_gradient(grad, maximize)
    if decoupled_weight_decay:
        param = param * (1 - lr * weight_decay)
    else:
        grad = with_l2_penalty(grad, param, weight_decay)
    # First moment estimate, β1 m + (1 - β1) g, in torch's lerp form.
    exp_avg = exp_avg + (1 - beta1) * (grad - exp_avg)
    # Second raw moment estimate.
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
    bias_correction2, grad_step_size, momentum_step_size = nadam_scalars(step, lr, betas, momentum_decay)
    denom = sqrt(exp_avg_sq / bias_correction2) + eps
    # Nesterov's look-ahead: the current gradient's share of the momentum, then the momentum
    # of the next step, each corrected by its own product of the schedule.
    param = param + grad_step_size * (grad / denom)
    param = param + momentum_step_size * (exp_avg / denom)
    return NAdamState(param, exp_avg, exp_avg_sq)


def nadam_diagnostics(state, step, lr, betas, eps, **_):
    r"""NAdam: :math:`\gamma/(\sqrt{\hat v}+\epsilon)`, with :math:`\hat v = v/(1-\beta_2^t)`.

    The update also takes the last gradient (Nesterov's look-ahead), which the state does not
    hold, so no update is reported.
    """
    _, beta2 = betas
    # Each count's bias correction as the rule computes it (Python's float power), for an array
    # of counts too (the states of several steps stacked).
    bias_correction2 = np.reshape([1 - beta2**count for count in np.ravel(step).tolist()], np.shape(step))
    scale = np.sqrt(state["exp_avg_sq"] / bias_correction2)
    return Quantities(lr / (scale + eps), None, scale, eps)


NADAM = Spec(
    name="NAdam",
    rule=nadam,
    defaults=dict(
        lr=2e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        momentum_decay=4e-3,
        decoupled_weight_decay=False,
        maximize=False,
    ),
    checks={
        "lr": check_nonnegative,
        "betas": check_pair,
        "eps": check_nonnegative,
        "weight_decay": check_nonnegative,
        "momentum_decay": check_nonnegative,
        "decoupled_weight_decay": check_flag,
        "maximize": check_flag,
    },
    slots=(StateSlot("exp_avg", code=np.int8), StateSlot("exp_avg_sq", code=np.uint8)),
    checkpoint_keys=(*ADAM_CHECKPOINT_KEYS, "momentum_decay"),
    positional=("lr", "betas", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay"),
    uses_step=True,
    corrected_moments=2,
    diagnostics=nadam_diagnostics,
    sparse_grads="lazy",
    scalar_state=(StateSlot("mu_product", fill=1.0),),
    advance=nadam_count,
    variants=(Variant("NAdam", compare_lrs={"logreg": 0.3, "mlp": 3e-3, "cnn": 1e-2}),),
    cases=(
        ({"lr": 1e-2, "weight_decay": 0.1, "momentum_decay": 0.05}, {"betas": (0.8, 0.99)}),
        (
            {"lr": 1e-2, "weight_decay": 0.05, "decoupled_weight_decay": True, "maximize": True, "eps": 1e-3},
            {"momentum_decay": 0.0},
        ),
    ),
)
