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
        if kernel is not None and _fits(kernel, param, state):
            fitting.setdefault(param.dtype, []).append(index)
        else:
            others.append(index)
    for dtype, indices in fitting.items():
        picked = [params[i] for i in indices]
        kernel.update_pointers(
            hyperparameters,
            _DTYPE_NAMES[dtype],
            [tuple(param.shape) for param in picked],
            [local(param).data_ptr() for param in picked],
            [local(param.grad).data_ptr() for param in picked],
            {key: [_pointer(states[i].get(key)) for i in indices] for key in kernel.SLOTS},
            [steps[i] for i in indices],
        )
    if others:
        step_reference(spec, hyperparameters, *([column[i] for i in others] for column in (params, states, steps)))


def _fits(kernel, param, state):
    param, grad = local(param), local(param.grad)
    if param.dtype not in _DTYPE_NAMES or not kernel.fits(_DTYPE_NAMES[param.dtype], param.numel()):
        return False
    tensors = [param, grad] + [state.get(key) for key in kernel.slot_shapes(param.shape)]
    if not all(torch.is_tensor(t) and t.is_cpu and t.dtype == param.dtype and t.is_contiguous() for t in tensors):
        return False
    if grad.layout != torch.strided or grad.shape != param.shape:
        return False
    return all(tuple(state[key].shape) == shape for key, shape in kernel.slot_shapes(param.shape).items())


def _pointer(tensor):
    return local(tensor).data_ptr() if tensor is not None else 0
