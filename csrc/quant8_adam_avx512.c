/* ak_q8_adam_run_avx512 (quant8_adam_fused.h): the fused loop (quant8_adam_fused_loop.h) on
 * AVX-512 vectors of 16 floats, with AVX512BW and VL for the byte conversions. */
#include <string.h>

#include "quant8.h"
#include "quant8_adam_fused.h"
#include "quant8_codec.h"

#if AK_X86 && defined(__GNUC__)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl")
#endif

#include <immintrin.h>

#define LANES 16
#define VEC __m512
#define IVEC __m512i
#define RUN_NAME ak_q8_adam_run_avx512
#define INLINE static inline __attribute__((always_inline))

static const uint32_t ABS_MASK = 0x7fffffffu, SIGN_MASK = 0x80000000u;

INLINE __m512 v_set1(float x) { return _mm512_set1_ps(x); }
INLINE __m512 v_load(const float *p) { return _mm512_load_ps(p); }
INLINE __m512 v_loadu(const float *p) { return _mm512_loadu_ps(p); }
INLINE void v_store(float *p, __m512 x) { _mm512_store_ps(p, x); }
INLINE void v_storeu(float *p, __m512 x) { _mm512_storeu_ps(p, x); }
INLINE __m512 v_add(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
INLINE __m512 v_sub(__m512 a, __m512 b) { return _mm512_sub_ps(a, b); }
INLINE __m512 v_mul(__m512 a, __m512 b) { return _mm512_mul_ps(a, b); }
INLINE __m512 v_div(__m512 a, __m512 b) { return _mm512_div_ps(a, b); }
INLINE __m512 v_sqrt(__m512 a) { return _mm512_sqrt_ps(a); }

INLINE __m512 bits_and(__m512 a, uint32_t mask)
{
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32((int)mask)));
}

INLINE __m512 v_negate(__m512 a)
{
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32((int)SIGN_MASK)));
}

/* b where a is a number (vmaxps gives b when b is NaN), a where it is NaN. */
INLINE __m512 v_maximum(__m512 a, __m512 b) { return _mm512_mask_max_ps(a, _mm512_cmp_ps_mask(a, a, _CMP_ORD_Q), a, b); }

INLINE __m512 v_signed_decoded(const int8_t *codes, __m512 unit)
{
    __m512 c = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)codes)));
    return _mm512_mul_ps(unit, _mm512_mul_ps(c, bits_and(c, ABS_MASK)));
}

INLINE __m512 v_unsigned_decoded(const uint8_t *codes, __m512 unit)
{
    __m512 c = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)codes)));
    __m512 c2 = _mm512_mul_ps(c, c);
    return _mm512_mul_ps(unit, _mm512_mul_ps(c2, c2));
}

INLINE __m512i i_zero(void) { return _mm512_setzero_si512(); }

INLINE __m512i i_running_absmax(__m512i m, __m512 x)
{
    return _mm512_max_epu32(m, _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)ABS_MASK)));
}

INLINE uint32_t i_reduce_max(__m512i m) { return _mm512_reduce_max_epu32(m); }

/* encode_signed's codes of x with factor 1/s. Its rint, (r + 2^23) - 2^23 for 0 <= r < 2^23,
 * is r converted to an integer in the current rounding mode (both round to nearest even by
 * default, both follow the caller's mode otherwise); r is first taken at most AK_Q8_SIGNED_MAX
 * (as encode_signed does after rounding: the same code), so that an infinite x converts to 127,
 * not to the integer indefinite; the sign comes after. */
INLINE void store_signed_codes(char *codes, __m512 x, __m512 factor)
{
    __m512 u = _mm512_mul_ps(x, factor);
    __m512 r = _mm512_mul_ps(_mm512_sqrt_ps(bits_and(u, ABS_MASK)), _mm512_set1_ps(127.0f));
    __m512i magnitude = _mm512_cvtps_epi32(_mm512_min_ps(r, _mm512_set1_ps(AK_Q8_SIGNED_MAX)));
    __mmask16 negative = _mm512_cmp_ps_mask(u, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512i c = _mm512_mask_sub_epi32(magnitude, negative, _mm512_setzero_si512(), magnitude);
    _mm_storeu_si128((__m128i *)codes, _mm512_cvtepi32_epi8(c));
}

/* unsigned_code of the roots sqrt(v) with factor 255^2/sqrt(s): w = ak_q8_unsigned_w (at most
 * 255^2, so that an infinite root gives 255, not inf * 0); the estimate of sqrt(w) is
 * w * rsqrt14(w), within 255 * 2^-14 (plus rounding) of it, far inside the margin, and is
 * added to the margin in one fused multiply-add (any estimate within the margin gives the same
 * code); for w below FLT_MIN the reciprocal is rsqrt14(FLT_MIN), so that w = 0 gives 0, not
 * 0 * inf. */
INLINE void store_unsigned_codes(char *codes, __m512 root, __m512 factor)
{
    __m512 w = _mm512_min_ps(_mm512_mul_ps(root, factor), _mm512_set1_ps(AK_Q8_UNSIGNED_SQUARE_LEVELS));
    __m512 reciprocal = _mm512_rsqrt14_ps(_mm512_max_ps(w, _mm512_set1_ps(FLT_MIN)));
    __m512i c = _mm512_cvttps_epi32(_mm512_fmadd_ps(w, reciprocal, _mm512_set1_ps(AK_Q8_ESTIMATE_MARGIN)));
    __m512 t = _mm512_add_ps(_mm512_cvtepi32_ps(c), _mm512_set1_ps(0.5f));
    __mmask16 above = _mm512_cmp_ps_mask(w, _mm512_mul_ps(t, t), _CMP_GE_OQ);
    c = _mm512_mask_add_epi32(c, above, c, _mm512_set1_epi32(1));
    _mm_storeu_si128((__m128i *)codes, _mm512_cvtepi32_epi8(c));
}

#include "quant8_adam_fused_loop.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif

#endif
