r"""Each rule's diagnostic quantities, computed in float64 from its stored state.

For one parameter, a rule's :class:`Quantities` are

- ``step_size``, per element: the factor the rule multiplies its direction by.
  For Adam it is :math:`\gamma / (\sqrt{\hat v} + \epsilon)`, applied to
  :math:`\hat m = m / (1-\beta_1^t)`; each rule's function beside it in :mod:`adamkit.rules`
  gives its own.
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

from adamkit import specs
from adamkit.rules._spec import Quantities
from adamkit.rules.adam import bias_corrections

QUANTILE_LEVELS = (0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0)

FORMULAS = {spec.rule: spec.diagnostics for spec in specs.ALL}
"""Each rule of :mod:`adamkit.rules`, and its formulas (:attr:`adamkit.rules._spec.Spec.diagnostics`,
beside the rule)."""
_CORRECTED_MOMENTS = {spec.rule: spec.corrected_moments for spec in specs.ALL}


def group_bias_corrections(rule, step, betas):
    """``(1 - β1^t, 1 - β2^t)`` for a rule that corrects both averages (Adam), ``(1 - β1^t, None)``
    for one that corrects the first (Adamax), else ``(None, None)``."""
    corrected = _CORRECTED_MOMENTS[rule]
    if step is None or corrected == 0:
        return None, None
    # (β1, β2) correct the two averages; AdEMAMix's β3, of its slow average, corrects none.
    first, second = bias_corrections(step, tuple(betas)[:2])
    return first, (second if corrected == 2 else None)


__all__ = ["FORMULAS", "QUANTILE_LEVELS", "Quantities", "bias_corrections", "group_bias_corrections"]
