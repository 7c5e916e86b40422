/*
 * train_dist.h - data-parallel `resnet train` (under mpirun) on top of the
 * process group (dist.h) and the trainer's hooks: one model replica per
 * rank, every rank the same order of the data and its share of each global
 * batch (the loader's shards), gradients averaged in buckets while
 * backward runs, BatchNorm over the global batch with --sync-bn.
 *
 * Without --sync-bn each rank normalises by its own share of the batch
 * and updates its running statistics from it; the running statistics that
 * count are rank 0's, as with DDP (which broadcasts rank 0's buffers before
 * every forward): they are sent to every rank before each evaluation and
 * checkpoint, the only places they are read.
 *
 * With one rank (no launcher, or -np 1) nothing here changes the run.
 */
#ifndef RN_CLI_TRAIN_DIST_H
#define RN_CLI_TRAIN_DIST_H

#include <stdint.h>
#include <stdio.h>

#include "args.h"
#include "data/dataset.h"
#include "dist.h"
#include "resnet.h"

/* The flags of data-parallel training, for `train`'s table. */
#define TRAIN_DIST_SPECS                                                                                   \
    {"sync-bn", ARG_FLAG, NULL,                                                                            \
     "data parallel: BatchNorm statistics of the global batch (SyncBatchNorm); without it each rank "      \
     "normalises by its share and the running statistics are rank 0's",                                   \
     0, 0},                                                                                                \
    {"deterministic", ARG_FLAG, NULL,                                                                      \
     "data parallel: add the ranks' gradients and statistics in a fixed order, so runs with the same "     \
     "number of ranks are bitwise identical",                                                              \
     0, 0},                                                                                                \
    {"bucket-mb", ARG_INT, "4", "data parallel: all-reduce the gradients in buckets of this many MiB, "    \
     "started while backward runs", 0, 0},                                                                 \
    {"dist-timeout", ARG_INT, "300", "data parallel: seconds a rank waits for the others before it "       \
     "stops every rank", 0, 0}

typedef struct train_dist {
    int rank, size;
    int sync_bn;
    size_t bucket_floats;
    dist_reducer *red;
    rn_model *m;
    double alone_s;            /* one all-reduce of the gradients with nothing else running */
    char what[32];             /* "train" or "train: rank R" for messages */
} train_dist;

/* Reads the flags above (after the group is joined); 0 after an error. */
int train_dist_start(train_dist *d, const arg_table *t);

/* Reads --sync-bn (after --resume's plan is applied); with more than one
 * rank: the hooks on the trainer, the reducer, and the time of one
 * all-reduce alone. 0 after an error. */
int train_dist_attach(train_dist *d, const arg_table *t, rn_model *m, rn_trainer *tr);

/* Called by every rank once set up (ready = 1) or after failing to set up
 * (ready = 0, having printed why): when any rank failed, returns -1 on every
 * rank (none starts, none needs stopping). Else every rank's configuration
 * against rank 0's: the flags (but --threads, --quiet and the --data path),
 * the datasets (sizes, labels, pixels or file names), the weights and the
 * optimizer step. Returns 1 when all agree; else 0 on every rank, rank 0
 * having printed what differs. */
int train_dist_check(const train_dist *d, int ready, const arg_table *t, const rn_dataset *train,
                     const rn_dataset *test, const rn_model *m, int64_t steps);

/* Before the model is evaluated or saved: rank 0's BatchNorm running
 * statistics to every rank (without --sync-bn), then a check that the
 * replicas' weights are the same bits (they stop the run if not). */
void train_dist_sync_model(const train_dist *d);

/* Rank 0's weights and BatchNorm statistics of m (the --ema average's
 * model, whose statistics the ranks average apart without --sync-bn) to
 * every rank. */
void train_dist_share_model(const train_dist *d, rn_model *m);

/* rn_evaluate over the ranks: each evaluates a slice of `test`, the
 * results are added up; every rank gets the whole result. */
rn_status train_dist_evaluate(const train_dist *d, rn_model *m, const rn_dataset *test,
                              const rn_loader_config *cfg, rn_eval_progress progress, void *ctx,
                              rn_eval_result *out);

/* Rank 0, at the end: the bytes all-reduced per step, the all-reduce time
 * alone and per step, and how much of it backward hid. */
void train_dist_summary(const train_dist *d, FILE *f);

void train_dist_free(train_dist *d);

#endif
