/*
 * dist_single.c - the process group of a build without MPI: one process
 * (contract in dist.h). Sums, broadcasts and gathers over one rank leave
 * the data as it is; the reducer has nothing to average.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"

int dist_init(int *argc, char ***argv) {
    (void)argc, (void)argv;
    return 1;
}

void dist_finalize(void) {}
int dist_rank(void) { return 0; }
int dist_size(void) { return 1; }
const char *dist_library(void) { return NULL; }
void dist_set_timeout(double seconds) { (void)seconds; }
void dist_set_deterministic(int on) { (void)on; }

_Noreturn void dist_abort(int status) {
    fflush(stdout);
    fflush(stderr);
    exit(status);
}

void dist_sum(double *v, size_t n, const char *what) { (void)v, (void)n, (void)what; }
void dist_broadcast(void *buf, size_t bytes, const char *what) { (void)buf, (void)bytes, (void)what; }

void dist_gather(const void *mine, size_t bytes, void *all, const char *what) {
    (void)what;
    memcpy(all, mine, bytes);
}

struct dist_reducer {
    dist_reducer_stats st;
};

dist_reducer *dist_reducer_create(size_t n, size_t bucket_floats, int max_ranges) {
    (void)n, (void)bucket_floats, (void)max_ranges;
    dist_reducer *r = calloc(1, sizeof *r);
    if (!r)
        fprintf(stderr, "resnet train: out of memory for the gradient reducer\n");
    return r;
}

void dist_reducer_free(dist_reducer *r) { free(r); }

void dist_reducer_ready(dist_reducer *r, float *grads, size_t offset, size_t count) {
    (void)r, (void)grads, (void)offset, (void)count;
}

void dist_reducer_finish(dist_reducer *r) { r->st.steps++; }
void dist_reducer_get_stats(const dist_reducer *r, dist_reducer_stats *st) { *st = r->st; }

double dist_reducer_time_alone(dist_reducer *r, int repeats) {
    (void)r, (void)repeats;
    return 0.0;
}
