"""Compact optimizer state: the codecs and the policy of which tensors get them.

* :mod:`adamkit.compact.int8`: the 8-bit block-wise codec (``state_dtype="int8"``), the NumPy
  reference of the fused C kernel :mod:`adamkit.kernels.quantized`;
* :mod:`adamkit.compact.bfloat16`: bfloat16 values as uint16 bit patterns, rounded to nearest
  or stochastically (``state_dtype="bf16"``);
* :mod:`adamkit.compact.policy`: the ``state_dtype`` option as both front ends apply it.

A codec wraps an update; it never changes the rule.
"""
