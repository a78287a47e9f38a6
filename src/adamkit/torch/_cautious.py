"""Where the torch front end cannot honour ``cautious=True`` (:mod:`adamkit.rules.cautious`), whose
mask is rescaled by the kept fraction of the whole tensor: it refuses, never steps otherwise.

- A lazy sparse step (``sparse_mode="lazy"``) updates only the gradient's rows, and the fraction
  is over all of them: ``TypeError`` at the step that gets a sparse gradient, before anything
  changes (``sparse_mode="dense"`` densifies the gradient and takes the cautious step).
- A parameter sharded by FSDP2 (a DTensor with a ``Shard`` placement) holds part of the tensor:
  the C kernels sum the kept counts of every process (:mod:`adamkit.torch._shard_sums`), and
  where they do not step it (``fused=False``, off the CPU, 8-bit state) it is refused with
  ``NotImplementedError`` when it is added and at every step. DDP and ZeRO step full tensors,
  which need nothing.
"""

from adamkit.torch import _shard_sums as shard_sums


def check_group(optimizer, group):
    """Raise ``NotImplementedError`` if ``group`` (with its ``params`` once it is added) sets
    ``cautious=True`` with a sharded parameter whose count adamkit cannot make whole."""
    if not group.get("cautious"):
        return
    # A group being added is not in param_groups yet: it will be the next one.
    groups = getattr(optimizer, "param_groups", [])  # none yet in the constructor
    index = next((i for i, known in enumerate(groups) if known is group), len(groups))
    shard_sums.check(
        optimizer, group, "cautious=True's rescale by the kept fraction", f"param_groups[{index}]['params']"
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
