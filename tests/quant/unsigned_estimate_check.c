/* For every float32 w in [0, 65100] (the unsigned code's w = sqrt(v) 255^2 / sqrt(s) is at
 * most 255^2, plus rounding), the code the fused Adam step counts from its reciprocal square
 * root estimate (csrc/quant8_adam_avx2.c: w * rsqrtps(w) + 1/4; csrc/quant8_adam_avx512.c:
 * w * rsqrt14(w) + 1/4, fused) equals the one quant8.c counts from sqrtf (unsigned_code), on
 * this processor. Prints the values checked, the mismatches and the estimates' largest error
 * (the margin is 1/4); exits 1 on a mismatch. Run by tests/quant/test_unsigned_estimate.py. */
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int32_t reference(float w)
{
    int32_t c = (int32_t)(sqrtf(w) + 0.25f);
    float t = (float)c + 0.5f;
    return c + (w >= t * t);
}

__attribute__((target("avx2"))) static void avx2_codes(const float *in, int32_t *codes, float *estimates)
{
    __m256 w = _mm256_loadu_ps(in);
    __m256 e = _mm256_mul_ps(w, _mm256_rsqrt_ps(_mm256_max_ps(w, _mm256_set1_ps(FLT_MIN))));
    __m256i c = _mm256_cvttps_epi32(_mm256_add_ps(e, _mm256_set1_ps(0.25f)));
    __m256 t = _mm256_add_ps(_mm256_cvtepi32_ps(c), _mm256_set1_ps(0.5f));
    __m256 above = _mm256_cmp_ps(w, _mm256_mul_ps(t, t), _CMP_GE_OQ);
    _mm256_storeu_si256((__m256i *)codes, _mm256_sub_epi32(c, _mm256_castps_si256(above)));
    _mm256_storeu_ps(estimates, e);
}

__attribute__((target("avx512f"))) static void avx512_codes(const float *in, int32_t *codes, float *estimates)
{
    __m512 w = _mm512_loadu_ps(in);
    __m512 r = _mm512_rsqrt14_ps(_mm512_max_ps(w, _mm512_set1_ps(FLT_MIN)));
    __m512i c = _mm512_cvttps_epi32(_mm512_fmadd_ps(w, r, _mm512_set1_ps(0.25f)));
    __m512 t = _mm512_add_ps(_mm512_cvtepi32_ps(c), _mm512_set1_ps(0.5f));
    __mmask16 above = _mm512_cmp_ps_mask(w, _mm512_mul_ps(t, t), _CMP_GE_OQ);
    _mm512_storeu_si512(codes, _mm512_mask_add_epi32(c, above, c, _mm512_set1_epi32(1)));
    _mm512_storeu_ps(estimates, _mm512_mul_ps(w, r));
}

typedef void (*codes_fn)(const float *in, int32_t *codes, float *estimates);

static int check(const char *name, codes_fn codes_of, int lanes)
{
    const float top = 65100.0f;
    uint32_t last;
    memcpy(&last, &top, sizeof last);
    uint64_t checked = 0, mismatches = 0;
    double worst = 0.0;
    float in[16], estimates[16];
    int32_t codes[16];
    for (uint64_t first = 0; first <= last; first += (uint64_t)lanes) {
        for (int j = 0; j < lanes; j++) {
            uint32_t bits = (uint32_t)(first + (uint64_t)j <= last ? first + (uint64_t)j : last);
            memcpy(&in[j], &bits, sizeof bits);
        }
        codes_of(in, codes, estimates);
        for (int j = 0; j < lanes && first + (uint64_t)j <= last; j++) {
            checked++;
            mismatches += codes[j] != reference(in[j]);
            double error = fabs((double)estimates[j] - sqrt((double)in[j]));
            worst = error > worst ? error : worst;
        }
    }
    printf("%s: %llu values, %llu mismatches, largest estimate error %.4f\n", name,
           (unsigned long long)checked, (unsigned long long)mismatches, worst);
    return mismatches != 0;
}

int main(void)
{
    __builtin_cpu_init();
    int failed = 0;
    if (__builtin_cpu_supports("avx2"))
        failed |= check("avx2", avx2_codes, 8);
    if (__builtin_cpu_supports("avx512f"))
        failed |= check("avx512", avx512_codes, 16);
    return failed;
}
