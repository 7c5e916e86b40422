/* eltwise.c - ReLU and the residual add, forward. */
#include "core/threads.h"
#include "ops/ops.h"

/* Below this many values a parallel region costs more than it saves. */
#define PARALLEL_MIN 32768

void relu_forward_ref(const float *x, size_t n, float *y) {
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_forward(const float *x, size_t n, float *y) {
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
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
            y[i] = v > 0.0f ? v : 0.0f;
        }
    } else {
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if (n >= PARALLEL_MIN)
        for (size_t i = 0; i < n; i++)
            y[i] = a[i] + b[i];
    }
}
