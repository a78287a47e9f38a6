"""Safe whatever the user does. Between two steps of a NumPy optimizer a user may replace,
resize, reshape, retype, alias or lock any parameter, gradient or state array (8-bit codes and
their scales, bfloat16 bits and step counts too), through the state dict or behind its back
(``dict.__setitem__``). The next step never reads or writes outside the arrays' current memory:
it steps exactly as an optimizer that never caches its step (adamkit.numpy._cached_plan) does with the
same arrays, or raises a ValueError naming the parameter and the state key and changes nothing.

Every case starts from planned steps. The parameters are a 7-element array, which keeps float32
state in every layout, and two large ones, which keep 8-bit or bfloat16 state under
state_dtype="int8" or "bf16"; they sit in two groups.
"""

import contextlib
import re
import warnings
from unittest import mock

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import adamkit.numpy
from adamkit.kernels import quantized
from adamkit.kernels.quantized import codes_key
from adamkit.numpy._cached_plan import StepPlan

pytestmark = pytest.mark.skipif(not quantized.available(), reason="the C kernels were not built")

SHAPES = [(7,), (4097,), (70, 80)]
WHERE = ["param_groups[0]['params'][0]", "param_groups[1]['params'][0]", "param_groups[1]['params'][1]"]
LAYOUTS = [None, "int8", "bf16"]


def _params(dtype=np.float32):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


def _grads(step, dtype=np.float32):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


def _optimizer(params, layout, **hyperparameters):
    groups = [{"params": params[:1]}, {"params": params[1:], "lr": 0.02}]
    settings = dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, state_dtype=layout)
    return adamkit.numpy.Adam(groups, **{**settings, **hyperparameters})


def _trained(layout, **hyperparameters):
    """Parameters and an optimizer after three steps, the last two through its plan."""
    params = _params()
    optimizer = _optimizer(params, layout, **hyperparameters)
    for step in range(3):
        optimizer.step(_grads(step))
    assert optimizer._plan is not None
    return params, optimizer


@contextlib.contextmanager
def _unplanned():
    """Optimizers that never cache their step: the reference."""
    with mock.patch.object(StepPlan, "build", classmethod(lambda cls, optimizer, grads: None)):
        yield


def _arrays(optimizer):
    """Every parameter and state array of ``optimizer``, copied, with its name."""
    found = {}
    for g, group in enumerate(optimizer.param_groups):
        for i, param in enumerate(group["params"]):
            found[f"param {g} {i}"] = np.copy(param)
    for index, state in enumerate(optimizer.state):
        found.update({f"state {index} {key}": np.copy(value) for key, value in state.items()})
    return found


def _assert_same(found, expected):
    assert found.keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_array_equal(found[name], value, strict=True, err_msg=name)


def _retyped(array):
    """``array`` reinterpreted in place as another dtype of the same item size."""
    other = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}[array.itemsize]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        array.dtype = np.uint8 if array.dtype == np.int8 else other


def _held(state, key):
    """The name of the array that holds slot ``key`` in ``state``: its 8-bit codes' if it has
    them, else the slot's own."""
    return codes_key(key) if codes_key(key) in state else key


def _stride_0(shape, dtype):
    """A writable array of ``shape`` whose elements all lie at one address (stride 0)."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype), shape=shape, strides=(0,) * len(shape))


def _strided(array):
    """A copy of ``array`` that is not C-contiguous: every other element of a larger array."""
    spread = np.zeros(array.shape + (2,), array.dtype)
    spread[..., 0] = array
    return spread[..., 0]


def _misaligned(array):
    """A copy of ``array`` one byte past an aligned address (unaligned, for items of 2 bytes or more)."""
    moved = np.zeros(array.nbytes + 1, np.uint8)[1:].view(array.dtype).reshape(array.shape)
    moved[...] = array
    return moved


# Each spoils a trained optimizer before its next step and returns the words of the error.
def _read_only_state(params, opt, grads):  # the adversarial tester's case 18
    name = _held(opt.state[2], "exp_avg")
    opt.state[2][name].flags.writeable = False
    return f"the state of {WHERE[2]} has {name!r} read-only"


def _read_only_step(params, opt, grads):
    opt.state[1]["step"].flags.writeable = False
    return f"the state of {WHERE[1]} has 'step' read-only"


def _step_not_an_array(params, opt, grads):
    dict.__setitem__(opt.state[0], "step", 3)
    return f"the state of {WHERE[0]} has 'step' int"


def _smaller_state_behind_the_dicts_back(params, opt, grads):  # case 19, with a smaller array
    state = opt.state[2]
    name = _held(state, "exp_avg_sq")
    dict.__setitem__(state, name, np.zeros(3, state[name].dtype))
    return f"the state of {WHERE[2]} has {name!r} {state[name].dtype} (3,)"


def _float16_state(params, opt, grads):
    opt.state[0]["exp_avg"] = opt.state[0]["exp_avg"].astype(np.float16)
    return f"the state of {WHERE[0]} has 'exp_avg' float16 (7,), where the optimizer keeps float32 (7,)"


def _flattened_state(params, opt, grads):
    state = opt.state[2]
    name = _held(state, "exp_avg")
    state[name] = state[name].reshape(-1)
    return f"the state of {WHERE[2]} has {name!r} {state[name].dtype} (5600,)"


def _state_reshaped_in_place(params, opt, grads):
    name = _held(opt.state[2], "exp_avg_sq")
    opt.state[2][name].shape = (80, 70)
    return f"the state of {WHERE[2]} has {name!r} {opt.state[2][name].dtype} (80, 70)"


def _state_retyped_in_place(params, opt, grads):
    name = _held(opt.state[1], "exp_avg_sq")
    _retyped(opt.state[1][name])
    return f"the state of {WHERE[1]} has {name!r} {opt.state[1][name].dtype} (4097,)"


def _stride_0_state(params, opt, grads):
    dict.__setitem__(opt.state[0], "exp_avg_sq", _stride_0((7,), np.float32))
    return f"the state of {WHERE[0]} has 'exp_avg_sq' with elements that share memory"


def _one_array_for_two_slots(params, opt, grads):
    state = opt.state[0]
    dict.__setitem__(state, "exp_avg_sq", state["exp_avg"])
    return f"the state 'exp_avg_sq' of {WHERE[0]} shares memory with the state 'exp_avg' of {WHERE[0]}"


def _state_in_another_parameter(params, opt, grads):
    opt.state[0]["exp_avg"] = params[1][:7]
    return f"the state 'exp_avg' of {WHERE[0]} shares memory with {WHERE[1]}, which the step writes"


def _steps_in_one_array(params, opt, grads):
    opt.state[2]["step"] = opt.state[1]["step"]
    return f"the state 'step' of {WHERE[2]} shares memory with the state 'step' of {WHERE[1]}"


def _gradient_is_a_state_array(params, opt, grads):
    grads[0] = opt.state[0]["exp_avg"]
    return f"the gradient of {WHERE[0]} shares memory with the state 'exp_avg' of {WHERE[0]}"


def _gradient_in_another_parameter(params, opt, grads):
    grads[0] = params[2].reshape(-1)[:7]
    return f"the gradient of {WHERE[0]} shares memory with {WHERE[2]}, which the step writes"


def _gradient_of_the_wrong_size(params, opt, grads):
    grads[1] = grads[1][:-1]
    return f"the gradient of {WHERE[1]} is float32 (4096,), but the parameter is float32 (4097,)"


def _gradient_of_the_wrong_dtype(params, opt, grads):
    grads[2] = grads[2].astype(np.float64)
    return f"the gradient of {WHERE[2]} is float64 (70, 80)"


def _smaller_parameter(params, opt, grads):
    opt.param_groups[1]["params"][1] = np.zeros(10, np.float32)
    return f"the gradient of {WHERE[2]} is float32 (70, 80), but the parameter is float32 (10,)"


def _parameter_resized_in_place(params, opt, grads):
    params[1].resize(10, refcheck=False)
    return f"the gradient of {WHERE[1]} is float32 (4097,), but the parameter is float32 (10,)"


def _read_only_parameter(params, opt, grads):
    params[0].flags.writeable = False
    return f"{WHERE[0]} is read-only"


def _strided_parameter(params, opt, grads):
    opt.param_groups[0]["params"][0] = _strided(params[0])
    return f"{WHERE[0]} is not a C-contiguous, aligned array"


def _broadcast_parameter(params, opt, grads):
    opt.param_groups[0]["params"][0] = np.broadcast_to(np.zeros(1, np.float32), (7,))
    return f"{WHERE[0]} is read-only"


def _writable_stride_0_parameter(params, opt, grads):
    opt.param_groups[0]["params"][0] = _stride_0((7,), np.float32)
    return f"{WHERE[0]} is not a C-contiguous, aligned array"


def _parameter_listed_twice(params, opt, grads):
    opt.param_groups[1]["params"][1] = params[1]
    grads[2] = grads[1]
    return f"{WHERE[2]} is listed twice"


def _parameters_overlapping(params, opt, grads):
    opt.param_groups[0]["params"][0] = params[2].reshape(-1)[:7]
    return f"{WHERE[2]} shares memory with {WHERE[0]}, which the step writes"


SPOILS = [
    _read_only_state,
    _read_only_step,
    _step_not_an_array,
    _smaller_state_behind_the_dicts_back,
    _float16_state,
    _flattened_state,
    _state_reshaped_in_place,
    _state_retyped_in_place,
    _stride_0_state,
    _one_array_for_two_slots,
    _state_in_another_parameter,
    _steps_in_one_array,
    _gradient_is_a_state_array,
    _gradient_in_another_parameter,
    _gradient_of_the_wrong_size,
    _gradient_of_the_wrong_dtype,
    _smaller_parameter,
    _parameter_resized_in_place,
    _read_only_parameter,
    _strided_parameter,
    _broadcast_parameter,
    _writable_stride_0_parameter,
    _parameter_listed_twice,
    _parameters_overlapping,
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("spoil", SPOILS, ids=lambda f: f.__name__.strip("_"))
def test_a_spoiled_array_raises_naming_it_and_changes_nothing(spoil, layout):
    params, opt = _trained(layout)
    grads = _grads(3)
    words = spoil(params, opt, grads)
    before = _arrays(opt)
    with pytest.raises(ValueError, match=re.escape(words)):
        opt.step(grads)
    _assert_same(_arrays(opt), before)


@pytest.mark.parametrize(
    ("layout", "key", "words"),
    [
        ("int8", "exp_avg_codes", "has 'exp_avg_codes' float32 (70, 80), where the optimizer keeps int8 (70, 80)"),
        ("int8", "exp_avg_absmax", "has 'exp_avg_absmax' float32 (3,), where the optimizer keeps float32 (22,)"),
        ("int8", "exp_avg_sq_absmax", "has 'exp_avg_sq_absmax' float32 (3,), where the optimizer keeps float32 (22,)"),
        ("bf16", "exp_avg", "has 'exp_avg' float32 (70, 80), where the optimizer keeps uint16 (70, 80)"),
        ("bf16", "exp_avg_sq", "has 'exp_avg_sq' uint16 (10,), where the optimizer keeps uint16 (70, 80)"),
    ],
)
def test_compact_state_replaced_by_arrays_of_another_size_or_dtype_raises(layout, key, words):
    params, opt = _trained(layout)
    replacements = {name: np.zeros((70, 80), np.float32) for name in ("exp_avg", "exp_avg_codes")}
    replacements["exp_avg_sq"] = np.zeros(10, np.uint16)
    opt.state[2][key] = replacements.get(key, np.ones(3, np.float32))
    before = _arrays(opt)
    with pytest.raises(ValueError, match=re.escape(f"the state of {WHERE[2]} {words}")):
        opt.step(_grads(3))
    _assert_same(_arrays(opt), before)


def test_float32_state_of_a_float64_parameter_raises():
    params = _params(np.float64)
    opt = _optimizer(params, None)
    for step in range(3):
        opt.step(_grads(step, np.float64))
    opt.state[1]["exp_avg_sq"] = opt.state[1]["exp_avg_sq"].astype(np.float32)
    before = _arrays(opt)
    words = f"the state of {WHERE[1]} has 'exp_avg_sq' float32 (4097,), where the optimizer keeps float64 (4097,)"
    with pytest.raises(ValueError, match=re.escape(words)):
        opt.step(_grads(3, np.float64))
    _assert_same(_arrays(opt), before)


@pytest.mark.parametrize(
    ("layout", "key"), [(None, "exp_avg"), ("int8", "exp_avg_codes"), ("int8", "exp_avg_sq_absmax"), ("bf16", "exp_avg_sq")]
)
def test_a_state_array_resized_in_place_raises(layout, key):
    params = _params()
    opt = _optimizer(params, layout)
    opt.step(_grads(0))
    state = opt.state[2]
    state[key] = state[key].copy()  # an array that owns its memory: only those resize
    opt.step(_grads(1))
    opt.step(_grads(2))
    state[key].resize(3, refcheck=False)
    before = _arrays(opt)
    with pytest.raises(ValueError, match=re.escape(f"the state of {WHERE[2]} has {key!r} {state[key].dtype} (3,)")):
        opt.step(_grads(3))
    _assert_same(_arrays(opt), before)


def _run(change, layout, **hyperparameters):
    """Parameters and state after 6 steps, ``change(params, opt, grads, step)`` before each."""
    params = _params()
    opt = _optimizer(params, layout, **hyperparameters)
    for step in range(6):
        grads = _grads(step)
        change(params, opt, grads, step)
        opt.step(grads)
    return _arrays(opt)


def _assert_steps_as_the_reference(change, layout, **hyperparameters):
    planned = _run(change, layout, **hyperparameters)
    with _unplanned():
        reference = _run(change, layout, **hyperparameters)
    _assert_same(planned, reference)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_state_array_replaced_behind_the_dicts_back_is_the_one_stepped(layout):
    # The adversarial tester's case 19: the plan went on stepping the detached array, whose
    # memory Python had freed (heap corruption), and not the new one.
    detached = []  # each detached array, and its values when it was detached

    def replace(params, opt, grads, step):
        if step == 3:
            for state in opt.state:
                name = _held(state, "exp_avg")
                detached.append((state[name], state[name].copy()))
                dict.__setitem__(state, name, state[name].copy())

    _assert_steps_as_the_reference(replace, layout)
    for array, values in detached:
        np.testing.assert_array_equal(array, values, strict=True)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("odd", [_strided, _misaligned], ids=["strided", "misaligned"])
def test_a_state_array_the_kernels_cannot_take_is_stepped_through_a_copy(layout, odd):
    held = {}

    def replace(params, opt, grads, step):
        if step == 3:
            for index, state in enumerate(opt.state):
                for key in (_held(state, "exp_avg"), _held(state, "exp_avg_sq")):
                    held[index, key] = state[key] = odd(state[key])
        if step > 3:
            for (index, key), array in held.items():
                assert opt.state[index][key] is array  # updated in place, as torch updates its state

    _assert_steps_as_the_reference(replace, layout)
    assert held and not all(array.flags.c_contiguous and array.flags.aligned for array in held.values())


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_parameter_swapped_for_one_of_another_size_starts_afresh(layout):
    def swap(params, opt, grads, step):
        if step == 3:
            opt.param_groups[1]["params"][1] = np.linspace(-1, 1, 5000, dtype=np.float32)
        if step >= 3:
            grads[2] = np.cos(np.arange(5000, dtype=np.float32) * (step + 1))

    _assert_steps_as_the_reference(swap, layout)


def test_state_values_edited_in_place_are_stepped():
    def edit(params, opt, grads, step):
        if step == 3:
            for state in opt.state:
                state["exp_avg"] *= 0.5
                state["step"][...] = 10

    _assert_steps_as_the_reference(edit, None)


@pytest.mark.parametrize("layout", ["int8", "bf16"])
def test_amsgrad_switched_on_mid_run_keeps_its_maximum_in_the_compact_layout(layout):
    def switch_on(params, opt, grads, step):
        if step == 3:
            for group in opt.param_groups:
                group["amsgrad"] = True

    _assert_steps_as_the_reference(switch_on, layout)
    found = _run(switch_on, layout)
    for index in (1, 2):
        name = "max_exp_avg_sq_codes" if layout == "int8" else "max_exp_avg_sq"
        assert found[f"state {index} {name}"].dtype == (np.uint8 if layout == "int8" else np.uint16)
        assert (f"state {index} max_exp_avg_sq_absmax" in found) == (layout == "int8")
    assert found["state 0 max_exp_avg_sq"].dtype == np.float32


# Random tampering: each kind changes the subject (stepped through its plan) and the reference
# (never planned) alike, or, for the kinds marked "same values", changes only how the subject's
# arrays lie in memory. Either both raise ValueError, and the subject is left as it was, or both
# step to the same bits.
def _same_values(array, copy):
    """``copy`` (of ``array``'s values), read-only if ``array`` is."""
    copy.flags.writeable = array.flags.writeable
    return copy


def _copy(state, key, other):
    state[key] = _same_values(state[key], state[key].copy())


def _copy_behind(state, key, other):
    dict.__setitem__(state, key, _same_values(state[key], state[key].copy()))


def _strided_copy(state, key, other):
    dict.__setitem__(state, key, _same_values(state[key], _strided(state[key])))


def _misaligned_copy(state, key, other):
    state[key] = _same_values(state[key], _misaligned(state[key]))


def _roll(state, key, other):
    if state[key].flags.writeable:
        state[key][...] = np.roll(state[key], 1)


def _lock(state, key, other):
    state[key].flags.writeable = False


def _shrink(state, key, other):
    dict.__setitem__(state, key, state[key].reshape(-1)[:-1].copy())


def _widen(state, key, other):
    state[key] = state[key].astype(np.float64)


def _alias(state, key, other):
    dict.__setitem__(state, key, state[other])


def _delete(state, key, other):
    dict.__delitem__(state, key)


def _reshape(state, key, other):
    shape = state[key].shape[::-1] + (1,)
    try:
        state[key].shape = shape
    except AttributeError:  # a strided array reshaped needs a copy
        dict.__setitem__(state, key, state[key].reshape(shape))


def _retype(state, key, other):
    _retyped(state[key])


def _aliased(state, key):
    """Whether ``state[key]`` shares memory with another array of ``state``."""
    return any(
        other != key and isinstance(value, np.ndarray) and np.may_share_memory(value, state[key])
        for other, value in state.items()
    )


SAME_VALUES = {_copy, _copy_behind, _strided_copy, _misaligned_copy}
KINDS = sorted(SAME_VALUES, key=lambda f: f.__name__) + [_roll, _lock, _shrink, _widen, _alias, _delete, _reshape, _retype]


@settings(max_examples=80, deadline=None)
@given(data=st.data(), layout=st.sampled_from(LAYOUTS), amsgrad=st.booleans())
def test_random_tampering_raises_or_steps_as_the_reference(data, layout, amsgrad):
    subject_params, reference_params = _params(), _params()
    subject = _optimizer(subject_params, layout, amsgrad=amsgrad)
    with _unplanned():
        reference = _optimizer(reference_params, layout, amsgrad=amsgrad)
    for step in range(6):
        grads = _grads(step)
        if step >= 2:
            for _ in range(data.draw(st.integers(0, 2), label="tamperings")):
                index = data.draw(st.integers(0, len(SHAPES) - 1), label="parameter")
                keys = sorted(subject.state[index])
                if not keys:
                    continue
                key, other = (data.draw(st.sampled_from(keys), label=label) for label in ("key", "other"))
                kind = data.draw(st.sampled_from(KINDS), label="kind")
                # A copy keeps the values, so the reference need not see it; but a copy of a slot
                # that aliases another un-aliases it, which the reference must then see too.
                keeps_values = kind in SAME_VALUES and not _aliased(subject.state[index], key)
                for optimizer in (subject,) if keeps_values else (subject, reference):
                    kind(optimizer.state[index], key, other)
        before = _arrays(subject)
        try:
            subject.step(grads)
        except ValueError:
            _assert_same(_arrays(subject), before)
            with _unplanned(), pytest.raises(ValueError):
                reference.step(grads)
            event("raised")
            return
        with _unplanned():
            reference.step(grads)
        _assert_same(_arrays(subject), _arrays(reference))
    event("stepped six times")


@pytest.mark.parametrize("value", [-5.0, float("nan"), float("inf")])
def test_a_step_count_made_invalid_between_steps_is_refused(value):
    params = [np.linspace(-1, 1, 7), np.linspace(0, 2, 5)]
    optimizer = adamkit.numpy.Adam(params, lr=1e-2)
    grads = [np.ones(7), np.ones(5)]
    for _ in range(3):
        optimizer.step(grads)
    optimizer.state[1]["step"][...] = value
    before = [param.copy() for param in params]
    with pytest.raises(ValueError, match="'step'"):
        optimizer.step(grads)
    for param, was in zip(params, before):
        np.testing.assert_array_equal(param, was)
