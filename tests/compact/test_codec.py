"""The 8-bit block-wise codec: its stated round-trip bound, its layout and its edge cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from adamkit.compact.int8 import BLOCK, decode_signed, decode_unsigned, encode_signed, encode_unsigned, n_blocks
from adamkit.compact.int8 import SIGNED_LEVELS, SIGNED_POWER, UNSIGNED_LEVELS, UNSIGNED_POWER

SIZES = (1, 7, 17, 300, 4097)
FLOATS = st.floats(-1e6, 1e6, width=32, allow_subnormal=False)


def block_scales(x):
    """max |x| of each block, repeated per element (the independent way)."""
    flat = np.abs(np.asarray(x, np.float64).reshape(-1))
    return np.array([flat[(i // BLOCK) * BLOCK : (i // BLOCK + 1) * BLOCK].max() for i in range(flat.size)])


def pointwise_bound(x, levels, power):
    r"""The codec's stated bound: s((u + 1/2L)^p - u^p), u = (|x|/s)^(1/p), plus float32 slack."""
    s = block_scales(x)
    u = np.divide(np.abs(np.asarray(x, np.float64).reshape(-1)), s, out=np.zeros(s.shape), where=s > 0) ** (1 / power)
    return s * ((np.minimum(u + 1 / (2 * levels), 1) ** power - u**power) + 4e-7 * power) + 1e-30


def signed_data(size, seed):
    rng = np.random.default_rng(seed)
    # Magnitudes over 8 decades, as Adam's moments have.
    return (rng.standard_normal(size) * 10.0 ** rng.uniform(-8, 0, size)).astype(np.float32)


@pytest.mark.parametrize("size", SIZES)
def test_signed_round_trip_is_within_the_stated_bound(size):
    x = signed_data(size, size)
    codes, absmax = encode_signed(x)
    error = np.abs(decode_signed(codes, absmax).astype(np.float64) - x)
    assert np.all(error <= pointwise_bound(x, SIGNED_LEVELS, SIGNED_POWER))
    assert np.all(error <= block_scales(x) / 127 * (1 + 1e-6))  # the coarse bound s/127


@pytest.mark.parametrize("size", SIZES)
def test_unsigned_round_trip_is_within_the_stated_bound(size):
    x = signed_data(size, size + 1) ** 2
    codes, absmax = encode_unsigned(x)
    error = np.abs(decode_unsigned(codes, absmax).astype(np.float64) - x)
    assert np.all(error <= pointwise_bound(x, UNSIGNED_LEVELS, UNSIGNED_POWER))
    assert np.all(error <= block_scales(x) * 2 / 255 * (1 + 1e-6))  # the coarse bound 2s/255


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.integers(1, 700), elements=FLOATS))
def test_signed_codec_properties(x):
    codes, absmax = encode_signed(x)
    assert codes.dtype == np.int8 and codes.shape == x.shape and codes.min() >= -127
    assert absmax.dtype == np.float32 and absmax.shape == (n_blocks(x.size),)
    np.testing.assert_array_equal(absmax, [np.abs(x[i : i + BLOCK]).max() for i in range(0, x.size, BLOCK)])
    decoded = decode_signed(codes, absmax)
    assert np.all(np.abs(decoded - x) <= pointwise_bound(x, SIGNED_LEVELS, SIGNED_POWER))
    assert np.all(np.sign(decoded) * np.sign(x) >= 0)  # never the wrong sign
    np.testing.assert_array_equal(encode_signed(decoded)[0], codes)  # decoded values are fixed points


# The decoder computes absmax / 255**4 in float32, which underflows for blocks whose absmax is
# below 255**4 * FLT_MIN (about 5e-29): such blocks decode to zero. Second moments that small
# are far below any eps, so the codec's contract starts above that.
SMALLEST_UNSIGNED_SCALE = float(np.float32(1e-28))


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float32,
        st.integers(1, 700),
        elements=st.one_of(st.just(0.0), st.floats(SMALLEST_UNSIGNED_SCALE, 2.0**40, width=32)),
    )
)
def test_unsigned_codec_properties(x):
    codes, absmax = encode_unsigned(x)
    assert codes.dtype == np.uint8 and codes.shape == x.shape
    decoded = decode_unsigned(codes, absmax)
    assert np.all(decoded >= 0)
    assert np.all(np.abs(decoded - x) <= pointwise_bound(x, UNSIGNED_LEVELS, UNSIGNED_POWER))
    # Anything above a quarter-step of the fourth-root grid survives: it does not decode to 0.
    scales = block_scales(x)
    assert np.all(decoded[x > scales * (0.6 / 255) ** 4] > 0)
    np.testing.assert_array_equal(encode_unsigned(decoded)[0], codes)


@pytest.mark.parametrize("encode, levels, power", [(encode_signed, SIGNED_LEVELS, SIGNED_POWER), (encode_unsigned, UNSIGNED_LEVELS, UNSIGNED_POWER)])
def test_each_code_is_the_nearest_grid_point(encode, levels, power):
    """In float64, independently of how the codec computes it: |c| = [L (|x|/s)^(1/p)], the
    nearest integer, except within float32 rounding of a half. Blocks of ordinary, tiny,
    subnormal and huge scales (above 2^126 the reciprocal of the scale would be subnormal)."""
    rng = np.random.default_rng(power)
    blocks = []
    for scale in (1.0, 3e-3, 1e-21, 1e-30, 1e-39, 1e-43, 1e30, 1e38, 3e38):
        values = rng.standard_normal(BLOCK) * 10.0 ** rng.uniform(-6, 0, BLOCK)
        values = values if encode is encode_signed else np.abs(values)
        blocks.append(values * (scale / np.abs(values).max()))
    x = np.concatenate(blocks).astype(np.float32)
    codes, _ = encode(x)
    exact = levels * (np.abs(x.astype(np.float64)) / block_scales(x)) ** (1 / power)
    clear = np.abs(exact - np.floor(exact) - 0.5) > 1e-4
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(codes[clear], (np.sign(x) * np.floor(exact + 0.5))[clear])


def test_a_block_of_zeros_has_scale_zero_and_decodes_to_zeros():
    x = np.zeros(2 * BLOCK + 3, np.float32)
    x[BLOCK + 5] = -2.5  # only the middle block is non-zero
    codes, absmax = encode_signed(x)
    np.testing.assert_array_equal(absmax, [0, 2.5, 0])
    decoded = decode_signed(codes, absmax)
    np.testing.assert_array_equal(decoded, x)  # the block maximum is exact


@pytest.mark.parametrize("encode, decode, largest", [(encode_signed, decode_signed, 127), (encode_unsigned, decode_unsigned, 255)])
def test_an_infinity_stays_in_its_own_element_and_a_nan_makes_its_block_nan(encode, decode, largest):
    """A block holding an infinity (a moment that overflowed) has the scale FLT_MAX: the infinity
    gets the largest code and decodes to itself, and every other element gets the code it has
    with FLT_MAX in the infinity's place, and decodes to a finite value. A NaN still makes its
    block's scale NaN, its codes 0 and every element NaN."""
    flt_max = np.finfo(np.float32).max
    x = signed_data(4 * BLOCK + 10, seed=4) * np.float32(1e30)
    x[[9, BLOCK + 3]] = [3e38, -1e38]  # huge finite values beside the infinities
    x[[5, 2 * BLOCK + 8]] = [np.inf, -np.inf]
    x[3 * BLOCK + 1] = np.nan
    if encode is encode_unsigned:
        x = np.abs(x)
    codes, absmax = encode(x)
    stand_in = np.where(np.isinf(x), np.copysign(flt_max, x), x)
    stand_in_codes, stand_in_absmax = encode(stand_in)
    np.testing.assert_array_equal(absmax, [flt_max, np.abs(x[BLOCK:2 * BLOCK]).max(), flt_max, np.nan, np.abs(x[4 * BLOCK:]).max()])
    np.testing.assert_array_equal(stand_in_absmax, absmax)
    np.testing.assert_array_equal(codes, stand_in_codes)
    infinite = np.isinf(x)
    np.testing.assert_array_equal(codes[infinite], largest * np.sign(x[infinite]))
    assert not codes[3 * BLOCK : 4 * BLOCK].any()
    with np.errstate(invalid="ignore"):
        decoded = decode(codes, absmax)
    np.testing.assert_array_equal(decoded[infinite], x[infinite])
    assert np.isnan(decoded[3 * BLOCK : 4 * BLOCK]).all()
    others = np.ones(x.size, bool)
    others[infinite] = False
    others[3 * BLOCK : 4 * BLOCK] = False
    assert np.isfinite(decoded[others]).all()


def test_the_unsigned_map_keeps_small_second_moments_that_a_linear_map_loses():
    # One large gradient in the block and many 1000x smaller ones: v spans six decades.
    v = np.full(BLOCK, 1e-6, np.float32)
    v[0] = 1.0
    decoded = decode_unsigned(*encode_unsigned(v))
    assert np.all(decoded[1:] > 0)
    assert np.allclose(np.sqrt(decoded[1:]), 1e-3, rtol=0.1)
    linear_codes = np.rint(v / v.max() * 255)
    assert np.all(linear_codes[1:] == 0)  # what a linear map would do


def test_bad_input_raises_precise_errors():
    codes, absmax = encode_signed(np.ones(300, np.float32))
    with pytest.raises(TypeError, match="codes must be uint8"):
        decode_unsigned(codes, absmax)
    with pytest.raises(ValueError, match=r"absmax must be a float32 array of shape \(2,\)"):
        decode_signed(codes, absmax[:1])
    with pytest.raises(ValueError, match=r"absmax must be a float32 array"):
        decode_signed(codes, absmax.astype(np.float64))
    with pytest.raises(ValueError, match="negative"):
        encode_unsigned(np.array([1.0, -1.0], np.float32))


@pytest.mark.parametrize("shape", [(3, 300), (5, 17), (2, 4097), (4, 3, 100), (1, 7)])
def test_the_row_layout_encodes_each_row_as_its_own_flat_tensor(shape):
    x = signed_data(int(np.prod(shape)), seed=11).reshape(shape)
    for encode, decode, values in (
        (encode_signed, decode_signed, x),
        (encode_unsigned, decode_unsigned, np.abs(x)),
    ):
        codes, absmax = encode(values, rows=True)
        per_row = int(np.prod(shape[1:]))
        assert codes.shape == shape and absmax.shape == (shape[0], n_blocks(per_row))
        for row in range(shape[0]):
            row_codes, row_absmax = encode(values[row].reshape(-1))
            np.testing.assert_array_equal(codes[row].reshape(-1), row_codes)
            np.testing.assert_array_equal(absmax[row], row_absmax)
            np.testing.assert_array_equal(decode(codes, absmax)[row].reshape(-1), decode(row_codes, row_absmax))


def test_the_row_layout_checks_the_scales_shape():
    codes, absmax = encode_signed(signed_data(600, seed=2).reshape(2, 300), rows=True)
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        decode_signed(codes, absmax.reshape(1, 4))
