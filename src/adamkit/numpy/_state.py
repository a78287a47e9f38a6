"""The state dict of one parameter of a NumPy optimizer, which counts changes to its entries.

Users may replace a state array (``opt.state[i]["exp_avg"] = ...``); the cached step
(:mod:`adamkit.numpy._plan`) must then not go on stepping the old array. Rather than compare
every entry of every state dict on every step, each optimizer's state dicts share one counter
that any added, replaced or removed entry advances; changing an array's values in place
does not, and needs not.
"""


class State(dict):
    """A ``dict`` that advances ``changes[0]`` whenever an entry is added, replaced or removed."""

    __slots__ = ("_changes",)

    def __init__(self, changes, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._changes = changes

    def _changed(self):
        self._changes[0] += 1

    def __setitem__(self, key, value):
        self._changed()
        super().__setitem__(key, value)

    def __delitem__(self, key):
        self._changed()
        super().__delitem__(key)

    def __ior__(self, other):
        self._changed()
        return super().__ior__(other)

    def update(self, *args, **kwargs):
        self._changed()
        super().update(*args, **kwargs)

    def setdefault(self, key, default=None):
        self._changed()
        return super().setdefault(key, default)

    def pop(self, *args):
        self._changed()
        return super().pop(*args)

    def popitem(self):
        self._changed()
        return super().popitem()

    def clear(self):
        self._changed()
        super().clear()

    def __reduce__(self):
        return (type(self), (self._changes, dict(self)))
