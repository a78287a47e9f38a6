"""The result of :func:`adamkit.minimize`: SciPy's ``OptimizeResult``, or a stand-in without SciPy."""


class OptimizeResult(dict):
    """A dict whose keys are also attributes, like ``scipy.optimize.OptimizeResult``.

    Used only when SciPy is not installed.
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    __setattr__ = dict.__setitem__
    __delattr__ = dict.__delitem__

    def __dir__(self):
        return list(self.keys())

    def __repr__(self):
        width = max(map(len, self.keys()), default=0)
        return "\n".join(f"{key.rjust(width)}: {value!r}" for key, value in self.items())


def optimize_result(**fields):
    """A ``scipy.optimize.OptimizeResult`` holding ``fields`` (SciPy is imported only here)."""
    try:
        from scipy.optimize import OptimizeResult as result_type
    except ImportError:
        result_type = OptimizeResult
    return result_type(**fields)
