/* What every file of the CPython binding (adamkit.kernels._native) includes first: Python's and
 * NumPy's C APIs. NumPy's C API is a table of function pointers that import_array() fills when
 * the module is loaded (module.c, which defines AK_BINDING_IMPORTS_NUMPY); the other files of
 * the binding share that one table.
 *
 * The binding's files, by job:
 *   arguments.c          the names a call gives, argument readers, the one check of a call's
 *                        rule, instruction set and thread count, the per-tensor arrays;
 *                        isas and default_threads
 *   views.c              NumPy arrays and other buffers as the kernels read them
 *   prefetch_objects.h   prefetching a list's objects ahead of a loop over them
 *   dense_entry.c        update_arrays and update_pointers: ak_update (kernels_api.h)
 *   sparse_entry.c       sparse_update: ak_sparse_update (sparse.h)
 *   quant8_entry.c       quant8_update: ak_q8_update (quant8.h)
 *   plan_checks_arrays.c   the NumPy front end's re-checks of a cached step's plan
 *   plan_checks_objects.c  the torch front end's re-checks (lists, dicts, tensors' methods)
 *   module.c             the method table and the module's initialisation
 * A function one file defines for the others is named ak_py_*.
 */
#ifndef ADAMKIT_BINDING_H
#define ADAMKIT_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_1_22_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL ak_py_numpy_api
#ifndef AK_BINDING_IMPORTS_NUMPY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#endif
