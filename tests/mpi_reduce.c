/*
 * mpi_reduce.c - the process group of cli/dist_mpi.c under mpirun (run by
 * tests/mpi.sh with 2 and 3 ranks):
 *   - dist_sum in deterministic mode adds in rank order: values chosen so
 *     that every other order gives another result must come out as
 *     ((v0 + v1) + v2) ..., bitwise, on every rank;
 *   - the gradient reducer, deterministic: a block reported in ranges of
 *     random sizes from its end to its start (and once with a gap, which
 *     must stay untouched), in buckets much smaller than the block, holds
 *     exactly the rank-order sum of the ranks' values scaled by 1/N, on
 *     every rank; MPI's all-reduce: within 1e-6 of it (relative to the
 *     terms' mean magnitude), the same bits on every rank;
 *   - broadcast and gather move the bytes they should.
 * Every rank checks; the counts are added up and rank 0 prints them.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dist.h"

#define N_FLOATS 300007
#define BUCKET 4096

/* Rank r's gradient i: +B, -B and then small values, B large enough that
 * (B - B) + s = s but (s - B) + B = 0 in float: the order of the additions shows. */
static float grad_value(int r, size_t i) {
    float big = 1e8f * (float)(1 + i % 5), small = 1.0f + (float)(i % 17);
    return r == 0 ? big : r == 1 ? -big : small * (float)r;
}

/* The rank-order sum of the values scaled by 1/N, in float, as the reducer promises. */
static float expected(int size, size_t i) {
    float inv = 1.0f / (float)size, s = 0.0f;
    for (int r = 0; r < size; r++)
        s = r == 0 ? grad_value(r, i) * inv : s + grad_value(r, i) * inv;
    return s;
}

/* Reports [0, n) from the end in ranges of 1..3*BUCKET floats (a fixed
 * pseudo-random walk, the same on every rank), skipping [gap_lo, gap_hi). */
static void report_ranges(dist_reducer *red, float *g, size_t n, size_t gap_lo, size_t gap_hi) {
    uint64_t s = 88172645463325252ULL;
    size_t hi = n;
    while (hi > 0) {
        size_t len = 1 + check_xorshift64(&s) % (3 * BUCKET);
        size_t lo = hi > len ? hi - len : 0;
        if (lo < gap_hi && hi > gap_lo) { /* cut around the gap */
            if (hi > gap_hi) {
                dist_reducer_ready(red, g, gap_hi, hi - gap_hi);
                hi = gap_hi;
                continue;
            }
            hi = gap_lo;
            continue;
        }
        dist_reducer_ready(red, g, lo, hi - lo);
        hi = lo;
    }
}

static uint64_t hash_floats(const float *g, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    const unsigned char *b = (const unsigned char *)g;
    for (size_t i = 0; i < n * sizeof *g; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

/* Whether every rank holds the same n floats. */
static int same_everywhere(const float *g, size_t n) {
    int size = dist_size();
    uint64_t h = hash_floats(g, n), *all = calloc((size_t)size, sizeof *all);
    dist_gather(&h, sizeof h, all, "test");
    int same = 1;
    for (int r = 1; dist_rank() == 0 && r < size; r++)
        same &= all[r] == all[0];
    dist_broadcast(&same, sizeof same, "test");
    free(all);
    return same;
}

static void test_reducer(int deterministic) {
    int rank = dist_rank(), size = dist_size();
    dist_set_deterministic(deterministic);
    dist_reducer *red = dist_reducer_create(N_FLOATS, BUCKET, N_FLOATS / 2);
    CHECK(red != NULL, "reducer");
    if (!red)
        return;
    float *g = malloc(N_FLOATS * sizeof *g);
    for (int pass = 0; pass < 2; pass++) {
        /* pass 1 leaves a gap that nobody reports */
        size_t gap_lo = pass ? 1000 : 0, gap_hi = pass ? 50000 : 0;
        for (size_t i = 0; i < N_FLOATS; i++)
            g[i] = grad_value(rank, i);
        report_ranges(red, g, N_FLOATS, gap_lo, gap_hi);
        dist_reducer_finish(red);
        size_t exact = 0, close = 0, gap_ok = 0;
        for (size_t i = 0; i < N_FLOATS; i++) {
            if (i >= gap_lo && i < gap_hi) {
                gap_ok += g[i] == grad_value(rank, i);
                continue;
            }
            float want = expected(size, i);
            exact += g[i] == want;
            float mag = 0.0f;
            for (int r = 0; r < size; r++)
                mag += fabsf(grad_value(r, i)) / (float)size;
            close += fabsf(g[i] - want) <= 1e-6f * mag;
        }
        size_t reduced = N_FLOATS - (gap_hi - gap_lo);
        if (deterministic)
            CHECK(exact == reduced, "deterministic pass %d, rank %d: %zu of %zu floats are the rank-order sum", pass,
                  rank, exact, reduced);
        else
            CHECK(close == reduced, "MPI all-reduce pass %d, rank %d: %zu of %zu floats within 1e-6 relative",
                  pass, rank, close, reduced);
        CHECK(gap_ok == gap_hi - gap_lo, "pass %d: the unreported gap changed", pass);
        memset(g + gap_lo, 0, (gap_hi - gap_lo) * sizeof *g); /* each rank's own values */
        CHECK(same_everywhere(g, N_FLOATS), "deterministic %d pass %d: the ranks hold different bits",
              deterministic, pass);
    }
    dist_reducer_stats st;
    dist_reducer_get_stats(red, &st);
    CHECK(st.steps == 2 && st.buckets >= 2 * (N_FLOATS - 49000) / (4 * BUCKET),
          "stats: %lld steps, %lld buckets", st.steps, st.buckets);
    double alone = dist_reducer_time_alone(red, 1);
    CHECK(alone > 0.0, "time alone %g", alone);
    free(g);
    dist_reducer_free(red);
}

static void test_small(void) {
    int rank = dist_rank(), size = dist_size();
    /* 1e16 + 1 - 1e16 ...: only rank order gives the expected bits */
    double v[3], want[3];
    for (int i = 0; i < 3; i++) {
        double mine = 0.0;
        for (int r = 0; r < size; r++) {
            double x = r == 0 ? 1e16 : (r == 1 ? 1.0 + i : -1e16);
            if (r > 2)
                x = 0.5;
            want[i] = r == 0 ? x : want[i] + x;
            if (r == rank)
                mine = x;
        }
        v[i] = mine;
    }
    dist_set_deterministic(1);
    dist_sum(v, 3, "test");
    CHECK(memcmp(v, want, sizeof v) == 0, "rank %d: deterministic dist_sum gave %.17g %.17g %.17g", rank, v[0],
          v[1], v[2]);
    char buf[64] = "";
    if (rank == 0)
        snprintf(buf, sizeof buf, "from rank 0");
    dist_broadcast(buf, sizeof buf, "test");
    CHECK(strcmp(buf, "from rank 0") == 0, "rank %d: broadcast gave '%s'", rank, buf);
    int mine = 100 + rank, *all = calloc((size_t)size, sizeof *all);
    dist_gather(&mine, sizeof mine, all, "test");
    for (int r = 0; rank == 0 && r < size; r++)
        CHECK(all[r] == 100 + r, "gather: slot %d holds %d", r, all[r]);
    free(all);
}

int main(int argc, char **argv) {
    if (!dist_init(&argc, &argv))
        return 1;
    if (dist_size() < 2) {
        printf("mpi_reduce: run me under mpirun with 2 or more ranks\n");
        dist_finalize();
        return 1;
    }
    dist_set_timeout(60);
    test_small();
    test_reducer(1);
    test_reducer(0);
    double counts[2] = {check_passed, check_failed};
    dist_sum(counts, 2, "adding up the checks");
    if (dist_rank() == 0)
        printf("mpi_reduce (%d ranks): %.0f passed, %.0f failed\n", dist_size(), counts[0], counts[1]);
    dist_finalize();
    return counts[1] > 0;
}
