"""A fuzzing sequence drawn from a seed: an optimizer configuration and a list of operations.

Everything here is plain data (dicts, lists, strings, numbers), so that a sequence prints as
JSON and the same seed draws the same sequence on any machine. The values of parameters and
gradients are not part of it: each operation draws them from ``(seed, operation index)``
when it runs (:func:`tests.fuzz.ops.values_for`).

A sequence starts with a gradient and a step (so that state exists), then runs rounds of
fresh gradients, one to three drawn operations and a step. An operation names a parameter by
its position ``param`` modulo the current number of parameters, and a group likewise.
"""

import inspect
import json
import random

from adamkit import specs
from tests.fuzz.ops import CATALOGUE
from tests.fuzz.tables import CONFIGURATIONS, LABELS, SMALL_SHAPES, compact_state_dtypes, initial_choices

FRONTS = ("torch", "numpy")
VARIANTS = 5  # full precision (twice), 8-bit state, bfloat16 state, bfloat16 parameters (torch)

_BFLOAT16_OPTIONS = ({}, {"kahan_summation": False}, {"state_dtype": "fp32"})
COMPACT_SHAPES = ((4100,), (65, 64))  # at least 4096 float32 elements: compact state


def draw_config(rng, front, seed):
    """An optimizer, its hyperparameters, options and parameter groups.

    The configuration (:data:`tests.fuzz.tables.LABELS`) and how its state is kept go round with
    the seed, so that a few hundred consecutive seeds cover them all: ``seed % len(LABELS)``
    picks the configuration, and ``(seed // len(LABELS)) % VARIANTS`` full precision (twice),
    8-bit state, bfloat16 state (configurations that take them) or, for torch, bfloat16
    parameters, with the options of :data:`_BFLOAT16_OPTIONS` in turn (``seed % 3``, for the
    rules the C kernels step). The hyperparameters are one of the spec's cases, with its second
    group's overrides when there are two groups.
    """
    label = LABELS[seed % len(LABELS)]
    name = CONFIGURATIONS[label][0]
    variant = seed // len(LABELS) % VARIANTS
    hyper, second = rng.choice(initial_choices(label))
    options = {}
    dtype = rng.choice(("float32", "float32", "float64"))
    state_dtype = ("int8", "bf16")[variant - 2] if variant in (2, 3) else None
    if state_dtype in compact_state_dtypes(label):
        options["state_dtype"] = state_dtype
        dtype = "float32"
    elif front == "torch" and variant == 4:
        dtype = "bfloat16"
        if specs.BY_NAME[name].native:  # the options of the C kernels' bfloat16 path
            options.update(_BFLOAT16_OPTIONS[seed % len(_BFLOAT16_OPTIONS)])
    if rng.random() < 0.1:
        options["nonfinite_grads"] = "skip"
    groups = []
    for _ in range(rng.choice((1, 1, 2))):
        shapes = [list(rng.choice(SMALL_SHAPES)) for _ in range(rng.randint(1, 2))]
        if options.get("state_dtype") in ("int8", "bf16"):
            shapes.insert(rng.randint(0, len(shapes)), list(rng.choice(COMPACT_SHAPES)))
        group = {"shapes": shapes}
        if len(groups) == 1:
            group["hyper"] = dict(second)
        groups.append(group)
    return {"front": front, "optimizer": name, "label": label, "hyper": hyper, "options": options, "dtype": dtype,
            "groups": groups}


def has_mirror(config):
    """Whether torch.optim computes what this configuration should: it has the optimizer, with
    every hyperparameter the configuration sets, and the configuration keeps no compact state
    and no bfloat16 parameters (which torch steps in its own bfloat16 arithmetic)."""
    if config["dtype"] == "bfloat16" or config["options"].get("state_dtype"):
        return False
    import torch

    optimizer = getattr(torch.optim, config["optimizer"], None)
    hyper = set(config["hyper"]).union(*(group.get("hyper", {}) for group in config["groups"]))
    return optimizer is not None and hyper <= set(inspect.signature(optimizer).parameters)


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
        found |= {("config", config["label"], "bfloat16 parameters"), ("bfloat16 options", json.dumps(config["options"]))}
    else:
        found.add(("config", config["label"], config["options"].get("state_dtype")))
    return found


def all_features(front):
    """Every feature :func:`features` can find for ``front``: what the seeds of a run should cover."""
    expected = set()
    for kind in CATALOGUE.values():
        forms = kind.forms_for({"front": front}) if kind.forms else [None]
        if front in kind.fronts:
            expected |= {("op", kind.name, form) for form in forms}
    expected |= {("key", "slot"), ("key", "absmax")} | ({("key", "kahan")} if front == "torch" else set())
    for label in LABELS:
        expected |= {("config", label, state_dtype) for state_dtype in (None, *compact_state_dtypes(label))}
        if front == "torch":
            expected.add(("config", label, "bfloat16 parameters"))
    if front == "torch":
        expected |= {("bfloat16 options", json.dumps(options)) for options in _BFLOAT16_OPTIONS}
    return expected


def _key_kind(key):
    """``"absmax"`` for the scales of 8-bit codes, ``"kahan"`` for a compensation buffer, else
    ``"slot"`` (a slot's values or its 8-bit codes)."""
    return "absmax" if key.endswith("_absmax") else "kahan" if key == "kahan_compensation" else "slot"
