r"""bfloat16 values in NumPy, which has no bfloat16 dtype: uint16 arrays of their bit patterns.

A bfloat16 number is the upper half of a float32's bits (sign, the 8 exponent bits and 7 of
the 23 mantissa bits), so a uint16 array holds one per element, as the C kernels store
bfloat16, and ``(bits << 16).view(float32)`` is its value, exactly. Storing a float32 value
rounds away the lower half:

* to nearest, ties to even (:func:`rounded`), as ``tensor.to(torch.bfloat16)`` does;
* stochastically (:func:`stochastically_rounded`): a random number :math:`r` uniform on
  :math:`[0, 2^{16})` is added to the lower half before it is cut off, so a value is rounded up
  with probability equal to its distance from the bfloat16 below, in units of the spacing.

Every NaN is stored as the quiet NaN ``0x7FC0``, as the C kernels store it (torch's own
conversion may keep another NaN pattern; both are NaN).
"""

import threading

import numpy as np

QUIET_NAN = 0x7FC0
_per_thread = threading.local()


def to_float32(bits):
    """The float32 values of bfloat16 bit patterns (a uint16 array), exactly."""
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)


def rounded(values):
    """float32 ``values`` rounded to the nearest bfloat16, ties to even, as uint16 bit patterns."""
    bits = np.asarray(values, np.float32).view(np.uint32)
    return _upper_halves(bits + (np.uint32(0x7FFF) + ((bits >> 16) & 1)), values)


def random_state(seed):
    """The random state ``torch.Generator().manual_seed(seed)`` has on the CPU: the Mersenne
    twister initialised from the low 32 bits of ``seed``.

    It is this thread's one :class:`numpy.random.RandomState`, seeded again (about a
    microsecond, where making a new one costs a few hundred), so it serves until the next call.
    """
    state = getattr(_per_thread, "random_state", None)
    if state is None:
        state = _per_thread.random_state = np.random.RandomState()
    state.seed(int(seed) & 0xFFFFFFFF)
    return state


def stochastically_rounded(values, random_state):
    """float32 ``values`` rounded up or down to a bfloat16, as uint16 bit patterns.

    The noise is one 32-bit draw of ``random_state`` (a :class:`numpy.random.RandomState`, whose
    stream NumPy keeps unchanged across versions) per element, modulo :math:`2^{16}`. Both are
    torch's: its CPU generator is the same Mersenne twister, with the same initialisation from a
    seed, and ``torch.randint(0, 2**16, ...)`` takes each 32-bit draw modulo :math:`2^{16}`. So
    :func:`random_state` draws the bits that torch's generator draws, and the NumPy and torch
    front ends store the same state (tested).
    """
    values = np.asarray(values, np.float32)
    noise = random_state.randint(0, 1 << 32, size=values.shape, dtype=np.uint32) & np.uint32(0xFFFF)
    return _upper_halves(values.view(np.uint32) + noise, values)


def _upper_halves(bits, values):
    """The upper 16 bits of each float32 pattern in ``bits``, with NaN ``values`` as the quiet NaN."""
    halves = (bits >> 16).astype(np.uint16)
    halves[np.isnan(values)] = QUIET_NAN
    return halves
