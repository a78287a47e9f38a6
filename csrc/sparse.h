/* ak_sparse_update: the lazy step of a sparse (row-wise) gradient, for one tensor.
 *
 * A tensor is seen as rows of `row_numel` contiguous elements (an embedding table's rows).
 * The gradient is `n_entries` (row index, values row) pairs, in any order, a row possibly
 * repeated: the caller passes the indices sorted (`rows`, stably) and the permutation that
 * sorts them (`order`). The values of a repeated row are summed in their original order (a
 * coalesced gradient), and only the rows present are stepped, each by the same segment
 * function, hence the same bits, as a dense step of that row; untouched rows, and their
 * state, are not read or written. The cost is proportional to the number of entries.
 */
#ifndef ADAMKIT_SPARSE_H
#define ADAMKIT_SPARSE_H

#include "adamkit_kernels.h"

typedef struct {
    ak_rule rule;
    ak_layout layout;               /* AK_LAYOUT_F32 or AK_LAYOUT_F64 */
    ak_isa isa;
    int num_threads;                /* > 0 */
    ak_hyper hyper;
    int64_t row_numel;              /* elements per row */
    int64_t n_entries;              /* gradient entries */
    const int64_t *rows;            /* [n_entries], non-decreasing, each in [0, number of rows) */
    const int64_t *order;           /* [n_entries]: rows[j] is the row of values row order[j] */
    void *param;                    /* the whole tensor */
    const void *values;             /* [n_entries * row_numel]: the gradient rows, as given */
    void *slots[AK_MAX_SLOTS];      /* the whole state tensors, or NULL when inactive */
    double step;                    /* the parameter's step, this step included */
    int64_t *row_steps;             /* or NULL; else per-row counts, advanced for touched rows
                                       and used instead of `step` by rules that count steps */
} ak_sparse_call;

/* Step the touched rows in place. Returns 0, or -1 if the ISA or layout is not supported or
 * memory for the per-thread sums could not be allocated (nothing is changed then). */
int ak_sparse_update(const ak_sparse_call *call);

#endif
