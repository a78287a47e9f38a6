"""Per-parameter ``step`` counters that advance with one tensor operation per group.

torch keeps ``state["step"]`` as a separate 0-d float tensor per parameter, and adding 1 to
each costs microseconds per tensor. Here the counters of the parameters stepped together are
0-d views into one shared 1-d tensor: the layout and values are torch's (each view is a 0-d
float tensor), but one ``+= 1`` advances them all. It is NumPy's, on a view of the same
memory: the same float addition, without a pass through torch's operator dispatch, which
costs tens of microseconds when a step finds it cold in the cache. When the views in the
state are replaced (``load_state_dict``) or a different set of parameters is stepped, the
counters are packed again from their current values.
"""

import torch

from adamkit.kernels.native import same_items


class PackedSteps:
    """Advances the ``step`` tensors of a list of state dicts together."""

    def __init__(self):
        self._counts = None  # the shared tensor, or a NumPy view of it
        self._views = []

    def advance(self, states):
        """Add one to ``state["step"]`` of every state dict; return the new counts as floats."""
        if not same_items(states, "step", self._views):
            self._pack(states, [state["step"] for state in states])
        self._counts += 1
        return self._counts.tolist()

    def _pack(self, states, current):
        dtype = current[0].dtype if current else torch.float32
        storage = torch.tensor([float(step) for step in current], dtype=dtype)
        # A checkpoint may bring counters of a dtype NumPy has not (bfloat16): torch adds then.
        self._counts = storage.numpy() if dtype in (torch.float32, torch.float64) else storage
        self._views = list(storage.unbind(0))
        for state, view in zip(states, self._views):
            state["step"] = view
