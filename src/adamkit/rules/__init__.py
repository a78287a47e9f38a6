"""The math: one pure NumPy function per rule, on one array, returning the new state.

Each function reads like its paper and follows torch.optim 2.13's semantics and order of
operations. Every other path in adamkit (kernels, front ends) is tested against these.

Beside each function, its module defines the rule's spec (:class:`adamkit.rules._spec.Spec`):
defaults, checks, state slots, diagnostics and what the commands show. :data:`SPECS` lists
them; every other part of adamkit derives what it needs from there (:mod:`adamkit.specs`).
"""

from adamkit.rules.adafactor import ADAFACTOR, AdafactorState, adafactor
from adamkit.rules.adabelief import ADABELIEF, AdaBeliefScalars, AdaBeliefState, adabelief, adabelief_scalars
from adamkit.rules.adadelta import ADADELTA, AdadeltaState, adadelta
from adamkit.rules.adagrad import ADAGRAD, AdagradState, adagrad, adagrad_lr
from adamkit.rules.adam import ADAM, ADAMW, AdamScalars, AdamState, adam, adam_scalars
from adamkit.rules.adamax import ADAMAX, AdamaxState, adamax
from adamkit.rules.nadam import NADAM, NAdamCount, NAdamState, nadam
from adamkit.rules.radam import RADAM, RAdamScalars, RAdamState, radam, radam_scalars
from adamkit.rules.adopt import ADOPT, AdoptState, adopt
from adamkit.rules.lion import LION, LionState, lion
from adamkit.rules.ademamix import ADEMAMIX, AdEMAMixState, ademamix
from adamkit.rules.lamb import LAMB, LambState, lamb
from adamkit.rules.rmsprop import RMSPROP, RMSpropState, rmsprop
from adamkit.rules.sgd import SGD, SGDState, sgd
from adamkit.rules.schedule_free import ADAMW_SCHEDULE_FREE, ScheduleFreeCount, ScheduleFreeState, schedule_free_adamw

SPECS = (ADAM, ADAMW, ADAMAX, ADADELTA, SGD, ADAGRAD, RMSPROP, ADAFACTOR, NADAM, RADAM, ADABELIEF, ADOPT, LION, ADEMAMIX, LAMB, ADAMW_SCHEDULE_FREE)
"""Every rule's spec, in order; every other part of adamkit derives what it needs from them."""
"""Every optimizer's spec, in the order the front ends and the commands list them."""

__all__ = [
    "ADAFACTOR",
    "ADABELIEF",
    "ADADELTA",
    "ADAGRAD",
    "ADAM",
    "ADAMAX",
    "ADAMW",
    "NADAM",
    "RADAM",
    "ADOPT",
    "LION",
    "ADEMAMIX",
    "LAMB",
    "ADAMW_SCHEDULE_FREE",
    "RMSPROP",
    "SGD",
    "SPECS",
    "AdafactorState",
    "AdaBeliefScalars",
    "AdaBeliefState",
    "AdadeltaState",
    "AdagradState",
    "AdamScalars",
    "AdamState",
    "AdamaxState",
    "NAdamCount",
    "NAdamState",
    "RAdamScalars",
    "RAdamState",
    "AdoptState",
    "LionState",
    "AdEMAMixState",
    "LambState",
    "ScheduleFreeCount",
    "ScheduleFreeState",
    "RMSpropState",
    "SGDState",
    "adabelief",
    "adabelief_scalars",
    "adadelta",
    "adafactor",
    "adagrad",
    "adagrad_lr",
    "adam",
    "adam_scalars",
    "adamax",
    "nadam",
    "radam",
    "radam_scalars",
    "adopt",
    "lion",
    "ademamix",
    "lamb",
    "schedule_free_adamw",
    "rmsprop",
    "sgd",
]
