"""The optimizers ``adamkit compare`` runs, by name, for either front end.

The classes are looked up by name in ``adamkit.torch`` or ``adamkit.numpy`` only when a run
starts, so the NumPy backend never imports torch. The choices are the specs' variants
(:data:`adamkit.specs.COMPARED`); learning rates are per task (:data:`adamkit.compare.tasks.LEARNING_RATES`).
"""

import importlib
from typing import NamedTuple

from adamkit import specs

FRONT_ENDS = {"torch": "adamkit.torch", "numpy": "adamkit.numpy"}


class Choice(NamedTuple):
    """How an optimizer is shown, its class, and the hyperparameters it gets besides ``lr``."""

    label: str
    class_name: str
    settings: dict


OPTIMIZERS = {
    name: Choice(variant.label, spec.name, variant.settings) for name, (spec, variant) in specs.COMPARED.items()
}


def make_optimizer(name, backend, params, lr, **options):
    """The optimizer ``name`` of front end ``backend`` (``"torch"`` or ``"numpy"``) over ``params``,
    with ``options`` (such as ``state_dtype``) added to its fixed settings."""
    choice = OPTIMIZERS[name]
    front_end = importlib.import_module(FRONT_ENDS[backend])
    return specs.in_train_mode(getattr(front_end, choice.class_name)(params, lr=lr, **choice.settings, **options))


def hyperparameters(optimizer):
    """The first parameter group's settings as plain JSON values (tuples become lists)."""
    group = optimizer.param_groups[0]
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in group.items() if key != "params"}
