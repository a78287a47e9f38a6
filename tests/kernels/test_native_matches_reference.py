"""Every native kernel path computes the bits of the reference backend, on every case.

Paths: each instruction set through ``native.update`` (NumPy arrays), and the pointer entry
``native.update_pointers``. Dtypes float32 and float64; sizes 0 to 4097 around the SIMD widths.
"""

import functools

import numpy as np
import pytest

from adamkit.kernels import native, reference
from tests.kernels.trajectories import ALL_CASES, assert_same_trajectory, run

pytestmark = pytest.mark.skipif(not native.available(), reason="native kernels not built")

ISAS = ("avx512", "avx2", "scalar")


@functools.lru_cache(maxsize=None)
def _reference_trajectory(case_index, dtype):
    return run(ALL_CASES[case_index], dtype, reference.update)


def _expected(case_index, dtype):
    params, states = _reference_trajectory(case_index, dtype)
    return [p.copy() for p in params], [{k: v.copy() for k, v in s.items()} for s in states]


def _with_pointers(spec, hyperparameters, params, grads, states, steps):
    """``native.update`` through ``update_pointers``, as the torch front end calls it."""
    created = None
    for slot in spec.active_slots(hyperparameters):
        if slot.fill is None:
            created = [slot.key not in state for state in states]
            for param, state in zip(params, states):
                state.setdefault(slot.key, np.full_like(param, 12345))  # must be overwritten
    native.update_pointers(
        spec,
        hyperparameters,
        params[0].dtype if params else "float32",
        [p.size for p in params],
        [p.ctypes.data for p in params],
        [g.ctypes.data for g in grads],
        {key: [s[key].ctypes.data for s in states] for key in states[0]} if states else {},
        steps,
        created=created,
    )


CASE_IDS = [case.id for case in ALL_CASES]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case_index", range(len(ALL_CASES)), ids=CASE_IDS)
def test_every_isa_matches_reference_bitwise(case_index, isa, dtype):
    if isa not in native.available_isas():
        pytest.skip(f"this CPU has no {isa}")
    update = functools.partial(native.update, isa=isa)
    assert_same_trajectory(run(ALL_CASES[case_index], dtype, update), _expected(case_index, dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case_index", range(len(ALL_CASES)), ids=CASE_IDS)
def test_pointer_entry_matches_reference_bitwise(case_index, dtype):
    actual = run(ALL_CASES[case_index], dtype, _with_pointers)
    assert_same_trajectory(actual, _expected(case_index, dtype))
