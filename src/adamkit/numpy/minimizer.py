"""``adamkit.minimize``: the interface of :func:`scipy.optimize.minimize` over the NumPy optimizers.

``as_scipy_method`` plugs the same optimizers into SciPy as a custom ``method``.
"""

import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from adamkit import numpy as optimizers
from adamkit import specs
from adamkit.numpy._objective import Objective
from adamkit.numpy._result import optimize_result
from adamkit.validation import check_nonnegative

METHODS = {spec.name.lower(): getattr(optimizers, spec.name) for spec in specs.ALL}
"""Each ``adamkit.numpy`` optimizer under its name in lower case, as ``method`` names it."""
"""Each ``adamkit.numpy`` optimizer under its name in lower case."""

STOPPING_DEFAULTS = {"maxiter": 1000, "gtol": 1e-5, "ftol": 2.220446049250313e-09}

# Termination: (status, message). success is status == 0.
_GTOL = (0, "Optimization terminated successfully: the infinity norm of the gradient is <= gtol.")
_FTOL = (0, "Optimization terminated successfully: the relative change of the objective is <= ftol.")
_MAXITER = (1, "Maximum number of iterations has been exceeded.")
_NONFINITE = (3, "The objective or its gradient is NaN or infinite.")
_CALLBACK = (99, "The callback asked to stop.")


def minimize(
    fun: Callable[..., Any],
    x0: ArrayLike,
    args: tuple[Any, ...] = (),
    jac: bool | Callable[..., Any] | None = None,
    method: str = "adam",
    tol: float | None = None,
    options: Mapping[str, Any] | None = None,
    callback: Callable[..., Any] | None = None,
) -> Any:
    """Minimize ``fun(x, *args)`` over a 1-d float64 ``x`` with one of adamkit's optimizers.

    Parameters follow :func:`scipy.optimize.minimize`:

    - ``x0``: any array-like; a scalar becomes shape ``(1,)``, more than one dimension is an
      error, as in SciPy. It is copied, never modified.
    - ``jac``: ``True`` if ``fun`` returns ``(value, gradient)``; a callable ``jac(x, *args)``;
      or ``None`` for central differences with step ``h_i = ε^(1/3)·max(1, |x_i|)`` (ε the
      float64 machine epsilon), which costs ``2n + 1`` calls of ``fun`` per iteration.
    - ``method``: the name of an ``adamkit.numpy`` optimizer (:data:`adamkit.numpy.minimizer.METHODS`: ``"adam"``,
      ``"adamw"``, ``"sgd"``...), in any case.
    - ``options``: the optimizer's hyperparameters (``lr``, ``betas``, ...) and the stopping
      tests ``maxiter`` (default 1000 steps), ``gtol`` (default 1e-5: stop when
      ``max|g_i| <= gtol``) and ``ftol`` (default 2.2e-9: stop when
      ``|f_k - f_{k-1}| <= ftol·max(|f_k|, |f_{k-1}|, 1)``). ``gtol=0`` or ``ftol=0`` leave
      only exact stationarity; use ``ftol=0`` for a noisy objective. Any other option
      raises ``TypeError``.
    - ``tol``: sets both ``gtol`` and ``ftol`` unless ``options`` gives them.
    - ``callback``: called after every step. As in SciPy, a callback whose only parameter is
      named ``intermediate_result`` receives an ``OptimizeResult`` with ``x``, ``fun`` and
      ``nit``; any other callback receives a copy of ``x``. Raising ``StopIteration`` or
      returning ``True`` stops the run (status 99).

    The tests are made in this order at every iterate, x0 included: a NaN or infinite value
    or gradient (status 3), ``gtol`` (status 0), ``ftol`` (status 0), ``maxiter`` (status 1).

    Returns a ``scipy.optimize.OptimizeResult`` (a compatible dict with attributes when SciPy
    is absent) with ``x``, ``fun``, ``jac`` (all at the final iterate), ``nit`` (optimizer
    steps), ``nfev``, ``njev``, ``status``, ``success`` and ``message``. Schedule-Free steps in
    train mode, its stopping tests read its training point y, and its final iterate is its
    average x (its eval mode), where ``fun`` and ``jac`` are evaluated once more.
    """
    optimizer_class = METHODS[_method_name(method)]
    stopping, hyperparameters = _split_options(optimizer_class, options, tol)
    x = _initial_point(x0)
    objective = Objective(fun, jac, args if isinstance(args, tuple) else (args,))
    notify = _notifier(callback)
    optimizer = specs.in_train_mode(optimizer_class([x], **hyperparameters))
    value, grad = objective(x)
    previous, nit, termination = None, 0, None
    while termination is None:
        if not (math.isfinite(value) and np.isfinite(grad).all()):
            termination = _NONFINITE
        elif np.max(np.abs(grad), initial=0.0) <= stopping["gtol"]:
            termination = _GTOL
        elif previous is not None and _small_change(value, previous, stopping["ftol"]):
            termination = _FTOL
        elif nit >= stopping["maxiter"]:
            termination = _MAXITER
        else:
            optimizer.step([grad])
            nit += 1
            previous = value
            value, grad = objective(x)
            if notify(x, value, nit):
                termination = _CALLBACK
    status, message = termination
    if optimizer.spec.has_modes and nit:
        # Schedule-Free's answer is its average x, where the parameters stand in eval mode.
        optimizer.eval()
        value, grad = objective(x)
    return optimize_result(
        x=x,
        fun=value,
        jac=grad,
        nit=nit,
        nfev=objective.nfev,
        njev=objective.njev,
        status=status,
        success=status == 0,
        message=message,
    )


def as_scipy_method(method: str) -> Callable[..., Any]:
    """A custom ``method`` for :func:`scipy.optimize.minimize` that runs :func:`minimize`.

    >>> import scipy.optimize, adamkit
    >>> result = scipy.optimize.minimize(lambda x: (x**2).sum(), [1.0, -2.0], jac=lambda x: 2 * x,
    ...                                  method=adamkit.as_scipy_method("adam"),
    ...                                  options={"lr": 0.1, "maxiter": 2000})
    >>> bool(abs(result.x).max() < 1e-3)
    True

    ``options`` are those of :func:`minimize`; SciPy's ``tol`` sets ``gtol`` and ``ftol``.
    The optimizers are unconstrained: ``bounds``, ``constraints``, ``hess`` or ``hessp``
    raise ``ValueError``.
    """
    name = _method_name(method)

    def scipy_method(fun, x0, args=(), jac=None, hess=None, hessp=None, bounds=None, constraints=(),
                     callback=None, **options):
        for argument, value in (("bounds", bounds), ("hess", hess), ("hessp", hessp)):
            if value is not None:
                raise ValueError(
                    f"adamkit's {name!r} method is unconstrained and first-order: it cannot use {argument}"
                )
        if not (constraints is None or isinstance(constraints, (list, tuple)) and len(constraints) == 0):
            raise ValueError(f"adamkit's {name!r} method is unconstrained: it cannot use constraints")
        tol = options.pop("tol", None)
        return minimize(fun, x0, args=args, jac=jac, method=name, tol=tol, options=options, callback=callback)

    scipy_method.__name__ = scipy_method.__qualname__ = f"adamkit_{name}"
    return scipy_method


def _small_change(value, previous, ftol):
    """The ``ftol`` test: ``|f_k - f_{k-1}| <= ftol·max(|f_k|, |f_{k-1}|, 1)``."""
    return abs(value - previous) <= ftol * max(abs(value), abs(previous), 1.0)


def _method_name(method):
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {type(method).__name__}")
    if method.lower() not in METHODS:
        raise ValueError(f"Invalid method: {method!r} (must be one of {', '.join(METHODS)})")
    return method.lower()


def _split_options(optimizer_class, options, tol):
    """Return ``(stopping, hyperparameters)`` from ``options`` and ``tol``, all checked."""
    options = dict(options or {})
    if tol is not None:
        check_nonnegative("tol", tol)
        options.setdefault("gtol", tol)
        options.setdefault("ftol", tol)
    unknown = sorted(set(options) - set(STOPPING_DEFAULTS) - set(optimizer_class.hyperparameters), key=str)
    if unknown:
        raise TypeError(
            f"unknown options for method {optimizer_class.__name__}: {', '.join(map(repr, unknown))} "
            f"(known: {', '.join((*STOPPING_DEFAULTS, *optimizer_class.hyperparameters))})"
        )
    stopping = {name: options.pop(name, default) for name, default in STOPPING_DEFAULTS.items()}
    maxiter = stopping["maxiter"]
    if not isinstance(maxiter, numbers.Integral) or isinstance(maxiter, bool):
        raise TypeError(f"maxiter must be an integer, got {maxiter!r}")
    if maxiter < 0:
        raise ValueError(f"Invalid maxiter: {maxiter!r} (must be >= 0)")
    for name in ("gtol", "ftol"):
        check_nonnegative(name, stopping[name])
        stopping[name] = float(stopping[name])
    return stopping, options


def _initial_point(x0):
    x = np.atleast_1d(np.asarray(x0))
    if x.ndim != 1:
        raise ValueError(f"x0 must be 1-dimensional, as in scipy.optimize.minimize, got shape {x.shape}")
    if x.dtype.kind not in "iuf":
        raise TypeError(f"x0 must hold real numbers, got dtype {x.dtype}")
    return np.array(x, dtype=np.float64)


def _notifier(callback):
    """``notify(x, value, nit)`` calls ``callback`` SciPy's way and says whether to stop."""
    if callback is None:
        return lambda x, value, nit: False
    if not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    try:
        new_style = set(inspect.signature(callback).parameters) == {"intermediate_result"}
    except (TypeError, ValueError):
        new_style = False

    def notify(x, value, nit):
        try:
            if new_style:
                answer = callback(intermediate_result=optimize_result(x=x.copy(), fun=value, nit=nit))
            else:
                answer = callback(x.copy())
        except StopIteration:
            return True
        return answer is True or answer is np.True_

    return notify
