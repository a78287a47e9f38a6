"""Schedule-Free AdamW (Defazio et al., *The Road Less Scheduled*, NeurIPS 2024, Algorithm 1,
AdamW variant), with the three sequences kept apart, in float64:

    y_t   = (1−β1)·z_t + β1·x_t                     (the gradient is taken here)
    v_t   = β2·v_{t−1} + (1−β2)·g_t²
    γ_t   = γ·min(1, t/T_warmup)
    z_t+1 = z_t − γ_t·(g_t / (√(v_t/(1−β2^t)) + ε) + λ·y_t)
    w_t   = t^r · (max_{i≤t} γ_i)^p,   c_t+1 = w_t / Σ_{i≤t} w_i
    x_t+1 = (1−c_t+1)·x_t + c_t+1·z_t+1

As the authors' package ``schedulefree`` (its ``AdamWScheduleFree``) differs from the paper's
listing, and adamkit follows the package: ε is added after the bias correction inside the root
(the paper folds √(1−β2^t) into γ_t), and the weights are ``t^r·max γ^p`` (the paper's γ_t²
is r = 0, p = 2 once the warmup is over). The model is evaluated at x and trained at y.
"""

import numpy as np

from tests.reference._float64 import float64_copy


class ScheduleFreeAdamW:
    """One parameter group of Schedule-Free AdamW over float64 arrays, x and z stored."""

    def __init__(
        self,
        params,
        *,
        lr=0.0025,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        warmup_steps=0,
        r=0.0,
        weight_lr_power=2.0,
    ):
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.warmup_steps, self.r, self.weight_lr_power = warmup_steps, r, weight_lr_power
        self.x = [float64_copy(p) for p in params]
        self.z = [float64_copy(p) for p in params]
        self.v = [np.zeros_like(x) for x in self.x]
        self.t = 0
        self.weights = []
        self.lr_max = 0.0

    def y(self):
        """The training points y_t."""
        beta1 = self.betas[0]
        return [(1.0 - beta1) * z + beta1 * x for x, z in zip(self.x, self.z)]

    def step(self, grads):
        """One step with the gradients ``grads`` taken at :meth:`y`."""
        beta1, beta2 = self.betas
        self.t += 1
        t = self.t
        lr = self.lr * (t / self.warmup_steps if t <= self.warmup_steps else 1.0)
        self.lr_max = max(self.lr_max, lr)
        self.weights.append(t**self.r * self.lr_max**self.weight_lr_power)
        total = sum(self.weights)
        c = self.weights[-1] / total if total != 0 else 0.0
        for i, (y, grad) in enumerate(zip(self.y(), grads)):
            g = float64_copy(grad)
            self.v[i] = beta2 * self.v[i] + (1.0 - beta2) * g * g
            u = g / (np.sqrt(self.v[i] / (1.0 - beta2**t)) + self.eps) + self.weight_decay * y
            self.z[i] = self.z[i] - lr * u
            self.x[i] = (1.0 - c) * self.x[i] + c * self.z[i]
        return lr, c


def schedule_free_adamw(params, grads, **hyper):
    """Run Schedule-Free AdamW on ``params`` for ``len(grads)`` steps; return ``(y, state)``, the
    parameters as they stand in train mode."""
    optimizer = ScheduleFreeAdamW([params], **hyper)
    for grad in grads:
        optimizer.step([grad])
    return optimizer.y()[0], {"z": optimizer.z[0], "exp_avg_sq": optimizer.v[0]}
