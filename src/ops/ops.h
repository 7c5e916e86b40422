/*
 * ops.h - the per-channel and pooling ops: BatchNorm, ReLU, residual add,
 * max / global-average pooling, linear, and layout changes.
 *
 * Activations are channel-major: x: (C, N, H, W), so a channel's values are
 * one contiguous row of M = N*H*W floats. Every op has a plain-C `_ref`
 * oracle and a fast variant (threaded, written to vectorise) that the tests
 * compare against it. Convolution lives in conv2d.h, matrix products in
 * gemm.h.
 */
#ifndef RN_OPS_OPS_H
#define RN_OPS_OPS_H

#include <stddef.h>
#include <stdint.h>

#define RN_BN_EPS 1e-5f
#define RN_BN_MOMENTUM 0.1f

/* ---- BatchNorm -------------------------------------------------------------
 * Batch statistics of x: (C, M): mean[c] and the biased variance var[c]
 * (divided by M), as PyTorch normalises with in train mode. */
void batchnorm_stats_ref(const float *x, int C, size_t M, float *mean, float *var);
void batchnorm_stats(const float *x, int C, size_t M, float *mean, float *var);

/* scale[c] = gamma[c] / sqrt(var[c] + eps); shift[c] = beta[c] - mean[c] * scale[c]. */
void batchnorm_scale_shift(int C, const float *gamma, const float *beta,
                           const float *mean, const float *var, float eps,
                           float *scale, float *shift);

/* y[c, m] = x[c, m] * scale[c] + shift[c], then += residual[c, m] (if not
 * NULL), then max(., 0) (if relu). y may equal x. */
void batchnorm_apply_ref(const float *x, int C, size_t M, const float *scale,
                         const float *shift, const float *residual, int relu, float *y);
void batchnorm_apply(const float *x, int C, size_t M, const float *scale,
                     const float *shift, const float *residual, int relu, float *y);

/* ---- ReLU and residual add ------------------------------------------------- */
/* y = max(x, 0) over n values; y may equal x. */
void relu_forward_ref(const float *x, size_t n, float *y);
void relu_forward(const float *x, size_t n, float *y);
/* y = a + b (then max(., 0) if relu) over n values; y may equal a or b. */
void add_forward_ref(const float *a, const float *b, size_t n, int relu, float *y);
void add_forward(const float *a, const float *b, size_t n, int relu, float *y);

/* ---- Pooling ----------------------------------------------------------------
 * Max pooling over planes: x: (P, H, W) -> y: (P, HO, WO), P = C*N, padding
 * counts as -inf (as PyTorch). HO = (H + 2*pad - k) / stride + 1. */
int maxpool2d_out_size(int in, int k, int stride, int pad);
void maxpool2d_forward_ref(const float *x, int P, int H, int W, int k, int stride,
                           int pad, float *y);
void maxpool2d_forward(const float *x, int P, int H, int W, int k, int stride,
                       int pad, float *y);

/* Global average pool: x: (P, HW) -> y: (P), the mean of each plane. */
void avgpool_global_forward_ref(const float *x, size_t P, size_t HW, float *y);
void avgpool_global_forward(const float *x, size_t P, size_t HW, float *y);

/* ---- Linear -----------------------------------------------------------------
 * x: (C, N) channel-major features, w: (K, C) as PyTorch, b: (K) or NULL;
 * y: (N, K) = x^T w^T + b. `work` holds K*N floats for the fast path. */
void linear_forward_ref(const float *x, int C, int N, const float *w, const float *b,
                        int K, float *y);
void linear_forward(const float *x, int C, int N, const float *w, const float *b,
                    int K, float *y, float *work);

/* ---- Layout -----------------------------------------------------------------
 * (N, C, HW) <-> (C, N, HW). */
void layout_nchw_to_cnhw(const float *x, int N, int C, size_t HW, float *y);
void layout_cnhw_to_nchw(const float *x, int N, int C, size_t HW, float *y);

#endif
