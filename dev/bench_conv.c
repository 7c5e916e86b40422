/*
 * bench_conv.c - every convolution algorithm on the ResNet layer shapes:
 * checked against the im2col GEMM, then timed.
 *
 *     build/dev/bench_conv [-m resnet18|resnet50|narrow|stems] [-b batch]... [-t threads]... [-r repeats]
 *                          [-s SUBSTRING]   (only the shapes whose name contains it)
 *                          [-c]             (processor time per thread, for a shared machine)
 *                          [-e]             (each run starts with the weights out of cache and
 *                                            the input in it, as inside a network larger
 *                                            than the last-level cache)
 *                          [-p bf16]        (bf16 products where the CPU has them, as a bf16
 *                                            session runs them (Winograd's too, but on AMX);
 *                                            checked against the fp32 im2col within 2e-2
 *                                            plus the algorithm's tolerance_bf16)
 *
 * For each shape and batch: each algorithm that supports it is prepared,
 * run once and compared with im2col (its stated tolerance, conv_algo.h; a
 * mismatch stops the program with status 1), then timed: the best of
 * `repeats` runs (the least disturbed by other work on the machine), shown
 * as effective GFLOP/s (the direct convolution's FLOPs / time). The last
 * column is the heuristic's choice (rn_conv_algo_choose; with -p bf16, rn_conv_algo_for_bf16
 * of it, what an inference session on bf16 picks). Totals weight each
 * shape by how often it occurs in the network. RN_ISA picks the kernels.
 * Defaults: -m resnet18 -b 1 -b 32 -t 2 -r 5. `make dev` builds it.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "ops/conv2d.h"
#include "ops/conv_algo.h"
#include "ops/kernels.h"
#include "resnet.h"

typedef struct bench_shape {
    const char *name;
    int cin, hw, cout, k, stride, pad;
    int count;              /* occurrences in the network */
} bench_shape;

static const bench_shape resnet18[] = {
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
    {NULL, 0, 0, 0, 0, 0, 0, 0},
};

/* The stride-1 3x3 convolutions of the narrow networks trained on 28x28
 * Fashion-MNIST: the CIFAR-stem resnet18 at widths 16 and 32 (stages at
 * 28, 14, 7, 4) and d2l_resnet18 (64 channels at 7, on to 512 at 1), then
 * d2l_resnet18's strided convolutions and shortcuts, and its last stage at 96x96. */
static const bench_shape narrow[] = {
    {"3x3 16->16 @28", 16, 28, 16, 3, 1, 1, 5},
    {"3x3 32->32 @14", 32, 14, 32, 3, 1, 1, 3},
    {"3x3 64->64 @7", 64, 7, 64, 3, 1, 1, 3},
    {"3x3 128->128 @4", 128, 4, 128, 3, 1, 1, 3},
    {"3x3 32->32 @28", 32, 28, 32, 3, 1, 1, 5},
    {"3x3 64->64 @14", 64, 14, 64, 3, 1, 1, 3},
    {"3x3 128->128 @7", 128, 7, 128, 3, 1, 1, 3},
    {"3x3 256->256 @4", 256, 4, 256, 3, 1, 1, 3},
    {"3x3 256->256 @2", 256, 2, 256, 3, 1, 1, 3},
    {"3x3/2 16->32 @28", 16, 28, 32, 3, 2, 1, 1},
    {"1x1/2 16->32 @28", 16, 28, 32, 1, 2, 0, 1},
    {"3x3/2 32->64 @14", 32, 14, 64, 3, 2, 1, 1},
    {"3x3 8->8 @28", 8, 28, 8, 3, 1, 1, 1},
    {"3x3/2 64->128 @7", 64, 7, 128, 3, 2, 1, 1},
    {"1x1/2 64->128 @7", 64, 7, 128, 1, 2, 0, 1},
    {"3x3/2 128->256 @4", 128, 4, 256, 3, 2, 1, 1},
    {"1x1/2 128->256 @4", 128, 4, 256, 1, 2, 0, 1},
    {"3x3/2 256->512 @2", 256, 2, 512, 3, 2, 1, 1},
    {"1x1/2 256->512 @2", 256, 2, 512, 1, 2, 0, 1},
    {"3x3 512->512 @3", 512, 3, 512, 3, 1, 1, 3}, /* d2l_resnet18's last stage at 96x96 */
    {NULL, 0, 0, 0, 0, 0, 0, 0},
};

/* the first convolution of each model the trainers and tools run */
static const bench_shape stems[] = {
    {"imagenet 7x7/2 3->64 @224", 3, 224, 64, 7, 2, 3, 1},
    {"d2l 7x7/2 1->64 @28", 1, 28, 64, 7, 2, 3, 1},
    {"d2l 7x7/2 1->64 @96", 1, 96, 64, 7, 2, 3, 1},
    {"cifar 3x3 3->64 @32", 3, 32, 64, 3, 1, 1, 1},
    {"cifar 3x3 1->64 @28", 1, 28, 64, 3, 1, 1, 1},
    {"cifar 3x3 1->16 @28", 1, 28, 16, 3, 1, 1, 1},
    {NULL, 0, 0, 0, 0, 0, 0, 0},
};

static const bench_shape resnet50[] = {
    {"stem 7x7/2 3->64 @224", 3, 224, 64, 7, 2, 3, 1},
    {"1x1 64->64 @56", 64, 56, 64, 1, 1, 0, 1},
    {"3x3 64->64 @56", 64, 56, 64, 3, 1, 1, 3},
    {"1x1 64->256 @56", 64, 56, 256, 1, 1, 0, 4},
    {"1x1 256->64 @56", 256, 56, 64, 1, 1, 0, 2},
    {"1x1 256->128 @56", 256, 56, 128, 1, 1, 0, 1},
    {"3x3/2 128->128 @56", 128, 56, 128, 3, 2, 1, 1},
    {"1x1 128->512 @28", 128, 28, 512, 1, 1, 0, 4},
    {"1x1/2 256->512 @56", 256, 56, 512, 1, 2, 0, 1},
    {"1x1 512->128 @28", 512, 28, 128, 1, 1, 0, 3},
    {"3x3 128->128 @28", 128, 28, 128, 3, 1, 1, 3},
    {"1x1 512->256 @28", 512, 28, 256, 1, 1, 0, 1},
    {"3x3/2 256->256 @28", 256, 28, 256, 3, 2, 1, 1},
    {"1x1 256->1024 @14", 256, 14, 1024, 1, 1, 0, 6},
    {"1x1/2 512->1024 @28", 512, 28, 1024, 1, 2, 0, 1},
    {"1x1 1024->256 @14", 1024, 14, 256, 1, 1, 0, 5},
    {"3x3 256->256 @14", 256, 14, 256, 3, 1, 1, 5},
    {"1x1 1024->512 @14", 1024, 14, 512, 1, 1, 0, 1},
    {"3x3/2 512->512 @14", 512, 14, 512, 3, 2, 1, 1},
    {"1x1 512->2048 @7", 512, 7, 2048, 1, 1, 0, 3},
    {"1x1/2 1024->2048 @14", 1024, 14, 2048, 1, 2, 0, 1},
    {"1x1 2048->512 @7", 2048, 7, 512, 1, 1, 0, 2},
    {"3x3 512->512 @7", 512, 7, 512, 3, 1, 1, 2},
    {NULL, 0, 0, 0, 0, 0, 0, 0},
};

/* -c: processor time of the process per thread instead of wall time, for a
 * machine shared with other work (1 thread: the time this one ran). */
static int cpu_clock;

static double now(void) {
    struct timespec ts;
    clock_gettime(cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    if (cpu_clock)
        return (ts.tv_sec + 1e-9 * ts.tv_nsec) / rn_get_threads();
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static float *random_floats(size_t n, uint32_t seed) {
    float *p = rn_alloc((n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_conv: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((seed = seed * 1664525u + 1013904223u) >> 9) / 8388608.0f - 1.0f;
    return p;
}

/* max |a - b| / max |b| */
static double rel_error(const float *a, const float *b, size_t n) {
    double err = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        err = d > err || d != d ? d : err;
        scale = fabs(b[i]) > scale ? fabs(b[i]) : scale;
    }
    return err / (scale > 0 ? scale : 1.0);
}

static int evict; /* -e */
static int bf16;  /* -p bf16 */

/* The kernels algorithm a runs on: under -p bf16 those of a bf16 session (the bf16
 * descriptor, rn_conv_bf16_kernels), else the default. */
static const rn_kernels *kernels_for(const rn_conv_algo *a) {
    const rn_kernels *k = rn_kernels_default();
    return bf16 && rn_kernels_bf16(k) ? rn_conv_bf16_kernels(rn_kernels_bf16(k), a->id) : k;
}

/* Pushes everything out of the caches (a write over more than any last-level cache), then
 * reads x back in: a layer inside a network finds its input just written and its weights
 * gone. */
static void cold_start(const float *x, size_t xn) {
    static unsigned char *junk;
    const size_t junk_bytes = (size_t)256 << 20;
    if (!junk && !(junk = rn_alloc(junk_bytes))) {
        fprintf(stderr, "bench_conv: out of memory\n");
        exit(2);
    }
    memset(junk, 1, junk_bytes);
    volatile float sink = 0.0f;
    float sum = 0.0f;
    for (size_t i = 0; i < xn; i += 16)
        sum += x[i];
    sink = sum;
    (void)sink;
}

/* Best seconds of one forward pass of algorithm a on s, after checking it
 * against `ref` (NULL: none; then y becomes the reference). */
static double time_algo(const rn_conv_algo *a, const rn_kernels *k, const rn_conv_shape *s,
                        const float *x, const float *w, const float *bias, float *y,
                        const float *ref, int repeats) {
    float *prep = rn_alloc((a->prepared_floats(k, s) + 1) * sizeof(float));
    float *ws = rn_alloc((a->workspace_floats(k, s, rn_get_threads()) + 1) * sizeof(float));
    if (!prep || !ws) {
        fprintf(stderr, "bench_conv: out of memory\n");
        exit(2);
    }
    a->prepare(k, s, w, prep);
    double best = 1e30;
    const size_t xn = (size_t)s->cin * s->n * s->h * s->w;
    for (int i = -1; i < repeats; i++) { /* one warm-up run, which is also checked */
        if (evict)
            cold_start(x, xn);
        double t0 = now();
        a->forward(k, s, x, prep, bias, NULL, 1, y, ws, rn_get_threads());
        double t = now() - t0;
        if (i < 0 && ref) {
            size_t n = (size_t)s->cout * s->n * s->ho * s->wo;
            double err = rel_error(y, ref, n);
            const double tol = rn_kernels_are_bf16(k) ? 2e-2 + a->tolerance_bf16 : a->tolerance;
            if (!(err <= tol)) {
                fprintf(stderr, "bench_conv: %s on cin=%d %dx%d cout=%d k=%d s=%d: error %.2e > %.0e\n",
                        a->name, s->cin, s->h, s->w, s->cout, s->kh, s->stride, err, tol);
                exit(1);
            }
        }
        if (i >= 0 && t < best)
            best = t;
    }
    rn_free(prep);
    rn_free(ws);
    return best;
}

int main(int argc, char **argv) {
    int batches[8], nb = 0, threads[8], nt = 0, repeats = 5;
    const bench_shape *shapes = resnet18;
    const char *net = "resnet18", *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc && nb < 8)
            batches[nb++] = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc && nt < 8)
            threads[nt++] = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-c"))
            cpu_clock = 1;
        else if (!strcmp(argv[i], "-e"))
            evict = 1;
        else if (!strcmp(argv[i], "-p") && i + 1 < argc)
            bf16 = !strcmp(argv[++i], "bf16");
        else if (!strcmp(argv[i], "-s") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "-m") && i + 1 < argc) {
            net = argv[++i];
            shapes = !strcmp(net, "resnet50") ? resnet50
                     : !strcmp(net, "narrow") ? narrow
                     : !strcmp(net, "stems")  ? stems
                                              : resnet18;
        } else {
            fprintf(stderr, "usage: bench_conv [-m resnet18|resnet50|narrow|stems] [-b batch]... [-t threads]... [-c] [-e] "
                            "[-r repeats] [-s SUBSTRING] [-p bf16]\n");
            return 2;
        }
    }
    if (!nb)
        batches[nb++] = 1, batches[nb++] = 32;
    if (!nt)
        threads[nt++] = 2;
    if (repeats < 1)
        repeats = 1;
    if (rn_isa_check() != RN_OK) {
        fprintf(stderr, "bench_conv: %s\n", rn_last_error());
        return 2;
    }
    const rn_kernels *k = rn_kernels_default();
    printf("%s convolutions, kernels %s on %s, best of %d, effective GFLOP/s\n", net,
           bf16 && rn_kernels_bf16(k) ? rn_kernels_bf16(k)->name : k->name, rn_cpu_model(), repeats);
    for (int ti = 0; ti < nt; ti++)
        for (int bi = 0; bi < nb; bi++) {
            rn_set_threads(threads[ti]);
            printf("\nbatch %d, %d threads %-10s", batches[bi], threads[ti], "");
            for (int a = 0; a < RN_CONV_ALGO_COUNT; a++)
                printf(" %10s", rn_conv_algo_get(a)->name);
            printf("  heuristic\n");
            double total_flops = 0, best_time = 0, chosen_time = 0;
            for (const bench_shape *b = shapes; b->name; b++) {
                if (only && !strstr(b->name, only))
                    continue;
                rn_conv_shape s = {.n = batches[bi], .cin = b->cin, .h = b->hw, .w = b->hw,
                                   .cout = b->cout, .kh = b->k, .kw = b->k, .stride = b->stride,
                                   .pad = b->pad, .groups = 1};
                conv2d_shape_init(&s);
                size_t xn = (size_t)s.cin * s.n * s.h * s.w, wn = (size_t)s.cout * s.cin * s.kh * s.kw;
                size_t yn = (size_t)s.cout * s.n * s.ho * s.wo;
                float *x = random_floats(xn, 1), *w = random_floats(wn, 2), *bias = random_floats(s.cout, 3);
                float *ref = random_floats(yn, 4), *y = random_floats(yn, 5);
                const double flops = 2.0 * s.cout * s.cin * s.kh * s.kw * s.n * s.ho * s.wo;
                printf("%-27s", b->name);
                const rn_conv_algo *im2col = rn_conv_algo_get(RN_CONV_IM2COL);
                double t_im2col = time_algo(im2col, k, &s, x, w, bias, ref, NULL, repeats);
                if (kernels_for(im2col) != k) /* the fp32 one is the reference */
                    t_im2col = time_algo(im2col, kernels_for(im2col), &s, x, w, bias, y, ref, repeats);
                double best = 1e30, t_chosen = 0;
                int chosen = rn_conv_algo_choose(k, &s);
                if (bf16) /* as a bf16 inference session (engine/session.c pick_algo) */
                    chosen = rn_conv_algo_for_bf16(rn_kernels_bf16(k) ? rn_kernels_bf16(k) : k,
                                                   chosen, -1, 1, &s);
                for (int a = 0; a < RN_CONV_ALGO_COUNT; a++) {
                    const rn_conv_algo *al = rn_conv_algo_get(a);
                    if (!al->supports(&s)) {
                        printf(" %10s", "-");
                        continue;
                    }
                    double t = a == RN_CONV_IM2COL ? t_im2col
                                                   : time_algo(al, kernels_for(al), &s, x, w,
                                                               bias, y, ref, repeats);
                    printf(" %10.1f", flops / t * 1e-9);
                    fflush(stdout);
                    best = t < best ? t : best;
                    if (a == chosen)
                        t_chosen = t;
                }
                printf("  %s\n", rn_conv_algo_get(chosen)->name);
                total_flops += flops * b->count;
                best_time += best * b->count;
                chosen_time += t_chosen * b->count;
                rn_free(x), rn_free(w), rn_free(bias), rn_free(ref), rn_free(y);
            }
            printf("%-27s best per layer %.1f GFLOP/s (%.2f ms), heuristic %.1f GFLOP/s (%.2f ms)\n",
                   "whole network", total_flops / best_time * 1e-9, best_time * 1e3,
                   total_flops / chosen_time * 1e-9, chosen_time * 1e3);
        }
    return 0;
}
