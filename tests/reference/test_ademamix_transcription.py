"""AdEMAMix's rule against its float64 transcription (tests/reference/ademamix.py) and against
pytorch_optimizer's AdEMAMix, 60 float64 steps, two groups, warmup of α and β3 on and off."""

import numpy as np
import pytest
import torch

from adamkit.rules.ademamix import alpha_scheduler, beta3_scheduler
from tests.reference import _ademamix_packages as packages

pytorch_optimizer = pytest.importorskip("pytorch_optimizer")


@pytest.mark.parametrize("setting", list(packages.SETTINGS))
def test_rule_equals_the_transcription(setting):
    for index, ((param, state), (expected, expected_state)) in enumerate(
        zip(packages.rule_trajectory(setting), packages.transcription_trajectory(setting))
    ):
        packages.assert_close(param, expected, f"param {index}")
        for key in ("exp_avg_fast", "exp_avg_slow", "exp_avg_sq"):
            packages.assert_close(state[key], expected_state[key], f"{key} {index}")


@pytest.mark.parametrize("setting", list(packages.SETTINGS))
def test_rule_equals_pytorch_optimizers_ademamix(setting):
    """pytorch_optimizer counts steps per group (1-based, as the rule's per-parameter count when
    every parameter has a gradient at every step), decays θ by (1 − ηλ) before the step when
    decoupled, and negates the gradient in place under ``maximize``: it is given copies."""
    params, grads, groups = packages.problem()
    tensors = [torch.tensor(param) for param in params]
    group_dicts = []
    for group in (0, 1):
        hyper = packages.hyperparameters(setting, group)
        decoupled = hyper.pop("decoupled_weight_decay", True)
        group_dicts.append(
            {"params": [t for t, g in zip(tensors, groups) if g == group], **hyper, "weight_decouple": decoupled}
        )
    optimizer = pytorch_optimizer.AdEMAMix(group_dicts, foreach=False)
    for step in grads:
        for tensor, grad in zip(tensors, step):
            tensor.grad = torch.tensor(grad)
        optimizer.step()
    for index, (tensor, (param, state)) in enumerate(zip(tensors, packages.rule_trajectory(setting))):
        packages.assert_close(param, tensor.numpy(), f"param {index}")
        theirs = optimizer.state[tensor]
        for ours, key in (("exp_avg_fast", "exp_avg"), ("exp_avg_slow", "exp_avg_slow"), ("exp_avg_sq", "exp_avg_sq")):
            packages.assert_close(state[ours], theirs[key].numpy(), f"{ours} {index}")


def test_schedulers_are_the_papers():
    """α rises linearly to α at T; β3 starts at β1 (t = 0), ends at β3 (t = T) and then stays,
    and its half-life grows linearly in between."""
    beta1, beta3, warmup = 0.9, 0.9999, 100.0
    assert alpha_scheduler(25, 4.0, warmup) == 1.0 and alpha_scheduler(250, 4.0, warmup) == 4.0
    assert beta3_scheduler(0, beta1, beta3, warmup) == pytest.approx(beta1, rel=1e-15)
    assert beta3_scheduler(warmup, beta1, beta3, warmup) == pytest.approx(beta3, rel=1e-15)
    assert beta3_scheduler(1e6, beta1, beta3, warmup) == beta3

    def half_life(beta):
        return np.log(0.5) / np.log(beta)

    lives = [half_life(beta3_scheduler(t, beta1, beta3, warmup)) for t in (0, 25, 50)]
    # 1/ln β3(t) is linear in t: so is the half-life.
    assert lives[2] - lives[1] == pytest.approx(lives[1] - lives[0], rel=1e-9)
