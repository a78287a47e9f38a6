"""A parameter group's kernel call, gathered once and re-checked on every step.

Looking up state and reading pointers in Python costs time for every tensor, and over
thousands of small tensors that costs more than the kernel itself (BENCHMARKS.md, "Where
workload C's time goes"). After a group has been
stepped through the kernels (the full path, which checks every tensor it touches first:
:mod:`adamkit.torch._checks`), a :class:`GroupPlan` keeps what the calls need: the parameters
that had gradients, their shapes and data pointers, and their state tensors' pointers, with one
call for full-precision state and, under a compact ``state_dtype``, one for bfloat16 state and
one for 8-bit state (codes and scales).

A plan is a cache, not a contract. On the next step it re-reads, in one pass from C per list of
tensors, everything Python can have changed behind the optimizer's back, and declines (so the
full, validating path runs) if anything differs:

- which parameters of the group have a gradient, and each gradient's dtype, shape, layout,
  contiguity and data pointer (backward allocates new gradients), and that no gradient shares
  memory with a tensor the step writes;
- each parameter's data pointer, dtype, shape and contiguity (``param.data = ...`` replaces
  them);
- that the group's parameter list, the optimizer's state, each parameter's state dict, every
  state tensor (Kahan compensation buffers and 8-bit scales included) and the rule's active
  state slots are the very objects the plan was made from, and that each state tensor still
  has the data pointer, dtype, shape and contiguity it was planned with
  (``exp_avg.data = ...`` keeps the object and replaces its memory).

A pointer the kernels write through is therefore always one that the tensor holding it has
just reported, for the size the kernel steps.
"""

import numpy as np

from adamkit.compact.policy import rounding_seeds
from adamkit.kernels import native, plan_checks, quantized
from adamkit.torch import _backend as backend
from adamkit.torch import _compact_state as compact_state
from adamkit.torch import _kahan as kahan
from adamkit.torch._checks import BFLOAT16, FULL, INT8, MismatchError, WrittenMemory, byte_range, state_layout
from adamkit.torch._local_shard import is_distributed, local


class CachedGroup:
    """What a cached step keeps of a group and re-checks on every step (the module docstring's
    list, but for what the gradients must be, which each plan checks itself)."""

    def __init__(self, spec, group, stepped, states, state_container, watched):
        """``watched``: ``(indices, keys)`` pairs, the state tensors under ``keys`` of the
        parameters at ``indices`` of ``stepped`` that must stay the very same objects, with the
        same memory, dtype and shape."""
        self._spec = spec
        self._group_params = list(group["params"])
        self._has_grad = [p.grad is not None for p in self._group_params]
        self._states = states
        self._state_container = state_container
        self._params = stepped
        self._dtype = stepped[0].dtype
        self._distributed = is_distributed(stepped[0])
        self._slot_keys = active_keys(spec, group)
        shards = self._local(stepped)
        self._param_shapes = [shard.shape for shard in shards]
        self._param_ptrs = [shard.data_ptr() for shard in shards]
        written = [(f"parameter {i}", byte_range(shard)) for i, shard in enumerate(shards)]
        self._slot_tensors = []
        for indices, keys in watched:
            subset = [states[i] for i in indices]
            for key in keys:
                tensors = [state[key] for state in subset]
                slot_shards = self._local(tensors)
                pointers = [shard.data_ptr() for shard in slot_shards]
                # The number of elements, cheaper to read than the shape: the full path checked
                # the shapes, and the kernels need the memory.
                numels = [shard.numel() for shard in slot_shards]
                self._slot_tensors.append((subset, key, tensors, slot_shards[0].dtype, numels, pointers))
                written += [(f"state {key!r} {i}", byte_range(shard)) for i, shard in zip(indices, slot_shards)]
        self._written = WrittenMemory(written)
        self._identity_hashed = plan_checks.identity_hashed(stepped)

    @classmethod
    def made(cls, spec, group, stepped, states, state_container):
        """The plan, or ``None`` where the kernels' one pass cannot take the group as it is: a
        parameter listed twice (the full path steps it twice, as torch does), or tensors that
        share memory (the full path raises)."""
        if len({id(p) for p in stepped}) != len(stepped):
            return None
        try:
            return cls(spec, group, stepped, states, state_container)
        except MismatchError:
            return None

    @property
    def params(self):
        """The parameters the plan steps, in order."""
        return self._params

    @property
    def states(self):
        """Their state dicts, in order."""
        return self._states

    def _local(self, tensors):
        """The local shards of FSDP2's DTensors; plain tensors as they are."""
        return list(map(local, tensors)) if self._distributed else tensors

    def _current_grads(self, group, state_container):
        """The gradients of the parameters stepped, if nothing the plan keeps has changed,
        else ``None``.

        The objects these checks touch are cold after the previous step's kernel has streamed
        the whole model through the cache, so each list of tensors is read in one pass from C
        (:func:`adamkit.kernels.plan_checks.checked_pointers`) and lists are compared by identity.
        """
        params = group["params"]
        if state_container is not self._state_container or not plan_checks.same_objects(params, self._group_params):
            return None
        grads = plan_checks.attributes(params, "grad")
        if [grad is not None for grad in grads] != self._has_grad:
            return None
        if (
            active_keys(self._spec, group) == self._slot_keys
            and plan_checks.checked_pointers(self._local(self._params), self._dtype, self._param_shapes) == self._param_ptrs
            and plan_checks.same_entries(state_container, self._params, self._states, self._identity_hashed)
            and all(self._slot_holds(*watched) for watched in self._slot_tensors)
        ):
            return [grad for grad in grads if grad is not None]
        return None

    def _slot_holds(self, states, key, tensors, dtype, numels, pointers):
        """Whether ``states[i][key]`` is still ``tensors[i]``, with its planned memory."""
        return (
            plan_checks.same_items(states, key, tensors)
            and plan_checks.checked_pointers(self._local(tensors), dtype, numels) == pointers
        )


class GroupPlan(CachedGroup):
    """The cached kernel calls of one parameter group (see the module docstring): one call for
    the parameters with full-precision state, and under a compact ``state_dtype`` one for those
    with bfloat16 state and one for those with 8-bit state."""

    def __init__(self, spec, group, stepped, states, state_container):
        kinds = [state_layout(param, state) for param, state in zip(stepped, states)]
        keys = active_keys(spec, group)
        self._calls, watched = [], []
        for kind in (FULL, BFLOAT16, INT8):
            indices = [i for i, found in enumerate(kinds) if found == kind]
            if not indices:
                continue
            params, subset = [stepped[i] for i in indices], [states[i] for i in indices]
            if kind == INT8:
                arguments = compact_state.int8_arguments(spec, group, params, subset)
                watched.append((indices, list(arguments["state_ptrs"]) + ([kahan.KEY] if arguments["compensation"] else [])))
            else:
                arguments = backend.native_arguments(spec, group, stepped[0].dtype, params, subset)
                watched.append((indices, keys + ([kahan.KEY] if arguments["compensation"] else [])))
            self._calls.append((kind, indices, arguments))
        super().__init__(spec, group, stepped, states, state_container, watched)
        self._ready_for, self._ready = None, []
        self._grad_bytes = np.array([shard.numel() * shard.element_size() for shard in self._local(stepped)], dtype=np.int64)

    @classmethod
    def build(cls, spec, group, stepped, states, state_container):
        """A plan for a group just stepped in full, or ``None`` if the kernels cannot take it whole."""
        if not stepped or not spec.native or group.get("fused") is False or not native.available():
            return None
        dtype = stepped[0].dtype
        if dtype not in backend.NATIVE_DTYPES:
            return None
        keys = active_keys(spec, group)
        for param, state in zip(stepped, states):
            grad = param.grad
            held_compact = state_layout(param, state) != FULL
            if (
                not backend.on_kernel_device(param)
                or is_distributed(param) != is_distributed(stepped[0])
                or (held_compact and is_distributed(param))
                or param.dtype is not dtype
                or grad.dtype is not dtype
                or grad.is_sparse
                or not (param.is_contiguous() and grad.is_contiguous())
                or not all(compact_state.holds(state, key) for key in keys)
            ):
                return None
        return cls.made(spec, group, stepped, states, state_container)

    def gradient_pointers(self, group, state_container):
        """This step's gradients' data pointers if the plan still holds for ``group``, else ``None``."""
        grads = self._current_grads(group, state_container)
        if grads is None:
            return None
        try:
            pointers = plan_checks.checked_pointers(self._local(grads), self._dtype, self._param_shapes)
        except RuntimeError:  # a gradient has no strides (sparse CSR)
            return None
        if pointers is None:
            return None
        if plan_checks.first_in_ranges(self._written.starts, self._written.ends, pointers, self._grad_bytes) >= 0:
            return None
        return pointers

    def step(self, hyperparameters, grad_ptrs, steps):
        """Run the kernels with this step's ``grad_ptrs`` (from :meth:`gradient_pointers`).

        The 8-bit calls are made ready (checked and converted) for ``hyperparameters`` and kept
        while the caller passes that very dict again, as the hooks of ``step_in_backward`` do
        while the group's values stay the same objects (:mod:`adamkit.torch._in_backward`)."""
        if hyperparameters is not self._ready_for:
            self._ready = [
                quantized.planned_update_pointers(self._spec, hyperparameters, **arguments) if kind == INT8 else None
                for kind, _, arguments in self._calls
            ]
            self._ready_for = hyperparameters
        for (kind, indices, arguments), ready in zip(self._calls, self._ready):
            grads = [grad_ptrs[i] for i in indices] if len(indices) < len(grad_ptrs) else grad_ptrs
            counts = [steps[i] for i in indices] if len(indices) < len(steps) else steps
            if ready is not None:
                ready(grads, counts)
                continue
            seeds = rounding_seeds(counts) if kind == BFLOAT16 else None
            native.update_pointers(
                self._spec, hyperparameters, grad_ptrs=grads, steps=counts, rounding_seeds=seeds, **arguments
            )


def active_keys(spec, group):
    """The keys of the state slots ``spec``'s rule uses with ``group``'s hyperparameters."""
    return [slot.key for slot in spec.active_slots(group)]
