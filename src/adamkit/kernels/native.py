"""The native backend: adamkit's fused multi-tensor C kernels (``csrc/``).

:func:`update` has the contract of :func:`adamkit.kernels.reference.update` for float32 and
float64 NumPy arrays and computes the very same bits: the per-step scalars in double precision
exactly as :mod:`adamkit.rules` writes them (bias corrections per tensor, in C, with the C
library's ``pow`` that Python's ``**`` calls), each cast once to the arithmetic type, then every
elementwise operation in the rule's order, with no FMA contraction. One call updates a whole
list of arrays: OpenMP threads share the concatenated elements in fixed-size chunks, and the
result is the same whatever the thread count, the ISA, or how the arrays are split into calls.

:func:`update_pointers` takes data pointers instead of arrays (``tensor.data_ptr()``), for torch
tensors, and also runs bfloat16 parameters (arithmetic in float32, state in float32 or
bfloat16, each stored value rounded to nearest even once), optionally with Kahan summation:
a bfloat16 compensation buffer per parameter keeps what rounding loses of each update.

This module is the one binding over the C extension ``adamkit.kernels._native``: the other
modules reach the kernels through its functions (:mod:`adamkit.kernels.sparse` and :mod:`adamkit.kernels.quantized` through
:func:`sparse_update` and :func:`quant8_update`). The extension is optional. When it was not
built, :func:`available` is false, :func:`update` warns once
(:class:`NativeKernelsUnavailableWarning`) and runs the reference backend, and
:func:`update_pointers` raises.
"""

import inspect
import os
import importlib
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from adamkit import specs
from adamkit.kernels import reference

_UNAVAILABLE_REASON: str | None
try:
    from adamkit.kernels import _native  # type: ignore[attr-defined]  # the C extension has no stubs
except ImportError as error:  # built without a C compiler
    _native = None
    _UNAVAILABLE_REASON = f"the C extension adamkit.kernels._native could not be imported ({error})"
else:
    _UNAVAILABLE_REASON = None
_ISAS = _native.isas() if _native is not None else ()

# The C kernels name each rule as adamkit.rules names its function.
_RULE_NAMES = {spec.rule: spec.rule.__name__ for spec in specs.ALL}
_USES_STEP = {spec.rule for spec in specs.ALL if spec.uses_step}
_TAKES_MU_PRODUCT = {spec.rule for spec in specs.ALL if spec.scalar_state}
_DTYPES = ("float32", "float64", "bfloat16")
MAX_SLOTS = 3
"""How many state slots the kernels take; a rule with fewer passes ``None`` for the rest."""


class NativeKernelsUnavailableWarning(RuntimeWarning):
    """adamkit's C kernels were not built; the slower reference backend is used instead."""


_warned = False


def available():
    """Whether the C kernels were built and can be loaded."""
    return _native is not None


def unavailable_reason():
    """Why the C kernels cannot be loaded, or ``None`` if they can."""
    return _UNAVAILABLE_REASON


def available_isas():
    """The instruction sets the kernels can use on this CPU, best first (empty if not built).

    Any of them can be forced with ``isa=``; all give bitwise-identical results.
    """
    return _ISAS if _native is not None else ()


















def own_kernel(spec):
    """The module of :mod:`adamkit.kernels` with the kernel of ``spec``'s own
    (``Spec.kernel_module``), or ``None`` if it has none or the kernels are not built."""
    if _native is None or spec.kernel_module is None:
        return None
    return importlib.import_module(f"adamkit.kernels.{spec.kernel_module}")


def warn_unavailable_once():
    """Warn, once per process, that the kernels are not built and the reference path is used."""
    global _warned
    if _native is None and not _warned:
        _warned = True
        warnings.warn(
            f"adamkit is using its slow reference backend: {_UNAVAILABLE_REASON}. "
            "Reinstall adamkit with a C compiler available to build the fused kernels.",
            NativeKernelsUnavailableWarning,
            stacklevel=3,
        )


def update(spec, hyperparameters, params, grads, states, steps, *, isa=None, num_threads=None):
    """Step every ``params[i]`` in place, as :func:`adamkit.kernels.reference.update` does.

    ``params``, ``grads`` and the arrays in ``states[i]`` are C-contiguous NumPy arrays of one
    dtype, float32 or float64; a slot the rule creates on its first step (SGD's
    ``momentum_buffer``) is added to ``states[i]``. ``isa`` forces an instruction set from
    :func:`available_isas`; ``num_threads`` defaults to OpenMP's default. Neither changes the
    result. Bad input raises before anything is changed. A rule with a kernel of its own
    (``Spec.kernel_module``: Adafactor) runs it where its arrays fit it; a rule without
    kernels (``spec.native`` false) runs the reference backend.
    """
    if _native is not None and spec.kernel_module is not None:
        own_kernel(spec).update_fitting(hyperparameters, params, grads, states, steps, isa=isa, num_threads=num_threads)
        return
    if _native is None or not spec.native:
        if isa is not None:
            reason = _UNAVAILABLE_REASON if _native is None else f"{spec.name} has no kernel"
            raise RuntimeError(f"isa={isa!r} needs the native kernels, but {reason}")
        if spec.native:
            warn_unavailable_once()
        reference.update(spec, hyperparameters, params, grads, states, steps)
        return
    rule, hyper = rule_and_hyper(spec, hyperparameters)
    params, grads, states, steps = list(params), list(grads), list(states), list(steps)
    check_per_param(params, grads=grads, states=states, steps=steps)
    columns, names, created = state_columns(spec, hyper, params, states)
    _update_columns(rule, hyper, params, grads, columns, names, steps, created, isa, num_threads)
    if created is not None:
        index = _created_slot(spec)
        for state, buffer, is_new in zip(states, columns[index], created):
            if is_new:
                state[names[index]] = buffer


def _update_columns(rule, hyper, params, grads, columns, names, steps, created, isa, num_threads):
    _native.update_arrays(
        *_rule_arguments(rule, c_hyperparameters(hyper), isa, num_threads),
        params,
        grads,
        tuple(columns),
        tuple(names),
        steps if rule in _USES_STEP else None,
        created,
    )










def update_pointers(
    spec,
    hyperparameters,
    dtype,
    numels,
    param_ptrs,
    grad_ptrs,
    state_ptrs,
    steps,
    *,
    state_dtype=None,
    created=None,
    compensation=None,
    rounding_seeds=None,
    reduce=None,
    isa=None,
    num_threads=None,
):
    """Step tensors in place given their data pointers: the entry point for torch tensors.

    Tensor ``i`` has ``numels[i]`` contiguous elements at ``param_ptrs[i]``; its gradient (same
    dtype) is at ``grad_ptrs[i]``. ``state_ptrs`` maps each state key the rule uses with these
    hyperparameters (e.g. ``exp_avg``, ``exp_avg_sq``, and ``max_exp_avg_sq`` with amsgrad) to
    a sequence of pointers, one per tensor. ``steps[i]`` counts this step (``None`` for rules
    that do not count steps). Sequences may be lists of ints or int64 NumPy arrays.

    ``dtype`` is ``"float32"``, ``"float64"`` or ``"bfloat16"`` (a torch or NumPy dtype works
    too). ``state_dtype`` defaults to ``dtype``; bfloat16 parameters may have ``"float32"``
    state, and float32 parameters ``"bfloat16"`` state, which is stored rounded stochastically
    with the counter-based random bits of ``rounding_seeds[i]`` (a non-negative integer per
    tensor, required there and only there), the state slot and each element's position
    (``csrc/kernels_api.h``; :func:`adamkit.compact.bfloat16.stochastically_rounded` is the
    NumPy reference). ``created[i]`` true means the slot the rule creates on its first step (SGD's
    ``momentum_buffer``) was just allocated for tensor ``i`` and is to be written, not read.

    ``compensation`` (bfloat16 parameters only) holds one pointer per tensor to a bfloat16
    buffer of ``numels[i]`` elements, zeros at first, for Kahan summation. With ``t`` the
    rule's float32 result and ``c`` the buffer, the stored values are, in the same pass::

        s = t + c;   param = bf16(s);   c = bf16(s - float32(param))

    which is Kahan's ``y = u + c``, ``param = bf16(p + y)``, ``c = bf16(y - (param - p))`` for
    the update ``u = t - p``, rearranged (``csrc/rules.h`` gives the argument). So ``param + c``
    follows the float32 trajectory to within the rounding of ``c``, and the updates too small
    to change a bfloat16 parameter accumulate in ``c`` until they do.

    ``reduce`` (LAMB, and ``cautious=True``; ``None`` elsewhere) makes whole-tensor sums of
    shards: between the kernels' two passes it is called once with a tuple of two local sums
    per tensor (LAMB: the squared norms of the parameter and of the update; cautious: the kept
    count and the element count) and returns as many floats, the whole tensors' sums, with
    which the second pass steps (``adamkit.torch._shard_sums``). What it raises, the call
    raises, having stepped no parameter (LAMB's first pass has stored the new moments of float32
    and float64 state).

    The caller keeps the memory alive and unaliased for the duration of the call.
    """
    if _native is None:
        raise RuntimeError(f"update_pointers needs the native kernels, but {_UNAVAILABLE_REASON}")
    rule, hyper = rule_and_hyper(spec, hyperparameters)
    dtype = _dtype_name("dtype", dtype)
    state_dtype = dtype if state_dtype is None else _dtype_name("state_dtype", state_dtype)
    columns = _slot_columns(spec, hyper, state_ptrs)
    if created is not None and _created_slot(spec) is None:
        raise ValueError(f"created is only for rules that create a state slot; {spec.name} has none")
    _native.update_pointers(
        *_rule_arguments(rule, c_hyperparameters(hyper), isa, num_threads),
        dtype,
        state_dtype,
        numels,
        param_ptrs,
        grad_ptrs,
        columns,
        steps if rule in _USES_STEP else None,
        created,
        compensation,
        rounding_seeds,
        reduce,
    )


def sparse_update(rule, c_hyper, isa, num_threads, *arguments):
    """The lazy sparse step of one tensor in C, for :class:`adamkit.kernels.sparse.RowKernel`:
    ``rule`` a function of :mod:`adamkit.rules`, ``c_hyper`` from :func:`c_hyperparameters`,
    ``isa`` and ``num_threads`` as :func:`update` takes them, then the tensor's arguments
    (``csrc/sparse_entry.c``)."""
    _native.sparse_update(*_rule_arguments(rule, c_hyper, isa, num_threads), *arguments)


def first_row_out_of_range(indices_ptr, n_entries, n_rows):
    """:func:`adamkit.kernels.sparse.first_row_out_of_range`, in C."""
    return _native.first_row_out_of_range(indices_ptr, n_entries, n_rows)


def quant8_available():
    """Whether the C extension was built with the kernel for 8-bit block-wise state."""
    return _native is not None and hasattr(_native, "quant8_update")


def quant8_update(rule, c_hyper, isa, num_threads, *arguments):
    """A rule on 8-bit block-wise state in C, for :mod:`adamkit.kernels.quantized`, the leading
    arguments as :func:`sparse_update` takes them (``csrc/quant8_entry.c``)."""
    _native.quant8_update(*_rule_arguments(rule, c_hyper, isa, num_threads), *arguments)


def _rule_arguments(rule, c_hyper, isa, num_threads):
    """The arguments that every C entry point running a rule takes first (``csrc/arguments.h``)."""
    return _RULE_NAMES[rule], c_hyper, resolved_isa(isa), resolved_threads(num_threads)


def takes_mu_product(rule):
    """Whether each step the kernels take for ``rule`` is a pair ``(step, mu_product)``, the
    rule's per-tensor argument (:class:`adamkit.rules.NAdamCount`): its spec has scalar state."""
    return rule in _TAKES_MU_PRODUCT


def uses_step(rule):
    """Whether the kernels read the step count of ``rule`` (a function of :mod:`adamkit.rules`)."""
    return rule in _USES_STEP


def planned_update_pointers(spec, arguments, dtype, state_ptrs, *, state_dtype=None):
    """:func:`update_pointers` made ready once, for a caller that makes the same call at many
    steps and has validated the rule's ``arguments`` itself (``spec.validate``, then
    ``spec.rule_arguments``: plain floats, bools and pairs), as the NumPy front end's cached
    plan does whenever a group's hyperparameters change.

    The spec, the dtypes, and that ``state_ptrs`` holds exactly the slots these arguments make
    the rule use are checked now. Returns ``update(numels, param_ptrs, grad_ptrs, steps,
    rounding_seeds=None)``, which steps them, reading only the thread count at each call.
    """
    if _native is None:
        raise RuntimeError(f"planned_update_pointers needs the native kernels, but {_UNAVAILABLE_REASON}")
    rule = getattr(spec, "rule", None)
    if rule not in _RULE_NAMES:
        raise TypeError(f"spec must be an adamkit Spec with a rule from adamkit.rules, got {spec!r}")
    hyper = {**_rule_defaults(rule), **arguments}
    dtype = _dtype_name("dtype", dtype)
    state_dtype = dtype if state_dtype is None else _dtype_name("state_dtype", state_dtype)
    columns = _slot_columns(spec, hyper, state_ptrs)
    name, c_hyper, isa = _RULE_NAMES[rule], c_hyperparameters(hyper), resolved_isa(None)
    counts_steps = rule in _USES_STEP

    def update(numels, param_ptrs, grad_ptrs, steps, rounding_seeds=None):
        _native.update_pointers(
            name, c_hyper, isa, resolved_threads(None), dtype, state_dtype, numels, param_ptrs, grad_ptrs,
            columns, steps if counts_steps else None, None, None, rounding_seeds, None,
        )

    return update


def _slot_columns(spec, hyper, state_ptrs):
    """The kernels' ``MAX_SLOTS`` columns of state pointers: ``state_ptrs[key]`` for each slot the
    rule uses with ``hyper``, in the spec's order, else ``None``; raise if ``state_ptrs`` has a key
    the rule does not use here or lacks one it does."""
    active = [slot.key for slot in spec.active_slots(hyper)]
    unknown = sorted(set(state_ptrs) - set(active))
    if unknown:
        raise ValueError(f"state_ptrs has keys {unknown} that {spec.name} does not use here")
    columns = [None] * MAX_SLOTS
    for index, slot in enumerate(spec.slots):
        if slot.key in active:
            if slot.key not in state_ptrs:
                raise ValueError(f"state_ptrs is missing {slot.key!r}")
            columns[index] = state_ptrs[slot.key]
    return tuple(columns)


def rule_and_hyper(spec, hyperparameters):
    """The spec's rule and its full keyword arguments: the rule's defaults, then ``hyperparameters``."""
    rule = getattr(spec, "rule", None)
    if rule not in _RULE_NAMES:
        raise TypeError(f"spec must be an adamkit Spec with a rule from adamkit.rules, got {spec!r}")
    defaults = _rule_defaults(rule)
    unknown = sorted(set(hyperparameters) - set(defaults))
    if unknown:
        raise TypeError(f"{spec.name} got unexpected hyperparameters {unknown}")
    hyper = {**defaults, **hyperparameters}
    spec.validate(hyper)
    return rule, hyper


_DEFAULTS: dict[Callable[..., Any], dict[str, Any]] = {}


def _rule_defaults(rule):
    if rule not in _DEFAULTS:
        parameters = inspect.signature(rule).parameters.values()
        _DEFAULTS[rule] = {
            p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY and p.name != "step"
        }
    return _DEFAULTS[rule]


def c_hyperparameters(hyper):
    """The hyperparameters under the C field names: plain floats, ``betas`` split in two (or
    three, AdEMAMix's), ``None`` (AdEMAMix's ``t_alpha_beta3`` without warmup) as 0."""
    fields = {}
    for name, value in hyper.items():
        if name == "betas":
            for field, beta in zip(("beta1", "beta2", "beta3"), value):
                fields[field] = float(beta)
        elif value is None:
            fields[name] = 0.0
        elif isinstance(value, bool):
            fields[name] = value
        elif value is None:
            continue  # an option that is off (LAMB's trust_clip=None): its C field stays 0
        else:
            fields[name] = float(value)
    return fields


def state_columns(spec, hyper, params, states):
    """Per slot of ``spec``: the list of state arrays (``None`` if inactive), its key, and the
    per-tensor ``created`` flags of the slot the rule creates (new arrays, not yet in ``states``):
    the layout the C entry point takes."""
    columns, names, created = [None] * MAX_SLOTS, [None] * MAX_SLOTS, None
    for index, slot in enumerate(spec.slots):
        if not slot.when(hyper):
            continue
        names[index] = slot.key
        column = [state.get(slot.key) for state in states]
        if slot.fill is None:
            created = [array is None for array in column]
            column = [
                np.empty(np.shape(param), np.asarray(param).dtype) if array is None else array
                for param, array in zip(params, column)
            ]
        columns[index] = column
    return columns, names, created


def _created_slot(spec):
    """The index of the slot the rule creates on its first step, or ``None``."""
    return next((i for i, slot in enumerate(spec.slots) if slot.fill is None), None)


def check_per_param(params, **sequences):
    """Raise ``ValueError`` unless each of ``sequences`` has one entry per parameter."""
    for name, values in sequences.items():
        if len(values) != len(params):
            raise ValueError(f"{name} has {len(values)} entries but there are {len(params)} params")


def _dtype_name(name, dtype):
    if isinstance(dtype, str) or str(dtype).startswith("torch."):
        text = str(dtype).removeprefix("torch.")
    else:
        try:
            text = np.dtype(dtype).name
        except TypeError:
            text = None
    if text not in _DTYPES:
        raise ValueError(f"Invalid {name}: {dtype!r} (must be one of {', '.join(_DTYPES)})")
    return text


def resolved_isa(isa):
    """The instruction set a call with ``isa`` runs: the best this CPU has if ``None``."""
    supported = available_isas()
    if isa is None:
        return supported[0]
    if isa not in supported:
        raise ValueError(f"Invalid isa: {isa!r} (this CPU supports {', '.join(supported)})")
    return isa


_default_threads = None
_in_forked_child = False


def set_num_threads(num_threads: int | None) -> None:
    """Set how many threads the kernels use when a call does not say (``None``: OpenMP's default).

    The thread count never changes results, only speed. In a process forked after this module
    was imported the kernels run on one thread, since OpenMP's worker threads do not survive
    ``fork``, and asking for more raises ``RuntimeError``.
    """
    global _default_threads
    if num_threads is not None:
        _check_threads(num_threads)
    _default_threads = num_threads


def _after_fork_in_child():
    """Run the kernels on one thread in a forked child, whatever the parent had set.

    libgomp keeps one pool of worker threads per thread that opened a parallel region, and
    ``fork`` copies the pool's record of them into the child but not the threads: a parallel
    region of two or more threads then waits for them forever (GCC's libgomp has no handler
    for fork). torch's operators run on the same libgomp, so the pool may be there even if the
    kernels never ran. On one thread the kernels never enter OpenMP (``ak_parallel_for`` in
    ``csrc/dispatch.c``), so the child steps, with the same bits. A child that needs the
    threads is started with multiprocessing's 'spawn' or 'forkserver' method instead.
    """
    global _default_threads, _in_forked_child
    _default_threads = None
    _in_forked_child = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def resolved_threads(num_threads):
    """The thread count a call with ``num_threads`` runs on (see :func:`set_num_threads`)."""
    if num_threads is not None:
        _check_threads(num_threads)
        return num_threads
    if _default_threads is not None:
        return _default_threads
    return 1 if _in_forked_child else _native.default_threads()


def _check_threads(num_threads):
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"Invalid num_threads: {num_threads!r} (must be an integer >= 1)")
    if num_threads > 1 and _in_forked_child:
        raise RuntimeError(
            f"num_threads={num_threads}: in a forked process the kernels run on one thread, since "
            "OpenMP's worker threads do not survive fork; start the process with multiprocessing's "
            "'spawn' or 'forkserver' method to use more"
        )
