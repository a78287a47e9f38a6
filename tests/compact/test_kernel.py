"""The fused 8-bit kernel computes exactly decode -> adamkit.rules.<rule> -> encode.

Bitwise, not within a quantisation step: the kernel repeats the NumPy codec's float32
operations in the same order (IEEE division, square root and products, round-half-even, the
same thresholds), and
the rule's update in the rule's order without FMA, so every code, scale and parameter agrees,
for the rules of adamkit.specs.COMPACT, on every instruction set and thread count.
"""

import ctypes
import ctypes.util
import platform

import numpy as np
import pytest

from adamkit import specs
from adamkit.compact.int8 import BLOCK, decode_signed, decode_unsigned, encode_signed, encode_unsigned
from adamkit.compact.int8 import UNSIGNED_THRESHOLDS
from adamkit.kernels import native, quantized
from adamkit.kernels.quantized import codes_key, scales_key
from tests.kernels.trajectories import tensor_count

pytestmark = pytest.mark.skipif(not quantized.available(), reason="the C kernels were not built")

SIZES = (1, 7, 17, 255, 256, 257, 4097)
HYPERS = {
    "Adam": (
        dict(lr=3e-3),
        dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True),
        dict(lr=1e-2, betas=(0.7, 0.95), eps=1e-3, maximize=True, amsgrad=True, weight_decay=0.05, decoupled_weight_decay=True),
        dict(lr=2e-3, weight_decay=0.3, decoupled_weight_decay=True, maximize=True),
        dict(lr=5e-3, eps_hat=True, eps=1e-4, amsgrad=True),
        # With those above, each of the twelve variants (maximize x decay x AMSGrad) that the
        # fused step (csrc/quant8_adam_fused_loop.h, AVX-512 and AVX2) compiles to a loop of its own.
        dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
        dict(lr=2e-3, maximize=True),
        dict(lr=1e-3, weight_decay=0.01, decoupled_weight_decay=True),
        dict(lr=5e-3, weight_decay=0.05, maximize=True, eps_hat=True, eps=1e-4),
        dict(lr=2e-3, weight_decay=0.02, decoupled_weight_decay=True, amsgrad=True),
        dict(lr=3e-3, betas=(0.85, 0.98), maximize=True, amsgrad=True),
        dict(lr=4e-3, weight_decay=0.2, maximize=True, amsgrad=True),
    ),
    "Adamax": (
        dict(),
        dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
        dict(lr=5e-3, betas=(0.7, 0.95), eps=1e-3, weight_decay=0.05, maximize=True),
    ),
    "Adadelta": (
        dict(),
        dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1),
        dict(lr=2.0, rho=0.95, eps=1e-7, weight_decay=0.05, maximize=True),
    ),
    # With maximize and each form of decay: its six variants in csrc/quant8.c.
    "NAdam": (
        dict(lr=1e-2, momentum_decay=0.05),
        dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, maximize=True),
        dict(lr=5e-3, eps=1e-3, weight_decay=0.05, decoupled_weight_decay=True, maximize=True),
    ),
    # Steps 1 to 3 before RAdam's rectification, step 10 (and later) after it. The richest
    # case decays decoupled: before rectification the step is m/(1 - β1^t)·γ, not normalised,
    # so in a block of HUGE_GRADIENTS, rounding upward (every small |m| gets code 1, s/127^2)
    # moves the parameters far, and L2 decay would feed them back into the gradient until
    # exp_avg_sq overflowed, which float32 state does not do.
    "RAdam": (
        dict(),
        dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
        dict(lr=5e-3, betas=(0.7, 0.95), eps=1e-3, weight_decay=0.05, decoupled_weight_decay=True, maximize=True),
    ),
    "AdaBelief": (
        dict(lr=2e-3, decoupled_weight_decay=False),
        # Rectified: steps 1 to 3 are SGD's, step 10 is rectified (rho_t >= 5).
        dict(lr=3e-3, betas=(0.9, 0.9), eps=1e-10, weight_decay=0.05, rectify=True),
        dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.1, amsgrad=True, decoupled_weight_decay=False, maximize=True),
    ),
    "ADOPT": (
        dict(),
        dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-4, weight_decay=0.1, maximize=True),
        dict(lr=5e-3, betas=(0.7, 0.95), eps=1e-3, weight_decay=0.05, decoupled_weight_decay=True, maximize=True),
    ),
    # Each of its six variants (maximize x no decay, L2 or decoupled), warmup on and off.
    "AdEMAMix": (
        dict(lr=1e-2, betas=(0.8, 0.99, 0.999), alpha=3.0, t_alpha_beta3=5.0),
        dict(lr=5e-3, eps=1e-6, weight_decay=0.1, decoupled_weight_decay=False, maximize=True),
        dict(lr=5e-3, eps=1e-3, weight_decay=0.2, t_alpha_beta3=3, maximize=True),
        dict(lr=2e-3, maximize=True),
        dict(lr=2e-3, weight_decay=0.1, decoupled_weight_decay=False),
        dict(lr=3e-3, weight_decay=0.05, alpha=8.0),
    ),
    # Each decay (none, decoupled, L2) and maximize: Lion's variants of the driver.
    "Lion": (
        dict(lr=1e-3),
        dict(lr=1e-2, betas=(0.8, 0.95), weight_decay=0.1),
        dict(lr=3e-3, betas=(0.95, 0.98), weight_decay=0.05, decoupled_weight_decay=False, maximize=True),
    ),
}
CASES = [(name, hyper) for name, hypers in HYPERS.items() for hyper in hypers]
SPECS = {"Adam": specs.ADAM, "Adamax": specs.ADAMAX, "Adadelta": specs.ADADELTA, "NAdam": specs.NADAM, "RAdam": specs.RADAM, "AdaBelief": specs.ADABELIEF, "ADOPT": specs.ADOPT, "AdEMAMix": specs.ADEMAMIX, "Lion": specs.LION}
# The richest hyperparameters of each rule: maximize, weight decay, AMSGrad.
RICH = {name: HYPERS[name][2] for name in SPECS}
# Those, and Adam without AMSGrad (with decoupled decay and maximize).
EDGE_CASES = [(name, RICH[name]) for name in RICH] + [("Adam", HYPERS["Adam"][3])]


def case_id(case):
    name, hyper = case
    return name + ":" + ",".join(f"{k}={v}" for k, v in hyper.items())


def encode(key, values, rows=False):
    signed = quantized.CODE_DTYPES[key] == np.int8
    return (encode_signed if signed else encode_unsigned)(values, rows=rows)


def decode(codes, absmax):
    return (decode_signed if codes.dtype == np.int8 else decode_unsigned)(codes, absmax)


def initial_state(name, hyper, shape, rng, rows=False):
    """Codes of plausible state: first moments over 5 decades, |m|-sized maxima (exp_inf),
    squares for the second moments."""
    m = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-6, -1, shape)).astype(np.float32)
    magnitude = np.abs(m.astype(np.float64)) * rng.uniform(1, 3, shape)
    state = {}
    for key in quantized.state_keys(SPECS[name], hyper):
        if quantized.CODE_DTYPES[key] == np.int8:
            values = m
        elif key == "exp_inf":
            values = magnitude.astype(np.float32)
        else:
            values = (magnitude**2 * rng.uniform(0.5, 2, shape)).astype(np.float32)
        state[codes_key(key)], state[scales_key(key)] = encode(key, values, rows)
    return state


def rule_step(name, param, grad, decoded, step, hyper):
    """The rule of ``name`` on float32 arrays; ``step`` only for the rules that count steps."""
    spec = SPECS[name]
    return spec.rule(param, grad, *decoded, **spec.step_argument(tensor_count(spec, hyper, step)), **hyper)


def reference_step(name, param, grad, state, step, hyper):
    """decode -> the rule in float32 -> encode."""
    keys = quantized.state_keys(SPECS[name], hyper)
    decoded = [decode(state[codes_key(key)], state[scales_key(key)]) for key in keys]
    new = rule_step(name, param, grad, decoded, step, hyper)
    assert new.param.dtype == np.float32
    rows = state[scales_key(keys[0])].ndim == 2
    encoded = {}
    for key in keys:
        encoded[codes_key(key)], encoded[scales_key(key)] = encode(key, getattr(new, key), rows)
    return new.param, encoded


def assert_same_state(actual, expected):
    assert actual.keys() == expected.keys()
    for key in expected:
        np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)
        assert actual[key].dtype == expected[key].dtype


def copied(state):
    return {key: value.copy() for key, value in state.items()}


@pytest.mark.parametrize("isa", native.available_isas())
@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("size", SIZES)
def test_kernel_equals_decode_rule_encode_bitwise(size, case, isa):
    name, hyper = case
    rng = np.random.default_rng(size)
    param = rng.standard_normal(size).astype(np.float32)
    state = initial_state(name, hyper, size, rng)
    expected_param, expected_state = param.copy(), copied(state)
    for step in (1, 2, 3, 10):
        grad = (rng.standard_normal(size) * 10.0 ** rng.uniform(-4, 0, size)).astype(np.float32)
        quantized.update(SPECS[name], [param], [grad], [state], [tensor_count(SPECS[name], hyper, step)], isa=isa, **hyper)
        expected_param, expected_state = reference_step(name, expected_param, grad, expected_state, step, hyper)
        np.testing.assert_array_equal(param, expected_param)
        assert_same_state(state, expected_state)


def gradients_at_the_unsigned_thresholds(largest):
    """Blocks of gradients whose exp_avg_sq after one Adam step from zero state lies at or next
    to each threshold of the unsigned code, w = sqrt(v) (255^2 / sqrt(s)) = (j + 1/2)^2 (see
    adamkit.compact.int8): each block starts with ``largest``, which sets its scale s."""
    one_minus_beta2 = np.float32(1 - 0.999)

    def scaled(g, factor):
        return np.sqrt((one_minus_beta2 * g) * g) * factor

    top = np.float32(largest)
    factor = np.float32(255 * 255) / np.sqrt((one_minus_beta2 * top) * top)
    thresholds = UNSIGNED_THRESHOLDS
    lo, hi = np.zeros_like(thresholds), np.full_like(thresholds, top)
    for _ in range(60):  # bisect for the smallest gradient at or above each threshold
        mid = (lo + hi) / np.float32(2)
        below = scaled(mid, factor) < thresholds
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    near = [hi, np.nextafter(hi, np.float32(0)), np.nextafter(hi, np.float32(np.inf))]
    candidates = np.concatenate(near)
    chunks = [candidates[i : i + BLOCK - 1] for i in range(0, candidates.size, BLOCK - 1)]
    grads = np.concatenate([np.concatenate([[top], chunk]) for chunk in chunks]).astype(np.float32)
    at_a_threshold = np.isin(scaled(grads, factor), thresholds)
    return grads, at_a_threshold


@pytest.mark.parametrize("isa", native.available_isas())
@pytest.mark.parametrize("hyper", [HYPERS["Adam"][0], HYPERS["Adam"][1]], ids=["adam", "amsgrad"])
def test_second_moments_at_the_code_thresholds_encode_as_the_reference_on_every_isa(hyper, isa):
    """Gradients that put exp_avg_sq exactly on, and next to, every boundary between two unsigned
    codes: the kernel's estimate and threshold comparison give the reference's count."""
    hyper = {**hyper, "betas": (0.9, 0.999)}
    grad, at_a_threshold = gradients_at_the_unsigned_thresholds(3.0)
    assert at_a_threshold.sum() > 100  # many land exactly on a boundary, where >= decides
    grad[1::2] *= -1
    param = np.zeros_like(grad)
    state = initial_state("Adam", hyper, grad.size, np.random.default_rng(0))
    for key in quantized.state_keys(specs.ADAM, hyper):
        state[codes_key(key)][:] = 0
        state[scales_key(key)][:] = 0
    expected_param, expected_state = reference_step("Adam", param.copy(), grad, copied(state), 1, hyper)
    quantized.update(specs.ADAM, [param], [grad], [state], [1], isa=isa, **hyper)
    np.testing.assert_array_equal(param, expected_param)
    assert_same_state(state, expected_state)
    assert len(np.unique(state["exp_avg_sq_codes"])) == 256


def test_the_adam_cases_cover_its_twelve_variants():
    variants = {
        (h.get("maximize", False), h.get("decoupled_weight_decay", False) if h.get("weight_decay") else None, h.get("amsgrad", False))
        for h in HYPERS["Adam"]
    }
    assert len(variants) == 12


# Blocks 1 and 2 (in the middle of a run of whole blocks), 5 (the last whole one) and 6 (the
# partial one) of 6 * 256 + 188 elements: the fused step encodes each of them its own way.
NON_FINITE_BLOCKS = (1, 2, 5, 6)
N_BLOCKS = 7


@pytest.mark.parametrize("isa", native.available_isas())
@pytest.mark.parametrize("case", [("Adam", HYPERS["Adam"][0]), ("Adam", HYPERS["Adam"][1]), ("Adamax", HYPERS["Adamax"][0])], ids=case_id)
def test_subnormal_first_moments_encode_as_the_reference_on_every_isa(case, isa):
    """Blocks whose exp_avg is all subnormal (its reciprocal scale would overflow float32)
    between ordinary blocks, from zero state: the signed codes are still the nearest ones, the
    same on every ISA and in the fused step's loop and outside it."""
    name, hyper = case
    rng = np.random.default_rng(5)
    magnitudes = np.repeat([1e-2, 1e-38, 1e-2, 3e-42, 1e-2], BLOCK)[: 4 * BLOCK + 100]
    grad = (rng.standard_normal(magnitudes.size) * magnitudes).astype(np.float32)
    param = np.zeros_like(grad)
    state = initial_state(name, hyper, grad.size, rng)
    for key in quantized.state_keys(SPECS[name], hyper):
        state[codes_key(key)][:] = 0
        state[scales_key(key)][:] = 0
    expected_param, expected_state = reference_step(name, param.copy(), grad, copied(state), 1, hyper)
    quantized.update(SPECS[name], [param], [grad], [state], [tensor_count(SPECS[name], hyper, 1)], isa=isa, **hyper)
    np.testing.assert_array_equal(param, expected_param)
    assert_same_state(state, expected_state)
    scales, codes = state["exp_avg_absmax"], state["exp_avg_codes"]
    assert 0 < scales[1] < np.finfo(np.float32).tiny and 0 < scales[3] < np.finfo(np.float32).tiny
    assert np.abs(codes[BLOCK : 2 * BLOCK]).max() == 127 and np.abs(codes[3 * BLOCK : 4 * BLOCK]).max() == 127


def float32_new_state(name, param, grad, state, step, hyper):
    """The rule's new parameter and state in float32, from the decoded state (before encoding)."""
    decoded = [decode(state[codes_key(key)], state[scales_key(key)]) for key in quantized.state_keys(SPECS[name], hyper)]
    with np.errstate(invalid="ignore", over="ignore"):
        return rule_step(name, param.copy(), grad, decoded, step, hyper)


def assert_non_finite_where_float32_state_is(name, hyper, state, new):
    """Each slot's decoded state against the rule's float32 result ``new``: a block holding a NaN
    has the scale NaN and codes 0 and decodes to NaN (the NaN propagates); in every other block
    an infinity decodes to itself, under the scale FLT_MAX, and every finite value to a finite
    one."""
    for key in quantized.state_keys(SPECS[name], hyper):
        values, scales = getattr(new, key), state[scales_key(key)]
        with np.errstate(invalid="ignore", over="ignore"):
            decoded = decode(state[codes_key(key)], scales)
        for block in range(scales.size):
            part = slice(block * BLOCK, (block + 1) * BLOCK)
            if np.isnan(values[part]).any():
                assert np.isnan(scales[block]) and not state[codes_key(key)][part].any(), (key, block)
                assert np.isnan(decoded[part]).all(), (key, block)
                continue
            infinite = np.isinf(values[part])
            assert scales[block] == (np.finfo(np.float32).max if infinite.any() else np.abs(values[part]).max()), (key, block)
            np.testing.assert_array_equal(np.isfinite(decoded[part]), ~infinite, err_msg=f"{key} block {block}")
            np.testing.assert_array_equal(decoded[part][infinite], values[part][infinite], err_msg=key)


@pytest.mark.parametrize("isa", native.available_isas())
@pytest.mark.parametrize("case", EDGE_CASES, ids=case_id)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_gradient_leaves_non_finite_state_where_float32_state_has_it_on_every_isa(bad, case, isa):
    """A NaN or infinite gradient, as in the reference: a new state value that is NaN makes its
    block's scale NaN and codes 0 (the block decodes to NaN); one that is infinite (a moment of
    an infinite gradient) keeps its own infinity and leaves the rest of its block finite, as
    float32 state does. Other blocks step as usual."""
    name, hyper = case
    rng = np.random.default_rng(3)
    size = (N_BLOCKS - 1) * BLOCK + 188
    param = rng.standard_normal(size).astype(np.float32)
    state = initial_state(name, hyper, size, rng)
    grad = rng.standard_normal(size).astype(np.float32)
    for block in NON_FINITE_BLOCKS:
        grad[block * BLOCK + 44] = bad
    new = float32_new_state(name, param, grad, state, 2, hyper)
    with np.errstate(invalid="ignore", over="ignore"):
        expected_param, expected_state = reference_step(name, param.copy(), grad, copied(state), 2, hyper)
    quantized.update(SPECS[name], [param], [grad], [state], [tensor_count(SPECS[name], hyper, 2)], isa=isa, **hyper)
    np.testing.assert_array_equal(param, expected_param)
    assert_same_state(state, expected_state)
    assert_non_finite_where_float32_state_is(name, hyper, state, new)
    finite_blocks = [block for block in range(N_BLOCKS) if block not in NON_FINITE_BLOCKS]
    scales = np.array([state[scales_key(key)] for key in quantized.state_keys(SPECS[name], hyper)])
    assert np.isfinite(scales[:, finite_blocks]).all()
    if np.isnan(bad):
        assert np.isnan(scales[:, NON_FINITE_BLOCKS]).all()
    else:  # in each block, some slot holds an infinity
        assert (scales[:, NON_FINITE_BLOCKS] == np.finfo(np.float32).max).any(axis=0).all()


# At one element of a few blocks: a gradient whose square overflows (Adam's exp_avg_sq and
# max_exp_avg_sq and Adadelta's square_avg become infinite, as in float32 state), two ordinary
# steps, and one that makes g - exp_avg overflow (exp_avg becomes infinite, the parameter NaN,
# as in float32 state; a NaN in the state would then make its block NaN, as a NaN gradient
# does).
HUGE_GRADIENTS = (np.float32(1e38), None, None, np.float32(-3.4e38))


def huge_gradients_from_zero_state(name, hyper):
    """A parameter, zero state and HUGE_GRADIENTS at element 44 of NON_FINITE_BLOCKS (ordinary
    gradients elsewhere)."""
    rng = np.random.default_rng(8)
    size = (N_BLOCKS - 1) * BLOCK + 188
    param = rng.standard_normal(size).astype(np.float32)
    state = initial_state(name, hyper, size, rng)
    for key in quantized.state_keys(SPECS[name], hyper):
        state[codes_key(key)][:] = 0
        state[scales_key(key)][:] = 0
    grads = []
    for huge in HUGE_GRADIENTS:
        grad = rng.standard_normal(size).astype(np.float32)
        if huge is not None:
            grad[[block * BLOCK + 44 for block in NON_FINITE_BLOCKS]] = huge
        grads.append(grad)
    return param, state, grads


def float32_trajectory(name, param, grads, hyper):
    """The parameters of the rule's steps with float32 state from zero."""
    spec, params = SPECS[name], []
    state = [np.zeros_like(param) for _ in quantized.state_keys(spec, hyper)]
    for step, grad in enumerate(grads, 1):
        with np.errstate(invalid="ignore", over="ignore"):
            new = rule_step(name, param, grad, state, step, hyper)
        param, state = new.param, [getattr(new, key) for key in quantized.state_keys(spec, hyper)]
        params.append(param)
    return params


# Lion's state, an average of finite gradients, never overflows: there is no infinity to check.
OVERFLOWING_CASES = [case for case in EDGE_CASES if case[0] != "Lion"]


@pytest.mark.parametrize("isa", native.available_isas())
@pytest.mark.parametrize("case", OVERFLOWING_CASES + [("Adam", HYPERS["Adam"][0]), ("Adamax", HYPERS["Adamax"][0])], ids=case_id)
def test_huge_finite_gradients_leave_the_rest_of_their_blocks_finite_on_every_isa(case, isa):
    """Issue case 16: a finite gradient of 1e38 made its block's exp_avg_sq scale infinite, and
    every parameter of the block NaN. In blocks in the middle of a run of whole blocks, the last
    whole one and the partial one (the fused step encodes each its own way), the gradients of
    HUGE_GRADIENTS, from zero state: every step equals decode -> rule -> encode bitwise, each
    parameter is finite wherever float32 state keeps it finite, and each decoded state value
    wherever the rule's float32 result from the decoded state is."""
    name, hyper = case
    param, state, grads = huge_gradients_from_zero_state(name, hyper)
    expected_param, expected_state = param.copy(), copied(state)
    for step, (grad, float32_param) in enumerate(zip(grads, float32_trajectory(name, param, grads, hyper)), 1):
        new = float32_new_state(name, param, grad, state, step, hyper)
        quantized.update(SPECS[name], [param], [grad], [state], [tensor_count(SPECS[name], hyper, step)], isa=isa, **hyper)
        with np.errstate(invalid="ignore", over="ignore"):
            expected_param, expected_state = reference_step(name, expected_param, grad, expected_state, step, hyper)
        np.testing.assert_array_equal(param, expected_param)
        assert_same_state(state, expected_state)
        assert np.isfinite(param[np.isfinite(float32_param)]).all(), step
        assert_non_finite_where_float32_state_is(name, hyper, state, new)
    scales = np.array([state[scales_key(key)] for key in quantized.state_keys(SPECS[name], hyper)])
    assert (scales[:, NON_FINITE_BLOCKS] == np.finfo(np.float32).max).any(axis=0).all()


@pytest.mark.parametrize("isa", native.available_isas())
@pytest.mark.parametrize("case", EDGE_CASES, ids=case_id)
def test_a_non_finite_scale_in_one_slot_propagates_as_in_the_reference_on_every_isa(case, isa):
    """State that decodes to NaN in one slot only (as a checkpoint may hold): np.maximum and the
    rule propagate the NaN, e.g. AMSGrad's maximum of a NaN max_exp_avg_sq and a finite
    exp_avg_sq is NaN. The block is in the middle of a run of whole blocks."""
    name, hyper = case
    rng = np.random.default_rng(5)
    size = 4 * BLOCK + 9
    for key in quantized.state_keys(SPECS[name], hyper):
        param = rng.standard_normal(size).astype(np.float32)
        grad = rng.standard_normal(size).astype(np.float32)
        state = initial_state(name, hyper, size, rng)
        state[scales_key(key)][1] = np.nan
        with np.errstate(invalid="ignore"):
            expected_param, expected_state = reference_step(name, param.copy(), grad, copied(state), 3, hyper)
        quantized.update(SPECS[name], [param], [grad], [state], [tensor_count(SPECS[name], hyper, 3)], isa=isa, **hyper)
        np.testing.assert_array_equal(param, expected_param, err_msg=key)
        assert_same_state(state, expected_state)
        assert np.isnan(state[scales_key(key)][1]), key


def _set_rounding_mode(mode):
    """Set the calling thread's floating-point rounding mode (fesetround), as a caller of the
    kernel may; return the previous one."""
    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    previous = libm.fegetround()
    if libm.fesetround(mode) != 0:
        pytest.skip(f"fesetround({mode:#x}) failed")
    return previous


# <fenv.h> on x86: FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO.
ROUNDING_MODES = {"down": 0x400, "up": 0x800, "toward-zero": 0xC00}


def stepped_in_rounding_mode(name, hyper, param, state, grads, isa, rounding_mode):
    """Copies of ``param`` and ``state`` after the kernel's steps 1, 2, ... on ``grads``, the
    caller rounding in ``rounding_mode``."""
    p, s = param.copy(), copied(state)
    previous = _set_rounding_mode(rounding_mode)
    try:
        for step, grad in enumerate(grads, 1):
            quantized.update(SPECS[name], [p], [grad], [s], [tensor_count(SPECS[name], hyper, step)], isa=isa, num_threads=2, **hyper)
    finally:
        _set_rounding_mode(previous)
    return p, s


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or not ctypes.util.find_library("m"), reason="x86 fenv")
@pytest.mark.parametrize("mode", ROUNDING_MODES)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_every_isa_gives_the_same_bits_in_the_callers_rounding_mode(case, mode):
    """The kernel adopts the caller's rounding mode; the fused Adam step rounds the signed
    code with one conversion in that mode, the portable loops with (r + 2^23) - 2^23: the same
    bits in every mode (and not those of rounding to nearest)."""
    name, hyper = case
    rng = np.random.default_rng(11)
    size = 5 * BLOCK + 17
    param = rng.standard_normal(size).astype(np.float32)
    state = initial_state(name, hyper, size, rng)
    grads = [(rng.standard_normal(size) * 10.0 ** rng.uniform(-4, 0, size)).astype(np.float32) for _ in range(3)]

    def stepped(isa, rounding_mode):
        return stepped_in_rounding_mode(name, hyper, param, state, grads, isa, rounding_mode)

    expected_param, expected_state = stepped("scalar", ROUNDING_MODES[mode])
    for isa in native.available_isas():
        actual_param, actual_state = stepped(isa, ROUNDING_MODES[mode])
        np.testing.assert_array_equal(actual_param, expected_param, err_msg=isa)
        assert_same_state(actual_state, expected_state)
    nearest_param, _ = stepped("scalar", 0)
    assert not np.array_equal(nearest_param, expected_param)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or not ctypes.util.find_library("m"), reason="x86 fenv")
@pytest.mark.parametrize("mode", ROUNDING_MODES)
@pytest.mark.parametrize("case", EDGE_CASES, ids=case_id)
def test_huge_finite_gradients_give_the_same_bits_on_every_isa_in_the_callers_rounding_mode(case, mode):
    """HUGE_GRADIENTS rounding down, up and toward zero: every ISA gives the scalar loops' bits,
    each parameter is finite wherever float32 state keeps it finite, and the state of the rest
    of each block holding an infinity is finite. (Not rounding to nearest, the infinity's own
    largest code may decode to about FLT_MAX instead of an infinity.)"""
    name, hyper = case
    param, state, grads = huge_gradients_from_zero_state(name, hyper)

    def stepped(isa):
        return stepped_in_rounding_mode(name, hyper, param, state, grads, isa, ROUNDING_MODES[mode])

    expected_param, expected_state = stepped("scalar")
    for isa in native.available_isas():
        actual_param, actual_state = stepped(isa)
        np.testing.assert_array_equal(actual_param, expected_param, err_msg=isa)
        assert_same_state(actual_state, expected_state)
    float32_param = float32_trajectory(name, param, grads, hyper)[-1]
    assert np.isfinite(expected_param[np.isfinite(float32_param)]).all()
    if name == "AdaBelief" and mode == "up":
        # Rounding upward, the signed code of every nonzero exp_avg is at least 1: in a block of
        # scale ~1e37 it decodes to ~1e33, whose (g - m)^2 overflows, and the rest of the block's
        # exp_avg_var is infinite (Adam's exp_avg_sq does not read exp_avg).
        return
    rest = np.ones(param.size, bool)
    rest[[block * BLOCK + 44 for block in NON_FINITE_BLOCKS]] = False
    for key in quantized.state_keys(SPECS[name], hyper):
        with np.errstate(over="ignore"):
            assert np.isfinite(decode(expected_state[codes_key(key)], expected_state[scales_key(key)])[rest]).all(), key


@pytest.mark.parametrize("case", EDGE_CASES, ids=case_id)
def test_huge_finite_gradients_equal_the_reference_under_flush_to_zero_on_every_isa(case):
    """HUGE_GRADIENTS with the caller flushing subnormals to zero: each ISA equals decode -> rule
    -> encode computed under flush-to-zero too, and an infinite exp_avg gets the code of its
    sign. (Its block's scale is FLT_MAX, whose reciprocal is subnormal: flushed to 0, it made
    the infinity's u = inf * 0 NaN, of whichever sign each ISA gives a NaN; the signed map
    divides by s 2^-64 instead above 2^126.)"""
    torch = pytest.importorskip("torch")
    name, hyper = case
    param, state, grads = huge_gradients_from_zero_state(name, hyper)

    def stepped(step_once):
        p, s = param.copy(), copied(state)
        for step, grad in enumerate(grads, 1):
            p, s = step_once(p, grad, s, step)
        return p, s

    def kernel(isa):
        def step_once(p, grad, s, step):
            quantized.update(SPECS[name], [p], [grad], [s], [tensor_count(SPECS[name], hyper, step)], isa=isa, num_threads=2, **hyper)
            return p, s

        return step_once

    def reference(p, grad, s, step):
        with np.errstate(invalid="ignore", over="ignore"):
            return reference_step(name, p, grad, s, step, hyper)

    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals")
    try:
        expected_param, expected_state = stepped(reference)
        for isa in native.available_isas():
            actual_param, actual_state = stepped(kernel(isa))
            np.testing.assert_array_equal(actual_param, expected_param, err_msg=isa)
            assert_same_state(actual_state, expected_state)
    finally:
        torch.set_flush_denormal(False)
    if "exp_avg_codes" in expected_state and name != "ADOPT":  # ADOPT clips what enters exp_avg
        huge = [block * BLOCK + 44 for block in NON_FINITE_BLOCKS]
        sign = np.sign(HUGE_GRADIENTS[-1]) * (-1 if hyper.get("maximize") else 1)
        np.testing.assert_array_equal(expected_state["exp_avg_codes"][huge], 127 * sign)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or not ctypes.util.find_library("m"), reason="x86 fenv")
@pytest.mark.parametrize("isa", native.available_isas())
@pytest.mark.parametrize("name", ["Adam", "Adamax"])
def test_signed_codes_stay_within_127_when_the_caller_rounds_upward(name, isa):
    """Rounding upward, |x| * (1/s) of a block's largest |x| comes out one ulp above 1 and
    127 sqrt(|x|/s) above 127, which rounds to 128: as int8 that is -128, and the block's largest
    exp_avg would decode with the opposite sign. Codes stay in [-127, 127], each keeps the sign
    of its non-zero code rounding to nearest, and each block's largest is still +-127 (whole
    blocks, fused on AVX2 and AVX-512, and a partial one)."""
    hyper = HYPERS[name][0]
    rng = np.random.default_rng(0)
    size = 64 * BLOCK + 100
    param = rng.standard_normal(size).astype(np.float32)
    grad = rng.standard_normal(size).astype(np.float32)
    state = initial_state(name, hyper, size, rng)
    _, nearest = reference_step(name, param.copy(), grad, copied(state), 1, hyper)
    previous = _set_rounding_mode(ROUNDING_MODES["up"])
    try:
        quantized.update(SPECS[name], [param], [grad], [state], [tensor_count(SPECS[name], hyper, 1)], isa=isa, **hyper)
    finally:
        _set_rounding_mode(previous)
    codes, expected = state["exp_avg_codes"].astype(np.int32), nearest["exp_avg_codes"].astype(np.int32)
    assert codes.min() >= -127
    nonzero = expected != 0
    np.testing.assert_array_equal(np.sign(codes[nonzero]), np.sign(expected[nonzero]))
    largest = np.abs(expected).reshape(-1)[: 64 * BLOCK].reshape(64, BLOCK).argmax(axis=1) + np.arange(64) * BLOCK
    np.testing.assert_array_equal(codes[largest], expected[largest])


@pytest.mark.parametrize("isa", native.available_isas())
@pytest.mark.parametrize("case", EDGE_CASES, ids=case_id)
# (3, 8192) and (2, 8449): rows of exactly one and of more than one span of 32 blocks (csrc/quant8.c).
# Rows of 300 or 257 elements start the fused step's runs of whole blocks off any alignment.
@pytest.mark.parametrize("shape", [(3, 300), (5, 17), (2, 4097), (3, 8192), (2, 8449), (0, 300), (4, 3, 100), (2, 256), (3, 257)])
def test_the_row_layout_equals_decode_rule_encode_bitwise_on_every_isa(shape, case, isa):
    name, hyper = case
    rng = np.random.default_rng(sum(shape))
    param = rng.standard_normal(shape).astype(np.float32)
    state = initial_state(name, hyper, shape, rng, rows=True)
    expected_param, expected_state = param.copy(), copied(state)
    for step in (1, 2, 5):
        grad = rng.standard_normal(shape).astype(np.float32)
        quantized.update(SPECS[name], [param], [grad], [state], [tensor_count(SPECS[name], hyper, step)], isa=isa, **hyper)
        expected_param, expected_state = reference_step(name, expected_param, grad, expected_state, step, hyper)
        np.testing.assert_array_equal(param, expected_param)
        assert_same_state(state, expected_state)
    first = quantized.state_keys(SPECS[name], hyper)[0]
    assert state[scales_key(first)].shape == (shape[0], -(-int(np.prod(shape[1:])) // 256))


@pytest.mark.parametrize("isa", native.available_isas())
@pytest.mark.parametrize("case", EDGE_CASES, ids=case_id)
def test_one_call_for_many_tensors_equals_the_reference_on_every_isa_and_thread_count(case, isa):
    name, hyper = case
    rng = np.random.default_rng(7)
    sizes = (4097, 1, 255, 0, 17, 257, 70000)
    params = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    grads = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    states = [initial_state(name, hyper, n, rng) for n in sizes]
    steps = [3, 1, 5, 2, 8, 4, 6]
    expected = [reference_step(name, p.copy(), g, copied(s), t, hyper) for p, g, s, t in zip(params, grads, states, steps)]
    for num_threads in (1, 2):
        stepped_params, stepped_states = [p.copy() for p in params], [copied(s) for s in states]
        counts = [tensor_count(SPECS[name], hyper, step) for step in steps]
        quantized.update(SPECS[name], stepped_params, grads, stepped_states, counts, isa=isa, num_threads=num_threads, **hyper)
        for param, state, (expected_param, expected_state) in zip(stepped_params, stepped_states, expected):
            np.testing.assert_array_equal(param, expected_param)
            assert_same_state(state, expected_state)


def test_the_named_entry_points_are_update_with_their_spec():
    rng = np.random.default_rng(3)
    for name, arrays, pointers in (
        ("Adam", quantized.adam, quantized.adam_pointers),
        ("Adamax", quantized.adamax, quantized.adamax_pointers),
        ("Adadelta", quantized.adadelta, quantized.adadelta_pointers),
        ("Lion", quantized.lion, quantized.lion_pointers),
    ):
        hyper = RICH[name]
        param = rng.standard_normal(300).astype(np.float32)
        grad = rng.standard_normal(300).astype(np.float32)
        state = initial_state(name, hyper, 300, rng)
        expected_param, expected_state = reference_step(name, param.copy(), grad, copied(state), 2, hyper)
        by_array, by_array_state = param.copy(), copied(state)
        arrays([by_array], [grad], [by_array_state], [2], **hyper)
        pointer_state = copied(state)
        ptrs = {key: [value.ctypes.data] for key, value in pointer_state.items()}
        pointers(hyper, [300], [param.ctypes.data], [grad.ctypes.data], ptrs, [2])
        for stepped, stepped_state in ((by_array, by_array_state), (param, pointer_state)):
            np.testing.assert_array_equal(stepped, expected_param)
            assert_same_state(stepped_state, expected_state)


@pytest.mark.parametrize("name", SPECS)
def test_bad_input_raises_and_changes_nothing(name):
    spec, hyper = SPECS[name], RICH[name]
    rng = np.random.default_rng(0)
    param = rng.standard_normal(300).astype(np.float32)
    state = initial_state(name, hyper, 300, rng)
    before = param.copy(), copied(state)
    grad = np.ones(300, np.float32)
    keys = quantized.state_keys(spec, hyper)
    first, second = keys[0], keys[-1]  # the same slot for Lion, which has one
    bad_states = {
        codes_key(first): state[codes_key(first)].view(np.uint8 if state[codes_key(first)].dtype == np.int8 else np.int8),
        scales_key(second): state[scales_key(second)][:1],
    }
    for key, value in bad_states.items():
        with pytest.raises(ValueError, match=rf"states\[0\]\['{key}'\]"):
            quantized.update(spec, [param], [grad], [{**state, key: value}], [tensor_count(spec, hyper, 1)], **hyper)
    with pytest.raises(TypeError, match=rf"states\[0\]\['{codes_key(second)}'\] must be a NumPy array"):
        quantized.update(spec, [param], [grad], [{k: v for k, v in state.items() if k != codes_key(second)}], [tensor_count(spec, hyper, 1)], **hyper)
    with pytest.raises(ValueError, match=r"grads\[0\] is float64"):
        quantized.update(spec, [param], [grad.astype(np.float64)], [state], [tensor_count(spec, hyper, 1)], **hyper)
    with pytest.raises(ValueError, match="lr"):
        quantized.update(spec, [param], [grad], [state], [tensor_count(spec, hyper, 1)], **{**hyper, "lr": -1.0})
    with pytest.raises(ValueError, match="SGD has no 8-bit state"):
        quantized.update(specs.SGD, [param], [grad], [state], [1], lr=0.1)
    with pytest.raises(ValueError, match="Invalid isa: 'mmx'"):
        quantized.update(spec, [param], [grad], [state], [tensor_count(spec, hyper, 1)], isa="mmx", **hyper)
    np.testing.assert_array_equal(param, before[0])
    assert_same_state(state, before[1])


def test_amsgrad_needs_its_quantised_maximum():
    rng = np.random.default_rng(1)
    param = rng.standard_normal(300).astype(np.float32)
    state = initial_state("Adam", {}, 300, rng)
    before = param.copy(), copied(state)
    with pytest.raises(TypeError, match=r"states\[0\]\['max_exp_avg_sq_codes'\] must be a NumPy array"):
        quantized.adam([param], [np.ones(300, np.float32)], [state], [1], lr=0.1, amsgrad=True)
    np.testing.assert_array_equal(param, before[0])
    assert_same_state(state, before[1])
