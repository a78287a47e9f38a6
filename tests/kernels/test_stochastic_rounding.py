"""csrc/stochastic.c against its NumPy reference (adamkit.numpy._bfloat16.stochastically_rounded):
the same bits for every size, seed, stream and thread count, and the rounding is unbiased for
elements anywhere in an array and across streams."""

import numpy as np
import pytest

from adamkit.kernels import native
from adamkit.numpy import _bfloat16

pytestmark = pytest.mark.skipif(not native.available(), reason="the C kernels were not built")


def rounded_in_c(values, seed, stream, num_threads=None):
    out = np.empty(values.shape, np.uint16)
    native.round_bfloat16_stochastic(values.ctypes.data, out.ctypes.data, values.size, seed, stream, num_threads=num_threads)
    return out


@pytest.mark.parametrize("size", [1, 7, 17, 4097, 70001, (1 << 17) + 3])
@pytest.mark.parametrize("seed, stream", [(0, 0), (4 * 100_003 + 2, 1), ((1 << 40) + 5, 2), ((1 << 64) - 1, 7)])
def test_the_kernel_equals_the_reference_bitwise(size, seed, stream):
    rng = np.random.default_rng(size)
    values = (rng.standard_normal(size) * 10.0 ** rng.integers(-30, 30, size)).astype(np.float32)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -np.nan], np.float32)[:size]
    values[: len(specials)] = specials
    expected = _bfloat16.stochastically_rounded(values, seed, stream)
    for threads in (1, 2, 3):
        np.testing.assert_array_equal(rounded_in_c(values, seed, stream, threads), expected, strict=True)


def test_each_value_is_one_of_its_two_neighbours_and_nan_is_the_quiet_nan():
    values = np.random.default_rng(1).standard_normal(100_000).astype(np.float32)
    values[7] = np.nan
    bits = rounded_in_c(values, 3, 0).astype(np.uint32)
    truncated = values.view(np.uint32) >> 16
    finite = ~np.isnan(values)
    assert np.all((bits[finite] == truncated[finite]) | (bits[finite] == truncated[finite] + 1))
    assert bits[7] == _bfloat16.QUIET_NAN


@pytest.mark.parametrize("stream", [0, 1])
def test_rounding_is_unbiased_at_every_position_and_streams_differ(stream):
    # 3/4 of the way from 1 to the next bfloat16: rounded up with probability 3/4, also in the
    # second 2^16-element chunk (a thread's second unit of work).
    values = np.full(1 << 18, 1.0 + 3 * 2**-9, np.float32)
    rounded = _bfloat16.to_float32(rounded_in_c(values, 11, stream))
    for part in np.split(rounded, 4):
        assert part.mean() == pytest.approx(1.0 + 3 * 2**-9, abs=2**-7 * 0.01)
    other = _bfloat16.to_float32(rounded_in_c(values, 11, stream + 1))
    assert 0.3 < np.mean(rounded != other) < 0.45  # independent draws differ with probability 3/8


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="num_threads"):
        native.round_bfloat16_stochastic(0, 0, 0, 0, 0, num_threads=0)
    with pytest.raises(ValueError, match="must not be null"):
        native._native.round_bf16_stochastic(None, None, 5, 0, 0, 1)
