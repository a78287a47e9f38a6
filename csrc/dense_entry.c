/* update_arrays and update_pointers: ak_update (kernels_api.h) on lists of NumPy arrays, or of
 * data pointers (torch tensors). */
#include <string.h>

#include "arguments.h"
#include "entry_points.h"
#include "prefetch_objects.h"
#include "views.h"

/* A Python callable as call->reduce (kernels_api.h), and the exception it raised. */
typedef struct {
    PyObject *callable;
    PyObject *type, *value, *traceback;
} py_reduction;

/* call->reduce through a Python callable, run with the GIL: it takes a tuple of the `count`
 * local sums and returns a sequence of as many floats, the whole tensors' sums. */
static int reduce_in_python(void *context, double *sums, int64_t count)
{
    py_reduction *reduction = context;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *local = PyTuple_New((Py_ssize_t)count), *result = NULL, *whole = NULL;
    int status = -1;
    if (!local)
        goto done;
    for (int64_t i = 0; i < count; i++) {
        PyObject *value = PyFloat_FromDouble(sums[i]);
        if (!value)
            goto done;
        PyTuple_SET_ITEM(local, (Py_ssize_t)i, value);
    }
    result = PyObject_CallOneArg(reduction->callable, local);
    whole = result ? PySequence_Fast(result, "reduce must return a sequence of floats") : NULL;
    if (!whole)
        goto done;
    if (PySequence_Fast_GET_SIZE(whole) != (Py_ssize_t)count) {
        PyErr_Format(PyExc_ValueError, "reduce returned %zd sums for %lld", PySequence_Fast_GET_SIZE(whole),
                     (long long)count);
        goto done;
    }
    for (int64_t i = 0; i < count; i++) {
        double value = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(whole, (Py_ssize_t)i));
        if (value == -1.0 && PyErr_Occurred())
            goto done;
        sums[i] = value;
    }
    status = 0;
done:
    if (status != 0)
        PyErr_Fetch(&reduction->type, &reduction->value, &reduction->traceback);
    Py_XDECREF(local);
    Py_XDECREF(result);
    Py_XDECREF(whole);
    PyGILState_Release(gil);
    return status;
}

/* Read the steps and the `created` flags, fill the per-tensor parts of `call` that both entry
 * points share, and run it without the GIL; `reduce` is None or a callable for call->reduce. */
static PyObject *run(ak_call *call, ak_py_tensors *a, const char *rule, PyObject *steps,
                     PyObject *created, PyObject *reduce)
{
    Py_ssize_t n = (Py_ssize_t)call->n_tensors;
    if (steps == Py_None && ak_rule_uses_step(call->rule) && n > 0) {
        PyErr_Format(PyExc_TypeError, "steps are required by rule '%s'", rule);
        return NULL;
    }
    int takes_product = ak_rule_takes_mu_product(call->rule), takes_schedule = ak_rule_takes_schedule(call->rule);
    double *const schedule[3] = {a->steps, a->scheduled_lrs, a->averaging_weights};
    if (steps != Py_None &&
        (takes_product    ? ak_py_read_counts(steps, n, a->steps, a->mu_products)
         : takes_schedule ? ak_py_read_tuples(steps, n, 3, schedule, "a triple (step, scheduled_lr, ckp1) of numbers")
                          : ak_py_read_steps(steps, n, a->steps)) < 0)
        return NULL;
    if (created != Py_None && ak_py_read_flags(created, n, a->created) < 0)
        return NULL;
    call->numels = a->numels;
    call->params = a->params;
    call->grads = a->grads;
    call->steps = a->steps;
    call->created = a->created;
    call->mu_products = takes_product && n > 0 ? a->mu_products : NULL;
    call->scheduled_lrs = takes_schedule && n > 0 ? a->scheduled_lrs : NULL;
    call->averaging_weights = takes_schedule && n > 0 ? a->averaging_weights : NULL;
    py_reduction reduction = {reduce, NULL, NULL, NULL};
    if (reduce != Py_None) {
        call->reduce = reduce_in_python;
        call->reduce_context = &reduction;
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = ak_update(call);
    Py_END_ALLOW_THREADS
    if (status == AK_REDUCE_FAILED) {
        PyErr_Restore(reduction.type, reduction.value, reduction.traceback);
        return NULL;
    }
    if (status != 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* update_arrays(rule, hyper, isa, num_threads, params, grads, slots, slot_names, steps, created)
 *
 * params, grads: lists of float32 or float64 NumPy arrays; slots: a 3-tuple of lists of
 * arrays (or None for an inactive slot) named by slot_names. */
PyObject *ak_py_update_arrays(PyObject *self, PyObject *args)
{
    (void)self;
    const char *rule, *isa;
    int num_threads;
    PyObject *hyper, *params, *grads, *slots, *slot_names, *steps, *created;
    if (!PyArg_ParseTuple(args, "sOsiO!O!O!O!OO:update_arrays", &rule, &hyper, &isa, &num_threads,
                          &PyList_Type, &params, &PyList_Type, &grads, &PyTuple_Type, &slots,
                          &PyTuple_Type, &slot_names, &steps, &created))
        return NULL;
    ak_call call = {.layout = AK_LAYOUT_F32, .num_threads = num_threads};
    if (ak_py_read_call(rule, hyper, isa, num_threads, &call.rule, &call.isa, &call.hyper) < 0)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(params);
    if (ak_py_check_length(PyList_GET_SIZE(grads), n, "grads") < 0)
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
        if (ak_py_check_length(PyList_GET_SIZE(column), n, "states") < 0)
            return NULL;
    }
    ak_py_tensors a;
    call.n_tensors = n;
    const char *dtype = NULL;
    PyObject *result = NULL;
    if (ak_py_allocate(&a, n, n * (2 + AK_MAX_SLOTS)) < 0)
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
    result = run(&call, &a, rule, steps, created, Py_None);
done:
    ak_py_release(&a);
    return result;
}

/* update_pointers(rule, hyper, isa, num_threads, dtype, state_dtype, numels, params, grads,
 *                 slots, steps, created, compensation, rounding_seeds, reduce)
 *
 * numels, params, grads: sequences of ints (or int64 arrays); slots: a 3-tuple of such
 * sequences of pointers, or None for an inactive slot; compensation: None, or (bfloat16
 * parameters only) a sequence of pointers to each parameter's Kahan compensation buffer;
 * rounding_seeds: for float32 parameters with bfloat16 state (stochastic rounding), one
 * non-negative integer per tensor, else None; reduce: None, or (LAMB, cautious=True) a callable
 * taking the tuple of each tensor's two local sums and returning the whole tensors' sums
 * (kernels_api.h, call->reduce), called once between the two passes. */
PyObject *ak_py_update_pointers(PyObject *self, PyObject *args)
{
    (void)self;
    const char *rule, *isa, *dtype, *state_dtype;
    int num_threads;
    PyObject *hyper, *numels, *params, *grads, *slots, *steps, *created, *compensation, *rounding_seeds, *reduce;
    if (!PyArg_ParseTuple(args, "sOsissOOOO!OOOOO:update_pointers", &rule, &hyper, &isa,
                          &num_threads, &dtype, &state_dtype, &numels, &params, &grads,
                          &PyTuple_Type, &slots, &steps, &created, &compensation, &rounding_seeds, &reduce))
        return NULL;
    if (reduce != Py_None && !PyCallable_Check(reduce)) {
        PyErr_SetString(PyExc_TypeError, "reduce must be None or callable");
        return NULL;
    }
    ak_call call = {.num_threads = num_threads};
    if (ak_py_read_call(rule, hyper, isa, num_threads, &call.rule, &call.isa, &call.hyper) < 0 ||
        ak_py_layout_of(dtype, state_dtype, &call.layout) < 0)
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
    ak_py_tensors a;
    PyObject *result = NULL;
    if (ak_py_allocate(&a, n, 0) < 0)
        goto done;
    call.n_tensors = n;
    if (ak_py_read_integers(numels, n, "numels", a.numels, 0) < 0 ||
        ak_py_read_pointers(params, n, "param_ptrs", a.scratch, a.params) < 0 ||
        ak_py_read_pointers(grads, n, "grad_ptrs", a.scratch, (void **)a.grads) < 0)
        goto done;
    for (int s = 0; s < AK_MAX_SLOTS; s++) {
        PyObject *column = PyTuple_GET_ITEM(slots, s);
        if (column == Py_None)
            continue;
        if (ak_py_read_pointers(column, n, "state_ptrs", a.scratch, a.slots[s]) < 0)
            goto done;
        call.slots[s] = a.slots[s];
    }
    if (compensation != Py_None) {
        if (ak_py_read_pointers(compensation, n, "compensation_ptrs", a.scratch, a.compensation) < 0)
            goto done;
        call.compensation = a.compensation;
    }
    if (rounding_seeds != Py_None) {
        if (ak_py_read_integers(rounding_seeds, n, "rounding_seeds", a.rounding_seeds, 0) < 0 ||
            ak_py_check_nonnegative(a.rounding_seeds, n, "rounding_seeds") < 0)
            goto done;
        call.rounding_seeds = (const uint64_t *)a.rounding_seeds;
    }
    if (ak_py_check_nonnegative(a.numels, n, "numels") < 0)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (a.numels[i] == 0)
            continue;
        const char *missing = NULL;
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
            ak_py_null_pointer(missing, i, a.numels[i]);
            goto done;
        }
    }
    result = run(&call, &a, rule, steps, created, reduce);
done:
    ak_py_release(&a);
    return result;
}
