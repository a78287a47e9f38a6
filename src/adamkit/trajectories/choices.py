"""The optimizers drawn on the test functions: ``adamkit.numpy`` classes, by name.

:class:`UncorrectedAdam` is not one of them: it exists only to show what Adam's bias
correction does, beside the real Adam.
"""

from typing import NamedTuple

import numpy as np

import adamkit.numpy
from adamkit import specs


class Choice(NamedTuple):
    """How an optimizer is labelled, its ``adamkit.numpy`` class, and its settings besides ``lr``."""

    label: str
    factory: type
    settings: dict


EVALUATION_POINT = " at its evaluation point x"
"""What the label of an optimizer with two points (Schedule-Free) adds: its path is that of x."""

#: The optimizers of ``adamkit trajectories`` by name.
OPTIMIZERS = {
    name: Choice(variant.label + EVALUATION_POINT * spec.has_modes, getattr(adamkit.numpy, spec.name), variant.settings)
    for name, (spec, variant) in specs.DRAWN.items()
}
"""The variants of the specs drawn on the test functions (:data:`adamkit.specs.DRAWN`)."""


def make_optimizer(name, params, lr):
    """The optimizer ``name`` of :data:`~adamkit.trajectories.choices.OPTIMIZERS` over the arrays
    ``params``, in train mode if it has modes (Schedule-Free)."""
    choice = OPTIMIZERS[name]
    return specs.in_train_mode(choice.factory(params, lr=lr, **choice.settings))


def shown_point(optimizer, point):
    """Where ``optimizer``'s path is after a step that left its parameter at ``point``: the
    parameter itself, or for an optimizer with two points (Schedule-Free, whose parameter holds
    the training point y while it trains) the evaluation point x, computed from its state
    (:attr:`adamkit.rules._spec.Spec.eval_point`) without moving the parameter."""
    spec = getattr(optimizer, "spec", None)
    if spec is None or not spec.has_modes:
        return point
    evaluated = spec.eval_point(point, optimizer.state[0], optimizer.param_groups[0])
    return point if evaluated is None else evaluated


class UncorrectedAdam:
    r"""Adam with the bias correction left out: a teaching variant, not an adamkit optimizer.

    .. math::
        m &\leftarrow \beta_1 m + (1-\beta_1) g \\
        v &\leftarrow \beta_2 v + (1-\beta_2) g^2 \\
        \theta &\leftarrow \theta - \gamma\, \frac{m}{\sqrt{v} + \epsilon}

    This is :func:`adamkit.rules.adam` with both factors :math:`1-\beta_i^t` replaced by 1. As
    m and v start at zero, its first step is :math:`(1-\beta_1)/\sqrt{1-\beta_2} \approx 3.2`
    times Adam's. It updates its arrays in place, like the ``adamkit.numpy`` optimizers.
    """

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.exp_avg = [np.zeros_like(param) for param in self.params]
        self.exp_avg_sq = [np.zeros_like(param) for param in self.params]

    def step(self, grads):
        beta1, beta2 = self.betas
        for param, grad, exp_avg, exp_avg_sq in zip(
            self.params, grads, self.exp_avg, self.exp_avg_sq, strict=True
        ):
            exp_avg += (1 - beta1) * (grad - exp_avg)
            exp_avg_sq *= beta2
            exp_avg_sq += (1 - beta2) * grad * grad
            param -= self.lr * exp_avg / (np.sqrt(exp_avg_sq) + self.eps)
