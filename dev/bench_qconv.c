/*
 * bench_qconv.c - the int8 convolution (ops/qconv.h) on the ResNet-18 layer
 * shapes: each timed on random data, best of `repeats` runs, shown as
 * GMAC/s (the convolution's multiply-adds / best time), beside the median
 * time, and as a share of the network's int8 convolution time. test_qconv
 * checks the results byte for byte; this only times. RN_ISA picks the
 * kernels (AVX-512 VNNI, AVX2, portable).
 *
 *     build/dev/bench_qconv [-b batch] [-t threads] [-r repeats] [-l layer: its row, from 0]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/mem.h"
#include "ops/kernels.h"
#include "ops/qconv.h"
#include "resnet.h"

typedef struct shape {
    const char *name;
    int cin, hw, cout, k, stride, plain, count;
} shape;

static const shape RESNET18[] = {
    {"stem 7x7/2 3->64 @224 (plain input)", 3, 224, 64, 7, 2, 1, 1},
    {"3x3 64->64 @56", 64, 56, 64, 3, 1, 0, 4},
    {"3x3/2 64->128 @56", 64, 56, 128, 3, 2, 0, 1},
    {"1x1/2 64->128 @56", 64, 56, 128, 1, 2, 0, 1},
    {"3x3 128->128 @28", 128, 28, 128, 3, 1, 0, 3},
    {"3x3/2 128->256 @28", 128, 28, 256, 3, 2, 0, 1},
    {"1x1/2 128->256 @28", 128, 28, 256, 1, 2, 0, 1},
    {"3x3 256->256 @14", 256, 14, 256, 3, 1, 0, 3},
    {"3x3/2 256->512 @14", 256, 14, 512, 3, 2, 0, 1},
    {"1x1/2 256->512 @14", 256, 14, 512, 1, 2, 0, 1},
    {"3x3 512->512 @7", 512, 7, 512, 3, 1, 0, 3},
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Best seconds of `repeats` runs of one shape, and their median in *median. */
static double time_shape(const rn_kernels *k, const shape *sh, int n, int repeats, double *macs,
                         double *median) {
    rn_conv_shape s = {.n = n, .cin = sh->cin, .h = sh->hw, .w = sh->hw, .cout = sh->cout,
                       .kh = sh->k, .kw = sh->k, .stride = sh->stride, .pad = sh->k / 2, .groups = 1};
    conv2d_shape_init(&s);
    int c16 = !sh->plain;
    rn_qconv c;
    rn_qconv_init(&c, &s, c16, NULL, 0);
    int cb = (int)(rn_qconv_channels(&c) / 16);
    size_t nw = (size_t)s.cout * s.cin * s.kh * s.kw;
    int8_t *wq = malloc(nw), *packed = rn_alloc(rn_qconv_packed_bytes(&c));
    int32_t *comp = calloc((size_t)cb * 16, sizeof *comp);
    float *mult = calloc((size_t)cb * 16, sizeof *mult), *bias = calloc((size_t)cb * 16, sizeof *bias);
    for (size_t i = 0; i < nw; i++)
        wq[i] = (int8_t)(rand() % 255 - 127);
    for (int i = 0; i < cb * 16; i++)
        mult[i] = 1e-4f;
    c.w = packed;
    rn_qconv_pack_weights(&c, wq, 3, packed, comp);
    c.rq = (rn_qreq){.comp = comp, .mult = mult, .bias = bias, .inv_out = 1.0f, .relu = 1};
    size_t pix = (size_t)n * s.h * s.w;
    size_t xb = c16 ? (size_t)rn_q_cblocks(s.cin) * 16 * pix : (size_t)s.cin * pix;
    uint8_t *x = rn_alloc(xb), *y = rn_alloc((size_t)cb * 16 * n * s.ho * s.wo);
    uint8_t *ws = rn_alloc(rn_qconv_workspace_bytes(k, &c, rn_get_threads()) + 64);
    for (size_t i = 0; i < xb; i++)
        x[i] = (uint8_t)(rand() & 127);
    double *dts = malloc((size_t)repeats * sizeof *dts);
    for (int r = 0; r < repeats; r++) {
        double t0 = now();
        rn_qconv_forward(k, &c, n, x, 3, NULL, y, ws);
        dts[r] = now() - t0;
    }
    qsort(dts, (size_t)repeats, sizeof *dts, cmp_double);
    double best = dts[0];
    *median = dts[repeats / 2];
    free(dts);
    *macs = (double)s.cout * s.cin * s.kh * s.kw * n * s.ho * s.wo;
    free(wq), free(comp), free(mult), free(bias);
    rn_free(packed), rn_free(x), rn_free(y), rn_free(ws);
    return best;
}

int main(int argc, char **argv) {
    int n = 1, threads = 2, repeats = 10, only = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (argv[i][1] == 'b')
            n = atoi(argv[i + 1]);
        else if (argv[i][1] == 't')
            threads = atoi(argv[i + 1]);
        else if (argv[i][1] == 'r')
            repeats = atoi(argv[i + 1]);
        else if (argv[i][1] == 'l')
            only = atoi(argv[i + 1]);
    }
    if (n < 1 || threads < 1 || repeats < 1) {
        fprintf(stderr, "usage: bench_qconv [-b batch] [-t threads] [-r repeats] [-l layer]\n");
        return 2;
    }
    rn_set_threads(threads);
    const rn_kernels *k = rn_kernels_default();
    printf("int8 tile %s on %s, batch %d, %d threads, best of %d\n", k->q_name, rn_cpu_model(), n,
           threads, repeats);
    int count = (int)(sizeof RESNET18 / sizeof RESNET18[0]);
    double secs[16], med[16], macs[16], total = 0.0, total_macs = 0.0;
    for (int i = 0; i < count; i++) {
        if (only >= 0 && i != only) {
            secs[i] = med[i] = macs[i] = 0.0;
            continue;
        }
        secs[i] = time_shape(k, &RESNET18[i], n, repeats, &macs[i], &med[i]);
        total += secs[i] * RESNET18[i].count;
        total_macs += macs[i] * RESNET18[i].count;
    }
    printf("%-38s %5s %10s %10s %9s %7s\n", "layer", "count", "ms each", "median", "GMAC/s",
           "share");
    for (int i = 0; i < count; i++)
        if (only < 0 || i == only)
            printf("%-38s %5d %10.3f %10.3f %9.1f %6.1f%%\n", RESNET18[i].name, RESNET18[i].count,
               secs[i] * 1e3, med[i] * 1e3, macs[i] / secs[i] / 1e9,
               100.0 * secs[i] * RESNET18[i].count / total);
    printf("all convolutions: %.2f ms, %.1f GMAC/s\n", total * 1e3, total_macs / total / 1e9);
    return 0;
}
