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
#include <string.h>

#include "core/threads.h"
#include "ops/conv_algo.h"
#include "ops/gemm.h"
#include "ops/kernels.h"

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

size_t conv2d_weight_floats(const rn_conv_shape *s) {
    return (size_t)s->cout * (size_t)(s->cin / s->groups) * (size_t)s->kh * (size_t)s->kw;
}

/* ---------------------------------------------------------------------------
 * Taps that only read padding
 * ------------------------------------------------------------------------- */

/* The live taps along one axis: [*lo, *hi) of the k taps that read an
 * input position for some output position; 0 if they are not one interval. */
static int live_taps(int in, int out, int k, int stride, int pad, int *lo, int *hi) {
    *lo = -1;
    *hi = -1;
    for (int t = 0; t < k; t++) {
        int live = 0;
        for (int o = 0; o < out && !live; o++) {
            int i = o * stride - pad + t;
            live = i >= 0 && i < in;
        }
        if (live && *hi >= 0 && *hi != t)
            return 0; /* a dead tap inside */
        if (live) {
            if (*lo < 0)
                *lo = t;
            *hi = t + 1;
        }
    }
    return *lo >= 0;
}

/* A kernel larger than a tiny input (3x3 on 1x1) has taps that only ever
 * multiply padding. If the live taps form a rectangle whose offsets keep the
 * two pads equal, the convolution is the same as one with the kernel cropped
 * to that rectangle and the pad reduced by the offset: *c, with the crop at
 * tap (*k0, *k0). Returns 0 when nothing can be cropped. */
int conv2d_crop_shape(const rn_conv_shape *s, rn_conv_shape *c, int *k0) {
    int i0, i1, j0, j1;
    if (!live_taps(s->h, s->ho, s->kh, s->stride, s->pad, &i0, &i1) ||
        !live_taps(s->w, s->wo, s->kw, s->stride, s->pad, &j0, &j1))
        return 0;
    if (i1 - i0 == s->kh && j1 - j0 == s->kw)
        return 0;
    if (i0 != j0)
        return 0;
    *c = *s;
    c->kh = i1 - i0;
    c->kw = j1 - j0;
    c->pad = s->pad - i0;
    *k0 = i0;
    return conv2d_shape_init(c) && c->ho == s->ho && c->wo == s->wo;
}

void conv2d_crop_weights(const rn_conv_shape *s, const rn_conv_shape *c, int k0, const float *w,
                         float *wc) {
    // w: (planes, kh, kw) -> wc: (planes, c->kh, c->kw), the window at tap (k0, k0)
    const size_t planes = (size_t)s->cout * (s->cin / s->groups);
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if (planes > 4096)
    for (size_t q = 0; q < planes; q++)
        for (int i = 0; i < c->kh; i++)
            for (int j = 0; j < c->kw; j++)
                wc[(q * c->kh + i) * c->kw + j] = w[(q * s->kh + i + k0) * s->kw + j + k0];
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

static int is_1x1(const rn_conv_shape *s) { return s->kh == 1 && s->kw == 1 && s->pad == 0; }

/* im2col(x) is x itself */
static int is_pointwise(const rn_conv_shape *s) { return is_1x1(s) && s->stride == 1; }

/* Floats of one group's weights packed for the GEMM. */
static size_t group_packed_floats(const rn_kernels *k, const rn_conv_shape *s) {
    return rn_gemm_packed_a_floats(k, s->cout / s->groups,
                                   s->cin / s->groups * s->kh * s->kw);
}

/* y = conv(x) with the epilogue, group by group. The weights are either w
 * (cout, cin/G, kh, kw) read in place (and packed into pack_ws when that
 * pays), or `packed` (rn_conv_im2col's preparation; pack_ws then holds the
 * packed im2col matrix where rn_gemm_im2col_b_floats asks for it). */
static void conv_groups(const rn_kernels *k, const rn_conv_shape *s, const float *x,
                        const float *w, const float *packed, const float *bias,
                        const float *residual, int relu, float *y, float *pack_ws) {
    const int G = s->groups;
    const int cin_g = s->cin / G, cout_g = s->cout / G;
    const int K = cin_g * s->kh * s->kw;
    const int N = s->n * s->ho * s->wo;
    const size_t in_plane = (size_t)s->n * s->h * s->w;
    const size_t per_group = packed ? group_packed_floats(k, s) : 0;
    /* y over its own residual: the product is added to it (beta 1), K block by K block */
    const int in_place = residual && residual == y;
    const float beta = in_place ? 1.0f : 0.0f;

    for (int g = 0; g < G; g++) {
        // x_g: (cin_g, n*h*w)  w_g: (cout_g, K)  y_g: (cout_g, N)
        const float *xg = x + (size_t)g * cin_g * in_plane;
        const float *wg = packed ? packed + (size_t)g * per_group : w + (size_t)g * cout_g * K;
        float *yg = y + (size_t)g * cout_g * N;
        rn_gemm_epilogue ep = {
            .bias = bias ? bias + (size_t)g * cout_g : NULL,
            .residual = residual && !in_place ? residual + (size_t)g * cout_g * N : NULL,
            .ldr = N,
            .relu = relu,
        };
        rn_im2col im = {.x = xg, .c = cin_g, .n = s->n, .h = s->h, .w = s->w, .kh = s->kh,
                        .kw = s->kw, .stride = s->stride, .pad = s->pad, .ho = s->ho,
                        .wo = s->wo};
        if (is_pointwise(s) && packed)
            rn_sgemm_packed(k, cout_g, N, cin_g, wg, 0, xg, N, beta, yg, N, &ep);
        else if (is_pointwise(s))
            rn_sgemm_ws(k, 0, 0, cout_g, N, cin_g, wg, K, xg, N, beta, yg, N, &ep, pack_ws);
        else if (packed)
            rn_sgemm_im2col_packed(k, cout_g, wg, &im, beta, yg, N, &ep, pack_ws);
        else
            rn_sgemm_im2col(k, cout_g, wg, K, &im, beta, yg, N, &ep, pack_ws);
    }
}

/* A strided 1x1 convolution runs as a GEMM on its input subsampled in one
 * pass (into the workspace), as a stride-1 one on the input itself: the
 * implicit im2col of a strided 1x1 reads every other element in its packer,
 * once per band of output rows, and at resnet50's downsampling layers
 * (batch 32, Zen 3) ran at 71-96 GFLOP/s in the network against 115-130 for
 * the stride-1 ones. */

/* The subsampled input of a strided 1x1 (0 floats for any other shape). */
static size_t subsampled_floats(const rn_conv_shape *s) {
    return is_1x1(s) && s->stride > 1 ? (size_t)s->cin * s->n * s->ho * s->wo : 0;
}

void conv2d_subsample(const rn_conv_shape *s, const float *x, float *xs) {
    const long planes = (long)s->cin * s->n;
    const int st = s->stride;
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if (planes * s->ho * s->wo > 65536)
    for (long p = 0; p < planes; p++)
        for (int oy = 0; oy < s->ho; oy++) {
            const float *src = x + ((size_t)p * s->h + (size_t)oy * st) * s->w;
            float *dst = xs + ((size_t)p * s->ho + oy) * s->wo;
            for (int ox = 0; ox < s->wo; ox++)
                dst[ox] = src[(size_t)ox * st];
        }
}

/* conv_groups on xs, the input of the strided 1x1 s subsampled here. */
static void conv_subsampled(const rn_kernels *k, const rn_conv_shape *s, const float *x,
                            const float *w, const float *packed, const float *bias,
                            const float *residual, int relu, float *y, float *xs, float *pack_ws) {
    rn_conv_shape g = *s;
    g.h = s->ho, g.w = s->wo, g.stride = 1;
    conv2d_subsample(s, x, xs);
    conv_groups(k, &g, xs, w, packed, bias, residual, relu, y, pack_ws);
}

/* Cropped weights (conv2d_crop_shape) in the workspace, 64-byte aligned. */
static size_t align16(size_t n) { return (n + 15) / 16 * 16; }

size_t conv2d_workspace_floats(const rn_kernels *k, const rn_conv_shape *s) {
    rn_conv_shape c;
    int k0;
    if (conv2d_crop_shape(s, &c, &k0))
        return align16(conv2d_weight_floats(&c)) + group_packed_floats(k, &c);
    return align16(subsampled_floats(s)) + group_packed_floats(k, s);
}

void conv2d_forward(const rn_kernels *k, const rn_conv_shape *s, const float *x, const float *w,
                    const float *bias, const float *residual, int relu,
                    float *y, float *workspace) {
    rn_conv_shape c;
    int k0;
    if (workspace && conv2d_crop_shape(s, &c, &k0)) {
        /* taps that only read padding are left out: the live ones, then the product */
        conv2d_crop_weights(s, &c, k0, w, workspace);
        conv_groups(k, &c, x, workspace, NULL, bias, residual, relu, y,
                    workspace + align16(conv2d_weight_floats(&c)));
        return;
    }
    if (workspace && subsampled_floats(s)) {
        conv_subsampled(k, s, x, w, NULL, bias, residual, relu, y, workspace,
                        workspace + align16(subsampled_floats(s)));
        return;
    }
    conv_groups(k, s, x, w, NULL, bias, residual, relu, y, workspace);
}

/* ---------------------------------------------------------------------------
 * The GEMM algorithms behind the seam (conv_algo.h): weights packed once,
 * the taps that only read padding cropped off first
 * ------------------------------------------------------------------------- */

static int supports_any(const rn_conv_shape *s) {
    (void)s;
    return 1;
}

/* The shape the GEMM runs: s, or s cropped (*k0: the crop's first tap, -1 if none). */
static rn_conv_shape gemm_shape(const rn_conv_shape *s, int *k0) {
    rn_conv_shape c;
    if (conv2d_crop_shape(s, &c, k0))
        return c;
    *k0 = -1;
    return *s;
}

static size_t packed_floats(const rn_kernels *k, const rn_conv_shape *s) {
    int k0;
    rn_conv_shape g = gemm_shape(s, &k0);
    return group_packed_floats(k, &g) * (size_t)s->groups;
}

static void prepare_packed(const rn_kernels *k, const rn_conv_shape *s, const float *w,
                           float *prepared) {
    int k0;
    const rn_conv_shape g = gemm_shape(s, &k0);
    const int cout_g = g.cout / g.groups, cin_g = g.cin / g.groups, K = cin_g * g.kh * g.kw;
    const size_t per_group = group_packed_floats(k, &g);
    if (k0 < 0) {
        for (int gi = 0; gi < g.groups; gi++)
            rn_gemm_pack_a(k, 0, cout_g, K, w + (size_t)gi * cout_g * K, K,
                           prepared + (size_t)gi * per_group);
        return;
    }
    /* cropped: each live tap straight into its packed place (padding rows zero) */
    k = rn_kernels_or_default(k);
    const int mr = k->mr, m_panels = (cout_g + mr - 1) / mr;
    int nkb, kcb;
    rn_gemm_k_blocks(k, K, &nkb, &kcb);
    memset(prepared, 0, per_group * (size_t)g.groups * sizeof(float));
    for (int gi = 0; gi < g.groups; gi++)
        for (int co = 0; co < cout_g; co++)
            for (int kk = 0; kk < K; kk++) {
                const int ci = kk / (g.kh * g.kw), i = kk / g.kw % g.kh, j = kk % g.kw;
                const size_t src = ((((size_t)gi * cout_g + co) * cin_g + ci) * s->kh + i + k0) *
                                       s->kw + j + k0;
                prepared[(size_t)gi * per_group +
                         rn_gemm_packed_a_index(mr, K, nkb, kcb, m_panels, co, kk)] = w[src];
            }
    for (int gi = 0; gi < g.groups; gi++) /* into the kernels' operand format (bf16) */
        rn_gemm_finish_packed_a(k, cout_g, K, prepared + (size_t)gi * per_group);
}

/* The im2col matrix of one group packed whole, when it is narrow enough. */
static size_t im2col_workspace(const rn_kernels *k, const rn_conv_shape *s, int threads) {
    (void)threads;
    int k0;
    const rn_conv_shape g = gemm_shape(s, &k0);
    const rn_im2col im = {.c = g.cin / g.groups, .n = g.n, .h = g.h, .w = g.w, .kh = g.kh,
                          .kw = g.kw, .stride = g.stride, .pad = g.pad, .ho = g.ho, .wo = g.wo};
    return rn_gemm_im2col_b_floats(k, &im);
}

static void forward_packed(const rn_kernels *k, const rn_conv_shape *s, const float *x,
                           const float *prepared, const float *bias, const float *residual,
                           int relu, float *y, float *workspace, int threads) {
    (void)threads;
    int k0;
    const rn_conv_shape g = gemm_shape(s, &k0);
    conv_groups(k, &g, x, NULL, prepared, bias, residual, relu, y, workspace);
}

const rn_conv_algo rn_conv_im2col = {
    .id = RN_CONV_IM2COL,
    .name = "im2col",
    .description = "implicit-im2col GEMM (any shape)",
    .tolerance = 1e-5,
    .tolerance_bf16 = 1e-5,
    .supports = supports_any,
    .prepared_floats = packed_floats,
    .prepare = prepare_packed,
    .workspace_floats = im2col_workspace,
    .forward = forward_packed,
};

static size_t pointwise_workspace(const rn_kernels *k, const rn_conv_shape *s, int threads) {
    (void)k, (void)threads;
    return subsampled_floats(s);
}

static void forward_1x1(const rn_kernels *k, const rn_conv_shape *s, const float *x,
                        const float *prepared, const float *bias, const float *residual, int relu,
                        float *y, float *workspace, int threads) {
    (void)threads;
    if (s->stride == 1)
        conv_groups(k, s, x, NULL, prepared, bias, residual, relu, y, NULL);
    else
        conv_subsampled(k, s, x, NULL, prepared, bias, residual, relu, y, workspace, NULL);
}

const rn_conv_algo rn_conv_pointwise = {
    .id = RN_CONV_POINTWISE,
    .name = "pointwise",
    .description = "1x1 convolution as a GEMM on the input (subsampled first when strided)",
    .tolerance = 1e-5,
    .tolerance_bf16 = 1e-5,
    .supports = is_1x1,
    .prepared_floats = packed_floats,
    .prepare = prepare_packed,
    .workspace_floats = pointwise_workspace,
    .forward = forward_1x1,
};
