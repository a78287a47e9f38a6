"""What the kernels need of every tensor a step touches, checked before any of them runs.

The kernels read and write through data pointers, so a state tensor that Python has replaced,
resized, re-typed or aliased since it was made would be written out of its bounds. Before the
full (uncached) step of a group changes anything, every tensor it is about to touch is checked
here against what the rule needs of it:

- each state slot the rule will use, for the layout its parameter's state is kept in (full
  precision, bfloat16 or 8-bit codes under ``<key>_codes`` with their ``<key>_absmax`` scales;
  :func:`expected_slots`),
  and the Kahan compensation buffer: a tensor of the expected dtype and shape, on the
  parameter's device, without internal overlap (stride 0). A state tensor that is merely not
  contiguous is replaced by a contiguous copy of the same values, so the step's result is
  torch's (which steps it in place);
- that no tensor the step writes (parameters, state, scales, compensation) shares memory with
  another tensor of the group it touches, written or read (gradients): the kernels step a
  group's tensors in parallel, and torch's own in-place operations refuse such overlap too
  (:class:`WrittenMemory`).

A tensor that does not fit raises :class:`MismatchError`, naming the parameter and the slot.
:class:`adamkit.torch._cached_plan.GroupPlan` re-checks the same facts at every cached step.
"""

import numpy as np
import torch

from adamkit.compact.int8 import absmax_shape
from adamkit.kernels import quantized
from adamkit.torch import _compact_state as compact_state
from adamkit.torch import _kahan as kahan
from adamkit.torch._local_shard import is_distributed, local

OVERLAP = (
    "unsupported operation: some elements of the input tensor and the written-to tensor refer to "
    "a single memory location"
)
_CODE_DTYPES = {key: getattr(torch, np.dtype(dtype).name) for key, dtype in quantized.CODE_DTYPES.items()}


#: The layouts a parameter's state is held in (:func:`state_layout`).
FULL, BFLOAT16, INT8 = "full precision", "bfloat16", "int8"


class MismatchError(RuntimeError, ValueError):
    """A parameter, gradient or state tensor that does not fit the step.

    torch.optim raises ``RuntimeError`` where its operations meet such a tensor; adamkit's
    earlier checks raised ``ValueError``, so both ``except`` clauses catch it.
    """


def overlaps_itself(tensor):
    """Whether some elements of ``tensor`` share one memory location (a stride of 0 over a
    dimension of more than one element, as ``expand`` makes). A tensor without elements shares
    none, whatever its strides (NumPy gives an empty copy strides of 0: a rule's new slot of an
    empty FSDP2 shard)."""
    return tensor.numel() > 1 and any(stride == 0 and size > 1 for size, stride in zip(tensor.shape, tensor.stride()))


def state_layout(param, state):
    """How ``param``'s state is held: :data:`FULL` precision, :data:`BFLOAT16`
    (``state_dtype="bf16"``) or 8-bit codes and scales, :data:`INT8` (``"int8"``)."""
    if compact_state.is_bfloat16(param, state):
        return BFLOAT16
    return INT8 if compact_state.is_quantized(state) else FULL


def expected_slots(spec, group, param, state):
    """``{key: (dtype, shape)}`` of the state tensors the step of ``param`` uses, for the
    layout its state is held in (:func:`state_layout`)."""
    keys = [slot.key for slot in spec.active_slots(group)]
    kind = state_layout(param, state)
    if kind == INT8:
        rows = is_distributed(param)
        expected = {}
        for key in keys:
            codes, scales = quantized.compact_keys(key)
            expected[codes] = (_CODE_DTYPES[key], param.shape)
            expected[scales] = (torch.float32, torch.Size(absmax_shape(param.shape, rows)))
    else:
        dtype = torch.bfloat16 if kind == BFLOAT16 else _full_precision_dtype(param, state, keys)
        shapes = spec.slot_shapes(group, param.shape)
        expected = {key: (dtype, torch.Size(shapes[key])) for key in keys if key in shapes}
    if kahan.KEY in state:
        expected[kahan.KEY] = (torch.bfloat16, param.shape)
    return expected


def _full_precision_dtype(param, state, keys):
    """The dtype of full-precision state: the parameter's, or float32 for a bfloat16 parameter
    whose state is float32 (``state_dtype="fp32"``): the first slot present decides, as the
    kernels' state layout does, and every other slot must agree."""
    if param.dtype is torch.bfloat16:
        first = next((state[key] for key in keys if torch.is_tensor(state.get(key))), None)
        if first is not None and first.dtype is torch.float32:
            return torch.float32
    return param.dtype


def check_state(where, param, state, expected):
    """Raise :class:`MismatchError` unless each present state tensor of ``expected`` fits;
    replace one that fits but is not contiguous by a contiguous copy. ``where`` names the
    parameter. An 8-bit slot's codes and scales must be present together."""
    for key, (dtype, shape) in expected.items():
        if key not in state:
            partner = _partner(key)
            if partner in expected and partner in state:
                raise MismatchError(f"{where}: state[{partner!r}] has no state[{key!r}] beside it")
            continue
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise MismatchError(f"{where}: state[{key!r}] is a {type(value).__name__}, not a tensor")
        if value.dtype is not dtype or value.shape != shape:
            raise MismatchError(
                f"{where}: state[{key!r}] is {value.dtype} of shape {tuple(value.shape)}, "
                f"but the step needs {dtype} of shape {tuple(shape)}"
            )
        if value.device != param.device or is_distributed(value) != is_distributed(param):
            raise MismatchError(f"{where}: state[{key!r}] is on {value.device}, but the parameter is on {param.device}")
        shard = local(value)
        if overlaps_itself(shard):
            raise MismatchError(f"{where}: state[{key!r}]: {OVERLAP}")
        check_storage(f"{where}: state[{key!r}]", shard)
        if not shard.is_contiguous():
            state[key] = value.contiguous()


def check_storage(what, tensor):
    """Raise :class:`MismatchError` if a CPU ``tensor``'s elements reach past its storage, as
    after ``tensor.untyped_storage().resize_(0)``, which keeps the tensor's shape."""
    if not tensor.is_cpu or tensor.numel() == 0:
        return
    extent = tensor.storage_offset() + sum((size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride())) + 1
    if tensor.untyped_storage().nbytes() < extent * tensor.element_size():
        raise MismatchError(f"{what} reaches past the end of its storage (resized underneath it)")


def _partner(key):
    """The other half of an 8-bit slot: the scales of codes, or the codes of scales (``None``
    for a key that is neither)."""
    slot = quantized.coded_slot(key)
    if slot is None:
        return None
    codes, scales = quantized.compact_keys(slot)
    return scales if key == codes else codes


def byte_range(tensor):
    """``(start, end)`` of a contiguous local tensor's memory, in bytes."""
    start = tensor.data_ptr()
    return start, start + tensor.numel() * tensor.element_size()


class WrittenMemory:
    """The memory a group's step writes, as sorted disjoint byte ranges, to check reads against."""

    def __init__(self, named_ranges):
        """``named_ranges``: ``(name, (start, end))`` of each tensor written; raise
        :class:`MismatchError` if two of them overlap."""
        named = [(name, span) for name, span in named_ranges if span[1] > span[0]]
        starts = np.array([span[0] for _, span in named], dtype=np.int64)
        ends = np.array([span[1] for _, span in named], dtype=np.int64)
        order = np.argsort(starts, kind="stable")
        self._names = [named[i][0] for i in order]
        self.starts, self.ends = starts[order], ends[order]  # sorted and, once checked, disjoint
        clash = np.flatnonzero(self.starts[1:] < self.ends[:-1])
        if clash.size:
            first, second = self._names[clash[0]], self._names[clash[0] + 1]
            raise MismatchError(f"{first} and {second} share memory: {OVERLAP}")

    def first_overlap(self, starts, ends):
        """The index of the first range ``[starts[i], ends[i])`` that overlaps written memory
        (empty ranges never do), or ``None``."""
        starts = np.asarray(starts, dtype=np.int64)
        ends = np.asarray(ends, dtype=np.int64)
        below = np.searchsorted(self.starts, ends, side="left") - 1
        hits = (ends > starts) & (below >= 0) & (self.ends[np.maximum(below, 0)] > starts)
        found = np.flatnonzero(hits)
        return int(found[0]) if found.size else None

    def check_reads(self, named_ranges):
        """Raise :class:`MismatchError` if a tensor read overlaps written memory."""
        if not named_ranges or not self.starts.size:
            return
        index = self.first_overlap([span[0] for _, span in named_ranges], [span[1] for _, span in named_ranges])
        if index is not None:
            raise MismatchError(f"{named_ranges[index][0]} shares memory with a tensor the step writes: {OVERLAP}")
