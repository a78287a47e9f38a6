"""Running optimizers on a test function and recording their paths."""

from dataclasses import dataclass

import numpy as np

from adamkit.trajectories.choices import OPTIMIZERS, make_optimizer, shown_point


@dataclass(frozen=True)
class Trajectory:
    """One optimizer's path on one function: ``path[t]`` is the point after ``t`` steps."""

    name: str
    label: str
    lr: float
    path: np.ndarray
    final_distance: float


def descend(function, make, steps=None, *, seed=0):
    """The path of the optimizer ``make([point])`` from ``function.start``: ``steps`` + 1 points.

    ``make`` takes a list with the one parameter array, ``[x, y]`` in float64, and returns an
    object whose ``step([grad])`` updates it in place. With ``function.noise`` the gradient
    gets Gaussian noise drawn from ``seed``: the same draws for every optimizer. The gradient is
    taken at the parameter; the path records :func:`~adamkit.trajectories.choices.shown_point`
    (Schedule-Free's evaluation point x).
    """
    steps = function.steps if steps is None else steps
    point = np.array(function.start, dtype=np.float64)
    optimizer = make([point])
    noise = np.random.default_rng(seed)
    path = np.empty((steps + 1, 2))
    path[0] = point
    with np.errstate(all="ignore"):  # a diverging path is recorded, not an error
        for step in range(1, steps + 1):
            grad = function.gradient(point)
            if function.noise:
                grad = grad + function.noise * noise.standard_normal(2)
            optimizer.step([grad])
            path[step] = shown_point(optimizer, point)
    return path


def trace(function, names, *, steps=None, seed=0):
    """A :class:`Trajectory` per optimizer name, each with its learning rate on ``function``."""
    trajectories = []
    for name in names:
        lr = function.lrs[name]
        path = descend(function, lambda params, name=name, lr=lr: make_optimizer(name, params, lr),
                       steps, seed=seed)
        trajectories.append(
            Trajectory(name, OPTIMIZERS[name].label, lr, path, function.distance(path[-1]))
        )
    return trajectories


def step_lengths(path):
    """The length of each step of ``path``: ‖θ_t − θ_{t−1}‖ for t = 1, 2, ..."""
    return np.hypot(*np.diff(path, axis=0).T)
