"""Behaviour of the NumPy optimizers: in place, per-parameter state, groups, skip policy."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import adamkit.numpy
from adamkit import rules
from adamkit.nonfinite import NonFiniteGradientWarning

SIZES = (1, 7, 17, 4097)
NON_DEFAULT = {
    "Adam": {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "maximize": True},
    "AdamW": {"lr": 0.01, "weight_decay": 0.3, "eps_hat": True},
    "Adamax": {"lr": 0.01, "weight_decay": 0.1, "maximize": True},
    "Adadelta": {"rho": 0.5, "weight_decay": 0.1},
    "SGD": {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.1, "nesterov": True},
    "Adagrad": {"lr_decay": 0.1, "initial_accumulator_value": 0.5, "weight_decay": 0.1},
    "RMSprop": {"centered": True, "momentum": 0.5, "weight_decay": 0.1, "maximize": True},
}


def _params(dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(size).astype(dtype) for size in SIZES]


def test_adam_matches_the_rule_applied_by_hand():
    dtype = "float32"
    params = _params(dtype)
    expected = [p.copy() for p in params]
    moments = [(np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)) for p in params]
    hyper = {"lr": 0.05, "betas": (0.7, 0.9), "eps": 1e-4, "weight_decay": 0.2, "amsgrad": True}
    opt = adamkit.numpy.Adam(params, **hyper)
    rng = np.random.default_rng(3)
    for step in range(1, 6):
        grads = [rng.standard_normal(p.shape).astype(dtype) for p in params]
        opt.step(grads)
        for i, grad in enumerate(grads):
            state = rules.adam(expected[i], grad, *moments[i], step=float(step), **hyper)
            expected[i] = state.param
            moments[i] = state[1:]
    for param, want, state, (m, v, v_max) in zip(params, expected, opt.state, moments):
        np.testing.assert_array_equal(param, want, strict=True)
        np.testing.assert_array_equal(state["exp_avg"], m, strict=True)
        np.testing.assert_array_equal(state["max_exp_avg_sq"], v_max, strict=True)
        assert state["step"] == 5 and state["step"].dtype == np.float32 and state["step"].shape == ()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(NON_DEFAULT))
def test_parameters_change_in_place_and_state_has_their_dtype(name, dtype):
    params = _params(dtype)
    ids = [id(p) for p in params]
    start = [p.copy() for p in params]
    opt = getattr(adamkit.numpy, name)(params, **NON_DEFAULT[name])
    rng = np.random.default_rng(1)
    assert opt.step([rng.standard_normal(p.shape).astype(dtype) for p in params]) is None
    assert [id(p) for p in opt.param_groups[0]["params"]] == ids
    for param, before, state in zip(params, start, opt.state):
        assert param.dtype == np.dtype(dtype) and not np.array_equal(param, before)
        for key, value in state.items():
            if key == "step":
                assert value.dtype == np.float32 and value == 1
            else:
                assert value.dtype == np.dtype(dtype) and value.shape == param.shape, key


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(list(NON_DEFAULT)),
    grads=st.lists(hnp.arrays(np.float64, 5, elements=st.floats(-1e3, 1e3)), min_size=3, max_size=3),
)
def test_gradients_are_never_modified_nor_aliased(name, grads):
    params = [np.ones(5), np.full(5, -2.0), np.linspace(0, 1, 5)]
    copies = [g.copy() for g in grads]
    opt = getattr(adamkit.numpy, name)(params, **NON_DEFAULT[name])
    opt.step(grads)
    opt.step(grads)
    for grad, copy in zip(grads, copies):
        np.testing.assert_array_equal(grad, copy)
    for state, grad in zip(opt.state, grads):
        assert not any(np.may_share_memory(value, grad) for value in state.values())


def test_state_is_created_lazily_except_adagrads():
    w = np.ones(3)
    adam = adamkit.numpy.Adam([w])
    assert adam.state == [{}]
    adam.step([None])
    assert adam.state == [{}]
    v = np.ones(2, np.float32)
    adagrad = adamkit.numpy.Adagrad([{"params": [v]}], initial_accumulator_value=0.25)
    assert adagrad.state[0]["step"] == 0 and adagrad.state[0]["sum"].dtype == np.float32
    np.testing.assert_array_equal(adagrad.state[0]["sum"], [0.25, 0.25])
    u = np.ones(4)
    adagrad.add_param_group({"params": u, "initial_accumulator_value": 2.0})
    # torch.optim's Adagrad starts every sum at the constructor's value, whatever the group says.
    np.testing.assert_array_equal(adagrad.state[1]["sum"], np.full(4, 0.25))


def test_sgd_counts_no_steps_and_creates_its_buffer_from_the_first_gradient():
    w = np.zeros(3)
    opt = adamkit.numpy.SGD([w], lr=0.5, momentum=0.9)
    grad = np.array([1.0, -2.0, 4.0])
    opt.step([grad])
    assert set(opt.state[0]) == {"momentum_buffer"}
    np.testing.assert_array_equal(opt.state[0]["momentum_buffer"], grad)
    assert not np.may_share_memory(opt.state[0]["momentum_buffer"], grad)
    np.testing.assert_array_equal(w, -0.5 * grad)
    assert set(adamkit.numpy.SGD([np.zeros(2)]).state[0]) == set()


def test_groups_override_defaults_and_can_be_changed_between_steps():
    a, b, c = np.ones(3), np.ones(3), np.ones(3)
    opt = adamkit.numpy.Adam([{"params": [a]}, {"params": [b], "lr": 0.0}], lr=0.1, betas=[0.5, 0.6])
    assert opt.param_groups[0]["betas"] == (0.5, 0.6) and opt.param_groups[1]["lr"] == 0.0
    assert opt.defaults["lr"] == 0.1
    opt.add_param_group({"params": [c], "lr": 0.2})
    opt.step([np.ones(3)] * 3)
    np.testing.assert_allclose(a, 0.9)
    np.testing.assert_array_equal(b, np.ones(3))
    np.testing.assert_allclose(c, 0.8)
    opt.param_groups[0]["lr"] = 0.0
    before = a.copy()
    opt.step([np.ones(3)] * 3)
    np.testing.assert_array_equal(a, before)
    assert opt.state[0]["step"] == 2


def test_positional_hyperparameters_follow_torchs_order():
    opt = adamkit.numpy.RMSprop([np.ones(2)], 0.5, 0.8, 1e-3, 0.1, 0.2, True, maximize=True)
    group = opt.param_groups[0]
    numbers = (group["lr"], group["alpha"], group["eps"], group["weight_decay"], group["momentum"])
    assert numbers == (0.5, 0.8, 1e-3, 0.1, 0.2)
    assert group["centered"] is True and group["maximize"] is True


def test_adamw_always_decouples_weight_decay():
    w = np.ones(2)
    opt = adamkit.numpy.AdamW([w], lr=0.1, weight_decay=0.5)
    assert opt.param_groups[0]["decoupled_weight_decay"] is True
    opt.step([np.zeros(2)])
    np.testing.assert_allclose(w, 0.95)  # θ(1 - γλ); a zero gradient leaves m = 0


def test_zero_dimensional_parameters_are_supported():
    w = np.array(2.0)
    opt = adamkit.numpy.Adamax([w], lr=0.5)
    opt.step([np.array(1.0)])
    assert w.shape == () and w < 2.0


def test_skip_policy_changes_nothing_on_a_nonfinite_gradient():
    params = _params("float32")
    opt = adamkit.numpy.Adam([{"params": params[:2]}, {"params": params[2:]}], lr=0.1, nonfinite_grads="skip")
    good = [np.ones_like(p) for p in params]
    opt.step(good)
    before = [p.copy() for p in params]
    states = [{k: v.copy() for k, v in s.items()} for s in opt.state]
    bad = [g.copy() for g in good]
    bad[3][100] = np.inf
    with pytest.warns(NonFiniteGradientWarning, match=r"param_groups\[1\]\['params'\]\[1\]"):
        opt.step(bad)
    assert opt.skipped_steps == 1
    for p, q in zip(params, before):
        np.testing.assert_array_equal(p, q)
    for state, saved in zip(opt.state, states):
        for key in saved:
            np.testing.assert_array_equal(state[key], saved[key])


def test_the_skip_warning_points_at_the_caller():
    opt = adamkit.numpy.Adam([np.ones(3)], nonfinite_grads="skip")
    with pytest.warns(NonFiniteGradientWarning) as record:
        opt.step([np.array([1.0, np.nan, 0.0])])
    assert record[0].filename == __file__


def test_propagate_policy_lets_nan_through_without_warning():
    w = np.ones(3)
    opt = adamkit.numpy.SGD([w], lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step([np.array([np.nan, 0.0, 1.0])])
    assert np.isnan(w[0]) and w[1] == 1.0 and opt.skipped_steps == 0


@pytest.mark.parametrize("name", ["Adam", "SGD"])
def test_a_group_may_mix_float32_and_float64_arrays(name):
    """Each dtype of a group gets its own kernel call: the result is that of one optimizer per
    dtype, bit for bit, on the full path and on the planned one."""
    mixed_params = _params("float64")
    mixed_params[0], mixed_params[3] = mixed_params[0].astype(np.float32), mixed_params[3].astype(np.float32)
    copies = [p.copy() for p in mixed_params]
    groups = [{"params": mixed_params[:2]}, {"params": mixed_params[2:], "lr": 0.05}]
    mixed = getattr(adamkit.numpy, name)(groups, **NON_DEFAULT[name])
    by_dtype = [
        getattr(adamkit.numpy, name)(
            [{"params": [p for p in copies[:2] if p.dtype == dtype]},
             {"params": [p for p in copies[2:] if p.dtype == dtype], "lr": 0.05}],
            **NON_DEFAULT[name],
        )
        for dtype in (np.float32, np.float64)
    ]
    rng = np.random.default_rng(5)
    for _ in range(4):
        grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in mixed_params]
        mixed.step(grads)
        for opt, dtype in zip(by_dtype, (np.float32, np.float64)):
            opt.step([g.copy() for g in grads if g.dtype == dtype])
    for param, copy in zip(mixed_params, copies):
        np.testing.assert_array_equal(param, copy, strict=True)
