"""Drop-in ``torch.optim.Optimizer`` subclasses, one per rule spec (:data:`adamkit.specs.ALL`):
``Adam``, ``AdamW``, ``SGD``...

>>> import torch, adamkit.torch
>>> w = torch.nn.Parameter(torch.ones(3))
>>> opt = adamkit.torch.Adam([w], lr=0.1)
>>> w.sum().backward(); _ = opt.step()
>>> [round(x, 4) for x in w.tolist()]
[0.9, 0.9, 0.9]
"""

from adamkit.torch import _optimizers
from adamkit.torch._base import Optimizer
from adamkit.torch._checks import MismatchError
from adamkit.torch._lamb import LAMB
from adamkit.torch._optimizers import *  # noqa: F403  # one class per spec, named in its __all__

__all__ = _optimizers.__all__ + ["LAMB", "MismatchError", "Optimizer"]
