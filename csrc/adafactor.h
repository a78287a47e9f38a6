/* ak_adafactor_update: Adafactor (adamkit.rules.adafactor), whose second moment of a tensor of
 * two or more dimensions is factored into row and column means, and whose step scales by two
 * root mean squares over the whole tensor (the parameter's and the update's).
 *
 * Tensors of one dtype (float32 or float64), contiguous. A tensor with rows > 0 is factored:
 * it is numel / (rows * cols) matrices of rows x cols (its last two dims), with row_var
 * (one per row of every matrix) and col_var (one per column of every matrix); a tensor with
 * rows == 0 keeps variance, of its size. The passes (adafactor.c):
 *   1. reductions: per block of rows of a matrix, each row's sum of squares of the gradient
 *      (in float64, adamkit.rules.lamb.squared_norm's order over the row) and the block's
 *      column sums (its rows added one by one); then, on the caller's thread, the column sums
 *      (the blocks added one by one), row_var, col_var and the mean of row_var per matrix;
 *   2. norms: per block of AK_NORM_BLOCK elements, the update U (a vector's variance updated
 *      and stored here) and the squares of the parameter and of U, in LAMB's lanes;
 *   3. apply: per block, U again, and the parameter stepped by its scale.
 * The sums follow adamkit.rules.adafactor's fixed order, so the bits equal the rule's on any
 * ISA and thread count. Per element: pass 1 reads the gradient, pass 2 the parameter and the
 * gradient (and the variance, written back), pass 3 the parameter and the gradient (and the
 * variance), writing the parameter. */
#ifndef ADAMKIT_ADAFACTOR_H
#define ADAMKIT_ADAFACTOR_H

#include "kernels_internal.h"

#define AK_NORM_BLOCK ((int64_t)4096)            /* adamkit.rules.lamb.NORM_BLOCK */
#define AK_FACTOR_BLOCK ((int64_t)1 << 16)       /* adamkit.rules.adafactor.FACTOR_BLOCK */

typedef struct {
    double lr, beta2_decay, eps1, eps2, d, weight_decay; /* eps1 resolved (not None) */
    int maximize;
} ak_adafactor_hyper;

typedef struct {
    int64_t numel, rows, cols; /* rows == 0: not factored */
    void *param;
    const void *grad;
    void *row_var, *col_var, *variance;
    double step;
} ak_adafactor_tensor;

/* What the passes read of one tensor besides its memory: this step's scalars in double (as the
 * rule's Python floats), and each matrix's mean of row_var, max(mean, eps1) in the dtype. */
typedef struct {
    double one_minus_beta2, rho, scale;
    double *row_var_means;
} ak_adafactor_scalars;

/* One ISA's and layout's passes (adafactor_lanes.h). */
typedef struct {
    void (*factor_rows)(const void *grad, int64_t rows, int64_t cols, double *row_sums, double *col_sums);
    void (*factors)(const ak_adafactor_tensor *t, const ak_adafactor_hyper *h, ak_adafactor_scalars *k,
                    const double *row_sums, const double *col_sums);
    void (*updates)(const ak_adafactor_tensor *t, const ak_adafactor_hyper *h, const ak_adafactor_scalars *k,
                    int64_t first, int64_t n, int store_variance, void *u);
    void (*squares)(const void *param, const void *u, int64_t n, double *lanes);
    void (*apply)(void *param, const void *u, int64_t n, const ak_adafactor_hyper *h, double scale);
} ak_adafactor_passes;

typedef struct {
    ak_isa isa;
    int num_threads;
    int float64;
    ak_adafactor_hyper hyper;
    int64_t n_tensors;
    const ak_adafactor_tensor *tensors;
} ak_adafactor_call;

extern const ak_adafactor_passes ak_adafactor_scalar[2];
#if AK_X86
extern const ak_adafactor_passes ak_adafactor_avx2[2];
extern const ak_adafactor_passes ak_adafactor_avx512[2];
#endif

/* The sum of AK_NORM_LANES lane sums in the fixed tree of adamkit.rules.lamb.squared_norm: of w
 * lanes, lane j becomes lane j plus lane j + w/2, until one is left. */
static inline double ak_adafactor_tree_sum(double *lanes)
{
    for (int width = AK_NORM_LANES / 2; width >= 1; width /= 2)
        for (int j = 0; j < width; j++)
            lanes[j] += lanes[j + width];
    return lanes[0];
}

/* Step every tensor of `call` in place; 0, or -1 out of memory or if the ISA is not run here. */
int ak_adafactor_update(const ak_adafactor_call *call);

#endif
