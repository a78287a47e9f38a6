"""RAdam (Liu et al., 2020, Algorithm 2), as torch.optim.RAdam defines it.

With torch's conventions: ``maximize`` negates g; L2 weight decay adds λθ to g, decoupled
decay (RAdamW) shrinks θ by 1 − γλ first; ε is added to √v; the adaptive step is taken once
the approximated SMA is longer than 5 (the paper says 4)::

    g ← ±g + λθ                                 (L2)      θ ← θ(1 − γλ)   (decoupled)
    m ← β1·m + (1−β1)·g
    v ← β2·v + (1−β2)·g²
    m̂ ← m / (1−β1^t)
    ρ∞ ← 2/(1−β2) − 1
    ρt ← ρ∞ − 2t·β2^t / (1−β2^t)
    if ρt > 5:
        l ← √(1−β2^t) / (√v + ε)
        r ← √((ρt−4)(ρt−2)ρ∞ / ((ρ∞−4)(ρ∞−2)ρt))
        θ ← θ − γ·m̂·r·l
    else:
        θ ← θ − γ·m̂
"""

import math

import numpy as np

from tests.reference._float64 import float64_copy


def radam(
    params,
    grads,
    *,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
):
    """Run RAdam on ``params`` for ``len(grads)`` steps; return ``(params, state)``."""
    beta1, beta2 = betas
    theta = float64_copy(params)
    m = np.zeros_like(theta)  # First moment estimate.
    v = np.zeros_like(theta)  # Second raw moment estimate.
    rho_inf = 2.0 / (1.0 - beta2) - 1.0  # Maximum length of the approximated SMA.
    t = 0
    for grad in grads:
        t += 1
        g = float64_copy(grad)
        if maximize:
            g = -g
        if decoupled_weight_decay:
            theta = theta * (1.0 - lr * weight_decay)
        else:
            g = g + weight_decay * theta
        m = beta1 * m + (1.0 - beta1) * g
        v = beta2 * v + (1.0 - beta2) * g * g
        m_hat = m / (1.0 - beta1**t)
        rho_t = rho_inf - 2.0 * t * beta2**t / (1.0 - beta2**t)
        if rho_t > 5.0:
            adaptive = math.sqrt(1.0 - beta2**t) / (np.sqrt(v) + eps)
            rect = math.sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
            theta = theta - lr * m_hat * rect * adaptive
        else:
            theta = theta - lr * m_hat
    return theta, {"step": float(t), "exp_avg": m, "exp_avg_sq": v}
