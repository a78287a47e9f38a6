"""adamkit.torch.Adafactor on the CPU, stepped by its kernel: bitwise the rule, and equal to
torch.optim.Adafactor to the brief's tolerances (1e-6 in float32, 1e-12 in float64), with two
groups of non-default hyperparameters, vectors of 1, 7, 17 and 4097 elements, matrices of one
row and of one column, a stack of matrices, and a transposed (non-contiguous) matrix, which
the rule steps instead."""

import numpy as np
import pytest
import torch

import adamkit.torch
from adamkit.kernels import native
from adamkit.rules.adafactor import adafactor
from tests.torch._compare import TOLERANCE, assert_bitwise_equal

pytestmark = pytest.mark.skipif(not native.available(), reason="native kernels not built")

SHAPES = [(1,), (7,), (17,), (4097,), (1, 33), (33, 1), (3, 5, 4), (64, 65), "transposed"]
HYPER = dict(lr=0.05, weight_decay=0.1, d=1.5, beta2_decay=-0.6, eps=(1e-20, 1e-2))
SECOND = dict(lr=0.2, eps=(None, 1e-3), maximize=True)
STEPS = 20


def _params(dtype):
    generator = torch.Generator().manual_seed(0)
    tensors = []
    for shape in SHAPES:
        if shape == "transposed":
            tensors.append(torch.randn(9, 6, generator=generator, dtype=dtype).t())
        else:
            tensors.append(torch.randn(shape, generator=generator, dtype=dtype))
    return tensors


def _optimizer(cls, params):
    groups = [{"params": params[0::2]}, {"params": params[1::2], **SECOND}]
    return cls(groups, **HYPER)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_equals_the_rule_and_torch(dtype):
    ours = [
        torch.nn.Parameter(p.clone()) if p.is_contiguous() else torch.nn.Parameter(p.clone().t().contiguous().t())
        for p in _params(dtype)
    ]
    theirs = [torch.nn.Parameter(p.clone()) for p in _params(dtype)]
    rule_params = [p.numpy().copy() for p in _params(dtype)]
    rule_states = [dict(row_var=None, col_var=None, variance=None) for _ in SHAPES]
    for state, param in zip(rule_states, rule_params):
        if param.ndim > 1:
            state.update(
                row_var=np.zeros(param.shape[:-1] + (1,), param.dtype),
                col_var=np.zeros(param.shape[:-2] + (1, param.shape[-1]), param.dtype),
            )
        else:
            state.update(variance=np.zeros(param.shape, param.dtype))
    adamkit_optimizer, torch_optimizer = (
        _optimizer(adamkit.torch.Adafactor, ours),
        _optimizer(torch.optim.Adafactor, theirs),
    )
    generator = torch.Generator().manual_seed(1)
    for step in range(1, STEPS + 1):
        for index, (mine, reference) in enumerate(zip(ours, theirs)):
            grad = torch.randn(mine.shape, generator=generator, dtype=dtype) * 10.0 ** (index % 4 - 2)
            mine.grad, reference.grad = grad.clone(), grad.clone()
            hyper = {**HYPER, **(SECOND if index % 2 else {})}
            result = adafactor(
                rule_params[index],
                grad.numpy(),
                **rule_states[index],
                step=float(step),
                maximize=hyper.pop("maximize", False),
                **hyper,
            )
            rule_params[index] = result.param
            rule_states[index] = dict(row_var=result.row_var, col_var=result.col_var, variance=result.variance)
        adamkit_optimizer.step()
        torch_optimizer.step()
    for index, (mine, reference) in enumerate(zip(ours, theirs)):
        assert_bitwise_equal(mine.detach(), torch.from_numpy(rule_params[index]), f"{SHAPES[index]} against the rule")
        error = (mine - reference).abs().max() / reference.abs().max()
        assert error <= TOLERANCE[dtype], f"{SHAPES[index]}: {error:.3g} from torch"
        for key, value in torch_optimizer.state[reference].items():
            if key != "step":
                state = adamkit_optimizer.state[mine][key]
                assert (state - value).abs().max() <= TOLERANCE[dtype] * value.abs().max(), f"{SHAPES[index]}: {key}"
