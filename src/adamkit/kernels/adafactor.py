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

import math

import numpy as np

from adamkit import specs
from adamkit.kernels import native, reference

SLOTS = ("row_var", "col_var", "variance")

DTYPES = ("float32", "float64")
"""The dtypes the kernel steps (parameters, gradients and state alike)."""


def available():
    """Whether the C kernels were built."""
    return native.available()


def matrix_shape(shape):
    """``(rows, cols)`` of the matrices a parameter of ``shape`` is factored into (its last two
    dimensions), or ``(0, 0)`` for one of fewer than two dimensions (a full ``variance``)."""
    return tuple(shape[-2:]) if len(shape) > 1 else (0, 0)


def elements_moved(shape):
    """Elements read plus written per parameter of ``shape`` per step: a matrix's gradient
    (the reductions), its parameter and gradient (the norms), then both again and the
    parameter written (the apply), 6; a vector's parameter, gradient and variance read and its
    variance written (the norms), then the three again and the parameter written, 8."""
    return 6 if len(shape) > 1 else 8


def resolved_eps1(eps1, dtype):
    """``eps[0]``, or the machine epsilon of ``dtype`` where it is ``None`` (as the rule)."""
    return float(np.finfo(dtype).eps) if eps1 is None else float(eps1)


def fits(dtype, numel):
    """Whether the kernel steps a contiguous parameter of ``dtype`` (a name) and ``numel``
    elements: float32 or float64, not empty (an empty parameter's root mean square divides by
    zero, which the rule raises)."""
    return dtype in DTYPES and numel > 0


def update_pointers(
    hyperparameters,
    dtype,
    shapes,
    param_ptrs,
    grad_ptrs,
    row_var_ptrs,
    col_var_ptrs,
    variance_ptrs,
    steps,
    *,
    isa=None,
    num_threads=None,
):
    """Step tensors in place given their data pointers (the torch front end's entry).

    Tensor ``i`` has shape ``shapes[i]`` (at least one element), contiguous at
    ``param_ptrs[i]``, and its gradient at ``grad_ptrs[i]``, both of ``dtype``
    (``"float32"`` or ``"float64"``). ``row_var_ptrs``, ``col_var_ptrs`` and
    ``variance_ptrs`` hold a pointer per tensor to its slot of that name, ``0`` where it has
    none (a matrix has the first two, shaped as the rule's, a vector the third). ``steps[i]`` counts this
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
        [math.prod(shape) for shape in shapes],
        [rows for rows, _ in matrices],
        [cols for _, cols in matrices],
        param_ptrs,
        grad_ptrs,
        row_var_ptrs,
        col_var_ptrs,
        variance_ptrs,
        [float(step) for step in steps],
    )


def slot_shapes(shape):
    """``{slot: its shape}`` for a parameter of ``shape``: ``row_var`` and ``col_var`` for a
    matrix or a stack of them, ``variance`` for a vector or a scalar."""
    rows, cols = matrix_shape(shape)
    if rows:
        return {"row_var": tuple(shape[:-1]) + (1,), "col_var": tuple(shape[:-2]) + (1, cols)}
    return {"variance": tuple(shape)}


def _arrays_fit(param, grad, state):
    """Whether NumPy ``param``, ``grad`` and ``state`` are as the kernel takes them."""
    shapes = slot_shapes(param.shape)
    arrays = [param, grad] + [state.get(key) for key in shapes]
    if any(not isinstance(a, np.ndarray) or a.dtype != param.dtype or not a.flags.c_contiguous for a in arrays):
        return False
    writeable = all(a.flags.writeable for a in arrays if a is not grad)
    return (
        writeable
        and fits(param.dtype.name, param.size)
        and grad.shape == param.shape
        and all(state[key].shape == shape for key, shape in shapes.items())
    )


def update_fitting(hyperparameters, params, grads, states, steps, *, isa=None, num_threads=None):
    """Step the arrays the kernel takes with it (one call per dtype), the others with the
    rule (:func:`adamkit.kernels.reference.update`): the same bits either way."""
    fitting, others = {}, []
    for index, (param, grad, state) in enumerate(zip(params, grads, states, strict=True)):
        if _arrays_fit(param, grad, state):
            fitting.setdefault(param.dtype.name, []).append(index)
        else:
            others.append(index)
    for indices in fitting.values():
        picked = ([column[i] for i in indices] for column in (params, grads, states, steps))
        update(hyperparameters, *picked, isa=isa, num_threads=num_threads)
    if others:
        picked = ([column[i] for i in others] for column in (params, grads, states, steps))
        reference.update(specs.ADAFACTOR, hyperparameters, *picked)


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
    pointers = {key: [] for key in SLOTS}
    for index, (param, grad, state) in enumerate(zip(params, grads, states, strict=True)):
        if param.dtype != dtype or not _arrays_fit(param, grad, state):
            raise ValueError(
                f"params[{index}]: the Adafactor kernel takes non-empty C-contiguous writeable arrays of one "
                f"dtype ({', '.join(DTYPES)}), with the gradient and state shaped as the rule's"
            )
        for key in SLOTS:
            pointers[key].append(state[key].ctypes.data if key in slot_shapes(param.shape) else 0)
    update_pointers(
        hyperparameters,
        dtype.name,
        [param.shape for param in params],
        [param.ctypes.data for param in params],
        [grad.ctypes.data for grad in grads],
        *(pointers[key] for key in SLOTS),
        steps,
        isa=isa,
        num_threads=num_threads,
    )
