/*
 * conv2d.h - 2-D convolution, forward.
 *
 * Layout: activations are channel-major, (C, N, H, W): every channel's
 * N*H*W values are contiguous. A convolution is then one GEMM
 *     y[cout, n*ho*wo] = w[cout, cin*kh*kw] x col[cin*kh*kw, n*ho*wo]
 * with no transposes, and per-channel ops (BatchNorm) work on rows.
 * Weights keep PyTorch's layout (cout, cin/groups, kh, kw).
 *
 * Epilogue, applied in this order after the convolution sum:
 *     y += bias[co]          (bias may be NULL)
 *     y += residual[...]     (residual may be NULL; same layout as y)
 *     y = max(y, 0)          (if relu)
 * In the fast paths (conv2d_forward and the algorithms of conv_algo.h) residual may be y
 * itself: the output is then written over its residual (the GEMMs add the product to it,
 * so the sum is residual + product + bias, rounded in that order). x never aliases y.
 */
#ifndef RN_OPS_CONV2D_H
#define RN_OPS_CONV2D_H

#include <stddef.h>

typedef struct rn_kernels rn_kernels; /* ops/kernels.h; NULL: the process default */

typedef struct rn_conv_shape {
    int n, cin, h, w;                 /* input x: (cin, n, h, w) */
    int cout, kh, kw;                 /* weight: (cout, cin/groups, kh, kw) */
    int stride, pad, groups;
    int ho, wo;                       /* output y: (cout, n, ho, wo) */
} rn_conv_shape;

/* Fills s->ho, s->wo from the rest; returns 0 if the output would be empty
 * or the channels do not divide into groups. */
int conv2d_shape_init(rn_conv_shape *s);

/* Floats of the weights of shape s: cout * cin/groups * kh * kw. */
size_t conv2d_weight_floats(const rn_conv_shape *s);

/* A kernel larger than a tiny input (3x3 on 1x1) has taps that only ever
 * multiply padding. If the live taps form a square whose offset keeps the
 * pads equal, the convolution equals one with the kernel cropped to it and
 * the pad reduced: *c, the crop starting at tap (*k0, *k0). Returns 0 when
 * nothing can be cropped. conv2d_crop_weights cuts w (shape s) down to wc
 * (shape c). */
int conv2d_crop_shape(const rn_conv_shape *s, rn_conv_shape *c, int *k0);
void conv2d_crop_weights(const rn_conv_shape *s, const rn_conv_shape *c, int k0, const float *w,
                         float *wc);

/* The input a strided 1x1 convolution reads: xs (cin * n, ho, wo) = x (cin * n, h, w) at every
 * stride-th row and column (threaded). */
void conv2d_subsample(const rn_conv_shape *s, const float *x, float *xs);

/* The plain-C oracle: a direct loop nest, no workspace. */
void conv2d_forward_ref(const rn_conv_shape *s, const float *x, const float *w,
                        const float *bias, const float *residual, int relu,
                        float *y);

/* Floats of workspace conv2d_forward needs for shape s on kernels k. */
size_t conv2d_workspace_floats(const rn_kernels *k, const rn_conv_shape *s);

/* The fast path on weights as they are (im2col + blocked GEMM, threaded over
 * rn_threads(); a strided 1x1 on its input subsampled into the workspace, as
 * the pointwise algorithm); the algorithms of conv_algo.h run on prepared weights.
 * `workspace` holds conv2d_workspace_floats(k, s) floats, 64-byte aligned,
 * or is NULL (the weights are then read in place). Deterministic: the result
 * does not depend on the thread count. */
void conv2d_forward(const rn_kernels *k, const rn_conv_shape *s, const float *x, const float *w,
                    const float *bias, const float *residual, int relu,
                    float *y, float *workspace);

/* ---- backward ---------------------------------------------------------------
 * dy: (cout, n, ho, wo), the gradient of the loss with respect to y.
 *
 * Gradient with respect to the input: dx (cin, n, h, w) = beta * dx +
 * conv_transpose(dy, w). beta is 0 (overwrite; dx may be uninitialised) or
 * 1 (accumulate, for a block input that feeds two paths). */
void conv2d_backward_data_ref(const rn_conv_shape *s, const float *dy, const float *w,
                              float beta, float *dx);
void conv2d_backward_data(const rn_kernels *k, const rn_conv_shape *s, const float *dy,
                          const float *w, float beta, float *dx, float *workspace, int algos);

/* Gradients with respect to the weights and bias, overwritten:
 * dw (cout, cin/groups, kh, kw) = sum over n, ho, wo of dy x im2col(x);
 * db (cout) = sum of dy over n, ho, wo (db may be NULL). With `algos` non-zero, the weight
 * gradient of a 3x3 stride-1 convolution on enough channels is computed by Winograd
 * (conv_wgrad.h: its accuracy is the forward Winograd's), and that of a layer the heuristic
 * gives to the small-map product as one (conv_smallmap.c, exact up to float rounding); 0 keeps
 * the exact routes. */
void conv2d_backward_weight_ref(const rn_conv_shape *s, const float *x, const float *dy,
                                float *dw, float *db);
void conv2d_backward_weight(const rn_kernels *k, const rn_conv_shape *s, const float *x,
                            const float *dy, float *dw, float *db, float *workspace, int algos);

/* 1 when conv2d_backward_weight computes shape s's weight gradient by the direct strips
 * (conv_wgrad.h: windows on few channels, no im2col), 0 when by the GEMM. */
int conv2d_backward_weight_direct(const rn_kernels *k, const rn_conv_shape *s);

/* 1 when conv2d_backward_weight, with algos non-zero, computes shape s's weight gradient by
 * Winograd (conv_wgrad.h), 0 when not. */
int conv2d_backward_weight_winograd(const rn_kernels *k, const rn_conv_shape *s);

/* 1 when conv2d_backward_weight (with algos as given) multiplies float32 operands for shape s:
 * always on fp32 kernels; on bf16 ones by the direct strips, by Winograd (but on matrix tiles)
 * and by the GEMM's product by col on few input channels (conv2d_backward.c, WT_FP32_MAX_K),
 * which run on k's fp32 twin; 0 when on bf16 products. */
int conv2d_backward_weight_fp32(const rn_kernels *k, const rn_conv_shape *s, int algos);

/* 1 when conv2d_backward_data computes shape s's data gradient phase by phase (strided
 * windows on many input channels: one stride-1 product per phase of dx, no col2im), 0 when
 * not. */
int conv2d_backward_data_by_phases(const rn_kernels *k, const rn_conv_shape *s);

/* The algorithm (rn_conv_algo_id) of shape s's data gradient with algos non-zero where it is
 * one of conv_algo.h's, the forward of the flipped weights (Winograd, direct, small-map), with
 * in *ka the kernels its products run on; -1 where a GEMM route of this file's computes it. */
int conv2d_backward_data_algo(const rn_kernels *k, const rn_conv_shape *s, const rn_kernels **ka);

/* 1 when both gradients of shape s, with algos non-zero, are the small-map product's
 * (conv_smallmap.c: a map of at most 2x2, one dense GEMM each, on k's kernels), 0 when not. */
int conv2d_backward_by_smallmap(const rn_kernels *k, const rn_conv_shape *s);

/* Floats of workspace the two fast backward functions need for shape s.
 * With `algos` non-zero, conv2d_backward_data computes the gradient of a
 * stride-1 convolution as the forward convolution of dy with the flipped
 * weights by Winograd (its accuracy, conv_algo.h), the direct algorithm or the small-map
 * product where the algorithm heuristic would choose one of them for that flipped
 * shape, its workspace sized for `algos` threads (conv_algo.h: forward); 0
 * keeps the GEMM routes (exact up to float rounding). */
size_t conv2d_backward_workspace_floats(const rn_kernels *k, const rn_conv_shape *s, int algos);

#endif
