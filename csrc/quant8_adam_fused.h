/* ak_q8_adam_run_<ISA>: Adam/AdamW/AMSGrad on 8-bit state, for a run of whole blocks, each
 * block's update fused with the previous block's encoding; for AVX-512 (BW, VL) and AVX2.
 *
 * quant8.c updates a block into float32 buffers and then encodes them with the block's new
 * maxima, in two loops: the update's square root and two divisions, and the signed code's square
 * root, queue on the one divider while the other units wait, and the encoding's work does not
 * overlap the update's. Here one loop updates block b and encodes block b - 1 (whose maxima are
 * known by then), and the unsigned code's estimate is a reciprocal square root, not a division.
 * It computes the same float32 operations as quant8.c's portable loops, in the same order: the
 * same bits (tests/compact/test_kernel.py, on every ISA). The loop is written once
 * (quant8_adam_fused_loop.h) over the vector operations each ISA's file defines
 * (quant8_adam_avx512.c, quant8_adam_avx2.c).
 */
#ifndef ADAMKIT_QUANT8_ADAM_FUSED_H
#define ADAMKIT_QUANT8_ADAM_FUSED_H

#include <stdint.h>

#include "kernels_internal.h"

/* n_blocks consecutive whole blocks of AK_Q8_BLOCK elements of one row: their parameters and
 * gradients, and per slot of Adam's state (exp_avg int8, exp_avg_sq uint8 and, with AMSGrad,
 * max_exp_avg_sq uint8) the codes and one scale per block. */
typedef struct {
    int64_t n_blocks;
    float *param;
    const float *grad;
    void *codes[AK_MAX_SLOTS];
    float *scales[AK_MAX_SLOTS];
} ak_q8_run;

/* Step the run in place. k: the tensor's scalars (k->amsgrad: three slots, else two); decay:
 * AK_Q8_PLAIN, AK_Q8_L2 or AK_Q8_DECOUPLED. Each only on CPUs with its instruction set:
 * AVX512F, BW and VL, or AVX2. */
typedef void (*ak_q8_adam_runner)(const ak_scalars *k, int maximize, int decay, const ak_q8_run *run);
void ak_q8_adam_run_avx512(const ak_scalars *k, int maximize, int decay, const ak_q8_run *run);
void ak_q8_adam_run_avx2(const ak_scalars *k, int maximize, int decay, const ak_q8_run *run);

#endif
