/* ak_update: one rule over a list of tensors, in parallel over the concatenated elements.
 *
 * The elements of all tensors, laid end to end, are cut into chunks of AK_CHUNK elements;
 * OpenMP threads take whole chunks as they become free (so a thread the OS deschedules does
 * not hold up the others), and each chunk is run as the pieces of the tensors it covers. Every element is computed by the same operations whichever thread, chunk or ISA
 * runs it, so the result does not depend on the thread count, nor on whether the tensors
 * come in one call or one per call. Worker threads run with the caller's floating-point
 * control register, so that flush-to-zero settings are the caller's too.
 */
#include <stdlib.h>

#include "kernels_internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define AK_CHUNK ((int64_t)1 << 15)

static const size_t PARAM_SIZE[AK_N_LAYOUTS] = {4, 8, 2, 2, 4};
static const size_t STATE_SIZE[AK_N_LAYOUTS] = {4, 8, 4, 2, 2};
/* Segments never cross a multiple of 2^32 elements of their tensor, so the rounding keys of a
 * segment (which depend on the index's upper 32 bits) hold for all of it. */
#define AK_KEY_SPAN ((int64_t)1 << 32)

ak_segment_fn ak_segment_for(ak_isa isa, ak_layout layout, ak_rule rule)
{
    switch (isa) {
#if AK_X86
    case AK_ISA_AVX512:
        return ak_segments_avx512[layout][rule];
    case AK_ISA_AVX2:
        return ak_segments_avx2[layout][rule];
#endif
    default:
        return ak_segments_scalar[layout][rule];
    }
}

int ak_isa_supported(ak_isa isa)
{
#if AK_X86
    __builtin_cpu_init();
    if (isa == AK_ISA_AVX512)
        return __builtin_cpu_supports("avx512f");
    if (isa == AK_ISA_AVX2)
        return __builtin_cpu_supports("avx2");
#endif
    return isa == AK_ISA_SCALAR;
}

int ak_default_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void ak_run_segment(const ak_call *call, ak_segment_fn segment, ak_scalars *scalars, int64_t t, int64_t first,
                    int64_t n)
{
    size_t param_size = PARAM_SIZE[call->layout], state_size = STATE_SIZE[call->layout];
    scalars->first_index = first;
    if (call->rounding_seeds)
        for (int s = 0; s < AK_MAX_SLOTS; s++)
            scalars->rounding_keys[s] = ak_rounding_key(call->rounding_seeds[t], (uint32_t)s, (uint32_t)(first >> 32));
    void *slot[AK_MAX_SLOTS];
    for (int s = 0; s < AK_MAX_SLOTS; s++)
        slot[s] = call->slots[s] ? ak_element_at(call->slots[s][t], first, state_size) : NULL;
    void *compensation = call->compensation ? ak_element_at(call->compensation[t], first, param_size) : NULL;
    segment(scalars, n, ak_element_at(call->params[t], first, param_size),
            ak_element_at((void *)call->grads[t], first, param_size), compensation, slot[0], slot[1], slot[2]);
}

int64_t *ak_block_offsets(const ak_call *call, int64_t block_size)
{
    int64_t *offsets = malloc((size_t)(call->n_tensors + 1) * sizeof *offsets);
    if (!offsets)
        return NULL;
    offsets[0] = 0;
    for (int64_t t = 0; t < call->n_tensors; t++)
        offsets[t + 1] = offsets[t] + (call->numels[t] + block_size - 1) / block_size;
    return offsets;
}

int64_t ak_block_at(const ak_call *call, const int64_t *offsets, int64_t block_size, int64_t block, int64_t *first,
                    int64_t *n)
{
    int64_t t = ak_tensor_at(offsets, call->n_tensors, block);
    *first = (block - offsets[t]) * block_size;
    *n = call->numels[t] - *first < block_size ? call->numels[t] - *first : block_size;
    return t;
}

typedef struct {
    const ak_call *call;
    ak_segment_fn segment;
    ak_scalars scalars;
    const ak_tensor_scalars *per_tensor;
    const int64_t *offsets; /* offsets[t] = elements of the tensors before t; [n_tensors + 1] */
} ak_plan;

/* Chunk `chunk` of the concatenated elements, as the pieces of the tensors it covers. */
static void run_element_chunk(const void *context, int64_t chunk, int thread)
{
    (void)thread;
    const ak_plan *plan = context;
    const ak_call *call = plan->call;
    ak_scalars scalars = plan->scalars;
    int64_t begin = chunk * AK_CHUNK, total = plan->offsets[call->n_tensors];
    int64_t end = begin + AK_CHUNK < total ? begin + AK_CHUNK : total;
    for (int64_t t = ak_tensor_at(plan->offsets, call->n_tensors, begin); begin < end;) {
        int64_t stop = plan->offsets[t + 1] < end ? plan->offsets[t + 1] : end;
        if (stop <= begin) {
            t++;
            continue;
        }
        int64_t first = begin - plan->offsets[t];
        int64_t key_span_end = plan->offsets[t] + (first / AK_KEY_SPAN + 1) * AK_KEY_SPAN;
        if (stop > key_span_end)
            stop = key_span_end;
        scalars.tensor = plan->per_tensor[t];
        ak_run_segment(call, plan->segment, &scalars, t, first, stop - begin);
        begin = stop;
        if (begin == plan->offsets[t + 1])
            t++;
    }
}

void ak_parallel_for(int64_t n_tasks, int threads, int grain, ak_task_fn task, const void *context)
{
#ifndef _OPENMP
    threads = 1;
#endif
    if (threads > n_tasks)
        threads = (int)n_tasks;
    if (threads <= 1) {
        for (int64_t i = 0; i < n_tasks; i++)
            task(context, i, 0);
        return;
    }
#ifdef _OPENMP
    ak_fp_control caller_csr = ak_fp_control_get();
#pragma omp parallel num_threads(threads)
    {
        ak_fp_control own_csr = ak_fp_control_get();
        ak_fp_control_set(caller_csr);
        int thread = omp_get_thread_num();
#pragma omp for schedule(dynamic, grain)
        for (int64_t i = 0; i < n_tasks; i++)
            task(context, i, thread);
        ak_fp_control_set(own_csr);
    }
#endif
}

/* Whether tensor t > 0 of `call` has the count of tensor t - 1: its step, and NAdam's momentum
 * product or AdamWScheduleFree's scheduled lr and averaging weight. */
static int same_count(const ak_call *call, int64_t t)
{
    if (!ak_rule_uses_step(call->rule))
        return 1;
    int same = call->steps[t] == call->steps[t - 1];
    if (call->mu_products)
        same = same && call->mu_products[t] == call->mu_products[t - 1];
    if (call->scheduled_lrs)
        same = same && call->scheduled_lrs[t] == call->scheduled_lrs[t - 1] &&
               call->averaging_weights[t] == call->averaging_weights[t - 1];
    return same;
}

/* The per-tensor scalars of tensor t of `call`. */
static void tensor_scalars(const ak_call *call, int64_t t, ak_tensor_scalars *out)
{
    double step = ak_rule_uses_step(call->rule) ? call->steps[t] : 1;
    ak_tensor_scalars_at(call->rule, &call->hyper, step, out);
    if (call->mu_products)
        ak_nadam_tensor_scalars(&call->hyper, step, call->mu_products[t], out);
    if (call->scheduled_lrs)
        ak_schedule_free_tensor_scalars(&call->hyper, step, call->scheduled_lrs[t], call->averaging_weights[t], out);
}

int ak_update(const ak_call *call)
{
    if (call->isa < 0 || call->isa >= AK_N_ISAS || !ak_isa_supported(call->isa))
        return -1;
    int64_t n = call->n_tensors;
    if (n <= 0)
        return 0;
    int64_t *offsets = malloc((size_t)(n + 1) * sizeof *offsets);
    ak_tensor_scalars *per_tensor = malloc((size_t)n * sizeof *per_tensor);
    if (!offsets || !per_tensor) {
        free(offsets);
        free(per_tensor);
        return -1;
    }
    ak_plan plan = {
        .call = call,
        .segment = ak_segment_for(call->isa, call->layout, call->rule),
        .per_tensor = per_tensor,
        .offsets = offsets,
    };
    ak_call_scalars(call->rule, &call->hyper, &plan.scalars);

    /* The per-tensor scalars; consecutive tensors with the same count share one computation. */
    offsets[0] = 0;
    for (int64_t t = 0; t < n; t++) {
        offsets[t + 1] = offsets[t] + call->numels[t];
        if (t == 0 || !same_count(call, t))
            tensor_scalars(call, t, &per_tensor[t]);
        else
            per_tensor[t] = per_tensor[t - 1];
        per_tensor[t].created = call->created ? call->created[t] : 0;
    }

    int status = 0;
    if (call->rule == AK_RULE_LAMB)
        status = ak_lamb_update(call, plan.segment, &plan.scalars, per_tensor);
    else if (call->hyper.cautious)
        status = ak_cautious_update(call, plan.segment, &plan.scalars, per_tensor);
    else
        ak_parallel_for((offsets[n] + AK_CHUNK - 1) / AK_CHUNK, call->num_threads, 1, run_element_chunk,
                        &plan);
    free(offsets);
    free(per_tensor);
    return status;
}
