"""The NumPy optimizers, one per spec of :data:`adamkit.specs.ALL`, named like it: ``Adam``,
``AdamW``, ``SGD``...

Each takes torch's hyperparameters with torch's defaults (from its spec) in torch's positional
order (``help`` and ``inspect.signature`` show them), without torch's device flags
(``foreach``, ``fused``, ``capturable``, ``differentiable``). The math of each class is the
rule of its spec. Every class takes the keyword-only options ``nonfinite_grads`` and
``state_dtype`` (``None``; the optimizers whose spec takes compact state also ``"int8"`` and
``"bf16"``), see :class:`adamkit.numpy.Optimizer`.
"""

from adamkit import specs
from adamkit.numpy._base import Optimizer
from adamkit.numpy._modes import Modes


def optimizer_class(spec):
    """The NumPy optimizer of ``spec``: its name, its signature (from ``spec.positional``,
    ``spec.fixed`` and the defaults) and its checks; ``train()`` and ``eval()`` if it has modes
    (:class:`~adamkit.numpy._modes.Modes`)."""
    doc = (
        f"{spec.name} (:func:`adamkit.rules.{spec.rule.__name__}`) over NumPy arrays, with the "
        f"hyperparameters and defaults of :class:`adamkit.torch.{spec.name}`."
    )
    namespace = {"spec": spec, "positional": spec.positional, "fixed": spec.fixed, "__doc__": doc}
    bases = (Modes, Optimizer) if spec.has_modes else (Optimizer,)
    return type(spec.name, bases, {**namespace, "__module__": __name__, "__qualname__": spec.name})


CLASSES = {spec.name: optimizer_class(spec) for spec in specs.ALL}
"""Each NumPy optimizer class under its name."""
globals().update(CLASSES)
__all__ = list(CLASSES)
