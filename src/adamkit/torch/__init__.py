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
from adamkit.torch._adabelief import AdaBelief
from adamkit.torch._adafactor import Adafactor
from adamkit.torch._ademamix import AdEMAMix
from adamkit.torch._adopt import ADOPT
from adamkit.torch._base import Optimizer
from adamkit.torch._checks import MismatchError
from adamkit.torch._lamb import LAMB
from adamkit.torch._lion import Lion
from adamkit.torch._nadam import NAdam
from adamkit.torch._optimizers import *  # noqa: F403  # the first rules' classes, named in its __all__
from adamkit.torch._radam import RAdam
from adamkit.torch._rmsprop import RMSprop
from adamkit.torch._schedule_free import AdamWScheduleFree
from adamkit.torch._sparse_adam import SparseAdam

# One class per spec, in the specs' order (tests/torch/test_contract.py checks), then the rest.
__all__ = _optimizers.__all__ + [
    "RMSprop",
    "Adafactor",
    "NAdam",
    "RAdam",
    "AdaBelief",
    "ADOPT",
    "Lion",
    "AdEMAMix",
    "LAMB",
    "AdamWScheduleFree",
    "SparseAdam",
    "MismatchError",
    "Optimizer",
]
