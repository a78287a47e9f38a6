/* Reading the arguments of adamkit.kernels._native's functions (arguments.h). */
#include <stddef.h>
#include <string.h>

#include "arguments.h"
#include "entry_points.h"

#define AK_RULE_NAME_ENTRY(upper, lower, counts, unused) [AK_RULE_##upper] = #lower,
static const char *const RULE_NAMES[AK_N_RULES] = {AK_RULES(AK_RULE_NAME_ENTRY, _)};
#undef AK_RULE_NAME_ENTRY

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
    {"momentum_decay", offsetof(ak_hyper, momentum_decay)},
    {"beta3", offsetof(ak_hyper, beta3)},
    {"t_alpha_beta3", offsetof(ak_hyper, t_alpha_beta3)},
    {"trust_clip", offsetof(ak_hyper, trust_clip)},
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
    {"rectify", offsetof(ak_hyper, rectify)},
    {"cautious", offsetof(ak_hyper, cautious)},
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

int ak_py_read_call(const char *rule, PyObject *hyper, const char *isa, int num_threads,
                    ak_rule *rule_index, ak_isa *isa_index, ak_hyper *hyperparameters)
{
    int found_rule = lookup(RULE_NAMES, AK_N_RULES, rule, "rule");
    if (found_rule < 0 || ak_py_read_isa(isa, num_threads, isa_index) < 0 || read_hyper(hyper, hyperparameters) < 0)
        return -1;
    *rule_index = (ak_rule)found_rule;
    return 0;
}

int ak_py_layout_of(const char *dtype, const char *state_dtype, ak_layout *layout)
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

int ak_py_check_length(Py_ssize_t length, Py_ssize_t n, const char *what)
{
    if (length != n) {
        PyErr_Format(PyExc_ValueError, "%s has %zd entries but there are %zd parameters", what,
                     length, n);
        return -1;
    }
    return 0;
}

int ak_py_check_nonnegative(const int64_t *values, Py_ssize_t n, const char *what)
{
    for (Py_ssize_t i = 0; i < n; i++)
        if (values[i] < 0) {
            PyErr_Format(PyExc_ValueError, "%s[%zd] must be >= 0, got %lld", what, i,
                         (long long)values[i]);
            return -1;
        }
    return 0;
}

int ak_py_null_pointer(const char *what, Py_ssize_t index, int64_t numel)
{
    PyErr_Format(PyExc_ValueError, "%s[%zd] is a null pointer for %lld elements", what, index,
                 (long long)numel);
    return -1;
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

int ak_py_read_integers(PyObject *obj, Py_ssize_t n, const char *what, int64_t *out, int pointers)
{
    Py_buffer view;
    if (int64_buffer(obj, &view)) {
        int ok = ak_py_check_length(view.shape ? view.shape[0] : view.len / 8, n, what) == 0;
        if (ok)
            memcpy(out, view.buf, (size_t)n * sizeof *out);
        PyBuffer_Release(&view);
        return ok ? 0 : -1;
    }
    PyObject *fast = PySequence_Fast(obj, what);
    if (!fast)
        return -1;
    if (ak_py_check_length(PySequence_Fast_GET_SIZE(fast), n, what) < 0) {
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

int ak_py_read_pointers(PyObject *obj, Py_ssize_t n, const char *what, int64_t *scratch, void **out)
{
    if (ak_py_read_integers(obj, n, what, scratch, 1) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++)
        out[i] = (void *)(intptr_t)scratch[i];
    return 0;
}

int ak_py_read_steps(PyObject *obj, Py_ssize_t n, double *out)
{
    PyObject *fast = PySequence_Fast(obj, "steps must be a sequence");
    if (!fast)
        return -1;
    if (ak_py_check_length(PySequence_Fast_GET_SIZE(fast), n, "steps") < 0) {
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

int ak_py_read_tuples(PyObject *obj, Py_ssize_t n, int width, double *const *columns, const char *form)
{
    PyObject *fast = PySequence_Fast(obj, "steps must be a sequence");
    if (!fast)
        return -1;
    if (ak_py_check_length(PySequence_Fast_GET_SIZE(fast), n, "steps") < 0) {
        Py_DECREF(fast);
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(fast);
    for (Py_ssize_t i = 0; i < n; i++) {
        int bad = !PyTuple_Check(items[i]) || PyTuple_GET_SIZE(items[i]) != width;
        for (int j = 0; j < width && !bad; j++) {
            columns[j][i] = PyFloat_AsDouble(PyTuple_GET_ITEM(items[i], j));
            bad = columns[j][i] == -1.0 && PyErr_Occurred();
        }
        if (bad) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "steps[%zd] must be %s, got %R", i, form, items[i]);
            Py_DECREF(fast);
            return -1;
        }
    }
    Py_DECREF(fast);
    return 0;
}

int ak_py_read_counts(PyObject *obj, Py_ssize_t n, double *steps, double *mu_products)
{
    double *const columns[2] = {steps, mu_products};
    return ak_py_read_tuples(obj, n, 2, columns, "a pair (step, mu_product) of numbers");
}

int ak_py_read_flags(PyObject *obj, Py_ssize_t n, unsigned char *out)
{
    PyObject *fast = PySequence_Fast(obj, "created must be a sequence");
    if (!fast)
        return -1;
    if (ak_py_check_length(PySequence_Fast_GET_SIZE(fast), n, "created") < 0) {
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

int ak_py_read_address(PyObject *obj, const char *what, void **out)
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

int ak_py_allocate(ak_py_tensors *a, Py_ssize_t n, Py_ssize_t max_views)
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
    a->scratch = PyMem_Calloc(count, sizeof *a->scratch);
    a->mu_products = PyMem_Calloc(count, sizeof *a->mu_products);
    a->scheduled_lrs = PyMem_Calloc(count, sizeof *a->scheduled_lrs);
    a->averaging_weights = PyMem_Calloc(count, sizeof *a->averaging_weights);
    a->views = max_views ? PyMem_Calloc((size_t)max_views, sizeof *a->views) : NULL;
    a->arrays = max_views ? PyMem_Calloc((size_t)max_views, sizeof *a->arrays) : NULL;
    int ok = a->numels && a->params && a->grads && a->compensation && a->rounding_seeds &&
             a->steps && a->created && a->scratch && a->mu_products && a->scheduled_lrs && a->averaging_weights &&
             ((a->views && a->arrays) || !max_views);
    for (int s = 0; s < AK_MAX_SLOTS; s++)
        ok = ok && a->slots[s];
    if (!ok) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

void ak_py_release(ak_py_tensors *a)
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
    PyMem_Free(a->scratch);
    PyMem_Free(a->mu_products);
    PyMem_Free(a->scheduled_lrs);
    PyMem_Free(a->averaging_weights);
    PyMem_Free(a->views);
}

PyObject *ak_py_isas(PyObject *self, PyObject *unused)
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

PyObject *ak_py_default_threads(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyLong_FromLong(ak_default_threads());
}

int ak_py_read_isa(const char *isa, int num_threads, ak_isa *isa_index)
{
    int found = lookup(ISA_NAMES, AK_N_ISAS, isa, "isa");
    if (found < 0)
        return -1;
    if (!ak_isa_supported((ak_isa)found)) {
        PyErr_Format(PyExc_ValueError, "isa='%s' is not supported by this CPU", isa);
        return -1;
    }
    if (num_threads < 1) {
        PyErr_Format(PyExc_ValueError, "num_threads must be >= 1, got %d", num_threads);
        return -1;
    }
    *isa_index = (ak_isa)found;
    return 0;
}
