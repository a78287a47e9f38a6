"""The fused C kernel for 8-bit block-wise state (``csrc/quant8.c``): the rules whose every state
slot has a code (:attr:`adamkit.rules._spec.StateSlot.code`), such as Adam (AMSGrad's maximum
quantised too).

The state slot ``<key>`` (torch's name: ``exp_avg``...) of one parameter is kept as codes under
:func:`codes_key` (``<key>_codes``), with float32 scales under :func:`scales_key`
(``<key>_absmax``), one per block of :data:`adamkit.compact.int8.BLOCK` elements. Neither is a key
torch.optim uses, so torch.optim never takes codes for moments: loaded into torch.optim, such
state fails at its first step (``KeyError: 'exp_avg'``) instead of stepping codes as values.
=========  ==========================================  ===========================
rule       int8 (signed)                               uint8 (unsigned)
=========  ==========================================  ===========================
Adam       ``exp_avg``                                 ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad)
Adamax     ``exp_avg``                                 ``exp_inf``
Adadelta                                               ``square_avg``, ``acc_delta``
NAdam      ``exp_avg``                                 ``exp_avg_sq``
RAdam      ``exp_avg``                                 ``exp_avg_sq``
AdaBelief  ``exp_avg``                                 ``exp_avg_var``, ``max_exp_avg_var`` (amsgrad)
ADOPT      ``exp_avg``                                 ``exp_avg_sq``
Lion       ``exp_avg``
=========  ==========================================  ===========================
int8 codes hold the signed map (:func:`adamkit.compact.int8.encode_signed`), uint8 codes the unsigned one
(:func:`adamkit.compact.int8.encode_unsigned`); :data:`CODE_DTYPES` gives each key's, from the specs
(Adam: ``exp_avg`` int8, ``exp_avg_sq`` and ``max_exp_avg_sq`` uint8).

The scales are a 1-d array, or, in the row layout of :mod:`adamkit.compact.int8` (blocks
restart at every row; FSDP2 shards by rows), an array of shape ``(rows, blocks per row)``.

One call steps a whole list of float32, or bfloat16, parameters. For each block the kernel
decodes the state, applies the rule of :mod:`adamkit.rules` in float32 in the rule's order of
operations, and re-encodes with the block's new maxima, in one pass over memory. bfloat16
parameters and gradients are widened to float32 for the rule, and the new parameters stored
rounded to nearest even, or with Kahan summation (a bfloat16 compensation buffer per parameter,
stored as :func:`adamkit.kernels.native.update_pointers` describes), in the same pass. It
computes exactly the bits of ``decode -> rule -> encode`` (and the bfloat16 store) in NumPy
(tested), whatever the thread count and the instruction set.
"""

import functools

import numpy as np

from adamkit import specs
from adamkit.compact.int8 import absmax_shape
from adamkit.kernels import native

CODES_SUFFIX = "_codes"
SCALES_SUFFIX = "_absmax"
CODE_DTYPES = specs.CODE_DTYPES
"""The dtype of each key's codes: int8 for the signed map, uint8 for the unsigned."""


def codes_key(key):
    """The state key of slot ``key``'s 8-bit codes (``exp_avg`` -> ``exp_avg_codes``)."""
    return key + CODES_SUFFIX


def scales_key(key):
    """The state key of the float32 scales of slot ``key``'s codes (``exp_avg`` -> ``exp_avg_absmax``)."""
    return key + SCALES_SUFFIX


def compact_keys(key):
    """``(codes_key(key), scales_key(key))``: the state keys that hold slot ``key`` in 8 bits."""
    return codes_key(key), scales_key(key)


def coded_slot(name):
    """The slot whose codes or scales the state key ``name`` holds, or ``None``."""
    for suffix in (CODES_SUFFIX, SCALES_SUFFIX):
        key = name.removesuffix(suffix) if isinstance(name, str) else None
        if key != name and key in CODE_DTYPES:
            return key
    return None


RULES = tuple(dict.fromkeys(spec.rule for spec in specs.COMPACT))
"""The rules this kernel steps."""
PARAM_DTYPES = ("float32", "bfloat16")
"""The dtypes of the parameters (and gradients) this kernel steps."""


def available():
    """Whether the C extension, with this kernel, was built."""
    return native.quant8_available()


def state_keys(spec, hyperparameters):
    """The code keys of ``spec``'s state under ``hyperparameters`` (a group, or the rule's
    keyword arguments), in the kernel's order."""
    return tuple(slot.key for slot in spec.active_slots({"amsgrad": False, **hyperparameters}))


def update_pointers(
    spec,
    hyperparameters,
    numels,
    param_ptrs,
    grad_ptrs,
    state_ptrs,
    steps,
    *,
    row_numels=None,
    dtype="float32",
    compensation=None,
    isa=None,
    num_threads=None,
):
    """Step float32 or bfloat16 tensors in place given data pointers (the entry point for torch
    tensors).

    Blocks restart at every row of ``row_numels[i]`` elements (default: one row, the flat
    layout). ``state_ptrs`` maps the :func:`compact_keys` of each key of :func:`state_keys`
    to a sequence of pointers, one per tensor; ``steps[i]`` counts this step.
    ``hyperparameters`` are the rule's keyword arguments (``betas``, ``decoupled_weight_decay``...).
    ``dtype`` is the parameters' and gradients' dtype, ``"float32"`` or ``"bfloat16"``;
    ``compensation`` (bfloat16 only) one pointer per tensor to its bfloat16 Kahan buffer, or
    ``None`` to store the parameters rounded to nearest. ``isa`` forces an instruction set of :func:`adamkit.kernels.native.available_isas`; neither
    it nor ``num_threads`` changes the result. The caller keeps the memory alive, of the right
    sizes, and unaliased during the call.
    """
    planned_update_pointers(
        spec,
        hyperparameters,
        numels,
        param_ptrs,
        state_ptrs,
        row_numels=row_numels,
        dtype=dtype,
        compensation=compensation,
        isa=isa,
    )(grad_ptrs, steps, num_threads)


def planned_update_pointers(
    spec,
    hyperparameters,
    numels,
    param_ptrs,
    state_ptrs,
    *,
    row_numels=None,
    dtype="float32",
    compensation=None,
    isa=None,
):
    """:func:`update_pointers` made ready once, for a caller that steps the same tensors with
    the same ``hyperparameters`` at many steps (the torch front end's cached plan, stepping one
    parameter at a time in backward): everything but the gradients, the step counts and the
    thread count is checked and converted now. Returns ``update(grad_ptrs, steps,
    num_threads=None)``, which makes the kernel call."""
    rule, hyper = _rule_and_hyper(spec, hyperparameters)
    dtype = _dtype_name(dtype)
    keys = state_keys(spec, hyper)
    expected = {name for key in keys for name in compact_keys(key)}
    if set(state_ptrs) != expected:
        raise ValueError(f"state_ptrs has keys {sorted(state_ptrs)}, expected {sorted(expected)}")
    padding = (None,) * (native.MAX_SLOTS - len(keys))
    c_hyper = native.c_hyperparameters(hyper)
    rows = numels if row_numels is None else row_numels
    codes = tuple(state_ptrs[codes_key(key)] for key in keys) + padding
    scales = tuple(state_ptrs[scales_key(key)] for key in keys) + padding
    pairs, counts_steps = native.takes_mu_product(rule), spec.counts_steps

    def update(grad_ptrs, steps, num_threads=None):
        # NAdam's steps are (step, mu_product) pairs; those of a rule that counts none (Lion), None.
        steps = steps if pairs else [float(step) for step in steps] if counts_steps else [0.0] * len(steps)
        native.quant8_update(
            rule,
            c_hyper,
            isa,
            num_threads,
            numels,
            rows,
            param_ptrs,
            grad_ptrs,
            codes,
            scales,
            steps,
            dtype,
            compensation,
        )

    return update


def update(spec, params, grads, states, steps, *, compensations=None, isa=None, num_threads=None, **hyperparameters):
    """Step float32 NumPy arrays in place; ``states[i]`` holds the codes and scales of
    ``params[i]`` under the :func:`compact_keys` of this module's table, in the flat or the row layout (read
    from the scales' shape). Bad input raises before anything changes.

    uint16 ``params`` and ``grads`` are bfloat16 bit patterns (:mod:`adamkit.compact.bfloat16`),
    and ``compensations`` (bfloat16 only) their uint16 Kahan buffers, or ``None``."""
    _rule_and_hyper(spec, hyperparameters)
    params, grads, states, steps = list(params), list(grads), list(states), list(steps)
    native.check_per_param(params, grads=grads, states=states, steps=steps)
    dtype = np.uint16 if params and isinstance(params[0], np.ndarray) and params[0].dtype == np.uint16 else np.float32
    if compensations is not None:
        compensations = list(compensations)
        if dtype != np.uint16:
            raise ValueError("compensations are for bfloat16 (uint16) parameters only")
        native.check_per_param(params, compensations=compensations)
    keys = state_keys(spec, hyperparameters)
    pointers = {name: [] for key in keys for name in compact_keys(key)}
    row_numels = []
    for index, (param, grad, state) in enumerate(zip(params, grads, states)):
        _check_array(f"params[{index}]", param, dtype, param.size, writable=True)
        _check_array(f"grads[{index}]", grad, dtype, param.size, writable=False)
        if compensations is not None:
            _check_array(f"compensations[{index}]", compensations[index], np.uint16, param.size, writable=True)
        scales = state.get(scales_key(keys[0]))
        rows = isinstance(scales, np.ndarray) and scales.ndim == 2 and param.ndim >= 1
        row_numels.append(param.size // param.shape[0] if rows and param.shape[0] else param.size)
        for key in keys:
            codes, name = compact_keys(key)
            _check_array(f"states[{index}][{codes!r}]", state.get(codes), CODE_DTYPES[key], param.size, True)
            expected = absmax_shape(param.shape, rows) if param.ndim else (1,)
            _check_array(f"states[{index}][{name!r}]", state.get(name), np.float32, int(np.prod(expected)), True)
            pointers[codes].append(state[codes].ctypes.data)
            pointers[name].append(state[name].ctypes.data)
    update_pointers(
        spec,
        hyperparameters,
        [param.size for param in params],
        [param.ctypes.data for param in params],
        [grad.ctypes.data for grad in grads],
        pointers,
        steps,
        row_numels=row_numels,
        dtype="bfloat16" if dtype == np.uint16 else "float32",
        compensation=None if compensations is None else [buffer.ctypes.data for buffer in compensations],
        isa=isa,
        num_threads=num_threads,
    )


adam = functools.partial(update, specs.ADAM)
"""``adam(params, grads, states, steps, *, isa=None, num_threads=None, **hyperparameters)``:
:func:`update` for :func:`adamkit.rules.adam` (AdamW: ``decoupled_weight_decay=True``)."""
adam_pointers = functools.partial(update_pointers, specs.ADAM)
"""``adam_pointers(hyperparameters, numels, param_ptrs, grad_ptrs, state_ptrs, steps, ...)``:
:func:`update_pointers` for :func:`adamkit.rules.adam`."""
adamax = functools.partial(update, specs.ADAMAX)
""":func:`update` for :func:`adamkit.rules.adamax`."""
adamax_pointers = functools.partial(update_pointers, specs.ADAMAX)
""":func:`update_pointers` for :func:`adamkit.rules.adamax`."""
adadelta = functools.partial(update, specs.ADADELTA)
""":func:`update` for :func:`adamkit.rules.adadelta`."""
adadelta_pointers = functools.partial(update_pointers, specs.ADADELTA)
""":func:`update_pointers` for :func:`adamkit.rules.adadelta`."""
lion = functools.partial(update, specs.LION)
""":func:`update` for :func:`adamkit.rules.lion`."""
lion_pointers = functools.partial(update_pointers, specs.LION)
""":func:`update_pointers` for :func:`adamkit.rules.lion`."""


def _rule_and_hyper(spec, hyperparameters):
    """The spec's rule and its full, checked keyword arguments; raise if the kernel cannot step it."""
    if not available():
        raise RuntimeError("the quantised kernel needs adamkit's C extension, which was not built")
    rule, hyper = native.rule_and_hyper(spec, hyperparameters)
    if rule not in RULES:
        raise ValueError(f"{spec.name} has no 8-bit state (it is for {specs.listed(specs.COMPACT)})")
    return rule, hyper


def _dtype_name(dtype):
    """``"float32"`` or ``"bfloat16"`` for that name or torch dtype; raise ``ValueError`` else."""
    name = str(dtype).removeprefix("torch.")
    if name not in PARAM_DTYPES:
        raise ValueError(f"Invalid dtype: {dtype!r} (must be one of {', '.join(PARAM_DTYPES)})")
    return name


def _check_array(name, array, dtype, size, writable):
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(array).__name__}")
    if array.dtype != dtype or array.size != size:
        raise ValueError(f"{name} is {array.dtype} of {array.size} elements, expected {np.dtype(dtype)} of {size}")
    if not array.flags.c_contiguous or (writable and not array.flags.writeable):
        raise ValueError(f"{name} must be C-contiguous{' and writable' if writable else ''}")
