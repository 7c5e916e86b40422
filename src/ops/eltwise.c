/* eltwise.c - ReLU and the residual add, forward; ReLU backward. */
#include <stdint.h>
#include <string.h>

#include "core/threads.h"
#include "ops/ops.h"

/* Below this many values a parallel region costs more than it saves. */
#define PARALLEL_MIN 32768

void relu_forward_ref(const float *x, size_t n, float *y) {
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void relu_forward(const float *x, size_t n, float *y) {
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void add_forward_ref(const float *a, const float *b, size_t n, int relu, float *y) {
    for (size_t i = 0; i < n; i++) {
        float v = a[i] + b[i];
        y[i] = relu && v < 0.0f ? 0.0f : v;
    }
}

void add_forward(const float *a, const float *b, size_t n, int relu, float *y) {
    if (relu) {
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if (n >= PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) {
            float v = a[i] + b[i];
            y[i] = v < 0.0f ? 0.0f : v;
        }
    } else {
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if (n >= PARALLEL_MIN)
        for (size_t i = 0; i < n; i++)
            y[i] = a[i] + b[i];
    }
}

/* ---- backward ------------------------------------------------------------------ */

void relu_backward_ref(const float *y, const float *dy, size_t n, float *dx) {
    for (size_t i = 0; i < n; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void relu_backward(const float *y, const float *dy, size_t n, float *dx) {
    relu_backward_copy(y, dy, n, dx, NULL);
}

void relu_backward_copy(const float *y, const float *dy, size_t n, float *dx, float *copy) {
    /* each thread its own range: the ReLU, then that range copied by memcpy (a loop storing to
     * both outputs at once ran resnet18's ReLU/BatchNorm backward at 23-26 ms a step, batch 16,
     * against 18-19 with one memcpy on one thread, and 15-16 this way; AMD EPYC Zen 5) */
#pragma omp parallel num_threads(rn_threads()) if (n >= PARALLEL_MIN)
    {
        const size_t team = (size_t)rn_team_size(), me = (size_t)rn_thread_id();
        const size_t per = (n + team - 1) / team, i0 = me * per < n ? me * per : n;
        const size_t i1 = i0 + per < n ? i0 + per : n;
        if (y) {
#pragma omp simd
            for (size_t i = i0; i < i1; i++) {
                const float g = dy[i]; /* read unconditionally: the loop vectorises */
                dx[i] = y[i] > 0.0f ? g : 0.0f;
            }
        } else if (dx != dy && i1 > i0) {
            memcpy(dx + i0, dy + i0, (i1 - i0) * sizeof *dx);
        }
        if (copy && i1 > i0)
            memcpy(copy + i0, dx + i0, (i1 - i0) * sizeof *copy);
    }
}

/* Branch-free, so that the loop vectorises (a bf16 session rounds every convolution's output:
 * the scalar loop with a branch took 8% of resnet18's time at batch 1). The build reads floats
 * through other types (-fno-strict-aliasing). */
void rn_round_bf16(float *x, size_t n) {
    uint32_t *u = (uint32_t *)x;
#pragma omp parallel for simd schedule(static) num_threads(rn_threads()) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        const uint32_t v = u[i];
        const uint32_t r = (v + 0x7FFFu + ((v >> 16) & 1u)) & 0xFFFF0000u;
        u[i] = (v & 0x7F800000u) != 0x7F800000u ? r : v; /* finite: the low 16 bits rounded away */
    }
}
