"""The cached lazy sparse step (adamkit/torch/_cached_sparse_plan.py): it is taken after a first full
step, gives the bits of the reference backend (fused=False, never planned) step after step, and
gives way to the full path whenever something it cached changes."""

import pytest
import torch

import adamkit.torch
from adamkit.kernels import native
from adamkit.torch._cached_sparse_plan import SparsePlan
from tests.torch._compare import assert_bitwise_equal

pytestmark = pytest.mark.skipif(not native.available(), reason="the C kernels are not built")

SHAPE = (1031, 17)
HYPER = dict(lr=0.03, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)


def _grad(seed, rows, dtype=torch.float64, transposed_values=False):
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randint(SHAPE[0], (rows,), generator=generator)
    values = torch.randn(rows, SHAPE[1], generator=generator, dtype=dtype)
    if transposed_values:
        values = values.t().contiguous().t()
    return torch.sparse_coo_tensor(indices[None], values, SHAPE, check_invariants=True)


def _pair(dtype=torch.float64, **hyper):
    """A planned optimizer and a reference one (``fused=False``) on equal parameters."""
    start = torch.randn(*SHAPE, generator=torch.Generator().manual_seed(0), dtype=dtype)
    planned, reference = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    return (
        (planned, adamkit.torch.Adam([planned], **{**HYPER, **hyper})),
        (reference, adamkit.torch.Adam([reference], fused=False, **{**HYPER, **hyper})),
    )


def _step_both(pair, grad):
    for param, optimizer in pair:
        param.grad = grad.clone()
        optimizer.step()


def _assert_same(pair):
    (planned, optimizer), (reference, reference_optimizer) = pair
    assert_bitwise_equal(planned.detach(), reference.detach(), "param")
    for key, value in reference_optimizer.state[reference].items():
        assert_bitwise_equal(optimizer.state[planned][key], value, key)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_after_a_first_step_the_plan_steps_and_gives_the_reference_bits(dtype):
    pair = _pair(dtype, amsgrad=True, maximize=True)
    for seed in range(6):
        _step_both(pair, _grad(seed, rows=40, dtype=dtype))
        (planned, optimizer), _ = pair
        assert isinstance(optimizer._plans[0], SparsePlan)
        assert optimizer._plans[0].gradient_pointers(optimizer.param_groups[0], optimizer.state) is not None
    _assert_same(pair)
    assert float(pair[0][1].state[pair[0][0]]["step"]) == 6


def _set_lr(pair):
    for _, optimizer in pair:
        optimizer.param_groups[0]["lr"] = 0.005


def _turn_on_amsgrad(pair):
    for _, optimizer in pair:
        optimizer.param_groups[0]["amsgrad"] = True


def _switch_to_dense_mode(pair):
    for _, optimizer in pair:
        optimizer.param_groups[0]["sparse_mode"] = "dense"


def _replace_the_parameters_data(pair):
    for param, _ in pair:
        param.data = param.data.clone()


def _reload_the_state(pair):
    for _, optimizer in pair:
        optimizer.load_state_dict(optimizer.state_dict())


CHANGES = {
    "lr": (_set_lr, True),
    "amsgrad-on": (_turn_on_amsgrad, False),
    "dense-mode": (_switch_to_dense_mode, False),
    "new-param-data": (_replace_the_parameters_data, False),
    "reloaded-state": (_reload_the_state, False),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_between_steps_is_followed_as_the_reference_follows_it(change):
    """A changed hyperparameter is read at the next step; a change the plan cached (slots, mode,
    pointers, state objects) makes it give way to the full path, which makes a new plan."""
    apply, plan_holds = CHANGES[change]
    pair = _pair()
    _step_both(pair, _grad(0, rows=30))
    _step_both(pair, _grad(1, rows=30))
    optimizer = pair[0][1]
    apply(pair)
    plan = optimizer._plans.get(0)
    assert (plan is not None and plan.gradient_pointers(optimizer.param_groups[0], optimizer.state) is not None) == plan_holds
    for seed in (2, 3):
        _step_both(pair, _grad(seed, rows=30))
    _assert_same(pair)


GRAD_CHANGES = {
    "non-contiguous-values": lambda: _grad(5, rows=30, transposed_values=True),
    "no-entries": lambda: torch.sparse_coo_tensor(
        torch.zeros(1, 0, dtype=torch.long), torch.zeros(0, 17, dtype=torch.float64), SHAPE, check_invariants=True
    ),
    "dense": lambda: torch.randn(*SHAPE, dtype=torch.float64),
    "one-entry-at-the-end": lambda: torch.sparse_coo_tensor(
        torch.tensor([[SHAPE[0] - 1]]), torch.ones(1, 17, dtype=torch.float64), SHAPE, check_invariants=True
    ),
}


@pytest.mark.parametrize("kind", list(GRAD_CHANGES))
def test_any_gradient_steps_as_the_reference_steps_it(kind):
    pair = _pair()
    _step_both(pair, _grad(0, rows=30))
    _step_both(pair, GRAD_CHANGES[kind]())
    _step_both(pair, _grad(1, rows=30))
    _assert_same(pair)


def test_a_group_with_a_dense_gradient_has_no_sparse_plan():
    table, bias = torch.nn.Parameter(torch.ones(*SHAPE)), torch.nn.Parameter(torch.ones(3))
    optimizer = adamkit.torch.Adam([table, bias])
    table.grad = _grad(0, rows=5, dtype=torch.float32)
    bias.grad = torch.ones(3)
    optimizer.step()
    assert not isinstance(optimizer._plans.get(0), SparsePlan)


def test_an_out_of_range_index_after_planning_raises_and_changes_nothing():
    pair = _pair()
    _step_both(pair, _grad(0, rows=30))
    param, optimizer = pair[0]
    before = param.detach().clone(), {key: value.clone() for key, value in optimizer.state[param].items()}
    param.grad = torch.sparse_coo_tensor(
        torch.tensor([[3, SHAPE[0]]]), torch.ones(2, 17, dtype=torch.float64), SHAPE, check_invariants=False
    )
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\]\[0\].*\[0, 1031\)"):
        optimizer.step()
    assert_bitwise_equal(param.detach(), before[0], "param")
    for key, value in before[1].items():
        assert_bitwise_equal(optimizer.state[param][key], value, key)
