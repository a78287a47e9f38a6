"""Checks that a parameter can be updated in place and that a gradient fits its parameter,
and how an array's elements lie in memory."""

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


def ready(array):
    """Whether the kernels can take ``array`` as it is: C-contiguous and aligned."""
    return array.flags.c_contiguous and array.flags.aligned


def may_overlap_itself(array):
    """Whether two elements of ``array`` may share memory, as in a stride-0 broadcast view.

    Taken by increasing stride, each axis of an array NumPy makes by slicing or transposing
    steps past everything the smaller axes span; an array where one does not is judged
    overlapping (``np.lib.stride_tricks.as_strided`` can make one that is not, interleaved).
    """
    if array.size == 0:
        return False
    span = array.itemsize
    for stride, size in sorted((abs(stride), size) for stride, size in zip(array.strides, array.shape) if size > 1):
        if stride < span:
            return True
        span += stride * (size - 1)
    return False
