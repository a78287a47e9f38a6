/* The scalar ISA: one element at a time in plain C, for any CPU. */
#include "kernels_internal.h"

#define ISA scalar
#define F32_LANES 1
#define F64_LANES 1

typedef float f32v;
typedef double f64v;

static inline f32v f32v_set1(float x) { return x; }
static inline f32v f32v_load(const float *p) { return *p; }
static inline void f32v_store(float *p, f32v v) { *p = v; }
static inline f32v f32v_add(f32v a, f32v b) { return a + b; }
static inline f32v f32v_sub(f32v a, f32v b) { return a - b; }
static inline f32v f32v_mul(f32v a, f32v b) { return a * b; }
static inline f32v f32v_div(f32v a, f32v b) { return a / b; }
static inline f32v f32v_sqrt(f32v a) { return sqrtf(a); }
static inline f32v f32v_max(f32v a, f32v b) { return a != a ? a : (a > b ? a : b); }
static inline f32v f32v_min(f32v a, f32v b) { return a != a ? a : (a < b ? a : b); }
static inline f32v f32v_abs(f32v a) { return fabsf(a); }
static inline f32v f32v_neg(f32v a) { return -a; }
/* np.sign: -1, +0 or 1, and NaN stays NaN. */
/* 1 where a > 0, else +0 (NaN included): the cautious mask. */
static inline f32v f32v_positive(f32v a) { return a > 0 ? 1.0f : 0.0f; }
/* The number of lanes where a > 0 (a NaN lane is not counted): cautious's first pass. */
static inline int f32v_count_positive(f32v a) { return a > 0; }
static inline f32v f32v_sign(f32v a) { return a > 0 ? 1.0f : a < 0 ? -1.0f : a != a ? a : 0.0f; }

static inline f64v f64v_set1(double x) { return x; }
static inline f64v f64v_load(const double *p) { return *p; }
static inline void f64v_store(double *p, f64v v) { *p = v; }
static inline f64v f64v_add(f64v a, f64v b) { return a + b; }
static inline f64v f64v_sub(f64v a, f64v b) { return a - b; }
static inline f64v f64v_mul(f64v a, f64v b) { return a * b; }
static inline f64v f64v_div(f64v a, f64v b) { return a / b; }
static inline f64v f64v_sqrt(f64v a) { return sqrt(a); }
static inline f64v f64v_max(f64v a, f64v b) { return a != a ? a : (a > b ? a : b); }
static inline f64v f64v_min(f64v a, f64v b) { return a != a ? a : (a < b ? a : b); }
static inline f64v f64v_abs(f64v a) { return fabs(a); }
static inline f64v f64v_neg(f64v a) { return -a; }
static inline f64v f64v_positive(f64v a) { return a > 0 ? 1.0 : 0.0; }
static inline int f64v_count_positive(f64v a) { return a > 0; }
static inline f64v f64v_sign(f64v a) { return a > 0 ? 1.0 : a < 0 ? -1.0 : a != a ? a : 0.0; }

/* sums[0] += v * v in float64: LAMB's squared norms (rules_lamb.h). */
static inline void f32v_add_squares(f64v *sums, f32v v)
{
    double x = v;
    sums[0] += x * x;
}
static inline void f64v_add_squares(f64v *sums, f64v v) { sums[0] += v * v; }

/* A bfloat16 is the upper half of a float32. */
static inline f32v f32v_load_bf16(const uint16_t *p)
{
    uint32_t bits = (uint32_t)*p << 16;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* Round to nearest even; every NaN becomes the quiet NaN 0x7FC0, as in torch. */
static inline void f32v_store_bf16(uint16_t *p, f32v v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    if (v != v) {
        *p = 0x7FC0;
        return;
    }
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    *p = (uint16_t)(bits >> 16);
}

/* Stochastic rounding (kernels_api.h): element `index` with its slot's key. */
static inline void f32v_store_bf16_stochastic(uint16_t *p, f32v v, uint32_t key, int64_t index)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    if (v != v) {
        *p = 0x7FC0;
        return;
    }
    if ((bits & AK_BF16_MAGNITUDE) != AK_BF16_LARGEST) /* not rounded up to an infinity */
        bits += ak_mix32((uint32_t)index ^ key) >> 16;
    *p = (uint16_t)(bits >> 16);
}

#include "instantiate.h"
