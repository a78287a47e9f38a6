/* ak_sparse_update: the lazy sparse step, in parallel over the touched rows.
 *
 * The entries, in row order, are cut into chunks; a chunk steps the rows whose first entry it
 * holds (a row's run of entries may reach into the next chunk, which skips it). A row with one
 * entry reads its values in place; a repeated row's values are summed, in their original
 * order, into the thread's buffer. Each row is then one segment of the dense kernels
 * (rules.h) run with the scalars of its step, so it gets exactly the bits a dense step of that
 * row would. Rows are distinct, so threads never share memory, and the result does not depend
 * on the thread count. Threads take chunks as they become free, so a thread the OS deschedules
 * does not hold up the others.
 *
 * The touched rows are scattered over a table far larger than the caches, so the step waits on
 * memory, not arithmetic, mostly on address translation: each row of the parameter and of each
 * state tensor lies on a page of its own. The processor overlaps the misses of rows stepped
 * back to back, so a chunk first sums the repeated rows of a batch, then steps the batch's rows
 * one after the other.
 * The rows to come are known, so while a row is stepped the rows AK_SPARSE_PREFETCH_ROWS
 * ahead are prefetched (parameter, state and gradient), and while a batch is gathered the
 * values of the entries AK_SPARSE_PREFETCH_ENTRIES ahead: the misses of a few rows are then
 * in flight at once, where the out-of-order window alone overlaps about one row's. Prefetches
 * read no value and change no result. The smaller loop of rules.h's segments when no flag is
 * set shortens the step too, and huge pages as much again: adamkit.torch puts the state, and the
 * parameter, on them (adamkit/torch/_huge_pages.py). BENCHMARKS.md (issue 6, sparse gradients)
 * has the figures, against the floor of touching the same rows with nothing computed
 * (benchmarks/sparse_floor.c).
 */
#include <stdlib.h>

#include "kernels_internal.h"
#include "row_sort.h"
#include "sparse.h"

/* Below this many gradient elements, one thread steps them. The step waits on memory, and a
 * second core keeps as many misses again in flight (BENCHMARKS.md, issue 6: sparse_floor.c on
 * one and two threads), but smaller steps are not worth a worker's wake-up, which on a busy
 * machine can wait for a time slice. */
#define AK_SPARSE_MIN_PARALLEL ((int64_t)1 << 17)
/* Threads take this many entries at a time, as they become free. */
#define AK_SPARSE_CHUNK_ENTRIES 256
/* The repeated rows a thread sums before stepping them fill at most this many bytes (or one row). */
#define AK_SPARSE_BATCH_BYTES ((int64_t)1 << 16)
#define AK_CACHE_LINE 64
/* How far ahead the rows to step, and the values of the entries to gather, are prefetched, and
 * how much of each row (the processor's own prefetcher streams the rest of a long row). */
#define AK_SPARSE_PREFETCH_ROWS 4
#define AK_SPARSE_PREFETCH_ENTRIES 16
#define AK_SPARSE_PREFETCH_BYTES 1024

static size_t element_size(ak_layout layout) { return layout == AK_LAYOUT_F64 ? 8 : 4; }

/* The entries in row order: rows[j] is the row of values row order[j] (order NULL: j). */
typedef struct {
    const int64_t *rows;
    const int64_t *order;
} ak_sorted_entries;

typedef struct {
    const ak_sparse_call *call;
    ak_sorted_entries entries;
    ak_segment_fn segment;
    ak_scalars base; /* with the per-tensor fields of `call->step` */
    int uses_step;
    size_t size; /* bytes per element */
    /* Each thread's rows summed before stepping: `batch_rows` rows of `sum_bytes` from
     * sums + thread * thread_bytes. */
    char *sums;
    size_t sum_bytes, thread_bytes;
    int64_t batch_rows;
} ak_sparse_plan;

static int64_t value_row(const ak_sparse_plan *plan, int64_t j)
{
    return plan->entries.order ? plan->entries.order[j] : j;
}

/* The end of the run of entries of row rows[j]. */
static int64_t run_end(const ak_sparse_plan *plan, int64_t j)
{
    const int64_t *rows = plan->entries.rows;
    int64_t row = rows[j];
    while (++j < plan->call->n_entries && rows[j] == row)
        ;
    return j;
}

/* The gradient of the row of entries [begin, end): its values, summed into `sum` if repeated. */
static const void *run_gradient(const ak_sparse_plan *plan, int64_t begin, int64_t end, void *sum)
{
    const ak_sparse_call *call = plan->call;
    int64_t n = call->row_numel;
    const void *first = ak_element_at((void *)call->values, value_row(plan, begin) * n, plan->size);
    if (end - begin == 1)
        return first;
    memcpy(sum, first, (size_t)n * plan->size);
    for (int64_t j = begin + 1; j < end; j++) {
        const void *next = ak_element_at((void *)call->values, value_row(plan, j) * n, plan->size);
        if (call->layout == AK_LAYOUT_F64) {
            double *out = sum;
            const double *in = next;
            for (int64_t i = 0; i < n; i++)
                out[i] += in[i];
        } else {
            float *out = sum;
            const float *in = next;
            for (int64_t i = 0; i < n; i++)
                out[i] += in[i];
        }
    }
    return sum;
}

static inline void prefetch_lines(const void *start, size_t bytes, int for_writing)
{
    if (!start)
        return;
    if (bytes > AK_SPARSE_PREFETCH_BYTES)
        bytes = AK_SPARSE_PREFETCH_BYTES;
    for (size_t offset = 0; offset < bytes; offset += AK_CACHE_LINE) {
        if (for_writing)
            __builtin_prefetch((const char *)start + offset, 1, 3);
        else
            __builtin_prefetch((const char *)start + offset, 0, 3);
    }
}

/* Prefetch what stepping `row` with `gradient` reads and writes. */
static inline void prefetch_row(const ak_sparse_plan *plan, int64_t row, const void *gradient)
{
    const ak_sparse_call *call = plan->call;
    size_t bytes = (size_t)call->row_numel * plan->size;
    int64_t first = row * call->row_numel;
    prefetch_lines(ak_element_at(call->param, first, plan->size), bytes, 1);
    for (int s = 0; s < AK_MAX_SLOTS; s++)
        prefetch_lines(ak_element_at(call->slots[s], first, plan->size), bytes, 1);
    prefetch_lines(gradient, bytes, 0);
    if (call->row_steps)
        prefetch_lines(call->row_steps + row, sizeof *call->row_steps, 1);
}

/* Prefetch the values of the entries from *ahead up to `until` (at most the last entry), and
 * advance *ahead. In the entries' own order the values are read in sequence and need none. */
static void prefetch_values(const ak_sparse_plan *plan, int64_t *ahead, int64_t until)
{
    const ak_sparse_call *call = plan->call;
    if (!plan->entries.order)
        return;
    if (until > call->n_entries)
        until = call->n_entries;
    size_t bytes = (size_t)call->row_numel * plan->size;
    for (; *ahead < until; (*ahead)++)
        prefetch_lines(ak_element_at((void *)call->values, value_row(plan, *ahead) * call->row_numel,
                                     plan->size),
                       bytes, 0);
}

static void apply_tensor_scalars(ak_scalars *scalars, const ak_tensor_scalars *t)
{
    scalars->tensor = *t;
    scalars->created = 0;
}

/* Step the rows whose first entry lies in chunk `chunk` of the entries, a batch at a time: first
 * the gradient of each row of the batch (a repeated row's summed into the thread's sums), then
 * the rows back to back, so that the processor overlaps their cache misses instead of waiting
 * on each row's between summations. */
static void run_entry_chunk(const void *context, int64_t chunk, int thread)
{
    const ak_sparse_plan *plan = context;
    const ak_sparse_call *call = plan->call;
    const int64_t *rows = plan->entries.rows;
    size_t size = plan->size;
    int64_t begin = chunk * AK_SPARSE_CHUNK_ENTRIES;
    int64_t end = begin + AK_SPARSE_CHUNK_ENTRIES < call->n_entries ? begin + AK_SPARSE_CHUNK_ENTRIES : call->n_entries;
    char *sums = plan->sums + (size_t)thread * plan->thread_bytes;
    ak_scalars scalars = plan->base;
    double scalars_step = call->step;
    while (begin < end && begin > 0 && rows[begin] == rows[begin - 1])
        begin++;
    int64_t batch[AK_SPARSE_CHUNK_ENTRIES];
    const void *gradients[AK_SPARSE_CHUNK_ENTRIES];
    int64_t ahead = begin; /* the first entry whose values are not prefetched yet */
    for (int64_t j = begin; j < end;) {
        int64_t n = 0, summed = 0;
        while (j < end) {
            int64_t stop = run_end(plan, j);
            prefetch_values(plan, &ahead, stop + AK_SPARSE_PREFETCH_ENTRIES);
            if (stop - j > 1 && summed == plan->batch_rows)
                break;
            void *sum = sums + (size_t)summed * plan->sum_bytes;
            summed += stop - j > 1;
            batch[n] = rows[j];
            gradients[n++] = run_gradient(plan, j, stop, sum);
            j = stop;
        }
        for (int64_t k = 0; k < n && k < AK_SPARSE_PREFETCH_ROWS; k++)
            prefetch_row(plan, batch[k], gradients[k]);
        for (int64_t k = 0; k < n; k++) {
            if (k + AK_SPARSE_PREFETCH_ROWS < n)
                prefetch_row(plan, batch[k + AK_SPARSE_PREFETCH_ROWS], gradients[k + AK_SPARSE_PREFETCH_ROWS]);
            int64_t row = batch[k];
            if (call->row_steps) {
                /* Rows at the same step as the previous row reuse its scalars. */
                double step = (double)(++call->row_steps[row]);
                if (plan->uses_step && step != scalars_step) {
                    ak_tensor_scalars own;
                    ak_tensor_scalars_at(call->rule, &call->hyper, step, &own);
                    apply_tensor_scalars(&scalars, &own);
                    scalars_step = step;
                }
            }
            int64_t first = row * call->row_numel;
            plan->segment(&scalars, call->row_numel, ak_element_at(call->param, first, size),
                          gradients[k], NULL, ak_element_at(call->slots[0], first, size),
                          ak_element_at(call->slots[1], first, size),
                          ak_element_at(call->slots[2], first, size));
        }
    }
}

ak_sparse_status ak_sparse_update(const ak_sparse_call *call, int64_t *bad_entry)
{
    if (call->isa < 0 || call->isa >= AK_N_ISAS || !ak_isa_supported(call->isa))
        return AK_SPARSE_UNSUPPORTED;
    if (call->layout != AK_LAYOUT_F32 && call->layout != AK_LAYOUT_F64)
        return AK_SPARSE_UNSUPPORTED;
    int sorted = 1;
    *bad_entry = ak_check_rows(call->indices, call->n_entries, call->n_rows, &sorted);
    if (*bad_entry >= 0)
        return AK_SPARSE_BAD_INDEX;
    if (call->n_entries <= 0 || call->row_numel <= 0)
        return AK_SPARSE_OK;
    ak_sparse_plan plan = {
        .call = call,
        .entries = {.rows = call->indices, .order = NULL},
        .segment = ak_segment_for(call->isa, call->layout, call->rule),
        .uses_step = ak_rule_uses_step(call->rule),
        .size = element_size(call->layout),
    };
    int64_t n_chunks = (call->n_entries + AK_SPARSE_CHUNK_ENTRIES - 1) / AK_SPARSE_CHUNK_ENTRIES;
    int threads = call->num_threads > 0 ? call->num_threads : 1;
    if (call->n_entries * call->row_numel < AK_SPARSE_MIN_PARALLEL)
        threads = 1;
    if (threads > n_chunks)
        threads = (int)n_chunks;
    /* Each summed row on cache lines of its own (which also keeps the entries aligned); each
     * thread sums up to a batch of rows, AK_SPARSE_BATCH_BYTES or one row. */
    plan.sum_bytes = ((size_t)call->row_numel * plan.size + AK_CACHE_LINE - 1) / AK_CACHE_LINE * AK_CACHE_LINE;
    plan.batch_rows = AK_SPARSE_BATCH_BYTES / (int64_t)plan.sum_bytes;
    if (plan.batch_rows < 1)
        plan.batch_rows = 1;
    if (plan.batch_rows > AK_SPARSE_CHUNK_ENTRIES)
        plan.batch_rows = AK_SPARSE_CHUNK_ENTRIES;
    plan.thread_bytes = (size_t)plan.batch_rows * plan.sum_bytes;
    /* One allocation: the per-thread sums, then, unless already in order, the sorted entries
     * (rows, order) and the sort's scratch space. */
    size_t entry_bytes = sorted ? 0 : (size_t)call->n_entries * sizeof(int64_t);
    char *memory = malloc((size_t)threads * plan.thread_bytes + 4 * entry_bytes);
    if (!memory)
        return AK_SPARSE_NO_MEMORY;
    plan.sums = memory;
    if (!sorted) {
        int64_t *rows = (int64_t *)(memory + (size_t)threads * plan.thread_bytes);
        int64_t *order = rows + call->n_entries;
        ak_sort_rows(call->indices, call->n_entries, call->n_rows, rows, order, order + call->n_entries);
        plan.entries.rows = rows;
        plan.entries.order = order;
    }
    ak_call_scalars(call->rule, &call->hyper, &plan.base);
    ak_tensor_scalars shared;
    ak_tensor_scalars_at(call->rule, &call->hyper, call->step, &shared);
    if (ak_rule_takes_mu_product(call->rule))
        ak_nadam_tensor_scalars(&call->hyper, call->step, call->mu_product, &shared);
    apply_tensor_scalars(&plan.base, &shared);
    ak_parallel_for(n_chunks, threads, 1, run_entry_chunk, &plan);
    free(memory);
    return AK_SPARSE_OK;
}
