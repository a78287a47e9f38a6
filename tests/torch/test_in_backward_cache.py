"""The hooks of ``step_in_backward`` step a parameter through its cached plan with the rule's
arguments kept from its group's last full check (:mod:`adamkit.torch._in_backward`); each
change Python can make between backwards is seen by the next one, as ``step()`` sees it."""

import pytest
import torch

import adamkit.torch
from tests.torch._compare import assert_bitwise_equal

SIZES = ((1,), (7,), (17,), (4097,))
LAYOUTS = (
    (torch.float32, {}),
    (torch.float32, {"state_dtype": "int8"}),
    (torch.bfloat16, {"state_dtype": "int8", "kahan_summation": True}),
)


def _new_values(optimizer, params):
    group = optimizer.param_groups[1]
    group["lr"], group["betas"], group["weight_decay"] = group["lr"] / 2, (0.85, 0.9), 0.2


def _tensor_values_in_place(optimizer, params):
    group = optimizer.param_groups[1]
    group["lr"].mul_(0.5)
    group["betas"][0].fill_(0.85)


def _parameter_memory(optimizer, params):
    params[3].data = params[3].data.clone()


def _state_memory(optimizer, params):
    for value in optimizer.state[params[3]].values():
        if torch.is_tensor(value) and value.dim() > 0:
            value.data = value.data.clone()


CHANGES = {
    "new values": (_new_values, {}),
    "tensor values changed in place": (
        _tensor_values_in_place,
        {"lr": torch.tensor(1e-2), "betas": (torch.tensor(0.8), torch.tensor(0.95))},
    ),
    "parameter memory replaced": (_parameter_memory, {}),
    "state memory replaced": (_state_memory, {}),
}


def _params(dtype):
    generator = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(size, generator=generator).to(dtype)) for size in SIZES]


def _loss(params, seed):
    generator = torch.Generator().manual_seed(seed)
    return sum((p.float() * torch.randn(p.shape, generator=generator)).sin().sum() for p in params)


def _optimizer(params, in_backward, options, values):
    values = {"lr": 1e-2, "betas": (0.8, 0.95), **values}
    groups = [{"params": params[:2], "lr": 3e-3}, {"params": params[2:], **values}]
    return adamkit.torch.AdamW(groups, weight_decay=0.1, **options, step_in_backward=in_backward)


def _train(in_backward, dtype, options, change, values):
    params = _params(dtype)
    optimizer = _optimizer(params, in_backward, options, {name: _copied(v) for name, v in values.items()})
    for step in range(4):
        _loss(params, step).backward()
        optimizer.step()
        optimizer.zero_grad()
        if step == 1:
            change(optimizer, params)
    return params


def _copied(value):
    return (
        tuple(map(_copied, value)) if isinstance(value, tuple) else value.clone() if torch.is_tensor(value) else value
    )


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize(("dtype", "options"), LAYOUTS)
def test_a_change_between_backwards_is_seen_by_the_next_as_by_step(change, dtype, options):
    how, values = CHANGES[change]
    ours, theirs = (_train(in_backward, dtype, options, how, values) for in_backward in (True, False))
    for index, (a, b) in enumerate(zip(ours, theirs)):
        assert_bitwise_equal(a, b, f"param {index}")


def test_unchanged_groups_step_through_their_plans_and_a_bad_value_set_directly_raises():
    params = _params(torch.bfloat16)
    optimizer = _optimizer(params, True, LAYOUTS[2][1], {})
    full_checks = []
    prepared = optimizer._prepared
    optimizer._prepared = lambda keyed: full_checks.append(len(keyed)) or prepared(keyed)
    _loss(params, 0).backward()
    assert len(full_checks) == len(params)
    full_checks.clear()
    _loss(params, 1).backward()
    assert full_checks == []
    optimizer.param_groups[1]["lr"] = -1.0
    before = [p.detach().clone() for p in params]
    with pytest.raises(ValueError, match=r"param_groups\[1\].*lr"):
        _loss(params, 2).backward()
    for index in (2, 3):
        assert_bitwise_equal(params[index], before[index], f"param {index}")
