"""adamkit.torch.LAMB's own contract: its signature, torch's Adam state keys, and the sparse
gradients it refuses (its trust ratio is over the whole parameter)."""

import inspect

import numpy as np
import pytest
import torch

import adamkit.torch
from adamkit.rules import lamb


def test_signature_takes_no_torch_implementation_flags():
    parameters = inspect.signature(adamkit.torch.LAMB).parameters
    assert list(parameters)[:5] == ["params", "lr", "betas", "eps", "weight_decay"]
    assert parameters["eps"].default == 1e-6 and parameters["trust_clip"].default is None
    assert not {"foreach", "fused", "capturable", "differentiable"} & set(parameters)
    with pytest.raises(TypeError, match="foreach"):
        adamkit.torch.LAMB([torch.zeros(1)], foreach=True)


def test_state_keys_and_a_step_of_the_rule():
    rng = np.random.default_rng(0)
    theta, grad = rng.standard_normal(5000), rng.standard_normal(5000)
    param = torch.nn.Parameter(torch.from_numpy(theta.copy()))
    optimizer = adamkit.torch.LAMB([param], lr=0.1, weight_decay=0.1, trust_clip=0.5)
    param.grad = torch.from_numpy(grad)
    optimizer.step()
    expected = lamb(theta, grad, np.zeros(5000), np.zeros(5000), step=1.0, lr=0.1, weight_decay=0.1, trust_clip=0.5)
    assert set(optimizer.state[param]) == {"step", "exp_avg", "exp_avg_sq"}
    np.testing.assert_array_equal(param.detach().numpy(), expected.param)


def test_a_sparse_gradient_is_refused_and_changes_nothing():
    param = torch.nn.Parameter(torch.ones(4, 3))
    optimizer = adamkit.torch.LAMB([param], lr=0.1)
    param.grad = torch.ones(4, 3).to_sparse()
    with pytest.raises(TypeError, match="whole parameter"):
        optimizer.step()
    assert torch.equal(param.detach(), torch.ones(4, 3)) and not optimizer.state
