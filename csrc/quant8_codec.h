/* The 8-bit codec's constants and per-block factors, shared by quant8.c and
 * the fused Adam step (quant8_adam_fused_loop.h; adamkit/compact/int8.py is the reference). */
#ifndef ADAMKIT_QUANT8_CODEC_H
#define ADAMKIT_QUANT8_CODEC_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define AK_Q8_ROUNDER 8388608.0f /* 2^23: (r + 2^23) - 2^23 is rint(r) for 0 <= r < 2^23 */
#define AK_Q8_SIGNED_UNIT 16129.0f /* 127^2 */
/* The largest signed code. |x| (1/s) of a block's largest |x| is at most 1 rounding to nearest,
 * down or toward zero, but rounding upward it can be 1 + 2^-23, and 127 sqrt(|x|/s) then rounds
 * to 128, which as int8 is -128 (the value would decode with the opposite sign), and an infinite
 * x (ak_q8_scale) gives inf: every encoder takes the smaller of its magnitude and this, before
 * rounding or after (the same code). */
#define AK_Q8_SIGNED_MAX 127.0f
#define AK_Q8_UNSIGNED_UNIT 4228250625.0f /* 255^4, rounded to float */
#define AK_Q8_UNSIGNED_SQUARE_LEVELS 65025.0f /* 255^2 */
/* The unsigned code is floor(e + margin) or one more, from any estimate e of its square root
 * within the margin (quant8.c, unsigned_code). */
#define AK_Q8_ESTIMATE_MARGIN 0.25f

/* A block's scale: its largest |x| clamped at FLT_MAX. An infinity (a moment that overflowed)
 * would make an infinite scale, and x/inf and 0 * inf NaN for the whole block; with the scale
 * FLT_MAX it gets the largest code (every encoder takes at most 127, or w at most 255^2) and
 * the others codes of their own. A NaN stays NaN (the comparison is false for it). */
static inline float ak_q8_scale(float absmax) { return absmax > FLT_MAX ? FLT_MAX : absmax; }

/* Whether a block's scale is finite, that is not NaN: a block holding a NaN has the scale NaN,
 * decodes to NaN whatever its codes, and gets codes 0. */
static inline int ak_q8_finite(float s) { return s <= FLT_MAX; }

/* The signed map computes u = (x b) (1 / (s b)) = x/s, with b = 2^64 for a scale below 2^-64,
 * b = 2^-64 above 2^126, and 1 otherwise (s = 1 for zeros): for a subnormal scale 1/s would
 * overflow, and above 2^126 it would be subnormal (0 under flush-to-zero, and an infinite x
 * times 0 is NaN). s b is exact, and so is x b for every x whose code can be other than 0.
 * ak_q8_signed_boost is b, ak_q8_signed_factor 1 / (s b). */
#define AK_Q8_SMALL_SCALE 0x1p-64f
#define AK_Q8_SCALE_BOOST 0x1p64f
#define AK_Q8_LARGE_SCALE 0x1p126f
#define AK_Q8_LARGE_SCALE_BOOST 0x1p-64f

static inline float ak_q8_signed_boost(float s)
{
    if (s > 0.0f && s < AK_Q8_SMALL_SCALE)
        return AK_Q8_SCALE_BOOST;
    return s > AK_Q8_LARGE_SCALE ? AK_Q8_LARGE_SCALE_BOOST : 1.0f;
}

static inline float ak_q8_signed_factor(float s) { return 1.0f / ((s > 0.0f ? s : 1.0f) * ak_q8_signed_boost(s)); }

static inline float ak_q8_as_float(uint32_t bits)
{
    float result;
    memcpy(&result, &bits, sizeof result);
    return result;
}

/* The unsigned map's factor for a block of maximum s: 255^2 / sqrt(s) (s = 1 for zeros). */
static inline float ak_q8_unsigned_factor(float s)
{
    return AK_Q8_UNSIGNED_SQUARE_LEVELS / sqrtf(s > 0.0f ? s : 1.0f);
}

/* The unsigned code's w = sqrt(x) * factor, at most 255^2: a finite x has w within rounding of
 * that or below, and its code is the same; an infinity has w = inf, whose square root
 * estimate would be NaN (inf * rsqrt(inf) = inf * 0), and gets the largest code, 255. The
 * minimum is taken on the bit patterns of |w| (w is not negative, and a -0 has the code of 0
 * either way), whose integer order is the float order: GCC vectorises the loops with an integer
 * minimum, and not with a float one, whose branch it threads and cannot if-convert under
 * trapping math. */
static inline float ak_q8_unsigned_w(float root, float factor)
{
    const float top = AK_Q8_UNSIGNED_SQUARE_LEVELS;
    float w = root * factor;
    int32_t bits, top_bits;
    memcpy(&bits, &w, sizeof bits);
    memcpy(&top_bits, &top, sizeof top_bits);
    bits &= 0x7fffffff;
    return ak_q8_as_float((uint32_t)(bits < top_bits ? bits : top_bits));
}

#endif
