"""The ``state_dtype`` option, as the torch and NumPy front ends both apply it.

``None`` keeps each parameter's state in its own dtype; ``"fp32"`` keeps float32 state for
bfloat16 parameters (a torch dtype). The compact values, :data:`COMPACT_STATE_DTYPES`, are
``"int8"`` (8-bit block-wise codes and scales, :mod:`adamkit.kernels.quantized`) and ``"bf16"``
(bfloat16, stored with stochastic rounding). This module says which optimizers take them
(:func:`takes_compact_state`), which parameters get them (:func:`keeps_compact`: float32, and
for int8 also bfloat16, of at least :data:`MIN_QUANTIZED_NUMEL` elements) and how each state key is coded, so that both front
ends follow the same rules. 8-bit codes are kept under keys torch.optim does not use
(:func:`adamkit.kernels.quantized.compact_keys`); :func:`with_current_keys` reads the layout
adamkit 0.1.0 saved, codes under torch's keys. A compact ``state_dtype`` needs the C kernels: without them the
optimizer raises when it is made (:func:`check_compact_state`) rather than keep full-precision
state behind the user's back.
"""

import numpy as np

from adamkit import specs
from adamkit.compact.int8 import decode_signed, decode_unsigned, encode_signed, encode_unsigned
from adamkit.kernels import native, quantized
from adamkit.kernels.quantized import CODE_DTYPES, codes_key, scales_key

COMPACT_STATE_DTYPES = ("bf16", "int8")
"""The ``state_dtype`` values that keep state compact."""
STATE_DTYPES = (None, "fp32", *COMPACT_STATE_DTYPES)
COMPACT_RULES = {
    "bf16": tuple(dict.fromkeys(spec.rule for spec in specs.COMPACT if spec.counts_steps)),
    "int8": quantized.RULES,
}
"""The rules whose steps take each compact ``state_dtype``: those of the 8-bit kernel
(:data:`adamkit.specs.COMPACT`) take int8, and those of them that count steps bf16, whose
stochastic rounding draws fresh bits at each step from the step count (:func:`rounding_seed`).
Lion counts steps for this alone (:attr:`adamkit.rules._spec.Spec.step_optional`)."""
MIN_QUANTIZED_NUMEL = 4096
"""Parameters with fewer elements keep float32 state: for them the per-block scale and the
kernel call would save almost nothing (a 4096-element tensor's fp32 state is 32 KiB)."""

_CODECS = {np.dtype(np.int8): (encode_signed, decode_signed), np.dtype(np.uint8): (encode_unsigned, decode_unsigned)}
ENCODERS = {key: _CODECS[np.dtype(dtype)][0] for key, dtype in quantized.CODE_DTYPES.items()}
"""The codec function that turns each state key's float32 values into ``(codes, absmax)``:
signed for int8 codes, unsigned for uint8 codes (:data:`adamkit.kernels.quantized.CODE_DTYPES`)."""
DECODERS = {key: _CODECS[np.dtype(dtype)][1] for key, dtype in quantized.CODE_DTYPES.items()}
"""The codec function that turns each state key's ``(codes, absmax)`` back into float32 values."""


def takes_compact_state(spec, state_dtype):
    """Whether optimizers of ``spec`` take the compact ``state_dtype``."""
    return spec.rule in COMPACT_RULES[state_dtype]


def kernels_built(state_dtype):
    """Whether the C kernel that steps the compact ``state_dtype`` was built."""
    return quantized.available() if state_dtype == "int8" else native.available()


def check_compact_state(spec, state_dtype, optimizer_name, alternatives):
    """Raise ``ValueError`` if ``state_dtype`` is compact and ``spec``'s optimizers do not take it
    (``alternatives`` says what ``optimizer_name`` takes instead), and ``RuntimeError`` if its
    kernel was not built."""
    if state_dtype not in COMPACT_STATE_DTYPES:
        return
    if not takes_compact_state(spec, state_dtype):
        listed = specs.listed(other for other in specs.ALL if takes_compact_state(other, state_dtype))
        reason = f": {spec.full_precision_state}" if spec.full_precision_state else ""
        raise ValueError(
            f"Invalid state_dtype: {state_dtype!r} (compact state is for {listed}; "
            f"{optimizer_name} takes {alternatives}{reason})"
        )
    if not kernels_built(state_dtype):
        reason = native.unavailable_reason() or "the C extension adamkit.kernels._native was built without it"
        raise RuntimeError(
            f"state_dtype={state_dtype!r} needs adamkit's C kernels, but {reason}; "
            "reinstall adamkit with a C compiler available, or leave state_dtype unset"
        )


COMPACT_PARAM_DTYPES = {"bf16": ("float32",), "int8": quantized.PARAM_DTYPES}
"""The parameter dtypes whose state each compact ``state_dtype`` holds: bfloat16 state is for
float32 parameters, and 8-bit state for float32 and bfloat16 ones (the kernel steps bfloat16
parameters in float32 and stores them rounded, or with Kahan compensation)."""


def keeps_compact(state_dtype, dtype, numel):
    """Whether a parameter of ``dtype`` (its name: ``"float32"``...) and ``numel`` elements keeps
    compact state under ``state_dtype``; otherwise its state is full precision."""
    return state_dtype in COMPACT_STATE_DTYPES and dtype in COMPACT_PARAM_DTYPES[state_dtype] and numel >= MIN_QUANTIZED_NUMEL


def rounding_seed(step, index):
    """The seed of the random bits that round the bfloat16 state of the ``index``-th bfloat16
    parameter stepped in a group, at step ``step``: runs are reproducible."""
    # A rule with scalar state takes (step, mu_product) per tensor (adamkit.rules.NAdamCount).
    return int(getattr(step, "step", step)) * 100_003 + index


def rounding_seeds(steps):
    """The rounding seeds of the bfloat16 parameters stepped together at ``steps``, in order."""
    return [rounding_seed(step, index) for index, step in enumerate(steps)]


def with_current_keys(state, holds_codes):
    """One parameter's saved ``state`` (a mapping of keys to arrays or tensors) with the 8-bit
    codes of adamkit 0.1.0's layout moved to their current key.

    adamkit 0.1.0 kept a slot's codes under torch's own key (``exp_avg``, beside
    ``exp_avg_absmax``), where torch.optim read them as moments. Such codes (a value under a
    slot's key for which ``holds_codes`` is true, with the slot's scales and without codes under
    :func:`~adamkit.kernels.quantized.codes_key`) are moved there; anything else is kept as
    it is, for the loading optimizer's checks.
    """
    moved = [
        key
        for key in CODE_DTYPES
        if key in state and scales_key(key) in state and codes_key(key) not in state and holds_codes(state[key])
    ]
    if not moved:
        return state
    return {codes_key(key) if key in moved else key: value for key, value in state.items()}
