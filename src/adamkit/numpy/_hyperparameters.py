"""A parameter group's hyperparameters as the rule takes them: read once, checked, and kept
while the group holds the very same values.

A group's hyperparameters may be set directly between steps (``group["lr"] = ...``, as a
scheduler does), so every step reads and checks them. :func:`rule_arguments` reads each entry
once, checks what it read with the spec, and converts that to the rule's plain floats, bools and
pairs, which are checked too unless they were given as such: what the rule gets is what was
checked, whatever a value's ``__float__`` answers.

Checking and converting costs more than the kernels on small arrays, so the cached plan
(:mod:`adamkit.numpy._cached_plan`) keeps a :class:`GroupArguments` per group, which does neither
while the group is unchanged. It trusts only what cannot change unseen, with no Python code of
the user's running while it looks:

- a plain ``dict`` group (a subclass may compute its items) with the very same keys in the same
  order, each a ``str``;
- holding under each key the very object it held when it was checked, compared by identity
  (no ``__eq__`` is asked);
- every one of them a Python ``float``, ``int`` or ``bool``, or a tuple of these, of exactly
  these types. A NumPy array or a list can be changed in place, and another object can answer
  anything: a group holding one is read and checked again at every step.
"""

from adamkit.kernels import plan_checks

_PLAIN = (float, int, bool)


def rule_arguments(spec, group):
    """The rule's keyword arguments from ``group``, checked by ``spec``.

    Raises what ``spec.validate`` raises for a bad value, ``KeyError`` for a missing one, and
    ``TypeError`` for one the rule cannot take as a float.
    """
    return _checked(spec, _entries(spec, group))


def _entries(spec, group):
    """The entries of ``group`` that ``spec`` checks or its rule reads, each read once."""
    names = dict.fromkeys([*spec.checks, *spec.rule_hyperparameters])
    return {name: group[name] for name in names if name in group}


def _checked(spec, entries):
    spec.validate(entries)  # names the value as it was given
    arguments = spec.rule_arguments(entries)
    if not all(map(_unchangeable, entries.values())):
        spec.validate(arguments)  # what a conversion gave (a __float__ may answer anything) is checked too
    return arguments


def _unchangeable(value):
    """Whether ``value`` is a Python float, int or bool, or a tuple of these (exact types)."""
    if type(value) is tuple:
        return all(type(item) in _PLAIN for item in value)
    return type(value) in _PLAIN


class GroupArguments:
    """The rule's arguments from one group, read again only when the group changed (see the
    module docstring)."""

    def __init__(self, spec):
        self._spec = spec
        self._keys = None  # the group's keys when last read, if everything read is trusted
        self._names = self._values = None  # what was read: names and the objects under them
        self.arguments = None

    def read(self, group):
        """The rule's arguments from ``group``: the very object of the last call if the group
        holds the same trusted entries, else read, checked and converted again (raising as
        :func:`rule_arguments` does, and trusting nothing until a read succeeds)."""
        if (
            self._keys is not None
            and type(group) is dict
            and plan_checks.same_objects(list(group), self._keys)
            and plan_checks.same_entries(group, self._names, self._values)
        ):
            return self.arguments
        self._keys = self.arguments = None
        keys = list(group) if type(group) is dict else None
        entries = _entries(self._spec, group)
        arguments = _checked(self._spec, entries)
        # Trusted only if no code of the user's could run since the keys were listed.
        if keys is not None and all(type(key) is str for key in keys) and all(map(_unchangeable, entries.values())):
            self._keys, self._names, self._values = keys, list(entries), list(entries.values())
        self.arguments = arguments
        return arguments
