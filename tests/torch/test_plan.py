"""A group's cached kernel call (adamkit.torch._cached_plan) is used on steady steps, and whatever a
user changes between steps sends the step back to the full path: the results always equal the
reference backend's bits, step for step."""

import pytest
import torch

import adamkit.torch
from adamkit.kernels import native
from adamkit.kernels.quantized import coded_slot, compact_keys
from adamkit.torch._cached_plan import GroupPlan

pytestmark = pytest.mark.skipif(not native.available(), reason="the C kernels were not built")

SHAPES = [(1,), (7,), (17, 3), (4097,)]
STEPS = 6


def _params():
    generator = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in SHAPES]


def _grads(step):
    generator = torch.Generator().manual_seed(100 + step)
    return [torch.randn(shape, generator=generator) for shape in SHAPES]


def _make(params, fused, name="Adam"):
    groups = [
        {"params": params[:2], "weight_decay": 0.1, "amsgrad": True},
        {"params": params[2:], "lr": 0.05},
    ]
    if name == "Adam":
        return adamkit.torch.Adam(groups, lr=0.01, betas=(0.8, 0.99), maximize=True, fused=fused)
    return adamkit.torch.SGD(groups, lr=0.01, momentum=0.9, nesterov=True, fused=fused)


def _nothing(optimizer, params, step):
    """No change: the steady state, where every step after the first is planned."""


def _drop_a_grad(optimizer, params, step):
    if step == 3:
        params[1].grad = None


def _replace_param_data(optimizer, params, step):
    if step == 3:
        params[2].data = params[2].data.clone()


def _restride_param_data(optimizer, params, step):
    if step == 3:  # the same memory, read in another order: same pointer, not contiguous
        params[2].data = params[2].data.as_strided((17, 3), (1, 17))


def _replace_a_state_tensor(optimizer, params, step):
    if step == 3:
        state = optimizer.state[params[3]]
        key = next(k for k in state if k != "step")
        state[key] = state[key].clone()


def _reset_a_state_dict(optimizer, params, step):
    if step == 3:
        optimizer.state[params[0]] = {}


def _delete_a_state_dict(optimizer, params, step):
    if step == 3:
        del optimizer.state[params[3]]


def _delete_a_state_key(optimizer, params, step):
    if step == 3:
        state = optimizer.state[params[1]]
        key = next(k for k in state if k != "step")
        slot = coded_slot(key)
        for name in compact_keys(slot) if slot else (key,):  # 8-bit codes go with their scales (one alone is refused)
            del state[name]


def _replace_a_step_counter(optimizer, params, step):
    if step == 3:
        optimizer.state[params[2]]["step"] = torch.tensor(7.0)


def _toggle_amsgrad(optimizer, params, step):
    if "amsgrad" in optimizer.param_groups[1] and step == 3:
        optimizer.param_groups[1]["amsgrad"] = True


def _non_contiguous_grad(optimizer, params, step):
    if step == 3:
        grad = params[2].grad
        params[2].grad = grad.t().contiguous().t()


def _grow_a_group(optimizer, params, step):
    if step == 3:
        extra = torch.nn.Parameter(torch.linspace(-1, 1, 5))
        extra.grad = torch.linspace(1, 2, 5)
        optimizer.param_groups[0]["params"].append(extra)


def _reload_state(optimizer, params, step):
    if step == 3:
        optimizer.load_state_dict(optimizer.state_dict())


def _change_lr(optimizer, params, step):
    for group in optimizer.param_groups:
        group["lr"] *= 0.5


CHANGES = [
    _nothing,
    _drop_a_grad,
    _replace_param_data,
    _restride_param_data,
    _replace_a_state_tensor,
    _reset_a_state_dict,
    _delete_a_state_dict,
    _delete_a_state_key,
    _replace_a_step_counter,
    _toggle_amsgrad,
    _non_contiguous_grad,
    _grow_a_group,
    _reload_state,
    _change_lr,
]


def _run(fused, change, name):
    params = _params()
    optimizer = _make(params, fused, name)
    for step in range(STEPS):
        for param, grad in zip(params, _grads(step)):
            param.grad = grad
        change(optimizer, params, step)
        optimizer.step()
    return [p.detach() for group in optimizer.param_groups for p in group["params"]], optimizer


@pytest.fixture
def planned_steps(monkeypatch):
    calls = []
    original = GroupPlan.step

    def counting(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GroupPlan, "step", counting)
    return calls


@pytest.mark.parametrize("name", ["Adam", "SGD"])
@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__.strip("_"))
def test_planned_steps_equal_the_reference_backend_whatever_changes(change, name, planned_steps):
    planned, planned_optimizer = _run(None, change, name)
    assert planned_steps, "no step went through a plan"
    reference, reference_optimizer = _run(False, change, name)
    for a, b in zip(planned, reference, strict=True):
        assert torch.equal(a, b)
    planned_states = [planned_optimizer.state[p] for group in planned_optimizer.param_groups for p in group["params"]]
    reference_states = [
        reference_optimizer.state[p] for group in reference_optimizer.param_groups for p in group["params"]
    ]
    for a, b in zip(planned_states, reference_states, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key


def _stepped_three_times():
    params = _params()
    optimizer = _make(params, None)
    for step in range(3):
        for param, grad in zip(params, _grads(step)):
            param.grad = grad
        optimizer.step()
    return params, optimizer


def _spoil_a_gradient(params, optimizer):
    params[3].grad.data = torch.zeros(5)  # gets around torch's grad setter, which checks sizes


def _spoil_a_hyperparameter(params, optimizer):
    optimizer.param_groups[1]["lr"] = -1.0


@pytest.mark.parametrize(
    ("spoil", "words"),
    [
        (_spoil_a_gradient, r"param_groups\[1\]\['params'\]\[1\]"),
        (_spoil_a_hyperparameter, r"param_groups\[1\]: Invalid lr: -1.0"),
    ],
    ids=["gradient", "hyperparameter"],
)
def test_bad_input_after_planned_steps_raises_before_any_group_steps(spoil, words):
    params, optimizer = _stepped_three_times()
    spoil(params, optimizer)
    before = [p.detach().clone() for p in params]
    state_before = {k: v.clone() for k, v in optimizer.state[params[0]].items()}
    with pytest.raises(ValueError, match=words):
        optimizer.step()
    for a, b in zip(params, before):
        assert torch.equal(a, b)
    for key, value in optimizer.state[params[0]].items():
        assert torch.equal(value, state_before[key])


COMPACT_SHAPES = [(7,), (4100,), (17, 3), (70, 80)]  # each group: float32 state and compact state


def _compact_run(state_dtype, change):
    generator = torch.Generator().manual_seed(5)
    params = [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in COMPACT_SHAPES]
    optimizer = adamkit.torch.AdamW(
        [{"params": params[:2], "weight_decay": 0.1, "amsgrad": True}, {"params": params[2:], "lr": 3e-3}],
        lr=1e-2, betas=(0.8, 0.99), weight_decay=0.05, maximize=True, state_dtype=state_dtype,
    )
    for step in range(STEPS):
        for param in params:
            param.grad = torch.randn(param.shape, generator=torch.Generator().manual_seed(step * 10 + param.numel()))
        change(optimizer, params, step)
        optimizer.step()
    return [p for group in optimizer.param_groups for p in group["params"]], optimizer


@pytest.mark.parametrize("state_dtype", ["int8", "bf16"])
@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__.strip("_"))
def test_planned_compact_state_equals_the_full_path_whatever_changes(change, state_dtype, planned_steps, monkeypatch):
    """Groups holding 8-bit or bfloat16 state beside float32 state take the cached step too, and
    end as the full (validating) path ends, which the quantisation tests check against the codec
    and the rules: the same bits, or the same error (deleting a compact state key, or enabling
    amsgrad after 8-bit steps, raises KeyError on both, as in torch.optim)."""
    outcomes = []
    for plans in (True, False):
        if not plans:
            monkeypatch.setattr(GroupPlan, "build", classmethod(lambda cls, *args: None))
        try:
            outcomes.append(_compact_run(state_dtype, change))
        except KeyError as error:
            outcomes.append(error)
    planned, full = outcomes
    if isinstance(full, KeyError):
        assert isinstance(planned, KeyError) and planned.args == full.args
        return
    assert planned_steps, "no step went through a plan"
    (planned_params, planned_optimizer), (full_params, full_optimizer) = planned, full
    largest = max(planned_params, key=torch.Tensor.numel)  # 70x80: its state is compact throughout
    assert "exp_avg_codes" in planned_optimizer.state[largest] or planned_optimizer.state[largest]["exp_avg"].dtype != torch.float32
    for a, b in zip(planned_params, full_params, strict=True):
        assert torch.equal(a, b)
        state, twin = planned_optimizer.state[a], full_optimizer.state[b]
        assert state.keys() == twin.keys()
        for key in state:
            assert torch.equal(state[key], twin[key]), key
