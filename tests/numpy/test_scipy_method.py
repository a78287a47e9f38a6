"""adamkit.as_scipy_method: the NumPy optimizers as a custom method of scipy.optimize.minimize."""

import numpy as np
import pytest

import adamkit

scipy_optimize = pytest.importorskip("scipy.optimize")

X0 = np.array([-1.2, 1.0, 0.5])
OPTIONS = {"lr": 1e-2, "betas": (0.8, 0.95), "maxiter": 300}


def test_scipy_runs_the_same_iterations_as_adamkit_minimize():
    through_scipy = scipy_optimize.minimize(scipy_optimize.rosen, X0, jac=scipy_optimize.rosen_der,
                                            method=adamkit.as_scipy_method("adam"), options=OPTIONS)
    direct = adamkit.minimize(scipy_optimize.rosen, X0, jac=scipy_optimize.rosen_der, method="adam", options=OPTIONS)
    assert isinstance(through_scipy, scipy_optimize.OptimizeResult)
    np.testing.assert_array_equal(through_scipy.x, direct.x)
    for field in ("fun", "nit", "nfev", "njev", "status", "success", "message"):
        assert through_scipy[field] == direct[field], field
    assert through_scipy.fun < scipy_optimize.rosen(X0) / 10


def test_jac_true_through_scipys_memoization():
    def both(x):
        return scipy_optimize.rosen(x), scipy_optimize.rosen_der(x)

    through_scipy = scipy_optimize.minimize(both, X0, jac=True, method=adamkit.as_scipy_method("RMSprop"),
                                            options={"lr": 1e-3, "maxiter": 50})
    direct = adamkit.minimize(both, X0, jac=True, method="rmsprop", options={"lr": 1e-3, "maxiter": 50})
    np.testing.assert_array_equal(through_scipy.x, direct.x)
    assert through_scipy.nit == 50


def test_scipys_tol_and_args_reach_adamkit():
    def halving_square(x, scale):
        return float(scale * x @ x), 2 * scale * x

    through_scipy = scipy_optimize.minimize(halving_square, [1.0], args=(1.0,), jac=True, tol=1e-3,
                                            method=adamkit.as_scipy_method("sgd"), options={"lr": 0.25})
    direct = adamkit.minimize(halving_square, [1.0], args=(1.0,), jac=True, method="sgd", tol=1e-3,
                              options={"lr": 0.25})
    assert through_scipy.success and through_scipy.nit == direct.nit
    assert through_scipy.message == direct.message


def test_finite_differences_when_scipy_gets_no_jac():
    result = scipy_optimize.minimize(scipy_optimize.rosen, X0, method=adamkit.as_scipy_method("adam"),
                                     options={"lr": 1e-2, "maxiter": 20})
    exact = adamkit.minimize(scipy_optimize.rosen, X0, jac=scipy_optimize.rosen_der, options={"lr": 1e-2, "maxiter": 20})
    assert result.nfev == 21 * 7
    np.testing.assert_allclose(result.x, exact.x, rtol=1e-6)


def test_a_new_style_callback_through_scipy_can_stop():
    seen = []

    def callback(intermediate_result):
        seen.append(intermediate_result.fun)
        if len(seen) == 4:
            raise StopIteration

    result = scipy_optimize.minimize(scipy_optimize.rosen, X0, jac=scipy_optimize.rosen_der, callback=callback,
                                     method=adamkit.as_scipy_method("adam"), options={"lr": 1e-3})
    assert (result.nit, result.status, len(seen)) == (4, 99, 4)
    assert seen[-1] == result.fun


@pytest.mark.parametrize(
    "extra,message",
    [
        ({"bounds": [(-2, 2)] * 3}, "bounds"),
        ({"constraints": {"type": "ineq", "fun": lambda x: x[0]}}, "constraints"),
        ({"hess": scipy_optimize.rosen_hess}, "hess"),
        ({"hessp": scipy_optimize.rosen_hess_prod}, "hessp"),
    ],
)
def test_bounds_constraints_and_hessians_are_refused(extra, message):
    with pytest.raises(ValueError, match=message):
        scipy_optimize.minimize(scipy_optimize.rosen, X0, jac=scipy_optimize.rosen_der,
                                method=adamkit.as_scipy_method("adam"), **extra)


def test_unknown_options_through_scipy_raise_type_error():
    with pytest.raises(TypeError, match="'disp'"):
        scipy_optimize.minimize(scipy_optimize.rosen, X0, method=adamkit.as_scipy_method("adam"),
                                options={"disp": True})


def test_an_unknown_method_is_refused_at_once():
    with pytest.raises(ValueError, match="Invalid method: 'bfgs'"):
        adamkit.as_scipy_method("bfgs")
    assert adamkit.as_scipy_method("Adam").__name__ == "adamkit_adam"
