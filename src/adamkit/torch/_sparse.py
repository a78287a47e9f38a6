r"""Sparse COO gradients, as ``nn.Embedding(sparse=True)`` and ``nn.EmbeddingBag(sparse=True)`` make.

The optimizers whose spec has ``sparse_grads="lazy"`` (Adam, AdamW and AMSGrad among them) take
sparse gradients in the mode set by their keyword-only argument ``sparse_mode``, also a
parameter-group key:

``"lazy"`` (the default)
    Only the rows present in the gradient are stepped, their moments too; every other row of
    the parameter and of its state stays bitwise unchanged. Duplicate indices are coalesced
    (summed, in their order) first. Weight decay, L2 or decoupled, applies to the touched rows
    only. The step counter is torch's per-parameter ``step``, counted at every step the
    parameter has a gradient, touched rows or not; bias correction uses it for every row. This
    is the step accounting of ``torch.optim.SparseAdam`` and of torch's sparse Adagrad, so lazy
    Adam with ``eps_hat=True`` follows ``SparseAdam``'s trajectory, and lazy Adagrad follows
    torch's ``Adagrad`` on sparse gradients (whose weight decay torch refuses). Per-row step
    counts, where a row's bias correction counts only the steps that touched it, exist in the
    kernel (:func:`adamkit.kernels.sparse.update_rows` with ``row_steps``) but are not kept by
    the optimizers: their state stays torch's. The cost is proportional to the number of
    gradient entries, not to the number of rows. On other devices the touched rows are
    gathered, stepped by the multi-tensor rule (:mod:`adamkit.torch._multi_tensor`) and
    written back.

``"dense"``
    The gradient is densified and the parameter takes the ordinary dense step: the result is
    the dense step on ``grad.to_dense()``, every row decaying and every moment moving.

SGD (``sparse_grads="dense"``) takes sparse gradients as torch's SGD does, with the dense step
on the densified gradient (and, unlike torch, with weight decay too); it has no
``sparse_mode``. RMSprop (``sparse_grads=None``) refuses them with ``TypeError``, as torch does.

A gradient is a row-sparse COO tensor: ``sparse_dim() == 1`` (values of shape
``(nnz, *param.shape[1:])``), with the parameter's shape and dtype, and indices in range.
Anything else raises before any parameter or state is changed.
"""

import torch

from adamkit import specs
from adamkit.kernels import sparse
from adamkit.torch import _backend as backend
from adamkit.torch import _cautious as cautious
from adamkit.torch import _multi_tensor as multi_tensor
from adamkit.torch._arrays import as_array
from adamkit.validation import check_choice

SPARSE_MODES = ("lazy", "dense")
# The optimizers that take a sparse_mode (AMSGrad is Adam with amsgrad=True).
SPARSE_OPTIMIZERS = tuple(spec.name for spec in specs.ALL if spec.sparse_grads == "lazy")
_LAZY_DTYPES = (torch.float16, torch.float32, torch.float64)


def check_mode(spec, group):
    """Raise ``ValueError`` unless ``group``'s ``sparse_mode``, if it sets one, is one ``spec`` has."""
    if "sparse_mode" not in group:
        return
    if spec.sparse_grads != "lazy":
        raise ValueError(
            f"sparse_mode is not an option of {spec.name}; it is one of "
            f"{', '.join(SPARSE_OPTIMIZERS)} (got sparse_mode={group['sparse_mode']!r})"
        )
    check_choice("sparse_mode", group["sparse_mode"], SPARSE_MODES)


def accepts(spec):
    """Whether ``spec``'s optimizer takes sparse gradients at all."""
    return spec.sparse_grads is not None


def mode_of(spec, group):
    """The sparse step ``group`` takes: its ``sparse_mode``, or ``"dense"`` for SGD."""
    return group["sparse_mode"] if spec.sparse_grads == "lazy" else "dense"


def rejection(spec, where):
    """The message for a sparse gradient given to an optimizer that takes none."""
    return f"{spec.name} does not support sparse gradients ({where}), as in torch"


def check_grad(spec, param, group, where):
    """Raise ``TypeError``/``ValueError`` naming ``where`` unless ``param.grad`` can be stepped."""
    check_mode(spec, group)
    cautious.check_sparse(spec, group, where)
    grad = param.grad
    if grad.layout != torch.sparse_coo:
        raise TypeError(f"the gradient of {where} has layout {grad.layout}; adamkit takes sparse COO")
    if grad.device != param.device:
        raise TypeError(f"the sparse gradient of {where} is on {grad.device}, but the parameter is on {param.device}")
    if grad.dtype != param.dtype or grad.shape != param.shape:
        raise ValueError(
            f"the sparse gradient of {where} is {grad.dtype} {tuple(grad.shape)}, "
            f"but the parameter is {param.dtype} {tuple(param.shape)}"
        )
    if grad.sparse_dim() != 1:
        raise ValueError(
            f"the sparse gradient of {where} has sparse_dim={grad.sparse_dim()} and "
            f"dense_dim={grad.dense_dim()}; adamkit takes row-sparse gradients (sparse_dim=1), "
            "as nn.Embedding(sparse=True) makes"
        )
    rows = grad._indices()[0]
    if rows.numel():
        low, high = (int(bound) for bound in torch.aminmax(rows))
        if low < 0 or high >= param.shape[0]:
            raise ValueError(
                f"the sparse gradient of {where} has row indices from {low} to {high}, "
                f"outside [0, {param.shape[0]})"
            )
    if mode_of(spec, group) == "dense":
        if param.dtype == torch.bfloat16 and not backend.takes_bfloat16(param, group.get("fused")):
            raise TypeError(f"{where} is bfloat16, which needs adamkit's C kernels (not fused=False)")
        return
    if param.dtype not in _LAZY_DTYPES:
        raise TypeError(
            f"{where} has dtype {param.dtype}; sparse_mode='lazy' takes "
            f"{', '.join(str(d) for d in _LAZY_DTYPES)} (use sparse_mode='dense')"
        )


def values_of(grad):
    """The stored values of a gradient: all of a dense one, the nonzero rows of a sparse one."""
    return grad._values() if grad.layout == torch.sparse_coo else grad


def update(spec, hyperparameters, mode, params, states, steps, fused):
    """Step ``params``, whose gradients are sparse and checked, in ``mode``."""
    if mode == "dense":
        _update_dense(spec, hyperparameters, params, states, steps, fused)
        return
    elsewhere = {i for i, param in enumerate(params) if not backend.on_kernel_device(param)}
    if elsewhere:
        batches = (params, states, steps)
        _update_lazy_elsewhere(spec, hyperparameters, *([v for i, v in enumerate(b) if i in elsewhere] for b in batches))
        params, states, steps = ([v for i, v in enumerate(b) if i not in elsewhere] for b in batches)
    for param, state, step in zip(params, states, steps, strict=True):
        grad = param.grad
        slots = {slot.key: as_array(state[slot.key]) for slot in spec.active_slots(hyperparameters)}
        sparse.update_rows(
            spec,
            hyperparameters,
            as_array(param),
            as_array(grad._indices()[0]),
            as_array(grad._values().contiguous()),
            slots,
            step,
            fused=fused,
        )


def _update_lazy_elsewhere(spec, hyperparameters, params, states, steps):
    """The lazy step of parameters off the CPU: the rows each gradient touches (coalesced, its
    duplicates summed) are gathered from the parameter and its state, stepped together by the
    multi-tensor rule (:mod:`adamkit.torch._multi_tensor`), and written back, the other rows
    untouched. Gathering and writing back take a few operations per parameter, the rule a
    number that does not grow with the parameters."""
    keys = [slot.key for slot in spec.active_slots(hyperparameters)]
    grads = [param.grad.coalesce() for param in params]
    rows = [grad._indices()[0] for grad in grads]
    gathered = [param.index_select(0, touched) for param, touched in zip(params, rows)]
    gathered_states = [{key: state[key].index_select(0, touched) for key in keys} for state, touched in zip(states, rows)]
    values = [grad._values() for grad in grads]
    multi_tensor.update(spec, hyperparameters, gathered, values, gathered_states, steps, [None] * len(params))
    for param, state, touched, new, new_state in zip(params, states, rows, gathered, gathered_states):
        param.index_copy_(0, touched, new)
        for key in keys:
            state[key].index_copy_(0, touched, new_state[key])


def _update_dense(spec, hyperparameters, params, states, steps, fused):
    """The dense step on the densified gradients; ``param.grad`` is put back as it was."""
    sparse_grads = [param.grad for param in params]
    try:
        for param, grad in zip(params, sparse_grads):
            param.grad = grad.to_dense()
        backend.update(spec, hyperparameters, params, states, steps, fused)
    finally:
        for param, grad in zip(params, sparse_grads):
            param.grad = grad
