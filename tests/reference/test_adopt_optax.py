"""ADOPT: the rule and its float64 transcription against optax's ``contrib.adopt`` (jax on the
CPU, in float64), over 60 steps on every size, each size's hyperparameters its group's.

optax counts its steps from 0, as the paper does: at count 0 it only sets v = g² (its b2 is 0
there and its clip bound 0⁰·²⁵ = 0 keeps m at zero), and the k-th update clips at k^¼, as the
rule's ``step - 1``. optax has no weight decay of its own: L2 decay is
``add_decayed_weights`` before the transformation.
"""

import numpy as np
import pytest

from adamkit import specs
from tests.cases import GROUP_OF_SIZE, gradients, initial_params
from tests.reference.adopt import adopt as reference_adopt
from tests.rules._compare import assert_close
from tests.rules._drive import group_hyperparameters, run_rule

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")

STEPS = 60
RELATIVE = 1e-12
# Two groups of non-default hyperparameters with L2 decay, which optax can express.
GROUPS = (
    {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-3, "weight_decay": 0.1},
    {"lr": 3e-3, "betas": (0.5, 0.9), "eps": 1e-5, "weight_decay": 0.02, "maximize": True},
)


def optax_trajectory(hyper, params, grads, use_clipping=True):
    """optax's final parameters, its (mu, nu) per parameter and its count, for the list
    ``params`` stepped as one tree with the list of gradients of each step."""
    beta1, beta2 = hyper["betas"]
    transformation = optax.chain(
        optax.add_decayed_weights(hyper["weight_decay"]),
        optax.contrib.scale_by_adopt(b1=beta1, b2=beta2, eps=hyper["eps"], use_clipping=use_clipping),
        optax.scale(-hyper["lr"]),
    )
    sign = -1.0 if hyper.get("maximize") else 1.0
    with jax.enable_x64(True):

        @jax.jit
        def step(theta, state, grad):
            updates, state = transformation.update(jax.tree.map(lambda g: sign * g, grad), state, theta)
            return optax.apply_updates(theta, updates), state

        theta = [jax.numpy.asarray(p, dtype=jax.numpy.float64) for p in params]
        state = transformation.init(theta)
        for grad in grads:
            theta, state = step(theta, state, [jax.numpy.asarray(g) for g in grad])
        adopt_state = state[1]
        moments = [{"exp_avg": np.asarray(mu), "exp_avg_sq": np.asarray(nu)} for mu, nu in zip(adopt_state.mu, adopt_state.nu)]
        return [np.asarray(t) for t in theta], moments, int(adopt_state.count)


def group_of(group, dtype="float64"):
    """The sizes of ``group`` (tests/cases.py): their parameters and their 60 steps' gradients."""
    indices = [i for i, g in enumerate(GROUP_OF_SIZE) if g == group]
    params = initial_params(dtype)
    return [params[i] for i in indices], [[step[i] for i in indices] for step in gradients(dtype, steps=STEPS)]


@pytest.mark.parametrize("group", [0, 1])
def test_rule_and_transcription_match_optax(group):
    hyper = GROUPS[group]
    params, grads = group_of(group)
    expected, expected_states, count = optax_trajectory(hyper, params, grads)
    assert count == STEPS
    for index, param in enumerate(params):
        own = [step[index] for step in grads]
        final, state = run_rule("ADOPT", group_hyperparameters("ADOPT", hyper), param, own)
        reference, reference_state = reference_adopt(param, own, **hyper)
        for what, (got, got_state) in {"rule": (final, state), "transcription": (reference, reference_state)}.items():
            assert_close(got, expected[index], RELATIVE, f"{what} param, size {param.size}")
            for key in ("exp_avg", "exp_avg_sq"):
                assert_close(got_state[key], expected_states[index][key], RELATIVE, f"{what} {key}, size {param.size}")


def test_the_clip_binds_in_these_runs():
    """The clip bound is reached, so the parity above checks where it sits: without clipping
    optax's trajectory is another."""
    params, grads = group_of(0)
    clipped, _, _ = optax_trajectory(GROUPS[0], params, grads)
    unclipped, _, _ = optax_trajectory(GROUPS[0], params, grads, use_clipping=False)
    assert max(np.max(np.abs(a - b)) for a, b in zip(clipped, unclipped)) > 1e-4


def test_spec_defaults_are_optax_and_the_papers():
    defaults = specs.ADOPT.defaults
    assert (defaults["lr"], defaults["betas"], defaults["eps"]) == (1e-3, (0.9, 0.9999), 1e-6)
