"""adamkit.rules.lamb against its float64 transcription (tests/reference/lamb.py), with the
options optax lacks, and against pytorch_optimizer's Lamb, whose step differs by design."""

import numpy as np
import pytest

from adamkit.rules import lamb
from adamkit.rules.lamb import NORM_BLOCK, squared_norm, trust_ratio
from tests.reference.lamb import lamb as reference_lamb
from tests.rules._compare import assert_close, max_relative_error
from tests.rules.lamb_inputs import hyper_of, params_and_grads


def rule_trajectory(param, grads, **hyper):
    x, m, v = param, np.zeros_like(param), np.zeros_like(param)
    for step, g in enumerate(grads, start=1):
        x, m, v = lamb(x, g, m, v, step=float(step), **hyper)
    return x, {"exp_avg": m, "exp_avg_sq": v}


@pytest.mark.parametrize("extra", [{"trust_clip": 0.3, "maximize": True}, {"trust_clip": 50.0}], ids=str)
def test_rule_matches_reference(extra):
    params, grads = params_and_grads()
    for index, param in enumerate(params):
        own = [g[index] for g in grads]
        x, state = rule_trajectory(param, own, **hyper_of(index, **extra))
        want, want_state = reference_lamb(param, own, **hyper_of(index, **extra))
        assert_close(x, want, 1e-12, f"shape {param.shape}")
        for key, value in state.items():
            assert_close(value, want_state[key], 1e-12, f"shape {param.shape} {key}")


def test_trust_clip_binds():
    """The clip changes the trajectory where the ratio exceeds it, and only there."""
    params, grads = params_and_grads()
    own = [g[3] for g in grads]
    free, _ = rule_trajectory(params[3], own, **hyper_of(3))
    assert max_relative_error(rule_trajectory(params[3], own, **hyper_of(3, trust_clip=0.3))[0], free) > 1e-3
    assert max_relative_error(rule_trajectory(params[3], own, **hyper_of(3, trust_clip=1e6))[0], free) == 0


def test_trust_ratio_edges():
    assert trust_ratio(0.0, 4.0) == 1.0 and trust_ratio(4.0, 0.0) == 1.0 and trust_ratio(0.0, 4.0, 0.5) == 0.5
    assert trust_ratio(16.0, 4.0) == 2.0 and trust_ratio(16.0, 4.0, trust_clip=1.5) == 1.5
    assert np.isnan(trust_ratio(16.0, float("nan"), trust_clip=1.5))


def test_squared_norm_order():
    """Sequential within blocks of NORM_BLOCK, then over the blocks' sums (the kernels' order)."""
    x = np.random.default_rng(0).standard_normal(2 * NORM_BLOCK + 5).astype(np.float32) * 1e3
    blocks = []
    for start in range(0, x.size, NORM_BLOCK):
        total = 0.0
        for value in x[start : start + NORM_BLOCK].tolist():
            total += value * value
        blocks.append(total)
    expected = 0.0
    for total in blocks:
        expected += total
    assert squared_norm(x) == expected and squared_norm(np.zeros(0)) == 0.0


def test_differs_from_pytorch_optimizer_by_its_uncorrected_step():
    """pytorch_optimizer's Lamb multiplies the ratio's update by lr/(1-β1^t) outside the
    ratio and leaves v uncorrected, so with ‖θ‖ below its clamp of 10 and no weight decay (and ε negligible) its
    first step is 1/(1-β1) times ours (10x with β1 = 0.9), in the same direction: we do not
    match it."""
    torch = pytest.importorskip("torch")
    optimizers = pytest.importorskip("pytorch_optimizer")
    rng = np.random.default_rng(0)
    theta, g = rng.standard_normal(50), rng.standard_normal(50)
    p = torch.tensor(theta, requires_grad=True)
    p.grad = torch.tensor(g)
    optimizers.Lamb([p], lr=0.1, eps=1e-12).step()
    theirs = p.detach().numpy() - theta
    ours = lamb(theta, g, np.zeros(50), np.zeros(50), step=1.0, lr=0.1, eps=1e-12).param - theta
    assert_close(theirs, ours / (1 - 0.9), 1e-6, "pytorch_optimizer's first step")
