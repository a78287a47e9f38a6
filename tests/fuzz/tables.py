"""What the fuzzer draws from, read from the rules' specs (:mod:`adamkit.specs`): the
configurations (every rule, and each rule with ``cautious=True`` where it takes it), their
state slots, the hyperparameter edits and the shapes. A new rule is fuzzed without an edit here.
"""

from adamkit import specs
from adamkit.compact.policy import takes_compact_state

# Small parameters, one of them (300 float32 or float64 elements) over the 1 KiB under which
# NumPy keeps freed data in a cache of its own: freed, its memory goes back to malloc, where
# AddressSanitizer sees a use after free.
SMALL_SHAPES = ((7,), (3, 5), (17,), (1,), (300,))

# Options of a configuration that are hyperparameters of the rule, under a label of its own.
_OPT_INS = ({"cautious": True},)


def _configurations():
    """``{label: (rule name, fixed hyperparameters)}``: each spec as it is, and with each opt-in
    of :data:`_OPT_INS` it takes (``"Adam+cautious"``)."""
    found = {}
    for spec in specs.ALL:
        found[spec.name] = (spec.name, {})
        for opt_in in _OPT_INS:
            if set(opt_in) <= set(spec.defaults) - set(spec.fixed):
                found[spec.name + "".join(f"+{key}" for key in opt_in)] = (spec.name, opt_in)
    return found


CONFIGURATIONS = _configurations()
"""``{label: (rule name, fixed hyperparameters)}``: what a sequence's optimizer is."""
LABELS = tuple(CONFIGURATIONS)

SLOTS = {spec.name: tuple(slot.key for slot in spec.slots) for spec in specs.ALL}
"""The state slots of each rule (torch's keys), whichever hyperparameters make them active."""


def compact_state_dtypes(label):
    """The compact ``state_dtype`` values the configuration ``label`` takes."""
    name, _ = CONFIGURATIONS[label]
    return tuple(state_dtype for state_dtype in ("int8", "bf16") if takes_compact_state(specs.BY_NAME[name], state_dtype))


def initial_choices(label):
    """The hyperparameter settings a sequence of ``label`` starts from: each case of the spec
    (:attr:`adamkit.rules._spec.Spec.cases`) with the overrides of its second group, and the
    configuration's fixed hyperparameters."""
    name, fixed = CONFIGURATIONS[label]
    return [({**case, **fixed}, second) for case, second in specs.BY_NAME[name].cases]


def valid(name, key, value):
    """Whether the rule ``name``'s checks take ``value`` for its hyperparameter ``key``."""
    try:
        specs.BY_NAME[name].validate({key: value})
    except (TypeError, ValueError):
        return False
    return True


def _edits(spec):
    """Edits of a group's hyperparameters between steps, valid and invalid: ``(key, value,
    benign)``, ``"toggle"`` flipping a flag. The valid values are those of the spec's cases,
    benign; then an ``eps`` of 0 (it divides by zero: never benign), and -1 and 1.5 where the
    checks refuse them, in each position of a tuple. (Other zeros the checks take, such as
    RMSprop's ``alpha=0``, make a variance of ``g² - g·g``: rounding decides its sign, and a
    comparison with torch would measure nothing but that.)"""
    edits = []
    for key, default in spec.defaults.items():
        if key in spec.fixed:
            continue
        if isinstance(default, bool):
            edits.append((key, "toggle", True))
            continue
        seen = {repr(default)}
        for case in spec.cases:
            for setting in case:
                value = setting.get(key, default)
                if repr(value) not in seen:
                    seen.add(repr(value))
                    edits.append((key, value, valid(spec.name, key, value)))
        for bad in (0.0, -1.0, 1.5):
            values = [bad] if not isinstance(default, tuple) else [
                default[:index] + (bad,) + default[index + 1:] for index in range(len(default))
            ]
            for value in values:
                zero_eps = bad == 0.0 and key == "eps"
                if repr(value) not in seen and (zero_eps or (bad != 0.0 and not valid(spec.name, key, value))):
                    seen.add(repr(value))
                    edits.append((key, value, False))
    return edits


HYPER_EDITS = {spec.name: _edits(spec) for spec in specs.ALL}
"""Each rule's hyperparameter edits: ``(key, value, benign)``."""
