"""Cautious Adam/AdamW, Lion and AdEMAMix (Liang, Chen, Liu & Liu, 2024, *Cautious Optimizers:
Improving Training with One Line of Code*, Algorithm 1 with the authors' rescale):

    u ← the optimizer's update direction (before its step size)
    φ ← 1[u ⊙ g > 0]                      (elementwise; g the gradient the moments take)
    u ← u ⊙ φ · n / max(Σφ, n·10⁻³)        (``rescale="mean"``: over the whole tensor of n elements)
    θ ← θ − γ·u                           (decoupled decay applied unmasked, as without caution)

``rescale="count_plus_one"`` is the older form, u ⊙ φ · n / (Σφ + 1), of the authors' c_lion.py and
of pytorch_optimizer. ``masked="fast"`` is pytorch_optimizer's AdEMAMix, which masks only the fast
average m1 (before its bias correction) and adds α·m2 unmasked.
"""

import math

import numpy as np

from tests.reference._float64 import float64_copy


def caution(u, g, rescale="mean"):
    """``u`` masked where its sign disagrees with ``g``'s, and rescaled."""
    phi = (u * g > 0).astype(np.float64)
    n, kept = phi.size, float(phi.sum())
    if rescale == "mean":
        factor = n / max(kept, n * 1e-3)
    else:
        factor = n / (kept + 1.0)
    return u * phi * factor


def adam(
    params,
    grads,
    *,
    lr,
    betas,
    eps,
    weight_decay,
    decoupled_weight_decay=False,
    maximize=False,
    eps_hat=False,
    rescale="mean",
):
    """Cautious Adam (L2 decay) or AdamW (decoupled); return ``(params, state)``."""
    beta1, beta2 = betas
    theta = float64_copy(params)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t, grad in enumerate(grads, start=1):
        g = -float64_copy(grad) if maximize else float64_copy(grad)
        if decoupled_weight_decay:
            theta = theta * (1.0 - lr * weight_decay)
        else:
            g = g + weight_decay * theta
        m = beta1 * m + (1.0 - beta1) * g
        v = beta2 * v + (1.0 - beta2) * g * g
        if eps_hat:
            u = math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t) * m / (np.sqrt(v) + eps)
        else:
            u = (m / (1.0 - beta1**t)) / (np.sqrt(v / (1.0 - beta2**t)) + eps)
        theta = theta - lr * caution(u, g, rescale)
    return theta, {"exp_avg": m, "exp_avg_sq": v}


def lion(params, grads, *, lr, betas, weight_decay, decoupled_weight_decay=True, maximize=False, rescale="mean"):
    """Cautious Lion; return ``(params, state)``."""
    beta1, beta2 = betas
    theta = float64_copy(params)
    m = np.zeros_like(theta)
    for grad in grads:
        g = -float64_copy(grad) if maximize else float64_copy(grad)
        if decoupled_weight_decay:
            theta = theta * (1.0 - lr * weight_decay)
        else:
            g = g + weight_decay * theta
        u = np.sign(beta1 * m + (1.0 - beta1) * g)
        theta = theta - lr * caution(u, g, rescale)
        m = beta2 * m + (1.0 - beta2) * g
    return theta, {"exp_avg": m}


def ademamix(
    params,
    grads,
    *,
    lr,
    betas,
    alpha,
    eps,
    weight_decay,
    decoupled_weight_decay=True,
    maximize=False,
    rescale="mean",
    masked="mixture",
):
    """Cautious AdEMAMix without warmup; return ``(params, state)``."""
    beta1, beta2, beta3 = betas
    theta = float64_copy(params)
    m1, m2, v = np.zeros_like(theta), np.zeros_like(theta), np.zeros_like(theta)
    for t, grad in enumerate(grads, start=1):
        g = -float64_copy(grad) if maximize else float64_copy(grad)
        if not decoupled_weight_decay:
            g = g + weight_decay * theta
        m1 = beta1 * m1 + (1.0 - beta1) * g
        m2 = beta3 * m2 + (1.0 - beta3) * g
        v = beta2 * v + (1.0 - beta2) * g * g
        denominator = np.sqrt(v / (1.0 - beta2**t)) + eps
        if masked == "mixture":
            u = caution((m1 / (1.0 - beta1**t) + alpha * m2) / denominator, g, rescale)
        else:
            u = (caution(m1, g, rescale) / (1.0 - beta1**t) + alpha * m2) / denominator
        if decoupled_weight_decay:
            u = u + weight_decay * theta
        theta = theta - lr * u
    return theta, {"exp_avg_fast": m1, "exp_avg_slow": m2, "exp_avg_sq": v}


TRANSCRIPTIONS = {"Adam": adam, "AdamW": adam, "Lion": lion, "AdEMAMix": ademamix}
