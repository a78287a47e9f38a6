/* quant8_update: a rule on 8-bit block-wise state (quant8.h). */
#include "arguments.h"
#include "entry_points.h"
#include "quant8.h"

/* quant8_update(rule, hyper, isa, num_threads, numels, row_numels, params, grads, codes,
 *               absmax, steps, dtype, compensation)
 *
 * A rule on 8-bit block-wise state (quant8.h). numels, row_numels (the elements per row of
 * the blocks), params, grads and steps have one entry per tensor, as sequences of ints (or
 * int64 arrays); codes and absmax are 3-tuples, one entry per state slot of the rule: the
 * slot's pointers, one per tensor, or None for a slot the rule does not use here. dtype is the
 * parameters' and gradients', "float32" or "bfloat16"; compensation is None, or (bfloat16 only)
 * a sequence of pointers to each parameter's bfloat16 Kahan compensation buffer. */
PyObject *ak_py_quant8_update(PyObject *self, PyObject *args)
{
    (void)self;
    const char *rule, *isa, *dtype;
    int num_threads;
    PyObject *hyper, *numels, *row_numels, *params, *grads, *codes, *absmax, *steps, *compensation;
    if (!PyArg_ParseTuple(args, "sOsiOOOOO!O!OsO:quant8_update", &rule, &hyper, &isa, &num_threads,
                          &numels, &row_numels, &params, &grads, &PyTuple_Type, &codes,
                          &PyTuple_Type, &absmax, &steps, &dtype, &compensation))
        return NULL;
    ak_q8_call call = {.num_threads = num_threads, .bf16_params = strcmp(dtype, "bfloat16") == 0};
    if (ak_py_read_call(rule, hyper, isa, num_threads, &call.rule, &call.isa, &call.hyper) < 0)
        return NULL;
    if (!call.bf16_params && strcmp(dtype, "float32") != 0) {
        PyErr_Format(PyExc_ValueError, "dtype must be 'float32' or 'bfloat16', got '%s'", dtype);
        return NULL;
    }
    if (compensation != Py_None && !call.bf16_params) {
        PyErr_Format(PyExc_ValueError,
                     "compensation is only for bfloat16 parameters (their float32 results are "
                     "rounded), got dtype %s",
                     dtype);
        return NULL;
    }
    int used = ak_q8_slots(call.rule, &call.hyper);
    if (used == 0) {
        PyErr_Format(PyExc_ValueError, "rule '%s' has no 8-bit state", rule);
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
    ak_py_tensors a;
    int64_t *row_numel = NULL;
    void **scales[AK_MAX_SLOTS] = {0};
    PyObject *result = NULL;
    if (ak_py_allocate(&a, n, 0) < 0)
        goto done;
    int ok = (row_numel = PyMem_Calloc(count, sizeof *row_numel)) != NULL;
    for (int s = 0; s < used; s++)
        ok = ok && (scales[s] = PyMem_Calloc(count, sizeof(void *)));
    if (!ok) {
        PyErr_NoMemory();
        goto done;
    }
    if (ak_py_read_integers(numels, n, "numels", a.numels, 0) < 0 ||
        ak_py_read_integers(row_numels, n, "row_numels", row_numel, 0) < 0 ||
        ak_py_read_pointers(params, n, "param_ptrs", a.scratch, a.params) < 0 ||
        ak_py_read_pointers(grads, n, "grad_ptrs", a.scratch, (void **)a.grads) < 0 ||
        (compensation != Py_None &&
         ak_py_read_pointers(compensation, n, "compensation_ptrs", a.scratch, a.compensation) < 0) ||
        (ak_rule_takes_mu_product(call.rule) ? ak_py_read_counts(steps, n, a.steps, a.mu_products)
                                              : ak_py_read_steps(steps, n, a.steps)) < 0)
        goto done;
    for (int s = 0; s < used; s++) {
        if (ak_py_read_pointers(PyTuple_GET_ITEM(codes, s), n, "code_ptrs", a.scratch, a.slots[s]) < 0 ||
            ak_py_read_pointers(PyTuple_GET_ITEM(absmax, s), n, "absmax_ptrs", a.scratch, scales[s]) < 0)
            goto done;
        call.codes[s] = a.slots[s];
        call.absmax[s] = (float *const *)scales[s];
    }
    if (ak_py_check_nonnegative(a.numels, n, "numels") < 0)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (a.numels[i] == 0)
            continue;
        if (row_numel[i] < 1 || a.numels[i] % row_numel[i] != 0) {
            PyErr_Format(PyExc_ValueError,
                         "row_numels[%zd] must divide numels[%zd] = %lld into rows, got %lld", i,
                         i, (long long)a.numels[i], (long long)row_numel[i]);
            goto done;
        }
        const char *missing = !a.params[i]                                ? "param_ptrs"
                              : !a.grads[i]                               ? "grad_ptrs"
                              : compensation != Py_None && !a.compensation[i] ? "compensation_ptrs"
                                                                          : NULL;
        for (int s = 0; s < used && !missing; s++)
            missing = !a.slots[s][i] ? "code_ptrs" : !scales[s][i] ? "absmax_ptrs" : NULL;
        if (missing) {
            ak_py_null_pointer(missing, i, a.numels[i]);
            goto done;
        }
    }
    call.n_tensors = n;
    call.numels = a.numels;
    call.row_numels = row_numel;
    call.params = a.params;
    call.grads = (const void *const *)a.grads;
    call.compensation = compensation != Py_None ? (uint16_t *const *)a.compensation : NULL;
    call.steps = a.steps;
    call.mu_products = ak_rule_takes_mu_product(call.rule) ? a.mu_products : NULL;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = ak_q8_update(&call);
    Py_END_ALLOW_THREADS
    if (status != 0)
        PyErr_NoMemory();
    else
        result = Py_None, Py_INCREF(result);
done:
    ak_py_release(&a);
    PyMem_Free(row_numel);
    for (int s = 0; s < AK_MAX_SLOTS; s++)
        PyMem_Free(scales[s]);
    return result;
}
