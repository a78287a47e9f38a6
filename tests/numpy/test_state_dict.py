"""state_dict: a flat dict of arrays that survives np.savez, resumes exactly, and fails safely."""

import itertools
import re

import numpy as np
import pytest

import adamkit.numpy
from adamkit import specs
from tests.cases import CASES, DTYPES, Case, gradients, group_order, initial_params, param_groups

SPLIT = 20
STEPS = 45
# Adam with AMSGrad in group 0 only; groups hold sizes (1, 17) and (7, 4097).
AMSGRAD_CASE = Case("Adam", {"lr": 1e-2, "weight_decay": 0.1, "amsgrad": True}, {"amsgrad": False})


def _optimizer(case, dtype, params=None):
    params = [p.copy() for p in initial_params(dtype)] if params is None else params
    return params, getattr(adamkit.numpy, case.optimizer)(param_groups(case, params), **case.hyper)


def _run(opt, grads):
    for step_grads in grads:
        opt.step(group_order(step_grads))


def _snapshot(params, opt):
    """Everything an optimizer holds, as copies: parameters, hyperparameters and state."""
    return [p.copy() for p in params], opt.state_dict(), [dict(g, params=list(g["params"])) for g in opt.param_groups]


def _assert_snapshot_equal(before, after):
    params_before, saved_before, groups_before = before
    params_after, saved_after, groups_after = after
    for a, b in zip(params_before, params_after):
        np.testing.assert_array_equal(a, b, strict=True)
    assert saved_before.keys() == saved_after.keys()
    for key in saved_before:
        np.testing.assert_array_equal(saved_before[key], saved_after[key], strict=True, err_msg=key)
    assert len(groups_before) == len(groups_after)
    for a, b in zip(groups_before, groups_after):
        assert a.keys() == b.keys()
        assert all(x is y for x, y in zip(a["params"], b["params"]))
        assert {k: v for k, v in a.items() if k != "params"} == {k: v for k, v in b.items() if k != "params"}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_resuming_from_savez_equals_an_uninterrupted_run(case, dtype, tmp_path):
    grads = gradients(dtype, STEPS)
    straight_params, straight = _optimizer(case, dtype)
    _run(straight, grads)

    first_params, first = _optimizer(case, dtype)
    _run(first, grads[:SPLIT])
    path = tmp_path / "opt.npz"
    np.savez(path, **first.state_dict())
    resumed_params, resumed = _optimizer(case, dtype, [p.copy() for p in first_params])
    with np.load(path) as loaded:
        resumed.load_state_dict(dict(loaded))
    _run(resumed, grads[SPLIT:])

    for a, b in zip(straight_params, resumed_params):
        np.testing.assert_array_equal(a, b, strict=True)
    for a, b in zip(straight.state, resumed.state):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], strict=True, err_msg=key)


def test_an_npz_file_loads_directly(tmp_path):
    w = np.ones(5, np.float32)
    opt = adamkit.numpy.RMSprop([w], lr=0.1, momentum=0.5, centered=True)
    opt.step([np.arange(5, dtype=np.float32)])
    np.savez(tmp_path / "rmsprop.npz", **opt.state_dict())
    other = adamkit.numpy.RMSprop([w.copy()])
    with np.load(tmp_path / "rmsprop.npz") as loaded:
        other.load_state_dict(loaded)
    assert other.param_groups[0]["momentum"] == 0.5 and other.param_groups[0]["centered"] is True
    assert other.state[0].keys() == opt.state[0].keys() == {"step", "square_avg", "momentum_buffer", "grad_avg"}
    for key in opt.state[0]:
        np.testing.assert_array_equal(other.state[0][key], opt.state[0][key], strict=True)


def test_keys_and_values():
    w, b = np.zeros((3, 2), np.float32), np.zeros(2, np.float32)
    opt = adamkit.numpy.Adam([{"params": [w]}, {"params": [b], "lr": 0.5, "betas": [0.8, 0.9]}], amsgrad=True)
    opt.step([np.ones_like(w), None])
    saved = opt.state_dict()
    np.testing.assert_array_equal(saved["param_groups.0.params"], [0])
    np.testing.assert_array_equal(saved["param_groups.1.params"], [1])
    assert saved["param_groups.1.lr"] == 0.5 and saved["param_groups.0.lr"] == 1e-3
    np.testing.assert_array_equal(saved["param_groups.1.betas"], [0.8, 0.9])
    assert saved["param_groups.0.amsgrad"].dtype == np.bool_ and saved["param_groups.0.amsgrad"]
    assert saved["state.0.step"].dtype == np.float32 and saved["state.0.step"].shape == () and saved["state.0.step"] == 1
    assert {key for key in saved if key.startswith("state.")} == {
        "state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq", "state.0.max_exp_avg_sq"
    }
    assert all(isinstance(value, np.ndarray) for value in saved.values())
    # A copy: changing the optimizer later does not change what was saved.
    opt.step([np.ones_like(w), np.ones_like(b)])
    assert saved["state.0.step"] == 1


def test_loaded_state_is_cast_to_the_parameter_dtype_and_copied():
    case = AMSGRAD_CASE
    params64, opt64 = _optimizer(case, "float64")
    _run(opt64, gradients("float64", 5))
    saved = opt64.state_dict()
    params32, opt32 = _optimizer(case, "float32")
    opt32.load_state_dict(saved)
    for state64, state32, param in zip(opt64.state, opt32.state, group_order(params32)):
        assert state32["step"].dtype == np.float32 and state32["step"] == state64["step"]
        for key in state64.keys() - {"step"}:
            assert state32[key].dtype == np.float32 and state32[key].flags.c_contiguous
            np.testing.assert_array_equal(state32[key], state64[key].astype(np.float32))
    saved["state.0.exp_avg"][...] = 123.0
    assert not (opt32.state[0]["exp_avg"] == 123.0).any()


def test_hyperparameters_are_restored():
    case = Case("AdamW", {"lr": 1e-2, "amsgrad": True, "maximize": True}, {"lr": 1e-3})
    _, source = _optimizer(case, "float64")
    source.param_groups[1]["lr"] = 0.25
    source.param_groups[0]["betas"] = (0.5, 0.75)
    _, target = _optimizer(case, "float64")
    target.load_state_dict(source.state_dict())
    for a, b in zip(source.param_groups, target.param_groups):
        assert {k: v for k, v in a.items() if k != "params"} == {k: v for k, v in b.items() if k != "params"}
    assert target.param_groups[1]["lr"] == 0.25 and target.param_groups[0]["betas"] == (0.5, 0.75)


def _corruptions():
    """(name, change to a valid saved dict, a fragment of the expected message)."""

    def setter(key, value):
        return lambda saved: saved.__setitem__(key, value)

    def dropper(key):
        return lambda saved: saved.pop(key)

    return [
        ("extra group", setter("param_groups.2.params", np.array([9])), "parameter groups"),
        ("group too big", setter("param_groups.0.params", np.array([0, 1, 2])), "parameter group 0 has 3"),
        ("ids not integers", setter("param_groups.0.params", np.array([0.0, 1.0])), "integer ids"),
        ("duplicate id", setter("param_groups.1.params", np.array([0, 3])), "more than one place"),
        ("state shape", setter("state.1.exp_avg", np.zeros(16)), "has shape (16,)"),
        ("state for no parameter", setter("state.7.exp_avg", np.zeros(1)), "parameter id 7"),
        ("unknown state key", setter("state.0.momentum_buffer", np.zeros(1)), "unknown key 'state.0.momentum_buffer'"),
        ("unknown hyperparameter", setter("param_groups.0.rho", np.array(0.5)), "unknown key 'param_groups.0.rho'"),
        ("unknown key", setter("optimizer", np.array(1)), "unknown key 'optimizer'"),
        ("not an index", setter("state.01.exp_avg", np.zeros(1)), "unknown key 'state.01.exp_avg'"),
        ("missing hyperparameter", dropper("param_groups.1.eps"), "lacks 'param_groups.1.eps'"),
        ("missing params", dropper("param_groups.1.params"), "lacks 'param_groups.1.params'"),
        ("bad lr", setter("param_groups.1.lr", np.array(-1.0)), "Invalid lr"),
        ("nan eps", setter("param_groups.0.eps", np.array(np.nan)), "Invalid eps"),
        ("beta out of range", setter("param_groups.0.betas", np.array([0.9, 1.0])), "betas[1]"),
        ("betas shape", setter("param_groups.0.betas", np.array(0.9)), "shape (2,)"),
        ("flag not bool", setter("param_groups.0.amsgrad", np.array(1)), "bool"),
        ("text lr", setter("param_groups.0.lr", np.array("fast")), "real array"),
        ("step not 0-d", setter("state.0.step", np.array([3.0])), "0-d count"),
        ("negative step", setter("state.0.step", np.array(-1.0)), "0-d count"),
        ("nan step", setter("state.0.step", np.array(np.nan, np.float32)), "state_dict['state.0.step'] must be a finite 0-d count"),
        ("infinite step", setter("state.3.step", np.array(np.inf)), "state_dict['state.3.step'] must be a finite 0-d count"),
        ("missing step", dropper("state.1.step"), "lacks 'state.1.step'"),
        ("integer state", setter("state.1.exp_avg", np.zeros(17, np.int32)), "'state.1.exp_avg'] must hold floating-point numbers or bfloat16 bit patterns (uint16), got dtype int32"),
        ("codes without scales", setter("state.1.exp_avg_sq", np.zeros(17, np.uint8)), "holds uint8 codes without their scales, 'state.1.exp_avg_sq_absmax'"),
        ("complex state", setter("state.2.exp_avg", np.zeros(17, np.complex64)), "real numbers"),
        ("not a mapping", lambda saved: None, "mapping"),
    ]


@pytest.mark.parametrize("name,corrupt,message", _corruptions(), ids=[c[0] for c in _corruptions()])
def test_a_failed_load_raises_and_changes_nothing(name, corrupt, message):
    case = AMSGRAD_CASE
    params, opt = _optimizer(case, "float64")
    _run(opt, gradients("float64", 4))
    saved = opt.state_dict()
    for key in saved:
        if key.startswith("state."):
            saved[key] = saved[key] + 1  # so that a partial load would show
    saved["param_groups.1.lr"] = np.array(0.123)
    if name == "not a mapping":
        saved = list(saved.items())
    else:
        corrupt(saved)
    before = _snapshot(params, opt)
    with pytest.raises(ValueError, match=re.escape(message)):
        opt.load_state_dict(saved)
    _assert_snapshot_equal(before, _snapshot(params, opt))
    # The next step is the one the optimizer would have taken had it never seen the state dict.
    twin_params, twin = _optimizer(case, "float64")
    _run(twin, gradients("float64", 4))
    _run(opt, gradients("float64", 1, seed=9))
    _run(twin, gradients("float64", 1, seed=9))
    for param, twin_param in zip(params, twin_params):
        np.testing.assert_array_equal(param, twin_param, strict=True)
    saved, twin_saved = opt.state_dict(), twin.state_dict()
    assert saved.keys() == twin_saved.keys()
    for key in saved:
        np.testing.assert_array_equal(saved[key], twin_saved[key], strict=True, err_msg=key)


def test_a_missing_key_is_a_key_error_as_in_torch_and_a_value_error():
    _, opt = _optimizer(AMSGRAD_CASE, "float64")
    saved = opt.state_dict()
    del saved["param_groups.1.betas"]
    for error in (KeyError, ValueError):
        with pytest.raises(error, match=re.escape("state_dict lacks 'param_groups.1.betas'")):
            opt.load_state_dict(saved)


def _layout(name):
    """What a saved state dict shows of an optimizer: its hyperparameters and state keys."""
    spec = specs.BY_NAME[name]
    return set(spec.defaults), {slot.key for slot in (*spec.slots, *spec.scalar_state)}


def _pairs():
    """(saving optimizer, loading optimizer): every two whose state dicts differ. Two whose
    hyperparameters and state keys are the same (RAdam and ADOPT) cannot be told apart by a
    state dict without the optimizer's name (``rule``), as adamkit saved them before it wrote
    it; with the name, every pair is refused (tests/test_cross_loading.py)."""
    names = [spec.name for spec in specs.ALL]
    return [pair for pair in itertools.permutations(names, 2) if _layout(pair[0]) != _layout(pair[1])]


@pytest.mark.parametrize(("source", "target"), _pairs(), ids=lambda name: name)
def test_another_optimizers_state_dict_without_its_name_is_refused_by_its_keys(source, target):
    saving = getattr(adamkit.numpy, source)([np.ones(3)])
    saving.step([np.ones(3)])
    params = [np.ones(3)]
    loading = getattr(adamkit.numpy, target)(params)
    loading.step([np.full(3, 0.5)])
    before = _snapshot(params, loading)
    saved = saving.state_dict()
    del saved["rule"]
    with pytest.raises(ValueError, match="unknown key|lacks"):
        loading.load_state_dict(saved)
    _assert_snapshot_equal(before, _snapshot(params, loading))


def test_sgd_without_momentum_saves_no_state_and_rejects_a_step_key():
    w = np.ones(4)
    opt = adamkit.numpy.SGD([w], lr=0.1)
    opt.step([np.ones(4)])
    saved = opt.state_dict()
    assert not [key for key in saved if key.startswith("state.")]
    saved["state.0.step"] = np.array(1.0, np.float32)
    with pytest.raises(ValueError, match="SGD state holds momentum_buffer"):
        opt.load_state_dict(saved)


def test_state_of_parameters_not_in_the_saved_dict_is_reset_as_in_torch():
    w, b = np.ones(3), np.ones(2)
    opt = adamkit.numpy.Adam([w, b], lr=0.1)
    opt.step([np.ones(3), np.ones(2)])
    fresh = adamkit.numpy.Adam([np.ones(3), np.ones(2)], lr=0.1)
    fresh.step([np.ones(3), None])
    opt.load_state_dict(fresh.state_dict())
    assert opt.state[1] == {} and opt.state[0]["step"] == 1
