"""CPU tensors of a rule with a kernel of its own (``Spec.kernel_module``: Adafactor's, whose
factors are sums over rows and columns): a tensor the kernel takes is stepped by it, from data
pointers; the others by the rule through NumPy views (the same bits).

The kernel takes a parameter of float32 or float64 with at least one element, whose gradient
and state slots are contiguous CPU tensors of its dtype, shaped as the rule's
(:func:`adamkit.kernels.adafactor.slot_shapes`). All of this is checked here at every step,
before the kernel writes: nothing is cached between steps.
"""

import torch

from adamkit.kernels import native
from adamkit.torch._local_shard import local

_DTYPE_NAMES = {torch.float32: "float32", torch.float64: "float64"}


def update(spec, hyperparameters, params, states, steps, step_reference):
    """Step ``params`` (CPU tensors with gradients) with the kernel where it takes them, and
    the rest with ``step_reference(spec, hyperparameters, params, states, steps)``."""
    kernel = native.own_kernel(spec)
    fitting, others = {}, []
    for index, (param, state) in enumerate(zip(params, states, strict=True)):
        pointers = _pointers(kernel, local(param), local(param.grad), state) if kernel is not None else None
        if pointers is None:
            others.append(index)
        else:
            fitting.setdefault(param.dtype, []).append((index, pointers))
    for dtype, picked in fitting.items():
        kernel.update_pointers(
            hyperparameters,
            _DTYPE_NAMES[dtype],
            [params[i].shape for i, _ in picked],
            *zip(*(pointers for _, pointers in picked)),
            [steps[i] for i, _ in picked],
        )
    if others:
        step_reference(spec, hyperparameters, *([column[i] for i in others] for column in (params, states, steps)))


def _pointers(kernel, param, grad, state):
    """``(param, grad, row_var, col_var, variance)``'s data pointers (0 for a slot the
    parameter has not), or ``None`` if the kernel does not take them."""
    if param.dtype not in _DTYPE_NAMES or not kernel.fits(_DTYPE_NAMES[param.dtype], param.numel()):
        return None
    if grad.layout != torch.strided or grad.shape != param.shape:
        return None
    shapes = kernel.slot_shapes(param.shape)
    slots = {key: local(state.get(key)) if torch.is_tensor(state.get(key)) else None for key in shapes}
    tensors = [param, grad, *slots.values()]
    if not all(t is not None and t.is_cpu and t.dtype == param.dtype and t.is_contiguous() for t in tensors):
        return None
    if any(tuple(slots[key].shape) != shape for key, shape in shapes.items()):
        return None
    return (
        param.data_ptr(),
        grad.data_ptr(),
        *(slots[key].data_ptr() if key in slots else 0 for key in kernel.SLOTS),
    )
