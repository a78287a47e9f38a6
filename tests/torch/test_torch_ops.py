"""Tensors the C kernels cannot reach (GPUs and other devices) are stepped by the same rules
run with torch operations on their own device. There is no GPU here, so the tests route CPU
tensors through that path and compare it with the reference backend, and run it on the
``meta`` device, which has no data but checks that nothing leaves the device.

The comparison is to the tolerance of the torch.optim agreement tests, not bitwise: torch's
vectorised square root is not correctly rounded (on 4097 random float64 values, 63 differ by
one ulp from IEEE ``sqrt``), so even the same operations in the same order differ in the last
bit. Every other operation the rules use matches NumPy's bits."""

import pytest
import torch

import adamkit.torch
from adamkit.specs import SCALAR_STATE_KEYS
from adamkit.torch import _backend, _torch_step
from tests.cases import NATIVE_CASES as CASES, DTYPES, gradients, initial_params, param_groups
from tests.torch._compare import NATIVE_OPTIMIZERS as OPTIMIZERS, RICH, TOLERANCE, Agreement


def _run(case, dtype, fused):
    params = [torch.nn.Parameter(torch.from_numpy(p)) for p in initial_params(dtype)]
    options = {} if fused is None else {"fused": fused}
    optimizer = getattr(adamkit.torch, case.optimizer)(param_groups(case, params), **case.hyper, **options)
    for grads in gradients(dtype, steps=10):
        for param, grad in zip(params, grads):
            param.grad = torch.from_numpy(grad)
        optimizer.step()
    return params, optimizer


@pytest.fixture
def torch_ops_on_cpu(monkeypatch):
    """Route CPU tensors as if they were on another device, to adamkit's device path even
    where torch's own implementation would step them (tests/torch/test_torch_flags.py), and
    count the calls of that path."""
    calls = []
    monkeypatch.setattr(_torch_step, "serves_device", lambda optimizer, group, params: False)
    original = _backend._update_torch_ops

    def counting(spec, *args):
        calls.append(spec.name)
        return original(spec, *args)

    monkeypatch.setattr(_backend, "on_kernel_device", lambda tensor: False)
    monkeypatch.setattr(_backend, "_update_torch_ops", counting)
    return calls


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_torch_ops_agree_with_the_reference_backend(case, dtype, torch_ops_on_cpu):
    got_params, got_optimizer = _run(case, dtype, fused=None)
    assert torch_ops_on_cpu, "the torch-ops path was not taken"
    torch_ops_on_cpu.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_backend, "on_kernel_device", lambda tensor: True)
        want_params, want_optimizer = _run(case, dtype, fused=False if _has_fused(case) else None)
    agreement = Agreement(TOLERANCE[got_params[0].dtype])
    agreement.check_all("params", got_params, want_params)
    for index, (got, want) in enumerate(zip(got_params, want_params)):
        got_state, want_state = got_optimizer.state[got], want_optimizer.state[want]
        assert got_state.keys() == want_state.keys()
        for key in got_state:
            agreement.check(f"state[{index}][{key!r}]", got_state[key], want_state[key])


def _has_fused(case):
    import inspect

    return "fused" in inspect.signature(getattr(adamkit.torch, case.optimizer)).parameters


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_complex_parameters_through_torch_ops_agree_with_the_kernels(name, torch_ops_on_cpu):
    generator = torch.Generator().manual_seed(3)
    start = torch.randn(17, dtype=torch.complex64, generator=generator)
    grads = [torch.randn(17, dtype=torch.complex64, generator=generator) for _ in range(5)]
    results = []
    for route_through_torch_ops in (True, False):
        param = torch.nn.Parameter(start.clone())
        optimizer = getattr(adamkit.torch, name)([param], **RICH[name])
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_backend, "on_kernel_device", lambda tensor: not route_through_torch_ops)
            for grad in grads:
                param.grad = grad.clone()
                optimizer.step()
        results.append((param.detach().clone(), optimizer.state[param]))
    (got, got_state), (want, want_state) = results
    assert torch_ops_on_cpu == [name] * len(grads)
    agreement = Agreement(TOLERANCE[torch.complex64])
    agreement.check("param", torch.view_as_real(got), torch.view_as_real(want))
    for key in want_state:
        agreement.check(key, _real(got_state[key]), _real(want_state[key]))


def _real(tensor):
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_tensors_on_another_device_are_stepped_there(name):
    params = [torch.nn.Parameter(torch.empty(shape, device="meta")) for shape in [(1,), (7, 17), (4097,)]]
    optimizer = getattr(adamkit.torch, name)(params, **RICH[name])
    for _ in range(2):
        for param in params:
            param.grad = torch.empty_like(param)
        optimizer.step()
    for param in params:
        assert param.device.type == "meta"
        state = optimizer.state[param]
        assert any(key not in SCALAR_STATE_KEYS for key in state)
        for key, value in state.items():
            if key not in SCALAR_STATE_KEYS:
                assert value.device.type == "meta" and value.shape == param.shape, key


@pytest.mark.parametrize(
    ("options", "words"),
    [(dict(state_dtype="int8"), "state_dtype='int8'"), (dict(fused=True, eps_hat=True), "fused=True with eps_hat=True")],
)
def test_kernel_only_options_on_another_device_raise_and_change_nothing(options, words):
    param = torch.nn.Parameter(torch.empty(4097, device="meta"))
    param.grad = torch.empty_like(param)
    optimizer = adamkit.torch.Adam([param], **options)
    with pytest.raises(TypeError, match=rf"param_groups\[0\]\['params'\]\[0\] is on meta: {words}"):
        optimizer.step()
    assert not optimizer.state


def test_fused_on_a_device_torch_has_no_fused_kernel_for_raises_torchs_error_and_changes_nothing():
    param = torch.nn.Parameter(torch.empty(4097, device="meta"))
    param.grad = torch.empty_like(param)
    optimizer = adamkit.torch.Adam([param], fused=True)
    with pytest.raises(RuntimeError, match=r"`fused=True` requires all the params to be floating point Tensors of supported devices"):
        optimizer.step()
    assert not optimizer.state
