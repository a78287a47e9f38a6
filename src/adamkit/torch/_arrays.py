"""Views of CPU tensors as NumPy arrays that share their memory (complex as real pairs)."""

import numpy as np
import torch

SUPPORTED_DTYPES = (
    torch.bfloat16,
    torch.float16,
    torch.float32,
    torch.float64,
    torch.complex64,
    torch.complex128,
)


def as_array(tensor):
    """A NumPy view of ``tensor``'s memory; a complex tensor is viewed as (real, imag) pairs."""
    tensor = tensor.detach()
    if tensor.is_complex():
        tensor = torch.view_as_real(tensor)
    return tensor.numpy()


def as_tensor(array, like):
    """Wrap a NumPy array made by a rule as a tensor shaped and typed like ``like``."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return torch.view_as_complex(tensor) if like.is_complex() else tensor
