"""AdaBelief (Zhuang et al., NeurIPS 2020, Algorithm 2), with decoupled weight decay by default
and the authors' package's RAdam rectification as an option.

    θ ← θ(1−γλ)                  (decoupled; else g ← ±g + λθ)
    m ← β1·m + (1−β1)·g
    s ← β2·s + (1−β2)·(g−m)² + ε
    ŝ ← max(ŝ, s) under AMSGrad, else s
    θ ← θ − γ/(1−β1^t) · m / (√(ŝ/(1−β2^t)) + ε)

Rectified (Liu et al., ICLR 2020): ρ∞ = 2/(1−β2) − 1, ρt = ρ∞ − 2tβ2^t/(1−β2^t);
while ρt < 5, θ ← θ − γ/(1−β1^t)·m; then θ ← θ − γ·rt/(1−β1^t) · m / (√ŝ + ε) with
rt = √((1−β2^t)(ρt−4)(ρt−2)ρ∞ / ((ρ∞−4)(ρ∞−2)ρt)).
"""

import math

import numpy as np

from tests.reference._float64 import float64_copy


def adabelief(
    params,
    grads,
    *,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-16,
    weight_decay=0.0,
    decoupled_weight_decay=True,
    amsgrad=False,
    rectify=False,
    maximize=False,
):
    """Run AdaBelief on ``params`` for ``len(grads)`` steps; return ``(params, state)``."""
    beta1, beta2 = betas
    theta = float64_copy(params)
    m = np.zeros_like(theta)  # Prediction of the gradient.
    s = np.zeros_like(theta)  # Belief: the average squared prediction error, plus ε.
    s_max = np.zeros_like(theta)
    t = 0
    for grad in grads:
        t += 1
        g = -float64_copy(grad) if maximize else float64_copy(grad)
        if decoupled_weight_decay:
            theta = theta * (1.0 - lr * weight_decay)
        else:
            g = g + weight_decay * theta
        m = beta1 * m + (1.0 - beta1) * g
        s = beta2 * s + (1.0 - beta2) * (g - m) ** 2 + eps
        s_max = np.maximum(s_max, s)
        s_hat = s_max if amsgrad else s
        m_hat = m / (1.0 - beta1**t)
        if not rectify:
            theta = theta - lr * m_hat / (np.sqrt(s_hat / (1.0 - beta2**t)) + eps)
            continue
        rho_inf = 2.0 / (1.0 - beta2) - 1.0
        rho_t = rho_inf - 2.0 * t * beta2**t / (1.0 - beta2**t)
        if rho_t < 5.0:
            theta = theta - lr * m_hat
        else:
            r_t = math.sqrt((1.0 - beta2**t) * (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            theta = theta - lr * r_t * m_hat / (np.sqrt(s_hat) + eps)
    state = {"step": float(t), "exp_avg": m, "exp_avg_var": s}
    if amsgrad:
        state["max_exp_avg_var"] = s_max
    return theta, state
