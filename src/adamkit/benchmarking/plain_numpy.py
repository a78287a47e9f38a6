"""The baseline for the NumPy front end: Adam as a NumPy user would plainly write it.

One vectorised in-place expression per line, looping over the arrays; nothing clever.
"""

import numpy as np


class PlainNumpyAdam:
    r"""Adam over a list of NumPy arrays, updated in place.

    .. math::
        m \leftarrow \beta_1 m + (1-\beta_1) g, \quad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2, \quad
        \theta \leftarrow \theta - \frac{\gamma}{1-\beta_1^t}\,
            \frac{m}{\sqrt{v/(1-\beta_2^t)} + \epsilon}
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.exp_avg = [np.zeros_like(param) for param in self.params]
        self.exp_avg_sq = [np.zeros_like(param) for param in self.params]
        self.t = 0

    def step(self, grads):
        self.t += 1
        beta1, beta2 = self.betas
        bias_correction1 = 1 - beta1**self.t
        bias_correction2 = 1 - beta2**self.t
        for param, grad, m, v in zip(self.params, grads, self.exp_avg, self.exp_avg_sq, strict=True):
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            param -= self.lr / bias_correction1 * m / (np.sqrt(v / bias_correction2) + self.eps)
