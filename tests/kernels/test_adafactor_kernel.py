"""Adafactor's kernel (``csrc/adafactor.c``) equals the rule bit for bit, on every instruction
set this CPU runs and at 1 and 3 threads: matrices of one row or one column, a stack of
matrices, rows longer than a norm block and columns summed over several blocks of rows."""

import numpy as np
import pytest

from adamkit import specs
from adamkit.kernels import adafactor, native, reference
from tests.kernels.trajectories import assert_bitwise_equal

pytestmark = pytest.mark.skipif(not native.available(), reason="native kernels not built")

SHAPES = [(1,), (7,), (17,), (4097,), (1, 17), (17, 1), (3, 5, 4), (7, 17), (2, 4500), (40, 2000)]
HYPER = [
    dict(lr=0.05, beta2_decay=-0.6, eps=(1e-20, 1e-2), d=1.5, weight_decay=0.1, maximize=False),
    dict(lr=0.5, beta2_decay=-1.0, eps=(None, 1e-3), d=1.0, weight_decay=0.0, maximize=True),
]


def _run(update, dtype, hyper):
    rng = np.random.default_rng(5)
    params = [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
    states = [{k: np.zeros(s, dtype) for k, s in adafactor.slot_shapes(p.shape).items()} for p in params]
    for step in (1.0, 2.0, 3.0):
        grads = []
        for shape in SHAPES:
            grad = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 2)).astype(dtype)
            grad[rng.random(shape) < 0.05] = 0.0
            grads.append(grad)
        update(hyper, params, grads, states, [step] * len(SHAPES))
    return params, states


def _reference(hyper, params, grads, states, steps):
    reference.update(specs.ADAFACTOR, hyper, params, grads, states, steps)


@pytest.mark.parametrize("hyper", HYPER, ids=["decay", "maximize"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kernel_equals_the_rule_on_every_isa_and_thread_count(dtype, hyper):
    expected_params, expected_states = _run(_reference, dtype, hyper)
    for isa in native.available_isas():
        for threads in (1, 3):

            def kernel(*args, isa=isa, threads=threads):
                adafactor.update(*args, isa=isa, num_threads=threads)

            params, states = _run(kernel, dtype, hyper)
            for i, shape in enumerate(SHAPES):
                where = f"{isa}, {threads} threads, {shape}"
                assert_bitwise_equal(params[i], expected_params[i], f"{where}: param")
                for key, value in expected_states[i].items():
                    assert_bitwise_equal(states[i][key], value, f"{where}: {key}")


def test_native_update_steps_what_the_kernel_takes_and_the_rule_the_rest():
    hyper = HYPER[0]
    rng = np.random.default_rng(1)
    matrix = rng.standard_normal((6, 5)).astype(np.float32)
    transposed = np.asfortranarray(rng.standard_normal((5, 6)).astype(np.float32))  # not C-contiguous
    params = [matrix, transposed]
    grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
    states = [{k: np.zeros(s, np.float32) for k, s in adafactor.slot_shapes(p.shape).items()} for p in params]
    expected = [p.copy() for p in params], [{k: v.copy() for k, v in s.items()} for s in states]
    _reference(hyper, *expected[:1], grads, expected[1], [1.0, 1.0])
    native.update(specs.ADAFACTOR, hyper, params, grads, states, [1.0, 1.0], isa=native.available_isas()[-1])
    for actual, wanted in zip(params, expected[0], strict=True):
        assert_bitwise_equal(actual, wanted, "param")


@pytest.mark.parametrize(
    "change",
    ["col_var shape", "grad dtype", "read-only", "mixed dtypes"],
)
def test_bad_arrays_raise_before_anything_changes(change):
    rng = np.random.default_rng(2)
    params = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(5).astype(np.float32)]
    grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
    states = [{k: np.zeros(s, np.float32) for k, s in adafactor.slot_shapes(p.shape).items()} for p in params]
    if change == "col_var shape":
        states[0]["col_var"] = np.zeros((1, 4), np.float32)
    elif change == "grad dtype":
        grads[1] = grads[1].astype(np.float64)
    elif change == "read-only":
        params[1].flags.writeable = False
    else:
        params[1], states[1]["variance"] = params[1].astype(np.float64), np.zeros(5)
    before = [p.copy() for p in params], [{k: v.copy() for k, v in s.items()} for s in states]
    with pytest.raises(ValueError, match="params\\[[01]\\]"):
        adafactor.update(HYPER[0], params, grads, states, [1.0, 1.0])
    for actual, wanted in zip(
        params + [v for s in states for v in s.values()], before[0] + [v for s in before[1] for v in s.values()]
    ):
        assert_bitwise_equal(actual, wanted, change)
