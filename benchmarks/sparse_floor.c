/* What a lazy sparse Adam step of 10,000 random rows of a 1,000,000 x 64 float32 table costs at
 * the least, against what csrc/sparse.c's kernel takes (the numbers BENCHMARKS.md quotes).
 *
 * Each measurement draws 10,000 fresh random rows (sorted, as a coalesced gradient holds them),
 * first streams 128 MiB through the caches (as the rest of a training step would), then times
 * one pass over the rows of the parameter, exp_avg and exp_avg_sq (768 bytes per row):
 *
 *   touch     read and write one float per cache line of each row: the memory traffic of the
 *             step with no arithmetic;
 *   touch+pf  the same, with the rows 4 ahead prefetched;
 *   touch+values  for an embedding's gradient: 20,000 shuffled entries over the 10,000 rows,
 *             touching each entry's row and reading its 256-byte values row (in sequence);
 *   adam      the plain Adam update of each row, in one loop the compiler vectorizes;
 *   kernel    ak_sparse_update (the same Adam, eps_hat, from csrc/), as adamkit runs it;
 *   embedding ak_sparse_update on 20,000 shuffled entries over the same 10,000 rows.
 *
 * Times are the median and the 10th percentile over REPEATS draws of the thread's CPU time (one
 * thread) or of the wall time (two threads, the rows split in halves; the kernel picks its own
 * thread count). Build and run, from the repository root:
 *
 *   gcc -O3 -march=native -ffp-contract=off -fno-math-errno -fopenmp -Icsrc \
 *       benchmarks/sparse_floor.c csrc/sparse.c csrc/row_sort.c csrc/dispatch.c csrc/scalars.c \
 *       csrc/isa_scalar.c csrc/isa_avx2.c csrc/isa_avx512.c -lm -o /tmp/sparse_floor
 *   /tmp/sparse_floor           # 2 MiB pages (madvise), as adamkit.torch allocates them
 *   /tmp/sparse_floor 4k        # 4 KiB pages
 */
#define _GNU_SOURCE
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "sparse.h"

#define ROWS 1000000
#define DIM 64
#define TOUCHED 10000
#define REPEATS 41
#define HUGE_PAGE ((size_t)2 << 20)
#define FLUSH_BYTES ((size_t)128 << 20)
#define LINE 64
#define PREFETCH_ROWS 4

static float *param, *exp_avg, *exp_avg_sq, *grad;
static int64_t rows[2 * TOUCHED];
static char *flush_buffer;

static double seconds(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *table(int huge)
{
    size_t bytes = (size_t)ROWS * DIM * sizeof(float);
    char *raw = mmap(NULL, bytes + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    float *aligned = (float *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    madvise(aligned, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    for (size_t i = 0; i < (size_t)ROWS * DIM; i++)
        aligned[i] = 0.5f;
    return aligned;
}

static int by_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int by_time(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* 10,000 distinct random rows, sorted; with `embedding`, followed by 10,000 repeats of them
 * and all 20,000 shuffled. */
static int64_t draw_rows(int embedding)
{
    static int64_t permutation[ROWS];
    if (permutation[ROWS - 1] == 0)
        for (int64_t row = 0; row < ROWS; row++)
            permutation[row] = row;
    for (int64_t j = 0; j < TOUCHED; j++) {
        int64_t k = j + (((int64_t)rand() << 31) ^ rand()) % (ROWS - j), swap = permutation[j];
        permutation[j] = permutation[k];
        permutation[k] = swap;
        rows[j] = permutation[j];
    }
    qsort(rows, TOUCHED, sizeof *rows, by_value);
    if (!embedding)
        return TOUCHED;
    for (int64_t j = TOUCHED; j < 2 * TOUCHED; j++)
        rows[j] = rows[rand() % TOUCHED];
    for (int64_t j = 2 * TOUCHED - 1; j > 0; j--) {
        int64_t k = rand() % (j + 1), swap = rows[j];
        rows[j] = rows[k];
        rows[k] = swap;
    }
    return 2 * TOUCHED;
}

static void flush(void)
{
    for (size_t i = 0; i < FLUSH_BYTES; i += LINE)
        flush_buffer[i]++;
}

static void prefetch(int64_t row)
{
    for (int line = 0; line < DIM * (int)sizeof(float); line += LINE) {
        __builtin_prefetch((char *)(param + row * DIM) + line, 1, 3);
        __builtin_prefetch((char *)(exp_avg + row * DIM) + line, 1, 3);
        __builtin_prefetch((char *)(exp_avg_sq + row * DIM) + line, 1, 3);
    }
}

static void touch(int64_t begin, int64_t end, int ahead)
{
    for (int64_t j = begin; j < end; j++) {
        if (ahead && j + PREFETCH_ROWS < end)
            prefetch(rows[j + PREFETCH_ROWS]);
        float *p = param + rows[j] * DIM, *m = exp_avg + rows[j] * DIM, *v = exp_avg_sq + rows[j] * DIM;
        for (int i = 0; i < DIM; i += LINE / (int)sizeof(float)) {
            p[i] += 1.0f;
            m[i] += 1.0f;
            v[i] += 1.0f;
        }
    }
}

static void touch_entries(int64_t begin, int64_t end)
{
    float sum = 0.0f;
    for (int64_t j = begin; j < end; j++) {
        float *p = param + rows[j] * DIM, *m = exp_avg + rows[j] * DIM, *v = exp_avg_sq + rows[j] * DIM;
        const float *g = grad + j * DIM;
        for (int i = 0; i < DIM; i += LINE / (int)sizeof(float)) {
            sum += g[i];
            p[i] += 1.0f;
            m[i] += 1.0f;
            v[i] += 1.0f;
        }
    }
    param[0] += sum; /* keeps the reads */
}

static void adam_row(float *restrict p, const float *restrict g, float *restrict m, float *restrict v)
{
    const float beta1 = 0.9f, beta2 = 0.999f, lr = 1e-3f, eps = 1e-8f;
    for (int i = 0; i < DIM; i++) {
        m[i] += (1.0f - beta1) * (g[i] - m[i]);
        v[i] = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
        p[i] -= lr * (m[i] / (__builtin_sqrtf(v[i]) + eps));
    }
}

static void adam(int64_t begin, int64_t end)
{
    for (int64_t j = begin; j < end; j++)
        adam_row(param + rows[j] * DIM, grad + j * DIM, exp_avg + rows[j] * DIM, exp_avg_sq + rows[j] * DIM);
}

static void kernel(int64_t n_entries, int threads, double step)
{
    ak_sparse_call call = {
        .rule = AK_RULE_ADAM,
        .layout = AK_LAYOUT_F32,
        .isa = ak_isa_supported(AK_ISA_AVX512) ? AK_ISA_AVX512 : ak_isa_supported(AK_ISA_AVX2) ? AK_ISA_AVX2 : AK_ISA_SCALAR,
        .num_threads = threads,
        .hyper = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .eps_hat = 1},
        .n_rows = ROWS,
        .row_numel = DIM,
        .n_entries = n_entries,
        .indices = rows,
        .param = param,
        .values = grad,
        .slots = {exp_avg, exp_avg_sq, NULL},
        .step = step,
    };
    int64_t bad_entry;
    if (ak_sparse_update(&call, &bad_entry) != AK_SPARSE_OK) {
        fprintf(stderr, "ak_sparse_update failed\n");
        exit(1);
    }
}

enum { TOUCH, TOUCH_PREFETCH, TOUCH_VALUES, ADAM, KERNEL, EMBEDDING, N_KINDS };
static const char *const NAMES[N_KINDS] = {"touch", "touch+pf", "touch+values", "adam", "kernel", "embedding"};

/* One measurement of `kind` on `threads` threads, in milliseconds. */
static double measure(int kind, int threads, int repeat)
{
    int64_t n = draw_rows(kind == EMBEDDING || kind == TOUCH_VALUES);
    flush();
    clockid_t clock = threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC;
    double start = seconds(clock);
    if (kind == KERNEL || kind == EMBEDDING) {
        kernel(n, threads, repeat + 1.0);
    } else {
#pragma omp parallel num_threads(threads)
        {
            int64_t begin = n * omp_get_thread_num() / threads, end = n * (omp_get_thread_num() + 1) / threads;
            if (kind == ADAM)
                adam(begin, end);
            else if (kind == TOUCH_VALUES)
                touch_entries(begin, end);
            else
                touch(begin, end, kind == TOUCH_PREFETCH);
        }
    }
    return 1e3 * (seconds(clock) - start);
}

int main(int argc, char **argv)
{
    int huge = !(argc > 1 && strcmp(argv[1], "4k") == 0);
    param = table(huge);
    exp_avg = table(huge);
    exp_avg_sq = table(huge);
    grad = malloc(sizeof(float) * 2 * TOUCHED * DIM);
    flush_buffer = calloc(FLUSH_BYTES, 1);
    for (int64_t i = 0; i < 2 * TOUCHED * DIM; i++)
        grad[i] = 0.01f * (float)(i % 7 - 3);
    srand(1);
    printf("10,000 random rows of three 1,000,000 x 64 float32 tables, %s pages, cold caches\n",
           huge ? "2 MiB" : "4 KiB");
    printf("| pass | 1 thread, CPU ms: median (p10) | 2 threads, wall ms: median (p10) |\n|---|---|---|\n");
    double times[2][N_KINDS][REPEATS];
    for (int repeat = 0; repeat < REPEATS; repeat++)
        for (int threads = 1; threads <= 2; threads++)
            for (int kind = 0; kind < N_KINDS; kind++)
                times[threads - 1][kind][repeat] = measure(kind, threads, repeat);
    for (int kind = 0; kind < N_KINDS; kind++) {
        for (int t = 0; t < 2; t++)
            qsort(times[t][kind], REPEATS, sizeof(double), by_time);
        printf("| %s | %.3f (%.3f) | %.3f (%.3f) |\n", NAMES[kind], times[0][kind][REPEATS / 2],
               times[0][kind][REPEATS / 10], times[1][kind][REPEATS / 2], times[1][kind][REPEATS / 10]);
    }
    return 0;
}
