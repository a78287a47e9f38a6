"""Max-norm relative comparison of a result against a float64 reference."""

import numpy as np

TINY = 1e-300


def max_relative_error(actual, expected):
    """``max|a − b| / max|b|``, with a tiny floor so all-zero references compare absolutely."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    return float(np.max(np.abs(actual - expected)) / (np.max(np.abs(expected)) + TINY))


def assert_close(actual, expected, relative, what):
    """Assert ``max|a − b| <= relative · max|b| + tiny``, naming ``what`` on failure."""
    error = max_relative_error(actual, expected)
    assert error <= relative, f"{what}: max-norm relative error {error:.3g} > {relative:.1g}"
