/* bfloat16 parameters on 8-bit state (quant8.h): the load and store layer around the 8-bit step.
 *
 * A span's bfloat16 parameters and gradients are widened to float32 (exact: a bfloat16 is the
 * upper half of a float32) into the thread's scratch, the span is stepped there as float32
 * parameters are (decode, the rule in float32, encode), and each new value t is stored as the
 * dense bfloat16 layouts store it (rules.h, store_param): rounded to nearest even, or with a
 * Kahan compensation buffer c,
 *     s = t + c;   param = bf16(s);   c = bf16(s - float32(param))
 * Every NaN is stored as the quiet NaN 0x7FC0, as torch and the dense layouts store it. The
 * loops are plain C on bit patterns, which the compiler vectorises for the ISA of run_span.
 */
#ifndef ADAMKIT_QUANT8_BF16_H
#define ADAMKIT_QUANT8_BF16_H

#include <stdint.h>
#include <string.h>

#include "quant8_codec.h"

static inline __attribute__((always_inline)) float ak_q8_bf16_value(uint16_t h)
{
    return ak_q8_as_float((uint32_t)h << 16);
}

/* x rounded to the nearest bfloat16, ties to even; a NaN becomes 0x7FC0. */
static inline __attribute__((always_inline)) uint16_t ak_q8_bf16_rounded(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    return (uint16_t)((bits & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FC0u : rounded);
}

/* out[i] = float32(in[i]) for i < n. */
static inline __attribute__((always_inline)) void ak_q8_bf16_widen(int64_t n, const uint16_t *in, float *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = ak_q8_bf16_value(in[i]);
}

/* Store the n new values t into param, rounded, with the compensation buffer if it is not NULL. */
static inline __attribute__((always_inline)) void ak_q8_bf16_store(int64_t n, const float *t, uint16_t *param,
                                                                   uint16_t *compensation)
{
    if (!compensation) {
        for (int64_t i = 0; i < n; i++)
            param[i] = ak_q8_bf16_rounded(t[i]);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float s = t[i] + ak_q8_bf16_value(compensation[i]);
        uint16_t rounded = ak_q8_bf16_rounded(s);
        param[i] = rounded;
        compensation[i] = ak_q8_bf16_rounded(s - ak_q8_bf16_value(rounded));
    }
}

#endif
