"""bfloat16 parameters: float32 arithmetic, state in float32 or bfloat16, each stored value rounded
to nearest even once. The truth is the reference rule on the float32 upcast, then rounded."""

import functools

import numpy as np
import pytest

from adamkit.kernels import native
from tests.kernels.bfloat16 import native_step, reference_step, round_to_bfloat16, run, to_float32
from tests.kernels.trajectories import ALL_CASES, assert_same_trajectory

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


def _run(case, state_dtype, step):
    params, states, _ = run(case, state_dtype, step, STEPS)
    return params, states


@functools.lru_cache(maxsize=None)
def _expected(case_index, state_dtype):
    return _run(ALL_CASES[case_index], state_dtype, reference_step)


@pytest.mark.skipif(not native.available(), reason="native kernels not built")
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("state_dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("case_index", range(len(ALL_CASES)), ids=[case.id for case in ALL_CASES])
def test_bfloat16_matches_rounded_reference(case_index, state_dtype, isa):
    if isa not in native.available_isas():
        pytest.skip(f"this CPU has no {isa}")
    actual = _run(ALL_CASES[case_index], state_dtype, native_step(isa))
    assert_same_trajectory(actual, _expected(case_index, state_dtype))
