"""diagnose() against values worked out by hand from the papers' formulas, on small arrays."""

import math

import numpy as np
import pytest

import adamkit.numpy
from adamkit.diagnostics import QUANTILE_LEVELS, diagnose

# Seven elements whose gradient sizes span 1e-6 to 10, one of them exactly zero.
GRAD_1 = np.array([1.0, -2.0, 1e-6, 0.0, 10.0, -3e-4, 0.5])
GRAD_2 = np.array([0.5, -1.0, 2e-6, 0.0, -10.0, 1e-4, 0.25])
START = np.array([0.3, -0.7, 1.1, 2.0, -0.2, 0.05, 1.5])


def two_steps(factory, **hyper):
    """An optimizer over one copy of START after the steps GRAD_1 and GRAD_2, and that copy."""
    param = START.copy()
    opt = factory([param], **hyper)
    opt.step([GRAD_1.copy()])
    opt.step([GRAD_2.copy()])
    return opt, param


def quantiles(values):
    return pytest.approx(list(np.quantile(values, QUANTILE_LEVELS)), rel=1e-12)


def test_adam_with_non_default_betas_and_eps():
    lr, (b1, b2), eps = 0.05, (0.8, 0.95), 1e-3
    opt, param = two_steps(adamkit.numpy.Adam, lr=lr, betas=(b1, b2), eps=eps)
    # Kingma & Ba, Algorithm 1, after t = 2 steps.
    m = b1 * (1 - b1) * GRAD_1 + (1 - b1) * GRAD_2
    v = b2 * (1 - b2) * GRAD_1**2 + (1 - b2) * GRAD_2**2
    bc1, bc2 = 1 - b1**2, 1 - b2**2
    v_hat = v / bc2
    step_size = lr / (np.sqrt(v_hat) + eps)
    update = step_size * m / bc1
    [group] = diagnose(opt)
    assert group.rule == "Adam" and group.elements == 7 and group.step == 2
    assert group.bias_correction1 == pytest.approx(bc1, rel=1e-14)
    assert group.bias_correction2 == pytest.approx(bc2, rel=1e-14)
    assert list(group.step_size) == quantiles(step_size)
    assert group.update_to_weight == pytest.approx(np.linalg.norm(update) / np.linalg.norm(param), rel=1e-12)
    # ε = 1e-3 exceeds √v̂ for the elements with gradients 1e-6, 0 and 1e-4 .. 3e-4.
    assert group.eps_dominated == pytest.approx(np.mean(eps > np.sqrt(v_hat)))
    assert group.eps_dominated == pytest.approx(3 / 7)
    assert group.nonfinite == 0.0


def test_amsgrad_uses_the_largest_second_moment():
    lr, (b1, b2), eps = 0.01, (0.5, 0.6), 1e-8
    opt, param = two_steps(adamkit.numpy.Adam, lr=lr, betas=(b1, b2), eps=eps, amsgrad=True)
    v1 = (1 - b2) * GRAD_1**2
    v2 = b2 * v1 + (1 - b2) * GRAD_2**2
    v_max = np.maximum(v1, v2)
    step_size = lr / (np.sqrt(v_max / (1 - b2**2)) + eps)
    [group] = diagnose(opt)
    assert list(group.step_size) == quantiles(step_size)
    # The elements whose gradient halved keep the first step's larger v.
    assert np.any(v_max > v2)


def test_eps_hat_compares_eps_with_the_uncorrected_root():
    lr, (b1, b2), eps = 0.02, (0.9, 0.99), 1e-3
    opt, _ = two_steps(adamkit.numpy.Adam, lr=lr, betas=(b1, b2), eps=eps, eps_hat=True)
    v = b2 * (1 - b2) * GRAD_1**2 + (1 - b2) * GRAD_2**2
    bc2 = 1 - b2**2
    # θ ← θ − γ √bc2 / bc1 · m / (√v + ε̂): the factor on m̂ is γ √bc2 / (√v + ε̂).
    step_size = lr * math.sqrt(bc2) / (np.sqrt(v) + eps)
    [group] = diagnose(opt)
    assert list(group.step_size) == quantiles(step_size)
    assert group.eps_dominated == pytest.approx(np.mean(eps > np.sqrt(v)))


def test_adamax_reports_lr_over_u_and_only_the_first_bias_correction():
    lr, (b1, b2), eps = 0.01, (0.7, 0.9), 1e-5
    opt, param = two_steps(adamkit.numpy.Adamax, lr=lr, betas=(b1, b2), eps=eps)
    # Kingma & Ba, Algorithm 2: u ← max(β2 u, |g|), with torch's ε inside the max.
    u = np.maximum(b2 * (np.abs(GRAD_1) + eps), np.abs(GRAD_2) + eps)
    m = b1 * (1 - b1) * GRAD_1 + (1 - b1) * GRAD_2
    [group] = diagnose(opt)
    assert list(group.step_size) == quantiles(lr / u)
    update = lr / (1 - b1**2) * m / u
    assert group.update_to_weight == pytest.approx(np.linalg.norm(update) / np.linalg.norm(param), rel=1e-12)
    assert group.bias_correction1 == pytest.approx(1 - b1**2, rel=1e-14)
    assert group.bias_correction2 is None
    assert group.eps_dominated is None


def test_adadelta_reports_the_ratio_of_rms_values_and_no_update():
    lr, rho, eps = 0.5, 0.6, 1e-4
    opt, _ = two_steps(adamkit.numpy.Adadelta, lr=lr, rho=rho, eps=eps)
    # Zeiler, Algorithm 1, twice.
    v1 = (1 - rho) * GRAD_1**2
    delta1 = np.sqrt(eps) / np.sqrt(v1 + eps) * GRAD_1
    u1 = (1 - rho) * delta1**2
    v2 = rho * v1 + (1 - rho) * GRAD_2**2
    delta2 = np.sqrt(u1 + eps) / np.sqrt(v2 + eps) * GRAD_2
    u2 = rho * u1 + (1 - rho) * delta2**2
    [group] = diagnose(opt)
    assert list(group.step_size) == quantiles(lr * np.sqrt(u2 + eps) / np.sqrt(v2 + eps))
    assert group.eps_dominated == pytest.approx(np.mean(eps > v2))
    assert group.update_to_weight is None
    assert group.bias_correction1 is None and group.bias_correction2 is None
    assert group.step == 2


def test_adagrad_with_lr_decay_and_initial_accumulator():
    lr, lr_decay, eps, initial = 0.1, 0.5, 1e-3, 0.25
    opt, _ = two_steps(adamkit.numpy.Adagrad, lr=lr, lr_decay=lr_decay, eps=eps,
                          initial_accumulator_value=initial)
    total = initial + GRAD_1**2 + GRAD_2**2
    step_size = lr / (1 + 1 * lr_decay) / (np.sqrt(total) + eps)
    [group] = diagnose(opt)
    assert list(group.step_size) == quantiles(step_size)
    assert group.eps_dominated == pytest.approx(np.mean(eps > np.sqrt(total)))
    assert group.update_to_weight is None


@pytest.mark.parametrize("centered", [False, True])
def test_rmsprop_with_momentum_reports_lr_times_the_buffer(centered):
    lr, alpha, eps, mu = 0.01, 0.8, 1e-6, 0.5
    opt, param = two_steps(adamkit.numpy.RMSprop, lr=lr, alpha=alpha, eps=eps, momentum=mu,
                              centered=centered)
    v1 = (1 - alpha) * GRAD_1**2
    v2 = alpha * v1 + (1 - alpha) * GRAD_2**2
    mean1 = (1 - alpha) * GRAD_1
    mean2 = alpha * mean1 + (1 - alpha) * GRAD_2
    var1 = v1 - mean1**2 if centered else v1
    var2 = v2 - mean2**2 if centered else v2
    buffer = mu * (GRAD_1 / (np.sqrt(var1) + eps)) + GRAD_2 / (np.sqrt(var2) + eps)
    [group] = diagnose(opt)
    assert list(group.step_size) == quantiles(lr / (np.sqrt(var2) + eps))
    assert group.update_to_weight == pytest.approx(lr * np.linalg.norm(buffer) / np.linalg.norm(param), rel=1e-10)


def test_sgd_with_momentum_reports_a_constant_step_size_and_lr_times_the_buffer():
    lr, mu, dampening = 0.03, 0.7, 0.2
    opt, param = two_steps(adamkit.numpy.SGD, lr=lr, momentum=mu, dampening=dampening)
    buffer = mu * GRAD_1 + (1 - dampening) * GRAD_2
    [group] = diagnose(opt)
    assert group.step_size == pytest.approx([lr] * len(QUANTILE_LEVELS), rel=1e-15)
    assert group.update_to_weight == pytest.approx(lr * np.linalg.norm(buffer) / np.linalg.norm(param), rel=1e-12)
    assert group.step is None and group.bias_correction1 is None
    assert group.eps_dominated is None


def test_nesterov_sgd_has_no_recoverable_update():
    opt, _ = two_steps(adamkit.numpy.SGD, lr=0.01, momentum=0.9, nesterov=True)
    [group] = diagnose(opt)
    assert group.update_to_weight is None
    assert group.elements == 7


def test_nonfinite_counts_every_parameter_and_state_array():
    lr, b2, eps = 0.01, 0.999, 1e-8
    opt, param = two_steps(adamkit.numpy.Adam, lr=lr)
    param[3] = np.nan
    opt.state[0]["exp_avg_sq"][5] = np.nan
    opt.state[0]["exp_avg"][5] = -np.inf
    [group] = diagnose(opt)
    # Three of the 7 × 3 values (param, exp_avg, exp_avg_sq) are not finite.
    assert group.nonfinite == pytest.approx(3 / 21)
    # The quantiles are over the six finite step sizes.
    v = b2 * (1 - b2) * GRAD_1**2 + (1 - b2) * GRAD_2**2
    step_size = lr / (np.sqrt(v / (1 - b2**2)) + eps)
    assert list(group.step_size) == quantiles(np.delete(step_size, 5))
