/*
 * finite.h - whether a block of floats holds only finite numbers (no NaN,
 * no infinity), for the checks that keep such values out of the weights
 * and out of checkpoints.
 */
#ifndef RN_CORE_FINITE_H
#define RN_CORE_FINITE_H

#include <stddef.h>

/* 1 when x[0 .. n) are all finite (n == 0: 1). One pass without a branch
 * per element: 0 * finite = 0, 0 * inf or NaN = NaN, and NaN spreads. */
static inline int rn_floats_finite(const float *x, size_t n) {
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++)
        acc += x[i] * 0.0f;
    return acc == 0.0f;
}

#endif
