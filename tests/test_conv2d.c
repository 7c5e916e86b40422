/*
 * test_conv2d.c - every convolution algorithm (conv_algo.h) and
 * conv2d_forward against the conv2d_forward_ref oracle.
 *
 * Random shapes over kernel sizes 1/3/5/7, strides 1/2/3, padding 0..3,
 * groups 1/2/4, batch 1..3, odd and non-square inputs, with and without
 * bias, residual and relu; then fixed shapes (ResNet-like, wide rows,
 * several K blocks), on every kernel path the host supports and with every
 * registered algorithm on the shapes it supports; bitwise determinism across
 * thread counts. (Shape validation and the heuristic's choices: test_conv_algo.c.)
 * Tolerance: max |fast - ref| / max |ref| <= the algorithm's stated
 * tolerance (1e-5 for conv2d_forward and the GEMM algorithms).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/mem.h"
#include "ops/conv2d.h"
#include "ops/conv_algo.h"
#include "ops/gemm.h"
#include "ops/kernels.h"
#include "ops/ops.h"
#include "resnet.h"
#include "check.h"
#include "conv_case.h"

#define TOL 1e-5

static int passed, failed;

/* ---------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------- */

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint32_t rng_next(void) { return check_xorshift64(&rng_state); }

static int rng_int(int lo, int hi) { return lo + (int)(rng_next() % (uint32_t)(hi - lo + 1)); }

/* Uniform in [-1, 1). */
static float rng_float(void) { return (float)(rng_next() >> 8) / 8388608.0f - 1.0f; }

static float *random_buffer(size_t n) {
    float *p = rn_alloc((n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "test_conv2d: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = rng_float();
    return p;
}

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (ok)
        passed++;
    else
        failed++;
}

static double rel_error(const float *a, const float *b, size_t n) {
    double err = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= err))
            err = d; /* NaN sticks */
        if (fabs(b[i]) > scale)
            scale = fabs(b[i]);
    }
    return err / (scale > 1e-30 ? scale : 1.0);
}

/* ---------------------------------------------------------------------------
 * One comparison against the oracle
 * ------------------------------------------------------------------------- */

/* epi bits: 1 bias, 2 residual, 4 relu. */
static const rn_kernels *kd;     /* the kernel path under test */
static const rn_conv_algo *algo; /* the algorithm under test; NULL: conv2d_forward */
static int bf16_operands;        /* 1: x and w rounded to bf16 first (the test of a bf16
                                    descriptor's direct tile: the oracle then sums the products it
                                    multiplies, exactly, and only the sums' order differs) */

static void check_conv(rn_conv_shape s, int epi, const char *tag) {
    char what[200];
    if (!conv2d_shape_init(&s)) {
        snprintf(what, sizeof what, "%s shape rejected unexpectedly", tag);
        check(0, what);
        return;
    }
    if (algo && !algo->supports(&s))
        return;
    const conv_sizes sz = conv_case_sizes(&s);
    const size_t x_n = sz.x, w_n = sz.w, y_n = sz.y;
    float *x = random_buffer(x_n), *w = random_buffer(w_n);
    float *bias = random_buffer(s.cout), *res = random_buffer(y_n);
    float *y = rn_alloc(y_n * sizeof(float)), *yref = rn_alloc(y_n * sizeof(float));
    if (bf16_operands) {
        rn_round_bf16(x, x_n);
        rn_round_bf16(w, w_n);
    }
    size_t ws_n = algo ? algo->workspace_floats(kd, &s, rn_get_threads())
                       : conv2d_workspace_floats(kd, &s);
    float *ws = ws_n ? rn_alloc(ws_n * sizeof(float)) : NULL;
    float *prep = algo ? rn_alloc((algo->prepared_floats(kd, &s) + 1) * sizeof(float)) : NULL;
    for (size_t i = 0; i < y_n; i++)
        y[i] = NAN; /* the output must be fully written */

    const float *b = (epi & 1) ? bias : NULL, *r = (epi & 2) ? res : NULL;
    check_poison(ws, ws_n);
    check_invalid_clear(rn_get_threads());
    if (algo) {
        algo->prepare(kd, &s, w, prep);
        algo->forward(kd, &s, x, prep, b, r, (epi & 4) != 0, y, ws, rn_get_threads());
    } else {
        conv2d_forward(kd, &s, x, w, b, r, (epi & 4) != 0, y, ws);
    }
    const int touched_unwritten = check_invalid_raised(rn_get_threads());
    conv2d_forward_ref(&s, x, w, b, r, (epi & 4) != 0, yref);
    double err = rel_error(y, yref, y_n);
    const double tol = !algo ? TOL : rn_kernels_are_bf16(kd) ? algo->tolerance_bf16 : algo->tolerance;

    snprintf(what, sizeof what,
             "%s %s %s n=%d cin=%d %dx%d cout=%d k=%dx%d s=%d p=%d g=%d -> %dx%d bias=%d res=%d "
             "relu=%d err=%.2e",
             kd->name, algo ? algo->name : "conv2d_forward", tag, s.n, s.cin, s.h, s.w, s.cout, s.kh, s.kw, s.stride, s.pad, s.groups, s.ho,
             s.wo, epi & 1, (epi >> 1) & 1, (epi >> 2) & 1, err);
    check(err <= tol, what);
    snprintf(what, sizeof what, "%s %s %s: no arithmetic on workspace floats it did not write",
             kd->name, algo ? algo->name : "conv2d_forward", tag);
    check(!touched_unwritten, what);

    if (r) { /* again, written over the residual itself (how inference runs a block's end) */
        memcpy(y, res, y_n * sizeof(float));
        if (algo)
            algo->forward(kd, &s, x, prep, b, y, (epi & 4) != 0, y, ws, rn_get_threads());
        else
            conv2d_forward(kd, &s, x, w, b, y, (epi & 4) != 0, y, ws);
        err = rel_error(y, yref, y_n);
        snprintf(what, sizeof what, "%s %s %s in place over the residual err=%.2e", kd->name,
                 algo ? algo->name : "conv2d_forward", tag, err);
        check(err <= tol, what);
    }
    rn_free(x);
    rn_free(w);
    rn_free(bias);
    rn_free(res);
    rn_free(y);
    rn_free(yref);
    rn_free(ws);
    rn_free(prep);
}

/* A random shape with a non-empty output. */
static rn_conv_shape random_shape(void) {
    static const int ks[] = {1, 3, 5, 7};
    for (;;) {
        int groups = 1 << rng_int(0, 2);
        int k = ks[rng_int(0, 3)];
        rn_conv_shape s = {.n = rng_int(1, 3), .cin = groups * rng_int(1, 6),
                           .h = rng_int(1, 9) * 2 + 1, .w = rng_int(1, 12) * 2 + 1,
                           .cout = groups * rng_int(1, 11), .kh = k, .kw = k,
                           .stride = rng_int(1, 3), .pad = rng_int(0, 3), .groups = groups};
        if (rng_int(0, 3) == 0)
            s.kw = ks[rng_int(0, 3)]; /* a non-square kernel now and then */
        if (conv2d_shape_init(&s))
            return s;
    }
}

/* ---------------------------------------------------------------------------
 * Shape validation and determinism
 * ------------------------------------------------------------------------- */

/* The direct algorithm's output blocked by 16 channels (forward_blocked16) holds forward's
 * values bit for bit, on kernels k (bias and ReLU; no residual in that form). */
static void check_blocked16(const rn_kernels *k, rn_conv_shape s, const char *tag) {
    const rn_conv_algo *a = rn_conv_algo_get(RN_CONV_DIRECT);
    char what[200];
    if (!conv2d_shape_init(&s) || s.cout % 16) {
        snprintf(what, sizeof what, "blocked16 %s: shape rejected", tag);
        check(0, what);
        return;
    }
    const conv_sizes sz = conv_case_sizes(&s);
    float *x = random_buffer(sz.x), *w = random_buffer(sz.w), *bias = random_buffer(s.cout);
    float *y = rn_alloc(sz.y * sizeof(float)), *yb = rn_alloc(sz.y * sizeof(float));
    float *ws = rn_alloc((a->workspace_floats(k, &s, rn_get_threads()) + 1) * sizeof(float));
    float *prep = rn_alloc((a->prepared_floats(k, &s) + 1) * sizeof(float));
    a->prepare(k, &s, w, prep);
    a->forward(k, &s, x, prep, bias, NULL, 1, y, ws, rn_get_threads());
    a->forward_blocked16(k, &s, x, prep, bias, 1, yb, ws, rn_get_threads());
    const size_t P = (size_t)s.n * s.ho * s.wo;
    int same = 1;
    for (int c = 0; c < s.cout; c++)
        for (size_t q = 0; q < P; q++)
            same &= memcmp(&y[(size_t)c * P + q], &yb[((size_t)(c / 16) * P + q) * 16 + c % 16],
                           4) == 0;
    snprintf(what, sizeof what, "%s direct blocked by 16 channels = forward, bit for bit: %s",
             k->name, tag);
    check(same, what);
    rn_free(x), rn_free(w), rn_free(bias), rn_free(y), rn_free(yb), rn_free(ws), rn_free(prep);
}

static void check_blocked16_shapes(const rn_kernels *k) {
    check_blocked16(k, conv_case_shape(2, 3, 37, 41, 64, 7, 2, 3, 1), "stem");
    check_blocked16(k, conv_case_shape(1, 3, 64, 64, 16, 7, 2, 3, 1), "stem, 16 channels");
    check_blocked16(k, conv_case_shape(2, 20, 15, 13, 48, 3, 1, 1, 1), "3x3, 48 channels");
    check_blocked16(k, conv_case_shape(1, 160, 7, 7, 96, 3, 1, 1, 1), "3x3 by panel");
    check_blocked16(k, conv_case_shape(3, 24, 9, 9, 32, 1, 1, 0, 1), "1x1 flat");
    check_blocked16(k, conv_case_shape(3, 40, 13, 11, 32, 1, 2, 0, 1), "1x1/2 subsampled");
    check_blocked16(k, conv_case_shape(1, 40, 13, 11, 32, 1, 2, 0, 1), "1x1/2 one image, in place");
}

static void check_determinism(rn_conv_shape s) {
    conv2d_shape_init(&s);
    const conv_sizes sz = conv_case_sizes(&s);
    const size_t x_n = sz.x, w_n = sz.w, y_n = sz.y;
    float *x = random_buffer(x_n), *w = random_buffer(w_n), *bias = random_buffer(s.cout);
    float *y1 = rn_alloc(y_n * sizeof(float)), *yt = rn_alloc(y_n * sizeof(float));
    size_t ws_n = conv2d_workspace_floats(kd, &s);
    float *ws = ws_n ? rn_alloc(ws_n * sizeof(float)) : NULL;

    float *prep = NULL;
    if (algo) {
        rn_free(ws);
        size_t most = 0; /* the workspace for any of 1..3 threads */
        for (int t = 1; t <= 3; t++) {
            const size_t f = algo->workspace_floats(kd, &s, t);
            most = f > most ? f : most;
        }
        ws = rn_alloc((most + 1) * sizeof(float));
        prep = rn_alloc((algo->prepared_floats(kd, &s) + 1) * sizeof(float));
        algo->prepare(kd, &s, w, prep);
    }
    rn_set_threads(1);
    if (algo)
        algo->forward(kd, &s, x, prep, bias, NULL, 1, y1, ws, 1);
    else
        conv2d_forward(kd, &s, x, w, bias, NULL, 1, y1, ws);
    int same = 1;
    for (int t = 2; t <= 3; t++) {
        rn_set_threads(t);
        /* an algorithm's workspace cut for these threads (Winograd: split by tiles where it
         * pays), then for one (split by blocks) */
        for (int cut = t; cut >= 1; cut -= t - 1) {
            memset(yt, 0xFF, y_n * sizeof(float)); /* NaN: every output must be written */
            if (algo)
                algo->forward(kd, &s, x, prep, bias, NULL, 1, yt, ws, cut);
            else
                conv2d_forward(kd, &s, x, w, bias, NULL, 1, yt, ws);
            same &= memcmp(y1, yt, y_n * sizeof(float)) == 0;
        }
    }
#ifdef _OPENMP
    /* asked for 2 threads inside another parallel region, the algorithm gets a team of one
     * (nesting is off): the work cut for two threads must still all be done */
    if (algo && omp_get_max_active_levels() < 2) {
        rn_set_threads(2);
        memset(yt, 0xFF, y_n * sizeof(float));
#pragma omp parallel num_threads(2)
        if (omp_get_thread_num() == 0)
            algo->forward(kd, &s, x, prep, bias, NULL, 1, yt, ws, 2);
        same &= memcmp(y1, yt, y_n * sizeof(float)) == 0;
    }
#endif
    rn_free(prep);
    rn_set_threads(0);
    char what[128];
    snprintf(what, sizeof what, "%s %s determinism 1..3 threads cin=%d %dx%d cout=%d k=%d s=%d bitwise",
             kd->name, algo ? algo->name : "conv2d_forward", s.cin, s.h, s.w, s.cout, s.kh, s.stride);
    check(same, what);
    rn_free(x);
    rn_free(w);
    rn_free(bias);
    rn_free(y1);
    rn_free(yt);
    rn_free(ws);
}

/* ---------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------- */

/* Random shapes (fewer on the portable path), then the fixed ones. */
/* Infinite input values next to windows that do not cover them: no word of the bf16 pairs may
 * put one beside a zero weight it does not belong to (0 x inf is NaN), as the odd channel's
 * partner or as any padding of the pairs. Every output is finite exactly where the oracle's is. */
static void check_direct_infinite_input(rn_conv_shape s) {
    if (!conv2d_shape_init(&s))
        return;
    const conv_sizes sz = conv_case_sizes(&s);
    float *x = random_buffer(sz.x), *w = random_buffer(sz.w);
    float *y = rn_alloc(sz.y * sizeof(float)), *yref = rn_alloc(sz.y * sizeof(float));
    float *ws = rn_alloc((algo->workspace_floats(kd, &s, rn_get_threads()) + 1) * sizeof(float));
    float *prep = rn_alloc((algo->prepared_floats(kd, &s) + 1) * sizeof(float));
    rn_round_bf16(x, sz.x);
    rn_round_bf16(w, sz.w);
    for (size_t i = 0; i < sz.x; i += 37)
        x[i] = INFINITY;
    algo->prepare(kd, &s, w, prep);
    algo->forward(kd, &s, x, prep, NULL, NULL, 0, y, ws, rn_get_threads());
    conv2d_forward_ref(&s, x, w, NULL, NULL, 0, yref);
    size_t differ = 0;
    for (size_t i = 0; i < sz.y; i++)
        differ += !isfinite(y[i]) != !isfinite(yref[i]);
    char what[200];
    snprintf(what, sizeof what, "%s %s cin=%d %dx%d k=%dx%d s=%d: infinite inputs reach only the "
             "outputs whose windows hold them (%zu differ)", kd->name, algo->name, s.cin, s.h,
             s.w, s.kh, s.kw, s.stride, differ);
    check(differ == 0, what);
    rn_free(x), rn_free(w), rn_free(y), rn_free(yref), rn_free(ws), rn_free(prep);
}

/* Each channel of `chans` alone (the input zero elsewhere): its contribution, or none, is all
 * the output holds, so a channel that lands in the wrong word of V's bf16 pairs (the lone last
 * channel of an odd K block, a pair split between threads) or in none is a relative error of 1
 * or more, where among all the channels it would hide in the rounding. One channel's sum
 * averages nothing out (F(4x4) on bf16 products: up to 1.02e-1 alone), so the bound here is 3x
 * tolerance_bf16: 0.3 for F(4x4), 0.03 for F(2x2). */
static void check_single_channels(rn_conv_shape s, const int *chans, int count, const char *tag) {
    if (!conv2d_shape_init(&s) || !algo->supports(&s))
        return;
    const conv_sizes sz = conv_case_sizes(&s);
    float *w = random_buffer(sz.w), *x = rn_alloc(sz.x * sizeof(float));
    float *y = rn_alloc(sz.y * sizeof(float)), *yref = rn_alloc(sz.y * sizeof(float));
    float *ws = rn_alloc((algo->workspace_floats(kd, &s, rn_get_threads()) + 1) * sizeof(float));
    float *prep = rn_alloc((algo->prepared_floats(kd, &s) + 1) * sizeof(float));
    rn_round_bf16(w, sz.w);
    algo->prepare(kd, &s, w, prep);
    const size_t plane = (size_t)s.n * s.h * s.w;
    for (int i = 0; i < count; i++) {
        memset(x, 0, sz.x * sizeof(float));
        float *r = random_buffer(plane);
        rn_round_bf16(r, plane);
        memcpy(x + (size_t)chans[i] * plane, r, plane * sizeof(float));
        rn_free(r);
        algo->forward(kd, &s, x, prep, NULL, NULL, 0, y, ws, rn_get_threads());
        conv2d_forward_ref(&s, x, w, NULL, NULL, 0, yref);
        const double err = rel_error(y, yref, sz.y);
        char what[200];
        snprintf(what, sizeof what, "%s %s %s cin=%d: channel %d alone err=%.2e", kd->name,
                 algo->name, tag, s.cin, chans[i], err);
        check(err <= 3.0 * algo->tolerance_bf16, what);
    }
    rn_free(w), rn_free(x), rn_free(y), rn_free(yref), rn_free(ws), rn_free(prep);
}

static void run_cases(int randoms) {
    for (int i = 0; i < randoms; i++)
        check_conv(random_shape(), i % 8, "random");

    /* ResNet-like layers, small batch and channel counts. */
    check_conv(conv_case_shape(2, 3, 37, 41, 16, 7, 2, 3, 1), 7, "stem");
    check_conv(conv_case_shape(3, 1, 400, 400, 16, 3, 2, 1, 1), 7, "images over 0.5 MB (direct: one a round)");
    check_conv(conv_case_shape(2, 64, 14, 14, 64, 3, 1, 1, 1), 7, "3x3 K=576");
    check_conv(conv_case_shape(1, 32, 15, 15, 48, 3, 2, 1, 1), 5, "3x3/2");
    check_conv(conv_case_shape(3, 24, 9, 9, 40, 1, 1, 0, 1), 3, "1x1 pointwise");
    check_conv(conv_case_shape(2, 8, 50, 50, 16, 1, 1, 0, 1), 7, "1x1 over 4096 pixels (direct: rows)");
    check_conv(conv_case_shape(3, 40, 13, 11, 36, 1, 2, 0, 1), 7, "1x1/2 (direct: subsampled, flat)");
    check_conv(conv_case_shape(1, 16, 9, 9, 24, 1, 3, 0, 1), 3, "1x1/3 one image");
    check_conv(conv_case_shape(1, 40, 27, 29, 36, 1, 2, 0, 1), 7, "1x1/2 one image (direct: in place)");
    check_conv(conv_case_shape(2, 24, 9, 11, 40, 1, 2, 0, 1), 1, "1x1/2 downsample");
    check_conv(conv_case_shape(4, 12, 33, 35, 20, 1, 3, 0, 2), 7, "1x1/3 groups, subsampled");
    check_conv(conv_case_shape(5, 16, 56, 56, 24, 1, 2, 0, 1), 3, "1x1/2 wide N, subsampled");
    check_conv(conv_case_shape(1, 600, 3, 4, 20, 1, 1, 0, 2), 6, "1x1 K blocks, groups");
    check_conv(conv_case_shape(1, 8, 5, 150, 12, 3, 1, 1, 1), 7, "rows wider than a panel");
    check_conv(conv_case_shape(3, 5, 7, 1, 9, 1, 1, 0, 1), 2, "one column");
    check_conv(conv_case_shape(1, 2, 1, 1, 3, 1, 1, 0, 1), 7, "1x1 image");
    check_conv(conv_case_shape(1, 4, 3, 3, 4, 7, 1, 3, 1), 7, "kernel larger than image");
    check_conv(conv_case_shape(2, 16, 8, 8, 8, 3, 3, 2, 4), 7, "stride 3 groups 4");
    check_conv(conv_case_shape(1, 12, 9, 9, 12, 3, 1, 1, 12), 7, "depthwise");
    check_conv(conv_case_shape(2, 16, 32, 32, 20, 3, 1, 1, 1), 7, "wide N, packed A");
    check_conv(conv_case_shape(4, 8, 45, 45, 12, 5, 2, 2, 1), 3, "wide N stride 2");
    check_conv(conv_case_shape(8, 6, 40, 40, 10, 3, 3, 1, 2), 5, "wide N stride 3 groups");
    /* 3x3 stride 1 (Winograd's shapes): edge tiles, pads 0..2, channels across
     * K blocks and register tiles, tile counts that are no multiple of 8 */
    check_conv(conv_case_shape(1, 3, 9, 11, 5, 3, 1, 0, 1), 7, "3x3 p0 ragged tiles");
    check_conv(conv_case_shape(3, 7, 13, 6, 13, 3, 1, 2, 1), 6, "3x3 p2 batch 3");
    check_conv(conv_case_shape(1, 300, 7, 7, 70, 3, 1, 1, 1), 7, "3x3 7x7 C over a K block");
    check_conv(conv_case_shape(2, 32, 1, 1, 16, 3, 1, 1, 1), 7, "3x3 on 1x1");
    /* maps of at most 2x2 (the small-map product's): every tap live, K over several blocks,
     * strided to 1x1, an even window, maps of one row or column */
    check_conv(conv_case_shape(5, 40, 2, 2, 36, 3, 1, 1, 1), 7, "3x3 on 2x2");
    check_conv(conv_case_shape(3, 300, 2, 2, 70, 3, 1, 1, 1), 6, "3x3 on 2x2, K blocks");
    check_conv(conv_case_shape(4, 24, 2, 2, 20, 3, 2, 1, 1), 7, "3x3/2 on 2x2");
    check_conv(conv_case_shape(2, 9, 2, 2, 11, 2, 1, 0, 1), 3, "2x2 on 2x2");
    check_conv(conv_case_shape(3, 7, 1, 2, 13, 3, 1, 1, 1), 7, "3x3 on 1x2");
    check_conv(conv_case_shape(2, 5, 2, 1, 6, 5, 1, 2, 1), 5, "5x5 on 2x1");
    check_conv(conv_case_shape(3, 7, 1, 3, 9, 3, 1, 1, 1), 7, "3x3 on 1x3 (blocks of zeros)");
    check_conv(conv_case_shape(3, 6, 2, 2, 5, 1, 2, 0, 1), 3, "1x1/2 on 2x2 (blocks of zeros)");
    check_conv(conv_case_shape(1, 64, 56, 56, 64, 3, 1, 1, 1), 7, "ResNet 3x3 64@56");
    check_conv(conv_case_shape(2, 40, 17, 23, 96, 3, 1, 1, 1), 3, "3x3 odd sizes");
    check_conv(conv_case_shape(1, 96, 7, 7, 40, 3, 1, 1, 1), 7, "3x3 7x7 weights over the input (direct: by panel)");
    check_conv(conv_case_shape(2, 5, 9, 31, 24, 3, 1, 1, 1), 7, "rows of 31: tiles of 14, 14, 3");
    check_conv(conv_case_shape(1, 6, 20, 47, 40, 5, 3, 2, 1), 5, "stride 3, 40 channels: a whole panel and 8");
}

/* Each descriptor's F(2x2) tile transforms against the portable ones, bit for bit (the same
 * additions in the same order), on random patches that leave the image on every side and
 * random output blocks with and without bias, residual and ReLU. */
static void check_wino2_transforms(const rn_kernels *k) {
    const rn_kernels *p = rn_kernels_for(RN_ISA_PORTABLE);
    if (!k->wino2_in || k->wino2_in == p->wino2_in) /* none (bf16 descriptors), or the same */
        return;
    enum { H = 9, W = 11, STRIDE = 24 };
    float *x = random_buffer(H * W), *a = random_buffer(16 * STRIDE), *b = random_buffer(16 * STRIDE);
    /* magnitudes spread over 2^-12 .. 2^12, so that sums round (on 23-bit fixed-point values
     * they would be exact, and a reordering would go unseen) */
    for (int i = 0; i < H * W; i++)
        x[i] = ldexpf(x[i], rng_int(-12, 12));
    int in_same = 1, out_same = 1;
    for (int trial = 0; trial < 200; trial++) {
        rn_wino_in in = {.x = x, .ld = W};
        for (int l = 0; l < RN_WINO_LANES; l++) {
            const int y0 = rng_int(-2, H - 2), x0 = rng_int(-2, W - 2);
            in.origin[l] = (ptrdiff_t)y0 * W + x0;
            in.r0[l] = y0 < 0 ? -y0 : 0;
            in.r1[l] = H - y0 < 4 ? H - y0 : 4;
            in.cols[l] = 0;
            for (int q = 0; q < 4; q++)
                in.cols[l] |= (unsigned)(x0 + q >= 0 && x0 + q < W) << q;
        }
        memset(a, 0, 16 * STRIDE * sizeof(float));
        memset(b, 0, 16 * STRIDE * sizeof(float));
        k->wino2_in(&in, a, STRIDE);
        p->wino2_in(&in, b, STRIDE);
        in_same &= memcmp(a, b, 16 * STRIDE * sizeof(float)) == 0;

        float ya[RN_WINO_LANES][2 * W], yb[RN_WINO_LANES][2 * W], res[RN_WINO_LANES][2 * W];
        rn_wino_out oa = {.ld = W, .bias = trial % 3 ? ldexpf(rng_float(), rng_int(-12, 12)) : 0.0f,
                          .relu = trial % 2};
        for (int l = 0; l < RN_WINO_LANES; l++) {
            for (int i = 0; i < 2 * W; i++)
                ya[l][i] = yb[l][i] = 7.0f, res[l][i] = rng_float();
            oa.y[l] = l == 5 && trial % 4 == 0 ? NULL : ya[l];
            oa.res[l] = trial % 5 ? res[l] : NULL;
            oa.rows[l] = rng_int(1, 2);
            oa.cols[l] = rng_int(1, 2);
        }
        rn_wino_out ob = oa;
        for (int l = 0; l < RN_WINO_LANES; l++)
            ob.y[l] = oa.y[l] ? yb[l] : NULL;
        for (int i = 0; i < 16 * STRIDE; i++)
            a[i] = ldexpf(rng_float(), rng_int(-12, 12));
        k->wino2_out(a, STRIDE, &oa);
        p->wino2_out(a, STRIDE, &ob);
        out_same &= memcmp(ya, yb, sizeof ya) == 0;
    }
    char what[96];
    snprintf(what, sizeof what, "%s F(2x2) input transform = portable, bit for bit", k->name);
    check(in_same, what);
    snprintf(what, sizeof what, "%s F(2x2) output transform + epilogue = portable, bit for bit", k->name);
    check(out_same, what);
    rn_free(x), rn_free(a), rn_free(b);
}

/* A descriptor's weight transforms (wino_weights, wino2_weights) against the portable ones, bit
 * for bit, and the portable ones against G g G^T summed in long double from winograd.h's
 * matrices (within one float rounding of the exact product): random kernels of magnitudes
 * 2^-12 .. 2^12, lanes of zeros in between, rows ld apart (the floats between them untouched). */
static void check_wino_weights(const rn_kernels *k) {
    static const double G4[6][3] = {{1.0 / 4, 0, 0}, {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                    {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                    {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
    static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    static const float zeros[9];
    const rn_kernels *p = rn_kernels_for(RN_ISA_PORTABLE);
    enum { LD = 11 };
    int same = 1, exact = 1;
    for (int trial = 0; trial < 400; trial++) {
        const int m = trial % 2 ? 2 : 4, a = m + 2;
        float g[RN_WINO_LANES][9];
        const float *gl[RN_WINO_LANES];
        for (int l = 0; l < RN_WINO_LANES; l++) {
            for (int t = 0; t < 9; t++)
                g[l][t] = ldexpf(rng_float(), rng_int(-12, 12));
            gl[l] = trial % 9 == l ? zeros : g[l];
        }
        float got[36][LD], want[36][LD];
        for (int xi = 0; xi < 36; xi++)
            for (int l = 0; l < LD; l++)
                got[xi][l] = want[xi][l] = 7.0f;
        (m == 4 ? k->wino_weights : k->wino2_weights)(gl, &got[0][0], LD);
        (m == 4 ? p->wino_weights : p->wino2_weights)(gl, &want[0][0], LD);
        same &= memcmp(got, want, sizeof got) == 0;
        for (int xi = 0; xi < 36; xi++)
            for (int l = 0; l < LD; l++) {
                if (xi >= a * a || l >= RN_WINO_LANES) { /* past the points or lanes: untouched */
                    exact &= want[xi][l] == 7.0f;
                    continue;
                }
                long double u = 0;
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++)
                        u += (long double)(m == 4 ? G4[xi / a][i] * G4[xi % a][j]
                                                  : G2[xi / a][i] * G2[xi % a][j]) * gl[l][3 * i + j];
                const long double err = fabsl((long double)want[xi][l] - u);
                long double scale = 0;
                for (int t = 0; t < 9; t++)
                    scale += fabsl((long double)gl[l][t]);
                exact &= err <= scale * 0x1p-22L;
            }
    }
    char what[112];
    snprintf(what, sizeof what, "%s Winograd weight transforms = portable, bit for bit", k->name);
    check(same, what);
    check(exact, "portable Winograd weight transforms = G g G^T within a float's rounding");
}

/* A descriptor's two-group F(4x4) transforms (wino_in2, wino_out2) against two calls of its
 * 8-lane ones, bit for bit: random patches (inside, across the edges, wide rows), outputs with
 * partial blocks, residuals, ReLU and missing lanes. */
static void check_wino_pairs(const rn_kernels *k) {
    if (!k->wino_in2 || !k->wino_out2)
        return;
    enum { H = 13, W = 17, STRIDE = 40 };
    float *x = random_buffer(H * W), *a = random_buffer(36 * STRIDE), *b = random_buffer(36 * STRIDE);
    for (int i = 0; i < H * W; i++)
        x[i] = ldexpf(x[i], rng_int(-12, 12));
    int in_same = 1, out_same = 1;
    for (int trial = 0; trial < 200; trial++) {
        rn_wino_in in[2];
        for (int h = 0; h < 2; h++) {
            in[h] = (rn_wino_in){.x = x, .ld = W};
            for (int l = 0; l < RN_WINO_LANES; l++) {
                const int y0 = rng_int(-2, H - 2), x0 = rng_int(-2, W - 2);
                in[h].origin[l] = (ptrdiff_t)y0 * W + x0;
                in[h].r0[l] = y0 < 0 ? -y0 : 0;
                in[h].r1[l] = H - y0 < 6 ? H - y0 : 6;
                in[h].cols[l] = 0;
                for (int q = 0; q < 6; q++)
                    in[h].cols[l] |= (unsigned)(x0 + q >= 0 && x0 + q < W) << q;
                in[h].wide[l] = x0 >= 0 && x0 + 8 <= W;
            }
        }
        memset(a, 0, 36 * STRIDE * sizeof(float));
        memset(b, 0, 36 * STRIDE * sizeof(float));
        k->wino_in2(in, a, STRIDE);
        k->wino_in(&in[0], b, STRIDE);
        k->wino_in(&in[1], b + RN_WINO_LANES, STRIDE);
        in_same &= memcmp(a, b, 36 * STRIDE * sizeof(float)) == 0;

        float ya[2][RN_WINO_LANES][4 * W], yb[2][RN_WINO_LANES][4 * W], res[2][RN_WINO_LANES][4 * W];
        rn_wino_out oa[2], ob[2];
        const float bias = trial % 3 ? ldexpf(rng_float(), rng_int(-12, 12)) : 0.0f;
        for (int h = 0; h < 2; h++) {
            oa[h] = (rn_wino_out){.ld = W, .bias = bias, .relu = trial % 2};
            for (int l = 0; l < RN_WINO_LANES; l++) {
                for (int i = 0; i < 4 * W; i++)
                    ya[h][l][i] = yb[h][l][i] = 7.0f, res[h][l][i] = rng_float();
                oa[h].y[l] = l == 3 + h && trial % 4 == 0 ? NULL : ya[h][l];
                oa[h].res[l] = trial % 5 ? res[h][l] : NULL;
                oa[h].rows[l] = rng_int(1, 4);
                oa[h].cols[l] = rng_int(1, 4);
            }
            ob[h] = oa[h];
            for (int l = 0; l < RN_WINO_LANES; l++)
                ob[h].y[l] = oa[h].y[l] ? yb[h][l] : NULL;
        }
        for (int i = 0; i < 36 * STRIDE; i++)
            a[i] = ldexpf(rng_float(), rng_int(-12, 12));
        k->wino_out2(a, STRIDE, oa);
        k->wino_out(a, STRIDE, &ob[0]);
        k->wino_out(a + RN_WINO_LANES, STRIDE, &ob[1]);
        out_same &= memcmp(ya, yb, sizeof ya) == 0;
    }
    char what[112];
    snprintf(what, sizeof what, "%s F(4x4) input transform, two groups = two calls, bit for bit",
             k->name);
    check(in_same, what);
    snprintf(what, sizeof what, "%s F(4x4) output transform + epilogue, two groups = two calls, "
             "bit for bit", k->name);
    check(out_same, what);
    rn_free(x), rn_free(a), rn_free(b);
}

int main(void) {
    const rn_kernels *ks[RN_ISA_COUNT];
    const int nk = check_kernel_paths("test_conv2d", ks);
    for (int i = 0; i < nk; i++) {
        kd = ks[i];
        /* conv2d_forward, then every registered algorithm */
        for (int a = -1; a < RN_CONV_ALGO_COUNT; a++) {
            algo = a < 0 ? NULL : rn_conv_algo_get(a);
            if (a >= 0 && !algo)
                continue;
            if (i == 0)
                printf("test_conv2d: algorithm %s (tolerance %.0e)\n",
                       algo ? algo->name : "conv2d_forward", algo ? algo->tolerance : TOL);
            run_cases(kd->isa == RN_ISA_PORTABLE ? 6 : 40);
        }
        algo = NULL;
        check_determinism(conv_case_shape(2, 64, 28, 28, 64, 3, 1, 1, 1));
        check_determinism(conv_case_shape(1, 3, 64, 64, 64, 7, 2, 3, 1));
        algo = rn_conv_algo_get(RN_CONV_WINOGRAD);
        check_determinism(conv_case_shape(2, 64, 28, 28, 64, 3, 1, 1, 1));
        check_determinism(conv_case_shape(1, 160, 9, 9, 96, 3, 1, 1, 1));
        /* small transformed weights and many tiles: each thread its own blocks of tiles
         * (split_tiles), against one thread's block-by-block split */
        check_determinism(conv_case_shape(32, 32, 14, 14, 32, 3, 1, 1, 1));
        algo = rn_conv_algo_get(RN_CONV_WINOGRAD2);
        check_determinism(conv_case_shape(1, 256, 7, 7, 256, 3, 1, 1, 1));
        check_determinism(conv_case_shape(64, 32, 7, 7, 48, 3, 1, 1, 1));
        algo = rn_conv_algo_get(RN_CONV_DIRECT);
        check_determinism(conv_case_shape(2, 3, 64, 64, 64, 7, 2, 3, 1));
        check_determinism(conv_case_shape(3, 1, 400, 400, 16, 3, 2, 1, 1));
        check_determinism(conv_case_shape(1, 160, 7, 7, 96, 3, 1, 1, 1));
        check_blocked16_shapes(kd);
        /* the direct convolution on the path's bf16 descriptor: its tile on bf16 pairs */
        const rn_kernels *k32 = kd, *kb = rn_kernels_bf16(kd);
        if (kb && kb->direct) {
            kd = kb;
            bf16_operands = 1;
            printf("test_conv2d: %s direct on bf16 pairs, operands rounded to bf16 (tolerance "
                   "%.0e)\n", kd->name, algo->tolerance);
            run_cases(kd->isa == RN_ISA_PORTABLE ? 6 : 40);
            check_determinism(conv_case_shape(2, 3, 64, 64, 64, 7, 2, 3, 1));
            check_determinism(conv_case_shape(1, 160, 7, 7, 96, 3, 1, 1, 1));
            check_blocked16_shapes(kd);
            /* windows on one or three channels: an odd channel's partner is zeros */
            check_conv(conv_case_shape(2, 1, 40, 38, 64, 7, 2, 3, 1), 7, "1-channel 7x7/2 stem");
            check_conv(conv_case_shape(1, 3, 61, 64, 64, 7, 2, 3, 1), 5, "3-channel 7x7/2 stem");
            check_conv(conv_case_shape(3, 1, 12, 13, 16, 3, 1, 1, 1), 7, "1-channel 3x3");
            check_conv(conv_case_shape(2, 3, 9, 10, 8, 2, 1, 0, 1), 3, "3-channel 2x2 (even rows)");
            /* the lone channel's row pairs: its padded row's first and last columns, a map one
             * column wide, no padding, an even window (no odd last column), a 1x1 (none) */
            check_conv(conv_case_shape(2, 5, 11, 1, 16, 3, 1, 1, 1), 7, "5-channel 3x3, 1 wide");
            check_conv(conv_case_shape(2, 3, 10, 9, 16, 5, 1, 0, 1), 3, "3-channel 5x5, no padding");
            check_conv(conv_case_shape(1, 1, 9, 12, 16, 4, 2, 1, 1), 5, "1-channel 4x4/2");
            check_conv(conv_case_shape(2, 3, 9, 8, 16, 1, 1, 1, 1), 7, "3-channel 1x1, padded");
            check_direct_infinite_input(conv_case_shape(1, 3, 23, 29, 32, 7, 2, 3, 1));
            check_direct_infinite_input(conv_case_shape(2, 1, 17, 15, 16, 3, 1, 1, 1));
            check_direct_infinite_input(conv_case_shape(1, 1, 9, 1, 16, 7, 1, 3, 1));
            /* the small-map product on bf16 operands (a GEMM on the bf16 kernels) */
            algo = rn_conv_algo_get(RN_CONV_SMALLMAP);
            printf("test_conv2d: %s %s on bf16 products, operands rounded to bf16 (tolerance "
                   "%.0e)\n", kd->name, algo->name, algo->tolerance_bf16);
            run_cases(kd->isa == RN_ISA_PORTABLE ? 6 : 40);
            /* Winograd's products on the bf16 descriptor (where it has them: not on matrix
             * tiles), U and V rounded to bf16 pairs: held to tolerance_bf16 */
            for (int a = RN_CONV_WINOGRAD; a <= RN_CONV_WINOGRAD2; a++) {
                if (rn_conv_bf16_kernels(kb, a) != kb)
                    continue;
                algo = rn_conv_algo_get(a);
                printf("test_conv2d: %s %s on bf16 products, operands rounded to bf16 "
                       "(tolerance %.0e)\n", kd->name, algo->name, algo->tolerance_bf16);
                run_cases(kd->isa == RN_ISA_PORTABLE ? 6 : 40);
                /* K blocks of an odd count (C = 342: two of 171 on 192-deep blocks): pairs
                 * from each block's first channel */
                check_conv(conv_case_shape(1, 342, 9, 9, 24, 3, 1, 1, 1), 7, "3x3 odd K blocks");
                check_conv(conv_case_shape(2, 513, 7, 7, 16, 3, 1, 1, 1), 3, "3x3 three K blocks");
                /* each block's first, last and lone channels alone (192-deep blocks: 342 is two
                 * of 171, 513 three of 171), on 1 and 2 threads (a share starts on a pair) */
                static const int c342[] = {0, 1, 169, 170, 171, 172, 340, 341};
                static const int c513[] = {170, 171, 341, 342, 511, 512};
                for (int t = 1; t <= 2; t++) {
                    rn_set_threads(t);
                    check_single_channels(conv_case_shape(1, 342, 9, 9, 24, 3, 1, 1, 1), c342, 8,
                                          t == 1 ? "1 thread" : "2 threads");
                    check_single_channels(conv_case_shape(1, 513, 7, 7, 16, 3, 1, 1, 1), c513, 6,
                                          t == 1 ? "1 thread" : "2 threads");
                }
                rn_set_threads(0);
                check_determinism(conv_case_shape(2, 64, 28, 28, 64, 3, 1, 1, 1));
                check_determinism(conv_case_shape(1, 342, 9, 9, 40, 3, 1, 1, 1));
                check_determinism(conv_case_shape(32, 32, 14, 14, 32, 3, 1, 1, 1));
                check_determinism(conv_case_shape(1, 255, 7, 7, 256, 3, 1, 1, 1));
            }
            bf16_operands = 0;
            kd = k32;
        }
        algo = NULL;
        check_wino2_transforms(kd);
        check_wino_pairs(kd);
        check_wino_weights(kd);
    }

    printf("test_conv2d: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
