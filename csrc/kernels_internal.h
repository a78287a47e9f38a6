/* What the kernel translation units share behind kernels_api.h: the per-step scalars, the
 * segment functions and the parallel loop. The Python binding does not include it.
 *
 * A segment function applies one rule to n consecutive elements of one tensor. Each ISA file
 * (isa_scalar.c, isa_avx2.c, isa_avx512.c) defines a table of them, one per layout and rule;
 * dispatch.c splits a multi-tensor call into segments and runs them in parallel.
 */
#ifndef ADAMKIT_KERNELS_INTERNAL_H
#define ADAMKIT_KERNELS_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels_api.h"

#if defined(__x86_64__) || defined(__i386__)
#define AK_X86 1
#else
#define AK_X86 0
#endif

/* The per-tensor scalars of a rule (ak_tensor_scalars_at), in double. A rule that needs another
 * adds its field here, once: ak_scalars holds the same fields, set together through its `tensor`. */
#define AK_TENSOR_SCALAR_FIELDS                                                                    \
    double step_size;             /* Adam, Adamax: lr/bc1 (eps_hat: lr*sqrt(bc2)/bc1); Adagrad: clr; ScheduleFree: lr_k */ \
    double bias_correction2_sqrt; /* Adam: sqrt(bc2) (eps_hat: 1) */                               \
    int created;                  /* SGD: the momentum buffer is new and starts as the gradient */ \
    double bias_correction1;      /* RAdam, AdEMAMix: 1 - beta1^t */                              \
    double bias_correction2;      /* NAdam, ScheduleFree: 1 - beta2^t */                                       \
    double momentum_step_size;    /* NAdam: the momentum's step size (step_size: the gradient's) */ \
    double rect;                  /* RAdam: r_t once rho_t > 5, else 0 (r_t > 0 where taken) */    \
    int sgd_step;                 /* AdaBelief rectified: no denominator, param -= step_size*m */  \
    double clip;                  /* ADOPT: the clip bound k^(1/4) of the k-th update */           \
    int initialising;             /* ADOPT: the first step, which only sets exp_avg_sq */          \
    double alpha_t;               /* AdEMAMix: alpha at step t */                                  \
    double one_minus_beta3_t;     /* AdEMAMix: 1 - beta3 at step t */                            \
    double lerp_weight;           /* AdamWScheduleFree: ckp1, or 1 - ckp1 with lerp_from_end */    \
    int lerp_from_end;            /* AdamWScheduleFree: |ckp1| >= 0.5, lerp runs from z */         \
    double y_step_size;           /* AdamWScheduleFree: lr * (beta1 * (1 - ckp1) - 1) */

typedef struct {
    AK_TENSOR_SCALAR_FIELDS
} ak_tensor_scalars;

/* The scalars of one rule for one tensor, in double, exactly as adamkit/rules computes them;
 * the kernels cast each to the arithmetic type once. */
typedef struct {
    double lr, eps, weight_decay;
    double decay_factor;               /* Adam, decoupled: 1 - lr*weight_decay */
    double one_minus_beta1, beta2, one_minus_beta2;
    double rho, one_minus_rho;         /* Adadelta */
    double alpha, one_minus_alpha;     /* RMSprop */
    double momentum, one_minus_dampening;
    int maximize, l2, decoupled, amsgrad, nesterov, centered, with_momentum;
    double beta1;                      /* AdaBelief, Lion, LAMB */
    double decay_rate;                 /* ADOPT, decoupled: lr*weight_decay */
    /* Per tensor (ak_tensor_scalars_at), the fields of ak_tensor_scalars: `tensor` sets them all. */
    union {
        struct {
            AK_TENSOR_SCALAR_FIELDS
        };
        ak_tensor_scalars tensor;
    };
    /* Per segment: the index in its tensor of the segment's first element, and (layout
     * AK_LAYOUT_F32_BF16) each slot's rounding key for that index's upper 32 bits. */
    int64_t first_index;
    uint32_t rounding_keys[AK_MAX_SLOTS];
    /* LAMB (lamb.c; its bias corrections are per tensor, above). Per block of its norm pass,
     * norm_sums (else NULL) receives the block's lane sums of the squares of the parameter
     * (AK_NORM_LANES) then of the update (AK_NORM_LANES) (rules_lamb.h). */
    double *norm_sums;
    /* cautious=True (cautious.c): in the first pass kept_count (else NULL) receives the number
     * of the block's elements whose update agrees in sign with the gradient, and nothing is
     * stored; in the second, cautious_scale is the tensor's rescale of the kept elements. */
    int cautious;
    int64_t *kept_count;
    double cautious_scale;
} ak_scalars;

/* The partial sums of each block of LAMB's norms, whatever the vector width
 * (adamkit.rules.lamb.NORM_LANES): a power of two, a multiple of every ISA's LANES. */
#define AK_NORM_LANES 16

/* The bits of |x| of a float32 whose upper half is the largest finite bfloat16's, 0x7F7F, under
 * the mask AK_BF16_MAGNITUDE: stochastic rounding does not round it up to an infinity
 * (kernels_api.h). */
#define AK_BF16_MAGNITUDE 0x7FFF0000u
#define AK_BF16_LARGEST 0x7F7F0000u

/* The "lowbias32" integer hash of stochastic rounding (kernels_api.h). */
static inline uint32_t ak_mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

/* The rounding key of slot `slot` of a tensor seeded `seed`, for elements whose index has
 * upper 32 bits `high` (kernels_api.h). */
static inline uint32_t ak_rounding_key(uint64_t seed, uint32_t slot, uint32_t high)
{
    return ak_mix32((uint32_t)seed ^ ak_mix32((uint32_t)(seed >> 32) ^ ak_mix32(slot ^ ak_mix32(high + 0x9e3779b9u))));
}

/* The per-call scalars of `rule` (the per-tensor fields are left zero). */
void ak_call_scalars(ak_rule rule, const ak_hyper *hyper, ak_scalars *out);

/* The per-tensor scalars of `rule` at step `step` (this step included). */
void ak_tensor_scalars_at(ak_rule rule, const ak_hyper *hyper, double step, ak_tensor_scalars *out);

/* NAdam's per-tensor scalars at step `step` with the momentum product `mu_product` (this step's
 * factor included). */
void ak_nadam_tensor_scalars(const ak_hyper *hyper, double step, double mu_product, ak_tensor_scalars *out);

/* AdamWScheduleFree's per-tensor scalars at the group's count `step` (this step included), with
 * its scheduled learning rate and averaging weight ckp1 (adamkit.rules.ScheduleFreeCount). */
void ak_schedule_free_tensor_scalars(const ak_hyper *hyper, double step, double scheduled_lr, double ckp1,
                                     ak_tensor_scalars *out);

/* `compensation` is NULL or the parameter's compensation buffer (see ak_call). */
typedef void (*ak_segment_fn)(const ak_scalars *scalars, int64_t n, void *param, const void *grad,
                              void *compensation, void *slot0, void *slot1, void *slot2);

typedef ak_segment_fn ak_segment_table[AK_N_LAYOUTS][AK_N_RULES];

/* OpenMP worker threads adopt the caller's floating-point control (flush-to-zero, rounding)
 * for the duration of a call, so no result depends on which thread computes an element. */
#if AK_X86
#include <xmmintrin.h>
typedef unsigned int ak_fp_control;
static inline ak_fp_control ak_fp_control_get(void) { return _mm_getcsr(); }
static inline void ak_fp_control_set(ak_fp_control control) { _mm_setcsr(control); }
#else
typedef int ak_fp_control;
static inline ak_fp_control ak_fp_control_get(void) { return 0; }
static inline void ak_fp_control_set(ak_fp_control control) { (void)control; }
#endif

/* Element `elements` of an array of `size`-byte elements at `base`, or NULL if `base` is. */
static inline void *ak_element_at(void *base, int64_t elements, size_t size)
{
    return base ? (char *)base + elements * (int64_t)size : NULL;
}

/* The tensor holding unit `position` (an element or a block) of the concatenation, given
 * offsets[t] = units of the tensors before t: offsets[t] <= position < offsets[t + 1].
 * Empty tensors are skipped. */
static inline int64_t ak_tensor_at(const int64_t *offsets, int64_t n_tensors, int64_t position)
{
    int64_t low = 0, high = n_tensors; /* offsets[low] <= position < offsets[high] */
    while (high - low > 1) {
        int64_t middle = low + (high - low) / 2;
        if (offsets[middle] <= position)
            low = middle;
        else
            high = middle;
    }
    while (low + 1 < n_tensors && offsets[low + 1] <= position)
        low++;
    return low;
}

extern const ak_segment_table ak_segments_scalar;
#if AK_X86
extern const ak_segment_table ak_segments_avx2;
extern const ak_segment_table ak_segments_avx512;
#endif

/* The segment function of `rule` on `layout` in instruction set `isa` (dispatch.c). */
ak_segment_fn ak_segment_for(ak_isa isa, ak_layout layout, ak_rule rule);

/* Task `task` of a parallel loop, run by thread `thread` (0 to threads - 1). A thread runs one
 * task at a time, so it may use scratch memory of its own. */
typedef void (*ak_task_fn)(const void *context, int64_t task, int thread);

/* Run tasks 0 to n_tasks - 1 on `threads` OpenMP threads (at most one a task), which take
 * `grain` consecutive tasks at a time as they become free, in the caller's floating-point
 * control (dispatch.c). On one thread the caller runs them in order and never enters OpenMP:
 * in a process forked after a parallel region, libgomp's pool lists the parent's worker
 * threads, which the child does not have, and a parallel region of two or more threads waits
 * for them forever. */
void ak_parallel_for(int64_t n_tasks, int threads, int grain, ak_task_fn task, const void *context);

/* The update of every tensor of `call` with cautious=True (cautious.c), given the call's scalars,
 * each tensor's and its segment function; 0, or -1 out of memory. */
int ak_cautious_update(const ak_call *call, ak_segment_fn segment, const ak_scalars *scalars,
                       const ak_tensor_scalars *per_tensor);

/* scale_of_count(count, size) of adamkit.rules.cautious, in double: the rescale of a tensor's
 * kept elements (cautious.c, and the 8-bit step's two passes in quant8.c). */
double ak_cautious_scale(double count, double size);

/* Run `segment` over the n elements of tensor t of `call` from element `first`, which lie within
 * one span of 2^32 elements, with `scalars`, whose first index and rounding keys it sets: the
 * pointers of the parameter, gradient, compensation and state slots at `first` (dispatch.c). */
void ak_run_segment(const ak_call *call, ak_segment_fn segment, ak_scalars *scalars, int64_t t, int64_t first,
                    int64_t n);

/* The blocks of `block_size` elements of each tensor of `call`, the last of a tensor possibly
 * shorter, that the two-pass steps (lamb.c, cautious.c) run: offsets[t] = the blocks of the
 * tensors before t, offsets[n_tensors] = all of them. Allocated with malloc; NULL out of memory. */
int64_t *ak_block_offsets(const ak_call *call, int64_t block_size);

/* Block `block` of those: its tensor (returned), its first element and its length. */
int64_t ak_block_at(const ak_call *call, const int64_t *offsets, int64_t block_size, int64_t block, int64_t *first,
                    int64_t *n);

/* LAMB's update of every tensor of `call` (lamb.c), given the call's scalars, each tensor's and
 * its segment function; returns 0, or -1 if memory could not be allocated. */
int ak_lamb_update(const ak_call *call, ak_segment_fn segment, const ak_scalars *scalars,
                   const ak_tensor_scalars *per_tensor);

#endif
