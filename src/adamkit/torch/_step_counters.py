"""Per-parameter ``step`` counters that advance with one tensor operation per group.

torch keeps ``state["step"]`` as a separate 0-d float tensor per parameter, and adding 1 to
each is one torch operation per tensor. Here the counters of the parameters stepped together are
0-d views into one shared 1-d tensor: the layout and values are torch's (each view is a 0-d
float tensor), but one ``+= 1`` advances them all. It is NumPy's, on a view of the same
memory: the same float addition, without a pass through torch's operator dispatch, which is
slow when a step finds it cold in the cache (BENCHMARKS.md, "Issue 6: sparse gradients", step
counters). When the views in the
state are replaced (``load_state_dict``) or a different set of parameters is stepped, the
counters are packed again from their current values.
"""

import math

import numpy as np
import torch

from adamkit.kernels.plan_checks import same_items


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

    def check(self, group_index, group, params, state_container):
        """Raise ``ValueError`` unless the step count of each of ``params`` that has one is a
        finite number of at least 0 (torch's bias correction of a negative count raises: its
        square root is complex), and ``RuntimeError``, as torch's step does, where it is not a
        tensor; one vectorised test while the counters stay packed."""
        states = [state_container.get(param, {}) for param in params] if params else []
        if states and same_items(states, "step", self._views):
            counts = self._counts if isinstance(self._counts, np.ndarray) else self._counts.float().numpy()
            if np.isfinite(counts).all() and (counts >= 0).all():
                return
        for param, state in zip(params, states):
            step = state.get("step")
            if step is None:
                continue
            where = f"param_groups[{group_index}]['params'][{_index(group, param)}]"
            if not torch.is_tensor(step):
                raise RuntimeError(
                    f"{where}: state['step'] is {step!r}, a {type(step).__name__}, where the step keeps a "
                    "0-d tensor (torch's step raises: `state_steps` argument must contain a list of singleton tensors)"
                )
            value = float(step) if step.numel() == 1 else math.nan
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{where}: state['step'] is {step!r}, not a finite count of at least 0")

    def _pack(self, states, current):
        dtype = current[0].dtype if current else torch.float32
        storage = torch.tensor([float(step) for step in current], dtype=dtype)
        # A checkpoint may bring counters of a dtype NumPy has not (bfloat16): torch adds then.
        self._counts = storage.numpy() if dtype in (torch.float32, torch.float64) else storage
        self._views = list(storage.unbind(0))
        for state, view in zip(states, self._views):
            state["step"] = view


def _index(group, param):
    return next(i for i, p in enumerate(group["params"]) if p is param)
