/*
 * dist.h - the process group of a data-parallel `resnet train`: who we are,
 * small collective operations, and the gradient reducer.
 *
 * Two implementations, chosen when the binary is linked:
 *   dist_mpi.c     MPI (the Makefile builds it when it finds mpicc): joins
 *                  the group when started by an MPI launcher (mpirun,
 *                  mpiexec, srun: its environment says so), else runs as a
 *                  group of one without initialising MPI at all;
 *   dist_single.c  a group of one, for builds without MPI.
 * The rest of the CLI sees only this header; the library sees neither
 * (the reducer enters through the trainer's hooks, cli/train_dist.c).
 *
 * Every collective below is called by every rank in the same order. A rank
 * that waits longer than the timeout for the others (one died or hangs)
 * prints what it was waiting for and ends the whole group (dist_abort), so
 * no rank waits forever; a launcher that sees a rank die ends the others
 * itself (mpirun does).
 */
#ifndef RN_CLI_DIST_H
#define RN_CLI_DIST_H

#include <stddef.h>

/* Joins the group if launched by an MPI launcher. Returns 0 after printing
 * an error. Call once, before anything else of this header. */
int dist_init(int *argc, char ***argv);

/* Leaves the group (after the last collective). */
void dist_finalize(void);

int dist_rank(void);
int dist_size(void);

/* "Open MPI v4.1.4, ..." when this binary has MPI, else NULL. */
const char *dist_library(void);

/* Seconds a rank waits for the others before ending the group (default 300). */
void dist_set_timeout(double seconds);

/* Deterministic mode: every reduction (gradients, BatchNorm sums, losses)
 * adds the ranks' values in rank order, in this program's own code, so two
 * runs with the same number of ranks give bitwise identical results and
 * every rank the same bits. Otherwise the MPI library's all-reduce
 * (whatever algorithm it picks). Call before creating a reducer. */
void dist_set_deterministic(int on);

/* Ends every process of the group with `status` (MPI_Abort); with one
 * process, exit(status). */
_Noreturn void dist_abort(int status);

/* v[0 .. n) <- its elementwise sum over the ranks, the same on every rank.
 * `what` names the operation in a timeout message. */
void dist_sum(double *v, size_t n, const char *what);

/* Rank 0's buf[0 .. bytes) to every rank. */
void dist_broadcast(void *buf, size_t bytes, const char *what);

/* Every rank's mine[0 .. bytes) to rank 0's all[rank * bytes ...] (all is
 * only read on rank 0; it holds size * bytes). */
void dist_gather(const void *mine, size_t bytes, void *all, const char *what);

/* ---------------------------------------------------------------------------
 * The gradient reducer: the average over the ranks of a float block whose
 * ranges become final one after another (from its end towards its start),
 * in buckets of about `bucket_floats` started while the rest is computed.
 * ------------------------------------------------------------------------- */

typedef struct dist_reducer dist_reducer;

/* For a block of n floats reported in at most max_ranges ranges per step.
 * NULL after printing an error. */
dist_reducer *dist_reducer_create(size_t n, size_t bucket_floats, int max_ranges);
void dist_reducer_free(dist_reducer *r);

/* grads[offset .. offset + count) is final: adds it to the current bucket,
 * starts the bucket once it is full, and moves the started ones on. */
void dist_reducer_ready(dist_reducer *r, float *grads, size_t offset, size_t count);

/* Starts what is left and waits for every bucket: the ranges reported this
 * step then hold the average over the ranks. */
void dist_reducer_finish(dist_reducer *r);

typedef struct dist_reducer_stats {
    long long steps;           /* finished steps */
    long long buckets;         /* buckets started, in all */
    double floats_per_step;    /* floats reduced in the last step */
    double inline_s;           /* seconds inside dist_reducer_ready (MPI calls during backward) */
    double wait_s;             /* seconds inside dist_reducer_finish (waiting before the update) */
} dist_reducer_stats;
void dist_reducer_get_stats(const dist_reducer *r, dist_reducer_stats *st);

/* Seconds one reduction of the whole block takes with nothing else running
 * (the same buckets, started at once and waited for; the best of `repeats`).
 * A collective. */
double dist_reducer_time_alone(dist_reducer *r, int repeats);

#endif
