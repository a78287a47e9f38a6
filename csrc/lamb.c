/* ak_lamb_update: LAMB (adamkit.rules.lamb), whose step scales each tensor's update by its
 * trust ratio ||param|| / ||update||, norms over the whole tensor.
 *
 * Two passes over blocks of AK_NORM_BLOCK consecutive elements of each tensor (the last block
 * of a tensor may be shorter), each block run by LAMB's segment (rules_lamb.h):
 *   1. the norm pass computes the new moments and the update r, and adds the squares of the
 *      parameter and of r, in float64, to AK_NORM_LANES lane sums each (element i to lane
 *      i % AK_NORM_LANES, in element order); the block's two sums are its lanes added in a
 *      fixed tree (lane_tree_sum). Float32 and float64 state is stored here;
 *   2. once every block of a tensor has had its norm pass, its block sums are added one by one
 *      in block order (for a shard, then call->reduce makes them the whole tensor's:
 *      kernels_api.h) and its step size lr * trust_ratio made (in double, as the rule); the
 *      apply pass computes r again, from the stored moments (bfloat16 state: from the same
 *      inputs as pass 1, then stores the moments), and steps the parameter.
 * This is the order of adamkit.rules.lamb.squared_norm, whose lanes are the same for every
 * vector width, so the bits are the rule's whatever the thread count, the ISA and the order in
 * which the blocks are run. Per element, pass 1 reads the parameter, gradient and state and
 * writes the state; pass 2 reads the parameter and state and writes the parameter
 * (Spec.norm_pass, the traffic model's count). For bfloat16 state, whose rounding would change
 * r, pass 1 writes nothing and pass 2 reads the gradient again.
 *
 * The passes run in one parallel loop over a list of tasks (lamb_schedule): each tensor's
 * apply blocks come AK_LAMB_LAG norm blocks after its last norm block, so that a tensor's
 * apply pass runs while the parameter and state its norm pass just read are still in the
 * cache (a tensor that fits in it is read from memory once per step), and no barrier between
 * the passes waits for the slowest thread. The thread that finishes a tensor's last norm block
 * makes its step size. An apply block whose tensor's step size is not made yet (its last norm
 * block is still running on another thread, which the OS may have descheduled) is put aside,
 * not waited for, and run by the caller after the loop. A call with a reduce (shards under
 * FSDP2) runs the norm pass of every block, then the reduce on the caller's thread, then the
 * apply pass of every block: the whole tensor's norms are known only once every process has
 * finished its norm pass.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "kernels_internal.h"

#define AK_NORM_BLOCK ((int64_t)4096) /* adamkit.rules.lamb.NORM_BLOCK */
#define AK_LAMB_LAG ((int64_t)16)     /* norm blocks between a tensor's last and its apply blocks */

typedef struct {
    const ak_call *call;
    ak_segment_fn segment;
    ak_scalars scalars;
    const ak_tensor_scalars *per_tensor;
    const int64_t *block_offsets; /* block_offsets[t] = blocks of the tensors before t */
    const int64_t *tasks;         /* block b's norm pass is task b, its apply pass blocks + b */
    double *sums;                 /* two per block: the norm pass's */
    double *step_sizes;           /* per tensor: lr * trust_ratio */
    atomic_llong *norm_blocks_left; /* per tensor: its blocks whose norm pass has not finished */
    atomic_int *step_size_made;     /* per tensor: 1 once step_sizes[t] is made */
    int64_t *put_aside;             /* the apply blocks put aside, */
    atomic_llong *put_aside_count;  /* and their count */
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

/* lr * trust_ratio(param_sq, update_sq, trust_clip) of adamkit.rules.lamb, in double. */
static double lamb_step_size(const ak_hyper *h, double param_sq, double update_sq)
{
    double ratio = param_sq == 0 || update_sq == 0 ? 1.0 : sqrt(param_sq) / sqrt(update_sq);
    if (h->trust_clip > 0 && ratio > h->trust_clip)
        ratio = h->trust_clip;
    return h->lr * ratio;
}

/* Tensor t's squared norms of the parameter and of r, its blocks' sums added one by one in
 * block order, in totals[0] and totals[1]. */
static void tensor_sums(const lamb_plan *plan, int64_t t, double *totals)
{
    totals[0] = totals[1] = 0.0;
    for (int64_t b = plan->block_offsets[t]; b < plan->block_offsets[t + 1]; b++) {
        totals[0] += plan->sums[2 * b];
        totals[1] += plan->sums[2 * b + 1];
    }
}

/* Tensor t's step size from its blocks' sums. */
static double tensor_step_size(const lamb_plan *plan, int64_t t)
{
    double totals[2];
    tensor_sums(plan, t, totals);
    return lamb_step_size(&plan->call->hyper, totals[0], totals[1]);
}

/* The norm pass of block `block`: its two sums; the last of its tensor's blocks to finish makes
 * the tensor's step size. */
static void norm_block(const lamb_plan *plan, int64_t block)
{
    int64_t first, n;
    int64_t t = ak_block_at(plan->call, plan->block_offsets, AK_NORM_BLOCK, block, &first, &n);
    _Alignas(64) double lanes[2 * AK_NORM_LANES] = {0};
    ak_scalars k = plan->scalars;
    k.tensor = plan->per_tensor[t];
    k.norm_sums = lanes;
    /* A block never crosses a multiple of 2^32 elements: its rounding keys hold for all of it. */
    ak_run_segment(plan->call, plan->segment, &k, t, first, n);
    plan->sums[2 * block] = lane_tree_sum(lanes);
    plan->sums[2 * block + 1] = lane_tree_sum(lanes + AK_NORM_LANES);
    if (atomic_fetch_sub_explicit(&plan->norm_blocks_left[t], 1, memory_order_acq_rel) == 1) {
        plan->step_sizes[t] = tensor_step_size(plan, t);
        atomic_store_explicit(&plan->step_size_made[t], 1, memory_order_release);
    }
}

/* The apply pass of block `block`, if its tensor's step size is made (else the block is put
 * aside). */
static void apply_block(const lamb_plan *plan, int64_t block)
{
    int64_t first, n;
    int64_t t = ak_block_at(plan->call, plan->block_offsets, AK_NORM_BLOCK, block, &first, &n);
    if (!atomic_load_explicit(&plan->step_size_made[t], memory_order_acquire)) {
        plan->put_aside[atomic_fetch_add_explicit(plan->put_aside_count, 1, memory_order_relaxed)] = block;
        return;
    }
    ak_scalars k = plan->scalars;
    k.tensor = plan->per_tensor[t];
    k.norm_sums = NULL;
    k.step_size = plan->step_sizes[t];
    ak_run_segment(plan->call, plan->segment, &k, t, first, n);
}

static void run_task(const void *context, int64_t position, int thread)
{
    (void)thread;
    const lamb_plan *plan = context;
    int64_t blocks = plan->block_offsets[plan->call->n_tensors], task = plan->tasks[position];
    if (task < blocks)
        norm_block(plan, task);
    else
        apply_block(plan, task - blocks);
}

/* The tasks in the order the threads take them: the norm blocks in order, each tensor's apply
 * blocks after the norm block AK_LAMB_LAG blocks past its last (or at the end). */
static void lamb_schedule(const int64_t *block_offsets, int64_t n_tensors, int64_t *tasks)
{
    int64_t blocks = block_offsets[n_tensors], position = 0, t = 0;
    for (int64_t b = 0; b <= blocks; b++) {
        if (b < blocks)
            tasks[position++] = b;
        for (; t < n_tensors && (block_offsets[t + 1] + AK_LAMB_LAG <= b + 1 || b == blocks); t++)
            for (int64_t a = block_offsets[t]; a < block_offsets[t + 1]; a++)
                tasks[position++] = blocks + a;
    }
}

/* Every tensor's step size from its sums made whole by call->reduce: 0, or AK_REDUCE_FAILED. */
static int reduced_step_sizes(const lamb_plan *plan, double *totals)
{
    const ak_call *call = plan->call;
    for (int64_t t = 0; t < call->n_tensors; t++)
        tensor_sums(plan, t, totals + 2 * t);
    if (call->reduce(call->reduce_context, totals, 2 * call->n_tensors) != 0)
        return AK_REDUCE_FAILED;
    for (int64_t t = 0; t < call->n_tensors; t++)
        plan->step_sizes[t] = lamb_step_size(&call->hyper, totals[2 * t], totals[2 * t + 1]);
    return 0;
}

/* The passes one after the other, with the reduce between them (the header comment). */
static int run_reduced(lamb_plan *plan, int64_t *tasks, double *totals)
{
    int64_t blocks = plan->block_offsets[plan->call->n_tensors];
    for (int64_t i = 0; i < 2 * blocks; i++)
        tasks[i] = i;
    ak_parallel_for(blocks, plan->call->num_threads, 1, run_task, plan);
    int status = reduced_step_sizes(plan, totals);
    if (status != 0)
        return status;
    plan->tasks = tasks + blocks;
    ak_parallel_for(blocks, plan->call->num_threads, 1, run_task, plan);
    return 0;
}

int ak_lamb_update(const ak_call *call, ak_segment_fn segment, const ak_scalars *scalars,
                   const ak_tensor_scalars *per_tensor)
{
    int64_t n = call->n_tensors;
    int64_t *block_offsets = ak_block_offsets(call, AK_NORM_BLOCK);
    double *step_sizes = malloc((size_t)n * sizeof *step_sizes);
    atomic_llong *norm_blocks_left = malloc((size_t)n * sizeof *norm_blocks_left);
    atomic_int *step_size_made = malloc((size_t)n * sizeof *step_size_made);
    double *totals = malloc((size_t)(2 * n > 0 ? 2 * n : 1) * sizeof *totals);
    double *sums = NULL;
    int64_t *tasks = NULL, *put_aside = NULL;
    atomic_llong put_aside_count;
    int status = -1;
    if (!block_offsets || !step_sizes || !norm_blocks_left || !step_size_made || !totals)
        goto done;
    int64_t blocks = block_offsets[n];
    size_t per_block = (size_t)(blocks > 0 ? blocks : 1);
    sums = malloc(2 * per_block * sizeof *sums);
    tasks = malloc(2 * per_block * sizeof *tasks);
    put_aside = malloc(per_block * sizeof *put_aside);
    if (!sums || !tasks || !put_aside)
        goto done;
    for (int64_t t = 0; t < n; t++) {
        atomic_init(&norm_blocks_left[t], block_offsets[t + 1] - block_offsets[t]);
        atomic_init(&step_size_made[t], 0);
    }
    atomic_init(&put_aside_count, 0);
    lamb_plan plan = {
        .call = call,
        .segment = segment,
        .scalars = *scalars,
        .per_tensor = per_tensor,
        .block_offsets = block_offsets,
        .tasks = tasks,
        .sums = sums,
        .step_sizes = step_sizes,
        .norm_blocks_left = norm_blocks_left,
        .step_size_made = step_size_made,
        .put_aside = put_aside,
        .put_aside_count = &put_aside_count,
    };
    if (call->reduce) {
        status = run_reduced(&plan, tasks, totals);
        goto done;
    }
    lamb_schedule(block_offsets, n, tasks);
    ak_parallel_for(2 * blocks, call->num_threads, 1, run_task, &plan);
    /* Every step size is made now. */
    for (int64_t i = 0; i < atomic_load(&put_aside_count); i++)
        apply_block(&plan, put_aside[i]);
    status = 0;
done:
    free(block_offsets);
    free(step_sizes);
    free(totals);
    free(norm_blocks_left);
    free(step_size_made);
    free(sums);
    free(tasks);
    free(put_aside);
    return status;
}
