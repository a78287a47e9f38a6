"""A fuzzing sequence drawn from a seed: an optimizer configuration and a list of operations.

Everything here is plain data (dicts, lists, strings, numbers), so that a sequence prints as
JSON and the same seed draws the same sequence on any machine. The values of parameters and
gradients are not part of it: each operation draws them from ``(seed, operation index)``
when it runs (:func:`tests.fuzz.ops.values_for`).

A sequence starts with a gradient and a step (so that state exists), then runs rounds of
fresh gradients, one to three drawn operations and a step. An operation names a parameter by
its position ``param`` modulo the current number of parameters, and a group likewise.
"""

import json
import random

from tests.fuzz.ops import CATALOGUE
from tests.fuzz.tables import SMALL_SHAPES

FRONTS = ("torch", "numpy")
OPTIMIZERS = ("Adam", "AdamW", "Adamax", "Adadelta", "SGD", "Adagrad", "RMSprop")
COMPACT_RULES = ("Adam", "AdamW", "Adamax", "Adadelta")

# Valid hyperparameters a sequence starts from: name -> choices.
_HYPER = {
    "Adam": {"lr": (1e-3, 1e-2), "betas": ((0.9, 0.999), (0.8, 0.99)), "weight_decay": (0.0, 0.1),
             "amsgrad": (False, True), "maximize": (False, True)},
    "Adamax": {"lr": (2e-3, 1e-2), "weight_decay": (0.0, 0.1), "maximize": (False, True)},
    "Adadelta": {"lr": (1.0, 0.5), "rho": (0.9, 0.8), "weight_decay": (0.0, 0.1), "maximize": (False, True)},
    "SGD": {"lr": (1e-2, 0.1), "momentum": (0.0, 0.9), "weight_decay": (0.0, 0.1), "maximize": (False, True)},
    "Adagrad": {"lr": (0.1, 0.01), "lr_decay": (0.0, 0.01), "initial_accumulator_value": (0.0, 0.1),
                "weight_decay": (0.0, 0.1), "maximize": (False, True)},
    "RMSprop": {"lr": (1e-2,), "alpha": (0.99, 0.9), "momentum": (0.0, 0.5), "centered": (False, True),
                "weight_decay": (0.0, 0.1), "maximize": (False, True)},
}
_HYPER["AdamW"] = {**_HYPER["Adam"], "weight_decay": (0.01, 0.1)}

_BFLOAT16_OPTIONS = ({}, {"kahan_summation": False}, {"state_dtype": "fp32"})
COMPACT_SHAPES = ((4100,), (65, 64))  # at least 4096 float32 elements: compact state


def draw_config(rng, front, seed):
    """An optimizer, its hyperparameters, options and parameter groups.

    The optimizer and how its state is kept go round with the seed, so that a few hundred
    consecutive seeds cover them all: seed % 7 picks the optimizer, and (seed // 7) % 5 full
    precision (twice), 8-bit state, bfloat16 state (rules that have them) or, for torch,
    bfloat16 parameters, with each option of :data:`_BFLOAT16_OPTIONS` in turn.
    """
    name = OPTIMIZERS[seed % len(OPTIMIZERS)]
    variant = seed // len(OPTIMIZERS) % 5
    hyper = {key: rng.choice(values) for key, values in _HYPER[name].items()}
    if name == "SGD" and hyper["momentum"] and rng.random() < 0.5:
        hyper["nesterov"] = True
    options = {}
    dtype = rng.choice(("float32", "float32", "float64"))
    if name in COMPACT_RULES and variant in (2, 3):
        options["state_dtype"] = ("int8", "bf16")[variant - 2]
        dtype = "float32"
    elif front == "torch" and variant == 4:
        dtype = "bfloat16"
        options.update(_BFLOAT16_OPTIONS[seed // (5 * len(OPTIMIZERS)) % len(_BFLOAT16_OPTIONS)])
    if rng.random() < 0.1:
        options["nonfinite_grads"] = "skip"
    groups = []
    for _ in range(rng.choice((1, 1, 2))):
        shapes = [list(rng.choice(SMALL_SHAPES)) for _ in range(rng.randint(1, 2))]
        if options.get("state_dtype") in ("int8", "bf16"):
            shapes.insert(rng.randint(0, len(shapes)), list(rng.choice(COMPACT_SHAPES)))
        group = {"shapes": shapes}
        if len(groups) == 1:
            group["lr"] = hyper["lr"] * 2
        groups.append(group)
    return {"front": front, "optimizer": name, "hyper": hyper, "options": options, "dtype": dtype, "groups": groups}


def has_mirror(config):
    """Whether torch.optim computes what this configuration should (no compact state, no
    bfloat16 parameters, which torch steps in its own bfloat16 arithmetic)."""
    return config["dtype"] != "bfloat16" and not config["options"].get("state_dtype")


def draw_op(rng, config):
    """One operation (a dict) of a kind of the catalogue that applies to ``config``: in 3 of 5
    draws of a form that is neutral or keeps parameters finite, which adamkit should take, so
    that most sequences go on past their first operations."""
    kinds = [kind for kind in CATALOGUE.values() if kind.applies(config) and kind.draws]
    kind = rng.choice(kinds)
    return kind.draw(rng, config, tame=rng.random() < 0.6)


def draw_sequence(seed, front):
    """The sequence of ``seed`` for ``front`` ("torch" or "numpy"): ``{"seed", "config", "ops"}``."""
    rng = random.Random(f"{front}:{seed}")
    config = draw_config(rng, front, seed)
    ops = [{"op": "grads"}, {"op": "step"}]
    for _ in range(rng.randint(3, 6)):
        ops.append({"op": "grads"})
        for _ in range(rng.randint(1, 3)):
            ops.append(draw_op(rng, config))
        if rng.random() < 0.3:
            ops.append({"op": "grads"})
        ops.append({"op": "step"})
    ops += [{"op": "grads"}, {"op": "step"}]
    return {"seed": seed, "config": config, "ops": ops}


def features(sequence):
    """What a sequence exercises: ``(op, form)`` pairs, the kinds of state key its slot
    operations name, and its optimizer with its state dtype or bfloat16 parameters."""
    config = sequence["config"]
    found = {("op", op["op"], op.get("form")) for op in sequence["ops"]}
    found |= {("key", _key_kind(op["key"])) for op in sequence["ops"] if "key" in op}
    if config["dtype"] == "bfloat16":
        found |= {("config", config["optimizer"], "bfloat16 parameters"), ("bfloat16 options", json.dumps(config["options"]))}
    else:
        found.add(("config", config["optimizer"], config["options"].get("state_dtype")))
    return found


def all_features(front):
    """Every feature :func:`features` can find for ``front``: what the seeds of a run should cover."""
    expected = set()
    for kind in CATALOGUE.values():
        forms = kind.forms_for({"front": front}) if kind.forms else [None]
        if front in kind.fronts:
            expected |= {("op", kind.name, form) for form in forms}
    expected |= {("key", "slot"), ("key", "absmax")} | ({("key", "kahan")} if front == "torch" else set())
    for name in OPTIMIZERS:
        expected |= {("config", name, state_dtype) for state_dtype in (None, "int8", "bf16")
                     if state_dtype is None or name in COMPACT_RULES}
        if front == "torch":
            expected.add(("config", name, "bfloat16 parameters"))
    if front == "torch":
        expected |= {("bfloat16 options", json.dumps(options)) for options in _BFLOAT16_OPTIONS}
    return expected


def _key_kind(key):
    """``"absmax"`` for the scales of 8-bit codes, ``"kahan"`` for a compensation buffer, else
    ``"slot"`` (a slot's values or its 8-bit codes)."""
    return "absmax" if key.endswith("_absmax") else "kahan" if key == "kahan_compensation" else "slot"
