/* ak_q8_adam_run_avx512 (quant8_adam_avx512.h): each operation below is the one quant8.c's
 * portable loops compute (adam_element, signed_value, unsigned_value, encode_signed,
 * unsigned_code), 16 lanes at a time, in the same order and without FMA (but for the unsigned
 * code's estimate, where any value within the margin gives the same code). */
#include <string.h>

#include "quant8.h"
#include "quant8_adam_avx512.h"
#include "quant8_codec.h"

#if AK_X86 && defined(__GNUC__)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl")
#endif

#include <immintrin.h>

#define LANES 16
#define INLINE static inline __attribute__((always_inline))

typedef struct {
    __m512 one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrt, eps, step_size;
    __m512 weight_decay, decay_factor;
} adam_constants;

/* A block updated but not yet encoded: per slot the values its code is computed from (slot 0
 * the new exp_avg, slots 1 and 2 the square roots of the new exp_avg_sq and max_exp_avg_sq),
 * where the codes go, the new scale and its factor. */
typedef struct {
    float values[AK_MAX_SLOTS][AK_Q8_BLOCK] __attribute__((aligned(64)));
    void *codes[AK_MAX_SLOTS];
    float scales[AK_MAX_SLOTS];
    float factors[AK_MAX_SLOTS]; /* ak_q8_signed_factor (slot 0), ak_q8_unsigned_factor */
    float boost;                 /* ak_q8_signed_boost of slot 0 */
    int usual;                   /* every scale finite and no boost: the fused loop encodes it */
} pending_block;

static const uint32_t ABS_MASK = 0x7fffffffu, SIGN_MASK = 0x80000000u;

INLINE __m512 bits_and(__m512 a, uint32_t mask)
{
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32((int)mask)));
}

/* encode_signed's code of 16 values x with factor 1/s. Its rint, (r + 2^23) - 2^23 for
 * 0 <= r < 2^23, is r converted to an integer in the current rounding mode (both round to
 * nearest even by default, both follow the caller's mode otherwise); the sign comes after. */
INLINE __m128i signed_codes(__m512 x, __m512 factor)
{
    __m512 u = _mm512_mul_ps(x, factor);
    __m512 r = _mm512_mul_ps(_mm512_sqrt_ps(bits_and(u, ABS_MASK)), _mm512_set1_ps(127.0f));
    __m512i magnitude = _mm512_cvtps_epi32(r);
    __mmask16 negative = _mm512_cmp_ps_mask(u, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_cvtepi32_epi8(_mm512_mask_sub_epi32(magnitude, negative, _mm512_setzero_si512(), magnitude));
}

/* unsigned_code of 16 roots sqrt(v) with factor 255^2/sqrt(s): the estimate of sqrt(w) is
 * w * rsqrt14(w), within 255 * 2^-14 (plus rounding) of it, far inside the margin, and is
 * added to the margin in one fused multiply-add (any estimate within the margin gives the same
 * code); for w below FLT_MIN the reciprocal is rsqrt14(FLT_MIN), so that w = 0 gives 0, not
 * 0 * inf. */
INLINE __m128i unsigned_codes(__m512 root, __m512 factor)
{
    __m512 w = _mm512_mul_ps(root, factor);
    __m512 reciprocal = _mm512_rsqrt14_ps(_mm512_max_ps(w, _mm512_set1_ps(FLT_MIN)));
    __m512i c = _mm512_cvttps_epi32(_mm512_fmadd_ps(w, reciprocal, _mm512_set1_ps(AK_Q8_ESTIMATE_MARGIN)));
    __m512 t = _mm512_add_ps(_mm512_cvtepi32_ps(c), _mm512_set1_ps(0.5f));
    __mmask16 above = _mm512_cmp_ps_mask(w, _mm512_mul_ps(t, t), _CMP_GE_OQ);
    c = _mm512_mask_add_epi32(c, above, c, _mm512_set1_epi32(1));
    return _mm512_cvtepi32_epi8(c);
}

/* Lanes i..i+15 of slot s of a pending block, encoded; with `boosted`, the signed values are
 * first multiplied by the block's boost (x * 1 is x: the fused loop, which only encodes blocks
 * without a boost, leaves the product out). */
INLINE void encode_slot_lanes(const pending_block *e, int s, int i, int boosted)
{
    __m512 values = _mm512_load_ps(e->values[s] + i), factor = _mm512_set1_ps(e->factors[s]);
    if (s == 0 && boosted)
        values = _mm512_mul_ps(values, _mm512_set1_ps(e->boost));
    __m128i codes = s == 0 ? signed_codes(values, factor) : unsigned_codes(values, factor);
    _mm_storeu_si128((__m128i *)((char *)e->codes[s] + i), codes);
}

/* Encode a pending block of `slots` slots on its own (codes 0 for a slot whose scale is not
 * finite). */
static void encode_alone(const pending_block *e, int slots)
{
    for (int s = 0; s < slots; s++) {
        if (!ak_q8_finite(e->scales[s])) {
            memset(e->codes[s], 0, AK_Q8_BLOCK);
            continue;
        }
        for (int i = 0; i < AK_Q8_BLOCK; i += LANES)
            encode_slot_lanes(e, s, i, 1);
    }
}

/* The decoded state of 16 lanes: unit * (c * |c|) for the signed codes, unit * (c^2)^2 for the
 * unsigned ones. */
INLINE __m512 signed_decoded(const int8_t *codes, __m512 unit)
{
    __m512 c = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)codes)));
    return _mm512_mul_ps(unit, _mm512_mul_ps(c, bits_and(c, ABS_MASK)));
}

INLINE __m512 unsigned_decoded(const uint8_t *codes, __m512 unit)
{
    __m512 c = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)codes)));
    __m512 c2 = _mm512_mul_ps(c, c);
    return _mm512_mul_ps(unit, _mm512_mul_ps(c2, c2));
}

/* np.maximum(a, b), NaN in either propagating: b where a is a number (vmaxps gives b when b is
 * NaN), a where it is NaN. */
INLINE __m512 maximum(__m512 a, __m512 b) { return _mm512_mask_max_ps(a, _mm512_cmp_ps_mask(a, a, _CMP_ORD_Q), a, b); }

/* The running maximum of |x| on bit patterns, as quant8.c's running_absmax. */
INLINE __m512i running_absmax(__m512i m, __m512 x)
{
    return _mm512_max_epu32(m, _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)ABS_MASK)));
}

/* Update block b of the run into `out` (and encode `previous` in the same loop if it is not
 * NULL); the flags are constants at each call site. */
INLINE void update_block(const adam_constants *a, const ak_q8_run *run, int64_t b, pending_block *out,
                         const pending_block *previous, int maximize, int decay, int amsgrad)
{
    const int slots = amsgrad ? 3 : 2;
    const int64_t first = b * AK_Q8_BLOCK;
    float *param = run->param + first;
    const float *grad = run->grad + first;
    const int8_t *m_codes = (const int8_t *)run->codes[0] + first;
    const uint8_t *v_codes = (const uint8_t *)run->codes[1] + first;
    const uint8_t *max_codes = amsgrad ? (const uint8_t *)run->codes[2] + first : NULL;
    const __m512 m_unit = _mm512_set1_ps(run->scales[0][b] / AK_Q8_SIGNED_UNIT);
    const __m512 v_unit = _mm512_set1_ps(run->scales[1][b] / AK_Q8_UNSIGNED_UNIT);
    const __m512 max_unit = _mm512_set1_ps(amsgrad ? run->scales[2][b] / AK_Q8_UNSIGNED_UNIT : 0.0f);
    __m512i absmax[AK_MAX_SLOTS] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    for (int i = 0; i < AK_Q8_BLOCK; i += LANES) {
        __m512 old_m = signed_decoded(m_codes + i, m_unit);
        __m512 old_v = unsigned_decoded(v_codes + i, v_unit);
        __m512 p = _mm512_loadu_ps(param + i);
        __m512 g = _mm512_loadu_ps(grad + i);
        if (maximize)
            g = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(g), _mm512_set1_epi32((int)SIGN_MASK)));
        if (decay == AK_Q8_L2)
            g = _mm512_add_ps(g, _mm512_mul_ps(a->weight_decay, p));
        else if (decay == AK_Q8_DECOUPLED)
            p = _mm512_mul_ps(p, a->decay_factor);
        __m512 m = _mm512_add_ps(old_m, _mm512_mul_ps(a->one_minus_beta1, _mm512_sub_ps(g, old_m)));
        __m512 v = _mm512_add_ps(_mm512_mul_ps(a->beta2, old_v), _mm512_mul_ps(_mm512_mul_ps(a->one_minus_beta2, g), g));
        __m512 second_moment = amsgrad ? maximum(unsigned_decoded(max_codes + i, max_unit), v) : v;
        __m512 second_root = _mm512_sqrt_ps(second_moment);
        __m512 denom = _mm512_add_ps(_mm512_div_ps(second_root, a->bias_correction2_sqrt), a->eps);
        p = _mm512_sub_ps(p, _mm512_mul_ps(a->step_size, _mm512_div_ps(m, denom)));
        _mm512_storeu_ps(param + i, p);
        _mm512_store_ps(out->values[0] + i, m);
        _mm512_store_ps(out->values[1] + i, amsgrad ? _mm512_sqrt_ps(v) : second_root);
        absmax[0] = running_absmax(absmax[0], m);
        absmax[1] = running_absmax(absmax[1], v);
        if (amsgrad) {
            _mm512_store_ps(out->values[2] + i, second_root);
            absmax[2] = running_absmax(absmax[2], second_moment);
        }
        if (previous)
            for (int s = 0; s < slots; s++)
                encode_slot_lanes(previous, s, i, 0);
    }
    out->usual = 1;
    for (int s = 0; s < slots; s++) {
        float scale = ak_q8_as_float(_mm512_reduce_max_epu32(absmax[s]));
        run->scales[s][b] = scale;
        out->scales[s] = scale;
        out->codes[s] = (char *)run->codes[s] + first;
        out->factors[s] = s == 0 ? ak_q8_signed_factor(scale) : ak_q8_unsigned_factor(scale);
        out->usual &= ak_q8_finite(scale);
    }
    out->boost = ak_q8_signed_boost(out->scales[0]);
    out->usual &= out->boost == 1.0f;
}

/* The run with constant flags: block b is updated while block b - 1 is encoded. */
INLINE void run_blocks(const adam_constants *a, const ak_q8_run *run, int maximize, int decay, int amsgrad)
{
    pending_block pending[2];
    for (int64_t b = 0; b < run->n_blocks; b++) {
        pending_block *previous = b > 0 ? &pending[(b - 1) & 1] : NULL;
        if (previous && !previous->usual) {
            encode_alone(previous, amsgrad ? 3 : 2);
            previous = NULL;
        }
        update_block(a, run, b, &pending[b & 1], previous, maximize, decay, amsgrad);
    }
    if (run->n_blocks > 0)
        encode_alone(&pending[(run->n_blocks - 1) & 1], amsgrad ? 3 : 2);
}

#define RUN_CASE(maximize, decay, amsgrad)                                                       \
    case ((maximize) * 3 + (decay)) * 2 + (amsgrad):                                             \
        run_blocks(&a, run, maximize, decay, amsgrad);                                           \
        break;

void ak_q8_adam_run_avx512(const ak_scalars *k, int maximize, int decay, const ak_q8_run *run)
{
    const adam_constants a = {
        .one_minus_beta1 = _mm512_set1_ps((float)k->one_minus_beta1),
        .beta2 = _mm512_set1_ps((float)k->beta2),
        .one_minus_beta2 = _mm512_set1_ps((float)k->one_minus_beta2),
        .bias_correction2_sqrt = _mm512_set1_ps((float)k->bias_correction2_sqrt),
        .eps = _mm512_set1_ps((float)k->eps),
        .step_size = _mm512_set1_ps((float)k->step_size),
        .weight_decay = _mm512_set1_ps((float)k->weight_decay),
        .decay_factor = _mm512_set1_ps((float)k->decay_factor),
    };
    switch ((maximize * 3 + decay) * 2 + (k->amsgrad != 0)) {
        RUN_CASE(0, AK_Q8_PLAIN, 0)
        RUN_CASE(0, AK_Q8_PLAIN, 1)
        RUN_CASE(0, AK_Q8_L2, 0)
        RUN_CASE(0, AK_Q8_L2, 1)
        RUN_CASE(0, AK_Q8_DECOUPLED, 0)
        RUN_CASE(0, AK_Q8_DECOUPLED, 1)
        RUN_CASE(1, AK_Q8_PLAIN, 0)
        RUN_CASE(1, AK_Q8_PLAIN, 1)
        RUN_CASE(1, AK_Q8_L2, 0)
        RUN_CASE(1, AK_Q8_L2, 1)
        RUN_CASE(1, AK_Q8_DECOUPLED, 0)
        RUN_CASE(1, AK_Q8_DECOUPLED, 1)
    default:
        break;
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#endif

#endif
