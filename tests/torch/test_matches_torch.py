"""adamkit.torch.<Name> follows torch.optim.<Name> step for step on every case of the shared
table, in float32 and float64: parameters, state tensors, step counts and state_dict layout."""

import pytest
import torch

from tests.cases import DTYPES, STEPS, gradients, initial_params, param_groups
from tests.torch._compare import TOLERANCE, TORCH_CASES, Agreement, both, make_params, set_grads


def _run_side_by_side(case, dtype):
    """Build both optimizers on identical parameters and yield after each of the ``STEPS`` steps."""
    torch_class, adamkit_class = both(case.optimizer)
    theirs = make_params(initial_params(dtype))
    ours = make_params(initial_params(dtype))
    torch_optimizer = torch_class(param_groups(case, theirs), **case.hyper)
    adamkit_optimizer = adamkit_class(param_groups(case, ours), **case.hyper)
    for grads in gradients(dtype):
        set_grads(theirs, grads)
        set_grads(ours, grads)
        torch_optimizer.step()
        adamkit_optimizer.step()
        yield adamkit_optimizer, torch_optimizer


def _group_order(optimizer):
    return [p for group in optimizer.param_groups for p in group["params"]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda case: case.id)
def test_parameters_and_state_follow_torch(case, dtype):
    agreement = Agreement(TOLERANCE[getattr(torch, dtype)])
    steps = 0
    for adamkit_optimizer, torch_optimizer in _run_side_by_side(case, dtype):
        agreement.check_all("param", _group_order(adamkit_optimizer), _group_order(torch_optimizer))
        agreement.check_states(adamkit_optimizer, torch_optimizer)
        steps += 1
    assert steps == STEPS


def _assert_same_layout(ours, theirs):
    """``ours`` is a state_dict laid out like torch's ``theirs``, with equal hyperparameters."""
    assert ours.keys() == theirs.keys()
    assert ours["state"].keys() == theirs["state"].keys()
    for index, state in theirs["state"].items():
        assert ours["state"][index].keys() == state.keys(), f"state[{index}]"
        for key, value in state.items():
            assert ours["state"][index][key].dtype == value.dtype, f"state[{index}][{key!r}]"
            assert ours["state"][index][key].shape == value.shape, f"state[{index}][{key!r}]"
    assert len(ours["param_groups"]) == len(theirs["param_groups"])
    for index, (mine, torchs) in enumerate(zip(ours["param_groups"], theirs["param_groups"])):
        missing = torchs.keys() - mine.keys()
        assert not missing, f"param_groups[{index}] lacks torch's keys {sorted(missing)}"
        for key, value in torchs.items():
            assert mine[key] == value, f"param_groups[{index}][{key!r}]: {mine[key]!r} != {value!r}"


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda case: case.id)
def test_state_dict_has_torchs_layout(case):
    for step, (adamkit_optimizer, torch_optimizer) in enumerate(_run_side_by_side(case, "float64")):
        if step in (0, 2):
            _assert_same_layout(adamkit_optimizer.state_dict(), torch_optimizer.state_dict())
        if step == 2:
            break


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda case: case.id)
def test_fresh_state_dict_has_torchs_layout(case):
    """Before any step (Adagrad already has its accumulators)."""
    torch_class, adamkit_class = both(case.optimizer)
    ours = adamkit_class(param_groups(case, make_params(initial_params("float32"))), **case.hyper)
    theirs = torch_class(param_groups(case, make_params(initial_params("float32"))), **case.hyper)
    _assert_same_layout(ours.state_dict(), theirs.state_dict())
