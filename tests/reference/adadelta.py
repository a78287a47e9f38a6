"""Adadelta (Zeiler, 2012, Algorithm 1), with torch's learning-rate multiplier γ.

    g ← ±g + λθ
    E[g²] ← ρ·E[g²] + (1−ρ)·g²
    Δx ← √(E[Δx²] + ε) / √(E[g²] + ε) · g
    E[Δx²] ← ρ·E[Δx²] + (1−ρ)·Δx²
    θ ← θ − γ·Δx
"""

import numpy as np

from tests.reference._float64 import float64_copy


def adadelta(params, grads, *, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    """Run Adadelta on ``params`` for ``len(grads)`` steps; return ``(params, state)``."""
    theta = float64_copy(params)
    mean_sq_grad = np.zeros_like(theta)  # E[g²]
    mean_sq_delta = np.zeros_like(theta)  # E[Δx²]
    t = 0
    for grad in grads:
        t += 1
        g = float64_copy(grad)
        if maximize:
            g = -g
        g = g + weight_decay * theta
        mean_sq_grad = rho * mean_sq_grad + (1.0 - rho) * g * g
        delta = np.sqrt(mean_sq_delta + eps) / np.sqrt(mean_sq_grad + eps) * g
        mean_sq_delta = rho * mean_sq_delta + (1.0 - rho) * delta * delta
        theta = theta - lr * delta
    return theta, {"step": float(t), "square_avg": mean_sq_grad, "acc_delta": mean_sq_delta}
