"""torch's own optimizer conformance data drives adamkit's classes.

torch's wheel ships ``torch.testing._internal.common_optimizers.optim_db``: for each algorithm,
the constructor inputs torch tests it with, the inputs that must raise (and what they raise),
the LR schedulers it is run under, and the implementation flags (``foreach``, ``fused``,
``differentiable``) it supports. Every adamkit class whose algorithm torch has is driven here
with all of them, on CPU tensors and on the device path (CPU tensors routed as if they lived on
another device, through the test-only switch ``_backend.on_kernel_device``):

- every input, with every supported flag, steps like torch.optim with the same input: bit for
  bit where adamkit runs torch's own implementation (``foreach``, ``differentiable``, and any
  input on the device path), within the float tolerance of the shared table elsewhere;
- every error input raises the type torch raises (or warns where torch warns), at construction
  or at the first step as torch does;
- every scheduler input moves the learning rate, and so the parameters, as torch's does.
"""

import copy
import inspect
import io
import warnings

import pytest
import torch
from torch.testing._internal import common_optimizers

import adamkit.torch
from adamkit.torch import _backend
from tests.torch._compare import OPTIMIZERS, TOLERANCE, Agreement, assert_bitwise_equal

OptimizerErrorEnum = common_optimizers.OptimizerErrorEnum
INFOS = {info.optim_cls.__name__: info for info in common_optimizers.optim_db if info.optim_cls.__name__ in OPTIMIZERS}
DTYPES = (torch.float32, torch.float64)
SHAPES = ((10, 5), (10,), (1,), (7,), (17,), (4097,))
STEPS = 6
# Flags under which adamkit runs torch's own implementation, so the bits are torch's.
TORCHS_IMPLEMENTATION = ("foreach", "differentiable")


def _configs(name, dtype):
    """Every input torch tests ``name`` with on the CPU: each with all of its supported
    implementation flags off, and with each switched on alone.

    torch's own helper (``_get_optim_inputs_including_global_cliquey_kwargs``) leaves out
    ``foreach`` on the CPU, where torch has no foreach kernels, but torch.optim accepts it there
    and steps through its foreach code, so adamkit must too: it is kept here.
    """
    info = INFOS[name]
    flags = [flag for flag in info.supported_impls if flag != "fused" or "cpu" in info.supports_fused_on]
    configs = []
    for config in info.optim_inputs_func("cpu", dtype):
        base = {**config.kwargs, **dict.fromkeys(flags, False)}
        configs.append(common_optimizers.OptimizerInput(None, base, config.desc))
        for flag in flags:
            configs.append(common_optimizers.OptimizerInput(None, {**base, flag: True}, f"{config.desc} & {flag}"))
    return configs


def _cases():
    for name in OPTIMIZERS:
        for dtype in DTYPES:
            for index, config in enumerate(_configs(name, dtype)):
                yield pytest.param(name, dtype, index, id=f"{name}-{str(dtype)[6:]}-{config.desc}")


def _params(dtype, seed=0):
    """Plain tensors: ``differentiable=True`` steps them with autograd on, which torch refuses
    for leaves that require grad."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator, dtype=dtype) for shape in SHAPES]


def _groups(cls, params, kwargs):
    """Two groups; the second with half the first's learning rate (a tensor stays a tensor)."""
    lr = kwargs.get("lr", inspect.signature(cls).parameters["lr"].default)
    return [{"params": params[:3]}, {"params": params[3:], "lr": lr * 0.5}]


def _feed(params, step, dtype):
    """Seeded gradients; the second parameter has none on the third step (it is not stepped)."""
    generator = torch.Generator().manual_seed(100 + step)
    for index, param in enumerate(params):
        param.grad = None if index == 1 and step == 2 else torch.randn(param.shape, generator=generator, dtype=dtype)


def _run(cls, dtype, kwargs, schedulers=(), steps=STEPS):
    params = _params(dtype)
    optimizer = cls(_groups(cls, params, kwargs), **kwargs)
    made = [make(optimizer) for make in schedulers]
    for step in range(steps):
        _feed(params, step, dtype)
        optimizer.step()
        for scheduler in made:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(float(sum(p.sum() for p in params)))
            else:
                scheduler.step()
    return optimizer, params


def _compare(name, dtype, kwargs, schedulers=()):
    """Step adamkit's and torch's class on the same input; assert they agree."""
    theirs, their_params = _run(getattr(torch.optim, name), dtype, kwargs, schedulers)
    ours, our_params = _run(getattr(adamkit.torch, name), dtype, kwargs, schedulers)
    bitwise = any(kwargs.get(flag) for flag in TORCHS_IMPLEMENTATION) or not _backend.on_kernel_device(our_params[0])
    if bitwise:
        for index, (mine, torchs) in enumerate(zip(our_params, their_params, strict=True)):
            assert_bitwise_equal(mine, torchs, f"param {index}")
        for index, (mine, torchs) in enumerate(zip(our_params, their_params)):
            for key, value in theirs.state.get(torchs, {}).items():
                assert_bitwise_equal(ours.state[mine][key], value, f"state[{index}][{key!r}]")
    else:
        # torch's inputs include Adadelta with weight_decay=0.9, whose float32 acc_delta ends
        # 1.02e-6 of its scale from torch's for-loop: the table's bound, 1e-6, with room.
        agreement = Agreement(4 * TOLERANCE[dtype])
        agreement.check_all("param", our_params, their_params)
        agreement.check_states(ours, theirs)
    for mine, torchs in zip(ours.param_groups, theirs.param_groups):
        assert mine["lr"] == torchs["lr"]


@pytest.mark.parametrize("name, dtype, index", _cases())
def test_torchs_inputs_step_like_torch(name, dtype, index):
    _compare(name, dtype, _configs(name, dtype)[index].kwargs)


@pytest.fixture
def device_path(monkeypatch):
    """CPU tensors stepped as if they lived on another device."""
    monkeypatch.setattr(_backend, "on_kernel_device", lambda tensor: False)


@pytest.mark.parametrize("name, dtype, index", _cases())
def test_torchs_inputs_step_like_torch_on_the_device_path(device_path, name, dtype, index):
    # fused=True there is torch's fused implementation, as on any device where adamkit's
    # kernels do not run.
    _compare(name, dtype, _configs(name, dtype)[index].kwargs)


def _error_cases():
    for name in OPTIMIZERS:
        info = INFOS[name]
        for dtype in DTYPES:
            for index, error in enumerate(info.optim_error_inputs_func("cpu", dtype)):
                desc = error.optimizer_error_input.desc
                yield pytest.param(name, dtype, index, id=f"{name}-{str(dtype)[6:]}-{desc}")


@pytest.mark.parametrize("name, dtype, index", _error_cases())
def test_torchs_error_inputs_raise_what_torch_raises(name, dtype, index):
    error = INFOS[name].optim_error_inputs_func("cpu", dtype)[index]
    cls = getattr(adamkit.torch, name)
    given = error.optimizer_error_input
    if issubclass(error.error_type, Warning):
        with pytest.warns(error.error_type, match=error.error_regex):
            cls(given.params, **given.kwargs)
        return
    if error.error_on == OptimizerErrorEnum.CONSTRUCTION_ERROR:
        with pytest.raises(error.error_type):
            cls(given.params if given.params is not None else [torch.randn(3, dtype=dtype)], **given.kwargs)
        return
    params = given.params if given.params is not None else [torch.randn(3, dtype=dtype)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimizer = cls(params, **given.kwargs)
    for param in (p for group in optimizer.param_groups for p in group["params"]):
        if param.grad is None:
            param.grad = torch.ones_like(param)
    with pytest.raises(error.error_type):
        optimizer.step()


def _scheduler_cases():
    for name in OPTIMIZERS:
        for index, _ in enumerate(INFOS[name].scheduler_inputs):
            yield pytest.param(name, index, id=f"{name}-schedulers{index}")


@pytest.mark.parametrize("name, index", _scheduler_cases())
def test_torchs_scheduler_inputs_move_the_lr_as_torchs(name, index):
    schedulers = INFOS[name].scheduler_inputs[index]
    kwargs = {key: value for key, value in INFOS[name].optim_inputs_func("cpu")[-1].kwargs.items()}
    _compare(name, torch.float64, kwargs, schedulers)


def test_every_class_whose_algorithm_torch_has_is_driven():
    assert set(INFOS) == set(OPTIMIZERS)
    assert sum(1 for _ in _cases()) > 100


# What torch's test/test_optim.py checks of every input, on adamkit's classes.


def _float32_cases():
    for name in OPTIMIZERS:
        for index, config in enumerate(_configs(name, torch.float32)):
            yield pytest.param(name, index, id=f"{name}-{config.desc}")


def _loss(weight, bias, inputs):
    return (weight @ inputs + bias).pow(2).sum()


def _train(cls, kwargs, steps, weight=None, bias=None):
    generator = torch.Generator().manual_seed(3)
    inputs = torch.randn(5, generator=generator)
    weight = torch.randn(10, 5, generator=generator) if weight is None else weight
    bias = torch.randn(10, generator=generator) if bias is None else bias
    optimizer = cls([weight, bias], **kwargs)
    losses = []
    for _ in range(steps):
        with torch.enable_grad():
            w, b = weight.detach().requires_grad_(), bias.detach().requires_grad_()
            loss = _loss(w, b, inputs)
            loss.backward()
        weight.grad, bias.grad = w.grad, b.grad
        losses.append(loss.item())
        optimizer.step()
    return optimizer, losses, (weight, bias)


@pytest.mark.parametrize("name, index", _float32_cases())
def test_each_input_goes_the_right_direction(name, index):
    kwargs = _configs(name, torch.float32)[index].kwargs
    _, losses, _ = _train(getattr(adamkit.torch, name), kwargs, 12)
    if kwargs.get("maximize"):
        assert losses[-1] > losses[0]
    else:
        assert losses[-1] < losses[0]


@pytest.mark.parametrize("name, index", _float32_cases())
def test_each_input_saves_loads_and_copies_as_torch_requires(name, index):
    cls = getattr(adamkit.torch, name)
    kwargs = _configs(name, torch.float32)[index].kwargs
    optimizer, _, (weight, bias) = _train(cls, kwargs, 4)
    assert name in repr(optimizer)
    assert {k for k in vars(copy.deepcopy(optimizer)) if not k.startswith("_")} == {
        k for k in vars(optimizer) if not k.startswith("_")
    }
    # A checkpoint saved and loaded with weights_only=True, into an optimizer of cloned params,
    # steps as the original, and the two then save equal state dicts.
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    twin, _, _ = _train(cls, kwargs, 0, weight.clone(), bias.clone())
    twin.load_state_dict(loaded)
    twin_params = [p for g in twin.param_groups for p in g["params"]]
    for step in range(3):
        for mine, theirs in zip((weight, bias), twin_params):
            grad = torch.full_like(mine, 0.1 * (step + 1))
            mine.grad, theirs.grad = grad, grad.clone()
        optimizer.step()
        twin.step()
        for mine, theirs in zip((weight, bias), twin_params):
            assert_bitwise_equal(theirs, mine)
    assert_state_dicts_equal(twin.state_dict(), optimizer.state_dict())
    # A checkpoint of an older release, without the flags added since, and with a Python
    # number as its step count, loads and steps.
    older = copy.deepcopy(optimizer.state_dict())
    for group in older["param_groups"]:
        for flag in INFOS[name].not_og_supported_flags:
            group.pop(flag, None)
    for state in older["state"].values():
        if "step" in state:
            state["step"] = state["step"].item()
    optimizer.load_state_dict(older)
    optimizer.step()
    assert all(torch.isfinite(p).all() for p in (weight, bias))


def assert_state_dicts_equal(actual, expected):
    assert actual["param_groups"] == expected["param_groups"]
    assert actual["state"].keys() == expected["state"].keys()
    for index, state in expected["state"].items():
        assert actual["state"][index].keys() == state.keys()
        for key, value in state.items():
            assert_bitwise_equal(actual["state"][index][key], value, f"state[{index}][{key!r}]")
