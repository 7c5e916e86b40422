/*
 * bench_conv.c - GFLOP/s of conv2d_forward on the ResNet-18 convolutions.
 *
 *     bench_conv [-b batch]... [-t threads]... [-r repeats] [-e]
 *
 * Prints, per shape and thread count, the median over `repeats` runs, then
 * the whole set weighted by how often each shape occurs in ResNet-18 (the
 * conv part of one forward pass). -e also times the explicit alternative:
 * im2col into a buffer, then rn_sgemm. RN_ISA=avx512|avx2|portable picks the kernels.
 * Defaults: -b 32 -b 1 -t 1 -t 2 -r 5.
 * Not a test: it checks nothing.
 *
 * Build (from the repository root), e.g.:
 *     make lib && cc -O2 -fopenmp -Iinclude -Isrc dev/bench_conv.c \
 *         build/libresnet.a -lm -o build/bench_conv
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "ops/conv2d.h"
#include "ops/gemm.h"
#include "ops/kernels.h"
#include "resnet.h"

typedef struct bench_shape {
    const char *name;
    int cin, hw, cout, k, stride, pad;
    int count;              /* occurrences in ResNet-18 */
} bench_shape;

static const bench_shape shapes[] = {
    {"stem 7x7/2 3->64 @224", 3, 224, 64, 7, 2, 3, 1},
    {"3x3 64->64 @56", 64, 56, 64, 3, 1, 1, 4},
    {"3x3/2 64->128 @56", 64, 56, 128, 3, 2, 1, 1},
    {"1x1/2 64->128 @56", 64, 56, 128, 1, 2, 0, 1},
    {"3x3 128->128 @28", 128, 28, 128, 3, 1, 1, 3},
    {"3x3/2 128->256 @28", 128, 28, 256, 3, 2, 1, 1},
    {"1x1/2 128->256 @28", 128, 28, 256, 1, 2, 0, 1},
    {"3x3 256->256 @14", 256, 14, 256, 3, 1, 1, 3},
    {"3x3/2 256->512 @14", 256, 14, 512, 3, 2, 1, 1},
    {"1x1/2 256->512 @14", 256, 14, 512, 1, 2, 0, 1},
    {"3x3 512->512 @7", 512, 7, 512, 3, 1, 1, 3},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---------------------------------------------------------------------------
 * The explicit alternative: im2col chunks, then rn_sgemm (groups == 1)
 * ------------------------------------------------------------------------- */

#define EXPLICIT_COLS 4096

/* col: (K, ncols) = the im2col columns j0 .. j0+ncols-1, one output row
 * segment at a time (a contiguous copy when the stride is 1). */
static void im2col_chunk(const rn_conv_shape *s, const float *x, long j0, int ncols,
                         float *col) {
    const int K = s->cin * s->kh * s->kw;
#pragma omp parallel for num_threads(rn_get_threads())
    for (int k = 0; k < K; k++) {
        int ci = k / (s->kh * s->kw), ki = k / s->kw % s->kh, kj = k % s->kw;
        const float *xc = x + (size_t)ci * s->n * s->h * s->w;
        float *dst = col + (size_t)k * ncols;
        for (int t = 0; t < ncols;) {
            long j = j0 + t;
            int ow = (int)(j % s->wo), oh = (int)(j / s->wo % s->ho), b = (int)(j / s->wo / s->ho);
            int len = s->wo - ow < ncols - t ? s->wo - ow : ncols - t;
            int ih = oh * s->stride - s->pad + ki;
            const float *row = xc + ((size_t)b * s->h + (ih < 0 ? 0 : ih)) * s->w;
            for (int u = 0; u < len; u++) {
                int iw = (ow + u) * s->stride - s->pad + kj;
                int in = ih >= 0 && ih < s->h && iw >= 0 && iw < s->w;
                dst[t + u] = in ? row[iw] : 0.0f;
            }
            t += len;
        }
    }
}

static void conv_explicit(const rn_conv_shape *s, const float *x, const float *w, float *y,
                          float *col) {
    const int K = s->cin * s->kh * s->kw;
    const long N = (long)s->n * s->ho * s->wo;
    for (long j0 = 0; j0 < N; j0 += EXPLICIT_COLS) {
        int ncols = N - j0 < EXPLICIT_COLS ? (int)(N - j0) : EXPLICIT_COLS;
        im2col_chunk(s, x, j0, ncols, col);
        rn_sgemm(NULL, 0, 0, s->cout, ncols, K, w, K, col, ncols, 0.0f, y + j0, (int)N, NULL);
    }
}

/* ---------------------------------------------------------------------------
 * Timing
 * ------------------------------------------------------------------------- */

/* Median seconds of one conv2d_forward (or the explicit variant). */
static double time_conv(const rn_conv_shape *s, int repeats, int explicit_path) {
    size_t x_n = (size_t)s->cin * s->n * s->h * s->w;
    size_t w_n = (size_t)s->cout * s->cin * s->kh * s->kw;
    size_t y_n = (size_t)s->cout * s->n * s->ho * s->wo;
    float *x = rn_alloc(x_n * sizeof(float)), *w = rn_alloc(w_n * sizeof(float));
    float *bias = rn_alloc(s->cout * sizeof(float)), *y = rn_alloc(y_n * sizeof(float));
    size_t ws_n = explicit_path ? (size_t)s->cin * s->kh * s->kw * EXPLICIT_COLS
                                : conv2d_workspace_floats(s);
    float *ws = rn_alloc((ws_n ? ws_n : 1) * sizeof(float));
    if (!x || !w || !bias || !y || !ws) {
        fprintf(stderr, "bench_conv: out of memory\n");
        exit(1);
    }
    uint32_t r = 1;
    for (size_t i = 0; i < x_n; i++)
        x[i] = (float)((r = r * 1664525u + 1013904223u) >> 9) / 8388608.0f - 1.0f;
    for (size_t i = 0; i < w_n; i++)
        w[i] = (float)((r = r * 1664525u + 1013904223u) >> 9) / 8388608.0f - 1.0f;
    memset(bias, 0, s->cout * sizeof(float));

    double t[64];
    if (repeats > 64)
        repeats = 64;
    for (int i = -1; i < repeats; i++) { /* one warm-up run */
        double t0 = now();
        if (explicit_path)
            conv_explicit(s, x, w, y, ws);
        else
            conv2d_forward(NULL, s, x, w, bias, NULL, 1, y, ws);
        if (i >= 0)
            t[i] = now() - t0;
    }
    qsort(t, repeats, sizeof(double), cmp_double);
    rn_free(x);
    rn_free(w);
    rn_free(bias);
    rn_free(y);
    rn_free(ws);
    return t[repeats / 2];
}

int main(int argc, char **argv) {
    int batches[8], nb = 0, threads[8], nt = 0, repeats = 5, explicit_too = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc && nb < 8)
            batches[nb++] = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc && nt < 8)
            threads[nt++] = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-e"))
            explicit_too = 1;
        else {
            fprintf(stderr,
                    "usage: bench_conv [-b batch]... [-t threads]... [-r repeats] [-e]\n");
            return 2;
        }
    }
    if (!nb) {
        batches[nb++] = 32;
        batches[nb++] = 1;
    }
    if (!nt) {
        threads[nt++] = 1;
        threads[nt++] = 2;
    }
    if (repeats < 1)
        repeats = 1;

    printf("kernel: %s, median of %d\n", rn_kernels_default()->name, repeats);
    for (int bi = 0; bi < nb; bi++) {
        printf("\nbatch %d%-17s %9s", batches[bi], "", "GFLOP");
        for (int ti = 0; ti < nt; ti++)
            printf("   %dT GF/s", threads[ti]);
        if (explicit_too)
            for (int ti = 0; ti < nt; ti++)
                printf("  expl %dT", threads[ti]);
        printf("\n");
        double total_flops = 0, total_time[8] = {0}, total_time_e[8] = {0};
        for (int si = 0; si < NSHAPES; si++) {
            const bench_shape *b = &shapes[si];
            rn_conv_shape s = {.n = batches[bi], .cin = b->cin, .h = b->hw, .w = b->hw,
                               .cout = b->cout, .kh = b->k, .kw = b->k, .stride = b->stride,
                               .pad = b->pad, .groups = 1};
            conv2d_shape_init(&s);
            double flops = 2.0 * s.cout * s.cin * s.kh * s.kw * s.n * s.ho * s.wo;
            total_flops += flops * b->count;
            printf("%-24s %9.3f", b->name, flops * 1e-9);
            for (int ti = 0; ti < nt; ti++) {
                rn_set_threads(threads[ti]);
                double t = time_conv(&s, repeats, 0);
                total_time[ti] += t * b->count;
                printf(" %10.1f", flops / t * 1e-9);
                fflush(stdout);
            }
            for (int ti = 0; explicit_too && ti < nt; ti++) {
                rn_set_threads(threads[ti]);
                double t = time_conv(&s, repeats, 1);
                total_time_e[ti] += t * b->count;
                printf(" %9.1f", flops / t * 1e-9);
                fflush(stdout);
            }
            printf("\n");
        }
        printf("%-24s %9.3f", "ResNet-18 convs", total_flops * 1e-9);
        for (int ti = 0; ti < nt; ti++)
            printf(" %10.1f", total_flops / total_time[ti] * 1e-9);
        for (int ti = 0; explicit_too && ti < nt; ti++)
            printf(" %9.1f", total_flops / total_time_e[ti] * 1e-9);
        printf("\n");
    }
    return 0;
}
