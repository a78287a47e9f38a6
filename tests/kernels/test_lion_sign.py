"""Lion's kernel on the values where a sign is delicate, every ISA against the rule bit for bit:
±0 (sign 0, so only the decay moves the parameter), NaN (propagates, as np.sign keeps it),
±inf, the smallest subnormals and values that round to ±0 in the interpolation.

NaN is compared as NaN: which of two NaN operands an operation returns, and so the sign bit of
the NaN, is the CPU's and NumPy's choice (their SIMD loops may swap operands), not the rule's.
Every other value is compared bit for bit."""

import numpy as np
import pytest

from adamkit import specs
from adamkit.kernels import native, reference

pytestmark = pytest.mark.skipif(not native.available(), reason="native kernels not built")

SPECIAL = [0.0, -0.0, np.nan, np.inf, -np.inf, 1.0, -1.0, 1e-45, -1e-45, 5e-324, -5e-324, 3e38, -3e38]


def _problem(dtype):
    """Every (exp_avg, grad) pair of special values, on a length that leaves a vector tail."""
    pairs = np.array([(m, g) for m in SPECIAL for g in SPECIAL], dtype=np.float64).astype(dtype)
    exp_avg, grad = pairs[:, 0].copy(), pairs[:, 1].copy()
    param = np.linspace(-1.0, 1.0, exp_avg.size).astype(dtype)
    param[:2] = [0.0, -0.0]
    return param, grad, exp_avg


@pytest.mark.parametrize("hyper", [{}, {"weight_decay": 0.1}, {"weight_decay": 0.1, "decoupled_weight_decay": False, "maximize": True}], ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("isa", ["avx512", "avx2", "scalar"])
def test_special_values_match_the_rule_bitwise(isa, dtype, hyper):
    if isa not in native.available_isas():
        pytest.skip(f"this CPU has no {isa}")
    hyperparameters = specs.LION.rule_arguments({**specs.LION.defaults, "lr": 1e-2, **hyper})
    param, grad, exp_avg = _problem(dtype)
    expected_param, expected_state = param.copy(), {"exp_avg": exp_avg.copy()}
    reference.update(specs.LION, hyperparameters, [expected_param], [grad], [expected_state], [None])
    state = {"exp_avg": exp_avg.copy()}
    native.update(specs.LION, hyperparameters, [param], [grad], [state], [None], isa=isa)
    _assert_same_bits_or_both_nan(param, expected_param, "param")
    _assert_same_bits_or_both_nan(state["exp_avg"], expected_state["exp_avg"], "exp_avg")
    assert np.isnan(expected_param).any() and np.isfinite(expected_param).sum() > param.size // 2


def _assert_same_bits_or_both_nan(actual, expected, what):
    nan = np.isnan(expected)
    assert np.array_equal(np.isnan(actual), nan), f"{what}: NaN at other places"
    assert actual[~nan].tobytes() == expected[~nan].tobytes(), f"{what}: not bitwise equal"
