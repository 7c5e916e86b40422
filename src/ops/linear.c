/*
 * linear.c - the fully connected head, forward.
 *
 * x: (C, N) channel-major features (as global pooling leaves them),
 * w: (K, C), b: (K); y: (N, K) logits, batch-major as PyTorch returns them.
 */
#include "ops/gemm.h"
#include "ops/ops.h"

void linear_forward_ref(const float *x, int C, int N, const float *w, const float *b,
                        int K, float *y) {
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            float sum = b ? b[k] : 0.0f;
            for (int c = 0; c < C; c++)
                sum += w[(size_t)k * C + c] * x[(size_t)c * N + n];
            y[(size_t)n * K + k] = sum;
        }
}

void linear_forward(const float *x, int C, int N, const float *w, const float *b,
                    int K, float *y, float *work) {
    /* work: (K, N) = w (K, C) x x (C, N) + b, then transposed into y. */
    rn_gemm_epilogue ep = {.bias = b};
    rn_sgemm(0, 0, K, N, C, w, C, x, N, 0.0f, work, N, &ep);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++)
            y[(size_t)n * K + k] = work[(size_t)k * N + n];
}
