/* Reading the arguments of adamkit.kernels._native's functions (arguments.c): the names a call
 * gives, its hyperparameters, sequences of numbers and addresses, and the one check every entry
 * point that runs a rule makes of its rule, instruction set and thread count. Bad input raises
 * ValueError or TypeError naming the argument and the value, and the function returns -1. */
#ifndef ADAMKIT_ARGUMENTS_H
#define ADAMKIT_ARGUMENTS_H

#include <stdint.h>

#include "binding.h"
#include "kernels_api.h"

/* Look up the rule and the instruction set by name (adamkit.kernels.native's names), read the
 * hyperparameters (a dict keyed by the fields of ak_hyper; absent fields are zero), and check
 * that this CPU runs the instruction set and that num_threads >= 1. */
int ak_py_read_call(const char *rule, PyObject *hyper, const char *isa, int num_threads,
                    ak_rule *rule_index, ak_isa *isa_index, ak_hyper *hyperparameters);

/* Look up the instruction set by name and check that this CPU runs it and that
 * num_threads >= 1 (the check of ak_py_read_call, for a step that names no rule: Adafactor's). */
int ak_py_read_isa(const char *isa, int num_threads, ak_isa *isa_index);

/* The layout of parameters of dtype `dtype` with state of dtype `state_dtype` (by name). */
int ak_py_layout_of(const char *dtype, const char *state_dtype, ak_layout *layout);

/* Raise unless a per-tensor sequence `what` has `length` == n entries, one per parameter. */
int ak_py_check_length(Py_ssize_t length, Py_ssize_t n, const char *what);

/* Raise unless values[i] >= 0 for every i < n (`what` names the sequence). */
int ak_py_check_nonnegative(const int64_t *values, Py_ssize_t n, const char *what);

/* Raise: what[index] is a null pointer where the tensor has `numel` elements. */
int ak_py_null_pointer(const char *what, Py_ssize_t index, int64_t numel);

/* out[i] = the i-th integer of `obj`, a sequence of n ints or an int64 array; with `pointers`,
 * Python ints are read as addresses (up to the pointer width, unsigned). */
int ak_py_read_integers(PyObject *obj, Py_ssize_t n, const char *what, int64_t *out, int pointers);

/* out[i] = the i-th address in `obj` (as ak_py_read_integers); `scratch` holds n integers. */
int ak_py_read_pointers(PyObject *obj, Py_ssize_t n, const char *what, int64_t *scratch, void **out);

/* out[i] = the i-th number of the sequence `obj` of n step counts. */
int ak_py_read_steps(PyObject *obj, Py_ssize_t n, double *out);

/* steps[i], mu_products[i] = the i-th pair (step, mu_product) of the sequence `obj` of n
 * NAdam counts (adamkit.rules.NAdamCount). */
int ak_py_read_counts(PyObject *obj, Py_ssize_t n, double *steps, double *mu_products);

/* columns[j][i] = number j of the i-th item of the sequence `obj` of n tuples of `width` numbers
 * (`form` names them in the error). */
int ak_py_read_tuples(PyObject *obj, Py_ssize_t n, int width, double *const *columns, const char *form);

/* out[i] = whether the i-th item of the sequence `obj` of n `created` flags is true. */
int ak_py_read_flags(PyObject *obj, Py_ssize_t n, unsigned char *out);

/* An address from a Python int, or NULL for None. */
int ak_py_read_address(PyObject *obj, const char *what, void **out);

/* The per-tensor arrays of one call (allocated for n tensors), and the buffers and NumPy arrays
 * it holds until its kernel has run (views.h). */
typedef struct {
    int64_t *numels;
    void **params;
    const void **grads;
    void **slots[AK_MAX_SLOTS];
    void **compensation;
    int64_t *rounding_seeds;
    double *steps;
    unsigned char *created;
    double *mu_products;
    double *scheduled_lrs, *averaging_weights;
    int64_t *scratch; /* for ak_py_read_pointers */
    Py_buffer *views;
    Py_ssize_t n_views;
    PyObject **arrays;
    Py_ssize_t n_arrays;
} ak_py_tensors;

/* Allocate the arrays of `a` for n tensors, with room to hold max_views buffers or arrays. */
int ak_py_allocate(ak_py_tensors *a, Py_ssize_t n, Py_ssize_t max_views);

/* Release what `a` holds and free its arrays (also after a failed ak_py_allocate). */
void ak_py_release(ak_py_tensors *a);

#endif
