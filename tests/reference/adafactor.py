"""Adafactor (Shazeer & Stern, 2018, Algorithms 4 and 5) as torch.optim.Adafactor defines it:
ρ_t capped by lr, decoupled weight decay γλθ, ε1 guarding the variance estimate, means for sums.

    β̂2_t = 1 − t^τ;  ρ_t = min(γ, 1/√t);  α_t = max(ε2, RMS(θ))·ρ_t;  θ ← θ − γλθ
    matrix (the last two axes): R ← β̂2_t·R + (1−β̂2_t)·mean_j G²_ij;  C ← β̂2_t·C + (1−β̂2_t)·mean_i G²_ij
                                V̂_ij = R_i·C_j / max(mean_i R_i, ε1)
    vector:                     V̂ ← β̂2_t·V̂ + (1−β̂2_t)·G²
    U = G / max(√V̂, ε1);  Û = U / max(1, RMS(U)/d);  θ ← θ − α_t·Û
"""

import numpy as np

from tests.reference._float64 import float64_copy


def _rms(x):
    return np.sqrt(np.mean(x * x))


def adafactor(params, grads, *, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, maximize=False):
    """Run Adafactor on ``params`` for ``len(grads)`` steps; return ``(params, state)``.

    ε1 = None is the machine epsilon of the given parameter's dtype.
    """
    eps1 = eps[0] if eps[0] is not None else float(np.finfo(np.asarray(params).dtype).eps)
    eps2 = eps[1]
    theta = float64_copy(params)
    factored = theta.ndim >= 2
    # Each matrix of the leading axes keeps its own row and column factors.
    matrices = theta.reshape((-1,) + theta.shape[-2:]) if factored else None
    rows = np.zeros(matrices.shape[:2]) if factored else None
    cols = np.zeros((matrices.shape[0], matrices.shape[2])) if factored else None
    v = None if factored else np.zeros_like(theta)
    t = 0
    for grad in grads:
        t += 1
        g = float64_copy(grad)
        if maximize:
            g = -g
        beta2_hat = 1.0 - t**beta2_decay  # Increasing decay.
        rho = min(lr, 1.0 / np.sqrt(t))  # Relative step size.
        alpha = max(eps2, _rms(theta)) * rho  # Parameter scale.
        theta = theta - lr * weight_decay * theta
        if factored:
            g2 = (g * g).reshape(rows.shape[:1] + g.shape[-2:])
            rows = beta2_hat * rows + (1.0 - beta2_hat) * g2.mean(axis=2)
            cols = beta2_hat * cols + (1.0 - beta2_hat) * g2.mean(axis=1)
            v_hat = np.empty_like(g2)
            for k in range(g2.shape[0]):
                v_hat[k] = np.outer(rows[k], cols[k]) / max(rows[k].mean(), eps1)
            v_hat = v_hat.reshape(g.shape)
        else:
            v = beta2_hat * v + (1.0 - beta2_hat) * g * g
            v_hat = v
        u = g / np.maximum(np.sqrt(v_hat), eps1)
        u_hat = u / max(1.0, _rms(u) / d)  # Update clipping.
        theta = theta - alpha * u_hat
    if factored:
        state = {
            "row_var": rows.reshape(theta.shape[:-1] + (1,)),
            "col_var": cols.reshape(theta.shape[:-2] + (1,) + theta.shape[-1:]),
        }
    else:
        state = {"variance": v}
    return theta, {"step": float(t), **state}
