/* The AVX-512 ISA: 16 float32 or 8 float64 lanes, AVX-512F instructions only. Only this file
 * is compiled for AVX-512 (by the target pragma; FMA contraction is off for the whole build);
 * dispatch.c calls it only on CPUs with AVX-512F. */
#include "kernels_internal.h"

#if AK_X86

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#else
#pragma GCC target("avx512f")
#endif

#include <immintrin.h>

#define ISA avx512
#define F32_LANES 16
#define F64_LANES 8

typedef __m512 f32v;
typedef __m512d f64v;

static inline f32v f32v_set1(float x) { return _mm512_set1_ps(x); }
static inline f32v f32v_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void f32v_store(float *p, f32v v) { _mm512_storeu_ps(p, v); }
static inline f32v f32v_add(f32v a, f32v b) { return _mm512_add_ps(a, b); }
static inline f32v f32v_sub(f32v a, f32v b) { return _mm512_sub_ps(a, b); }
static inline f32v f32v_mul(f32v a, f32v b) { return _mm512_mul_ps(a, b); }
static inline f32v f32v_div(f32v a, f32v b) { return _mm512_div_ps(a, b); }
static inline f32v f32v_sqrt(f32v a) { return _mm512_sqrt_ps(a); }
/* max(a, b) where a is a number (b if b is NaN), else a: np.maximum's NaN propagation. */
static inline f32v f32v_max(f32v a, f32v b)
{
    return _mm512_mask_max_ps(a, _mm512_cmp_ps_mask(a, a, _CMP_ORD_Q), a, b);
}
/* min(a, b), NaN propagating as f32v_max. */
static inline f32v f32v_min(f32v a, f32v b)
{
    return _mm512_mask_min_ps(a, _mm512_cmp_ps_mask(a, a, _CMP_ORD_Q), a, b);
}
static inline f32v f32v_abs(f32v a) { return _mm512_abs_ps(a); }
static inline f32v f32v_neg(f32v a)
{
    return _mm512_castsi512_ps(
        _mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32((int)0x80000000u)));
}
/* np.sign: 1 where a > 0, -1 where a < 0, +0 elsewhere, then a itself where a is NaN. */
/* 1 where a > 0, else +0 (NaN included): the cautious mask. */
static inline f32v f32v_positive(f32v a)
{
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_GT_OQ), _mm512_set1_ps(1.0f));
}
/* The number of lanes where a > 0 (a NaN lane is not counted): cautious's first pass. */
static inline int f32v_count_positive(f32v a)
{
    return __builtin_popcount((unsigned)_mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_GT_OQ));
}

static inline f32v f32v_sign(f32v a)
{
    f32v zero = _mm512_setzero_ps();
    f32v sign = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, zero, _CMP_GT_OQ), zero, _mm512_set1_ps(1.0f));
    sign = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, zero, _CMP_LT_OQ), sign, _mm512_set1_ps(-1.0f));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), sign, a);
}

static inline f64v f64v_set1(double x) { return _mm512_set1_pd(x); }
static inline f64v f64v_load(const double *p) { return _mm512_loadu_pd(p); }
static inline void f64v_store(double *p, f64v v) { _mm512_storeu_pd(p, v); }
static inline f64v f64v_add(f64v a, f64v b) { return _mm512_add_pd(a, b); }
static inline f64v f64v_sub(f64v a, f64v b) { return _mm512_sub_pd(a, b); }
static inline f64v f64v_mul(f64v a, f64v b) { return _mm512_mul_pd(a, b); }
static inline f64v f64v_div(f64v a, f64v b) { return _mm512_div_pd(a, b); }
static inline f64v f64v_sqrt(f64v a) { return _mm512_sqrt_pd(a); }
static inline f64v f64v_max(f64v a, f64v b)
{
    return _mm512_mask_max_pd(a, _mm512_cmp_pd_mask(a, a, _CMP_ORD_Q), a, b);
}
static inline f64v f64v_min(f64v a, f64v b)
{
    return _mm512_mask_min_pd(a, _mm512_cmp_pd_mask(a, a, _CMP_ORD_Q), a, b);
}
static inline f64v f64v_abs(f64v a) { return _mm512_abs_pd(a); }
static inline f64v f64v_neg(f64v a)
{
    return _mm512_castsi512_pd(
        _mm512_xor_si512(_mm512_castpd_si512(a), _mm512_set1_epi64((long long)0x8000000000000000ull)));
}
static inline f64v f64v_positive(f64v a)
{
    return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(a, _mm512_setzero_pd(), _CMP_GT_OQ), _mm512_set1_pd(1.0));
}
static inline int f64v_count_positive(f64v a)
{
    return __builtin_popcount((unsigned)_mm512_cmp_pd_mask(a, _mm512_setzero_pd(), _CMP_GT_OQ));
}

static inline f64v f64v_sign(f64v a)
{
    f64v zero = _mm512_setzero_pd();
    f64v sign = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(a, zero, _CMP_GT_OQ), zero, _mm512_set1_pd(1.0));
    sign = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(a, zero, _CMP_LT_OQ), sign, _mm512_set1_pd(-1.0));
    return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(a, a, _CMP_UNORD_Q), sign, a);
}

/* sums[j] += v[j] * v[j] in float64 for each lane j, sums being as many float64 vectors as v
 * fills: LAMB's squared norms (rules_lamb.h). */
static inline void f32v_add_squares(f64v *sums, f32v v)
{
    __m512d low = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    __m512d high = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    sums[0] = _mm512_add_pd(sums[0], _mm512_mul_pd(low, low));
    sums[1] = _mm512_add_pd(sums[1], _mm512_mul_pd(high, high));
}
static inline void f64v_add_squares(f64v *sums, f64v v) { sums[0] = _mm512_add_pd(sums[0], _mm512_mul_pd(v, v)); }

/* A bfloat16 is the upper half of a float32. */
static inline f32v f32v_load_bf16(const uint16_t *p)
{
    __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

/* Round to nearest even; every NaN becomes the quiet NaN 0x7FC0, as in torch. (Integer
 * arithmetic rather than VCVTNEPS2BF16, which flushes subnormals to zero.) */
static inline void f32v_store_bf16(uint16_t *p, f32v v)
{
    __m512i bits = _mm512_castps_si512(v);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7FFF)), odd);
    rounded = _mm512_srli_epi32(rounded, 16);
    __mmask16 is_nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    rounded = _mm512_mask_mov_epi32(rounded, is_nan, _mm512_set1_epi32(0x7FC0));
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtepi32_epi16(rounded));
}

/* ak_mix32 on 16 lanes. */
static inline __m512i mix32_lanes(__m512i x)
{
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32(0x7feb352d));
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32((int)0x846ca68bu));
    return _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
}

/* Stochastic rounding (kernels_api.h): lane j is element index + j, with its slot's key; no
 * noise where the upper half is the largest bfloat16's (not rounded up to an infinity). */
static inline void f32v_store_bf16_stochastic(uint16_t *p, f32v v, uint32_t key, int64_t index)
{
    __m512i lanes = _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)index),
                                     _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    __m512i noise = _mm512_srli_epi32(mix32_lanes(_mm512_xor_si512(lanes, _mm512_set1_epi32((int)key))), 16);
    __m512i bits = _mm512_castps_si512(v);
    __mmask16 may_round_up = _mm512_cmpneq_epi32_mask(_mm512_and_si512(bits, _mm512_set1_epi32((int)AK_BF16_MAGNITUDE)),
                                                      _mm512_set1_epi32((int)AK_BF16_LARGEST));
    __m512i rounded = _mm512_srli_epi32(_mm512_mask_add_epi32(bits, may_round_up, bits, noise), 16);
    __mmask16 is_nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    rounded = _mm512_mask_mov_epi32(rounded, is_nan, _mm512_set1_epi32(0x7FC0));
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtepi32_epi16(rounded));
}

#include "instantiate.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif

#endif
