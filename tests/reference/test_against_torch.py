"""The transcriptions themselves agree with torch.optim 2.13 in float64 on every shared case.

This is what makes them a trustworthy reference: they were written from the papers without
reading adamkit, and here they meet torch's own for-loop implementation.
"""

import math

import numpy as np
import pytest

from tests.cases import GROUP_OF_SIZE, TORCH_CASES, gradients, initial_params
from tests.reference.adam import adam
from tests.reference.trajectories import reference_trajectory

torch = pytest.importorskip("torch")

STEPS = 50
RELATIVE = 1e-12


def assert_close(actual, expected, what):
    error = np.max(np.abs(actual - expected))
    assert error <= RELATIVE * np.max(np.abs(expected)) + 1e-300, f"{what}: max error {error:.3g}"


def torch_trajectory(case, params, grads):
    tensors = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    groups = [
        {"params": [t for t, g in zip(tensors, GROUP_OF_SIZE) if g == 0]},
        {"params": [t for t, g in zip(tensors, GROUP_OF_SIZE) if g == 1], **case.second_group},
    ]
    optimizer = getattr(torch.optim, case.optimizer)(groups, **case.hyper, foreach=False)
    for step_grads in grads[:STEPS]:
        for tensor, grad in zip(tensors, step_grads):
            tensor.grad = torch.tensor(grad, dtype=torch.float64)
        optimizer.step()
    return tensors, optimizer.state


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda case: case.id)
def test_reference_matches_torch(case):
    params = initial_params("float64")
    grads = gradients("float64", steps=STEPS)
    tensors, torch_state = torch_trajectory(case, params, grads)
    for index, (param, group) in enumerate(zip(params, GROUP_OF_SIZE)):
        hyper = {**case.hyper, **(case.second_group if group == 1 else {})}
        final, state = reference_trajectory(case.optimizer, hyper, param, [g[index] for g in grads])
        assert_close(final, tensors[index].detach().numpy(), f"param {index}")
        expected_state = torch_state[tensors[index]]
        assert set(state) == set(expected_state), f"state keys of param {index}"
        for key, value in state.items():
            expected = expected_state[key]
            if key == "step":
                assert value == float(expected)
            else:
                assert_close(value, expected.numpy(), f"{key} of param {index}")


def test_eps_hat_first_step_by_hand():
    """With ε̂, step 1 is θ − γ·√(1−β2)/(1−β1)·(1−β1)g/(√(1−β2)|g| + ε) = θ − γg/(|g| + ε/√(1−β2))."""
    lr, betas, eps = 0.05, (0.7, 0.95), 0.1
    theta = np.array([0.3, -1.2, 2.0])
    g = np.array([0.02, -3.0, 0.0])
    final, _ = adam(theta, [g], lr=lr, betas=betas, eps=eps, eps_hat=True)
    expected = theta - lr * g / (np.abs(g) + eps / math.sqrt(1 - betas[1]))
    np.testing.assert_allclose(final, expected, rtol=1e-15, atol=0)


def test_eps_hat_without_eps_is_adam():
    """With ε = 0 the two conventions are the same formula, regrouped."""
    rng = np.random.default_rng(3)
    theta = rng.standard_normal(9)
    grads = list(rng.standard_normal((20, 9)))
    plain, _ = adam(theta, grads, lr=0.01, betas=(0.8, 0.9), eps=0.0)
    hat, _ = adam(theta, grads, lr=0.01, betas=(0.8, 0.9), eps=0.0, eps_hat=True)
    np.testing.assert_allclose(hat, plain, rtol=1e-13, atol=0)
