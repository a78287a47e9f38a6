r"""Compact state of the optimizers of :data:`adamkit.specs.COMPACT`: ``state_dtype="int8"`` (8-bit
block-wise, see :mod:`adamkit.kernels.quantized`) and ``state_dtype="bf16"`` (bfloat16 with
stochastic rounding).

A parameter's state is quantised when the parameter is a float32 (or, for int8, a bfloat16) CPU
tensor of at least :data:`adamkit.compact.policy.MIN_QUANTIZED_NUMEL` elements (decided on its shape, so every
process of a job makes the same choice); smaller tensors, and other dtypes, keep torch's full-precision state, which
costs little. Quantised state holds each of torch's slots (Adam's ``exp_avg``, ``exp_avg_sq``,
``max_exp_avg_sq``...) as int8/uint8 codes of the
parameter's shape under ``<key>_codes``, and a float32 ``<key>_absmax`` with one scale per block
(:func:`adamkit.kernels.quantized.compact_keys`); this is what ``state_dict()`` saves. These
are not torch's keys on purpose: torch.optim casts whatever it finds under ``exp_avg`` to
float32, so codes there would be stepped as moments; without them its first step raises
``KeyError``. A checkpoint of adamkit 0.1.0, which kept the codes under torch's keys, still
loads (:func:`current_state_dict`).

Under FSDP2 a parameter is a DTensor sharded by rows, so its blocks follow rows (the row
layout of :mod:`adamkit.compact.int8`): codes and scales are DTensors sharded like the
parameter, each process steps its own rows, and ``torch.distributed.checkpoint`` can reshard
them to any number of processes. A sharded 1-d parameter cannot have whole blocks on every
process and keeps float32 state.

bfloat16 state keeps torch's keys with bfloat16 tensors: torch.optim's loading casts them to
the parameter's float32, which is exact, so they load there as the float32 state they stand for. Rounded to nearest, a bfloat16
``exp_avg_sq`` stalls: an increment :math:`(1-\beta_2)(g^2 - v)` below half its resolution
(:math:`2^{-9}v`, i.e. whenever :math:`|g^2 - v| < 2v` with :math:`\beta_2 = 0.999`) is
rounded away at every step. Here the fused kernel loads the bfloat16 averages, runs the rule in
float32 and stores them rounded *stochastically*, in the same pass: up with probability equal
to the remainder's fraction of an ulp, so the stored value is unbiased and small increments
accumulate in expectation. The random bits are a counter-based hash of each element's
position, the state slot and a seed made of the step count and the tensor's position in the
group (``csrc/kernels_api.h``), so runs are reproducible and the NumPy front end stores the
same bits.
"""

import numpy as np
import torch

from adamkit.compact.int8 import absmax_shape
from adamkit.compact.policy import DECODERS, ENCODERS, keeps_compact, rounding_seeds, with_current_keys
from adamkit.kernels import native, quantized
from adamkit.kernels.quantized import codes_key, coded_slot, compact_keys, scales_key
from adamkit.torch import _backend as backend
from adamkit.torch import _kahan as kahan
from adamkit.torch._local_shard import is_distributed, like, local

_CODE_DTYPES = {np.dtype(np.int8): torch.int8, np.dtype(np.uint8): torch.uint8}


def quantizes(param, state_dtype):
    """Whether ``param``'s state is kept 8-bit under ``state_dtype``."""
    dtype = str(param.dtype).removeprefix("torch.")
    return keeps_compact(state_dtype, dtype, param.numel()) and not (
        state_dtype == "int8" and is_distributed(param) and param.dim() < 2
    )


def is_quantized(state):
    """Whether a parameter's state dict holds 8-bit codes or their scales."""
    return any(coded_slot(key) is not None for key in state)


def holds(state, key):
    """Whether ``state`` holds slot (or count) ``key``, in full precision or as 8-bit codes."""
    return key in state or codes_key(key) in state


def _holds_codes(value):
    return torch.is_tensor(value) and value.dtype in (torch.int8, torch.uint8)


def current_state_dict(state_dict):
    """``state_dict`` with the 8-bit codes of adamkit 0.1.0 checkpoints moved to their current
    keys (:func:`adamkit.compact.policy.with_current_keys`). Anything that is not a state dict is
    returned as it is, for the caller's checks to reject."""
    if not isinstance(state_dict, dict) or not isinstance(state_dict.get("state"), dict):
        return state_dict
    return {
        **state_dict,
        "state": {
            pid: with_current_keys(state, _holds_codes) if isinstance(state, dict) else state
            for pid, state in state_dict["state"].items()
        },
    }


def float32_scales(saved):
    """Copies of the float32 8-bit scales of one parameter's ``saved`` state, which torch's
    loading would round to a bfloat16 parameter's dtype."""
    return {
        key: value.detach().clone().contiguous()
        for key, value in saved.items()
        if torch.is_tensor(value) and value.dtype == torch.float32 and coded_slot(key) is not None and key == scales_key(coded_slot(key))
    }


def uncast_copies(param, saved, slot_keys, float32_state, state_dtype):
    """Copies of what torch's loading would cast to ``param``'s dtype in its ``saved`` state:
    8-bit codes and scales that load as they were saved (:func:`kept_compact`), or, for a
    bfloat16 ``param``, float32 copies of its full-precision ``slot_keys`` if its state is float32
    (``float32_state``) or is to be encoded in 8 bits under ``state_dtype``."""
    if is_quantized(saved) and quantizes(param, state_dtype):
        return {key: value.detach().clone().contiguous() for key, value in saved.items() if coded_slot(key) is not None}
    if param.dtype is not torch.bfloat16 or not (float32_state or quantizes(param, state_dtype)):
        return {}
    return {
        key: value.detach().to(torch.float32, copy=True).contiguous()
        for key, value in saved.items()
        if key in slot_keys and torch.is_tensor(value) and value.is_floating_point()
    }


def code_dtype(key):
    """The torch dtype of the 8-bit codes of state ``key``: int8 or uint8."""
    return _CODE_DTYPES[np.dtype(quantized.CODE_DTYPES[key])]


def quantize_state(state, keys, state_dtype):
    """Replace the float tensors ``state[key]`` (``key`` in ``keys``) by codes and scales, or by
    bfloat16 tensors, in place."""
    for key in keys:
        if state_dtype == "bf16":
            state[key] = state[key].to(torch.bfloat16)
            continue
        value = state.pop(key)
        rows = is_distributed(value)
        values = local(value).detach().to(torch.float32).numpy(force=True)
        codes, absmax = ENCODERS[key](values, rows=rows)
        state[codes_key(key)] = like(torch.from_numpy(codes), value)
        state[scales_key(key)] = like(torch.from_numpy(absmax), value, absmax_shape(value.shape, rows))


def new_state(param, keys, state_dtype):
    """Zero state for ``param``: zero codes and zero scales, or bfloat16 zeros."""
    if state_dtype == "bf16":
        return {key: torch.zeros_like(param, dtype=torch.bfloat16) for key in keys}
    rows = is_distributed(param)
    shard = local(param)
    state = {}
    for key in keys:
        state[codes_key(key)] = torch.zeros_like(param, dtype=code_dtype(key), memory_format=torch.contiguous_format)
        scales = torch.zeros(absmax_shape(shard.shape, rows), dtype=torch.float32)
        state[scales_key(key)] = like(scales, param, absmax_shape(param.shape, rows))
    return state


def dequantized(state):
    """A copy of one parameter's state dict with every compact slot decoded to float32 under
    torch's key: 8-bit codes with their scales, and bfloat16 values."""
    plain = {}
    for key, value in state.items():
        slot = coded_slot(key)
        codes, scales = compact_keys(slot) if slot is not None else (None, None)
        if slot is None:
            plain[key] = value.float() if key in DECODERS and torch.is_tensor(value) and value.dtype == torch.bfloat16 else value
        elif key == codes and scales in state:
            values = DECODERS[slot](local(value).numpy(), local(state[scales]).numpy())
            plain[slot] = like(torch.from_numpy(np.ascontiguousarray(values)), value)
        elif not (key == scales and codes in state):
            plain[key] = value
    return plain


def to_float32_state_dict(state_dict, kept=frozenset()):
    """A torch.optim-compatible copy of ``state_dict`` with quantised state decoded to float32,
    but for the parameter ids in ``kept``.

    Anything that is not a state dict is returned as it is, for the caller's checks to reject.
    """
    if not isinstance(state_dict, dict) or not isinstance(state_dict.get("state"), dict):
        return state_dict
    return {
        **state_dict,
        "state": {
            pid: dequantized(state) if isinstance(state, dict) and pid not in kept else state
            for pid, state in state_dict["state"].items()
        },
    }


def kept_compact(optimizer, state_dict):
    """The ids of the parameters whose 8-bit state in ``state_dict`` (checked to fit) loads as it
    was saved: those that keep 8-bit state in ``optimizer``. Decoding and encoding again could
    move a scale by a rounding (``s / 127^2 * 127^2`` is not always ``s``)."""
    kept = set()
    for group, saved_group in zip(optimizer.param_groups, state_dict["param_groups"]):
        for param, index in zip(group["params"], saved_group["params"]):
            saved = state_dict["state"].get(index)
            if isinstance(saved, dict) and is_quantized(saved) and quantizes(param, optimizer.state_dtype):
                kept.add(index)
    return kept


def update(spec, hyperparameters, params, grads, states, steps):
    """Step contiguous float32 and bfloat16 ``params`` whose ``states`` are quantised, with one
    kernel call per dtype (a bfloat16 parameter with its Kahan buffer, if it has one).

    DTensor parameters (FSDP2) step their local rows, whose blocks restart at every row."""
    for dtype in dict.fromkeys(p.dtype for p in params):
        picked = [i for i, p in enumerate(params) if p.dtype == dtype]
        quantized.update_pointers(
            spec,
            hyperparameters,
            grad_ptrs=[local(grads[i]).data_ptr() for i in picked],
            steps=[steps[i] for i in picked],
            **int8_arguments(spec, hyperparameters, [params[i] for i in picked], [states[i] for i in picked]),
        )


def int8_arguments(spec, hyperparameters, params, states):
    """The arguments of :func:`adamkit.kernels.quantized.update_pointers` but for the gradients'
    pointers and the step counts, for contiguous ``params`` of one dtype (float32 or bfloat16)
    with 8-bit ``states``."""
    shards = [local(p) for p in params]
    return {
        "dtype": params[0].dtype,
        "compensation": kahan.pointers(states),
        "numels": [shard.numel() for shard in shards],
        "param_ptrs": [shard.data_ptr() for shard in shards],
        "state_ptrs": {
            name: [local(state[name]).data_ptr() for state in states]
            for key in quantized.state_keys(spec, hyperparameters)
            for name in compact_keys(key)
        },
        "row_numels": [_row_numel(p) for p in params],
    }


def _row_numel(param):
    """The elements per block row: a DTensor's rows (``param.shape[1:]``), else the whole tensor."""
    if is_distributed(param):
        return max(int(np.prod(param.shape[1:], dtype=np.int64)), 1)
    return max(param.numel(), 1)


def is_bfloat16(param, state):
    """Whether a float32 parameter has bfloat16 state (``state_dtype="bf16"``)."""
    return param.dtype == torch.float32 and any(
        key in DECODERS and torch.is_tensor(value) and value.dtype == torch.bfloat16 for key, value in state.items()
    )


def _update_bfloat16(spec, hyperparameters, params, grads, states, steps):
    """Step contiguous float32 ``params`` whose ``states`` are bfloat16 with one kernel call,
    which stores the averages rounded stochastically, seeded by each parameter's step and its
    position among the parameters stepped here (:func:`adamkit.compact.policy.rounding_seeds`)."""
    native.update_pointers(
        spec,
        hyperparameters,
        grad_ptrs=[local(g).data_ptr() for g in grads],
        steps=steps,
        rounding_seeds=rounding_seeds(steps),
        **backend.native_arguments(spec, hyperparameters, torch.float32, params, states),
    )


def update_quantized(spec, hyperparameters, params, states, steps):
    """Step the parameters whose state is quantised or bfloat16; return the others'
    ``(params, states, steps)``."""
    kinds = [
        _update_bfloat16 if is_bfloat16(p, state) else update if is_quantized(state) else None
        for p, state in zip(params, states)
    ]
    for step in (_update_bfloat16, update):
        picked = [i for i, kind in enumerate(kinds) if kind is step]
        if picked:
            backend.step_contiguous(step, spec, hyperparameters, *([column[i] for i in picked] for column in (params, states, steps)))
    rest = [i for i, kind in enumerate(kinds) if kind is None]
    return [params[i] for i in rest], [states[i] for i in rest], [steps[i] for i in rest]
