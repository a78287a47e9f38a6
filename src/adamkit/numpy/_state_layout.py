"""How a NumPy optimizer holds each parameter's state under its ``state_dtype``.

The rules are the torch front end's (:mod:`adamkit.compact.policy`): with ``state_dtype="int8"``
or ``"bf16"`` (Adam and AdamW), a float32 array of at least
:data:`~adamkit.compact.policy.MIN_QUANTIZED_NUMEL` elements keeps compact state; every other
array, and every array under ``state_dtype=None``, keeps state in its own dtype. The keys are
the torch front end's in every layout (8-bit codes under keys torch.optim does not use,
:func:`adamkit.kernels.quantized.compact_keys`):

============  ==============================================================================
layout        each slot (Adam's ``exp_avg``, ``exp_avg_sq`` and, with amsgrad, ``max_exp_avg_sq``)
============  ==============================================================================
``None``      an array of the parameter's dtype and shape
``"int8"``    under ``<key>_codes``, codes of the parameter's shape (int8 for ``exp_avg``, uint8
              for the second moments) and, under ``<key>_absmax``, a float32 array with one
              scale per block of :data:`adamkit.compact.int8.BLOCK` elements
              (:mod:`adamkit.kernels.quantized`)
``"bf16"``    a uint16 array of the parameter's shape holding bfloat16 bit patterns
              (:mod:`adamkit.compact.bfloat16`)
============  ==============================================================================
"""

import numpy as np

from adamkit.compact import bfloat16
from adamkit.compact.int8 import absmax_shape
from adamkit.compact.policy import COMPACT_STATE_DTYPES, DECODERS, ENCODERS, check_compact_state, keeps_compact
from adamkit.kernels.quantized import CODE_DTYPES, coded_slot, compact_keys
from adamkit.numpy._array_checks import may_overlap_itself
from adamkit.validation import check_choice

STATE_DTYPES = (None, *COMPACT_STATE_DTYPES)
BFLOAT16_BITS = np.dtype(np.uint16)


def check_state_dtype(spec, state_dtype, optimizer_name):
    """Raise ``ValueError`` naming ``state_dtype`` unless optimizers of ``spec`` take it.

    ``"fp32"``, which the torch front end takes for bfloat16 parameters, means nothing here:
    NumPy has no bfloat16 arrays, and float32 and float64 arrays keep state in their dtype.
    """
    if state_dtype == "fp32":
        raise ValueError(
            "Invalid state_dtype: 'fp32' (float32 state is for bfloat16 parameters, which NumPy "
            "does not have; float32 and float64 arrays keep state in their own dtype, as with None)"
        )
    check_choice("state_dtype", state_dtype, STATE_DTYPES)
    check_compact_state(spec, state_dtype, optimizer_name, "None")


def layout(param, state_dtype):
    """``"int8"``, ``"bf16"`` or ``None``: how ``param``'s state is held under ``state_dtype``."""
    if state_dtype is None or not keeps_compact(state_dtype, param.dtype.name, param.size):
        return None
    return state_dtype


def slot_arrays(param, key, layout, shape=None):
    """``{name: (dtype, shape)}`` of the arrays that hold slot ``key`` of ``param`` in ``layout``;
    ``shape`` is the slot's where it is not the parameter's (Adafactor's factors, never compact)."""
    if layout is None:
        return {key: (param.dtype, param.shape if shape is None else tuple(shape))}
    if layout == "bf16":
        return {key: (BFLOAT16_BITS, param.shape)}
    codes, scales = compact_keys(key)
    return {
        codes: (np.dtype(CODE_DTYPES[key]), param.shape),
        scales: (np.dtype(np.float32), absmax_shape(param.shape)),
    }


def slot_names(keys, layout):
    """The names of the arrays that hold the slots ``keys`` in ``layout``, in order: each key,
    or under ``"int8"`` its codes and its scales."""
    return [name for key in keys for name in (compact_keys(key) if layout == "int8" else (key,))]


def holds(state, key, layout):
    """Whether ``state`` holds slot ``key`` in ``layout``: its values, or its codes."""
    return slot_names([key], layout)[0] in state


def check_slots(state, param, keys, layout, where, shapes=None):
    """Raise ``ValueError`` unless each slot of ``keys`` that ``state`` holds is held as ``layout``
    holds it: writeable arrays of the dtypes and shapes of :func:`slot_arrays`, none of whose
    elements share memory, apart from the parameter. ``shapes`` maps a slot to its shape where
    that is not the parameter's.

    An array that is not C-contiguous or not aligned holds the right values all the same; the
    step updates it through a copy (:func:`adamkit.numpy._array_checks.ready`).
    """
    for key in keys:
        if not holds(state, key, layout):
            continue
        for name, (dtype, shape) in slot_arrays(param, key, layout, (shapes or {}).get(key)).items():
            array = state.get(name)
            if not (isinstance(array, np.ndarray) and array.dtype == dtype and array.shape == shape):
                found = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
                raise ValueError(f"the state of {where} has {name!r} {found}, where the optimizer keeps {dtype} {shape}")
            _check_writeable(array, name, where)
            if may_overlap_itself(array):
                raise ValueError(
                    f"the state of {where} has {name!r} with elements that share memory (a stride-0 "
                    "view), which the step would write as if apart"
                )
            if np.may_share_memory(array, param):
                raise ValueError(f"the state of {where} has {name!r} sharing memory with the parameter")


def check_step(state, where, key="step"):
    """Raise ``ValueError`` unless the ``step`` of ``state`` (or the 0-d state ``key``, such as
    NAdam's ``mu_product``), if it has one, is a writeable 0-d array of real numbers, which the
    step advances in place."""
    if key not in state:
        return
    step = state[key]
    if not (isinstance(step, np.ndarray) and step.shape == () and step.dtype.kind in "fiu"):
        found = f"{step.dtype} {step.shape}" if isinstance(step, np.ndarray) else type(step).__name__
        raise ValueError(
            f"the state of {where} has {key!r} {found}, where the optimizer keeps a 0-d array "
            "(np.array(0.0, np.float32))"
        )
    _check_writeable(step, key, where)
    if not (np.isfinite(step) and step >= 0):
        raise ValueError(f"the state of {where} has {key!r} {step.item()!r}, not a finite number of at least 0")


def _check_writeable(array, name, where):
    if not array.flags.writeable:
        raise ValueError(
            f"the state of {where} has {name!r} read-only, and the step writes it in place "
            "(assignment destination is read-only)"
        )


def stored(key, values, param, layout):
    """``{name: array}``: the float ``values`` of slot ``key`` of ``param`` as ``layout`` holds them.

    The 8-bit map of a second moment holds no negative values (``ValueError``).
    """
    if layout is None:
        return {key: np.array(values, dtype=param.dtype, order="C", copy=True)}
    values = np.asarray(values, np.float32)
    if layout == "bf16":
        return {key: bfloat16.rounded(values)}
    return dict(zip(compact_keys(key), ENCODERS[key](values)))


def new_slot(param, key, fill, layout, shape=None):
    """``{name: array}``: slot ``key`` of ``param``, every value ``fill``, as ``layout`` holds it,
    of ``shape`` where that is not the parameter's."""
    if layout is None:
        return {key: np.full_like(param, fill) if shape is None else np.full(shape, fill, param.dtype)}
    return stored(key, np.full(param.shape, fill, np.float32), param, layout)


def exported(state):
    """One parameter's state dict with its compact slots as new float32 arrays under torch's
    keys (decoded codes, bfloat16 values); the other entries are its own arrays."""
    plain = {}
    for key, value in state.items():
        slot = coded_slot(key)
        codes, scales = compact_keys(slot) if slot is not None else (None, None)
        if key == codes and scales in state:
            plain[slot] = DECODERS[slot](value, state[scales])
        elif key == scales and codes in state:
            continue
        elif isinstance(value, np.ndarray) and value.dtype == BFLOAT16_BITS:
            plain[key] = bfloat16.to_float32(value)
        else:
            plain[key] = value
    return plain
