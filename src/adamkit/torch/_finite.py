"""Whether a list of gradients is finite, with a number of torch operations that does not grow
with the number of tensors: the check of ``nonfinite_grads="skip"``.

The gradients of each device are reduced together to their max norms
(``torch._foreach_norm`` with ``ord=inf``): a tensor's max norm is NaN if it holds a NaN,
infinite if it holds an infinity, and otherwise its largest magnitude, finite however large.
The norms are stacked and tested at once, with one transfer to the host per device. A complex
tensor is tested as its (real, imag) pairs, since the magnitude of finite parts may overflow.
DTensors are tested one by one, as DTensors, so that every process decides alike.
"""

import math

import torch

from adamkit.torch._local_shard import is_distributed


def first_nonfinite(tensors):
    """The index of the first of ``tensors`` that holds a NaN or an infinity, or ``None``."""
    by_device, bad = {}, []
    for index, tensor in enumerate(tensors):
        if is_distributed(tensor):
            if not torch.isfinite(tensor).all():
                bad.append(index)
        elif tensor.numel():
            by_device.setdefault(tensor.device, []).append(index)
    for indices in by_device.values():
        norms = torch._foreach_norm([_real(tensors[i]) for i in indices], ord=math.inf)
        finite = torch.isfinite(torch.stack(norms))
        if not finite.all():
            bad.append(indices[int(finite.logical_not().nonzero()[0])])
    return min(bad, default=None)


def _real(tensor):
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor
