/* Instantiates rules.h for each layout with the vector operations of one ISA, and defines that
 * ISA's table of segment functions, ak_segments_<ISA>.
 *
 * The including file defines ISA (scalar, avx2 or avx512) and provides, for float32 and
 * float64 arithmetic, the vector types f32v/f64v, their widths F32_LANES/F64_LANES and the
 * functions f32v_<op>/f64v_<op> (add, sub, mul, div, sqrt, max, min, abs, neg, set1, load, store,
 * add_squares),
 * plus f32v_load_bf16/f32v_store_bf16 (bfloat16 storage, rounded to nearest even) and
 * f32v_store_bf16_stochastic(p, v, key, index) (rounded stochastically with the bits of the
 * slot's key at element `index` and the LANES - 1 after it; kernels_api.h).
 * Adafactor's passes (adafactor_lanes.h) are instantiated for float32 and float64 only, into
 * ak_adafactor_<ISA>.
 */
#include "adafactor.h"

#define AK_CAT_(a, b) a##b
#define AK_CAT(a, b) AK_CAT_(a, b)
#define AK_NAME(layout, name) AK_CAT(AK_CAT(AK_CAT(ak_, ISA), AK_CAT(_, layout)), AK_CAT(_, name))
#define FN(name) AK_NAME(LAYOUT, name)

/* float32 parameters and state */
#define LAYOUT f32
#define VEC f32v
#define LANES F32_LANES
#define OPS(op) f32v_##op
#define P_T float
#define S_T float
#define LOAD_P f32v_load
#define STORE_P f32v_store
#define LOAD_S f32v_load
#define STORE_S(k, slot, index, p, v) f32v_store(p, v)
#define EXACT_STATE 1
#include "rules.h"
#include "adafactor_lanes.h"
#undef LAYOUT
#undef VEC
#undef LANES
#undef OPS
#undef P_T
#undef S_T
#undef LOAD_P
#undef STORE_P
#undef LOAD_S
#undef STORE_S
#undef EXACT_STATE

/* float64 parameters and state */
#define LAYOUT f64
#define VEC f64v
#define LANES F64_LANES
#define OPS(op) f64v_##op
#define P_T double
#define S_T double
#define LOAD_P f64v_load
#define STORE_P f64v_store
#define LOAD_S f64v_load
#define STORE_S(k, slot, index, p, v) f64v_store(p, v)
#define EXACT_STATE 1
#include "rules.h"
#include "adafactor_lanes.h"
#undef LAYOUT
#undef VEC
#undef LANES
#undef OPS
#undef P_T
#undef S_T
#undef LOAD_P
#undef STORE_P
#undef LOAD_S
#undef STORE_S
#undef EXACT_STATE

/* bfloat16 parameters, float32 state, float32 arithmetic */
#define LAYOUT bf16_f32
#define VEC f32v
#define LANES F32_LANES
#define OPS(op) f32v_##op
#define P_T uint16_t
#define S_T float
#define LOAD_P f32v_load_bf16
#define STORE_P f32v_store_bf16
#define LOAD_S f32v_load
#define STORE_S(k, slot, index, p, v) f32v_store(p, v)
#define EXACT_STATE 1
#include "rules.h"
#undef LAYOUT
#undef VEC
#undef LANES
#undef OPS
#undef P_T
#undef S_T
#undef LOAD_P
#undef STORE_P
#undef LOAD_S
#undef STORE_S
#undef EXACT_STATE

/* bfloat16 parameters and state, float32 arithmetic */
#define LAYOUT bf16
#define VEC f32v
#define LANES F32_LANES
#define OPS(op) f32v_##op
#define P_T uint16_t
#define S_T uint16_t
#define LOAD_P f32v_load_bf16
#define STORE_P f32v_store_bf16
#define LOAD_S f32v_load_bf16
#define STORE_S(k, slot, index, p, v) f32v_store_bf16(p, v)
#define EXACT_STATE 0
#include "rules.h"
#undef LAYOUT
#undef VEC
#undef LANES
#undef OPS
#undef P_T
#undef S_T
#undef LOAD_P
#undef STORE_P
#undef LOAD_S
#undef STORE_S
#undef EXACT_STATE

/* float32 parameters, bfloat16 state stored with stochastic rounding, float32 arithmetic */
#define LAYOUT f32_bf16
#define VEC f32v
#define LANES F32_LANES
#define OPS(op) f32v_##op
#define P_T float
#define S_T uint16_t
#define LOAD_P f32v_load
#define STORE_P f32v_store
#define LOAD_S f32v_load_bf16
#define STORE_S(k, slot, index, p, v) f32v_store_bf16_stochastic(p, v, (k)->rounding_keys[slot], index)
#define EXACT_STATE 0
#include "rules.h"
#undef LAYOUT
#undef VEC
#undef LANES
#undef OPS
#undef P_T
#undef S_T
#undef LOAD_P
#undef STORE_P
#undef LOAD_S
#undef STORE_S
#undef EXACT_STATE

#define AK_SEGMENT_ENTRY(upper, lower, counts, layout) [AK_RULE_##upper] = AK_NAME(layout, lower##_segment),
#define AK_ROW(layout) {AK_RULES(AK_SEGMENT_ENTRY, layout)}

const ak_segment_table AK_CAT(ak_segments_, ISA) = {
    [AK_LAYOUT_F32] = AK_ROW(f32),
    [AK_LAYOUT_F64] = AK_ROW(f64),
    [AK_LAYOUT_BF16_F32] = AK_ROW(bf16_f32),
    [AK_LAYOUT_BF16] = AK_ROW(bf16),
    [AK_LAYOUT_F32_BF16] = AK_ROW(f32_bf16),
};

#define AK_ADAFACTOR_PASSES(layout)                                                                             \
    {AK_NAME(layout, adafactor_factor_rows), AK_NAME(layout, adafactor_factors), AK_NAME(layout, adafactor_updates), \
     AK_NAME(layout, adafactor_squares), AK_NAME(layout, adafactor_apply)}

const ak_adafactor_passes AK_CAT(ak_adafactor_, ISA)[2] = {AK_ADAFACTOR_PASSES(f32), AK_ADAFACTOR_PASSES(f64)};

#undef AK_ADAFACTOR_PASSES
#undef AK_ROW
#undef AK_SEGMENT_ENTRY
#undef FN
#undef AK_NAME
#undef AK_CAT
#undef AK_CAT_
