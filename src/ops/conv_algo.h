/*
 * conv_algo.h - the convolution algorithms, behind one seam.
 *
 * Each algorithm computes the forward convolution of conv2d.h (with bias,
 * residual and ReLU in its epilogue) from weights it has prepared once per
 * weight version: packed for the GEMM's kernels, transformed (Winograd), and
 * later quantized. A caller (the inference session, the trainer) records an
 * algorithm per conv node, asks for the prepared size, prepares, and runs:
 *
 *     const rn_conv_algo *a = rn_conv_algo_get(rn_conv_algo_choose(k, &s));
 *     a->prepare(k, &s, w, prepared);                  once per weight version
 *     a->forward(k, &s, x, prepared, bias, res, relu, y, workspace, threads);
 *
 * `res` may be y itself (conv2d.h): inference writes a residual block's last convolution
 * over its residual.
 *
 * The workspace holds workspace_floats(k, &s, threads) floats; the forward runs
 * on rn_threads() threads, and is given the `threads` its workspace was sized
 * for (a split that needs a slice per thread falls back to one that does not
 * when rn_threads() is another count). Results do not depend on either.
 *
 * `tolerance` is what the tests hold an algorithm to against
 * conv2d_forward_ref on random data: max |y - y_ref| / max |y_ref|. Exact
 * algorithms (a GEMM over the same products) hold 1e-5; Winograd trades
 * some accuracy for fewer multiplications and states its bound.
 * `tolerance_bf16` is the same on a bf16 descriptor's kernels (bf16 products), against the
 * oracle on operands already rounded to bf16: exact products for the GEMMs and the direct
 * tile, but Winograd rounds its transformed operands U and V to bf16 too.
 *
 * The kernels k (ops/kernels.h; NULL: the process default) fix the packed
 * layouts: weights prepared for one descriptor run only with it.
 */
#ifndef RN_OPS_CONV_ALGO_H
#define RN_OPS_CONV_ALGO_H

#include <stddef.h>

#include "core/status.h"
#include "ops/conv2d.h"

typedef enum rn_conv_algo_id {
    RN_CONV_IM2COL = 0,   /* implicit-im2col GEMM: any shape */
    RN_CONV_POINTWISE,    /* 1x1, unpadded: a GEMM on x itself (subsampled when strided) */
    RN_CONV_WINOGRAD,     /* Winograd F(4x4, 3x3): 3x3, stride 1 */
    RN_CONV_WINOGRAD2,    /* Winograd F(2x2, 3x3): 3x3, stride 1, small maps */
    RN_CONV_DIRECT,       /* direct: any shape, for narrow inputs (the stems, 16 channels) */
    RN_CONV_SMALLMAP,     /* maps of at most 2x2: one GEMM over the whole map */
    RN_CONV_ALGO_COUNT
} rn_conv_algo_id;

typedef struct rn_conv_algo {
    rn_conv_algo_id id;
    const char *name;         /* for --conv-algo: "im2col", "pointwise", "winograd", "winograd2",
                                 "direct", "smallmap" */
    const char *description;
    double tolerance;         /* see above */
    double tolerance_bf16;    /* on bf16 products (above) */
    /* whether the algorithm computes shape s (batch size ignored) */
    int (*supports)(const rn_conv_shape *s);
    /* prepared weights: floats, and the preparation from w (cout, cin/G, kh, kw) */
    size_t (*prepared_floats)(const rn_kernels *k, const rn_conv_shape *s);
    void (*prepare)(const rn_kernels *k, const rn_conv_shape *s, const float *w, float *prepared);
    /* workspace floats for a batch of s->n images on `threads` threads */
    size_t (*workspace_floats)(const rn_kernels *k, const rn_conv_shape *s, int threads);
    /* `threads`: the count the workspace was sized for */
    void (*forward)(const rn_kernels *k, const rn_conv_shape *s, const float *x,
                    const float *prepared, const float *bias, const float *residual, int relu,
                    float *y, float *workspace, int threads);
    /* optional (NULL where the algorithm has none): the forward without a residual, its output
     * blocked by 16 channels for a consumer that reads that layout (the stem's max-pool,
     * pool.h): channel 16 b + l of pixel q (over n, ho, wo, in order) at y[(b * P + q) * 16 +
     * l], P = n * ho * wo; s->cout a multiple of 16. The same values as forward's. */
    void (*forward_blocked16)(const rn_kernels *k, const rn_conv_shape *s, const float *x,
                              const float *prepared, const float *bias, int relu, float *y,
                              float *workspace, int threads);
} rn_conv_algo;

/* Whether algorithm `id` is one of the Winograd ones (weights of their own, transformed). */
static inline int rn_conv_algo_is_winograd(int id) {
    return id == RN_CONV_WINOGRAD || id == RN_CONV_WINOGRAD2;
}

/* Whether algorithm `id` runs only on the weights its own `prepare` made (Winograd's
 * transforms, the direct convolution's panels, the small-map product's whole-map matrix): a
 * trainer, whose weights change every step, prepares them every step; the GEMM algorithms also
 * run on the weights as they are. Of these, the direct convolution (its tile on a bf16
 * descriptor, direct.h) and the small-map product (a GEMM on the descriptor's kernels) have a
 * bf16 form. */
static inline int rn_conv_algo_own_weights(int id) {
    return rn_conv_algo_is_winograd(id) || id == RN_CONV_DIRECT || id == RN_CONV_SMALLMAP;
}

/* The algorithm with this id (NULL if out of range). */
const rn_conv_algo *rn_conv_algo_get(int id);

/* The id of the algorithm named `name`, or -1. */
int rn_conv_algo_find(const char *name);

/* A user's choice: NULL, "" or "auto" give -1 (the heuristic per layer),
 * a known name its id; anything else fails with a message listing the
 * names. */
rn_status rn_conv_algo_parse(const char *name, int *id);

/* "im2col x3, pointwise x3, winograd x14" from counts per algorithm id,
 * into buf (capacity cap > 0). */
void rn_conv_algo_format(const int count[RN_CONV_ALGO_COUNT], char *buf, size_t cap);

/* The algorithm the heuristic picks for s (batch size included) on k:
 * fewest estimated seconds among those that support s. */
rn_conv_algo_id rn_conv_algo_choose(const rn_kernels *k, const rn_conv_shape *s);

/* The algorithm a convolution runs in a pass on bf16 products (inference and training with
 * bf16) on the kernels kb (bf16 ones, or fp32 ones standing in for them): `a` (the heuristic's
 * or the user's pick for s) where it is a Winograd one, which keeps fp32 products (its
 * transforms, not its products, set its speed), except on a small map at stride 1, which the
 * direct tile takes where kb's multiplies bf16 pairs (unless the user forced `a`); the direct
 * one, whose tile on a bf16 descriptor multiplies bf16 pairs; otherwise a GEMM on the bf16
 * operands: pointwise where s allows it and the user did not force im2col (`forced`: the
 * forced id, or -1), else im2col. Where kb's GEMM runs on matrix tiles (AMX), the GEMM takes
 * every layer the user did not force elsewhere but Winograd's up to 128 input channels. In
 * inference (`inference` 1) the bf16 direct tile also takes the strided windows the heuristic
 * gave to im2col. */
rn_conv_algo_id rn_conv_algo_for_bf16(const rn_kernels *kb, int a, int forced, int inference,
                                      const rn_conv_shape *s);

/* Whether a pass on the bf16 kernels kb keeps Winograd (on fp32 products) for s where the fp32
 * heuristic picks it, rather than a GEMM on bf16 operands: always, but where kb's GEMM runs on
 * matrix tiles, only up to 128 input channels (the rule of rn_conv_algo_for_bf16, which the
 * data gradient's transposed convolution follows too). */
int rn_conv_bf16_keeps_winograd(const rn_kernels *kb, const rn_conv_shape *s);

/* The kernels algorithm `id` runs on in an inference pass on the bf16 kernels kb: kb itself,
 * Winograd included (its products on bf16 pairs: conv_winograd.c), but where kb's GEMM runs on
 * matrix tiles (AMX), whose Winograd stays on the fp32 twin (rn_kernels_fp32). */
const rn_kernels *rn_conv_bf16_kernels(const rn_kernels *kb, int id);

/* The algorithms, registered in conv_algo.c: the GEMM ones (conv2d.c),
 * Winograd's two (conv_winograd.c), the direct one (conv_direct.c) and the small-map product
 * (conv_smallmap.c). */
extern const rn_conv_algo rn_conv_im2col, rn_conv_pointwise, rn_conv_winograd, rn_conv_winograd2,
    rn_conv_direct, rn_conv_smallmap;

#endif
