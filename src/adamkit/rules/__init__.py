"""The math: one pure NumPy function per rule, on one array, returning the new state.

Each function reads like its paper and follows torch.optim 2.13's semantics and order of
operations. Every other path in adamkit (kernels, front ends) is tested against these.

Beside each function, its module defines the rule's spec (:class:`adamkit.rules._spec.Spec`):
defaults, checks, state slots, diagnostics and what the commands show. :data:`SPECS` lists
them; every other part of adamkit derives what it needs from there (:mod:`adamkit.specs`).
"""

from adamkit.rules.adadelta import ADADELTA, AdadeltaState, adadelta
from adamkit.rules.adagrad import ADAGRAD, AdagradState, adagrad, adagrad_lr
from adamkit.rules.adam import ADAM, ADAMW, AdamScalars, AdamState, adam, adam_scalars
from adamkit.rules.adamax import ADAMAX, AdamaxState, adamax
from adamkit.rules.lamb import LAMB, LambState, lamb
from adamkit.rules.rmsprop import RMSPROP, RMSpropState, rmsprop
from adamkit.rules.sgd import SGD, SGDState, sgd

SPECS = (ADAM, ADAMW, ADAMAX, ADADELTA, SGD, ADAGRAD, RMSPROP, LAMB)
"""Every rule's spec, in order; every other part of adamkit derives what it needs from them."""
"""Every optimizer's spec, in the order the front ends and the commands list them."""

__all__ = [
    "ADADELTA",
    "ADAGRAD",
    "ADAM",
    "ADAMAX",
    "ADAMW",
    "LAMB",
    "RMSPROP",
    "SGD",
    "SPECS",
    "AdadeltaState",
    "AdagradState",
    "AdamScalars",
    "AdamState",
    "AdamaxState",
    "LambState",
    "RMSpropState",
    "SGDState",
    "adadelta",
    "adagrad",
    "adagrad_lr",
    "adam",
    "adam_scalars",
    "adamax",
    "lamb",
    "rmsprop",
    "sgd",
]
