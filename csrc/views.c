/* The buffer protocol's views of the arrays a call names, and the errors that name an array
 * (views.h). */
#include <string.h>

#include "views.h"

/* The dtype a buffer format stands for, or NULL. */
static const char *dtype_of_format(const char *format)
{
    if (!format)
        return "uint8";
    if (*format == '@' || *format == '=' || *format == '<')
        format++;
    if (!format[0] || format[1])
        return NULL;
    switch (format[0]) {
    case 'f':
        return "float32";
    case 'd':
        return "float64";
    case 'e':
        return "float16";
    case 'H':
        return "uint16";
    default:
        return NULL;
    }
}

/* "params[3]" or "states[3]['exp_avg']": an array named in an error message. */
static PyObject *array_name(const char *what, Py_ssize_t index, PyObject *key)
{
    if (key)
        return PyUnicode_FromFormat("%s[%zd][%R]", what, index, key);
    return PyUnicode_FromFormat("%s[%zd]", what, index);
}

int ak_py_take_buffer(ak_py_tensors *a, PyObject *obj, int writable, const char *dtype,
                      const char **found, const char *what, Py_ssize_t index, PyObject *key,
                      void **pointer, int64_t *numel)
{
    PyObject *name;
    if (!PyObject_CheckBuffer(obj)) {
        if ((name = array_name(what, index, key))) {
            PyErr_Format(PyExc_TypeError, "%U must be a NumPy array, got %s", name,
                         obj == Py_None ? "None" : Py_TYPE(obj)->tp_name);
            Py_DECREF(name);
        }
        return -1;
    }
    Py_buffer *view = &a->views[a->n_views];
    int flags = PyBUF_FORMAT | PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        if ((name = array_name(what, index, key))) {
            PyErr_Format(PyExc_ValueError, "%U must be a C-contiguous%s array (%S)", name,
                         writable ? ", writable" : "", value ? value : Py_None);
            Py_DECREF(name);
        }
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
        return -1;
    }
    a->n_views++;
    const char *actual = dtype_of_format(view->format);
    if (!actual || (dtype && strcmp(actual, dtype) != 0)) {
        if ((name = array_name(what, index, key))) {
            PyErr_Format(PyExc_TypeError, "%U has dtype %s, expected %s", name,
                         actual ? actual : view->format, dtype ? dtype : "float32 or float64");
            Py_DECREF(name);
        }
        return -1;
    }
    if (found)
        *found = actual;
    *pointer = view->buf;
    *numel = (int64_t)(view->len / view->itemsize);
    return 0;
}

int ak_py_numel_mismatch(int64_t numel, int64_t expected, const char *what, Py_ssize_t index,
                         PyObject *key)
{
    PyObject *name = array_name(what, index, key);
    if (name) {
        PyErr_Format(PyExc_ValueError, "%U has %lld elements but params[%zd] has %lld", name,
                     (long long)numel, index, (long long)expected);
        Py_DECREF(name);
    }
    return -1;
}
