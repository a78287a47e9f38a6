/* The per-step scalars, in double, written as the functions of adamkit.rules write them.
 *
 * Python's float ** float calls the C library's pow() and math.sqrt() its sqrt(), so these
 * lines compute the very doubles the reference rules compute (compiled without FMA
 * contraction and without fast-math).
 */
#include "kernels_internal.h"

void ak_call_scalars(ak_rule rule, const ak_hyper *h, ak_scalars *k)
{
    memset(k, 0, sizeof *k);
    k->lr = h->lr;
    k->eps = h->eps;
    k->weight_decay = h->weight_decay;
    k->maximize = h->maximize;
    k->l2 = h->weight_decay != 0;
    switch (rule) {
    case AK_RULE_ADAM:
        k->decoupled = h->decoupled_weight_decay;
        k->l2 = !h->decoupled_weight_decay && h->weight_decay != 0;
        k->decay_factor = 1 - h->lr * h->weight_decay;
        k->one_minus_beta1 = 1 - h->beta1;
        k->beta2 = h->beta2;
        k->one_minus_beta2 = 1 - h->beta2;
        k->amsgrad = h->amsgrad;
        break;
    case AK_RULE_ADAMAX:
        k->one_minus_beta1 = 1 - h->beta1;
        k->beta2 = h->beta2;
        break;
    case AK_RULE_ADADELTA:
        k->rho = h->rho;
        k->one_minus_rho = 1 - h->rho;
        break;
    case AK_RULE_SGD:
        k->momentum = h->momentum;
        k->one_minus_dampening = 1 - h->dampening;
        k->nesterov = h->nesterov;
        k->with_momentum = h->momentum != 0;
        break;
    case AK_RULE_ADAGRAD:
        break;
    case AK_RULE_RMSPROP:
        k->alpha = h->alpha;
        k->one_minus_alpha = 1 - h->alpha;
        k->momentum = h->momentum;
        k->centered = h->centered;
        k->with_momentum = h->momentum > 0;
        break;
    case AK_RULE_LAMB:
        k->beta1 = h->beta1;
        k->one_minus_beta1 = 1 - h->beta1;
        k->beta2 = h->beta2;
        k->one_minus_beta2 = 1 - h->beta2;
        break;
    default:
        break;
    }
}

#define AK_COUNTS_ENTRY(upper, lower, counts, unused) [AK_RULE_##upper] = counts,
static const int COUNTS_STEPS[AK_N_RULES] = {AK_RULES(AK_COUNTS_ENTRY, _)};
#undef AK_COUNTS_ENTRY

int ak_rule_uses_step(ak_rule rule)
{
    return COUNTS_STEPS[rule];
}

void ak_tensor_scalars_at(ak_rule rule, const ak_hyper *h, double step, ak_tensor_scalars *t)
{
    t->step_size = 0;
    t->bias_correction2_sqrt = 1;
    if (rule == AK_RULE_ADAM) {
        /* adam_scalars(step, lr, betas, eps_hat) */
        double bias_correction1 = 1 - pow(h->beta1, step);
        double bias_correction2_sqrt = sqrt(1 - pow(h->beta2, step));
        if (h->eps_hat) {
            t->step_size = h->lr * bias_correction2_sqrt / bias_correction1;
            t->bias_correction2_sqrt = 1.0;
        } else {
            t->step_size = h->lr / bias_correction1;
            t->bias_correction2_sqrt = bias_correction2_sqrt;
        }
    } else if (rule == AK_RULE_ADAMAX) {
        t->step_size = h->lr / (1 - pow(h->beta1, step));
    } else if (rule == AK_RULE_ADAGRAD) {
        t->step_size = h->lr / (1 + (step - 1) * h->lr_decay);
    } else if (rule == AK_RULE_LAMB) {
        /* 1 - beta1**step, 1 - beta2**step; the step size lr * trust_ratio comes after the
         * norms (lamb.c) */
        t->bias_correction1 = 1 - pow(h->beta1, step);
        t->bias_correction2 = 1 - pow(h->beta2, step);
    }
}
