/*
 * test_backward.c - every backward op against finite differences, the
 * per-channel ops fast against reference, and 1 vs 2 threads (the
 * convolutions' fast routes: test_backward_conv.c).
 *
 *   1. Gradients: each op's float backward (reference and fast) against
 *      central differences of a double-precision forward written here,
 *      with the scalar loss L = sum(r * y) for a random r (so dy = r), or
 *      the loss itself for cross-entropy. Tolerance: |a - g| / |g| <= 1e-3
 *      (Euclidean norms).
 *   2. Fast against reference: BatchNorm, ReLU (in place) and max-pool
 *      backward (ties, signed zeros, -inf, NaN): max |fast - ref| / max |ref|
 *      <= 1e-5, bitwise where the op only moves values.
 *   3. The fast paths give bitwise identical results on 1 and 2 threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "ops/conv2d.h"
#include "ops/ops.h"
#include "resnet.h"
#include "check.h"
#include "conv_case.h"

#define FD_TOL 1e-3
#define FD_STEP 1e-6
#define FAST_TOL 1e-5
#define EPS 1e-5

/* ---------------------------------------------------------------------------
 * Buffers
 * ------------------------------------------------------------------------- */

static double *dbuf(size_t n) {
    double *p = calloc(n ? n : 1, sizeof(double));
    if (!p) {
        fprintf(stderr, "test_backward: out of memory\n");
        exit(2);
    }
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
    float *x = check_frand(x_n, -1, 1), *w = check_frand(w_n, -1, 1), *b = check_frand(s.cout, -1, 1);
    float *r = check_frand(y_n, -1, 1);
    conv_ctx c = {&s, to_double(x, x_n), to_double(w, w_n), with_bias ? to_double(b, s.cout) : NULL,
                  to_double(r, y_n), dbuf(y_n), y_n};
    double *gx = dbuf(x_n), *gw = dbuf(w_n), *gb = dbuf(s.cout);
    numeric_grad(conv_objective, &c, c.x, x_n, gx);
    numeric_grad(conv_objective, &c, c.w, w_n, gw);
    if (with_bias)
        numeric_grad(conv_objective, &c, c.b, s.cout, gb);

    /* the fast routes on the default kernels, without Winograd and the direct convolution
     * (algos 0); those, and every kernel path, are held to the reference in
     * test_backward_conv.c */
    float *ws = check_floats(conv2d_backward_workspace_floats(NULL, &s, 0));
    float *dx = check_floats(x_n), *dw = check_floats(w_n), *db = check_floats(s.cout);
    for (int fast = 0; fast <= 1; fast++) {
        if (fast) {
            conv2d_backward_data(NULL, &s, r, w, 0.0f, dx, ws, 0);
            conv2d_backward_weight(NULL, &s, x, r, dw, db, ws, 0);
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
    float *x = check_frand(n, -1, 1), *g = check_frand(C, 0.5f, 1.5f), *be = check_frand(C, -1, 1);
    float *r = check_frand(n, -1, 1);
    for (size_t i = 0; i < n; i++)
        x[i] = 3.0f * x[i] + 2.0f; /* a non-zero mean */
    bn_ctx c = {to_double(x, n), to_double(g, C), to_double(be, C), to_double(r, n), dbuf(n), C, M};
    double *gx = dbuf(n), *gg = dbuf(C), *gb = dbuf(C);
    numeric_grad(bn_objective, &c, c.x, n, gx);
    numeric_grad(bn_objective, &c, c.gamma, C, gg);
    numeric_grad(bn_objective, &c, c.beta, C, gb);

    float *mean = check_floats(C), *var = check_floats(C), *invstd = check_floats(C);
    batchnorm_stats_ref(x, C, M, mean, var);
    for (int i = 0; i < C; i++)
        invstd[i] = 1.0f / sqrtf(var[i] + RN_BN_EPS);
    float *dx = check_floats(n), *dg = check_floats(C), *db = check_floats(C);
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
    float *x = check_frand(x_n, -1, 1), *r = check_frand(y_n, -1, 1), *dx = check_floats(x_n);
    c.x = to_double(x, x_n);
    c.r = to_double(r, y_n);
    c.y = dbuf(y_n);
    float *py = check_floats(avg ? 1 : y_n); /* the forward's output, for the fast max-pool backward */
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
    float *x = check_frand(n, -1, 1), *r = check_frand(n, -1, 1), *y = check_floats(n), *dx = check_floats(n);
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
    float *x = check_frand(x_n, -1, 1), *w = check_frand(w_n, -1, 1), *b = check_frand(K, -1, 1);
    float *r = check_frand(y_n, -1, 1);
    linear_ctx c = {to_double(x, x_n), to_double(w, w_n), to_double(b, K), to_double(r, y_n),
                    dbuf(y_n), C, N, K};
    double *gx = dbuf(x_n), *gw = dbuf(w_n), *gb = dbuf(K);
    numeric_grad(linear_objective, &c, c.x, x_n, gx);
    numeric_grad(linear_objective, &c, c.w, w_n, gw);
    numeric_grad(linear_objective, &c, c.b, K, gb);
    float *dx = check_floats(x_n), *dw = check_floats(w_n), *db = check_floats(K);
    for (int fast = 0; fast <= 1; fast++) {
        if (fast)
            linear_backward(NULL, x, C, N, w, K, r, dx, dw, db);
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
    float *z = check_frand(n, -4, 4), *dz = check_floats(n);
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

/* A mixed batch (mixup, CutMix): the loss and gradient are lam times those of the first labels
 * plus (1 - lam) times the second's, the fast and reference alike; correct counts the label of
 * the larger share; lam 1 gives the unmixed bits; and a value PyTorch gives:
 * CrossEntropyLoss(label_smoothing=0.1)([[1, 2, 3]], 0.3 onehot(0) + 0.7 onehot(2)). */
static void check_cross_entropy_mix(void) {
    enum { N = 37, K = 10 };
    const size_t n = (size_t)N * K;
    float *z = check_frand(n, -4, 4), *da = check_floats(n), *db = check_floats(n), *dm = check_floats(n);
    int a[N], b[N];
    for (int i = 0; i < N; i++)
        a[i] = check_int(0, K - 1), b[i] = check_int(0, K - 1);
    const float lams[3] = {0.3f, 0.5f, 0.85f};
    for (int fast = 0; fast <= 1; fast++)
        for (int j = 0; j < 3; j++) {
            const float lam = lams[j], s = 0.1f;
            int hits = -1, want_hits = 0;
            float la = (fast ? softmax_cross_entropy : softmax_cross_entropy_ref)(z, a, N, K, s, da, NULL);
            float lb = (fast ? softmax_cross_entropy : softmax_cross_entropy_ref)(z, b, N, K, s, db, NULL);
            float lm = (fast ? softmax_cross_entropy_mix : softmax_cross_entropy_mix_ref)(z, a, b, lam, N, K, s,
                                                                                          dm, &hits);
            double worst = 0.0;
            for (size_t k = 0; k < n; k++) {
                const double want = (double)lam * da[k] + (1.0 - lam) * db[k];
                worst = fmax(worst, fabs(dm[k] - want));
            }
            for (int i = 0; i < N; i++) {
                int arg = 0;
                for (int k = 1; k < K; k++)
                    arg = z[(size_t)i * K + k] > z[(size_t)i * K + arg] ? k : arg;
                want_hits += arg == (lam >= 0.5f ? a[i] : b[i]);
            }
            const double want_loss = (double)lam * la + (1.0 - lam) * lb;
            CHECK(fabs(lm - want_loss) <= 1e-6 * (1 + fabs(want_loss)) && worst <= 1e-7 && hits == want_hits,
                  "%s mixed cross-entropy, lam %g: loss %.7g want %.7g, gradient off by %.1e, correct %d/%d",
                  fast ? "fast" : "ref", lam, lm, want_loss, worst, hits, want_hits);
        }
    int hits1 = 0, hits2 = 0;
    float l1 = softmax_cross_entropy(z, a, N, K, 0.1f, da, &hits1);
    float l2 = softmax_cross_entropy_mix(z, a, b, 1.0f, N, K, 0.1f, dm, &hits2);
    CHECK(l1 == l2 && hits1 == hits2 && memcmp(da, dm, n * sizeof *da) == 0, "lam 1: the unmixed bits");
    const float v[3] = {1, 2, 3};
    const int la = 0, lb = 2;
    float g[3], gr[3];
    float lf = softmax_cross_entropy_mix(v, &la, &lb, 0.3f, 1, 3, 0.1f, g, NULL);
    float lr = softmax_cross_entropy_mix_ref(v, &la, &lb, 0.3f, 1, 3, 0.1f, gr, NULL);
    CHECK(fabsf(lf - 1.0476060f) < 1e-6f && fabsf(lr - 1.0476060f) < 1e-6f && fabsf(g[0] + 0.2133f) < 1e-4f &&
              fabsf(g[1] - 0.2114f) < 1e-4f && fabsf(g[2] - 0.0019f) < 1e-4f && fabsf(gr[0] - g[0]) < 1e-6f,
          "mixed cross-entropy value %.7f %.7f (PyTorch 1.0476060), gradient %.4f %.4f %.4f", lf, lr, g[0], g[1],
          g[2]);
    rn_free(z), rn_free(da), rn_free(db), rn_free(dm);
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

static void determinism_ops(void) {
    const int C = 24, P = 48, H = 17, W = 17, N = 8192, K = 10, F = 256;
    const size_t M = 6000;
    float *x = check_frand(C * M, -1, 1), *dy = check_frand(C * M, -1, 1), *g = check_frand(C, 0.5f, 1.5f);
    float *mean = check_floats(C), *var = check_floats(C), *is = check_floats(C);
    batchnorm_stats(x, C, M, mean, var);
    for (int c = 0; c < C; c++)
        is[c] = 1.0f / sqrtf(var[c] + RN_BN_EPS);
    float *a[2], *b[2], *e[2];
    float loss[2];
    int hits[2];
    int *labels = malloc(N * sizeof(int));
    for (int i = 0; i < N; i++)
        labels[i] = check_int(0, K - 1);
    float *z = check_frand((size_t)N * K, -3, 3), *px = check_frand((size_t)P * H * W, -1, 1);
    float *lx = check_frand((size_t)F * N, -1, 1), *lw = check_frand((size_t)K * F, -1, 1);
    int ok_bn = 1, ok_pool = 1, ok_lin = 1, ok_ce = 1;
    for (int t = 0; t < 2; t++) {
        rn_set_threads(t + 1);
        a[t] = check_floats(C * M), b[t] = check_floats(C), e[t] = check_floats(C);
        batchnorm_backward(x, dy, C, M, g, mean, is, a[t], b[t], e[t]);
        if (t)
            ok_bn = check_same_bits(a[0], a[1], C * M) && check_same_bits(b[0], b[1], C) &&
                    check_same_bits(e[0], e[1], C);
    }
    for (int t = 0; t < 2; t++)
        rn_free(a[t]), rn_free(b[t]), rn_free(e[t]);
    float *py = check_floats((size_t)P * maxpool2d_out_size(H, 3, 2, 1) * maxpool2d_out_size(W, 3, 2, 1));
    maxpool2d_forward(px, P, H, W, 3, 2, 1, py);
    for (int t = 0; t < 2; t++) {
        rn_set_threads(t + 1);
        a[t] = check_floats((size_t)P * H * W);
        maxpool2d_backward(px, py, dy, P, H, W, 3, 2, 1, a[t]);
        if (t)
            ok_pool = check_same_bits(a[0], a[1], (size_t)P * H * W);
    }
    rn_free(a[0]), rn_free(a[1]), rn_free(py);
    for (int t = 0; t < 2; t++) {
        rn_set_threads(t + 1);
        a[t] = check_floats((size_t)F * N), b[t] = check_floats((size_t)K * F), e[t] = check_floats(K);
        linear_backward(NULL, lx, F, N, lw, K, z, a[t], b[t], e[t]);
        if (t)
            ok_lin = check_same_bits(a[0], a[1], (size_t)F * N) && check_same_bits(b[0], b[1], (size_t)K * F) &&
                     check_same_bits(e[0], e[1], K);
    }
    for (int t = 0; t < 2; t++)
        rn_free(a[t]), rn_free(b[t]), rn_free(e[t]);
    for (int t = 0; t < 2; t++) {
        rn_set_threads(t + 1);
        a[t] = check_floats((size_t)N * K);
        loss[t] = softmax_cross_entropy(z, labels, N, K, 0.1f, a[t], &hits[t]);
        if (t)
            ok_ce = check_same_bits(a[0], a[1], (size_t)N * K) && check_same_bits(&loss[0], &loss[1], 1) &&
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
    float *x = check_frand(n, -1, 1), *dy = check_frand(m, -1, 1), *a = check_floats(n), *b = check_floats(n);
    float *y = check_floats(m);
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
    CHECK(check_same_bits(a, b, n), "maxpool backward fast vs ref P=%d %dx%d k=%d s=%d p=%d%s", P, H, W,
          k, s, p, nans ? " with NaNs" : "");
    /* the training step's pair: the forward keeping its winners, the backward from them */
    if (k <= RN_POOL_ARG_MAX_K) {
        float *yr = check_floats(m), *ya = check_floats(m);
        uint8_t *arg = malloc(m);
        maxpool2d_forward_ref(x, P, H, W, k, s, p, yr);
        maxpool2d_forward_arg(x, P, H, W, k, s, p, ya, arg);
        for (size_t i = 0; i < n; i++)
            b[i] = NAN; /* every element written */
        maxpool2d_backward_arg(arg, dy, P, H, W, k, s, p, b);
        CHECK(check_same_bits(yr, ya, m) && check_same_bits(a, b, n),
              "maxpool forward and backward by winners vs ref P=%d %dx%d k=%d s=%d p=%d%s", P, H,
              W, k, s, p, nans ? " with NaNs" : "");
        rn_free(yr), rn_free(ya), free(arg);
    }
    rn_free(x), rn_free(dy), rn_free(a), rn_free(b), rn_free(y);
}

static void fast_vs_ref_ops(void) {
    for (int t = 0; t < 6; t++) {
        int C = check_int(1, 20);
        size_t M = (size_t)check_int(1, 3000);
        float *x = check_frand(C * M, -2, 4), *dy = check_frand(C * M, -1, 1), *g = check_frand(C, -1.5f, 1.5f);
        float *mean = check_floats(C), *var = check_floats(C), *is = check_floats(C);
        batchnorm_stats(x, C, M, mean, var);
        for (int c = 0; c < C; c++)
            is[c] = 1.0f / sqrtf(var[c] + RN_BN_EPS);
        float *dx1 = check_floats(C * M), *dg1 = check_floats(C), *db1 = check_floats(C);
        float *dx2 = check_floats(C * M), *dg2 = check_floats(C), *db2 = check_floats(C);
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
        CHECK(check_same_bits(dx1, dx2, C * M), "relu backward fast (in place) vs ref n=%zu", C * M);
        /* with the residual's copy (in place as the trainer calls it), and the copy alone */
        float *cp = check_floats(C * M);
        memcpy(dx2, dy, C * M * sizeof(float));
        relu_backward_copy(x, dx2, C * M, dx2, cp);
        CHECK(check_same_bits(dx1, dx2, C * M) && check_same_bits(dx1, cp, C * M),
              "relu backward with a copy (in place) vs ref n=%zu", C * M);
        memcpy(dx2, dy, C * M * sizeof(float));
        relu_backward_copy(NULL, dx2, C * M, dx2, cp);
        CHECK(check_same_bits(dy, dx2, C * M) && check_same_bits(dy, cp, C * M),
              "gradient copied without a ReLU n=%zu", C * M);
        rn_free(cp);
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
              check_same_bits(d1, d2, 16),
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
    /* ResNet's pool on 14x14 planes (d2l_resnet18 at 28x28), and windows wholly in the padding
     * (no winner: no gradient) */
    maxpool_fast_vs_ref(64, 14, 14, 3, 2, 1, 0);
    maxpool_fast_vs_ref(64, 14, 14, 3, 2, 1, 1);
    maxpool_fast_vs_ref(3, 1, 2, 1, 1, 1, 0);
    /* the widest window whose winners fit a byte (15x15: 225 taps) */
    maxpool_fast_vs_ref(2, 20, 19, RN_POOL_ARG_MAX_K, 2, 7, 1);
}

/* ---------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------- */

int main(void) {
    /* 1. finite differences */
    fd_conv(conv_case_shape(2, 3, 6, 5, 4, 3, 1, 1, 1), 1);
    fd_conv(conv_case_shape(2, 4, 7, 7, 6, 3, 2, 1, 2), 1);
    fd_conv(conv_case_shape(1, 2, 6, 6, 4, 1, 1, 0, 1), 0);
    fd_conv(conv_case_shape(2, 4, 6, 6, 4, 1, 2, 0, 2), 1);
    fd_conv(conv_case_shape(1, 2, 9, 8, 3, 7, 2, 3, 1), 1);
    fd_conv(conv_case_shape(1, 2, 8, 8, 2, 5, 1, 1, 1), 0);
    rn_conv_shape odd = conv_case_shape(2, 4, 5, 7, 2, 3, 1, 2, 2);
    odd.kw = 1;
    fd_conv(odd, 1);
    fd_conv(conv_case_shape(3, 4, 1, 1, 3, 3, 1, 1, 1), 1);
    fd_conv(conv_case_shape(2, 3, 2, 2, 4, 3, 2, 1, 1), 1);
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
    check_cross_entropy_mix();

    /* 2. fast against reference: the per-channel ops */
    fast_vs_ref_ops();

    /* 3. thread-count determinism */
    determinism_ops();
    return check_done("test_backward");
}
