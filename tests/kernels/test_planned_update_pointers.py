"""``native.planned_update_pointers``, the NumPy front end's cached call: the bits of the
reference backend on every case, and the checks of ``update_pointers`` that keep the kernels
inside memory (state pointers for exactly the slots the rule uses, known dtypes), made once."""

import numpy as np
import pytest

from adamkit import specs
from adamkit.kernels import native, reference
from tests.kernels.trajectories import ALL_CASES, assert_same_trajectory, run

pytestmark = pytest.mark.skipif(not native.available(), reason="native kernels not built")


def _pointers(arrays):
    return [array.ctypes.data for array in arrays]


def _planned(spec, hyperparameters, params, grads, states, steps):
    """``native.update`` through a call made ready for these arrays (a slot the rule creates,
    SGD's momentum buffer, is made at its first step by ``native.update``, as the NumPy front
    end's full step does before it plans)."""
    if any(slot.key not in state for state in states for slot in spec.active_slots(hyperparameters)):
        native.update(spec, hyperparameters, params, grads, states, steps)
        return
    state_ptrs = {key: _pointers([state[key] for state in states]) for key in states[0]} if states else {}
    update = native.planned_update_pointers(
        spec, spec.rule_arguments(hyperparameters), params[0].dtype if params else "float32", state_ptrs
    )
    update([p.size for p in params], _pointers(params), _pointers(grads), steps)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ALL_CASES, ids=[case.id for case in ALL_CASES])
def test_planned_calls_match_the_reference_bitwise(case, dtype):
    assert_same_trajectory(run(case, dtype, _planned), run(case, dtype, reference.update))


def test_bfloat16_state_is_that_of_update_pointers():
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(n).astype(np.float32) for n in (5, 33)]
    grads = [rng.standard_normal(n).astype(np.float32) for n in (5, 33)]
    arguments = specs.ADAM.rule_arguments({**specs.ADAM.defaults, "amsgrad": True})
    results = []
    for planned in (False, True):
        ps = [p.copy() for p in params]
        states = [{key: np.zeros(p.size, np.uint16) for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")} for p in ps]
        state_ptrs = {key: _pointers([s[key] for s in states]) for key in states[0]}
        call = (native.planned_update_pointers(specs.ADAM, arguments, "float32", state_ptrs, state_dtype="bfloat16")
                if planned else None)
        for step in (1.0, 2.0, 3.0):
            steps, seeds = [step, step], [int(step) * 7, int(step) * 7 + 1]
            if planned:
                call([p.size for p in ps], _pointers(ps), _pointers(grads), steps, seeds)
            else:
                native.update_pointers(specs.ADAM, arguments, "float32", [p.size for p in ps], _pointers(ps),
                                       _pointers(grads), state_ptrs, steps, state_dtype="bfloat16", rounding_seeds=seeds)
        results.append((ps, states))
    (plain_params, plain_states), (planned_params, planned_states) = results
    for a, b in zip(planned_params, plain_params):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(planned_states, plain_states):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)  # the bfloat16 bits


@pytest.mark.parametrize(
    ("spec", "hyperparameters", "keys"),
    [
        (specs.ADAM, {"amsgrad": True}, ["exp_avg", "exp_avg_sq"]),
        (specs.ADAM, {}, ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]),
        (specs.SGD, {"momentum": 0.9}, []),
        (specs.RMSPROP, {"centered": True}, ["square_avg"]),
    ],
    ids=["amsgrad-without-its-maximum", "a-slot-adam-does-not-use", "momentum-without-its-buffer", "centered-without-grad-avg"],
)
def test_state_pointers_for_other_slots_than_the_rule_uses_are_refused(spec, hyperparameters, keys):
    arguments = spec.rule_arguments({**spec.defaults, **hyperparameters})
    state_ptrs = {key: [0] for key in keys}
    with pytest.raises(ValueError, match="state_ptrs"):
        native.planned_update_pointers(spec, arguments, "float32", state_ptrs)


def test_a_bad_dtype_or_spec_is_refused():
    arguments = specs.SGD.rule_arguments(specs.SGD.defaults)
    with pytest.raises(ValueError, match="Invalid dtype: 'float16'"):
        native.planned_update_pointers(specs.SGD, arguments, "float16", {})
    with pytest.raises(ValueError, match="Invalid state_dtype: 'int8'"):
        native.planned_update_pointers(specs.SGD, arguments, "float32", {}, state_dtype="int8")
    with pytest.raises(TypeError, match="spec must be an adamkit Spec"):
        native.planned_update_pointers(object(), arguments, "float32", {})
