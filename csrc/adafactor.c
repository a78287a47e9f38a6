/* ak_adafactor_update (adafactor.h): Adafactor's three passes over a list of tensors, each run
 * in parallel over fixed blocks, and the per-tensor scalars between them on the caller's thread
 * in the rule's order, so that the bits depend on neither the thread count nor the ISA. */
#include <math.h>
#include <stdlib.h>

#include "adafactor.h"

typedef struct {
    const ak_adafactor_call *call;
    const ak_adafactor_passes *passes;
    ak_adafactor_scalars *scalars;   /* per tensor */
    const int64_t *task_offsets;     /* pass 1: blocks of rows of the tensors before t */
    const int64_t *block_offsets;    /* passes 2 and 3: blocks of AK_NORM_BLOCK elements */
    double *row_sums, *col_partials; /* pass 1 */
    const int64_t *row_offsets, *partial_offsets;
    double *norm_sums;               /* pass 2: two per block */
    int size;                        /* bytes per element */
} adafactor_plan;

/* Rows per block of the column sums: max(1, FACTOR_BLOCK // cols), as the rule. */
static int64_t rows_per_block(const ak_adafactor_tensor *t)
{
    return t->cols < AK_FACTOR_BLOCK ? AK_FACTOR_BLOCK / t->cols : 1;
}

static int64_t blocks_per_matrix(const ak_adafactor_tensor *t)
{
    int64_t per_block = rows_per_block(t);
    return (t->rows + per_block - 1) / per_block;
}

static int64_t padded_cols(const ak_adafactor_tensor *t)
{
    return (t->cols + AK_NORM_LANES - 1) / AK_NORM_LANES * AK_NORM_LANES;
}

static void run_factor_block(const void *context, int64_t task, int thread)
{
    (void)thread;
    const adafactor_plan *plan = context;
    int64_t t = ak_tensor_at(plan->task_offsets, plan->call->n_tensors, task);
    const ak_adafactor_tensor *tensor = &plan->call->tensors[t];
    int64_t local = task - plan->task_offsets[t], per_matrix = blocks_per_matrix(tensor);
    int64_t matrix = local / per_matrix, first_row = local % per_matrix * rows_per_block(tensor);
    int64_t rows = tensor->rows - first_row < rows_per_block(tensor) ? tensor->rows - first_row : rows_per_block(tensor);
    int64_t row = matrix * tensor->rows + first_row;
    double *partial = plan->col_partials + plan->partial_offsets[t] + local * padded_cols(tensor);
    for (int64_t j = 0; j < padded_cols(tensor); j++)
        partial[j] = 0.0;
    plan->passes->factor_rows((const char *)tensor->grad + row * tensor->cols * plan->size, rows, tensor->cols,
                              plan->row_sums + plan->row_offsets[t] + row, partial);
}

static void run_norm_block(const void *context, int64_t block, int thread)
{
    (void)thread;
    const adafactor_plan *plan = context;
    const ak_adafactor_call *call = plan->call;
    int64_t t = ak_tensor_at(plan->block_offsets, call->n_tensors, block);
    const ak_adafactor_tensor *tensor = &call->tensors[t];
    int64_t first = (block - plan->block_offsets[t]) * AK_NORM_BLOCK;
    int64_t n = tensor->numel - first < AK_NORM_BLOCK ? tensor->numel - first : AK_NORM_BLOCK;
    _Alignas(64) double u[AK_NORM_BLOCK]; /* room for AK_NORM_BLOCK float64 or float32 updates */
    int norms = plan->norm_sums != NULL;
    plan->passes->updates(tensor, &call->hyper, &plan->scalars[t], first, n, norms, u);
    char *param = (char *)tensor->param + first * plan->size;
    if (norms) {
        _Alignas(64) double lanes[2 * AK_NORM_LANES] = {0};
        plan->passes->squares(param, u, n, lanes);
        plan->norm_sums[2 * block] = ak_adafactor_tree_sum(lanes);
        plan->norm_sums[2 * block + 1] = ak_adafactor_tree_sum(lanes + AK_NORM_LANES);
    } else {
        plan->passes->apply(param, u, n, &call->hyper, plan->scalars[t].scale);
    }
}

/* The root of a float64 sum of squares rounded to the dtype, as torch's norm(2).item(). */
static double dtype_norm(int float64, double squares)
{
    return float64 ? sqrt(squares) : (double)(float)sqrt(squares);
}

static const ak_adafactor_passes *passes_for(ak_isa isa, int float64)
{
    switch (isa) {
#if AK_X86
    case AK_ISA_AVX512:
        return &ak_adafactor_avx512[float64];
    case AK_ISA_AVX2:
        return &ak_adafactor_avx2[float64];
#endif
    default:
        return &ak_adafactor_scalar[float64];
    }
}

/* Per-tensor offsets of pass 1's tasks, row sums and column partial sums, and pass 2's blocks. */
static void count(const ak_adafactor_call *call, int64_t *tasks, int64_t *rows, int64_t *partials, int64_t *blocks)
{
    tasks[0] = rows[0] = partials[0] = blocks[0] = 0;
    for (int64_t t = 0; t < call->n_tensors; t++) {
        const ak_adafactor_tensor *tensor = &call->tensors[t];
        int64_t matrices = tensor->rows ? tensor->numel / (tensor->rows * tensor->cols) : 0;
        int64_t factor_tasks = tensor->rows ? matrices * blocks_per_matrix(tensor) : 0;
        tasks[t + 1] = tasks[t] + factor_tasks;
        rows[t + 1] = rows[t] + matrices * tensor->rows;
        partials[t + 1] = partials[t] + (tensor->rows ? factor_tasks * padded_cols(tensor) : 0);
        blocks[t + 1] = blocks[t] + (tensor->numel + AK_NORM_BLOCK - 1) / AK_NORM_BLOCK;
    }
}

/* After pass 1: each tensor's column sums (its blocks added one by one), then its factors. */
static int update_factors(adafactor_plan *plan)
{
    const ak_adafactor_call *call = plan->call;
    for (int64_t t = 0; t < call->n_tensors; t++) {
        const ak_adafactor_tensor *tensor = &call->tensors[t];
        if (!tensor->rows)
            continue;
        int64_t matrices = tensor->numel / (tensor->rows * tensor->cols), per_matrix = blocks_per_matrix(tensor);
        double *col_sums = calloc((size_t)(matrices * tensor->cols), sizeof *col_sums);
        if (!col_sums)
            return -1;
        for (int64_t m = 0; m < matrices; m++)
            for (int64_t b = 0; b < per_matrix; b++) {
                const double *partial = plan->col_partials + plan->partial_offsets[t] + (m * per_matrix + b) * padded_cols(tensor);
                for (int64_t j = 0; j < tensor->cols; j++)
                    col_sums[m * tensor->cols + j] += partial[j];
            }
        plan->passes->factors(tensor, &call->hyper, &plan->scalars[t], plan->row_sums + plan->row_offsets[t], col_sums);
        free(col_sums);
    }
    return 0;
}

/* After pass 2: each tensor's step scale, -alpha / denom, in double as the rule. */
static void set_scales(adafactor_plan *plan)
{
    const ak_adafactor_call *call = plan->call;
    const ak_adafactor_hyper *h = &call->hyper;
    for (int64_t t = 0; t < call->n_tensors; t++) {
        const ak_adafactor_tensor *tensor = &call->tensors[t];
        double param_sq = 0.0, update_sq = 0.0;
        for (int64_t b = plan->block_offsets[t]; b < plan->block_offsets[t + 1]; b++) {
            param_sq += plan->norm_sums[2 * b];
            update_sq += plan->norm_sums[2 * b + 1];
        }
        double root_numel = pow((double)tensor->numel, 0.5);
        double rms = dtype_norm(call->float64, param_sq) / root_numel;
        double alpha = (rms > h->eps2 ? rms : h->eps2) * plan->scalars[t].rho;
        double clipped = dtype_norm(call->float64, update_sq) / (root_numel * h->d);
        double denom = clipped > 1.0 ? clipped : 1.0;
        plan->scalars[t].scale = -alpha / denom;
    }
}

/* The threads worth waking: one per AK_THREAD_ELEMENTS elements, at most call->num_threads (a
 * parallel region costs more than a small step; the bits do not depend on it). */
#define AK_THREAD_ELEMENTS ((int64_t)1 << 15)
static int worth_threads(const ak_adafactor_call *call)
{
    int64_t elements = 0;
    for (int64_t t = 0; t < call->n_tensors; t++)
        elements += call->tensors[t].numel;
    int64_t worth = elements / AK_THREAD_ELEMENTS > 1 ? elements / AK_THREAD_ELEMENTS : 1;
    return worth < call->num_threads ? (int)worth : call->num_threads;
}

int ak_adafactor_update(const ak_adafactor_call *call)
{
    if (call->isa < 0 || call->isa >= AK_N_ISAS || !ak_isa_supported(call->isa))
        return -1;
    int64_t n = call->n_tensors;
    int status = -1;
    int64_t *offsets = malloc((size_t)(4 * (n + 1)) * sizeof *offsets);
    ak_adafactor_scalars *scalars = calloc((size_t)(n > 0 ? n : 1), sizeof *scalars);
    double *row_sums = NULL, *partials = NULL, *norm_sums = NULL, *means = NULL;
    if (!offsets || !scalars)
        goto done;
    int64_t *tasks = offsets, *rows = offsets + (n + 1), *partial_offsets = offsets + 2 * (n + 1),
            *blocks = offsets + 3 * (n + 1);
    count(call, tasks, rows, partial_offsets, blocks);
    row_sums = malloc((size_t)(rows[n] > 0 ? rows[n] : 1) * sizeof *row_sums);
    partials = malloc((size_t)(partial_offsets[n] > 0 ? partial_offsets[n] : 1) * sizeof *partials);
    norm_sums = malloc((size_t)(blocks[n] > 0 ? 2 * blocks[n] : 1) * sizeof *norm_sums);
    int64_t matrices = 0;
    for (int64_t t = 0; t < n; t++)
        matrices += call->tensors[t].rows ? call->tensors[t].numel / (call->tensors[t].rows * call->tensors[t].cols) : 0;
    means = malloc((size_t)(matrices > 0 ? matrices : 1) * sizeof *means);
    if (!row_sums || !partials || !norm_sums || !means)
        goto done;
    for (int64_t t = 0, m = 0; t < n; t++) {
        const ak_adafactor_tensor *tensor = &call->tensors[t];
        /* one_minus_beta2 = step**beta2_decay; rho = min(lr, 1 / (step**0.5)) */
        scalars[t].one_minus_beta2 = pow(tensor->step, call->hyper.beta2_decay);
        double inverse_root = 1 / pow(tensor->step, 0.5);
        scalars[t].rho = inverse_root < call->hyper.lr ? inverse_root : call->hyper.lr;
        scalars[t].row_var_means = means + m;
        m += tensor->rows ? tensor->numel / (tensor->rows * tensor->cols) : 0;
    }
    adafactor_plan plan = {call, passes_for(call->isa, call->float64), scalars, tasks, blocks,
                           row_sums, partials, rows, partial_offsets, NULL, call->float64 ? 8 : 4};
    int threads = worth_threads(call);
    ak_parallel_for(tasks[n], threads, 1, run_factor_block, &plan);
    if (update_factors(&plan) < 0)
        goto done;
    plan.norm_sums = norm_sums;
    ak_parallel_for(blocks[n], threads, 1, run_norm_block, &plan);
    set_scales(&plan);
    plan.norm_sums = NULL;
    ak_parallel_for(blocks[n], threads, 1, run_norm_block, &plan);
    status = 0;
done:
    free(offsets);
    free(scalars);
    free(row_sums);
    free(partials);
    free(norm_sums);
    free(means);
    return status;
}
