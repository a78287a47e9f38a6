/* The functions of adamkit.kernels._native, by the file that defines them; module.c lists them
 * in the module's method table. Each file documents its functions' arguments. */
#ifndef ADAMKIT_ENTRY_POINTS_H
#define ADAMKIT_ENTRY_POINTS_H

#include "binding.h"

/* arguments.c */
PyObject *ak_py_isas(PyObject *self, PyObject *unused);
PyObject *ak_py_default_threads(PyObject *self, PyObject *unused);

/* dense_entry.c */
PyObject *ak_py_update_arrays(PyObject *self, PyObject *args);
PyObject *ak_py_update_pointers(PyObject *self, PyObject *args);

/* sparse_entry.c */
PyObject *ak_py_sparse_update(PyObject *self, PyObject *args);
PyObject *ak_py_first_row_out_of_range(PyObject *self, PyObject *args);

/* quant8_entry.c */
PyObject *ak_py_quant8_update(PyObject *self, PyObject *args);

/* plan_checks_objects.c */
PyObject *ak_py_same_objects(PyObject *self, PyObject *args);
PyObject *ak_py_same_items(PyObject *self, PyObject *args);
PyObject *ak_py_same_entries(PyObject *self, PyObject *args);
PyObject *ak_py_attributes(PyObject *self, PyObject *args);
PyObject *ak_py_checked_pointers(PyObject *self, PyObject *args);
PyObject *ak_py_first_in_ranges(PyObject *self, PyObject *args);

/* plan_checks_arrays.c */
PyObject *ak_py_data_pointers(PyObject *self, PyObject *args);
PyObject *ak_py_arrays_fit(PyObject *self, PyObject *args);
PyObject *ak_py_arrays_as_planned(PyObject *self, PyObject *args);
PyObject *ak_py_plan_tables(PyObject *self, PyObject *args);
PyObject *ak_py_first_overlap(PyObject *self, PyObject *args);

/* adafactor_entry.c */
PyObject *ak_py_adafactor_update(PyObject *self, PyObject *args);

#endif
