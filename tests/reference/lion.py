"""Lion (Chen et al., 2023, *Symbolic Discovery of Optimization Algorithms*, Algorithm 2).

    c ← β1·m + (1−β1)·g
    θ ← θ − γ·(sign(c) + λθ)        (the paper's decoupled decay, λ scaled by γ)
    m ← β2·m + (1−β2)·g

``decoupled_weight_decay=False`` adds λθ to the gradient instead (L2), and ``maximize``
negates the gradient first.
"""

import numpy as np

from tests.reference._float64 import float64_copy


def lion(
    params,
    grads,
    *,
    lr=1e-4,
    betas=(0.9, 0.99),
    weight_decay=0.0,
    decoupled_weight_decay=True,
    maximize=False,
):
    """Run Lion on ``params`` for ``len(grads)`` steps; return ``(params, state)``."""
    beta1, beta2 = betas
    theta = float64_copy(params)
    m = np.zeros_like(theta)  # The momentum.
    for grad in grads:
        g = float64_copy(grad)
        if maximize:
            g = -g
        if not decoupled_weight_decay:
            g = g + weight_decay * theta
        c = beta1 * m + (1.0 - beta1) * g  # The interpolation whose sign is the update.
        decay = weight_decay * theta if decoupled_weight_decay else 0.0
        theta = theta - lr * (np.sign(c) + decay)
        m = beta2 * m + (1.0 - beta2) * g
    return theta, {"exp_avg": m}
