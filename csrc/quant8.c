/* ak_q8_adam: Adam/AdamW with 8-bit block-wise state (see quant8.h and
 * adamkit/quant/blockwise.py, whose float32 operations this file repeats in the same order).
 *
 * The loops are plain C that the compiler vectorises; rint is the add-and-subtract of 2^23,
 * which rounds half to even in the default rounding mode for 0 <= r < 2^23 (here r <= 255),
 * as np.rint does.
 */
#include <math.h>
#include <stdlib.h>

#include "kernel.h"
#include "quant8.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define ROUNDER 8388608.0f /* 2^23 */
#define SIGNED_UNIT 16129.0f /* 127^2 */
#define UNSIGNED_UNIT 4228250625.0f /* 255^4, rounded to float */

#define INLINE static inline __attribute__((always_inline))

/* max |x_i| as the largest bit pattern of |x_i|: for non-negative floats the integer order is
 * the float order, and an integer maximum vectorises (a NaN wins, as in np.max). */
INLINE float block_absmax(int n, const float *x)
{
    uint32_t m = 0;
    for (int i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        bits &= 0x7fffffffu;
        m = bits > m ? bits : m;
    }
    float result;
    memcpy(&result, &m, sizeof result);
    return result;
}

INLINE void encode_signed(int n, const float *x, int8_t *codes, float *absmax)
{
    float s = block_absmax(n, x);
    const float inverse = 1.0f / (s > 0.0f ? s : 1.0f);
    for (int i = 0; i < n; i++) {
        float u = x[i] * inverse;
        float r = (sqrtf(fabsf(u)) * 127.0f + ROUNDER) - ROUNDER;
        codes[i] = (int8_t)(int32_t)copysignf(r, u);
    }
    *absmax = s;
}

/* c = rint(255 sqrt(sqrt(x) / sqrt(s))), from root[i] = sqrt(x[i]) (already computed by the
 * step) and s = max x. */
INLINE void encode_unsigned(int n, const float *root, float s, uint8_t *codes, float *absmax)
{
    const float inverse_root = 1.0f / sqrtf(s > 0.0f ? s : 1.0f);
    for (int i = 0; i < n; i++) {
        float r = (sqrtf(root[i] * inverse_root) * 255.0f + ROUNDER) - ROUNDER;
        codes[i] = (uint8_t)(int32_t)r;
    }
    *absmax = s;
}

enum { PLAIN, L2, DECOUPLED };

/* The codes' units: exp_avg = units[0] * c|c|, exp_avg_sq = units[1] * c^4, and
 * max_exp_avg_sq = units[2] * c^4. */
typedef struct {
    float units[3];
} block_units;

/* Decode, then adamkit.rules.adam on n float32 elements: the parameters in place, the new
 * averages (and sqrt of the second moments) into float32 buffers. The flags are constants at
 * each call site, so each combination compiles to its own branch-free loop. */
INLINE void adam_block(const ak_scalars *k, int maximize, int decay, int amsgrad, int n,
                       float *param, const float *grad, const int8_t *m_codes,
                       const uint8_t *v_codes, const uint8_t *vmax_codes, block_units units,
                       float *m, float *v, float *vmax, float *v_root, float *vmax_root)
{
    const float decay_factor = (float)k->decay_factor, weight_decay = (float)k->weight_decay;
    const float one_minus_beta1 = (float)k->one_minus_beta1, beta2 = (float)k->beta2;
    const float one_minus_beta2 = (float)k->one_minus_beta2;
    const float bias_correction2_sqrt = (float)k->bias_correction2_sqrt, eps = (float)k->eps;
    const float step_size = (float)k->step_size;
    for (int i = 0; i < n; i++) {
        float cm = (float)m_codes[i];
        float cv = (float)v_codes[i];
        float cv2 = cv * cv;
        float m_old = units.units[0] * (cm * fabsf(cm));
        float v_old = units.units[1] * (cv2 * cv2);
        float p = param[i];
        float g = grad[i];
        if (maximize)
            g = -g;
        if (decay == DECOUPLED)
            p = p * decay_factor;
        else if (decay == L2)
            g = g + weight_decay * p;
        float mi = m_old + one_minus_beta1 * (g - m_old);
        float vi = beta2 * v_old + (one_minus_beta2 * g) * g;
        m[i] = mi;
        v[i] = vi;
        float second_moment = vi;
        if (amsgrad) {
            float cx = (float)vmax_codes[i];
            float cx2 = cx * cx;
            float a = units.units[2] * (cx2 * cx2);
            second_moment = (a > vi || a != a) ? a : vi; /* np.maximum: NaN propagates */
            vmax[i] = second_moment;
        }
        float root = sqrtf(second_moment);
        if (amsgrad) {
            vmax_root[i] = root;
            v_root[i] = sqrtf(vi);
        } else {
            v_root[i] = root;
        }
        float denom = root / bias_correction2_sqrt + eps;
        param[i] = p - step_size * (mi / denom);
    }
}

typedef struct {
    const int8_t *m_codes;
    const uint8_t *v_codes, *vmax_codes;
    block_units units;
    float *m, *v, *vmax, *v_root, *vmax_root;
} block_buffers;

#define ADAM_CASE(maximize, decay, amsgrad)                                                    \
    case (maximize) * 6 + (decay) * 2 + (amsgrad):                                               \
        adam_block(k, maximize, decay, amsgrad, n, param, grad, b->m_codes, b->v_codes,         \
                   b->vmax_codes, b->units, b->m, b->v, b->vmax, b->v_root, b->vmax_root);      \
        break;

INLINE void adam_variant(const ak_scalars *k, int n, float *param, const float *grad,
                         const block_buffers *b)
{
    int decay = k->decoupled ? DECOUPLED : k->l2 ? L2 : PLAIN;
    switch ((k->maximize != 0) * 6 + decay * 2 + (k->amsgrad != 0)) {
        ADAM_CASE(0, PLAIN, 0)
        ADAM_CASE(0, PLAIN, 1)
        ADAM_CASE(0, L2, 0)
        ADAM_CASE(0, L2, 1)
        ADAM_CASE(0, DECOUPLED, 0)
        ADAM_CASE(0, DECOUPLED, 1)
        ADAM_CASE(1, PLAIN, 0)
        ADAM_CASE(1, PLAIN, 1)
        ADAM_CASE(1, L2, 0)
        ADAM_CASE(1, L2, 1)
        ADAM_CASE(1, DECOUPLED, 0)
        ADAM_CASE(1, DECOUPLED, 1)
    default:
        break;
    }
}

typedef struct {
    const ak_q8_call *call;
    ak_scalars scalars;
    const ak_tensor_scalars *per_tensor;
    const int64_t *block_offsets; /* blocks of the tensors before t; [n_tensors + 1] */
} plan;

/* Compiled for AVX-512, AVX2 and baseline x86-64, chosen at load time (GCC function
 * multi-versioning); every version computes the same IEEE float32 operations. */
#if AK_X86 && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static void run_block(const plan *pl, int64_t global_block)
{
    const ak_q8_call *c = pl->call;
    int64_t t = ak_tensor_at(pl->block_offsets, c->n_tensors, global_block);
    int64_t b = global_block - pl->block_offsets[t];
    int64_t row_numel = c->row_numels[t];
    int64_t per_row = (row_numel + AK_Q8_BLOCK - 1) / AK_Q8_BLOCK;
    int64_t in_row = (b % per_row) * AK_Q8_BLOCK;
    int64_t first = (b / per_row) * row_numel + in_row;
    int n = (int)(row_numel - in_row < AK_Q8_BLOCK ? row_numel - in_row : AK_Q8_BLOCK);
    ak_scalars k = pl->scalars;
    k.step_size = pl->per_tensor[t].step_size;
    k.bias_correction2_sqrt = pl->per_tensor[t].bias_correction2_sqrt;
    float m[AK_Q8_BLOCK], v[AK_Q8_BLOCK], vmax[AK_Q8_BLOCK];
    float v_root[AK_Q8_BLOCK], vmax_root[AK_Q8_BLOCK];
    int8_t *m_codes = c->exp_avg[t] + first;
    uint8_t *v_codes = c->exp_avg_sq[t] + first;
    uint8_t *vmax_codes = k.amsgrad ? c->max_exp_avg_sq[t] + first : NULL;
    block_buffers buffers = {
        .m_codes = m_codes,
        .v_codes = v_codes,
        .vmax_codes = vmax_codes,
        .units = {{c->exp_avg_absmax[t][b] / SIGNED_UNIT, c->exp_avg_sq_absmax[t][b] / UNSIGNED_UNIT,
                   k.amsgrad ? c->max_exp_avg_sq_absmax[t][b] / UNSIGNED_UNIT : 0.0f}},
        .m = m, .v = v, .vmax = vmax, .v_root = v_root, .vmax_root = vmax_root,
    };
    adam_variant(&k, n, c->params[t] + first, c->grads[t] + first, &buffers);
    encode_signed(n, m, m_codes, &c->exp_avg_absmax[t][b]);
    encode_unsigned(n, v_root, block_absmax(n, v), v_codes, &c->exp_avg_sq_absmax[t][b]);
    if (k.amsgrad)
        encode_unsigned(n, vmax_root, block_absmax(n, vmax), vmax_codes,
                        &c->max_exp_avg_sq_absmax[t][b]);
}

int ak_q8_adam(const ak_q8_call *call)
{
    int64_t n = call->n_tensors;
    if (n <= 0)
        return 0;
    int64_t *offsets = malloc((size_t)(n + 1) * sizeof *offsets);
    ak_tensor_scalars *per_tensor = malloc((size_t)n * sizeof *per_tensor);
    if (!offsets || !per_tensor) {
        free(offsets);
        free(per_tensor);
        return -1;
    }
    plan pl = {.call = call, .per_tensor = per_tensor, .block_offsets = offsets};
    ak_call_scalars(AK_RULE_ADAM, &call->hyper, &pl.scalars);
    offsets[0] = 0;
    for (int64_t t = 0; t < n; t++) {
        int64_t rows = call->numels[t] > 0 ? call->numels[t] / call->row_numels[t] : 0;
        offsets[t + 1] = offsets[t] + rows * ((call->row_numels[t] + AK_Q8_BLOCK - 1) / AK_Q8_BLOCK);
        ak_tensor_scalars_at(AK_RULE_ADAM, &call->hyper, call->steps[t], &per_tensor[t]);
    }
    int64_t total = offsets[n];
    int threads = call->num_threads > 0 ? call->num_threads : 1;
    if (threads > total)
        threads = total > 0 ? (int)total : 1;
    ak_fp_control caller_csr = ak_fp_control_get();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) if (threads > 1)
#endif
    {
        ak_fp_control own_csr = ak_fp_control_get();
        ak_fp_control_set(caller_csr);
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 16)
#endif
        for (int64_t block = 0; block < total; block++)
            run_block(&pl, block);
        ak_fp_control_set(own_csr);
    }
    free(offsets);
    free(per_tensor);
    return 0;
}
