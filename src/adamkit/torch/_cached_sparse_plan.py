"""A parameter group's lazy sparse step, gathered once and re-checked cheaply on every step.

The counterpart of :class:`adamkit.torch._cached_plan.GroupPlan` for a group whose parameters all have
sparse gradients stepped lazily (an embedding table's group). The C kernel of a lazy step
touches only the gradient's rows, so the Python around it counts (BENCHMARKS.md, "Issue 6:
sparse gradients"): after a full, validating step,
:class:`SparsePlan` keeps the parameters, their state, their data pointers and the kernel's
fixed arguments. On the next step it re-reads only what can change behind the optimizer's back,
and declines (so the full path runs, and raises its precise error) if anything differs:

- the group's parameter list, which of them have a gradient, its ``sparse_mode`` and active
  state slots, each parameter's data pointer, and the state objects, as ``GroupPlan`` does;
- each gradient, a new tensor at every step: a sparse COO tensor on the CPU with the
  parameter's dtype and shape and ``sparse_dim() == 1``, contiguous indices and values, its
  row indices all within the table (one pass in C); then its indices' and values' pointers
  and its count of entries are what the kernel takes.

The kernel checks the indices again before it changes anything. The hyperparameters are read
at every step and checked again only when they change (:class:`adamkit.kernels.sparse.RowKernel`).
"""

import math

import torch

from adamkit.kernels import native, sparse
from adamkit.torch import _kahan as kahan
from adamkit.torch._cached_plan import CachedGroup, active_keys
from adamkit.torch._local_shard import is_distributed

_DTYPE_NAMES = {torch.float32: "float32", torch.float64: "float64"}


class SparsePlan(CachedGroup):
    """The cached lazy sparse step of one parameter group (see the module docstring)."""

    def __init__(self, spec, group, stepped, states, state_container):
        super().__init__(spec, group, stepped, states, state_container, [(range(len(stepped)), active_keys(spec, group))])
        # Per parameter: (n_rows, row_numel, data pointer) and the state tensors' pointers.
        self._tables = [(p.shape[0], math.prod(p.shape[1:]), p.data_ptr()) for p in stepped]
        self._slot_ptrs = [{key: state[key].data_ptr() for key in self._slot_keys} for state in states]
        self._shapes = [p.shape for p in stepped]
        # The kernel for the hyperparameters of the last step, made again when they change.
        self._hyperparameters, self._kernel = None, None

    @classmethod
    def build(cls, spec, group, stepped, states, state_container):
        """A plan for a group just stepped in full, or ``None`` unless every parameter stepped
        has a sparse gradient that the native lazy kernel takes as it is."""
        if (
            not stepped
            or spec.sparse_grads != "lazy"
            or group.get("sparse_mode") != "lazy"
            or group.get("fused") is False
            or not native.available()
        ):
            return None
        dtype = stepped[0].dtype
        keys = active_keys(spec, group)
        for param, state in zip(stepped, states):
            if (
                dtype not in _DTYPE_NAMES
                or param.dtype is not dtype
                or not param.is_cpu
                or is_distributed(param)
                or not param.is_contiguous()
                or param.dim() < 1
                or not param.grad.is_sparse
                or kahan.KEY in state
                or any(not _fits(state.get(key), param) for key in keys)
            ):
                return None
        return cls.made(spec, group, stepped, states, state_container)

    def gradient_pointers(self, group, state_container):
        """``(indices_ptr, n_entries, values_ptr)`` of each gradient if the plan still holds for
        ``group``, else ``None``."""
        grads = self._current_grads(group, state_container)
        if grads is None or group.get("sparse_mode") != "lazy":
            return None
        entries = []
        for grad, shape, (n_rows, _, _) in zip(grads, self._shapes, self._tables):
            if not (
                grad.layout is torch.sparse_coo
                and grad.dtype is self._dtype
                and grad.shape == shape
                and grad.sparse_dim() == 1
                and grad.is_cpu
            ):
                return None
            indices, values = grad._indices(), grad._values()
            n_entries = grad._nnz()
            if not (values.is_contiguous() and (n_entries < 2 or indices.stride(1) == 1)):
                return None
            if sparse.first_row_out_of_range(indices.data_ptr(), n_entries, n_rows) >= 0:
                return None
            entries.append((indices.data_ptr(), n_entries, values.data_ptr()))
        return entries

    def step(self, hyperparameters, entries, steps):
        """Run the lazy kernel on each parameter with this step's ``entries`` (from
        :meth:`gradient_pointers`)."""
        if hyperparameters != self._hyperparameters:
            self._kernel = sparse.RowKernel(self._spec, hyperparameters)
            self._hyperparameters = hyperparameters
        dtype = _DTYPE_NAMES[self._dtype]
        for table, entry, slot_ptrs, step in zip(self._tables, entries, self._slot_ptrs, steps):
            self._kernel(dtype, *table, *entry, slot_ptrs, step)


def _fits(state_tensor, param):
    """Whether a state tensor is one the kernel writes in place for ``param``."""
    return (
        isinstance(state_tensor, torch.Tensor)
        and state_tensor.dtype is param.dtype
        and state_tensor.shape == param.shape
        and state_tensor.is_contiguous()
    )
