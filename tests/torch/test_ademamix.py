"""adamkit.torch.AdEMAMix: its signature, its checks, its state (the authors' keys), sparse
gradients refused as pytorch_optimizer refuses them, checkpoints that resume, and the torch
front end against the rule with warmup, on the CPU and on the device path."""

import copy
import inspect

import numpy as np
import pytest
import torch

import adamkit.torch
from adamkit import rules
from adamkit.torch import _backend
from tests.torch._compare import Agreement, assert_bitwise_equal, assert_refused, assert_step_refused

HYPER = dict(lr=1e-2, betas=(0.8, 0.99, 0.999), alpha=4.0, t_alpha_beta3=6, weight_decay=0.1)


def test_signature_is_the_papers_with_adamkits_options():
    parameters = inspect.signature(adamkit.torch.AdEMAMix).parameters
    positional = ["params", "lr", "betas", "alpha", "t_alpha_beta3", "eps", "weight_decay"]
    assert [name for name, p in parameters.items() if p.kind is p.POSITIONAL_OR_KEYWORD] == positional
    keyword_only = [name for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY]
    assert keyword_only == [
        "decoupled_weight_decay", "maximize", "cautious", "nonfinite_grads", "state_dtype", "kahan_summation",
        "step_in_backward", "max_grad_norm",
    ]  # fmt: skip
    defaults = {name: p.default for name, p in parameters.items() if name != "params"}
    assert defaults == dict(
        lr=1e-3, betas=(0.9, 0.999, 0.9999), alpha=5.0, t_alpha_beta3=None, eps=1e-8, weight_decay=0.0,
        decoupled_weight_decay=True, maximize=False, cautious=False, nonfinite_grads="propagate", state_dtype=None,
        kahan_summation=None, step_in_backward=False, max_grad_norm=None,
    )


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(betas=(0.9, 0.999)), ValueError, ["betas", "triple"]),
        (dict(betas=(0.9, 0.999, 1.0)), ValueError, ["betas[2]"]),
        (dict(alpha=-1.0), ValueError, ["alpha"]),
        (dict(t_alpha_beta3=0), ValueError, ["t_alpha_beta3"]),
        (dict(t_alpha_beta3=10, betas=(0.0, 0.999, 0.9999)), ValueError, ["betas[0]", "log"]),
        (dict(decoupled_weight_decay=1), TypeError, ["decoupled_weight_decay"]),
    ],
)
def test_bad_hyperparameters_raise_naming_them(kwargs, error, words):
    with pytest.raises(error) as raised:
        adamkit.torch.AdEMAMix([torch.zeros(3)], **kwargs)
    for word in words:
        assert word in str(raised.value)


def test_a_bad_group_changes_nothing():
    optimizer = adamkit.torch.AdEMAMix([torch.zeros(3)])
    group = {"params": [torch.zeros(2)], "t_alpha_beta3": -5.0}
    assert_refused(optimizer, lambda: optimizer.add_param_group(group), ValueError, ["t_alpha_beta3"])


def test_sparse_gradients_are_refused():
    table = torch.zeros(5, 3)
    optimizer = adamkit.torch.AdEMAMix([table])
    table.grad = torch.sparse_coo_tensor(torch.tensor([[1]]), torch.ones(1, 3), (5, 3))
    assert_step_refused(optimizer, TypeError, ["AdEMAMix does not support sparse gradients"])


def _grads(step, shapes):
    generator = torch.Generator().manual_seed(step)
    return [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in shapes]


@pytest.mark.parametrize("on_device_path", [False, True])
def test_torch_front_end_follows_the_rule_with_warmup_and_two_groups(monkeypatch, on_device_path):
    if on_device_path:
        monkeypatch.setattr(_backend, "on_kernel_device", lambda tensor: False)
    shapes = [(1,), (7,), (17,), (4097,)]
    initial = _grads(100, shapes)
    params = [value.clone() for value in initial]
    second = dict(lr=3e-3, decoupled_weight_decay=False, maximize=True, t_alpha_beta3=None)
    optimizer = adamkit.torch.AdEMAMix([{"params": params[:2]}, {"params": params[2:], **second}], **HYPER)
    for step in range(12):
        for param, grad in zip(params, _grads(step, shapes)):
            param.grad = grad
        optimizer.step()
    for index, value in enumerate(initial):
        hyper = {**HYPER, **(second if index >= 2 else {})}
        arrays = [value.numpy(), *(np.zeros(value.shape) for _ in range(3))]
        for step in range(12):
            state = rules.ademamix(*arrays[:1], _grads(step, shapes)[index].numpy(), *arrays[1:], step=step + 1, **hyper)
            arrays = list(state)
        Agreement(1e-12).check(f"param[{index}]", params[index], torch.from_numpy(arrays[0]))
        for key, expected in zip(("exp_avg_fast", "exp_avg_slow", "exp_avg_sq"), arrays[1:]):
            Agreement(1e-12).check(f"{key}[{index}]", optimizer.state[params[index]][key], torch.from_numpy(expected))
        assert float(optimizer.state[params[index]]["step"]) == 12


@pytest.mark.parametrize("state_dtype", [None, "int8", "bf16"])
def test_a_checkpoint_resumes_to_the_same_bits(state_dtype):
    dtype = torch.float64 if state_dtype is None else torch.float32
    shapes = [(70, 70), (7,)]
    runs = []
    for resume in (False, True):
        params = [g.to(dtype) for g in _grads(100, shapes)]
        optimizer = adamkit.torch.AdEMAMix(params, state_dtype=state_dtype, **HYPER)
        for step in range(6):
            if resume and step == 3:
                saved = copy.deepcopy(optimizer.state_dict())
                optimizer = adamkit.torch.AdEMAMix(params, state_dtype=state_dtype, **HYPER)
                optimizer.load_state_dict(saved)
            for param, grad in zip(params, _grads(step, shapes)):
                param.grad = grad.to(dtype)
            optimizer.step()
        runs.append((params, optimizer))
    (straight, first), (resumed, second) = runs
    for index, (a, b) in enumerate(zip(resumed, straight)):
        assert_bitwise_equal(a, b, f"param[{index}]")
    keys = {"step", "exp_avg_fast", "exp_avg_slow", "exp_avg_sq"}
    exported = second.export_torch_state_dict()["state"]
    assert all(set(state) == keys for state in exported.values())
