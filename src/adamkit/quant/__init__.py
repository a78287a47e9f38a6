"""Compact optimizer state: the 8-bit block-wise codec (:mod:`adamkit.quant.blockwise`).

The fused C kernel that steps quantised state is :mod:`adamkit.kernels.quantized`; the torch
optimizers use it with ``state_dtype="int8"``.
"""

from adamkit.quant.blockwise import (
    BLOCK,
    decode_signed,
    decode_unsigned,
    encode_signed,
    encode_unsigned,
    n_blocks,
)

__all__ = ["BLOCK", "decode_signed", "decode_unsigned", "encode_signed", "encode_unsigned", "n_blocks"]
