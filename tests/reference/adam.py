"""Adam (Kingma & Ba, 2015, Algorithm 1) and AMSGrad (Reddi et al., 2018, Algorithm 2).

With torch's conventions: ``maximize`` negates g; L2 weight decay adds λθ to g (after the
negation); ε is added outside the square root, after bias correction; AMSGrad keeps the
running maximum of the raw (not bias-corrected) v and bias-corrects it in the denominator::

    g ← ±g + λθ
    m ← β1·m + (1−β1)·g
    v ← β2·v + (1−β2)·g²
    v̂max ← max(v̂max, v)                       (AMSGrad only)
    θ ← θ − γ/(1−β1^t) · m / (√v/√(1−β2^t) + ε)

The ``eps_hat`` variant is the paper's efficient form from the end of Section 2 (Keras's ε̂):
    θ ← θ − γ·√(1−β2^t)/(1−β1^t) · m / (√v + ε)
"""

import math

import numpy as np

from tests.reference._float64 import float64_copy


def adam(
    params,
    grads,
    *,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    amsgrad=False,
    maximize=False,
    eps_hat=False,
):
    """Run Adam on ``params`` for ``len(grads)`` steps; return ``(params, state)``."""
    beta1, beta2 = betas
    theta = float64_copy(params)
    m = np.zeros_like(theta)  # First moment estimate.
    v = np.zeros_like(theta)  # Second raw moment estimate.
    v_max = np.zeros_like(theta)
    t = 0
    for grad in grads:
        t += 1
        g = float64_copy(grad)
        if maximize:
            g = -g
        g = g + weight_decay * theta
        m = beta1 * m + (1.0 - beta1) * g
        v = beta2 * v + (1.0 - beta2) * g * g
        v_max = np.maximum(v_max, v)
        second = v_max if amsgrad else v
        if eps_hat:
            step_size = lr * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
            theta = theta - step_size * m / (np.sqrt(second) + eps)
        else:
            m_hat = m / (1.0 - beta1**t)  # Bias-corrected first moment.
            v_hat_sqrt = np.sqrt(second) / math.sqrt(1.0 - beta2**t)
            theta = theta - lr * m_hat / (v_hat_sqrt + eps)
    state = {"step": float(t), "exp_avg": m, "exp_avg_sq": v}
    if amsgrad:
        state["max_exp_avg_sq"] = v_max
    return theta, state
