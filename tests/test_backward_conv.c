/*
 * test_backward_conv.c - the convolutions' fast backward routes against the
 * plain-C reference, and their thread-count determinism, on every kernel
 * path the host supports.
 *
 *   1. Fast against reference on random and fixed shapes: every data route
 *      (flipped GEMM, by phases, col2im, pointwise, Winograd and direct with
 *      `wino`), both weight-product orientations, chunking, the direct
 *      weight gradient's strips and segments, Winograd's weight gradient,
 *      cropped kernels, groups, beta 0 and 1; max |fast - ref| / max |ref|
 *      <= 1e-5 (1e-4 where Winograd F(4x4) computes), the workspace poisoned
 *      (no float read before written).
 *   2. 1, 2 and 3 threads give bitwise identical gradients (an uneven split
 *      of the work).
 * The gradients themselves (reference against finite differences):
 * test_backward.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "ops/conv2d.h"
#include "ops/conv_algo.h"
#include "ops/conv_wgrad.h"
#include "ops/kernels.h"
#include "ops/ops.h"
#include "resnet.h"
#include "check.h"
#include "conv_case.h"

static const rn_kernels *kd; /* the kernel path under test (NULL: the default) */
static int wino;             /* the data gradient by Winograd or direct where they pay (conv2d.h) */

#define FAST_TOL 1e-5
#define WINO_TOL 1e-4 /* Winograd F(4x4, 3x3): conv_algo.h */

/* ---------------------------------------------------------------------------
 * 1. Fast convolution backward against the reference
 * ------------------------------------------------------------------------- */

/* 1 when kd's strips read dy in place (AVX-512), 0 when they read a copy (AVX2, portable) */
static int reads_dy_in_place(const rn_kernels *kd) { return rn_kernels_or_default(kd)->wgrad_rows; }

static void fast_vs_ref_conv(rn_conv_shape s, float beta, const char *tag) {
    conv_sizes sz;
    if (!conv_case_init(&s, tag, &sz))
        return;
    const size_t x_n = sz.x, w_n = sz.w, y_n = sz.y;
    float *x = check_frand(x_n, -1, 1), *w = check_frand(w_n, -1, 1), *dy = check_frand(y_n, -1, 1);
    float *dx0 = check_frand(x_n, -1, 1), *dx1 = check_floats(x_n), *dx2 = check_floats(x_n);
    float *dw1 = check_floats(w_n), *dw2 = check_floats(w_n), *db1 = check_floats(s.cout), *db2 = check_floats(s.cout);
    float *ws = check_floats(conv2d_backward_workspace_floats(kd, &s, wino));

    memcpy(dx1, dx0, x_n * sizeof(float));
    if (beta != 0.0f)
        memcpy(dx2, dx0, x_n * sizeof(float));
    else
        for (size_t i = 0; i < x_n; i++)
            dx2[i] = NAN; /* beta 0: dx must not be read */
    for (size_t i = 0; i < w_n; i++)
        dw2[i] = NAN;
    conv2d_backward_data_ref(&s, dy, w, beta, dx1);
    conv2d_backward_weight_ref(&s, x, dy, dw1, db1);
    const size_t ws_n = conv2d_backward_workspace_floats(kd, &s, wino);
    check_poison(ws, ws_n);
    check_invalid_clear(rn_get_threads());
    conv2d_backward_data(kd, &s, dy, w, beta, dx2, ws, wino);
    const int data_unwritten = check_invalid_raised(rn_get_threads());
    check_poison(ws, ws_n);
    check_invalid_clear(rn_get_threads());
    conv2d_backward_weight(kd, &s, x, dy, dw2, db2, ws, wino);
    const int weight_unwritten = check_invalid_raised(rn_get_threads());
    CHECK(!data_unwritten && !weight_unwritten,
          "%s: no arithmetic on workspace floats not written first (data %d, weight %d)", tag,
          data_unwritten, weight_unwritten);
    double ex = check_rel_err(dx2, dx1, x_n), ew = check_rel_err(dw2, dw1, w_n);
    /* db's error against the scale of its sums' terms (sum of |dy| over a channel): a
     * channel's sum may cancel to near zero (one output channel of a few hundred values),
     * where float's rounding is large relative to the sum itself */
    double scale = 1e-30, eb = 0.0;
    for (int c = 0; c < s.cout; c++) {
        double a = 0.0;
        for (size_t j = 0; j < y_n / (size_t)s.cout; j++)
            a += fabs((double)dy[(size_t)c * (y_n / (size_t)s.cout) + j]);
        scale = a > scale ? a : scale;
        const double e = fabs((double)db2[c] - (double)db1[c]);
        eb = e > eb || e != e ? (e != e ? INFINITY : e) : eb;
    }
    eb /= scale;
    if (strstr(tag, "direct wgrad") || strstr(tag, "weight chunks") || strstr(tag, "chunk ends") ||
        strstr(tag, "stem 7x7/2"))
        CHECK(conv2d_backward_weight_direct(kd, &s) ==
                  (strstr(tag, "direct wgrad") != NULL || strstr(tag, "stem 7x7/2") != NULL),
              "%s: the weight gradient by the %s", tag, strstr(tag, "direct") ? "direct strips" : "GEMM");
    if (strstr(tag, "segments")) {
        conv_wgrad_plan d;
        CHECK(conv_wgrad_plan_for(rn_kernels_or_default(kd), &s, &d) && d.seg_rows < s.ho &&
                  d.copy_dy == (strstr(tag, "copied") != NULL || !reads_dy_in_place(kd)),
              "%s: the strips go a segment at a time, dy %s", tag,
              strstr(tag, "copied") || !reads_dy_in_place(kd) ? "copied" : "in place");
    }
    /* with wino, a wide 3x3 stride-1 layer's weight gradient by Winograd too */
    const int wgrad_wino = wino && conv2d_backward_weight_winograd(kd, &s);
    CHECK(ex <= (wino ? WINO_TOL : FAST_TOL) && ew <= (wgrad_wino ? WINO_TOL : FAST_TOL) &&
              eb <= FAST_TOL,
          "%s%s n=%d cin=%d %dx%d cout=%d k=%dx%d s=%d p=%d g=%d beta=%g: dx %.1e dw %.1e db %.1e",
          wino ? "winograd/direct " : "", tag, s.n, s.cin, s.h, s.w, s.cout, s.kh, s.kw, s.stride, s.pad, s.groups, beta, ex, ew,
          eb);
    rn_free(x), rn_free(w), rn_free(dy), rn_free(dx0), rn_free(dx1), rn_free(dx2), rn_free(dw1),
        rn_free(dw2), rn_free(db1), rn_free(db2), rn_free(ws);
}

static void fast_vs_ref_random(int count) {
    static const int ks[] = {1, 3, 7};
    for (int i = 0; i < count;) {
        int groups = check_int(1, 2), k = ks[check_int(0, 2)];
        rn_conv_shape s = {.n = check_int(1, 3), .cin = groups * check_int(1, 5),
                           .h = check_int(1, 15), .w = check_int(1, 15),
                           .cout = groups * check_int(1, 6), .kh = k, .kw = k,
                           .stride = check_int(1, 2), .pad = check_int(0, 3), .groups = groups};
        if (check_int(0, 4) == 0)
            s.kw = ks[check_int(0, 2)];
        if (!conv2d_shape_init(&s))
            continue;
        fast_vs_ref_conv(s, (float)(i % 2), "random");
        i++;
    }
}

/* The data gradient by phases (strided windows on many input channels) on random shapes:
 * strides 2 and 3, windows 2 to 7, groups, ragged phases (odd sizes); `count` shapes that take
 * it, and the shapes that do not fit it (a phase's window starting higher than another's) go
 * through col2im. */
/* Both gradients by the small-map product on bf16 kernels (bf16 products), against the
 * reference on operands already rounded to bf16: the products are then exact, only the fp32
 * sums' order differs. */
static void smallmap_bf16_vs_ref(const rn_kernels *kb) {
    if (!kb)
        return;
    rn_conv_shape s = conv_case_shape(128, 40, 2, 2, 36, 3, 1, 1, 1);
    conv_sizes sz;
    if (!conv_case_init(&s, "smallmap bf16", &sz))
        return;
    float *x = check_frand(sz.x, -1, 1), *w = check_frand(sz.w, -1, 1),
          *dy = check_frand(sz.y, -1, 1);
    rn_round_bf16(x, sz.x), rn_round_bf16(w, sz.w), rn_round_bf16(dy, sz.y);
    float *dx1 = check_floats(sz.x), *dx2 = check_floats(sz.x), *dw1 = check_floats(sz.w),
          *dw2 = check_floats(sz.w), *db1 = check_floats(s.cout), *db2 = check_floats(s.cout);
    float *ws = check_floats(conv2d_backward_workspace_floats(kb, &s, 1));
    conv2d_backward_data_ref(&s, dy, w, 0.0f, dx1);
    conv2d_backward_weight_ref(&s, x, dy, dw1, db1);
    conv2d_backward_data(kb, &s, dy, w, 0.0f, dx2, ws, 1);
    conv2d_backward_weight(kb, &s, x, dy, dw2, db2, ws, 1);
    const double ex = check_rel_err(dx2, dx1, sz.x), ew = check_rel_err(dw2, dw1, sz.w);
    CHECK(conv2d_backward_by_smallmap(kb, &s) && ex <= FAST_TOL && ew <= FAST_TOL,
          "%s: 3x3 on 2x2 by the small-map product on bf16 operands: dx %.1e dw %.1e", kb->name,
          ex, ew);
    rn_free(x), rn_free(w), rn_free(dy), rn_free(dx1), rn_free(dx2), rn_free(dw1), rn_free(dw2),
        rn_free(db1), rn_free(db2), rn_free(ws);
}

/* The data gradient by Winograd on bf16 kernels: on bf16 products (but on matrix tiles, AMX,
 * whose Winograd keeps fp32 ones), as training runs it, within the algorithm's bf16 tolerance
 * of the reference on operands already rounded to bf16, and further from it than the same
 * route on fp32 products (the products' rounding happened). */
static void winograd_data_bf16_vs_ref(const rn_kernels *kb) {
    if (!kb || !kd->wino_in)
        return;
    rn_conv_shape s = conv_case_shape(4, 64, 16, 16, 64, 3, 1, 1, 1);
    conv_sizes sz;
    if (!conv_case_init(&s, "winograd data bf16", &sz))
        return;
    const rn_kernels *ka = NULL, *k32 = NULL;
    const int a = conv2d_backward_data_algo(kb, &s, &ka);
    const int a32 = conv2d_backward_data_algo(kd, &s, &k32);
    CHECK(rn_conv_algo_is_winograd(a) && a32 == a &&
              ka == (kb->matrix_tiles ? rn_kernels_fp32(kb) : kb),
          "%s: the data gradient of 3x3 64->64 at 16x16 by Winograd (%d) on %s products", kb->name,
          a, kb->matrix_tiles ? "fp32" : "bf16");
    float *w = check_frand(sz.w, -1, 1), *dy = check_frand(sz.y, -1, 1);
    rn_round_bf16(w, sz.w), rn_round_bf16(dy, sz.y);
    float *dx_ref = check_floats(sz.x), *dx_b = check_floats(sz.x), *dx_f = check_floats(sz.x);
    const size_t wsn = conv2d_backward_workspace_floats(kb, &s, 1);
    const size_t wsf = conv2d_backward_workspace_floats(kd, &s, 1);
    float *ws = check_floats(wsn > wsf ? wsn : wsf);
    conv2d_backward_data_ref(&s, dy, w, 0.0f, dx_ref);
    conv2d_backward_data(kb, &s, dy, w, 0.0f, dx_b, ws, 1);
    conv2d_backward_data(kd, &s, dy, w, 0.0f, dx_f, ws, 1);
    const double eb = check_rel_err(dx_b, dx_ref, sz.x), ef = check_rel_err(dx_f, dx_ref, sz.x);
    const rn_conv_algo *al = rn_conv_algo_get(a >= 0 ? a : RN_CONV_WINOGRAD);
    CHECK(eb <= (kb->matrix_tiles ? al->tolerance : al->tolerance_bf16) && ef <= WINO_TOL &&
              (kb->matrix_tiles || eb > 10 * ef),
          "%s: the data gradient by %s on %s products within its tolerance: %.1e (fp32 "
          "products %.1e)", kb->name, al->name, kb->matrix_tiles ? "fp32" : "bf16", eb, ef);
    rn_free(w), rn_free(dy), rn_free(dx_ref), rn_free(dx_b), rn_free(dx_f), rn_free(ws);
}

/* The weight product by col (K < cout) on bf16 kernels without matrix tiles: up to 128 rows of
 * im2col on their fp32 twin (conv2d_backward.c, WT_FP32_MAX_K), so bitwise the fp32 kernels'
 * gradient; past it on bf16 products, within bf16's rounding of it but not equal. */
static void weight_by_col_bf16(const rn_kernels *kb) {
    if (!kb || kb->matrix_tiles)
        return;
    static const int cins[] = {64, 128, 256};
    for (int i = 0; i < 3; i++) {
        rn_conv_shape s = conv_case_shape(2, cins[i], 14, 14, 2 * cins[i], 1, 2, 0, 1);
        conv_sizes sz;
        if (!conv_case_init(&s, "weight by col bf16", &sz))
            return;
        float *x = check_frand(sz.x, -1, 1), *dy = check_frand(sz.y, -1, 1);
        float *dwb = check_floats(sz.w), *dwf = check_floats(sz.w), *db = check_floats(s.cout);
        const size_t wsb = conv2d_backward_workspace_floats(kb, &s, 1);
        const size_t wsf = conv2d_backward_workspace_floats(kd, &s, 1);
        float *ws = check_floats(wsb > wsf ? wsb : wsf);
        conv2d_backward_weight(kb, &s, x, dy, dwb, db, ws, 1);
        conv2d_backward_weight(kd, &s, x, dy, dwf, db, ws, 1);
        const int same = !memcmp(dwb, dwf, sz.w * sizeof(float));
        const double e = check_rel_err(dwb, dwf, sz.w);
        CHECK(conv2d_backward_weight_fp32(kb, &s, 1) == (cins[i] <= 128) &&
                  (cins[i] <= 128 ? same : !same && e <= 1e-2),
              "%s: the weight gradient of 1x1/2 %d->%d %s (%.1e)", kb->name, cins[i],
              2 * cins[i], cins[i] <= 128 ? "on fp32 products, bitwise" : "on bf16 products", e);
        rn_free(x), rn_free(dy), rn_free(dwb), rn_free(dwf), rn_free(db), rn_free(ws);
    }
}

static void phases_vs_ref_random(int count) {
    static const int ks[] = {2, 3, 4, 5, 7};
    int taken = 0, other = 0;
    while (taken < count) {
        const int groups = check_int(1, 2), k = ks[check_int(0, 4)];
        rn_conv_shape s = {.n = check_int(1, 2), .cin = groups * check_int(128, 134),
                           .h = check_int(2, 13), .w = check_int(2, 13),
                           .cout = groups * check_int(1, 5), .kh = k, .kw = k,
                           .stride = check_int(2, 3), .pad = check_int(0, k - 1),
                           .groups = groups};
        if (!conv2d_shape_init(&s))
            continue;
        if (!conv2d_backward_data_by_phases(kd, &s)) {
            if (other++ < count / 4)
                fast_vs_ref_conv(s, 1.0f, "strided, not by phases");
            continue;
        }
        fast_vs_ref_conv(s, (float)(taken % 2), "by phases");
        taken++;
    }
    CHECK(other > 0, "random strided shapes: %d by phases, %d not", taken, other);
    rn_conv_shape r = conv_case_shape(2, 256, 14, 14, 24, 3, 2, 1, 1), narrow = conv_case_shape(2, 64, 14, 14, 24, 3, 2, 1, 1),
                  flat = conv_case_shape(2, 256, 14, 14, 24, 3, 1, 1, 1),
                  tiny = conv_case_shape(2, 256, 4, 4, 24, 3, 2, 1, 1);
    conv2d_shape_init(&r), conv2d_shape_init(&narrow), conv2d_shape_init(&flat),
        conv2d_shape_init(&tiny);
    CHECK(conv2d_backward_data_by_phases(kd, &r) && !conv2d_backward_data_by_phases(kd, &narrow) &&
              !conv2d_backward_data_by_phases(kd, &flat) &&
              !conv2d_backward_data_by_phases(kd, &tiny),
          "by phases: 3x3/2 on 256 channels yes, on 64 no, stride 1 no, on a 4x4 map "
          "(phases of 2 columns) no");
    fast_vs_ref_conv(r, 1.0f, "resnet 3x3/2 by phases");
}

static void fast_vs_ref_fixed(void) {
    /* ResNet-like: flipped 3x3, strided 3x3 and 1x1 (col2im), pointwise */
    fast_vs_ref_conv(conv_case_shape(2, 32, 14, 14, 32, 3, 1, 1, 1), 0.0f, "resnet 3x3");
    /* where the heuristic picks Winograd F(2x2) (with wino, for the data gradient too): a
     * last stage at batch 1, and 2x2 maps (the 28x28 models' third stage) */
    fast_vs_ref_conv(conv_case_shape(1, 256, 7, 7, 256, 3, 1, 1, 1), 1.0f, "last stage 3x3");
    fast_vs_ref_conv(conv_case_shape(16, 256, 2, 2, 256, 3, 1, 1, 1), 0.0f, "3x3 on 2x2");
    /* where (with wino) both gradients are the small-map product's (from batch 128): K over
     * several blocks, a map of one row */
    fast_vs_ref_conv(conv_case_shape(128, 300, 2, 2, 70, 3, 1, 1, 1), 1.0f, "3x3 on 2x2, K blocks");
    fast_vs_ref_conv(conv_case_shape(128, 9, 1, 2, 11, 3, 1, 1, 1), 1.0f, "3x3 on 1x2");
    /* strided on 2x2 to 1x1 (with wino, the weight gradient of its cropped 2x2 window is the
     * small-map product's; the data gradient col2im's) */
    fast_vs_ref_conv(conv_case_shape(128, 40, 2, 2, 24, 3, 2, 1, 1), 0.0f, "3x3/2 on 2x2");
    rn_conv_shape small = conv_case_shape(256, 256, 2, 2, 256, 3, 1, 1, 1);
    conv2d_shape_init(&small);
    const rn_kernels *kb = rn_kernels_bf16(kd);
    CHECK(conv2d_backward_by_smallmap(kd, &small) &&
              (!kb || conv2d_backward_by_smallmap(kb, &small)),
          "%s: 3x3 on 2x2, both gradients by the small-map product (fp32%s kernels)", kd->name,
          kb ? " and bf16" : "");
    smallmap_bf16_vs_ref(kb);
    winograd_data_bf16_vs_ref(kb);
    weight_by_col_bf16(kb);
    /* where it picks the direct convolution (with wino, for the data gradient too): 16
     * channels, the narrow networks' first stage */
    fast_vs_ref_conv(conv_case_shape(3, 16, 28, 28, 16, 3, 1, 1, 1), 1.0f, "narrow 3x3");
    fast_vs_ref_conv(conv_case_shape(2, 12, 28, 28, 16, 3, 1, 1, 1), 0.0f, "narrow 3x3 ragged panel");
    fast_vs_ref_conv(conv_case_shape(2, 16, 15, 15, 32, 3, 2, 1, 1), 1.0f, "resnet 3x3/2");
    fast_vs_ref_conv(conv_case_shape(2, 16, 14, 14, 32, 1, 2, 0, 1), 1.0f, "resnet 1x1/2");
    fast_vs_ref_conv(conv_case_shape(2, 48, 9, 9, 40, 1, 1, 0, 2), 1.0f, "pointwise g2");
    fast_vs_ref_conv(conv_case_shape(1, 3, 30, 30, 8, 7, 2, 3, 1), 0.0f, "stem 7x7/2");
    /* flipped route with the widest padding (k - 1 - pad = 6), and pad > k - 1 */
    fast_vs_ref_conv(conv_case_shape(2, 4, 12, 11, 6, 7, 1, 0, 2), 0.0f, "7x7 p0");
    fast_vs_ref_conv(conv_case_shape(2, 4, 6, 7, 6, 1, 1, 2, 1), 1.0f, "1x1 p2");
    /* several weight chunks (K = 576: 432 pixels each) and col2im chunks (1536); more than
     * 32 output channels, so that the weight gradient takes the GEMM, not the direct strips */
    fast_vs_ref_conv(conv_case_shape(2, 64, 42, 42, 40, 3, 1, 1, 1), 0.0f, "weight chunks");
    /* chunks of 432 pixels ending inside an image's first and last rows */
    fast_vs_ref_conv(conv_case_shape(3, 64, 10, 43, 40, 3, 1, 1, 1), 0.0f, "chunk ends in row 0");
    fast_vs_ref_conv(conv_case_shape(3, 64, 11, 40, 40, 3, 1, 1, 1), 0.0f, "chunk ends in last row");
    fast_vs_ref_conv(conv_case_shape(2, 24, 9, 31, 8, 5, 1, 2, 1), 0.0f, "5x5 chunks");
    fast_vs_ref_conv(conv_case_shape(2, 8, 64, 64, 8, 3, 2, 1, 1), 1.0f, "col2im chunks");
    fast_vs_ref_conv(conv_case_shape(2, 512, 16, 16, 36, 3, 1, 1, 1), 0.0f, "K 4608 chunks");
    /* the direct weight gradient (narrow, stride 1): the stem, channels past a group of 4,
     * 2-wide windows, blocks of images (the last one short), many images in a block */
    fast_vs_ref_conv(conv_case_shape(3, 1, 28, 28, 16, 3, 1, 1, 1), 0.0f, "direct wgrad stem");
    fast_vs_ref_conv(conv_case_shape(2, 5, 13, 11, 6, 3, 1, 1, 1), 1.0f, "direct wgrad cout 6");
    fast_vs_ref_conv(conv_case_shape(2, 3, 9, 10, 8, 2, 1, 0, 1), 0.0f, "direct wgrad 2x2 p0");
    fast_vs_ref_conv(conv_case_shape(2, 3, 9, 10, 5, 2, 1, 1, 1), 1.0f, "direct wgrad 2x2 p1");
    fast_vs_ref_conv(conv_case_shape(5, 16, 40, 40, 16, 3, 1, 1, 1), 0.0f, "direct wgrad blocks");
    fast_vs_ref_conv(conv_case_shape(3, 8, 40, 40, 64, 3, 1, 1, 1), 1.0f, "direct wgrad block of 1");
    fast_vs_ref_conv(conv_case_shape(40, 4, 6, 5, 12, 3, 1, 1, 1), 0.0f, "direct wgrad small images");
    fast_vs_ref_conv(conv_case_shape(2, 8, 7, 9, 60, 3, 1, 1, 1), 1.0f, "direct wgrad cout 60");
    /* strided and wide windows on few input channels: the input split into phases, a
     * phase's columns in strips of up to 3 (7 wide: 3 + 1 and 3 at stride 2, 3 + 3 + 1) */
    fast_vs_ref_conv(conv_case_shape(3, 1, 30, 31, 64, 7, 2, 3, 1), 0.0f, "direct wgrad stem 7x7/2");
    fast_vs_ref_conv(conv_case_shape(2, 3, 33, 32, 20, 7, 2, 3, 1), 1.0f, "direct wgrad 7x7/2 cin 3");
    fast_vs_ref_conv(conv_case_shape(2, 4, 17, 16, 12, 3, 2, 1, 1), 0.0f, "3x3/2 on 4 channels weight chunks");
    fast_vs_ref_conv(conv_case_shape(2, 2, 15, 14, 8, 5, 2, 2, 1), 1.0f, "direct wgrad 5x5/2");
    fast_vs_ref_conv(conv_case_shape(2, 3, 12, 13, 8, 7, 1, 3, 1), 0.0f, "direct wgrad 7x7/1");
    fast_vs_ref_conv(conv_case_shape(2, 3, 12, 13, 8, 5, 2, 0, 1), 0.0f, "direct wgrad 5x5/2 p0");
    /* an image's planes over a block: the runs a segment at a time (the last one shorter) */
    fast_vs_ref_conv(conv_case_shape(2, 3, 90, 90, 64, 7, 2, 3, 1), 0.0f, "direct wgrad segments 7x7/2");
    fast_vs_ref_conv(conv_case_shape(2, 8, 64, 61, 60, 3, 1, 1, 1), 1.0f, "direct wgrad segments 3x3");
    /* dy copied into rows of the padded width (rows short of whole vectors, 16 x 9 taps) */
    fast_vs_ref_conv(conv_case_shape(2, 16, 70, 61, 16, 3, 1, 1, 1), 0.0f, "direct wgrad segments copied");
    /* over 1536 columns: the weight product split into column blocks, with
     * dy transposed (K >= cout) or im2col transposed (K < cout) */
    fast_vs_ref_conv(conv_case_shape(1, 3, 5, 5, 1600, 1, 1, 0, 1), 0.0f, "cout 1600 K 3");
    fast_vs_ref_conv(conv_case_shape(1, 178, 2, 2, 1600, 3, 1, 1, 1), 0.0f, "cout 1600 K 1602");
    fast_vs_ref_conv(conv_case_shape(1, 1540, 2, 2, 1600, 1, 1, 0, 1), 1.0f, "cout 1600 K 1540");
    /* tiny inputs: taps reading only padding are cropped off */
    fast_vs_ref_conv(conv_case_shape(4, 16, 1, 1, 8, 3, 1, 1, 1), 1.0f, "3x3 on 1x1 (pointwise)");
    fast_vs_ref_conv(conv_case_shape(4, 8, 2, 2, 8, 3, 2, 1, 1), 0.0f, "3x3/2 on 2x2 (2x2 kernel)");
    fast_vs_ref_conv(conv_case_shape(2, 4, 3, 3, 4, 7, 1, 3, 2), 1.0f, "7x7 on 3x3 (5x5 kernel)");
    fast_vs_ref_conv(conv_case_shape(2, 4, 2, 2, 4, 7, 1, 3, 1), 0.0f, "7x7 on 2x2 (not cropped)");
    /* wide spatial dims, many GEMM panels */
    fast_vs_ref_conv(conv_case_shape(1, 8, 40, 64, 24, 3, 1, 1, 1), 1.0f, "wide");
}

/* The Winograd weight gradient (conv_wgrad_winograd.c) on its own, F(4x4) and F(2x2),
 * whatever the rule would pick, against the exact sum: ragged tiles at every map edge, any
 * padding up to 2, channel counts past whole lanes, blocks of tiles (the last one short) on
 * larger maps, maps of whole 4x4 tiles; and where the rule takes it. */
static void wgrad_winograd_vs_ref(const rn_kernels *k, int count) {
    for (int i = 0; i < count; i++) {
        const int big = i % 4 == 3;
        rn_conv_shape s = {.n = check_int(1, big ? 8 : 3), .cin = check_int(1, big ? 40 : 19),
                           .h = check_int(1, big ? 40 : 13), .w = check_int(1, big ? 40 : 13),
                           .cout = check_int(1, big ? 40 : 19), .kh = 3, .kw = 3, .stride = 1,
                           .pad = check_int(0, 2), .groups = 1};
        if (i % 8 == 4) { /* F(4x4) on a map of whole tiles: the descriptor's dy transform */
            s.pad = 1;
            s.h = 4 * check_int(1, 6);
            s.w = 4 * check_int(1, 6);
        }
        if (!conv2d_shape_init(&s))
            continue;
        const int m = i % 2 ? 2 : 4;
        conv_wgrad_wino_plan d;
        if (!conv_wgrad_wino_plan_m(k, &s, m, &d)) {
            CHECK(0, "%s: Winograd weight gradient F(%dx%d) has a plan", k->name, m, m);
            continue;
        }
        if (i % 3 == 2) /* blocks of 8 to 24 tiles: several per part, the last one short */
            conv_wgrad_wino_plan_blocks(&s, 8 * check_int(1, 3), &d);
        const conv_sizes sz = conv_case_sizes(&s);
        float *x = check_frand(sz.x, -1, 1), *dy = check_frand(sz.y, -1, 1);
        float *dw1 = check_floats(sz.w), *dw2 = check_floats(sz.w), *ws = check_floats(d.floats);
        float *dw_one = check_floats(sz.w);
        conv2d_backward_weight_ref(&s, x, dy, dw1, NULL);
        /* 1, 2 and 3 threads: within the tolerance of the exact sum, and the same bits (two
         * parts: one thread does both, three share the first) */
        for (int t = 1; t <= 3; t++) {
            check_poison(ws, d.floats);
            check_invalid_clear(t);
#pragma omp parallel num_threads(t)
            conv_wgrad_wino_run(k, &s, &d, x, dy, dw2, ws);
            const int unwritten = check_invalid_raised(t);
            const double e = check_rel_err(dw2, dw1, sz.w);
            if (t == 1)
                memcpy(dw_one, dw2, sz.w * sizeof(float));
            CHECK(e <= (m == 4 ? WINO_TOL : FAST_TOL) && !unwritten &&
                      memcmp(dw_one, dw2, sz.w * sizeof(float)) == 0,
                  "%s: Winograd weight gradient F(%dx%d) n=%d %d->%d %dx%d p=%d, %ld tiles in "
                  "%d part(s), blocks of %d, %d thread(s): %.1e, workspace read before written "
                  "%d, the bits of one thread's",
                  k->name, m, m, s.n, s.cin, s.cout, s.h, s.w, s.pad, d.tiles, d.parts, d.tb, t,
                  e, unwritten);
        }
        rn_free(x), rn_free(dy), rn_free(dw1), rn_free(dw2), rn_free(ws), rn_free(dw_one);
    }
    /* the rule: resnet's 3x3 layers from 64 channels up, not the narrow ones (the strips) */
    rn_conv_shape sw = conv_case_shape(8, 64, 56, 56, 64, 3, 1, 1, 1), sn = conv_case_shape(8, 16, 28, 28, 16, 3, 1, 1, 1),
                  ss = conv_case_shape(8, 64, 56, 56, 128, 3, 2, 1, 1), sd = conv_case_shape(50, 64, 12, 12, 72, 3, 1, 1, 1);
    conv2d_shape_init(&sw), conv2d_shape_init(&sn), conv2d_shape_init(&ss), conv2d_shape_init(&sd);
    conv_wgrad_wino_plan dd;
    if (k->wino_in)
        CHECK(conv_wgrad_wino_plan_for(k, &sd, &dd) && dd.tiles > dd.tb,
              "%s: the determinism case 64->72 on 12x12 at batch 50 takes Winograd's weight "
              "gradient in more than one block", k->name);
    const int wide = conv2d_backward_weight_winograd(k, &sw);
    const int narrow = conv2d_backward_weight_winograd(k, &sn);
    const int strided = conv2d_backward_weight_winograd(k, &ss);
    CHECK(wide == (k->wino_in && !rn_kernels_are_bf16(k)) && !narrow && !strided,
          "%s: Winograd takes the weight gradient of 3x3 64->64 (%d), not 16->16 (%d) nor "
          "stride 2 (%d)", k->name, wide, narrow, strided);
    /* bf16 training on this path's bf16 kernels: Winograd's weight gradient on fp32 products
     * as fp32's, but on matrix tiles (AMX) the bf16 GEMM below 128 input channels */
    const rn_kernels *kb = rn_kernels_bf16(k);
    rn_conv_shape s128 = conv_case_shape(8, 128, 28, 28, 128, 3, 1, 1, 1);
    conv2d_shape_init(&s128);
    if (kb && k->wino_in)
        CHECK(conv2d_backward_weight_winograd(kb, &sw) == !kb->matrix_tiles &&
                  conv2d_backward_weight_winograd(kb, &s128),
              "%s: Winograd takes the bf16 weight gradient of 3x3 64->64 %s, of 128->128 yes",
              kb->name, kb->matrix_tiles ? "no (the tiles' GEMM)" : "yes");
    /* the tiles: 4x4 on 56x56, 2x2 on 2x2 maps (one 4x4 tile would cost as much as direct) */
    rn_conv_shape s2 = conv_case_shape(64, 256, 2, 2, 256, 3, 1, 1, 1);
    conv2d_shape_init(&s2);
    conv_wgrad_wino_plan d4, d2;
    if (wide)
        CHECK(conv_wgrad_wino_plan_for(k, &sw, &d4) && d4.m == 4 &&
                  conv_wgrad_wino_plan_for(k, &s2, &d2) && d2.m == 2,
              "%s: Winograd weight gradient F(4x4) on 56x56, F(2x2) on 2x2", k->name);
}

/* ---------------------------------------------------------------------------
 * 2. Bitwise determinism: 1, 2 and 3 threads
 * ------------------------------------------------------------------------- */

/* 1, 2 and 3 threads (an uneven split of rows and channels). */
static void determinism_conv(rn_conv_shape s, const char *tag) {
    conv2d_shape_init(&s);
    const conv_sizes sz = conv_case_sizes(&s);
    const size_t x_n = sz.x, w_n = sz.w, y_n = sz.y;
    float *x = check_frand(x_n, -1, 1), *w = check_frand(w_n, -1, 1), *dy = check_frand(y_n, -1, 1);
    float *dx[3], *dw[3], *db[3];
    size_t ws_n = 0; /* for 1..3 threads (Winograd's split by tiles cuts it per thread) */
    for (int t = 1; t <= 3; t++) {
        const size_t f = conv2d_backward_workspace_floats(kd, &s, wino ? t : 0);
        ws_n = f > ws_n ? f : ws_n;
    }
    float *ws = check_floats(ws_n);
    float *dx0 = check_frand(x_n, -1, 1);
    int same = 1;
    for (int t = 0; t < 3; t++) {
        dx[t] = check_floats(x_n), dw[t] = check_floats(w_n), db[t] = check_floats(s.cout);
        memcpy(dx[t], dx0, x_n * sizeof(float));
        rn_set_threads(t + 1);
        conv2d_backward_data(kd, &s, dy, w, 1.0f, dx[t], ws, wino ? t + 1 : 0);
        conv2d_backward_weight(kd, &s, x, dy, dw[t], db[t], ws, wino ? t + 1 : 0);
        if (t)
            same &= check_same_bits(dx[0], dx[t], x_n) && check_same_bits(dw[0], dw[t], w_n) &&
                    check_same_bits(db[0], db[t], s.cout);
    }
    rn_set_threads(0);
    CHECK(same, "determinism conv %s%s: 1, 2 and 3 threads bitwise", wino ? "winograd/direct " : "", tag);
    for (int t = 0; t < 3; t++)
        rn_free(dx[t]), rn_free(dw[t]), rn_free(db[t]);
    rn_free(x), rn_free(w), rn_free(dy), rn_free(ws), rn_free(dx0);
}

/* ---------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------- */

int main(void) {
    /* 1. fast against reference, on every kernel path the host supports */
    const rn_kernels *ks[RN_ISA_COUNT];
    const int nk = check_kernel_paths("test_backward_conv", ks);
    for (int i = 0; i < nk; i++) {
        kd = ks[i];
        if (kd->isa == RN_ISA_PORTABLE) {
            fast_vs_ref_conv(conv_case_shape(2, 8, 9, 9, 12, 3, 1, 1, 1), 0.0f, "portable 3x3");
            fast_vs_ref_conv(conv_case_shape(2, 8, 9, 9, 12, 3, 2, 1, 2), 1.0f, "portable 3x3/2 g2");
            fast_vs_ref_conv(conv_case_shape(2, 4, 7, 7, 16, 1, 2, 0, 1), 1.0f, "portable 1x1/2");
            fast_vs_ref_conv(conv_case_shape(2, 8, 40, 40, 8, 3, 1, 1, 1), 0.0f, "portable 3x3 long rows");
            fast_vs_ref_conv(conv_case_shape(2, 8, 9, 9, 40, 3, 1, 1, 1), 1.0f, "portable 3x3 GEMM weights");
            fast_vs_ref_conv(conv_case_shape(3, 8, 20, 20, 16, 3, 1, 1, 1), 0.0f, "portable direct wgrad");
            continue;
        }
        for (wino = 0; wino <= 1; wino++) {
            fast_vs_ref_random(80);
            fast_vs_ref_fixed();
        }
        wino = 0;
        phases_vs_ref_random(24);
        wgrad_winograd_vs_ref(ks[i], 40);
    }
    /* and the Winograd weight gradient on the portable transforms */
    wgrad_winograd_vs_ref(rn_kernels_for(RN_ISA_PORTABLE), 12);
    /* the Winograd data gradient on the portable transforms too */
    kd = rn_kernels_for(RN_ISA_PORTABLE);
    wino = 1;
    fast_vs_ref_conv(conv_case_shape(2, 16, 14, 14, 24, 3, 1, 1, 1), 1.0f, "portable 3x3");
    fast_vs_ref_conv(conv_case_shape(1, 8, 40, 64, 24, 3, 1, 1, 1), 0.0f, "portable wide");
    wino = 0;

    /* 2. thread-count determinism */
    determinism_conv(conv_case_shape(4, 32, 20, 20, 48, 3, 1, 1, 1), "3x3 flipped");
    determinism_conv(conv_case_shape(4, 32, 20, 20, 48, 3, 2, 1, 1), "3x3/2 col2im");
    determinism_conv(conv_case_shape(4, 128, 19, 20, 40, 3, 2, 1, 1), "3x3/2 by phases");
    determinism_conv(conv_case_shape(4, 64, 16, 16, 48, 1, 1, 0, 2), "1x1 pointwise g2");
    determinism_conv(conv_case_shape(4, 32, 16, 16, 96, 1, 2, 0, 1), "1x1/2 im2col transposed");
    /* several chunks, the last one shorter: threads on different chunks */
    for (int rep = 0; rep < 3; rep++) {
        determinism_conv(conv_case_shape(2, 64, 42, 42, 48, 3, 1, 1, 1), "weight chunks");
        determinism_conv(conv_case_shape(5, 16, 40, 40, 16, 3, 1, 1, 1), "direct weight gradient blocks");
        determinism_conv(conv_case_shape(6, 1, 96, 96, 64, 7, 2, 3, 1), "direct weight gradient 7x7/2");
        determinism_conv(conv_case_shape(2, 8, 64, 64, 8, 3, 2, 1, 1), "col2im chunks");
        determinism_conv(conv_case_shape(5, 16, 64, 64, 64, 1, 2, 0, 1), "im2col transposed chunks");
    }
    determinism_conv(conv_case_shape(64, 64, 1, 1, 64, 3, 1, 1, 1), "3x3 on 1x1 cropped");
    wino = 1;
    determinism_conv(conv_case_shape(4, 32, 20, 20, 48, 3, 1, 1, 1), "3x3");
    determinism_conv(conv_case_shape(2, 64, 42, 42, 16, 3, 1, 1, 1), "3x3 large");
    determinism_conv(conv_case_shape(4, 16, 20, 20, 16, 3, 1, 1, 1), "3x3 narrow (direct)");
    /* the weight gradient by Winograd (64 channels and more), in one block and in two */
    determinism_conv(conv_case_shape(4, 64, 12, 12, 72, 3, 1, 1, 1), "3x3 64->72 (Winograd weights)");
    determinism_conv(conv_case_shape(50, 64, 12, 12, 72, 3, 1, 1, 1), "3x3 64->72 two blocks");
    wino = 0;
    return check_done("test_backward_conv");
}
