/*
 * test_qconv.c - the int8 convolution: every kernel path the host supports
 * against the plain-C oracle, byte for byte, on random shapes (plain and
 * c16 inputs, 1x1, 3x3 and 7x7 convolutions, grouped ones, strides,
 * padding, residual, ReLU, zero points), at 1..3 threads; and the other
 * int8 ops against direct formulas.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "ops/kernels.h"
#include "ops/qconv.h"
#include "check.h"

static const rn_kernels *kd;
/* outputs of the oracle at the clamps' ends, over every case: the cases must drive the
 * kernels' clamps to [0, RN_Q_MAX] at both ends */
static size_t at_zero, at_max;

static void check_case_g(int n, int cin, int h, int w, int cout, int k, int stride, int pad,
                         int groups, int in_c16, int with_res, int relu, const char *what) {
    rn_conv_shape s = {.n = n, .cin = cin, .h = h, .w = w, .cout = cout, .kh = k, .kw = k,
                       .stride = stride, .pad = pad, .groups = groups};
    rn_qconv qc;
    char why[160];
    if (!conv2d_shape_init(&s) || !rn_qconv_init(&qc, &s, in_c16, why, sizeof why)) {
        CHECK(0, "bad shape in %s", what);
        return;
    }
    size_t nhw_in = (size_t)n * h * w, nhw_out = (size_t)n * s.ho * s.wo;
    size_t x_bytes = in_c16 ? (size_t)rn_q_cblocks(cin) * 16 * nhw_in : (size_t)cin * nhw_in;
    size_t y_bytes = (size_t)rn_q_cblocks(cout) * 16 * nhw_out;
    size_t nw = (size_t)cout * (cin / groups) * k * k, nch = rn_qconv_channels(&qc);
    uint8_t *x = malloc(x_bytes), *res = malloc(y_bytes), *y = malloc(y_bytes), *yr = malloc(y_bytes);
    int8_t *wq = malloc(nw);
    int8_t *packed = rn_alloc(rn_qconv_packed_bytes(&qc));
    int32_t *comp = calloc(nch, sizeof *comp);
    float *mult = calloc(nch, sizeof *mult);
    float *bias = calloc(nch, sizeof *bias);
    int in_zp = check_int(0, RN_Q_MAX);
    for (size_t i = 0; i < x_bytes; i++) /* c16 padding channels hold anything: weights are 0 */
        x[i] = (uint8_t)check_int(0, RN_Q_MAX);
    for (size_t i = 0; i < y_bytes; i++)
        res[i] = (uint8_t)check_int(0, RN_Q_MAX);
    for (size_t i = 0; i < nw; i++)
        wq[i] = (int8_t)check_int(-127, 127);
    for (int c = 0; c < cout; c++) {
        mult[c] = check_uniform(0.5f, 2.0f) / (float)(cin / groups * k * k * 40);
        bias[c] = check_uniform(-1.0f, 1.0f);
    }
    qc.w = packed;
    rn_qconv_pack_weights(&qc, wq, in_zp, packed, comp);
    qc.rq = (rn_qreq){.comp = comp, .mult = mult, .bias = bias, .r_scale = check_uniform(0.01f, 0.05f),
                      .r_zp = check_int(0, 64), .inv_out = 1.0f / check_uniform(0.01f, 0.04f),
                      /* after a ReLU the zero point is 0 (the kernels' shorter epilogue), but
                       * the kernels take any: a quarter of the ReLU cases get another */
                      .out_zp = !relu ? check_int(0, 64) : check_int(0, 3) ? 0 : check_int(1, 20),
                      .relu = relu};
    memset(yr, 0xAB, y_bytes);
    rn_qconv_forward_ref(&s, in_c16, x, in_zp, wq, &qc.rq, with_res ? res : NULL, yr);
    int spread = 0; /* the case must exercise more than a clamp */
    for (size_t i = 1; i < y_bytes; i++)
        spread |= yr[i] != yr[0];
    CHECK(spread, "%s: degenerate output (all %d)", what, yr[0]);
    for (size_t c = 0; c < (size_t)cout; c++)
        for (size_t p = 0; p < nhw_out; p++) {
            const uint8_t v = yr[((c / 16) * nhw_out + p) * 16 + c % 16];
            at_zero += v == 0;
            at_max += v == RN_Q_MAX;
        }
    for (int t = 1; t <= 3; t++) {
        rn_set_threads(t);
        uint8_t *ws = rn_alloc(rn_qconv_workspace_bytes(kd, &qc, t) + 1);
        memset(y, 0xCD, y_bytes);
        rn_qconv_forward(kd, &qc, n, x, in_zp, with_res ? res : NULL, y, ws);
        size_t bad = 0, first = 0;
        for (size_t c = 0; c < (size_t)cout; c++) /* padding channels of y are not compared */
            for (size_t p = 0; p < nhw_out; p++) {
                size_t o = ((c / 16) * nhw_out + p) * 16 + c % 16;
                if (y[o] != yr[o] && !bad++)
                    first = o;
            }
        CHECK(bad == 0, "%s %s threads %d: %zu bytes differ (first at %zu: %d vs %d)", kd->q_name,
              what, t, bad, first, bad ? y[first] : 0, bad ? yr[first] : 0);
        rn_free(ws);
    }
    rn_set_threads(0);
    free(x), free(res), free(y), free(yr), free(wq), free(comp), free(mult), free(bias);
    rn_free(packed);
}

static void check_case(int n, int cin, int h, int w, int cout, int k, int stride, int pad,
                       int in_c16, int with_res, int relu, const char *what) {
    check_case_g(n, cin, h, w, cout, k, stride, pad, 1, in_c16, with_res, relu, what);
}

/* Which grouped shapes the int8 path takes, and which it refuses. */
static void check_groups_supported(void) {
    struct { int cin, cout, groups, c16, ok, sg; } g[] = {
        {128, 128, 32, 1, 1, 8},   /* ResNeXt-50 32x4d, first stage: 4 channels a group */
        {256, 256, 32, 1, 1, 16},  /* 8 a group */
        {512, 512, 32, 1, 1, 32},  /* 16 */
        {1024, 1024, 32, 1, 1, 32}, /* 32 */
        {64, 64, 1, 0, 1, 1},      /* ungrouped, plain input */
        {48, 48, 16, 1, 0, 0},     /* 3 channels a group: not a divisor of 16 */
        {64, 64, 8, 0, 0, 0},      /* grouped on plain input */
        {64, 32, 4, 1, 1, 2},      /* 16 in, 8 out a group: 2 groups a super-group */
        {40, 40, 2, 1, 0, 0},      /* 20 a group */
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        rn_conv_shape s = {.n = 1, .cin = g[i].cin, .h = 5, .w = 5, .cout = g[i].cout, .kh = 3,
                           .kw = 3, .stride = 1, .pad = 1, .groups = g[i].groups};
        rn_qconv c;
        char why[160] = "";
        int ok = conv2d_shape_init(&s) && rn_qconv_init(&c, &s, g[i].c16, why, sizeof why);
        CHECK(ok == g[i].ok && (!ok || c.sg == g[i].sg), "groups %d of %d -> %d channels: %s %d "
              "(super-groups %d) %s", g[i].groups, g[i].cin, g[i].cout, ok ? "taken" : "refused",
              ok, ok ? c.sg : 0, why);
    }
}

/* rn_quantize_input on kd: round half to even, clamped, against nearbyintf */
static void check_quantize(void) {
    float xin[6] = {0.0f, 0.25f, 0.75f, -10.0f, 100.0f, 1.25f};
    uint8_t q[6];
    rn_quantize_input(kd, xin, 1, 1, 2, 3, (rn_qparam){0.5f, 3}, q);
    const uint8_t want[6] = {3, 3, 5, 0, 127, 5}; /* 0.5 -> 0, 1.5 -> 2, 2.5 -> 2 */
    CHECK(memcmp(q, want, 6) == 0, "quantize_input: %d %d %d %d %d %d", q[0], q[1], q[2], q[3],
          q[4], q[5]);
    { /* against nearbyintf on many values: halves, large, tiny, NaN, +-inf; 2 images x 3
       * channels (the layout moves to (C, N, H, W)), on 1-3 threads (their runs of values
       * start inside planes) */
        enum { N = 2, C = 3, HW = 20010 };
        float *xs = malloc(sizeof(float) * N * C * HW);
        uint8_t *got = malloc(N * C * HW);
        const rn_qparam qp = {0.37f, 61};
        uint64_t st = 12345;
        for (int i = 0; i < N * C * HW; i++) {
            const uint32_t r = (uint32_t)check_xorshift64(&st);
            xs[i] = r % 13 == 0   ? ((int)(r >> 8) % 400 - 200) * 0.5f * qp.scale /* halves */
                    : r % 13 == 1 ? (r % 2 ? INFINITY : -INFINITY)
                    : r % 13 == 2 ? NAN
                    : r % 13 == 3 ? ((int)(r >> 4) % 2000 - 1000) * 1e3f
                                  : ((int)(r >> 8) % 200001 - 100000) * 1e-3f;
        }
        int bad = 0;
        for (int t = 1; t <= 3; t++) {
            rn_set_threads(t);
            memset(got, 0xEE, N * C * HW);
            rn_quantize_input(kd, xs, N, C, 10, HW / 10, qp, got);
            for (int b = 0; b < N; b++)
                for (int ch = 0; ch < C; ch++)
                    for (int i = 0; i < HW; i++) {
                        float v = xs[((size_t)b * C + ch) * HW + i] * (1.0f / qp.scale);
                        v = v > -RN_Q_CLAMP ? v : -RN_Q_CLAMP;
                        v = v < RN_Q_CLAMP ? v : RN_Q_CLAMP;
                        int qv = (int)nearbyintf(v) + qp.zp;
                        qv = qv < 0 ? 0 : qv > RN_Q_MAX ? RN_Q_MAX : qv;
                        bad += got[((size_t)ch * N + b) * HW + i] != qv;
                    }
        }
        rn_set_threads(0);
        CHECK(bad == 0, "%s quantize_input = nearbyintf's rounding on %d values: %d differ",
              kd->q_name, N * C * HW, bad);
        free(xs);
        free(got);
    }
}

/* Max-pool k/s/p on c16 on kd's kernels (q_maxpool_row for 3x3/2) against the windows scanned
 * here: every byte the same. */
static void check_maxpool(int n, int c, int h, int w, int k, int stride, int pad) {
    const int ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1;
    const size_t nhw = (size_t)n * h * w, cb = (size_t)rn_q_cblocks(c);
    uint8_t *x = malloc(16 * cb * nhw), *y = malloc(16 * cb * (size_t)n * ho * wo);
    for (size_t i = 0; i < 16 * cb * nhw; i++)
        x[i] = (uint8_t)check_int(0, 127);
    rn_qmaxpool_c16(kd, x, c, n, h, w, k, stride, pad, ho, wo, y);
    long bad = 0;
    for (int ch = 0; ch < c; ch++)
        for (int b = 0; b < n; b++)
            for (int oh = 0; oh < ho; oh++)
                for (int ow = 0; ow < wo; ow++) {
                    int m = 0; /* a window wholly in the padding: 0 */
                    for (int ih = oh * stride - pad; ih < oh * stride - pad + k; ih++)
                        for (int iw = ow * stride - pad; iw < ow * stride - pad + k; iw++)
                            if (ih >= 0 && ih < h && iw >= 0 && iw < w) {
                                int v = x[((size_t)(ch / 16) * nhw + ((size_t)b * h + ih) * w + iw) * 16 + ch % 16];
                                m = v > m ? v : m;
                            }
                    size_t o = ((size_t)(ch / 16) * n * ho * wo + ((size_t)b * ho + oh) * wo + ow) * 16 + ch % 16;
                    bad += y[o] != m;
                }
    CHECK(bad == 0, "maxpool %d/%d/%d c16 on %s: %d images, %d channels, %dx%d: %ld wrong", k,
          stride, pad, kd->q_name, n, c, h, w, bad);
    free(x), free(y);
}

static void check_ops(void) {
    rn_qparam p = rn_qparam_for_range(0.0f, 12.7f);
    CHECK(p.zp == 0 && fabsf(p.scale - 0.1f) < 1e-6f, "range [0, 12.7]: scale %g zp %d", p.scale, p.zp);
    p = rn_qparam_for_range(-1.0f, 1.0f);
    CHECK(p.zp == 64 && fabsf(p.scale - 2.0f / 127) < 1e-7f, "range [-1, 1]: zp %d", p.zp);
    p = rn_qparam_for_range(0.0f, 0.0f);
    CHECK(p.scale == 1.0f && p.zp == 0, "empty range");
    /* avgpool on c16 (20 channels, 2 images, 5x5) */
    int c = 20, n = 2, h = 5, w = 5;
    size_t nhw = (size_t)n * h * w;
    uint8_t *x = malloc(32 * nhw);
    for (size_t i = 0; i < 32 * nhw; i++)
        x[i] = (uint8_t)check_int(0, 127);
    int bad;
    float feat[40];
    rn_qavgpool_c16(x, c, n, h * w, (rn_qparam){0.5f, 10}, feat);
    bad = 0; /* every channel of every image: the sum of its pixels less the zero point's */
    for (int ch = 0; ch < c; ch++)
        for (int b = 0; b < n; b++) {
            long sum = 0;
            for (int i = 0; i < h * w; i++)
                sum += x[((size_t)(ch / 16) * nhw + (size_t)b * h * w + i) * 16 + ch % 16] - 10;
            bad += feat[ch * n + b] != (float)((double)sum * 0.5 / (h * w));
        }
    CHECK(bad == 0, "avgpool c16: %d of %d wrong", bad, c * n);
    free(x);
}

int main(void) {
    const rn_kernels *ks[RN_ISA_COUNT];
    int nk = check_kernel_paths("test_qconv", ks);
    check_ops();
    check_groups_supported();
    for (int i = 0; i < nk; i++) {
        kd = ks[i];
        printf("test_qconv: int8 kernel %s\n", kd->q_name);
        check_quantize();
        /* the stem's 3x3/2/1 (the kernels' rows: outputs 4 or 2 a store, ragged ends), 2x2/2 and
         * 3x3/1 (the C loop) */
        check_maxpool(2, 20, 5, 5, 3, 2, 1);
        check_maxpool(1, 64, 112, 112, 3, 2, 1);
        for (int r = 0; r < 12; r++)
            check_maxpool(check_int(1, 2), check_int(1, 40), check_int(1, 19), check_int(1, 23), 3, 2,
                          check_int(0, 1));
        check_maxpool(1, 16, 1, 1, 3, 2, 1);
        check_maxpool(2, 32, 9, 8, 2, 2, 0);
        check_maxpool(1, 24, 7, 6, 3, 1, 1);
        /* the stem: plain input, 7x7/2 and 3x3/1 */
        check_case(1, 3, 23, 19, 64, 7, 2, 3, 0, 0, 1, "stem 7x7/2 plain cin 3");
        check_case(2, 1, 28, 28, 64, 7, 2, 3, 0, 0, 1, "stem 7x7/2 plain cin 1");
        check_case(2, 3, 12, 12, 32, 3, 1, 1, 0, 0, 1, "cifar stem 3x3 plain");
        /* column blocks (a thread's window copy) that start and end inside an output row */
        check_case(1, 3, 161, 157, 32, 7, 2, 3, 0, 0, 1, "stem 7x7/2 plain, blocks mid-row");
        check_case(1, 512, 9, 11, 32, 3, 1, 1, 1, 1, 1, "3x3 cin 512, blocks mid-row");
        check_case(2, 512, 11, 9, 32, 3, 2, 1, 1, 0, 1, "3x3/2 cin 512, blocks mid-row");
        /* 1x1, strided 1x1, 3x3 */
        check_case(1, 64, 7, 7, 256, 1, 1, 0, 1, 1, 1, "1x1 + residual");
        check_case(3, 48, 5, 9, 80, 1, 1, 0, 1, 0, 0, "1x1 odd cout, no relu");
        check_case(2, 64, 9, 9, 128, 1, 2, 0, 1, 0, 0, "1x1 stride 2");
        check_case(1, 64, 14, 14, 64, 3, 1, 1, 1, 1, 1, "3x3 + residual + relu");
        check_case(2, 40, 11, 7, 48, 3, 2, 1, 1, 0, 1, "3x3/2 cin 40 cout 48");
        check_case(1, 128, 1, 1, 32, 3, 1, 1, 1, 0, 1, "3x3 on 1x1");
        /* windows read in place (stride 1, "same", c16, maps 28 wide and more): runs of each
         * image, the padding's columns and rows copied and done again, blocks mid-row, two
         * images in a block, a 5x5, super-groups, maps too short for an interior row */
        check_case(2, 40, 30, 29, 48, 3, 1, 1, 1, 1, 1, "3x3 in place, cin 40, cout 48");
        check_case(1, 512, 5, 31, 64, 3, 1, 1, 1, 0, 1, "3x3 in place cin 512, blocks mid-row");
        check_case(3, 16, 3, 33, 32, 3, 1, 1, 1, 1, 0, "3x3 in place, 3 rows, no relu");
        check_case(2, 32, 2, 40, 32, 3, 1, 1, 1, 0, 1, "3x3, 2 rows: none in place");
        check_case(2, 24, 12, 30, 32, 5, 1, 2, 1, 1, 1, "5x5 pad 2 in place");
        check_case_g(2, 128, 6, 28, 128, 3, 1, 1, 32, 1, 1, 1, "grouped 32 x 4 in place");
        /* grouped (ResNeXt): 4, 8, 16 and 32 channels a group, strided, residual */
        check_case_g(2, 128, 9, 9, 128, 3, 1, 1, 32, 1, 1, 1, "grouped 32 x 4 + residual");
        check_case_g(1, 64, 11, 11, 64, 3, 2, 1, 8, 1, 0, 1, "grouped 8 x 8 stride 2");
        check_case_g(2, 64, 7, 7, 64, 3, 1, 1, 4, 1, 0, 0, "grouped 4 x 16");
        check_case_g(1, 96, 6, 6, 64, 1, 1, 0, 2, 1, 0, 1, "grouped 2 x 48 -> 32, 1x1");
        check_case_g(1, 64, 5, 5, 32, 3, 1, 1, 4, 1, 1, 1, "grouped 4 x 16 -> 8");
        /* plain input copied in groups (q_im2col_plain, VBMI): windows of 1 to 11 taps a row,
         * strides 1-4, every padding, 1-6 channels (a group meets up to 16 window rows, K past
         * the window zero), runs of 1-3 columns past the last four; a stride whose four windows
         * pass one 64-byte load takes the rows of K bytes */
        for (int r = 0; r < 10; r++) {
            int k = check_int(1, 11), st = check_int(1, 4);
            check_case(check_int(1, 3), check_int(1, 6), check_int(k, 30), check_int(k, 45),
                       check_int(1, 3) * 16, k, st, check_int(0, k / 2), 0, 0, check_int(0, 1),
                       "random plain shape");
        }
        check_case(2, 2, 40, 90, 16, 7, 20, 3, 0, 0, 1, "plain, 3 x stride + kw > 64");
        for (int r = 0; r < 6; r++) {
            int k = check_int(0, 2) * 2 + 1, st = check_int(1, 2);
            check_case(check_int(1, 3), check_int(1, 70), check_int(k, 13), check_int(k, 40),
                       check_int(1, 5) * 16, k, st, k / 2, check_int(0, 1), check_int(0, 1),
                       check_int(0, 1), "random shape");
        }
    }
    CHECK(at_zero > 0 && at_max > 0, "the cases never reach a clamp: %zu outputs at 0, %zu at %d",
          at_zero, at_max, RN_Q_MAX);
    printf("test_qconv: %zu outputs at 0 and %zu at %d compared\n", at_zero, at_max, RN_Q_MAX);
    return check_done("test_qconv");
}
