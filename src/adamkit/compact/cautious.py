"""Which compact state takes ``cautious=True`` (:mod:`adamkit.rules.cautious`), for both front ends.

bfloat16 state (``"bf16"``) is stepped by the dense kernels' two passes (``csrc/cautious.c``),
whose first pass stores nothing, so the stochastic rounding of the second is the plain step's.
The fused 8-bit kernel (``"int8"``) steps each block in one pass, and the mask's rescale needs a
count over the whole tensor before any element is written: it is refused.
"""

REFUSED_STATE_DTYPES = ("int8",)


def check_state_dtype(state_dtype, hyperparameters):
    """Raise ``ValueError`` for ``cautious=True`` in ``hyperparameters`` with a ``state_dtype``
    that cannot take it."""
    if hyperparameters.get("cautious") and state_dtype in REFUSED_STATE_DTYPES:
        raise ValueError(
            f"cautious=True cannot be used with state_dtype={state_dtype!r}: the 8-bit kernel steps "
            "each block in one pass, and the mask's rescale needs a count over the whole tensor first"
        )
