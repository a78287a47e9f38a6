"""Per-parameter ``step`` counters that advance with one tensor operation per group.

torch keeps ``state["step"]`` as a separate 0-d float tensor per parameter, and adding 1 to
each costs microseconds per tensor. Here the counters of the parameters stepped together are
0-d views into one shared 1-d tensor: the layout and values are torch's (each view is a 0-d
float tensor), but one ``+= 1`` advances them all. When the views in the state are replaced
(``load_state_dict``) or a different set of parameters is stepped, the counters are packed
again from their current values.
"""

import torch

from adamkit.kernels.native import same_objects


class PackedSteps:
    """Advances the ``step`` tensors of a list of state dicts together."""

    def __init__(self):
        self._storage = None
        self._views = []

    def advance(self, states):
        """Add one to ``state["step"]`` of every state dict; return the new counts as floats."""
        current = [state["step"] for state in states]
        if not same_objects(current, self._views):
            self._pack(states, current)
        self._storage += 1
        return self._storage.tolist()

    def _pack(self, states, current):
        dtype = current[0].dtype if current else torch.float32
        self._storage = torch.tensor([float(step) for step in current], dtype=dtype)
        self._views = list(self._storage.unbind(0))
        for state, view in zip(states, self._views):
            state["step"] = view
