"""Sums over whole tensors whose shards are spread across processes (FSDP2's ``DTensor``).

LAMB's trust ratio needs the squared norms of the whole parameter and of its whole update, and
``cautious=True``'s rescale the kept count of the whole tensor. The C kernels compute each
tensor's two local sums in their first pass, then call a reducer (:func:`reducer`) that
replaces them by the whole tensor's, then step with those in their second pass
(``csrc/kernels_api.h``, ``ak_call.reduce``). One collective per kernel call, whatever the
number of tensors: the local sums of every tensor sharded over the same processes travel in
one flat float64 tensor.

The sum over processes is in a fixed order, so that a given number of processes gives the same
bits at every step and on every process: the local sums are gathered
(``all_gather_into_tensor``), and every process adds the ranks' rows one by one in rank order.
The per-process sums themselves follow the kernels' fixed order within each shard, so the
result equals the one-process step to rounding, not bitwise (the blocks of a shard are not
those of the whole tensor).

Where the C kernels do not step a sharded tensor (``fused=False``, kernels not built, tensors
off the CPU, 8-bit state), nothing would make the sums whole: :func:`check` refuses it.
"""

import torch

from adamkit.kernels import native
from adamkit.torch._local_shard import is_distributed


def is_sharded(param):
    """Whether ``param`` is a DTensor with a ``Shard`` placement: each process holds a part."""
    return is_distributed(param) and any(placement.is_shard() for placement in param.placements)


def check(optimizer, group, what, where):
    """Raise ``NotImplementedError`` naming ``where[index]`` for a sharded parameter of ``group``
    whose ``what`` (a whole-tensor sum) adamkit cannot make whole: anywhere but in its C kernels
    on the CPU."""
    for index, param in enumerate(group.get("params", ())):
        if not is_sharded(param):
            continue
        reason = _unreduced_reason(optimizer, group, param)
        if reason:
            raise NotImplementedError(
                f"{where}[{index}] is sharded across processes as {tuple(param.placements)} (FSDP2): "
                f"{what} needs sums over the whole tensor, which adamkit all-reduces only in its C "
                f"kernels on the CPU, and {reason}"
            )


def _unreduced_reason(optimizer, group, param):
    if not param.is_cpu:
        return f"the parameter is on {param.device}"
    if group.get("fused") is False:
        return "fused=False steps it with the reference backend"
    if not native.available():
        return "the kernels were not built"
    if optimizer.state_dtype == "int8":
        return "state_dtype='int8' steps it with the 8-bit kernels"
    return None


class ShardGroups:
    """The sharded tensors of a list, by the processes that hold their shards (a mesh and its
    dimensions that shard them), for :meth:`summed`."""

    def __init__(self, params):
        buckets = {}
        for index, param in enumerate(params):
            if is_sharded(param):
                mesh = param.device_mesh
                dims = tuple(dim for dim, placement in enumerate(param.placements) if placement.is_shard())
                buckets.setdefault((id(mesh), dims), (mesh, dims, []))[2].append(index)
        self.buckets = [(indices, [mesh.get_group(dim) for dim in dims]) for mesh, dims, indices in buckets.values()]

    def summed(self, parts):
        """``parts`` (one 1-D float64 tensor per tensor of the list, or ``None``), those of sharded
        tensors summed over the processes holding their shards: one collective per bucket
        and mesh dimension, the parts of a bucket's tensors laid end to end."""
        parts = list(parts)
        for indices, process_groups in self.buckets:
            flat = torch.cat([parts[i] for i in indices])
            for process_group in process_groups:
                flat = _summed_over(flat, process_group)
            parts_of = flat.split([parts[i].numel() for i in indices])
            for i, part in zip(indices, parts_of):
                parts[i] = part
        return parts


def reducer(params):
    """For the kernels' ``reduce``: a function taking two local sums per tensor of ``params``
    and returning them summed over the processes that hold each sharded tensor's shards (the
    others' as they are); ``None`` if no tensor is sharded."""
    groups = ShardGroups(params)
    if not groups.buckets:
        return None

    def reduce(local_sums):
        parts = torch.tensor(local_sums, dtype=torch.float64).view(-1, 2).unbind()
        return torch.cat(groups.summed(parts)).tolist()

    return reduce


def _summed_over(part, process_group):
    """``part`` summed over the processes of ``process_group``, in rank order."""
    import torch.distributed as dist

    world_size = dist.get_world_size(process_group)
    gathered = torch.empty(world_size * part.numel(), dtype=part.dtype)
    dist.all_gather_into_tensor(gathered, part.contiguous(), group=process_group)
    rows = gathered.view(world_size, -1)
    total = rows[0].clone()
    for row in rows[1:]:
        total += row
    return total
