/*
 * bench_backward.c - GFLOP/s of conv2d_forward, conv2d_backward_data and
 * conv2d_backward_weight on the ResNet-18 convolutions (56/28/14/7 spatial).
 *
 *     bench_backward [-b batch]... [-t threads]... [-r repeats] [-m] [-f | -n] [-p bf16]
 *
 * -f: the convolutions of d2l_resnet18 on 28x28 Fashion-MNIST instead
 * (1 input channel; 14/7/4/2/1 spatial; default batch 256); -n: those of
 * the width-16 CIFAR-stem resnet18 of `--recipe fmnist-fast` (28/14/7/4).
 * Prints, per shape and thread count, the median (-m: the minimum, steadier
 * on a shared machine) over `repeats` runs of
 * each pass (FLOPs = 2 x multiply-accumulates, the same for all three), then
 * the set weighted by how often each shape occurs in ResNet-18. The data
 * route taken (pointwise GEMM, flipped implicit GEMM or its Winograd F(4x4)
 * "wino" / F(2x2) "wino2", GEMM + col2im) is shown per shape. -p bf16: every pass on the bf16 kernels (rn_kernels_bf16, what
 * `train --precision bf16` runs: no Winograd data gradient). Defaults: -b 32 -t 1 -t 2 -r 5.
 * Not a test: it checks nothing.
 *
 * Build (from the repository root):
 *     make build/libresnet.a && cc -O2 -fopenmp -Iinclude -Isrc dev/bench_backward.c \
 *         build/libresnet.a -lm -o build/bench_backward
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "ops/conv2d.h"
#include "ops/conv_algo.h"
#include "ops/gemm.h"
#include "ops/kernels.h"
#include "resnet.h"

typedef struct bench_shape {
    const char *name;
    int cin, hw, cout, k, stride, pad;
    int count;              /* occurrences in ResNet-18 */
} bench_shape;

static const bench_shape shapes[] = {
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

/* d2l_resnet18 on 1 x 28 x 28: stem 7x7/2 -> 14, max pool -> 7, then stages
 * at 7, 4, 2, 1 with a 1x1 shortcut conv opening stages 2-4. */
static const bench_shape fmnist_shapes[] = {
    {"stem 7x7/2 1->64 @28", 1, 28, 64, 7, 2, 3, 1},
    {"3x3 64->64 @7", 64, 7, 64, 3, 1, 1, 4},
    {"3x3/2 64->128 @7", 64, 7, 128, 3, 2, 1, 1},
    {"1x1/2 64->128 @7", 64, 7, 128, 1, 2, 0, 1},
    {"3x3 128->128 @4", 128, 4, 128, 3, 1, 1, 3},
    {"3x3/2 128->256 @4", 128, 4, 256, 3, 2, 1, 1},
    {"1x1/2 128->256 @4", 128, 4, 256, 1, 2, 0, 1},
    {"3x3 256->256 @2", 256, 2, 256, 3, 1, 1, 3},
    {"3x3/2 256->512 @2", 256, 2, 512, 3, 2, 1, 1},
    {"1x1/2 256->512 @2", 256, 2, 512, 1, 2, 0, 1},
    {"3x3 512->512 @1", 512, 1, 512, 3, 1, 1, 3},
};
/* resnet18 with the CIFAR stem at width 16 on 1 x 28 x 28 (`--recipe
 * fmnist-fast`): stages at 28, 14, 7, 4 with 16 to 128 channels. */
static const bench_shape narrow_shapes[] = {
    {"stem 3x3 1->16 @28", 1, 28, 16, 3, 1, 1, 1},
    {"3x3 16->16 @28", 16, 28, 16, 3, 1, 1, 4},
    {"3x3/2 16->32 @28", 16, 28, 32, 3, 2, 1, 1},
    {"1x1/2 16->32 @28", 16, 28, 32, 1, 2, 0, 1},
    {"3x3 32->32 @14", 32, 14, 32, 3, 1, 1, 3},
    {"3x3/2 32->64 @14", 32, 14, 64, 3, 2, 1, 1},
    {"1x1/2 32->64 @14", 32, 14, 64, 1, 2, 0, 1},
    {"3x3 64->64 @7", 64, 7, 64, 3, 1, 1, 3},
    {"3x3/2 64->128 @7", 64, 7, 128, 3, 2, 1, 1},
    {"1x1/2 64->128 @7", 64, 7, 128, 1, 2, 0, 1},
    {"3x3 128->128 @4", 128, 4, 128, 3, 1, 1, 3},
};
#define NPASS 3

static const char *pass_name[NPASS] = {"fwd", "bwd-data", "bwd-wt"};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *filled(size_t n, uint32_t seed) {
    float *p = rn_alloc((n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_backward: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((seed = seed * 1664525u + 1013904223u) >> 9) / 8388608.0f - 1.0f;
    return p;
}

/* Median seconds of one pass over shape s. */
static int use_min;
static const rn_kernels *kd; /* NULL: the default fp32 kernels */
static int wino = 1;         /* the data gradient by Winograd where it pays */

static double time_pass(const rn_conv_shape *s, int pass, int repeats) {
    size_t x_n = (size_t)s->cin * s->n * s->h * s->w;
    size_t w_n = (size_t)s->cout * s->cin * s->kh * s->kw;
    size_t y_n = (size_t)s->cout * s->n * s->ho * s->wo;
    size_t ws_f = conv2d_workspace_floats(kd, s), ws_b = conv2d_backward_workspace_floats(kd, s, wino);
    float *x = filled(x_n, 1), *w = filled(w_n, 2), *y = filled(y_n, 3);
    float *db = filled(s->cout, 4), *ws = filled(ws_f > ws_b ? ws_f : ws_b, 5);

    double t[64];
    if (repeats > 64)
        repeats = 64;
    for (int i = -1; i < repeats; i++) { /* one warm-up run */
        double t0 = now();
        if (pass == 0)
            conv2d_forward(kd, s, x, w, NULL, NULL, 0, y, ws);
        else if (pass == 1)
            conv2d_backward_data(kd, s, y, w, 0.0f, x, ws, wino);
        else
            conv2d_backward_weight(kd, s, x, y, w, db, ws, wino);
        if (i >= 0)
            t[i] = now() - t0;
    }
    qsort(t, repeats, sizeof(double), cmp_double);
    rn_free(x);
    rn_free(w);
    rn_free(y);
    rn_free(db);
    rn_free(ws);
    return use_min ? t[0] : t[repeats / 2];
}

static const char *data_route(const rn_conv_shape *s) {
    if (s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad == 0)
        return "gemm";
    if (s->stride == 1 && s->kh == s->kw && s->pad <= s->kh - 1) {
        /* the flipped convolution, by Winograd where the heuristic picks it (conv2d_backward.c) */
        rn_conv_shape f = {.n = s->n, .cin = s->cout, .h = s->ho, .w = s->wo, .cout = s->cin,
                           .kh = s->kh, .kw = s->kw, .stride = 1, .pad = s->kh - 1 - s->pad,
                           .groups = 1};
        conv2d_shape_init(&f);
        const int a = wino && s->groups == 1 ? (int)rn_conv_algo_choose(kd, &f) : -1;
        return a == RN_CONV_WINOGRAD ? "wino" : a == RN_CONV_WINOGRAD2 ? "wino2" : "flip";
    }
    return "col2im";
}

int main(int argc, char **argv) {
    int batches[8], nb = 0, threads[8], nt = 0, repeats = 5, fmnist = 0;
    const bench_shape *table = shapes;
    const char *net = "ResNet-18";
    int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc && nb < 8)
            batches[nb++] = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc && nt < 8)
            threads[nt++] = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-m"))
            use_min = 1;
        else if (!strcmp(argv[i], "-p") && i + 1 < argc && !strcmp(argv[i + 1], "bf16")) {
            i++;
            kd = rn_kernels_bf16(rn_kernels_default());
            wino = 0;
            if (!kd) {
                fprintf(stderr, "bench_backward: the %s kernels have no bf16 products\n",
                        rn_kernels_default()->name);
                return 2;
            }
        }
        else if (!strcmp(argv[i], "-f")) {
            fmnist = 1;
            table = fmnist_shapes;
            net = "d2l ResNet-18";
            nshapes = (int)(sizeof fmnist_shapes / sizeof fmnist_shapes[0]);
        } else if (!strcmp(argv[i], "-n")) {
            fmnist = 1;
            table = narrow_shapes;
            net = "CIFAR-stem w16";
            nshapes = (int)(sizeof narrow_shapes / sizeof narrow_shapes[0]);
        }
        else {
            fprintf(stderr,
                    "usage: bench_backward [-b batch]... [-t threads]... [-r repeats] [-m] [-f | -n] [-p bf16]\n");
            return 2;
        }
    }
    if (!nb)
        batches[nb++] = fmnist ? 256 : 32;
    if (!nt) {
        threads[nt++] = 1;
        threads[nt++] = 2;
    }
    if (repeats < 1)
        repeats = 1;

    printf("kernel: %s, %s of %d, GFLOP/s\n", rn_kernels_or_default(kd)->name, use_min ? "best" : "median",
           repeats);
    for (int bi = 0; bi < nb; bi++) {
        printf("\nbatch %d%-20s %6s %7s", batches[bi], "", "GFLOP", "route");
        for (int ti = 0; ti < nt; ti++)
            for (int p = 0; p < NPASS; p++)
                printf(" %5s %dT", pass_name[p] + (p ? 4 : 0), threads[ti]);
        printf("   ws MB\n");
        double total_flops = 0, total_time[8][NPASS] = {{0}};
        for (int si = 0; si < nshapes; si++) {
            const bench_shape *b = &table[si];
            rn_conv_shape s = {.n = batches[bi], .cin = b->cin, .h = b->hw, .w = b->hw,
                               .cout = b->cout, .kh = b->k, .kw = b->k, .stride = b->stride,
                               .pad = b->pad, .groups = 1};
            conv2d_shape_init(&s);
            double flops = 2.0 * s.cout * s.cin * s.kh * s.kw * s.n * s.ho * s.wo;
            total_flops += flops * b->count;
            printf("%-27s %6.2f %7s", b->name, flops * 1e-9, data_route(&s));
            for (int ti = 0; ti < nt; ti++) {
                rn_set_threads(threads[ti]);
                for (int p = 0; p < NPASS; p++) {
                    double t = time_pass(&s, p, repeats);
                    total_time[ti][p] += t * b->count;
                    printf(" %8.1f", flops / t * 1e-9);
                    fflush(stdout);
                }
            }
            printf(" %7.1f\n", conv2d_backward_workspace_floats(kd, &s, wino) * 4e-6);
        }
        char label[64];
        snprintf(label, sizeof label, "%s (weighted)", net);
        printf("%-27s %6.2f %7s", label, total_flops * 1e-9, "");
        for (int ti = 0; ti < nt; ti++)
            for (int p = 0; p < NPASS; p++)
                printf(" %8.1f", total_flops / total_time[ti][p] * 1e-9);
        printf("\n");
    }
    return 0;
}
