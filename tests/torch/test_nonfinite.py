"""Non-finite gradients: by default they propagate exactly as in torch.optim; with the opt-in
``nonfinite_grads="skip"`` a step with any NaN or infinity is skipped for every parameter."""

import re
import warnings

import numpy as np
import pytest
import torch

import adamkit
import adamkit.torch
from tests.cases import gradients, initial_params, param_groups
from tests.torch._compare import (
    OPTIMIZERS,
    TORCH_CASES,
    RICH,
    TOLERANCE,
    Agreement,
    assert_unchanged,
    both,
    make_params,
    set_grads,
    snapshot,
)

BAD_VALUES = {"nan": np.nan, "+inf": np.inf, "-inf": -np.inf}


def _two_groups(params):
    return [{"params": [params[0], params[2]]}, {"params": [params[1], params[3]], "lr": 3e-3}]


@pytest.mark.parametrize("bad", list(BAD_VALUES))
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_skip_policy_skips_the_whole_step_and_names_the_parameter(name, bad):
    torch_class, adamkit_class = both(name)
    arrays = initial_params("float64")
    grads = gradients("float64", steps=6)
    poisoned = [g.copy() for g in grads[3]]
    poisoned[3][4000] = BAD_VALUES[bad]  # size 4097: the second parameter of group 1

    ours = make_params(arrays)
    optimizer = adamkit_class(_two_groups(ours), **RICH[name], nonfinite_grads="skip")
    for step_grads in grads[:3]:
        set_grads(ours, step_grads)
        optimizer.step()
    set_grads(ours, poisoned)
    before = snapshot(optimizer)
    with pytest.warns(adamkit.NonFiniteGradientWarning, match=re.escape("param_groups[1]['params'][1]")):
        assert optimizer.step() is None
    assert_unchanged(optimizer, before)
    assert optimizer.skipped_steps == 1
    for index, (param, grad) in enumerate(zip(ours, poisoned)):
        assert np.array_equal(param.grad.numpy(), grad, equal_nan=True), f"grad[{index}] was modified"
    for step_grads in grads[4:]:
        set_grads(ours, step_grads)
        optimizer.step()
    assert optimizer.skipped_steps == 1

    # The same run in torch.optim, without the poisoned step.
    theirs = make_params(arrays)
    torch_optimizer = torch_class(_two_groups(theirs), **RICH[name])
    for step_grads in grads[:3] + grads[4:]:
        set_grads(theirs, step_grads)
        torch_optimizer.step()
    agreement = Agreement(1e-12)
    agreement.check_all("param", ours, theirs)
    agreement.check_states(optimizer, torch_optimizer)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_skipped_first_step_creates_no_state(name):
    _, adamkit_class = both(name)
    params = make_params(initial_params("float32"))
    optimizer = adamkit_class(params, **RICH[name], nonfinite_grads="skip")
    before = snapshot(optimizer)  # Adagrad's state already exists, as in torch
    grads = gradients("float32", steps=1)[0]
    grads[0][0] = np.nan
    set_grads(params, grads)
    with pytest.warns(adamkit.NonFiniteGradientWarning, match=re.escape("param_groups[0]['params'][0]")):
        optimizer.step()
    assert_unchanged(optimizer, before)
    assert optimizer.skipped_steps == 1


def test_skipped_steps_count_every_skip():
    param = torch.nn.Parameter(torch.ones(7))
    optimizer = adamkit.torch.Adam([param], nonfinite_grads="skip")
    for count in (1, 2, 3):
        param.grad = torch.full_like(param, float("inf"))
        with pytest.warns(adamkit.NonFiniteGradientWarning):
            optimizer.step()
        assert optimizer.skipped_steps == count
    assert param not in optimizer.state


def test_skip_policy_still_returns_the_closures_loss():
    param = torch.nn.Parameter(torch.ones(7))
    optimizer = adamkit.torch.AdamW([param], nonfinite_grads="skip")

    def closure():
        param.grad = torch.full_like(param, float("nan"))
        return torch.tensor(2.5)

    with pytest.warns(adamkit.NonFiniteGradientWarning):
        assert optimizer.step(closure).item() == 2.5


def test_the_skip_warning_points_at_the_caller():
    param = torch.nn.Parameter(torch.ones(3))
    param.grad = torch.tensor([1.0, float("nan"), 0.0])
    optimizer = adamkit.torch.Adam([param], nonfinite_grads="skip")
    with pytest.warns(adamkit.NonFiniteGradientWarning) as record:
        optimizer.step()
    assert record[0].filename == __file__


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda case: case.id)
def test_skip_policy_with_finite_grads_equals_torch_and_is_silent(case):
    torch_class, adamkit_class = both(case.optimizer)
    ours, theirs = make_params(initial_params("float32")), make_params(initial_params("float32"))
    optimizer = adamkit_class(param_groups(case, ours), **case.hyper, nonfinite_grads="skip")
    torch_optimizer = torch_class(param_groups(case, theirs), **case.hyper)
    agreement = Agreement(TOLERANCE[torch.float32])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for step_grads in gradients("float32", steps=5):
            set_grads(ours, step_grads)
            set_grads(theirs, step_grads)
            optimizer.step()
            torch_optimizer.step()
            agreement.check_all("param", ours, theirs)
    assert optimizer.skipped_steps == 0


@pytest.mark.parametrize("policy", ["ignore", "SKIP", None, True])
def test_an_unknown_policy_is_refused(policy):
    with pytest.raises(ValueError, match=re.escape(f"nonfinite_grads: {policy!r}")):
        adamkit.torch.Adam([torch.nn.Parameter(torch.ones(1))], nonfinite_grads=policy)


# --- the default: non-finite values propagate as in torch.optim ------------------------------


def _poisoned_gradients(dtype):
    grads = gradients(dtype, steps=8)
    grads[2][1][3] = np.nan
    grads[4][3][5] = np.inf
    grads[5][0][0] = -np.inf
    grads[6][2][1] = np.inf
    return grads


def _check_nonfinite_agreement(agreement, name, actual, expected):
    """Same NaN and infinity pattern; the finite values agree within tolerance."""
    assert torch.equal(actual.isnan(), expected.isnan()), f"{name}: NaNs differ"
    assert torch.equal(actual.isposinf(), expected.isposinf()), f"{name}: +inf differ"
    assert torch.equal(actual.isneginf(), expected.isneginf()), f"{name}: -inf differ"
    finite = expected.isfinite()
    agreement.check(name, torch.where(finite, actual, 0), torch.where(finite, expected, 0))


def _run_poisoned(cls, case, dtype):
    params = make_params(initial_params(dtype))
    optimizer = cls(param_groups(case, params), **case.hyper)
    for step_grads in _poisoned_gradients(dtype):
        set_grads(params, step_grads)
        optimizer.step()
    return params, optimizer


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda case: case.id)
def test_by_default_nonfinite_grads_propagate_as_in_torch(case, dtype):
    torch_class, adamkit_class = both(case.optimizer)
    theirs, torch_optimizer = _run_poisoned(torch_class, case, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # see the test below
        ours, optimizer = _run_poisoned(adamkit_class, case, dtype)
    agreement = Agreement(TOLERANCE[getattr(torch, dtype)])
    for index, (actual, expected) in enumerate(zip(ours, theirs)):
        _check_nonfinite_agreement(agreement, f"param[{index}]", actual.detach(), expected.detach())
    assert any(p.isnan().any() for p in ours), "the poison did not reach the parameters"
    for index, (mine, torchs) in enumerate(zip(ours, theirs)):
        mine, torchs = optimizer.state[mine], torch_optimizer.state[torchs]
        assert mine.keys() == torchs.keys()
        for key, value in torchs.items():
            _check_nonfinite_agreement(agreement, f"state[{index}][{key!r}]", mine[key], value)
    assert optimizer.skipped_steps == 0


@pytest.mark.parametrize("name", ["Adam", "RMSprop"])
def test_by_default_nonfinite_grads_are_as_silent_as_in_torch(name):
    case = next(c for c in TORCH_CASES if c.optimizer == name)
    _, adamkit_class = both(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run_poisoned(adamkit_class, case, "float32")
