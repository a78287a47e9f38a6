"""Adafactor's fused kernel (``csrc/adafactor.c``), bitwise equal to
:func:`adamkit.rules.adafactor`.

Adafactor's step is not element-wise: its factors are sums over rows and columns, and its
step scales by the root mean squares of the parameter and of the update. So it has a kernel of
its own (``Spec.kernel_module``) instead of an entry of the element-wise kernels. A call steps
a list of contiguous float32 or float64 tensors of one dtype in three passes, each parallel
over fixed blocks: the gradient's row and column sums (the reductions), the squares of the
parameter and of the update, then the step (the apply). Neither the instruction set nor the
thread count changes the bits.
"""

import numpy as np

from adamkit.kernels import native

DTYPES = ("float32", "float64")
"""The dtypes the kernel steps (parameters, gradients and state alike)."""


def available():
    """Whether the C kernels were built."""
    return native.available()


def matrix_shape(shape):
    """``(rows, cols)`` of the matrices a parameter of ``shape`` is factored into (its last two
    dimensions), or ``(0, 0)`` for one of fewer than two dimensions (a full ``variance``)."""
    return tuple(shape[-2:]) if len(shape) > 1 else (0, 0)


def resolved_eps1(eps1, dtype):
    """``eps[0]``, or the machine epsilon of ``dtype`` where it is ``None`` (as the rule)."""
    return float(np.finfo(dtype).eps) if eps1 is None else float(eps1)


def fits(dtype, numel):
    """Whether the kernel steps a contiguous parameter of ``dtype`` (a name) and ``numel``
    elements: float32 or float64, not empty (an empty parameter's root mean square divides by
    zero, which the rule raises)."""
    return dtype in DTYPES and numel > 0


def update_pointers(
    hyperparameters, dtype, shapes, param_ptrs, grad_ptrs, state_ptrs, steps, *, isa=None, num_threads=None
):
    """Step tensors in place given their data pointers (the torch front end's entry).

    Tensor ``i`` has shape ``shapes[i]`` (at least one element), contiguous at
    ``param_ptrs[i]``, and its gradient at ``grad_ptrs[i]``, both of ``dtype``
    (``"float32"`` or ``"float64"``). ``state_ptrs`` maps ``row_var``, ``col_var`` and
    ``variance`` to a pointer per tensor, ``0`` where the tensor has no such slot (a matrix
    has the first two, shaped as the rule's, a vector the third). ``steps[i]`` counts this
    step. ``hyperparameters`` are the rule's (``Spec.rule_arguments``). The caller keeps the
    memory alive and unaliased for the duration of the call.
    """
    if dtype not in DTYPES:
        raise ValueError(f"Invalid dtype: {dtype!r} (must be one of {', '.join(DTYPES)})")
    eps1, eps2 = hyperparameters["eps"]
    matrices = [matrix_shape(shape) for shape in shapes]
    native._native.adafactor_update(
        native.resolved_isa(isa),
        native.resolved_threads(num_threads),
        dtype,
        (
            float(hyperparameters["lr"]),
            float(hyperparameters["beta2_decay"]),
            resolved_eps1(eps1, dtype),
            float(eps2),
            float(hyperparameters["d"]),
            float(hyperparameters["weight_decay"]),
            bool(hyperparameters["maximize"]),
        ),
        [int(np.prod(shape, dtype=np.int64)) for shape in shapes],
        [rows for rows, _ in matrices],
        [cols for _, cols in matrices],
        param_ptrs,
        grad_ptrs,
        state_ptrs["row_var"],
        state_ptrs["col_var"],
        state_ptrs["variance"],
        [float(step) for step in steps],
    )


def update(hyperparameters, params, grads, states, steps, *, isa=None, num_threads=None):
    """Step NumPy ``params`` in place, as :func:`adamkit.kernels.reference.update` steps them
    with the rule, and with the same bits. Every array is C-contiguous, writeable, of one
    dtype (float32 or float64) and not empty; ``states[i]`` holds the rule's slots for
    ``params[i]``, shaped as the rule's. ``isa`` forces an instruction set of
    :func:`adamkit.kernels.native.available_isas`; ``num_threads`` a thread count. Bad input
    raises ``ValueError`` before anything is changed."""
    if not params:
        return
    dtype = params[0].dtype
    if dtype.name not in DTYPES:
        raise ValueError(f"Invalid dtype: {dtype} (the kernel takes {', '.join(DTYPES)})")
    keys = ("row_var", "col_var", "variance")
    pointers = {key: [] for key in keys}
    for index, (param, grad, state) in enumerate(zip(params, grads, states, strict=True)):
        rows, cols = matrix_shape(param.shape)
        expected = {
            "row_var": param.shape[:-1] + (1,) if rows else None,
            "col_var": param.shape[:-2] + (1, cols) if rows else None,
            "variance": None if rows else param.shape,
        }
        arrays = [param, grad] + [state[key] for key in keys if expected[key] is not None]
        shapes_fit = grad.shape == param.shape and param.size > 0
        shapes_fit = shapes_fit and all(state.get(key) is None or state[key].shape == expected[key] for key in keys)
        shapes_fit = shapes_fit and all(key in state for key in keys if expected[key] is not None)
        if not shapes_fit or any(a.dtype != dtype or not a.flags.c_contiguous for a in arrays):
            raise ValueError(f"params[{index}]: its gradient and state do not fit the Adafactor kernel")
        if not all(a.flags.writeable for a in arrays if a is not grad):
            raise ValueError(f"params[{index}]: its parameter or state is read-only")
        for key in keys:
            pointers[key].append(state[key].ctypes.data if expected[key] is not None else 0)
    update_pointers(
        hyperparameters,
        dtype.name,
        [param.shape for param in params],
        [param.ctypes.data for param in params],
        [grad.ctypes.data for grad in grads],
        pointers,
        steps,
        isa=isa,
        num_threads=num_threads,
    )
