"""Float64 copies of a torch or NumPy optimizer's parameters and state, group by group.

The torch front end keys ``optimizer.state`` by parameter tensor; the NumPy front end lists
one state dict per parameter in group order. Tensors are read through ``detach()``, so torch
is never imported here. Complex values become (real, imag) pairs, as the rules see them,
8-bit block-wise state (``state_dtype="int8"``) is decoded with :mod:`adamkit.compact.int8`, and the
NumPy front end's bfloat16 state (``state_dtype="bf16"``: uint16 bit patterns) is widened.
"""

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from adamkit.compact.bfloat16 import to_float32
from adamkit.compact.int8 import decode_signed, decode_unsigned
from adamkit.kernels.quantized import codes_key, coded_slot, scales_key


class Member:
    """One parameter of a group: float64 copies of it and of its state arrays, and its step count."""

    __slots__ = ("param", "state", "step", "stepped")

    def __init__(self, param, state, counts_steps):
        self.param = as_float64(param)
        self.state = {key: as_float64(value) for key, value in decoded(state).items() if key != "step"}
        self.step = float(state["step"]) if "step" in state else None
        # A rule that counts steps has stepped a parameter once its count is positive (Adagrad
        # creates its state before the first step); SGD has stepped one once it has state.
        self.stepped = (self.step or 0) > 0 if counts_steps else bool(state)


class Group(NamedTuple):
    group: dict
    members: list


def read_groups(optimizer):
    """Each parameter group of ``optimizer`` with a :class:`Member` per parameter."""
    states = optimizer.state
    counts_steps = optimizer.spec.counts_steps
    groups, position = [], 0
    for group in optimizer.param_groups:
        members = []
        for param in group["params"]:
            state = states.get(param, {}) if isinstance(states, Mapping) else states[position]
            members.append(Member(param, state, counts_steps))
            position += 1
        groups.append(Group(group, members))
    return groups


def decoded(state):
    """``state`` with each slot's 8-bit codes and scales (:func:`~adamkit.kernels.quantized.compact_keys`)
    replaced by its values under the slot's key, and each uint16 array of bfloat16 bit patterns
    by float32 values.

    int8 codes are signed (``exp_avg``), uint8 codes unsigned (the second moments).
    """
    values = {}
    for key, value in state.items():
        slot = coded_slot(key)
        if slot is None:
            values[key] = to_float32(value) if isinstance(value, np.ndarray) and value.dtype == np.uint16 else value
        elif key == codes_key(slot) and scales_key(slot) in state:
            codes = as_numpy(value)
            decode = decode_signed if codes.dtype == np.int8 else decode_unsigned
            values[slot] = decode(codes, as_numpy(state[scales_key(slot)]))
    return values


def as_numpy(value):
    """A NumPy view of an array or a (detached, CPU) tensor; bfloat16, which NumPy lacks, as a
    float32 copy (exact: every bfloat16 value is a float32 value)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":  # checked by name: diagnostics do not import torch
            value = value.float()
        value = value.numpy()
    return np.asarray(value)


def as_float64(value):
    """A float64 NumPy copy of an array or tensor; complex values as a trailing (real, imag) axis."""
    array = as_numpy(value)
    if np.iscomplexobj(array):
        array = np.stack((array.real, array.imag), axis=-1)
    return array.astype(np.float64, copy=True)
