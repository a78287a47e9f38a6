"""Drop-in ``torch.optim.Optimizer`` subclasses, one per rule spec (:data:`adamkit.specs.ALL`):
``Adam``, ``AdamW``, ``SGD``...

>>> import torch, adamkit.torch
>>> w = torch.nn.Parameter(torch.ones(3))
>>> opt = adamkit.torch.Adam([w], lr=0.1)
>>> w.sum().backward(); _ = opt.step()
>>> [round(x, 4) for x in w.tolist()]
[0.9, 0.9, 0.9]
"""

from adamkit import specs
from adamkit.torch import optimizers
from adamkit.torch._checks import MismatchError
from adamkit.torch.optimizer import Optimizer

# One class per spec, written out in adamkit.torch.optimizers.
globals().update({spec.name: getattr(optimizers, spec.name) for spec in specs.ALL})
__all__ = [spec.name for spec in specs.ALL] + ["MismatchError", "Optimizer"]
