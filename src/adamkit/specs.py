"""What every part of adamkit derives from the rules' specs.

Each rule's spec lives beside its function in :mod:`adamkit.rules` (defaults, checks, state
layout, diagnostics, what the commands show); :data:`ALL` lists them in order. The front ends,
the kernels' tables, the compact-state policy, the diagnostics and the commands read them here,
so that adding a rule adds nothing to them. Each spec is also an attribute named like its
optimizer in capitals (``specs.ADAM``, ``specs.RMSPROP``).
"""

from adamkit.rules import SPECS
from adamkit.rules._spec import Quantities, Spec, StateSlot, Variant, plain

ALL = SPECS
"""Every rule's spec, in the order the commands and tables list them (:data:`adamkit.rules.SPECS`)."""

BY_NAME = {spec.name: spec for spec in ALL}
"""Each spec under its optimizer's name (``"Adam"``, ``"RMSprop"``...)."""
_BY_CONSTANT = {spec.name.upper(): spec for spec in ALL}


def __getattr__(name):
    """``specs.ADAM``, ``specs.SGD``...: the spec of the optimizer of that name."""
    try:
        return _BY_CONSTANT[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def _code_dtypes():
    """The dtype of each state key's 8-bit codes, the same for every rule that has the key."""
    codes = {}
    for spec in ALL:
        for slot in spec.slots:
            if slot.code is not None and codes.setdefault(slot.key, slot.code) is not slot.code:
                raise ValueError(f"{spec.name}'s slot {slot.key!r} is coded unlike other rules' {slot.key!r}")
    return codes


CODE_DTYPES = _code_dtypes()
"""The dtype of each state key's 8-bit codes: ``np.int8`` for the signed map, ``np.uint8`` for
the unsigned (:attr:`adamkit.rules._spec.StateSlot.code`)."""
SCALAR_STATE_KEYS = frozenset({"step"} | {slot.key for spec in ALL for slot in spec.scalar_state})
"""The state keys of per-parameter 0-d tensors: ``step`` and the specs' ``scalar_state`` (NAdam's
``mu_product``); never state slots."""
COMPACT = tuple(spec for spec in ALL if spec.compact)
"""The specs whose optimizers take compact state."""

COMPARED = {
    variant.compare_name: (spec, variant) for spec in ALL for variant in spec.variants if variant.compare_name
}
"""``(spec, variant)`` of each optimizer ``adamkit compare`` runs, under its name there."""
DRAWN = {
    variant.trajectories_name: (spec, variant)
    for spec in ALL
    for variant in spec.variants
    if variant.trajectories_name
}
"""``(spec, variant)`` of each optimizer ``adamkit trajectories`` draws, under its name there."""


def in_train_mode(optimizer):
    """``optimizer``, put in train mode if it has modes (Schedule-Free's ``train()``, see
    ``Spec.eval_point``): how ``adamkit compare``, :func:`adamkit.minimize` and the
    distributed benchmark start every optimizer. A ``ZeroRedundancyOptimizer`` puts the optimizer
    it shards (its ``optim``) in train mode and copies that one's groups into its own, as it does
    after each step (before each step it copies its own into the sharded optimizer's)."""
    sharded = getattr(optimizer, "optim", optimizer)
    spec = getattr(sharded, "spec", None)
    if spec is not None and spec.has_modes:
        sharded.train()
        if sharded is not optimizer:
            optimizer._sync_param_groups(sharded.param_groups, optimizer.param_groups)
    return optimizer


def listed(chosen):
    """The names of the specs ``chosen`` as prose: ``"Adam, AdamW and Adamax"``."""
    names = [spec.name for spec in chosen]
    return f"{', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else names[0]


__all__ = [
    "ALL", "BY_NAME", "CODE_DTYPES", "COMPACT", "COMPARED", "DRAWN", "SCALAR_STATE_KEYS",
    "Quantities", "Spec", "StateSlot", "Variant", "in_train_mode", "listed", "plain",
]
