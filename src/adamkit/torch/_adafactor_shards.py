r"""Adafactor on parameters sharded across processes (FSDP2's ``DTensor``).

Each process steps its shard with the rule's own pieces (``adamkit.rules.adafactor.adafactor_phases``,
which ``adamkit.rules.adafactor.adafactor`` runs on whole arrays), and the sums that reach
across shards are added over the processes (:mod:`adamkit.torch._shard_sums`): one collective
per phase for all the group's tensors, two per step.

Which of Adafactor's quantities are whole on a shard of ``Shard(s)`` (the tensor split along
axis ``s``), for a parameter of ``n`` dimensions:

- per element, whole anywhere: the vector's ``variance`` (``n <= 1``), the update
  :math:`U = G/\sqrt{\hat V}` once :math:`\hat V`'s factors are whole, and the step itself;
- per row (``n >= 2``, reduced over the last axis): :math:`\mathrm{mean}_{-1}(G^2)` and the
  row factor ``row_var`` are whole when ``s < n - 1``: a shard holds whole rows. ``row_var``
  is sharded as the parameter is;
- per column (reduced over axis ``-2``): :math:`\mathrm{mean}_{-2}(G^2)`, the column factor
  ``col_var`` and :math:`\mathrm{mean}(R)` over the rows need every process's rows when
  ``s = n - 2`` (FSDP2's ``Shard(0)`` of a matrix): their sums are added over the processes,
  and ``col_var`` is then the same on every process, a ``DTensor`` replicated over them.
  When ``s < n - 2`` (a stack of matrices split between matrices) they are whole, and
  ``col_var`` is sharded as the parameter is;
- over the whole tensor, always added over the processes: :math:`\mathrm{RMS}(\theta)`, the
  parameter scaling, and :math:`\mathrm{RMS}(U)`, the update clipping, with the whole
  tensor's element count.

A tensor split along its last axis (``s = n - 1``, ``n >= 2``) would need its row factor
summed over the processes and replicated: it is refused (``NotImplementedError``), as is a
tensor split along more than one axis, one off the CPU, one in bfloat16 (torch's
implementation steps those) and a group with ``foreach=True``. The sums over the processes are
in rank order, so a given number of processes gives the same bits every time; they equal the
one-process step to rounding (a shard's sums are not the whole tensor's order).
"""

import numpy as np
import torch

from adamkit.rules.adafactor import adafactor_phases
from adamkit.torch._arrays import as_array
from adamkit.torch._local_shard import is_distributed, like, local
from adamkit.torch._shard_sums import ShardGroups, is_sharded


def check(group, where):
    """Raise ``NotImplementedError`` naming ``where[index]`` for a sharded parameter of
    ``group`` that this module cannot step (the module docstring)."""
    for index, param in enumerate(group.get("params", ())):
        if not is_sharded(param):
            continue
        reason = _refusal(param, group)
        if reason:
            raise NotImplementedError(
                f"{where}[{index}] is sharded across processes as {tuple(param.placements)} (FSDP2), "
                f"and {reason}: Adafactor's factors and root mean squares need sums over the whole tensor"
            )


def _refusal(param, group):
    axes = _split_axes(param)
    if len(axes) != 1:
        return f"split along the axes {sorted(axes)}: adamkit adds Adafactor's sums over one split axis"
    if param.dim() >= 2 and axes == {param.dim() - 1}:
        return "split along its last axis: adamkit adds Adafactor's sums over rows, not over columns"
    if not param.is_cpu:
        return f"on {param.device}, where torch's implementation steps it without those sums"
    if param.dtype is torch.bfloat16:
        return "bfloat16, which torch's implementation steps without those sums"
    if group.get("foreach"):
        return "foreach=True asks for torch's implementation, which steps it without those sums"
    return None


def _split_axes(param):
    return {placement.dim for placement in param.placements if placement.is_shard()}


def shard_state(param, state):
    """Lay ``param``'s factors out for its shard, in place: the base's initialisation makes them
    plain tensors of the whole tensor's factor shapes (the module docstring has the layout)."""
    from torch.distributed.tensor import DTensor, Replicate

    if param.dim() < 2 or is_distributed(state["row_var"]):
        return
    shard, row_var, col_var = local(param), state["row_var"], state["col_var"]
    state["row_var"] = like(torch.zeros(shard.shape[:-1] + (1,), dtype=row_var.dtype), param, row_var.shape)
    if _split_axes(param) == {param.dim() - 2}:
        placements = [Replicate() if placement.is_shard() else placement for placement in param.placements]
        state["col_var"] = DTensor.from_local(col_var.contiguous(), param.device_mesh, placements, run_check=False)
    else:
        value = torch.zeros(shard.shape[:-2] + (1,) + shard.shape[-1:], dtype=col_var.dtype)
        state["col_var"] = like(value, param, col_var.shape)


def update(hyperparameters, params, states, steps):
    """One Adafactor step of ``params`` (sharded or not) and their ``states``, in place."""
    keys = ("row_var", "col_var", "variance")
    groups = ShardGroups(params)
    views = [{key: as_array(local(state[key])) for key in keys if key in state} for state in states]
    phases = [
        adafactor_phases(
            as_array(local(param)), as_array(local(param.grad)), *(view.get(key) for key in keys),
            step=step, shape=tuple(param.shape), **hyperparameters,
        )
        for param, view, step in zip(params, views, steps)
    ]  # fmt: skip
    with np.errstate(all="ignore"):  # non-finite gradients propagate silently, as in torch
        sums = [next(phase) for phase in phases]
        while True:
            resumed = [_resumed(phase, whole) for phase, whole in zip(phases, _whole(groups, params, sums))]
            sums = [yielded for yielded, _ in resumed]
            if sums[0] is None:  # every tensor has the same phases
                break
    for param, view, (_, result) in zip(params, views, resumed):
        np.copyto(as_array(local(param)), result.param)
        for key, array in view.items():
            np.copyto(array, getattr(result, key))


def _resumed(phase, sums):
    """``(what phase yields next, None)``, or ``(None, its result)`` once it returns."""
    try:
        return phase.send(sums), None
    except StopIteration as done:
        return None, done.value


def _whole(groups, params, sums):
    """Each tensor's ``sums`` (pairs ``(sum, axis)`` of its shard), made whole: those over every
    axis or over the axis it is split along, added over the processes in one collective."""
    picked, parts = [], []
    for param, pairs in zip(params, sums):
        split = _split_axes(param) if is_sharded(param) else None
        chosen = [i for i, (_, axis) in enumerate(pairs) if split and (axis is None or axis % param.dim() in split)]
        picked.append(chosen)
        parts.append(
            torch.cat([torch.from_numpy(np.ravel(pairs[i][0]).astype(np.float64)) for i in chosen]) if chosen else None
        )
    totals = groups.summed(parts)
    whole = []
    for pairs, chosen, total in zip(sums, picked, totals):
        values, offset = [value for value, _ in pairs], 0
        for i in chosen:
            value = np.asarray(values[i])
            values[i] = total[offset : offset + value.size].numpy().astype(value.dtype).reshape(value.shape)
            offset += value.size
        whole.append(values)
    return whole
