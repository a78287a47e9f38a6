/* ak_sort_rows and its checks (row_sort.h). */
#include <string.h>

#include "row_sort.h"

#define AK_SORT_BUCKETS ((int64_t)1 << AK_SORT_DIGIT_BITS)

int64_t ak_check_rows(const int64_t *indices, int64_t n_entries, int64_t n_rows, int *sorted)
{
    int in_order = 1;
    for (int64_t j = 0; j < n_entries; j++) {
        if (indices[j] < 0 || indices[j] >= n_rows)
            return j;
        in_order &= j == 0 || indices[j] >= indices[j - 1];
    }
    *sorted = in_order;
    return -1;
}

static int significant_bits(int64_t value)
{
    int bits = 0;
    while (value > 0) {
        bits++;
        value >>= 1;
    }
    return bits;
}

/* One stable counting-sort pass on the digit at `shift`, from (rows_in, order_in) to
 * (rows_out, order_out). */
static void sort_pass(int shift, int64_t n_entries, const int64_t *rows_in, const int64_t *order_in,
                      int64_t *rows_out, int64_t *order_out)
{
    int64_t start[AK_SORT_BUCKETS];
    memset(start, 0, sizeof start);
    for (int64_t j = 0; j < n_entries; j++)
        start[(rows_in[j] >> shift) & (AK_SORT_BUCKETS - 1)]++;
    int64_t total = 0;
    for (int64_t b = 0; b < AK_SORT_BUCKETS; b++) {
        int64_t count = start[b];
        start[b] = total;
        total += count;
    }
    for (int64_t j = 0; j < n_entries; j++) {
        int64_t position = start[(rows_in[j] >> shift) & (AK_SORT_BUCKETS - 1)]++;
        rows_out[position] = rows_in[j];
        order_out[position] = order_in[j];
    }
}

void ak_sort_rows(const int64_t *indices, int64_t n_entries, int64_t n_rows, int64_t *rows,
                  int64_t *order, int64_t *scratch)
{
    int passes = (significant_bits(n_rows - 1) + AK_SORT_DIGIT_BITS - 1) / AK_SORT_DIGIT_BITS;
    /* The passes alternate between (rows, order) and the scratch pair, ending in (rows, order). */
    int64_t *rows_of[2] = {rows, scratch}, *order_of[2] = {order, scratch + n_entries};
    int first = passes % 2; /* where the unsorted entries start */
    memcpy(rows_of[first], indices, (size_t)n_entries * sizeof *indices);
    for (int64_t j = 0; j < n_entries; j++)
        order_of[first][j] = j;
    for (int pass = 0; pass < passes; pass++) {
        int from = (first + pass) % 2;
        sort_pass(pass * AK_SORT_DIGIT_BITS, n_entries, rows_of[from], order_of[from],
                  rows_of[1 - from], order_of[1 - from]);
    }
}
