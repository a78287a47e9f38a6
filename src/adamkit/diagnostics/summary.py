"""``diagnose(optimizer)``: one :class:`GroupDiagnostics` per parameter group."""

import math
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from adamkit.diagnostics.formulas import FORMULAS, QUANTILE_LEVELS, group_bias_corrections
from adamkit.diagnostics.reading import read_groups


class Quantiles(NamedTuple):
    """The effective step size at :data:`~adamkit.diagnostics.QUANTILE_LEVELS` 0, 1, 25, 50, 75, 99, 100 %."""

    minimum: float
    p1: float
    p25: float
    median: float
    p75: float
    p99: float
    maximum: float


@dataclass(frozen=True)
class GroupDiagnostics:
    """What one parameter group's state says; ``None`` where the rule has no such quantity.

    - ``rule``: the optimizer's name (``"Adam"``, ``"AdamW"``, ...).
    - ``elements``: the parameter elements that have been stepped (a complex element counts
      as two); the per-element figures below are over these.
    - ``step``: the largest step count ``t`` in the group; ``None`` for SGD, which counts none.
    - ``bias_correction1``, ``bias_correction2``: :math:`1-\\beta_1^t` and :math:`1-\\beta_2^t` at
      that ``t`` (Adam family; Adamax has only the first).
    - ``step_size``: :class:`Quantiles` of the effective per-element step size (see
      :mod:`adamkit.diagnostics.formulas`), over its finite values.
    - ``update_to_weight``: ‖update‖ / ‖θ‖ over the group, where the update is the rule's last
      step recomputed from the state (without AdamW's decoupled decay) and θ the current
      parameters; ``None`` when the state does not determine the update or θ is all zero.
    - ``eps_dominated``: the fraction of elements where ε exceeds the gradient scale it is
      added to (:math:`\\sqrt{\\hat v}` for Adam).
    - ``nonfinite``: the fraction of NaN or infinite values among all the group's parameters
      and state arrays, stepped or not.
    """

    rule: str
    elements: int
    step: float | None
    bias_correction1: float | None
    bias_correction2: float | None
    step_size: Quantiles | None
    update_to_weight: float | None
    eps_dominated: float | None
    nonfinite: float

    def as_dict(self):
        """The diagnostics as plain JSON-ready values (``step_size`` as a dict of quantiles)."""
        values = asdict(self)
        if self.step_size is not None:
            values["step_size"] = self.step_size._asdict()
        return values


def diagnose(optimizer: Any) -> list[GroupDiagnostics]:
    """Read ``optimizer``'s groups and state and return one :class:`GroupDiagnostics` per group.

    ``optimizer`` is an ``adamkit.torch`` or ``adamkit.numpy`` optimizer. Nothing in it is
    changed: every array is copied to float64 before it is used. Nothing runs unless this is
    called.
    """
    spec = optimizer.spec
    formula = FORMULAS[spec.rule]
    summaries = []
    for group, members in read_groups(optimizer):
        # The group's own state (Schedule-Free's k and scheduled_lr) besides the hyperparameters.
        hyperparameters = {**spec.rule_arguments(group), **{key: group[key] for key in spec.group_state}}
        stepped = [member for member in members if member.stepped]
        quantities = [
            formula(member.state, step=member.step, param=member.param, **hyperparameters)
            for member in stepped
        ]
        steps = [member.step for member in stepped if member.step is not None]
        step = max(steps) if steps else None
        bias_correction1, bias_correction2 = group_bias_corrections(
            spec.rule, step, hyperparameters.get("betas")
        )
        summaries.append(
            GroupDiagnostics(
                rule=spec.name,
                elements=sum(member.param.size for member in stepped),
                step=step,
                bias_correction1=bias_correction1,
                bias_correction2=bias_correction2,
                step_size=_quantiles([q.step_size for q in quantities]),
                update_to_weight=_update_to_weight(quantities, [m.param for m in stepped]),
                eps_dominated=_eps_dominated(quantities),
                nonfinite=_nonfinite_fraction(members),
            )
        )
    return summaries


def _quantiles(step_sizes):
    values = np.concatenate([s.ravel() for s in step_sizes]) if step_sizes else np.empty(0)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    return Quantiles(*(float(q) for q in np.quantile(finite, QUANTILE_LEVELS)))


def _update_to_weight(quantities, params):
    if not quantities or any(q.update is None for q in quantities):
        return None
    weight_norm = _norm(params)
    if weight_norm == 0:
        return None
    return _norm([q.update for q in quantities]) / weight_norm


def _eps_dominated(quantities):
    if not quantities or quantities[0].scale is None:
        return None
    dominated = sum(int(np.count_nonzero(q.eps > q.scale)) for q in quantities)
    return dominated / sum(q.scale.size for q in quantities)


def _nonfinite_fraction(members):
    arrays = [array for member in members for array in (member.param, *member.state.values())]
    total = sum(array.size for array in arrays)
    if total == 0:
        return 0.0
    return sum(int(np.count_nonzero(~np.isfinite(array))) for array in arrays) / total


def _norm(arrays):
    return math.sqrt(sum(float(np.vdot(array, array)) for array in arrays))
