/* sparse_update and first_row_out_of_range: the lazy sparse step of one tensor (sparse.h) and
 * its check of the row indices (row_sort.h). */
#include "arguments.h"
#include "entry_points.h"
#include "row_sort.h"
#include "sparse.h"

/* sparse_update(rule, hyper, isa, num_threads, dtype, n_rows, row_numel, n_entries, indices,
 *               param, values, slots, step, row_steps)
 *
 * The lazy sparse step of one tensor (see sparse.h); dtype is float32 or float64, for the
 * parameter and its state. indices, param, values and row_steps are addresses (row_steps may
 * be None); slots is a 3-tuple of addresses or None. An index outside [0, n_rows) raises
 * ValueError and changes nothing. The caller keeps the memory alive. */
/* The tensor's step: a number, or for NAdam the pair (step, mu_product). */
static int read_step(PyObject *step, ak_rule rule, ak_sparse_call *call)
{
    PyObject *one = PyTuple_Pack(1, step);
    if (!one)
        return -1;
    int status = ak_rule_takes_mu_product(rule) ? ak_py_read_counts(one, 1, &call->step, &call->mu_product)
                                                : ak_py_read_steps(one, 1, &call->step);
    Py_DECREF(one);
    return status;
}

PyObject *ak_py_sparse_update(PyObject *self, PyObject *args)
{
    (void)self;
    const char *rule, *isa, *dtype;
    int num_threads;
    long long n_rows, row_numel, n_entries;
    PyObject *hyper, *indices, *param, *values, *slots, *step, *row_steps;
    if (!PyArg_ParseTuple(args, "sOsisLLLOOOO!OO:sparse_update", &rule, &hyper, &isa,
                          &num_threads, &dtype, &n_rows, &row_numel, &n_entries, &indices,
                          &param, &values, &PyTuple_Type, &slots, &step, &row_steps))
        return NULL;
    ak_sparse_call call = {.num_threads = num_threads,
                           .n_rows = n_rows,
                           .row_numel = row_numel,
                           .n_entries = n_entries,
                           .mu_product = 1};
    if (ak_py_read_call(rule, hyper, isa, num_threads, &call.rule, &call.isa, &call.hyper) < 0 ||
        ak_py_layout_of(dtype, dtype, &call.layout) < 0 || read_step(step, call.rule, &call) < 0)
        return NULL;
    if (ak_rule_takes_mu_product(call.rule) && row_steps != Py_None) {
        PyErr_Format(PyExc_ValueError, "rule '%s' takes no row_steps: its momentum product is the tensor's", rule);
        return NULL;
    }
    if (call.layout != AK_LAYOUT_F32 && call.layout != AK_LAYOUT_F64) {
        PyErr_Format(PyExc_ValueError, "sparse_update takes float32 or float64, got %s", dtype);
        return NULL;
    }
    if (n_rows < 0 || row_numel < 0 || n_entries < 0) {
        PyErr_Format(PyExc_ValueError, "n_rows, row_numel and n_entries must be >= 0, got %lld, %lld, %lld",
                     n_rows, row_numel, n_entries);
        return NULL;
    }
    if (PyTuple_GET_SIZE(slots) != AK_MAX_SLOTS) {
        PyErr_SetString(PyExc_ValueError, "slots must be a 3-tuple");
        return NULL;
    }
    void *indices_address, *values_address, *row_steps_address;
    if (ak_py_read_address(indices, "indices", &indices_address) < 0 ||
        ak_py_read_address(param, "param", &call.param) < 0 ||
        ak_py_read_address(values, "values", &values_address) < 0 ||
        ak_py_read_address(row_steps, "row_steps", &row_steps_address) < 0)
        return NULL;
    for (int s = 0; s < AK_MAX_SLOTS; s++)
        if (ak_py_read_address(PyTuple_GET_ITEM(slots, s), "slots", &call.slots[s]) < 0)
            return NULL;
    if (n_entries > 0 && (!indices_address || (row_numel > 0 && (!call.param || !values_address)))) {
        PyErr_SetString(PyExc_ValueError, "indices, param and values must not be null");
        return NULL;
    }
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
PyObject *ak_py_first_row_out_of_range(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *indices;
    long long n_entries, n_rows;
    if (!PyArg_ParseTuple(args, "OLL:first_row_out_of_range", &indices, &n_entries, &n_rows))
        return NULL;
    void *address;
    if (ak_py_read_address(indices, "indices", &address) < 0)
        return NULL;
    if (n_entries > 0 && !address) {
        PyErr_SetString(PyExc_ValueError, "indices must not be null");
        return NULL;
    }
    int sorted;
    return PyLong_FromLongLong(ak_check_rows(address, n_entries < 0 ? 0 : n_entries, n_rows, &sorted));
}
