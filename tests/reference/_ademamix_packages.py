"""The AdEMAMix trajectories that tests/reference compares with the reference packages': 60
float64 steps of the rule and of the float64 transcription, on the shared sizes in two groups."""

import numpy as np

from tests.cases import GROUP_OF_SIZE, gradients, initial_params
from tests.reference.ademamix import ademamix as transcription
from tests.rules._drive import group_hyperparameters, run_rule

STEPS = 60
# Non-default hyperparameters, warmup on, and a second group of its own: (first, second).
SETTINGS = {
    "decoupled": (
        {"lr": 1e-2, "betas": (0.8, 0.99, 0.999), "alpha": 3.0, "t_alpha_beta3": 40.0, "eps": 1e-6, "weight_decay": 0.1},
        {"lr": 3e-3, "alpha": 8.0, "t_alpha_beta3": None},
    ),
    "l2": (
        {"lr": 5e-3, "betas": (0.85, 0.995, 0.9995), "t_alpha_beta3": 25, "weight_decay": 0.05, "decoupled_weight_decay": False},
        {"weight_decay": 0.0, "t_alpha_beta3": 100.0, "eps": 1e-3},
    ),
}


def problem():
    """``(params, grads, group of each parameter)``: float64, sizes 1, 7, 17 and 4097."""
    return initial_params("float64"), gradients("float64", steps=STEPS), GROUP_OF_SIZE


def hyperparameters(setting, group):
    first, second = SETTINGS[setting]
    return {**first, **second} if group else dict(first)


def rule_trajectory(setting):
    """The rule's final parameters and state, parameter by parameter."""
    params, grads, groups = problem()
    finals = []
    for index, (param, group) in enumerate(zip(params, groups)):
        hyper = group_hyperparameters("AdEMAMix", hyperparameters(setting, group))
        finals.append(run_rule("AdEMAMix", hyper, param, [step[index] for step in grads]))
    return finals


def transcription_trajectory(setting):
    params, grads, groups = problem()
    return [
        transcription(param, [step[index] for step in grads], **hyperparameters(setting, group))
        for index, (param, group) in enumerate(zip(params, groups))
    ]


def assert_close(actual, expected, what, relative=1e-12):
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    error = float(np.max(np.abs(np.asarray(actual) - expected)))
    assert error <= relative * scale, f"{what}: max|a-b| = {error:.3e} > {relative} * {scale:.3e}"
