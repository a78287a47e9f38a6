"""AdamWScheduleFree in both front ends against the authors' ``schedulefree.AdamWScheduleFree``:
the trajectories with eval()/train() switches mid-run, the modes (a new optimizer is in eval
mode and cannot step), checkpoints loaded both ways, and what the class refuses.

The shared tests (``tests/cases.py``) cover the rule in every front end; here the optimizers
start in eval mode, as ``schedulefree``'s do (this module's fixture replaces the conftest's).
"""

import copy

import numpy as np
import pytest
import torch

import adamkit.numpy
import adamkit.torch
from adamkit import rules
from tests.cases import GROUP_OF_SIZE, gradients, initial_params

schedulefree = pytest.importorskip("schedulefree")

STEPS = 40
SWITCHES = (15, 30)
HYPER = {"lr": 1e-2, "betas": (0.8, 0.99), "weight_decay": 0.1, "warmup_steps": 5, "r": 1.0, "weight_lr_power": 1.5}
SECOND = {"lr": 3e-3, "eps": 1e-3, "weight_decay": 0.0}
RELATIVE = {torch.float64: 1e-12, torch.float32: 1e-5}


@pytest.fixture(autouse=True)
def optimizers_with_modes_start_in_train_mode():
    """Replaces the conftest's fixture: here they start in eval mode, as schedulefree's."""


def split(values):
    return [[v for v, g in zip(values, GROUP_OF_SIZE) if g == group] for group in (0, 1)]


def torch_optimizer(cls, tensors, **extra):
    first, second = split(tensors)
    return cls([{"params": first}, {"params": second, **SECOND}], **HYPER, **extra)


def assert_close(actual, expected, relative, what):
    error = (actual - expected).abs().max().item()
    assert error <= relative * expected.abs().max().item(), f"{what}: max error {error:.3g}"


def run(optimizer, tensors, grads, dtype, at=()):
    """Step through ``grads``; return the parameters at x after each step of ``at``."""
    optimizer.train()
    seen = []
    for step, step_grads in enumerate(grads, start=1):
        for tensor, grad in zip(tensors, step_grads):
            tensor.grad = torch.tensor(grad, dtype=dtype)
        optimizer.step()
        if step in at:
            optimizer.eval()
            seen.append([t.detach().clone() for t in tensors])
            optimizer.train()
    return seen


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_both_front_ends_follow_schedulefree_through_eval_and_train(dtype):
    params = initial_params("float64")
    grads = gradients("float64", STEPS)
    ours = [torch.tensor(p, dtype=dtype, requires_grad=True) for p in params]
    theirs = [torch.tensor(p, dtype=dtype, requires_grad=True) for p in params]
    arrays = [np.array(p, dtype=str(dtype).removeprefix("torch.")) for p in params]
    optimizer = torch_optimizer(adamkit.torch.AdamWScheduleFree, ours)
    reference = torch_optimizer(schedulefree.AdamWScheduleFree, theirs)
    first, second = split(arrays)
    numpy_optimizer = adamkit.numpy.AdamWScheduleFree([{"params": first}, {"params": second, **SECOND}], **HYPER)
    at = (*SWITCHES, STEPS)
    expected = run(reference, theirs, grads, dtype, at)
    actual = run(optimizer, ours, grads, dtype, at)
    numpy_optimizer.train()
    numpy_x = []
    order = [a for group in split(range(len(arrays))) for a in group]
    for step, step_grads in enumerate(grads, start=1):
        numpy_optimizer.step([np.asarray(step_grads[i], dtype=arrays[0].dtype) for i in order])
        if step in at:
            numpy_optimizer.eval()
            numpy_x.append([torch.from_numpy(a.copy()) for a in arrays])
            numpy_optimizer.train()
    for step, mine, from_numpy, wanted in zip(at, actual, numpy_x, expected):
        for size, a, n, e in zip((1, 7, 17, 4097), mine, from_numpy, wanted):
            assert_close(a.detach(), e, RELATIVE[dtype], f"torch x, size {size}, step {step}")
            assert_close(n, e, RELATIVE[dtype], f"numpy x, size {size}, step {step}")
    for mine, wanted in zip(optimizer.param_groups, reference.param_groups):
        for key in ("k", "lr_max", "weight_sum", "scheduled_lr", "train_mode"):
            assert mine[key] == pytest.approx(wanted[key], rel=1e-15), key
    for a, e in zip(ours, theirs):
        for key in ("z", "exp_avg_sq"):
            assert_close(optimizer.state[a][key], reference.state[e][key], RELATIVE[dtype], key)


@pytest.mark.parametrize("front_end", ["torch", "numpy"])
def test_a_new_optimizer_is_in_eval_mode_and_step_raises_there(front_end):
    if front_end == "torch":
        param = torch.nn.Parameter(torch.ones(3))
        param.grad = torch.ones(3)
        optimizer = adamkit.torch.AdamWScheduleFree([param])
        step = optimizer.step
    else:
        param = np.ones(3)
        optimizer = adamkit.numpy.AdamWScheduleFree([param])
        step = lambda: optimizer.step([np.ones(3)])  # noqa: E731
    assert optimizer.param_groups[0]["train_mode"] is False
    with pytest.raises(RuntimeError, match="not in train mode"):
        step()
    assert optimizer.param_groups[0]["k"] == 0 and not optimizer.state[0 if front_end == "numpy" else param]
    optimizer.train()
    step()
    optimizer.eval()
    with pytest.raises(RuntimeError, match="not in train mode"):
        step()
    assert optimizer.param_groups[0]["k"] == 1


def test_a_group_without_gradients_still_counts_the_step_as_schedulefree():
    params = [torch.nn.Parameter(torch.ones(3)) for _ in range(4)]
    optimizers = [
        cls([{"params": params[2 * i : 2 * i + 2]}])
        for i, cls in enumerate((adamkit.torch.AdamWScheduleFree, schedulefree.AdamWScheduleFree))
    ]
    for optimizer in optimizers:
        optimizer.add_param_group({"params": [torch.nn.Parameter(torch.ones(2))]})
        optimizer.train()
        for param in optimizer.param_groups[0]["params"]:
            param.grad = torch.ones(3)
        optimizer.step()
        optimizer.step()
    assert [g["k"] for g in optimizers[0].param_groups] == [g["k"] for g in optimizers[1].param_groups]
    assert [g["weight_sum"] for g in optimizers[0].param_groups] == [
        g["weight_sum"] for g in optimizers[1].param_groups
    ]


@pytest.mark.parametrize("saver, loader", [("ours", "theirs"), ("theirs", "ours"), ("ours", "ours")])
def test_a_checkpoint_loads_both_ways_and_the_run_continues(saver, loader):
    classes = {"ours": adamkit.torch.AdamWScheduleFree, "theirs": schedulefree.AdamWScheduleFree}
    params = initial_params("float64")
    grads = gradients("float64", 24)
    whole = [torch.tensor(p, requires_grad=True) for p in params]
    uninterrupted = torch_optimizer(classes[loader], whole)
    run(uninterrupted, whole, grads, torch.float64, at=(12,))  # to x and back, as the saving run
    uninterrupted.eval()
    saving_params = [torch.tensor(p, requires_grad=True) for p in params]
    saving = torch_optimizer(classes[saver], saving_params)
    run(saving, saving_params, grads[:12], torch.float64)
    saving.eval()  # checkpoints are saved at x, as schedulefree asks
    saved = copy.deepcopy(saving.state_dict())
    resumed_params = [p.detach().clone().requires_grad_() for p in saving_params]
    resumed = torch_optimizer(classes[loader], resumed_params)
    resumed.load_state_dict(saved)
    run(resumed, resumed_params, grads[12:], torch.float64)
    resumed.eval()
    for size, a, e in zip((1, 7, 17, 4097), resumed_params, whole):
        if saver == loader:
            assert torch.equal(a, e), f"size {size}: the resumed run is not bit for bit the uninterrupted one"
        else:
            assert_close(a.detach(), e.detach(), 1e-12, f"size {size}")
    assert [g["k"] for g in resumed.param_groups] == [24, 24]


def test_what_the_class_refuses():
    param = torch.nn.Parameter(torch.ones(8))
    for state_dtype in ("int8", "bf16"):
        # With the reason: z is an iterate the weights follow, not a moment.
        with pytest.raises(
            ValueError, match="AdamWScheduleFree takes None or 'fp32': z is not a moment but the iterate"
        ):
            adamkit.torch.AdamWScheduleFree([param], state_dtype=state_dtype)
        with pytest.raises(ValueError, match="AdamWScheduleFree takes None: z is not a moment"):
            adamkit.numpy.AdamWScheduleFree([np.ones(8, np.float32)], state_dtype=state_dtype)
    for flag in ("foreach", "fused", "capturable", "differentiable"):
        with pytest.raises(TypeError, match=flag):
            adamkit.torch.AdamWScheduleFree([param], **{flag: False})
    with pytest.raises(ValueError, match="warmup_steps"):
        adamkit.torch.AdamWScheduleFree([param], warmup_steps=2.5)
    embedding = torch.nn.Embedding(5, 3, sparse=True)
    optimizer = adamkit.torch.AdamWScheduleFree(embedding.parameters())
    optimizer.train()
    embedding(torch.tensor([1, 3])).sum().backward()
    before = embedding.weight.detach().clone()
    with pytest.raises(TypeError, match="sparse"):
        optimizer.step()
    assert torch.equal(embedding.weight, before)


def test_bfloat16_parameters_step_through_the_kernels_as_the_rule_rounded_once_per_step():
    """bfloat16 CPU parameters with float32 state, without Kahan summation: the rule in float32,
    each new parameter rounded to bfloat16 once, gives the same bits (``z`` starting as the
    bfloat16 parameter)."""
    rule, spec = rules.schedule_free_adamw, adamkit.torch.AdamWScheduleFree.spec
    starts = [torch.from_numpy(p).to(torch.bfloat16) for p in initial_params("float32")]
    params = [torch.nn.Parameter(p.clone()) for p in starts]
    optimizer = torch_optimizer(adamkit.torch.AdamWScheduleFree, params, state_dtype="fp32", kahan_summation=False)
    optimizer.train()
    groups = [{**spec.defaults, **HYPER, **spec.group_state}, {**spec.defaults, **HYPER, **SECOND, **spec.group_state}]
    expected = [{"param": p.float().numpy(), "z": None, "exp_avg_sq": np.zeros(p.shape, np.float32)} for p in starts]
    for step_grads in gradients("float32", 8):
        grads = [torch.from_numpy(g).to(torch.bfloat16) for g in step_grads]
        for param, grad in zip(params, grads):
            param.grad = grad
        optimizer.step()
        counts = [spec.group_count(group) for group in groups]
        for index, (state, grad) in enumerate(zip(expected, grads)):
            group = groups[GROUP_OF_SIZE[index]]
            new = rule(
                state["param"],
                grad.float().numpy(),
                state["z"],
                state["exp_avg_sq"],
                step=counts[GROUP_OF_SIZE[index]],
                **spec.rule_arguments(group),
            )
            rounded = torch.from_numpy(new.param).to(torch.bfloat16).float().numpy()
            state.update(param=rounded, z=new.z, exp_avg_sq=new.exp_avg_sq)
    for param, state in zip(params, expected):
        assert param.dtype == torch.bfloat16
        np.testing.assert_array_equal(param.detach().float().numpy(), state["param"])
        for key in ("z", "exp_avg_sq"):
            assert optimizer.state[param][key].dtype == torch.float32
            np.testing.assert_array_equal(optimizer.state[param][key].numpy(), state[key], err_msg=key)
