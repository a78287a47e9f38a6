"""Checks that a parameter can be updated in place and that a gradient fits its parameter."""

import numpy as np

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_param(param, where):
    """Raise unless ``param`` is a writeable, C-contiguous float32 or float64 ``ndarray``.

    The optimizers update parameters in place, and the native kernels take a data pointer and
    a size, so a read-only array or a strided view cannot be a parameter.
    """
    if not isinstance(param, np.ndarray):
        raise TypeError(f"{where} must be a numpy.ndarray, got {type(param).__name__}")
    if param.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"{where} has dtype {param.dtype}; adamkit.numpy supports float32 and float64")
    if not param.flags.writeable:
        raise ValueError(f"{where} is read-only and cannot be updated in place")
    if not (param.flags.c_contiguous and param.flags.aligned):
        raise ValueError(
            f"{where} is not a C-contiguous, aligned array and cannot be updated in place; "
            "pass np.ascontiguousarray(...) and keep that array"
        )


def check_grad(grad, param, where):
    """Raise unless ``grad`` is an ``ndarray`` of ``param``'s dtype and shape, apart from it."""
    if not isinstance(grad, np.ndarray):
        raise TypeError(f"the gradient of {where} must be a numpy.ndarray or None, got {type(grad).__name__}")
    if grad.dtype != param.dtype or grad.shape != param.shape:
        raise ValueError(
            f"the gradient of {where} is {grad.dtype} {grad.shape}, "
            f"but the parameter is {param.dtype} {param.shape}"
        )
    if np.may_share_memory(grad, param):
        raise ValueError(
            f"the gradient of {where} shares memory with its parameter, which the step overwrites"
        )
