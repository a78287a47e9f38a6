/* The arrays a call names, as the kernels read them: a NumPy array through NumPy's C API
 * directly (its pointer, size, dtype and layout are a few field reads), any other buffer object
 * through the buffer protocol (views.c). Either is held in the call's ak_py_tensors until its
 * kernel has run. The direct read is inline: update_arrays makes it for every array it is given. */
#ifndef ADAMKIT_VIEWS_H
#define ADAMKIT_VIEWS_H

#include <string.h>

#include "arguments.h"

/* Read a NumPy array that needs no checks beyond its flags directly: aligned, native byte
 * order, C-contiguous, (writable,) float32 or float64 (or exactly `dtype`). Returns 1 and
 * holds a reference when it did, 0 when the buffer protocol must be asked instead. */
static inline int take_array(ak_py_tensors *a, PyObject *obj, int writable, const char *dtype,
                             const char **found, void **pointer, int64_t *numel)
{
    if (!PyArray_Check(obj))
        return 0;
    PyArrayObject *array = (PyArrayObject *)obj;
    int type = PyArray_TYPE(array);
    const char *actual = type == NPY_FLOAT32 ? "float32" : type == NPY_FLOAT64 ? "float64" : NULL;
    int usable = actual && PyArray_IS_C_CONTIGUOUS(array) && PyArray_ISALIGNED(array) &&
                 PyArray_ISNOTSWAPPED(array) && (!writable || PyArray_ISWRITEABLE(array)) &&
                 (!dtype || strcmp(actual, dtype) == 0);
    if (!usable)
        return 0;
    Py_INCREF(obj);
    a->arrays[a->n_arrays++] = obj;
    if (found)
        *found = actual;
    *pointer = PyArray_DATA(array);
    *numel = (int64_t)PyArray_SIZE(array);
    return 1;
}

/* Hold a view of `obj` through the buffer protocol, as take_view describes (views.c). */
int ak_py_take_buffer(ak_py_tensors *a, PyObject *obj, int writable, const char *dtype,
                      const char **found, const char *what, Py_ssize_t index, PyObject *key,
                      void **pointer, int64_t *numel);

/* Hold a view of `obj` as a C-contiguous (writable) buffer of dtype `dtype`, or of any dtype
 * if `dtype` is NULL (returned in *found). The array is called what[index][key] in errors. */
static inline int take_view(ak_py_tensors *a, PyObject *obj, int writable, const char *dtype,
                            const char **found, const char *what, Py_ssize_t index, PyObject *key,
                            void **pointer, int64_t *numel)
{
    if (take_array(a, obj, writable, dtype, found, pointer, numel))
        return 0;
    return ak_py_take_buffer(a, obj, writable, dtype, found, what, index, key, pointer, numel);
}

/* Raise: what[index][key] has `numel` elements where params[index] has `expected` (views.c). */
int ak_py_numel_mismatch(int64_t numel, int64_t expected, const char *what, Py_ssize_t index,
                         PyObject *key);

static inline int check_numel(int64_t numel, int64_t expected, const char *what, Py_ssize_t index,
                              PyObject *key)
{
    return numel == expected ? 0 : ak_py_numel_mismatch(numel, expected, what, index, key);
}

#endif
