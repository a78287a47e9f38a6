/* adamkit.kernels._native: the CPython binding of the kernels (private; see native.py), its
 * method table and initialisation. binding.h lists the files that define its functions, by job.
 *
 * A minimal extension module rather than ctypes, for two reasons. A model with thousands of
 * tensors must pay no more than gathering pointers: NumPy's C API reads an array's pointer,
 * size, dtype and layout in a few field reads, where the buffer protocol builds a format string
 * per array and any pure-Python route (ndarray.ctypes, __array_interface__) builds Python
 * objects; other buffer objects still work, through the buffer protocol. And lists of pointers
 * from torch's data_ptr() are read here without building intermediate ctypes arrays. And
 * setuptools builds and names an extension module portably. The kernels themselves use no
 * Python API; the GIL is released while they run.
 */
#define AK_BINDING_IMPORTS_NUMPY
#include "entry_points.h"

static PyMethodDef methods[] = {
    {"update_arrays", ak_py_update_arrays, METH_VARARGS, "Apply a rule in place to lists of NumPy arrays."},
    {"update_pointers", ak_py_update_pointers, METH_VARARGS, "Apply a rule in place given data pointers."},
    {"isas", ak_py_isas, METH_NOARGS, "The instruction sets this CPU can run, best first."},
    {"default_threads", ak_py_default_threads, METH_NOARGS, "OpenMP's default thread count."},
    {"same_objects", ak_py_same_objects, METH_VARARGS, "Whether two lists hold the same objects in order."},
    {"data_pointers", ak_py_data_pointers, METH_VARARGS, "NumPy arrays' data pointers, as an int64 array."},
    {"same_items", ak_py_same_items, METH_VARARGS, "Whether dicts[i][key] is expected[i] for every i."},
    {"same_entries", ak_py_same_entries, METH_VARARGS, "Whether container[keys[i]] is expected[i] for every i."},
    {"attributes", ak_py_attributes, METH_VARARGS, "An attribute of each object of a list, prefetching ahead."},
    {"checked_pointers", ak_py_checked_pointers, METH_VARARGS, "Tensors' data pointers, if their dtype, layout and sizes fit."},
    {"first_in_ranges", ak_py_first_in_ranges, METH_VARARGS, "The first byte range that overlaps sorted disjoint ranges, or -1."},
    {"arrays_fit", ak_py_arrays_fit, METH_VARARGS, "Whether NumPy parameters and gradients fit the kernels as they are."},
    {"arrays_as_planned", ak_py_arrays_as_planned, METH_VARARGS, "Whether a NumPy plan's arrays are as planned and its gradients fit."},
    {"plan_tables", ak_py_plan_tables, METH_VARARGS, "The tables arrays_as_planned checks a plan against, taken now."},
    {"first_overlap", ak_py_first_overlap, METH_VARARGS, "Two NumPy arrays whose memory overlaps, one of them written, or None."},
    {"quant8_update", ak_py_quant8_update, METH_VARARGS, "A rule in place on 8-bit block-wise state."},
    {"sparse_update", ak_py_sparse_update, METH_VARARGS, "The lazy sparse step of one tensor's touched rows."},
    {"first_row_out_of_range", ak_py_first_row_out_of_range, METH_VARARGS, "The first row index outside [0, n_rows), or -1."},
    {"adafactor_update", ak_py_adafactor_update, METH_VARARGS, "Adafactor's step over a list of tensors."},
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
