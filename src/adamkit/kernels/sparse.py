r"""The lazy sparse step: a rule applied to the touched rows of one array only.

An array of shape ``(n, *rest)`` is ``n`` rows (an embedding table's rows). A sparse gradient
is a list of row indices, in any order and possibly repeated, with a values row for each.
:func:`update_rows` sums the values of a repeated row in their original order (coalescing, as
``torch.Tensor.coalesce`` does), then steps each touched row of the parameter and of its state
in place, exactly as the dense step of the same rule would step that row, and leaves every
other row bitwise unchanged:

.. math::
    \theta_r, s_r \leftarrow \mathrm{rule}(\theta_r, g_r, s_r; t) \quad r \in \text{rows},
    \qquad \theta_r, s_r \text{ unchanged otherwise.}

Weight decay, being part of the rule, reaches the touched rows only. ``t`` is the step count
``step`` shared by all rows, or, with ``row_steps``, each row's own count (advanced here for
the touched rows).

The native kernel (``csrc/sparse.c``) checks the indices, sorts them (a radix sort,
``csrc/row_sort.c``, skipped when they are already in order), coalesces and steps, in time
proportional to the number of entries, never to the number of rows. Without it, or for arrays
it does not take (float16, other layouts), the rows are gathered, stepped by
:mod:`adamkit.kernels.reference`, and scattered back: the same rule, the same bits.
"""

import math

import numpy as np

from adamkit.kernels import native, reference

_NATIVE_DTYPES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}


def update_rows(
    spec,
    hyperparameters,
    param,
    indices,
    values,
    state,
    step,
    *,
    row_steps=None,
    fused=None,
    isa=None,
    num_threads=None,
):
    """Step the rows ``indices`` of ``param`` and of the arrays in ``state`` in place.

    ``param`` is an array of shape ``(n, *rest)``; ``indices`` a 1-d int64 array of row
    indices in ``[0, n)``, in any order, repeated rows summed; ``values`` the gradient rows, of
    shape ``(len(indices), *rest)`` and ``param``'s dtype; ``state`` maps each state key the rule uses
    to an array shaped like ``param``. ``step`` counts this step (``None`` for rules that do
    not count steps). ``row_steps``, an int64 array of shape ``(n,)``, opts in to per-row
    counts: the touched rows' counts are advanced by one, and rules that use the step count
    use them instead of ``step``. ``fused=False`` forces the reference path; otherwise the
    native kernel runs whenever it takes the arrays. ``isa`` and ``num_threads`` are those of
    :func:`adamkit.kernels.native.update`. Bad input raises before anything is changed.
    """
    _check_arrays(param, indices, values, state, row_steps)
    if row_steps is not None and spec.scalar_state:
        raise ValueError(f"{spec.name} takes no row_steps: its scalar state (mu_product) is the tensor's")
    active = spec.active_slots({**spec.defaults, **hyperparameters})
    if any(slot.fill is None for slot in active):
        raise TypeError(f"{spec.name} creates state on its first step and has no lazy sparse step")
    missing = [slot.key for slot in active if slot.key not in state]
    if missing:
        raise ValueError(f"state is missing {missing}")
    indices = np.ascontiguousarray(indices)
    if fused is not False and native.available() and _native_ready(param, values, state, row_steps):
        _update_native(spec, hyperparameters, param, indices, values, state, step, row_steps, isa, num_threads)
        return
    if isa is not None:
        raise ValueError(f"isa={isa!r} needs the native kernels and float32/float64 C-contiguous arrays")
    if fused is None:
        native.warn_unavailable_once()
    outside = np.flatnonzero((indices < 0) | (indices >= param.shape[0]))
    if outside.size:
        raise ValueError(
            f"indices must lie in [0, {param.shape[0]}), got indices[{outside[0]}] = {indices[outside[0]]}"
        )
    rows, values = _coalesce(indices, values)
    _update_reference(spec, hyperparameters, param, rows, values, state, step, row_steps)


def _check_arrays(param, indices, values, state, row_steps):
    param, indices, values = np.asarray(param), np.asarray(indices), np.asarray(values)
    if param.ndim < 1:
        raise ValueError(f"param must have at least one dimension (rows), got shape {param.shape}")
    if indices.ndim != 1 or indices.dtype != np.int64:
        raise TypeError(f"indices must be a 1-d int64 array, got {indices.dtype} of shape {indices.shape}")
    expected = (indices.shape[0], *param.shape[1:])
    if values.shape != expected or values.dtype != param.dtype:
        raise ValueError(
            f"values must be {param.dtype} of shape {expected}, got {values.dtype} of shape {values.shape}"
        )
    for key, array in state.items():
        if np.shape(array) != param.shape or np.asarray(array).dtype != param.dtype:
            raise ValueError(
                f"state[{key!r}] is {np.asarray(array).dtype} of shape {np.shape(array)}, "
                f"but param is {param.dtype} of shape {param.shape}"
            )
    if row_steps is not None:
        row_steps = np.asarray(row_steps)
        if row_steps.shape != param.shape[:1] or row_steps.dtype != np.int64:
            raise ValueError(
                f"row_steps must be int64 of shape {param.shape[:1]}, got {row_steps.dtype} "
                f"of shape {row_steps.shape}"
            )


def _native_ready(param, values, state, row_steps):
    arrays = [param, values, *state.values()]
    return (
        param.dtype in _NATIVE_DTYPES
        and all(a.dtype == param.dtype and a.flags.c_contiguous for a in arrays)
        and all(a.flags.writeable for a in [param, *state.values()])
        and (row_steps is None or (row_steps.flags.c_contiguous and row_steps.flags.writeable))
    )


def _update_native(spec, hyperparameters, param, indices, values, state, step, row_steps, isa, num_threads):
    slot_ptrs = {key: array.ctypes.data for key, array in state.items()}
    RowKernel(spec, hyperparameters)(
        _NATIVE_DTYPES[param.dtype],
        param.shape[0],
        math.prod(param.shape[1:]),
        param.ctypes.data,
        indices.ctypes.data,
        indices.shape[0],
        values.ctypes.data,
        slot_ptrs,
        step,
        row_steps=row_steps.ctypes.data if row_steps is not None else None,
        isa=isa,
        num_threads=num_threads,
    )


class RowKernel:
    """:func:`update_rows` given data pointers (``tensor.data_ptr()``), for torch tensors, with
    hyperparameters fixed when it is made (they are checked and converted for C then, once).

    A call steps one tensor: the parameter is ``n_rows`` rows of ``row_numel`` contiguous
    ``dtype`` elements (``"float32"`` or ``"float64"``) at ``param_ptr``; ``n_entries`` int64
    row indices are at ``indices_ptr`` and their values rows at ``values_ptr``; ``slot_ptrs``
    maps each state key the rule uses to its tensor's address (shaped like the parameter);
    ``row_steps`` is the address of the per-row int64 counts, or ``None``. An index outside
    ``[0, n_rows)`` raises ``ValueError`` and changes nothing. Needs the native kernels; the
    caller keeps the memory alive.
    """

    def __init__(self, spec, hyperparameters):
        rule, hyper = native.rule_and_hyper(spec, hyperparameters)
        if hyper.get("cautious"):
            raise TypeError("cautious=True has no lazy sparse step: its mask's rescale is over the whole tensor")
        self._spec = spec
        self._rule = rule
        self._uses_step = native.uses_step(rule)
        self._c_hyper = native.c_hyperparameters(hyper)
        self._slots = [(index, slot.key) for index, slot in enumerate(spec.slots) if slot.when(hyper)]

    def __call__(
        self,
        dtype,
        n_rows,
        row_numel,
        param_ptr,
        indices_ptr,
        n_entries,
        values_ptr,
        slot_ptrs,
        step,
        *,
        row_steps=None,
        isa=None,
        num_threads=None,
    ):
        slots = [None] * native.MAX_SLOTS
        for index, key in self._slots:
            if key not in slot_ptrs:
                raise ValueError(f"slot_ptrs is missing {key!r}")
            slots[index] = slot_ptrs[key]
        if self._uses_step and step is None and row_steps is None:
            raise TypeError(f"step is required by {self._spec.name}")
        native.sparse_update(
            self._rule,
            self._c_hyper,
            isa,
            num_threads,
            dtype,
            n_rows,
            row_numel,
            n_entries,
            indices_ptr,
            param_ptr,
            values_ptr,
            tuple(slots),
            step if native.takes_mu_product(self._rule) else float(step) if step is not None else 1.0,
            row_steps,
        )


def first_row_out_of_range(indices_ptr, n_entries, n_rows):
    """The position of the first of ``n_entries`` int64 row indices at ``indices_ptr`` outside
    ``[0, n_rows)``, or -1 if all are in range (one pass in C; needs the native kernels)."""
    return native.first_row_out_of_range(indices_ptr, n_entries, n_rows)


def _coalesce(indices, values):
    """The distinct sorted rows and their summed values, each sum in the entries' order."""
    order = np.argsort(indices, kind="stable")
    rows = indices[order]
    starts = np.ones(rows.shape, dtype=bool)
    starts[1:] = rows[1:] != rows[:-1]
    summed = values[order[starts]]
    repeats = ~starts
    np.add.at(summed, np.cumsum(starts)[repeats] - 1, values[order[repeats]])
    return rows[starts], summed


def _update_reference(spec, hyperparameters, param, rows, values, state, step, row_steps):
    groups = [(rows, values, step)]
    if row_steps is not None:
        row_steps[rows] += 1
        if native.uses_step(spec.rule):
            counts = row_steps[rows]
            groups = [(rows[counts == c], values[counts == c], float(c)) for c in np.unique(counts)]
    for group_rows, group_values, group_step in groups:
        gathered_param = param[group_rows]
        gathered_state = {key: array[group_rows] for key, array in state.items()}
        reference.update(
            spec, hyperparameters, [gathered_param], [group_values], [gathered_state], [group_step]
        )
        param[group_rows] = gathered_param
        for key, array in state.items():
            array[group_rows] = gathered_state[key]
