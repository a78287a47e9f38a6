"""Optimizer paths on two-dimensional test functions, for ``adamkit trajectories``.

Six functions (:data:`~adamkit.trajectories.functions.FUNCTIONS`): Rosenbrock, Beale, Rastrigin, a saddle, an ill-conditioned
quadratic and a quadratic with noisy gradients, each with its standard start and the
learning rate of each ``adamkit.numpy`` optimizer on it. :func:`trace` runs the optimizers;
:mod:`adamkit.trajectories.plot` (needs matplotlib) draws them.

>>> from adamkit.trajectories import FUNCTIONS, trace
>>> [adam] = trace(FUNCTIONS["rosenbrock"], ["adam"], steps=3)
>>> adam.path.shape
(4, 2)
"""

from adamkit.trajectories.choices import OPTIMIZERS, UncorrectedAdam, make_optimizer
from adamkit.trajectories.descent import Trajectory, descend, step_lengths, trace
from adamkit.trajectories.functions import FUNCTIONS, SHIFTED, TestFunction, l2_minimum

__all__ = [
    "FUNCTIONS",
    "OPTIMIZERS",
    "SHIFTED",
    "TestFunction",
    "Trajectory",
    "UncorrectedAdam",
    "descend",
    "l2_minimum",
    "make_optimizer",
    "step_lengths",
    "trace",
]
