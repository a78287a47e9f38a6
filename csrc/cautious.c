/* ak_cautious_update: Adam, Lion and AdEMAMix with cautious=True (adamkit.rules.cautious), whose
 * update keeps the elements that agree in sign with the gradient and rescales them by the kept
 * fraction of the whole tensor.
 *
 * Two passes over blocks of AK_CAUTIOUS_BLOCK consecutive elements of each tensor (the last
 * block of a tensor may be shorter), both run in parallel over all blocks of all tensors:
 *   1. the rule's lanes function computes the new moments and the update, stores nothing, and
 *      counts the block's elements where update * grad > 0 (FN(caution) in rules.h);
 *   2. after the caller's thread has added each tensor's block counts (for a shard, then
 *      call->reduce makes them the whole tensor's: kernels_api.h) and made its scale
 *      1 / max(count / numel, 1e-3) in double (adamkit.rules.cautious.scale_of_count), the
 *      lanes function computes the same moments and update from the same inputs, stores the
 *      moments and steps the parameter with the kept elements rescaled.
 * The counts are integers, so their sum is exact in any order: the bits are the rule's whatever
 * the thread count and the ISA. Recomputing (instead of storing between the passes) needs no
 * scratch memory and holds for every layout, bfloat16 state included: pass 1 writes nothing.
 */
#include <stdlib.h>

#include "kernels_internal.h"

#define AK_CAUTIOUS_BLOCK ((int64_t)4096)
#define AK_MIN_KEPT_FRACTION 1e-3 /* adamkit.rules.cautious.MIN_KEPT_FRACTION */

typedef struct {
    const ak_call *call;
    ak_segment_fn segment;
    ak_scalars scalars;
    const ak_tensor_scalars *per_tensor;
    const int64_t *block_offsets; /* block_offsets[t] = blocks of the tensors before t */
    int64_t *counts;              /* one per block: the first pass */
    const double *scales;         /* per tensor: the second pass */
} cautious_plan;

static void run_block(const void *context, int64_t block, int thread)
{
    (void)thread;
    const cautious_plan *plan = context;
    const ak_call *call = plan->call;
    int64_t first, n;
    int64_t t = ak_block_at(call, plan->block_offsets, AK_CAUTIOUS_BLOCK, block, &first, &n);
    ak_scalars k = plan->scalars;
    k.tensor = plan->per_tensor[t];
    if (plan->counts) {
        k.kept_count = plan->counts + block;
        *k.kept_count = 0;
    } else {
        k.kept_count = NULL;
        k.cautious_scale = plan->scales[t];
    }
    /* A block never crosses a multiple of 2^32 elements: its rounding keys hold for all of it. */
    ak_run_segment(call, plan->segment, &k, t, first, n);
}

/* scale_of_count(count, size) of adamkit.rules.cautious, in double (counts are exact in it). */
double ak_cautious_scale(double count, double size)
{
    double fraction = size ? count / size : 1.0;
    return 1.0 / (AK_MIN_KEPT_FRACTION > fraction ? AK_MIN_KEPT_FRACTION : fraction);
}

int ak_cautious_update(const ak_call *call, ak_segment_fn segment, const ak_scalars *scalars,
                       const ak_tensor_scalars *per_tensor)
{
    int64_t n = call->n_tensors;
    int64_t *block_offsets = ak_block_offsets(call, AK_CAUTIOUS_BLOCK);
    double *scales = malloc((size_t)n * sizeof *scales);
    double *totals = malloc((size_t)(2 * n) * sizeof *totals);
    int64_t *counts = NULL;
    int status = -1;
    if (!block_offsets || !scales || !totals)
        goto done;
    int64_t blocks = block_offsets[n];
    counts = malloc((size_t)(blocks > 0 ? blocks : 1) * sizeof *counts);
    if (!counts)
        goto done;
    cautious_plan plan = {call, segment, *scalars, per_tensor, block_offsets, counts, scales};
    ak_parallel_for(blocks, call->num_threads, 1, run_block, &plan);
    for (int64_t t = 0; t < n; t++) {
        int64_t kept = 0;
        for (int64_t b = block_offsets[t]; b < block_offsets[t + 1]; b++)
            kept += counts[b];
        totals[2 * t] = (double)kept;
        totals[2 * t + 1] = (double)call->numels[t];
    }
    if (call->reduce && call->reduce(call->reduce_context, totals, 2 * n) != 0) {
        status = AK_REDUCE_FAILED;
        goto done;
    }
    for (int64_t t = 0; t < n; t++)
        scales[t] = ak_cautious_scale(totals[2 * t], totals[2 * t + 1]);
    plan.counts = NULL;
    ak_parallel_for(blocks, call->num_threads, 1, run_block, &plan);
    status = 0;
done:
    free(block_offsets);
    free(scales);
    free(totals);
    free(counts);
    return status;
}
