/*
 * conv2d.c - 2-D convolution, forward (contract in conv2d.h).
 *
 * The fast path is one GEMM per group,
 *     y_g[cout/G, n*ho*wo] = w_g[cout/G, K] x im2col(x_g)[K, n*ho*wo]
 * with K = cin/G * kh * kw. The im2col matrix is never formed: the GEMM
 * packs its panels straight from x (rn_sgemm_im2col), which measured faster
 * than writing im2col chunks and multiplying them, and needs no workspace.
 * A 1x1, stride-1, unpadded convolution is a plain GEMM on x itself.
 * The epilogue (bias, residual, relu) runs inside the GEMM's store.
 */
#include "ops/conv2d.h"

#include <limits.h>
#include <stddef.h>

#include "ops/conv_algo.h"
#include "ops/gemm.h"

/* ---------------------------------------------------------------------------
 * Shape
 * ------------------------------------------------------------------------- */

int conv2d_shape_init(rn_conv_shape *s) {
    s->ho = s->wo = 0;
    if (s->n < 1 || s->cin < 1 || s->h < 1 || s->w < 1 || s->cout < 1 || s->kh < 1 ||
        s->kw < 1 || s->stride < 1 || s->pad < 0 || s->groups < 1)
        return 0;
    if (s->cin % s->groups || s->cout % s->groups)
        return 0;
    long hp = (long)s->h + 2L * s->pad, wp = (long)s->w + 2L * s->pad;
    if (hp < s->kh || wp < s->kw)
        return 0;
    long ho = (hp - s->kh) / s->stride + 1, wo = (wp - s->kw) / s->stride + 1;
    /* The GEMM indexes rows and columns with int. */
    if ((long long)s->n * s->h * s->w > INT_MAX || (long long)s->n * ho * wo > INT_MAX ||
        (long long)(s->cin / s->groups) * s->kh * s->kw > INT_MAX)
        return 0;
    s->ho = (int)ho;
    s->wo = (int)wo;
    return 1;
}

/* ---------------------------------------------------------------------------
 * Reference: the direct loop nest
 * ------------------------------------------------------------------------- */

void conv2d_forward_ref(const rn_conv_shape *s, const float *x, const float *w,
                        const float *bias, const float *residual, int relu,
                        float *y) {
    // x: (cin, n, h, w)  w: (cout, cin/G, kh, kw)  y, residual: (cout, n, ho, wo)
    const int cin_g = s->cin / s->groups, cout_g = s->cout / s->groups;
    for (int co = 0; co < s->cout; co++) {
        const int ci0 = co / cout_g * cin_g;
        for (int b = 0; b < s->n; b++)
            for (int oh = 0; oh < s->ho; oh++)
                for (int ow = 0; ow < s->wo; ow++) {
                    double sum = 0.0;
                    for (int c = 0; c < cin_g; c++)
                        for (int ki = 0; ki < s->kh; ki++) {
                            int ih = oh * s->stride - s->pad + ki;
                            if (ih < 0 || ih >= s->h)
                                continue;
                            for (int kj = 0; kj < s->kw; kj++) {
                                int iw = ow * s->stride - s->pad + kj;
                                if (iw < 0 || iw >= s->w)
                                    continue;
                                size_t xi = (((size_t)(ci0 + c) * s->n + b) * s->h + ih) * s->w + iw;
                                size_t wi = (((size_t)co * cin_g + c) * s->kh + ki) * s->kw + kj;
                                sum += (double)x[xi] * w[wi];
                            }
                        }
                    size_t yi = (((size_t)co * s->n + b) * s->ho + oh) * s->wo + ow;
                    float r = (float)sum;
                    if (bias)
                        r += bias[co];
                    if (residual)
                        r += residual[yi];
                    if (relu && r < 0.0f)
                        r = 0.0f;
                    y[yi] = r;
                }
    }
}

/* ---------------------------------------------------------------------------
 * Fast path: implicit-im2col GEMM per group
 * ------------------------------------------------------------------------- */

static int is_pointwise(const rn_conv_shape *s) {
    return s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad == 0;
}

/* Floats of one group's weights packed for the GEMM. */
static size_t group_packed_floats(const rn_kernels *k, const rn_conv_shape *s) {
    return rn_gemm_packed_a_floats(k, s->cout / s->groups,
                                   s->cin / s->groups * s->kh * s->kw);
}

/* y = conv(x) with the epilogue, group by group. The weights are either w
 * (cout, cin/G, kh, kw) read in place (and packed into pack_ws when that
 * pays), or `packed` (rn_conv_im2col's preparation). */
static void conv_groups(const rn_kernels *k, const rn_conv_shape *s, const float *x,
                        const float *w, const float *packed, const float *bias,
                        const float *residual, int relu, float *y, float *pack_ws) {
    const int G = s->groups;
    const int cin_g = s->cin / G, cout_g = s->cout / G;
    const int K = cin_g * s->kh * s->kw;
    const int N = s->n * s->ho * s->wo;
    const size_t in_plane = (size_t)s->n * s->h * s->w;
    const size_t per_group = packed ? group_packed_floats(k, s) : 0;

    for (int g = 0; g < G; g++) {
        // x_g: (cin_g, n*h*w)  w_g: (cout_g, K)  y_g: (cout_g, N)
        const float *xg = x + (size_t)g * cin_g * in_plane;
        const float *wg = packed ? packed + (size_t)g * per_group : w + (size_t)g * cout_g * K;
        float *yg = y + (size_t)g * cout_g * N;
        rn_gemm_epilogue ep = {
            .bias = bias ? bias + (size_t)g * cout_g : NULL,
            .residual = residual ? residual + (size_t)g * cout_g * N : NULL,
            .ldr = N,
            .relu = relu,
        };
        rn_im2col im = {.x = xg, .c = cin_g, .n = s->n, .h = s->h, .w = s->w, .kh = s->kh,
                        .kw = s->kw, .stride = s->stride, .pad = s->pad, .ho = s->ho,
                        .wo = s->wo};
        if (is_pointwise(s) && packed)
            rn_sgemm_packed(k, cout_g, N, cin_g, wg, 0, xg, N, 0.0f, yg, N, &ep);
        else if (is_pointwise(s))
            rn_sgemm_ws(k, 0, 0, cout_g, N, cin_g, wg, K, xg, N, 0.0f, yg, N, &ep, pack_ws);
        else if (packed)
            rn_sgemm_im2col_packed(k, cout_g, wg, &im, 0.0f, yg, N, &ep);
        else
            rn_sgemm_im2col(k, cout_g, wg, K, &im, 0.0f, yg, N, &ep, pack_ws);
    }
}

size_t conv2d_workspace_floats(const rn_kernels *k, const rn_conv_shape *s) {
    return group_packed_floats(k, s);
}

void conv2d_forward(const rn_kernels *k, const rn_conv_shape *s, const float *x, const float *w,
                    const float *bias, const float *residual, int relu,
                    float *y, float *workspace) {
    conv_groups(k, s, x, w, NULL, bias, residual, relu, y, workspace);
}

/* ---------------------------------------------------------------------------
 * The GEMM algorithms behind the seam (conv_algo.h): weights packed once
 * ------------------------------------------------------------------------- */

static int supports_any(const rn_conv_shape *s) {
    (void)s;
    return 1;
}

static size_t packed_floats(const rn_kernels *k, const rn_conv_shape *s) {
    return group_packed_floats(k, s) * (size_t)s->groups;
}

static void prepare_packed(const rn_kernels *k, const rn_conv_shape *s, const float *w,
                           float *prepared) {
    const int cout_g = s->cout / s->groups, K = s->cin / s->groups * s->kh * s->kw;
    const size_t per_group = group_packed_floats(k, s);
    for (int g = 0; g < s->groups; g++)
        rn_gemm_pack_a(k, 0, cout_g, K, w + (size_t)g * cout_g * K, K,
                       prepared + (size_t)g * per_group);
}

static size_t no_workspace(const rn_kernels *k, const rn_conv_shape *s, int threads) {
    (void)k, (void)s, (void)threads;
    return 0;
}

static void forward_packed(const rn_kernels *k, const rn_conv_shape *s, const float *x,
                           const float *prepared, const float *bias, const float *residual,
                           int relu, float *y, float *workspace) {
    (void)workspace;
    conv_groups(k, s, x, NULL, prepared, bias, residual, relu, y, NULL);
}

const rn_conv_algo rn_conv_im2col = {
    .id = RN_CONV_IM2COL,
    .name = "im2col",
    .description = "implicit-im2col GEMM (any shape)",
    .tolerance = 1e-5,
    .supports = supports_any,
    .prepared_floats = packed_floats,
    .prepare = prepare_packed,
    .workspace_floats = no_workspace,
    .forward = forward_packed,
};

const rn_conv_algo rn_conv_pointwise = {
    .id = RN_CONV_POINTWISE,
    .name = "pointwise",
    .description = "1x1 stride-1 convolution as a GEMM on the input",
    .tolerance = 1e-5,
    .supports = is_pointwise,
    .prepared_floats = packed_floats,
    .prepare = prepare_packed,
    .workspace_floats = no_workspace,
    .forward = forward_packed,
};
