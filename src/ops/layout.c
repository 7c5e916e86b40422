/* layout.c - between PyTorch's (N, C, H, W) and the channel-major (C, N, H, W). */
#include <string.h>

#include "core/threads.h"
#include "ops/ops.h"

void layout_nchw_to_cnhw(const float *x, int N, int C, size_t HW, float *y) {
#pragma omp parallel for collapse(2) num_threads(rn_threads()) schedule(static)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            memcpy(y + ((size_t)c * N + n) * HW, x + ((size_t)n * C + c) * HW, HW * sizeof(float));
}

void layout_cnhw_to_nchw(const float *x, int N, int C, size_t HW, float *y) {
#pragma omp parallel for collapse(2) num_threads(rn_threads()) schedule(static)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            memcpy(y + ((size_t)n * C + c) * HW, x + ((size_t)c * N + n) * HW, HW * sizeof(float));
}
