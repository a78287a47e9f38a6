/* ak_q8_adam_run_avx2 (quant8_adam_fused.h): the fused loop (quant8_adam_fused_loop.h) on AVX2
 * vectors of 8 floats, without FMA. The unsigned code's estimate w * rsqrtps(w) is within
 * 255 * 1.5 * 2^-12 = 0.094 (plus rounding) of sqrt(w), inside the margin of 1/4. */
#include <string.h>

#include "quant8.h"
#include "quant8_adam_fused.h"
#include "quant8_codec.h"

#if AK_X86 && defined(__GNUC__)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#else
#pragma GCC target("avx2")
#endif

#include <immintrin.h>

#define LANES 8
#define VEC __m256
#define IVEC __m256i
#define RUN_NAME ak_q8_adam_run_avx2
#define INLINE static inline __attribute__((always_inline))

static const uint32_t ABS_MASK = 0x7fffffffu, SIGN_MASK = 0x80000000u;

INLINE __m256 v_set1(float x) { return _mm256_set1_ps(x); }
INLINE __m256 v_load(const float *p) { return _mm256_load_ps(p); }
INLINE __m256 v_loadu(const float *p) { return _mm256_loadu_ps(p); }
INLINE void v_store(float *p, __m256 x) { _mm256_store_ps(p, x); }
INLINE void v_storeu(float *p, __m256 x) { _mm256_storeu_ps(p, x); }
INLINE __m256 v_add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
INLINE __m256 v_sub(__m256 a, __m256 b) { return _mm256_sub_ps(a, b); }
INLINE __m256 v_mul(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
INLINE __m256 v_div(__m256 a, __m256 b) { return _mm256_div_ps(a, b); }
INLINE __m256 v_sqrt(__m256 a) { return _mm256_sqrt_ps(a); }

INLINE __m256 bits_and(__m256 a, uint32_t mask)
{
    return _mm256_castsi256_ps(_mm256_and_si256(_mm256_castps_si256(a), _mm256_set1_epi32((int)mask)));
}

INLINE __m256 v_negate(__m256 a)
{
    return _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(a), _mm256_set1_epi32((int)SIGN_MASK)));
}

/* vmaxps gives b when either operand is NaN: a is put back where it is NaN. */
INLINE __m256 v_maximum(__m256 a, __m256 b)
{
    return _mm256_blendv_ps(_mm256_max_ps(a, b), a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}

INLINE __m256 v_signed_decoded(const int8_t *codes, __m256 unit)
{
    __m256 c = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)codes)));
    return _mm256_mul_ps(unit, _mm256_mul_ps(c, bits_and(c, ABS_MASK)));
}

INLINE __m256 v_unsigned_decoded(const uint8_t *codes, __m256 unit)
{
    __m256 c = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)codes)));
    __m256 c2 = _mm256_mul_ps(c, c);
    return _mm256_mul_ps(unit, _mm256_mul_ps(c2, c2));
}

INLINE __m256i i_zero(void) { return _mm256_setzero_si256(); }

INLINE __m256i i_running_absmax(__m256i m, __m256 x)
{
    return _mm256_max_epu32(m, _mm256_and_si256(_mm256_castps_si256(x), _mm256_set1_epi32((int)ABS_MASK)));
}

INLINE uint32_t i_reduce_max(__m256i m)
{
    __m128i half = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
    half = _mm_max_epu32(half, _mm_shuffle_epi32(half, _MM_SHUFFLE(1, 0, 3, 2)));
    half = _mm_max_epu32(half, _mm_shuffle_epi32(half, _MM_SHUFFLE(2, 3, 0, 1)));
    return (uint32_t)_mm_cvtsi128_si32(half);
}

/* The low byte of each of the 8 integers, stored in order. */
INLINE void store_low_bytes(char *codes, __m256i c)
{
    const __m256i low_bytes = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                               0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    __m256i packed = _mm256_shuffle_epi8(c, low_bytes);
    __m128i bytes = _mm_unpacklo_epi32(_mm256_castsi256_si128(packed), _mm256_extracti128_si256(packed, 1));
    _mm_storel_epi64((__m128i *)codes, bytes);
}

/* encode_signed's codes of x with factor 1/s: the magnitude taken at most AK_Q8_SIGNED_MAX (so
 * that an infinite x converts to 127, not to the integer indefinite; the same code as
 * encode_signed's minimum after rounding) and converted in the current rounding mode (as the
 * add-and-subtract of 2^23 rounds), then negated where u's sign bit is set (vpsignd; a
 * magnitude of 0 stays 0). */
INLINE void store_signed_codes(char *codes, __m256 x, __m256 factor)
{
    __m256 u = _mm256_mul_ps(x, factor);
    __m256 r = _mm256_mul_ps(_mm256_sqrt_ps(bits_and(u, ABS_MASK)), _mm256_set1_ps(127.0f));
    __m256i magnitude = _mm256_cvtps_epi32(_mm256_min_ps(r, _mm256_set1_ps(AK_Q8_SIGNED_MAX)));
    store_low_bytes(codes, _mm256_sign_epi32(magnitude, _mm256_castps_si256(u)));
}

/* unsigned_code of the roots sqrt(v) with factor 255^2/sqrt(s): w = ak_q8_unsigned_w (at most
 * 255^2, so that an infinite root gives 255, not inf * 0), from the estimate
 * w * rsqrtps(max(w, FLT_MIN)) (so that w = 0 gives 0, not 0 * inf); one is added where w is
 * at or above the next threshold (the comparison's all-ones is -1). */
INLINE void store_unsigned_codes(char *codes, __m256 root, __m256 factor)
{
    __m256 w = _mm256_min_ps(_mm256_mul_ps(root, factor), _mm256_set1_ps(AK_Q8_UNSIGNED_SQUARE_LEVELS));
    __m256 reciprocal = _mm256_rsqrt_ps(_mm256_max_ps(w, _mm256_set1_ps(FLT_MIN)));
    __m256 estimate = _mm256_add_ps(_mm256_mul_ps(w, reciprocal), _mm256_set1_ps(AK_Q8_ESTIMATE_MARGIN));
    __m256i c = _mm256_cvttps_epi32(estimate);
    __m256 t = _mm256_add_ps(_mm256_cvtepi32_ps(c), _mm256_set1_ps(0.5f));
    __m256 above = _mm256_cmp_ps(w, _mm256_mul_ps(t, t), _CMP_GE_OQ);
    store_low_bytes(codes, _mm256_sub_epi32(c, _mm256_castps_si256(above)));
}

#include "quant8_adam_fused_loop.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif

#endif
