"""Adamax (Kingma & Ba, 2015, Section 7.1, Algorithm 2), with torch's ε inside the max.

    g ← ±g + λθ
    m ← β1·m + (1−β1)·g
    u ← max(β2·u, |g| + ε)
    θ ← θ − γ/(1−β1^t) · m / u
"""

import numpy as np

from tests.reference._float64 import float64_copy


def adamax(params, grads, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False):
    """Run Adamax on ``params`` for ``len(grads)`` steps; return ``(params, state)``."""
    beta1, beta2 = betas
    theta = float64_copy(params)
    m = np.zeros_like(theta)  # First moment estimate.
    u = np.zeros_like(theta)  # Exponentially weighted infinity norm.
    t = 0
    for grad in grads:
        t += 1
        g = float64_copy(grad)
        if maximize:
            g = -g
        g = g + weight_decay * theta
        m = beta1 * m + (1.0 - beta1) * g
        u = np.maximum(beta2 * u, np.abs(g) + eps)
        theta = theta - (lr / (1.0 - beta1**t)) * m / u
    return theta, {"step": float(t), "exp_avg": m, "exp_inf": u}
