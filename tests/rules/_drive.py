"""Drive the pure functions of ``adamkit.rules`` on one array exactly as the front ends do.

The hyperparameters of a group are the spec's defaults overridden by the constructor's
keywords and then by the group's own; state starts as torch's does (zeros, Adagrad's sum at
``initial_accumulator_value``, SGD's momentum buffer absent); ``step`` counts from 1 and is
passed as a float, like ``state["step"].item()``.
"""

import numpy as np

from adamkit import specs

SPECS = {spec.name: spec for spec in specs.ALL}


def group_hyperparameters(optimizer, *overrides):
    """The full hyperparameters of a group: defaults, then each mapping of ``overrides``."""
    hyper = dict(SPECS[optimizer].defaults)
    for override in overrides:
        hyper.update(override)
    return hyper


def initial_state(spec, hyper, param):
    """torch's state before the first step, keyed by torch's names; scalar state (NAdam's
    ``mu_product``) a 0-d float32 array, as torch's default scalar dtype keeps it."""
    state = {slot.key: np.array(slot.initial_value(hyper), dtype=np.float32) for slot in spec.scalar_state}
    shapes = spec.slot_shapes(hyper, param.shape)
    for slot in spec.active_slots(hyper):
        fill = slot.initial_value(hyper)
        if fill is not None and slot.key in shapes:
            state[slot.key] = np.full(shapes[slot.key], fill, dtype=param.dtype)
    return state


def step_rule(spec, hyper, param, grad, state, step, group_count=None):
    """One call of the rule; returns the new ``(param, state)``, keeping only existing slots.
    ``group_count`` is what a rule that counts per group takes this step (:meth:`Spec.group_count`)."""
    keys = [slot.key for slot in spec.slots]
    scalars = {slot.key: state[slot.key].copy() for slot in spec.scalar_state}
    step_argument = spec.step_argument(spec.count(scalars, float(step), hyper) if spec.counts_steps else group_count)
    result = spec.rule(
        param, grad, *(state.get(key) for key in keys), **step_argument, **spec.rule_arguments(hyper)
    )
    new_state = {key: getattr(result, key) for key in keys if getattr(result, key) is not None}
    return result.param, {**scalars, **new_state}


def trajectory(spec, hyper, param, grads):
    """Yield ``(param, state)`` after each step of ``grads``, starting from torch's state."""
    state = initial_state(spec, hyper, param)
    group = {**hyper, **spec.group_state}  # the group's own state, advanced once per step
    for step, grad in enumerate(grads, start=1):
        param, state = step_rule(spec, hyper, param, grad, state, step, spec.group_count(group))
        yield param, state


def run_rule(optimizer, hyper, param, grads):
    """The final ``(param, state)`` after stepping through every gradient of ``grads``."""
    spec = SPECS[optimizer]
    final = (param, initial_state(spec, hyper, param))
    for final in trajectory(spec, hyper, param, grads):
        pass
    return final
