/* ak_q8_update: the rules of adamkit.specs.COMPACT with 8-bit block-wise state (see quant8.h and
 * adamkit/compact/int8.py, whose float32 operations this file repeats in the same order).
 *
 * One driver serves every rule: it finds a block, and in one loop over its elements decodes
 * the state, applies the rule's element update and leaves the new state in float32 buffers on
 * the stack; then it encodes the buffers with the block's new maxima. The loop has no branch:
 * the flags and a rule's per-tensor phase (phase_of) select a copy of it. A rule adds only its
 * element update (adam_element, adamax_element, adadelta_element, nadam_element, adabelief_element, adopt_element, ademamix_element, lion_element), the maps of its slots
 * (LAYOUTS) and its cases in update_variant.
 *
 * The loops are plain C that the compiler vectorises; rint is the add-and-subtract of 2^23,
 * which rounds half to even in the default rounding mode for 0 <= r < 2^23 (here r <= 127),
 * as np.rint does. The driver is compiled for AVX-512, AVX2 and baseline x86-64, and the
 * call's ISA picks one; every version computes the same IEEE float32 operations. On AVX-512 and
 * AVX2, Adam steps the whole blocks of each span with the fused loop of quant8_adam_fused.h
 * instead (the same bits).
 *
 * cautious=True (Adam, AdamW, AdEMAMix and Lion) steps in two passes over the spans, as
 * csrc/cautious.c does over blocks: the first decodes each block, runs the rule and counts the
 * elements whose update agrees in sign with the gradient, storing nothing; the counts of a
 * tensor's spans are integers, summed exactly in any order, and make its scale
 * (ak_cautious_scale); the second decodes the same codes again, runs the rule with the masked
 * and rescaled update and encodes once. Both passes decode identically (the codes are not
 * written in between), so the result is decode -> the cautious rule in float32 -> encode.
 *
 * The same bits in the caller's rounding mode hold as GCC compiles this file. clang folds the
 * negated gradient's product ((1 - beta2) (-g)) (-g) into ((1 - beta2) g) g. That is the same
 * rounding to nearest or toward zero, but not rounding up or down: there a clang build's
 * portable loops can differ from the fused loop in the last bit, with maximize.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "kernels_internal.h"
#include "quant8.h"
#include "quant8_codec.h"
#include "quant8_adam_fused.h"
#include "quant8_bf16.h"

#define INLINE static inline __attribute__((always_inline))

enum { SIGNED_MAP, UNSIGNED_MAP };

/* A block loop's part in cautious=True: none, its first pass (count) or its second (mask). */
enum { Q8_NOT_CAUTIOUS, Q8_COUNT, Q8_MASK };

/* The map of each slot of a rule, and the slots whose square roots (of the new values) the
 * rule's update computes anyway, which the unsigned encoder then reuses. */
typedef struct {
    int maps[AK_MAX_SLOTS];
    unsigned rooted; /* bit s: slot s */
} rule_layout;

static const rule_layout LAYOUTS[AK_N_RULES] = {
    [AK_RULE_ADAM] = {{SIGNED_MAP, UNSIGNED_MAP, UNSIGNED_MAP}, 1u << 1 | 1u << 2},
    [AK_RULE_ADAMAX] = {{SIGNED_MAP, UNSIGNED_MAP}, 0},
    [AK_RULE_ADADELTA] = {{UNSIGNED_MAP, UNSIGNED_MAP}, 0},
    [AK_RULE_NADAM] = {{SIGNED_MAP, UNSIGNED_MAP}, 0},
    [AK_RULE_RADAM] = {{SIGNED_MAP, UNSIGNED_MAP}, 1u << 1},
    [AK_RULE_ADABELIEF] = {{SIGNED_MAP, UNSIGNED_MAP, UNSIGNED_MAP}, 1u << 1 | 1u << 2},
    [AK_RULE_ADOPT] = {{SIGNED_MAP, UNSIGNED_MAP}, 0},
    [AK_RULE_ADEMAMIX] = {{SIGNED_MAP, SIGNED_MAP, UNSIGNED_MAP}, 0},
    [AK_RULE_LION] = {{SIGNED_MAP}, 0},
};

/* The number of 8-bit slots of `rule` (0: no 8-bit state); always inlined, so that in each
 * variant of decode_and_update_block it is a constant and the block loop vectorises. */
INLINE int slot_count(int rule, int amsgrad)
{
    switch (rule) {
    case AK_RULE_ADAM:
    case AK_RULE_ADABELIEF:
        return amsgrad ? 3 : 2;
    case AK_RULE_ADAMAX:
    case AK_RULE_ADADELTA:
    case AK_RULE_NADAM:
    case AK_RULE_RADAM:
    case AK_RULE_ADOPT:
        return 2;
    case AK_RULE_ADEMAMIX:
        return 3;
    case AK_RULE_LION:
        return 1;
    default:
        return 0;
    }
}

int ak_q8_slots(ak_rule rule, const ak_hyper *hyper)
{
    return slot_count(rule, hyper->amsgrad);
}

/* ---- The codec ---- */

/* max(m, |x|) on bit patterns: for non-negative floats the integer order is the float order,
 * and an integer maximum vectorises (a NaN wins, as in np.max). The update loop keeps one such
 * running maximum per slot, so the block's absolute maximum needs no pass of its own. */
INLINE uint32_t running_absmax(uint32_t m, float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits &= 0x7fffffffu;
    return bits > m ? bits : m;
}

/* The value of a code: unit = s / 127^2 (signed) or s / 255^4 (unsigned). */
INLINE float signed_value(const int8_t *codes, float unit, int i)
{
    float c = (float)codes[i];
    return unit * (c * fabsf(c));
}

INLINE float unsigned_value(const uint8_t *codes, float unit, int i)
{
    float c = (float)codes[i];
    float c2 = c * c;
    return unit * (c2 * c2);
}

/* Whether a block's scale is NaN. A block holding a NaN has the scale NaN and decodes to NaN
 * whatever its codes, so they are all 0; every other block has |x|/s <= 1 (also for a subnormal
 * s: see ak_q8_signed_boost) but for an infinity (s = FLT_MAX, ak_q8_scale), and the encoders
 * take at most the largest code, so every code is in range and each float-to-integer
 * conversion defined. */
INLINE int codes_are_zero(int n, float s, void *codes, float *absmax)
{
    if (ak_q8_finite(s))
        return 0;
    memset(codes, 0, (size_t)n);
    *absmax = s;
    return 1;
}

/* Encode the n values x of a block of scale s. The magnitude is at most 127 (AK_Q8_SIGNED_MAX:
 * rounding upward it can come out 128, and an infinity's is inf). */
INLINE void encode_signed(int n, const float *x, float s, int8_t *codes, float *absmax)
{
    if (codes_are_zero(n, s, codes, absmax))
        return;
    const float boost = ak_q8_signed_boost(s), inverse = ak_q8_signed_factor(s);
    for (int i = 0; i < n; i++) {
        float u = (x[i] * boost) * inverse;
        float r = (sqrtf(fabsf(u)) * 127.0f + AK_Q8_ROUNDER) - AK_Q8_ROUNDER;
        r = r < AK_Q8_SIGNED_MAX ? r : AK_Q8_SIGNED_MAX;
        codes[i] = (int8_t)(int32_t)copysignf(r, u);
    }
    *absmax = s;
}

/* The unsigned code of w = ak_q8_unsigned_w(sqrt(x), factor), in [0, 255^2]: the number of
 * thresholds (j + 1/2)^2, j < 255, at or below w (blockwise.py), from an estimate e of sqrt(w)
 * with |e - sqrt(w)| < 1/4: c0 = floor(e + 1/4) is the count or one less, and one comparison
 * with the threshold (c0 + 1/2)^2 (exact in float32) decides. Any such estimate gives the same
 * code; here it is sqrtf, and the fused Adam step (quant8_adam_fused_loop.h) uses a reciprocal
 * square root estimate, which keeps the divider free. */
INLINE uint8_t unsigned_code(float w, float estimate)
{
    int32_t c = (int32_t)(estimate + AK_Q8_ESTIMATE_MARGIN);
    float t = (float)c + 0.5f;
    return (uint8_t)(c + (w >= t * t));
}

/* Encode a block of scale s; root[i] = sqrt(x[i]) if the rule computed it, else NULL. */
INLINE void encode_unsigned(int n, const float *x, float s, const float *root, uint8_t *codes, float *absmax)
{
    if (codes_are_zero(n, s, codes, absmax))
        return;
    const float factor = ak_q8_unsigned_factor(s);
    if (root) {
        for (int i = 0; i < n; i++) {
            float w = ak_q8_unsigned_w(root[i], factor);
            codes[i] = unsigned_code(w, sqrtf(w));
        }
    } else {
        for (int i = 0; i < n; i++) {
            float w = ak_q8_unsigned_w(sqrtf(fabsf(x[i])), factor);
            codes[i] = unsigned_code(w, sqrtf(w));
        }
    }
    *absmax = s;
}

/* ---- The rules ---- */

/* cautious_direction(update, grad) of adamkit.rules.cautious for one element, in a block loop's
 * part `caution`: in the mask pass, update * (kept * scale) with kept = (update * grad > 0) as
 * 1 or 0 and scale the tensor's float32 rescale; in the count pass (which stores nothing) the
 * update as it is, with *kept_count incremented where it is kept; otherwise the update. */
INLINE float caution(int caution, const ak_scalars *k, float update, float g, int64_t *kept_count)
{
    float kept = update * g > 0 ? 1.0f : 0.0f;
    if (caution == Q8_COUNT)
        *kept_count += update * g > 0;
    return caution == Q8_MASK ? update * (kept * (float)k->cautious_scale) : update;
}

/* np.maximum(a, b): NaN in either operand propagates. */
INLINE float maximum(float a, float b) { return (a > b || a != a) ? a : b; }

/* np.minimum(a, b): NaN in either operand propagates. */
INLINE float minimum(float a, float b) { return (a < b || a != a) ? a : b; }

/* Each rule's update of one element, in the order of operations of adamkit.rules: from the
 * parameter p (decayed, for AdamW), the gradient g (directed, with L2 decay) and the decoded
 * state old[s], the new state into new[s] (and, for the slots its layout roots, the square
 * roots into root[s]); returns the new parameter. */

/* adamkit.rules.adam */
INLINE float adam_element(const ak_scalars *k, int amsgrad, int cautious, int64_t *kept, float p, float g,
                          const float *old, float *new, float *root)
{
    float m = old[0] + (float)k->one_minus_beta1 * (g - old[0]);
    float v = (float)k->beta2 * old[1] + ((float)k->one_minus_beta2 * g) * g;
    new[0] = m;
    new[1] = v;
    float second_moment = v;
    if (amsgrad) {
        second_moment = maximum(old[2], v);
        new[2] = second_moment;
    }
    float second_root = sqrtf(second_moment);
    root[1] = amsgrad ? sqrtf(v) : second_root;
    root[2] = second_root;
    float denom = second_root / (float)k->bias_correction2_sqrt + (float)k->eps;
    return p - (float)k->step_size * (caution(cautious, k, m, g, kept) / denom);
}

/* adamkit.rules.adamax: u <- max(beta2 u, |g| + eps), param -= step_size * (m / u). */
INLINE float adamax_element(const ak_scalars *k, float p, float g, const float *old, float *new)
{
    float m = old[0] + (float)k->one_minus_beta1 * (g - old[0]);
    float u = maximum((float)k->beta2 * old[1], fabsf(g) + (float)k->eps);
    new[0] = m;
    new[1] = u;
    return p - (float)k->step_size * (m / u);
}

/* adamkit.rules.adadelta: delta = sqrt(u + eps) / sqrt(v + eps) * g, param -= lr * delta. */
INLINE float adadelta_element(const ak_scalars *k, float p, float g, const float *old, float *new)
{
    const float rho = (float)k->rho, one_minus_rho = (float)k->one_minus_rho, eps = (float)k->eps;
    float v = rho * old[0] + (one_minus_rho * g) * g;
    float delta = sqrtf(old[1] + eps) / sqrtf(v + eps) * g;
    new[0] = v;
    new[1] = rho * old[1] + (one_minus_rho * delta) * delta;
    return p - (float)k->lr * delta;
}

/* adamkit.rules.nadam: denom = sqrt(v / bc2) + eps, param += grad_step_size * (g / denom), then
 * param += momentum_step_size * (m / denom). */
INLINE float nadam_element(const ak_scalars *k, float p, float g, const float *old, float *new)
{
    float m = old[0] + (float)k->one_minus_beta1 * (g - old[0]);
    float v = (float)k->beta2 * old[1] + ((float)k->one_minus_beta2 * g) * g;
    new[0] = m;
    new[1] = v;
    float denom = sqrtf(v / (float)k->bias_correction2) + (float)k->eps;
    p = p + (float)k->step_size * (g / denom);
    return p + (float)k->momentum_step_size * (m / denom);
}

/* adamkit.rules.radam: param -= exp_avg / bc1 * lr, times reciprocal(sqrt(v) + eps) * sqrt(bc2)
 * * rect once rectified (`rectified`: rect > 0). The square root of v is computed in either
 * branch, for the encoder. */
INLINE float radam_element(const ak_scalars *k, int rectified, float p, float g, const float *old, float *new,
                           float *root)
{
    float m = old[0] + (float)k->one_minus_beta1 * (g - old[0]);
    float v = (float)k->beta2 * old[1] + ((float)k->one_minus_beta2 * g) * g;
    new[0] = m;
    new[1] = v;
    root[1] = sqrtf(v);
    float scaled = m / (float)k->bias_correction1 * (float)k->lr;
    if (!rectified)
        return p - scaled;
    float adaptive = 1.0f / (root[1] + (float)k->eps) * (float)k->bias_correction2_sqrt;
    return p - scaled * adaptive * (float)k->rect;
}

/* adamkit.rules.adabelief: the belief s <- beta2 s + (1 - beta2)(g - m)^2 + eps, and, but in a
 * rectified SGD step (`sgd_step`), param -= step_size * (m / (sqrt(s) / bias_correction2_sqrt + eps)). */
INLINE float adabelief_element(const ak_scalars *k, int amsgrad, int sgd_step, float p, float g, const float *old,
                               float *new, float *root)
{
    float m = (float)k->beta1 * old[0] + (float)k->one_minus_beta1 * g;
    float r = g - m;
    float s = ((float)k->beta2 * old[1] + ((float)k->one_minus_beta2 * r) * r) + (float)k->eps;
    new[0] = m;
    new[1] = s;
    float second_moment = s;
    if (amsgrad) {
        second_moment = maximum(old[2], s);
        new[2] = second_moment;
    }
    float second_root = sqrtf(second_moment);
    root[1] = amsgrad ? sqrtf(s) : second_root;
    root[2] = second_root;
    if (sgd_step)
        return p - (float)k->step_size * m;
    float denom = second_root / (float)k->bias_correction2_sqrt + (float)k->eps;
    return p - (float)k->step_size * (m / denom);
}

/* adamkit.rules.adopt: the first step (`initialising`) only adds g^2 to v; later, the decoupled
 * decay, then m <- m + (1 - beta1) (clip(g / max(sqrt(v), eps), clip) - m), param -= lr m, and
 * v last. */
INLINE float adopt_element(const ak_scalars *k, int decoupled, int initialising, float p, float g, const float *old,
                           float *new)
{
    if (initialising) {
        new[0] = old[0];
        new[1] = old[1] + g * g;
        return p;
    }
    float decayed = decoupled ? p - (float)k->decay_rate * p : p; /* param - (lr * weight_decay) * param */
    float normed = g / maximum(sqrtf(old[1]), (float)k->eps);
    normed = minimum(maximum(normed, (float)-k->clip), (float)k->clip);
    float m = old[0] + (float)k->one_minus_beta1 * (normed - old[0]);
    new[0] = m;
    new[1] = (float)k->beta2 * old[1] + ((float)k->one_minus_beta2 * g) * g;
    return decayed - (float)k->lr * m;
}

/* adamkit.rules.ademamix: its decoupled decay adds weight_decay * param to the update. */
INLINE float ademamix_element(const ak_scalars *k, int decay, int cautious, int64_t *kept, float p, float g,
                              const float *old, float *new)
{
    float m1 = old[0] + (float)k->one_minus_beta1 * (g - old[0]);
    float v = (float)k->beta2 * old[2] + ((float)k->one_minus_beta2 * g) * g;
    float m2 = old[1] + (float)k->one_minus_beta3_t * (g - old[1]);
    new[0] = m1;
    new[1] = m2;
    new[2] = v;
    float denom = sqrtf(v) / (float)k->bias_correction2_sqrt + (float)k->eps;
    float update = caution(cautious, k, (m1 / (float)k->bias_correction1 + (float)k->alpha_t * m2) / denom, g, kept);
    if (decay == AK_Q8_DECOUPLED)
        update = update + (float)k->weight_decay * p;
    return p - (float)k->lr * update;
}

/* np.sign: -1, +0 or 1; NaN stays NaN. Selects, not an integer difference, so that the block
 * loop vectorises. */
INLINE float sign(float x)
{
    float s = x > 0 ? 1.0f : 0.0f;
    s = x < 0 ? -1.0f : s;
    return x != x ? x : s;
}

/* adamkit.rules.lion: update = beta1 m + (1 - beta1) g, param -= lr * sign(update),
 * m <- beta2 m + (1 - beta2) g. */
INLINE float lion_element(const ak_scalars *k, int cautious, int64_t *kept, float p, float g, const float *old,
                          float *new)
{
    float update = (float)k->beta1 * old[0] + (float)k->one_minus_beta1 * g;
    new[0] = (float)k->beta2 * old[0] + (float)k->one_minus_beta2 * g;
    return p - (float)k->lr * caution(cautious, k, sign(update), g, kept);
}

/* One block: n elements of a parameter and its gradient, and for each active slot its codes
 * and their unit; the update leaves the slot's new values in values[s] (and, for the
 * slots the layout roots, their square roots in roots[s]), and the parameter in place. */
typedef struct {
    int n;
    float *param;
    const float *grad;
    const void *codes[AK_MAX_SLOTS];
    float units[AK_MAX_SLOTS];
    float *values[AK_MAX_SLOTS];
    float *roots[AK_MAX_SLOTS];
    float absmax[AK_MAX_SLOTS]; /* out: each slot's new scale (ak_q8_scale) */
    int64_t kept;               /* out, cautious's count pass: the elements kept */
} q8_block;

/* Decode, apply `rule`, keep the new state: the rule, the flags, the phase (phase_of) and the
 * part in cautious=True are constants at each call site (update_variant), so each combination
 * compiles to its own branch-free loop. The count pass of cautious=True keeps nothing but the
 * count of kept elements. */
INLINE void decode_and_update_block(const ak_scalars *k, q8_block *b, int rule, int maximize,
                                    int decay, int amsgrad, int phase, int cautious)
{
    const rule_layout *layout = &LAYOUTS[rule];
    const int slots = slot_count(rule, amsgrad);
    uint32_t absmax0 = 0, absmax1 = 0, absmax2 = 0; /* one scalar each, so the loop vectorises */
    int64_t kept = 0;
    for (int i = 0; i < b->n; i++) {
        float old[AK_MAX_SLOTS], new[AK_MAX_SLOTS], root[AK_MAX_SLOTS];
        for (int s = 0; s < slots; s++)
            old[s] = layout->maps[s] == SIGNED_MAP ? signed_value(b->codes[s], b->units[s], i)
                                                   : unsigned_value(b->codes[s], b->units[s], i);
        float p = b->param[i];
        /* grad = with_l2_penalty(directed_gradient(grad, maximize), param, weight_decay) */
        float g = maximize ? -b->grad[i] : b->grad[i];
        if (decay == AK_Q8_L2)
            g = g + (float)k->weight_decay * p;
        else if (decay == AK_Q8_DECOUPLED && rule != AK_RULE_ADOPT && rule != AK_RULE_ADEMAMIX)
            p = p * (float)k->decay_factor; /* param * (1 - lr * weight_decay) */
        if (rule == AK_RULE_ADAM)
            p = adam_element(k, amsgrad, cautious, &kept, p, g, old, new, root);
        else if (rule == AK_RULE_ADABELIEF)
            p = adabelief_element(k, amsgrad, phase, p, g, old, new, root);
        else if (rule == AK_RULE_ADAMAX)
            p = adamax_element(k, p, g, old, new);
        else if (rule == AK_RULE_NADAM)
            p = nadam_element(k, p, g, old, new);
        else if (rule == AK_RULE_RADAM)
            p = radam_element(k, phase, p, g, old, new, root);
        else if (rule == AK_RULE_ADOPT)
            p = adopt_element(k, decay == AK_Q8_DECOUPLED, phase, p, g, old, new);
        else if (rule == AK_RULE_ADEMAMIX)
            p = ademamix_element(k, decay, cautious, &kept, p, g, old, new);
        else if (rule == AK_RULE_ADADELTA)
            p = adadelta_element(k, p, g, old, new);
        else
            p = lion_element(k, cautious, &kept, p, g, old, new);
        if (cautious == Q8_COUNT)
            continue;
        b->param[i] = p;
        for (int s = 0; s < slots; s++) {
            b->values[s][i] = new[s];
            if (layout->rooted >> s & 1u)
                b->roots[s][i] = root[s];
        }
        absmax0 = running_absmax(absmax0, new[0]);
        if (slots > 1)
            absmax1 = running_absmax(absmax1, new[1]);
        if (slots > 2)
            absmax2 = running_absmax(absmax2, new[2]);
    }
    b->kept = kept;
    b->absmax[0] = ak_q8_scale(ak_q8_as_float(absmax0));
    b->absmax[1] = ak_q8_scale(ak_q8_as_float(absmax1));
    b->absmax[2] = ak_q8_scale(ak_q8_as_float(absmax2));
}

#define VARIANT(rule, maximize, decay, amsgrad, phase, cautious)                                \
    ((((((rule) * 2 + (maximize)) * 3 + (decay)) * 2 + (amsgrad)) * 2 + (phase)) * 3 + (cautious))
#define PART_CASE(rule, maximize, decay, amsgrad, phase, cautious)                              \
    case VARIANT(rule, maximize, decay, amsgrad, phase, cautious):                               \
        decode_and_update_block(k, b, rule, maximize, decay, amsgrad, phase, cautious);         \
        break;
#define PHASE_CASE(rule, maximize, decay, amsgrad, phase) PART_CASE(rule, maximize, decay, amsgrad, phase, Q8_NOT_CAUTIOUS)
/* A rule without phases, and one with both (phase_of). */
#define VARIANT_CASE(rule, maximize, decay, amsgrad) PHASE_CASE(rule, maximize, decay, amsgrad, 0)
#define PHASED_CASES(rule, maximize, decay, amsgrad)                                            \
    PHASE_CASE(rule, maximize, decay, amsgrad, 0) PHASE_CASE(rule, maximize, decay, amsgrad, 1)
/* The two passes of cautious=True, for each form of decay. */
#define CAUTIOUS_CASES(rule, maximize, amsgrad)                                                 \
    PART_CASE(rule, maximize, AK_Q8_PLAIN, amsgrad, 0, Q8_COUNT)                                \
    PART_CASE(rule, maximize, AK_Q8_PLAIN, amsgrad, 0, Q8_MASK)                                 \
    PART_CASE(rule, maximize, AK_Q8_L2, amsgrad, 0, Q8_COUNT)                                   \
    PART_CASE(rule, maximize, AK_Q8_L2, amsgrad, 0, Q8_MASK)                                    \
    PART_CASE(rule, maximize, AK_Q8_DECOUPLED, amsgrad, 0, Q8_COUNT)                            \
    PART_CASE(rule, maximize, AK_Q8_DECOUPLED, amsgrad, 0, Q8_MASK)

/* How the rule applies weight decay: AK_Q8_PLAIN (none), AK_Q8_L2 or AK_Q8_DECOUPLED. */
INLINE int decay_of(const ak_scalars *k) { return k->decoupled ? AK_Q8_DECOUPLED : k->l2 ? AK_Q8_L2 : AK_Q8_PLAIN; }

/* The per-tensor branch of a rule's update, which its own copy of the block loop takes so that
 * the loop has no branch on it: RAdam rectified (rect > 0), AdaBelief's rectified SGD step,
 * ADOPT's first step; 0 for the other rules. */
INLINE int phase_of(const ak_scalars *k, ak_rule rule)
{
    switch (rule) {
    case AK_RULE_RADAM:
        return k->rect > 0;
    case AK_RULE_ADABELIEF:
        return k->sgd_step != 0;
    case AK_RULE_ADOPT:
        return k->initialising != 0;
    default:
        return 0;
    }
}

/* The block loop's part in cautious=True: the count pass has somewhere to count. */
INLINE int cautious_part_of(const ak_scalars *k)
{
    return !k->cautious ? Q8_NOT_CAUTIOUS : k->kept_count ? Q8_COUNT : Q8_MASK;
}

INLINE void update_variant(const ak_scalars *k, q8_block *b, ak_rule rule)
{
    int decay = decay_of(k);
    switch (VARIANT(rule, k->maximize != 0, decay, k->amsgrad != 0, phase_of(k, rule), cautious_part_of(k))) {
        VARIANT_CASE(AK_RULE_ADAM, 0, AK_Q8_PLAIN, 0)
        VARIANT_CASE(AK_RULE_ADAM, 0, AK_Q8_PLAIN, 1)
        VARIANT_CASE(AK_RULE_ADAM, 0, AK_Q8_L2, 0)
        VARIANT_CASE(AK_RULE_ADAM, 0, AK_Q8_L2, 1)
        VARIANT_CASE(AK_RULE_ADAM, 0, AK_Q8_DECOUPLED, 0)
        VARIANT_CASE(AK_RULE_ADAM, 0, AK_Q8_DECOUPLED, 1)
        VARIANT_CASE(AK_RULE_ADAM, 1, AK_Q8_PLAIN, 0)
        VARIANT_CASE(AK_RULE_ADAM, 1, AK_Q8_PLAIN, 1)
        VARIANT_CASE(AK_RULE_ADAM, 1, AK_Q8_L2, 0)
        VARIANT_CASE(AK_RULE_ADAM, 1, AK_Q8_L2, 1)
        VARIANT_CASE(AK_RULE_ADAM, 1, AK_Q8_DECOUPLED, 0)
        VARIANT_CASE(AK_RULE_ADAM, 1, AK_Q8_DECOUPLED, 1)
        VARIANT_CASE(AK_RULE_ADAMAX, 0, AK_Q8_PLAIN, 0)
        VARIANT_CASE(AK_RULE_ADAMAX, 0, AK_Q8_L2, 0)
        VARIANT_CASE(AK_RULE_ADAMAX, 1, AK_Q8_PLAIN, 0)
        VARIANT_CASE(AK_RULE_ADAMAX, 1, AK_Q8_L2, 0)
        VARIANT_CASE(AK_RULE_ADADELTA, 0, AK_Q8_PLAIN, 0)
        VARIANT_CASE(AK_RULE_ADADELTA, 0, AK_Q8_L2, 0)
        VARIANT_CASE(AK_RULE_ADADELTA, 1, AK_Q8_PLAIN, 0)
        VARIANT_CASE(AK_RULE_ADADELTA, 1, AK_Q8_L2, 0)
        VARIANT_CASE(AK_RULE_NADAM, 0, AK_Q8_PLAIN, 0)
        VARIANT_CASE(AK_RULE_NADAM, 0, AK_Q8_L2, 0)
        VARIANT_CASE(AK_RULE_NADAM, 0, AK_Q8_DECOUPLED, 0)
        VARIANT_CASE(AK_RULE_NADAM, 1, AK_Q8_PLAIN, 0)
        VARIANT_CASE(AK_RULE_NADAM, 1, AK_Q8_L2, 0)
        VARIANT_CASE(AK_RULE_NADAM, 1, AK_Q8_DECOUPLED, 0)
        PHASED_CASES(AK_RULE_RADAM, 0, AK_Q8_PLAIN, 0)
        PHASED_CASES(AK_RULE_RADAM, 0, AK_Q8_L2, 0)
        PHASED_CASES(AK_RULE_RADAM, 0, AK_Q8_DECOUPLED, 0)
        PHASED_CASES(AK_RULE_RADAM, 1, AK_Q8_PLAIN, 0)
        PHASED_CASES(AK_RULE_RADAM, 1, AK_Q8_L2, 0)
        PHASED_CASES(AK_RULE_RADAM, 1, AK_Q8_DECOUPLED, 0)
        PHASED_CASES(AK_RULE_ADABELIEF, 0, AK_Q8_PLAIN, 0)
        PHASED_CASES(AK_RULE_ADABELIEF, 0, AK_Q8_PLAIN, 1)
        PHASED_CASES(AK_RULE_ADABELIEF, 0, AK_Q8_L2, 0)
        PHASED_CASES(AK_RULE_ADABELIEF, 0, AK_Q8_L2, 1)
        PHASED_CASES(AK_RULE_ADABELIEF, 0, AK_Q8_DECOUPLED, 0)
        PHASED_CASES(AK_RULE_ADABELIEF, 0, AK_Q8_DECOUPLED, 1)
        PHASED_CASES(AK_RULE_ADABELIEF, 1, AK_Q8_PLAIN, 0)
        PHASED_CASES(AK_RULE_ADABELIEF, 1, AK_Q8_PLAIN, 1)
        PHASED_CASES(AK_RULE_ADABELIEF, 1, AK_Q8_L2, 0)
        PHASED_CASES(AK_RULE_ADABELIEF, 1, AK_Q8_L2, 1)
        PHASED_CASES(AK_RULE_ADABELIEF, 1, AK_Q8_DECOUPLED, 0)
        PHASED_CASES(AK_RULE_ADABELIEF, 1, AK_Q8_DECOUPLED, 1)
        PHASED_CASES(AK_RULE_ADOPT, 0, AK_Q8_PLAIN, 0)
        PHASED_CASES(AK_RULE_ADOPT, 0, AK_Q8_L2, 0)
        PHASED_CASES(AK_RULE_ADOPT, 0, AK_Q8_DECOUPLED, 0)
        PHASED_CASES(AK_RULE_ADOPT, 1, AK_Q8_PLAIN, 0)
        PHASED_CASES(AK_RULE_ADOPT, 1, AK_Q8_L2, 0)
        PHASED_CASES(AK_RULE_ADOPT, 1, AK_Q8_DECOUPLED, 0)
        VARIANT_CASE(AK_RULE_ADEMAMIX, 0, AK_Q8_PLAIN, 0)
        VARIANT_CASE(AK_RULE_ADEMAMIX, 0, AK_Q8_L2, 0)
        VARIANT_CASE(AK_RULE_ADEMAMIX, 0, AK_Q8_DECOUPLED, 0)
        VARIANT_CASE(AK_RULE_ADEMAMIX, 1, AK_Q8_PLAIN, 0)
        VARIANT_CASE(AK_RULE_ADEMAMIX, 1, AK_Q8_L2, 0)
        VARIANT_CASE(AK_RULE_ADEMAMIX, 1, AK_Q8_DECOUPLED, 0)
        VARIANT_CASE(AK_RULE_LION, 0, AK_Q8_PLAIN, 0)
        VARIANT_CASE(AK_RULE_LION, 0, AK_Q8_L2, 0)
        VARIANT_CASE(AK_RULE_LION, 0, AK_Q8_DECOUPLED, 0)
        VARIANT_CASE(AK_RULE_LION, 1, AK_Q8_PLAIN, 0)
        VARIANT_CASE(AK_RULE_LION, 1, AK_Q8_L2, 0)
        VARIANT_CASE(AK_RULE_LION, 1, AK_Q8_DECOUPLED, 0)
        CAUTIOUS_CASES(AK_RULE_ADAM, 0, 0)
        CAUTIOUS_CASES(AK_RULE_ADAM, 0, 1)
        CAUTIOUS_CASES(AK_RULE_ADAM, 1, 0)
        CAUTIOUS_CASES(AK_RULE_ADAM, 1, 1)
        CAUTIOUS_CASES(AK_RULE_ADEMAMIX, 0, 0)
        CAUTIOUS_CASES(AK_RULE_ADEMAMIX, 1, 0)
        CAUTIOUS_CASES(AK_RULE_LION, 0, 0)
        CAUTIOUS_CASES(AK_RULE_LION, 1, 0)
    default:
        break;
    }
}

/* ---- The driver ---- */

/* Blocks are stepped in spans of up to Q8_SPAN consecutive blocks of one row: finding a
 * span's tensor and its scalars is not negligible next to the arithmetic of one block of 256
 * elements, and the fused Adam step encodes the last block of each span on its own. Threads
 * take Q8_CHUNK_SPANS consecutive spans at a time (2^16 elements) as they become free: taking
 * 4,096 elements at a time broke each thread's stream through memory that often, which made
 * the step measurably slower (BENCHMARKS.md, issue 5: 8-bit state speed). */
#define Q8_SPAN 32
#define Q8_CHUNK_SPANS 8
#define Q8_SPAN_ELEMENTS (Q8_SPAN * AK_Q8_BLOCK)

typedef struct {
    const ak_q8_call *call;
    int slots; /* ak_q8_slots of the call */
    ak_scalars scalars;
    const ak_tensor_scalars *per_tensor;
    const int64_t *span_offsets; /* spans of the tensors before t; [n_tensors + 1] */
    float *scratch; /* bf16_params: per thread, a span's parameters and gradients in float32 */
    int64_t *kept_counts; /* cautious=True, its count pass: one per span; else NULL */
    const double *cautious_scales; /* cautious=True, its mask pass: one per tensor */
} plan;

static int64_t blocks_per_row(const ak_q8_call *c, int64_t t)
{
    return (c->row_numels[t] + AK_Q8_BLOCK - 1) / AK_Q8_BLOCK;
}

/* Decode, update and encode block `b` of tensor t, which starts at element `first` and holds n
 * float32 parameters at `param` and gradients at `grad`. */
INLINE void run_block(const plan *pl, const ak_scalars *k, int64_t t, int64_t b, int64_t first, int n, float *param,
                      const float *grad)
{
    const ak_q8_call *c = pl->call;
    const rule_layout *layout = &LAYOUTS[c->rule];
    float values[AK_MAX_SLOTS][AK_Q8_BLOCK], roots[AK_MAX_SLOTS][AK_Q8_BLOCK];
    q8_block block = {.n = n, .param = param, .grad = grad};
    for (int s = 0; s < AK_MAX_SLOTS; s++) {
        if (!c->codes[s])
            continue;
        block.codes[s] = (const char *)c->codes[s][t] + first; /* one byte per code */
        block.units[s] = c->absmax[s][t][b] / (layout->maps[s] == SIGNED_MAP ? AK_Q8_SIGNED_UNIT : AK_Q8_UNSIGNED_UNIT);
        block.values[s] = values[s];
        block.roots[s] = roots[s];
    }
    update_variant(k, &block, c->rule);
    if (k->kept_count) {
        *k->kept_count += block.kept; /* cautious's count pass: nothing to encode */
        return;
    }
    for (int s = 0; s < AK_MAX_SLOTS; s++) {
        if (!c->codes[s])
            continue;
        void *codes = (char *)c->codes[s][t] + first;
        float *absmax = &c->absmax[s][t][b];
        if (layout->maps[s] == SIGNED_MAP)
            encode_signed(n, values[s], block.absmax[s], codes, absmax);
        else
            encode_unsigned(n, values[s], block.absmax[s], layout->rooted >> s & 1u ? roots[s] : NULL, codes, absmax);
    }
}

/* Step one span (numbered across all tensors), block after block; with a fused runner
 * (quant8_adam_fused.h), Adam steps the span's whole blocks with it. bfloat16 parameters are
 * stepped in float32 in the scratch of `thread`, and stored back (quant8_bf16.h). */
INLINE void run_span(const plan *pl, int64_t global_span, int thread, ak_q8_adam_runner fused_adam)
{
    const ak_q8_call *c = pl->call;
    int64_t t = ak_tensor_at(pl->span_offsets, c->n_tensors, global_span);
    int64_t span = global_span - pl->span_offsets[t];
    int64_t row_numel = c->row_numels[t];
    int64_t per_row = blocks_per_row(c, t);
    int64_t spans_per_row = (per_row + Q8_SPAN - 1) / Q8_SPAN;
    int64_t row = span / spans_per_row;
    int64_t first_block = (span % spans_per_row) * Q8_SPAN;
    int64_t last_block = first_block + Q8_SPAN < per_row ? first_block + Q8_SPAN : per_row;
    ak_scalars k = pl->scalars;
    k.tensor = pl->per_tensor[t];
    if (pl->kept_counts) {
        k.kept_count = &pl->kept_counts[global_span];
        *k.kept_count = 0;
    } else if (pl->cautious_scales) {
        k.cautious_scale = pl->cautious_scales[t];
    }
    int64_t whole_blocks_end = last_block == per_row && row_numel % AK_Q8_BLOCK ? last_block - 1 : last_block;
    const int64_t span_first = row * row_numel + first_block * AK_Q8_BLOCK, span_first_block = first_block;
    const int64_t span_end = row * row_numel + (last_block * AK_Q8_BLOCK < row_numel ? last_block * AK_Q8_BLOCK : row_numel);
    float *param = (float *)c->params[t] + span_first;
    const float *grad = (const float *)c->grads[t] + span_first;
    if (c->bf16_params) {
        param = pl->scratch + (int64_t)thread * 2 * Q8_SPAN_ELEMENTS;
        ak_q8_bf16_widen(span_end - span_first, (const uint16_t *)c->params[t] + span_first, param);
        ak_q8_bf16_widen(span_end - span_first, (const uint16_t *)c->grads[t] + span_first, param + Q8_SPAN_ELEMENTS);
        grad = param + Q8_SPAN_ELEMENTS;
    }
    if (fused_adam && !k.cautious && c->rule == AK_RULE_ADAM && whole_blocks_end > first_block) {
        int64_t first_scale = row * per_row + first_block;
        ak_q8_run run = {.n_blocks = whole_blocks_end - first_block, .param = param, .grad = grad};
        for (int s = 0; s < pl->slots; s++) {
            run.codes[s] = (char *)c->codes[s][t] + span_first;
            run.scales[s] = c->absmax[s][t] + first_scale;
        }
        fused_adam(&k, k.maximize != 0, decay_of(&k), &run);
        first_block = whole_blocks_end;
    }
    for (int64_t block = first_block; block < last_block; block++) {
        int64_t in_row = block * AK_Q8_BLOCK, in_span = (block - span_first_block) * AK_Q8_BLOCK;
        int n = (int)(row_numel - in_row < AK_Q8_BLOCK ? row_numel - in_row : AK_Q8_BLOCK);
        run_block(pl, &k, t, row * per_row + block, row * row_numel + in_row, n, param + in_span, grad + in_span);
    }
    if (c->bf16_params && !k.kept_count)
        ak_q8_bf16_store(span_end - span_first, param, (uint16_t *)c->params[t] + span_first,
                         c->compensation ? c->compensation[t] + span_first : NULL);
}

/* run_span compiled for each instruction set (the code is the same; the compiler vectorises
 * it with the ISA's registers), Adam's whole blocks stepped by the ISA's fused loop. The
 * AVX-512 version also takes AVX512BW and VL, whose byte operations widen and narrow the codes:
 * without them it ran slower (BENCHMARKS.md, issue 5; benchmarks/quant_compute_floor.py); a
 * processor with AVX512F alone (Xeon Phi) runs the AVX2 version. */
static void run_span_baseline(const void *pl, int64_t global_span, int thread)
{
    run_span(pl, global_span, thread, NULL);
}

#if AK_X86 && defined(__GNUC__)
__attribute__((target("avx2"))) static void run_span_avx2(const void *pl, int64_t global_span, int thread)
{
    run_span(pl, global_span, thread, ak_q8_adam_run_avx2);
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) static void run_span_avx512(const void *pl, int64_t global_span,
                                                                                 int thread)
{
    run_span(pl, global_span, thread, ak_q8_adam_run_avx512);
}
#endif

static ak_task_fn runner_for(ak_isa isa)
{
#if AK_X86 && defined(__GNUC__)
    if (isa == AK_ISA_AVX512 && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return run_span_avx512;
    if (isa == AK_ISA_AVX512)
        return run_span_avx2;
    if (isa == AK_ISA_AVX2)
        return run_span_avx2;
#endif
    (void)isa;
    return run_span_baseline;
}

/* cautious=True: the count pass over every span, then each tensor's scale from its spans'
 * counts, then the mask pass. Returns 0, or -1 if memory could not be allocated. */
static int cautious_passes(plan *pl, int64_t spans, ak_task_fn runner)
{
    const ak_q8_call *call = pl->call;
    int64_t *counts = malloc((size_t)(spans > 0 ? spans : 1) * sizeof *counts);
    double *scales = malloc((size_t)call->n_tensors * sizeof *scales);
    if (!counts || !scales) {
        free(counts);
        free(scales);
        return -1;
    }
    pl->kept_counts = counts;
    ak_parallel_for(spans, call->num_threads, Q8_CHUNK_SPANS, runner, pl);
    for (int64_t t = 0; t < call->n_tensors; t++) {
        int64_t kept = 0;
        for (int64_t span = pl->span_offsets[t]; span < pl->span_offsets[t + 1]; span++)
            kept += counts[span];
        scales[t] = ak_cautious_scale((double)kept, (double)call->numels[t]);
    }
    pl->kept_counts = NULL;
    pl->cautious_scales = scales;
    ak_parallel_for(spans, call->num_threads, Q8_CHUNK_SPANS, runner, pl);
    free(counts);
    free(scales);
    return 0;
}

int ak_q8_update(const ak_q8_call *call)
{
    int64_t n = call->n_tensors;
    if (n <= 0)
        return 0;
    int64_t *offsets = malloc((size_t)(n + 1) * sizeof *offsets);
    ak_tensor_scalars *per_tensor = malloc((size_t)n * sizeof *per_tensor);
    float *scratch = call->bf16_params ? malloc((size_t)call->num_threads * 2 * Q8_SPAN_ELEMENTS * sizeof *scratch) : NULL;
    if (!offsets || !per_tensor || (call->bf16_params && !scratch)) {
        free(offsets);
        free(per_tensor);
        free(scratch);
        return -1;
    }
    plan pl = {.call = call,
               .slots = ak_q8_slots(call->rule, &call->hyper),
               .per_tensor = per_tensor,
               .span_offsets = offsets,
               .scratch = scratch};
    ak_call_scalars(call->rule, &call->hyper, &pl.scalars);
    offsets[0] = 0;
    for (int64_t t = 0; t < n; t++) {
        int64_t rows = call->numels[t] > 0 ? call->numels[t] / call->row_numels[t] : 0;
        offsets[t + 1] = offsets[t] + rows * ((blocks_per_row(call, t) + Q8_SPAN - 1) / Q8_SPAN);
        ak_tensor_scalars_at(call->rule, &call->hyper, call->steps[t], &per_tensor[t]);
        if (call->mu_products)
            ak_nadam_tensor_scalars(&call->hyper, call->steps[t], call->mu_products[t], &per_tensor[t]);
    }
    int status = 0;
    if (call->hyper.cautious)
        status = cautious_passes(&pl, offsets[n], runner_for(call->isa));
    else
        ak_parallel_for(offsets[n], call->num_threads, Q8_CHUNK_SPANS, runner_for(call->isa), &pl);
    free(offsets);
    free(per_tensor);
    free(scratch);
    return status;
}
