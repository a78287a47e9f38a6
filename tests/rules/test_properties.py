"""Invariants of the rules, checked with hypothesis on random hyperparameters and inputs.

Each rule is driven as the front ends drive it (``tests/rules/_drive.py``), from torch's
initial state, over a few random gradients.
"""

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from adamkit.specs import SCALAR_STATE_KEYS
from tests.rules._drive import SPECS, group_hyperparameters, initial_state, step_rule, trajectory

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

PROPERTY_SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
NAMES = tuple(SPECS)
MAXIMIZING = tuple(name for name in NAMES if "maximize" in SPECS[name].defaults)
ADAMS = ("Adam", "AdamW")


def floats(dtype, low, high):
    width = 32 if np.dtype(dtype) == np.float32 else 64
    return st.floats(low, high, width=width, allow_nan=False, allow_infinity=False, allow_subnormal=False)


learning_rates = st.floats(1e-4, 0.5)
epsilons = st.floats(1e-10, 1e-2)
weight_decays = st.sampled_from([0.0, 0.1]) | st.floats(0.0, 0.5)
betas = st.tuples(st.floats(0.0, 0.99), st.floats(0.5, 0.9999))


@st.composite
def sgd_hyperparameters(draw):
    momentum = draw(st.sampled_from([0.0]) | st.floats(0.1, 0.99))
    dampening = draw(st.sampled_from([0.0]) | st.floats(0.0, 0.5))
    nesterov = momentum > 0 and dampening == 0 and draw(st.booleans())
    return dict(
        lr=draw(learning_rates),
        momentum=momentum,
        dampening=dampening,
        weight_decay=draw(weight_decays),
        nesterov=nesterov,
        maximize=draw(st.booleans()),
    )


_ADAM_HYPERPARAMETERS = dict(
    lr=learning_rates,
    betas=betas,
    eps=epsilons,
    weight_decay=weight_decays,
    amsgrad=st.booleans(),
    maximize=st.booleans(),
    eps_hat=st.booleans(),
)
HYPERPARAMETERS = {
    "Adam": st.fixed_dictionaries({**_ADAM_HYPERPARAMETERS, "decoupled_weight_decay": st.booleans()}),
    "AdamW": st.fixed_dictionaries(_ADAM_HYPERPARAMETERS),
    "Adamax": st.fixed_dictionaries(
        dict(lr=learning_rates, betas=betas, eps=epsilons, weight_decay=weight_decays, maximize=st.booleans())
    ),
    "Adadelta": st.fixed_dictionaries(
        dict(
            lr=st.floats(1e-3, 2.0),
            rho=st.floats(0.0, 0.99),
            eps=epsilons,
            weight_decay=weight_decays,
            maximize=st.booleans(),
        )
    ),
    "SGD": sgd_hyperparameters(),
    "Adagrad": st.fixed_dictionaries(
        dict(
            lr=learning_rates,
            lr_decay=st.floats(0.0, 0.5),
            weight_decay=weight_decays,
            initial_accumulator_value=st.floats(0.0, 1.0),
            eps=epsilons,
            maximize=st.booleans(),
        )
    ),
    "AdaBelief": st.fixed_dictionaries(
        {
            **{key: value for key, value in _ADAM_HYPERPARAMETERS.items() if key != "eps_hat"},
            "decoupled_weight_decay": st.booleans(),
            "rectify": st.booleans(),
        }
    ),
    "RMSprop": st.fixed_dictionaries(
        dict(
            lr=learning_rates,
            alpha=st.floats(0.5, 0.999),
            eps=epsilons,
            weight_decay=weight_decays,
            momentum=st.sampled_from([0.0]) | st.floats(0.1, 0.99),
            centered=st.booleans(),
            maximize=st.booleans(),
        )
    ),
    "Adafactor": st.fixed_dictionaries(
        dict(
            lr=learning_rates,
            beta2_decay=st.floats(-1.0, -0.3),
            # eps1 >= 1e-15, so that eps1**2 is a normal float32: below, a zero gradient gives
            # 0 * rsqrt(0) = NaN, in torch too (and NumPy warns).
            eps=st.tuples(st.none() | st.floats(1e-15, 1e-3), st.floats(1e-4, 1e-2)),
            d=st.floats(1.0, 3.0),
            weight_decay=weight_decays,
            maximize=st.booleans(),
        )
    ),
    "RAdam": st.fixed_dictionaries(
        dict(
            lr=learning_rates,
            betas=betas,
            eps=epsilons,
            weight_decay=weight_decays,
            decoupled_weight_decay=st.booleans(),
            maximize=st.booleans(),
        )
    ),
    "NAdam": st.fixed_dictionaries(
        dict(
            lr=learning_rates,
            betas=betas,
            eps=epsilons,
            weight_decay=weight_decays,
            momentum_decay=st.floats(0.0, 0.1),
            decoupled_weight_decay=st.booleans(),
            maximize=st.booleans(),
        )
    ),
    "ADOPT": st.fixed_dictionaries(
        dict(
            lr=learning_rates,
            betas=betas,
            eps=epsilons,
            weight_decay=weight_decays,
            decoupled_weight_decay=st.booleans(),
            maximize=st.booleans(),
        )
    ),
    "Lion": st.fixed_dictionaries(
        dict(
            lr=learning_rates,
            betas=betas,
            weight_decay=weight_decays,
            decoupled_weight_decay=st.booleans(),
            maximize=st.booleans(),
        )
    ),
    "AdEMAMix": st.fixed_dictionaries(
        dict(
            lr=learning_rates,
            betas=st.tuples(st.floats(0.5, 0.95), st.floats(0.9, 0.999), st.floats(0.9, 0.9999)),
            alpha=st.floats(0.0, 10.0),
            t_alpha_beta3=st.none() | st.floats(1.0, 100.0),
            eps=epsilons,
            weight_decay=weight_decays,
            decoupled_weight_decay=st.booleans(),
            maximize=st.booleans(),
        )
    ),
    "LAMB": st.fixed_dictionaries(
        dict(
            lr=learning_rates,
            betas=betas,
            eps=epsilons,
            weight_decay=weight_decays,
            trust_clip=st.none() | st.floats(0.1, 10.0),
            maximize=st.booleans(),
        )
    ),
    "AdamWScheduleFree": st.fixed_dictionaries(
        dict(
            lr=learning_rates,
            betas=betas,
            eps=epsilons,
            weight_decay=weight_decays,
            warmup_steps=st.integers(0, 10),
            r=st.floats(0.0, 2.0),
            weight_lr_power=st.floats(0.0, 3.0),
        )
    ),
}


@dataclass
class Problem:
    name: str
    hyper: dict
    param: np.ndarray
    grads: list

    @property
    def spec(self):
        return SPECS[self.name]

    def run(self, **changes):
        """Yield ``(param, state)`` after each step, with ``changes`` to the hyperparameters."""
        return trajectory(self.spec, {**self.hyper, **changes}, self.param, self.grads)


@st.composite
def problems(draw, names=NAMES, dtypes=("float32", "float64"), steps=(1, 6), grad_range=(-1e3, 1e3), **fixed):
    """A rule, full hyperparameters (``fixed`` overriding the drawn ones), a parameter, gradients."""
    name = draw(st.sampled_from(names))
    hyper = group_hyperparameters(name, draw(HYPERPARAMETERS[name]), fixed)
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=6))
    param = draw(hnp.arrays(dtype, shape, elements=floats(dtype, -10.0, 10.0)))
    count = draw(st.integers(*steps))
    grads = [draw(hnp.arrays(dtype, shape, elements=floats(dtype, *grad_range))) for _ in range(count)]
    return Problem(name, hyper, param, grads)


def nonzero_gradients(dtype):
    """Gradient entries with 1e-3 <= |g| <= 1e3, far from any ε drawn here."""
    magnitude = floats(dtype, 1e-3, 1e3)
    return st.tuples(magnitude, st.booleans()).map(lambda pair: -pair[0] if pair[1] else pair[0])


def final(run):
    result = None
    for result in run:
        pass
    return result


# Purity, dtypes and shapes.


@PROPERTY_SETTINGS
@given(problems())
def test_rules_never_modify_their_inputs(problem):
    spec, hyper = problem.spec, problem.hyper
    param, state = problem.param, initial_state(spec, hyper, problem.param)
    group = {**hyper, **spec.group_state}
    for step, grad in enumerate(problem.grads, start=1):
        before = [param.copy(), grad.copy()] + [value.copy() for value in state.values()]
        new_param, new_state = step_rule(spec, hyper, param, grad, state, step, spec.group_count(group))
        after = [param, grad] + list(state.values())
        for original, now in zip(before, after, strict=True):
            np.testing.assert_array_equal(now, original)
        param, state = new_param, new_state


@PROPERTY_SETTINGS
@given(problems())
def test_dtype_and_shape_are_preserved(problem):
    """Each state array keeps its slot's shape: the parameter's, or Adafactor's factors'."""
    shapes = problem.spec.slot_shapes(problem.hyper, problem.param.shape)
    for param, state in problem.run():
        assert param.dtype == problem.param.dtype and param.shape == problem.param.shape
        for key, array in state.items():
            if key in SCALAR_STATE_KEYS:
                continue
            assert array.dtype == problem.param.dtype
            assert array.shape == shapes[key]


# Things that must not move.


@PROPERTY_SETTINGS
@given(problems(lr=0.0))
def test_zero_learning_rate_leaves_params_unchanged(problem):
    for param, _ in problem.run():
        np.testing.assert_array_equal(param, problem.param)


@PROPERTY_SETTINGS
@given(problems(weight_decay=0.0))
def test_zero_gradient_from_fresh_state_leaves_params_unchanged(problem):
    zeros = [np.zeros_like(grad) for grad in problem.grads]
    for param, _ in trajectory(problem.spec, problem.hyper, problem.param, zeros):
        np.testing.assert_array_equal(param, problem.param)


@PROPERTY_SETTINGS
@given(problems(lr=0.0, weight_decay=0.0))
def test_zero_gradient_with_zero_learning_rate_changes_no_moment(problem):
    """Averages of g and g² stay at their initial values when g = 0 and the state starts fresh."""
    zeros = [np.zeros_like(grad) for grad in problem.grads]
    start = initial_state(problem.spec, problem.hyper, problem.param)
    _, state = final(trajectory(problem.spec, problem.hyper, problem.param, zeros))
    keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "square_avg", "acc_delta", "sum", "grad_avg")
    for key in keys + ("row_var", "col_var", "variance"):
        if key in start:
            np.testing.assert_array_equal(state[key], start[key])
    if "momentum_buffer" in state:
        np.testing.assert_array_equal(state["momentum_buffer"], 0.0)


# Symmetry.


@PROPERTY_SETTINGS
@given(problems(names=MAXIMIZING))
def test_maximizing_equals_minimizing_the_negated_gradient(problem):
    maximized = final(problem.run(maximize=True))
    hyper = {**problem.hyper, "maximize": False}
    negated = Problem(problem.name, hyper, problem.param, [-g for g in problem.grads])
    minimized = final(negated.run())
    np.testing.assert_array_equal(maximized[0], minimized[0])
    assert set(maximized[1]) == set(minimized[1])
    for key, value in maximized[1].items():
        np.testing.assert_array_equal(value, minimized[1][key])


# Monotone state.


@PROPERTY_SETTINGS
@given(problems(names=("Adam", "AdamW"), amsgrad=True, steps=(2, 8)))
def test_amsgrad_maximum_never_decreases(problem):
    previous = np.zeros_like(problem.param)
    for _, state in problem.run():
        assert np.all(state["max_exp_avg_sq"] >= previous)
        assert np.all(state["max_exp_avg_sq"] >= state["exp_avg_sq"])
        previous = state["max_exp_avg_sq"]


@PROPERTY_SETTINGS
@given(problems(names=("Adagrad",), steps=(2, 8)))
def test_adagrad_sum_never_decreases(problem):
    previous = np.full_like(problem.param, problem.hyper["initial_accumulator_value"])
    for _, state in problem.run():
        assert np.all(state["sum"] >= previous)
        previous = state["sum"]


@PROPERTY_SETTINGS
@given(problems(names=("Adamax",), weight_decay=0.0, steps=(2, 8)))
def test_adamax_infinity_norm_dominates_the_gradient(problem):
    beta2 = problem.hyper["betas"][1]
    previous = np.zeros_like(problem.param)
    for grad, (_, state) in zip(problem.grads, problem.run()):
        assert np.all(state["exp_inf"] >= np.abs(grad))
        assert np.all(state["exp_inf"] >= beta2 * previous)
        previous = state["exp_inf"]


# Adam's step sizes (Kingma & Ba, Sec. 2.1), with torch's bias correction.


def adam_step_bound(t, beta1, beta2):
    r"""The exact supremum of :math:`|\hat m_t| / \sqrt{\hat v_t}` over all gradient histories.

    With :math:`\hat m_t = \sum_k a_k g_{t-k}`, :math:`\hat v_t = \sum_k b_k g_{t-k}^2`,
    :math:`a_k = (1-\beta_1)\beta_1^k/(1-\beta_1^t)` and :math:`b_k = (1-\beta_2)\beta_2^k/(1-\beta_2^t)`,
    Cauchy–Schwarz gives :math:`|\hat m_t| \le \sqrt{\sum_k a_k^2/b_k}\,\sqrt{\hat v_t}`, with equality
    for :math:`g_{t-k} \propto a_k/b_k`. The paper's Sec. 2.1 bounds (α(1−β1)/√(1−β2) for a single
    non-zero gradient, α "otherwise") are the usual cases of this, not a strict invariant: steadily
    growing gradients exceed α (``test_adam_step_bound_is_attained``).
    """
    series = sum((beta1 * beta1 / beta2) ** k for k in range(t))
    return (1 - beta1) / (1 - beta1**t) * math.sqrt((1 - beta2**t) / (1 - beta2) * series)


@PROPERTY_SETTINGS
@given(problems(names=ADAMS, dtypes=("float64",), steps=(1, 12), weight_decay=0.0))
def test_adam_step_is_bounded(problem):
    """ε > 0, AMSGrad's larger v and ε̂'s regrouping can only shrink the step below the bound."""
    beta1, beta2 = problem.hyper["betas"]
    lr = problem.hyper["lr"]
    previous = problem.param
    for t, (param, _) in enumerate(problem.run(), start=1):
        rounding = 2 * np.spacing(np.maximum(np.abs(param), np.abs(previous)))
        bound = lr * adam_step_bound(t, beta1, beta2) * (1 + 1e-10)
        assert np.all(np.abs(param - previous) <= bound + rounding)
        previous = param


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9), (0.0, 0.99), (0.99, 0.6)])
@pytest.mark.parametrize("steps", [1, 7, 30, 200])
@pytest.mark.parametrize("name", ADAMS)
def test_adam_step_bound_is_attained(name, betas, steps):
    """Gradients g_i ∝ (β1/β2)^(t−i) make |Δ_t| equal the bound. For β = (0.9, 0.999) that is
    1.30·α at t = 30, above the paper's α, and tends to 7.3·α, above even α(1−β1)/√(1−β2) ≈ 3.16·α.
    (ε = 1e-300 only keeps 0/0 away when β1 = 0 makes the earlier gradients zero.)"""
    beta1, beta2 = betas
    lr = 0.01
    param = np.array([0.5, -2.0, 3.0])
    signs = np.array([1.0, -1.0, 1.0])
    grads = [signs * (beta1 / beta2) ** (steps - i) for i in range(1, steps + 1)]
    hyper = group_hyperparameters(name, dict(lr=lr, betas=betas, eps=1e-300, weight_decay=0.0))
    params = [param] + [p for p, _ in trajectory(SPECS[name], hyper, param, grads)]
    expected = lr * adam_step_bound(steps, beta1, beta2)
    np.testing.assert_allclose(params[-2] - params[-1], expected * signs, rtol=1e-9, atol=0)


@PROPERTY_SETTINGS
@given(
    st.sampled_from(ADAMS),
    st.booleans(),
    st.booleans(),
    st.data(),
)
def test_adam_first_step_moves_each_coordinate_by_lr(name, eps_hat, maximize, data):
    """Step 1 is θ − γ·g/(|g| + ε'), ε' = ε (or ε/√(1−β2) with ε̂): γ·sign(g) up to ε'/|g|."""
    hyper = group_hyperparameters(
        name,
        data.draw(HYPERPARAMETERS[name]),
        dict(weight_decay=0.0, eps=data.draw(st.floats(0.0, 1e-8)), eps_hat=eps_hat, maximize=maximize),
    )
    shape = data.draw(hnp.array_shapes(max_dims=2, max_side=6))
    param = data.draw(hnp.arrays("float64", shape, elements=floats("float64", -10.0, 10.0)))
    grad = data.draw(hnp.arrays("float64", shape, elements=nonzero_gradients("float64")))
    (moved, _), = trajectory(SPECS[name], hyper, param, [grad])
    lr, eps, beta2 = hyper["lr"], hyper["eps"], hyper["betas"][1]
    effective_eps = eps / math.sqrt(1 - beta2) if eps_hat else eps
    direction = np.sign(grad) * (-1.0 if maximize else 1.0)
    error = np.abs((param - moved) - lr * direction)
    rounding = 2 * np.spacing(np.maximum(np.abs(param), np.abs(moved)))
    assert np.all(error <= lr * (effective_eps / np.abs(grad) + 1e-12) + rounding)


@pytest.mark.parametrize("eps_hat", [False, True])
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.6), (0.0, 0.9)])
@pytest.mark.parametrize("name", ADAMS)
def test_adam_constant_gradient_steps_by_exactly_lr(name, betas, eps_hat):
    """With a constant gradient the bias corrections make m̂ = g and v̂ = g², so |Δ| = γ."""
    lr = 0.003
    grad = np.array([2.5, -1e-3, 40.0, -7.0])
    param = np.array([1.0, -1.0, 0.25, 3.0])
    hyper = group_hyperparameters(name, dict(lr=lr, betas=betas, eps=0.0, weight_decay=0.0, eps_hat=eps_hat))
    previous = param
    for moved, _ in trajectory(SPECS[name], hyper, param, [grad] * 20):
        np.testing.assert_allclose(previous - moved, lr * np.sign(grad), rtol=1e-10, atol=0)
        previous = moved


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.8, 0.99), (0.5, 0.9)])
@pytest.mark.parametrize("steps", [1, 5, 40])
def test_adam_single_nonzero_gradient_step(betas, steps):
    """The paper's sparse case: after t−1 zero gradients, Δ_t = γ(1−β1)/(1−β1^t)·√((1−β2^t)/(1−β2))."""
    beta1, beta2 = betas
    lr = 0.01
    grad = np.array([0.5, -4.0])
    grads = [np.zeros(2)] * (steps - 1) + [grad]
    hyper = group_hyperparameters("Adam", dict(lr=lr, betas=betas, eps=1e-300))
    param = np.array([1.0, 2.0])
    *_, (before, _), (after, _) = [(param, None)] + list(trajectory(SPECS["Adam"], hyper, param, grads))
    np.testing.assert_array_equal(before, param)
    expected = lr * (1 - beta1) / (1 - beta1**steps) * math.sqrt((1 - beta2**steps) / (1 - beta2))
    np.testing.assert_allclose(before - after, expected * np.sign(grad), rtol=1e-12, atol=0)


# Decoupled weight decay.


@PROPERTY_SETTINGS
@given(problems(names=("Adam", "AdamW"), decoupled_weight_decay=True, steps=(1, 10)), st.floats(0.0, 1.0))
def test_decoupled_decay_with_zero_gradients_shrinks_params_geometrically(problem, weight_decay):
    hyper = {**problem.hyper, "weight_decay": weight_decay}
    zeros = [np.zeros_like(grad) for grad in problem.grads]
    factor = 1 - hyper["lr"] * weight_decay
    roundoff = np.finfo(problem.param.dtype).eps
    # A subnormal parameter is rounded to a multiple of the smallest subnormal, not relatively.
    subnormal_roundoff = np.finfo(problem.param.dtype).smallest_subnormal
    for t, (param, _) in enumerate(trajectory(problem.spec, hyper, problem.param, zeros), start=1):
        expected = problem.param.astype(np.float64) * factor**t
        np.testing.assert_allclose(param, expected, rtol=2 * t * roundoff, atol=t * subnormal_roundoff)
