"""NAdam (Dozat, 2016, Algorithm 2) with torch's momentum schedule and weight decay.

    μ_t = β1·(1 − ½·0.96^{tψ})
    g ← ±g (+ λθ, L2)          θ ← θ·(1 − γλ) (decoupled)
    m ← β1·m + (1−β1)·g
    v ← β2·v + (1−β2)·g²
    m̂ = μ_{t+1}·m / (1 − ∏_{i≤t+1} μ_i) + (1 − μ_t)·g / (1 − ∏_{i≤t} μ_i)
    v̂ = v / (1 − β2^t)
    θ ← θ − γ·m̂ / (√v̂ + ε)

The product of the schedule is kept in ``product_dtype``: float64 here; torch keeps it in its
default scalar dtype, float32 unless the default dtype is float64.
"""

import numpy as np

from tests.reference._float64 import float64_copy


def schedule(t, beta1, psi):
    return beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))


def nadam(
    params,
    grads,
    *,
    lr=2e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    momentum_decay=4e-3,
    decoupled_weight_decay=False,
    maximize=False,
    product_dtype=np.float64,
):
    """Run NAdam on ``params`` for ``len(grads)`` steps; return ``(params, state)``."""
    beta1, beta2 = betas
    theta = float64_copy(params)
    m = np.zeros_like(theta)  # First moment estimate.
    v = np.zeros_like(theta)  # Second raw moment estimate.
    product = product_dtype(1.0)  # ∏_{i≤t} μ_i
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
        mu, mu_next = schedule(t, beta1, momentum_decay), schedule(t + 1, beta1, momentum_decay)
        product = product_dtype(product * product_dtype(mu))
        m = beta1 * m + (1.0 - beta1) * g
        v = beta2 * v + (1.0 - beta2) * g * g
        m_hat = mu_next * m / (1.0 - float(product) * mu_next) + (1.0 - mu) * g / (1.0 - float(product))
        v_hat = v / (1.0 - beta2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    state = {"step": float(t), "mu_product": float(product), "exp_avg": m, "exp_avg_sq": v}
    return theta, state
