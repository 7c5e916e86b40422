/* train_plan.c - the plan a checkpoint records, kept or changed on --resume. */
#include "train_plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "run_common.h"
#include "train/optim.h"

/* The flags that shape a run, in the order they are reported. */
static const char *const PLAN_FLAGS[PLAN_N_FLAGS] = {
    "dataset", "epochs", "batch-size", "image-size", "val-image-size", "val-resize-size", "augment", "auto-augment",
    "ra-magnitude", "aa-interpolation", "ra-sampler", "ra-reps",
    "random-erase", "mixup-alpha", "cutmix-alpha", "normalize", "no-shuffle",
    "optimizer", "lr", "momentum", "nesterov", "weight-decay", "norm-weight-decay", "clip-grad-norm", "ema", "ema-every",
    "schedule", "schedule-by", "warmup", "warmup-epochs", "warmup-method", "warmup-factor",
    "label-smoothing", "lr-backbone", "freeze-backbone", "sync-bn", "conv-algo", "tta", "precision",
    "eval-every", "log-every", "save-every", "log",
};

#define PREFIX "plan."

const char *const plan_tally_keys[7] = {"tally.epoch",    "tally.images",  "tally.correct",
                                        "tally.skipped",  "tally.loss_sum", "tally.seconds",
                                        "tally.lr"};

/* ---------------------------------------------------------------------------
 * Reading and applying
 * ------------------------------------------------------------------------- */

static void on_meta(void *ctx, const char *key, const char *value) {
    train_plan *p = ctx;
    if (strcmp(key, "seed") == 0) {
        free(p->seed);
        p->seed = strdup(value);
        return;
    }
    if (strcmp(key, "ranks") == 0) {
        p->ranks = atoll(value);
        return;
    }
    if (strcmp(key, "elapsed") == 0) {
        p->elapsed = atof(value);
        return;
    }
    for (int i = 0; i < 7; i++)
        if (strcmp(key, plan_tally_keys[i]) == 0) {
            epoch_tally *e = &p->tally;
            int64_t *counts[] = {&e->epoch, &e->images, &e->correct, &e->skipped};
            double *reals[] = {&e->loss_sum, &e->seconds, &e->lr};
            if (i < 4)
                *counts[i] = atoll(value);
            else
                *reals[i - 4] = strtod(value, NULL);
            e->present |= 1 << i; /* all seven: 127 */
            return;
        }
    if (strncmp(key, PREFIX, strlen(PREFIX)) != 0)
        return;
    const char *name = key + strlen(PREFIX);
    if (strcmp(name, "steps_per_epoch") == 0)
        p->steps_per_epoch = atoll(value);
    else if (strcmp(name, "total_steps") == 0)
        p->total_steps = atoll(value);
    else if (strcmp(name, "schedule_offset") == 0)
        p->schedule_offset = atoll(value);
    for (int i = 0; i < PLAN_N_FLAGS; i++)
        if (strcmp(name, PLAN_FLAGS[i]) == 0) {
            free(p->flag_values[i]);
            p->flag_values[i] = strdup(value);
            p->recorded = 1;
        }
}

rn_status plan_read(train_plan *p, const char *optim_path) {
    memset(p, 0, sizeof *p);
    rn_status st = rn_weights_meta_each(optim_path, on_meta, p);
    p->tally.present = p->tally.present == 127 && p->tally.images >= 0 && p->tally.correct >= 0 &&
                       p->tally.skipped >= 0 && isfinite(p->tally.loss_sum) &&
                       isfinite(p->tally.seconds) && isfinite(p->tally.lr);
    if (!isfinite(p->elapsed) || p->elapsed < 0)
        p->elapsed = 0;
    return st;
}

void plan_apply(train_plan *p, arg_table *t) {
    for (int i = 0; i < PLAN_N_FLAGS; i++)
        if (p->flag_values[i])
            args_default_to(t, PLAN_FLAGS[i], p->flag_values[i]);
}

/* ---------------------------------------------------------------------------
 * Recording
 * ------------------------------------------------------------------------- */

/* A flag's value as text: "1"/"0" for a flag without value. */
static const char *flag_text(const arg_table *t, const char *name) {
    const arg_spec *s = args_spec(t, name);
    if (s && s->kind == ARG_FLAG)
        return args_flag(t, name) ? "1" : "0";
    return args_str(t, name);
}

void plan_record(train_plan *p, const arg_table *t, int64_t steps_per_epoch, int64_t schedule_offset) {
    int epochs = atoi(args_str(t, "epochs"));
    p->now_steps_per_epoch = steps_per_epoch;
    p->now_total_steps = steps_per_epoch * epochs;
    p->now_schedule_offset = schedule_offset;
    p->count = 0;
    for (int i = 0; i < PLAN_N_FLAGS; i++) {
        snprintf(p->key_text[p->count], sizeof p->key_text[0], PREFIX "%s", PLAN_FLAGS[i]);
        p->keys[p->count] = p->key_text[p->count];
        p->values[p->count++] = flag_text(t, PLAN_FLAGS[i]);
    }
    /* --log FILE from where the run started, so that a resume from another folder finds it */
    const char *log = args_str(t, "log");
    char cwd[2048];
    if (strcmp(log, "auto") != 0 && strcmp(log, "none") != 0 && log[0] != '/' && getcwd(cwd, sizeof cwd) &&
        (size_t)snprintf(p->log_text, sizeof p->log_text, "%s/%s", cwd, log) < sizeof p->log_text)
        for (int i = 0; i < p->count; i++)
            if (strcmp(p->keys[i], PREFIX "log") == 0)
                p->values[i] = p->log_text;
    static const char *const derived[] = {"steps_per_epoch", "total_steps", "schedule_offset"};
    int64_t numbers[] = {p->now_steps_per_epoch, p->now_total_steps, p->now_schedule_offset};
    for (int i = 0; i < 3; i++) {
        snprintf(p->key_text[p->count], sizeof p->key_text[0], PREFIX "%s", derived[i]);
        snprintf(p->value_text[p->count], sizeof p->value_text[0], "%lld", (long long)numbers[i]);
        p->keys[p->count] = p->key_text[p->count];
        p->values[p->count] = p->value_text[p->count];
        p->count++;
    }
}

int64_t plan_schedule_offset(const train_plan *p, const rn_train_position *pos, int64_t steps_per_epoch,
                             int64_t batch, int64_t epoch_images) {
    if (p->steps_per_epoch <= 0 || p->steps_per_epoch == steps_per_epoch || batch < 1)
        return p->schedule_offset;
    const int64_t left = epoch_images > pos->position ? (epoch_images - pos->position + batch - 1) / batch : 0;
    const int64_t at = pos->epoch * steps_per_epoch + (left < steps_per_epoch ? steps_per_epoch - left : 0);
    return at - pos->id.step;
}

/* ---------------------------------------------------------------------------
 * Reporting
 * ------------------------------------------------------------------------- */

/* Equal as numbers when both are, else as text. */
static const char *shown(const arg_spec *s, const char *value) {
    if (s->kind == ARG_FLAG)
        return strcmp(value, "1") == 0 ? "on" : "off";
    return value;
}

void train_warmup_options(const char *warmup_epochs, const char *method, const char *factor, const char *by,
                          rn_train_config *cfg) {
    const int epochs = warmup_epochs ? atoi(warmup_epochs) : 0;
    cfg->warmup_sequential = epochs > 0;
    cfg->warmup_constant = method && strcmp(method, "constant") == 0;
    cfg->warmup_factor = factor && strcmp(factor, "auto") != 0 ? atof(factor) : epochs > 0 ? 0.01 : 0.0;
    cfg->schedule_by_epoch = by && strcmp(by, "epoch") == 0;
}

/* The learning rate of step `step` under the schedule's flags, as text (the flag's value, by
 * name: `value(ctx, name)`; NULL, a checkpoint's plan that predates the flag, for its default)
 * and the step counts; NAN if the schedule does not build. */
static double lr_at(const char *(*value)(const void *, const char *), const void *ctx, int64_t per_epoch,
                    int64_t total, int64_t step) {
    const char *lr = value(ctx, "lr"), *schedule = value(ctx, "schedule"), *warmup = value(ctx, "warmup");
    const char *epochs = value(ctx, "warmup-epochs");
    if (!lr || !schedule)
        return NAN;
    rn_train_config c = {0};
    train_warmup_options(epochs, value(ctx, "warmup-method"), value(ctx, "warmup-factor"),
                         value(ctx, "schedule-by"), &c);
    rn_schedule s;
    if (rn_schedule_parse(schedule, &s) != RN_OK)
        return NAN;
    s.base_lr = atof(lr);
    s.steps_per_epoch = per_epoch > 0 ? per_epoch : 1;
    s.total_steps = total > 0 ? total : 1;
    s.warmup_steps = c.warmup_sequential ? atoll(epochs) * s.steps_per_epoch : warmup ? atoll(warmup) : 0;
    s.warmup_factor = c.warmup_factor;
    s.warmup_constant = c.warmup_constant;
    s.warmup_sequential = c.warmup_sequential;
    s.by_epoch = c.schedule_by_epoch;
    if (rn_schedule_check(&s) != RN_OK)
        return NAN;
    return rn_schedule_lr(&s, step);
}

static const char *plan_text(const void *p, const char *name) { return plan_value(p, name); }
static const char *arg_text(const void *t, const char *name) { return args_str(t, name); }

const char *plan_value(const train_plan *p, const char *name) {
    for (int i = 0; i < PLAN_N_FLAGS; i++)
        if (strcmp(PLAN_FLAGS[i], name) == 0)
            return p->flag_values[i];
    return NULL;
}

/* A flag's value as the run takes it, where "auto" or 0 stands for the dataset's own: --augment
 * auto (crop+flip for folders, none otherwise), --normalize auto (imagenet for folders, none
 * otherwise), --image-size 0 (28 for the IDX datasets, 32 for CIFAR-10, 224 for folders),
 * --warmup-factor auto (0.01 with --warmup-epochs); the value itself otherwise. A resume given
 * the value in effect had listed it as a change. */
static const char *resolved(const arg_table *t, const char *flag, const char *value) {
    const char *kind = args_str(t, "dataset");
    const int folder = rn_dataset_kind_is_folder(kind);
    if (strcmp(flag, "augment") == 0 && strcmp(value, "auto") == 0)
        return folder ? "crop+flip" : "none";
    if (strcmp(flag, "normalize") == 0 && strcmp(value, "auto") == 0)
        return folder ? "imagenet" : "none";
    if (strcmp(flag, "warmup-factor") == 0 && strcmp(value, "auto") == 0 && atoi(args_str(t, "warmup-epochs")) > 0)
        return "0.01"; /* --warmup-epochs' own; --warmup N's auto is no one number */
    if (strcmp(flag, "image-size") == 0 && cli_same_value(value, "0"))
        return folder ? "224" : strcmp(kind, "cifar10") == 0 || strcmp(kind, "cifar-10") == 0 ? "32" : "28";
    return value;
}

void plan_report(const train_plan *p, const arg_table *t, const char *optim_path, int64_t step,
                 int64_t start_epoch, int64_t position) {
    if (!p->recorded) {
        printf("note: %s records no training plan (it predates them): the flags given, or their "
               "defaults, apply as they are\n", optim_path);
    } else {
        int lines = 0;
        for (int i = 0; i < PLAN_N_FLAGS; i++) {
            const arg_spec *s = args_spec(t, PLAN_FLAGS[i]);
            const char *was = p->flag_values[i], *now = flag_text(t, PLAN_FLAGS[i]);
            /* a flag newer than the checkpoint: the run had its default (a resume given the flag
             * had listed nothing) */
            const int predates = !was && s;
            if (predates)
                was = s->kind == ARG_FLAG ? "0" : s->def;
            if (!s || !was || cli_same_value(resolved(t, PLAN_FLAGS[i], was), resolved(t, PLAN_FLAGS[i], now)) ||
                (strcmp(PLAN_FLAGS[i], "log") == 0 && cli_same_file(was, now)))
                continue;
            if (lines++ == 0)
                printf("resuming with other settings than the checkpoint's:\n");
            printf("  --%s: %s -> %s%s\n", PLAN_FLAGS[i], shown(s, was), shown(s, now),
                   predates ? " (the checkpoint predates the flag: it ran with the default)" : "");
        }
        /* the seed is the checkpoint's unless given: another draws the data order and the
         * augmentation from here on (it had changed the run without a word) */
        if (p->seed && !cli_same_value(p->seed, args_str(t, "seed"))) {
            if (lines++ == 0)
                printf("resuming with other settings than the checkpoint's:\n");
            printf("  --seed: %s -> %s (the data order and augmentation from here on)\n", p->seed,
                   args_str(t, "seed"));
        }
        double before = lr_at(plan_text, p, p->steps_per_epoch, p->total_steps, step + p->schedule_offset);
        double after = lr_at(arg_text, t, p->now_steps_per_epoch, p->now_total_steps,
                             step + p->now_schedule_offset);
        int horizon = p->total_steps != p->now_total_steps ||
                      p->steps_per_epoch != p->now_steps_per_epoch;
        if (horizon || (!isnan(before) && !isnan(after) && before != after)) {
            if (lines++ == 0)
                printf("resuming with other settings than the checkpoint's:\n");
            printf("  total steps: %lld -> %lld", (long long)p->total_steps,
                   (long long)p->now_total_steps);
            if (p->steps_per_epoch != p->now_steps_per_epoch)
                printf(" (%lld -> %lld per epoch)", (long long)p->steps_per_epoch,
                       (long long)p->now_steps_per_epoch);
            printf("\n  learning rate of the next step (%lld): %.6g -> %.6g\n", (long long)step,
                   before, after);
        }
    }
    int epochs = atoi(args_str(t, "epochs"));
    if (start_epoch >= epochs && position == 0)
        printf("nothing left to train: the checkpoint is at the end of epoch %lld and --epochs "
               "is %d (give a larger --epochs to train longer)\n", (long long)start_epoch, epochs);
    else if (start_epoch >= epochs)
        printf("nothing left to train: the checkpoint is %lld images into epoch %lld and --epochs "
               "is %d (give --epochs %lld or more to train on)\n", (long long)position,
               (long long)start_epoch + 1, epochs, (long long)start_epoch + 1);
}

void plan_free(train_plan *p) {
    for (int i = 0; i < PLAN_N_FLAGS; i++)
        free(p->flag_values[i]);
    free(p->seed);
    memset(p, 0, sizeof *p);
}
