"""Where the torch front end cannot honour ``cautious=True`` (:mod:`adamkit.rules.cautious`), whose
mask is rescaled by the kept fraction of the whole tensor: it refuses, never steps otherwise.

- A lazy sparse step (``sparse_mode="lazy"``) updates only the gradient's rows, and the fraction
  is over all of them: ``TypeError`` at the step that gets a sparse gradient, before anything
  changes (``sparse_mode="dense"`` densifies the gradient and takes the cautious step).
- A parameter sharded by FSDP2 (a DTensor with a ``Shard`` placement) holds part of the tensor,
  whose fraction would need the count of every process, which adamkit does not all-reduce:
  ``NotImplementedError`` when it is added, as LAMB refuses shards (at its step). DDP and ZeRO
  step full tensors, which need nothing.
"""

from adamkit.torch._local_shard import is_distributed


def check_group(optimizer, group):
    """Raise ``NotImplementedError`` if ``group`` (with its ``params`` once it is added) sets
    ``cautious=True`` with a parameter sharded across processes."""
    if not group.get("cautious"):
        return
    for index, param in enumerate(group.get("params", ())):
        if is_distributed(param) and any(placement.is_shard() for placement in param.placements):
            raise NotImplementedError(
                f"cautious=True cannot step params[{index}], sharded across processes as "
                f"{tuple(param.placements)} (FSDP2): the mask's rescale is over the whole tensor, "
                "which needs the count of every shard, and adamkit does not all-reduce it; use DDP "
                "or ZeroRedundancyOptimizer, which keep parameters whole"
            )


def check_sparse(spec, group, where):
    """Raise ``TypeError`` naming ``where`` for a sparse gradient stepped lazily with
    ``cautious=True``."""
    if group.get("cautious") and spec.sparse_grads == "lazy" and group.get("sparse_mode") == "lazy":
        raise TypeError(
            f"the sparse gradient of {where} cannot be stepped lazily with cautious=True: the mask's "
            "rescale is over the whole tensor, not the gradient's rows (sparse_mode='dense' "
            "densifies it)"
        )
