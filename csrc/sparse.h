/* ak_sparse_update: the lazy step of a sparse (row-wise) gradient, for one tensor.
 *
 * A tensor is `n_rows` rows of `row_numel` contiguous elements (an embedding table's rows).
 * The gradient is `n_entries` (row index, values row) pairs, in any order, a row possibly
 * repeated, as nn.Embedding(sparse=True) makes them. The kernel checks that every index is in
 * [0, n_rows), puts the entries in row order (row_sort.h; not needed when the indices are
 * already non-decreasing, as in a coalesced gradient), sums the values of a repeated row in
 * their original order (a coalesced gradient), and steps only the rows present, each by the
 * same segment function, hence the same bits, as a dense step of that row. Untouched rows,
 * and their state, are not read or written. The cost is proportional to the number of
 * entries, never to the number of rows.
 */
#ifndef ADAMKIT_SPARSE_H
#define ADAMKIT_SPARSE_H

#include "kernels_api.h"

typedef struct {
    ak_rule rule;
    ak_layout layout;               /* AK_LAYOUT_F32 or AK_LAYOUT_F64 */
    ak_isa isa;
    int num_threads;                /* > 0 */
    ak_hyper hyper;
    int64_t n_rows;                 /* rows of the tensor */
    int64_t row_numel;              /* elements per row */
    int64_t n_entries;              /* gradient entries */
    const int64_t *indices;         /* [n_entries]: the row of each entry, in any order */
    void *param;                    /* the whole tensor */
    const void *values;             /* [n_entries * row_numel]: the gradient rows, as given */
    void *slots[AK_MAX_SLOTS];      /* the whole state tensors, or NULL when inactive */
    double step;                    /* the parameter's step, this step included */
    int64_t *row_steps;             /* or NULL; else per-row counts, advanced for touched rows
                                       and used instead of `step` by rules that count steps
                                       (not NAdam's, whose product is the tensor's) */
    double mu_product;              /* NAdam: the parameter's state['mu_product'], with `step` */
} ak_sparse_call;

typedef enum {
    AK_SPARSE_OK = 0,
    AK_SPARSE_UNSUPPORTED = -1,     /* the ISA or layout */
    AK_SPARSE_NO_MEMORY = -2,       /* for the sorted entries or the per-thread sums */
    AK_SPARSE_BAD_INDEX = -3,       /* an index outside [0, n_rows); *bad_entry is its position */
} ak_sparse_status;

/* Step the touched rows in place. On any status but AK_SPARSE_OK nothing is changed. */
ak_sparse_status ak_sparse_update(const ak_sparse_call *call, int64_t *bad_entry);

#endif
