"""bfloat16 in NumPy for the tests: uint16 storage holding the upper half of a float32, and the
reference of the kernels' bfloat16 steps (float32 arithmetic, each stored value rounded to
nearest even once, optionally with Kahan compensation) on the shared trajectories."""

import numpy as np

from adamkit.kernels import native, reference
from tests.kernels.trajectories import (
    GROUP_OF_TENSOR,
    for_each_group_step,
    gradients,
    groups,
    initial_params,
    initial_state,
    pick,
)


def to_float32(bits):
    """The float32 values of bfloat16 ``bits`` (exact)."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def round_to_bfloat16(values):
    """Round float32 ``values`` to bfloat16 bits, to nearest even; every NaN becomes 0x7FC0."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    odd = (bits >> 16) & 1
    rounded = ((bits + 0x7FFF + odd) >> 16).astype(np.uint16)
    return np.where(np.isnan(values), np.uint16(0x7FC0), rounded)


def compensated_store(target, compensation):
    """Kahan summation's store of the float32 result ``target`` into a bfloat16 parameter.

    With ``c`` the bfloat16 ``compensation``: ``s = target + c``, ``param = bf16(s)``,
    ``c = bf16(s - param)``, all in float32. Returns the new ``(param, compensation)`` bits.
    """
    total = np.asarray(target, dtype=np.float32) + to_float32(compensation)
    param = round_to_bfloat16(total)
    return param, round_to_bfloat16(total - to_float32(param))


def _store(array, target_dtype):
    return round_to_bfloat16(array) if target_dtype == "bfloat16" else array


def _load(array, stored_dtype):
    return to_float32(array) if stored_dtype == "bfloat16" else array.copy()


def reference_step(spec, hyper, params, grads, states, steps, state_dtype, compensations):
    """Upcast to float32, apply the reference rule, store parameters (Kahan-compensated when
    ``compensations`` is a list of buffers) and state back."""
    params32 = [to_float32(p) for p in params]
    states32 = [{key: _load(value, state_dtype) for key, value in s.items()} for s in states]
    reference.update(spec, hyper, params32, [to_float32(g) for g in grads], states32, steps)
    for i, (param, param32) in enumerate(zip(params, params32)):
        if compensations is None:
            param[...] = round_to_bfloat16(param32)
        else:
            param[...], compensations[i][...] = compensated_store(param32, compensations[i])
    for state, state32 in zip(states, states32):
        for key, value in state32.items():
            state[key] = _store(value, state_dtype)


def native_step(isa, num_threads=None):
    """A step through :func:`adamkit.kernels.native.update_pointers` with ``isa`` forced."""

    def step(spec, hyper, params, grads, states, steps, state_dtype, compensations):
        storage = np.uint16 if state_dtype == "bfloat16" else np.float32
        created = None
        for slot in spec.active_slots(hyper):
            if slot.fill is None:
                created = [slot.key not in state for state in states]
                for param, state in zip(params, states):
                    state.setdefault(slot.key, np.full(param.shape, 7, storage))
        native.update_pointers(
            spec,
            hyper,
            "bfloat16",
            [p.size for p in params],
            [p.ctypes.data for p in params],
            [g.ctypes.data for g in grads],
            {key: [s[key].ctypes.data for s in states] for key in states[0]},
            steps,
            state_dtype=state_dtype,
            created=created,
            compensation=None if compensations is None else [c.ctypes.data for c in compensations],
            isa=isa,
            num_threads=num_threads,
        )

    return step


def run(case, state_dtype, step, steps, *, kahan=False):
    """``(params, states, compensations)`` of bfloat16 parameters after ``steps`` steps of the
    shared trajectory of ``case``; ``compensations`` is ``None`` without ``kahan``."""
    spec, hypers = groups(case)
    params = [round_to_bfloat16(p) for p in initial_params("float32")]
    states = [
        {key: _store(value, state_dtype) for key, value in initial_state(spec, hypers[g], p).items()}
        for p, g in zip(initial_params("float32"), GROUP_OF_TENSOR)
    ]
    compensations = [np.zeros(p.shape, np.uint16) for p in params] if kahan else None
    all_grads = [[round_to_bfloat16(g) for g in grads] for grads in gradients("float32", steps)]

    def one_step(spec, hyper, t, indices, counts):
        picked = None if compensations is None else pick(compensations, indices)
        step(spec, hyper, pick(params, indices), pick(all_grads[t], indices), pick(states, indices), counts,
             state_dtype, picked)

    for_each_group_step(case, steps, one_step)
    return params, states, compensations
