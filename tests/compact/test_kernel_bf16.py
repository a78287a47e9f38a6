"""bfloat16 parameters on 8-bit state: the kernel computes exactly decode -> the rule in float32
on the widened parameter -> encode, and stores the parameter as the dense bfloat16 layouts do
(rounded to nearest even, or with Kahan compensation), bit for bit, on every instruction set and
thread count."""

import numpy as np
import pytest

from adamkit.compact import bfloat16
from adamkit.kernels import native, quantized
from tests.compact.test_kernel import EDGE_CASES, HYPERS, SPECS, assert_same_state, case_id, copied, initial_state
from tests.compact.test_kernel import reference_step
from tests.kernels.trajectories import tensor_count

pytestmark = pytest.mark.skipif(not quantized.available(), reason="the C kernels were not built")

# One call: the sizes the task names, a tensor of three spans of 32 blocks (the last partial), and
# one in the row layout, whose rows end in partial blocks.
SHAPES = ((4096,), (4097,), (8191,), (16641,), (3, 1500))


def bits(values):
    return bfloat16.rounded(np.asarray(values, np.float32))


def reference_bf16_step(name, param, compensation, grad, state, step, hyper):
    """decode -> the rule in float32 on float32(param) -> encode; then the parameter's store:
    rounded, or s = t + c, param = bf16(s), c = bf16(s - param)."""
    with np.errstate(invalid="ignore", over="ignore"):
        new, state = reference_step(name, bfloat16.to_float32(param), bfloat16.to_float32(grad), state, step, hyper)
        if compensation is None:
            return bits(new), None, state
        total = new + bfloat16.to_float32(compensation)
        rounded = bits(total)
        return rounded, bits(total - bfloat16.to_float32(rounded)), state


def tensors(name, hyper, rng):
    """bfloat16 parameters, zero compensation and 8-bit state for each of SHAPES."""
    params = [bits(rng.standard_normal(shape)) for shape in SHAPES]
    states = [initial_state(name, hyper, shape, rng, rows=len(shape) == 2) for shape in SHAPES]
    compensations = [np.zeros(shape, np.uint16) for shape in SHAPES]
    return params, compensations, states


# Every rule with Kahan compensation (the richest hyperparameters: maximize, decay, AMSGrad),
# and a few rounded to nearest without it.
CASES = [(case, True) for case in EDGE_CASES] + [
    (case, False) for case in (EDGE_CASES[0], EDGE_CASES[-1], EDGE_CASES[-2])
]


@pytest.mark.parametrize("isa", native.available_isas())
@pytest.mark.parametrize(
    "case, kahan", CASES, ids=[case_id(case) + ("-kahan" if kahan else "-rounded") for case, kahan in CASES]
)
def test_bf16_params_equal_decode_rule_encode_and_the_bf16_store_bitwise(case, kahan, isa):
    """Two groups (the case's hyperparameters, and the rule's first), each one call over SHAPES,
    three steps, on one and on three threads."""
    name, hyper = case
    spec = SPECS[name]
    rng = np.random.default_rng(len(name))
    groups = [hyper, HYPERS[name][0]]
    stepped = {
        threads: [tensors(name, group, np.random.default_rng(index)) for index, group in enumerate(groups)]
        for threads in (1, 3)
    }
    expected = [tensors(name, group, np.random.default_rng(index)) for index, group in enumerate(groups)]
    for step in (1, 2, 10):
        grads = [bits(rng.standard_normal(shape) * 10.0 ** rng.uniform(-4, 0, shape)) for shape in SHAPES]
        for index, group in enumerate(groups):
            params, compensations, states = expected[index]
            for i in range(len(SHAPES)):
                params[i], new_compensation, states[i] = reference_bf16_step(
                    name, params[i], compensations[i] if kahan else None, grads[i], states[i], step, group
                )
                compensations[i] = new_compensation if kahan else compensations[i]
            for threads, runs in stepped.items():
                params, compensations, states = runs[index]
                quantized.update(
                    spec,
                    params,
                    grads,
                    states,
                    [tensor_count(spec, group, step)] * len(SHAPES),
                    compensations=compensations if kahan else None,
                    isa=isa,
                    num_threads=threads,
                    **group,
                )
                for i in range(len(SHAPES)):
                    np.testing.assert_array_equal(params[i], expected[index][0][i], err_msg=f"{threads} threads")
                    np.testing.assert_array_equal(compensations[i], expected[index][1][i])
                    assert_same_state(states[i], expected[index][2][i])
    if kahan:  # the compensation held what rounding lost
        assert any(np.any(buffer) for buffer in expected[0][1])


def test_compensation_for_float32_params_raises_and_changes_nothing():
    rng = np.random.default_rng(1)
    param = rng.standard_normal(4096).astype(np.float32)
    state = initial_state("Adam", {}, 4096, rng)
    before, before_state = param.copy(), copied(state)
    with pytest.raises(ValueError, match="compensations are for bfloat16"):
        quantized.adam([param], [param.copy()], [state], [1], compensations=[np.zeros(4096, np.uint16)])
    np.testing.assert_array_equal(param, before)
    assert_same_state(state, before_state)


def test_bad_bf16_input_raises_and_changes_nothing():
    rng = np.random.default_rng(2)
    param, grad = bits(rng.standard_normal(4096)), bits(rng.standard_normal(4096))
    state = initial_state("Adam", {}, 4096, rng)
    before, before_state = param.copy(), copied(state)
    with pytest.raises(ValueError, match=r"compensations\[0\] is uint16 of 7 elements"):
        quantized.adam([param], [grad], [state], [1], compensations=[np.zeros(7, np.uint16)])
    with pytest.raises(ValueError, match=r"grads\[0\] is float32"):
        quantized.adam([param], [bfloat16.to_float32(grad)], [state], [1])
    with pytest.raises(ValueError, match="compensations has 2 entries"):
        quantized.adam([param], [grad], [state], [1], compensations=[np.zeros(4096, np.uint16)] * 2)
    with pytest.raises(ValueError, match="Invalid dtype"):
        quantized.adam_pointers({}, [4096], [param.ctypes.data], [grad.ctypes.data], {}, [1], dtype="float16")
    np.testing.assert_array_equal(param, before)
    assert_same_state(state, before_state)
