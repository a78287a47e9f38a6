"""Routes a group's tensors to the native C kernels, the reference backend, or torch ops.

The native kernels take data pointers, so CPU tensors are stepped without any NumPy views:
the Python side only gathers pointers. CPU tensors the kernels do not take (float16, or memory
that is not contiguous) go to the reference backend through NumPy views, which computes the
same rule; bfloat16, which NumPy lacks, is stepped by the kernels through contiguous copies
where it is not contiguous (:func:`step_contiguous`). ``fused=False`` forces the reference
backend; ``fused=True`` on the CPU requires the kernels. Tensors on other devices (GPUs, ...) in
groups that use adamkit's own options run the same rules as multi-tensor torch operations on
their device (:mod:`adamkit.torch._multi_tensor`); other groups there take torch's own
implementation (:mod:`adamkit.torch._torch_step`).
"""

import torch

from adamkit.kernels import native, reference
from adamkit.specs import SCALAR_STATE_KEYS
from adamkit.torch import _kahan as kahan
from adamkit.torch import _multi_tensor as multi_tensor
from adamkit.torch import _own_kernel as own_kernel
from adamkit.torch import _shard_sums as shard_sums
from adamkit.torch._arrays import as_array, as_tensor
from adamkit.torch._local_shard import like, local

# Parameter dtype -> (the kernels' dtype name, real elements per element).
NATIVE_DTYPES = {
    torch.float32: ("float32", 1),
    torch.float64: ("float64", 1),
    torch.bfloat16: ("bfloat16", 1),
    torch.complex64: ("float32", 2),
    torch.complex128: ("float64", 2),
}
_STATE_DTYPE_NAMES = {torch.float32: "float32", torch.float64: "float64", torch.bfloat16: "bfloat16"}


def update(spec, hyperparameters, params, states, steps, fused, state_dtype=None):
    """Step ``params`` (all with gradients) in place with their ``states`` and ``steps``.

    ``states[i]`` is the torch state dict of ``params[i]`` (its ``step`` is not touched; the
    counts are ``steps``); slots the rule creates (SGD's momentum buffer) are added to it, of
    :func:`slot_dtype` under the optimizer's ``state_dtype``. A bfloat16
    parameter whose state holds a Kahan compensation buffer is stepped with it.
    """
    buckets = {}
    for index, param in enumerate(params):
        buckets.setdefault((on_kernel_device(param), param.dtype), []).append(index)
    for (on_cpu, dtype), indices in buckets.items():
        bucket = [params[i] for i in indices], [states[i] for i in indices], [steps[i] for i in indices]
        if not on_cpu:
            _update_torch_ops(spec, hyperparameters, *bucket, state_dtype)
        elif spec.native and fused is not False and native.available() and _native_ready(dtype, *bucket[:2]):
            _update_native(spec, hyperparameters, dtype, *bucket, state_dtype)
        elif spec.kernel_module is not None and fused is not False:
            own_kernel.update(spec, hyperparameters, *bucket, _update_reference)
        else:
            if fused is None and spec.native:
                native.warn_unavailable_once()
            _update_reference(spec, hyperparameters, *bucket)


def slot_dtype(param, state_dtype):
    """The dtype of ``param``'s state slots under the optimizer's ``state_dtype``: float32 for a
    bfloat16 parameter with ``state_dtype="fp32"`` (torch keeps state in the parameter's dtype;
    the arithmetic is float32 anyway, and so the averages lose nothing between steps), else
    ``None``, the parameter's own."""
    return torch.float32 if state_dtype == "fp32" and param.dtype == torch.bfloat16 else None


def on_kernel_device(tensor):
    """Whether ``tensor`` lives where the C kernels and NumPy can reach it: the CPU."""
    return tensor.is_cpu


def takes_bfloat16(param, fused):
    """bfloat16 has no NumPy dtype: on the CPU only the kernels step it (a parameter or gradient
    that is not contiguous through a contiguous copy, :func:`step_contiguous`)."""
    return not on_kernel_device(param) or (fused is not False and native.available())


def steps_on_cpu(spec, param):
    """Whether adamkit steps ``param`` on the CPU: a rule without kernels (``spec.native``
    false) steps through NumPy, which has no bfloat16; torch's implementation steps the rest."""
    return on_kernel_device(param) and (spec.native or param.dtype is not torch.bfloat16)


def _native_ready(dtype, params, states):
    """Whether the kernels can step this bucket: their dtype, contiguous memory, or bfloat16,
    which the reference backend cannot step (NumPy has no bfloat16) and the kernels step
    through contiguous copies.

    Only parameters and gradients are checked on every step: the optimizer creates state
    contiguous and of the parameter's dtype, and ``load_state_dict`` keeps it so.
    """
    if dtype not in NATIVE_DTYPES:
        return False
    return dtype is torch.bfloat16 or all(local(p).is_contiguous() and local(p.grad).is_contiguous() for p in params)


def slots(state):
    """The state tensors of one parameter that the rule updates: all but the 0-d ones (``step``,
    NAdam's ``mu_product``) and the Kahan compensation."""
    return ((key, value) for key, value in state.items() if key not in SCALAR_STATE_KEYS and key != kahan.KEY)


def _update_native(spec, hyperparameters, dtype, params, states, steps, state_dtype):
    created = _create_slots(spec, hyperparameters, params, states, state_dtype)

    def step(spec, hyperparameters, params, grads, states, steps):
        native.update_pointers(
            spec,
            hyperparameters,
            grad_ptrs=[local(g).data_ptr() for g in grads],
            steps=steps,
            created=created,
            **native_arguments(spec, hyperparameters, dtype, params, states),
        )

    step_contiguous(step, spec, hyperparameters, params, states, steps)


def step_contiguous(step, spec, hyperparameters, params, states, steps):
    """``step(spec, hyperparameters, params, grads, states, steps)`` on contiguous parameters
    and gradients: those that are not are stepped through contiguous copies, and the stepped
    copies are written back into the parameters. A copy holds the parameter's elements in
    their logical (row-major) order, as its state tensors do (:func:`_make_state_contiguous`)."""
    _make_state_contiguous(params, states)
    contiguous = [p if p.is_contiguous() else p.contiguous() for p in params]
    step(spec, hyperparameters, contiguous, [p.grad if p.grad.is_contiguous() else p.grad.contiguous() for p in params], states, steps)
    for param, stepped in zip(params, contiguous):
        if stepped is not param:
            param.copy_(stepped)


def _make_state_contiguous(params, states):
    """Make the state tensors of the parameters that are not contiguous contiguous: made like a
    transposed parameter (``torch.full_like`` keeps its strides), a slot is transposed too, and
    the kernels, which step the parameter's contiguous copy, would pair its elements wrongly."""
    for param, state in zip(params, states):
        if not param.is_contiguous():
            for key, value in state.items():
                if key != "step" and torch.is_tensor(value) and not value.is_contiguous():
                    state[key] = value.contiguous()


def native_arguments(spec, hyperparameters, dtype, params, states):
    """The arguments of :func:`adamkit.kernels.native.update_pointers` for a bucket of one dtype
    whose state slots all exist, except the gradients' pointers and the step counts; ``reduce``
    makes the whole-tensor sums of sharded parameters (:mod:`adamkit.torch._shard_sums`)."""
    dtype_name, width = NATIVE_DTYPES[dtype]
    first = next(slots(states[0]), None)
    state_dtype = first[1].dtype if first is not None else dtype
    return {
        "dtype": dtype_name,
        "state_dtype": _STATE_DTYPE_NAMES.get(state_dtype, dtype_name),
        "numels": [local(p).numel() * width for p in params],
        "param_ptrs": [local(p).data_ptr() for p in params],
        "state_ptrs": {
            key: [local(state[key]).data_ptr() for state in states]
            for key in (slot.key for slot in spec.active_slots(hyperparameters))
        },
        "compensation": kahan.pointers(states),
        "reduce": shard_sums.reducer(params),
    }


def _create_slots(spec, hyperparameters, params, states, state_dtype):
    """Allocate the slot the rule creates on its first step (of :func:`slot_dtype`); return the
    per-tensor flags."""
    slot = next((s for s in spec.active_slots(hyperparameters) if s.fill is None), None)
    if slot is None:
        return None
    created = [slot.key not in state for state in states]
    for param, state, is_new in zip(params, states, created):
        if is_new:
            dtype = slot_dtype(param, state_dtype)
            state[slot.key] = torch.empty_like(param, dtype=dtype, memory_format=torch.contiguous_format)
    return created


def _update_reference(spec, hyperparameters, params, states, steps):
    """Run the reference backend on NumPy views of the local tensors, which it updates in place."""
    views = [{key: as_array(local(value)) for key, value in slots(state)} for state in states]
    grads = [as_array(local(p.grad)) for p in params]
    reference.update(spec, hyperparameters, [as_array(local(p)) for p in params], grads, views, steps)
    _store_created(params, states, views, as_tensor)


def _update_torch_ops(spec, hyperparameters, params, states, steps, state_dtype=None):
    """The rules run as multi-tensor torch operations on the tensors' own device
    (:mod:`adamkit.torch._multi_tensor`): the number of operations per step does not grow with
    the number of tensors. A bfloat16 parameter with a Kahan buffer, or with float32 state
    under ``state_dtype="fp32"``, is stepped in float32 as the kernels step it."""
    views = [{key: _real(local(value)) for key, value in slots(state)} for state in states]
    multi_tensor.update(
        spec,
        hyperparameters,
        [_real(local(p)) for p in params],
        [_real(local(p.grad)) for p in params],
        views,
        steps,
        [local(state[kahan.KEY]) if kahan.KEY in state else None for state in states],
        float32_state=state_dtype == "fp32",
    )
    _store_created(params, states, views, _complex_like)


def _store_created(params, states, views, unview):
    """Store the slot the rule created (SGD's momentum buffer) in ``views`` into ``states`` as
    ``unview(value, like=param)``, laid out like its parameter."""
    for param, state, created in zip(params, states, views):
        for key, value in created.items():
            if key not in state:
                state[key] = like(unview(value, like=param), param)


def _real(tensor):
    """A complex tensor as (real, imag) pairs, which the rules step as reals; others as they are."""
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor


def _complex_like(tensor, like):
    return torch.view_as_complex(tensor) if like.is_complex() else tensor
