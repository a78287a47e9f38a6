/* The AVX2 ISA: 8 float32 or 4 float64 lanes. Only this file is compiled for AVX2 (by the
 * target pragma, which enables no FMA); dispatch.c calls it only on CPUs with AVX2. */
#include "kernels_internal.h"

#if AK_X86

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#else
#pragma GCC target("avx2")
#endif

#include <immintrin.h>

#define ISA avx2
#define F32_LANES 8
#define F64_LANES 4

typedef __m256 f32v;
typedef __m256d f64v;

static inline f32v f32v_set1(float x) { return _mm256_set1_ps(x); }
static inline f32v f32v_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void f32v_store(float *p, f32v v) { _mm256_storeu_ps(p, v); }
static inline f32v f32v_add(f32v a, f32v b) { return _mm256_add_ps(a, b); }
static inline f32v f32v_sub(f32v a, f32v b) { return _mm256_sub_ps(a, b); }
static inline f32v f32v_mul(f32v a, f32v b) { return _mm256_mul_ps(a, b); }
static inline f32v f32v_div(f32v a, f32v b) { return _mm256_div_ps(a, b); }
static inline f32v f32v_sqrt(f32v a) { return _mm256_sqrt_ps(a); }
/* max(a, b) where a is a number (b if b is NaN), else a: np.maximum's NaN propagation. */
static inline f32v f32v_max(f32v a, f32v b)
{
    return _mm256_blendv_ps(a, _mm256_max_ps(a, b), _mm256_cmp_ps(a, a, _CMP_ORD_Q));
}
/* min(a, b), NaN propagating as f32v_max. */
static inline f32v f32v_min(f32v a, f32v b)
{
    return _mm256_blendv_ps(a, _mm256_min_ps(a, b), _mm256_cmp_ps(a, a, _CMP_ORD_Q));
}
static inline f32v f32v_abs(f32v a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
static inline f32v f32v_neg(f32v a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f)); }
/* np.sign: 1 where a > 0, -1 where a < 0, +0 elsewhere, then a itself where a is NaN. */
/* 1 where a > 0, else +0 (NaN included): the cautious mask. */
static inline f32v f32v_positive(f32v a)
{
    return _mm256_and_ps(_mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_GT_OQ), _mm256_set1_ps(1.0f));
}
/* The number of lanes where a > 0 (a NaN lane is not counted): cautious's first pass. */
static inline int f32v_count_positive(f32v a)
{
    return __builtin_popcount((unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_GT_OQ)));
}

static inline f32v f32v_sign(f32v a)
{
    f32v zero = _mm256_setzero_ps();
    f32v sign = _mm256_or_ps(_mm256_and_ps(_mm256_cmp_ps(a, zero, _CMP_GT_OQ), _mm256_set1_ps(1.0f)),
                             _mm256_and_ps(_mm256_cmp_ps(a, zero, _CMP_LT_OQ), _mm256_set1_ps(-1.0f)));
    return _mm256_blendv_ps(sign, a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}

static inline f64v f64v_set1(double x) { return _mm256_set1_pd(x); }
static inline f64v f64v_load(const double *p) { return _mm256_loadu_pd(p); }
static inline void f64v_store(double *p, f64v v) { _mm256_storeu_pd(p, v); }
static inline f64v f64v_add(f64v a, f64v b) { return _mm256_add_pd(a, b); }
static inline f64v f64v_sub(f64v a, f64v b) { return _mm256_sub_pd(a, b); }
static inline f64v f64v_mul(f64v a, f64v b) { return _mm256_mul_pd(a, b); }
static inline f64v f64v_div(f64v a, f64v b) { return _mm256_div_pd(a, b); }
static inline f64v f64v_sqrt(f64v a) { return _mm256_sqrt_pd(a); }
static inline f64v f64v_max(f64v a, f64v b)
{
    return _mm256_blendv_pd(a, _mm256_max_pd(a, b), _mm256_cmp_pd(a, a, _CMP_ORD_Q));
}
static inline f64v f64v_min(f64v a, f64v b)
{
    return _mm256_blendv_pd(a, _mm256_min_pd(a, b), _mm256_cmp_pd(a, a, _CMP_ORD_Q));
}
static inline f64v f64v_abs(f64v a) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), a); }
static inline f64v f64v_neg(f64v a) { return _mm256_xor_pd(a, _mm256_set1_pd(-0.0)); }
static inline f64v f64v_positive(f64v a)
{
    return _mm256_and_pd(_mm256_cmp_pd(a, _mm256_setzero_pd(), _CMP_GT_OQ), _mm256_set1_pd(1.0));
}
static inline int f64v_count_positive(f64v a)
{
    return __builtin_popcount((unsigned)_mm256_movemask_pd(_mm256_cmp_pd(a, _mm256_setzero_pd(), _CMP_GT_OQ)));
}

static inline f64v f64v_sign(f64v a)
{
    f64v zero = _mm256_setzero_pd();
    f64v sign = _mm256_or_pd(_mm256_and_pd(_mm256_cmp_pd(a, zero, _CMP_GT_OQ), _mm256_set1_pd(1.0)),
                             _mm256_and_pd(_mm256_cmp_pd(a, zero, _CMP_LT_OQ), _mm256_set1_pd(-1.0)));
    return _mm256_blendv_pd(sign, a, _mm256_cmp_pd(a, a, _CMP_UNORD_Q));
}

/* sums[j] += v[j] * v[j] in float64 for each lane j, sums being as many float64 vectors as v
 * fills: LAMB's squared norms (rules_lamb.h). */
static inline void f32v_add_squares(f64v *sums, f32v v)
{
    __m256d low = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), high = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    sums[0] = _mm256_add_pd(sums[0], _mm256_mul_pd(low, low));
    sums[1] = _mm256_add_pd(sums[1], _mm256_mul_pd(high, high));
}
static inline void f64v_add_squares(f64v *sums, f64v v) { sums[0] = _mm256_add_pd(sums[0], _mm256_mul_pd(v, v)); }

/* A bfloat16 is the upper half of a float32. */
static inline f32v f32v_load_bf16(const uint16_t *p)
{
    __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

/* Round to nearest even; every NaN becomes the quiet NaN 0x7FC0, as in torch. */
static inline void f32v_store_bf16(uint16_t *p, f32v v)
{
    __m256i bits = _mm256_castps_si256(v);
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    __m256i rounded = _mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7FFF)), odd);
    rounded = _mm256_srli_epi32(rounded, 16);
    __m256i is_nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    rounded = _mm256_blendv_epi8(rounded, _mm256_set1_epi32(0x7FC0), is_nan);
    __m128i halves = _mm_packus_epi32(_mm256_castsi256_si128(rounded),
                                      _mm256_extracti128_si256(rounded, 1));
    _mm_storeu_si128((__m128i *)p, halves);
}

/* ak_mix32 on 8 lanes. */
static inline __m256i mix32_lanes(__m256i x)
{
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32(0x7feb352d));
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int)0x846ca68bu));
    return _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
}

/* Stochastic rounding (kernels_api.h): lane j is element index + j, with its slot's key; no
 * noise where the upper half is the largest bfloat16's (not rounded up to an infinity). */
static inline void f32v_store_bf16_stochastic(uint16_t *p, f32v v, uint32_t key, int64_t index)
{
    __m256i lanes = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)index), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i noise = _mm256_srli_epi32(mix32_lanes(_mm256_xor_si256(lanes, _mm256_set1_epi32((int)key))), 16);
    __m256i bits = _mm256_castps_si256(v);
    __m256i largest = _mm256_cmpeq_epi32(_mm256_and_si256(bits, _mm256_set1_epi32((int)AK_BF16_MAGNITUDE)),
                                         _mm256_set1_epi32((int)AK_BF16_LARGEST));
    __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_andnot_si256(largest, noise)), 16);
    __m256i is_nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    rounded = _mm256_blendv_epi8(rounded, _mm256_set1_epi32(0x7FC0), is_nan);
    __m128i halves = _mm_packus_epi32(_mm256_castsi256_si128(rounded), _mm256_extracti128_si256(rounded, 1));
    _mm_storeu_si128((__m128i *)p, halves);
}

#include "instantiate.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif

#endif
