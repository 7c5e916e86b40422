/*
 * conv_smallmap.c - a window on a map of a few pixels, as one dense GEMM over the whole map.
 *
 * On an input map of Q = h x w pixels and an output of P = ho x wo, output pixel p reads input
 * pixel q through the tap t(p, q) = (qy - py * stride + pad, qx - px * stride + pad), where that
 * tap lies inside the window. A batch's convolution is then one product, with no im2col:
 *
 *     C  (P cout x n)          = Wm (P cout x Q cin)  x  Xm (Q cin x n)
 *     Wm[p cout + co][q cin + ci] = w[co][ci][t(p, q)]      (0 where t is outside the window)
 *     Xm[q cin + ci][b]           = x[ci][b][q]
 *     y[co][b][p]                 = C[p cout + co][b]  (+ bias[co], + residual, ReLU)
 *
 * Wm is P x Q blocks, each the weights of one tap (or zeros) as a cout x cin matrix. On 2x2
 * maps with ResNet's 3x3 windows (pad 1), d2l_resnet18's stage at 28x28 input, every block is
 * a live tap: 4 products an output, as many as Winograd F(2x2, 3x3) makes, without its
 * transforms, in a GEMM of 4 cout rows, 4 cin deep and a column per image. Wm is the prepared
 * weights (row-major: the GEMM reads it in place, or packs it on a bf16 descriptor, whose
 * products are then bf16 ones); Xm and C pass through the workspace. The data gradient is the
 * same algorithm on the transposed convolution, and the weight gradient forms Wm's gradient as
 * one product and adds its blocks back onto the taps (rn_smallmap_weight, which
 * conv2d_backward_weight.c calls). Where some block is no tap (a 3x3 window on a 1x3 map, a strided
 * 1x1), its zeros still multiply the input, so an infinite input makes NaN in outputs its
 * window does not reach, as Winograd's transforms do; the heuristic gives the algorithm only
 * shapes whose every block is a tap (conv_algo.c).
 */
#include <string.h>

#include "core/threads.h"
#include "ops/conv_algo.h"
#include "ops/conv_smallmap.h"
#include "ops/gemm.h"
#include "ops/kernels.h"

static size_t align16(size_t n) { return (n + 15) / 16 * 16; }

int rn_smallmap_tap(const rn_conv_shape *s, int p, int q) {
    const int py = p / s->wo, px = p % s->wo, qy = q / s->w, qx = q % s->w;
    const int ky = qy - py * s->stride + s->pad, kx = qx - px * s->stride + s->pad;
    return ky >= 0 && ky < s->kh && kx >= 0 && kx < s->kw ? ky * s->kw + kx : -1;
}

int rn_smallmap_supports(const rn_conv_shape *s) {
    return s->groups == 1 && (long)s->h * s->w <= RN_SMALLMAP_MAX_PIXELS &&
           (long)s->ho * s->wo <= RN_SMALLMAP_MAX_PIXELS;
}

/* xm[(q * c + ci) * n + b] = x[(ci * n + b) * pixels + q]: a (c, n, pixels) tensor as the
 * matrix of rows (q, ci) and a column per image. */
static void gather(const float *x, int c, int n, int pixels, float *xm) {
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if ((long)c * n > 16384)
    for (int ci = 0; ci < c; ci++)
        for (int q = 0; q < pixels; q++) {
            float *dst = xm + ((size_t)q * c + ci) * n;
            const float *src = x + (size_t)ci * n * pixels + q;
            for (int b = 0; b < n; b++)
                dst[b] = src[(size_t)b * pixels];
        }
}

static size_t prepared_floats(const rn_kernels *k, const rn_conv_shape *s) {
    (void)k;
    return (size_t)s->cout * s->ho * s->wo * s->cin * s->h * s->w;
}

/* Wm's blocks row by row: an output channel's weights (cin x taps floats) stay in L1 while
 * they are spread over its P rows. */
static void prepare(const rn_kernels *k, const rn_conv_shape *s, const float *w,
                    float *prepared) {
    (void)k;
    const int P = s->ho * s->wo, Q = s->h * s->w, cin = s->cin, taps = s->kh * s->kw;
    const size_t K = (size_t)Q * cin;
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if ((long)s->cout * cin > 16384)
    for (int co = 0; co < s->cout; co++) {
        const float *wc = w + (size_t)co * cin * taps;
        for (int p = 0; p < P; p++) {
            float *row = prepared + ((size_t)p * s->cout + co) * K;
            for (int q = 0; q < Q; q++) {
                const int t = rn_smallmap_tap(s, p, q);
                float *dst = row + (size_t)q * cin;
                if (t < 0)
                    memset(dst, 0, (size_t)cin * sizeof(float));
                else
                    for (int ci = 0; ci < cin; ci++)
                        dst[ci] = wc[(size_t)ci * taps + t];
            }
        }
    }
}

static size_t workspace_floats(const rn_kernels *k, const rn_conv_shape *s, int threads) {
    (void)k, (void)threads;
    return align16((size_t)s->cin * s->h * s->w * s->n) + (size_t)s->cout * s->ho * s->wo * s->n;
}

static void forward(const rn_kernels *k, const rn_conv_shape *s, const float *x,
                    const float *prepared, const float *bias, const float *residual, int relu,
                    float *y, float *workspace, int threads) {
    (void)threads;
    const int P = s->ho * s->wo, Q = s->h * s->w, n = s->n, K = s->cin * Q;
    float *xm = workspace, *c = workspace + align16((size_t)K * n);
    gather(x, s->cin, n, Q, xm);
    rn_sgemm(k, 0, 0, s->cout * P, n, K, prepared, K, xm, n, 0.0f, c, n, NULL);
    /* y[co][b][p] from C's row p cout + co, in the epilogue's order (conv_algo.h); the residual
     * may be y itself: each element is read before it is written */
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if ((long)s->cout * n > 16384)
    for (int co = 0; co < s->cout; co++)
        for (int b = 0; b < n; b++)
            for (int p = 0; p < P; p++) {
                const size_t at = ((size_t)co * n + b) * P + p;
                float v = c[((size_t)p * s->cout + co) * n + b];
                if (bias)
                    v += bias[co];
                if (residual)
                    v += residual[at];
                y[at] = relu && v < 0.0f ? 0.0f : v; /* NaN stays NaN, as in PyTorch */
            }
}

size_t rn_smallmap_weight_floats(const rn_conv_shape *s) {
    const size_t P = (size_t)s->ho * s->wo, Q = (size_t)s->h * s->w;
    return align16((size_t)s->cout * P * s->n) + align16((size_t)s->cin * Q * s->n) +
           (size_t)s->cout * P * s->cin * Q;
}

/* dy and x as Dm (P cout x n) and Xm (Q cin x n), Wm's gradient Dm Xm^T (P cout x Q cin), then
 * each tap's gradient the sum of its blocks, (p, q) in order. */
void rn_smallmap_weight(const rn_kernels *k, const rn_conv_shape *s, const float *x,
                        const float *dy, float *dw, float *workspace) {
    const int P = s->ho * s->wo, Q = s->h * s->w, n = s->n, M = s->cout * P, K = s->cin * Q;
    const int cin = s->cin, taps = s->kh * s->kw;
    float *dm = workspace, *xm = dm + align16((size_t)M * n), *dwm = xm + align16((size_t)K * n);
    gather(dy, s->cout, n, P, dm);
    gather(x, cin, n, Q, xm);
    rn_sgemm(k, 0, 1, M, K, n, dm, n, xm, n, 0.0f, dwm, K, NULL);
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if ((long)M * K > 65536)
    for (int co = 0; co < s->cout; co++) {
        float *d = dw + (size_t)co * cin * taps;
        memset(d, 0, (size_t)cin * taps * sizeof(float));
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++) {
                const int t = rn_smallmap_tap(s, p, q);
                const float *g = dwm + ((size_t)p * s->cout + co) * K + (size_t)q * cin;
                for (int ci = 0; t >= 0 && ci < cin; ci++)
                    d[(size_t)ci * taps + t] += g[ci];
            }
    }
}

const rn_conv_algo rn_conv_smallmap = {
    .id = RN_CONV_SMALLMAP,
    .name = "smallmap",
    .description = "windows on maps of at most 4 pixels (2x2) as one GEMM over the whole map: "
                   "Winograd F(2x2)'s products, no transforms",
    .tolerance = 1e-5,
    .tolerance_bf16 = 1e-5,
    .supports = rn_smallmap_supports,
    .prepared_floats = prepared_floats,
    .prepare = prepare,
    .workspace_floats = workspace_floats,
    .forward = forward,
};
