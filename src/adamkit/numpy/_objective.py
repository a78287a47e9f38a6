"""The objective of :func:`adamkit.minimize`: its value and gradient at a point, with counts."""

import numpy as np

FINITE_DIFFERENCE_STEP = np.finfo(np.float64).eps ** (1 / 3)
"""The relative step of central differences: ``h_i = ε^(1/3)·max(1, |x_i|) ≈ 6.06e-6·max(1, |x_i|)``.

ε^(1/3) balances the O(h²) truncation error of central differences against the O(ε/h)
rounding error of the function values.
"""


class Objective:
    r"""``fun`` and its gradient, as :func:`scipy.optimize.minimize` takes them.

    ``jac=True``: ``fun(x, *args)`` returns ``(value, gradient)``; a callable ``jac(x, *args)``
    returns the gradient; ``jac=None`` (or ``False``) estimates it by central differences,

    .. math:: g_i = \frac{f(x + h_i e_i) - f(x - h_i e_i)}{2 h_i},

    at ``2n`` extra evaluations of ``fun``. ``nfev`` counts the calls of ``fun``, ``njev``
    the gradients computed (by any of the three ways). ``fun`` and ``jac`` get copies of x.
    """

    def __init__(self, fun, jac, args):
        if not callable(fun):
            raise TypeError(f"fun must be callable, got {type(fun).__name__}")
        if not (jac is True or jac is None or jac is False or callable(jac)):
            raise ValueError(f"jac must be True, a callable, or None for finite differences, got {jac!r}")
        self.fun, self.jac, self.args = fun, jac, args
        self.nfev = 0
        self.njev = 0

    def __call__(self, x):
        """Return ``(value, gradient)`` at ``x``: a float and a float64 array shaped like ``x``."""
        self.njev += 1
        if self.jac is True:
            self.nfev += 1
            returned = self.fun(x.copy(), *self.args)
            if not (isinstance(returned, (tuple, list)) and len(returned) == 2):
                raise ValueError("with jac=True, fun must return a pair (value, gradient)")
            value, grad = returned
            return _scalar(value), _gradient(grad, x)
        value = self._value(x)
        if callable(self.jac):
            return value, _gradient(self.jac(x.copy(), *self.args), x)
        return value, self._central_differences(x)

    def _value(self, x):
        self.nfev += 1
        returned = self.fun(x.copy(), *self.args)
        if isinstance(returned, (tuple, list)) and len(returned) == 2:
            raise ValueError(
                f"fun returned a pair, but jac={self.jac!r}: pass jac=True if fun returns (value, gradient)"
            )
        return _scalar(returned)

    def _central_differences(self, x):
        grad = np.empty_like(x)
        for i in range(x.size):
            step = FINITE_DIFFERENCE_STEP * max(1.0, abs(x[i]))
            forward, backward = x.copy(), x.copy()
            forward[i] += step
            backward[i] -= step
            # Divide by the distance between the points as represented, not the nominal 2h.
            grad[i] = (self._value(forward) - self._value(backward)) / (forward[i] - backward[i])
        return grad


def _scalar(value):
    array = np.asarray(value)
    if array.size != 1:
        raise ValueError(f"fun must return a scalar value, got an array of shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"fun must return a real number, got dtype {array.dtype}")
    return float(array.item())


def _gradient(grad, x):
    array = np.atleast_1d(np.asarray(grad))
    if array.dtype.kind not in "biuf":
        raise TypeError(f"the gradient must hold real numbers, got dtype {array.dtype}")
    if array.shape != x.shape:
        raise ValueError(f"the gradient has shape {array.shape}, but x has shape {x.shape}")
    return np.array(array, dtype=np.float64)
