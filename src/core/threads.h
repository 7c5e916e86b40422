/*
 * threads.h - the library's thread count, and OpenMP without requiring it.
 *
 * Kernels parallelise with `#pragma omp parallel for num_threads(rn_threads())`.
 * Without OpenMP the pragmas are ignored and everything runs on one thread.
 */
#ifndef RN_CORE_THREADS_H
#define RN_CORE_THREADS_H

#include <stddef.h>
#include <stdint.h>

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

/* Items shared out by claims: each thread of a team takes its own share (rn_team_share) from
 * the front, then the other threads' shares from the back, every item claimed once by an
 * atomic exchange on its flag. The shares stay each thread's own (the same items on every call:
 * what it reads is mostly what it wrote itself) unless the host stalls a core, whose last items
 * another thread then takes instead of waiting for it at the barrier. The flags (one per item)
 * are shared by the team; an item is claimed when its flag holds `gen`, a value no earlier use
 * of the flags left there (flags zeroed and gen 1, or a counter the caller advances). An item's
 * results must not depend on the thread that does it. */
typedef struct rn_claims {
    uint32_t *flags;        /* NULL: static shares, no claims */
    long cap;               /* flags there are; a walk over more items shares them statically */
    uint32_t gen;
} rn_claims;

/* One thread's walk over its claims: for (long i; (i = rn_claims_next(&w)) >= 0;) */
typedef struct rn_claim_walk {
    rn_claims c;
    rn_team team;
    long items;
    int round;              /* 0: own share; r: thread (id + r) % size's, from its back */
    long pos;               /* the next item of the share walked */
} rn_claim_walk;

/* Without flags, or with fewer than `items`, the walk is the thread's static share alone. */
static inline rn_claim_walk rn_claims_walk(rn_claims c, rn_team team, long items) {
    long lo, hi;
    rn_team_share(team, items, &lo, &hi);
    (void)hi;
    if (items > c.cap)
        c.flags = NULL;
    return (rn_claim_walk){.c = c, .team = team, .items = items, .round = 0, .pos = lo};
}

/* The next item this thread claimed, or -1 when every item is taken. */
static inline long rn_claims_next(rn_claim_walk *w) {
    if (!w->c.flags) { /* static: the own share, front to back */
        long lo, hi;
        rn_team_share(w->team, w->items, &lo, &hi);
        return w->round == 0 && w->pos < hi ? w->pos++ : -1;
    }
    while (w->round < w->team.size) {
        const rn_team owner = {.id = (w->team.id + w->round) % w->team.size, .size = w->team.size};
        long lo, hi;
        rn_team_share(owner, w->items, &lo, &hi);
        const long i = w->pos;
        const int inside = w->round == 0 ? i < hi : i >= lo;
        /* taken: so is the rest of the share in this direction */
        if (inside && __atomic_exchange_n(&w->c.flags[i], w->c.gen, __ATOMIC_RELAXED) != w->c.gen) {
            w->pos += w->round == 0 ? 1 : -1;
            return i;
        }
        if (++w->round < w->team.size) { /* the next thread's share, from its back */
            const rn_team next = {.id = (w->team.id + w->round) % w->team.size,
                                  .size = w->team.size};
            rn_team_share(next, w->items, &lo, &hi);
            w->pos = hi - 1;
        }
    }
    return -1;
}

#endif
