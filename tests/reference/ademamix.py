"""AdEMAMix (Pagliardini, Ablin & Grangier, 2024, Algorithm 1), with the schedulers of its
Section 3 for α and β3 when T_{α,β3} is given:

    g ← ±g (+ λθ, L2 decay)
    m1 ← β1·m1 + (1−β1)·g,         m̂1 = m1 / (1−β1^t)
    m2 ← β3(t)·m2 + (1−β3(t))·g
    ν  ← β2·ν + (1−β2)·g²,          ν̂ = ν / (1−β2^t)
    θ  ← θ − η·((m̂1 + α(t)·m2) / (√ν̂ + ε) + λθ)          (decoupled decay, the paper's)

    α(t) = min(t·α / T, α)
    β3(t) = min(exp(ln β1 · ln β3 / ((1 − t/T)·ln β3 + (t/T)·ln β1)), β3)
"""

import math

import numpy as np

from tests.reference._float64 import float64_copy


def alpha_at(t, alpha, warmup):
    return alpha if warmup is None else min(t * alpha / warmup, alpha)


def beta3_at(t, beta1, beta3, warmup):
    if warmup is None:
        return beta3
    ratio = t / warmup
    exponent = math.log(beta1) * math.log(beta3) / ((1.0 - ratio) * math.log(beta3) + ratio * math.log(beta1))
    return min(math.exp(exponent), beta3)


def ademamix(
    params,
    grads,
    *,
    lr=1e-3,
    betas=(0.9, 0.999, 0.9999),
    alpha=5.0,
    t_alpha_beta3=None,
    eps=1e-8,
    weight_decay=0.0,
    decoupled_weight_decay=True,
    maximize=False,
):
    """Run AdEMAMix on ``params`` for ``len(grads)`` steps; return ``(params, state)``."""
    beta1, beta2, beta3 = betas
    theta = float64_copy(params)
    m1 = np.zeros_like(theta)  # Fast EMA.
    m2 = np.zeros_like(theta)  # Slow EMA.
    nu = np.zeros_like(theta)  # Second moment.
    t = 0
    for grad in grads:
        t += 1
        g = float64_copy(grad)
        if maximize:
            g = -g
        if not decoupled_weight_decay:
            g = g + weight_decay * theta
        m1 = beta1 * m1 + (1.0 - beta1) * g
        b3 = beta3_at(t, beta1, beta3, t_alpha_beta3)
        m2 = b3 * m2 + (1.0 - b3) * g
        nu = beta2 * nu + (1.0 - beta2) * g * g
        m1_hat = m1 / (1.0 - beta1**t)
        nu_hat = nu / (1.0 - beta2**t)
        step = (m1_hat + alpha_at(t, alpha, t_alpha_beta3) * m2) / (np.sqrt(nu_hat) + eps)
        if decoupled_weight_decay:
            step = step + weight_decay * theta
        theta = theta - lr * step
    return theta, {"step": float(t), "exp_avg_fast": m1, "exp_avg_slow": m2, "exp_avg_sq": nu}
