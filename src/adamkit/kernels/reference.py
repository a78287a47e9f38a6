"""The reference backend: applies a rule from :mod:`adamkit.rules` to each array in place.

It takes NumPy arrays, or torch tensors on any device (the rules run on either).
"""

import numpy as np

from adamkit.rules._common import copy, is_tensor


def update(spec, hyperparameters, params, grads, states, steps):
    """Step every ``params[i]`` in place with ``grads[i]``, ``states[i]`` and ``steps[i]``.

    ``states[i]`` maps torch's state keys to arrays updated in place; a slot the rule creates
    on its first step (SGD's momentum buffer) is added to the mapping as a new array.
    ``steps[i]`` is the step count including this step, or ``None`` for rules that do not
    count steps.
    """
    keys = [slot.key for slot in spec.slots]
    # Non-finite gradients propagate silently, as in torch.
    with np.errstate(all="ignore"):
        _update_each(spec, keys, hyperparameters, params, grads, states, steps)


def _update_each(spec, keys, hyperparameters, params, grads, states, steps):
    for param, grad, state, step in zip(params, grads, states, steps, strict=True):
        result = spec.rule(
            param, grad, *(state.get(key) for key in keys), **spec.step_argument(step), **hyperparameters
        )
        _assign(param, result.param)
        for key in keys:
            value = getattr(result, key)
            if value is None:
                continue
            if state.get(key) is None:
                state[key] = copy(value)
            else:
                _assign(state[key], value)


def _assign(target, value):
    """Write ``value`` into ``target`` in place."""
    if is_tensor(target):
        target.copy_(value)
    else:
        np.copyto(target, value)
