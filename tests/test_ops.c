/*
 * test_ops.c - the fast BatchNorm, ReLU, add, pooling, linear and layout
 * ops against their plain-C references on random shapes, thread-count
 * determinism, and the allocator's alignment.
 */
#include <stdlib.h>
#include <string.h>

#include "ops/kernels.h" /* before check.h: its check_kernel_paths */
#include "check.h"
#include "core/mem.h"
#include "ops/conv2d.h"
#include "ops/ops.h"
#include "resnet.h"

static float *rnd(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    check_fill(p, n, -2.0f, 2.0f);
    return p;
}

static void test_batchnorm(void) {
    for (int t = 0; t < 30; t++) {
        int C = check_int(1, 40);
        size_t M = (size_t)check_int(1, 3000);
        float *x = rnd((size_t)C * M), *res = rnd((size_t)C * M);
        for (size_t i = 0; i < (size_t)C * M; i++)
            x[i] = x[i] * 3.0f + 5.0f; /* a non-zero mean */
        float *m1 = malloc(C * sizeof(float)), *v1 = malloc(C * sizeof(float));
        float *m2 = malloc(C * sizeof(float)), *v2 = malloc(C * sizeof(float));
        batchnorm_stats_ref(x, C, M, m1, v1);
        batchnorm_stats(x, C, M, m2, v2);
        CHECK(check_rel_err(m2, m1, C) < 1e-6, "bn mean C=%d M=%zu", C, M);
        CHECK(check_rel_err(v2, v1, C) < 1e-5, "bn var C=%d M=%zu", C, M);
        /* the biased variance of the data, computed independently */
        double sum = 0, sq = 0;
        for (size_t i = 0; i < M; i++)
            sum += x[i];
        for (size_t i = 0; i < M; i++)
            sq += (x[i] - sum / M) * (x[i] - sum / M);
        CHECK(fabs(v1[0] - sq / M) <= 1e-4 * (1 + sq / M), "bn biased var");

        float *g = rnd(C), *b = rnd(C), *sc = malloc(C * sizeof(float)), *sh = malloc(C * sizeof(float));
        batchnorm_scale_shift(C, g, b, m1, v1, 1e-5f, sc, sh);
        float *y1 = malloc((size_t)C * M * sizeof(float)), *y2 = malloc((size_t)C * M * sizeof(float));
        int relu = t % 2, use_res = (t / 2) % 2;
        batchnorm_apply_ref(x, C, M, sc, sh, use_res ? res : NULL, relu, y1);
        batchnorm_apply(x, C, M, sc, sh, use_res ? res : NULL, relu, y2);
        CHECK(check_rel_err(y2, y1, (size_t)C * M) < 1e-6, "bn apply C=%d M=%zu relu=%d res=%d", C, M,
              relu, use_res);
        /* in place */
        memcpy(y2, x, (size_t)C * M * sizeof(float));
        batchnorm_apply(y2, C, M, sc, sh, use_res ? res : NULL, relu, y2);
        CHECK(check_rel_err(y2, y1, (size_t)C * M) < 1e-6, "bn apply in place");
        free(x), free(res), free(m1), free(v1), free(m2), free(v2), free(g), free(b), free(sc),
            free(sh), free(y1), free(y2);
    }
}

static void test_eltwise(void) {
    for (int t = 0; t < 10; t++) {
        size_t n = (size_t)check_int(1, 100000);
        float *a = rnd(n), *b = rnd(n), *y1 = malloc(n * 4), *y2 = malloc(n * 4);
        relu_forward_ref(a, n, y1);
        relu_forward(a, n, y2);
        CHECK(memcmp(y1, y2, n * 4) == 0, "relu n=%zu", n);
        for (int relu = 0; relu < 2; relu++) {
            add_forward_ref(a, b, n, relu, y1);
            add_forward(a, b, n, relu, y2);
            CHECK(memcmp(y1, y2, n * 4) == 0, "add n=%zu relu=%d", n, relu);
        }
        free(a), free(b), free(y1), free(y2);
    }
}

/* The kernel paths this CPU runs (check.h), set in main. */
static const rn_kernels *paths[RN_ISA_COUNT];
static int npaths;

/* Whether the blocked pool of x (planar: C = 16 * blocks channels of n images, H x W) laid out
 * blocked by 16 channels equals the reference on x itself on every kernel path (each path's
 * maxpool16 takes the whole 3x3 windows at stride 2): NaN where the reference has NaN, else the
 * same bits. On a mismatch *failed names the path. */
static int blocked_pool_matches(const float *x, int blocks, int n, int H, int W, int k, int stride,
                                int pad, const char **failed) {
    const int C = 16 * blocks;
    const int HO = maxpool2d_out_size(H, k, stride, pad), WO = maxpool2d_out_size(W, k, stride, pad);
    const size_t HW = (size_t)H * W, all = (size_t)C * n * HW, out = (size_t)C * n * HO * WO;
    float *xb = malloc(all * 4), *y1 = malloc(out * 4), *y2 = malloc(out * 4);
    for (int c = 0; c < C; c++) /* planar (C, n, H, W) -> blocked */
        for (int img = 0; img < n; img++)
            for (size_t q = 0; q < HW; q++)
                xb[((size_t)(c / 16) * n * HW + (size_t)img * HW + q) * 16 + c % 16] =
                    x[((size_t)c * n + img) * HW + q];
    maxpool2d_forward_ref(x, C * n, H, W, k, stride, pad, y1);
    int same = 1;
    *failed = "";
    for (int p = 0; p < npaths && same; p++) {
        memset(y2, 0x7f, out * 4);
        maxpool2d_forward_blocked16(paths[p], xb, blocks, n, H, W, k, stride, pad, y2);
        for (size_t i = 0; i < out; i++)
            same &= isnan(y1[i]) ? isnan(y2[i]) != 0 : memcmp(&y1[i], &y2[i], 4) == 0;
        if (!same)
            *failed = paths[p]->name;
    }
    free(xb), free(y1), free(y2);
    return same;
}

static void test_pool(void) {
    /* random shapes (the last ResNet's stem pool at 112x112), bit for bit: values with
     * many ties, signed zeros (the first maximum in scan order decides the sign) and -inf */
    for (int t = 0; t < 41; t++) {
        int P = check_int(1, 20), H = check_int(1, 40), W = check_int(1, 40);
        int k = check_int(1, 4), stride = check_int(1, 3), pad = check_int(0, k / 2);
        if (t == 40)
            P = 8, H = W = 112, k = 3, stride = 2, pad = 1;
        int HO = maxpool2d_out_size(H, k, stride, pad), WO = maxpool2d_out_size(W, k, stride, pad);
        if (HO < 1 || WO < 1)
            continue;
        float *x = rnd((size_t)P * H * W);
        for (size_t i = 0; t % 2 && i < (size_t)P * H * W; i++) {
            const int special = check_int(0, 9);
            x[i] = special < 3 ? (special % 2 ? -0.0f : 0.0f) : special < 4 ? -INFINITY : floorf(x[i] * 2.0f);
        }
        float *y1 = malloc((size_t)P * HO * WO * 4), *y2 = malloc((size_t)P * HO * WO * 4);
        maxpool2d_forward_ref(x, P, H, W, k, stride, pad, y1);
        maxpool2d_forward(x, P, H, W, k, stride, pad, y2);
        CHECK(memcmp(y1, y2, (size_t)P * HO * WO * 4) == 0, "maxpool P=%d %dx%d k=%d s=%d p=%d", P, H,
              W, k, stride, pad);
        free(x), free(y1), free(y2);
    }
    /* from input blocked by 16 channels (the stem's output when the session fuses it with its
     * pool), bit for bit against the reference on the same values laid out planar: ties,
     * signed zeros, -inf, and NaN in some planes (the exact rule there) */
    for (int t = 0; t < 30; t++) {
        const int blocks = check_int(1, 2), n = check_int(1, 3), H = check_int(1, 30),
                  W = check_int(1, 30), k = check_int(1, 4), stride = check_int(1, 3),
                  pad = check_int(0, k / 2);
        const int C = 16 * blocks;
        if (maxpool2d_out_size(H, k, stride, pad) < 1 || maxpool2d_out_size(W, k, stride, pad) < 1)
            continue;
        const size_t all = (size_t)C * n * H * W;
        float *x = rnd(all);
        for (size_t i = 0; t % 2 && i < all; i++) {
            const int special = check_int(0, 19);
            x[i] = special < 6 ? (special % 2 ? -0.0f : 0.0f) : special < 8 ? -INFINITY
                 : special < 9 && t % 3 == 0 ? NAN : floorf(x[i] * 2.0f);
        }
        const char *failed;
        CHECK(blocked_pool_matches(x, blocks, n, H, W, k, stride, pad, &failed),
              "maxpool blocked by 16 on %s: C=%d n=%d %dx%d k=%d s=%d p=%d", failed, C, n, H, W, k,
              stride, pad);
        free(x);
    }
    /* the stem's pool, 3x3 at stride 2 (the kernels' maxpool16 on the whole windows, C on the
     * edges): padding 1 and 0, even and odd sizes, rows of 1 to 3 runs of 16 windows and a
     * tail, 112x112; signed zeros and ties throughout (the earlier tap in scan order wins) */
    const int stems[][5] = {{1, 1, 112, 112, 1}, {2, 2, 9, 41, 1}, {1, 3, 10, 34, 1},
                            {3, 1, 7, 3, 1},     {1, 2, 8, 66, 0}, {2, 1, 5, 33, 0},
                            {1, 1, 3, 4, 1},     {1, 1, 30, 99, 1}, {4, 1, 6, 6, 0}};
    for (size_t t = 0; t < sizeof stems / sizeof stems[0]; t++) {
        const int blocks = stems[t][0], n = stems[t][1], H = stems[t][2], W = stems[t][3],
                  pad = stems[t][4];
        const size_t all = (size_t)16 * blocks * n * H * W;
        float *x = rnd(all);
        for (size_t i = 0; i < all; i++) {
            const int special = check_int(0, 9);
            x[i] = special < 4 ? (special % 2 ? -0.0f : 0.0f) : special < 5 ? -INFINITY
                                                                          : floorf(x[i] * 2.0f);
        }
        const char *failed;
        CHECK(blocked_pool_matches(x, blocks, n, H, W, 3, 2, pad, &failed),
              "maxpool 3x3/2 blocked by 16 on %s: C=%d n=%d %dx%d p=%d", failed, 16 * blocks, n, H,
              W, pad);
        free(x);
    }
    /* a single NaN in each input row in turn, on a map of several bands of output rows (the
     * blocked pool scans each band's own input rows for NaN): every window that reads it is
     * NaN, whichever band it falls in; in the row's last column too (the end of a band's
     * scan, past its last whole 64 floats) */
    for (int r = 0; r < 80; r++) {
        const int H = 40, W = 9, row = r % 40, col = r < 40 ? r % W : W - 1;
        float *x = rnd((size_t)16 * H * W);
        x[(size_t)(r % 16) * H * W + (size_t)row * W + col] = NAN;
        const char *failed;
        CHECK(blocked_pool_matches(x, 1, 1, H, W, 3, 2, 1, &failed),
              "maxpool blocked by 16 on %s: one NaN in input row %d of %d, column %d", failed, row,
              H, col);
        free(x);
    }
    /* padding is -inf, not zero: an all-negative plane keeps its maximum */
    float neg[4] = {-5, -4, -3, -2}, out[4];
    maxpool2d_forward(neg, 1, 2, 2, 3, 2, 1, out);
    CHECK(out[0] == -2.0f, "maxpool pads with -inf, got %g", out[0]);
    /* a NaN anywhere in a window is that window's result (PyTorch), before
     * or after the maximum, in both implementations; -inf stays -inf */
    const float nan_x[16] = {1, NAN, 3, 4, 9, 0, 0, 0, -INFINITY, -INFINITY, 2, 2,
                             -INFINITY, -INFINITY, 2, NAN};
    float nr[4], nf[4];
    maxpool2d_forward_ref(nan_x, 1, 4, 4, 2, 2, 0, nr);
    maxpool2d_forward(nan_x, 1, 4, 4, 2, 2, 0, nf);
    CHECK(isnan(nr[0]) && isnan(nf[0]) && nr[1] == 4.0f && nf[1] == 4.0f && nr[2] == -INFINITY &&
              nf[2] == -INFINITY && isnan(nr[3]) && isnan(nf[3]),
          "maxpool propagates NaN and keeps -inf: ref %g %g %g %g, fast %g %g %g %g", nr[0], nr[1],
          nr[2], nr[3], nf[0], nf[1], nf[2], nf[3]);
    for (int t = 0; t < 20; t++) {
        size_t P = (size_t)check_int(1, 300), HW = (size_t)check_int(1, 3000);
        float *x = rnd(P * HW), *y1 = malloc(P * 4), *y2 = malloc(P * 4);
        avgpool_global_forward_ref(x, P, HW, y1);
        avgpool_global_forward(x, P, HW, y2);
        CHECK(check_rel_err(y2, y1, P) < 1e-5, "avgpool P=%zu HW=%zu", P, HW);
        free(x), free(y1), free(y2);
    }
}

static void test_linear(void) {
    for (int t = 0; t < 20; t++) {
        int C = check_int(1, 600), N = check_int(1, 40), K = check_int(1, 120);
        float *x = rnd((size_t)C * N), *w = rnd((size_t)K * C), *b = t % 3 ? rnd(K) : NULL;
        float *y1 = malloc((size_t)N * K * 4), *y2 = malloc((size_t)N * K * 4), *work = malloc((size_t)N * K * 4);
        linear_forward_ref(x, C, N, w, b, K, y1);
        linear_forward(NULL, x, C, N, w, b, K, y2, work);
        CHECK(check_rel_err(y2, y1, (size_t)N * K) < 1e-5, "linear C=%d N=%d K=%d", C, N, K);
        free(x), free(w), free(b), free(y1), free(y2), free(work);
    }
    /* batch 1 (its own loop, on each kernel path's gemv): resnet50's classifier, short rows,
     * rows of 16k + 1..15 and 32k + 16, on 1-3 threads: the same bytes whatever the threads */
    const int shapes[][2] = {{2048, 1000}, {512, 10}, {7, 3}, {33, 130}, {1, 1}, {100, 700},
                             {48, 17}, {23, 40}};
    for (int p = 0; p < npaths; p++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            const int C = shapes[i][0], K = shapes[i][1];
            float *x = rnd((size_t)C), *w = rnd((size_t)K * C), *b = i % 2 ? NULL : rnd(K);
            float *y1 = malloc((size_t)K * 4), *y2 = malloc((size_t)K * 4),
                  *y3 = malloc((size_t)K * 4);
            linear_forward_ref(x, C, 1, w, b, K, y1);
            int same = 1;
            for (int t = 1; t <= 3; t++) {
                rn_set_threads(t);
                linear_forward(paths[p], x, C, 1, w, b, K, t == 1 ? y2 : y3, NULL);
                same &= t == 1 || memcmp(y2, y3, (size_t)K * 4) == 0;
            }
            rn_set_threads(0);
            CHECK(check_rel_err(y2, y1, (size_t)K) < 1e-5 && same,
                  "linear batch 1 on %s, C=%d K=%d: error %g, same on 1-3 threads %d",
                  paths[p]->name, C, K, check_rel_err(y2, y1, (size_t)K), same);
            free(x), free(w), free(b), free(y1), free(y2), free(y3);
        }
}

static void test_layout(void) {
    int N = 3, C = 5;
    size_t HW = 7;
    float *x = rnd((size_t)N * C * HW), *y = malloc((size_t)N * C * HW * 4), *z = malloc((size_t)N * C * HW * 4);
    layout_nchw_to_cnhw(x, N, C, HW, y);
    CHECK(y[((size_t)2 * N + 1) * HW + 3] == x[((size_t)1 * C + 2) * HW + 3], "layout element");
    layout_cnhw_to_nchw(y, N, C, HW, z);
    CHECK(memcmp(x, z, (size_t)N * C * HW * 4) == 0, "layout round trip");
    free(x), free(y), free(z);
}

/* The fast ops give bitwise the same result on 1 and 2 threads. */
static void test_threads(void) {
    int C = 37;
    size_t M = 5001;
    float *x = rnd((size_t)C * M), m1[37], v1[37], m2[37], v2[37];
    rn_set_threads(1);
    batchnorm_stats(x, C, M, m1, v1);
    rn_set_threads(2);
    batchnorm_stats(x, C, M, m2, v2);
    CHECK(memcmp(m1, m2, sizeof m1) == 0 && memcmp(v1, v2, sizeof v1) == 0, "bn stats deterministic");
    rn_set_threads(0);
    free(x);
}

/* rn_alloc: 64-byte aligned below RN_HUGE_BYTES; from there 2 MB aligned (huge pages asked
 * for, Linux), unless RN_HUGEPAGES=0; every byte writable, rn_calloc's zero. */
static void test_alloc(void) {
    const size_t sizes[] = {1, 100, 4096, RN_HUGE_BYTES - 1, RN_HUGE_BYTES, 5u << 20};
    for (int off = 0; off < 2; off++) {
        if (off)
            setenv("RN_HUGEPAGES", "0", 1);
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            unsigned char *p = rn_alloc(sizes[i]);
            const uintptr_t a = (uintptr_t)p;
            int huge = 0;
#if defined(__linux__)
            huge = !off && sizes[i] >= RN_HUGE_BYTES;
#endif
            CHECK(p && a % 64 == 0 && (!huge || a % RN_HUGE_BYTES == 0),
                  "rn_alloc(%zu) at %p, huge pages %s", sizes[i], (void *)p, off ? "off" : "on");
            if (p)
                memset(p, 0xab, sizes[i]);
            rn_free(p);
            float *z = rn_calloc(sizes[i] / sizeof(float) + 1, sizeof(float));
            size_t nonzero = 0;
            for (size_t j = 0; z && j < sizes[i] / sizeof(float) + 1; j++)
                nonzero += z[j] != 0.0f;
            CHECK(z && nonzero == 0, "rn_calloc(%zu): %zu nonzero", sizes[i], nonzero);
            rn_free(z);
        }
    }
    unsetenv("RN_HUGEPAGES");
    CHECK(rn_alloc((size_t)-1) == NULL, "rn_alloc(SIZE_MAX) fails");
}

/* ReLU keeps NaN, as PyTorch does, in every place it is applied. */
static void test_relu_nan(void) {
    float x[40], y[40], one[2] = {1.0f, 1.0f}, zero[2] = {0.0f, 0.0f};
    for (int i = 0; i < 40; i++)
        x[i] = i % 3 == 0 ? NAN : i % 3 == 1 ? -1.0f : 2.0f;
    relu_forward(x, 40, y);
    CHECK(isnan(y[0]) && y[1] == 0.0f && y[2] == 2.0f, "relu_forward keeps NaN");
    relu_forward_ref(x, 40, y);
    CHECK(isnan(y[0]) && y[1] == 0.0f, "relu_forward_ref keeps NaN");
    add_forward(x, x, 40, 1, y);
    CHECK(isnan(y[3]) && y[4] == 0.0f && y[5] == 4.0f, "add_forward(relu) keeps NaN");
    batchnorm_apply(x, 2, 20, one, zero, NULL, 1, y);
    CHECK(isnan(y[0]) && y[1] == 0.0f && y[2] == 2.0f, "batchnorm_apply(relu) keeps NaN");
    /* the GEMM epilogue: a 1x1 conv of 16 channels (the SIMD path), one NaN input pixel */
    enum { C = 16, P = 64 };
    static float cx[C * P], cw[C * C], cy[C * P], cr[C * P];
    for (int i = 0; i < C * P; i++)
        cx[i] = (float)(i % 7) - 3.0f;
    for (int i = 0; i < C * C; i++)
        cw[i] = i % (C + 1) == 0 ? 1.0f : 0.0f; /* identity */
    cx[5] = NAN;
    rn_conv_shape s = {.n = 1, .cin = C, .h = 8, .w = 8, .cout = C, .kh = 1, .kw = 1, .stride = 1, .pad = 0, .groups = 1};
    conv2d_shape_init(&s);
    conv2d_forward(NULL, &s, cx, cw, NULL, NULL, 1, cy, NULL);
    conv2d_forward_ref(&s, cx, cw, NULL, NULL, 1, cr);
    CHECK(isnan(cy[5]) && isnan(cr[5]) && cy[0] == 0.0f && cy[4] == 1.0f, "conv relu epilogue keeps NaN: %g %g", cy[5], cr[5]);
}

int main(void) {
    npaths = check_kernel_paths("test_ops", paths);
    test_alloc();
    test_relu_nan();
    test_batchnorm();
    test_eltwise();
    test_pool();
    test_linear();
    test_layout();
    test_threads();
    return check_done("test_ops");
}
