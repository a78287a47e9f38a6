/* The per-element math of every rule, written once in the vector operations of one ISA.
 *
 * instantiate.h includes this file once per layout, with these names defined:
 *   VEC, LANES        the arithmetic vector type and its width (1 for the scalar ISA)
 *   P_T, S_T          the storage types of parameters/gradients and of state
 *   OPS(op)           the function of vector operation `op` (add, sub, mul, div, sqrt, max,
 *                     min, abs, neg, set1) for VEC
 *   LOAD_P, STORE_P   load/store LANES parameters (or gradients) as VEC
 *   LOAD_S            load LANES state values as VEC
 *   STORE_S(k, slot, index, p, v)  store v as LANES state values of slot `slot` at p, the
 *                     first of which is element `index` of its tensor (the position and the
 *                     slot seed stochastic rounding; the other layouts ignore them)
 *   FN(name)          the name of this instantiation's function `name`
 *   EXACT_STATE       1 where S_T holds every value of the arithmetic type exactly (float32 or
 *                     float64 state), 0 for bfloat16 state
 *
 * Each *_lanes function updates LANES elements in the order of operations of the rule of the
 * same name in adamkit/rules (quoted in the comments), and stores the parameter through
 * store_param, optionally with a compensation buffer. The segment functions run it over the
 * full vectors of a segment and, through zero-padded buffers, over the last partial vector,
 * so the vector body and the tail are the same code.
 */

#define ADD(a, b) OPS(add)(a, b)
#define SUB(a, b) OPS(sub)(a, b)
#define MUL(a, b) OPS(mul)(a, b)
#define DIV(a, b) OPS(div)(a, b)
#define SQRT(a) OPS(sqrt)(a)
#define MAX(a, b) OPS(max)(a, b) /* np.maximum: NaN in either operand propagates */
#define MIN(a, b) OPS(min)(a, b) /* np.minimum: NaN in either operand propagates */
#define ABS(a) OPS(abs)(a)
#define NEG(a) OPS(neg)(a)
#define SIGN(a) OPS(sign)(a) /* np.sign: -1, +0 or 1; NaN stays NaN */
#define SET1(x) OPS(set1)(x) /* a double scalar, rounded once to the arithmetic type */
#define POSITIVE(a) OPS(positive)(a) /* 1 where a > 0, else +0 (NaN included) */

/* grad = with_l2_penalty(directed_gradient(grad, maximize), param, weight_decay) */
static inline VEC FN(directed_l2_gradient)(const ak_scalars *k, VEC g, VEC p)
{
    if (k->maximize)
        g = NEG(g);
    if (k->l2)
        g = ADD(g, MUL(SET1(k->weight_decay), p));
    return g;
}

/* Store t, the rule's new parameter value in the arithmetic type, into param.
 *
 * Without compensation: param = round(t). With a compensation buffer c (Kahan summation for
 * bfloat16 parameters), what rounding to bfloat16 loses of each update is kept in c and added
 * back at the next step:
 *
 *     s = t + c;   param = round(s);   c = round(s - param)
 *
 * This is Kahan's compensated sum with the update u = t - p of the loaded parameter p,
 * y = u + c, param = round(p + y), c = round(y - (param - p)), rearranged: p + y = t + c and
 * y - (param - p) = s - param. The rearrangement rounds no more than the original: t + c is
 * one float32 addition at the precision of the parameter, as p + y is, and s - param is exact
 * for finite s (param is s rounded to 8 significant bits, so the difference fits in the 24 of
 * a float32); only the store of c into bfloat16 rounds. Starting from c = 0 the parameter is
 * round(t), as without compensation (but for the sign of a zero t: -0 + 0 = +0). For float32
 * or float64 storage s - param is always 0, so the buffer is for bfloat16 parameters only. */
static inline void FN(store_param)(P_T *param, P_T *compensation, VEC t)
{
    if (!compensation) {
        STORE_P(param, t);
        return;
    }
    VEC s = ADD(t, LOAD_P(compensation));
    STORE_P(param, s);
    STORE_P(compensation, SUB(s, LOAD_P(param)));
}

/* cautious_direction(update, grad) of adamkit.rules.cautious. In the first pass (k->kept_count
 * set) it adds the number of lanes where update * grad > 0 to *k->kept_count (a compare, its
 * lane mask and a population count: an exact integer on every ISA) and returns 1: the caller
 * returns, storing nothing. In the second it makes *update update * (kept * cautious_scale)
 * and returns 0. A zero-padded tail lane has grad 0, so it is never counted. */
static inline int FN(caution)(const ak_scalars *k, VEC *update, VEC grad)
{
    VEC product = MUL(*update, grad);
    if (k->kept_count) {
        *k->kept_count += OPS(count_positive)(product);
        return 1;
    }
    /* update * (kept * kept_scale(kept)), kept = (update * grad > 0) as 1 or 0 */
    *update = MUL(*update, MUL(POSITIVE(product), SET1(k->cautious_scale)));
    return 0;
}

/* grad = directed_gradient(grad, maximize); then param * (1 - lr * weight_decay) (decoupled
 * decay, into *p) or grad + weight_decay * param (L2) */
static inline VEC FN(decayed_gradient)(const ak_scalars *k, VEC *p, VEC g)
{
    if (k->maximize)
        g = NEG(g);
    if (k->decoupled)
        *p = MUL(*p, SET1(k->decay_factor));
    else if (k->l2)
        g = ADD(g, MUL(SET1(k->weight_decay), *p));
    return g;
}

/* adam_moments(param, grad, exp_avg, exp_avg_sq, ...), which Adam and RAdam share: from the
 * loaded parameter *p, the decayed parameter in *p, the new moments in *m, *v, stored but in
 * cautious's first pass; returns the gradient they took. */
static inline VEC FN(adam_moments)(const ak_scalars *k, int64_t index, const P_T *grad, S_T *exp_avg,
                                   S_T *exp_avg_sq, VEC *p, VEC *m, VEC *v)
{
    VEC g = FN(decayed_gradient)(k, p, LOAD_P(grad));
    /* exp_avg + (1 - beta1) * (grad - exp_avg) */
    *m = LOAD_S(exp_avg);
    *m = ADD(*m, MUL(SET1(k->one_minus_beta1), SUB(g, *m)));
    /* beta2 * exp_avg_sq + (1 - beta2) * grad * grad */
    *v = LOAD_S(exp_avg_sq);
    *v = ADD(MUL(SET1(k->beta2), *v), MUL(MUL(SET1(k->one_minus_beta2), g), g));
    if (!k->kept_count) {
        STORE_S(k, 0, index, exp_avg, *m);
        STORE_S(k, 1, index, exp_avg_sq, *v);
    }
    return g;
}

static inline void FN(adam_lanes)(const ak_scalars *k, int64_t index, P_T *param, const P_T *grad,
                                  P_T *compensation, S_T *exp_avg, S_T *exp_avg_sq,
                                  S_T *max_exp_avg_sq)
{
    VEC p = LOAD_P(param), m, v;
    VEC g = FN(adam_moments)(k, index, grad, exp_avg, exp_avg_sq, &p, &m, &v);
    VEC direction = m;
    if (k->cautious && FN(caution)(k, &direction, g))
        return;
    VEC second_moment = v;
    if (k->amsgrad) {
        /* np.maximum(max_exp_avg_sq, exp_avg_sq) */
        second_moment = MAX(LOAD_S(max_exp_avg_sq), v);
        STORE_S(k, 2, index, max_exp_avg_sq, second_moment);
    }
    /* np.sqrt(second_moment) / bias_correction2_sqrt + eps */
    VEC denom = ADD(DIV(SQRT(second_moment), SET1(k->bias_correction2_sqrt)), SET1(k->eps));
    /* param - step_size * (direction / denom) */
    p = SUB(p, MUL(SET1(k->step_size), DIV(direction, denom)));
    FN(store_param)(param, compensation, p);
}

static inline void FN(adamax_lanes)(const ak_scalars *k, int64_t index, P_T *param, const P_T *grad,
                                    P_T *compensation, S_T *exp_avg, S_T *exp_inf, S_T *unused)
{
    (void)unused;
    VEC p = LOAD_P(param);
    VEC g = FN(directed_l2_gradient)(k, LOAD_P(grad), p);
    /* exp_avg + (1 - beta1) * (grad - exp_avg) */
    VEC m = LOAD_S(exp_avg);
    m = ADD(m, MUL(SET1(k->one_minus_beta1), SUB(g, m)));
    /* np.maximum(beta2 * exp_inf, np.abs(grad) + eps) */
    VEC u = MAX(MUL(SET1(k->beta2), LOAD_S(exp_inf)), ADD(ABS(g), SET1(k->eps)));
    STORE_S(k, 0, index, exp_avg, m);
    STORE_S(k, 1, index, exp_inf, u);
    /* param - step_size * (exp_avg / exp_inf) */
    p = SUB(p, MUL(SET1(k->step_size), DIV(m, u)));
    FN(store_param)(param, compensation, p);
}

static inline void FN(adadelta_lanes)(const ak_scalars *k, int64_t index, P_T *param, const P_T *grad,
                                      P_T *compensation, S_T *square_avg, S_T *acc_delta,
                                      S_T *unused)
{
    (void)unused;
    VEC p = LOAD_P(param);
    VEC g = FN(directed_l2_gradient)(k, LOAD_P(grad), p);
    /* rho * square_avg + (1 - rho) * grad * grad */
    VEC v = LOAD_S(square_avg);
    v = ADD(MUL(SET1(k->rho), v), MUL(MUL(SET1(k->one_minus_rho), g), g));
    /* std = np.sqrt(square_avg + eps); delta = np.sqrt(acc_delta + eps) / std * grad */
    VEC std = SQRT(ADD(v, SET1(k->eps)));
    VEC u = LOAD_S(acc_delta);
    VEC delta = MUL(DIV(SQRT(ADD(u, SET1(k->eps))), std), g);
    /* rho * acc_delta + (1 - rho) * delta * delta */
    u = ADD(MUL(SET1(k->rho), u), MUL(MUL(SET1(k->one_minus_rho), delta), delta));
    STORE_S(k, 0, index, square_avg, v);
    STORE_S(k, 1, index, acc_delta, u);
    /* param - lr * delta */
    p = SUB(p, MUL(SET1(k->lr), delta));
    FN(store_param)(param, compensation, p);
}

static inline void FN(sgd_lanes)(const ak_scalars *k, int64_t index, P_T *param, const P_T *grad,
                                 P_T *compensation, S_T *momentum_buffer, S_T *unused1,
                                 S_T *unused2)
{
    (void)unused1;
    (void)unused2;
    VEC p = LOAD_P(param);
    VEC g = FN(directed_l2_gradient)(k, LOAD_P(grad), p);
    if (k->with_momentum) {
        /* a copy of grad on the first step, then momentum * buf + (1 - dampening) * grad */
        VEC b = k->created ? g
                           : ADD(MUL(SET1(k->momentum), LOAD_S(momentum_buffer)),
                                 MUL(SET1(k->one_minus_dampening), g));
        STORE_S(k, 0, index, momentum_buffer, b);
        /* grad + momentum * buf (Nesterov), else buf */
        g = k->nesterov ? ADD(g, MUL(SET1(k->momentum), b)) : b;
    }
    /* param - lr * grad */
    p = SUB(p, MUL(SET1(k->lr), g));
    FN(store_param)(param, compensation, p);
}

static inline void FN(adagrad_lanes)(const ak_scalars *k, int64_t index, P_T *param, const P_T *grad,
                                     P_T *compensation, S_T *sum, S_T *unused1, S_T *unused2)
{
    (void)unused1;
    (void)unused2;
    VEC p = LOAD_P(param);
    VEC g = FN(directed_l2_gradient)(k, LOAD_P(grad), p);
    /* sum + grad * grad; std = np.sqrt(sum) + eps */
    VEC s = ADD(LOAD_S(sum), MUL(g, g));
    VEC std = ADD(SQRT(s), SET1(k->eps));
    STORE_S(k, 0, index, sum, s);
    /* param - clr * (grad / std) */
    p = SUB(p, MUL(SET1(k->step_size), DIV(g, std)));
    FN(store_param)(param, compensation, p);
}

static inline void FN(rmsprop_lanes)(const ak_scalars *k, int64_t index, P_T *param, const P_T *grad,
                                     P_T *compensation, S_T *square_avg, S_T *momentum_buffer,
                                     S_T *grad_avg)
{
    VEC p = LOAD_P(param);
    VEC g = FN(directed_l2_gradient)(k, LOAD_P(grad), p);
    /* alpha * square_avg + (1 - alpha) * grad * grad */
    VEC v = LOAD_S(square_avg);
    v = ADD(MUL(SET1(k->alpha), v), MUL(MUL(SET1(k->one_minus_alpha), g), g));
    STORE_S(k, 0, index, square_avg, v);
    VEC avg;
    if (k->centered) {
        /* grad_avg + (1 - alpha) * (grad - grad_avg); np.sqrt(square_avg - grad_avg * grad_avg) + eps */
        VEC a = LOAD_S(grad_avg);
        a = ADD(a, MUL(SET1(k->one_minus_alpha), SUB(g, a)));
        STORE_S(k, 2, index, grad_avg, a);
        avg = ADD(SQRT(SUB(v, MUL(a, a))), SET1(k->eps));
    } else {
        /* np.sqrt(square_avg) + eps */
        avg = ADD(SQRT(v), SET1(k->eps));
    }
    if (k->with_momentum) {
        /* momentum * momentum_buffer + grad / avg; param - lr * momentum_buffer */
        VEC b = ADD(MUL(SET1(k->momentum), LOAD_S(momentum_buffer)), DIV(g, avg));
        STORE_S(k, 1, index, momentum_buffer, b);
        p = SUB(p, MUL(SET1(k->lr), b));
    } else {
        /* param - lr * (grad / avg) */
        p = SUB(p, MUL(SET1(k->lr), DIV(g, avg)));
    }
    FN(store_param)(param, compensation, p);
}

static inline void FN(radam_lanes)(const ak_scalars *k, int64_t index, P_T *param, const P_T *grad,
                                   P_T *compensation, S_T *exp_avg, S_T *exp_avg_sq, S_T *unused)
{
    (void)unused;
    VEC p = LOAD_P(param), m, v;
    FN(adam_moments)(k, index, grad, exp_avg, exp_avg_sq, &p, &m, &v);
    /* exp_avg / bias_correction1 * lr */
    VEC scaled = MUL(DIV(m, SET1(k->bias_correction1)), SET1(k->lr));
    if (k->rect > 0) {
        /* reciprocal(sqrt(exp_avg_sq) + eps) * bias_correction2_sqrt */
        VEC adaptive = MUL(DIV(SET1(1.0), ADD(SQRT(v), SET1(k->eps))), SET1(k->bias_correction2_sqrt));
        /* param - scaled_exp_avg * adaptive_lr * rect */
        p = SUB(p, MUL(MUL(scaled, adaptive), SET1(k->rect)));
    } else {
        /* param - scaled_exp_avg */
        p = SUB(p, scaled);
    }
    FN(store_param)(param, compensation, p);
}

static inline void FN(adabelief_lanes)(const ak_scalars *k, int64_t index, P_T *param, const P_T *grad,
                                       P_T *compensation, S_T *exp_avg, S_T *exp_avg_var,
                                       S_T *max_exp_avg_var)
{
    VEC p = LOAD_P(param);
    VEC g = FN(decayed_gradient)(k, &p, LOAD_P(grad));
    /* beta1 * exp_avg + (1 - beta1) * grad */
    VEC m = ADD(MUL(SET1(k->beta1), LOAD_S(exp_avg)), MUL(SET1(k->one_minus_beta1), g));
    /* residual = grad - exp_avg; beta2 * exp_avg_var + (1 - beta2) * residual * residual + eps */
    VEC r = SUB(g, m);
    VEC s = ADD(ADD(MUL(SET1(k->beta2), LOAD_S(exp_avg_var)), MUL(MUL(SET1(k->one_minus_beta2), r), r)),
                SET1(k->eps));
    STORE_S(k, 0, index, exp_avg, m);
    STORE_S(k, 1, index, exp_avg_var, s);
    VEC second_moment = s;
    if (k->amsgrad) {
        /* np.maximum(max_exp_avg_var, exp_avg_var) */
        second_moment = MAX(LOAD_S(max_exp_avg_var), s);
        STORE_S(k, 2, index, max_exp_avg_var, second_moment);
    }
    if (k->sgd_step) {
        /* param - step_size * exp_avg */
        p = SUB(p, MUL(SET1(k->step_size), m));
    } else {
        /* np.sqrt(second_moment) / bias_correction2_sqrt + eps; param - step_size * (exp_avg / denom) */
        VEC denom = ADD(DIV(SQRT(second_moment), SET1(k->bias_correction2_sqrt)), SET1(k->eps));
        p = SUB(p, MUL(SET1(k->step_size), DIV(m, denom)));
    }
    FN(store_param)(param, compensation, p);
}

static inline void FN(adopt_lanes)(const ak_scalars *k, int64_t index, P_T *param, const P_T *grad,
                                   P_T *compensation, S_T *exp_avg, S_T *exp_avg_sq, S_T *unused)
{
    (void)unused;
    VEC p = LOAD_P(param);
    VEC g = FN(directed_l2_gradient)(k, LOAD_P(grad), p); /* L2 only without decoupled decay */
    VEC m = LOAD_S(exp_avg);
    VEC v = LOAD_S(exp_avg_sq);
    if (k->initialising) {
        /* exp_avg_sq + grad * grad; param and exp_avg as they were */
        v = ADD(v, MUL(g, g));
    } else {
        if (k->decoupled)
            p = SUB(p, MUL(SET1(k->decay_rate), p)); /* param - (lr * weight_decay) * param */
        /* grad / np.maximum(np.sqrt(exp_avg_sq), eps) */
        VEC normed = DIV(g, MAX(SQRT(v), SET1(k->eps)));
        /* np.minimum(np.maximum(normed_grad, -clip), clip) */
        normed = MIN(MAX(normed, SET1(-k->clip)), SET1(k->clip));
        /* exp_avg + (1 - beta1) * (normed_grad - exp_avg) */
        m = ADD(m, MUL(SET1(k->one_minus_beta1), SUB(normed, m)));
        /* param - lr * exp_avg */
        p = SUB(p, MUL(SET1(k->lr), m));
        /* beta2 * exp_avg_sq + (1 - beta2) * grad * grad */
        v = ADD(MUL(SET1(k->beta2), v), MUL(MUL(SET1(k->one_minus_beta2), g), g));
    }
    STORE_S(k, 0, index, exp_avg, m);
    STORE_S(k, 1, index, exp_avg_sq, v);
    FN(store_param)(param, compensation, p);
}

static inline void FN(lion_lanes)(const ak_scalars *k, int64_t index, P_T *param, const P_T *grad,
                                  P_T *compensation, S_T *exp_avg, S_T *unused1, S_T *unused2)
{
    (void)unused1;
    (void)unused2;
    VEC p = LOAD_P(param);
    VEC g = LOAD_P(grad);
    if (k->maximize)
        g = NEG(g);
    if (k->decoupled)
        p = MUL(p, SET1(k->decay_factor)); /* param * (1 - lr * weight_decay) */
    else if (k->l2)
        g = ADD(g, MUL(SET1(k->weight_decay), p)); /* grad + weight_decay * param */
    /* update = beta1 * exp_avg + (1 - beta1) * grad */
    VEC m = LOAD_S(exp_avg);
    VEC update = ADD(MUL(SET1(k->beta1), m), MUL(SET1(k->one_minus_beta1), g));
    VEC direction = SIGN(update);
    if (k->cautious && FN(caution)(k, &direction, g))
        return;
    /* param - lr * direction */
    p = SUB(p, MUL(SET1(k->lr), direction));
    /* beta2 * exp_avg + (1 - beta2) * grad */
    m = ADD(MUL(SET1(k->beta2), m), MUL(SET1(k->one_minus_beta2), g));
    STORE_S(k, 0, index, exp_avg, m);
    FN(store_param)(param, compensation, p);
}

static inline void FN(ademamix_lanes)(const ak_scalars *k, int64_t index, P_T *param, const P_T *grad,
                                      P_T *compensation, S_T *exp_avg_fast, S_T *exp_avg_slow,
                                      S_T *exp_avg_sq)
{
    VEC p = LOAD_P(param);
    VEC g = FN(directed_l2_gradient)(k, LOAD_P(grad), p);
    /* exp_avg_fast + (1 - beta1) * (grad - exp_avg_fast) */
    VEC m1 = LOAD_S(exp_avg_fast);
    m1 = ADD(m1, MUL(SET1(k->one_minus_beta1), SUB(g, m1)));
    /* beta2 * exp_avg_sq + (1 - beta2) * grad * grad */
    VEC v = LOAD_S(exp_avg_sq);
    v = ADD(MUL(SET1(k->beta2), v), MUL(MUL(SET1(k->one_minus_beta2), g), g));
    /* exp_avg_slow + (1 - beta3_t) * (grad - exp_avg_slow) */
    VEC m2 = LOAD_S(exp_avg_slow);
    m2 = ADD(m2, MUL(SET1(k->one_minus_beta3_t), SUB(g, m2)));
    /* sqrt(exp_avg_sq) / bias_correction2_sqrt + eps */
    VEC denom = ADD(DIV(SQRT(v), SET1(k->bias_correction2_sqrt)), SET1(k->eps));
    /* (exp_avg_fast / bias_correction1 + alpha_t * exp_avg_slow) / denom */
    VEC update = DIV(ADD(DIV(m1, SET1(k->bias_correction1)), MUL(SET1(k->alpha_t), m2)), denom);
    if (k->cautious && FN(caution)(k, &update, g))
        return;
    STORE_S(k, 0, index, exp_avg_fast, m1);
    STORE_S(k, 1, index, exp_avg_slow, m2);
    STORE_S(k, 2, index, exp_avg_sq, v);
    if (k->decoupled)
        update = ADD(update, MUL(SET1(k->weight_decay), p)); /* update + weight_decay * param */
    /* param - lr * update */
    p = SUB(p, MUL(SET1(k->lr), update));
    FN(store_param)(param, compensation, p);
}

#define AT(buffer, i) ((buffer) ? (buffer) + (i) : NULL)

/* In a segment's tail: copy its `rest` elements from index `i` of `buffer` into `tail`, or
 * back, if `buffer` is set. */
#define TAIL_IN(buffer, tail) ((void)((buffer) ? memcpy(tail, (buffer) + i, rest * sizeof *(tail)) : NULL))
#define TAIL_OUT(buffer, tail) ((void)((buffer) ? memcpy((buffer) + i, tail, rest * sizeof *(tail)) : NULL))

/* The segment function of `rule`: its lanes function over the full vectors, then over the
 * last partial vector copied into zero-padded buffers. The full vectors run in one of two
 * copies of the loop: without compensation and with none of maximize, L2 and decoupled weight
 * decay, or amsgrad, the copy where those branches are compiled out (the same operations,
 * fewer instructions per vector: a lazy sparse step, whose speed is how many rows' cache
 * misses are in flight at once, gains from the smaller loop); otherwise the general one. */
#define DEFINE_SEGMENT(rule)                                                                        \
    static void FN(rule##_segment)(const ak_scalars *scalars, int64_t n, void *param_v,              \
                                   const void *grad_v, void *compensation_v, void *slot0_v,          \
                                   void *slot1_v, void *slot2_v)                                     \
    {                                                                                                \
        const ak_scalars k = *scalars;                                                               \
        P_T *param = param_v, *compensation = compensation_v;                                        \
        const P_T *grad = grad_v;                                                                    \
        S_T *slot0 = slot0_v, *slot1 = slot1_v, *slot2 = slot2_v;                                    \
        int64_t i = 0;                                                                               \
        if (!compensation && !(k.maximize | k.l2 | k.decoupled | k.amsgrad | k.cautious)) {          \
            ak_scalars plain = k; /* the flags known off: the compiler drops their branches */       \
            plain.maximize = plain.l2 = plain.decoupled = plain.amsgrad = plain.cautious = 0;        \
            plain.kept_count = NULL;                                                                 \
            for (; i + LANES <= n; i += LANES)                                                       \
                FN(rule##_lanes)(&plain, k.first_index + i, param + i, grad + i, NULL, AT(slot0, i), \
                                 AT(slot1, i), AT(slot2, i));                                        \
        } else {                                                                                     \
            for (; i + LANES <= n; i += LANES)                                                       \
                FN(rule##_lanes)(&k, k.first_index + i, param + i, grad + i, AT(compensation, i),    \
                                 AT(slot0, i), AT(slot1, i), AT(slot2, i));                          \
        }                                                                                            \
        if (i == n)                                                                                  \
            return;                                                                                  \
        size_t rest = (size_t)(n - i);                                                               \
        P_T param_tail[LANES] = {0}, grad_tail[LANES] = {0}, compensation_tail[LANES] = {0};         \
        S_T slot0_tail[LANES] = {0}, slot1_tail[LANES] = {0}, slot2_tail[LANES] = {0};               \
        TAIL_IN(param, param_tail);                                                                  \
        TAIL_IN(grad, grad_tail);                                                                    \
        TAIL_IN(compensation, compensation_tail);                                                    \
        TAIL_IN(slot0, slot0_tail);                                                                  \
        TAIL_IN(slot1, slot1_tail);                                                                  \
        TAIL_IN(slot2, slot2_tail);                                                                  \
        FN(rule##_lanes)(&k, k.first_index + i, param_tail, grad_tail,                               \
                         compensation ? compensation_tail : NULL, slot0 ? slot0_tail : NULL,         \
                         slot1 ? slot1_tail : NULL, slot2 ? slot2_tail : NULL);                      \
        TAIL_OUT(param, param_tail);                                                                 \
        TAIL_OUT(compensation, compensation_tail);                                                   \
        TAIL_OUT(slot0, slot0_tail);                                                                 \
        TAIL_OUT(slot1, slot1_tail);                                                                 \
        TAIL_OUT(slot2, slot2_tail);                                                                 \
    }

static inline void FN(nadam_lanes)(const ak_scalars *k, int64_t index, P_T *param, const P_T *grad,
                                   P_T *compensation, S_T *exp_avg, S_T *exp_avg_sq, S_T *unused)
{
    (void)unused;
    VEC p = LOAD_P(param);
    VEC g = LOAD_P(grad);
    if (k->maximize)
        g = NEG(g);
    if (k->decoupled)
        p = MUL(p, SET1(k->decay_factor)); /* param * (1 - lr * weight_decay) */
    else if (k->l2)
        g = ADD(g, MUL(SET1(k->weight_decay), p)); /* grad + weight_decay * param */
    /* exp_avg + (1 - beta1) * (grad - exp_avg) */
    VEC m = LOAD_S(exp_avg);
    m = ADD(m, MUL(SET1(k->one_minus_beta1), SUB(g, m)));
    /* beta2 * exp_avg_sq + (1 - beta2) * grad * grad */
    VEC v = LOAD_S(exp_avg_sq);
    v = ADD(MUL(SET1(k->beta2), v), MUL(MUL(SET1(k->one_minus_beta2), g), g));
    STORE_S(k, 0, index, exp_avg, m);
    STORE_S(k, 1, index, exp_avg_sq, v);
    /* sqrt(exp_avg_sq / bias_correction2) + eps */
    VEC denom = ADD(SQRT(DIV(v, SET1(k->bias_correction2))), SET1(k->eps));
    /* param + grad_step_size * (grad / denom) */
    p = ADD(p, MUL(SET1(k->step_size), DIV(g, denom)));
    /* param + momentum_step_size * (exp_avg / denom) */
    p = ADD(p, MUL(SET1(k->momentum_step_size), DIV(m, denom)));
    FN(store_param)(param, compensation, p);
}

#include "rules_schedule_free.h"
#include "rules_lamb.h"

DEFINE_SEGMENT(adam)
DEFINE_SEGMENT(adamax)
DEFINE_SEGMENT(adadelta)
DEFINE_SEGMENT(sgd)
DEFINE_SEGMENT(adagrad)
DEFINE_SEGMENT(rmsprop)
DEFINE_SEGMENT(nadam)
DEFINE_SEGMENT(radam)
DEFINE_SEGMENT(adabelief)
DEFINE_SEGMENT(adopt)
DEFINE_SEGMENT(lion)
DEFINE_SEGMENT(ademamix)
DEFINE_SEGMENT(schedule_free_adamw)

#undef DEFINE_SEGMENT
#undef AT
#undef TAIL_IN
#undef TAIL_OUT
#undef ADD
#undef SUB
#undef MUL
#undef DIV
#undef SQRT
#undef MAX
#undef MIN
#undef ABS
#undef NEG
#undef SIGN
#undef POSITIVE
#undef SET1
