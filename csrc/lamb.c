/* ak_lamb_update: LAMB (adamkit.rules.lamb), whose step scales each tensor's update by its
 * trust ratio ||param|| / ||update||, norms over the whole tensor.
 *
 * Two passes over blocks of AK_NORM_BLOCK consecutive elements of each tensor (the last block
 * of a tensor may be shorter), both run in parallel over all blocks of all tensors:
 *   1. lamb_lanes computes the new moments and the update r, and adds the squares of the
 *      parameter and of r, in float64, to AK_NORM_LANES lane sums each (element i to lane
 *      i % AK_NORM_LANES, in element order); the block's two sums are its lanes added in a
 *      fixed tree (lane_tree_sum). Float32 and float64 state is stored here;
 *   2. after the caller's thread has added each tensor's block sums one by one in block order
 *      (for a shard, then call->reduce makes them the whole tensor's: kernels_api.h) and made
 *      its step size lr * trust_ratio (in double, as the rule), lamb_lanes computes r
 *      again, from the stored moments (bfloat16 state: from the same inputs as pass 1, then
 *      stores the moments), and steps the parameter.
 * This is the order of adamkit.rules.lamb.squared_norm, whose lanes are the same for every
 * vector width, so the bits are the rule's whatever the thread count and the ISA. Per element,
 * pass 1 reads the parameter, gradient and state and writes the state; pass 2 reads the
 * parameter and state and writes the parameter (Spec.norm_pass, the traffic model's count).
 * For bfloat16 state, whose rounding would change r, pass 1 writes nothing and pass 2 reads
 * the gradient again.
 */
#include <stdlib.h>

#include "kernels_internal.h"

#define AK_NORM_BLOCK ((int64_t)4096) /* adamkit.rules.lamb.NORM_BLOCK */

typedef struct {
    const ak_call *call;
    ak_segment_fn segment;
    ak_scalars scalars;
    const ak_tensor_scalars *per_tensor;
    const int64_t *block_offsets; /* block_offsets[t] = blocks of the tensors before t */
    double *sums;                 /* two per block: the first pass */
    const double *step_sizes;     /* per tensor: the second pass */
} lamb_plan;

/* The sum of AK_NORM_LANES lane sums in the fixed tree of adamkit.rules.lamb.squared_norm: of w
 * lanes, lane j becomes lane j plus lane j + w/2, until one is left. */
static double lane_tree_sum(double *lanes)
{
    for (int width = AK_NORM_LANES / 2; width >= 1; width /= 2)
        for (int j = 0; j < width; j++)
            lanes[j] += lanes[j + width];
    return lanes[0];
}

static void run_block(const void *context, int64_t block, int thread)
{
    (void)thread;
    const lamb_plan *plan = context;
    const ak_call *call = plan->call;
    int64_t first, n;
    int64_t t = ak_block_at(call, plan->block_offsets, AK_NORM_BLOCK, block, &first, &n);
    _Alignas(64) double lanes[2 * AK_NORM_LANES] = {0};
    ak_scalars k = plan->scalars;
    k.tensor = plan->per_tensor[t];
    k.norm_end = first + n;
    if (plan->sums)
        k.norm_sums = lanes;
    else
        k.step_size = plan->step_sizes[t];
    /* A block never crosses a multiple of 2^32 elements: its rounding keys hold for all of it. */
    ak_run_segment(call, plan->segment, &k, t, first, n);
    if (plan->sums) {
        plan->sums[2 * block] = lane_tree_sum(lanes);
        plan->sums[2 * block + 1] = lane_tree_sum(lanes + AK_NORM_LANES);
    }
}

/* lr * trust_ratio(param_sq, update_sq, trust_clip) of adamkit.rules.lamb, in double. */
static double lamb_step_size(const ak_hyper *h, double param_sq, double update_sq)
{
    double ratio = param_sq == 0 || update_sq == 0 ? 1.0 : sqrt(param_sq) / sqrt(update_sq);
    if (h->trust_clip > 0 && ratio > h->trust_clip)
        ratio = h->trust_clip;
    return h->lr * ratio;
}

int ak_lamb_update(const ak_call *call, ak_segment_fn segment, const ak_scalars *scalars,
                   const ak_tensor_scalars *per_tensor)
{
    int64_t n = call->n_tensors;
    int64_t *block_offsets = ak_block_offsets(call, AK_NORM_BLOCK);
    double *step_sizes = malloc((size_t)n * sizeof *step_sizes);
    double *totals = malloc((size_t)(2 * n) * sizeof *totals);
    double *sums = NULL;
    int status = -1;
    if (!block_offsets || !step_sizes || !totals)
        goto done;
    int64_t blocks = block_offsets[n];
    sums = malloc((size_t)(2 * blocks > 0 ? 2 * blocks : 1) * sizeof *sums);
    if (!sums)
        goto done;
    lamb_plan plan = {call, segment, *scalars, per_tensor, block_offsets, sums, step_sizes};
    ak_parallel_for(blocks, call->num_threads, 1, run_block, &plan);
    for (int64_t t = 0; t < n; t++) {
        double param_sq = 0.0, update_sq = 0.0;
        for (int64_t b = block_offsets[t]; b < block_offsets[t + 1]; b++) {
            param_sq += sums[2 * b];
            update_sq += sums[2 * b + 1];
        }
        totals[2 * t] = param_sq;
        totals[2 * t + 1] = update_sq;
    }
    if (call->reduce && call->reduce(call->reduce_context, totals, 2 * n) != 0) {
        status = AK_REDUCE_FAILED;
        goto done;
    }
    for (int64_t t = 0; t < n; t++)
        step_sizes[t] = lamb_step_size(&call->hyper, totals[2 * t], totals[2 * t + 1]);
    plan.sums = NULL;
    ak_parallel_for(blocks, call->num_threads, 1, run_block, &plan);
    status = 0;
done:
    free(block_offsets);
    free(step_sizes);
    free(totals);
    free(sums);
    return status;
}
