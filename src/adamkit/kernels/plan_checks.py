"""The checks behind the front ends' cached plans, in C (``csrc/plan_checks_objects.c`` for the
torch front end, ``csrc/plan_checks_arrays.c`` for the NumPy one): one pass over a list of
objects instead of a loop in Python. They touch no kernel and write nothing; where a build has
no C extension, the checks a front end needs without it have a Python fallback here.
"""

try:
    from adamkit.kernels import _native  # type: ignore[attr-defined]  # the C extension has no stubs
except ImportError:  # built without a C compiler: kernels.native says so
    _native = None


def same_objects(first, second):
    """Whether two lists hold the very same objects in the same order (compared by identity)."""
    if _native is not None:
        return _native.same_objects(first, second)
    return len(first) == len(second) and all(a is b for a, b in zip(first, second))


def data_pointers(arrays):
    """The data pointers of a list of NumPy arrays, as an int64 array (from C)."""
    return _native.data_pointers(arrays)


def same_items(dicts, key, expected):
    """Whether ``dicts[i][key] is expected[i]`` for every ``i`` (a missing key does not match);
    from C, without building the list of items."""
    if _native is not None:
        return _native.same_items(dicts, key, expected)
    missing = object()
    return len(dicts) == len(expected) and all(d.get(key, missing) is e for d, e in zip(dicts, expected))


def identity_hashed(objects):
    """Whether ``hash(o) == id(o)`` for every object, as ``torch.Tensor.__hash__`` makes it:
    then :func:`same_entries` looks them up without calling ``__hash__``."""
    return all(hash(o) == id(o) for o in objects)


def same_entries(container, keys, expected, identity_hashed=False):
    """Whether ``container.get(keys[i]) is expected[i]`` for every ``i``, for a dict
    ``container``; ``identity_hashed`` (from :func:`identity_hashed` on ``keys``) skips calling
    each key's ``__hash__``."""
    return _native.same_entries(container, keys, expected, identity_hashed)


def attributes(objects, name):
    """``[getattr(o, name) for o in objects]``, from C, prefetching the objects ahead (they are
    cold after a kernel pass; see ``csrc/prefetch_objects.h``)."""
    return _native.attributes(objects, name)


def checked_pointers(tensors, dtype=None, sizes=None):
    """``[t.data_ptr() for t in tensors]`` if every tensor has ``dtype`` (if given), is
    contiguous and has the size ``sizes[i]`` (if given: a shape, or an ``int`` number of
    elements), else ``None``; in one pass from C."""
    return _native.checked_pointers(tensors, dtype, sizes)


def first_in_ranges(starts, ends, pointers, lengths):
    """The first ``i`` whose byte range ``[pointers[i], pointers[i] + lengths[i])`` overlaps one
    of the sorted, disjoint ranges ``[starts[k], ends[k])`` (int64 arrays), or ``-1``; from C."""
    return _native.first_in_ranges(starts, ends, pointers, lengths)


def arrays_fit(params, grads):
    """Whether each of the NumPy arrays ``params[i]`` can still be written in place by the
    kernels, and ``grads[i]`` read as its gradient as it is: the same dtype and shape,
    C-contiguous, aligned, native byte order, apart from the parameter."""
    return _native is not None and _native.arrays_fit(params, grads)


def arrays_as_planned(grads, states, items, arrays, records, dims, ranges, seen):
    """Whether the NumPy front end's cached step may run as planned, in one call to C: the
    state dicts, arrays and gradients against the tables of :func:`plan_tables`, as
    ``csrc/plan_checks_arrays.c`` describes. The caller keeps every object of ``items`` alive."""
    return _native.arrays_as_planned(grads, states, items, arrays, records, dims, ranges, seen)


def plan_tables(states, arrays):
    """The tables :func:`arrays_as_planned` checks a plan against, taken now, from C:
    ``(items, held, records, dims, ranges)``, where ``held`` lists the keys and values of the
    dicts ``states`` whose addresses ``items`` holds, for the caller to keep."""
    return _native.plan_tables(states, arrays)


def first_overlap(arrays, n_written):
    """``(i, j)``, ``i < j``, for two NumPy arrays whose memory overlaps where at least one of
    them is among the first ``n_written`` (those a step writes; the others it only reads), or
    ``None``. Each array spans the bytes from its lowest element to past its highest, as
    ``np.may_share_memory`` judges; empty arrays span nothing."""
    if _native is not None:
        return _native.first_overlap(arrays, n_written)
    spans = []
    for index, array in enumerate(arrays):
        if array.size:
            start = end = array.__array_interface__["data"][0]
            for size, stride in zip(array.shape, array.strides):
                reach = stride * (size - 1)
                start, end = (start + reach, end) if reach < 0 else (start, end + reach)
            spans.append((start, index, end + array.itemsize))
    last_any = last_written = None  # (end, index) of the earlier span that ends last
    for start, index, end in sorted(spans):
        writes = index < n_written
        earlier = last_any if writes else last_written
        if earlier is not None and earlier[0] > start:
            return tuple(sorted((earlier[1], index)))
        if last_any is None or end > last_any[0]:
            last_any = (end, index)
        if writes and (last_written is None or end > last_written[0]):
            last_written = (end, index)
    return None
