"""ADOPT against pytorch_optimizer's ``ADOPT``, which differs from the paper and the authors'
code in one place, documented here rather than matched: its step counter starts at 1 on the
initialising step, and it calls its clip function with that counter, so the k-th update is
clipped at (k + 1)^¼ instead of k^¼: one step late. Given ``clip_lambda = (step − 1)^¼`` it
follows the rule to 1e-12 in float64.
"""

import numpy as np
import pytest

from tests.cases import gradients, initial_params
from tests.rules._compare import assert_close, max_relative_error
from tests.rules._drive import group_hyperparameters, run_rule

torch = pytest.importorskip("torch")
pytorch_optimizer = pytest.importorskip("pytorch_optimizer")

STEPS = 60
HYPER = {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-3, "weight_decay": 0.1}
SIZES = (1, 3)  # tests/cases.py's sizes 7 and 4097


def trajectory(clip_lambda):
    params = [initial_params("float64")[i] for i in SIZES]
    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    optimizer = pytorch_optimizer.ADOPT(tensors, **HYPER, clip_lambda=clip_lambda, foreach=False)
    for step in gradients("float64", steps=STEPS):
        for tensor, index in zip(tensors, SIZES):
            tensor.grad = torch.tensor(step[index])
        optimizer.step()
    return [t.detach().numpy() for t in tensors]


def rule_trajectories():
    grads = gradients("float64", steps=STEPS)
    params = initial_params("float64")
    hyper = group_hyperparameters("ADOPT", HYPER)
    return [run_rule("ADOPT", hyper, params[i], [step[i] for step in grads])[0] for i in SIZES]


def test_pytorch_optimizer_clips_one_step_late():
    ours = rule_trajectories()
    shifted = trajectory(lambda step: (step - 1) ** 0.25)
    for got, expected in zip(ours, shifted):
        assert_close(got, expected, 1e-12, "pytorch_optimizer with the clip bound shifted back")
    late = trajectory(lambda step: step**0.25)  # its default
    assert max(max_relative_error(a, b) for a, b in zip(late, ours)) > 1e-6
    assert all(np.all(np.isfinite(t)) for t in late)
