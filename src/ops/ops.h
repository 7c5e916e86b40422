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

#include "core/threads.h"

typedef struct rn_kernels rn_kernels; /* ops/kernels.h; NULL: the process default */

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
/* Rounds x[0..n) to the nearest bf16 value (ties to even), in place; NaN
 * and infinities stay what they are. */
void rn_round_bf16(float *x, size_t n);

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

/* The same from x blocked by 16 channels (conv_algo.h's forward_blocked16: channel 16 b + l of
 * pixel q of the n images of H x W at x[(b * n * H * W + q) * 16 + l]) into y planar
 * (16 * blocks, n, HO, WO): bit for bit maxpool2d_forward_ref's result, each window scanned in
 * its order with its rule, 16 channels at once (kd's maxpool16 where it has one: the whole 3x3
 * windows at stride 2 of a plane without NaN). */
void maxpool2d_forward_blocked16(const rn_kernels *kd, const float *x, int blocks, int n, int H,
                                 int W, int k, int stride, int pad, float *y);

/* Global average pool: x: (P, HW) -> y: (P), the mean of each plane. */
void avgpool_global_forward_ref(const float *x, size_t P, size_t HW, float *y);
void avgpool_global_forward(const float *x, size_t P, size_t HW, float *y);

/* ---- Linear -----------------------------------------------------------------
 * x: (C, N) channel-major features, w: (K, C) as PyTorch, b: (K) or NULL;
 * y: (N, K) = x^T w^T + b. `work` holds K*N floats for the fast path. */
void linear_forward_ref(const float *x, int C, int N, const float *w, const float *b,
                        int K, float *y);
void linear_forward(const rn_kernels *k, const float *x, int C, int N, const float *w,
                    const float *b, int K, float *y, float *work);
/* Batch 1 (N = 1) on fp32 kernels (not bf16 ones), called by every thread of a team inside the
 * caller's parallel region (core/threads.h): this thread's rows of y. */
void linear_forward_gemv_team(const rn_kernels *k, const float *x, int C, const float *w,
                              const float *b, int K, float *y, rn_team team);

/* ---- Backward ---------------------------------------------------------------
 * Every `_backward` takes the gradient of the loss with respect to the op's
 * output (dy) and writes the gradient with respect to its input (dx) and
 * its parameters. Reductions run in a fixed order (deterministic for any
 * thread count). */

/* BatchNorm in train mode. x: (C, M) the input that was normalised with the
 * batch mean[c] and invstd[c] = 1/sqrt(var[c] + eps); dy: (C, M).
 *   dgamma[c] = sum(dy * xhat), dbeta[c] = sum(dy)          (overwritten)
 *   dx = gamma * invstd / M * (M * dy - dbeta - xhat * dgamma)
 * dx may equal dy. */
void batchnorm_backward_ref(const float *x, const float *dy, int C, size_t M,
                            const float *gamma, const float *mean, const float *invstd,
                            float *dx, float *dgamma, float *dbeta);
void batchnorm_backward(const float *x, const float *dy, int C, size_t M,
                        const float *gamma, const float *mean, const float *invstd,
                        float *dx, float *dgamma, float *dbeta);

/* ReLU given its output y: dx = dy where y > 0, else 0. dx may equal dy. */
void relu_backward_ref(const float *y, const float *dy, size_t n, float *dx);
void relu_backward(const float *y, const float *dy, size_t n, float *dx);
/* The same (y NULL: dx = dy, no ReLU), and dx copied to copy as well (copy NULL: no copy),
 * each thread its own range (a residual block's gradient is also its shortcut's first
 * contribution); relu_backward is this without the copy. */
void relu_backward_copy(const float *y, const float *dy, size_t n, float *dx, float *copy);

/* Max pooling: dx (P, H, W) = 0, then each dy goes to the first maximum of
 * its window in row-major scan order (PyTorch's choice). */
void maxpool2d_backward_ref(const float *x, const float *dy, int P, int H, int W, int k,
                            int stride, int pad, float *dx);
/* The same from the forward's output y as well (maxpool2d_forward of x):
 * each window's winner is found by comparing with y, independent tests
 * instead of a chain of comparisons (bitwise the reference's dx). */
void maxpool2d_backward(const float *x, const float *y, const float *dy, int P, int H, int W,
                        int k, int stride, int pad, float *dx);

/* A training step's pair: the forward also writes each window's winner, the element the
 * backward sends the window's gradient to (the reference's: the first maximum in scan order,
 * or the last NaN), as its offset ky * k + kx inside the window into arg (P, HO, WO bytes;
 * RN_POOL_NO_WINNER for a window wholly in the padding), for windows of at most
 * RN_POOL_ARG_MAX_K; the backward then adds each dy at its winner in the reference's order, no
 * window scanned again. y and dx are bitwise maxpool2d_forward_ref's and
 * maxpool2d_backward_ref's. */
#define RN_POOL_ARG_MAX_K 15
#define RN_POOL_NO_WINNER 255
void maxpool2d_forward_arg(const float *x, int P, int H, int W, int k, int stride, int pad,
                           float *y, uint8_t *arg);
void maxpool2d_backward_arg(const uint8_t *arg, const float *dy, int P, int H, int W, int k,
                            int stride, int pad, float *dx);

/* Global average pool: dx[p, i] = dy[p] / HW. */
void avgpool_global_backward_ref(const float *dy, size_t P, size_t HW, float *dx);
void avgpool_global_backward(const float *dy, size_t P, size_t HW, float *dx);

/* Linear: x (C, N), w (K, C), dy (N, K).
 *   dx (C, N) = (dy w)^T, dw (K, C) = dy^T x^T, db (K) = sum_n dy   (overwritten)
 * dx may be NULL (no input gradient needed). */
void linear_backward_ref(const float *x, int C, int N, const float *w, int K,
                         const float *dy, float *dx, float *dw, float *db);
void linear_backward(const rn_kernels *k, const float *x, int C, int N, const float *w, int K,
                     const float *dy, float *dx, float *dw, float *db);

/* Softmax cross-entropy, mean over the batch, with PyTorch's label
 * smoothing: target = (1 - s) * onehot + s / K. logits (N, K), labels (N)
 * in 0..K-1. Returns the loss; dlogits (N, K) (may be NULL) receives its
 * gradient. `correct` (may be NULL) receives the number of rows whose
 * arg-max equals the label. */
float softmax_cross_entropy_ref(const float *logits, const int *labels, int N, int K,
                                float smoothing, float *dlogits, int *correct);
float softmax_cross_entropy(const float *logits, const int *labels, int N, int K,
                            float smoothing, float *dlogits, int *correct);
/* The same on a mixed batch (mixup, CutMix): labels2 (N) the second label of each row and lam
 * the first's share, target (1 - s) * (lam * onehot(labels) + (1 - lam) * onehot(labels2)) +
 * s / K; `correct` counts the rows whose arg-max is the label of the larger share (labels
 * where lam >= 0.5). */
float softmax_cross_entropy_mix_ref(const float *logits, const int *labels, const int *labels2, float lam,
                                    int N, int K, float smoothing, float *dlogits, int *correct);
float softmax_cross_entropy_mix(const float *logits, const int *labels, const int *labels2, float lam, int N,
                                int K, float smoothing, float *dlogits, int *correct);

/* ---- Layout -----------------------------------------------------------------
 * (N, C, HW) <-> (C, N, HW). */
void layout_nchw_to_cnhw(const float *x, int N, int C, size_t HW, float *y);
void layout_cnhw_to_nchw(const float *x, int N, int C, size_t HW, float *y);

#endif
