/* LAMB's elements (adamkit/rules/lamb.py) and its segment, in rules.h's vector operations: rules.h
 * includes this file with its names defined, once per layout.
 *
 * lamb.c runs the segment over each block of AK_NORM_BLOCK elements in two passes, which compute
 * the same update r:
 * - the norm pass (k->norm_sums set) computes the new moments and r, and adds the squares of the
 *   parameter and of r, in float64, to the block's lane sums: element `index` to lane
 *   index % AK_NORM_LANES of k->norm_sums (the parameter's) and of k->norm_sums + AK_NORM_LANES
 *   (r's). Through the segment the lane sums stay in NORM_VECTORS float64 vectors per quantity
 *   (one float64 vector of the lanes per F64_LANES of them, in lane order), loaded from and
 *   stored back to k->norm_sums. Where the state holds the arithmetic type exactly (EXACT_STATE)
 *   it stores the moments;
 * - the apply pass (k->step_size = lr * trust_ratio) steps the parameter: with EXACT_STATE from
 *   the moments the norm pass stored, without the gradient; else (bfloat16 state, whose
 *   rounding would change r) from the moments computed again from the same inputs, which it
 *   stores.
 * A segment starts at a multiple of AK_NORM_LANES (a block's first element), so its groups of
 * AK_NORM_LANES elements map vector j of a group to the same lanes whatever the group: the
 * lanes of adamkit.rules.lamb.squared_norm on every ISA.
 */

#define NORM_VECTORS (AK_NORM_LANES / F64_LANES) /* float64 vectors of one quantity's lane sums */
#define SUMS_PER_VECTOR (LANES / F64_LANES)       /* of them, those one arithmetic vector adds to */
#define GROUP_VECTORS (AK_NORM_LANES / LANES)     /* arithmetic vectors in a group of lanes */

/* v with its lanes from `count` on set to zero (v itself where count >= LANES): the lanes of a
 * segment's zero-padded tail that are not elements. */
static inline VEC FN(first_lanes)(VEC v, int64_t count)
{
    if (count >= LANES)
        return v;
    if (count < 0)
        count = 0;
    _Alignas(64) unsigned char lanes[sizeof(VEC)];
    const size_t size = sizeof(VEC) / LANES;
    OPS(store)((void *)lanes, v);
    memset(lanes + count * size, 0, (size_t)(LANES - count) * size);
    return OPS(load)((const void *)lanes);
}

/* LAMB's update r of LANES elements from `index`, the loaded parameter in *p. */
static inline VEC FN(lamb_update)(const ak_scalars *k, int64_t index, const P_T *param, const P_T *grad,
                                  S_T *exp_avg, S_T *exp_avg_sq, VEC *p)
{
    *p = LOAD_P(param);
    VEC m, v;
    if (EXACT_STATE && !k->norm_sums) {
        m = LOAD_S(exp_avg);
        v = LOAD_S(exp_avg_sq);
    } else {
        VEC g = LOAD_P(grad);
        if (k->maximize)
            g = NEG(g);
        /* beta1 * exp_avg + (1 - beta1) * grad */
        m = ADD(MUL(SET1(k->beta1), LOAD_S(exp_avg)), MUL(SET1(k->one_minus_beta1), g));
        /* beta2 * exp_avg_sq + (1 - beta2) * grad * grad */
        v = ADD(MUL(SET1(k->beta2), LOAD_S(exp_avg_sq)), MUL(MUL(SET1(k->one_minus_beta2), g), g));
        if (EXACT_STATE || !k->norm_sums) {
            STORE_S(k, 0, index, exp_avg, m);
            STORE_S(k, 1, index, exp_avg_sq, v);
        }
    }
    /* (exp_avg / bias_correction1) / (sqrt(exp_avg_sq / bias_correction2) + eps) */
    VEC r = DIV(DIV(m, SET1(k->bias_correction1)), ADD(SQRT(DIV(v, SET1(k->bias_correction2))), SET1(k->eps)));
    if (k->l2)
        r = ADD(r, MUL(SET1(k->weight_decay), *p)); /* update + weight_decay * param */
    return r;
}

/* The norm pass over the AK_NORM_LANES elements from `index`, of which the first `count` are
 * elements (the others a tail's zero padding): squared_norm(param), squared_norm(update). The
 * padded lanes of the parameter are zero, those of r may not be (0 / 0 with eps = 0). */
static inline void FN(lamb_norm_group)(const ak_scalars *k, int64_t index, int64_t count, const P_T *param,
                                       const P_T *grad, S_T *exp_avg, S_T *exp_avg_sq, f64v *param_sums,
                                       f64v *update_sums)
{
    for (int j = 0; j < GROUP_VECTORS; j++) {
        VEC p, r = FN(lamb_update)(k, index + j * LANES, param + j * LANES, grad + j * LANES,
                                   exp_avg + j * LANES, exp_avg_sq + j * LANES, &p);
        OPS(add_squares)(param_sums + j * SUMS_PER_VECTOR, p);
        OPS(add_squares)(update_sums + j * SUMS_PER_VECTOR, FN(first_lanes)(r, count - j * LANES));
    }
}

/* The norm pass over n elements, the groups of AK_NORM_LANES, then the last partial one through
 * zero-padded buffers, the lane sums held in registers (a copy of the scalars, so that no store
 * to the state could change them for the compiler). */
static inline void FN(lamb_norm_loop)(const ak_scalars *scalars, int64_t n, const P_T *param, const P_T *grad,
                                      S_T *exp_avg, S_T *exp_avg_sq)
{
    const ak_scalars k = *scalars;
    f64v param_sums[NORM_VECTORS], update_sums[NORM_VECTORS];
    for (int j = 0; j < NORM_VECTORS; j++) {
        param_sums[j] = f64v_load(k.norm_sums + j * F64_LANES);
        update_sums[j] = f64v_load(k.norm_sums + AK_NORM_LANES + j * F64_LANES);
    }
    int64_t i = 0;
    for (; i + AK_NORM_LANES <= n; i += AK_NORM_LANES)
        FN(lamb_norm_group)(&k, k.first_index + i, AK_NORM_LANES, param + i, grad + i, exp_avg + i,
                            exp_avg_sq + i, param_sums, update_sums);
    if (i < n) {
        size_t rest = (size_t)(n - i);
        P_T param_tail[AK_NORM_LANES] = {0}, grad_tail[AK_NORM_LANES] = {0};
        S_T exp_avg_tail[AK_NORM_LANES] = {0}, exp_avg_sq_tail[AK_NORM_LANES] = {0};
        TAIL_IN(param, param_tail);
        TAIL_IN(grad, grad_tail);
        TAIL_IN(exp_avg, exp_avg_tail);
        TAIL_IN(exp_avg_sq, exp_avg_sq_tail);
        FN(lamb_norm_group)(&k, k.first_index + i, (int64_t)rest, param_tail, grad_tail, exp_avg_tail,
                            exp_avg_sq_tail, param_sums, update_sums);
        if (EXACT_STATE) {
            TAIL_OUT(exp_avg, exp_avg_tail);
            TAIL_OUT(exp_avg_sq, exp_avg_sq_tail);
        }
    }
    for (int j = 0; j < NORM_VECTORS; j++) {
        f64v_store(k.norm_sums + j * F64_LANES, param_sums[j]);
        f64v_store(k.norm_sums + AK_NORM_LANES + j * F64_LANES, update_sums[j]);
    }
}

/* The apply pass over LANES elements: param - step_size * update. */
static inline void FN(lamb_apply_lanes)(const ak_scalars *k, int64_t index, P_T *param, const P_T *grad,
                                        P_T *compensation, S_T *exp_avg, S_T *exp_avg_sq)
{
    VEC p, r = FN(lamb_update)(k, index, param, grad, exp_avg, exp_avg_sq, &p);
    FN(store_param)(param, compensation, SUB(p, MUL(SET1(k->step_size), r)));
}

/* The apply pass over n elements, the full vectors, then the last partial one through zero-padded
 * buffers. */
static inline void FN(lamb_apply_loop)(const ak_scalars *k, int64_t n, P_T *param, const P_T *grad,
                                       P_T *compensation, S_T *exp_avg, S_T *exp_avg_sq)
{
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        FN(lamb_apply_lanes)(k, k->first_index + i, param + i, grad + i, AT(compensation, i), exp_avg + i,
                             exp_avg_sq + i);
    if (i == n)
        return;
    size_t rest = (size_t)(n - i);
    P_T param_tail[LANES] = {0}, grad_tail[LANES] = {0}, compensation_tail[LANES] = {0};
    S_T exp_avg_tail[LANES] = {0}, exp_avg_sq_tail[LANES] = {0};
    TAIL_IN(param, param_tail);
    TAIL_IN(grad, grad_tail);
    TAIL_IN(compensation, compensation_tail);
    TAIL_IN(exp_avg, exp_avg_tail);
    TAIL_IN(exp_avg_sq, exp_avg_sq_tail);
    FN(lamb_apply_lanes)(k, k->first_index + i, param_tail, grad_tail, compensation ? compensation_tail : NULL,
                         exp_avg_tail, exp_avg_sq_tail);
    TAIL_OUT(param, param_tail);
    TAIL_OUT(compensation, compensation_tail);
    TAIL_OUT(exp_avg, exp_avg_tail);
    TAIL_OUT(exp_avg_sq, exp_avg_sq_tail);
}

/* LAMB's segment: the norm pass where k->norm_sums is set, else the apply pass. Each loop runs
 * in one of two copies: with maximize and weight decay off, where their branches are compiled
 * out, or the general one. */
static void FN(lamb_segment)(const ak_scalars *scalars, int64_t n, void *param_v, const void *grad_v,
                             void *compensation_v, void *exp_avg_v, void *exp_avg_sq_v, void *unused)
{
    (void)unused;
    const ak_scalars k = *scalars;
    ak_scalars plain = k; /* the flags known off: the compiler drops their branches */
    plain.maximize = plain.l2 = 0;
    int flags_off = !(k.maximize | k.l2);
    P_T *param = param_v, *compensation = compensation_v;
    const P_T *grad = grad_v;
    S_T *exp_avg = exp_avg_v, *exp_avg_sq = exp_avg_sq_v;
    if (!k.norm_sums) {
        if (flags_off && !compensation)
            FN(lamb_apply_loop)(&plain, n, param, grad, NULL, exp_avg, exp_avg_sq);
        else
            FN(lamb_apply_loop)(&k, n, param, grad, compensation, exp_avg, exp_avg_sq);
        return;
    }
    if (flags_off)
        FN(lamb_norm_loop)(&plain, n, param, grad, exp_avg, exp_avg_sq);
    else
        FN(lamb_norm_loop)(&k, n, param, grad, exp_avg, exp_avg_sq);
}

#undef NORM_VECTORS
#undef SUMS_PER_VECTOR
#undef GROUP_VECTORS
