"""What each optimizer is, independent of the front end: its rule, its hyperparameters,
their defaults and checks, and the layout of its per-parameter state (torch's keys).

The torch and NumPy front ends both read these specs, so defaults, validation and state
layout are written once.
"""

import functools
import inspect
from dataclasses import dataclass
from typing import Callable

from adamkit import rules
from adamkit.validation import (
    check_betas,
    check_bool,
    check_nonnegative,
    check_unit_interval,
)


@dataclass(frozen=True)
class StateSlot:
    """One state tensor: its torch key, its initial fill value, and when it exists.

    ``fill`` is a constant or a function of the group (Adagrad's initial accumulator);
    ``None`` means the slot starts empty and the rule creates it (SGD's momentum buffer).
    """

    key: str
    fill: float | Callable[[dict], float] | None = 0.0
    when: Callable[[dict], bool] = lambda group: True

    def initial_value(self, group):
        return self.fill(group) if callable(self.fill) else self.fill


@dataclass(frozen=True)
class Spec:
    """An optimizer: ``rule`` updates one array given ``hyperparameters`` from the group.

    ``checkpoint_keys`` are the hyperparameters that every saved parameter group holds: those
    that ``torch.optim``'s optimizer of the same name reads at its step without a default. A
    checkpoint without one is refused (torch raises ``KeyError`` at its step); a checkpoint may
    lack the others (older torch releases did not write them), which then take the loading
    optimizer's values.
    """

    name: str
    rule: Callable
    defaults: dict
    checks: dict
    slots: tuple[StateSlot, ...]
    checkpoint_keys: tuple[str, ...]
    counts_steps: bool = True
    eager_state: bool = False

    @functools.cached_property
    def rule_hyperparameters(self):
        """The keyword arguments of ``rule`` that come from a parameter group."""
        signature = inspect.signature(self.rule).parameters.values()
        return tuple(p.name for p in signature if p.kind is p.KEYWORD_ONLY and p.name != "step")

    def validate(self, hyper):
        """Raise ``ValueError``/``TypeError`` naming the first bad hyperparameter in ``hyper``."""
        for name, check in self.checks.items():
            if name in hyper:
                check(name, hyper[name])

    def active_slots(self, group):
        return tuple(slot for slot in self.slots if slot.when(group))

    def rule_arguments(self, group):
        """The rule's keyword arguments from a parameter group, tensors turned into floats."""
        return {name: plain(group[name]) for name in self.rule_hyperparameters}


def plain(value):
    """A hyperparameter as the rule takes it: 1-element tensors (``lr``, ``betas``) as floats."""
    if isinstance(value, tuple):
        return tuple(plain(item) for item in value)
    if type(value) in (bool, int, float, str) or value is None:
        return value
    # Tensors and NumPy scalars (np.float64 subclasses float) become Python floats, which
    # NumPy and the kernels treat as weak scalars.
    return float(value)


def _betas(name, value):
    check_betas(value)


def _unit_closed(name, value):
    check_unit_interval(name, value, closed_above=True)


def _flag(name, value):
    check_bool(name, value)


_ADAM_CHECKS = {
    "lr": check_nonnegative,
    "betas": _betas,
    "eps": check_nonnegative,
    "weight_decay": check_nonnegative,
    "amsgrad": _flag,
    "maximize": _flag,
    "decoupled_weight_decay": _flag,
    "eps_hat": _flag,
}

_ADAM_CHECKPOINT_KEYS = ("lr", "betas", "eps", "weight_decay")

_ADAM_SLOTS = (
    StateSlot("exp_avg"),
    StateSlot("exp_avg_sq"),
    StateSlot("max_exp_avg_sq", when=lambda group: group["amsgrad"]),
)

ADAM = Spec(
    name="Adam",
    rule=rules.adam,
    defaults=dict(
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
        maximize=False,
        decoupled_weight_decay=False,
        eps_hat=False,
    ),
    checks=_ADAM_CHECKS,
    slots=_ADAM_SLOTS,
    checkpoint_keys=_ADAM_CHECKPOINT_KEYS,
)

ADAMW = Spec(
    name="AdamW",
    rule=rules.adam,
    defaults={**ADAM.defaults, "weight_decay": 1e-2, "decoupled_weight_decay": True},
    checks=_ADAM_CHECKS,
    slots=_ADAM_SLOTS,
    checkpoint_keys=_ADAM_CHECKPOINT_KEYS,
)

ADAMAX = Spec(
    name="Adamax",
    rule=rules.adamax,
    defaults=dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False),
    checks=_ADAM_CHECKS,
    slots=(StateSlot("exp_avg"), StateSlot("exp_inf")),
    checkpoint_keys=_ADAM_CHECKPOINT_KEYS,
)

ADADELTA = Spec(
    name="Adadelta",
    rule=rules.adadelta,
    defaults=dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False),
    checks={
        "lr": check_nonnegative,
        "rho": _unit_closed,
        "eps": check_nonnegative,
        "weight_decay": check_nonnegative,
        "maximize": _flag,
    },
    slots=(StateSlot("square_avg"), StateSlot("acc_delta")),
    checkpoint_keys=("lr", "rho", "eps", "weight_decay"),
)

SGD = Spec(
    name="SGD",
    rule=rules.sgd,
    defaults=dict(
        lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False
    ),
    checks={
        "lr": check_nonnegative,
        "momentum": check_nonnegative,
        "dampening": check_nonnegative,
        "weight_decay": check_nonnegative,
        "nesterov": _flag,
        "maximize": _flag,
    },
    slots=(StateSlot("momentum_buffer", fill=None, when=lambda group: group["momentum"] != 0),),
    checkpoint_keys=("lr", "momentum", "dampening", "weight_decay"),
    counts_steps=False,
)

ADAGRAD = Spec(
    name="Adagrad",
    rule=rules.adagrad,
    defaults=dict(
        lr=1e-2,
        lr_decay=0.0,
        weight_decay=0.0,
        initial_accumulator_value=0.0,
        eps=1e-10,
        maximize=False,
    ),
    checks={
        "lr": check_nonnegative,
        "lr_decay": check_nonnegative,
        "weight_decay": check_nonnegative,
        "initial_accumulator_value": check_nonnegative,
        "eps": check_nonnegative,
        "maximize": _flag,
    },
    slots=(StateSlot("sum", fill=lambda group: group["initial_accumulator_value"]),),
    checkpoint_keys=("lr", "lr_decay", "eps", "weight_decay"),
    eager_state=True,
)

RMSPROP = Spec(
    name="RMSprop",
    rule=rules.rmsprop,
    defaults=dict(
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0.0,
        momentum=0.0,
        centered=False,
        maximize=False,
    ),
    checks={
        "lr": check_nonnegative,
        "alpha": _unit_closed,
        "eps": check_nonnegative,
        "weight_decay": check_nonnegative,
        "momentum": check_nonnegative,
        "centered": _flag,
        "maximize": _flag,
    },
    slots=(
        StateSlot("square_avg"),
        StateSlot("momentum_buffer", when=lambda group: group["momentum"] > 0),
        StateSlot("grad_avg", when=lambda group: group["centered"]),
    ),
    checkpoint_keys=("lr", "alpha", "eps", "weight_decay"),
)

ALL = (ADAM, ADAMW, ADAMAX, ADADELTA, SGD, ADAGRAD, RMSPROP)
