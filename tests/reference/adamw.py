"""AdamW (Loshchilov & Hutter, 2019, Algorithm 2), with torch's fixed schedule η_t = 1.

The decay is decoupled from the gradient: θ shrinks by (1 − γλ) before the moment update,
and the moments see only the (possibly negated) gradient::

    θ ← θ·(1 − γλ)
    g ← ±g
    m ← β1·m + (1−β1)·g
    v ← β2·v + (1−β2)·g²
    v̂max ← max(v̂max, v)                       (AMSGrad only, as torch offers it)
    θ ← θ − γ/(1−β1^t) · m / (√v/√(1−β2^t) + ε)
"""

import math

import numpy as np

from tests.reference._float64 import float64_copy


def adamw(
    params,
    grads,
    *,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=1e-2,
    amsgrad=False,
    maximize=False,
):
    """Run AdamW on ``params`` for ``len(grads)`` steps; return ``(params, state)``."""
    beta1, beta2 = betas
    theta = float64_copy(params)
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    v_max = np.zeros_like(theta)
    t = 0
    for grad in grads:
        t += 1
        g = float64_copy(grad)
        if maximize:
            g = -g
        theta = theta * (1.0 - lr * weight_decay)  # Decoupled weight decay.
        m = beta1 * m + (1.0 - beta1) * g
        v = beta2 * v + (1.0 - beta2) * g * g
        v_max = np.maximum(v_max, v)
        second = v_max if amsgrad else v
        m_hat = m / (1.0 - beta1**t)
        v_hat_sqrt = np.sqrt(second) / math.sqrt(1.0 - beta2**t)
        theta = theta - lr * m_hat / (v_hat_sqrt + eps)
    state = {"step": float(t), "exp_avg": m, "exp_avg_sq": v}
    if amsgrad:
        state["max_exp_avg_sq"] = v_max
    return theta, state
