"""LAMB (You et al., ICLR 2020, Algorithm 2), with φ the identity, as optax.lamb runs it.

    m ← β1·m + (1−β1)·g
    v ← β2·v + (1−β2)·g²
    m̂ ← m/(1−β1^t),  v̂ ← v/(1−β2^t)
    r ← m̂/(√v̂ + ε) + λθ
    θ ← θ − η·(‖θ‖/‖r‖)·r      (the ratio 1 where a norm is 0; at most trust_clip if given)
"""

import numpy as np

from tests.reference._float64 import float64_copy


def lamb(params, grads, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, trust_clip=None, maximize=False):
    """Run LAMB on ``params`` (one layer) for ``len(grads)`` steps; return ``(params, state)``."""
    beta1, beta2 = betas
    x = float64_copy(params)
    m = np.zeros_like(x)  # First moment.
    v = np.zeros_like(x)  # Second moment.
    t = 0
    for grad in grads:
        t += 1
        g = -float64_copy(grad) if maximize else float64_copy(grad)
        m = beta1 * m + (1.0 - beta1) * g
        v = beta2 * v + (1.0 - beta2) * g * g
        m_hat = m / (1.0 - beta1**t)
        v_hat = v / (1.0 - beta2**t)
        r = m_hat / (np.sqrt(v_hat) + eps) + weight_decay * x
        x_norm, r_norm = np.linalg.norm(x), np.linalg.norm(r)
        ratio = x_norm / r_norm if x_norm > 0 and r_norm > 0 else 1.0
        if trust_clip is not None:
            ratio = min(ratio, trust_clip)
        x = x - lr * ratio * r
    return x, {"step": float(t), "exp_avg": m, "exp_avg_sq": v}
