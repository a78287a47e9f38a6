"""RMSprop (Hinton, Coursera lecture 6e), centered as in Graves (2013, eq. 38–40), with momentum.

    g ← ±g + λθ
    v ← α·v + (1−α)·g²
    ḡ ← α·ḡ + (1−α)·g                        (centered only)
    d ← √(v − ḡ²) + ε   (centered)   or   d ← √v + ε
    b ← μ·b + g/d,  θ ← θ − γ·b             (μ > 0; b starts at zero)
    θ ← θ − γ·g/d                            (μ = 0)
"""

import numpy as np

from tests.reference._float64 import float64_copy


def rmsprop(
    params,
    grads,
    *,
    lr=1e-2,
    alpha=0.99,
    eps=1e-8,
    weight_decay=0.0,
    momentum=0.0,
    centered=False,
    maximize=False,
):
    """Run RMSprop on ``params`` for ``len(grads)`` steps; return ``(params, state)``."""
    theta = float64_copy(params)
    v = np.zeros_like(theta)  # Running mean of squared gradients.
    g_bar = np.zeros_like(theta)  # Running mean of gradients (centered only).
    b = np.zeros_like(theta)  # Momentum buffer.
    t = 0
    for grad in grads:
        t += 1
        g = float64_copy(grad)
        if maximize:
            g = -g
        g = g + weight_decay * theta
        v = alpha * v + (1.0 - alpha) * g * g
        if centered:
            g_bar = alpha * g_bar + (1.0 - alpha) * g
            d = np.sqrt(v - g_bar * g_bar) + eps
        else:
            d = np.sqrt(v) + eps
        if momentum > 0.0:
            b = momentum * b + g / d
            theta = theta - lr * b
        else:
            theta = theta - lr * g / d
    state = {"step": float(t), "square_avg": v}
    if momentum > 0.0:
        state["momentum_buffer"] = b
    if centered:
        state["grad_avg"] = g_bar
    return theta, state
