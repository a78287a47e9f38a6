/* The fused 8-bit Adam step (quant8_adam_fused.h), written once over one ISA's vectors.
 *
 * Each operation is the one quant8.c's portable loops compute (adam_element, signed_value,
 * unsigned_value, encode_signed, unsigned_code), LANES lanes at a time, in the same order and
 * without FMA (but for the unsigned code's estimate, where any value within the margin gives
 * the same code). The including file defines, for its ISA:
 *   LANES, VEC (LANES floats), IVEC (LANES 32-bit integers), RUN_NAME (the entry point's name)
 *   v_set1, v_load (aligned), v_loadu, v_store (aligned), v_storeu, v_add, v_sub, v_mul,
 *   v_div, v_sqrt, v_negate (flip the sign bit)
 *   v_maximum(a, b)          np.maximum: NaN in either operand propagates
 *   v_signed_decoded(c, u)   u * (c |c|) of LANES int8 codes at c
 *   v_unsigned_decoded(c, u) u * (c^2)^2 of LANES uint8 codes at c
 *   i_zero(), i_running_absmax(m, x)  the running maximum of |x| on bit patterns (as
 *                            quant8.c's running_absmax), i_reduce_max(m) its largest lane
 *   store_signed_codes(dst, x, f)     encode_signed's LANES codes of x with factor f = 1/s
 *                            (at most 127 in magnitude, also for an infinite x)
 *   store_unsigned_codes(dst, r, f)   unsigned_code's LANES codes of the roots r = sqrt(v)
 *                            with factor f = 255^2/sqrt(s) (w = ak_q8_unsigned_w(r, f)), from
 *                            a reciprocal square root estimate within the margin
 */

typedef struct {
    VEC one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrt, eps, step_size;
    VEC weight_decay, decay_factor;
} adam_constants;

/* A block updated but not yet encoded: per slot the values its code is computed from (slot 0
 * the new exp_avg, slots 1 and 2 the square roots of the new exp_avg_sq and max_exp_avg_sq),
 * where the codes go, the new scale and its factor. */
typedef struct {
    float values[AK_MAX_SLOTS][AK_Q8_BLOCK] __attribute__((aligned(64)));
    void *codes[AK_MAX_SLOTS];
    float scales[AK_MAX_SLOTS];  /* ak_q8_scale */
    float factors[AK_MAX_SLOTS]; /* ak_q8_signed_factor (slot 0), ak_q8_unsigned_factor */
    float boost;                 /* ak_q8_signed_boost of slot 0 */
    int usual;                   /* no scale NaN and no boost: the fused loop encodes it */
} pending_block;

/* Lanes i.. of slot s of a pending block, encoded; with `boosted`, the signed values are first
 * multiplied by the block's boost (x * 1 is x: the fused loop, which only encodes blocks
 * without a boost, leaves the product out). */
INLINE void encode_slot_lanes(const pending_block *e, int s, int i, int boosted)
{
    VEC values = v_load(e->values[s] + i), factor = v_set1(e->factors[s]);
    char *codes = (char *)e->codes[s] + i;
    if (s == 0) {
        if (boosted)
            values = v_mul(values, v_set1(e->boost));
        store_signed_codes(codes, values, factor);
    } else {
        store_unsigned_codes(codes, values, factor);
    }
}

/* Encode a pending block of `slots` slots on its own (codes 0 for a slot whose scale is
 * NaN). */
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

/* Update block b of the run into `out` (and encode `previous` in the same loop if it is not
 * NULL); the flags are constants at each call site. */
INLINE void update_block_and_encode_previous(const adam_constants *a, const ak_q8_run *run, int64_t b,
                                             pending_block *out, const pending_block *previous,
                                             int maximize, int decay, int amsgrad)
{
    const int slots = amsgrad ? 3 : 2;
    const int64_t first = b * AK_Q8_BLOCK;
    float *param = run->param + first;
    const float *grad = run->grad + first;
    const int8_t *m_codes = (const int8_t *)run->codes[0] + first;
    const uint8_t *v_codes = (const uint8_t *)run->codes[1] + first;
    const uint8_t *max_codes = amsgrad ? (const uint8_t *)run->codes[2] + first : NULL;
    const VEC m_unit = v_set1(run->scales[0][b] / AK_Q8_SIGNED_UNIT);
    const VEC v_unit = v_set1(run->scales[1][b] / AK_Q8_UNSIGNED_UNIT);
    const VEC max_unit = v_set1(amsgrad ? run->scales[2][b] / AK_Q8_UNSIGNED_UNIT : 0.0f);
    IVEC absmax[AK_MAX_SLOTS] = {i_zero(), i_zero(), i_zero()};
    for (int i = 0; i < AK_Q8_BLOCK; i += LANES) {
        VEC old_m = v_signed_decoded(m_codes + i, m_unit);
        VEC old_v = v_unsigned_decoded(v_codes + i, v_unit);
        VEC p = v_loadu(param + i);
        VEC g = v_loadu(grad + i);
        if (maximize)
            g = v_negate(g);
        if (decay == AK_Q8_L2)
            g = v_add(g, v_mul(a->weight_decay, p));
        else if (decay == AK_Q8_DECOUPLED)
            p = v_mul(p, a->decay_factor);
        VEC m = v_add(old_m, v_mul(a->one_minus_beta1, v_sub(g, old_m)));
        VEC v = v_add(v_mul(a->beta2, old_v), v_mul(v_mul(a->one_minus_beta2, g), g));
        VEC second_moment = amsgrad ? v_maximum(v_unsigned_decoded(max_codes + i, max_unit), v) : v;
        VEC second_root = v_sqrt(second_moment);
        VEC denom = v_add(v_div(second_root, a->bias_correction2_sqrt), a->eps);
        p = v_sub(p, v_mul(a->step_size, v_div(m, denom)));
        v_storeu(param + i, p);
        v_store(out->values[0] + i, m);
        v_store(out->values[1] + i, amsgrad ? v_sqrt(v) : second_root);
        absmax[0] = i_running_absmax(absmax[0], m);
        absmax[1] = i_running_absmax(absmax[1], v);
        if (amsgrad) {
            v_store(out->values[2] + i, second_root);
            absmax[2] = i_running_absmax(absmax[2], second_moment);
        }
        if (previous)
            for (int s = 0; s < slots; s++)
                encode_slot_lanes(previous, s, i, 0);
    }
    out->usual = 1;
    for (int s = 0; s < slots; s++) {
        float scale = ak_q8_scale(ak_q8_as_float(i_reduce_max(absmax[s])));
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
        update_block_and_encode_previous(a, run, b, &pending[b & 1], previous, maximize, decay, amsgrad);
    }
    if (run->n_blocks > 0)
        encode_alone(&pending[(run->n_blocks - 1) & 1], amsgrad ? 3 : 2);
}

#define RUN_CASE(maximize, decay, amsgrad)                                                       \
    case ((maximize) * 3 + (decay)) * 2 + (amsgrad):                                             \
        run_blocks(&a, run, maximize, decay, amsgrad);                                           \
        break;

void RUN_NAME(const ak_scalars *k, int maximize, int decay, const ak_q8_run *run)
{
    const adam_constants a = {
        .one_minus_beta1 = v_set1((float)k->one_minus_beta1),
        .beta2 = v_set1((float)k->beta2),
        .one_minus_beta2 = v_set1((float)k->one_minus_beta2),
        .bias_correction2_sqrt = v_set1((float)k->bias_correction2_sqrt),
        .eps = v_set1((float)k->eps),
        .step_size = v_set1((float)k->step_size),
        .weight_decay = v_set1((float)k->weight_decay),
        .decay_factor = v_set1((float)k->decay_factor),
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

#undef RUN_CASE
