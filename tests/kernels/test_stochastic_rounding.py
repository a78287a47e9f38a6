"""float32 parameters with bfloat16 state (the kernels' stochastic-rounding layout) against the
reference: widen the state, the rule of adamkit.rules in float32, then
adamkit.compact.bfloat16.stochastically_rounded with the tensor's seed, the slot as stream and the
element's position; bit for bit on every ISA and thread count, one tensor or many per call. And
the rounding itself: unbiased everywhere in an array, NaN as the quiet NaN."""

import numpy as np
import pytest

from adamkit import specs
from adamkit.compact import bfloat16
from adamkit.kernels import native

pytestmark = pytest.mark.skipif(not native.available(), reason="the C kernels were not built")

SIZES = (1, 7, 17, 4097, 70001, (1 << 17) + 3)
CASES = {
    "adam-amsgrad-l2-maximize": (specs.ADAM, dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True, maximize=True)),
    "adamw": (specs.ADAMW, dict(lr=3e-3, weight_decay=0.05, decoupled_weight_decay=True)),
    "adamax": (specs.ADAMAX, dict(lr=2e-3, betas=(0.7, 0.95), weight_decay=0.1)),
    "adadelta": (specs.ADADELTA, dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.05, maximize=True)),
    "rmsprop-centered-momentum": (specs.RMSPROP, dict(lr=1e-2, alpha=0.9, momentum=0.5, centered=True)),
    "radam-decoupled-maximize": (
        specs.RADAM,
        dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.05, decoupled_weight_decay=True, maximize=True),
    ),
    "adopt-l2": (specs.ADOPT, dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-4, weight_decay=0.1, decoupled_weight_decay=False, maximize=False)),
    "lamb-clip": (specs.LAMB, dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, trust_clip=0.5, maximize=False)),
    "lion-l2-maximize": (specs.LION, dict(lr=1e-3, betas=(0.8, 0.95), weight_decay=0.1, decoupled_weight_decay=False, maximize=True)),
}
SEEDS = (0, 4 * 100_003 + 2, (1 << 40) + 5)


def start(spec, hyper, sizes, seed):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    grads = [(rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 1, n)).astype(np.float32) for n in sizes]
    states = []
    for n in sizes:
        state = {}
        for slot in spec.active_slots({"amsgrad": False, "momentum": 0.0, "centered": False, **hyper}):
            values = np.abs(rng.standard_normal(n)).astype(np.float32) * 1e-3
            if slot.key == "grad_avg":  # centered RMSprop's variance v - a^2 stays >= 0 from a = 0
                values[:] = 0.0
            state[slot.key] = bfloat16.rounded(values)
        states.append(state)
    return params, grads, states


def kernel_step(spec, hyper, params, grads, states, steps, seeds, isa=None, num_threads=None):
    native.update_pointers(
        spec,
        hyper,
        "float32",
        [p.size for p in params],
        [p.ctypes.data for p in params],
        [g.ctypes.data for g in grads],
        {key: [state[key].ctypes.data for state in states] for key in states[0]},
        steps,
        state_dtype="bfloat16",
        rounding_seeds=seeds,
        isa=isa,
        num_threads=num_threads,
    )


def reference_step(spec, hyper, param, grad, state, step, seed):
    keys = [slot.key for slot in spec.slots]
    values = {key: bfloat16.to_float32(state[key]) for key in state}
    new = spec.rule(param, grad, *(values.get(key) for key in keys), **spec.step_argument(step), **hyper)
    rounded = {key: bfloat16.stochastically_rounded(getattr(new, key), seed, keys.index(key)) for key in state}
    return new.param, rounded


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("isa", native.available_isas())
def test_the_kernel_equals_widen_rule_round_stochastically_bitwise(isa, case):
    spec, hyper = CASES[case]
    params, grads, states = start(spec, hyper, SIZES, seed=len(case))
    steps = [3.0, 1.0, 7.0, 2.0, 5.0, 4.0]
    seeds = [SEEDS[i % len(SEEDS)] + i for i in range(len(SIZES))]
    expected = [reference_step(spec, hyper, *columns) for columns in zip(params, grads, states, steps, seeds)]
    for threads in (1, 2, 3):
        stepped = [p.copy() for p in params], [{k: v.copy() for k, v in s.items()} for s in states]
        kernel_step(spec, hyper, stepped[0], grads, stepped[1], steps, seeds, isa=isa, num_threads=threads)
        for param, state, (expected_param, expected_state) in zip(*stepped, expected):
            np.testing.assert_array_equal(param, expected_param, strict=True)
            for key, value in expected_state.items():
                np.testing.assert_array_equal(state[key], value, strict=True, err_msg=f"{key}, {threads} threads")


def test_one_call_for_many_tensors_equals_one_call_per_tensor():
    spec, hyper = CASES["adamw"]
    params, grads, states = start(spec, hyper, SIZES, seed=3)
    steps, seeds = [2.0] * len(SIZES), list(range(10, 10 + len(SIZES)))
    together = [p.copy() for p in params], [{k: v.copy() for k, v in s.items()} for s in states]
    kernel_step(spec, hyper, together[0], grads, together[1], steps, seeds)
    for index in range(len(SIZES)):
        param, state = params[index].copy(), {k: v.copy() for k, v in states[index].items()}
        kernel_step(spec, hyper, [param], [grads[index]], [state], [steps[index]], [seeds[index]])
        np.testing.assert_array_equal(param, together[0][index], strict=True)
        for key in state:
            np.testing.assert_array_equal(state[key], together[1][index][key], strict=True)


def test_rounding_seeds_are_required_for_bfloat16_state_and_only_there():
    spec, hyper = CASES["adamw"]
    params, grads, states = start(spec, hyper, (5,), seed=0)
    before = [p.copy() for p in params], [{k: v.copy() for k, v in s.items()} for s in states]
    with pytest.raises(ValueError, match="rounding_seeds"):
        kernel_step(spec, hyper, params, grads, states, [1.0], None)
    with pytest.raises(ValueError, match=r"rounding_seeds\[0\] must be >= 0"):
        kernel_step(spec, hyper, params, grads, states, [1.0], [-1])
    with pytest.raises(ValueError, match="rounding_seeds"):
        native.update_pointers(spec, hyper, "float32", [5], [params[0].ctypes.data], [grads[0].ctypes.data],
                               {"exp_avg": [0], "exp_avg_sq": [0]}, [1.0], rounding_seeds=[1])
    np.testing.assert_array_equal(params[0], before[0][0])
    for key in states[0]:
        np.testing.assert_array_equal(states[0][key], before[1][0][key])


def test_each_value_is_one_of_its_two_neighbours_and_nan_is_the_quiet_nan():
    values = np.random.default_rng(1).standard_normal(100_000).astype(np.float32)
    values[7] = np.nan
    bits = bfloat16.stochastically_rounded(values, 3, 0).astype(np.uint32)
    truncated = values.view(np.uint32) >> 16
    finite = ~np.isnan(values)
    assert np.all((bits[finite] == truncated[finite]) | (bits[finite] == truncated[finite] + 1))
    assert bits[7] == bfloat16.QUIET_NAN
    exact = np.array([0.5, -2.0, np.inf, -np.inf, 0.0], np.float32)
    np.testing.assert_array_equal(bfloat16.to_float32(bfloat16.stochastically_rounded(exact, 1, 0)), exact)


def test_a_finite_value_beyond_the_largest_bfloat16_is_never_rounded_to_an_infinity():
    """Every float32 whose upper half is the largest finite bfloat16's (0x7F7F: from 3.39e38 to
    FLT_MAX), of either sign, is stored as that bfloat16; rounded up it would be an infinity.
    Infinities stay infinite, and the value just below still rounds either way."""
    low = np.arange(1 << 16, dtype=np.uint32)
    beyond = np.concatenate([0x7F7F0000 | low, 0xFF7F0000 | low]).view(np.float32)
    np.testing.assert_array_equal(bfloat16.stochastically_rounded(beyond, 5, 1), np.repeat([0x7F7F, 0xFF7F], 1 << 16))
    infinities = np.array([np.inf, -np.inf], np.float32)
    np.testing.assert_array_equal(bfloat16.stochastically_rounded(infinities, 5, 1), [0x7F80, 0xFF80])
    below = (0x7F7E0000 | low).view(np.float32)
    assert set(bfloat16.stochastically_rounded(below, 5, 1).tolist()) == {0x7F7E, 0x7F7F}


@pytest.mark.parametrize("case", ["adam-amsgrad-l2-maximize", "adamw", "adamax", "adadelta"])
@pytest.mark.parametrize("isa", native.available_isas())
def test_state_beyond_the_largest_bfloat16_is_stored_finite_as_in_the_reference(isa, case):
    """Every third gradient huge (3.4e38; its square root, 1.84e19, for Adadelta, whose
    state holds squares) and the state there at the largest bfloat16 (as after many such steps):
    new state values lie beyond the largest bfloat16 (exp_avg; Adamax's exp_inf; Adadelta's
    square_avg and acc_delta), and the kernel stores them as it, as the reference does, on every
    ISA. Every new state value that is finite in float32 is stored finite (rounded up, exp_avg
    would be infinite, and the next step's parameter NaN)."""
    spec, hyper = CASES[case]
    sizes, step, seeds = (4097, 70001), 5.0, [7, 8]
    params, grads, states = start(spec, hyper, sizes, seed=9)
    largest = bfloat16.to_float32(np.array([bfloat16.LARGEST], np.uint16))[0]
    huge = np.sqrt(np.float32(3.4e38)) if spec is specs.ADADELTA else np.float32(3.4e38)
    for grad, state in zip(grads, states):
        grad[::3] = np.copysign(huge, grad[::3])
        directed = -grad[::3] if hyper.get("maximize") else grad[::3]
        for key in state:  # exp_avg of the sign of the (directed) gradients
            state[key][::3] = bfloat16.rounded(np.copysign(largest, directed) if key == "exp_avg" else np.full(directed.shape, largest))
    with np.errstate(over="ignore", invalid="ignore"):
        expected = [reference_step(spec, hyper, *columns) for columns in zip(params, grads, states, [step] * 2, seeds)]
        floats = [spec.rule(param, grad, *(bfloat16.to_float32(state[slot.key]) if slot.key in state else None for slot in spec.slots), step=step, **hyper)
                  for param, grad, state in zip(params, grads, states)]
    kernel_step(spec, hyper, params, grads, states, [step] * 2, seeds, isa=isa)
    at_the_largest = 0
    for param, state, (expected_param, expected_state), new in zip(params, states, expected, floats):
        np.testing.assert_array_equal(param, expected_param, strict=True)
        for key, value in expected_state.items():
            np.testing.assert_array_equal(state[key], value, strict=True, err_msg=key)
            finite = np.isfinite(getattr(new, key))
            assert np.isfinite(bfloat16.to_float32(state[key])[finite]).all(), key
            at_the_largest += np.count_nonzero((state[key] & 0x7FFF) == bfloat16.LARGEST)
    assert at_the_largest > 70001 // 3


@pytest.mark.parametrize("stream", [0, 1])
def test_rounding_is_unbiased_at_every_position_and_streams_differ(stream):
    # 3/4 of the way from 1 to the next bfloat16: rounded up with probability 3/4 in every part.
    values = np.full(1 << 18, 1.0 + 3 * 2**-9, np.float32)
    rounded = bfloat16.to_float32(bfloat16.stochastically_rounded(values, 11, stream))
    assert set(np.unique(rounded).tolist()) == {1.0, 1.0 + 2**-7}
    for part in np.split(rounded, 8):
        assert part.mean() == pytest.approx(1.0 + 3 * 2**-9, abs=2**-7 * 0.01)
    other = bfloat16.to_float32(bfloat16.stochastically_rounded(values, 11, stream + 1))
    assert 0.3 < np.mean(rounded != other) < 0.45  # independent draws differ with probability 3/8
