/*
 * linear.c - the fully connected head, forward and backward.
 *
 * x: (C, N) channel-major features (as global pooling leaves them),
 * w: (K, C), b: (K); y: (N, K) logits, batch-major as PyTorch returns them.
 */
#include "core/threads.h"
#include "ops/gemm.h"
#include "ops/kernels.h"
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

/* Batch 1: each logit one dot product of a row of w with x, the rows shared out over the
 * threads, each row summed whole by one thread (the same bytes whatever the threads): on the
 * kernels' gemv where they have one, else in 16 partial sums here (column c into sum c % 16, the
 * sums then added in order, then the bias). The GEMM would hold the one column in a panel of 16
 * and read w at about a third of the speed: resnet50's classifier (8 MB of weights) took 330 us
 * of the int8 pass at batch 1 (Zen 5, 2 threads), this loop compiled for SSE2 225-240 us, the
 * AVX-512 gemv 77-80. */
static void gemv_rows(const float *x, int C, const float *w, const float *b, int rows,
                      float *y) {
    for (int k = 0; k < rows; k++) {
        const float *wr = w + (size_t)k * C;
        float acc[16] = {0};
        int c = 0;
        for (; c + 16 <= C; c += 16)
            for (int l = 0; l < 16; l++)
                acc[l] += wr[c + l] * x[c + l];
        for (int l = 0; c < C; c++, l++)
            acc[l] += wr[c] * x[c];
        float sum = 0.0f;
        for (int l = 0; l < 16; l++)
            sum += acc[l];
        y[k] = b ? sum + b[k] : sum;
    }
}

void linear_forward_gemv_team(const rn_kernels *kd, const float *x, int C, const float *w,
                              const float *b, int K, float *y, rn_team team) {
    kd = rn_kernels_or_default(kd);
    const rn_gemv_fn rows = kd->gemv ? kd->gemv : gemv_rows;
    if ((double)K * C <= 65536.0) /* small: the first thread alone */
        team = (rn_team){.id = team.id, .size = 1};
    if (team.id >= team.size)
        return;
    /* runs of 16 rows (64-byte lines of y) */
    long r0, r1;
    rn_team_share(team, (K + 15) / 16, &r0, &r1);
    const int k0 = (int)r0 * 16, k1 = (int)r1 * 16 < K ? (int)r1 * 16 : K;
    if (k0 < k1)
        rows(x, C, w + (size_t)k0 * C, b ? b + k0 : NULL, k1 - k0, y + k0);
}

static void gemv(const rn_kernels *kd, const float *x, int C, const float *w, const float *b,
                 int K, float *y) {
    const int threads = (double)K * C > 65536.0 ? rn_threads() : 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
    linear_forward_gemv_team(kd, x, C, w, b, K, y, rn_team_here());
}

void linear_forward(const rn_kernels *kd, const float *x, int C, int N, const float *w,
                    const float *b, int K, float *y, float *work) {
    kd = rn_kernels_or_default(kd);
    if (N == 1 && !rn_kernels_are_bf16(kd)) {
        gemv(kd, x, C, w, b, K, y); /* (bf16 descriptors multiply bf16 operands: their GEMM) */
        return;
    }
    /* work: (K, N) = w (K, C) x x (C, N) + b, then transposed into y. */
    rn_gemm_epilogue ep = {.bias = b};
    rn_sgemm(kd, 0, 0, K, N, C, w, C, x, N, 0.0f, work, N, &ep);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++)
            y[(size_t)n * K + k] = work[(size_t)k * N + n];
}

/* ---- backward ------------------------------------------------------------------
 * x: (C, N), w: (K, C), dy: (N, K).
 *     dx (C, N) = w^T dy^T     dw (K, C) = dy^T x^T     db (K) = column sums of dy */

void linear_backward_ref(const float *x, int C, int N, const float *w, int K,
                         const float *dy, float *dx, float *dw, float *db) {
    if (dx)
        for (int c = 0; c < C; c++)
            for (int n = 0; n < N; n++) {
                double sum = 0.0;
                for (int k = 0; k < K; k++)
                    sum += (double)w[(size_t)k * C + c] * dy[(size_t)n * K + k];
                dx[(size_t)c * N + n] = (float)sum;
            }
    for (int k = 0; k < K; k++) {
        for (int c = 0; c < C; c++) {
            double sum = 0.0;
            for (int n = 0; n < N; n++)
                sum += (double)dy[(size_t)n * K + k] * x[(size_t)c * N + n];
            dw[(size_t)k * C + c] = (float)sum;
        }
        if (db) {
            double sum = 0.0;
            for (int n = 0; n < N; n++)
                sum += dy[(size_t)n * K + k];
            db[k] = (float)sum;
        }
    }
}

void linear_backward(const rn_kernels *kd, const float *x, int C, int N, const float *w, int K,
                     const float *dy, float *dx, float *dw, float *db) {
    if (dx)
        rn_sgemm(kd, 1, 1, C, N, K, w, C, dy, K, 0.0f, dx, N, NULL);
    rn_sgemm(kd, 1, 1, K, C, N, dy, K, x, N, 0.0f, dw, C, NULL);
    if (db)
        for (int k = 0; k < K; k++) {
            double sum = 0.0;
            for (int n = 0; n < N; n++)
                sum += dy[(size_t)n * K + k];
            db[k] = (float)sum;
        }
}
