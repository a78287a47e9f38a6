r"""ADOPT, Adam that normalises the gradient by the previous second moment.

Taniguchi et al., *ADOPT: Modified Adam Can Converge with Any β2 with the Optimal Rate*,
NeurIPS 2024, Algorithm 1 with the clipping of its Sec. 4 (the authors' code,
github.com/iShohei220/adopt, is the reference for the order of operations and weight decay).
"""

from typing import NamedTuple

import numpy as np

from adamkit.rules._common import directed_gradient, maximum, minimum, sqrt, with_l2_penalty
from adamkit.rules._spec import Quantities, Spec, StateSlot, Variant
from adamkit.rules.adam import ADAM_CHECKS


class AdoptState(NamedTuple):
    param: np.ndarray
    exp_avg: np.ndarray
    exp_avg_sq: np.ndarray


def clip_bound(step: float) -> float:
    r"""The clip bound :math:`k^{1/4}` of the step counted ``step`` (this step included): ``k =
    step - 1`` updates so far, this one included, since the first step only initialises."""
    return (step - 1) ** 0.25


def adopt(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    *,
    step: float,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.9999),
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> AdoptState:
    r"""One ADOPT step on one array; returns the new :class:`AdoptState`.

    The first step (``step`` = 1) only initialises :math:`v \leftarrow v + g^2` (from zero:
    :math:`g^2`). Every later step, the :math:`k`-th update (:math:`k` = ``step`` − 1):

    .. math::
        g &\leftarrow \pm\nabla f(\theta) \;(+\,\lambda\theta \text{ for L2 decay, also at the first step}) \\
        \theta &\leftarrow \theta - \gamma\lambda\theta \quad\text{(decoupled decay)} \\
        m &\leftarrow \beta_1 m + (1-\beta_1)\,
            \mathrm{clip}\!\left(\frac{g}{\max(\sqrt{v}, \epsilon)},\; k^{1/4}\right) \\
        \theta &\leftarrow \theta - \gamma m \\
        v &\leftarrow \beta_2 v + (1-\beta_2) g^2

    The gradient is normalised by the second moment of the steps before, which is what lets
    ADOPT converge with any :math:`\beta_2`; :math:`v` takes the new gradient only after the
    update. Nothing is corrected for bias.

    >>> import numpy as np
    >>> s = adopt(np.ones(2), np.full(2, 2.0), np.zeros(2), np.zeros(2), step=1)
    >>> s.param, s.exp_avg_sq
    (array([1., 1.]), array([4., 4.]))
    """
    beta1, beta2 = betas
    grad = directed_gradient(grad, maximize)
    if not decoupled_weight_decay:
        grad = with_l2_penalty(grad, param, weight_decay)
    if step == 1:
        # The first gradient only initialises the second moment estimate.
        return AdoptState(param, exp_avg, exp_avg_sq + grad * grad)
    if decoupled_weight_decay and weight_decay != 0:
        param = param - (lr * weight_decay) * param
    # The gradient normalised by the previous second moment, clipped to ±k^(1/4).
    clip = clip_bound(step)
    normed_grad = grad / maximum(sqrt(exp_avg_sq), eps)
    normed_grad = minimum(maximum(normed_grad, -clip), clip)
    # Momentum of the normalised gradients, β1 m + (1 - β1) ĝ in torch's lerp form.
    exp_avg = exp_avg + (1 - beta1) * (normed_grad - exp_avg)
    param = param - lr * exp_avg
    # Only now does the second moment estimate take the new gradient.
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
    return AdoptState(param, exp_avg, exp_avg_sq)


def adopt_diagnostics(state, param, lr, eps, **_):
    r"""ADOPT: :math:`\gamma` on the momentum :math:`m`, whose update is :math:`\gamma m`.

    The scale is :math:`\sqrt v`, which the next step normalises the gradient by (ε is its
    floor); the decoupled decay :math:`\gamma\lambda\theta` is not part of the update.
    """
    return Quantities(np.full_like(param, lr), lr * state["exp_avg"], np.sqrt(state["exp_avg_sq"]), eps)


ADOPT = Spec(
    name="ADOPT",
    rule=adopt,
    defaults=dict(
        lr=1e-3,
        betas=(0.9, 0.9999),
        eps=1e-6,
        weight_decay=0.0,
        decoupled_weight_decay=False,
        maximize=False,
    ),
    checks={key: ADAM_CHECKS[key] for key in ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay", "maximize")},
    slots=(StateSlot("exp_avg", code=np.int8), StateSlot("exp_avg_sq", code=np.uint8)),
    checkpoint_keys=("lr", "betas", "eps", "weight_decay"),
    positional=("lr", "betas", "eps", "weight_decay"),
    uses_step=True,
    diagnostics=adopt_diagnostics,
    sparse_grads="lazy",
    variants=(Variant("ADOPT", compare_lrs={"logreg": 1.0, "mlp": 3e-3, "cnn": 1e-2}),),
    cases=(
        ({"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-3, "weight_decay": 0.1}, {"maximize": True, "eps": 1e-6}),
        ({"lr": 3e-3, "weight_decay": 0.05, "decoupled_weight_decay": True}, {"betas": (0.5, 0.9), "weight_decay": 0.0}),
    ),
)
