/* ak_q8_adam_run_avx512 (quant8_adam_avx512.h): each operation below is the one quant8.c's
 * portable loops compute (adam_element, signed_value, unsigned_value, encode_signed,
 * unsigned_code), 16 lanes at a time, in the same order and without FMA. */
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

/* A block updated but not yet encoded: its new exp_avg and sqrt(exp_avg_sq), and where its
 * codes go. */
typedef struct {
    float m[AK_Q8_BLOCK] __attribute__((aligned(64)));
    float root[AK_Q8_BLOCK] __attribute__((aligned(64)));
    int8_t *m_codes;
    uint8_t *v_codes;
    float m_factor, v_factor; /* ak_q8_signed_factor, ak_q8_unsigned_factor of its new scales */
    int finite;               /* both scales finite */
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

/* Lanes i..i+15 of a pending block, encoded. */
INLINE void encode_lanes(const pending_block *e, int i)
{
    __m128i m = signed_codes(_mm512_load_ps(e->m + i), _mm512_set1_ps(e->m_factor));
    __m128i v = unsigned_codes(_mm512_load_ps(e->root + i), _mm512_set1_ps(e->v_factor));
    _mm_storeu_si128((__m128i *)(e->m_codes + i), m);
    _mm_storeu_si128((__m128i *)(e->v_codes + i), v);
}

/* Encode a pending block on its own (codes 0 for a slot whose scale is not finite). */
static void encode_alone(const pending_block *e, float m_scale, float v_scale)
{
    if (e->finite) {
        for (int i = 0; i < AK_Q8_BLOCK; i += LANES)
            encode_lanes(e, i);
        return;
    }
    for (int i = 0; i < AK_Q8_BLOCK; i += LANES) {
        if (ak_q8_finite(m_scale))
            _mm_storeu_si128((__m128i *)(e->m_codes + i), signed_codes(_mm512_load_ps(e->m + i), _mm512_set1_ps(e->m_factor)));
        if (ak_q8_finite(v_scale))
            _mm_storeu_si128((__m128i *)(e->v_codes + i),
                             unsigned_codes(_mm512_load_ps(e->root + i), _mm512_set1_ps(e->v_factor)));
    }
    if (!ak_q8_finite(m_scale))
        memset(e->m_codes, 0, AK_Q8_BLOCK);
    if (!ak_q8_finite(v_scale))
        memset(e->v_codes, 0, AK_Q8_BLOCK);
}

/* Update block b of the run into `out` (and encode `previous` in the same loop if it is not
 * NULL); the flags are constants at each call site. */
INLINE void update_block(const adam_constants *a, const ak_q8_run *run, int64_t b, pending_block *out,
                         const pending_block *previous, int maximize, int decay)
{
    const int64_t first = b * AK_Q8_BLOCK;
    float *param = run->param + first;
    const float *grad = run->grad + first;
    const int8_t *m_codes = run->m_codes + first;
    const uint8_t *v_codes = run->v_codes + first;
    const __m512 m_unit = _mm512_set1_ps(run->m_scales[b] / AK_Q8_SIGNED_UNIT);
    const __m512 v_unit = _mm512_set1_ps(run->v_scales[b] / AK_Q8_UNSIGNED_UNIT);
    const __m512i abs_mask = _mm512_set1_epi32((int)ABS_MASK);
    __m512i m_max = _mm512_setzero_si512(), v_max = _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int i = 0; i < AK_Q8_BLOCK; i += LANES) {
        __m512 mc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(m_codes + i))));
        __m512 vc = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(v_codes + i))));
        __m512 old_m = _mm512_mul_ps(m_unit, _mm512_mul_ps(mc, bits_and(mc, ABS_MASK)));
        __m512 vc2 = _mm512_mul_ps(vc, vc);
        __m512 old_v = _mm512_mul_ps(v_unit, _mm512_mul_ps(vc2, vc2));
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
        __m512 root = _mm512_sqrt_ps(v);
        __m512 denom = _mm512_add_ps(_mm512_div_ps(root, a->bias_correction2_sqrt), a->eps);
        p = _mm512_sub_ps(p, _mm512_mul_ps(a->step_size, _mm512_div_ps(m, denom)));
        _mm512_storeu_ps(param + i, p);
        _mm512_store_ps(out->m + i, m);
        _mm512_store_ps(out->root + i, root);
        m_max = _mm512_max_epu32(m_max, _mm512_and_si512(_mm512_castps_si512(m), abs_mask));
        v_max = _mm512_max_epu32(v_max, _mm512_and_si512(_mm512_castps_si512(v), abs_mask));
        if (previous)
            encode_lanes(previous, i);
    }
    uint32_t m_bits = _mm512_reduce_max_epu32(m_max), v_bits = _mm512_reduce_max_epu32(v_max);
    float m_scale, v_scale;
    memcpy(&m_scale, &m_bits, sizeof m_scale);
    memcpy(&v_scale, &v_bits, sizeof v_scale);
    run->m_scales[b] = m_scale;
    run->v_scales[b] = v_scale;
    out->m_codes = run->m_codes + first;
    out->v_codes = run->v_codes + first;
    out->m_factor = ak_q8_signed_factor(m_scale);
    out->v_factor = ak_q8_unsigned_factor(v_scale);
    out->finite = ak_q8_finite(m_scale) && ak_q8_finite(v_scale);
}

/* The run with constant flags: block b is updated while block b - 1 is encoded. */
INLINE void run_blocks(const adam_constants *a, const ak_q8_run *run, int maximize, int decay)
{
    pending_block pending[2];
    for (int64_t b = 0; b < run->n_blocks; b++) {
        pending_block *previous = b > 0 ? &pending[(b - 1) & 1] : NULL;
        if (previous && previous->finite) {
            update_block(a, run, b, &pending[b & 1], previous, maximize, decay);
            continue;
        }
        if (previous)
            encode_alone(previous, run->m_scales[b - 1], run->v_scales[b - 1]);
        update_block(a, run, b, &pending[b & 1], NULL, maximize, decay);
    }
    if (run->n_blocks > 0) {
        int64_t last = run->n_blocks - 1;
        encode_alone(&pending[last & 1], run->m_scales[last], run->v_scales[last]);
    }
}

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
    switch (maximize * 3 + decay) {
    case 0 * 3 + AK_Q8_PLAIN: run_blocks(&a, run, 0, AK_Q8_PLAIN); break;
    case 0 * 3 + AK_Q8_L2: run_blocks(&a, run, 0, AK_Q8_L2); break;
    case 0 * 3 + AK_Q8_DECOUPLED: run_blocks(&a, run, 0, AK_Q8_DECOUPLED); break;
    case 1 * 3 + AK_Q8_PLAIN: run_blocks(&a, run, 1, AK_Q8_PLAIN); break;
    case 1 * 3 + AK_Q8_L2: run_blocks(&a, run, 1, AK_Q8_L2); break;
    default: run_blocks(&a, run, 1, AK_Q8_DECOUPLED); break;
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#endif

#endif
