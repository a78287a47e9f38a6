"""Adagrad (Duchi, Hazan & Singer, 2011, diagonal form), with torch's decay and initial sum.

    g ← ±g + λθ
    γ_t ← γ / (1 + (t−1)·lr_decay)
    s ← s + g²                 (s starts at initial_accumulator_value)
    θ ← θ − γ_t · g / (√s + ε)
"""

import numpy as np

from tests.reference._float64 import float64_copy


def adagrad(
    params,
    grads,
    *,
    lr=1e-2,
    lr_decay=0.0,
    weight_decay=0.0,
    initial_accumulator_value=0.0,
    eps=1e-10,
    maximize=False,
):
    """Run Adagrad on ``params`` for ``len(grads)`` steps; return ``(params, state)``."""
    theta = float64_copy(params)
    s = np.full_like(theta, initial_accumulator_value)  # Sum of squared gradients.
    t = 0
    for grad in grads:
        t += 1
        g = float64_copy(grad)
        if maximize:
            g = -g
        g = g + weight_decay * theta
        decayed_lr = lr / (1.0 + (t - 1) * lr_decay)
        s = s + g * g
        theta = theta - decayed_lr * g / (np.sqrt(s) + eps)
    return theta, {"step": float(t), "sum": s}
