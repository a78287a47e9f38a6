"""The torch front end steps CPU tensors with the C kernels by default, and they compute the
reference backend's bits; fused=False forces the reference backend."""

import numpy as np
import pytest
import torch

import adamkit.torch
from adamkit.kernels import native
from tests.cases import CASES, DTYPES, gradients, initial_params, param_groups

pytestmark = pytest.mark.skipif(not native.available(), reason="the C kernels were not built")


def run(case, dtype, fused, steps=20, to=None):
    params = [torch.nn.Parameter(torch.from_numpy(p)) for p in initial_params(dtype)]
    if to is not None:
        params = [torch.nn.Parameter(p.detach().to(to)) for p in params]
    optimizer = getattr(adamkit.torch, case.optimizer)(param_groups(case, params), fused=fused, **case.hyper) if (
        "fused" in _signature(case.optimizer)
    ) else getattr(adamkit.torch, case.optimizer)(param_groups(case, params), **case.hyper)
    for grads in gradients(dtype, steps=steps):
        for param, grad in zip(params, grads):
            param.grad = torch.from_numpy(grad).to(param.dtype)
        optimizer.step()
    return params, optimizer


def _signature(name):
    import inspect

    return inspect.signature(getattr(adamkit.torch, name)).parameters


@pytest.fixture
def count_kernel_calls(monkeypatch):
    calls = []
    original = native.update_pointers

    def counting(*args, **kwargs):
        calls.append(args[0].name)
        return original(*args, **kwargs)

    monkeypatch.setattr(native, "update_pointers", counting)
    return calls


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [c for c in CASES if "fused" in _signature(c.optimizer)], ids=lambda c: c.id)
def test_kernels_equal_the_reference_backend_bitwise(case, dtype, count_kernel_calls):
    kernel_params, kernel_optimizer = run(case, dtype, fused=None)
    assert count_kernel_calls, "the default path did not use the kernels"
    count_kernel_calls.clear()
    reference_params, reference_optimizer = run(case, dtype, fused=False)
    assert not count_kernel_calls, "fused=False still used the kernels"
    for a, b in zip(kernel_params, reference_params):
        assert torch.equal(a, b)
    for a, b in zip(kernel_params, reference_params):
        state_a, state_b = kernel_optimizer.state[a], reference_optimizer.state[b]
        assert state_a.keys() == state_b.keys()
        for key in state_a:
            assert torch.equal(state_a[key], state_b[key]), key


@pytest.mark.parametrize("name", ["Adamax", "Adadelta", "RMSprop"])
def test_rules_without_a_fused_flag_use_the_kernels(name, count_kernel_calls):
    case = next(c for c in CASES if c.optimizer == name)
    run(case, "float32", fused=None, steps=2)
    assert count_kernel_calls == [name] * 4  # two groups, two steps


def test_non_contiguous_parameters_take_the_reference_path_with_the_same_result(count_kernel_calls):
    base = torch.randn(17, 5, dtype=torch.float64)
    strided = torch.nn.Parameter(base.t())  # non-contiguous view
    dense = torch.nn.Parameter(base.t().contiguous())
    grads = [torch.randn(5, 17, dtype=torch.float64) for _ in range(5)]
    results = []
    for param in (strided, dense):
        optimizer = adamkit.torch.Adam([param], lr=0.1, amsgrad=True, weight_decay=0.1)
        for grad in grads:
            param.grad = grad.clone()
            optimizer.step()
        results.append(param.detach().clone())
    assert count_kernel_calls == ["Adam"] * 5  # only the dense parameter used the kernels
    assert torch.equal(results[0], results[1])


def bf16_round(values):
    """Round float32 values to bfloat16 (nearest even), as float32."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return rounded.astype(np.uint32).view(np.float32)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adamax", "Adadelta", "SGD", "Adagrad", "RMSprop"])
def test_bfloat16_parameters_step_in_float32_and_round_once(name):
    case = next(c for c in CASES if c.optimizer == name and c.hyper)
    params, _ = run(case, "float32", fused=None, steps=1, to=torch.bfloat16)
    start = [torch.from_numpy(p).to(torch.bfloat16).float() for p in initial_params("float32")]
    expected = [torch.nn.Parameter(p.clone()) for p in start]
    optimizer = getattr(adamkit.torch, case.optimizer)(param_groups(case, expected), **case.hyper)
    for param, grad in zip(expected, gradients("float32", steps=1)[0]):
        param.grad = torch.from_numpy(grad).to(torch.bfloat16).float()
    optimizer.step()
    for got, want in zip(params, expected):
        assert got.dtype == torch.bfloat16
        np.testing.assert_array_equal(got.detach().float().numpy(), bf16_round(want.detach().numpy()))


def test_bfloat16_without_the_kernels_is_refused_and_changes_nothing():
    param = torch.nn.Parameter(torch.ones(7, dtype=torch.bfloat16))
    param.grad = torch.ones(7, dtype=torch.bfloat16)
    optimizer = adamkit.torch.Adam([param], fused=False)
    with pytest.raises(TypeError, match=r"param_groups\[0\]\['params'\]\[0\] is bfloat16"):
        optimizer.step()
    assert torch.equal(param, torch.ones(7, dtype=torch.bfloat16))
    assert not optimizer.state
