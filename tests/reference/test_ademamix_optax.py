"""AdEMAMix's rule against ``optax.contrib.ademamix`` in float64 on the CPU, 60 steps.

Kept in a module of its own so that only this test imports jax. optax evaluates the α and β3
schedules at its count *before* the step (0 at the first), the rule at the 1-based step: the
schedules given to optax are the rule's schedulers at ``count + 1``. optax's weight decay is
the paper's decoupled decay, λθ added to the update before the learning rate scales it.
"""

import numpy as np
import pytest

from adamkit.rules.ademamix import alpha_scheduler, beta3_scheduler
from tests.reference import _ademamix_packages as packages

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")


def _optax_ademamix(hyper):
    beta1, beta2, beta3 = hyper.get("betas", (0.9, 0.999, 0.9999))
    alpha, warmup = hyper.get("alpha", 5.0), hyper.get("t_alpha_beta3")
    if warmup is not None:
        b3 = lambda count: beta3_scheduler(count + 1, beta1, beta3, warmup)  # noqa: E731
        mix = lambda count: alpha_scheduler(count + 1, alpha, warmup)  # noqa: E731
    else:
        b3, mix = beta3, alpha
    return optax.contrib.ademamix(
        learning_rate=hyper["lr"], b1=beta1, b2=beta2, b3=b3, alpha=mix, eps=hyper.get("eps", 1e-8),
        weight_decay=hyper.get("weight_decay", 0.0),
    )


def test_rule_equals_optax_ademamix():
    setting = "decoupled"
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    params, grads, groups = packages.problem()
    finals = {}
    for group in (0, 1):
        members = [index for index, g in enumerate(groups) if g == group]
        transform = _optax_ademamix(packages.hyperparameters(setting, group))
        theta = [jax.numpy.asarray(params[index]) for index in members]
        state = transform.init(theta)
        for step in grads:
            # The schedules are Python functions of the count: the update runs eagerly.
            updates, state = transform.update([jax.numpy.asarray(step[index]) for index in members], state, theta)
            theta = optax.apply_updates(theta, updates)
        finals.update(zip(members, theta))
    for index, (param, _) in enumerate(packages.rule_trajectory(setting)):
        assert finals[index].dtype == np.float64
        packages.assert_close(param, np.asarray(finals[index]), f"param {index}")
