/*
 * batchnorm_sync.h - BatchNorm2d in train mode over a batch split between
 * processes (PyTorch's SyncBatchNorm), on channel-major x: (C, M).
 *
 * Each process computes per-channel sums of its part of the batch; the sums
 * are added up over the processes (by the caller: rn_trainer_set_bn_sync);
 * then every process normalises its part with the global statistics and
 * differentiates through them. All sums are in double, per channel in a
 * fixed order, so they do not depend on the thread count.
 *
 * Forward, v: (2C + 1) doubles
 *     v[c] = sum of x[c, :], v[C + c] = sum of x[c, :]^2, v[2C] = M
 * summed over processes, then mean = v[c] / Mg and the biased variance
 * v[C + c] / Mg - mean^2 (clamped at 0), Mg = v[2C].
 * Backward, v: (2C) doubles
 *     v[c] = sum of dy[c, :], v[C + c] = sum of dy[c, :] * xhat[c, :]
 * which are also this process's bias and weight gradients; summed over
 * processes they give
 *     dx = gamma * invstd * (dy - v[c] / Mg - xhat * v[C + c] / Mg)
 * the batchnorm_backward formula with the global sums and count.
 */
#ifndef RN_OPS_BATCHNORM_SYNC_H
#define RN_OPS_BATCHNORM_SYNC_H

#include <stddef.h>

/* The forward sums of x: (C, M) into v (2C + 1 doubles, layout above). */
void batchnorm_sync_sums(const float *x, int C, size_t M, double *v);

/* mean[c] and the biased var[c] from summed forward sums v. */
void batchnorm_sync_stats(const double *v, int C, float *mean, float *var);

/* This process's backward sums of dy: (C, M) into v (2C doubles), and its
 * dgamma (= v[C + c]) and dbeta (= v[c]) in float. */
void batchnorm_sync_grad_sums(const float *x, const float *dy, int C, size_t M, const float *mean,
                              const float *invstd, double *v, float *dgamma, float *dbeta);

/* dx: (C, M) from summed backward sums v over Mg values per channel in all. */
void batchnorm_sync_backward(const float *x, const float *dy, int C, size_t M, double Mg,
                             const float *gamma, const float *mean, const float *invstd,
                             const double *v, float *dx);

#endif
