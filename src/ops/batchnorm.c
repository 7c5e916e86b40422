/*
 * batchnorm.c - BatchNorm2d forward and train-mode backward on channel-major
 * activations x: (C, M).
 *
 * PyTorch's numerics: normalise with the biased batch variance, eps inside
 * the square root. Statistics are accumulated in double, in a fixed order,
 * so they do not depend on the thread count.
 */
#include <math.h>

#include "core/threads.h"
#include "ops/ops.h"

/* ---- reference ------------------------------------------------------------ */

void batchnorm_stats_ref(const float *x, int C, size_t M, float *mean, float *var) {
    for (int c = 0; c < C; c++) {
        const float *row = x + (size_t)c * M;
        double sum = 0.0;
        for (size_t m = 0; m < M; m++)
            sum += row[m];
        double mu = sum / (double)M;
        double sq = 0.0;
        for (size_t m = 0; m < M; m++)
            sq += ((double)row[m] - mu) * ((double)row[m] - mu);
        mean[c] = (float)mu;
        var[c] = (float)(sq / (double)M);
    }
}

void batchnorm_apply_ref(const float *x, int C, size_t M, const float *scale,
                         const float *shift, const float *residual, int relu, float *y) {
    for (int c = 0; c < C; c++) {
        for (size_t m = 0; m < M; m++) {
            size_t i = (size_t)c * M + m;
            float v = x[i] * scale[c] + shift[c];
            if (residual)
                v += residual[i];
            if (relu && v < 0.0f) /* NaN stays NaN, as in PyTorch */
                v = 0.0f;
            y[i] = v;
        }
    }
}

void batchnorm_scale_shift(int C, const float *gamma, const float *beta,
                           const float *mean, const float *var, float eps,
                           float *scale, float *shift) {
    for (int c = 0; c < C; c++) {
        float s = gamma[c] / sqrtf(var[c] + eps);
        scale[c] = s;
        shift[c] = beta[c] - mean[c] * s;
    }
}

/* ---- fast ------------------------------------------------------------------ */

/* Sum of a row with 8 independent double accumulators (fixed order). Locals, not an array:
 * with an array GCC kept the partial sums in memory, a load and a store per addition. */
static double row_sum(const float *row, size_t M) {
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    size_t m = 0;
    for (; m + 8 <= M; m += 8) {
        a0 += row[m], a1 += row[m + 1], a2 += row[m + 2], a3 += row[m + 3];
        a4 += row[m + 4], a5 += row[m + 5], a6 += row[m + 6], a7 += row[m + 7];
    }
    for (; m < M; m++)
        a0 += row[m];
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
}

static double row_sq_dev(const float *row, size_t M, double mu) {
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    size_t m = 0;
#define SQ(j) (((double)row[m + (j)] - mu) * ((double)row[m + (j)] - mu))
    for (; m + 8 <= M; m += 8) {
        a0 += SQ(0), a1 += SQ(1), a2 += SQ(2), a3 += SQ(3);
        a4 += SQ(4), a5 += SQ(5), a6 += SQ(6), a7 += SQ(7);
    }
#undef SQ
    for (; m < M; m++) {
        double d = (double)row[m] - mu;
        a0 += d * d;
    }
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
}

void batchnorm_stats(const float *x, int C, size_t M, float *mean, float *var) {
#pragma omp parallel for num_threads(rn_threads()) schedule(static)
    for (int c = 0; c < C; c++) {
        const float *row = x + (size_t)c * M;
        double mu = row_sum(row, M) / (double)M;
        mean[c] = (float)mu;
        var[c] = (float)(row_sq_dev(row, M, mu) / (double)M);
    }
}

void batchnorm_apply(const float *x, int C, size_t M, const float *scale,
                     const float *shift, const float *residual, int relu, float *y) {
#pragma omp parallel for num_threads(rn_threads()) schedule(static)
    for (int c = 0; c < C; c++) {
        const float *xr = x + (size_t)c * M;
        const float *rr = residual ? residual + (size_t)c * M : NULL;
        float *yr = y + (size_t)c * M;
        float s = scale[c], t = shift[c];
        if (rr && relu) {
#pragma omp simd
            for (size_t m = 0; m < M; m++) {
                float v = xr[m] * s + t + rr[m];
                yr[m] = v < 0.0f ? 0.0f : v;
            }
        } else if (rr) {
#pragma omp simd
            for (size_t m = 0; m < M; m++)
                yr[m] = xr[m] * s + t + rr[m];
        } else if (relu) {
#pragma omp simd
            for (size_t m = 0; m < M; m++) {
                float v = xr[m] * s + t;
                yr[m] = v < 0.0f ? 0.0f : v;
            }
        } else {
#pragma omp simd
            for (size_t m = 0; m < M; m++)
                yr[m] = xr[m] * s + t;
        }
    }
}

/* ---- backward (train mode) --------------------------------------------------
 * With xhat = (x - mean) * invstd, dbeta = sum(dy), dgamma = sum(dy * xhat):
 *     dx = gamma * invstd * (dy - dbeta / M - xhat * dgamma / M)
 * which is PyTorch's formula, (M * dy - dbeta - xhat * dgamma) scaled by
 * gamma * invstd / M. */

void batchnorm_backward_ref(const float *x, const float *dy, int C, size_t M,
                            const float *gamma, const float *mean, const float *invstd,
                            float *dx, float *dgamma, float *dbeta) {
    for (int c = 0; c < C; c++) {
        const float *xr = x + (size_t)c * M, *dyr = dy + (size_t)c * M;
        double mu = mean[c], is = invstd[c];
        double sdy = 0.0, sdyx = 0.0;
        for (size_t m = 0; m < M; m++) {
            sdy += dyr[m];
            sdyx += (double)dyr[m] * ((xr[m] - mu) * is);
        }
        double k = (double)gamma[c] * is / (double)M;
        for (size_t m = 0; m < M; m++) {
            double xhat = (xr[m] - mu) * is;
            dx[(size_t)c * M + m] = (float)(k * ((double)M * dyr[m] - sdy - xhat * sdyx));
        }
        dgamma[c] = (float)sdyx;
        dbeta[c] = (float)sdy;
    }
}

/* sum(dy) and sum(dy * (x - mu)) of a row, in double; `omp simd` vectorises
 * it (the lanes' order is fixed by the build, not by the thread count). */
static void row_grad_sums(const float *x, const float *dy, size_t M, float mu, double *sdy,
                          double *sdyx) {
    double a = 0.0, b = 0.0;
#pragma omp simd reduction(+ : a, b)
    for (size_t m = 0; m < M; m++) {
        a += dy[m];
        b += (double)dy[m] * (double)(x[m] - mu);
    }
    *sdy = a;
    *sdyx = b;
}

void batchnorm_backward(const float *x, const float *dy, int C, size_t M,
                        const float *gamma, const float *mean, const float *invstd,
                        float *dx, float *dgamma, float *dbeta) {
#pragma omp parallel for num_threads(rn_threads()) schedule(static)
    for (int c = 0; c < C; c++) {
        const float *xr = x + (size_t)c * M, *dyr = dy + (size_t)c * M;
        float *dxr = dx + (size_t)c * M;
        const float mu = mean[c];
        double sdy, sdyx;
        row_grad_sums(xr, dyr, M, mu, &sdy, &sdyx);
        double is = invstd[c];
        double dg = sdyx * is; /* sum(dy * xhat) */
        /* dx = a * dy + b * (x - mu) + d */
        const float a = (float)(gamma[c] * is);
        const float b = (float)(-(double)gamma[c] * is * is * dg / (double)M);
        const float d = (float)(-(double)gamma[c] * is * sdy / (double)M);
#pragma omp simd
        for (size_t m = 0; m < M; m++)
            dxr[m] = a * dyr[m] + b * (xr[m] - mu) + d;
        dgamma[c] = (float)dg;
        dbeta[c] = (float)sdy;
    }
}
