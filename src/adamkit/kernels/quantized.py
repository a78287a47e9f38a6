"""The fused C kernel for Adam and AdamW on 8-bit block-wise state (``csrc/quant8.c``).

The state of one parameter is kept under torch's keys, as codes, with a float32 companion
holding one scale per block of :data:`adamkit.quant.BLOCK` elements:

=========================  =======  =====================================================
key                        dtype    holds
=========================  =======  =====================================================
``exp_avg``                int8     signed codes (:func:`adamkit.quant.encode_signed`)
``exp_avg_absmax``         float32  one scale per block
``exp_avg_sq``             uint8    unsigned codes (:func:`adamkit.quant.encode_unsigned`)
``exp_avg_sq_absmax``      float32  one scale per block
``max_exp_avg_sq``         uint8    (amsgrad) unsigned codes
``max_exp_avg_sq_absmax``  float32  (amsgrad) one scale per block
=========================  =======  =====================================================

The scales are a 1-d array, or, in the row layout of :mod:`adamkit.quant.blockwise` (blocks
restart at every row; FSDP2 shards by rows), an array of shape ``(rows, blocks per row)``.

One call steps a whole list of float32 parameters. For each block the kernel decodes the
state, applies :func:`adamkit.rules.adam` in float32 in the rule's order of operations, and
re-encodes with the block's new maxima, in one pass over memory. It computes exactly the bits
of ``decode -> adamkit.rules.adam -> encode`` in NumPy (tested), whatever the thread count.
"""

import numpy as np

from adamkit import specs
from adamkit.kernels import native
from adamkit.quant.blockwise import absmax_shape

ABSMAX_SUFFIX = "_absmax"
CODE_DTYPES = {"exp_avg": np.int8, "exp_avg_sq": np.uint8, "max_exp_avg_sq": np.uint8}


def available():
    """Whether the C extension, with this kernel, was built."""
    return native.available() and hasattr(native._native, "quant8_adam")


def state_keys(amsgrad):
    """The code keys of the state, in the kernel's order."""
    return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if amsgrad else ("exp_avg", "exp_avg_sq")


def adam_pointers(
    hyperparameters, numels, param_ptrs, grad_ptrs, state_ptrs, steps, *, row_numels=None, num_threads=None
):
    """Step float32 tensors in place given data pointers (the entry point for torch tensors).

    Blocks restart at every row of ``row_numels[i]`` elements (default: one row, the flat
    layout).
    ``state_ptrs`` maps each key of :func:`state_keys` and its ``*_absmax`` companion to a
    sequence of pointers, one per tensor; ``steps[i]`` counts this step. ``hyperparameters``
    are :func:`adamkit.rules.adam`'s keyword arguments (``betas``, ``decoupled_weight_decay``...).
    The caller keeps the memory alive, of the right sizes, and unaliased during the call.
    """
    if not available():
        raise RuntimeError("the quantised Adam kernel needs adamkit's C extension, which was not built")
    _, hyper = native._rule_and_hyper(specs.ADAM, hyperparameters)
    keys = state_keys(hyper["amsgrad"])
    expected = {name for key in keys for name in (key, key + ABSMAX_SUFFIX)}
    if set(state_ptrs) != expected:
        raise ValueError(f"state_ptrs has keys {sorted(state_ptrs)}, expected {sorted(expected)}")
    columns = []
    for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        columns += [state_ptrs.get(key), state_ptrs.get(key + ABSMAX_SUFFIX)]
    native._native.quant8_adam(
        native._c_hyperparameters(hyper),
        native._threads(num_threads),
        numels,
        numels if row_numels is None else row_numels,
        param_ptrs,
        grad_ptrs,
        *columns,
        [float(step) for step in steps],
    )


def adam(params, grads, states, steps, *, num_threads=None, **hyperparameters):
    """Step float32 NumPy arrays in place; ``states[i]`` holds the codes and scales of
    ``params[i]`` under the keys of this module's table, in the flat or the row layout (read
    from the scales' shape). Bad input raises before anything changes."""
    params, grads, states, steps = list(params), list(grads), list(states), list(steps)
    for name, values in (("grads", grads), ("states", states), ("steps", steps)):
        if len(values) != len(params):
            raise ValueError(f"{name} has {len(values)} entries but there are {len(params)} params")
    keys = state_keys(bool(hyperparameters.get("amsgrad", False)))
    pointers = {name: [] for key in keys for name in (key, key + ABSMAX_SUFFIX)}
    row_numels = []
    for index, (param, grad, state) in enumerate(zip(params, grads, states)):
        _check_array(f"params[{index}]", param, np.float32, param.size, writable=True)
        _check_array(f"grads[{index}]", grad, np.float32, param.size, writable=False)
        scales = state.get("exp_avg" + ABSMAX_SUFFIX)
        rows = isinstance(scales, np.ndarray) and scales.ndim == 2 and param.ndim >= 1
        row_numels.append(param.size // param.shape[0] if rows and param.shape[0] else param.size)
        for key in keys:
            _check_array(f"states[{index}][{key!r}]", state.get(key), CODE_DTYPES[key], param.size, True)
            name = key + ABSMAX_SUFFIX
            expected = absmax_shape(param.shape, rows) if param.ndim else (1,)
            _check_array(f"states[{index}][{name!r}]", state.get(name), np.float32, int(np.prod(expected)), True)
            pointers[key].append(state[key].ctypes.data)
            pointers[name].append(state[name].ctypes.data)
    adam_pointers(
        hyperparameters,
        [param.size for param in params],
        [param.ctypes.data for param in params],
        [grad.ctypes.data for grad in grads],
        pointers,
        steps,
        row_numels=row_numels,
        num_threads=num_threads,
    )


def _check_array(name, array, dtype, size, writable):
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(array).__name__}")
    if array.dtype != dtype or array.size != size:
        raise ValueError(f"{name} is {array.dtype} of {array.size} elements, expected {np.dtype(dtype)} of {size}")
    if not array.flags.c_contiguous or (writable and not array.flags.writeable):
        raise ValueError(f"{name} must be C-contiguous{' and writable' if writable else ''}")
