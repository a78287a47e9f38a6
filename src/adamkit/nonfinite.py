"""The opt-in policy that skips a whole step when any gradient is non-finite."""

import warnings

import numpy as np

POLICIES = ("propagate", "skip")


class NonFiniteGradientWarning(RuntimeWarning):
    """A step was skipped because a gradient held NaN or infinity."""


def first_nonfinite(named_grads):
    """Return the name of the first gradient with a NaN or infinite entry, or ``None``.

    ``named_grads`` yields ``(name, array)`` pairs of NumPy arrays.
    """
    for name, grad in named_grads:
        if not np.isfinite(grad).all():
            return name
    return None


def warn_skipped(name, stacklevel):
    """Say which parameter's gradient made the optimizer skip its step.

    ``stacklevel`` counts frames from this function up to the user's call of ``step``.
    """
    warnings.warn(
        f"skipped the optimizer step: the gradient of {name} is not finite",
        NonFiniteGradientWarning,
        stacklevel=stacklevel + 1,
    )
