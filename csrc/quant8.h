/* Adam and AdamW on 8-bit block-wise state: one fused pass per block.
 *
 * The state codec is adamkit/quant/blockwise.py (the NumPy reference): blocks of
 * AK_Q8_BLOCK elements, one float32 absolute maximum s per block, and
 *   exp_avg          int8,  m = s * t|t|,   t = c/127,  c = sign(m) rint(127 sqrt(|m|/s))
 *   exp_avg_sq       uint8, v = s * (t^2)^2, t = c/255, c = rint(255 (v/s)^(1/4))
 *   max_exp_avg_sq   uint8, as exp_avg_sq (amsgrad)
 * For each block the kernel decodes the state into float32 buffers on the stack, applies
 * adamkit.rules.adam in float32 in the rule's order (parameters updated in place), then
 * re-encodes with the block's new maxima: every byte of state and parameters is read and
 * written once. Blocks are independent, so the result does not depend on the thread count.
 *
 * Blocks restart at every row of row_numels[t] elements (the last block of a row may be
 * shorter); the scales of a tensor are ordered row by row. A flat tensor is one row.
 */
#ifndef ADAMKIT_QUANT8_H
#define ADAMKIT_QUANT8_H

#include <stdint.h>

#include "adamkit_kernels.h"

#define AK_Q8_BLOCK 256

typedef struct {
    ak_hyper hyper;                 /* lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
                                       decoupled_weight_decay, eps_hat */
    int num_threads;                /* > 0 */
    int64_t n_tensors;
    const int64_t *numels;          /* [n_tensors] */
    const int64_t *row_numels;      /* [n_tensors] elements per row, dividing numels[t] */
    float *const *params;           /* [n_tensors] float32 */
    const float *const *grads;      /* [n_tensors] float32 */
    int8_t *const *exp_avg;         /* [n_tensors] numel codes each */
    float *const *exp_avg_absmax;   /* [n_tensors] rows * ceil(row_numel / AK_Q8_BLOCK) scales */
    uint8_t *const *exp_avg_sq;
    float *const *exp_avg_sq_absmax;
    uint8_t *const *max_exp_avg_sq; /* NULL unless hyper.amsgrad */
    float *const *max_exp_avg_sq_absmax;
    const double *steps;            /* [n_tensors], this step included */
} ak_q8_call;

/* Step every tensor in place. Returns 0, or -1 if memory for the plan could not be allocated. */
int ak_q8_adam(const ak_q8_call *call);

#endif
