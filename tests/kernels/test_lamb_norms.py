"""LAMB's norm pass: a segment's zero-padded tail lanes never enter the norms, even where their
update is 0 / 0 (eps = 0 and zero moments), on every instruction set and thread count."""

import functools

import numpy as np
import pytest

from adamkit import specs
from adamkit.kernels import native, reference
from tests.kernels.trajectories import assert_bitwise_equal

pytestmark = pytest.mark.skipif(not native.available(), reason="native kernels not built")

SIZES = [1, 7, 17, 4097]


def _steps(update, dtype, hyper):
    rng = np.random.default_rng(3)
    params = [rng.standard_normal(size).astype(dtype) for size in SIZES]
    states = [{"exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)} for p in params]
    for step in (1.0, 2.0):
        grads = [rng.standard_normal(size).astype(dtype) for size in SIZES]
        update(specs.LAMB, hyper, params, grads, states, [step] * len(SIZES))
    return params, states


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_padded_lanes_stay_out_of_the_norms_with_eps_zero(dtype):
    hyper = {**specs.LAMB.rule_arguments(specs.LAMB.defaults), "eps": 0.0, "lr": 0.05, "weight_decay": 0.01}
    expected = _steps(reference.update, dtype, hyper)
    assert all(np.isfinite(p).all() for p in expected[0])
    for isa in native.available_isas():
        for threads in (1, 2):
            params, states = _steps(functools.partial(native.update, isa=isa, num_threads=threads), dtype, hyper)
            for i, (actual, wanted) in enumerate(zip(params, expected[0], strict=True)):
                assert_bitwise_equal(actual, wanted, f"{isa} {threads} params[{i}]")
            for i, (actual, wanted) in enumerate(zip(states, expected[1], strict=True)):
                for key in wanted:
                    assert_bitwise_equal(actual[key], wanted[key], f"{isa} {threads} states[{i}][{key!r}]")
