/* adafactor_update: Adafactor's step over a list of tensors (adafactor.h). */
#include <stdlib.h>

#include "adafactor.h"
#include "arguments.h"
#include "entry_points.h"

/* adafactor_update(isa, num_threads, dtype, hyper, numels, rows, cols, params, grads, row_vars,
 *                  col_vars, variances, steps)
 *
 * dtype is float32 or float64, for the parameters, gradients and state. hyper is the tuple
 * (lr, beta2_decay, eps1, eps2, d, weight_decay, maximize), eps1 a number (the caller resolves
 * None). Tensor i has numels[i] > 0 contiguous elements; rows[i] > 0 makes it factored, as
 * numels[i] / (rows[i] * cols[i]) matrices with row_vars[i] and col_vars[i], else it has
 * variances[i] (addresses; 0 where a tensor has none). steps[i] counts this step. The caller
 * keeps the memory alive and unaliased. */
PyObject *ak_py_adafactor_update(PyObject *self, PyObject *args)
{
    (void)self;
    const char *isa, *dtype;
    int num_threads, maximize;
    ak_adafactor_call call = {0};
    ak_adafactor_hyper *h = &call.hyper;
    PyObject *numels, *rows, *cols, *params, *grads, *row_vars, *col_vars, *variances, *steps;
    if (!PyArg_ParseTuple(args, "sis(ddddddp)OOOOOOOOO:adafactor_update", &isa, &num_threads, &dtype, &h->lr,
                          &h->beta2_decay, &h->eps1, &h->eps2, &h->d, &h->weight_decay, &maximize, &numels, &rows,
                          &cols, &params, &grads, &row_vars, &col_vars, &variances, &steps))
        return NULL;
    h->maximize = maximize;
    call.num_threads = num_threads;
    if (ak_py_read_isa(isa, num_threads, &call.isa) < 0)
        return NULL;
    if (strcmp(dtype, "float32") != 0 && strcmp(dtype, "float64") != 0) {
        PyErr_Format(PyExc_ValueError, "adafactor_update takes float32 or float64, got dtype '%s'", dtype);
        return NULL;
    }
    call.float64 = strcmp(dtype, "float64") == 0;
    Py_ssize_t n = PyObject_Length(numels);
    if (n < 0)
        return NULL;
    call.n_tensors = n;
    ak_adafactor_tensor *tensors = calloc((size_t)(n > 0 ? n : 1), sizeof *tensors);
    int64_t *columns = malloc((size_t)(9 * (n > 0 ? n : 1)) * sizeof *columns);
    double *step_counts = malloc((size_t)(n > 0 ? n : 1) * sizeof *step_counts);
    PyObject *result = NULL;
    if (!tensors || !columns || !step_counts) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject *pointer_lists[5] = {params, grads, row_vars, col_vars, variances};
    const char *pointer_names[5] = {"params", "grads", "row_vars", "col_vars", "variances"};
    if (ak_py_read_integers(numels, n, "numels", columns, 0) < 0 ||
        ak_py_read_integers(rows, n, "rows", columns + n, 0) < 0 ||
        ak_py_read_integers(cols, n, "cols", columns + 2 * n, 0) < 0 || ak_py_read_steps(steps, n, step_counts) < 0)
        goto done;
    for (int k = 0; k < 5; k++)
        if (ak_py_read_integers(pointer_lists[k], n, pointer_names[k], columns + (3 + k) * n, 1) < 0)
            goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        ak_adafactor_tensor *t = &tensors[i];
        t->numel = columns[i];
        t->rows = columns[n + i];
        t->cols = columns[2 * n + i];
        t->param = (void *)(intptr_t)columns[3 * n + i];
        t->grad = (const void *)(intptr_t)columns[4 * n + i];
        t->row_var = (void *)(intptr_t)columns[5 * n + i];
        t->col_var = (void *)(intptr_t)columns[6 * n + i];
        t->variance = (void *)(intptr_t)columns[7 * n + i];
        t->step = step_counts[i];
        int factored = t->rows > 0;
        int bad_shape = t->numel <= 0 || t->rows < 0 ||
                        (factored && (t->cols <= 0 || t->numel % (t->rows * t->cols) != 0));
        if (bad_shape) {
            PyErr_Format(PyExc_ValueError,
                         "tensor %zd: numel %lld, rows %lld, cols %lld do not make matrices of rows x cols", i,
                         (long long)t->numel, (long long)t->rows, (long long)t->cols);
            goto done;
        }
        if (!t->param || !t->grad || (factored ? !t->row_var || !t->col_var : !t->variance)) {
            PyErr_Format(PyExc_ValueError, "tensor %zd: a null pointer among its param, grad and state", i);
            goto done;
        }
    }
    call.tensors = tensors;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = ak_adafactor_update(&call);
    Py_END_ALLOW_THREADS
    if (status < 0) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    free(tensors);
    free(columns);
    free(step_counts);
    return result;
}
