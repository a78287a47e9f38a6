"""ADOPT (Taniguchi et al., NeurIPS 2024, Algorithm 1 with the clipped update of Sec. 4).

    t = 0:  v ← g0²                                   (θ and m unchanged)
    t ≥ 1:  m ← β1·m + (1−β1)·clip(g_t / max(√v, ε), t^¼)
            θ ← θ − γ·m
            v ← β2·v + (1−β2)·g_t²

Weight decay as the authors' code applies it: L2 (g ← g + λθ) at every step, the first
included; decoupled (θ ← θ − γλθ) only at the updates, before the normalisation.
"""

import numpy as np

from tests.reference._float64 import float64_copy


def adopt(params, grads, *, lr=1e-3, betas=(0.9, 0.9999), eps=1e-6, weight_decay=0.0,
          decoupled_weight_decay=False, maximize=False):
    """Run ADOPT on ``params`` for ``len(grads)`` steps; return ``(params, state)``."""
    beta1, beta2 = betas
    theta = float64_copy(params)
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, grad in enumerate(grads):
        g = float64_copy(grad)
        if maximize:
            g = -g
        if not decoupled_weight_decay:
            g = g + weight_decay * theta
        if t == 0:
            v = g * g
            continue
        if decoupled_weight_decay:
            theta = theta * (1.0 - lr * weight_decay)
        c = t**0.25
        m = beta1 * m + (1.0 - beta1) * np.clip(g / np.maximum(np.sqrt(v), eps), -c, c)
        theta = theta - lr * m
        v = beta2 * v + (1.0 - beta2) * g * g
    return theta, {"step": float(len(grads)), "exp_avg": m, "exp_avg_sq": v}
