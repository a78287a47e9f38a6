"""bfloat16 parameters: float32 arithmetic, state in float32 or bfloat16, each stored value rounded
to nearest even once. The truth is the reference rule on the float32 upcast, then rounded."""

import functools

import numpy as np
import pytest

from adamkit.kernels import native, reference
from tests.kernels.bfloat16 import round_to_bfloat16, to_float32
from tests.kernels.trajectories import (
    ALL_CASES,
    GROUP_OF_TENSOR,
    assert_same_trajectory,
    gradients,
    groups,
    initial_params,
    initial_state,
    tensor_steps,
)

STEPS = 6
ISAS = ("avx512", "avx2", "scalar")


def test_rounding_helper_agrees_with_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    halfway = (rng.integers(0, 2**16, 1000, dtype=np.uint32) << 16 | 0x8000).view(np.float32)
    values = np.concatenate(
        [
            rng.standard_normal(1000).astype(np.float32) * 10.0 ** rng.uniform(-40, 38, 1000),
            halfway[np.isfinite(halfway)],
            np.array([0.0, -0.0, 1e-45, -1e-45, 3.4e38, -3.4e38, np.inf, -np.inf, np.nan], np.float32),
        ]
    ).astype(np.float32)
    expected = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    rounded = round_to_bfloat16(values)
    # torch's NaN bits differ between its scalar (0x7FC0) and vector (0xFFFF) conversions; the
    # kernels and this helper use 0x7FC0. Every other value must round identically.
    numbers = ~np.isnan(values)
    np.testing.assert_array_equal(rounded[numbers], expected[numbers])
    assert np.all(rounded[~numbers] == 0x7FC0) and np.all(np.isnan(to_float32(expected[~numbers])))
    upcast = torch.from_numpy(expected.view(np.int16)).view(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(to_float32(expected).view(np.uint32), upcast.view(np.uint32))


def _store(array, target_dtype):
    return round_to_bfloat16(array) if target_dtype == "bfloat16" else array


def _load(array, stored_dtype):
    return to_float32(array) if stored_dtype == "bfloat16" else array.copy()


def _reference_step(spec, hyper, params, grads, states, steps, state_dtype):
    """Upcast to float32, apply the reference rule, round parameters (and state) back."""
    params32 = [to_float32(p) for p in params]
    states32 = [{key: _load(value, state_dtype) for key, value in s.items()} for s in states]
    reference.update(spec, hyper, params32, [to_float32(g) for g in grads], states32, steps)
    for param, param32 in zip(params, params32):
        param[...] = round_to_bfloat16(param32)
    for state, state32 in zip(states, states32):
        for key, value in state32.items():
            state[key] = _store(value, state_dtype)


def _native_step(isa):
    def step(spec, hyper, params, grads, states, steps, state_dtype):
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
            isa=isa,
        )

    return step


def _run(case, state_dtype, step):
    spec, hypers = groups(case)
    params = [round_to_bfloat16(p) for p in initial_params("float32")]
    states = [
        {key: _store(value, state_dtype) for key, value in initial_state(spec, hypers[g], p).items()}
        for p, g in zip(initial_params("float32"), GROUP_OF_TENSOR)
    ]
    for t, grads in enumerate(gradients("float32", STEPS)):
        grads = [round_to_bfloat16(g) for g in grads]
        for g, hyper in enumerate(hypers):
            indices = [i for i, group in enumerate(GROUP_OF_TENSOR) if group == g]
            step(
                spec,
                spec.rule_arguments(hyper),
                [params[i] for i in indices],
                [grads[i] for i in indices],
                [states[i] for i in indices],
                tensor_steps(spec, indices, t),
                state_dtype,
            )
    return params, states


@functools.lru_cache(maxsize=None)
def _expected(case_index, state_dtype):
    return _run(ALL_CASES[case_index], state_dtype, _reference_step)


@pytest.mark.skipif(not native.available(), reason="native kernels not built")
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("state_dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("case_index", range(len(ALL_CASES)), ids=[case.id for case in ALL_CASES])
def test_bfloat16_matches_rounded_reference(case_index, state_dtype, isa):
    if isa not in native.available_isas():
        pytest.skip(f"this CPU has no {isa}")
    actual = _run(ALL_CASES[case_index], state_dtype, _native_step(isa))
    assert_same_trajectory(actual, _expected(case_index, state_dtype))
