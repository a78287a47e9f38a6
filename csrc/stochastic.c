/* ak_round_bf16_stochastic (see stochastic.h): one pass, in parallel over chunks. The loop is
 * plain 32-bit integer C that the compiler vectorises; AVX-512 and AVX2 versions are compiled
 * and the CPU's best runs (every version computes the same bits). */
#include "stochastic.h"

#include <string.h>

#include "kernel.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define INLINE static inline __attribute__((always_inline))
/* Elements per unit of parallel work. */
#define CHUNK ((int64_t)1 << 16)
#define QUIET_NAN 0x7FC0u

INLINE uint32_t mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

static uint32_t stream_key(uint64_t seed, uint32_t stream, uint32_t high)
{
    return mix32((uint32_t)seed ^ mix32((uint32_t)(seed >> 32) ^ mix32(stream ^ mix32(high + 0x9e3779b9u))));
}

/* Elements [begin, end) of one 2^32-element range (hi32 constant), whose key is `key`. */
INLINE void round_range(const float *src, uint16_t *dst, int64_t begin, int64_t end, uint32_t key)
{
    for (int64_t i = begin; i < end; i++) {
        uint32_t bits;
        memcpy(&bits, &src[i], sizeof bits);
        uint32_t noise = mix32((uint32_t)i ^ key) >> 16;
        uint32_t is_nan = (bits & 0x7fffffffu) > 0x7f800000u;
        dst[i] = (uint16_t)(is_nan ? QUIET_NAN : (bits + noise) >> 16);
    }
}

typedef void (*range_fn)(const float *src, uint16_t *dst, int64_t begin, int64_t end, uint32_t key);

static void round_baseline(const float *src, uint16_t *dst, int64_t begin, int64_t end, uint32_t key)
{
    round_range(src, dst, begin, end, key);
}

#if AK_X86 && defined(__GNUC__)
__attribute__((target("avx2"))) static void round_avx2(const float *src, uint16_t *dst, int64_t begin, int64_t end,
                                                       uint32_t key)
{
    round_range(src, dst, begin, end, key);
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) static void round_avx512(const float *src, uint16_t *dst,
                                                                               int64_t begin, int64_t end,
                                                                               uint32_t key)
{
    round_range(src, dst, begin, end, key);
}
#endif

static range_fn best_range_fn(void)
{
#if AK_X86 && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return round_avx512;
    if (__builtin_cpu_supports("avx2"))
        return round_avx2;
#endif
    return round_baseline;
}

void ak_round_bf16_stochastic(const float *src, uint16_t *dst, int64_t n, uint64_t seed, uint32_t stream,
                              int num_threads)
{
    if (n <= 0)
        return;
    range_fn run = best_range_fn();
    int64_t chunks = (n + CHUNK - 1) / CHUNK;
    int threads = num_threads > 0 ? num_threads : 1;
    if (threads > chunks)
        threads = (int)chunks;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
#endif
    for (int64_t c = 0; c < chunks; c++) {
        /* A chunk of 2^16 elements never straddles a multiple of 2^32. */
        int64_t begin = c * CHUNK, end = begin + CHUNK < n ? begin + CHUNK : n;
        run(src, dst, begin, end, stream_key(seed, stream, (uint32_t)((uint64_t)begin >> 32)));
    }
}
