"""Bad input raises a precise TypeError/ValueError and changes nothing."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import adamkit.numpy

NAMES = ("Adam", "AdamW", "Adamax", "Adadelta", "SGD", "Adagrad", "RMSprop", "NAdam", "RAdam", "AdaBelief", "ADOPT", "AdEMAMix", "Adafactor", "Lion")
NONNEGATIVE = {
    "Adam": ("lr", "eps", "weight_decay"),
    "AdamW": ("lr", "eps", "weight_decay"),
    "Adamax": ("lr", "eps", "weight_decay"),
    "Adadelta": ("lr", "eps", "weight_decay"),
    "SGD": ("lr", "momentum", "dampening", "weight_decay"),
    "Adagrad": ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"),
    "RMSprop": ("lr", "eps", "weight_decay", "momentum"),
    "NAdam": ("lr", "eps", "weight_decay", "momentum_decay"),
    "RAdam": ("lr", "eps", "weight_decay"),
    "AdaBelief": ("lr", "eps", "weight_decay"),
    "ADOPT": ("lr", "eps", "weight_decay"),
    "AdEMAMix": ("lr", "alpha", "t_alpha_beta3", "eps", "weight_decay"),
    "Adafactor": ("lr", "weight_decay"),
    "Lion": ("lr", "weight_decay"),
}
FLAGS = {
    "Adam": ("amsgrad", "maximize", "decoupled_weight_decay", "eps_hat"),
    "AdamW": ("amsgrad", "maximize", "eps_hat"),
    "Adamax": ("maximize",),
    "Adadelta": ("maximize",),
    "SGD": ("nesterov", "maximize"),
    "Adagrad": ("maximize",),
    "RMSprop": ("centered", "maximize"),
    "NAdam": ("decoupled_weight_decay", "maximize"),
    "RAdam": ("decoupled_weight_decay", "maximize"),
    "AdaBelief": ("decoupled_weight_decay", "amsgrad", "rectify", "maximize"),
    "ADOPT": ("decoupled_weight_decay", "maximize"),
    "AdEMAMix": ("decoupled_weight_decay", "maximize"),
    "Adafactor": ("maximize",),
    "Lion": ("decoupled_weight_decay", "maximize"),
}
BAD_NUMBERS = st.one_of(
    st.floats(max_value=-1e-300, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf")]),
)


def _optimizer(name="Adam"):
    params = [np.linspace(-1, 1, 7), np.full(17, 0.5), np.ones(1, )]
    opt = getattr(adamkit.numpy, name)([{"params": params[:2]}, {"params": params[2:], "lr": 0.05}])
    opt.step([np.ones(7), np.ones(17), np.ones(1)])
    return params, opt


def _snapshot(params, opt):
    return (
        [p.copy() for p in params],
        [{k: v.copy() for k, v in state.items()} for state in opt.state],
        [dict(g, params=list(g["params"])) for g in opt.param_groups],
    )


def _assert_unchanged(before, after):
    for a, b in zip(before[0], after[0]):
        np.testing.assert_array_equal(a, b, strict=True)
    assert len(before[1]) == len(after[1])
    for a, b in zip(before[1], after[1]):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], strict=True)
    assert len(before[2]) == len(after[2])
    for a, b in zip(before[2], after[2]):
        assert [id(p) for p in a["params"]] == [id(p) for p in b["params"]]
        assert {k: v for k, v in a.items() if k != "params"} == {k: v for k, v in b.items() if k != "params"}


@settings(max_examples=60, deadline=None)
@given(data=st.data(), name=st.sampled_from(NAMES))
def test_bad_numeric_hyperparameters_name_the_argument(data, name):
    hyperparameter = data.draw(st.sampled_from(NONNEGATIVE[name]))
    value = data.draw(BAD_NUMBERS)
    with pytest.raises(ValueError, match=f"Invalid {hyperparameter}"):
        getattr(adamkit.numpy, name)([np.ones(3)], **{hyperparameter: value})


@settings(max_examples=40, deadline=None)
@given(data=st.data(), name=st.sampled_from(NAMES))
def test_flags_must_be_real_booleans(data, name):
    flag = data.draw(st.sampled_from(FLAGS[name]))
    value = data.draw(st.one_of(st.integers(), st.text(max_size=3), st.none(), st.floats(allow_nan=False)))
    with pytest.raises(TypeError, match=f"{flag} must be True or False"):
        getattr(adamkit.numpy, name)([np.ones(3)], **{flag: value})


@settings(max_examples=40, deadline=None)
@given(
    beta=st.one_of(st.floats(max_value=-1e-300), st.floats(min_value=1.0), st.just(float("nan"))),
    index=st.sampled_from([0, 1]),
)
def test_betas_outside_the_unit_interval(beta, index):
    betas = [0.9, 0.99]
    betas[index] = beta
    with pytest.raises(ValueError, match=re.escape(f"betas[{index}]")):
        adamkit.numpy.Adamax([np.ones(2)], betas=betas)


@pytest.mark.parametrize("name,argument", [("Adadelta", "rho"), ("RMSprop", "alpha")])
@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
def test_decay_rates_outside_zero_one(name, argument, value):
    with pytest.raises(ValueError, match=f"Invalid {argument}"):
        getattr(adamkit.numpy, name)([np.ones(2)], **{argument: value})


@pytest.mark.parametrize(
    "make,error,message",
    [
        (lambda: adamkit.numpy.Adam(np.ones(3)), TypeError, "single ndarray"),
        (lambda: adamkit.numpy.Adam([]), ValueError, "empty list"),
        (lambda: adamkit.numpy.Adam(iter([])), ValueError, "empty list"),
        (lambda: adamkit.numpy.Adam(3), TypeError, "params must be a list"),
        (lambda: adamkit.numpy.Adam({np.float64(1)}), TypeError, "ordered collection"),
        (lambda: adamkit.numpy.Adam([[1.0, 2.0]]), TypeError, r"\['params'\]\[0\] must be a numpy.ndarray, got list"),
        (lambda: adamkit.numpy.Adam([np.ones(2), np.arange(3)]), TypeError, r"\['params'\]\[1\] has dtype int64"),
        (lambda: adamkit.numpy.Adam([np.ones(2, np.float16)]), TypeError, "float16"),
        (lambda: adamkit.numpy.Adam([np.ones(2, np.complex128)]), TypeError, "complex128"),
        (lambda: adamkit.numpy.Adam([np.ones(2, ">f8")]), TypeError, "dtype >f8"),
        (lambda: adamkit.numpy.Adam([np.ones(4)[::2]]), ValueError, "not a C-contiguous"),
        (lambda: adamkit.numpy.Adam([np.ones((3, 2)).T]), ValueError, "not a C-contiguous"),
        (lambda: adamkit.numpy.Adam([np.broadcast_to(np.ones(1), 4)]), ValueError, "read-only"),
        (lambda: adamkit.numpy.Adam([{"params": [np.ones(2)]}, np.ones(2)]), TypeError, "not a mix"),
        (lambda: adamkit.numpy.Adam([{"lr": 0.1}]), ValueError, r"param_groups\[0\] has no 'params'"),
        (lambda: adamkit.numpy.Adam([{"params": [np.ones(2)], "lrr": 0.1}]), TypeError, "unknown hyperparameter 'lrr'"),
        (lambda: adamkit.numpy.Adam([{"params": [np.ones(2)], "rho": 0.1}]), TypeError, "unknown hyperparameter 'rho'"),
        (lambda: adamkit.numpy.Adam([{"params": {np.float64(1)}}]), TypeError, "ordered collection"),
        (lambda: adamkit.numpy.Adam([{"params": [np.ones(2)], "lr": -1.0}]), ValueError, r"param_groups\[0\]: Invalid lr"),
        (lambda: adamkit.numpy.Adam([np.ones(2)], foreach=True), TypeError, "unexpected keyword argument 'foreach'"),
        (lambda: adamkit.numpy.SGD([np.ones(2)], fused=True), TypeError, "unexpected keyword argument 'fused'"),
        (lambda: adamkit.numpy.AdamW([np.ones(2)], decoupled_weight_decay=False), TypeError, "decoupled_weight_decay"),
        (lambda: adamkit.numpy.Adam([np.ones(2)], 0.1, (0.9, 0.9), 1e-8, 0.0, False, True), TypeError, "too many positional"),
        (lambda: adamkit.numpy.Adam(lr=0.1), TypeError, "missing a required argument: 'params'"),
        (lambda: adamkit.numpy.Adam([np.ones(2)], nonfinite_grads="ignore"), ValueError, "Invalid nonfinite_grads"),
        (lambda: adamkit.numpy.Adam([np.ones(2)], betas=(0.9,)), ValueError, "Invalid betas"),
        (lambda: adamkit.numpy.Adam([np.ones(2)], lr=None), TypeError, "lr must be a real number"),
        (lambda: adamkit.numpy.SGD([np.ones(2)], nesterov=True), ValueError, "nesterov=True requires momentum > 0"),
        (lambda: adamkit.numpy.SGD([np.ones(2)], momentum=0.9, dampening=0.1, nesterov=True), ValueError, "dampening = 0"),
        (
            lambda: adamkit.numpy.SGD([{"params": [np.ones(2)], "momentum": 0.0}], momentum=0.9, nesterov=True),
            ValueError,
            r"param_groups\[0\]: nesterov=True requires",
        ),
    ],
)
def test_bad_construction(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_a_parameter_listed_twice_is_refused():
    w = np.ones(3)
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\]\[1\] is already optimized"):
        adamkit.numpy.Adam([w, w])
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['params'\]\[0\] is already optimized"):
        adamkit.numpy.Adam([{"params": [w]}, {"params": [w]}])
    # Equal values in distinct arrays are fine: identity is what counts.
    adamkit.numpy.Adam([w, w.copy()])


@pytest.mark.parametrize(
    "group,error,message",
    [
        ({"params": None}, TypeError, "must be a list of arrays"),
        ("not a dict", TypeError, r"param_groups\[2\] must be a dict"),
        ({"params": [np.ones(3)], "betas": (0.9, 1.0)}, ValueError, r"param_groups\[2\]: Invalid betas\[1\]"),
        ({"params": [np.ones(3)], "foreach": True}, TypeError, "unknown hyperparameter 'foreach'"),
        ({"params": [np.ones(3), np.ones(3, np.int32)]}, TypeError, "int32"),
        ("duplicate", ValueError, r"param_groups\[2\]\['params'\]\[1\] is already optimized"),
    ],
)
def test_a_failed_add_param_group_changes_nothing(group, error, message):
    params, opt = _optimizer()
    if group == "duplicate":
        group = {"params": [np.ones(3), params[0]]}
    before = _snapshot(params, opt)
    with pytest.raises(error, match=message):
        opt.add_param_group(group)
    _assert_unchanged(before, _snapshot(params, opt))
    assert len(opt.param_groups) == 2


def _bad_gradients(draw, params):
    """A list of gradients with one of several faults, and the error it must raise."""
    grads = [np.ones_like(p) for p in params]
    fault = draw(st.sampled_from(["count", "shape", "dtype", "type", "alias", "container"]))
    index = draw(st.integers(0, len(params) - 1))
    if fault == "count":
        grads = grads[: draw(st.sampled_from([0, 2]))] + [np.ones(1)] * draw(st.sampled_from([0, 2]))
        return grads, ValueError, "gradients for 3 parameters"
    if fault == "shape":
        grads[index] = np.ones(params[index].size + draw(st.integers(1, 3)))
        return grads, ValueError, r"the gradient of param_groups\[\d\]\['params'\]\[\d\] is float64"
    if fault == "dtype":
        dtype = draw(st.sampled_from([np.float32, np.float16, np.int64]))
        grads[index] = grads[index].astype(dtype)
        return grads, ValueError, f"is {np.dtype(dtype)}"
    if fault == "type":
        grads[index] = draw(st.sampled_from([grads[index].tolist(), 1.0, "g"]))
        return grads, TypeError, "must be a numpy.ndarray or None"
    if fault == "alias":
        grads[index] = params[index]
        return grads, ValueError, "shares memory with its parameter"
    return draw(st.sampled_from([np.ones(3), {0: np.ones(7)}, 5])), TypeError, "grads must be a list"


@settings(max_examples=60, deadline=None)
@given(data=st.data(), name=st.sampled_from(NAMES))
def test_a_bad_step_changes_nothing(data, name):
    params, opt = _optimizer(name)
    grads, error, message = _bad_gradients(data.draw, params)
    before = _snapshot(params, opt)
    skipped = opt.skipped_steps
    with pytest.raises(error, match=message):
        opt.step(grads)
    _assert_unchanged(before, _snapshot(params, opt))
    assert opt.skipped_steps == skipped


def test_a_parameter_made_read_only_later_is_refused_at_step():
    params, opt = _optimizer("RMSprop")
    params[2].flags.writeable = False
    before = _snapshot(params, opt)
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['params'\]\[0\] is read-only"):
        opt.step([np.ones(7), np.ones(17), np.ones(1)])
    _assert_unchanged(before, _snapshot(params, opt))
