/*
 * optim.c - SGD and AdamW updates, element-wise, in float32, with the
 * operation order of torch.optim's single-tensor CPU implementation:
 *
 *   SGD    d = g + wd*p;  buf = momentum*buf + d (buf = d first);
 *          d = d + momentum*buf (nesterov) or buf;  p = p + (-lr)*d
 *   AdamW  p = p*(1 - lr wd);  m = b1*m + (1-b1)*g;  v = b2*v + ((1-b2)*g)*g;
 *          denom = sqrt(v)/sqrt(bc2) + eps;  p = p + ((-lr/bc1)*m)/denom
 *
 * Branches on the hyper-parameters are hoisted out of the loops so each loop
 * is a straight line the compiler vectorises. Large tensors are split across
 * threads; the result does not depend on the split.
 */
#include <math.h>

#include "core/threads.h"
#include "train/optim.h"

/* Below this many values a parallel region costs more than it saves. */
#define PARALLEL_MIN 65536

/* ---------------------------------------------------------------------------
 * SGD
 * ------------------------------------------------------------------------- */

/* p: (n) updated in place; g: (n); buf: (n) momentum buffer or NULL. */
void rn_sgd_update(float *restrict p, const float *restrict g, float *restrict buf, size_t n,
                   float lr, float momentum, float weight_decay, int nesterov, int first) {
    const float neg_lr = -lr;
    const float wd = weight_decay;
    const float mu = momentum;
    if (momentum == 0.0f) {
        if (weight_decay == 0.0f) {
#pragma omp parallel for simd num_threads(rn_threads()) schedule(static) if (n >= PARALLEL_MIN)
            for (size_t i = 0; i < n; i++)
                p[i] = p[i] + neg_lr * g[i];
        } else {
#pragma omp parallel for simd num_threads(rn_threads()) schedule(static) if (n >= PARALLEL_MIN)
            for (size_t i = 0; i < n; i++) {
                float d = g[i] + wd * p[i];
                p[i] = p[i] + neg_lr * d;
            }
        }
        return;
    }
    if (first) {
        /* buf = d; then d = d + mu*buf (nesterov) or d = buf */
        if (nesterov) {
#pragma omp parallel for simd num_threads(rn_threads()) schedule(static) if (n >= PARALLEL_MIN)
            for (size_t i = 0; i < n; i++) {
                float d = g[i] + wd * p[i];
                buf[i] = d;
                p[i] = p[i] + neg_lr * (d + mu * d);
            }
        } else {
#pragma omp parallel for simd num_threads(rn_threads()) schedule(static) if (n >= PARALLEL_MIN)
            for (size_t i = 0; i < n; i++) {
                float d = g[i] + wd * p[i];
                buf[i] = d;
                p[i] = p[i] + neg_lr * d;
            }
        }
        return;
    }
    if (nesterov) {
#pragma omp parallel for simd num_threads(rn_threads()) schedule(static) if (n >= PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) {
            float d = g[i] + wd * p[i];
            float b = mu * buf[i] + d;
            buf[i] = b;
            p[i] = p[i] + neg_lr * (d + mu * b);
        }
    } else {
#pragma omp parallel for simd num_threads(rn_threads()) schedule(static) if (n >= PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) {
            float d = g[i] + wd * p[i];
            float b = mu * buf[i] + d;
            buf[i] = b;
            p[i] = p[i] + neg_lr * b;
        }
    }
}

/* ---------------------------------------------------------------------------
 * AdamW
 * ------------------------------------------------------------------------- */

/* p, m, v: (n) updated in place; g: (n). */
void rn_adamw_update(float *restrict p, const float *restrict g, float *restrict m,
                     float *restrict v, size_t n, double lr, double beta1, double beta2,
                     double eps, double weight_decay, int64_t step) {
    if (step < 1)
        step = 1;
    /* The scalars as Python computes them (double), then as the kernels see
     * them (float). */
    const float decay = (float)(1.0 - lr * weight_decay);
    const float b1 = (float)beta1, one_minus_b1 = (float)(1.0 - beta1);
    const float b2 = (float)beta2, one_minus_b2 = (float)(1.0 - beta2);
    const double bc1 = 1.0 - pow(beta1, (double)step);
    const double bc2 = 1.0 - pow(beta2, (double)step);
    const float neg_step_size = (float)(-(lr / bc1));
    const float bc2_sqrt = (float)sqrt(bc2);
    const float epsf = (float)eps;
#pragma omp parallel for simd num_threads(rn_threads()) schedule(static) if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float pi = p[i] * decay;
        float mi = b1 * m[i] + one_minus_b1 * gi;
        float vi = b2 * v[i] + one_minus_b2 * gi * gi;
        float denom = sqrtf(vi) / bc2_sqrt + epsf;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi + neg_step_size * mi / denom;
    }
}
