"""Run one sequence on adamkit and judge it.

Three worlds run the sequence side by side:

- *fuzzed*: adamkit, every operation;
- *twin*: adamkit with the same configuration, without the neutral operations (a copy of a
  state tensor put in its place, ``s.data = s.data.clone()``, a state dict round trip, a deep
  copy, ...), which must not change a single bit. Only while every operation before was
  benign: after a state tensor was made to alias a parameter, say, a deep copy (which does not
  keep the aliasing) is no longer neutral, and the twin runs every operation;
- *mirror*: the ``torch.optim`` optimizer of the same name, every operation, where torch has
  the configuration (no compact state, no bfloat16 parameters). When torch raises at an
  operation other than a step (its ``state_dict()`` fails once a group's parameter has been
  replaced, for one), the mirror is left out from there on; and from a NumPy state dict load
  of a rule whose scalar state torch recasts when it loads (:func:`tests.fuzz.ops.recasts_on_load`).

When torch raises ``KeyError`` at a step for a slot it would have created, the mirror is given
the slot and steps again (see :func:`_refilled`).

Parameters are compared after every step that neither world raised at: to the mirror within
the max-norm tolerance of the torch tests (1e-6 in float32, 1e-12 in float64; relative to the
largest value or 1, and float32's once a cast happened), to the twin bit for bit (NaN equal
to NaN). Once a world raises, the comparison with it ends; once
adamkit raises, every comparison ends, and the fuzzed world runs the rest of the sequence
alone, for crashes. Without a mirror, parameters must stay finite as long as every operation so
far was benign. An array made read-only (NumPy) must keep its bytes.

The statuses: ``ok`` and ``raised`` (adamkit raised a Python exception) pass; ``wrong`` (a
silent wrong result), ``accepted`` (torch raised at a step, adamkit stepped), ``nonfinite``,
``readonly_written`` and ``harness`` (an error in this harness) fail, as do ``crash`` and
``timeout``, which :mod:`tests.fuzz.harness` finds.
"""

import traceback
import warnings
from pathlib import Path

import numpy as np

from tests.fuzz.ops import CATALOGUE, recasts_on_load, values_for
from tests.fuzz.sequences import has_mirror
from tests.fuzz.tables import SLOTS
from tests.fuzz.worlds import make_world

PASSING = ("ok", "raised")
_CASTS = ("dtype", "wrong_dtype", "float32")  # forms that change a parameter's or a state's dtype
TOLERANCE = {"float32": 1e-6, "float64": 1e-12}
_HERE = str(Path(__file__).parent)
_HARNESS_ERRORS = (AttributeError, NameError, UnboundLocalError, AssertionError, ZeroDivisionError)


def attempt(world, op, seed, index):
    """Apply ``op`` to ``world``; return ``None``, or the exception it raised."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            CATALOGUE[op["op"]].apply(world, op, values_for(seed, index))
    except Exception as error:  # noqa: BLE001 - any exception is an outcome to judge
        return error
    return None


def harness_error(error):
    """Whether ``error`` is a bug of this harness rather than what the optimizer raised."""
    last = traceback.extract_tb(error.__traceback__)[-1]
    return isinstance(error, _HARNESS_ERRORS) and last.filename.startswith(_HERE)


def describe(error):
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300]


def _refilled(mirror, error, saved):
    """Whether torch.optim raised for state keys that it would have created had the state been
    new (a slot that a hyperparameter switched on, or one deleted): ``KeyError`` for the key, or
    Adafactor's assertion that its slots "should be defined". The mirror is then back as it was
    before the step (``saved``; torch had stepped the groups before) with the keys filled as
    torch creates them, to step again. adamkit creates such a slot itself, which is right if it
    then steps as torch.optim does with the slot created."""
    keys = (*SLOTS[mirror.config["optimizer"]], "step")
    if isinstance(error, KeyError) and error.args[0] in keys:
        missing = [error.args[0]]
    elif isinstance(error, AssertionError) and "should be defined" in str(error):
        missing = list(keys)
    else:
        return False
    mirror.restore(saved)
    return any([mirror.fill_missing(key) for key in missing])


def difference(actual, expected, exact, floor=0.0):
    """How two snapshots (:meth:`tests.fuzz.worlds.World.snapshot`) differ, or ``None`` if
    they agree: bit for bit (``exact``) or to the tolerance of each parameter's dtype, but at
    least ``floor``."""
    if len(actual) != len(expected):
        return f"{len(actual)} parameters, expected {len(expected)}"
    for index, ((dtype, a), (expected_dtype, e)) in enumerate(zip(actual, expected)):
        if (dtype, a.shape) != (expected_dtype, e.shape):
            return f"parameter {index} is {dtype} {a.shape}, expected {expected_dtype} {e.shape}"
        if exact:
            if a.tobytes() != e.tobytes() and not np.array_equal(a, e, equal_nan=True):
                return f"parameter {index} differs from the twin's (max |diff| {np.nanmax(np.abs(a - e)):.3g})"
            continue
        finite = np.isfinite(e)
        if not np.array_equal(a[~finite], e[~finite], equal_nan=True) or not np.isfinite(a[finite]).all():
            return f"parameter {index}: NaN or infinity where torch.optim's is not, or not where it is"
        # Relative to the values' size, but at least 1: a parameter near zero (one element that
        # crossed it) would otherwise magnify a difference of an ulp of its earlier values.
        scale = max(np.max(np.abs(e[finite]), initial=0.0), 1.0)
        relative = np.max(np.abs(a[finite] - e[finite]), initial=0.0) / scale
        if relative > max(TOLERANCE.get(dtype, 1e-3), floor):
            return f"parameter {index}: max-norm relative difference {relative:.3g} from torch.optim"
    return None


def run_sequence(sequence, mirror=True):
    """Run ``sequence`` (:func:`tests.fuzz.sequences.draw_sequence`) and return its outcome:
    ``{"seed", "front", "status", "at" (the index of the deciding operation), "detail"}``.

    ``mirror=False`` leaves torch.optim out (for a NumPy run where torch cannot be imported).
    """
    seed, config, ops = sequence["seed"], sequence["config"], sequence["ops"]
    outcome = {"seed": seed, "front": config["front"], "status": "ok", "at": None, "detail": ""}

    def finish(status, at, detail):
        outcome.update(status=status, at=at, detail=detail)
        return outcome

    fuzzed = make_world(config, seed)
    others = {"mirror": make_world(config, seed, adamkit=False)} if mirror and has_mirror(config) else {}
    others["twin"] = make_world(config, seed)
    benign = True
    floor = 0.0  # the float32 tolerance once float32 values may have become float64 ones
    for index, op in enumerate(ops):
        if op.get("form") in _CASTS:
            floor = TOLERANCE["float32"]
        kind = CATALOGUE[op["op"]]
        error = attempt(fuzzed, op, seed, index)
        if error is not None and harness_error(error):
            return finish("harness", index, "".join(traceback.format_exception(error))[-2000:])
        if fuzzed.readonly_written():
            return finish("readonly_written", index, "an array made read-only was written")
        if outcome["status"] == "raised":
            continue  # adamkit raised before: the rest runs for crashes only
        recast = op["op"] == "state_dict" and recasts_on_load(config)
        if recast and config["front"] == "numpy":
            others.pop("mirror", None)  # torch's NAdam steps differently after the load, NumPy's not
        twin_skips = benign and kind.is_neutral(op) and not (recast and config["front"] == "torch")
        benign = benign and (kind.is_benign(op) or kind.is_neutral(op) or not kind.draws)
        for name, world in list(others.items()):
            if name == "twin" and twin_skips:
                continue
            saved = world.saved() if name == "mirror" and op["op"] == "step" else None
            other_error = attempt(world, op, seed, index)
            if saved is not None and error is None and _refilled(world, other_error, saved):
                other_error = attempt(world, op, seed, index)
            if other_error is not None and harness_error(other_error):
                return finish("harness", index, "".join(traceback.format_exception(other_error))[-2000:])
            if other_error is not None:
                del others[name]
                if error is None and name == "mirror" and op["op"] == "step":
                    return finish("accepted", index, f"torch.optim raised {describe(other_error)}")
        if error is not None:
            finish("raised", index, describe(error))
            continue
        if op["op"] != "step":
            continue
        snapshot = fuzzed.snapshot()
        for name, world in others.items():
            found = difference(snapshot, world.snapshot(), exact=name == "twin", floor=floor)
            if found is not None:
                return finish("wrong", index, f"{name}: {found}")
        if "mirror" not in others and benign and not all(np.isfinite(v).all() for _, v in snapshot):
            return finish("nonfinite", index, "a parameter is not finite after benign operations")
    return outcome
