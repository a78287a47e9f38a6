"""The fused 8-bit Adam kernel computes exactly decode -> adamkit.rules.adam -> encode.

Bitwise, not within a quantisation step: the kernel repeats the NumPy codec's float32
operations in the same order (IEEE division, square root and products, round-half-even), and
the rule's update in the rule's order without FMA, so every code, scale and parameter agrees.
"""

import numpy as np
import pytest

from adamkit import rules
from adamkit.kernels import quantized
from adamkit.quant import decode_signed, decode_unsigned, encode_signed, encode_unsigned

pytestmark = pytest.mark.skipif(not quantized.available(), reason="the C kernels were not built")

SIZES = (1, 7, 17, 300, 4097)
HYPERS = (
    dict(lr=3e-3),
    dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True),
    dict(lr=1e-2, betas=(0.7, 0.95), eps=1e-3, maximize=True, amsgrad=True, weight_decay=0.05, decoupled_weight_decay=True),
    dict(lr=2e-3, weight_decay=0.3, decoupled_weight_decay=True, maximize=True),
    dict(lr=5e-3, eps_hat=True, eps=1e-4, amsgrad=True),
)
ENCODERS = {"exp_avg": encode_signed, "exp_avg_sq": encode_unsigned, "max_exp_avg_sq": encode_unsigned}
DECODERS = {"exp_avg": decode_signed, "exp_avg_sq": decode_unsigned, "max_exp_avg_sq": decode_unsigned}


def initial_state(size, amsgrad, rng, rows=False):
    m = (rng.standard_normal(size) * 10.0 ** rng.uniform(-6, -1, size)).astype(np.float32)
    v = (m.astype(np.float64) ** 2 * rng.uniform(1, 3, size)).astype(np.float32)
    values = {"exp_avg": m, "exp_avg_sq": v}
    if amsgrad:
        values["max_exp_avg_sq"] = (v * rng.uniform(0.5, 2, size)).astype(np.float32)
    state = {}
    for key, value in values.items():
        state[key], state[key + "_absmax"] = ENCODERS[key](value, rows=rows)
    return state


def reference_step(param, grad, state, step, hyper):
    """decode -> adamkit.rules.adam in float32 -> encode."""
    decoded = {key: DECODERS[key](state[key], state[key + "_absmax"]) for key in ENCODERS if key in state}
    new = rules.adam(
        param, grad, decoded["exp_avg"], decoded["exp_avg_sq"], decoded.get("max_exp_avg_sq"), step=step, **hyper
    )
    assert new.param.dtype == np.float32
    encoded = {}
    rows = state["exp_avg_absmax"].ndim == 2
    for key in decoded:
        encoded[key], encoded[key + "_absmax"] = ENCODERS[key](getattr(new, key), rows=rows)
    return new.param, encoded


def assert_same_state(actual, expected):
    assert actual.keys() == expected.keys()
    for key in expected:
        np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)
        assert actual[key].dtype == expected[key].dtype


@pytest.mark.parametrize("hyper", HYPERS, ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()))
@pytest.mark.parametrize("size", SIZES)
def test_kernel_equals_decode_rule_encode_bitwise(size, hyper):
    rng = np.random.default_rng(size)
    param = rng.standard_normal(size).astype(np.float32)
    state = initial_state(size, hyper.get("amsgrad", False), rng)
    expected_param, expected_state = param.copy(), {k: v.copy() for k, v in state.items()}
    for step in (1, 2, 3, 10):
        grad = (rng.standard_normal(size) * 10.0 ** rng.uniform(-4, 0, size)).astype(np.float32)
        quantized.adam([param], [grad], [state], [step], **hyper)
        expected_param, expected_state = reference_step(expected_param, grad, expected_state, step, hyper)
        np.testing.assert_array_equal(param, expected_param)
        assert_same_state(state, expected_state)


@pytest.mark.parametrize("shape", [(3, 300), (5, 17), (2, 4097), (0, 300), (4, 3, 100)])
def test_the_row_layout_equals_decode_rule_encode_bitwise(shape):
    hyper = HYPERS[2]
    rng = np.random.default_rng(sum(shape))
    param = rng.standard_normal(shape).astype(np.float32)
    state = {key: value.reshape(shape) if value.ndim == 1 and key[-7:] != "_absmax" else value
             for key, value in initial_state(shape, True, rng, rows=True).items()}
    expected_param, expected_state = param.copy(), {k: v.copy() for k, v in state.items()}
    for step in (1, 2, 5):
        grad = rng.standard_normal(shape).astype(np.float32)
        quantized.adam([param], [grad], [state], [step], **hyper)
        expected_param, expected_state = reference_step(expected_param, grad, expected_state, step, hyper)
        np.testing.assert_array_equal(param, expected_param)
        assert_same_state(state, expected_state)
    assert state["exp_avg_absmax"].shape == (shape[0], -(-int(np.prod(shape[1:])) // 256))


def test_one_call_for_many_tensors_equals_one_call_each_and_any_thread_count():
    hyper = HYPERS[2]
    rng = np.random.default_rng(7)
    sizes = (4097, 1, 300, 0, 17, 70000)
    params = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    grads = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    states = [initial_state(n, True, rng) for n in sizes]
    steps = [3, 1, 5, 2, 8, 4]
    copies = [([p.copy() for p in params], [{k: v.copy() for k, v in s.items()} for s in states]) for _ in range(2)]
    quantized.adam(params, grads, states, steps, num_threads=2, **hyper)
    separate_params, separate_states = copies[0]
    for i in range(len(sizes)):
        quantized.adam([separate_params[i]], [grads[i]], [separate_states[i]], [steps[i]], num_threads=1, **hyper)
    single_params, single_states = copies[1]
    quantized.adam(single_params, grads, single_states, steps, num_threads=1, **hyper)
    for i in range(len(sizes)):
        for other_params, other_states in ((separate_params, separate_states), (single_params, single_states)):
            np.testing.assert_array_equal(params[i], other_params[i])
            assert_same_state(states[i], other_states[i])


def test_bad_input_raises_and_changes_nothing():
    rng = np.random.default_rng(0)
    param = rng.standard_normal(300).astype(np.float32)
    state = initial_state(300, False, rng)
    before = param.copy(), {k: v.copy() for k, v in state.items()}
    grad = np.ones(300, np.float32)
    bad_states = {
        "exp_avg": state["exp_avg"].view(np.uint8),
        "exp_avg_sq_absmax": state["exp_avg_sq_absmax"][:1],
    }
    for key, value in bad_states.items():
        with pytest.raises(ValueError, match=rf"states\[0\]\['{key}'\]"):
            quantized.adam([param], [grad], [{**state, key: value}], [1], lr=0.1)
    with pytest.raises(ValueError, match=r"grads\[0\] is float64"):
        quantized.adam([param], [grad.astype(np.float64)], [state], [1], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate|lr"):
        quantized.adam([param], [grad], [state], [1], lr=-1.0)
    with pytest.raises(TypeError, match=r"states\[0\]\['max_exp_avg_sq'\] must be a NumPy array"):
        quantized.adam([param], [grad], [state], [1], lr=0.1, amsgrad=True)
    np.testing.assert_array_equal(param, before[0])
    assert_same_state(state, before[1])
