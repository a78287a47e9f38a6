/* Adam, AdamW, Adamax, Adadelta and NAdam on 8-bit block-wise state: one fused pass per block.
 *
 * The state codec is adamkit/compact/int8.py (the NumPy reference): blocks of
 * AK_Q8_BLOCK elements, one float32 absolute maximum s per block, and two maps,
 *   signed    int8,  x = s * t|t|,   t = c/127,  c = sign(x) rint(127 sqrt(|x|/s))
 *   unsigned  uint8, x = s * (t^2)^2, t = c/255, c = [255 (x/s)^(1/4)] (nearest, a half up:
 *             the count of thresholds (j + 1/2)^2 at or below sqrt(x) 255^2 / sqrt(s))
 * The slots of each rule, in the order of adamkit.specs, and their maps:
 *   Adam      exp_avg signed, exp_avg_sq unsigned, max_exp_avg_sq unsigned (amsgrad)
 *   Adamax    exp_avg signed, exp_inf unsigned
 *   Adadelta  square_avg unsigned, acc_delta unsigned
 *   RAdam     exp_avg signed, exp_avg_sq unsigned
 * For each block the kernel decodes the state, applies the rule of adamkit.rules in float32
 * in the rule's order (parameters updated in place), then re-encodes with the block's new
 * maxima: every byte of state and parameters is read and written once. Blocks are
 * independent, so the result does not depend on the thread count. On AVX-512 and AVX2, Adam
 * updates each block in the same loop as it encodes the previous one (quant8_adam_fused.h).
 *
 * bfloat16 parameters (bf16_params) are widened to float32 a span at a time, stepped as float32
 * parameters are, and stored rounded to nearest even, optionally with Kahan compensation
 * (quant8_bf16.h): the same bits as the dense bfloat16 layouts' store.
 *
 * Blocks restart at every row of row_numels[t] elements (the last block of a row may be
 * shorter); the scales of a tensor are ordered row by row. A flat tensor is one row.
 */
#ifndef ADAMKIT_QUANT8_H
#define ADAMKIT_QUANT8_H

#include <stdint.h>

#include "kernels_api.h"

#define AK_Q8_BLOCK 256

/* How a rule applies weight decay: not at all, as an L2 term in the gradient, or decoupled. */
enum { AK_Q8_PLAIN, AK_Q8_L2, AK_Q8_DECOUPLED };

typedef struct {
    ak_rule rule;                   /* one for which ak_q8_slots is not 0 */
    ak_isa isa;                     /* supported by this CPU: the instruction set it runs */
    ak_hyper hyper;
    int num_threads;                /* > 0 */
    int64_t n_tensors;
    const int64_t *numels;          /* [n_tensors] */
    const int64_t *row_numels;      /* [n_tensors] elements per row, dividing numels[t] */
    void *const *params;            /* [n_tensors] float32, or bfloat16 with bf16_params */
    const void *const *grads;       /* [n_tensors] of the parameters' dtype */
    /* Per slot, the first ak_q8_slots() given, the others NULL: */
    void *const *codes[AK_MAX_SLOTS];   /* [n_tensors] numel codes each, int8 for the signed
                                           map, uint8 for the unsigned */
    float *const *absmax[AK_MAX_SLOTS]; /* [n_tensors] rows * ceil(row_numel / AK_Q8_BLOCK)
                                           scales each */
    const double *steps;            /* [n_tensors], this step included */
    const double *mu_products;      /* [n_tensors] or NULL: NAdam's, as ak_call's */
    int bf16_params;                /* parameters and gradients are bfloat16 (quant8_bf16.h) */
    uint16_t *const *compensation;  /* [n_tensors] bfloat16 Kahan buffers, or NULL; bf16_params only */
} ak_q8_call;

/* How many slots `rule` steps with these hyperparameters (its first ones, in order), or 0 if
 * the rule has no 8-bit state. */
int ak_q8_slots(ak_rule rule, const ak_hyper *hyper);

/* Step every tensor in place. Returns 0, or -1 if memory for the plan could not be allocated. */
int ak_q8_update(const ak_q8_call *call);

#endif
