r"""Each rule's diagnostic quantities, computed in float64 from its stored state.

For one parameter, a rule's :class:`Quantities` are

- ``step_size``, per element: the factor the rule multiplies its direction by.
  For Adam it is :math:`\gamma / (\sqrt{\hat v} + \epsilon)`, applied to
  :math:`\hat m = m / (1-\beta_1^t)`; the other rules' factors are in their functions below.
- ``update``, per element: the step the rule last subtracted from the parameter, recomputed
  from the state, or ``None`` when the state does not determine it (the rule's update needs
  the gradient, which is not stored).
- ``scale`` and ``eps``: the gradient scale in the rule's denominator and the ε added to it,
  so that ε dominates where ``eps > scale``; ``None`` for rules without such a term.

The state is the one stored after the most recent step (raw moments, ``step`` = t), and the
hyperparameters are the group's current ones: if a scheduler has changed ``lr`` since the
step, the quantities are those of that state at the new ``lr``.

The state arrays may also be the states after several steps stacked along a first axis, with
``step`` an array of their counts shaped to broadcast against them (a column): each row's
quantities are then the very numbers of a call with that row alone.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from adamkit import rules
from adamkit.rules import AdamScalars, adam_scalars

QUANTILE_LEVELS = (0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0)


class Quantities(NamedTuple):
    step_size: np.ndarray
    update: np.ndarray | None
    scale: np.ndarray | None
    eps: float | None


def _adam_scalars_of(step, lr, betas, eps_hat=False):
    """:func:`adam_scalars` of the count ``step``, or, for an array of counts, the array of each
    field, element by element from :func:`adam_scalars`."""
    if np.ndim(step) == 0:
        return adam_scalars(step, lr, betas, eps_hat)
    fields = zip(*(adam_scalars(count, lr, betas, eps_hat) for count in np.ravel(step).tolist()))
    return AdamScalars(*(np.reshape(field, np.shape(step)) for field in fields))


def bias_corrections(step, betas):
    r"""The factors :math:`(1-\beta_1^t,\ 1-\beta_2^t)`, from the rules' own :func:`~adamkit.rules.adam_scalars`."""
    unit = _adam_scalars_of(step, 1.0, betas)
    return 1.0 / unit.step_size, unit.bias_correction2_sqrt**2


def adam(state, step, lr, betas, eps, amsgrad, eps_hat, **_):
    r"""Adam, AdamW and AMSGrad: :math:`\gamma/(\sqrt{\hat v}+\epsilon)` on :math:`\hat m`.

    The update is :math:`\frac{\gamma}{1-\beta_1^t}\frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t}+\epsilon}`
    with ``max_exp_avg_sq`` for ``v`` under AMSGrad; AdamW's decoupled decay
    :math:`\gamma\lambda\theta` is not part of it. With ``eps_hat`` the scale is the
    uncorrected :math:`\sqrt v`, as in the rule.
    """
    scalars = _adam_scalars_of(step, lr, betas, eps_hat)
    bias_correction1, _ = bias_corrections(step, betas)
    second_moment = state["max_exp_avg_sq"] if amsgrad else state["exp_avg_sq"]
    scale = np.sqrt(second_moment) / scalars.bias_correction2_sqrt
    denom = scale + eps
    step_size = scalars.step_size * bias_correction1 / denom
    update = scalars.step_size * state["exp_avg"] / denom
    return Quantities(step_size, update, scale, eps)


def adamax(state, step, lr, betas, **_):
    r"""Adamax: :math:`\gamma/u` on :math:`\hat m`; ε sits inside the max, so no scale is reported.

    The update is :math:`\frac{\gamma}{1-\beta_1^t}\frac{m}{u}`.
    """
    scalars = _adam_scalars_of(step, lr, betas)
    bias_correction1, _ = bias_corrections(step, betas)
    step_size = scalars.step_size * bias_correction1 / state["exp_inf"]
    update = scalars.step_size * state["exp_avg"] / state["exp_inf"]
    return Quantities(step_size, update, None, None)


def adadelta(state, lr, eps, **_):
    r"""Adadelta: :math:`\gamma\sqrt{u+\epsilon}/\sqrt{v+\epsilon}`, the factor on the next gradient.

    It uses the stored :math:`u`, which already includes the last step's
    :math:`\Delta^2`, so it is the factor the next step starts from, not exactly the last one.
    ε is added to :math:`v` under the root, so the scale it competes with is :math:`v`. The
    last update is not stored: ``update`` is ``None``.
    """
    step_size = lr * np.sqrt(state["acc_delta"] + eps) / np.sqrt(state["square_avg"] + eps)
    return Quantities(step_size, None, state["square_avg"], eps)


def adagrad(state, step, lr, lr_decay, eps, **_):
    r"""Adagrad: :math:`\tilde\gamma/(\sqrt{s}+\epsilon)` on the gradient, with the decayed
    :math:`\tilde\gamma = \gamma/(1+(t-1)\eta)`. The update needs the gradient: ``None``."""
    decayed_lr = rules.adagrad_lr(step, lr, lr_decay)
    scale = np.sqrt(state["sum"])
    return Quantities(decayed_lr / (scale + eps), None, scale, eps)


def rmsprop(state, lr, eps, momentum, centered, **_):
    r"""RMSprop: :math:`\gamma/(\sqrt{v}+\epsilon)` on the gradient (centered: :math:`\sqrt{v-\bar g^2}`).

    With momentum the update is :math:`\gamma b`; without it, it needs the gradient: ``None``.
    """
    variance = state["square_avg"] - state["grad_avg"] ** 2 if centered else state["square_avg"]
    scale = np.sqrt(variance)
    update = lr * state["momentum_buffer"] if momentum > 0 else None
    return Quantities(lr / (scale + eps), update, scale, eps)


def sgd(state, param, lr, momentum, nesterov, **_):
    r"""SGD: :math:`\gamma` for every element.

    With plain momentum the update is :math:`\gamma b`; with Nesterov momentum it is
    :math:`\gamma(g+\mu b)` and without momentum :math:`\gamma g`, which need the gradient: ``None``.
    """
    update = lr * state["momentum_buffer"] if momentum != 0 and not nesterov else None
    return Quantities(np.full_like(param, lr), update, None, None)


# Each rule of adamkit.rules, and its formulas.
FORMULAS: dict[Callable[..., Any], Callable[..., Quantities]] = {
    rules.adam: adam,
    rules.adamax: adamax,
    rules.adadelta: adadelta,
    rules.adagrad: adagrad,
    rules.rmsprop: rmsprop,
    rules.sgd: sgd,
}


def group_bias_corrections(rule, step, betas):
    """``(1 - β1^t, 1 - β2^t)`` for Adam, ``(1 - β1^t, None)`` for Adamax, else ``(None, None)``."""
    if step is None or rule not in (rules.adam, rules.adamax):
        return None, None
    first, second = bias_corrections(step, betas)
    return first, (second if rule is rules.adam else None)
