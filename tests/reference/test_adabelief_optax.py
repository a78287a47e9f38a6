"""adamkit's AdaBelief rule against ``optax.adabelief(eps_root=eps)`` (Algorithm 2 as the
paper writes it), chained with decoupled weight decay, in float64 on jax's CPU over 60 steps.

jax is imported here only, and its float64 mode set here only."""

import numpy as np
import pytest

from tests.cases import GROUP_OF_SIZE
from tests.reference._adabelief_parity import assert_same, problem, rule_results

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")


def _optax_finals(groups, params, grads):
    finals = []
    for index, (param, group) in enumerate(zip(params, GROUP_OF_SIZE)):
        hyper = groups[group]
        beta1, beta2 = hyper["betas"]
        # Decoupled decay after the step: updates − γλθ, so θ ← θ(1 − γλ) − γu.
        transform = optax.chain(
            optax.adabelief(hyper["lr"], b1=beta1, b2=beta2, eps=hyper["eps"], eps_root=hyper["eps"]),
            optax.add_decayed_weights(-hyper["lr"] * hyper["weight_decay"]),
        )
        theta = jax.numpy.asarray(param)
        state = transform.init(theta)
        update = jax.jit(transform.update)  # compiled once: 60 steps of small operations are slow
        for step in grads:
            updates, state = update(jax.numpy.asarray(step[index]), state, theta)
            theta = optax.apply_updates(theta, updates)
        finals.append(np.asarray(theta))
    return finals


def test_rule_matches_optax():
    groups = [
        {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-8, "weight_decay": 0.1},
        {"lr": 3e-3, "betas": (0.9, 0.95), "eps": 1e-12, "weight_decay": 0.0},
    ]
    params, grads = problem()
    with jax.enable_x64(True):
        finals = _optax_finals(groups, params, grads)
    assert all(final.dtype == np.float64 for final in finals)
    assert_same(rule_results(groups), finals)

