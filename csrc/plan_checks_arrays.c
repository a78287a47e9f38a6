/* The NumPy front end's re-checks of a cached step's plan, and the tables they compare against,
 * read through NumPy's C API: everything Python could have changed of the arrays and state dicts
 * since the plan was built, checked in one pass from C before any kernel writes. */
#include <stdint.h>
#include <stdlib.h>

#include "entry_points.h"
#include "prefetch_objects.h"

/* data_pointers(arrays): each NumPy array's data pointer, as an int64 array. The NumPy front
 * end's cached step reads its gradients' pointers this way (after arrays_fit has checked them),
 * not through ndarray.ctypes.data, which builds a Python object per array. */
PyObject *ak_py_data_pointers(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *arrays;
    if (!PyArg_ParseTuple(args, "O!:data_pointers", &PyList_Type, &arrays))
        return NULL;
    npy_intp n = PyList_GET_SIZE(arrays);
    PyObject *pointers = PyArray_SimpleNew(1, &n, NPY_INT64);
    if (!pointers)
        return NULL;
    int64_t *out = PyArray_DATA((PyArrayObject *)pointers);
    for (npy_intp i = 0; i < n; i++) {
        PyObject *array = PyList_GET_ITEM(arrays, i);
        if (!PyArray_Check(array)) {
            PyErr_Format(PyExc_TypeError, "arrays[%zd] must be a NumPy array, got %s", (Py_ssize_t)i,
                         Py_TYPE(array)->tp_name);
            Py_DECREF(pointers);
            return NULL;
        }
        out[i] = (int64_t)(intptr_t)PyArray_DATA((PyArrayObject *)array);
    }
    return pointers;
}

/* arrays_fit(params, grads): whether every params[i] is a NumPy array the kernels can still
 * write in place (writable, C-contiguous, aligned, native byte order) and every grads[i] one
 * they can read as its gradient as it is: the same dtype and shape, C-contiguous, aligned,
 * native byte order, and not overlapping params[i]. The NumPy front end's cached step asks
 * this once for all groups before it changes anything; on False its full path names the
 * culprit. */
PyObject *ak_py_arrays_fit(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *params, *grads;
    if (!PyArg_ParseTuple(args, "O!O!:arrays_fit", &PyList_Type, &params, &PyList_Type, &grads))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(params);
    if (PyList_GET_SIZE(grads) != n)
        Py_RETURN_FALSE;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PyList_GET_ITEM(params, i), *g = PyList_GET_ITEM(grads, i);
        if (!PyArray_Check(p) || !PyArray_Check(g))
            Py_RETURN_FALSE;
        PyArrayObject *param = (PyArrayObject *)p, *grad = (PyArrayObject *)g;
        int ndim = PyArray_NDIM(param);
        if (!PyArray_ISWRITEABLE(param) || !PyArray_IS_C_CONTIGUOUS(param) ||
            !PyArray_ISALIGNED(param) || !PyArray_ISNOTSWAPPED(param))
            Py_RETURN_FALSE;
        if (PyArray_TYPE(grad) != PyArray_TYPE(param) || PyArray_NDIM(grad) != ndim ||
            !PyArray_IS_C_CONTIGUOUS(grad) || !PyArray_ISALIGNED(grad) ||
            !PyArray_ISNOTSWAPPED(grad))
            Py_RETURN_FALSE;
        for (int d = 0; d < ndim; d++)
            if (PyArray_DIM(grad, d) != PyArray_DIM(param, d))
                Py_RETURN_FALSE;
        const char *g0 = PyArray_BYTES(grad), *p0 = PyArray_BYTES(param);
        npy_intp bytes = PyArray_NBYTES(param);
        if (bytes > 0 && g0 < p0 + bytes && p0 < g0 + bytes)
            Py_RETURN_FALSE;
    }
    Py_RETURN_TRUE;
}

/* Whether `obj` is a C-contiguous int64 NumPy array of `count` elements (for the tables the
 * NumPy front end's plan builds itself; anything else is refused rather than misread). */
static int int64_table(PyObject *obj, npy_intp count)
{
    if (!PyArray_Check(obj))
        return 0;
    PyArrayObject *table = (PyArrayObject *)obj;
    return PyArray_TYPE(table) == NPY_INT64 && PyArray_IS_C_CONTIGUOUS(table) &&
           PyArray_ISALIGNED(table) && PyArray_ISNOTSWAPPED(table) && PyArray_SIZE(table) == count;
}

/* Whether the bytes [start, end) miss every range of `ranges` (n pairs start, end, disjoint
 * and sorted by start): the last range that starts before `end` must end by `start`. */
static int apart_from_ranges(intptr_t start, intptr_t end, const int64_t *ranges, npy_intp n)
{
    npy_intp low = 0, high = n; /* the ranges before `low` start before `end`, those from `high` do not */
    while (low < high) {
        npy_intp middle = low + (high - low) / 2;
        if ((intptr_t)ranges[2 * middle] < end)
            low = middle + 1;
        else
            high = middle;
    }
    return low == 0 || (intptr_t)ranges[2 * (low - 1) + 1] <= start;
}

/* Whether `dict` holds exactly the entries whose key and value addresses `items` lists (k0, v0,
 * k1, v1, ..., `count` of them), in that order: compared from its entry table, without hashing
 * or comparing any key. */
static int same_dict_items(PyObject *dict, const int64_t *items, Py_ssize_t count)
{
    if (!PyDict_Check(dict) || PyDict_GET_SIZE(dict) != count)
        return 0;
    Py_ssize_t position = 0;
    PyObject *key, *value;
    for (; PyDict_Next(dict, &position, &key, &value); items += 2)
        if ((int64_t)(intptr_t)key != items[0] || (int64_t)(intptr_t)value != items[1])
            return 0;
    return 1;
}

/* arrays_as_planned(grads, states, items, arrays, records, dims, ranges, seen): whether the
 * NumPy front end's cached step may still run as it was planned, in one call.
 *
 * Every dict states[i] must hold exactly the entries it held when the plan was made, in order
 * and by identity: `items` is an int64 table of, for each dict, its number of entries and then
 * the addresses of each key and value (the plan holds them all, so that none is reused). The
 * state arrays the plan steps are among them, and a state dict changed in any way
 * (dict.__setitem__ too) fails. Every arrays[i] (the parameters first, then their state
 * arrays) must still be what records[i] = (data pointer, type number, number of dimensions)
 * describes, with the sizes that follow one another in `dims`, and writable, C-contiguous,
 * aligned and of native byte order: what Python can change of an array without replacing it
 * (ndarray.resize, assigning its shape, dtype or flags) shows here. Every grads[i] must be a
 * gradient of arrays[i] the kernels can read as it is (the same type and shape, C-contiguous,
 * aligned, native byte order) whose bytes miss the memory the step writes: the byte ranges
 * (start, end) of `ranges`, disjoint and sorted by start. seen[i] keeps the address of the last
 * grads[i] found apart, which the ranges, checked unchanged, leave apart: a gradient at the
 * same address as at the last step is not looked up again. On False the plan's full path runs
 * and names what changed. */
PyObject *ak_py_arrays_as_planned(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *grads, *states, *items, *arrays, *records, *dims, *ranges, *seen;
    if (!PyArg_ParseTuple(args, "O!O!OO!OOOO:arrays_as_planned", &PyList_Type, &grads, &PyList_Type, &states,
                          &items, &PyList_Type, &arrays, &records, &dims, &ranges, &seen))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(arrays), n_grads = PyList_GET_SIZE(grads), n_states = PyList_GET_SIZE(states);
    if (!PyArray_Check(items) || !int64_table(items, PyArray_SIZE((PyArrayObject *)items)) ||
        !int64_table(records, 3 * (npy_intp)n) || !PyArray_Check(dims) ||
        !int64_table(dims, PyArray_SIZE((PyArrayObject *)dims)) || !PyArray_Check(ranges) ||
        PyArray_NDIM((PyArrayObject *)ranges) != 2 || PyArray_DIM((PyArrayObject *)ranges, 1) != 2 ||
        !int64_table(ranges, PyArray_SIZE((PyArrayObject *)ranges)) || !PyArray_Check(seen) ||
        !int64_table(seen, PyArray_SIZE((PyArrayObject *)seen)) || !PyArray_ISWRITEABLE((PyArrayObject *)seen) ||
        PyArray_SIZE((PyArrayObject *)seen) < n_grads || n_grads > n) {
        PyErr_SetString(PyExc_TypeError, "arrays_as_planned takes the tables of a plan");
        return NULL;
    }
    const int64_t *item = PyArray_DATA((PyArrayObject *)items), *items_end = item + PyArray_SIZE((PyArrayObject *)items);
    for (Py_ssize_t i = 0; i < n_states; i++) {
        prefetch_items_ahead(states, i);
        if (item == items_end || item[0] < 0 || item[0] > (items_end - item - 1) / 2 ||
            !same_dict_items(PyList_GET_ITEM(states, i), item + 1, (Py_ssize_t)item[0]))
            Py_RETURN_FALSE;
        item += 1 + 2 * item[0];
    }
    const int needed = NPY_ARRAY_WRITEABLE | NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED;
    const int64_t *record = PyArray_DATA((PyArrayObject *)records);
    const int64_t *sizes = PyArray_DATA((PyArrayObject *)dims);
    npy_intp n_sizes = PyArray_SIZE((PyArrayObject *)dims), used = 0;
    const int64_t *written = PyArray_DATA((PyArrayObject *)ranges);
    npy_intp n_ranges = PyArray_DIM((PyArrayObject *)ranges, 0);
    int64_t *apart = PyArray_DATA((PyArrayObject *)seen);
    for (Py_ssize_t i = 0; i < n; i++, record += 3) {
        prefetch_items_ahead(arrays, i);
        PyObject *obj = PyList_GET_ITEM(arrays, i);
        if (!PyArray_Check(obj))
            Py_RETURN_FALSE;
        PyArrayObject *array = (PyArrayObject *)obj;
        int ndim = PyArray_NDIM(array);
        if ((int64_t)(intptr_t)PyArray_DATA(array) != record[0] || PyArray_TYPE(array) != record[1] ||
            ndim != record[2] || used + ndim > n_sizes || (PyArray_FLAGS(array) & needed) != needed ||
            !PyArray_ISNOTSWAPPED(array))
            Py_RETURN_FALSE;
        for (int d = 0; d < ndim; d++)
            if (PyArray_DIM(array, d) != sizes[used + d])
                Py_RETURN_FALSE;
        used += ndim;
        if (i >= n_grads)
            continue;
        prefetch_items_ahead(grads, i);
        obj = PyList_GET_ITEM(grads, i);
        if (!PyArray_Check(obj))
            Py_RETURN_FALSE;
        PyArrayObject *grad = (PyArrayObject *)obj;
        if (PyArray_TYPE(grad) != PyArray_TYPE(array) || PyArray_NDIM(grad) != ndim ||
            !PyArray_IS_C_CONTIGUOUS(grad) || !PyArray_ISALIGNED(grad) || !PyArray_ISNOTSWAPPED(grad))
            Py_RETURN_FALSE;
        for (int d = 0; d < ndim; d++)
            if (PyArray_DIM(grad, d) != PyArray_DIM(array, d))
                Py_RETURN_FALSE;
        intptr_t start = (intptr_t)PyArray_DATA(grad);
        if ((int64_t)start == apart[i])
            continue;
        intptr_t bytes = (intptr_t)PyArray_NBYTES(grad);
        if (bytes > 0 && !apart_from_ranges(start, start + bytes, written, n_ranges))
            Py_RETURN_FALSE;
        apart[i] = (int64_t)start;
    }
    Py_RETURN_TRUE;
}


/* An array's bytes, from its lowest to past its highest element (plan_tables, first_overlap). */
typedef struct {
    intptr_t start, end;
    Py_ssize_t index;
} byte_span;

static int by_start(const void *a, const void *b)
{
    const byte_span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start ? 1 : (x->index > y->index) - (x->index < y->index);
}

/* A new int64 NumPy array of shape (rows, columns), or of `rows` elements if columns is 0. */
static PyArrayObject *new_int64_table(npy_intp rows, npy_intp columns)
{
    npy_intp shape[2] = {rows, columns};
    return (PyArrayObject *)PyArray_SimpleNew(columns ? 2 : 1, shape, NPY_INT64);
}

/* plan_tables(states, arrays): the tables arrays_as_planned checks a plan against, taken now,
 * as (items, held, records, dims, ranges): `items`, for each dict of `states`, its number of
 * entries and the addresses of each key and value; `held`, a list of these keys and values,
 * for the plan to keep so that no address is reused; `records`, a row of data pointer, type
 * number and number of dimensions for each NumPy array of `arrays`; `dims`, their sizes one
 * after another; `ranges`, the bytes (start, end) of the non-empty ones, sorted by start. */
PyObject *ak_py_plan_tables(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *states, *arrays;
    if (!PyArg_ParseTuple(args, "O!O!:plan_tables", &PyList_Type, &states, &PyList_Type, &arrays))
        return NULL;
    Py_ssize_t n_states = PyList_GET_SIZE(states), n = PyList_GET_SIZE(arrays), n_entries = 0, n_dims = 0;
    for (Py_ssize_t i = 0; i < n_states; i++) {
        PyObject *state = PyList_GET_ITEM(states, i);
        if (!PyDict_Check(state))
            return PyErr_Format(PyExc_TypeError, "states[%zd] must be a dict, got %s", i, Py_TYPE(state)->tp_name);
        n_entries += PyDict_GET_SIZE(state);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *array = PyList_GET_ITEM(arrays, i);
        if (!PyArray_Check(array))
            return PyErr_Format(PyExc_TypeError, "arrays[%zd] must be a NumPy array, got %s", i, Py_TYPE(array)->tp_name);
        n_dims += PyArray_NDIM((PyArrayObject *)array);
    }
    PyArrayObject *items = new_int64_table(n_states + 2 * n_entries, 0), *records = new_int64_table(n, 3),
                  *dims = new_int64_table(n_dims, 0), *ranges = NULL;
    PyObject *held = PyList_New(2 * n_entries), *result = NULL;
    byte_span *spans = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof *spans);
    if (!items || !records || !dims || !held || !spans) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    int64_t *item = PyArray_DATA(items), *record = PyArray_DATA(records), *size = PyArray_DATA(dims);
    Py_ssize_t h = 0, m = 0;
    for (Py_ssize_t i = 0; i < n_states; i++) {
        PyObject *state = PyList_GET_ITEM(states, i), *key, *value;
        Py_ssize_t position = 0;
        *item++ = PyDict_GET_SIZE(state);
        while (PyDict_Next(state, &position, &key, &value)) {
            *item++ = (int64_t)(intptr_t)key;
            *item++ = (int64_t)(intptr_t)value;
            Py_INCREF(key);
            Py_INCREF(value);
            PyList_SET_ITEM(held, h++, key);
            PyList_SET_ITEM(held, h++, value);
        }
    }
    for (Py_ssize_t i = 0; i < n; i++, record += 3) {
        PyArrayObject *array = (PyArrayObject *)PyList_GET_ITEM(arrays, i);
        record[0] = (int64_t)(intptr_t)PyArray_DATA(array);
        record[1] = PyArray_TYPE(array);
        record[2] = PyArray_NDIM(array);
        for (int d = 0; d < PyArray_NDIM(array); d++)
            *size++ = PyArray_DIM(array, d);
        intptr_t start = (intptr_t)PyArray_DATA(array), bytes = (intptr_t)PyArray_NBYTES(array);
        if (bytes > 0)
            spans[m++] = (byte_span){start, start + bytes, i};
    }
    qsort(spans, (size_t)m, sizeof *spans, by_start);
    if (!(ranges = new_int64_table(m, 2)))
        goto done;
    int64_t *range = PyArray_DATA(ranges);
    for (Py_ssize_t k = 0; k < m; k++) {
        range[2 * k] = (int64_t)spans[k].start;
        range[2 * k + 1] = (int64_t)spans[k].end;
    }
    result = Py_BuildValue("(OOOOO)", (PyObject *)items, held, (PyObject *)records, (PyObject *)dims, (PyObject *)ranges);
done:
    PyMem_Free(spans);
    Py_XDECREF(items);
    Py_XDECREF(held);
    Py_XDECREF(records);
    Py_XDECREF(dims);
    Py_XDECREF(ranges);
    return result;
}

/* first_overlap(arrays, n_written): (i, j), i < j, for two NumPy arrays whose memory overlaps
 * where at least one of them is among the first n_written (the arrays a step writes; the
 * others it only reads, and may share memory), or None. Each array spans the bytes from its
 * lowest element to past its highest, as np.may_share_memory judges: strided arrays that
 * interleave in the same memory count as overlapping. Empty arrays span nothing. The NumPy
 * front end's full path asks this once over every parameter, state array and gradient it
 * steps, and names the pair. */
PyObject *ak_py_first_overlap(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *arrays;
    Py_ssize_t n_written;
    if (!PyArg_ParseTuple(args, "O!n:first_overlap", &PyList_Type, &arrays, &n_written))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(arrays), m = 0;
    byte_span *spans = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof *spans);
    if (!spans)
        return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *obj = PyList_GET_ITEM(arrays, i);
        if (!PyArray_Check(obj)) {
            PyErr_Format(PyExc_TypeError, "arrays[%zd] must be a NumPy array, got %s", i, Py_TYPE(obj)->tp_name);
            PyMem_Free(spans);
            return NULL;
        }
        PyArrayObject *array = (PyArrayObject *)obj;
        if (PyArray_SIZE(array) == 0)
            continue;
        intptr_t start = (intptr_t)PyArray_DATA(array), end = start + (intptr_t)PyArray_ITEMSIZE(array);
        for (int d = 0; d < PyArray_NDIM(array); d++) {
            intptr_t reach = (intptr_t)PyArray_STRIDE(array, d) * (intptr_t)(PyArray_DIM(array, d) - 1);
            if (reach < 0)
                start += reach;
            else
                end += reach;
        }
        spans[m++] = (byte_span){start, end, i};
    }
    qsort(spans, (size_t)m, sizeof *spans, by_start);
    /* Sorted by start, an array overlaps an earlier one if and only if an earlier one ends past its start. */
    intptr_t end_any = 0, end_written = 0;
    Py_ssize_t last_any = -1, last_written = -1, found = -1, other = -1;
    for (Py_ssize_t k = 0; k < m && found < 0; k++) {
        const byte_span *span = &spans[k];
        int writes = span->index < n_written;
        if (writes && last_any >= 0 && end_any > span->start)
            found = span->index, other = last_any;
        else if (!writes && last_written >= 0 && end_written > span->start)
            found = span->index, other = last_written;
        if (last_any < 0 || span->end > end_any)
            end_any = span->end, last_any = span->index;
        if (writes && (last_written < 0 || span->end > end_written))
            end_written = span->end, last_written = span->index;
    }
    PyMem_Free(spans);
    if (found < 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(nn)", found < other ? found : other, found < other ? other : found);
}
