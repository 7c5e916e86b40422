/*
 * train_plan.h - the plan of a training run as its checkpoints record it,
 * and what a resumed run keeps or changes.
 *
 * The optimizer file of a checkpoint records, as "plan.<flag>", the value of
 * every flag that shapes a run (PLAN_FLAGS in train_plan.c: dataset, epochs,
 * batch size, augmentation, optimizer, learning rate, schedule, warm-up,
 * ...), with "plan.steps_per_epoch", "plan.total_steps" and
 * "plan.schedule_offset" (rn_train_config's: the schedule's step less the
 * optimizer's, non-zero after a resume changed the steps per epoch). `resnet train
 * --resume` gives each of these flags that is not on its command line the
 * checkpoint's value, so that --resume alone continues the original plan
 * exactly; a flag given with another value changes the plan, and
 * plan_report says what changes: the flags, the total number of steps and
 * the learning rate of the next step, before and after.
 */
#ifndef RN_CLI_TRAIN_PLAN_H
#define RN_CLI_TRAIN_PLAN_H

#include <stdint.h>

#include "args.h"
#include "resnet.h"
#include "train/checkpoint.h"

#define PLAN_N_FLAGS 43
#define PLAN_MAX_META (PLAN_N_FLAGS + 3)

/* Where a run was when its checkpoint was saved, beside the plan: the seconds since it started
 * (summed over its resumes: the log's "elapsed" goes on from them), and the figures of the epoch
 * in progress so far (a checkpoint saved inside an epoch, or on its last step), from which the
 * resumed run's record of that epoch goes on, so that it covers the whole epoch. */
typedef struct epoch_tally {
    int present;                         /* read from the checkpoint (or being counted) */
    int64_t epoch;                       /* 0-based */
    int64_t images, correct, skipped;    /* images of its good steps, their correct top-1s, the
                                            steps skipped as not finite */
    double loss_sum;                     /* the good steps' loss x images */
    double seconds;                      /* of training in it */
    double lr;                           /* the learning rate of its last good step (0: none) */
} epoch_tally;

/* The metadata keys of an epoch_tally, in its fields' order (epoch .. lr). */
extern const char *const plan_tally_keys[7];

typedef struct train_plan {
    /* read from a checkpoint (plan_read) */
    int recorded;                        /* it holds a plan */
    char *flag_values[PLAN_N_FLAGS];     /* by PLAN_FLAGS index, or NULL */
    int64_t steps_per_epoch, total_steps, schedule_offset;
    char *seed;                          /* its "seed", or NULL */
    int64_t ranks;                       /* its "ranks" (processes of the run that wrote it), or 0 */
    double elapsed;                      /* its "elapsed" seconds, or 0 */
    epoch_tally tally;                   /* its epoch in progress, or none (present 0) */
    /* this run's plan, as metadata to save (plan_record) */
    const char *keys[PLAN_MAX_META], *values[PLAN_MAX_META];
    int count;
    int64_t now_steps_per_epoch, now_total_steps, now_schedule_offset;
    char key_text[PLAN_MAX_META][40], value_text[PLAN_MAX_META][24];
    char log_text[4096];                 /* --log FILE made absolute, as recorded */
} train_plan;

/* Reads the plan and the seed recorded in a checkpoint's optimizer file.
 * A checkpoint written before plans were recorded leaves p->recorded 0. */
rn_status plan_read(train_plan *p, const char *optim_path);

/* Every plan flag not given on the command line takes the recorded value.
 * Call before the flags are parsed into numbers. */
void plan_apply(train_plan *p, arg_table *t);

/* This run's plan (t's flags, the loader's steps per epoch and the trainer's schedule offset)
 * into p->keys / p->values, to save with every checkpoint. */
void plan_record(train_plan *p, const arg_table *t, int64_t steps_per_epoch, int64_t schedule_offset);

/* The schedule offset of a run resumed at `pos` (the optimizer's step, the epoch and the images
 * into it) with `steps_per_epoch` steps of `batch` images an epoch of `epoch_images`: the
 * recorded one while the steps per epoch are the checkpoint's, else the one that puts the
 * schedule where the images are in the new plan, counted back from the epoch's end (its steps
 * less the ceil((epoch_images - position) / batch) still to come, so that the next epoch starts
 * on its own first step): a changed batch size or dataset had run the schedule on from the old
 * step count (a cosine left unfinished, a step schedule a whole epoch behind). */
int64_t plan_schedule_offset(const train_plan *p, const rn_train_position *pos, int64_t steps_per_epoch,
                             int64_t batch, int64_t epoch_images);

/* After plan_record, on resuming at optimizer step `step`, `position` images into 0-based
 * epoch `start_epoch`: prints on stdout what the flags given change (the seed among them),
 * the total steps and the next step's learning rate before and after, and says so when
 * nothing is left to train. Prints nothing when nothing changes. */
void plan_report(const train_plan *p, const arg_table *t, const char *optim_path, int64_t step,
                 int64_t start_epoch, int64_t position);

/* The value the checkpoint's plan records for flag `name`, or NULL. */
const char *plan_value(const train_plan *p, const char *name);

/* The warm-up and schedule flags' values, as text (NULL: the flag's default), into cfg's
 * warmup_sequential (--warmup-epochs > 0), warmup_constant, warmup_factor (auto: 0.01 with
 * --warmup-epochs, else 0, the library's own) and schedule_by_epoch; warmup_steps is the
 * caller's (--warmup-epochs times the epoch's steps). Values as check_flags passed them. */
void train_warmup_options(const char *warmup_epochs, const char *method, const char *factor, const char *by,
                          rn_train_config *cfg);

void plan_free(train_plan *p);

#endif
