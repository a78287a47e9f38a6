"""The part of a tensor this process holds, which is what the kernels step.

Under FSDP2 (``fully_shard``) parameters, gradients and optimizer state are DTensors: each
process holds a shard along dim 0, possibly uneven or empty. The kernels step the local
shards; the state stays a DTensor with its parameter's placements, so that
``torch.distributed.checkpoint`` can reshard it. Anything else is its own local part.
"""

try:
    from torch.distributed.tensor import DTensor
except ImportError:  # torch built without torch.distributed
    DTensor = None


def is_distributed(tensor):
    """Whether ``tensor`` is a DTensor."""
    return DTensor is not None and isinstance(tensor, DTensor)


def local(tensor):
    """The local shard of a DTensor (called under ``no_grad``: no autograd node), else ``tensor``."""
    return tensor.to_local() if is_distributed(tensor) else tensor


def like(local_tensor, param):
    """``local_tensor``, made by a rule for ``param``'s local shard, as state laid out like ``param``."""
    if not is_distributed(param):
        return local_tensor
    return DTensor.from_local(
        local_tensor, param.device_mesh, param.placements, run_check=False, shape=param.shape, stride=param.stride()
    )
