"""Parameter groups: the list-of-dicts form torch takes, and hyperparameters in one canonical form.

Hyperparameters are stored as Python floats, bools, and ``betas`` as a pair of floats, so that
a group holds exactly what the rule receives and what ``state_dict`` saves.
"""

import numpy as np


def as_group_list(params):
    """Turn the ``params`` argument of an optimizer into a list of group dicts."""
    if isinstance(params, np.ndarray):
        raise TypeError(
            "params must be a list of arrays or of parameter-group dicts, got a single ndarray; "
            "wrap it in a list"
        )
    if isinstance(params, (set, frozenset, dict)):
        raise TypeError(f"params must be an ordered collection (a list), got {type(params).__name__}")
    try:
        listed = list(params)
    except TypeError:
        raise TypeError(f"params must be a list of arrays or of dicts, got {type(params).__name__}") from None
    if not listed:
        raise ValueError("params is an empty list: the optimizer has nothing to optimize")
    dicts = [isinstance(item, dict) for item in listed]
    if all(dicts):
        return listed
    if any(dicts):
        raise TypeError("params must be a list of arrays or a list of parameter-group dicts, not a mix")
    return [{"params": listed}]


def group_params(group, where):
    """The ``params`` entry of a group dict as a list (a single array becomes a 1-list, as in torch)."""
    if "params" not in group:
        raise ValueError(f"{where} has no 'params' entry")
    params = group["params"]
    if isinstance(params, np.ndarray):
        return [params]
    if isinstance(params, (set, frozenset, dict)):
        raise TypeError(
            f"{where}['params'] must be an ordered collection (a list), got {type(params).__name__}"
        )
    try:
        return list(params)
    except TypeError:
        raise TypeError(f"{where}['params'] must be a list of arrays, got {type(params).__name__}") from None


def canonical(defaults, hyperparameters):
    """``hyperparameters`` (already checked) as floats, bools and float pairs, typed like ``defaults``."""
    return {name: _like(defaults[name], value) for name, value in hyperparameters.items()}


def _like(default, value):
    if value is None:
        return None  # an optional hyperparameter left unset (AdEMAMix's t_alpha_beta3)
    if isinstance(default, bool):
        return value
    if isinstance(default, tuple):  # Adafactor's eps[0] may be None: its dtype's epsilon
        return tuple(None if item is None else float(item) for item in value)
    if value is None:
        return None  # an option that is off (LAMB's trust_clip=None)
    return float(value)
