/* ak_sort_rows: the entries of a sparse gradient in row order, for the lazy sparse step.
 *
 * A gradient entry is a row index; the sort is stable, so the entries of a repeated row keep
 * their original order (and their values are summed in that order). It is a least-significant-
 * digit radix sort over the bits that row indices below `n_rows` can have: its cost is
 * proportional to the number of entries (a pass per AK_SORT_DIGIT_BITS bits of n_rows - 1),
 * never to the number of rows. A row and an entry's position are packed into one 64-bit key
 * wherever they fit, so that one array moves instead of two (BENCHMARKS.md, issue 6).
 */
#ifndef ADAMKIT_ROW_SORT_H
#define ADAMKIT_ROW_SORT_H

#include <stdint.h>

/* Bits of the row index sorted per pass: 2^11 counters fit in the L1 cache. */
#define AK_SORT_DIGIT_BITS 11

/* In one pass: the position of the first entry outside [0, n_rows), or -1 if every entry is in
 * range, and then *sorted, whether indices[0..n_entries) is non-decreasing (in row order). */
int64_t ak_check_rows(const int64_t *indices, int64_t n_entries, int64_t n_rows, int *sorted);

/* Sort the entries by row, stably: rows[j] = indices[order[j]], rows non-decreasing. Every
 * index is in [0, n_rows). `scratch` holds 2 * n_entries int64. */
void ak_sort_rows(const int64_t *indices, int64_t n_entries, int64_t n_rows, int64_t *rows,
                  int64_t *order, int64_t *scratch);

#endif
