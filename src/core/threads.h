/*
 * threads.h - the library's thread count, and OpenMP without requiring it.
 *
 * Kernels parallelise with `#pragma omp parallel for num_threads(rn_threads())`.
 * Without OpenMP the pragmas are ignored and everything runs on one thread.
 */
#ifndef RN_CORE_THREADS_H
#define RN_CORE_THREADS_H

#ifdef _OPENMP
#include <omp.h>
#endif

/* The thread count kernels should use (>= 1). */
int rn_threads(void);

/* Index of the calling thread inside a parallel region (0 outside). */
static inline int rn_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Threads in the current parallel region (1 outside). */
static inline int rn_team_size(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

#endif
