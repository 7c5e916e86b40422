/*
 * loss.c - softmax cross-entropy with label smoothing (contract in ops.h).
 *
 * As torch.nn.CrossEntropyLoss(label_smoothing=s), mean over the batch: with
 * the log-softmax lp_k = z_k - max - log(sum_j exp(z_j - max)) of a row,
 *     loss_row = (1 - s) * (-lp_label) + s * mean_k(-lp_k)
 *     dlogits  = (softmax - target) / N,   target = (1 - s) * onehot + s / K
 * A mixed batch (mixup, CutMix: the _mix functions) has a second label b per
 * row and the first's share lam, the target (1 - s) * (lam * onehot_a +
 * (1 - lam) * onehot_b) + s / K, as torchvision's RandomMixup/RandomCutmix
 * make it and CrossEntropyLoss smooths it:
 *     loss_row = (1 - s) * (lam * (-lp_a) + (1 - lam) * (-lp_b)) + s * mean_k(-lp_k)
 * and a row is correct when its arg-max is the label of the larger share (a
 * when lam >= 0.5). The plain functions are the mixed ones with b = a and
 * lam = 1, which give the same bits as without the second label (its share
 * enters times 0).
 * A label outside 0 .. K-1 makes the loss NaN and its gradient row zero;
 * N < 1 or K < 1 gives NaN (and touches nothing).
 */
#include <math.h>
#include <stddef.h>

#include "core/threads.h"
#include "ops/ops.h"

#define MAX_BLOCKS 256      /* fixed partial sums: the reduction order depends on N only */
#define MIN_BLOCK_ROWS 64

/* ---------------------------------------------------------------------------
 * Reference: double precision throughout
 * ------------------------------------------------------------------------- */

float softmax_cross_entropy_mix_ref(const float *logits, const int *labels, const int *labels2, float lam,
                                    int N, int K, float smoothing, float *dlogits, int *correct) {
    // logits, dlogits: (N, K)  labels, labels2: (N)
    if (N < 1 || K < 1)
        return NAN;
    double total = 0.0;
    int hits = 0;
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * K;
        int label = labels[n], label2 = labels2[n], arg = 0;
        for (int k = 1; k < K; k++)
            if (z[k] > z[arg])
                arg = k;
        hits += arg == (lam >= 0.5f ? label : label2);
        double sum = 0.0;
        for (int k = 0; k < K; k++)
            sum += exp((double)z[k] - z[arg]);
        double lse = z[arg] + log(sum);
        if (label < 0 || label >= K || label2 < 0 || label2 >= K) {
            total = NAN;
            for (int k = 0; dlogits && k < K; k++)
                dlogits[(size_t)n * K + k] = 0.0f;
            continue;
        }
        double mean_nll = 0.0;
        for (int k = 0; k < K; k++)
            mean_nll += lse - z[k];
        mean_nll /= K;
        total += (1.0 - smoothing) * ((double)lam * (lse - z[label]) + (1.0 - lam) * (lse - z[label2])) +
                 smoothing * mean_nll;
        for (int k = 0; dlogits && k < K; k++) {
            double target = (1.0 - smoothing) * ((double)lam * (k == label) + (1.0 - lam) * (k == label2)) +
                            (double)smoothing / K;
            dlogits[(size_t)n * K + k] = (float)((exp(z[k] - lse) - target) / N);
        }
    }
    if (correct)
        *correct = hits;
    return (float)(total / N);
}

float softmax_cross_entropy_ref(const float *logits, const int *labels, int N, int K,
                                float smoothing, float *dlogits, int *correct) {
    return softmax_cross_entropy_mix_ref(logits, labels, labels, 1.0f, N, K, smoothing, dlogits, correct);
}

/* ---------------------------------------------------------------------------
 * Fast: rows in float, partial sums in double over fixed blocks of rows
 * ------------------------------------------------------------------------- */

/* One row: its loss (double), its gradient (if dlogits), 1 if arg-max hits. */
static double row_loss(const float *z, int label, int label2, float lam, int N, int K, float smoothing,
                       float *dz, int *hit) {
    float zmax = z[0];
    int arg = 0;
    for (int k = 1; k < K; k++)
        if (z[k] > zmax) {
            zmax = z[k];
            arg = k;
        }
    *hit = arg == (lam >= 0.5f ? label : label2);
    double sum = 0.0, zsum = 0.0;
    for (int k = 0; k < K; k++) {
        sum += expf(z[k] - zmax);
        zsum += z[k];
    }
    const double lse = zmax + log(sum);
    if (label < 0 || label >= K || label2 < 0 || label2 >= K) {
        for (int k = 0; dz && k < K; k++)
            dz[k] = 0.0f;
        return NAN;
    }
    if (dz) {
        const float inv_sum = (float)(1.0 / sum), inv_n = 1.0f / (float)N;
        const float off = smoothing / (float)K;
        for (int k = 0; k < K; k++)
            dz[k] = (expf(z[k] - zmax) * inv_sum - off) * inv_n;
        /* unmixed (lam 1): times 1 and minus 0 leave the bits as without a second label */
        dz[label] -= (1.0f - smoothing) * lam * inv_n;
        dz[label2] -= (1.0f - smoothing) * (1.0f - lam) * inv_n;
    }
    /* mean_k(lse - z_k) = lse - mean(z) */
    const double nll = (double)lam * (lse - z[label]) + (1.0 - lam) * (lse - z[label2]);
    return (1.0 - smoothing) * nll + smoothing * (lse - zsum / K);
}

float softmax_cross_entropy(const float *logits, const int *labels, int N, int K,
                            float smoothing, float *dlogits, int *correct) {
    return softmax_cross_entropy_mix(logits, labels, labels, 1.0f, N, K, smoothing, dlogits, correct);
}

float softmax_cross_entropy_mix(const float *logits, const int *labels, const int *labels2, float lam, int N,
                                int K, float smoothing, float *dlogits, int *correct) {
    if (N < 1 || K < 1)
        return NAN;
    double part[MAX_BLOCKS];
    int hits[MAX_BLOCKS];
    int rows = (N + MAX_BLOCKS - 1) / MAX_BLOCKS;
    if (rows < MIN_BLOCK_ROWS)
        rows = MIN_BLOCK_ROWS;
    const int blocks = (N + rows - 1) / rows;
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if ((long)N * K >= 65536)
    for (int bl = 0; bl < blocks; bl++) {
        const int n1 = (bl + 1) * rows < N ? (bl + 1) * rows : N;
        double sum = 0.0;
        int h = 0;
        for (int n = bl * rows; n < n1; n++) {
            int hit;
            sum += row_loss(logits + (size_t)n * K, labels[n], labels2[n], lam, N, K, smoothing,
                            dlogits ? dlogits + (size_t)n * K : NULL, &hit);
            h += hit;
        }
        part[bl] = sum;
        hits[bl] = h;
    }
    double total = 0.0;
    int h = 0;
    for (int bl = 0; bl < blocks; bl++) {
        total += part[bl];
        h += hits[bl];
    }
    if (correct)
        *correct = h;
    return (float)(total / N);
}
