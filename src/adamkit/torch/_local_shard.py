"""The part of a tensor this process holds, which is what the kernels step.

Under FSDP2 (``fully_shard``) parameters, gradients and optimizer state are DTensors: each
process holds a shard along dim 0, possibly uneven or empty. The kernels step the local
shards; the state stays a DTensor with its parameter's placements, so that
``torch.distributed.checkpoint`` can reshard it. Anything else is its own local part.
"""

import sys

# torch.distributed.tensor is slow to import (BENCHMARKS.md, "Issue 15: import cost"); a DTensor
# exists only once it has been imported, so it is looked up where it is, never imported here.
_DTENSOR_MODULE = "torch.distributed.tensor"


def _dtensor_class():
    """``torch.distributed.tensor.DTensor`` if that module has been imported, else ``None``."""
    module = sys.modules.get(_DTENSOR_MODULE)
    return getattr(module, "DTensor", None)


def is_distributed(tensor):
    """Whether ``tensor`` is a DTensor."""
    dtensor = _dtensor_class()
    return dtensor is not None and isinstance(tensor, dtensor)


def local(tensor):
    """The local shard of a DTensor (called under ``no_grad``: no autograd node), else ``tensor``."""
    return tensor.to_local() if is_distributed(tensor) else tensor


def like(local_tensor, param, shape=None):
    """``local_tensor``, made for ``param``'s local shard, as state laid out like ``param``.

    ``shape`` is the global shape when it is not ``param``'s (8-bit state's per-row scales):
    it is sharded on dim 0 as ``param`` is, so its local rows are the local shard's rows.
    """
    if not is_distributed(param):
        return local_tensor
    shape = tuple(param.shape if shape is None else shape)
    stride = [1] * len(shape)
    for dim in range(len(shape) - 2, -1, -1):
        stride[dim] = stride[dim + 1] * max(shape[dim + 1], 1)
    return _dtensor_class().from_local(
        local_tensor, param.device_mesh, param.placements, run_check=False, shape=shape, stride=tuple(stride)
    )
