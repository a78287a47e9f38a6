r"""Lion, evolved sign momentum.

Chen et al., *Symbolic Discovery of Optimization Algorithms*, NeurIPS 2023, Algorithm 2.
"""

from typing import NamedTuple

import numpy as np

from adamkit.rules._common import directed_gradient, sign, with_l2_penalty
from adamkit.rules.cautious import cautious_direction
from adamkit.rules._spec import Quantities, Spec, StateSlot, Variant, check_flag, check_pair
from adamkit.validation import check_nonnegative


class LionState(NamedTuple):
    param: np.ndarray
    exp_avg: np.ndarray


def lion(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    *,
    lr: float = 1e-4,
    betas: tuple[float, float] = (0.9, 0.99),
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = True,
    maximize: bool = False,
    cautious: bool = False,
) -> LionState:
    r"""One Lion step on one array; returns the new :class:`LionState`.

    .. math::
        g &\leftarrow \pm\nabla f(\theta) \;(+\,\lambda\theta \text{ for L2 decay}) \\
        c &\leftarrow \beta_1 m + (1-\beta_1) g \\
        \theta &\leftarrow \theta(1 - \gamma\lambda) - \gamma\,\mathrm{sign}(c)
            \quad\text{(decoupled decay; } \theta - \gamma\,\mathrm{sign}(c) \text{ for L2)} \\
        m &\leftarrow \beta_2 m + (1-\beta_2) g

    :math:`\mathrm{sign}(0) = 0`, and NaN stays NaN. The update has the same magnitude
    :math:`\gamma` in every coordinate, so Lion's learning rate is typically 3-10x smaller
    than AdamW's and its λ as much larger (the paper's Sec. 3.2). No scalar depends on the step.
    ``cautious=True`` (Liang et al., 2024) replaces :math:`\mathrm{sign}(c)` by
    :math:`\mathrm{sign}(c) \odot \phi / \max(\overline\phi, 10^{-3})` with
    :math:`\phi = \mathbb{1}[\mathrm{sign}(c) \odot g > 0]` over the whole array
    (:mod:`adamkit.rules.cautious`); the decoupled decay is not masked.

    >>> import numpy as np
    >>> s = lion(np.ones(2), np.array([2.0, -3.0]), np.zeros(2), lr=0.1)
    >>> np.round(s.param, 6), np.round(s.exp_avg, 6)
    (array([0.9, 1.1]), array([ 0.02, -0.03]))
    """
    beta1, beta2 = betas
    grad = directed_gradient(grad, maximize)
    if decoupled_weight_decay:
        param = param * (1 - lr * weight_decay)
    else:
        grad = with_l2_penalty(grad, param, weight_decay)
    # Interpolate the momentum and the gradient with β1; only the sign of it is the update.
    update = beta1 * exp_avg + (1 - beta1) * grad
    direction = cautious_direction(sign(update), grad) if cautious else sign(update)
    param = param - lr * direction
    # The momentum, an exponential average of gradients with its own, longer β2.
    exp_avg = beta2 * exp_avg + (1 - beta2) * grad
    return LionState(param, exp_avg)


def lion_diagnostics(state, param, lr, **_):
    r"""Lion: :math:`\gamma` for every element, the size of each coordinate's step.

    The update :math:`\gamma\,\mathrm{sign}(\beta_1 m + (1-\beta_1) g)` needs the gradient,
    which is not stored: ``None``.
    """
    return Quantities(np.full_like(param, lr), None, None, None)


LION = Spec(
    name="Lion",
    rule=lion,
    defaults=dict(
        lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, decoupled_weight_decay=True, maximize=False, cautious=False
    ),
    checks={
        "lr": check_nonnegative,
        "betas": check_pair,
        "weight_decay": check_nonnegative,
        "decoupled_weight_decay": check_flag,
        "maximize": check_flag,
        "cautious": check_flag,
    },
    slots=(StateSlot("exp_avg", code=np.int8),),
    # lion_pytorch.Lion's group keys, which its step reads.
    checkpoint_keys=("lr", "betas", "weight_decay"),
    positional=("lr", "betas", "weight_decay"),
    # A per-parameter count, which the rule never reads: it seeds the stochastic rounding of
    # bfloat16 state afresh at every step. lion_pytorch and adamkit before it save no step.
    step_optional=True,
    diagnostics=lion_diagnostics,
    sparse_grads="lazy",
    variants=(Variant("Lion", compare_lrs={"logreg": 0.1, "mlp": 1e-3, "cnn": 3e-3}),),
    cases=(
        ({"lr": 1e-2, "betas": (0.8, 0.95), "weight_decay": 0.1}, {"lr": 3e-3}),
        (
            {"lr": 1e-2, "weight_decay": 0.1, "decoupled_weight_decay": False, "maximize": True},
            {"betas": (0.95, 0.98)},
        ),
    ),
)
