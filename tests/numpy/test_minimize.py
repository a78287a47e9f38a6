"""adamkit.minimize: convergence, each stopping test, the three kinds of jac, callbacks, results."""

import math
import sys

import numpy as np
import pytest

import adamkit
from adamkit.numpy import _result
from adamkit.numpy._objective import FINITE_DIFFERENCE_STEP


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def rosenbrock_grad(x):
    return np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)])


def rosenbrock_both(x):
    return rosenbrock(x), rosenbrock_grad(x)


CURVATURES = np.array([1.0, 3.0, 10.0])
CENTRE = np.array([1.0, -2.0, 0.5])


def quadratic(x):
    """½ Σ a_i (x_i - c_i)² and its gradient."""
    d = x - CENTRE
    return 0.5 * np.sum(CURVATURES * d * d), CURVATURES * d


def halving_square(x):
    """f = x², g = 2x. SGD with lr = 0.25 halves x exactly: x_k = 2^-k · x_0."""
    return float(x[0] ** 2), 2 * x


def test_adam_converges_on_rosenbrock():
    result = adamkit.minimize(rosenbrock_both, [-1.2, 1.0], jac=True, method="adam",
                              options={"lr": 2e-2, "maxiter": 10000})
    assert result.success, result.message
    assert np.linalg.norm(result.x - 1.0) < 2e-3
    assert result.fun == rosenbrock(result.x)
    np.testing.assert_array_equal(result.jac, rosenbrock_grad(result.x))
    assert 100 < result.nit < 10000
    assert result.nfev == result.njev == result.nit + 1


@pytest.mark.parametrize(
    "method,options",
    [
        ("adam", {"lr": 0.05, "betas": (0.8, 0.99)}),
        ("AdamW", {"lr": 0.05, "weight_decay": 0.0}),
        ("adamax", {"lr": 0.05}),
        ("adadelta", {"lr": 1.0, "rho": 0.95}),
        ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
        ("adagrad", {"lr": 0.5}),
        ("rmsprop", {"lr": 0.01, "alpha": 0.9}),
    ],
)
def test_every_method_finds_the_minimum_of_a_quadratic(method, options):
    result = adamkit.minimize(quadratic, np.zeros(3), jac=True, method=method, options={**options, "maxiter": 5000})
    assert result.success, result.message
    np.testing.assert_allclose(result.x, CENTRE, atol=2e-3)


def test_adamw_decay_moves_the_minimum_towards_zero():
    plain = adamkit.minimize(quadratic, np.zeros(3), jac=True, method="adamw",
                             options={"lr": 0.02, "weight_decay": 0.0, "maxiter": 3000, "ftol": 0})
    decayed = adamkit.minimize(quadratic, np.zeros(3), jac=True, method="adamw",
                               options={"lr": 0.02, "weight_decay": 1.0, "maxiter": 3000, "ftol": 0})
    assert np.all(np.abs(decayed.x) < np.abs(plain.x) - 1e-2)


def test_gtol_stops_at_the_first_iterate_with_a_small_enough_gradient():
    # |g_k| = 2·2^-k·x0 = 2^(1-k) with x0 = 1, computed exactly; the first k with 2^(1-k) <= gtol:
    gtol = 1e-3
    expected = math.ceil(1 - math.log2(gtol))
    result = adamkit.minimize(halving_square, [1.0], jac=True, method="sgd",
                              options={"lr": 0.25, "gtol": gtol, "ftol": 0.0, "maxiter": 100})
    assert (result.status, result.success, result.nit) == (0, True, expected)
    assert "gtol" in result.message
    assert result.x[0] == 2.0**-expected
    assert np.max(np.abs(result.jac)) <= gtol < 2 * np.max(np.abs(result.jac))


@pytest.mark.parametrize("scale,offset,ftol", [(1.0, 0.0, 1e-7), (1.0, 1e4, 1e-7), (1e6, 0.0, 0.8)])
def test_ftol_stops_at_the_first_small_enough_relative_change(scale, offset, ftol):
    # SGD with lr = 1/(4·scale) halves x, so f_k = scale·4^-k + offset and |f_k - f_{k-1}| = 3·scale·4^-k.
    def fun(x):
        return float(scale * x[0] ** 2 + offset), 2 * scale * x

    def f(k):
        return scale * 4.0**-k + offset

    def change_is_small(k):
        return abs(f(k) - f(k - 1)) <= ftol * max(abs(f(k)), abs(f(k - 1)), 1.0)

    expected = next(k for k in range(1, 100) if change_is_small(k))
    result = adamkit.minimize(fun, [1.0], jac=True, method="sgd",
                              options={"lr": 0.25 / scale, "ftol": ftol, "gtol": 0.0, "maxiter": 100})
    assert (result.status, result.success, result.nit) == (0, True, expected)
    assert "ftol" in result.message


def test_maxiter_is_respected():
    result = adamkit.minimize(rosenbrock_both, [-1.2, 1.0], jac=True, options={"maxiter": 7, "lr": 1e-3})
    assert (result.status, result.success, result.nit, result.nfev, result.njev) == (1, False, 7, 8, 8)
    assert "iterations" in result.message
    assert result.fun == rosenbrock(result.x) < rosenbrock(np.array([-1.2, 1.0]))


def test_maxiter_zero_evaluates_x0_only():
    x0 = np.array([-1.2, 1.0])
    result = adamkit.minimize(rosenbrock, x0, jac=rosenbrock_grad, options={"maxiter": 0})
    np.testing.assert_array_equal(result.x, x0)
    assert (result.nit, result.nfev, result.njev, result.status) == (0, 1, 1, 1)
    assert result.fun == rosenbrock(x0)


def test_tol_sets_gtol_and_ftol_unless_options_do():
    by_tol = adamkit.minimize(halving_square, [1.0], jac=True, method="sgd", tol=1e-3, options={"lr": 0.25})
    explicit = adamkit.minimize(halving_square, [1.0], jac=True, method="sgd",
                                options={"lr": 0.25, "gtol": 1e-3, "ftol": 1e-3})
    assert by_tol.nit == explicit.nit and by_tol.message == explicit.message
    only_ftol = adamkit.minimize(halving_square, [1.0], jac=True, method="sgd", tol=1e-3,
                                 options={"lr": 0.25, "gtol": 0.0})
    assert "ftol" in only_ftol.message


def test_a_nonfinite_value_stops_with_status_3():
    def fun(x):
        return (np.nan if x[0] < 0.75 else x[0] ** 2), 2 * x

    result = adamkit.minimize(fun, [1.0], jac=True, method="sgd", options={"lr": 0.25, "maxiter": 50})
    assert (result.status, result.success, result.nit) == (3, False, 1)


def _smooth(x, scale):
    """Σ scale·exp(x_i/2) + x_i⁴/4 - x_i, and its gradient; ``scale`` tests ``args``."""
    return float(np.sum(scale * np.exp(x / 2) + x**4 / 4 - x)), scale * np.exp(x / 2) / 2 + x**3 - 1


@pytest.mark.parametrize("n", [1, 7])
def test_jac_true_callable_and_finite_differences_agree(n):
    x0 = np.linspace(-1.5, 2.0, n)
    options = {"lr": 0.02, "maxiter": 40}
    both = adamkit.minimize(_smooth, x0, args=(0.7,), jac=True, options=options)
    separate = adamkit.minimize(lambda x, s: _smooth(x, s)[0], x0, args=(0.7,),
                                jac=lambda x, s: _smooth(x, s)[1], options=options)
    numeric = adamkit.minimize(lambda x, s: _smooth(x, s)[0], x0, args=(0.7,), jac=None, options=options)
    np.testing.assert_array_equal(both.x, separate.x)
    assert both.nit == separate.nit == numeric.nit == 40
    np.testing.assert_allclose(numeric.x, both.x, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(numeric.jac, both.jac, rtol=1e-7, atol=1e-8)
    assert (both.nfev, both.njev) == (41, 41)
    assert (separate.nfev, separate.njev) == (41, 41)
    assert (numeric.nfev, numeric.njev) == (41 * (2 * n + 1), 41)


def test_central_differences_use_the_documented_step():
    # For a cubic the central difference is exact up to the h² term: (f(x+h)-f(x-h))/2h = 3x² + h².
    x0 = np.array([0.5, -3.0])
    result = adamkit.minimize(lambda x: float(np.sum(x**3)), x0, jac=None, options={"maxiter": 0})
    h = np.finfo(float).eps ** (1 / 3) * np.maximum(1.0, np.abs(x0))
    assert FINITE_DIFFERENCE_STEP == np.finfo(float).eps ** (1 / 3)
    np.testing.assert_allclose(result.jac, 3 * x0**2 + h**2, rtol=1e-9)
    assert not np.allclose(result.jac, 3 * x0**2, rtol=1e-12, atol=0)


def test_noisy_minibatch_least_squares_reaches_the_true_solution():
    data_rng = np.random.default_rng(0)
    features = data_rng.standard_normal((2000, 5))
    true_w = np.array([1.5, -2.0, 0.5, 3.0, -1.0])
    targets = features @ true_w + 0.1 * data_rng.standard_normal(2000)
    best_w = np.linalg.lstsq(features, targets, rcond=None)[0]
    batch_rng = np.random.default_rng(1)

    def minibatch_loss(w):
        rows = batch_rng.integers(0, len(targets), 32)
        residual = features[rows] @ w - targets[rows]
        return 0.5 * np.mean(residual**2), features[rows].T @ residual / len(rows)

    result = adamkit.minimize(minibatch_loss, np.zeros(5), jac=True, method="adam",
                              options={"lr": 0.01, "maxiter": 3000, "ftol": 0.0, "gtol": 0.0})
    assert result.nit == 3000 and result.status == 1
    np.testing.assert_allclose(result.x, best_w, atol=0.03)
    np.testing.assert_allclose(result.x, true_w, atol=0.05)


def test_callback_gets_each_iterate_and_can_stop_by_raising():
    seen = []

    def callback(intermediate_result):
        seen.append((intermediate_result.x.copy(), intermediate_result.fun, intermediate_result.nit))
        if len(seen) == 5:
            raise StopIteration

    result = adamkit.minimize(rosenbrock_both, [-1.2, 1.0], jac=True, options={"lr": 1e-2}, callback=callback)
    assert (result.status, result.success, result.nit) == (99, False, 5)
    assert [nit for _, _, nit in seen] == [1, 2, 3, 4, 5]
    for x, fun, _ in seen:
        assert fun == rosenbrock(x)
    np.testing.assert_array_equal(seen[-1][0], result.x)
    assert len({tuple(x) for x, _, _ in seen}) == 5


def test_callback_can_stop_by_returning_true_and_legacy_callbacks_get_x():
    xs = []

    def legacy(xk):
        xs.append(xk)
        return len(xs) == 3

    result = adamkit.minimize(rosenbrock_both, [-1.2, 1.0], jac=True, callback=legacy)
    assert (result.status, result.nit) == (99, 3)
    assert all(isinstance(x, np.ndarray) and x.shape == (2,) for x in xs)
    np.testing.assert_array_equal(xs[-1], result.x)
    assert xs[-1] is not result.x


def test_a_callback_returning_none_does_not_stop():
    calls = []
    result = adamkit.minimize(rosenbrock_both, [-1.2, 1.0], jac=True, options={"maxiter": 9},
                              callback=lambda intermediate_result: calls.append(1))
    assert result.nit == len(calls) == 9


def test_x0_is_copied_and_reshaped_as_scipy_does():
    x0 = np.array([3.0, -1.0])
    result = adamkit.minimize(quadratic, np.append(x0, 0.0), jac=True, options={"maxiter": 3})
    scalar = adamkit.minimize(lambda x: (float(x[0] ** 2), 2 * x), 2, jac=True, options={"maxiter": 3, "lr": 0.1})
    assert scalar.x.shape == (1,) and scalar.x.dtype == np.float64 and scalar.x[0] < 2
    from_ints = adamkit.minimize(quadratic, [0, 0, 0], jac=True, options={"maxiter": 3})
    from_float32 = adamkit.minimize(quadratic, np.zeros(3, np.float32), jac=True, options={"maxiter": 3})
    assert from_ints.x.dtype == from_float32.x.dtype == np.float64
    np.testing.assert_array_equal(from_ints.x, from_float32.x)
    np.testing.assert_array_equal(x0, [3.0, -1.0])
    assert result.x.shape == (3,)


def test_fun_gets_copies_so_it_cannot_disturb_the_iterate():
    def vandal(x):
        value, grad = quadratic(x)
        x[:] = 1e9
        return value, grad

    calm = adamkit.minimize(quadratic, np.zeros(3), jac=True, options={"maxiter": 20})
    disturbed = adamkit.minimize(vandal, np.zeros(3), jac=True, options={"maxiter": 20})
    np.testing.assert_array_equal(calm.x, disturbed.x)


def test_method_names_are_case_insensitive():
    a = adamkit.minimize(quadratic, np.zeros(3), jac=True, method="RMSprop", options={"maxiter": 5})
    b = adamkit.minimize(quadratic, np.zeros(3), jac=True, method="rmsprop", options={"maxiter": 5})
    np.testing.assert_array_equal(a.x, b.x)


def test_without_scipy_the_result_is_a_dict_with_attributes(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    result = adamkit.minimize(quadratic, np.zeros(3), jac=True, options={"maxiter": 4})
    assert type(result) is _result.OptimizeResult
    assert isinstance(result, dict) and result["x"] is result.x
    assert set(result) == {"x", "fun", "jac", "nit", "nfev", "njev", "status", "success", "message"}
    assert result.nit == 4 and "nit: 4" in repr(result)
    with pytest.raises(AttributeError):
        result.hess


def test_with_scipy_the_result_is_scipys():
    scipy_optimize = pytest.importorskip("scipy.optimize")
    result = adamkit.minimize(quadratic, np.zeros(3), jac=True, options={"maxiter": 4})
    assert isinstance(result, scipy_optimize.OptimizeResult)


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"options": {"lr": 0.1, "learning_rate": 0.1}}, TypeError, "'learning_rate'"),
        ({"options": {"disp": True}}, TypeError, "unknown options for method Adam: 'disp'"),
        ({"method": "sgd", "options": {"betas": (0.9, 0.99)}}, TypeError, "'betas'"),
        ({"method": "adamw", "options": {"decoupled_weight_decay": False}}, TypeError, "decoupled_weight_decay"),
        ({"method": "lbfgs"}, ValueError, "Invalid method: 'lbfgs'"),
        ({"method": None}, TypeError, "method must be a string"),
        ({"options": {"maxiter": -1}}, ValueError, "maxiter"),
        ({"options": {"maxiter": 10.0}}, TypeError, "maxiter"),
        ({"options": {"gtol": -1e-3}}, ValueError, "gtol"),
        ({"tol": float("nan")}, ValueError, r"Invalid tol: nan"),
        ({"tol": -1e-3, "options": {"gtol": 1e-3, "ftol": 1e-3}}, ValueError, r"Invalid tol: -0\.001"),
        ({"options": {"lr": -0.1}}, ValueError, "Invalid lr"),
        ({"jac": "3-point"}, ValueError, "jac must be"),
        ({"x0": np.zeros((2, 2))}, ValueError, "x0 must be 1-dimensional"),
        ({"x0": np.zeros(2, complex)}, TypeError, "x0 must hold real numbers"),
        ({"callback": 3}, TypeError, "callback must be callable"),
    ],
)
def test_bad_arguments_raise_before_fun_is_called(kwargs, error, message):
    calls = []

    def fun(x):
        calls.append(x)
        return float(x @ x)

    arguments = {"x0": np.ones(2), **kwargs}
    with pytest.raises(error, match=message):
        adamkit.minimize(fun, arguments.pop("x0"), **arguments)
    assert calls == []


@pytest.mark.parametrize(
    "fun,jac,message",
    [
        (lambda x: x * 2.0, None, "scalar"),
        (lambda x: (float(x @ x), 2 * x[:1]), True, r"gradient has shape \(1,\)"),
        (lambda x: float(x @ x), True, r"pair \(value, gradient\)"),
        (lambda x: float(x @ x), lambda x: np.ones((2, 1)), r"shape \(2, 1\)"),
        (lambda x: (float(x @ x), 2 * x), None, r"fun returned a pair, but jac=None: pass jac=True"),
        (lambda x: [float(x @ x), 2 * x], False, r"fun returned a pair, but jac=False: pass jac=True"),
        (lambda x: (float(x @ x), 2 * x), lambda x: 2 * x, r"fun returned a pair, but jac=<function"),
    ],
)
def test_bad_objectives_raise_value_error(fun, jac, message):
    with pytest.raises(ValueError, match=message):
        adamkit.minimize(fun, np.ones(2), jac=jac)
