r"""bfloat16 values in NumPy, which has no bfloat16 dtype: uint16 arrays of their bit patterns.

A bfloat16 number is the upper half of a float32's bits (sign, the 8 exponent bits and 7 of
the 23 mantissa bits), so a uint16 array holds one per element, as the C kernels store
bfloat16, and ``(bits << 16).view(float32)`` is its value, exactly. Storing a float32 value
rounds away the lower half:

* to nearest, ties to even (:func:`rounded`), as ``tensor.to(torch.bfloat16)`` does;
* stochastically (:func:`stochastically_rounded`): a random number :math:`r` uniform on
  :math:`[0, 2^{16})` is added to the lower half before it is cut off, so a value is rounded up
  (in magnitude) with probability equal to its distance from the bfloat16 below, in units of the
  spacing. The random bits are a counter-based hash of the element's position, a seed and a
  stream, so the C kernels (the float32-parameter, bfloat16-state layout of
  ``csrc/kernels_api.h``) compute the same bits in parallel, in the step itself. A finite
  value above the largest bfloat16 (:math:`3.39\cdot10^{38}`, upper half ``0x7F7F``) is stored as
  that bfloat16, not rounded up to an infinity: float32 state holds no infinity there, and an
  infinite ``exp_avg`` would make the next step's parameter NaN (:math:`\infty - \infty`).

Every NaN is stored as the quiet NaN ``0x7FC0``, as the C kernels store it (torch's own
conversion may keep another NaN pattern; both are NaN).
"""

import numpy as np

QUIET_NAN = 0x7FC0
LARGEST = 0x7F7F
"""The upper half of the largest finite bfloat16 (in magnitude)."""


def to_float32(bits):
    """The float32 values of bfloat16 bit patterns (a uint16 array), exactly."""
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)


def rounded(values):
    """float32 ``values`` rounded to the nearest bfloat16, ties to even, as uint16 bit patterns."""
    bits = np.asarray(values, np.float32).view(np.uint32)
    return _upper_halves(bits + (np.uint32(0x7FFF) + ((bits >> 16) & 1)), values)


def _mix32(x):
    """The "lowbias32" integer hash of uint32 ``x`` (wrapping uint32 arithmetic)."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def _key(seed, stream, high):
    r""":math:`\mathrm{mix32}(lo(seed) \oplus \mathrm{mix32}(hi(seed) \oplus \mathrm{mix32}(stream
    \oplus \mathrm{mix32}(high + \mathtt{0x9e3779b9}))))` for uint32 array ``high``."""
    seed = int(seed) & 0xFFFF_FFFF_FFFF_FFFF
    inner = _mix32(np.uint32(stream) ^ _mix32(high + np.uint32(0x9E3779B9)))
    return _mix32(np.uint32(seed & 0xFFFF_FFFF) ^ _mix32(np.uint32(seed >> 32) ^ inner))


def noise(n, seed, stream):
    r"""The 16 random bits added to each of ``n`` elements rounded with ``(seed, stream)``: the
    upper half of :math:`\mathrm{mix32}(lo(i) \oplus key(seed, stream, hi(i)))`, as uint32."""
    index = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        key = _key(seed, stream, (index >> np.uint64(32)).astype(np.uint32))
        return _mix32(index.astype(np.uint32) ^ key) >> np.uint32(16)


def stochastically_rounded(values, seed, stream):
    """float32 ``values`` rounded up or down (in magnitude) to a bfloat16, as uint16 bit patterns.

    The reference of the kernels' bfloat16-state store (``csrc/kernels_api.h``), which
    computes the same bits with ``stream`` the state slot: element ``i`` (in C order) adds
    :func:`noise` to the lower half of its float32 pattern before it is cut off, so it is
    rounded away from zero with probability equal to its distance from the bfloat16 below, in
    units of their spacing. The bits are a hash of ``(seed, stream, i)``: counter-based, so any
    split of the array across threads gives the same result. A finite value whose upper half is
    the largest bfloat16's gets no noise (it is not rounded up to an infinity).
    """
    values = np.ascontiguousarray(values, np.float32)
    bits = values.reshape(-1).view(np.uint32)
    at_the_largest = ((bits >> 16) & np.uint32(0x7FFF)) == LARGEST
    bits = bits + np.where(at_the_largest, np.uint32(0), noise(values.size, seed, stream))
    return _upper_halves(bits.reshape(values.shape), values)


def _upper_halves(bits, values):
    """The upper 16 bits of each float32 pattern in ``bits``, with NaN ``values`` as the quiet NaN."""
    halves = (bits >> 16).astype(np.uint16)
    halves[np.isnan(values)] = QUIET_NAN
    return halves
