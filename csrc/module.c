/* adamkit.kernels._native: the CPython binding of ak_update (private; see native.py).
 *
 * A minimal extension module rather than ctypes, for two reasons. A model with thousands of
 * tensors must pay no more than gathering pointers: through NumPy's C API an array's pointer,
 * size, dtype and layout cost a few nanoseconds, against about 1 us through the buffer
 * protocol (which builds a format string per array) and 1-2 us through any pure-Python route
 * (ndarray.ctypes, __array_interface__); other buffer objects still work, through the buffer
 * protocol. And lists of pointers from torch's data_ptr() are read here without building
 * intermediate ctypes arrays. And setuptools
 * builds and names an extension module portably. The kernels themselves use no Python API;
 * the GIL is released while they run.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

#define NPY_NO_DEPRECATED_API NPY_1_22_API_VERSION
#include <numpy/arrayobject.h>

#include "kernels_api.h"
#include "quant8.h"
#include "row_sort.h"
#include "sparse.h"

static const char *const RULE_NAMES[AK_N_RULES] = {
    [AK_RULE_ADAM] = "adam",       [AK_RULE_ADAMAX] = "adamax",   [AK_RULE_ADADELTA] = "adadelta",
    [AK_RULE_SGD] = "sgd",         [AK_RULE_ADAGRAD] = "adagrad", [AK_RULE_RMSPROP] = "rmsprop",
};

static const char *const ISA_NAMES[AK_N_ISAS] = {
    [AK_ISA_SCALAR] = "scalar",
    [AK_ISA_AVX2] = "avx2",
    [AK_ISA_AVX512] = "avx512",
};

static const struct {
    const char *name;
    size_t offset;
} NUMBER_FIELDS[] = {
    {"lr", offsetof(ak_hyper, lr)},
    {"beta1", offsetof(ak_hyper, beta1)},
    {"beta2", offsetof(ak_hyper, beta2)},
    {"eps", offsetof(ak_hyper, eps)},
    {"weight_decay", offsetof(ak_hyper, weight_decay)},
    {"momentum", offsetof(ak_hyper, momentum)},
    {"dampening", offsetof(ak_hyper, dampening)},
    {"rho", offsetof(ak_hyper, rho)},
    {"alpha", offsetof(ak_hyper, alpha)},
    {"lr_decay", offsetof(ak_hyper, lr_decay)},
};

static const struct {
    const char *name;
    size_t offset;
} FLAG_FIELDS[] = {
    {"amsgrad", offsetof(ak_hyper, amsgrad)},
    {"maximize", offsetof(ak_hyper, maximize)},
    {"decoupled_weight_decay", offsetof(ak_hyper, decoupled_weight_decay)},
    {"eps_hat", offsetof(ak_hyper, eps_hat)},
    {"nesterov", offsetof(ak_hyper, nesterov)},
    {"centered", offsetof(ak_hyper, centered)},
};

static int lookup(const char *const *names, int count, const char *name, const char *what)
{
    for (int i = 0; i < count; i++)
        if (names[i] && strcmp(names[i], name) == 0)
            return i;
    PyErr_Format(PyExc_ValueError, "unknown %s '%s'", what, name);
    return -1;
}

/* The hyperparameters from a dict keyed by the field names; absent fields are zero. */
static int read_hyper(PyObject *dict, ak_hyper *hyper)
{
    memset(hyper, 0, sizeof *hyper);
    if (!PyDict_Check(dict)) {
        PyErr_SetString(PyExc_TypeError, "hyperparameters must be a dict");
        return -1;
    }
    for (size_t i = 0; i < sizeof NUMBER_FIELDS / sizeof *NUMBER_FIELDS; i++) {
        PyObject *value = PyDict_GetItemString(dict, NUMBER_FIELDS[i].name);
        if (!value)
            continue;
        double number = PyFloat_AsDouble(value);
        if (number == -1.0 && PyErr_Occurred())
            return -1;
        *(double *)((char *)hyper + NUMBER_FIELDS[i].offset) = number;
    }
    for (size_t i = 0; i < sizeof FLAG_FIELDS / sizeof *FLAG_FIELDS; i++) {
        PyObject *value = PyDict_GetItemString(dict, FLAG_FIELDS[i].name);
        if (!value)
            continue;
        int flag = PyObject_IsTrue(value);
        if (flag < 0)
            return -1;
        *(int *)((char *)hyper + FLAG_FIELDS[i].offset) = flag;
    }
    return 0;
}

static int check_length(Py_ssize_t length, Py_ssize_t n, const char *what)
{
    if (length != n) {
        PyErr_Format(PyExc_ValueError, "%s has %zd entries but there are %zd parameters", what,
                     length, n);
        return -1;
    }
    return 0;
}

/* Whether `obj` is a 1-d buffer of 8-byte integers (an int64 or uint64 NumPy array); if so,
 * `view` holds it. No error is set either way. */
static int int64_buffer(PyObject *obj, Py_buffer *view)
{
    if (!PyObject_CheckBuffer(obj))
        return 0;
    if (PyObject_GetBuffer(obj, view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();
        return 0;
    }
    const char *format = view->format ? view->format : "B";
    if (*format == '@' || *format == '=' || *format == '<')
        format++;
    if (view->ndim == 1 && view->itemsize == 8 && format[0] && !format[1] &&
        strchr("qQlLnN", format[0]))
        return 1;
    PyBuffer_Release(view);
    return 0;
}

/* out[i] = the i-th integer of `obj`, a sequence of ints or an int64 array; with `pointers`,
 * Python ints are read as addresses (up to the pointer width, unsigned). */
static int read_integers(PyObject *obj, Py_ssize_t n, const char *what, int64_t *out, int pointers)
{
    Py_buffer view;
    if (int64_buffer(obj, &view)) {
        int ok = check_length(view.shape ? view.shape[0] : view.len / 8, n, what) == 0;
        if (ok)
            memcpy(out, view.buf, (size_t)n * sizeof *out);
        PyBuffer_Release(&view);
        return ok ? 0 : -1;
    }
    PyObject *fast = PySequence_Fast(obj, what);
    if (!fast)
        return -1;
    if (check_length(PySequence_Fast_GET_SIZE(fast), n, what) < 0) {
        Py_DECREF(fast);
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(fast);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (pointers)
            out[i] = (int64_t)(intptr_t)PyLong_AsVoidPtr(items[i]);
        else
            out[i] = PyLong_AsLongLong(items[i]);
        if (PyErr_Occurred()) {
            PyErr_Format(PyExc_TypeError, "%s[%zd] must be an integer, got %R", what, i, items[i]);
            Py_DECREF(fast);
            return -1;
        }
    }
    Py_DECREF(fast);
    return 0;
}

/* out[i] = the i-th address in `obj` (see read_integers); `scratch` holds n integers. */
static int read_pointers(PyObject *obj, Py_ssize_t n, const char *what, int64_t *scratch,
                         void **out)
{
    if (read_integers(obj, n, what, scratch, 1) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++)
        out[i] = (void *)(intptr_t)scratch[i];
    return 0;
}

static int read_steps(PyObject *obj, Py_ssize_t n, double *out)
{
    PyObject *fast = PySequence_Fast(obj, "steps must be a sequence");
    if (!fast)
        return -1;
    if (check_length(PySequence_Fast_GET_SIZE(fast), n, "steps") < 0) {
        Py_DECREF(fast);
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(fast);
    for (Py_ssize_t i = 0; i < n; i++) {
        int bad = items[i] == Py_None;
        if (!bad) {
            out[i] = PyFloat_AsDouble(items[i]);
            bad = out[i] == -1.0 && PyErr_Occurred();
        }
        if (bad) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "steps[%zd] must be a number, got %R", i, items[i]);
            Py_DECREF(fast);
            return -1;
        }
    }
    Py_DECREF(fast);
    return 0;
}

static int read_flags(PyObject *obj, Py_ssize_t n, unsigned char *out)
{
    PyObject *fast = PySequence_Fast(obj, "created must be a sequence");
    if (!fast)
        return -1;
    if (check_length(PySequence_Fast_GET_SIZE(fast), n, "created") < 0) {
        Py_DECREF(fast);
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(fast);
    for (Py_ssize_t i = 0; i < n; i++) {
        int flag = PyObject_IsTrue(items[i]);
        if (flag < 0) {
            Py_DECREF(fast);
            return -1;
        }
        out[i] = (unsigned char)flag;
    }
    Py_DECREF(fast);
    return 0;
}

/* The per-tensor arrays of one call (allocated for n tensors), and the buffers it holds. */
typedef struct {
    int64_t *numels;
    void **params;
    const void **grads;
    void **slots[AK_MAX_SLOTS];
    void **compensation;
    int64_t *rounding_seeds;
    double *steps;
    unsigned char *created;
    Py_buffer *views; /* update_arrays: the buffers held until the kernel has run */
    Py_ssize_t n_views;
    PyObject **arrays; /* update_arrays: the NumPy arrays read directly, held likewise */
    Py_ssize_t n_arrays;
} arguments;

static int allocate(arguments *a, Py_ssize_t n, Py_ssize_t max_views)
{
    memset(a, 0, sizeof *a);
    size_t count = (size_t)(n > 0 ? n : 1);
    a->numels = PyMem_Calloc(count, sizeof *a->numels);
    a->params = PyMem_Calloc(count, sizeof *a->params);
    a->grads = PyMem_Calloc(count, sizeof *a->grads);
    for (int s = 0; s < AK_MAX_SLOTS; s++)
        a->slots[s] = PyMem_Calloc(count, sizeof *a->slots[s]);
    a->compensation = PyMem_Calloc(count, sizeof *a->compensation);
    a->rounding_seeds = PyMem_Calloc(count, sizeof *a->rounding_seeds);
    a->steps = PyMem_Calloc(count, sizeof *a->steps);
    a->created = PyMem_Calloc(count, sizeof *a->created);
    a->views = max_views ? PyMem_Calloc((size_t)max_views, sizeof *a->views) : NULL;
    a->arrays = max_views ? PyMem_Calloc((size_t)max_views, sizeof *a->arrays) : NULL;
    int ok = a->numels && a->params && a->grads && a->compensation && a->rounding_seeds && a->steps && a->created &&
             ((a->views && a->arrays) || !max_views);
    for (int s = 0; s < AK_MAX_SLOTS; s++)
        ok = ok && a->slots[s];
    if (!ok) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void release(arguments *a)
{
    for (Py_ssize_t i = 0; i < a->n_views; i++)
        PyBuffer_Release(&a->views[i]);
    for (Py_ssize_t i = 0; i < a->n_arrays; i++)
        Py_DECREF(a->arrays[i]);
    PyMem_Free(a->arrays);
    PyMem_Free(a->numels);
    PyMem_Free(a->params);
    PyMem_Free(a->grads);
    for (int s = 0; s < AK_MAX_SLOTS; s++)
        PyMem_Free(a->slots[s]);
    PyMem_Free(a->compensation);
    PyMem_Free(a->rounding_seeds);
    PyMem_Free(a->steps);
    PyMem_Free(a->created);
    PyMem_Free(a->views);
}

/* Fill the parts of `call` that both entry points share, and run it without the GIL. */
static PyObject *run(ak_call *call, arguments *a, const char *rule, PyObject *hyper,
                     const char *isa, int num_threads, PyObject *steps, PyObject *created)
{
    int rule_index = lookup(RULE_NAMES, AK_N_RULES, rule, "rule");
    int isa_index = rule_index < 0 ? -1 : lookup(ISA_NAMES, AK_N_ISAS, isa, "isa");
    if (isa_index < 0 || read_hyper(hyper, &call->hyper) < 0)
        return NULL;
    if (!ak_isa_supported((ak_isa)isa_index)) {
        PyErr_Format(PyExc_ValueError, "isa='%s' is not supported by this CPU", isa);
        return NULL;
    }
    if (num_threads < 1) {
        PyErr_Format(PyExc_ValueError, "num_threads must be >= 1, got %d", num_threads);
        return NULL;
    }
    Py_ssize_t n = (Py_ssize_t)call->n_tensors;
    if (steps == Py_None && ak_rule_uses_step((ak_rule)rule_index) && n > 0) {
        PyErr_Format(PyExc_TypeError, "steps are required by rule '%s'", rule);
        return NULL;
    }
    if (steps != Py_None && read_steps(steps, n, a->steps) < 0)
        return NULL;
    if (created != Py_None && read_flags(created, n, a->created) < 0)
        return NULL;
    call->rule = (ak_rule)rule_index;
    call->isa = (ak_isa)isa_index;
    call->num_threads = num_threads;
    call->numels = a->numels;
    call->params = a->params;
    call->grads = a->grads;
    call->steps = a->steps;
    call->created = a->created;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = ak_update(call);
    Py_END_ALLOW_THREADS
    if (status != 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

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

/* Read a NumPy array that needs no checks beyond its flags directly: aligned, native byte
 * order, C-contiguous, (writable,) float32 or float64 (or exactly `dtype`). Returns 1 and
 * holds a reference when it did, 0 when the buffer protocol must be asked instead. */
static int take_array(arguments *a, PyObject *obj, int writable, const char *dtype,
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

/* Hold a view of `obj` as a C-contiguous (writable) buffer of dtype `dtype`, or of any dtype
 * if `dtype` is NULL (returned in *found). The array is called what[index][key] in errors. */
static int take_view(arguments *a, PyObject *obj, int writable, const char *dtype,
                     const char **found, const char *what, Py_ssize_t index, PyObject *key,
                     void **pointer, int64_t *numel)
{
    if (take_array(a, obj, writable, dtype, found, pointer, numel))
        return 0;
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

static int check_numel(int64_t numel, int64_t expected, const char *what, Py_ssize_t index,
                       PyObject *key)
{
    if (numel == expected)
        return 0;
    PyObject *name = array_name(what, index, key);
    if (name) {
        PyErr_Format(PyExc_ValueError, "%U has %lld elements but params[%zd] has %lld", name,
                     (long long)numel, index, (long long)expected);
        Py_DECREF(name);
    }
    return -1;
}

/* Loops over thousands of torch tensors (or dicts) find their objects cold: after a step's
 * kernel has streamed the model through the cache, reading a tensor's metadata is a chain of
 * dependent cache misses (the Python object, then the tensor implementation it points to,
 * then that one's storage). At item i such a loop prefetches the object of item
 * i + 2 * PREFETCH_DISTANCE, and for item i + PREFETCH_DISTANCE, whose object has arrived by
 * then, the memory that the first PREFETCH_WORDS words after its header point to (a tensor's
 * implementation; a dict's keys and values). The words read lie inside the object (its type's
 * tp_basicsize covers them), and a prefetch never faults nor changes any value, whatever the
 * words hold: this only hints the hardware, so the misses overlap instead of queueing. */
#define PREFETCH_DISTANCE 8
#define PREFETCH_WORDS 4
#define PREFETCH_LINES 3

static inline void prefetch_line_block(const char *address)
{
    for (int line = 0; line < PREFETCH_LINES; line++)
        __builtin_prefetch(address + 64 * line);
}

static inline void prefetch_items_ahead(PyObject *list, Py_ssize_t i)
{
    Py_ssize_t n = PyList_GET_SIZE(list);
    if (i + 2 * PREFETCH_DISTANCE < n)
        prefetch_line_block((const char *)PyList_GET_ITEM(list, i + 2 * PREFETCH_DISTANCE));
    if (i + PREFETCH_DISTANCE < n) {
        PyObject *item = PyList_GET_ITEM(list, i + PREFETCH_DISTANCE);
        Py_ssize_t words = (Py_TYPE(item)->tp_basicsize - (Py_ssize_t)sizeof(PyObject)) / (Py_ssize_t)sizeof(void *);
        const char *const *slots = (const char *const *)((const char *)item + sizeof(PyObject));
        for (Py_ssize_t k = 0; k < words && k < PREFETCH_WORDS; k++)
            prefetch_line_block(slots[k]);
    }
}

/* update_arrays(rule, hyper, isa, num_threads, params, grads, slots, slot_names, steps, created)
 *
 * params, grads: lists of float32 or float64 NumPy arrays; slots: a 3-tuple of lists of
 * arrays (or None for an inactive slot) named by slot_names. */
static PyObject *update_arrays(PyObject *self, PyObject *args)
{
    (void)self;
    const char *rule, *isa;
    int num_threads;
    PyObject *hyper, *params, *grads, *slots, *slot_names, *steps, *created;
    if (!PyArg_ParseTuple(args, "sOsiO!O!O!O!OO:update_arrays", &rule, &hyper, &isa, &num_threads,
                          &PyList_Type, &params, &PyList_Type, &grads, &PyTuple_Type, &slots,
                          &PyTuple_Type, &slot_names, &steps, &created))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(params);
    if (check_length(PyList_GET_SIZE(grads), n, "grads") < 0)
        return NULL;
    if (PyTuple_GET_SIZE(slots) != AK_MAX_SLOTS || PyTuple_GET_SIZE(slot_names) != AK_MAX_SLOTS) {
        PyErr_SetString(PyExc_ValueError, "slots and slot_names must be 3-tuples");
        return NULL;
    }
    for (int s = 0; s < AK_MAX_SLOTS; s++) {
        PyObject *column = PyTuple_GET_ITEM(slots, s);
        if (column == Py_None)
            continue;
        if (!PyList_Check(column)) {
            PyErr_SetString(PyExc_TypeError, "each slot must be a list or None");
            return NULL;
        }
        if (check_length(PyList_GET_SIZE(column), n, "states") < 0)
            return NULL;
    }
    arguments a;
    ak_call call = {.n_tensors = n, .layout = AK_LAYOUT_F32};
    const char *dtype = NULL;
    PyObject *result = NULL;
    if (allocate(&a, n, n * (2 + AK_MAX_SLOTS)) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t numel;
        prefetch_items_ahead(params, i);
        prefetch_items_ahead(grads, i);
        for (int s = 0; s < AK_MAX_SLOTS; s++)
            if (PyTuple_GET_ITEM(slots, s) != Py_None)
                prefetch_items_ahead(PyTuple_GET_ITEM(slots, s), i);
        if (take_view(&a, PyList_GET_ITEM(params, i), 1, dtype, &dtype, "params", i, NULL,
                      &a.params[i], &a.numels[i]) < 0)
            goto done;
        if (strcmp(dtype, "float32") != 0 && strcmp(dtype, "float64") != 0) {
            PyErr_Format(PyExc_TypeError,
                         "params[%zd] has dtype %s: the native kernels take float32 or float64 "
                         "arrays (bfloat16 through update_pointers)",
                         i, dtype);
            goto done;
        }
        if (take_view(&a, PyList_GET_ITEM(grads, i), 0, dtype, NULL, "grads", i, NULL,
                      (void **)&a.grads[i], &numel) < 0 ||
            check_numel(numel, a.numels[i], "grads", i, NULL) < 0)
            goto done;
        for (int s = 0; s < AK_MAX_SLOTS; s++) {
            PyObject *column = PyTuple_GET_ITEM(slots, s);
            if (column == Py_None)
                continue;
            PyObject *key = PyTuple_GET_ITEM(slot_names, s);
            if (take_view(&a, PyList_GET_ITEM(column, i), 1, dtype, NULL, "states", i, key,
                          &a.slots[s][i], &numel) < 0 ||
                check_numel(numel, a.numels[i], "states", i, key) < 0)
                goto done;
        }
    }
    call.layout = dtype && strcmp(dtype, "float64") == 0 ? AK_LAYOUT_F64 : AK_LAYOUT_F32;
    for (int s = 0; s < AK_MAX_SLOTS; s++)
        call.slots[s] = PyTuple_GET_ITEM(slots, s) == Py_None ? NULL : a.slots[s];
    result = run(&call, &a, rule, hyper, isa, num_threads, steps, created);
done:
    release(&a);
    return result;
}

static int layout_of(const char *dtype, const char *state_dtype, ak_layout *layout)
{
    if (strcmp(dtype, "float32") == 0 && strcmp(state_dtype, "float32") == 0)
        *layout = AK_LAYOUT_F32;
    else if (strcmp(dtype, "float64") == 0 && strcmp(state_dtype, "float64") == 0)
        *layout = AK_LAYOUT_F64;
    else if (strcmp(dtype, "bfloat16") == 0 && strcmp(state_dtype, "float32") == 0)
        *layout = AK_LAYOUT_BF16_F32;
    else if (strcmp(dtype, "bfloat16") == 0 && strcmp(state_dtype, "bfloat16") == 0)
        *layout = AK_LAYOUT_BF16;
    else if (strcmp(dtype, "float32") == 0 && strcmp(state_dtype, "bfloat16") == 0)
        *layout = AK_LAYOUT_F32_BF16;
    else {
        PyErr_Format(PyExc_ValueError,
                     "dtype %s with state_dtype %s is not supported (float32/float32, "
                     "float64/float64, bfloat16/float32, bfloat16/bfloat16 or float32/bfloat16)",
                     dtype, state_dtype);
        return -1;
    }
    return 0;
}

/* update_pointers(rule, hyper, isa, num_threads, dtype, state_dtype, numels, params, grads,
 *                 slots, steps, created, compensation, rounding_seeds)
 *
 * numels, params, grads: sequences of ints (or int64 arrays); slots: a 3-tuple of such
 * sequences of pointers, or None for an inactive slot; compensation: None, or (bfloat16
 * parameters only) a sequence of pointers to each parameter's Kahan compensation buffer;
 * rounding_seeds: for float32 parameters with bfloat16 state (stochastic rounding), one
 * non-negative integer per tensor, else None. */
static PyObject *update_pointers(PyObject *self, PyObject *args)
{
    (void)self;
    const char *rule, *isa, *dtype, *state_dtype;
    int num_threads;
    PyObject *hyper, *numels, *params, *grads, *slots, *steps, *created, *compensation, *rounding_seeds;
    if (!PyArg_ParseTuple(args, "sOsissOOOO!OOOO:update_pointers", &rule, &hyper, &isa,
                          &num_threads, &dtype, &state_dtype, &numels, &params, &grads,
                          &PyTuple_Type, &slots, &steps, &created, &compensation, &rounding_seeds))
        return NULL;
    ak_call call = {0};
    if (layout_of(dtype, state_dtype, &call.layout) < 0)
        return NULL;
    if ((rounding_seeds != Py_None) != (call.layout == AK_LAYOUT_F32_BF16)) {
        PyErr_Format(PyExc_ValueError,
                     "rounding_seeds are for float32 parameters with bfloat16 state, and those need "
                     "them; got dtype %s, state_dtype %s and rounding_seeds %s",
                     dtype, state_dtype, rounding_seeds == Py_None ? "None" : "given");
        return NULL;
    }
    if (compensation != Py_None && strcmp(dtype, "bfloat16") != 0) {
        PyErr_Format(PyExc_ValueError,
                     "compensation is only for bfloat16 parameters (their float32 results are "
                     "rounded), got dtype %s",
                     dtype);
        return NULL;
    }
    if (PyTuple_GET_SIZE(slots) != AK_MAX_SLOTS) {
        PyErr_SetString(PyExc_ValueError, "slots must be a 3-tuple");
        return NULL;
    }
    Py_ssize_t n = PyObject_Length(numels);
    if (n < 0)
        return NULL;
    arguments a;
    int64_t *scratch = NULL;
    PyObject *result = NULL;
    if (allocate(&a, n, 0) < 0)
        goto done;
    call.n_tensors = n;
    scratch = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof *scratch);
    if (!scratch) {
        PyErr_NoMemory();
        goto done;
    }
    if (read_integers(numels, n, "numels", a.numels, 0) < 0 ||
        read_pointers(params, n, "param_ptrs", scratch, a.params) < 0 ||
        read_pointers(grads, n, "grad_ptrs", scratch, (void **)a.grads) < 0)
        goto done;
    for (int s = 0; s < AK_MAX_SLOTS; s++) {
        PyObject *column = PyTuple_GET_ITEM(slots, s);
        if (column == Py_None)
            continue;
        if (read_pointers(column, n, "state_ptrs", scratch, a.slots[s]) < 0)
            goto done;
        call.slots[s] = a.slots[s];
    }
    if (compensation != Py_None) {
        if (read_pointers(compensation, n, "compensation_ptrs", scratch, a.compensation) < 0)
            goto done;
        call.compensation = a.compensation;
    }
    if (rounding_seeds != Py_None) {
        if (read_integers(rounding_seeds, n, "rounding_seeds", a.rounding_seeds, 0) < 0)
            goto done;
        for (Py_ssize_t i = 0; i < n; i++)
            if (a.rounding_seeds[i] < 0) {
                PyErr_Format(PyExc_ValueError, "rounding_seeds[%zd] must be >= 0, got %lld", i,
                             (long long)a.rounding_seeds[i]);
                goto done;
            }
        call.rounding_seeds = (const uint64_t *)a.rounding_seeds;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *missing = NULL;
        if (a.numels[i] < 0) {
            PyErr_Format(PyExc_ValueError, "numels[%zd] must be >= 0, got %lld", i,
                         (long long)a.numels[i]);
            goto done;
        }
        if (a.numels[i] == 0)
            continue;
        if (!a.params[i])
            missing = "param_ptrs";
        else if (!a.grads[i])
            missing = "grad_ptrs";
        for (int s = 0; s < AK_MAX_SLOTS && !missing; s++)
            if (call.slots[s] && !call.slots[s][i])
                missing = "state_ptrs";
        if (!missing && call.compensation && !call.compensation[i])
            missing = "compensation_ptrs";
        if (missing) {
            PyErr_Format(PyExc_ValueError, "%s[%zd] is a null pointer for %lld elements", missing,
                         i, (long long)a.numels[i]);
            goto done;
        }
    }
    result = run(&call, &a, rule, hyper, isa, num_threads, steps, created);
done:
    PyMem_Free(scratch);
    release(&a);
    return result;
}

static PyObject *isas(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    PyObject *names = PyList_New(0);
    for (int isa = AK_N_ISAS - 1; names && isa >= 0; isa--) {
        if (!ak_isa_supported((ak_isa)isa))
            continue;
        PyObject *name = PyUnicode_FromString(ISA_NAMES[isa]);
        if (!name || PyList_Append(names, name) < 0) {
            Py_XDECREF(name);
            Py_CLEAR(names);
            break;
        }
        Py_DECREF(name);
    }
    PyObject *result = names ? PyList_AsTuple(names) : NULL;
    Py_XDECREF(names);
    return result;
}

static PyObject *default_threads(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyLong_FromLong(ak_default_threads());
}

/* An address from a Python int, or NULL for None. */
static int read_address(PyObject *obj, const char *what, void **out)
{
    *out = NULL;
    if (obj == Py_None)
        return 0;
    *out = PyLong_AsVoidPtr(obj);
    if (PyErr_Occurred()) {
        PyErr_Format(PyExc_TypeError, "%s must be an address (int) or None, got %R", what, obj);
        return -1;
    }
    return 0;
}

/* sparse_update(rule, hyper, isa, num_threads, dtype, n_rows, row_numel, n_entries, indices,
 *               param, values, slots, step, row_steps)
 *
 * The lazy sparse step of one tensor (see sparse.h); dtype is float32 or float64, for the
 * parameter and its state. indices, param, values and row_steps are addresses (row_steps may
 * be None); slots is a 3-tuple of addresses or None. An index outside [0, n_rows) raises
 * ValueError and changes nothing. The caller keeps the memory alive. */
static PyObject *sparse_update(PyObject *self, PyObject *args)
{
    (void)self;
    const char *rule, *isa, *dtype;
    int num_threads;
    long long n_rows, row_numel, n_entries;
    double step;
    PyObject *hyper, *indices, *param, *values, *slots, *row_steps;
    if (!PyArg_ParseTuple(args, "sOsisLLLOOOO!dO:sparse_update", &rule, &hyper, &isa,
                          &num_threads, &dtype, &n_rows, &row_numel, &n_entries, &indices,
                          &param, &values, &PyTuple_Type, &slots, &step, &row_steps))
        return NULL;
    ak_sparse_call call = {
        .n_rows = n_rows, .row_numel = row_numel, .n_entries = n_entries, .step = step};
    int rule_index = lookup(RULE_NAMES, AK_N_RULES, rule, "rule");
    int isa_index = rule_index < 0 ? -1 : lookup(ISA_NAMES, AK_N_ISAS, isa, "isa");
    if (isa_index < 0 || read_hyper(hyper, &call.hyper) < 0 ||
        layout_of(dtype, dtype, &call.layout) < 0)
        return NULL;
    if (call.layout != AK_LAYOUT_F32 && call.layout != AK_LAYOUT_F64) {
        PyErr_Format(PyExc_ValueError, "sparse_update takes float32 or float64, got %s", dtype);
        return NULL;
    }
    if (!ak_isa_supported((ak_isa)isa_index)) {
        PyErr_Format(PyExc_ValueError, "isa='%s' is not supported by this CPU", isa);
        return NULL;
    }
    if (num_threads < 1 || n_rows < 0 || row_numel < 0 || n_entries < 0) {
        PyErr_Format(PyExc_ValueError,
                     "num_threads must be >= 1 and n_rows, row_numel, n_entries >= 0, "
                     "got %d, %lld, %lld, %lld",
                     num_threads, n_rows, row_numel, n_entries);
        return NULL;
    }
    if (PyTuple_GET_SIZE(slots) != AK_MAX_SLOTS) {
        PyErr_SetString(PyExc_ValueError, "slots must be a 3-tuple");
        return NULL;
    }
    void *indices_address, *values_address, *row_steps_address;
    if (read_address(indices, "indices", &indices_address) < 0 ||
        read_address(param, "param", &call.param) < 0 ||
        read_address(values, "values", &values_address) < 0 ||
        read_address(row_steps, "row_steps", &row_steps_address) < 0)
        return NULL;
    for (int s = 0; s < AK_MAX_SLOTS; s++)
        if (read_address(PyTuple_GET_ITEM(slots, s), "slots", &call.slots[s]) < 0)
            return NULL;
    if (n_entries > 0 && (!indices_address || (row_numel > 0 && (!call.param || !values_address)))) {
        PyErr_SetString(PyExc_ValueError, "indices, param and values must not be null");
        return NULL;
    }
    call.rule = (ak_rule)rule_index;
    call.isa = (ak_isa)isa_index;
    call.num_threads = num_threads;
    call.indices = indices_address;
    call.values = values_address;
    call.row_steps = row_steps_address;
    ak_sparse_status status;
    int64_t bad_entry = -1;
    Py_BEGIN_ALLOW_THREADS
    status = ak_sparse_update(&call, &bad_entry);
    Py_END_ALLOW_THREADS
    if (status == AK_SPARSE_BAD_INDEX) {
        PyErr_Format(PyExc_ValueError, "indices must lie in [0, %lld), got indices[%lld] = %lld",
                     n_rows, (long long)bad_entry, (long long)call.indices[bad_entry]);
        return NULL;
    }
    if (status == AK_SPARSE_NO_MEMORY)
        return PyErr_NoMemory();
    if (status != AK_SPARSE_OK) {
        PyErr_SetString(PyExc_ValueError, "sparse_update: unsupported ISA or dtype");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* first_row_out_of_range(indices, n_entries, n_rows): the position of the first of the
 * n_entries int64 row indices at address `indices` outside [0, n_rows), or -1; one pass. */
static PyObject *first_row_out_of_range(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *indices;
    long long n_entries, n_rows;
    if (!PyArg_ParseTuple(args, "OLL:first_row_out_of_range", &indices, &n_entries, &n_rows))
        return NULL;
    void *address;
    if (read_address(indices, "indices", &address) < 0)
        return NULL;
    if (n_entries > 0 && !address) {
        PyErr_SetString(PyExc_ValueError, "indices must not be null");
        return NULL;
    }
    int sorted;
    return PyLong_FromLongLong(ak_check_rows(address, n_entries < 0 ? 0 : n_entries, n_rows, &sorted));
}

/* quant8_update(rule, hyper, isa, num_threads, numels, row_numels, params, grads, codes,
 *               absmax, steps)
 *
 * A rule on 8-bit block-wise state (quant8.h). numels, row_numels (the elements per row of
 * the blocks), params, grads and steps have one entry per tensor, as sequences of ints (or
 * int64 arrays); codes and absmax are 3-tuples, one entry per state slot of the rule: the
 * slot's pointers, one per tensor, or None for a slot the rule does not use here. */
static PyObject *quant8_update(PyObject *self, PyObject *args)
{
    (void)self;
    const char *rule, *isa;
    int num_threads;
    PyObject *hyper, *numels, *row_numels, *params, *grads, *codes, *absmax, *steps;
    if (!PyArg_ParseTuple(args, "sOsiOOOOO!O!O:quant8_update", &rule, &hyper, &isa, &num_threads,
                          &numels, &row_numels, &params, &grads, &PyTuple_Type, &codes,
                          &PyTuple_Type, &absmax, &steps))
        return NULL;
    ak_q8_call call = {.num_threads = num_threads};
    int rule_index = lookup(RULE_NAMES, AK_N_RULES, rule, "rule");
    int isa_index = rule_index < 0 ? -1 : lookup(ISA_NAMES, AK_N_ISAS, isa, "isa");
    if (isa_index < 0 || read_hyper(hyper, &call.hyper) < 0)
        return NULL;
    int used = ak_q8_slots((ak_rule)rule_index, &call.hyper);
    if (used == 0) {
        PyErr_Format(PyExc_ValueError, "rule '%s' has no 8-bit state", rule);
        return NULL;
    }
    if (!ak_isa_supported((ak_isa)isa_index)) {
        PyErr_Format(PyExc_ValueError, "isa='%s' is not supported by this CPU", isa);
        return NULL;
    }
    if (num_threads < 1) {
        PyErr_Format(PyExc_ValueError, "num_threads must be >= 1, got %d", num_threads);
        return NULL;
    }
    if (PyTuple_GET_SIZE(codes) != AK_MAX_SLOTS || PyTuple_GET_SIZE(absmax) != AK_MAX_SLOTS) {
        PyErr_SetString(PyExc_ValueError, "codes and absmax must be 3-tuples");
        return NULL;
    }
    for (int s = 0; s < AK_MAX_SLOTS; s++)
        if ((PyTuple_GET_ITEM(codes, s) == Py_None) != (s >= used) ||
            (PyTuple_GET_ITEM(absmax, s) == Py_None) != (s >= used)) {
            PyErr_Format(PyExc_ValueError, "codes[%d] and absmax[%d] must be %s for rule '%s'%s", s,
                         s, s < used ? "given" : "None", rule,
                         call.hyper.amsgrad ? " with amsgrad" : "");
            return NULL;
        }
    Py_ssize_t n = PyObject_Length(numels);
    if (n < 0)
        return NULL;
    size_t count = (size_t)(n > 0 ? n : 1);
    arguments a;
    int64_t *row_numel = NULL, *scratch = NULL;
    void **scales[AK_MAX_SLOTS] = {0};
    PyObject *result = NULL;
    if (allocate(&a, n, 0) < 0)
        goto done;
    row_numel = PyMem_Calloc(count, sizeof *row_numel);
    scratch = PyMem_Calloc(count, sizeof *scratch);
    int ok = row_numel && scratch;
    for (int s = 0; s < used; s++)
        ok = ok && (scales[s] = PyMem_Calloc(count, sizeof(void *)));
    if (!ok) {
        PyErr_NoMemory();
        goto done;
    }
    if (read_integers(numels, n, "numels", a.numels, 0) < 0 ||
        read_integers(row_numels, n, "row_numels", row_numel, 0) < 0 ||
        read_pointers(params, n, "param_ptrs", scratch, a.params) < 0 ||
        read_pointers(grads, n, "grad_ptrs", scratch, (void **)a.grads) < 0 ||
        read_steps(steps, n, a.steps) < 0)
        goto done;
    for (int s = 0; s < used; s++) {
        if (read_pointers(PyTuple_GET_ITEM(codes, s), n, "code_ptrs", scratch, a.slots[s]) < 0 ||
            read_pointers(PyTuple_GET_ITEM(absmax, s), n, "absmax_ptrs", scratch, scales[s]) < 0)
            goto done;
        call.codes[s] = a.slots[s];
        call.absmax[s] = (float *const *)scales[s];
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (a.numels[i] < 0) {
            PyErr_Format(PyExc_ValueError, "numels[%zd] must be >= 0, got %lld", i,
                         (long long)a.numels[i]);
            goto done;
        }
        if (a.numels[i] == 0)
            continue;
        if (row_numel[i] < 1 || a.numels[i] % row_numel[i] != 0) {
            PyErr_Format(PyExc_ValueError,
                         "row_numels[%zd] must divide numels[%zd] = %lld into rows, got %lld", i,
                         i, (long long)a.numels[i], (long long)row_numel[i]);
            goto done;
        }
        const char *missing = !a.params[i] ? "param_ptrs" : !a.grads[i] ? "grad_ptrs" : NULL;
        for (int s = 0; s < used && !missing; s++)
            missing = !a.slots[s][i] ? "code_ptrs" : !scales[s][i] ? "absmax_ptrs" : NULL;
        if (missing) {
            PyErr_Format(PyExc_ValueError, "%s[%zd] is a null pointer for %lld elements", missing,
                         i, (long long)a.numels[i]);
            goto done;
        }
    }
    call.rule = (ak_rule)rule_index;
    call.isa = (ak_isa)isa_index;
    call.n_tensors = n;
    call.numels = a.numels;
    call.row_numels = row_numel;
    call.params = (float *const *)a.params;
    call.grads = (const float *const *)a.grads;
    call.steps = a.steps;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = ak_q8_update(&call);
    Py_END_ALLOW_THREADS
    if (status != 0)
        PyErr_NoMemory();
    else
        result = Py_None, Py_INCREF(result);
done:
    release(&a);
    PyMem_Free(row_numel);
    PyMem_Free(scratch);
    for (int s = 0; s < AK_MAX_SLOTS; s++)
        PyMem_Free(scales[s]);
    return result;
}

/* same_objects(a, b): whether two lists hold the very same objects, in the same order. It lets
 * the torch front end re-check a cached step plan over thousands of tensors without calling
 * their __eq__ or __hash__. */
static PyObject *same_objects(PyObject *self, PyObject *args)
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
static PyObject *same_items(PyObject *self, PyObject *args)
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
 * so each lookup passes that hash instead of calling __hash__, a Python function for tensors:
 * over 10,000 parameters that saves about 2 ms a step. */
static PyObject *same_entries(PyObject *self, PyObject *args)
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

/* data_pointers(arrays): each NumPy array's data pointer, as an int64 array. The NumPy front
 * end's cached step reads its gradients' pointers this way (after arrays_fit has checked them),
 * where ndarray.ctypes.data costs about a microsecond per array. */
static PyObject *data_pointers(PyObject *self, PyObject *args)
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
static PyObject *arrays_fit(PyObject *self, PyObject *args)
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
static PyObject *arrays_as_planned(PyObject *self, PyObject *args)
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
static PyObject *plan_tables(PyObject *self, PyObject *args)
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
static PyObject *first_overlap(PyObject *self, PyObject *args)
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

/* attributes(objects, name): [getattr(o, name) for o in objects], prefetching ahead. */
static PyObject *attributes(PyObject *self, PyObject *args)
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
static PyObject *checked_pointers(PyObject *self, PyObject *args)
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
static PyObject *first_in_ranges(PyObject *self, PyObject *args)
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

static PyMethodDef methods[] = {
    {"update_arrays", update_arrays, METH_VARARGS, "Apply a rule in place to lists of NumPy arrays."},
    {"update_pointers", update_pointers, METH_VARARGS, "Apply a rule in place given data pointers."},
    {"isas", isas, METH_NOARGS, "The instruction sets this CPU can run, best first."},
    {"default_threads", default_threads, METH_NOARGS, "OpenMP's default thread count."},
    {"same_objects", same_objects, METH_VARARGS, "Whether two lists hold the same objects in order."},
    {"data_pointers", data_pointers, METH_VARARGS, "NumPy arrays' data pointers, as an int64 array."},
    {"same_items", same_items, METH_VARARGS, "Whether dicts[i][key] is expected[i] for every i."},
    {"same_entries", same_entries, METH_VARARGS, "Whether container[keys[i]] is expected[i] for every i."},
    {"attributes", attributes, METH_VARARGS, "An attribute of each object of a list, prefetching ahead."},
    {"checked_pointers", checked_pointers, METH_VARARGS, "Tensors' data pointers, if their dtype, layout and sizes fit."},
    {"first_in_ranges", first_in_ranges, METH_VARARGS, "The first byte range that overlaps sorted disjoint ranges, or -1."},
    {"arrays_fit", arrays_fit, METH_VARARGS, "Whether NumPy parameters and gradients fit the kernels as they are."},
    {"arrays_as_planned", arrays_as_planned, METH_VARARGS, "Whether a NumPy plan's arrays are as planned and its gradients fit."},
    {"plan_tables", plan_tables, METH_VARARGS, "The tables arrays_as_planned checks a plan against, taken now."},
    {"first_overlap", first_overlap, METH_VARARGS, "Two NumPy arrays whose memory overlaps, one of them written, or None."},
    {"quant8_update", quant8_update, METH_VARARGS, "A rule in place on 8-bit block-wise state."},
    {"sparse_update", sparse_update, METH_VARARGS, "The lazy sparse step of one tensor's touched rows."},
    {"first_row_out_of_range", first_row_out_of_range, METH_VARARGS, "The first row index outside [0, n_rows), or -1."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_native",
    .m_doc = "adamkit's fused multi-tensor CPU kernels.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__native(void)
{
    import_array();
    return PyModule_Create(&module);
}
