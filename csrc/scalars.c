/* The per-step scalars, in double, written as the functions of adamkit.rules write them.
 *
 * Python's float ** float calls the C library's pow() and math.sqrt() its sqrt(), so these
 * lines compute the very doubles the reference rules compute (compiled without FMA
 * contraction and without fast-math).
 */
#include "kernels_internal.h"

/* adamkit.rules.adabelief.RECTIFY_THRESHOLD: the shortest average AdaBelief rectifies. */
#define AK_RECTIFY_THRESHOLD 5.0

void ak_call_scalars(ak_rule rule, const ak_hyper *h, ak_scalars *k)
{
    memset(k, 0, sizeof *k);
    k->lr = h->lr;
    k->eps = h->eps;
    k->weight_decay = h->weight_decay;
    k->maximize = h->maximize;
    k->l2 = h->weight_decay != 0;
    k->cautious = h->cautious;
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
    case AK_RULE_NADAM:
        k->decoupled = h->decoupled_weight_decay;
        k->l2 = !h->decoupled_weight_decay && h->weight_decay != 0;
        k->decay_factor = 1 - h->lr * h->weight_decay;
        k->one_minus_beta1 = 1 - h->beta1;
        k->beta2 = h->beta2;
        k->one_minus_beta2 = 1 - h->beta2;
        break;
    case AK_RULE_RMSPROP:
        k->alpha = h->alpha;
        k->one_minus_alpha = 1 - h->alpha;
        k->momentum = h->momentum;
        k->centered = h->centered;
        k->with_momentum = h->momentum > 0;
        break;
    case AK_RULE_RADAM:
        k->decoupled = h->decoupled_weight_decay;
        k->l2 = !h->decoupled_weight_decay && h->weight_decay != 0;
        k->decay_factor = 1 - h->lr * h->weight_decay;
        k->one_minus_beta1 = 1 - h->beta1;
        k->beta2 = h->beta2;
        k->one_minus_beta2 = 1 - h->beta2;
        break;
    case AK_RULE_ADABELIEF:
        k->decoupled = h->decoupled_weight_decay;
        k->l2 = !h->decoupled_weight_decay && h->weight_decay != 0;
        k->decay_factor = 1 - h->lr * h->weight_decay;
        k->beta1 = h->beta1;
        k->one_minus_beta1 = 1 - h->beta1;
        k->beta2 = h->beta2;
        k->one_minus_beta2 = 1 - h->beta2;
        k->amsgrad = h->amsgrad;
        break;
    case AK_RULE_ADOPT:
        k->decoupled = h->decoupled_weight_decay && h->weight_decay != 0;
        k->l2 = !h->decoupled_weight_decay && h->weight_decay != 0;
        k->decay_rate = h->lr * h->weight_decay;
        k->one_minus_beta1 = 1 - h->beta1;
        k->beta2 = h->beta2;
        k->one_minus_beta2 = 1 - h->beta2;
        break;
    case AK_RULE_LION:
        /* A decoupled decay of 0 multiplies by 1, which changes no value: it is skipped. */
        k->decoupled = h->decoupled_weight_decay && h->weight_decay != 0;
        k->l2 = !h->decoupled_weight_decay && h->weight_decay != 0;
        k->decay_factor = 1 - h->lr * h->weight_decay;
        k->beta1 = h->beta1;
        k->one_minus_beta1 = 1 - h->beta1;
        k->beta2 = h->beta2;
        k->one_minus_beta2 = 1 - h->beta2;
        break;
    case AK_RULE_ADEMAMIX:
        k->decoupled = h->decoupled_weight_decay;
        k->l2 = !h->decoupled_weight_decay && h->weight_decay != 0;
        k->one_minus_beta1 = 1 - h->beta1;
        k->beta2 = h->beta2;
        k->one_minus_beta2 = 1 - h->beta2;
        break;
    case AK_RULE_SCHEDULE_FREE_ADAMW:
        k->beta2 = h->beta2;
        k->one_minus_beta2 = 1 - h->beta2;
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

/* adabelief_scalars(step, lr, betas, rectify) */
static void adabelief_scalars(const ak_hyper *h, double step, ak_tensor_scalars *t)
{
    double bias_correction1 = 1 - pow(h->beta1, step);
    double beta2_t = pow(h->beta2, step);
    if (!h->rectify) {
        t->step_size = h->lr / bias_correction1;
        t->bias_correction2_sqrt = sqrt(1 - beta2_t);
        return;
    }
    double rho_inf = 2 / (1 - h->beta2) - 1;
    double rho_t = rho_inf - 2 * step * beta2_t / (1 - beta2_t);
    if (rho_t < AK_RECTIFY_THRESHOLD) {
        t->step_size = h->lr / bias_correction1;
        t->sgd_step = 1;
        return;
    }
    double rectification =
        sqrt((1 - beta2_t) * (rho_t - 4) / (rho_inf - 4) * (rho_t - 2) / rho_t * rho_inf / (rho_inf - 2));
    t->step_size = h->lr * rectification / bias_correction1;
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
    /* Zero, except the bias corrections, which are 1 for a rule without them. */
    *t = (ak_tensor_scalars){.bias_correction1 = 1, .bias_correction2 = 1, .bias_correction2_sqrt = 1};
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
    } else if (rule == AK_RULE_RADAM) {
        /* radam_scalars(step, betas) */
        double bias_correction2 = 1 - pow(h->beta2, step);
        double rho_inf = 2 / (1 - h->beta2) - 1;
        double rho_t = rho_inf - 2 * step * pow(h->beta2, step) / bias_correction2;
        t->bias_correction1 = 1 - pow(h->beta1, step);
        t->bias_correction2_sqrt = pow(bias_correction2, 0.5);
        if (rho_t > 5.0)
            t->rect = pow((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t), 0.5);
    } else if (rule == AK_RULE_ADABELIEF) {
        adabelief_scalars(h, step, t);
    } else if (rule == AK_RULE_ADOPT) {
        /* step == 1; clip_bound(step): (step - 1) ** 0.25 */
        t->initialising = step == 1;
        t->clip = pow(step - 1, 0.25);
    } else if (rule == AK_RULE_ADEMAMIX) {
        /* ademamix_scalars(step, betas, alpha, t_alpha_beta3) */
        double alpha = h->alpha, beta3 = h->beta3;
        t->bias_correction1 = 1 - pow(h->beta1, step);
        t->bias_correction2_sqrt = sqrt(1 - pow(h->beta2, step));
        if (h->t_alpha_beta3 != 0) {
            /* alpha_scheduler: min(step * alpha / t_alpha_beta3, alpha) */
            double warmed = step * h->alpha / h->t_alpha_beta3;
            alpha = warmed < h->alpha ? warmed : h->alpha;
            /* beta3_scheduler: min(exp(log_beta1 * log_beta3 / ((1 - fraction) * log_beta3
             * + fraction * log_beta1)), beta3) */
            double log_beta1 = log(h->beta1), log_beta3 = log(h->beta3);
            double fraction = step / h->t_alpha_beta3;
            double scheduled = exp(log_beta1 * log_beta3 / ((1 - fraction) * log_beta3 + fraction * log_beta1));
            beta3 = scheduled < h->beta3 ? scheduled : h->beta3;
        }
        t->alpha_t = alpha;
        t->one_minus_beta3_t = 1 - beta3;
    } else if (rule == AK_RULE_LAMB) {
        /* 1 - beta1**step, 1 - beta2**step; the step size lr * trust_ratio comes after the
         * norms (lamb.c) */
        t->bias_correction1 = 1 - pow(h->beta1, step);
        t->bias_correction2 = 1 - pow(h->beta2, step);
    }
}

int ak_rule_takes_mu_product(ak_rule rule)
{
    return rule == AK_RULE_NADAM;
}

int ak_rule_takes_schedule(ak_rule rule)
{
    return rule == AK_RULE_SCHEDULE_FREE_ADAMW;
}

/* momentum_schedule(step, beta1, momentum_decay) */
static double momentum_schedule(double step, const ak_hyper *h)
{
    return h->beta1 * (1.0 - 0.5 * pow(0.96, step * h->momentum_decay));
}

void ak_nadam_tensor_scalars(const ak_hyper *h, double step, double mu_product, ak_tensor_scalars *t)
{
    /* nadam_scalars(NAdamCount(step, mu_product), lr, betas, momentum_decay) */
    double mu = momentum_schedule(step, h);
    double mu_next = momentum_schedule(step + 1, h);
    t->bias_correction2 = 1 - pow(h->beta2, step);
    t->step_size = -h->lr * (1.0 - mu) / (1.0 - mu_product);
    t->momentum_step_size = (-h->lr * mu_next) / (1.0 - mu_product * mu_next);
}

void ak_schedule_free_tensor_scalars(const ak_hyper *h, double step, double scheduled_lr, double ckp1,
                                     ak_tensor_scalars *t)
{
    /* schedule_free_adamw(..., step=ScheduleFreeCount(count, lr, ckp1)) */
    t->bias_correction2 = 1 - pow(h->beta2, step);
    t->step_size = scheduled_lr;
    /* lerp(start, end, weight): from end backwards when abs(weight) >= 0.5 */
    t->lerp_from_end = !(fabs(ckp1) < 0.5);
    t->lerp_weight = t->lerp_from_end ? 1 - ckp1 : ckp1;
    t->y_step_size = scheduled_lr * (h->beta1 * (1 - ckp1) - 1);
}
