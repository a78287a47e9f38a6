/* For every float32 w from 0 to infinity (the unsigned code's w = sqrt(v) 255^2 / sqrt(s) is at
 * most 255^2, plus rounding, for a finite v, and infinite for an infinite one), the code that
 * the fused Adam step's store_unsigned_codes counts from its reciprocal square root estimate
 * equals the one quant8.c counts from sqrtf (ak_q8_unsigned_w, unsigned_code), on this
 * processor. Built once per fused file, which it includes (so it
 * checks the kernel's own code): -DFUSED_FILE='"quant8_adam_avx2.c"' or the AVX-512 one, with
 * -Icsrc. Prints the values checked and the mismatches; exits 1 on a mismatch, 2 if this CPU
 * lacks the file's instruction set. Run by tests/compact/test_unsigned_estimate.py. */
#include FUSED_FILE

#include <stdio.h>

static int32_t reference(float root)
{
    float w = ak_q8_unsigned_w(root, 1.0f);
    int32_t c = (int32_t)(sqrtf(w) + 0.25f);
    float t = (float)c + 0.5f;
    return c + (w >= t * t);
}

static int supported(void)
{
    __builtin_cpu_init();
    return LANES == 8 ? __builtin_cpu_supports("avx2")
                      : __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                            __builtin_cpu_supports("avx512vl");
}

int main(void)
{
    if (!supported())
        return 2;
    const float top = INFINITY;
    uint32_t last;
    memcpy(&last, &top, sizeof last);
    uint64_t checked = 0, mismatches = 0;
    float w[LANES] __attribute__((aligned(64)));
    unsigned char codes[LANES];
    for (uint64_t first = 0; first <= last; first += LANES) {
        for (int j = 0; j < LANES; j++) {
            uint32_t bits = (uint32_t)(first + (uint64_t)j <= last ? first + (uint64_t)j : last);
            memcpy(&w[j], &bits, sizeof bits);
        }
        store_unsigned_codes((char *)codes, v_load(w), v_set1(1.0f));
        for (int j = 0; j < LANES && first + (uint64_t)j <= last; j++) {
            checked++;
            mismatches += codes[j] != reference(w[j]);
        }
    }
    printf("%s: %llu values, %llu mismatches\n", FUSED_FILE, (unsigned long long)checked,
           (unsigned long long)mismatches);
    return mismatches != 0;
}
