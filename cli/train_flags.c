/* train_flags.c - `resnet train`'s flags: each value checked (ranges, names, combinations the
 * trainer and the data would refuse later) and read into the run (train_flags.h). */
#include "train_flags.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "data/dataset.h"
#include "run_common.h"
#include "train/optim.h"

/* A flag holding a number >= 0; prints an error otherwise. */
static int non_negative(const arg_table *t, const char *name) {
    if (!cli_number_ok(t, name))
        return 0;
    if (atof(args_str(t, name)) < 0) {
        cli_error(t->command, "--%s must be >= 0, got '%s'", name, args_str(t, name));
        return 0;
    }
    return 1;
}

/* The warm-up's flags (check_flags' share): --warmup-method and --schedule-by by name,
 * --warmup-factor auto or in (0, 1], not both warm-ups, and (where the values are the run's:
 * `settled`) no method or factor without a warm-up. Returns 0 after an error message. */
static int check_warmup(const arg_table *t, int warmup, int warmup_epochs, int settled) {
    const char *method = args_str(t, "warmup-method"), *factor = args_str(t, "warmup-factor");
    const char *by = args_str(t, "schedule-by");
    if (strcmp(method, "linear") != 0 && strcmp(method, "constant") != 0) {
        cli_error(t->command, "unknown --warmup-method '%s' (expected linear or constant)", method);
        return 0;
    }
    if (strcmp(by, "step") != 0 && strcmp(by, "epoch") != 0) {
        cli_error(t->command, "unknown --schedule-by '%s' (expected step or epoch)", by);
        return 0;
    }
    if (strcmp(factor, "auto") != 0) {
        if (!cli_number_ok(t, "warmup-factor"))
            return 0;
        const double f = atof(factor);
        if (!(f > 0 && f <= 1)) {
            cli_error(t->command, "--warmup-factor must be in (0, 1] (0.01 is torchvision's), got '%s'", factor);
            return 0;
        }
    }
    /* a value the user did not give is the --resume checkpoint's (check_flags' second pass) */
    const char *whose = args_spec(t, "warmup")->set ? "" : " (the --resume checkpoint's: --warmup 0 drops it)";
    if (warmup > 0 && warmup_epochs > 0) {
        cli_error(t->command, "--warmup %d%s and --warmup-epochs %d: give one (--warmup multiplies the schedule "
                  "from step 0; --warmup-epochs runs before it)", warmup, whose, warmup_epochs);
        return 0;
    }
    if (warmup > 0 && strcmp(by, "epoch") == 0) {
        cli_error(t->command, "--warmup %d%s counts steps, and --schedule-by epoch changes the rate only between "
                  "epochs: give --warmup-epochs", warmup, whose);
        return 0;
    }
    if (settled && warmup == 0 && warmup_epochs == 0 &&
        (args_spec(t, "warmup-method")->set || args_spec(t, "warmup-factor")->set)) {
        cli_error(t->command, "--warmup-method and --warmup-factor shape a warm-up: give --warmup N (steps) or "
                  "--warmup-epochs N");
        return 0;
    }
    return 1;
}

int train_check_flags(train_run *r, int *batch, int *size, int *threads, int planned) {
    arg_table *t = r->t;
    int ema_every;
    if (!args_int(t, "epochs", 1, 100000, &r->epochs) ||
        !args_int(t, "eval-every", 0, 100000, &r->eval_every) || !args_int(t, "batch-size", 1, 65536, batch) ||
        !args_int(t, "image-size", 0, 4096, size) || !args_int(t, "seed", 0, 2147483647, &r->seed) ||
        !args_int(t, "threads", 0, 1024, threads) || !args_int(t, "max-steps", 0, 2147483647, &r->max_steps) ||
        !args_int(t, "log-every", 0, 2147483647, &r->log_every) ||
        !args_int(t, "num-classes", 0, 1000000, &r->num_classes) ||
        !args_int(t, "save-every", 0, 2147483647, &r->save_every) ||
        !args_int(t, "max-bad-steps", 0, 2147483647, &r->max_bad_steps) ||
        !args_int(t, "ema-every", 1, 100000000, &ema_every))
        return 0;
    int warmup;
    if (!args_int(t, "warmup", 0, 100000000, &warmup) || !args_int(t, "warmup-epochs", 0, 100000, &r->warmup_epochs))
        return 0;
    if (!non_negative(t, "lr") || !non_negative(t, "momentum") || !non_negative(t, "weight-decay") ||
        !non_negative(t, "clip-grad-norm") || !non_negative(t, "ema") ||
        !cli_number_ok(t, "label-smoothing") ||
        (strcmp(args_str(t, "lr-backbone"), "same") != 0 && !non_negative(t, "lr-backbone")) ||
        (strcmp(args_str(t, "norm-weight-decay"), "same") != 0 && !non_negative(t, "norm-weight-decay")))
        return 0;
    const double smoothing = atof(args_str(t, "label-smoothing"));
    if (smoothing < 0 || smoothing > 1) {
        cli_error(t->command, "--label-smoothing must be in [0, 1], got '%s'", args_str(t, "label-smoothing"));
        return 0;
    }
    if (atof(args_str(t, "momentum")) >= 1.0) { /* diverged, and the message blamed the learning rate */
        cli_error(t->command, "--momentum must be below 1 (0.9 is usual), got '%s': at 1 or more each update "
                  "keeps all of the earlier ones and the weights grow without end", args_str(t, "momentum"));
        return 0;
    }
    if (atof(args_str(t, "ema")) >= 1.0) {
        cli_error(t->command, "--ema must be below 1 (0.99 to 0.9999 are usual; 0: none), got '%s': at 1 "
                  "the average never moves from the first weights", args_str(t, "ema"));
        return 0;
    }
    const char *opt = args_str(t, "optimizer");
    if (strcmp(opt, "sgd") != 0 && strcmp(opt, "adamw") != 0) {
        cli_error(t->command, "unknown --optimizer '%s' (expected sgd or adamw)", opt);
        return 0;
    }
    /* before --nesterov's check: an AdamW run given --nesterov had been told to give a momentum */
    if (strcmp(opt, "adamw") == 0 && (args_spec(t, "momentum")->set || args_spec(t, "nesterov")->set)) {
        cli_error(t->command, "--momentum and --nesterov are SGD's (--optimizer sgd); AdamW keeps its own "
                  "moments: drop them");
        return 0;
    }
    /* resuming, what is not given is the checkpoint's, not the default's or the recipe's, to
     * refuse: only both given are checked before its plan is read */
    const int resuming = strcmp(args_str(t, "resume"), "none") != 0;
    /* a resume's --ema is its checkpoint's until the plan is read (--ema-every alone had been
     * refused on a checkpoint that keeps an average) */
    if (args_spec(t, "ema-every")->set && atof(args_str(t, "ema")) == 0.0 && (planned || !resuming)) {
        cli_error(t->command, "--ema-every needs --ema DECAY (the moving average it updates; 0.9999 or so)%s",
                  resuming && !args_spec(t, "ema")->set ? " (the --resume checkpoint keeps none)" : "");
        return 0;
    }
    if (args_flag(t, "nesterov") && !(atof(args_str(t, "momentum")) > 0) &&
        (planned || !resuming || (args_spec(t, "momentum")->set && args_spec(t, "nesterov")->set))) {
        cli_error(t->command, "--nesterov needs a --momentum above 0, got '%s'%s", args_str(t, "momentum"),
                  args_spec(t, "momentum")->set || !planned ? ""
                  : plan_value(&r->plan, "momentum") ? " (the --resume checkpoint's)"
                                                      : " (the default: the --resume checkpoint records none)");
        return 0;
    }
    if (!check_warmup(t, warmup, r->warmup_epochs, planned || !resuming))
        return 0;
    rn_schedule sched;
    if (rn_schedule_build(args_str(t, "schedule"), 1.0, warmup, 1, 1, &sched) != RN_OK) {
        cli_error(t->command, "--schedule: %s", rn_last_error());
        return 0;
    }
    if (sched.kind == RN_SCHED_ONECYCLE && r->warmup_epochs > 0) {
        cli_error(t->command, "--schedule %s after --warmup-epochs: one-cycle's rising phase is a warm-up "
                  "already (its share: onecycle:PCT)", args_str(t, "schedule"));
        return 0;
    }
    const double lr = atof(args_str(t, "lr"));
    if (planned && r->lead && sched.kind == RN_SCHED_COSINE && sched.eta_min > lr)
        cli_error(t->command, "warning: --schedule %s ends at %g, above --lr %g: the learning rate rises over the "
                  "run (the floor is meant below it, e.g. cosine:%g)", args_str(t, "schedule"), sched.eta_min, lr,
                  lr / 100);
    if (planned && r->lead && lr == 0 && strcmp(args_str(t, "lr-backbone"), "same") == 0)
        cli_error(t->command, "warning: --lr 0: the weights will not change (BatchNorm's running statistics "
                  "will)");
    if (!cli_arch_ok(t, 0) || !cli_dataset_ok(t, 0) || !cli_precision_ok(t, 1) || !cli_conv_algo_ok(t) ||
        cli_stem(t) < 0 || cli_width(t) < 0)
        return 0;
    /* a --resume without --batch-size takes its checkpoint's: not the default's to refuse */
    const int given = args_spec(t, "batch-size")->set;
    if (*batch % r->dist.size != 0 && (given || planned || !resuming)) {
        const int recipe = strcmp(args_str(t, "recipe"), "none") != 0;
        cli_error(r->dist.what, "--batch-size %d%s is the global batch: it must be a multiple of the %d ranks",
                  *batch, given ? "" : resuming ? " (the --resume checkpoint's)" : recipe ? " (the recipe's)" : " (the default)",
                  r->dist.size);
        return 0;
    }
    /* what needs a file to write to */
    const int save = strcmp(args_str(t, "save"), "none") != 0;
    const char *log = args_str(t, "log");
    if ((save && !cli_path_ok(t, "save")) || !cli_path_ok(t, "log") || (resuming && !cli_path_ok(t, "resume")))
        return 0;
    if (resuming && !save) {
        cli_error(t->command, "--resume %s needs --save: give --save %s to continue the checkpoint in place "
                  "(or --save NEW to keep it as it is)", args_str(t, "resume"), args_str(t, "resume"));
        return 0;
    }
    if (r->save_every > 0 && !save) {
        cli_error(t->command, "--save-every %d needs --save: there is no checkpoint to write", r->save_every);
        return 0;
    }
    if (r->log_every > 0 && (strcmp(log, "none") == 0 || (strcmp(log, "auto") == 0 && !save))) {
        if (!args_spec(t, "log-every")->set) { /* the --resume checkpoint's, and this run keeps no log */
            r->log_every = 0;
        } else {
            cli_error(t->command, "--log-every %d needs a log: give --log FILE (or --save, whose log is beside it)",
                      r->log_every);
            return 0;
        }
    }
    /* given, or one of them the --resume checkpoint's (a frozen run resumed with --lr-backbone
     * had been accepted, the rate then ignored) */
    if (args_flag(t, "freeze-backbone") && strcmp(args_str(t, "lr-backbone"), "same") != 0) {
        const int frozen_given = args_spec(t, "freeze-backbone")->set, rate_given = args_spec(t, "lr-backbone")->set;
        cli_error(t->command, "--freeze-backbone%s keeps the backbone as loaded, --lr-backbone %s%s would train it: "
                  "give one of the two%s", frozen_given ? "" : " (the --resume checkpoint's)",
                  args_str(t, "lr-backbone"), rate_given ? "" : " (the --resume checkpoint's)",
                  rate_given ? "" : " (with --lr-backbone same, --freeze-backbone trains fc alone)");
        return 0;
    }
    /* the data's configuration */
    memset(&r->lcfg, 0, sizeof r->lcfg);
    r->lcfg.batch_size = *batch;
    r->lcfg.image_size = *size;
    r->lcfg.shuffle = !args_flag(t, "no-shuffle");
    r->lcfg.seed = (uint64_t)r->seed;
    r->lcfg.shards = r->dist.size > 1 ? r->dist.size : 0;
    r->lcfg.shard = r->dist.rank;
    if (!cli_number_ok(t, "random-erase") || !non_negative(t, "mixup-alpha") || !non_negative(t, "cutmix-alpha"))
        return 0;
    r->mix.mixup_alpha = (float)atof(args_str(t, "mixup-alpha"));
    r->mix.cutmix_alpha = (float)atof(args_str(t, "cutmix-alpha"));
    r->mix.seed = (uint64_t)r->seed;
    /* 1e39 is inf as a float, and 1e-50 is 0: mixing off while the plan records it on */
    if (!isfinite(r->mix.mixup_alpha) || !isfinite(r->mix.cutmix_alpha) ||
        (r->mix.mixup_alpha == 0.0f && atof(args_str(t, "mixup-alpha")) > 0.0) ||
        (r->mix.cutmix_alpha == 0.0f && atof(args_str(t, "cutmix-alpha")) > 0.0)) {
        cli_error(t->command, "--mixup-alpha and --cutmix-alpha must be 0 or a number a float holds (1.4e-45 to 3.4e38), got '%s' and '%s'",
                  args_str(t, "mixup-alpha"), args_str(t, "cutmix-alpha"));
        return 0;
    }
    /* in RN_AUTO_AUGMENT_*'s order */
    static const char *const policies[] = {"none", "ta_wide", "ra", "imagenet", "cifar10", "svhn"};
    const char *aa = args_str(t, "auto-augment");
    r->lcfg.auto_augment = -1;
    for (int k = 0; k < (int)(sizeof policies / sizeof *policies); k++)
        if (strcmp(aa, policies[k]) == 0)
            r->lcfg.auto_augment = RN_AUTO_AUGMENT_NONE + k;
    if (r->lcfg.auto_augment < 0) {
        cli_error(t->command, "--auto-augment '%s' is not offered: none, ta_wide (TrivialAugmentWide), ra "
                  "(RandAugment), imagenet, cifar10 or svhn (AutoAugment's policies)%s", aa,
                  strcmp(aa, "augmix") == 0 ? "; torchvision's AugMix is not built here" : "");
        return 0;
    }
    if (!args_int(t, "ra-magnitude", 0, 30, &r->lcfg.ra_magnitude))
        return 0;
    const char *interp = args_str(t, "aa-interpolation");
    if (strcmp(interp, "bilinear") != 0 && strcmp(interp, "nearest") != 0) {
        cli_error(t->command, "unknown --aa-interpolation '%s' (expected bilinear or nearest)", interp);
        return 0;
    }
    r->lcfg.auto_augment_bilinear = strcmp(interp, "bilinear") == 0;
    if (args_spec(t, "ra-magnitude")->set && r->lcfg.auto_augment != RN_AUTO_AUGMENT_RA &&
        (planned || strcmp(args_str(t, "resume"), "none") == 0)) {
        cli_error(t->command, "--ra-magnitude sets RandAugment's strength: give --auto-augment ra");
        return 0;
    }
    int reps;
    if (!args_int(t, "ra-reps", 2, 64, &reps))
        return 0;
    if (args_spec(t, "ra-reps")->set && !args_flag(t, "ra-sampler") &&
        (planned || strcmp(args_str(t, "resume"), "none") == 0)) {
        cli_error(t->command, "--ra-reps sets --ra-sampler's repetitions: give --ra-sampler");
        return 0;
    }
    r->lcfg.repeat_aug = args_flag(t, "ra-sampler") ? reps : 0;
    r->lcfg.erase_prob = (float)atof(args_str(t, "random-erase"));
    if (!(r->lcfg.erase_prob >= 0.0f && r->lcfg.erase_prob <= 1.0f)) {
        cli_error(t->command, "--random-erase is a probability in [0, 1], got '%s'", args_str(t, "random-erase"));
        return 0;
    }
    const int folder = rn_dataset_kind_is_folder(args_str(t, "dataset"));
    if (!args_int(t, "val-image-size", 0, 4096, &r->val_size) ||
        !args_int(t, "val-resize-size", 0, 4096, &r->val_resize))
        return 0;
    /* resuming, --dataset is the checkpoint's only once the plan has filled it (planned) */
    if (r->val_resize && !folder &&
        (planned || strcmp(args_str(t, "resume"), "none") == 0 || args_spec(t, "dataset")->set)) {
        cli_error(t->command, "--val-resize-size is for image folders (--dataset folder or folder-gray); images "
                  "of %s are resized straight to --val-image-size", args_str(t, "dataset"));
        return 0;
    }
    return cli_parse_augment(t, &r->lcfg, folder ? "crop+flip" : "none") && cli_parse_tta(t, &r->lcfg) &&
           cli_parse_normalize(t, &r->lcfg, r->norm_text, sizeof r->norm_text);
}
