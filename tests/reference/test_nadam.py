"""NAdam: the rule against the float64 transcription, and both against torch.optim.NAdam.

60 steps, two parameter groups, sizes 1, 7, 17 and 4097, non-default ``momentum_decay`` and
both forms of weight decay. torch keeps ``mu_product`` in its default scalar dtype (float32
here), so the transcription and the rule are run with a float32 product against torch, and
with a float64 product against each other.
"""

import numpy as np
import pytest

from adamkit.rules.nadam import NADAM, NAdamCount, advanced_mu_product, nadam
from tests.cases import GROUP_OF_SIZE, gradients, initial_params
from tests.reference.nadam import nadam as reference_nadam

torch = pytest.importorskip("torch")

STEPS = 60
RELATIVE = 1e-12
HYPER = (
    ({"lr": 1e-2, "weight_decay": 0.1, "momentum_decay": 0.05}, {"betas": (0.8, 0.99), "eps": 1e-3}),
    (
        {"lr": 1e-2, "weight_decay": 0.05, "decoupled_weight_decay": True, "maximize": True},
        {"momentum_decay": 0.0, "lr": 3e-3},
    ),
)


def assert_close(actual, expected, what):
    error = np.max(np.abs(actual - expected))
    assert error <= RELATIVE * np.max(np.abs(expected)) + 1e-300, f"{what}: max error {error:.3g}"


def rule_trajectory(hyper, param, grads, product_dtype):
    """The rule driven as the front ends drive it: ``mu_product`` a 0-d array advanced in place."""
    hyper = {**NADAM.defaults, **hyper}
    exp_avg, exp_avg_sq = np.zeros_like(param), np.zeros_like(param)
    mu_product = np.ones((), dtype=product_dtype)
    beta1 = hyper["betas"][0]
    for step, grad in enumerate(grads, start=1):
        advanced_mu_product(mu_product, float(step), beta1, hyper["momentum_decay"])
        count = NAdamCount(float(step), mu_product.item())
        param, exp_avg, exp_avg_sq = nadam(param, grad, exp_avg, exp_avg_sq, step=count, **hyper)
    return param, {"step": float(len(grads)), "mu_product": mu_product.item(), "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}


def torch_trajectory(hyper, second, params, grads):
    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    groups = [
        {"params": [t for t, g in zip(tensors, GROUP_OF_SIZE) if g == 0]},
        {"params": [t for t, g in zip(tensors, GROUP_OF_SIZE) if g == 1], **second},
    ]
    optimizer = torch.optim.NAdam(groups, **hyper, foreach=False)
    for step_grads in grads:
        for tensor, grad in zip(tensors, step_grads):
            tensor.grad = torch.tensor(grad)
        optimizer.step()
    return [t.detach().numpy() for t in tensors], [optimizer.state[t] for t in tensors]


def assert_same_state(state, expected, what):
    assert set(state) == set(expected), what
    for key, value in state.items():
        if key in ("step", "mu_product"):
            assert value == float(expected[key]), f"{what} {key}"
        else:
            assert_close(value, np.asarray(expected[key]), f"{what} {key}")


@pytest.mark.parametrize("hyper,second", HYPER, ids=["l2", "decoupled"])
def test_rule_matches_reference_and_torch(hyper, second):
    params, grads = initial_params("float64"), gradients("float64", steps=STEPS)
    torch_params, torch_states = torch_trajectory(hyper, second, params, grads)
    for index, group in enumerate(GROUP_OF_SIZE):
        merged = {**hyper, **(second if group else {})}
        param_grads = [step_grads[index] for step_grads in grads]
        what = f"size {params[index].size}"
        # Both with a float64 product: the rule against the transcription.
        final, state = rule_trajectory(merged, params[index], param_grads, np.float64)
        expected, expected_state = reference_nadam(params[index], param_grads, **merged)
        assert_close(final, expected, f"{what} param")
        assert_same_state(state, expected_state, what)
        # With torch's float32 product: each against torch.optim.NAdam.
        expected, expected_state = torch_params[index], torch_states[index]
        final, state = rule_trajectory(merged, params[index], param_grads, np.float32)
        assert_close(final, expected, f"{what} rule vs torch")
        assert_same_state(state, expected_state, f"{what} rule vs torch")
        final, state = reference_nadam(params[index], param_grads, **merged, product_dtype=np.float32)
        assert_close(final, expected, f"{what} reference vs torch")
        assert_same_state(state, expected_state, f"{what} reference vs torch")


def test_float32_product_matters():
    """The float32 rounding of torch's ``mu_product`` is visible at 1e-12: the test above could fail."""
    params, grads = initial_params("float64"), gradients("float64", steps=STEPS)
    hyper = HYPER[0][0]
    wide, _ = rule_trajectory(hyper, params[3], [g[3] for g in grads], np.float64)
    narrow, _ = rule_trajectory(hyper, params[3], [g[3] for g in grads], np.float32)
    assert np.max(np.abs(wide - narrow)) > RELATIVE * np.max(np.abs(wide))
