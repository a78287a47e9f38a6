/* ak_sort_rows and its checks (row_sort.h). */
#include <string.h>

#include "row_sort.h"

#define AK_SORT_BUCKETS ((int64_t)1 << AK_SORT_DIGIT_BITS)

/* One pass without branches, which the compiler vectorises (BENCHMARKS.md, issue 6, has what it
 * saved); only when an index is bad are the entries searched again for the first. Row indices
 * are taken as unsigned, so a negative one is at least 2^63: an in-range index
 * v < n_rows <= 2^63 leaves the top bit of v and of n_rows - 1 - v clear, and of v - u, for the
 * index u before it, set only if v < u. */
int64_t ak_check_rows(const int64_t *indices, int64_t n_entries, int64_t n_rows, int *sorted)
{
    const uint64_t *rows = (const uint64_t *)indices, last_row = (uint64_t)n_rows - 1;
    const uint64_t top_bit = (uint64_t)1 << 63;
    uint64_t outside = n_entries > 0 ? rows[0] | (last_row - rows[0]) : 0, descending = 0;
    for (int64_t j = 1; j < n_entries; j++) {
        outside |= rows[j] | (last_row - rows[j]);
        descending |= rows[j] - rows[j - 1];
    }
    if (outside & top_bit) {
        int64_t j = 0;
        while (rows[j] < (uint64_t)n_rows)
            j++;
        return j;
    }
    *sorted = !(descending & top_bit);
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

/* One stable counting-sort pass on the `bits`-bit digit at `shift` of packed keys, from
 * `in` to `out`. */
static void sort_keys_pass(int shift, int bits, int64_t n_entries, const uint64_t *in, uint64_t *out)
{
    int64_t start[AK_SORT_BUCKETS];
    const uint64_t mask = ((uint64_t)1 << bits) - 1;
    memset(start, 0, sizeof(int64_t) << bits);
    for (int64_t j = 0; j < n_entries; j++)
        start[(in[j] >> shift) & mask]++;
    int64_t total = 0;
    for (uint64_t b = 0; b <= mask; b++) {
        int64_t count = start[b];
        start[b] = total;
        total += count;
    }
    for (int64_t j = 0; j < n_entries; j++)
        out[start[(in[j] >> shift) & mask]++] = in[j];
}

/* The sort when a row index and an entry's position fit in one 64-bit key (row above, position
 * below): one array moves instead of two, and the row bits are split into passes of equal digits
 * (two of 10 bits for a million rows, not 11 and 9), so each pass scatters to fewer places. */
static void sort_packed(const int64_t *indices, int64_t n_entries, int row_bits, int order_bits,
                        int64_t *rows, int64_t *order, int64_t *scratch)
{
    int passes = (row_bits + AK_SORT_DIGIT_BITS - 1) / AK_SORT_DIGIT_BITS;
    int digit_bits = passes ? (row_bits + passes - 1) / passes : 0;
    uint64_t *keys_of[2] = {(uint64_t *)scratch, (uint64_t *)rows};
    for (int64_t j = 0; j < n_entries; j++)
        keys_of[0][j] = (uint64_t)indices[j] << order_bits | (uint64_t)j;
    for (int pass = 0; pass < passes; pass++)
        sort_keys_pass(order_bits + pass * digit_bits, digit_bits, n_entries, keys_of[pass % 2],
                       keys_of[1 - pass % 2]);
    const uint64_t *keys = keys_of[passes % 2];
    const uint64_t position_mask = ((uint64_t)1 << order_bits) - 1;
    for (int64_t j = 0; j < n_entries; j++) {
        uint64_t key = keys[j];
        rows[j] = (int64_t)(key >> order_bits);
        order[j] = (int64_t)(key & position_mask);
    }
}

void ak_sort_rows(const int64_t *indices, int64_t n_entries, int64_t n_rows, int64_t *rows,
                  int64_t *order, int64_t *scratch)
{
    int row_bits = significant_bits(n_rows - 1), order_bits = significant_bits(n_entries - 1);
    if (row_bits + order_bits <= 63) { /* always, but for tables of more than 2^(63 - log2 n_entries) rows */
        sort_packed(indices, n_entries, row_bits, order_bits, rows, order, scratch);
        return;
    }
    int passes = (row_bits + AK_SORT_DIGIT_BITS - 1) / AK_SORT_DIGIT_BITS;
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
