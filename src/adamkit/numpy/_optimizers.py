"""The NumPy optimizers: ``Adam``, ``AdamW``, ``Adamax``, ``Adadelta``, ``SGD``, ``Adagrad``
and ``RMSprop``.

Each takes torch's hyperparameters with torch's defaults (from :mod:`adamkit.specs`) in
torch's positional order (``help`` and ``inspect.signature`` show them), without torch's
device flags (``foreach``, ``fused``, ``capturable``, ``differentiable``). The math of each
class is the rule of the same name in :mod:`adamkit.rules`. Every class takes the keyword-only
options ``nonfinite_grads`` and ``state_dtype`` (``None``; Adam, AdamW, Adamax and Adadelta
also take ``"int8"`` and ``"bf16"``), see :class:`adamkit.numpy.Optimizer`.
"""

from adamkit import specs
from adamkit.numpy._base import Optimizer


class Adam(Optimizer):
    """Adam (:func:`adamkit.rules.adam`); ``decoupled_weight_decay=True`` makes it AdamW.

    ``eps_hat=True`` opts in to the ε̂ convention of Keras and ``SparseAdam``.
    ``state_dtype="int8"`` keeps large float32 arrays' state 8-bit block-wise (about 2 bytes per
    parameter instead of 8), ``"bf16"`` in bfloat16 (4 bytes).
    """

    spec = specs.ADAM
    positional = ("lr", "betas", "eps", "weight_decay", "amsgrad")


class AdamW(Optimizer):
    """AdamW (:func:`adamkit.rules.adam` with decoupled weight decay, default λ = 1e-2)."""

    spec = specs.ADAMW
    positional = ("lr", "betas", "eps", "weight_decay", "amsgrad")
    fixed = ("decoupled_weight_decay",)


class Adamax(Optimizer):
    """Adamax (:func:`adamkit.rules.adamax`)."""

    spec = specs.ADAMAX
    positional = ("lr", "betas", "eps", "weight_decay")


class Adadelta(Optimizer):
    """Adadelta (:func:`adamkit.rules.adadelta`)."""

    spec = specs.ADADELTA
    positional = ("lr", "rho", "eps", "weight_decay")


class SGD(Optimizer):
    """SGD with momentum, dampening and Nesterov momentum (:func:`adamkit.rules.sgd`).

    Like torch's SGD it counts no steps; its only state is ``momentum_buffer``.
    """

    spec = specs.SGD
    positional = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def check_group(self, group):
        """Nesterov momentum needs a momentum and no dampening, in every group."""
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"nesterov=True requires momentum > 0 and dampening = 0, "
                f"got momentum={group['momentum']!r}, dampening={group['dampening']!r}"
            )


class Adagrad(Optimizer):
    """Adagrad (:func:`adamkit.rules.adagrad`); its state is created eagerly, as torch does."""

    spec = specs.ADAGRAD
    positional = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum (:func:`adamkit.rules.rmsprop`)."""

    spec = specs.RMSPROP
    positional = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")
