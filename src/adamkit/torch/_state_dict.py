"""Checks that a ``state_dict`` fits an optimizer before anything is loaded, and the form in
which torch's loading then takes it.

torch.optim checks the number and sizes of the parameter groups and loads the rest as it is:
a checkpoint of another optimizer fails at the next step (``KeyError: 'betas'``), and a
negative ``step``, a state tensor of the wrong shape or 8-bit codes without their scales
train on garbage. Here the whole ``state_dict`` is checked first, so that one that does not
fit raises and changes nothing:

* the rule that saved it, if it says (:mod:`adamkit.torch._rule_name`);
* the groups: their number and sizes, each parameter id listed once, the hyperparameters the
  rule needs (:attr:`adamkit.rules._spec.Spec.checkpoint_keys`) and the values of those present;
* each parameter's state: only the rule's keys (``step``, its slots, a Kahan compensation
  buffer, the codes and scales of 8-bit slots); ``step`` a finite count >= 0, as a number or
  a 0-d real tensor; every slot of its parameter's shape, and floating point (complex of the
  parameter's dtype for a complex parameter), or 8-bit codes of the slot's code dtype
  (:mod:`adamkit.torch._compact_state`) with their float32 scales, one per block, finite and
  >= 0, and not both; the compensation buffer bfloat16 of the parameter's shape.

A checkpoint of adamkit 0.1.0, whose codes are under torch's keys, is read with the codes moved
to their current keys first (:func:`adamkit.torch._compact_state.current_state_dict`).

A missing key raises :class:`~adamkit.validation.MissingKeyError` (a ``KeyError``, as torch
raises, and a ``ValueError``); anything else ``ValueError``.
"""

import math
import numbers

import numpy as np
import torch

from adamkit.compact.int8 import absmax_shape
from adamkit.kernels.quantized import CODE_DTYPES, compact_keys, scales_key
from adamkit.torch import _compact_state as compact_state
from adamkit.torch import _kahan as kahan
from adamkit.torch import _sparse
from adamkit.torch._local_shard import local
from adamkit.torch._rule_name import check_rule, without_rule
from adamkit.validation import MissingKeyError


def loadable_state_dict(optimizer, state_dict):
    """``state_dict`` as torch's ``load_state_dict`` takes it, once :func:`check_state_dict_fits`
    has passed: compact state decoded to float32, and without the ``None`` that torch's SGD
    saved for a momentum buffer it had not made yet (older torch releases)."""
    state_dict = compact_state.current_state_dict(state_dict)
    check_state_dict_fits(optimizer, state_dict)
    state_dict = with_steps(optimizer.spec, state_dict)
    converted = compact_state.to_float32_state_dict(state_dict, compact_state.kept_compact(optimizer, state_dict))
    return {
        **converted,
        "param_groups": without_rule(converted["param_groups"]),
        "state": {
            param_id: {key: value for key, value in state.items() if value is not None} if isinstance(state, dict) else state
            for param_id, state in converted["state"].items()
        },
    }


def step_dtype():
    """The dtype of a ``step`` tensor: torch keeps it in the default scalar dtype (float32 unless
    the default dtype is float64)."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def with_steps(spec, state_dict):
    """``state_dict`` with a zero ``step`` in each parameter's state that has none, for a rule
    whose checkpoints may lack it (:attr:`adamkit.rules._spec.Spec.step_optional`)."""
    if not spec.step_optional:
        return state_dict
    states = {
        param_id: {"step": torch.tensor(0.0, dtype=step_dtype()), **state}
        if isinstance(state, dict) and state and "step" not in state
        else state
        for param_id, state in state_dict["state"].items()
    }
    return {**state_dict, "state": states}


def check_state_dict_fits(optimizer, state_dict):
    """Raise ``ValueError`` (:class:`~adamkit.validation.MissingKeyError` for a missing key)
    unless ``state_dict`` can be loaded into ``optimizer`` as the module docstring says."""
    if not isinstance(state_dict, dict):
        raise ValueError(f"state_dict must be a dict with 'state' and 'param_groups', got {type(state_dict).__name__}")
    for key in ("state", "param_groups"):
        if key not in state_dict:
            raise MissingKeyError(f"state_dict has no {key!r}")
    params_by_id = _check_groups(optimizer, state_dict["param_groups"])
    if not isinstance(state_dict["state"], dict):
        raise ValueError(f"state_dict['state'] must be a dict, got {type(state_dict['state']).__name__}")
    for param_id, param_state in state_dict["state"].items():
        if isinstance(param_id, str):
            continue  # not a parameter's state: an entry a hook stored, which torch loads as it is
        if param_id not in params_by_id:
            raise ValueError(f"state_dict has state for parameter id {param_id!r}, which no group lists")
        _check_param_state(optimizer, f"state_dict['state'][{param_id!r}]", param_state, params_by_id[param_id])


def _check_groups(optimizer, saved_groups):
    """Check the saved parameter groups; return ``{saved id: the parameter it stands for}``."""
    if not isinstance(saved_groups, (list, tuple)):
        raise ValueError(f"state_dict['param_groups'] must be a list, got {type(saved_groups).__name__}")
    check_rule(optimizer.spec, saved_groups)
    if len(saved_groups) != len(optimizer.param_groups):
        raise ValueError(
            f"state_dict has {len(saved_groups)} parameter groups, the optimizer has "
            f"{len(optimizer.param_groups)}"
        )
    params_by_id = {}
    for index, (saved, group) in enumerate(zip(saved_groups, optimizer.param_groups)):
        where = f"state_dict['param_groups'][{index}]"
        if not isinstance(saved, dict):
            raise ValueError(f"{where} must be a dict, got {type(saved).__name__}")
        if "params" not in saved:
            raise MissingKeyError(f"{where} has no 'params'")
        if len(saved["params"]) != len(group["params"]):
            raise ValueError(
                f"state_dict parameter group {index} has {len(saved['params'])} parameters, "
                f"the optimizer's has {len(group['params'])}"
            )
        _check_hyperparameters(optimizer.spec, saved, where)
        for param_id, param in zip(saved["params"], group["params"]):
            if param_id in params_by_id:
                raise ValueError(f"state_dict lists parameter id {param_id!r} in more than one place")
            params_by_id[param_id] = param
    return params_by_id


def _check_hyperparameters(spec, saved, where):
    missing = [key for key in spec.checkpoint_keys if key not in saved]
    if missing:
        raise MissingKeyError(
            f"{where} has no {missing[0]!r}, a hyperparameter of {spec.name} (is it a checkpoint "
            "of another optimizer?)"
        )
    try:
        spec.validate(saved)
        _sparse.check_mode(spec, saved)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {error}") from None


def _check_param_state(optimizer, where, state, param):
    """Check one parameter's saved state (``where`` names it) against ``param``."""
    if not isinstance(state, dict):
        raise ValueError(f"{where} must be a dict, got {type(state).__name__}")
    spec = optimizer.spec
    slots = {slot.key: slot for slot in spec.slots}
    scalars = tuple(slot.key for slot in spec.scalar_state)
    keys = ("step",) * spec.counts_steps + scalars + tuple(slots)
    coded = {key: compact_keys(key) for key in slots if key in CODE_DTYPES}
    compact = {name for names in coded.values() for name in names}
    for key in state:
        if key not in keys and key not in compact and key != kahan.KEY:
            raise ValueError(f"{where} has {key!r}, which is not state of {spec.name} (it keeps {', '.join(keys)})")
    for key, (codes, scales) in coded.items():
        if scales in state and codes not in state:
            raise ValueError(f"{where} has {scales!r} without the codes it scales, {codes!r}")
        if codes in state and scales not in state:
            raise ValueError(f"{where}[{codes!r}] holds codes without their scales, {scales!r}")
        if codes in state and key in state:
            raise ValueError(f"{where} has both {key!r} and its 8-bit codes {codes!r}")
    if spec.counts_steps and not spec.step_optional and state and "step" not in state:
        raise MissingKeyError(f"{where} has no 'step'")
    if "step" in state:
        _check_step(f"{where}['step']", state["step"])
    for key in scalars:
        if state and key not in state:
            raise MissingKeyError(f"{where} has no {key!r}")
        if key in state:
            _check_step(f"{where}[{key!r}]", state[key])
    for key, slot in slots.items():
        if key in coded and coded[key][0] in state:
            codes, scales = coded[key]
            _check_shape(f"{where}[{codes!r}]", state[codes], param)
            _check_codes(where, key, state[codes], state[scales], param)
            continue
        value = state.get(key)
        if value is None and (key not in state or slot.fill is None):
            continue  # not made yet: torch's SGD saved None for a momentum buffer it had not made
        shape = slot.shape_for(param.shape)
        if shape is None:
            raise ValueError(f"{where} has {key!r}, which {spec.name} keeps for no parameter of shape {tuple(param.shape)}")
        _check_shape(f"{where}[{key!r}]", value, param, shape)
        _check_values(where, key, value, param, optimizer.state_dtype)
    if kahan.KEY in state:
        buffer = state[kahan.KEY]
        _check_shape(f"{where}[{kahan.KEY!r}]", buffer, param)
        if buffer.dtype != torch.bfloat16:
            raise ValueError(f"{where}[{kahan.KEY!r}] must be a bfloat16 tensor, got {buffer.dtype}")


def _check_step(where, step):
    """``step`` must be a finite count >= 0: a real number, or a 0-d real tensor."""
    if torch.is_tensor(step):
        step = local(step)
        if step.dim() != 0 or step.is_complex() or step.dtype is torch.bool:
            raise ValueError(f"{where} must be a number or a 0-d real tensor, got {step.dtype} {tuple(step.shape)}")
        value = step.item()
    elif isinstance(step, numbers.Real) and not isinstance(step, bool):
        value = float(step)
    else:
        raise ValueError(f"{where} must be a number or a 0-d real tensor, got {type(step).__name__}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{where} must be a finite count >= 0, got {value!r}")


def _check_shape(where, value, param, shape=None):
    """``value`` must be a tensor of ``shape``, by default its parameter's."""
    if not torch.is_tensor(value):
        raise ValueError(f"{where} must be a tensor, got {type(value).__name__}")
    if shape is None and value.shape != param.shape:
        raise ValueError(f"{where} has shape {tuple(value.shape)}, but its parameter has shape {tuple(param.shape)}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise ValueError(f"{where} has shape {tuple(value.shape)}, but a parameter of shape {tuple(param.shape)} keeps {tuple(shape)}")


def _check_values(where, key, value, param, state_dtype):
    """Slot ``key`` of the state ``where`` names, held in full: floating point (complex of the
    parameter's dtype for a complex parameter), and >= 0 where the optimizer will encode it
    with an unsigned 8-bit map."""
    where = f"{where}[{key!r}]"
    if value.dtype in (torch.int8, torch.uint8) and key in CODE_DTYPES:
        raise ValueError(f"{where} holds {value.dtype} codes without their scales, {scales_key(key)!r}")
    if param.is_complex() and value.dtype != param.dtype:
        raise ValueError(f"{where} must be a {param.dtype} tensor, as its complex parameter, got {value.dtype}")
    if not param.is_complex() and not value.is_floating_point():
        raise ValueError(f"{where} must be a floating-point tensor, got {value.dtype}")
    unsigned = CODE_DTYPES.get(key) is np.uint8
    if unsigned and state_dtype == "int8" and compact_state.quantizes(param, state_dtype) and bool((local(value) < 0).any()):
        raise ValueError(
            f"{where} has negative values, which state_dtype='int8' cannot hold: the 8-bit map of "
            f"{key} holds values >= 0"
        )


def _check_codes(where, key, codes, scales, param):
    """8-bit ``codes`` of slot ``key`` of the state ``where`` names, with their ``scales``: one
    finite float32 scale >= 0 per block, flat or by rows (as FSDP2 shards them)."""
    codes_name, scales_name = compact_keys(key)
    code_dtype = compact_state.code_dtype(key)
    if codes.dtype != code_dtype:
        raise ValueError(f"{where}[{codes_name!r}] must hold {code_dtype} codes, got {codes.dtype}")
    shapes = [absmax_shape(param.shape)] + ([absmax_shape(param.shape, rows=True)] if param.dim() else [])
    scales_where = f"{where}[{scales_name!r}]"
    if not torch.is_tensor(scales) or scales.dtype != torch.float32 or tuple(scales.shape) not in shapes:
        found = f"{scales.dtype} {tuple(scales.shape)}" if torch.is_tensor(scales) else type(scales).__name__
        raise ValueError(
            f"{scales_where} must be a float32 tensor of shape {shapes[0]}, one scale per block of "
            f"its codes, got {found}"
        )
    values = local(scales)
    if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
        raise ValueError(f"{scales_where} must hold finite scales >= 0")
