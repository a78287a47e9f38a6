"""The parameters, gradients and groups the LAMB reference tests share: sizes 1, 7, 17 and 4097
and two 2-D parameters, over two groups with non-default hyperparameters, 60 steps."""

import numpy as np

STEPS = 60
SHAPES = ((1,), (7,), (17,), (4097,), (5, 9), (64, 33))
GROUP_OF_SHAPE = (0, 1, 0, 1, 0, 1)
GROUPS = (
    {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-4, "weight_decay": 0.1},
    {"lr": 3e-3, "weight_decay": 0.01},
)


def params_and_grads(seed=0):
    """float64 starting parameters and ``grads[t][i]``; one parameter starts at zero (ratio 1)."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(shape) for shape in SHAPES]
    params[2][:] = 0.0
    scales = 10.0 ** rng.uniform(-3, 1, size=len(SHAPES))
    grads = [[rng.standard_normal(shape) * scale for shape, scale in zip(SHAPES, scales)] for _ in range(STEPS)]
    return params, grads


def hyper_of(index, **extra):
    return {**GROUPS[GROUP_OF_SHAPE[index]], **extra}
