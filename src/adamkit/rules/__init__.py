"""The math: one pure NumPy function per rule, on one array, returning the new state.

Each function reads like its paper and follows torch.optim 2.13's semantics and order of
operations. Every other path in adamkit (kernels, front ends) is tested against these.
"""

from adamkit.rules.adadelta import AdadeltaState, adadelta
from adamkit.rules.adagrad import AdagradState, adagrad, adagrad_lr
from adamkit.rules.adam import AdamScalars, AdamState, adam, adam_scalars
from adamkit.rules.adamax import AdamaxState, adamax
from adamkit.rules.rmsprop import RMSpropState, rmsprop
from adamkit.rules.sgd import SGDState, sgd

__all__ = [
    "AdadeltaState",
    "AdagradState",
    "AdamScalars",
    "AdamState",
    "AdamaxState",
    "RMSpropState",
    "SGDState",
    "adadelta",
    "adagrad",
    "adagrad_lr",
    "adam",
    "adam_scalars",
    "adamax",
    "rmsprop",
    "sgd",
]
