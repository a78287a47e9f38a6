/* adamkit's fused multi-tensor CPU kernels: the C interface that the Python binding calls
 * (kernels_internal.h is what the kernel files share behind it).
 *
 * One call of ak_update() applies one rule to a whole list of tensors in place. The kernels
 * take data pointers and element counts, so NumPy arrays and torch tensors share them; they
 * hold no state between calls. Every path (AVX-512, AVX2, scalar; any thread count) computes
 * the same bits as the functions of adamkit.rules: the per-step scalars in double, exactly as
 * the Python rule computes them, each cast once to the arithmetic type, and each elementwise
 * operation in the rule's order, without FMA contraction.
 */
#ifndef ADAMKIT_KERNELS_API_H
#define ADAMKIT_KERNELS_API_H

#include <stddef.h>
#include <stdint.h>

#include "rule_list.h"

/* The rules, one per function of adamkit.rules, in the order of rule_list.h. */
#define AK_RULE_ENUM_ENTRY(upper, lower, counts, unused) AK_RULE_##upper,
typedef enum { AK_RULES(AK_RULE_ENUM_ENTRY, _) AK_N_RULES } ak_rule;
#undef AK_RULE_ENUM_ENTRY

/* Storage of parameters, gradients and state, and the arithmetic each implies. */
typedef enum {
    AK_LAYOUT_F32,      /* float32 parameters and state, float32 arithmetic */
    AK_LAYOUT_F64,      /* float64 parameters and state, float64 arithmetic */
    AK_LAYOUT_BF16_F32, /* bfloat16 parameters, float32 state, float32 arithmetic */
    AK_LAYOUT_BF16,     /* bfloat16 parameters and state, float32 arithmetic */
    AK_LAYOUT_F32_BF16, /* float32 parameters, bfloat16 state rounded stochastically (below) */
    AK_N_LAYOUTS
} ak_layout;

typedef enum { AK_ISA_SCALAR, AK_ISA_AVX2, AK_ISA_AVX512, AK_N_ISAS } ak_isa;

/* The hyperparameters of a parameter group, named as in torch; each rule reads its own. */
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    double momentum, dampening, rho, alpha, lr_decay;
    int amsgrad, maximize, decoupled_weight_decay, eps_hat, nesterov, centered;
    double momentum_decay; /* NAdam's psi */
    int rectify; /* AdaBelief */
    double beta3, t_alpha_beta3; /* AdEMAMix; t_alpha_beta3 0 without warmup (None) */
    double trust_clip; /* LAMB: 0 for none (its trust_clip=None) */
    int cautious; /* Adam, Lion, AdEMAMix: mask by the gradient's sign (cautious.c) */
} ak_hyper;

/* The state slots of each rule, in the order of adamkit.specs (at most three):
 *   Adam      exp_avg, exp_avg_sq, max_exp_avg_sq (amsgrad)
 *   Adamax    exp_avg, exp_inf
 *   Adadelta  square_avg, acc_delta
 *   SGD       momentum_buffer (momentum != 0)
 *   Adagrad   sum
 *   RMSprop   square_avg, momentum_buffer (momentum > 0), grad_avg (centered)
 *   NAdam     exp_avg, exp_avg_sq
 *   RAdam     exp_avg, exp_avg_sq
 *   AdaBelief exp_avg, exp_avg_var, max_exp_avg_var (amsgrad)
 *   Lion      exp_avg
 *   AdEMAMix  exp_avg_fast, exp_avg_slow, exp_avg_sq
 *   ADOPT     exp_avg, exp_avg_sq
 *   LAMB      exp_avg, exp_avg_sq
 *   AdamWScheduleFree  z (created: it starts as the parameter), exp_avg_sq
 * An inactive slot's pointer array is NULL. */
#define AK_MAX_SLOTS 3

typedef struct {
    ak_rule rule;
    ak_layout layout;
    ak_isa isa;
    int num_threads;               /* > 0 */
    ak_hyper hyper;
    int64_t n_tensors;
    const int64_t *numels;         /* [n_tensors] */
    void *const *params;           /* [n_tensors] */
    const void *const *grads;      /* [n_tensors] */
    void *const *slots[AK_MAX_SLOTS]; /* each [n_tensors] or NULL */
    const double *steps;           /* [n_tensors], this step included; the rules that count steps */
    const unsigned char *created;  /* [n_tensors] or NULL: SGD's momentum buffer is new, b <- g */
    void *const *compensation;     /* [n_tensors] or NULL: Kahan compensation, see below */
    const uint64_t *rounding_seeds; /* [n_tensors], AK_LAYOUT_F32_BF16 only: see below */
    const double *mu_products;     /* [n_tensors] or NULL: NAdam's state['mu_product'], this
                                    * step's factor included, as a double (its .item()) */
    const double *scheduled_lrs;   /* [n_tensors] or NULL: AdamWScheduleFree's scheduled lr and */
    const double *averaging_weights; /* averaging weight ckp1 (adamkit.rules.ScheduleFreeCount) */
    /* Whole-tensor sums of tensors sharded across processes (FSDP2), or NULL. Between the two
     * passes of LAMB (lamb.c) and of cautious=True (cautious.c), each tensor t has two local
     * sums: LAMB's squared norms of the parameter and of the update, or cautious's kept count
     * and element count. reduce(reduce_context, sums, 2 * n_tensors) replaces them, in place, by
     * the whole tensor's (summed over the processes holding its shards); the second pass then
     * steps with those. A nonzero return stops the step before the second pass, and ak_update
     * returns AK_REDUCE_FAILED. */
    int (*reduce)(void *context, double *sums, int64_t count);
    void *reduce_context;
} ak_call;

#define AK_REDUCE_FAILED (-2)

/* Stochastic rounding of bfloat16 state (AK_LAYOUT_F32_BF16). The state is loaded exactly,
 * the rule runs in float32, and each new state value x, element i of slot s of tensor t, is
 * stored as the upper half of bits(x) + r, where
 *     r = mix32(lo32(i) ^ key(rounding_seeds[t], s, hi32(i))) >> 16
 *     key(seed, s, h) = mix32(lo32(seed) ^ mix32(hi32(seed) ^ mix32(s ^ mix32(h + 0x9e3779b9))))
 * and mix32 is the "lowbias32" integer hash (x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15;
 * x *= 0x846ca68b; x ^= x >> 16). So x is rounded away from zero with probability equal to its
 * distance from the bfloat16 below it (in magnitude), in units of their spacing: the stored
 * value is unbiased, and increments below half a bfloat16 spacing accumulate in expectation
 * instead of being rounded away at every step. The bits depend only on (seed, s, i), not on
 * the thread count or on how tensors are split; a NaN is stored as 0x7FC0. A finite x above
 * the largest bfloat16 (3.39e38: the upper half of bits(x) is 0x7F7F or 0xFF7F) is stored as
 * that bfloat16, r not added: rounded up it would be an infinity, which float32 state does not
 * hold there (for exp_avg, the next step's inf - inf would make the parameter NaN).
 * adamkit/compact/bfloat16.py (stochastically_rounded) is the NumPy reference. */

/* Kahan summation for bfloat16 parameters: with call->compensation, each tensor has a buffer of
 * its parameter's size and storage type (bfloat16) holding what rounding lost of the updates
 * so far, and the rule's float32 result t is stored as
 *     s = t + c;  param = round(s);  c = round(s - param)
 * in the same pass (rules.h, store_param, has the derivation). Zeros start it. */

/* Whether `rule` reads call->steps: its entry in rule_list.h counts steps. */
int ak_rule_uses_step(ak_rule rule);

/* Whether `rule` reads call->mu_products (NAdam): then each item of the `steps` the Python
 * binding takes is a pair (step, mu_product), adamkit.rules.NAdamCount. */
int ak_rule_takes_mu_product(ak_rule rule);

/* Whether `rule` reads call->scheduled_lrs and call->averaging_weights (AdamWScheduleFree): then
 * each item of the `steps` the Python binding takes is a triple (step, scheduled_lr, ckp1),
 * adamkit.rules.ScheduleFreeCount. */
int ak_rule_takes_schedule(ak_rule rule);

/* Whether this CPU (and OS) can run `isa`. */
int ak_isa_supported(ak_isa isa);

/* The maximum thread count OpenMP would use by default (1 without OpenMP). */
int ak_default_threads(void);

/* Apply call->rule to every tensor in place. Returns 0, -1 if the ISA is not supported or
 * memory for the per-tensor scalars could not be allocated, or AK_REDUCE_FAILED if
 * call->reduce failed. */
int ak_update(const ak_call *call);

#endif
