/*
 * test_backward.c - every backward op against finite differences, fast
 * against reference, and 1 vs 2 threads.
 *
 *   1. Gradients: each op's float backward (reference and fast) against
 *      central differences of a double-precision forward written here,
 *      with the scalar loss L = sum(r * y) for a random r (so dy = r), or
 *      the loss itself for cross-entropy. Tolerance: |a - g| / |g| <= 1e-3
 *      (Euclidean norms).
 *   2. Fast against reference on random and fixed convolution shapes (all
 *      three data routes, both weight-product orientations, chunking,
 *      cropped kernels, groups, beta 0 / 1, SIMD and portable kernels), and
 *      the per-channel ops: max |fast - ref| / max |ref| <= 1e-5.
 *   3. The fast paths give bitwise identical results on 1 and 2 threads
 *      (and 3, for the convolutions: an uneven split of the work).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "ops/conv2d.h"
#include "ops/conv_wgrad.h"
#include "ops/gemm.h"
#include "ops/ops.h"
#include "ops/kernels.h"
#include "resnet.h"
#include "check.h"
#include "conv_case.h"

static const rn_kernels *kd; /* the kernel path under test (NULL: the default) */
static int wino;             /* the data gradient by Winograd or direct where they pay (conv2d.h) */

#define FD_TOL 1e-3
#define FD_STEP 1e-6
#define FAST_TOL 1e-5
#define WINO_TOL 1e-4 /* Winograd F(4x4, 3x3): conv_algo.h */
#define EPS 1e-5

/* ---------------------------------------------------------------------------
 * Buffers
 * ------------------------------------------------------------------------- */

static float *fbuf(size_t n) {
    float *p = rn_alloc((n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "test_backward: out of memory\n");
        exit(2);
    }
    return p;
}

static double *dbuf(size_t n) {
    double *p = calloc(n ? n : 1, sizeof(double));
    if (!p) {
        fprintf(stderr, "test_backward: out of memory\n");
        exit(2);
    }
    return p;
}

static float *frand(size_t n, float lo, float hi) {
    float *p = fbuf(n);
    check_fill(p, n, lo, hi);
    return p;
}

static double *to_double(const float *f, size_t n) {
    double *d = dbuf(n);
    for (size_t i = 0; i < n; i++)
        d[i] = f[i];
    return d;
}

/* |a - g| / |g| in Euclidean norms. */
static double norm_err(const float *a, const double *g, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num += (a[i] - g[i]) * (a[i] - g[i]);
        den += g[i] * g[i];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

static int same_bits(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

/* ---------------------------------------------------------------------------
 * Double-precision forward passes (the functions being differentiated)
 * ------------------------------------------------------------------------- */

static void conv_fwd_d(const rn_conv_shape *s, const double *x, const double *w,
                       const double *b, double *y) {
    // x: (cin, n, h, w)  w: (cout, cin/G, kh, kw)  y: (cout, n, ho, wo)
    const int cin_g = s->cin / s->groups, cout_g = s->cout / s->groups;
    for (int co = 0; co < s->cout; co++)
        for (int n = 0; n < s->n; n++)
            for (int oh = 0; oh < s->ho; oh++)
                for (int ow = 0; ow < s->wo; ow++) {
                    double sum = b ? b[co] : 0.0;
                    for (int c = 0; c < cin_g; c++)
                        for (int ki = 0; ki < s->kh; ki++)
                            for (int kj = 0; kj < s->kw; kj++) {
                                int ih = oh * s->stride - s->pad + ki;
                                int iw = ow * s->stride - s->pad + kj;
                                if (ih < 0 || ih >= s->h || iw < 0 || iw >= s->w)
                                    continue;
                                int ci = co / cout_g * cin_g + c;
                                sum += x[(((size_t)ci * s->n + n) * s->h + ih) * s->w + iw] *
                                       w[(((size_t)co * cin_g + c) * s->kh + ki) * s->kw + kj];
                            }
                    y[(((size_t)co * s->n + n) * s->ho + oh) * s->wo + ow] = sum;
                }
}

/* Train-mode BatchNorm: biased batch variance, eps inside the root. */
static void bn_fwd_d(const double *x, int C, size_t M, const double *gamma,
                     const double *beta, double *y) {
    for (int c = 0; c < C; c++) {
        const double *r = x + (size_t)c * M;
        double mu = 0.0, var = 0.0;
        for (size_t m = 0; m < M; m++)
            mu += r[m];
        mu /= (double)M;
        for (size_t m = 0; m < M; m++)
            var += (r[m] - mu) * (r[m] - mu);
        var /= (double)M;
        for (size_t m = 0; m < M; m++)
            y[(size_t)c * M + m] = (r[m] - mu) / sqrt(var + EPS) * gamma[c] + beta[c];
    }
}

static void maxpool_fwd_d(const double *x, int P, int H, int W, int k, int stride, int pad,
                          double *y) {
    int HO = maxpool2d_out_size(H, k, stride, pad), WO = maxpool2d_out_size(W, k, stride, pad);
    for (int p = 0; p < P; p++)
        for (int oy = 0; oy < HO; oy++)
            for (int ox = 0; ox < WO; ox++) {
                double m = -INFINITY;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                        if (iy >= 0 && iy < H && ix >= 0 && ix < W &&
                            x[((size_t)p * H + iy) * W + ix] > m)
                            m = x[((size_t)p * H + iy) * W + ix];
                    }
                y[((size_t)p * HO + oy) * WO + ox] = m;
            }
}

/* x: (C, N), w: (K, C), b: (K) -> y: (N, K) */
static void linear_fwd_d(const double *x, int C, int N, const double *w, const double *b,
                         int K, double *y) {
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            double sum = b[k];
            for (int c = 0; c < C; c++)
                sum += w[(size_t)k * C + c] * x[(size_t)c * N + n];
            y[(size_t)n * K + k] = sum;
        }
}

/* torch.nn.CrossEntropyLoss(label_smoothing=s), mean over the batch. */
static double ce_fwd_d(const double *z, const int *labels, int N, int K, double s) {
    double total = 0.0;
    for (int n = 0; n < N; n++) {
        const double *r = z + (size_t)n * K;
        double mx = r[0], sum = 0.0, smooth = 0.0;
        for (int k = 1; k < K; k++)
            mx = r[k] > mx ? r[k] : mx;
        for (int k = 0; k < K; k++)
            sum += exp(r[k] - mx);
        double lse = mx + log(sum);
        for (int k = 0; k < K; k++)
            smooth += lse - r[k];
        total += (1.0 - s) * (lse - r[labels[n]]) + s * smooth / K;
    }
    return total / N;
}

static double dot(const double *a, const double *b, size_t n) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += a[i] * b[i];
    return sum;
}

/* ---------------------------------------------------------------------------
 * Central differences: g[i] = dL/dp[i] for the objective f over a context
 * ------------------------------------------------------------------------- */

typedef double (*objective_fn)(void *ctx);

static void numeric_grad(objective_fn f, void *ctx, double *p, size_t n, double *g) {
    for (size_t i = 0; i < n; i++) {
        double keep = p[i];
        p[i] = keep + FD_STEP;
        double fp = f(ctx);
        p[i] = keep - FD_STEP;
        double fm = f(ctx);
        p[i] = keep;
        g[i] = (fp - fm) / (2.0 * FD_STEP);
    }
}

/* ---------------------------------------------------------------------------
 * 1. Gradients against finite differences
 * ------------------------------------------------------------------------- */

typedef struct conv_ctx {
    const rn_conv_shape *s;
    double *x, *w, *b, *r, *y;
    size_t y_n;
} conv_ctx;

static double conv_objective(void *p) {
    conv_ctx *c = p;
    conv_fwd_d(c->s, c->x, c->w, c->b, c->y);
    return dot(c->r, c->y, c->y_n);
}

static void fd_conv(rn_conv_shape s, int with_bias) {
    conv_sizes sz;
    if (!conv_case_init(&s, "fd conv", &sz))
        return;
    const size_t x_n = sz.x, w_n = sz.w, y_n = sz.y;
    float *x = frand(x_n, -1, 1), *w = frand(w_n, -1, 1), *b = frand(s.cout, -1, 1);
    float *r = frand(y_n, -1, 1);
    conv_ctx c = {&s, to_double(x, x_n), to_double(w, w_n), with_bias ? to_double(b, s.cout) : NULL,
                  to_double(r, y_n), dbuf(y_n), y_n};
    double *gx = dbuf(x_n), *gw = dbuf(w_n), *gb = dbuf(s.cout);
    numeric_grad(conv_objective, &c, c.x, x_n, gx);
    numeric_grad(conv_objective, &c, c.w, w_n, gw);
    if (with_bias)
        numeric_grad(conv_objective, &c, c.b, s.cout, gb);

    float *ws = fbuf(conv2d_backward_workspace_floats(kd, &s, wino));
    float *dx = fbuf(x_n), *dw = fbuf(w_n), *db = fbuf(s.cout);
    for (int fast = 0; fast <= 1; fast++) {
        if (fast) {
            conv2d_backward_data(kd, &s, r, w, 0.0f, dx, ws, wino);
            conv2d_backward_weight(kd, &s, x, r, dw, db, ws, wino);
        } else {
            conv2d_backward_data_ref(&s, r, w, 0.0f, dx);
            conv2d_backward_weight_ref(&s, x, r, dw, db);
        }
        double ex = norm_err(dx, gx, x_n), ew = norm_err(dw, gw, w_n);
        double eb = with_bias ? norm_err(db, gb, s.cout) : 0.0;
        CHECK(ex <= FD_TOL && ew <= FD_TOL && eb <= FD_TOL,
              "fd conv %s n=%d cin=%d %dx%d cout=%d k=%dx%d s=%d p=%d g=%d: "
              "dx %.1e dw %.1e db %.1e",
              fast ? "fast" : "ref", s.n, s.cin, s.h, s.w, s.cout, s.kh, s.kw, s.stride, s.pad,
              s.groups, ex, ew, eb);
    }
    rn_free(x), rn_free(w), rn_free(b), rn_free(r), rn_free(ws), rn_free(dx), rn_free(dw),
        rn_free(db);
    free(c.x), free(c.w), free(c.b), free(c.r), free(c.y), free(gx), free(gw), free(gb);
}

typedef struct bn_ctx {
    double *x, *gamma, *beta, *r, *y;
    int C;
    size_t M;
} bn_ctx;

static double bn_objective(void *p) {
    bn_ctx *c = p;
    bn_fwd_d(c->x, c->C, c->M, c->gamma, c->beta, c->y);
    return dot(c->r, c->y, (size_t)c->C * c->M);
}

static void fd_batchnorm(int C, size_t M) {
    size_t n = (size_t)C * M;
    float *x = frand(n, -1, 1), *g = frand(C, 0.5f, 1.5f), *be = frand(C, -1, 1);
    float *r = frand(n, -1, 1);
    for (size_t i = 0; i < n; i++)
        x[i] = 3.0f * x[i] + 2.0f; /* a non-zero mean */
    bn_ctx c = {to_double(x, n), to_double(g, C), to_double(be, C), to_double(r, n), dbuf(n), C, M};
    double *gx = dbuf(n), *gg = dbuf(C), *gb = dbuf(C);
    numeric_grad(bn_objective, &c, c.x, n, gx);
    numeric_grad(bn_objective, &c, c.gamma, C, gg);
    numeric_grad(bn_objective, &c, c.beta, C, gb);

    float *mean = fbuf(C), *var = fbuf(C), *invstd = fbuf(C);
    batchnorm_stats_ref(x, C, M, mean, var);
    for (int i = 0; i < C; i++)
        invstd[i] = 1.0f / sqrtf(var[i] + RN_BN_EPS);
    float *dx = fbuf(n), *dg = fbuf(C), *db = fbuf(C);
    for (int fast = 0; fast <= 1; fast++) {
        (fast ? batchnorm_backward : batchnorm_backward_ref)(x, r, C, M, g, mean, invstd, dx, dg,
                                                             db);
        double ex = norm_err(dx, gx, n), eg = norm_err(dg, gg, C), eb = norm_err(db, gb, C);
        CHECK(ex <= FD_TOL && eg <= FD_TOL && eb <= FD_TOL,
              "fd batchnorm %s C=%d M=%zu: dx %.1e dgamma %.1e dbeta %.1e", fast ? "fast" : "ref",
              C, M, ex, eg, eb);
    }
    rn_free(x), rn_free(g), rn_free(be), rn_free(r), rn_free(mean), rn_free(var),
        rn_free(invstd), rn_free(dx), rn_free(dg), rn_free(db);
    free(c.x), free(c.gamma), free(c.beta), free(c.r), free(c.y), free(gx), free(gg), free(gb);
}

typedef struct pool_ctx {
    double *x, *r, *y;
    int P, H, W, k, stride, pad, HO, WO, avg; /* avg: global average instead of max */
} pool_ctx;

static double pool_objective(void *p) {
    pool_ctx *c = p;
    size_t y_n;
    if (c->avg) {
        for (int q = 0; q < c->P; q++) {
            double sum = 0.0;
            for (int i = 0; i < c->H * c->W; i++)
                sum += c->x[(size_t)q * c->H * c->W + i];
            c->y[q] = sum / (c->H * c->W);
        }
        y_n = c->P;
    } else {
        maxpool_fwd_d(c->x, c->P, c->H, c->W, c->k, c->stride, c->pad, c->y);
        y_n = (size_t)c->P * c->HO * c->WO;
    }
    return dot(c->r, c->y, y_n);
}

static void fd_pool(int P, int H, int W, int k, int stride, int pad, int avg) {
    pool_ctx c = {.P = P, .H = H, .W = W, .k = k, .stride = stride, .pad = pad, .avg = avg,
                  .HO = avg ? 1 : maxpool2d_out_size(H, k, stride, pad),
                  .WO = avg ? 1 : maxpool2d_out_size(W, k, stride, pad)};
    size_t x_n = (size_t)P * H * W, y_n = (size_t)P * c.HO * c.WO;
    float *x = frand(x_n, -1, 1), *r = frand(y_n, -1, 1), *dx = fbuf(x_n);
    c.x = to_double(x, x_n);
    c.r = to_double(r, y_n);
    c.y = dbuf(y_n);
    float *py = fbuf(avg ? 1 : y_n); /* the forward's output, for the fast max-pool backward */
    if (!avg)
        maxpool2d_forward(x, P, H, W, k, stride, pad, py);
    double *gx = dbuf(x_n);
    numeric_grad(pool_objective, &c, c.x, x_n, gx);
    for (int fast = 0; fast <= 1; fast++) {
        if (avg)
            (fast ? avgpool_global_backward : avgpool_global_backward_ref)(r, P, (size_t)H * W, dx);
        else if (fast)
            maxpool2d_backward(x, py, r, P, H, W, k, stride, pad, dx);
        else
            maxpool2d_backward_ref(x, r, P, H, W, k, stride, pad, dx);
        double e = norm_err(dx, gx, x_n);
        CHECK(e <= FD_TOL, "fd %s %s P=%d %dx%d k=%d s=%d p=%d: dx %.1e",
              avg ? "avgpool" : "maxpool", fast ? "fast" : "ref", P, H, W, k, stride, pad, e);
    }
    rn_free(x), rn_free(r), rn_free(dx), rn_free(py);
    free(c.x), free(c.r), free(c.y), free(gx);
}

static void fd_relu(size_t n) {
    float *x = frand(n, -1, 1), *r = frand(n, -1, 1), *y = fbuf(n), *dx = fbuf(n);
    relu_forward_ref(x, n, y);
    /* d/dx sum(r * max(x, 0)), by central differences of the double forward */
    double *g = dbuf(n);
    for (size_t i = 0; i < n; i++) {
        double xp = (double)x[i] + FD_STEP, xm = (double)x[i] - FD_STEP;
        g[i] = r[i] * ((xp > 0 ? xp : 0) - (xm > 0 ? xm : 0)) / (2.0 * FD_STEP);
    }
    for (int fast = 0; fast <= 1; fast++) {
        (fast ? relu_backward : relu_backward_ref)(y, r, n, dx);
        double e = norm_err(dx, g, n);
        CHECK(e <= FD_TOL, "fd relu %s n=%zu: dx %.1e", fast ? "fast" : "ref", n, e);
    }
    rn_free(x), rn_free(r), rn_free(y), rn_free(dx);
    free(g);
}

typedef struct linear_ctx {
    double *x, *w, *b, *r, *y;
    int C, N, K;
} linear_ctx;

static double linear_objective(void *p) {
    linear_ctx *c = p;
    linear_fwd_d(c->x, c->C, c->N, c->w, c->b, c->K, c->y);
    return dot(c->r, c->y, (size_t)c->N * c->K);
}

static void fd_linear(int C, int N, int K) {
    size_t x_n = (size_t)C * N, w_n = (size_t)K * C, y_n = (size_t)N * K;
    float *x = frand(x_n, -1, 1), *w = frand(w_n, -1, 1), *b = frand(K, -1, 1);
    float *r = frand(y_n, -1, 1);
    linear_ctx c = {to_double(x, x_n), to_double(w, w_n), to_double(b, K), to_double(r, y_n),
                    dbuf(y_n), C, N, K};
    double *gx = dbuf(x_n), *gw = dbuf(w_n), *gb = dbuf(K);
    numeric_grad(linear_objective, &c, c.x, x_n, gx);
    numeric_grad(linear_objective, &c, c.w, w_n, gw);
    numeric_grad(linear_objective, &c, c.b, K, gb);
    float *dx = fbuf(x_n), *dw = fbuf(w_n), *db = fbuf(K);
    for (int fast = 0; fast <= 1; fast++) {
        if (fast)
            linear_backward(kd, x, C, N, w, K, r, dx, dw, db);
        else
            linear_backward_ref(x, C, N, w, K, r, dx, dw, db);
        double ex = norm_err(dx, gx, x_n), ew = norm_err(dw, gw, w_n), eb = norm_err(db, gb, K);
        CHECK(ex <= FD_TOL && ew <= FD_TOL && eb <= FD_TOL,
              "fd linear %s C=%d N=%d K=%d: dx %.1e dw %.1e db %.1e", fast ? "fast" : "ref", C,
              N, K, ex, ew, eb);
    }
    rn_free(x), rn_free(w), rn_free(b), rn_free(r), rn_free(dx), rn_free(dw), rn_free(db);
    free(c.x), free(c.w), free(c.b), free(c.r), free(c.y), free(gx), free(gw), free(gb);
}

typedef struct ce_ctx {
    double *z;
    const int *labels;
    int N, K;
    double s;
} ce_ctx;

static double ce_objective(void *p) {
    ce_ctx *c = p;
    return ce_fwd_d(c->z, c->labels, c->N, c->K, c->s);
}

static void fd_cross_entropy(int N, int K, float s) {
    size_t n = (size_t)N * K;
    float *z = frand(n, -4, 4), *dz = fbuf(n);
    int *labels = malloc(N * sizeof(int));
    for (int i = 0; i < N; i++)
        labels[i] = check_int(0, K - 1);
    ce_ctx c = {to_double(z, n), labels, N, K, s};
    double *g = dbuf(n);
    numeric_grad(ce_objective, &c, c.z, n, g);
    double want = ce_fwd_d(c.z, labels, N, K, s);
    int hits_want = 0;
    for (int i = 0; i < N; i++) {
        int arg = 0;
        for (int k = 1; k < K; k++)
            arg = z[(size_t)i * K + k] > z[(size_t)i * K + arg] ? k : arg;
        hits_want += arg == labels[i];
    }
    for (int fast = 0; fast <= 1; fast++) {
        int hits = -1;
        float loss = (fast ? softmax_cross_entropy : softmax_cross_entropy_ref)(z, labels, N, K, s,
                                                                               dz, &hits);
        double e = norm_err(dz, g, n);
        CHECK(e <= FD_TOL && fabs(loss - want) <= 1e-5 * (1 + fabs(want)) && hits == hits_want,
              "fd cross-entropy %s N=%d K=%d s=%g: dlogits %.1e loss %.7g want %.7g correct %d/%d",
              fast ? "fast" : "ref", N, K, s, e, loss, want, hits, hits_want);
    }
    rn_free(z), rn_free(dz);
    free(labels), free(c.z), free(g);
}

/* A value PyTorch gives: CrossEntropyLoss(label_smoothing=0.1)([[1, 2, 3]], [0]). */
static void check_cross_entropy_value(void) {
    const float z[3] = {1, 2, 3};
    const int label = 0;
    float d1[3], d2[3];
    float l1 = softmax_cross_entropy_ref(z, &label, 1, 3, 0.1f, d1, NULL);
    float l2 = softmax_cross_entropy(z, &label, 1, 3, 0.1f, d2, NULL);
    CHECK(fabsf(l1 - 2.3076060f) < 1e-6f && fabsf(l2 - 2.3076060f) < 1e-6f,
          "cross-entropy value %.7f %.7f, want 2.3076060", l1, l2);
    /* softmax [0.0900306, 0.2447285, 0.6652410] - target [0.9333, 0.0333, 0.0333] */
    CHECK(fabsf(d2[0] + 0.8433027f) < 1e-6f && fabsf(d2[1] - 0.2113951f) < 1e-6f &&
              fabsf(d2[2] - 0.6319076f) < 1e-6f,
          "cross-entropy gradient %.7f %.7f %.7f", d2[0], d2[1], d2[2]);
}

/* ---------------------------------------------------------------------------
 * 2. Fast convolution backward against the reference
 * ------------------------------------------------------------------------- */

static rn_conv_shape shape(int n, int cin, int h, int w, int cout, int k, int stride, int pad,
                           int groups) {
    return (rn_conv_shape){.n = n, .cin = cin, .h = h, .w = w, .cout = cout, .kh = k, .kw = k,
                           .stride = stride, .pad = pad, .groups = groups};
}

/* 1 when kd's strips read dy in place (AVX-512), 0 when they read a copy (AVX2, portable) */
static int reads_dy_in_place(const rn_kernels *kd) { return rn_kernels_or_default(kd)->wgrad_rows; }

static void fast_vs_ref_conv(rn_conv_shape s, float beta, const char *tag) {
    conv_sizes sz;
    if (!conv_case_init(&s, tag, &sz))
        return;
    const size_t x_n = sz.x, w_n = sz.w, y_n = sz.y;
    float *x = frand(x_n, -1, 1), *w = frand(w_n, -1, 1), *dy = frand(y_n, -1, 1);
    float *dx0 = frand(x_n, -1, 1), *dx1 = fbuf(x_n), *dx2 = fbuf(x_n);
    float *dw1 = fbuf(w_n), *dw2 = fbuf(w_n), *db1 = fbuf(s.cout), *db2 = fbuf(s.cout);
    float *ws = fbuf(conv2d_backward_workspace_floats(kd, &s, wino));

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
    rn_conv_shape r = shape(2, 256, 14, 14, 24, 3, 2, 1, 1), narrow = shape(2, 64, 14, 14, 24, 3, 2, 1, 1),
                  flat = shape(2, 256, 14, 14, 24, 3, 1, 1, 1);
    conv2d_shape_init(&r), conv2d_shape_init(&narrow), conv2d_shape_init(&flat);
    CHECK(conv2d_backward_data_by_phases(kd, &r) && !conv2d_backward_data_by_phases(kd, &narrow) &&
              !conv2d_backward_data_by_phases(kd, &flat),
          "by phases: 3x3/2 on 256 channels yes, on 64 no, stride 1 no");
    fast_vs_ref_conv(r, 1.0f, "resnet 3x3/2 by phases");
}

static void fast_vs_ref_fixed(void) {
    /* ResNet-like: flipped 3x3, strided 3x3 and 1x1 (col2im), pointwise */
    fast_vs_ref_conv(shape(2, 32, 14, 14, 32, 3, 1, 1, 1), 0.0f, "resnet 3x3");
    /* where the heuristic picks Winograd F(2x2) (with wino, for the data gradient too): a
     * last stage at batch 1, and 2x2 maps (the 28x28 models' third stage) */
    fast_vs_ref_conv(shape(1, 256, 7, 7, 256, 3, 1, 1, 1), 1.0f, "last stage 3x3");
    fast_vs_ref_conv(shape(16, 256, 2, 2, 256, 3, 1, 1, 1), 0.0f, "3x3 on 2x2");
    /* where it picks the direct convolution (with wino, for the data gradient too): 16
     * channels, the narrow networks' first stage */
    fast_vs_ref_conv(shape(3, 16, 28, 28, 16, 3, 1, 1, 1), 1.0f, "narrow 3x3");
    fast_vs_ref_conv(shape(2, 12, 28, 28, 16, 3, 1, 1, 1), 0.0f, "narrow 3x3 ragged panel");
    fast_vs_ref_conv(shape(2, 16, 15, 15, 32, 3, 2, 1, 1), 1.0f, "resnet 3x3/2");
    fast_vs_ref_conv(shape(2, 16, 14, 14, 32, 1, 2, 0, 1), 1.0f, "resnet 1x1/2");
    fast_vs_ref_conv(shape(2, 48, 9, 9, 40, 1, 1, 0, 2), 1.0f, "pointwise g2");
    fast_vs_ref_conv(shape(1, 3, 30, 30, 8, 7, 2, 3, 1), 0.0f, "stem 7x7/2");
    /* flipped route with the widest padding (k - 1 - pad = 6), and pad > k - 1 */
    fast_vs_ref_conv(shape(2, 4, 12, 11, 6, 7, 1, 0, 2), 0.0f, "7x7 p0");
    fast_vs_ref_conv(shape(2, 4, 6, 7, 6, 1, 1, 2, 1), 1.0f, "1x1 p2");
    /* several weight chunks (K = 576: 432 pixels each) and col2im chunks (1536); more than
     * 32 output channels, so that the weight gradient takes the GEMM, not the direct strips */
    fast_vs_ref_conv(shape(2, 64, 42, 42, 40, 3, 1, 1, 1), 0.0f, "weight chunks");
    /* chunks of 432 pixels ending inside an image's first and last rows */
    fast_vs_ref_conv(shape(3, 64, 10, 43, 40, 3, 1, 1, 1), 0.0f, "chunk ends in row 0");
    fast_vs_ref_conv(shape(3, 64, 11, 40, 40, 3, 1, 1, 1), 0.0f, "chunk ends in last row");
    fast_vs_ref_conv(shape(2, 24, 9, 31, 8, 5, 1, 2, 1), 0.0f, "5x5 chunks");
    fast_vs_ref_conv(shape(2, 8, 64, 64, 8, 3, 2, 1, 1), 1.0f, "col2im chunks");
    fast_vs_ref_conv(shape(2, 512, 16, 16, 36, 3, 1, 1, 1), 0.0f, "K 4608 chunks");
    /* the direct weight gradient (narrow, stride 1): the stem, channels past a group of 4,
     * 2-wide windows, blocks of images (the last one short), many images in a block */
    fast_vs_ref_conv(shape(3, 1, 28, 28, 16, 3, 1, 1, 1), 0.0f, "direct wgrad stem");
    fast_vs_ref_conv(shape(2, 5, 13, 11, 6, 3, 1, 1, 1), 1.0f, "direct wgrad cout 6");
    fast_vs_ref_conv(shape(2, 3, 9, 10, 8, 2, 1, 0, 1), 0.0f, "direct wgrad 2x2 p0");
    fast_vs_ref_conv(shape(2, 3, 9, 10, 5, 2, 1, 1, 1), 1.0f, "direct wgrad 2x2 p1");
    fast_vs_ref_conv(shape(5, 16, 40, 40, 16, 3, 1, 1, 1), 0.0f, "direct wgrad blocks");
    fast_vs_ref_conv(shape(3, 8, 40, 40, 64, 3, 1, 1, 1), 1.0f, "direct wgrad block of 1");
    fast_vs_ref_conv(shape(40, 4, 6, 5, 12, 3, 1, 1, 1), 0.0f, "direct wgrad small images");
    fast_vs_ref_conv(shape(2, 8, 7, 9, 60, 3, 1, 1, 1), 1.0f, "direct wgrad cout 60");
    /* strided and wide windows on few input channels: the input split into phases, a
     * phase's columns in strips of up to 3 (7 wide: 3 + 1 and 3 at stride 2, 3 + 3 + 1) */
    fast_vs_ref_conv(shape(3, 1, 30, 31, 64, 7, 2, 3, 1), 0.0f, "direct wgrad stem 7x7/2");
    fast_vs_ref_conv(shape(2, 3, 33, 32, 20, 7, 2, 3, 1), 1.0f, "direct wgrad 7x7/2 cin 3");
    fast_vs_ref_conv(shape(2, 4, 17, 16, 12, 3, 2, 1, 1), 0.0f, "3x3/2 on 4 channels weight chunks");
    fast_vs_ref_conv(shape(2, 2, 15, 14, 8, 5, 2, 2, 1), 1.0f, "direct wgrad 5x5/2");
    fast_vs_ref_conv(shape(2, 3, 12, 13, 8, 7, 1, 3, 1), 0.0f, "direct wgrad 7x7/1");
    fast_vs_ref_conv(shape(2, 3, 12, 13, 8, 5, 2, 0, 1), 0.0f, "direct wgrad 5x5/2 p0");
    /* an image's planes over a block: the runs a segment at a time (the last one shorter) */
    fast_vs_ref_conv(shape(2, 3, 90, 90, 64, 7, 2, 3, 1), 0.0f, "direct wgrad segments 7x7/2");
    fast_vs_ref_conv(shape(2, 8, 64, 61, 60, 3, 1, 1, 1), 1.0f, "direct wgrad segments 3x3");
    /* dy copied into rows of the padded width (rows short of whole vectors, 16 x 9 taps) */
    fast_vs_ref_conv(shape(2, 16, 70, 61, 16, 3, 1, 1, 1), 0.0f, "direct wgrad segments copied");
    /* over 1536 columns: the weight product split into column blocks, with
     * dy transposed (K >= cout) or im2col transposed (K < cout) */
    fast_vs_ref_conv(shape(1, 3, 5, 5, 1600, 1, 1, 0, 1), 0.0f, "cout 1600 K 3");
    fast_vs_ref_conv(shape(1, 178, 2, 2, 1600, 3, 1, 1, 1), 0.0f, "cout 1600 K 1602");
    fast_vs_ref_conv(shape(1, 1540, 2, 2, 1600, 1, 1, 0, 1), 1.0f, "cout 1600 K 1540");
    /* tiny inputs: taps reading only padding are cropped off */
    fast_vs_ref_conv(shape(4, 16, 1, 1, 8, 3, 1, 1, 1), 1.0f, "3x3 on 1x1 (pointwise)");
    fast_vs_ref_conv(shape(4, 8, 2, 2, 8, 3, 2, 1, 1), 0.0f, "3x3/2 on 2x2 (2x2 kernel)");
    fast_vs_ref_conv(shape(2, 4, 3, 3, 4, 7, 1, 3, 2), 1.0f, "7x7 on 3x3 (5x5 kernel)");
    fast_vs_ref_conv(shape(2, 4, 2, 2, 4, 7, 1, 3, 1), 0.0f, "7x7 on 2x2 (not cropped)");
    /* wide spatial dims, many GEMM panels */
    fast_vs_ref_conv(shape(1, 8, 40, 64, 24, 3, 1, 1, 1), 1.0f, "wide");
}

/* The Winograd weight gradient (conv_wgrad_winograd.c) on its own, F(4x4) and F(2x2),
 * whatever the rule would pick, against the exact sum: ragged tiles at every map edge, any
 * padding up to 2, channel counts past whole lanes, blocks of tiles (the last one short) on
 * larger maps; and where the rule takes it. */
static void wgrad_winograd_vs_ref(const rn_kernels *k, int count) {
    for (int i = 0; i < count; i++) {
        const int big = i % 4 == 3;
        rn_conv_shape s = {.n = check_int(1, big ? 8 : 3), .cin = check_int(1, big ? 40 : 19),
                           .h = check_int(1, big ? 40 : 13), .w = check_int(1, big ? 40 : 13),
                           .cout = check_int(1, big ? 40 : 19), .kh = 3, .kw = 3, .stride = 1,
                           .pad = check_int(0, 2), .groups = 1};
        if (!conv2d_shape_init(&s))
            continue;
        const int m = i % 2 ? 2 : 4;
        conv_wgrad_wino_plan d;
        if (!conv_wgrad_wino_plan_m(k, &s, m, &d)) {
            CHECK(0, "%s: Winograd weight gradient F(%dx%d) has a plan", k->name, m, m);
            continue;
        }
        const conv_sizes sz = conv_case_sizes(&s);
        float *x = frand(sz.x, -1, 1), *dy = frand(sz.y, -1, 1);
        float *dw1 = fbuf(sz.w), *dw2 = fbuf(sz.w), *ws = fbuf(d.floats);
        conv2d_backward_weight_ref(&s, x, dy, dw1, NULL);
        check_poison(ws, d.floats);
        check_invalid_clear(rn_get_threads());
#pragma omp parallel num_threads(rn_get_threads())
        conv_wgrad_wino_run(k, &s, &d, x, dy, dw2, ws);
        const int unwritten = check_invalid_raised(rn_get_threads());
        const double e = check_rel_err(dw2, dw1, sz.w);
        CHECK(e <= (m == 4 ? WINO_TOL : FAST_TOL) && !unwritten,
              "%s: Winograd weight gradient F(%dx%d) n=%d %d->%d %dx%d p=%d, %ld tiles in "
              "blocks of %d: %.1e, workspace read before written %d",
              k->name, m, m, s.n, s.cin, s.cout, s.h, s.w, s.pad, d.tiles, d.tb, e, unwritten);
        rn_free(x), rn_free(dy), rn_free(dw1), rn_free(dw2), rn_free(ws);
    }
    /* the rule: resnet's 3x3 layers from 64 channels up, not the narrow ones (the strips) */
    rn_conv_shape sw = shape(8, 64, 56, 56, 64, 3, 1, 1, 1), sn = shape(8, 16, 28, 28, 16, 3, 1, 1, 1),
                  ss = shape(8, 64, 56, 56, 128, 3, 2, 1, 1), sd = shape(50, 64, 12, 12, 72, 3, 1, 1, 1);
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
    /* the tiles: 4x4 on 56x56, 2x2 on 2x2 maps (one 4x4 tile would cost as much as direct) */
    rn_conv_shape s2 = shape(64, 256, 2, 2, 256, 3, 1, 1, 1);
    conv2d_shape_init(&s2);
    conv_wgrad_wino_plan d4, d2;
    if (wide)
        CHECK(conv_wgrad_wino_plan_for(k, &sw, &d4) && d4.m == 4 &&
                  conv_wgrad_wino_plan_for(k, &s2, &d2) && d2.m == 2,
              "%s: Winograd weight gradient F(4x4) on 56x56, F(2x2) on 2x2", k->name);
}

/* ---------------------------------------------------------------------------
 * 3. Bitwise determinism: 1 against 2 threads
 * ------------------------------------------------------------------------- */

/* 1, 2 and 3 threads (an uneven split of rows and channels). */
static void determinism_conv(rn_conv_shape s, const char *tag) {
    conv2d_shape_init(&s);
    const conv_sizes sz = conv_case_sizes(&s);
    const size_t x_n = sz.x, w_n = sz.w, y_n = sz.y;
    float *x = frand(x_n, -1, 1), *w = frand(w_n, -1, 1), *dy = frand(y_n, -1, 1);
    float *dx[3], *dw[3], *db[3];
    size_t ws_n = 0; /* for 1..3 threads (Winograd's split by tiles cuts it per thread) */
    for (int t = 1; t <= 3; t++) {
        const size_t f = conv2d_backward_workspace_floats(kd, &s, wino ? t : 0);
        ws_n = f > ws_n ? f : ws_n;
    }
    float *ws = fbuf(ws_n);
    float *dx0 = frand(x_n, -1, 1);
    int same = 1;
    for (int t = 0; t < 3; t++) {
        dx[t] = fbuf(x_n), dw[t] = fbuf(w_n), db[t] = fbuf(s.cout);
        memcpy(dx[t], dx0, x_n * sizeof(float));
        rn_set_threads(t + 1);
        conv2d_backward_data(kd, &s, dy, w, 1.0f, dx[t], ws, wino ? t + 1 : 0);
        conv2d_backward_weight(kd, &s, x, dy, dw[t], db[t], ws, wino ? t + 1 : 0);
        if (t)
            same &= same_bits(dx[0], dx[t], x_n) && same_bits(dw[0], dw[t], w_n) &&
                    same_bits(db[0], db[t], s.cout);
    }
    rn_set_threads(0);
    CHECK(same, "determinism conv %s%s: 1, 2 and 3 threads bitwise", wino ? "winograd/direct " : "", tag);
    for (int t = 0; t < 3; t++)
        rn_free(dx[t]), rn_free(dw[t]), rn_free(db[t]);
    rn_free(x), rn_free(w), rn_free(dy), rn_free(ws), rn_free(dx0);
}

static void determinism_ops(void) {
    const int C = 24, P = 48, H = 17, W = 17, N = 8192, K = 10, F = 256;
    const size_t M = 6000;
    float *x = frand(C * M, -1, 1), *dy = frand(C * M, -1, 1), *g = frand(C, 0.5f, 1.5f);
    float *mean = fbuf(C), *var = fbuf(C), *is = fbuf(C);
    batchnorm_stats(x, C, M, mean, var);
    for (int c = 0; c < C; c++)
        is[c] = 1.0f / sqrtf(var[c] + RN_BN_EPS);
    float *a[2], *b[2], *e[2];
    float loss[2];
    int hits[2];
    int *labels = malloc(N * sizeof(int));
    for (int i = 0; i < N; i++)
        labels[i] = check_int(0, K - 1);
    float *z = frand((size_t)N * K, -3, 3), *px = frand((size_t)P * H * W, -1, 1);
    float *lx = frand((size_t)F * N, -1, 1), *lw = frand((size_t)K * F, -1, 1);
    int ok_bn = 1, ok_pool = 1, ok_lin = 1, ok_ce = 1;
    for (int t = 0; t < 2; t++) {
        rn_set_threads(t + 1);
        a[t] = fbuf(C * M), b[t] = fbuf(C), e[t] = fbuf(C);
        batchnorm_backward(x, dy, C, M, g, mean, is, a[t], b[t], e[t]);
        if (t)
            ok_bn = same_bits(a[0], a[1], C * M) && same_bits(b[0], b[1], C) &&
                    same_bits(e[0], e[1], C);
    }
    for (int t = 0; t < 2; t++)
        rn_free(a[t]), rn_free(b[t]), rn_free(e[t]);
    float *py = fbuf((size_t)P * maxpool2d_out_size(H, 3, 2, 1) * maxpool2d_out_size(W, 3, 2, 1));
    maxpool2d_forward(px, P, H, W, 3, 2, 1, py);
    for (int t = 0; t < 2; t++) {
        rn_set_threads(t + 1);
        a[t] = fbuf((size_t)P * H * W);
        maxpool2d_backward(px, py, dy, P, H, W, 3, 2, 1, a[t]);
        if (t)
            ok_pool = same_bits(a[0], a[1], (size_t)P * H * W);
    }
    rn_free(a[0]), rn_free(a[1]), rn_free(py);
    for (int t = 0; t < 2; t++) {
        rn_set_threads(t + 1);
        a[t] = fbuf((size_t)F * N), b[t] = fbuf((size_t)K * F), e[t] = fbuf(K);
        linear_backward(kd, lx, F, N, lw, K, z, a[t], b[t], e[t]);
        if (t)
            ok_lin = same_bits(a[0], a[1], (size_t)F * N) && same_bits(b[0], b[1], (size_t)K * F) &&
                     same_bits(e[0], e[1], K);
    }
    for (int t = 0; t < 2; t++)
        rn_free(a[t]), rn_free(b[t]), rn_free(e[t]);
    for (int t = 0; t < 2; t++) {
        rn_set_threads(t + 1);
        a[t] = fbuf((size_t)N * K);
        loss[t] = softmax_cross_entropy(z, labels, N, K, 0.1f, a[t], &hits[t]);
        if (t)
            ok_ce = same_bits(a[0], a[1], (size_t)N * K) && same_bits(&loss[0], &loss[1], 1) &&
                    hits[0] == hits[1];
    }
    rn_free(a[0]), rn_free(a[1]);
    rn_set_threads(0);
    CHECK(ok_bn, "determinism batchnorm backward: 1 and 2 threads bitwise");
    CHECK(ok_pool, "determinism maxpool backward: 1 and 2 threads bitwise");
    CHECK(ok_lin, "determinism linear backward: 1 and 2 threads bitwise");
    CHECK(ok_ce, "determinism cross-entropy: 1 and 2 threads bitwise");
    rn_free(x), rn_free(dy), rn_free(g), rn_free(mean), rn_free(var), rn_free(is), rn_free(z),
        rn_free(px), rn_free(lx), rn_free(lw);
    free(labels);
}

/* ---------------------------------------------------------------------------
 * Fast against reference: the per-channel ops, aliasing
 * ------------------------------------------------------------------------- */

/* Max-pool backward, fast against the reference, bitwise: values with many ties, signed
 * zeros, -inf and (with nans) NaNs. */
static void maxpool_fast_vs_ref(int P, int H, int W, int k, int s, int p, int nans) {
    size_t n = (size_t)P * H * W,
           m = (size_t)P * maxpool2d_out_size(H, k, s, p) * maxpool2d_out_size(W, k, s, p);
    float *x = frand(n, -1, 1), *dy = frand(m, -1, 1), *a = fbuf(n), *b = fbuf(n);
    float *y = fbuf(m);
    for (size_t i = 0; i < n; i++) {
        x[i] = floorf(x[i] * 3.0f); /* many ties */
        const int special = check_int(0, 99);
        if (nans && special < 3)
            x[i] = NAN;
        else if (special < 8)
            x[i] = special % 2 ? -0.0f : 0.0f;
        else if (special < 10)
            x[i] = -INFINITY;
    }
    maxpool2d_forward(x, P, H, W, k, s, p, y);
    maxpool2d_backward_ref(x, dy, P, H, W, k, s, p, a);
    maxpool2d_backward(x, y, dy, P, H, W, k, s, p, b);
    CHECK(same_bits(a, b, n), "maxpool backward fast vs ref P=%d %dx%d k=%d s=%d p=%d%s", P, H, W,
          k, s, p, nans ? " with NaNs" : "");
    rn_free(x), rn_free(dy), rn_free(a), rn_free(b), rn_free(y);
}

static void fast_vs_ref_ops(void) {
    for (int t = 0; t < 6; t++) {
        int C = check_int(1, 20);
        size_t M = (size_t)check_int(1, 3000);
        float *x = frand(C * M, -2, 4), *dy = frand(C * M, -1, 1), *g = frand(C, -1.5f, 1.5f);
        float *mean = fbuf(C), *var = fbuf(C), *is = fbuf(C);
        batchnorm_stats(x, C, M, mean, var);
        for (int c = 0; c < C; c++)
            is[c] = 1.0f / sqrtf(var[c] + RN_BN_EPS);
        float *dx1 = fbuf(C * M), *dg1 = fbuf(C), *db1 = fbuf(C);
        float *dx2 = fbuf(C * M), *dg2 = fbuf(C), *db2 = fbuf(C);
        batchnorm_backward_ref(x, dy, C, M, g, mean, is, dx1, dg1, db1);
        memcpy(dx2, dy, C * M * sizeof(float));
        batchnorm_backward(x, dx2, C, M, g, mean, is, dx2, dg2, db2); /* dx == dy */
        CHECK(check_rel_err(dx2, dx1, C * M) <= FAST_TOL &&
                  check_rel_err(dg2, dg1, C) <= FAST_TOL &&
                  check_rel_err(db2, db1, C) <= FAST_TOL,
              "batchnorm backward fast (in place) vs ref C=%d M=%zu", C, M);
        relu_forward(x, C * M, x);
        relu_backward_ref(x, dy, C * M, dx1);
        memcpy(dx2, dy, C * M * sizeof(float));
        relu_backward(x, dx2, C * M, dx2);
        CHECK(same_bits(dx1, dx2, C * M), "relu backward fast (in place) vs ref n=%zu", C * M);
        rn_free(x), rn_free(dy), rn_free(g), rn_free(mean), rn_free(var), rn_free(is);
        rn_free(dx1), rn_free(dg1), rn_free(db1), rn_free(dx2), rn_free(dg2), rn_free(db2);
    }
    /* max pooling: ties go to the first maximum in scan order */
    const float tie[16] = {1, 5, 5, 0, 5, 2, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0};
    const float one[4] = {1, 1, 1, 1};
    float d1[16], d2[16], ty[4];
    maxpool2d_forward(tie, 1, 4, 4, 2, 2, 0, ty);
    maxpool2d_backward_ref(tie, one, 1, 4, 4, 2, 2, 0, d1);
    maxpool2d_backward(tie, ty, one, 1, 4, 4, 2, 2, 0, d2);
    CHECK(d1[1] == 1 && d1[4] == 0 && d1[2] == 1 && d1[7] == 0 && d1[8] == 1 && d1[10] == 1 &&
              same_bits(d1, d2, 16),
          "maxpool backward: ties to the first maximum");
    /* random shapes (windows up to 9x9: past the 8x8 of the fast path's bit
     * mask), many ties, signed zeros, -inf and NaNs (some windows with several) */
    for (int t = 0; t < 40; t++) {
        int P = check_int(1, 6), H = check_int(1, 20), W = check_int(1, 20), k = check_int(1, 9);
        int s = check_int(1, 3), p = check_int(0, k / 2);
        if (maxpool2d_out_size(H, k, s, p) < 1 || maxpool2d_out_size(W, k, s, p) < 1)
            continue;
        maxpool_fast_vs_ref(P, H, W, k, s, p, t % 2);
    }
    /* rows of inside windows longer than a chunk of the SIMD winners (128) */
    maxpool_fast_vs_ref(2, 7, 300, 3, 2, 1, 0);
    maxpool_fast_vs_ref(2, 7, 300, 3, 2, 1, 1);
    maxpool_fast_vs_ref(1, 4, 290, 2, 1, 0, 0);
}

/* ---------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------- */

int main(void) {
    /* 1. finite differences */
    fd_conv(shape(2, 3, 6, 5, 4, 3, 1, 1, 1), 1);
    fd_conv(shape(2, 4, 7, 7, 6, 3, 2, 1, 2), 1);
    fd_conv(shape(1, 2, 6, 6, 4, 1, 1, 0, 1), 0);
    fd_conv(shape(2, 4, 6, 6, 4, 1, 2, 0, 2), 1);
    fd_conv(shape(1, 2, 9, 8, 3, 7, 2, 3, 1), 1);
    fd_conv(shape(1, 2, 8, 8, 2, 5, 1, 1, 1), 0);
    rn_conv_shape odd = shape(2, 4, 5, 7, 2, 3, 1, 2, 2);
    odd.kw = 1;
    fd_conv(odd, 1);
    fd_conv(shape(3, 4, 1, 1, 3, 3, 1, 1, 1), 1);
    fd_conv(shape(2, 3, 2, 2, 4, 3, 2, 1, 1), 1);
    fd_batchnorm(3, 40);
    fd_batchnorm(2, 7);
    fd_relu(1000);
    fd_pool(3, 7, 6, 3, 2, 1, 0);
    fd_pool(2, 8, 8, 2, 2, 0, 0);
    fd_pool(4, 5, 3, 0, 0, 0, 1);
    fd_linear(12, 5, 4);
    fd_cross_entropy(6, 5, 0.0f);
    fd_cross_entropy(7, 10, 0.1f);
    fd_cross_entropy(3, 4, 0.5f);
    check_cross_entropy_value();

    /* 2. fast against reference, on every kernel path the host supports */
    const rn_kernels *ks[RN_ISA_COUNT];
    const int nk = check_kernel_paths("test_backward", ks);
    for (int i = 0; i < nk; i++) {
        kd = ks[i];
        if (kd->isa == RN_ISA_PORTABLE) {
            fast_vs_ref_conv(shape(2, 8, 9, 9, 12, 3, 1, 1, 1), 0.0f, "portable 3x3");
            fast_vs_ref_conv(shape(2, 8, 9, 9, 12, 3, 2, 1, 2), 1.0f, "portable 3x3/2 g2");
            fast_vs_ref_conv(shape(2, 4, 7, 7, 16, 1, 2, 0, 1), 1.0f, "portable 1x1/2");
            fast_vs_ref_conv(shape(2, 8, 40, 40, 8, 3, 1, 1, 1), 0.0f, "portable 3x3 long rows");
            fast_vs_ref_conv(shape(2, 8, 9, 9, 40, 3, 1, 1, 1), 1.0f, "portable 3x3 GEMM weights");
            fast_vs_ref_conv(shape(3, 8, 20, 20, 16, 3, 1, 1, 1), 0.0f, "portable direct wgrad");
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
    fast_vs_ref_conv(shape(2, 16, 14, 14, 24, 3, 1, 1, 1), 1.0f, "portable 3x3");
    fast_vs_ref_conv(shape(1, 8, 40, 64, 24, 3, 1, 1, 1), 0.0f, "portable wide");
    wino = 0;
    kd = NULL;
    fast_vs_ref_ops();

    /* 3. thread-count determinism */
    determinism_conv(shape(4, 32, 20, 20, 48, 3, 1, 1, 1), "3x3 flipped");
    determinism_conv(shape(4, 32, 20, 20, 48, 3, 2, 1, 1), "3x3/2 col2im");
    determinism_conv(shape(4, 128, 19, 20, 40, 3, 2, 1, 1), "3x3/2 by phases");
    determinism_conv(shape(4, 64, 16, 16, 48, 1, 1, 0, 2), "1x1 pointwise g2");
    determinism_conv(shape(4, 32, 16, 16, 96, 1, 2, 0, 1), "1x1/2 im2col transposed");
    /* several chunks, the last one shorter: threads on different chunks */
    for (int rep = 0; rep < 3; rep++) {
        determinism_conv(shape(2, 64, 42, 42, 48, 3, 1, 1, 1), "weight chunks");
        determinism_conv(shape(5, 16, 40, 40, 16, 3, 1, 1, 1), "direct weight gradient blocks");
        determinism_conv(shape(6, 1, 96, 96, 64, 7, 2, 3, 1), "direct weight gradient 7x7/2");
        determinism_conv(shape(2, 8, 64, 64, 8, 3, 2, 1, 1), "col2im chunks");
        determinism_conv(shape(5, 16, 64, 64, 64, 1, 2, 0, 1), "im2col transposed chunks");
    }
    determinism_conv(shape(64, 64, 1, 1, 64, 3, 1, 1, 1), "3x3 on 1x1 cropped");
    wino = 1;
    determinism_conv(shape(4, 32, 20, 20, 48, 3, 1, 1, 1), "3x3");
    determinism_conv(shape(2, 64, 42, 42, 16, 3, 1, 1, 1), "3x3 large");
    determinism_conv(shape(4, 16, 20, 20, 16, 3, 1, 1, 1), "3x3 narrow (direct)");
    /* the weight gradient by Winograd (64 channels and more), in one block and in two */
    determinism_conv(shape(4, 64, 12, 12, 72, 3, 1, 1, 1), "3x3 64->72 (Winograd weights)");
    determinism_conv(shape(50, 64, 12, 12, 72, 3, 1, 1, 1), "3x3 64->72 two blocks");
    wino = 0;
    determinism_ops();
    return check_done("test_backward");
}
