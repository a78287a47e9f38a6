/* Prefetching the Python objects of a list ahead of a loop over them (dense_entry.c and the
 * plan checks).
 *
 * Loops over thousands of torch tensors (or dicts) find their objects cold: after a step's
 * kernel has streamed the model through the cache, reading a tensor's metadata is a chain of
 * dependent cache misses (the Python object, then the tensor implementation it points to,
 * then that one's storage). At item i such a loop prefetches the object of item
 * i + 2 * PREFETCH_DISTANCE, and for item i + PREFETCH_DISTANCE, whose object has arrived by
 * then, the memory that the first PREFETCH_WORDS words after its header point to (a tensor's
 * implementation; a dict's keys and values). The words read lie inside the object (its type's
 * tp_basicsize covers them), and a prefetch never faults nor changes any value, whatever the
 * words hold: this only hints the hardware, so the misses overlap instead of queueing. */
#ifndef ADAMKIT_PREFETCH_OBJECTS_H
#define ADAMKIT_PREFETCH_OBJECTS_H

#include "binding.h"

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

#endif
