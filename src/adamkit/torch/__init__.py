"""Drop-in ``torch.optim.Optimizer`` subclasses: ``Adam``, ``AdamW``, ``Adamax``,
``Adadelta``, ``SGD``, ``Adagrad`` and ``RMSprop``.

>>> import torch, adamkit.torch
>>> w = torch.nn.Parameter(torch.ones(3))
>>> opt = adamkit.torch.Adam([w], lr=0.1)
>>> w.sum().backward(); _ = opt.step()
>>> [round(x, 4) for x in w.tolist()]
[0.9, 0.9, 0.9]
"""

from adamkit.torch._base import Optimizer
from adamkit.torch._checks import MismatchError
from adamkit.torch._optimizers import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, RMSprop

__all__ = ["SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "MismatchError", "Optimizer", "RMSprop"]
