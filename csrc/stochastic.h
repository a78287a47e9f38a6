/* Stochastic rounding of float32 values to bfloat16, with counter-based random bits.
 *
 * Element i of a call with (seed, stream) is stored as the upper half of
 *     bits(x_i) + r_i,   r_i = the upper 16 bits of mix32(lo32(i) ^ key(seed, stream, hi32(i)))
 * so it is rounded away from zero with probability equal to its distance from the bfloat16
 * below (in magnitude), in units of their spacing: unbiased. mix32 is the "lowbias32" integer
 * hash (x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16), and
 *     key = mix32(lo32(seed) ^ mix32(hi32(seed) ^ mix32(stream ^ mix32(hi32(i) + 0x9e3779b9))))
 * Each element's bits depend only on (seed, stream, i), not on the thread count or on how
 * the array is split. A NaN is stored as the quiet NaN 0x7FC0. adamkit/numpy/_bfloat16.py
 * computes the same bits in NumPy (the reference, tested bit for bit).
 */
#ifndef ADAMKIT_STOCHASTIC_H
#define ADAMKIT_STOCHASTIC_H

#include <stdint.h>

/* dst[i] = x rounded stochastically, i < n; num_threads > 0. */
void ak_round_bf16_stochastic(const float *src, uint16_t *dst, int64_t n, uint64_t seed, uint32_t stream,
                              int num_threads);

#endif
