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

/* One thread of a team that shares a piece of work out: its index and the team's size. Ops that
 * a caller runs inside its own parallel region (the int8 pass: one region for all its nodes,
 * a barrier between them, instead of a region per node) take one and do the thread's share. */
typedef struct rn_team {
    int id, size;
} rn_team;

/* The calling thread in the current parallel region ({0, 1} outside one). */
static inline rn_team rn_team_here(void) {
    return (rn_team){.id = rn_thread_id(), .size = rn_team_size()};
}

/* Thread t's share [*lo, *hi) of items 0 .. items - 1, as OpenMP's schedule(static) shares them
 * out: equal contiguous runs, the first items % size threads one more. */
static inline void rn_team_share(rn_team t, long items, long *lo, long *hi) {
    const long q = items / t.size, r = items % t.size;
    *lo = t.id * q + (t.id < r ? t.id : r);
    *hi = *lo + q + (t.id < r);
}

#endif
