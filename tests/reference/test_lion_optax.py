"""adamkit's Lion rule and the paper's transcription against ``optax.lion`` in float64 (jax on
the CPU), over 60 steps on two groups, each group its own ``optax.lion`` with that group's
hyperparameters (:mod:`tests.reference._lion_parity`).

jax is imported here only, and float64 is switched on for jax in this module's process.
"""

import numpy as np
import pytest

from tests.cases import GROUP_OF_SIZE
from tests.reference._lion_parity import GROUPS, check_against_rule_and_reference, problem

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")


@pytest.fixture(autouse=True)
def float64_jax():
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def test_optax_lion():
    params, grads = problem()
    finals, exp_avgs = [None] * len(params), [None] * len(params)
    for group, hyper in enumerate(GROUPS):
        members = [i for i, g in enumerate(GROUP_OF_SIZE) if g == group]
        beta1, beta2 = hyper["betas"]
        transform = optax.lion(hyper["lr"], b1=beta1, b2=beta2, weight_decay=hyper["weight_decay"])
        tree = [jax.numpy.asarray(params[i], dtype=jax.numpy.float64) for i in members]
        state = transform.init(tree)
        for step_grads in grads:
            updates, state = transform.update([jax.numpy.asarray(step_grads[i]) for i in members], state, tree)
            tree = optax.apply_updates(tree, updates)
        momentum = next(s for s in state if hasattr(s, "mu")).mu
        for position, i in enumerate(members):
            finals[i], exp_avgs[i] = np.asarray(tree[position]), np.asarray(momentum[position])
    assert all(final.dtype == np.float64 for final in finals)
    check_against_rule_and_reference(finals, exp_avgs, params, grads)
