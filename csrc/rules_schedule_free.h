/* AdamWScheduleFree's elements (adamkit/rules/schedule_free.py), in rules.h's vector operations:
 * rules.h includes this file with its names defined, once per layout. */
static inline void FN(schedule_free_adamw_lanes)(const ak_scalars *k, int64_t index, P_T *param, const P_T *grad,
                                                 P_T *compensation, S_T *z_slot, S_T *exp_avg_sq, S_T *unused)
{
    (void)unused;
    VEC p = LOAD_P(param);
    VEC g = LOAD_P(grad);
    /* z = copy(param) on the first step */
    VEC z = k->created ? p : LOAD_S(z_slot);
    /* exp_avg_sq * beta2 + (1 - beta2) * grad * grad */
    VEC v = ADD(MUL(LOAD_S(exp_avg_sq), SET1(k->beta2)), MUL(MUL(SET1(k->one_minus_beta2), g), g));
    /* sqrt(exp_avg_sq / (1 - beta2**count)) + eps */
    VEC denom = ADD(SQRT(DIV(v, SET1(k->bias_correction2))), SET1(k->eps));
    /* normed_grad = grad / denom */
    VEC normed = DIV(g, denom);
    if (k->l2)
        normed = ADD(normed, MUL(SET1(k->weight_decay), p)); /* normed_grad + weight_decay * param */
    /* lerp(param, z, ckp1): param + ckp1 * (z - param), or z - (z - param) * (1 - ckp1) */
    if (k->lerp_from_end)
        p = SUB(z, MUL(SUB(z, p), SET1(k->lerp_weight)));
    else
        p = ADD(p, MUL(SET1(k->lerp_weight), SUB(z, p)));
    /* param + (lr * (beta1 * (1 - ckp1) - 1)) * normed_grad */
    p = ADD(p, MUL(SET1(k->y_step_size), normed));
    /* z - lr * normed_grad */
    z = SUB(z, MUL(SET1(k->step_size), normed));
    STORE_S(k, 0, index, z_slot, z);
    STORE_S(k, 1, index, exp_avg_sq, v);
    FN(store_param)(param, compensation, p);
}
