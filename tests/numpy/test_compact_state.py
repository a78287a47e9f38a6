"""adamkit.numpy with state_dtype="int8" and "bf16": the layout, the step against the codec and
the rule, checkpoints and conversions between layouts, export, and bad input.

Every expected code comes from the codec functions (adamkit.compact.int8), never from numbers written
here, so the tests hold whatever map the codec uses.
"""

import re

import numpy as np
import pytest

import adamkit.numpy
from adamkit import rules, specs
from adamkit.compact import bfloat16
from adamkit.compact.int8 import decode_signed, decode_unsigned, encode_signed, encode_unsigned
from adamkit.compact.policy import MIN_QUANTIZED_NUMEL, rounding_seed, takes_compact_state
from adamkit.kernels import quantized
from adamkit.kernels.quantized import codes_key, scales_key

pytestmark = pytest.mark.skipif(not quantized.available(), reason="the C kernels were not built")

SHAPES = ((1,), (7,), (4097,), (17,), (70000,), (70, 80))
GROUP_SIZES = (3, 3)  # group 0: 1, 7, 4097; group 1: 17, 70000, 70x80
HYPERS = (
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(lr=3e-3, weight_decay=0.05, decoupled_weight_decay=True, maximize=True)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=2e-3, betas=(0.7, 0.95), eps=1e-4)),
)
SECOND_GROUP = {"lr": 5e-3, "betas": (0.85, 0.98)}
ENCODERS = {"exp_avg": encode_signed, "exp_avg_sq": encode_unsigned, "max_exp_avg_sq": encode_unsigned}
DECODERS = {"exp_avg": decode_signed, "exp_avg_sq": decode_unsigned, "max_exp_avg_sq": decode_unsigned}


def hyper_id(entry):
    name, hyper = entry
    return name + "[" + ",".join(f"{k}={v}" for k, v in hyper.items()) + "]"


def start_params(seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for shape in shapes]


def grads_at(step, shapes=SHAPES):
    """Gradients whose magnitudes vary over four orders, some entries exactly zero."""
    rng = np.random.default_rng(1000 + step)
    grads = []
    for shape in shapes:
        grad = rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 1, shape)
        grad[rng.random(shape) < 0.05] = 0.0
        grads.append(grad.astype(np.float32))
    return grads


def make(name, hyper, params, state_dtype):
    groups = [{"params": params[: GROUP_SIZES[0]]}, {"params": params[GROUP_SIZES[0] :], **SECOND_GROUP}]
    return getattr(adamkit.numpy, name)(groups, **hyper, state_dtype=state_dtype)


def group_hyper(name, hyper, index):
    """The keyword arguments of adamkit.rules.adam for group ``index``."""
    spec = getattr(specs, name.upper())
    group = {**spec.defaults, **hyper, **(SECOND_GROUP if index else {})}
    return spec.rule_arguments(group)


def snapshot(params, opt):
    return [p.copy() for p in params], [{k: np.copy(v) for k, v in s.items()} for s in opt.state]


def assert_unchanged(params, opt, before):
    for param, saved in zip(params, before[0]):
        np.testing.assert_array_equal(param, saved, strict=True)
    assert len(opt.state) == len(before[1])
    for state, saved in zip(opt.state, before[1]):
        assert state.keys() == saved.keys()
        for key in saved:
            np.testing.assert_array_equal(state[key], saved[key], strict=True, err_msg=key)


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], strict=True, err_msg=key)


def trained(state_dtype, steps=6, entry=HYPERS[0]):
    params = start_params()
    opt = make(*entry, params, state_dtype)
    for step in range(steps):
        opt.step(grads_at(step))
    return params, opt


def test_every_rule_that_takes_int8_state_steps_it_in_the_numpy_front_end():
    for spec in specs.ALL:
        if takes_compact_state(spec, "int8"):
            param = np.random.default_rng(0).standard_normal(4096).astype(np.float32)
            start = param.copy()
            optimizer = getattr(adamkit.numpy, spec.name)([param], state_dtype="int8")
            for _ in range(2):  # ADOPT's first step only initialises its second moment
                optimizer.step([np.ones_like(param)])
            assert not np.array_equal(param, start), spec.name
            codes = [value for key, value in optimizer.state[0].items() if key.endswith("_codes")]
            assert codes and all(value.dtype in (np.int8, np.uint8) for value in codes), spec.name


@pytest.mark.parametrize("state_dtype", ["int8", "bf16"])
def test_large_float32_arrays_get_compact_state_and_the_others_keep_their_dtype(state_dtype):
    shapes = ((MIN_QUANTIZED_NUMEL - 1,), (MIN_QUANTIZED_NUMEL,), (64, 80), (5000,))
    params = start_params(shapes=shapes)
    params[3] = params[3].astype(np.float64)
    opt = adamkit.numpy.Adam(params, lr=1e-3, amsgrad=True, state_dtype=state_dtype)
    opt.step(grads_at(0, shapes)[:3] + [grads_at(0, shapes)[3].astype(np.float64)])
    small, exact, wide, double = opt.state
    for state, param in ((small, params[0]), (double, params[3])):
        assert {key: value.dtype for key, value in state.items() if key != "step"} == dict.fromkeys(
            ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), param.dtype
        )
    for state, param in ((exact, params[1]), (wide, params[2])):
        if state_dtype == "int8":
            assert {key: value.dtype for key, value in state.items() if key != "step"} == {
                "exp_avg_codes": np.int8, "exp_avg_absmax": np.float32,
                "exp_avg_sq_codes": np.uint8, "exp_avg_sq_absmax": np.float32,
                "max_exp_avg_sq_codes": np.uint8, "max_exp_avg_sq_absmax": np.float32,
            }
            assert state["exp_avg_absmax"].shape == (-(-param.size // 256),)
            assert state["exp_avg_codes"].shape == param.shape
        else:
            assert {key: value.dtype for key, value in state.items() if key != "step"} == dict.fromkeys(
                ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), np.uint16
            )
            assert state["exp_avg"].shape == param.shape
    assert opt.state_dtype == state_dtype


def test_int8_state_is_about_two_bytes_per_parameter_and_bf16_four():
    params = start_params(shapes=((1 << 16,),))
    for state_dtype, most in (("int8", 2.1), ("bf16", 4.0)):
        opt = adamkit.numpy.Adam([params[0].copy()], lr=1e-3, state_dtype=state_dtype)
        opt.step(grads_at(0, ((1 << 16,),)))
        state_bytes = sum(value.nbytes for key, value in opt.state[0].items() if key != "step")
        assert state_bytes / params[0].size <= most


def reference_int8_run(name, hyper, steps):
    """Each parameter stepped by decode -> adamkit.rules.adam (float32) -> encode when it is
    large enough for 8-bit state, by adamkit.rules.adam alone otherwise."""
    params = start_params()
    states = [None] * len(params)
    for step in range(1, steps + 1):
        for index, (param, grad) in enumerate(zip(params, grads_at(step - 1))):
            arguments = group_hyper(name, hyper, index >= GROUP_SIZES[0])
            keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")[: 3 if arguments["amsgrad"] else 2]
            coded = param.size >= MIN_QUANTIZED_NUMEL
            if states[index] is None:
                values = dict.fromkeys(keys, np.zeros(param.shape, np.float32))
            elif coded:
                values = {key: DECODERS[key](*states[index][key]) for key in keys}  # (codes, scales)
            else:
                values = states[index]
            new = rules.adam(param, grad, values["exp_avg"], values["exp_avg_sq"], values.get("max_exp_avg_sq"),
                             step=step, **arguments)
            assert new.param.dtype == np.float32
            params[index] = new.param
            values = {key: getattr(new, key) for key in keys}
            states[index] = {key: ENCODERS[key](value) for key, value in values.items()} if coded else values
    return params, states


@pytest.mark.parametrize("entry", HYPERS, ids=hyper_id)
def test_int8_steps_equal_decode_rule_encode_bitwise(entry):
    steps = 5
    params, opt = trained("int8", steps, entry)
    expected_params, expected_states = reference_int8_run(*entry, steps)
    for param, expected, state, reference in zip(params, expected_params, opt.state, expected_states):
        np.testing.assert_array_equal(param, expected, strict=True)
        assert state["step"] == steps
        for key, value in reference.items():
            if param.size >= MIN_QUANTIZED_NUMEL:
                codes, absmax = value
                np.testing.assert_array_equal(state[codes_key(key)], codes, strict=True, err_msg=key)
                np.testing.assert_array_equal(state[scales_key(key)], absmax, strict=True, err_msg=key)
            else:
                np.testing.assert_array_equal(state[key], value, strict=True, err_msg=key)


@pytest.mark.parametrize("nonfinite_grads", ["propagate", "skip"])
@pytest.mark.parametrize("name, hyper", [("Adam", {}), ("AdamW", {}), ("Adam", {"amsgrad": True}), ("Adamax", {}), ("Adadelta", {})], ids=str)
@pytest.mark.parametrize("state_dtype", ["int8", "bf16"])
def test_a_huge_finite_gradient_leaves_every_parameter_finite_as_float32_state_does(state_dtype, name, hyper, nonfinite_grads):
    """Issue case 16 through adamkit.numpy: one gradient element of 1e38 (its square overflows,
    so float32 state holds an infinite second moment there and steps that element by 0) made
    the 256 parameters of its int8 block NaN. Every parameter stays finite, as with float32
    state, after that step and after four ordinary ones."""
    def trajectory(state_dtype):
        param = start_params(shapes=[(70, 80)])[0]
        opt = getattr(adamkit.numpy, name)([param], **hyper, state_dtype=state_dtype, nonfinite_grads=nonfinite_grads)
        params = []
        for step in range(5):
            grad = grads_at(step, shapes=[(70, 80)])[0]
            if step == 0:
                grad[17, 34] = 1e38
            opt.step([grad])
            params.append(param.copy())
        return params, opt.state[0]

    full, _ = trajectory(None)
    compact, state = trajectory(state_dtype)
    first = getattr(specs, name.upper()).slots[0].key
    if state_dtype == "bf16":
        assert state[first].dtype == np.uint16
    else:
        assert state[codes_key(first)].dtype == quantized.CODE_DTYPES[first] and first not in state
    for step, (expected, actual) in enumerate(zip(full, compact)):
        assert np.isfinite(expected).all(), step  # what float32 state gives
        assert np.isfinite(actual).all(), step


def test_bf16_steps_equal_widen_rule_round_stochastically():
    """The step of bfloat16 state, written out: widen, the rule in float32, round stochastically
    with the seed of the parameter's step and position among its group's bfloat16 ones, one
    stream per state key."""
    name, hyper = HYPERS[0]
    params, opt = trained("bf16", 3)
    before = snapshot(params, opt)
    grads = grads_at(3)
    grads[4] = None  # the 70x80 array becomes the first bfloat16 array stepped in group 1
    opt.step(grads)
    for index in (2, 5):
        arguments = group_hyper(name, hyper, index >= GROUP_SIZES[0])
        state = before[1][index]
        values = {key: bfloat16.to_float32(state[key]) for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")}
        new = rules.adam(before[0][index], grads[index], *values.values(), step=4, **arguments)
        np.testing.assert_array_equal(params[index], new.param, strict=True)
        for stream, key in enumerate(values):
            expected = bfloat16.stochastically_rounded(getattr(new, key), rounding_seed(4, 0), stream)
            np.testing.assert_array_equal(opt.state[index][key], expected, strict=True, err_msg=key)
    np.testing.assert_array_equal(params[4], before[0][4])


def test_stochastic_rounding_is_unbiased_and_brackets_the_value():
    values = np.full(200_000, 1.0 + 2**-10, np.float32)  # a quarter of the way from 1 to the next bfloat16
    rounded = bfloat16.to_float32(bfloat16.stochastically_rounded(values, 0, 0))
    assert set(np.unique(rounded).tolist()) == {1.0, 1.0 + 2**-7}
    assert rounded.mean() == pytest.approx(1.0 + 2**-10, abs=2e-5)
    exact = np.array([0.5, -2.0, np.inf, -np.inf, 0.0], np.float32)
    np.testing.assert_array_equal(bfloat16.to_float32(bfloat16.stochastically_rounded(exact, 1, 0)), exact)
    assert bfloat16.stochastically_rounded(np.array([np.nan], np.float32), 2, 0)[0] == 0x7FC0


def test_rounding_to_nearest_bfloat16_ties_to_even():
    spacing = 2.0**-7  # of bfloat16 numbers in [1, 2)
    values = np.array([1 + spacing / 2, 1 + 1.5 * spacing, 1 + spacing / 4, -(1 + 0.75 * spacing), np.nan], np.float32)
    widened = bfloat16.to_float32(bfloat16.rounded(values))
    np.testing.assert_array_equal(widened[:4], [1.0, 1 + 2 * spacing, 1.0, -(1 + spacing)])
    assert bfloat16.rounded(values)[4] == 0x7FC0


def test_bf16_state_does_not_stall_where_rounding_to_nearest_would():
    """An increment (1 - beta2)(g^2 - v) below half a bfloat16 spacing at v = 1 is lost by
    rounding to nearest at every step; stochastic rounding keeps it in expectation."""
    n, steps, target = 4096, 1500, 1.25
    param = np.zeros(n, np.float32)
    opt = adamkit.numpy.Adam([param], lr=1e-4, state_dtype="bf16")
    opt.step([np.ones(n, np.float32)])
    one = bfloat16.rounded(np.ones(n, np.float32))
    opt.state[0]["exp_avg_sq"][...] = one
    opt.state[0]["exp_avg"][...] = one
    for _ in range(steps):
        opt.step([np.full(n, target**0.5, np.float32)])
    expected = target - (target - 1) * 0.999**steps
    mean = bfloat16.to_float32(opt.state[0]["exp_avg_sq"]).mean()
    assert mean == pytest.approx(expected, rel=2e-3)
    assert mean > 1 + 0.9 * (expected - 1)


@pytest.mark.parametrize("state_dtype", ["int8", "bf16"])
def test_state_dict_saves_compactly_and_resumes_bitwise(state_dtype, tmp_path):
    params, opt = trained(state_dtype, 4)
    saved = opt.state_dict()
    exported = opt.export_state_dict()
    if state_dtype == "int8":
        assert saved["state.4.exp_avg_codes"].dtype == np.int8 and "state.4.exp_avg" not in saved
    else:
        assert saved["state.4.exp_avg"].dtype == np.uint16
    state_bytes = sum(value.nbytes for key, value in saved.items() if key.startswith("state."))
    plain_bytes = sum(value.nbytes for key, value in exported.items() if key.startswith("state."))
    assert state_bytes < (0.3 if state_dtype == "int8" else 0.55) * plain_bytes
    np.savez(tmp_path / "opt.npz", **saved)
    resumed_params = [p.copy() for p in params]
    resumed = make(*HYPERS[0], resumed_params, state_dtype)
    with np.load(tmp_path / "opt.npz") as loaded:
        resumed.load_state_dict(dict(loaded))
    for state, other in zip(opt.state, resumed.state):
        assert_same_state(state, other)
    for step in range(4, 7):
        opt.step(grads_at(step))
        resumed.step(grads_at(step))
    for param, other in zip(params, resumed_params):
        np.testing.assert_array_equal(param, other, strict=True)
    for state, other in zip(opt.state, resumed.state):
        assert_same_state(state, other)


def test_an_int8_state_dict_of_adamkit_0_1_0_loads_bit_for_bit_and_resumes_as_the_current_one():
    """adamkit 0.1.0 saved the codes under torch's keys (``state.4.exp_avg`` int8 beside
    ``state.4.exp_avg_absmax``): its ``state_dict()`` differs from today's in those names only."""
    params, opt = trained("int8", 3)
    saved = opt.state_dict()
    old = {key.removesuffix("_codes"): value for key, value in saved.items()}
    assert old["state.4.exp_avg"].dtype == np.int8 and "state.4.exp_avg_codes" not in old
    runs = []
    for state_dict in (saved, old):
        resumed_params = [p.copy() for p in params]
        resumed = make(*HYPERS[0], resumed_params, "int8")
        resumed.load_state_dict(state_dict)
        for state, other in zip(opt.state, resumed.state):
            assert_same_state(state, other)
        for step in range(3, 5):
            resumed.step(grads_at(step))
        runs.append(snapshot(resumed_params, resumed))
    for current, legacy in zip(*(run[0] for run in runs)):
        np.testing.assert_array_equal(current, legacy, strict=True)
    for current, legacy in zip(*(run[1] for run in runs)):
        assert_same_state(current, legacy)
    plain = make(*HYPERS[0], [p.copy() for p in params], None)
    plain.load_state_dict(old)
    np.testing.assert_array_equal(plain.state[4]["exp_avg"], opt.export_state_dict()["state.4.exp_avg"], strict=True)


def test_float32_state_loads_into_int8_as_the_codec_encodes_it():
    params, plain = trained(None, 4)
    opt = make(*HYPERS[0], [p.copy() for p in params], "int8")
    opt.load_state_dict(plain.state_dict())
    for param, state, source in zip(params, opt.state, plain.state):
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            if param.size >= MIN_QUANTIZED_NUMEL:
                codes, absmax = ENCODERS[key](source[key])
                np.testing.assert_array_equal(state[codes_key(key)], codes, strict=True, err_msg=key)
                np.testing.assert_array_equal(state[scales_key(key)], absmax, strict=True, err_msg=key)
            else:
                np.testing.assert_array_equal(state[key], source[key], strict=True, err_msg=key)
        assert state["step"] == source["step"]


def test_float32_state_loads_into_bf16_rounded_to_nearest():
    params, plain = trained(None, 4)
    opt = make(*HYPERS[0], [p.copy() for p in params], "bf16")
    opt.load_state_dict(plain.state_dict())
    for key in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_array_equal(opt.state[4][key], bfloat16.rounded(plain.state[4][key]), strict=True)
        np.testing.assert_array_equal(opt.state[1][key], plain.state[1][key], strict=True)


def test_compact_state_loads_into_other_layouts_decoded():
    params, coded = trained("int8", 4)
    values = {key: DECODERS[key](coded.state[4][codes_key(key)], coded.state[4][scales_key(key)]) for key in ENCODERS}
    plain = make(*HYPERS[0], [p.copy() for p in params], None)
    plain.load_state_dict(coded.state_dict())
    bf16 = make(*HYPERS[0], [p.copy() for p in params], "bf16")
    bf16.load_state_dict(coded.state_dict())
    assert "exp_avg_absmax" not in plain.state[4] and "exp_avg_codes" not in plain.state[4]
    for key, value in values.items():
        np.testing.assert_array_equal(plain.state[4][key], value, strict=True)
        np.testing.assert_array_equal(bf16.state[4][key], bfloat16.rounded(value), strict=True)
    _, rounded = trained("bf16", 4)
    again = make(*HYPERS[0], [p.copy() for p in params], "int8")
    again.load_state_dict(rounded.state_dict())
    widened = bfloat16.to_float32(rounded.state[4]["exp_avg_sq"])
    np.testing.assert_array_equal(again.state[4]["exp_avg_sq_codes"], encode_unsigned(widened)[0], strict=True)


def test_codes_with_scales_by_rows_load_decoded_and_encoded_by_blocks():
    """Scales of the row layout (FSDP2's) are read too; the state is re-encoded in flat blocks."""
    params, coded = trained("int8", 2)
    saved = coded.state_dict()
    values = coded.export_state_dict()["state.5.exp_avg"]  # the 70x80 array
    saved["state.5.exp_avg_codes"], saved["state.5.exp_avg_absmax"] = encode_signed(values, rows=True)
    assert saved["state.5.exp_avg_absmax"].shape == (70, 1)
    opt = make(*HYPERS[0], [p.copy() for p in params], "int8")
    opt.load_state_dict(saved)
    by_rows = decode_signed(saved["state.5.exp_avg_codes"], saved["state.5.exp_avg_absmax"])
    codes, absmax = encode_signed(by_rows)
    np.testing.assert_array_equal(opt.state[5]["exp_avg_codes"], codes, strict=True)
    np.testing.assert_array_equal(opt.state[5]["exp_avg_absmax"], absmax, strict=True)


def test_float64_arrays_load_compact_state_decoded_to_their_dtype():
    params, coded = trained("int8", 2)
    wide = [p.astype(np.float64) for p in params]
    opt = make(*HYPERS[0], wide, "int8")
    opt.load_state_dict(coded.state_dict())
    expected = decode_signed(coded.state[4]["exp_avg_codes"], coded.state[4]["exp_avg_absmax"]).astype(np.float64)
    np.testing.assert_array_equal(opt.state[4]["exp_avg"], expected, strict=True)


@pytest.mark.parametrize("state_dtype", ["int8", "bf16"])
def test_export_is_float32_and_loads_into_plain_and_compact_optimizers(state_dtype):
    params, opt = trained(state_dtype, 4)
    exported = opt.export_state_dict()
    assert not any(key.endswith(("_absmax", "_codes")) for key in exported)
    for key in ENCODERS:
        value = exported[f"state.4.{key}"]
        state = opt.state[4]
        if state_dtype == "int8":
            expected = DECODERS[key](state[codes_key(key)], state[scales_key(key)])
        else:
            expected = bfloat16.to_float32(state[key])
        np.testing.assert_array_equal(value, expected, strict=True)
        np.testing.assert_array_equal(exported[f"state.1.{key}"], opt.state[1][key], strict=True)
    plain = make(*HYPERS[0], [p.copy() for p in params], None)
    plain.load_state_dict(exported)
    np.testing.assert_array_equal(plain.state[4]["exp_avg"], exported["state.4.exp_avg"], strict=True)
    coded = make(*HYPERS[0], [p.copy() for p in params], "int8")
    coded.load_state_dict(exported)
    np.testing.assert_array_equal(coded.state[4]["exp_avg_codes"], encode_signed(exported["state.4.exp_avg"])[0], strict=True)


def test_amsgrad_turned_on_later_gets_compact_state():
    name, hyper = HYPERS[1]
    params = start_params()
    opt = make(name, hyper, params, "int8")
    opt.step(grads_at(0))
    for group in opt.param_groups:
        group["amsgrad"] = True
    opt.step(grads_at(1))
    assert opt.state[4]["max_exp_avg_sq_codes"].dtype == np.uint8
    assert opt.state[4]["max_exp_avg_sq_absmax"].shape == (-(-70000 // 256),)
    assert opt.state[1]["max_exp_avg_sq"].dtype == np.float32


@pytest.mark.parametrize(
    ("name", "state_dtype", "error", "words"),
    [
        ("Adam", "fp8", ValueError, "Invalid state_dtype: 'fp8' (must be one of None, 'bf16', 'int8')"),
        ("Adam", "fp32", ValueError, "Invalid state_dtype: 'fp32' (float32 state is for bfloat16 parameters"),
        ("AdamW", np.int8, ValueError, "Invalid state_dtype: <class 'numpy.int8'>"),
        ("Adagrad", "int8", ValueError, f"Invalid state_dtype: 'int8' (compact state is for {specs.listed(specs.COMPACT)}; Adagrad takes None)"),
        ("SGD", "bf16", ValueError, f"Invalid state_dtype: 'bf16' (compact state is for {specs.listed(s for s in specs.COMPACT if s.counts_steps)}; SGD takes None)"),
        ("RMSprop", "fp32", ValueError, "Invalid state_dtype: 'fp32'"),
    ],
)
def test_bad_state_dtype_raises_naming_it(name, state_dtype, error, words):
    with pytest.raises(error, match=re.escape(words)):
        getattr(adamkit.numpy, name)([np.zeros(3)], state_dtype=state_dtype)


def test_state_dtype_is_keyword_only_and_fixed():
    with pytest.raises(TypeError):
        adamkit.numpy.Adam([np.zeros(3)], 1e-3, (0.9, 0.999), 1e-8, 0, False, "int8")
    opt = adamkit.numpy.Adam([np.zeros(3)], state_dtype="int8")
    with pytest.raises(AttributeError):
        opt.state_dtype = None


@pytest.mark.parametrize(
    ("key", "spoil", "words"),
    [
        ("state.4.exp_avg_absmax", lambda v: v[:-1], "state_dict['state.4.exp_avg_absmax'] must be a float32 array of shape (274,)"),
        ("state.4.exp_avg_absmax", lambda v: v.astype(np.float64), "must be a float32 array"),
        ("state.4.exp_avg_sq_codes", lambda v: v.view(np.int8), "state_dict['state.4.exp_avg_sq_codes'] must hold uint8 codes, got int8"),
        ("state.4.exp_avg_codes", lambda v: None, "state_dict has 'state.4.exp_avg_absmax' without the codes it scales, 'state.4.exp_avg_codes'"),
        ("state.4.exp_avg_codes", lambda v: v[:-1], "state_dict['state.4.exp_avg_codes'] has shape (69999,)"),
        ("state.2.exp_avg_sq_absmax", lambda v: np.ones(17, np.float32), "state_dict has 'state.2.exp_avg_sq_absmax' without the codes it scales, 'state.2.exp_avg_sq_codes'"),
        ("state.4.exp_avg", lambda v: np.zeros(70000, np.float32), "state_dict has both 'state.4.exp_avg' and its 8-bit codes 'state.4.exp_avg_codes'"),
        ("state.2.exp_avg_sq_codes", lambda v: np.ones(4097, np.uint8), "state_dict has 'state.2.exp_avg_sq_codes' without its scales, 'state.2.exp_avg_sq_absmax'"),
        ("state.2.exp_avg_sq", lambda v: -np.ones(4097, np.float32), "state_dict['state.2.exp_avg_sq'] cannot be held with state_dtype='int8'"),
        ("state.1.momentum_buffer_absmax", lambda v: np.zeros(1, np.float32), "unknown key 'state.1.momentum_buffer_absmax'"),
        ("state.4.exp_avg_absmax", lambda v: None, "state_dict has 'state.4.exp_avg_codes' without its scales, 'state.4.exp_avg_absmax'"),
        ("state.5.exp_avg_sq_absmax", lambda v: np.where(np.arange(v.size) == 3, np.nan, v).astype(np.float32), "state_dict['state.5.exp_avg_sq_absmax'] must hold finite scales >= 0"),
        ("state.4.max_exp_avg_sq_absmax", lambda v: np.full_like(v, np.inf), "state_dict['state.4.max_exp_avg_sq_absmax'] must hold finite scales >= 0"),
        ("state.4.exp_avg_absmax", lambda v: -v, "state_dict['state.4.exp_avg_absmax'] must hold finite scales >= 0"),
    ],
)
def test_a_state_dict_that_does_not_fit_raises_and_changes_nothing(key, spoil, words):
    params, opt = trained("int8", 3)
    saved = opt.state_dict()
    saved["state.2.exp_avg_sq"] = np.abs(opt.export_state_dict()["state.2.exp_avg_sq"])  # a float32 checkpoint's
    del saved["state.2.exp_avg_sq_codes"], saved["state.2.exp_avg_sq_absmax"]
    spoiled = spoil(saved.pop(key, None))
    if spoiled is not None:
        saved[key] = spoiled
    before = snapshot(params, opt)
    with pytest.raises(ValueError, match=re.escape(words)):
        opt.load_state_dict(saved)
    assert_unchanged(params, opt, before)
    assert_steps_as_its_twin(params, opt, "int8", 3)


def assert_steps_as_its_twin(params, opt, state_dtype, steps):
    """The next step of ``opt`` is that of an optimizer trained alike that never tried a load."""
    twin_params, twin = trained(state_dtype, steps)
    opt.step(grads_at(steps))
    twin.step(grads_at(steps))
    assert_unchanged(params, opt, snapshot(twin_params, twin))


@pytest.mark.parametrize(
    ("key", "spoil", "words"),
    [
        ("state.4.exp_avg", lambda v: v.view(np.int16), "state_dict['state.4.exp_avg'] must hold floating-point numbers or bfloat16 bit patterns (uint16), got dtype int16"),
        ("state.5.exp_avg_sq", lambda v: v[:-1], "state_dict['state.5.exp_avg_sq'] has shape (69, 80)"),
        ("state.2.max_exp_avg_sq", lambda v: v.astype(np.uint32), "got dtype uint32"),
    ],
)
def test_bfloat16_state_of_the_wrong_dtype_or_shape_is_refused_and_changes_nothing(key, spoil, words):
    params, opt = trained("bf16", 3)
    saved = opt.state_dict()
    saved[key] = spoil(saved[key])
    before = snapshot(params, opt)
    with pytest.raises(ValueError, match=re.escape(words)):
        opt.load_state_dict(saved)
    assert_unchanged(params, opt, before)
    assert_steps_as_its_twin(params, opt, "bf16", 3)


@pytest.mark.parametrize(
    ("index", "key", "spoil", "words"),
    [
        (4, "exp_avg_codes", lambda v, p: v.astype(np.float32), "has 'exp_avg_codes' float32 (70000,), where the optimizer keeps int8 (70000,)"),
        (5, "exp_avg_sq_absmax", lambda v, p: v[:-1], "has 'exp_avg_sq_absmax' float32 (21,)"),
        (2, "exp_avg_sq_absmax", lambda v, p: None, "has 'exp_avg_sq_absmax' NoneType"),
        (1, "exp_avg", lambda v, p: v.astype(np.float64), "has 'exp_avg' float64 (7,), where the optimizer keeps float32 (7,)"),
        (1, "exp_avg_sq", lambda v, p: p, "has 'exp_avg_sq' sharing memory with the parameter"),
        (3, "exp_avg", lambda v, p: np.frombuffer(v.tobytes(), v.dtype), "has 'exp_avg' read-only"),
    ],
)
def test_state_replaced_by_the_wrong_arrays_raises_before_any_group_steps(index, key, spoil, words):
    params, opt = trained("int8", 3)
    state = opt.state[index]
    value = spoil(state[key], params[index])
    if value is None:
        del state[key]
    else:
        state[key] = value
    before = snapshot(params, opt)
    with pytest.raises(ValueError, match=re.escape(words)):
        opt.step(grads_at(3))
    assert_unchanged(params, opt, before)


def test_bad_gradients_raise_and_change_nothing():
    params, opt = trained("bf16", 3)
    grads = grads_at(3)
    grads[4] = grads[4].astype(np.float64)
    before = snapshot(params, opt)
    with pytest.raises(ValueError, match=re.escape("the gradient of param_groups[1]['params'][1] is float64")):
        opt.step(grads)
    assert_unchanged(params, opt, before)
