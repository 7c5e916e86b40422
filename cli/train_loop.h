/*
 * train_loop.h - `resnet train`'s run (what the command set up: model, trainer, data, files,
 * plan) and its loop over the epochs (train_loop.c); cmd_train.c parses the flags, sets the
 * run up and calls train_loop.
 */
#ifndef RN_CLI_TRAIN_LOOP_H
#define RN_CLI_TRAIN_LOOP_H

#include <stdint.h>
#include <stdio.h>

#include "args.h"
#include "resnet.h"
#include "train_ckpt.h"
#include "train_dist.h"
#include "train_plan.h"

typedef struct train_run {
    arg_table *t;
    rn_model *m;
    rn_trainer *tr;
    rn_model *ema_m;        /* --ema: the moving average's weights, for evaluating and saving */
    char ema_path[1024];    /* where they are saved ("" without --ema or --save) */
    rn_dataset train, test;
    rn_loader *loader;
    rn_loader_config lcfg;
    char save[1024], optim[1024], log[1024], svg[1024];
    char norm_text[256];
    char old_report[1100];  /* the report folder of the run --overwrite replaces, taken away at this
                               run's first save ("" when none is pending) */
    FILE *logf;
    char log_final[1024];   /* where the log goes at this run's first save, replacing the log of
                               the run --overwrite replaces ("" when none is pending: log is it) */
    int quiet, tty;
    int curves;             /* the SVG curves were written by this train_run */
    int epochs, eval_every, max_steps, log_every, seed, num_classes, save_every, max_bad_steps;
    int warmup_epochs; /* --warmup-epochs: warmup_steps set from it once the epoch's steps are known */
    int val_size, val_resize; /* --val-image-size, --val-resize-size (0: as trained, int(S / 0.875)) */
    train_plan plan;        /* recorded in every checkpoint; read back on --resume */
    train_dist dist;        /* the ranks of a data-parallel run (one without a launcher) */
    int lead;               /* rank 0: prints, logs and saves */
    rn_train_config cfg;    /* from the flags; the steps are the loader's */
    rn_mix_config mix;      /* --mixup-alpha, --cutmix-alpha */
    double started;         /* when the command started (train_clock_s) */
    double elapsed_before;  /* the run's seconds before this command (a resumed run's): the log's
                               "elapsed" is these plus the command's */
    epoch_tally tally;      /* the epoch in progress, so far (what a checkpoint inside it records) */
    double tally_t0;        /* when this command's share of it started (train_clock_s) */
    double eval_seconds;    /* the last evaluation's (0: none yet), for the run's ETA */
    train_ckpt ck;
    int stopped_together;   /* the loop stopped where every rank stops alike (too many bad steps:
                               all skip the same steps), so no rank need be aborted */
} train_run;

/* The evaluation's loader configuration: the training's, at --val-image-size with
 * --val-resize-size. */
rn_loader_config train_eval_loader(const train_run *r);
/* The side the evaluation feeds the network (the checkpoint's image_size). */
int train_eval_side(const train_run *r);

/* Seconds on a monotonic clock. */
double train_clock_s(void);

/* Trains from (start_epoch, start_position) to the run's end: the steps with their progress
 * line and log, the evaluation after each epoch, the checkpoints, a stop at an interrupt or
 * after too many bad steps. Returns an exit status (0 when the run ended as planned). */
int train_loop(train_run *r, int64_t start_epoch, int64_t start_position);

#endif
