/*
 * batchnorm_sync.c - BatchNorm2d over a batch split between processes
 * (contract and formulas in batchnorm_sync.h).
 */
#include "ops/batchnorm_sync.h"

#include "core/threads.h"

/* Sum and sum of squares of a row in double, 4 lanes each, in a fixed order. */
static void row_sums(const float *row, size_t M, double *sum, double *sq) {
    double s[4] = {0}, q[4] = {0};
    size_t m = 0;
    for (; m + 4 <= M; m += 4)
        for (int j = 0; j < 4; j++) {
            double v = row[m + j];
            s[j] += v;
            q[j] += v * v;
        }
    for (; m < M; m++) {
        double v = row[m];
        s[0] += v;
        q[0] += v * v;
    }
    *sum = (s[0] + s[1]) + (s[2] + s[3]);
    *sq = (q[0] + q[1]) + (q[2] + q[3]);
}

void batchnorm_sync_sums(const float *x, int C, size_t M, double *v) {
#pragma omp parallel for num_threads(rn_threads()) schedule(static)
    for (int c = 0; c < C; c++)
        row_sums(x + (size_t)c * M, M, &v[c], &v[C + c]);
    v[2 * C] = (double)M;
}

void batchnorm_sync_stats(const double *v, int C, float *mean, float *var) {
    const double Mg = v[2 * C];
    for (int c = 0; c < C; c++) {
        double mu = v[c] / Mg, s2 = v[C + c] / Mg - mu * mu;
        mean[c] = (float)mu;
        var[c] = (float)(s2 > 0.0 ? s2 : 0.0);
    }
}

void batchnorm_sync_grad_sums(const float *x, const float *dy, int C, size_t M, const float *mean,
                              const float *invstd, double *v, float *dgamma, float *dbeta) {
#pragma omp parallel for num_threads(rn_threads()) schedule(static)
    for (int c = 0; c < C; c++) {
        const float *xr = x + (size_t)c * M, *dyr = dy + (size_t)c * M;
        const float mu = mean[c];
        double a[4] = {0}, b[4] = {0};
        size_t m = 0;
        for (; m + 4 <= M; m += 4)
            for (int j = 0; j < 4; j++) {
                a[j] += dyr[m + j];
                b[j] += (double)dyr[m + j] * (double)(xr[m + j] - mu);
            }
        for (; m < M; m++) {
            a[0] += dyr[m];
            b[0] += (double)dyr[m] * (double)(xr[m] - mu);
        }
        double sdy = (a[0] + a[1]) + (a[2] + a[3]);
        double sdyx = ((b[0] + b[1]) + (b[2] + b[3])) * (double)invstd[c]; /* sum(dy * xhat) */
        v[c] = sdy;
        v[C + c] = sdyx;
        dgamma[c] = (float)sdyx;
        dbeta[c] = (float)sdy;
    }
}

void batchnorm_sync_backward(const float *x, const float *dy, int C, size_t M, double Mg,
                             const float *gamma, const float *mean, const float *invstd,
                             const double *v, float *dx) {
#pragma omp parallel for num_threads(rn_threads()) schedule(static)
    for (int c = 0; c < C; c++) {
        const float *xr = x + (size_t)c * M, *dyr = dy + (size_t)c * M;
        float *dxr = dx + (size_t)c * M;
        const float mu = mean[c];
        const double is = invstd[c];
        /* dx = a * dy + b * (x - mu) + d */
        const float a = (float)(gamma[c] * is);
        const float b = (float)(-(double)gamma[c] * is * is * v[C + c] / Mg);
        const float d = (float)(-(double)gamma[c] * is * v[c] / Mg);
#pragma omp simd
        for (size_t m = 0; m < M; m++)
            dxr[m] = a * dyr[m] + b * (xr[m] - mu) + d;
    }
}
