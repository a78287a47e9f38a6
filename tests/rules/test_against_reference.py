"""``adamkit.rules`` against the independent float64 transcriptions in ``tests/reference``.

Every case of the shared table runs for 50 steps on every size, each parameter with its
group's hyperparameters, driven as the front ends drive the rules. The reference gets only
the case's keywords, so it also checks the specs' defaults against its own (torch's).
"""

import numpy as np
import pytest

from adamkit.specs import SCALAR_STATE_KEYS
from tests.cases import CASES, GROUP_OF_SIZE, STEPS, gradients, initial_params
from tests.reference.adam import adam as reference_adam
from tests.reference.trajectories import reference_trajectory
from tests.rules._compare import assert_close, max_relative_error
from tests.rules._drive import group_hyperparameters, run_rule

FLOAT64_RELATIVE = 1e-12
# float32 rules against the float64 reference fed the same float32 inputs. The unit roundoff
# is 2**-24 ≈ 6e-8; each step rounds a handful of times and these maps propagate errors at
# most about linearly, so 50 steps give ~1e-5 of the largest magnitude along the trajectory.
# A final value can be ~10x smaller than that after cancellation (the first SGD-Nesterov
# parameter falls from 0.12 to 0.004), hence 1e-4: still far below any formula error.
FLOAT32_RELATIVE = 1e-4
TOLERANCES = {"float64": FLOAT64_RELATIVE, "float32": FLOAT32_RELATIVE}


def group_overrides(case, group):
    """The constructor keywords, then the second group's own, as torch applies them."""
    return (case.hyper, case.second_group) if group == 1 else (case.hyper,)


def merged(overrides):
    return {key: value for override in overrides for key, value in override.items()}


def check_against_reference(optimizer, overrides, dtype, params, grads):
    relative = TOLERANCES[dtype]
    for index, param in enumerate(params):
        param_grads = [step_grads[index] for step_grads in grads]
        hyper = group_hyperparameters(optimizer, *overrides[index])
        final, state = run_rule(optimizer, hyper, param, param_grads)
        expected, expected_state = reference_trajectory(
            optimizer, merged(overrides[index]), param, param_grads
        )
        what = f"{optimizer} size {param.size}"
        assert final.dtype == np.dtype(dtype) and final.shape == param.shape, what
        assert_close(final, expected, relative, f"{what} param")
        expected_state.pop("step", None)
        assert set(state) == set(expected_state), f"{what} state keys"
        for key, value in state.items():
            if key in SCALAR_STATE_KEYS:
                assert float(value) == expected_state[key], f"{what} {key}"
                continue
            assert value.dtype == np.dtype(dtype), f"{what} {key} dtype"
            assert_close(value, expected_state[key], relative, f"{what} {key}")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_rule_matches_reference(case, dtype):
    overrides = [group_overrides(case, group) for group in GROUP_OF_SIZE]
    check_against_reference(
        case.optimizer, overrides, dtype, initial_params(dtype), gradients(dtype, steps=STEPS)
    )


EPS_HAT_HYPER = (
    {"lr": 1e-2, "eps": 1e-3, "eps_hat": True},
    {"lr": 1e-2, "eps": 1e-3, "betas": (0.8, 0.95), "weight_decay": 0.1, "amsgrad": True, "eps_hat": True},
    {"lr": 3e-3, "eps": 1e-2, "maximize": True, "eps_hat": True},
)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("hyper", EPS_HAT_HYPER, ids=str)
def test_adam_eps_hat_matches_reference(hyper, dtype):
    params, grads = initial_params(dtype), gradients(dtype, steps=STEPS)
    check_against_reference("Adam", [(hyper,)] * len(params), dtype, params, grads)


@pytest.mark.parametrize("hyper", EPS_HAT_HYPER, ids=str)
def test_eps_hat_cases_are_not_plain_adam(hyper):
    """The ε̂ cases above would fail if the flag were ignored: ε matters for these gradients."""
    params, grads = initial_params("float64"), gradients("float64", steps=STEPS)
    plain = {key: value for key, value in hyper.items() if key != "eps_hat"}
    differences = [
        max_relative_error(
            reference_adam(param, [g[index] for g in grads], **hyper)[0],
            reference_adam(param, [g[index] for g in grads], **plain)[0],
        )
        for index, param in enumerate(params)
    ]
    assert max(differences) > 100 * FLOAT32_RELATIVE
