"""Optimizers over NumPy arrays, updated in place, one per rule spec (:data:`adamkit.specs.ALL`):
``Adam``, ``AdamW``, ``SGD``...

They take torch's hyperparameters, defaults, parameter groups and state keys; gradients are
passed to ``step`` in parameter order across groups.

>>> import numpy as np, adamkit.numpy
>>> w = np.ones(3)
>>> opt = adamkit.numpy.Adam([w], lr=0.1)
>>> opt.step([np.ones(3)])
>>> w
array([0.9, 0.9, 0.9])
>>> sorted(opt.state[0])
['exp_avg', 'exp_avg_sq', 'step']
"""

from typing import TYPE_CHECKING

from adamkit.numpy._base import Optimizer
from adamkit.numpy._optimizers import CLASSES

globals().update(CLASSES)
__all__ = list(CLASSES) + ["Optimizer"]

if TYPE_CHECKING:  # the classes are made from the specs at import, so a type checker sees them here
    def __getattr__(name: str) -> type[Optimizer]: ...
