"""The number formats a torch model trains in: its parameters' dtype and an optional autocast.

``compare`` trains in float32. The quality benchmark (``benchmarks/quality.py``) also trains the
same models with bfloat16 parameters, or with float32 parameters under ``torch.autocast``, and
evaluates every one of them the same way: in float32 from the trained weights.
"""

import contextlib
import copy
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    """``dtype``: the model's parameters and floating-point inputs; ``autocast``: the dtype of
    ``torch.autocast`` around the forward pass and the loss, or ``None`` for none."""

    dtype: torch.dtype = torch.float32
    autocast: torch.dtype | None = None

    def model(self, model):
        """``model`` with its parameters and buffers cast to ``dtype`` (in place)."""
        return model.to(self.dtype)

    def inputs(self, tensor):
        """``tensor`` cast to ``dtype`` if it holds floating-point values (token ids stay)."""
        return tensor.to(self.dtype) if tensor.is_floating_point() else tensor

    def forward(self):
        """The context for the forward pass and the loss."""
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=self.autocast)


FLOAT32 = Precision()


def as_float32(model):
    """``model`` itself if every parameter and buffer is float32, else a float32 copy of it.

    A bfloat16 value converts to float32 exactly, so the copy computes with the same weights
    (a float64 value is rounded to the nearest float32).
    """
    tensors = [*model.parameters(), *model.buffers()]
    if all(tensor.dtype == torch.float32 for tensor in tensors if tensor.is_floating_point()):
        return model
    return copy.deepcopy(model).float()
