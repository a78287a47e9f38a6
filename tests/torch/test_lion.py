"""adamkit.torch.Lion, which torch.optim lacks, against ``lion_pytorch.Lion`` (the reference
package whose signature and state layout it takes): trajectories on the CPU kernels and on the
device path, checkpoints loading both ways, and its refusal of torch's implementation flags."""

import copy

import pytest
import torch

import adamkit.torch
from adamkit.torch import _backend
from adamkit.torch import _multi_tensor as multi_tensor
from tests.cases import gradients, initial_params
from tests.torch._compare import TOLERANCE, Agreement, make_params, set_grads

lion_pytorch = pytest.importorskip("lion_pytorch")

GROUP = dict(lr=1e-2, betas=(0.8, 0.95), weight_decay=0.1)


def _groups(params):
    return [{"params": params[:2]}, {"params": params[2:], "lr": 3e-3, "betas": (0.95, 0.98)}]


def _run(cls, dtype, steps=8, optimizer=None, params=None):
    params = params or make_params(initial_params(dtype))
    optimizer = optimizer or cls(_groups(params), **GROUP)
    for step_grads in gradients(dtype, steps=steps):
        set_grads(params, step_grads)
        optimizer.step()
    return params, optimizer


def _check(agreement, ours, theirs):
    (our_params, our_optimizer), (their_params, their_optimizer) = ours, theirs
    for index, (mine, reference) in enumerate(zip(our_params, their_params)):
        agreement.check(f"param {index}", mine.detach(), reference.detach())
        for optimizer, param in ((our_optimizer, mine), (their_optimizer, reference)):
            # adamkit also counts the steps (the seed of bfloat16 state's rounding), which
            # lion_pytorch neither saves nor reads.
            keys = {"exp_avg", "step"} if isinstance(optimizer, adamkit.torch.Lion) else {"exp_avg"}
            assert optimizer.state[param].keys() - {"step"} == {"exp_avg"} and keys <= optimizer.state[param].keys()
        agreement.check(f"exp_avg {index}", our_optimizer.state[mine]["exp_avg"], their_optimizer.state[reference]["exp_avg"])


@pytest.mark.parametrize("device_path", [False, True], ids=["kernels", "device-path"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_follows_lion_pytorch(dtype, device_path, monkeypatch):
    """Off the CPU (here CPU tensors through the test-only switch) Lion takes adamkit's
    multi-tensor path by itself: torch.optim has no implementation to hand it to."""
    calls = []
    if device_path:
        original = multi_tensor.update
        monkeypatch.setattr(_backend, "on_kernel_device", lambda tensor: False)
        monkeypatch.setattr(multi_tensor, "update", lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs))
    ours = _run(adamkit.torch.Lion, dtype)
    assert bool(calls) == device_path
    _check(Agreement(TOLERANCE[getattr(torch, dtype)]), ours, _run(lion_pytorch.Lion, dtype))


@pytest.mark.parametrize("direction", ["from lion_pytorch", "to lion_pytorch"])
def test_checkpoints_load_both_ways_with_lion_pytorch(direction):
    """A checkpoint after 3 steps of one loads into the other, which then steps as the first
    would have: the same state keys and group keys (lr, betas, weight_decay)."""
    source, target = (lion_pytorch.Lion, adamkit.torch.Lion)
    if direction == "to lion_pytorch":
        source, target = target, source
    _, saved = _run(source, "float64", steps=3)
    params = make_params(initial_params("float64"))
    for param, value in zip(params, saved.param_groups[0]["params"] + saved.param_groups[1]["params"], strict=True):
        param.data.copy_(value.detach())
    resumed = target(_groups(params), **GROUP)
    resumed.load_state_dict(copy.deepcopy(saved.state_dict()))  # torch's load keeps the tensors
    saved_params = saved.param_groups[0]["params"] + saved.param_groups[1]["params"]
    _check(Agreement(1e-12), _run(None, "float64", optimizer=resumed, params=params), _run(None, "float64", optimizer=saved, params=saved_params))


@pytest.mark.parametrize("flag", ["foreach", "fused", "capturable", "differentiable", "eps"])
def test_arguments_lion_does_not_have_are_refused(flag):
    with pytest.raises(TypeError, match=flag):
        adamkit.torch.Lion([torch.nn.Parameter(torch.ones(2))], **{flag: True})


@pytest.mark.parametrize(
    ("argument", "value", "error"),
    [("lr", -1e-3, ValueError), ("betas", (0.9, 1.0), ValueError), ("weight_decay", -0.1, ValueError), ("maximize", 1, TypeError), ("decoupled_weight_decay", None, TypeError)],
)
def test_bad_hyperparameters_name_argument_and_value(argument, value, error):
    with pytest.raises(error, match=argument if argument != "betas" else "beta"):
        adamkit.torch.Lion([torch.nn.Parameter(torch.ones(2))], **{argument: value})


@pytest.mark.parametrize("state_dtype", ["int8", "bf16"])
def test_compact_state_exports_to_lion_pytorch_and_loads_back(state_dtype):
    """Compact ``exp_avg`` (a large parameter; the small one keeps float32) exports as the float32
    state lion_pytorch steps, and loads back compact, decoding to the same values."""
    params = [torch.nn.Parameter(torch.randn(64, 128)), torch.nn.Parameter(torch.randn(10))]
    optimizer = adamkit.torch.Lion(params, lr=1e-3, weight_decay=0.1, state_dtype=state_dtype)
    for seed in range(2):
        set_grads(params, [torch.randn(p.shape, generator=torch.Generator().manual_seed(seed)) for p in params])
        optimizer.step()
    big, small = (optimizer.state[p] for p in params)
    if state_dtype == "int8":
        assert "exp_avg" not in big and big["exp_avg_codes"].dtype == torch.int8
    else:
        assert big["exp_avg"].dtype == torch.bfloat16
    assert small["exp_avg"].dtype == torch.float32
    exported = optimizer.export_torch_state_dict()
    reference = lion_pytorch.Lion(params, lr=1e-3, weight_decay=0.1)
    reference.load_state_dict(exported)
    decoded = reference.state[params[0]]["exp_avg"]
    assert decoded.dtype == torch.float32 and decoded.abs().max() > 0
    again = adamkit.torch.Lion(params, lr=1e-3, weight_decay=0.1, state_dtype=state_dtype)
    again.load_state_dict(copy.deepcopy(reference.state_dict()))
    assert torch.equal(again.export_torch_state_dict()["state"][0]["exp_avg"], decoded)
