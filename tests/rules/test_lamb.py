"""adamkit.rules.lamb against its float64 transcription (tests/reference/lamb.py), with the
options optax lacks, and against pytorch_optimizer's Lamb, whose step differs by design."""

import numpy as np
import pytest

from adamkit.rules import lamb
from adamkit.rules.lamb import NORM_BLOCK, NORM_LANES, squared_norm, trust_ratio
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


def _lanes_then_tree(values):
    """One block's sum as the kernels take it: NORM_LANES sequential partial sums, lane i % NORM_LANES
    for element i, then lanes j and j + w/2 of w added until one is left."""
    lanes = [0.0] * NORM_LANES
    for i, value in enumerate(values):
        lanes[i % NORM_LANES] += value * value
    while len(lanes) > 1:
        half = len(lanes) // 2
        lanes = [lanes[j] + lanes[j + half] for j in range(half)]
    return lanes[0]


@pytest.mark.parametrize("size", [1, 7, 17, 4097, 2 * NORM_BLOCK + 5])
def test_squared_norm_order(size):
    """Lanes within blocks of NORM_BLOCK, a fixed tree over the lanes, then the blocks' sums in
    order (the kernels' order), written as plain Python loops."""
    x = np.random.default_rng(size).standard_normal(size).astype(np.float32) * 1e3
    expected = 0.0
    for start in range(0, x.size, NORM_BLOCK):
        expected += _lanes_then_tree(x[start : start + NORM_BLOCK].tolist())
    assert squared_norm(x) == expected and squared_norm(np.zeros(0)) == 0.0


def test_squared_norm_order_is_not_sequential():
    """The lanes change the bits: a sequential sum of these squares rounds differently."""
    x = np.random.default_rng(0).standard_normal(NORM_BLOCK)
    sequential = 0.0
    for value in x.tolist():
        sequential += value * value
    assert squared_norm(x) == _lanes_then_tree(x.tolist()) != sequential


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
