/*
 * timing.h - the workbench's clock and medians (dev/ programs only).
 */
#ifndef RN_DEV_TIMING_H
#define RN_DEV_TIMING_H

#include <stddef.h>
#include <stdlib.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static inline double dev_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline int dev_cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[0], v[stride], ... (n of them; sorts a copy in tmp). The hosts here are
 * shared: a disturbed run moves a mean, not a median. */
static inline double dev_median(const double *v, int n, size_t stride, double *tmp) {
    for (int i = 0; i < n; i++)
        tmp[i] = v[(size_t)i * stride];
    qsort(tmp, (size_t)n, sizeof *tmp, dev_cmp_double);
    return n % 2 ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
}

#endif
