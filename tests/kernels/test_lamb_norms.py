"""LAMB's norm pass: a segment's zero-padded tail lanes never enter the norms, even where their
update is 0 / 0 (eps = 0 and zero moments), on every instruction set and thread count; and the
apply blocks that follow each tensor's norm blocks in one parallel loop (csrc/lamb.c) give the
rule's bits whatever the thread count, with tensors of many blocks and empty ones."""

import functools

import numpy as np
import pytest

from adamkit import specs
from adamkit.kernels import native, reference
from tests.kernels.trajectories import assert_bitwise_equal

pytestmark = pytest.mark.skipif(not native.available(), reason="native kernels not built")

SIZES = [1, 7, 17, 4097]


# Blocks of 4096 elements: tensors of 1 to 17 blocks, an empty one, and more blocks after the
# largest than csrc/lamb.c's AK_LAMB_LAG, so apply blocks come between later norm blocks.
MANY_BLOCKS = [17 * 4096 + 5, 0, 4096, 1, 4095, 3 * 4096 + 7, 0, 20 * 4096, 7]


def _steps(update, dtype, hyper, sizes=SIZES):
    rng = np.random.default_rng(3)
    params = [rng.standard_normal(size).astype(dtype) for size in sizes]
    states = [{"exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)} for p in params]
    for step in (1.0, 2.0):
        grads = [rng.standard_normal(size).astype(dtype) for size in sizes]
        update(specs.LAMB, hyper, params, grads, states, [step] * len(sizes))
    return params, states


def _assert_same(actual, expected, label):
    for i, (a, e) in enumerate(zip(actual[0], expected[0], strict=True)):
        assert_bitwise_equal(a, e, f"{label} params[{i}]")
    for i, (a, e) in enumerate(zip(actual[1], expected[1], strict=True)):
        for key in e:
            assert_bitwise_equal(a[key], e[key], f"{label} states[{i}][{key!r}]")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_padded_lanes_stay_out_of_the_norms_with_eps_zero(dtype):
    hyper = {**specs.LAMB.rule_arguments(specs.LAMB.defaults), "eps": 0.0, "lr": 0.05, "weight_decay": 0.01}
    expected = _steps(reference.update, dtype, hyper)
    assert all(np.isfinite(p).all() for p in expected[0])
    for isa in native.available_isas():
        for threads in (1, 2):
            actual = _steps(functools.partial(native.update, isa=isa, num_threads=threads), dtype, hyper)
            _assert_same(actual, expected, f"{isa} {threads}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tensors_of_many_blocks_on_any_thread_count(dtype):
    hyper = {**specs.LAMB.rule_arguments(specs.LAMB.defaults), "lr": 0.05, "weight_decay": 0.01, "maximize": True}
    expected = _steps(reference.update, dtype, hyper, MANY_BLOCKS)
    for isa in native.available_isas():
        for threads in (1, 2, 3):
            update = functools.partial(native.update, isa=isa, num_threads=threads)
            _assert_same(_steps(update, dtype, hyper, MANY_BLOCKS), expected, f"{isa} {threads}")
