"""adamkit.torch.SparseAdam against torch.optim.SparseAdam: trajectories (float64, 60 steps,
several groups, tables with repeated and missing rows, 1-D parameters of every size), torch's
optim_db inputs and error inputs, checkpoints both ways, the signature, and refused input."""

import copy
import functools
import inspect

import pytest
import torch
from torch.testing._internal import common_optimizers

import adamkit.torch
from adamkit.torch import _backend
from tests.torch._compare import Agreement, assert_bitwise_equal, assert_refused, assert_step_refused

SIZES = (1, 7, 17, 4097)
INFO = next(info for info in common_optimizers.optim_db if info.optim_cls is torch.optim.SparseAdam)


def _params(dtype=torch.float64, seed=0):
    """An embedding-like table and one 1-D parameter of each size."""
    generator = torch.Generator().manual_seed(seed)
    shapes = [(11, 5), *((size,) for size in SIZES)]
    return [torch.randn(shape, generator=generator, dtype=dtype) for shape in shapes]


def _groups(params, overrides=({}, {"lr": 0.02, "betas": (0.7, 0.9), "maximize": True})):
    return [{"params": params[:3], **overrides[0]}, {"params": params[3:], **overrides[1]}]


def _sparse_grads(params, step, dtype=torch.float64):
    """Row-sparse gradients with repeated rows, rows never touched (the table's last two), and,
    at every third step, no gradient for the second parameter."""
    generator = torch.Generator().manual_seed(1000 + step)
    grads = []
    for index, param in enumerate(params):
        if index == 1 and step % 3 == 2:
            grads.append(None)
            continue
        rows_available = max(param.shape[0] - 2, 1) if index == 0 else param.shape[0]
        count = min(6, 2 * rows_available)
        rows = torch.randint(rows_available, (count,), generator=generator)
        rows[-1] = rows[0]  # a repeated row
        values = torch.randn(count, *param.shape[1:], generator=generator, dtype=dtype)
        grads.append(torch.sparse_coo_tensor(rows[None], values, param.shape))
    return grads


def _run(cls, kwargs, steps, params=None, groups=_groups):
    params = _params() if params is None else params
    optimizer = cls(groups(params), **kwargs)
    for step in range(steps):
        for param, grad in zip(params, _sparse_grads(params, step)):
            param.grad = grad
        optimizer.step()
    return optimizer, params


KWARGS = dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6)


@functools.cache
def _torchs_60_steps():
    return _run(torch.optim.SparseAdam, KWARGS, 60)


@pytest.mark.parametrize("on_device_path", [False, True])
def test_follows_torchs_sparse_adam_for_60_steps(monkeypatch, on_device_path):
    if on_device_path:
        monkeypatch.setattr(_backend, "on_kernel_device", lambda tensor: False)
    theirs, their_params = _torchs_60_steps()
    ours, our_params = _run(adamkit.torch.SparseAdam, KWARGS, 60)
    agreement = Agreement(1e-12)
    agreement.check_all("param", our_params, their_params)
    for index, (mine, torchs) in enumerate(zip(our_params, their_params)):
        assert ours.state[mine].keys() == theirs.state[torchs].keys() == {"step", "exp_avg", "exp_avg_sq"}
        assert float(ours.state[mine]["step"]) == theirs.state[torchs]["step"]
        for key in ("exp_avg", "exp_avg_sq"):
            agreement.check(f"state[{index}][{key!r}]", ours.state[mine][key], theirs.state[torchs][key])
    # The table's last two rows were never touched.
    assert_bitwise_equal(our_params[0][-2:], _params()[0][-2:], "untouched rows")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("index", range(len(INFO.optim_inputs_func("cpu"))))
def test_torchs_inputs_step_like_torch(index, dtype):
    kwargs = INFO.optim_inputs_func("cpu", dtype)[index].kwargs
    params = [_params(dtype)[0], _params(dtype)[3]]
    runs = []
    for cls in (torch.optim.SparseAdam, adamkit.torch.SparseAdam):
        copies = [p.clone() for p in params]
        optimizer = cls(copies, **kwargs)
        for step in range(6):
            for param, grad in zip(copies, _sparse_grads(copies, step, dtype)):
                param.grad = grad
            optimizer.step()
        runs.append(copies)
    # With a float32 tensor lr, torch's SparseAdam computes its step size as a float32 tensor
    # (lr * sqrt(bc2) / bc1), rounded to float32; adamkit's is a double, as for a float lr.
    tolerance = 1e-12 if dtype is torch.float64 and not torch.is_tensor(kwargs.get("lr")) else 4e-6
    Agreement(tolerance).check_all("param", runs[1], runs[0])


@pytest.mark.parametrize("index", range(len(INFO.optim_error_inputs_func("cpu", torch.float32))))
def test_torchs_error_inputs_raise_what_torch_raises(index):
    error = INFO.optim_error_inputs_func("cpu", torch.float32)[index]
    given = error.optimizer_error_input
    params = given.params if given.params is not None else [torch.randn(3)]
    assert error.error_on == common_optimizers.OptimizerErrorEnum.CONSTRUCTION_ERROR
    expect = pytest.warns if issubclass(error.error_type, Warning) else pytest.raises
    with expect(error.error_type, match=error.error_regex):
        adamkit.torch.SparseAdam(params, **given.kwargs)


def test_checkpoints_load_both_ways_and_step_on_as_torch():
    kwargs = dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6)
    reference, reference_params = _run(torch.optim.SparseAdam, kwargs, 5, _params()[:3])
    ours, our_params = _run(adamkit.torch.SparseAdam, kwargs, 0, [p.clone() for p in reference_params])
    ours.load_state_dict(copy.deepcopy(reference.state_dict()))
    theirs, their_params = _run(torch.optim.SparseAdam, kwargs, 0, [p.clone() for p in reference_params])
    for step in range(5, 10):
        for params in (reference_params, our_params):
            for param, grad in zip(params, _sparse_grads(params, step)):
                param.grad = grad
        reference.step()
        ours.step()
    theirs.load_state_dict(copy.deepcopy(ours.state_dict()))
    for param, other in zip(their_params, our_params):
        param.copy_(other)
    for step in range(10, 15):
        for params in (reference_params, their_params):
            for param, grad in zip(params, _sparse_grads(params, step)):
                param.grad = grad
        reference.step()
        theirs.step()
    Agreement(1e-12).check_all("param", their_params, reference_params)
    assert [group["lr"] for group in ours.param_groups] == [0.05, 0.02]
    assert all(type(state["step"]) is int for state in ours.state_dict()["state"].values())


def test_signature_and_defaults_are_torchs():
    theirs = inspect.signature(torch.optim.SparseAdam).parameters
    ours = inspect.signature(adamkit.torch.SparseAdam).parameters
    assert list(ours)[: len(theirs)] == list(theirs)
    for name, parameter in theirs.items():
        assert (ours[name].default, ours[name].kind) == (parameter.default, parameter.kind), name
    assert list(ours)[len(theirs):] == ["nonfinite_grads", "step_in_backward", "max_grad_norm"]
    made = adamkit.torch.SparseAdam([torch.zeros(2)]).defaults
    for key, value in torch.optim.SparseAdam([torch.zeros(2)]).defaults.items():
        assert made[key] == value


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(lr=0.0), "Invalid learning rate: 0.0"),
        (dict(lr=torch.tensor([0.1, 0.2])), "Tensor lr must be 1-element"),
        (dict(eps=0.0), "Invalid epsilon value: 0.0"),
        (dict(betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    ],
)
def test_bad_hyperparameters_raise_torchs_value_error(kwargs, words):
    for cls in (torch.optim.SparseAdam, adamkit.torch.SparseAdam):
        with pytest.raises(ValueError, match=words):
            cls([torch.zeros(2)], **kwargs)


def test_a_dense_gradient_raises_torchs_runtime_error_and_changes_nothing():
    table, other = torch.zeros(5, 3), torch.zeros(4)
    optimizer = adamkit.torch.SparseAdam([{"params": [other]}, {"params": [table]}], lr=0.1)
    other.grad = torch.sparse_coo_tensor(torch.tensor([[1]]), torch.ones(1), (4,))
    table.grad = torch.ones(5, 3)
    assert_step_refused(optimizer, RuntimeError, ["SparseAdam does not support dense gradients"])


@pytest.mark.parametrize("key, value", [("weight_decay", 0.1), ("amsgrad", True), ("eps_hat", False), ("sparse_mode", "dense")])
def test_what_sparse_adam_fixes_cannot_be_set_in_a_group(key, value):
    optimizer = adamkit.torch.SparseAdam([torch.zeros(2)])
    assert_refused(optimizer, lambda: optimizer.add_param_group({"params": [torch.zeros(3)], key: value}), ValueError, [key])
