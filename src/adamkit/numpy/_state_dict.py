"""The flat ``state_dict`` of a NumPy optimizer: string keys to arrays, ready for ``np.savez``.

================================  ==========================================================
key                               value
================================  ==========================================================
``param_groups.<g>.params``       int64 ids of group ``g``'s parameters (their flat positions)
``param_groups.<g>.<name>``       a hyperparameter: a 0-d float or bool array (NaN for an
                                  optional one left unset, ``None``); ``betas`` (2,) or (3,)
``state.<id>.<key>``              parameter ``<id>``'s state under torch's key; ``step`` is a
                                  0-d float32 array
``rule``                          the optimizer's name (``"RAdam"``), a 0-d str array
================================  ==========================================================

A state dict loads only into an optimizer of the rule it names: rules with the same keys
(RAdam's and ADOPT's ``exp_avg`` and ``exp_avg_sq``) mean different things by them. One
without ``rule``, saved before adamkit wrote it, loads into any optimizer it fits.

As in torch, a saved id refers to the parameter at the same position in the loading
optimizer's groups. Compact state (``state_dtype``) is saved as it is held
(:mod:`adamkit.numpy._state_layout`): 8-bit codes under ``<key>_codes`` with their
``<key>_absmax`` scales, and bfloat16 bit patterns as uint16 arrays. Loading reads every uint16
state array as bfloat16, and the codes of adamkit 0.1.0, saved under torch's keys, as codes
(:func:`adamkit.compact.policy.with_current_keys`).
"""

from collections.abc import Mapping

import numpy as np

from adamkit.compact import bfloat16
from adamkit.compact.int8 import absmax_shape
from adamkit.compact.policy import DECODERS, with_current_keys
from adamkit.kernels.quantized import CODE_DTYPES, coded_slot, compact_keys, scales_key
from adamkit.numpy import _state_layout
from adamkit.specs import SCALAR_STATE_KEYS
from adamkit.validation import MissingKeyError

_REAL_KINDS = "fiu"
RULE_KEY = "rule"


def flatten(optimizer, states):
    """A copy of ``optimizer``'s hyperparameters and of ``states`` (its state dicts, or
    converted copies) as a flat dict of arrays."""
    flat = {RULE_KEY: np.array(optimizer.spec.name)}
    position = 0
    for g, group in enumerate(optimizer.param_groups):
        count = len(group["params"])
        flat[f"param_groups.{g}.params"] = np.arange(position, position + count, dtype=np.int64)
        position += count
        for name in (*optimizer.hyperparameters, *optimizer.spec.group_state):
            flat[f"param_groups.{g}.{name}"] = np.array(_saved(group[name]))
    for index, state in enumerate(states):
        for key, value in state.items():
            flat[f"state.{index}.{key}"] = np.array(value, copy=True)
    return flat


def parse(optimizer, saved):
    """Check ``saved`` against ``optimizer`` and return ``(group_hyperparameters, states)``.

    ``group_hyperparameters[g]`` holds group ``g``'s checked hyperparameters and ``states[i]``
    the state of the ``i``-th parameter in flat order, cast to its dtype. Raises
    ``ValueError`` naming the offending key (:class:`~adamkit.validation.MissingKeyError`, also
    a ``KeyError``, for a missing one); nothing is changed.
    """
    if not isinstance(saved, Mapping):
        raise ValueError(f"state_dict must be a mapping of names to arrays, got {type(saved).__name__}")
    _check_rule(optimizer, saved)
    saved_groups, saved_states = {}, {}
    for key, value in saved.items():
        if key == RULE_KEY:
            continue
        section, index, name = _split_key(key)
        target = saved_groups if section == "param_groups" else saved_states
        target.setdefault(index, {})[name] = value
    count = len(optimizer.param_groups)
    if sorted(saved_groups) != list(range(count)):
        raise ValueError(
            f"state_dict has parameter groups {sorted(saved_groups)}, the optimizer has {count} "
            f"(numbered 0 to {count - 1})"
        )
    hyperparameters, positions = [], {}
    position = 0
    for g, group in enumerate(optimizer.param_groups):
        ids = _group_ids(saved_groups[g], g, len(group["params"]))
        for saved_id in ids:
            if saved_id in positions:
                raise ValueError(f"state_dict lists parameter id {saved_id} in more than one place")
            positions[saved_id] = position
            position += 1
        hyperparameters.append(_group_hyperparameters(optimizer, saved_groups[g], g))
    params = [param for group in optimizer.param_groups for param in group["params"]]
    states = [{} for _ in params]
    for saved_id, entries in saved_states.items():
        if saved_id not in positions:
            raise ValueError(f"state_dict has state for parameter id {saved_id}, which no group lists")
        position = positions[saved_id]
        states[position] = _param_state(optimizer, saved_id, entries, params[position])
    return hyperparameters, states


def _check_rule(optimizer, saved):
    """Raise ``ValueError`` if ``saved`` names a rule other than ``optimizer``'s."""
    if RULE_KEY not in saved:
        return
    rule = np.asarray(saved[RULE_KEY])
    if rule.shape != () or rule.dtype.kind != "U":
        raise ValueError(f"state_dict[{RULE_KEY!r}] must be a 0-d str array naming an optimizer, got {rule.dtype} {rule.shape}")
    if str(rule) != optimizer.spec.name:
        raise ValueError(
            f"state_dict was saved by {str(rule)} (state_dict[{RULE_KEY!r}]), not {optimizer.spec.name}: "
            "another rule's state means something else, even under the same keys"
        )


def _split_key(key):
    parts = key.split(".") if isinstance(key, str) else ()
    if len(parts) != 3 or parts[0] not in ("state", "param_groups") or not _is_index(parts[1]):
        raise ValueError(
            f"state_dict has an unknown key {key!r} "
            f"(expected 'param_groups.<g>.<name>', 'state.<id>.<key>' or {RULE_KEY!r})"
        )
    return parts[0], int(parts[1]), parts[2]


def _is_index(text):
    return text.isascii() and text.isdigit() and str(int(text)) == text


def _group_ids(saved_group, g, size):
    key = f"param_groups.{g}.params"
    if "params" not in saved_group:
        raise MissingKeyError(f"state_dict lacks {key!r}")
    ids = np.asarray(saved_group["params"])
    if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
        raise ValueError(
            f"state_dict[{key!r}] must be a 1-d array of integer ids, got {ids.dtype} {ids.shape}"
        )
    if ids.size != size:
        raise ValueError(
            f"state_dict parameter group {g} has {ids.size} parameters, the optimizer's has {size}"
        )
    return [int(saved_id) for saved_id in ids]


def _group_hyperparameters(optimizer, saved_group, g):
    # The group's own state (Schedule-Free's k, weight_sum...) is saved beside its hyperparameters.
    defaults = {**optimizer.defaults, **optimizer.spec.group_state}
    names = [*optimizer.hyperparameters, *optimizer.spec.group_state]
    unknown = sorted(saved_group.keys() - set(names) - {"params"})
    if unknown:
        raise ValueError(
            f"state_dict has unknown key 'param_groups.{g}.{unknown[0]}' for {optimizer.spec.name}"
        )
    missing = [name for name in names if name not in saved_group]
    if missing:
        raise MissingKeyError(f"state_dict lacks 'param_groups.{g}.{missing[0]}'")
    values = {name: _hyperparameter(f"param_groups.{g}.{name}", defaults[name], saved_group[name]) for name in names}
    try:
        return optimizer.checked_hyperparameters(values, f"state_dict parameter group {g}")
    except (TypeError, ValueError) as error:
        raise ValueError(str(error)) from None


def _saved(value):
    """A hyperparameter as an array holds it: ``None`` (LAMB's ``trust_clip``, AdEMAMix's
    ``t_alpha_beta3``, Adafactor's ``eps[0]``) as NaN, which no check accepts."""
    if isinstance(value, tuple):
        return tuple(np.nan if item is None else item for item in value)
    return np.nan if value is None else value


def _hyperparameter(key, default, value):
    array = np.asarray(value)
    if isinstance(default, bool):
        if array.shape != () or array.dtype != np.bool_:
            raise ValueError(f"state_dict[{key!r}] must be a 0-d bool array, got {array.dtype} {array.shape}")
        return bool(array)
    shape = (len(default),) if isinstance(default, tuple) else ()
    if array.shape != shape or array.dtype.kind not in _REAL_KINDS:
        raise ValueError(
            f"state_dict[{key!r}] must be a real array of shape {shape}, got {array.dtype} {array.shape}"
        )
    # NaN where the default is None is a saved None (:func:`_saved`); elsewhere the check refuses it.
    if not shape:
        return None if default is None and np.isnan(array) else float(array)
    return tuple(None if np.isnan(item) and fallback is None else float(item) for item, fallback in zip(array, default))


def _param_state(optimizer, saved_id, entries, param):
    """The saved ``entries`` of one parameter, checked and in the layout ``optimizer`` holds."""
    held = _state_layout.layout(param, optimizer.state_dtype)
    if optimizer.spec.step_optional and entries and "step" not in entries:
        entries = {"step": np.zeros((), dtype=np.float32), **entries}
    if optimizer.spec.counts_steps and "step" not in entries:
        raise MissingKeyError(f"state_dict has state for parameter id {saved_id} but lacks 'state.{saved_id}.step'")
    for slot in optimizer.spec.scalar_state:
        if slot.key not in entries:
            raise MissingKeyError(f"state_dict has state for parameter id {saved_id} but lacks 'state.{saved_id}.{slot.key}'")
    entries = with_current_keys(entries, _holds_codes)
    prefix = f"state.{saved_id}."
    state = {}
    for name, value in entries.items():
        slot = coded_slot(name)
        if slot is None:
            array = _state_array(optimizer, prefix + name, name, value, param)
            scalar = name in SCALAR_STATE_KEYS
            state.update({name: array} if scalar else _slot(prefix, name, array, None, param, held))
            continue
        codes, scales = compact_keys(slot)
        array = _state_array(optimizer, prefix + name, slot, value, param) if name == codes else None
        if codes not in entries:
            raise ValueError(f"state_dict has {prefix + scales!r} without the codes it scales, {prefix + codes!r}")
        if scales not in entries:
            raise ValueError(f"state_dict has {prefix + codes!r} without its scales, {prefix + scales!r}")
        if slot in entries:
            raise ValueError(f"state_dict has both {prefix + slot!r} and its 8-bit codes {prefix + codes!r}")
        if name == codes:
            state.update(_slot(prefix, slot, array, entries[scales], param, held))
    return state


def _holds_codes(value):
    return np.asarray(value).dtype in (np.int8, np.uint8)


def _state_array(optimizer, key, name, value, param):
    """The saved array ``value`` of state ``name``, checked: a known key, real numbers, a
    finite count for ``step`` (as float32), its parameter's shape for the others."""
    allowed = optimizer.state_keys
    if name not in allowed:
        raise ValueError(
            f"state_dict has unknown key {key!r}: {optimizer.spec.name} state holds {', '.join(allowed)}"
        )
    array = np.asarray(value)
    if array.dtype.kind not in _REAL_KINDS:
        raise ValueError(f"state_dict[{key!r}] must hold real numbers, got dtype {array.dtype}")
    if name in SCALAR_STATE_KEYS:
        if array.shape != () or not (np.isfinite(array) and array >= 0):
            what = "count" if name == "step" else "number"
            raise ValueError(f"state_dict[{key!r}] must be a finite 0-d {what} >= 0, got {array!r}")
        return np.array(array, dtype=np.float32)
    slot = next(slot for slot in optimizer.spec.slots if slot.key == name)
    shape = slot.shape_for(param.shape)
    if shape is None:
        raise ValueError(f"state_dict has {key!r}, which {optimizer.spec.name} keeps for no parameter of shape {param.shape}")
    if array.shape != shape:
        raise ValueError(
            f"state_dict[{key!r}] has shape {array.shape}, but a parameter of shape {param.shape} keeps {shape}"
        )
    return array


def _slot(prefix, name, array, scales, param, held):
    """``{key: array}``: the saved ``array`` of slot ``name`` (its codes if ``scales`` are given)
    of the parameter whose keys start with ``prefix``, as ``held`` holds it.

    Codes or bfloat16 patterns of that very layout are copied; others are decoded to float32
    first, then converted by :func:`adamkit.numpy._state_layout.stored`.
    """
    key = prefix + name
    if scales is not None:
        scales = _checked_scales(prefix, name, array, scales, param)
        if held == "int8" and scales.shape == absmax_shape(param.shape):
            return dict(zip(compact_keys(name), (np.array(array, order="C", copy=True), np.array(scales, copy=True))))
        array = DECODERS[name](array, scales)
    elif array.dtype == _state_layout.BFLOAT16_BITS:
        if held == "bf16":
            return {name: np.array(array, order="C", copy=True)}
        array = bfloat16.to_float32(array)
    elif array.dtype.kind != "f":
        if name in CODE_DTYPES and array.dtype in (np.int8, np.uint8):
            raise ValueError(f"state_dict[{key!r}] holds {array.dtype} codes without their scales, {prefix + scales_key(name)!r}")
        raise ValueError(
            f"state_dict[{key!r}] must hold floating-point numbers or bfloat16 bit patterns (uint16), got dtype {array.dtype}"
        )
    try:
        return _state_layout.stored(name, array, param, held)
    except ValueError as error:
        raise ValueError(f"state_dict[{key!r}] cannot be held with state_dtype={held!r}: {error}") from None


def _checked_scales(prefix, name, codes, scales, param):
    """``scales`` as an array, after checking that ``codes`` are 8-bit codes of slot ``name`` and
    ``scales`` hold one finite float32 >= 0 per block (flat, or by rows as FSDP2 shards them)."""
    codes_name, scales_name = (prefix + part for part in compact_keys(name))
    scales = np.asarray(scales)
    code_dtype = np.dtype(CODE_DTYPES[name])
    if codes.dtype != code_dtype:
        raise ValueError(f"state_dict[{codes_name!r}] must hold {code_dtype} codes, got {codes.dtype}")
    shapes = [absmax_shape(param.shape)] + ([absmax_shape(param.shape, rows=True)] if param.ndim else [])
    if scales.dtype != np.float32 or scales.shape not in shapes:
        raise ValueError(
            f"state_dict[{scales_name!r}] must be a float32 array of shape "
            f"{shapes[0]}, one scale per block of its codes, got {scales.dtype} {scales.shape}"
        )
    if not (np.isfinite(scales).all() and (scales >= 0).all()):
        raise ValueError(f"state_dict[{scales_name!r}] must hold finite scales >= 0")
    return scales
