"""bfloat16 in NumPy for the tests: uint16 storage holding the upper half of a float32."""

import numpy as np


def to_float32(bits):
    """The float32 values of bfloat16 ``bits`` (exact)."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def round_to_bfloat16(values):
    """Round float32 ``values`` to bfloat16 bits, to nearest even; every NaN becomes 0x7FC0."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    odd = (bits >> 16) & 1
    rounded = ((bits + 0x7FFF + odd) >> 16).astype(np.uint16)
    return np.where(np.isnan(values), np.uint16(0x7FC0), rounded)
