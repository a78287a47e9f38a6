"""The test functions, their gradients, and the paths the optimizers take on them."""

import math

import numpy as np
import pytest

import adamkit.numpy
from adamkit import rules
from adamkit.trajectories import (
    FUNCTIONS,
    OPTIMIZERS,
    SHIFTED,
    UncorrectedAdam,
    descend,
    l2_minimum,
    step_lengths,
    trace,
)
from adamkit.trajectories import variants

ALL = [*FUNCTIONS.values(), SHIFTED]
POINTS = [(-1.3, 0.7), (0.4, -2.1), (2.2, 1.9), (0.05, 0.3)]


@pytest.mark.parametrize("function", ALL, ids=lambda f: f.name)
@pytest.mark.parametrize("point", POINTS)
def test_gradient_matches_central_differences(function, point):
    h = 1e-6
    x, y = point
    numeric = [
        (function.value(x + h, y) - function.value(x - h, y)) / (2 * h),
        (function.value(x, y + h) - function.value(x, y - h)) / (2 * h),
    ]
    np.testing.assert_allclose(function.gradient(np.array(point)), numeric, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("function", ALL, ids=lambda f: f.name)
def test_the_reference_point_is_stationary_and_the_minimum_is_zero(function):
    np.testing.assert_allclose(function.gradient(np.array(function.reference)), [0, 0], atol=1e-12)
    assert function.value(*function.reference) == pytest.approx(0, abs=1e-12)


def test_known_values():
    assert FUNCTIONS["rosenbrock"].value(-1.2, 1.0) == pytest.approx(24.2)
    assert FUNCTIONS["beale"].value(0.0, 0.0) == pytest.approx(1.5**2 + 2.25**2 + 2.625**2)
    assert FUNCTIONS["rastrigin"].value(1.0, 1.0) == pytest.approx(2.0)
    assert FUNCTIONS["saddle"].value(0.5, 2.0) == pytest.approx(-3.75)
    assert FUNCTIONS["ill-conditioned"].value(1.0, 1.0) == pytest.approx(5.05)


def test_every_function_has_a_learning_rate_for_each_optimizer_it_draws():
    for function in FUNCTIONS.values():
        drawn = function.optimizers or tuple(OPTIMIZERS)
        assert all(function.lrs[name] > 0 for name in drawn), function.name
        assert function.lr_note


def test_a_path_starts_at_the_start_and_records_every_step():
    function = FUNCTIONS["rosenbrock"]
    path = descend(function, lambda params: adamkit.numpy.Adam(params, lr=0.01), 17)
    assert path.shape == (18, 2)
    assert tuple(path[0]) == function.start
    assert np.all(step_lengths(path) > 0)


def test_sgd_on_the_noisy_bowl_follows_the_recursion_with_the_seeded_noise():
    function, lr, steps, seed = FUNCTIONS["noisy"], 0.07, 25, 11
    path = descend(function, lambda params: adamkit.numpy.SGD(params, lr=lr), steps, seed=seed)
    noise = np.random.default_rng(seed)
    point = np.array(function.start)
    for t in range(1, steps + 1):
        # ∇f(θ) = θ for f = ‖θ‖²/2, plus σ·ξ with σ = function.noise.
        point = point - lr * (point + function.noise * noise.standard_normal(2))
        np.testing.assert_allclose(path[t], point, rtol=1e-12)
    other = descend(function, lambda params: adamkit.numpy.SGD(params, lr=lr), steps, seed=seed + 1)
    assert not np.allclose(other[1:], path[1:])


def test_trace_labels_each_path_with_its_final_distance():
    function = FUNCTIONS["beale"]
    trajectories = trace(function, ["sgd", "amsgrad"], steps=30)
    assert [t.label for t in trajectories] == ["SGD", "AMSGrad"]
    for t in trajectories:
        assert t.lr == function.lrs[t.name]
        assert t.final_distance == math.hypot(t.path[-1][0] - 3.0, t.path[-1][1] - 0.5)


def test_uncorrected_adam_is_the_rule_with_both_corrections_equal_to_one():
    """With t huge, 1 − β^t is exactly 1, so adamkit.rules.adam applies no correction."""
    lr, betas, eps = 0.03, (0.8, 0.99), 1e-6
    rng = np.random.default_rng(5)
    param = rng.standard_normal(7)
    expected, m, v = param.copy(), np.zeros(7), np.zeros(7)
    opt = UncorrectedAdam([param], lr=lr, betas=betas, eps=eps)
    for _ in range(6):
        grad = rng.standard_normal(7)
        opt.step([grad])
        expected, m, v, _ = rules.adam(expected, grad, m, v, step=1e15, lr=lr, betas=betas, eps=eps)
        np.testing.assert_allclose(param, expected, rtol=1e-14, atol=1e-15)


def test_the_first_uncorrected_step_is_the_factor_times_adams():
    function = FUNCTIONS["ill-conditioned"]
    corrected, uncorrected = variants.bias_correction(function, lr=0.1, steps=3)
    ratio = step_lengths(uncorrected.path) / step_lengths(corrected.path)
    beta1, beta2 = variants.BETAS
    assert ratio[0] == pytest.approx((1 - beta1) / math.sqrt(1 - beta2), rel=1e-6)
    assert [t.label for t in (corrected, uncorrected)] == ["Adam", "Adam without bias correction"]


def test_adam_with_l2_comes_to_rest_at_the_l2_minimum_and_adamw_inside_one_over_lambda():
    decay = 0.5
    (adam_l2, adamw), markers = variants.weight_decay(decay=decay, lr=0.05, steps=4000)
    np.testing.assert_allclose(adam_l2.path[-1], l2_minimum(decay), atol=1e-3)
    # AdamW's step is bounded by about lr, and its decay by lr·λ·|θ|, so |θ| stays near 1/λ.
    assert np.all(np.abs(adamw.path[-200:]) <= 1 / decay + 0.05)
    assert adamw.path[-1][0] == pytest.approx(1 / decay, abs=0.1)
    assert list(markers.values()) == [SHIFTED.reference, l2_minimum(decay)]


def test_l2_minimum_is_where_the_penalised_gradient_vanishes():
    for decay in (0.0, 0.1, 2.0):
        point = np.array(l2_minimum(decay))
        np.testing.assert_allclose(SHIFTED.gradient(point) + decay * point, [0, 0], atol=1e-12)


def test_the_stories_the_docs_tell():
    """Claims docs/trajectories.md makes about the default paths."""
    ill = {t.name: t.final_distance for t in trace(FUNCTIONS["ill-conditioned"], list(OPTIMIZERS))}
    assert ill["sgd"] > 1 and ill["rmsprop"] < 1e-3 and ill["adam"] < 0.1
    saddle = {t.name: t.final_distance for t in trace(FUNCTIONS["saddle"], list(OPTIMIZERS))}
    assert saddle["sgd"] < 0.1 and min(saddle[name] for name in ("adam", "rmsprop", "adamax")) > 1
    rastrigin = trace(FUNCTIONS["rastrigin"], list(OPTIMIZERS))
    assert all(t.final_distance > 1 for t in rastrigin)


def test_schedule_free_is_drawn_at_its_evaluation_point_as_schedulefree_evaluates_it():
    """The gradient is taken at y (the parameter while training); the path is x, which
    ``schedulefree``'s ``eval()`` puts in the parameter, checked step by step."""
    torch = pytest.importorskip("torch")
    schedulefree = pytest.importorskip("schedulefree")
    function, steps = FUNCTIONS["rosenbrock"], 25
    assert "evaluation point x" in OPTIMIZERS["schedulefree"].label
    path = trace(function, ["schedulefree"], steps=steps)[0].path
    param = torch.nn.Parameter(torch.tensor(function.start, dtype=torch.float64))
    reference = schedulefree.AdamWScheduleFree([param], lr=function.lrs["schedulefree"])
    training_points = []
    for t in range(1, steps + 1):
        reference.train()
        param.grad = torch.from_numpy(function.gradient(param.detach().numpy()))
        reference.step()
        training_points.append(param.detach().numpy().copy())
        reference.eval()
        np.testing.assert_allclose(path[t], param.detach().numpy(), rtol=1e-12, atol=1e-15)
    assert np.abs(path[1:] - np.array(training_points)).max() > 1e-3  # x is not y
