/* The torch front end's re-checks of a cached step's plan, over Python lists and dicts and
 * through torch tensors' own methods: everything Python could have changed since the plan was
 * built, checked in one pass from C before any kernel writes. */
#include <stdint.h>

#include "entry_points.h"
#include "prefetch_objects.h"

/* same_objects(a, b): whether two lists hold the very same objects, in the same order. It lets
 * the torch front end re-check a cached step plan over thousands of tensors without calling
 * their __eq__ or __hash__. */
PyObject *ak_py_same_objects(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *a, *b;
    if (!PyArg_ParseTuple(args, "O!O!:same_objects", &PyList_Type, &a, &PyList_Type, &b))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(a);
    if (PyList_GET_SIZE(b) != n)
        Py_RETURN_FALSE;
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyList_GET_ITEM(a, i) != PyList_GET_ITEM(b, i))
            Py_RETURN_FALSE;
    Py_RETURN_TRUE;
}

/* same_items(dicts, key, expected): whether dicts[i][key] is expected[i] for every i (a dict
 * without the key does not match), without building the list of items in Python. */
PyObject *ak_py_same_items(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *dicts, *key, *expected;
    if (!PyArg_ParseTuple(args, "O!OO!:same_items", &PyList_Type, &dicts, &key, &PyList_Type, &expected))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(dicts);
    if (PyList_GET_SIZE(expected) != n)
        Py_RETURN_FALSE;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *dict = PyList_GET_ITEM(dicts, i);
        if (!PyDict_Check(dict))
            Py_RETURN_FALSE;
        PyObject *value = PyDict_GetItemWithError(dict, key); /* borrowed */
        if (!value && PyErr_Occurred())
            return NULL;
        if (value != PyList_GET_ITEM(expected, i))
            Py_RETURN_FALSE;
    }
    Py_RETURN_TRUE;
}

/* same_entries(container, keys, expected, identity_hashed): whether container[keys[i]] is
 * expected[i] for every i (a missing key does not match). With identity_hashed, the caller
 * has checked that hash(k) == id(k) for these keys (torch.Tensor.__hash__ returns id(self)),
 * so each lookup passes that hash instead of calling __hash__, a Python function for tensors
 * (what that saves a step: BENCHMARKS.md, workload C). */
PyObject *ak_py_same_entries(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *container, *keys, *expected;
    int identity_hashed;
    if (!PyArg_ParseTuple(args, "O!O!O!p:same_entries", &PyDict_Type, &container, &PyList_Type, &keys,
                          &PyList_Type, &expected, &identity_hashed))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(keys);
    if (PyList_GET_SIZE(expected) != n)
        Py_RETURN_FALSE;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = PyList_GET_ITEM(keys, i), *value;
#if PY_VERSION_HEX < 0x030D0000
        if (identity_hashed)
            value = _PyDict_GetItem_KnownHash(container, key, (Py_hash_t)(uintptr_t)key);
        else
#endif
            value = PyDict_GetItemWithError(container, key);
        if (!value && PyErr_Occurred())
            return NULL;
        if (value != PyList_GET_ITEM(expected, i))
            Py_RETURN_FALSE;
    }
    Py_RETURN_TRUE;
}

/* attributes(objects, name): [getattr(o, name) for o in objects], prefetching ahead. */
PyObject *ak_py_attributes(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *objects, *name;
    if (!PyArg_ParseTuple(args, "O!U:attributes", &PyList_Type, &objects, &name))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(objects);
    PyObject *values = PyList_New(n);
    if (!values)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        prefetch_items_ahead(objects, i);
        PyObject *value = PyObject_GetAttr(PyList_GET_ITEM(objects, i), name);
        if (!value) {
            Py_DECREF(values);
            return NULL;
        }
        PyList_SET_ITEM(values, i, value);
    }
    return values;
}

/* checked_pointers(tensors, dtype, sizes): each tensor's data_ptr(), as a list, if every
 * tensor has the dtype object `dtype` (None: any), is_contiguous() and the size sizes[i]
 * (sizes None: any): its shape if sizes[i] is a tuple (torch.Size), its numel() if an int;
 * else None. It is torch's own methods, called from C: one pass that reads each tensor's
 * metadata once while it is in cache, for the torch front end's cached step, which compares
 * the pointers with those it was planned with. */
PyObject *ak_py_checked_pointers(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *tensors, *dtype, *sizes;
    if (!PyArg_ParseTuple(args, "O!OO:checked_pointers", &PyList_Type, &tensors, &dtype, &sizes))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(tensors);
    if (sizes != Py_None && (!PyList_Check(sizes) || PyList_GET_SIZE(sizes) != n))
        Py_RETURN_NONE;
    static PyObject *name_dtype, *name_contiguous, *name_shape, *name_numel, *name_data_ptr;
    if (!name_dtype && (!(name_dtype = PyUnicode_InternFromString("dtype")) ||
                        !(name_contiguous = PyUnicode_InternFromString("is_contiguous")) ||
                        !(name_shape = PyUnicode_InternFromString("shape")) ||
                        !(name_numel = PyUnicode_InternFromString("numel")) ||
                        !(name_data_ptr = PyUnicode_InternFromString("data_ptr"))))
        return NULL;
    PyObject *pointers = PyList_New(n);
    if (!pointers)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        prefetch_items_ahead(tensors, i);
        PyObject *tensor = PyList_GET_ITEM(tensors, i), *value;
        int fits = 1;
        if (dtype != Py_None) {
            if (!(value = PyObject_GetAttr(tensor, name_dtype)))
                goto error;
            fits = value == dtype;
            Py_DECREF(value);
        }
        if (fits) {
            if (!(value = PyObject_CallMethodNoArgs(tensor, name_contiguous)))
                goto error;
            fits = value == Py_True;
            Py_DECREF(value);
        }
        if (fits && sizes != Py_None) {
            PyObject *size = PyList_GET_ITEM(sizes, i);
            value = PyLong_Check(size) ? PyObject_CallMethodNoArgs(tensor, name_numel)
                                       : PyObject_GetAttr(tensor, name_shape);
            if (!value)
                goto error;
            fits = PyObject_RichCompareBool(value, size, Py_EQ);
            Py_DECREF(value);
            if (fits < 0)
                goto error;
        }
        if (!fits) {
            Py_DECREF(pointers);
            Py_RETURN_NONE;
        }
        if (!(value = PyObject_CallMethodNoArgs(tensor, name_data_ptr)))
            goto error;
        PyList_SET_ITEM(pointers, i, value);
    }
    return pointers;
error:
    Py_DECREF(pointers);
    return NULL;
}

/* first_in_ranges(starts, ends, pointers, lengths): the first i whose byte range
 * [pointers[i], pointers[i] + lengths[i]) overlaps one of the ranges [starts[k], ends[k]),
 * which are sorted and disjoint (int64 arrays), or -1; empty ranges overlap nothing. The torch
 * front end's cached step checks its new gradients against the memory it writes this way, by
 * binary search. */
PyObject *ak_py_first_in_ranges(PyObject *self, PyObject *args)
{
    (void)self;
    PyArrayObject *starts, *ends, *lengths;
    PyObject *pointers;
    if (!PyArg_ParseTuple(args, "O!O!O!O!:first_in_ranges", &PyArray_Type, &starts, &PyArray_Type, &ends,
                          &PyList_Type, &pointers, &PyArray_Type, &lengths))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(pointers), m = PyArray_SIZE(starts);
    if (PyArray_TYPE(starts) != NPY_INT64 || PyArray_TYPE(ends) != NPY_INT64 || PyArray_TYPE(lengths) != NPY_INT64 ||
        !PyArray_IS_C_CONTIGUOUS(starts) || !PyArray_IS_C_CONTIGUOUS(ends) || !PyArray_IS_C_CONTIGUOUS(lengths) ||
        PyArray_SIZE(ends) != m || PyArray_SIZE(lengths) != n) {
        PyErr_SetString(PyExc_ValueError, "first_in_ranges: starts, ends and lengths must be contiguous int64 "
                                          "arrays, starts and ends of one size and lengths of the pointers' size");
        return NULL;
    }
    const int64_t *s = PyArray_DATA(starts), *e = PyArray_DATA(ends), *len = PyArray_DATA(lengths);
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t begin = PyLong_AsLongLong(PyList_GET_ITEM(pointers, i));
        if (begin == -1 && PyErr_Occurred())
            return NULL;
        int64_t end = begin + len[i];
        if (end <= begin)
            continue;
        /* The last range that starts before `end`: the only one that can overlap. */
        Py_ssize_t lo = 0, hi = m;
        while (lo < hi) {
            Py_ssize_t mid = lo + (hi - lo) / 2;
            if (s[mid] < end)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > 0 && e[lo - 1] > begin)
            return PyLong_FromSsize_t(i);
    }
    return PyLong_FromLong(-1);
}
