"""adamkit.rules.lamb against ``optax.lamb`` (jax on the CPU, in float64): 1e-12 relative over
60 steps, on every parameter of tests/rules/lamb_inputs.py, each group with its own
hyperparameters. optax has neither ``trust_clip`` nor ``maximize``; tests/rules/test_lamb.py
checks those against the float64 transcription."""

import numpy as np
import pytest

from adamkit.rules import lamb
from tests.rules._compare import assert_close
from tests.rules.lamb_inputs import GROUP_OF_SHAPE, GROUPS, params_and_grads

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")


def optax_trajectory(params, grads, lr, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0):
    """optax.lamb over the list ``params`` (a pytree: each leaf its own layer)."""
    with jax.enable_x64(True):
        transform = optax.lamb(lr, b1=betas[0], b2=betas[1], eps=eps, weight_decay=weight_decay)

        @jax.jit
        def step(x, state, g):
            updates, state = transform.update(g, state, x)
            return optax.apply_updates(x, updates), state

        x = [jax.numpy.asarray(p) for p in params]
        state = transform.init(x)
        for g in grads:
            x, state = step(x, state, [jax.numpy.asarray(gi) for gi in g])
        return [np.asarray(xi) for xi in x]


def test_rule_matches_optax():
    params, grads = params_and_grads()
    for group, hyper in enumerate(GROUPS):
        members = [i for i, g in enumerate(GROUP_OF_SHAPE) if g == group]
        expected = optax_trajectory([params[i] for i in members], [[g[i] for i in members] for g in grads], **hyper)
        for index, want in zip(members, expected):
            x, m, v = params[index], np.zeros_like(params[index]), np.zeros_like(params[index])
            for step, g in enumerate(grads, start=1):
                x, m, v = lamb(x, g[index], m, v, step=float(step), **hyper)
            assert_close(x, want, 1e-12, f"shape {x.shape}")
