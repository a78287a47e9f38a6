"""Checks of hyperparameters that raise a precise ``ValueError`` naming argument and value.

Every check accepts a 1-element tensor or array where torch accepts one (``lr``) and rejects
NaN, because ``not 0 <= nan`` is true.
"""

import math
import numbers


def as_float(name, value):
    """Return ``value`` as a Python float, or raise naming ``name`` if it is not a real number."""
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real number, got {value!r}")
    numel = getattr(value, "numel", None) or getattr(value, "size", None)
    if numel is not None and not isinstance(value, numbers.Number):
        count = numel() if callable(numel) else numel
        if count != 1:
            raise ValueError(f"{name} must be a number or a 1-element tensor, got {count} elements")
        value = value.item()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None


def check_nonnegative(name, value):
    """``value`` must be a finite real number >= 0."""
    number = as_float(name, value)
    if not (0.0 <= number and math.isfinite(number)):
        raise ValueError(f"Invalid {name}: {value!r} (must be a finite number >= 0)")


def check_unit_interval(name, value, *, closed_above):
    """``value`` must lie in [0, 1] (``closed_above``) or [0, 1)."""
    number = as_float(name, value)
    inside = 0.0 <= number <= 1.0 if closed_above else 0.0 <= number < 1.0
    if not inside:
        interval = "[0, 1]" if closed_above else "[0, 1)"
        raise ValueError(f"Invalid {name}: {value!r} (must be in {interval})")


def check_betas(betas):
    """``betas`` must be a pair, each in [0, 1)."""
    try:
        pair = tuple(betas)
    except TypeError:
        raise TypeError(f"betas must be a pair of numbers, got {betas!r}") from None
    if len(pair) != 2:
        raise ValueError(f"Invalid betas: {betas!r} (must be a pair (beta1, beta2))")
    for index, beta in enumerate(pair):
        check_unit_interval(f"betas[{index}]", beta, closed_above=False)


def check_bool(name, value):
    """Flags must be real booleans, so that a typo such as ``amsgrad="no"`` is not truthy."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def check_choice(name, value, choices):
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise ValueError(f"Invalid {name}: {value!r} (must be one of {', '.join(map(repr, choices))})")


class MissingKeyError(KeyError, ValueError):
    """A ``state_dict`` lacks a key that loading needs.

    It is a ``KeyError``, which ``torch.optim`` raises for such a checkpoint (at its step, or
    while loading), and a ``ValueError``, which adamkit raises for every ``state_dict`` that
    does not fit. Its message reads as written (``KeyError`` would quote it).
    """

    def __str__(self):
        return Exception.__str__(self)
