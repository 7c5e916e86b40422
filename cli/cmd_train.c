/*
 * cmd_train.c - `resnet train`: train a model on a dataset, with a live
 * progress line, a test-set evaluation after every epoch, a JSON-lines log,
 * SVG curves, and checkpoints that --resume continues exactly.
 *
 * A checkpoint is two files: CKPT (the model's state_dict in safetensors,
 * loadable by PyTorch as is, with the architecture, input size and
 * normalisation in its metadata) and CKPT's stem + ".optim.safetensors" (the
 * optimizer state and where training stood: epoch, step, data order),
 * committed together (train_ckpt.h). SIGINT / SIGTERM stop after the current
 * step with a checkpoint (interrupt.h).
 *
 * Under an MPI launcher (`mpirun -np N resnet train ...`, an MPI-enabled
 * build) the run is data-parallel over the N ranks (train_dist.h): the
 * flags mean what they mean for one process, --batch-size is the global
 * batch, and rank 0 alone prints, logs, writes checkpoints and the report;
 * the test set is evaluated in slices by every rank. A rank that fails
 * stops every rank (dist_abort).
 *
 * This file declares the flags and sets the run up (model, trainer, data, files); their values
 * are checked in train_flags.c, the loop over the epochs is train_loop.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "cmd_report.h"
#include "commands.h"
#include "data/dataset.h"
#include "fit.h"
#include "interrupt.h"
#include "io/file.h"
#include "io/sniff.h"
#include "resnet.h"
#include "run_common.h"
#include "train_plan.h"
#include "train_recipe.h"
#include "run_record.h"
#include "train_ckpt.h"
#include "train_dist.h"
#include "train_flags.h"
#include "train_loop.h"
#include "train/optim.h"

static arg_spec SPECS[] = {
    TRAIN_RECIPE_SPEC,
    {"arch", ARG_STRING, "d2l_resnet18", "architecture (ignored with --resume or --init FILE)", 0, 0},
    {"stem", ARG_STRING, "imagenet", "imagenet (7x7/2 conv + max-pool) or cifar (3x3/1 conv, no max-pool, for small images)", 0, 0},
    CLI_WIDTH_SPEC,
    {"data", ARG_STRING, NULL, "dataset directory", 0, 0},
    {"dataset", ARG_STRING, "fashion-mnist", "fashion-mnist, mnist, cifar10, folder (DIR/train/CLASS/*, DIR/val/CLASS/*) or folder-gray", 0, 0},
    {"epochs", ARG_INT, "10", "epochs to train (in all, counting resumed ones)", 0, 0},
    {"eval-every", ARG_INT, "1", "evaluate the test split after every N-th epoch and after the last one (0: after the "
     "last only); the epochs between log their test metrics as null", 0, 0},
    {"max-steps", ARG_INT, "0", "stop after this many optimizer steps in all (0: no limit); saves a checkpoint", 0, 0},
    {"batch-size", ARG_INT, "256", "images per batch", 0, 0},
    {"optimizer", ARG_STRING, "sgd", "sgd or adamw", 0, 0},
    {"lr", ARG_STRING, "0.05", "learning rate", 0, 0},
    {"momentum", ARG_STRING, "0", "SGD momentum", 0, 0},
    {"nesterov", ARG_FLAG, NULL, "Nesterov momentum", 0, 0},
    {"weight-decay", ARG_STRING, "0", "weight decay (SGD: L2 added to the gradient; AdamW: decoupled)", 0, 0},
    {"norm-weight-decay", ARG_STRING, "same", "weight decay of the BatchNorm weights and biases, a parameter group "
     "of their own as torchvision's --norm-weight-decay makes (0 is usual: they are not decayed); same: "
     "--weight-decay", 0, 0},
    {"clip-grad-norm", ARG_STRING, "0", "clip the gradients to this total L2 norm before each update, as "
     "torch.nn.utils.clip_grad_norm_ (torchvision's --clip-grad-norm); the norm before clipping is logged "
     "with --log-every (0: no clipping)", 0, 0},
    {"ema", ARG_STRING, "0", "keep an exponential moving average of the weights and BatchNorm statistics, "
     "updated after the first batch of each epoch and every --ema-every-th after it as avg = EMA x avg + "
     "(1 - EMA) x weights (torchvision's --model-ema; its "
     "--model-ema-decay D is EMA = 1 - min(1, (1 - D) x batch x ranks x every / epochs)); evaluated beside the "
     "model after each evaluated epoch and saved beside --save as CKPT.ema.safetensors (0: none)", 0, 0},
    {"ema-every", ARG_INT, "32", "batches of an epoch between updates of the --ema average (torchvision's "
     "--model-ema-steps)", 0, 0},
    {"schedule", ARG_STRING, "constant", "constant, step:S[:G], multistep:E1,E2[:G], cosine[:MIN], onecycle[:PCT], "
     "exponential:G (G per epoch); as torch.optim.lr_scheduler's, stepped every step (step, multistep and "
     "exponential count epochs)", 0, 0},
    {"schedule-by", ARG_STRING, "step", "step or epoch: epoch changes the learning rate only between epochs, "
     "as torchvision's reference steps its scheduler (cosine and onecycle then count epochs)", 0, 0},
    {"warmup", ARG_INT, "0", "learning-rate warm-up, in steps, multiplying --schedule (which runs from step 0): "
     "step t at lr x (t + 1) / N", 0, 0},
    {"warmup-epochs", ARG_INT, "0", "a warm-up of N epochs, after which --schedule starts and runs over the "
     "epochs left, as torchvision's --lr-warmup-epochs (SequentialLR); starts at lr x --warmup-factor; not "
     "with --warmup", 0, 0},
    {"warmup-method", ARG_STRING, "linear", "linear (from lr x --warmup-factor up to lr) or constant (lr x "
     "--warmup-factor throughout the warm-up), as torchvision's --lr-warmup-method", 0, 0},
    {"warmup-factor", ARG_STRING, "auto", "the warm-up's first learning rate as a fraction of --lr, in (0, 1] "
     "(torchvision's --lr-warmup-decay); auto: 0.01 with --warmup-epochs, else for linear step t at lr x "
     "(t + 1) / N (full at step N - 1, where a factor F reaches it at step N) and 1/3 for constant "
     "(ConstantLR's)", 0, 0},
    {"label-smoothing", ARG_STRING, "0", "cross-entropy label smoothing in [0, 1]", 0, 0},
    {"image-size", ARG_INT, "0", "resize images to this size (bilinear); 0: the dataset's own (224 for folders)", 0, 0},
    {"val-image-size", ARG_INT, "0", "evaluate at this size (torchvision's --val-crop-size; folders: the centre "
     "crop's side), so a run can train smaller than it tests (torchvision's --train-crop-size 176 "
     "--val-crop-size 224 is --image-size 176 --val-image-size 224); saved as the checkpoint's image_size, which "
     "eval, predict, export and quantize use; 0: --image-size", 0, 0},
    {"val-resize-size", ARG_INT, "0", "image folders: the evaluation resizes the shorter side to this before the "
     "centre crop (torchvision's --val-resize-size; saved in the checkpoint for eval and predict); 0: int(crop / "
     "0.875), 256 for 224", 0, 0},
    {"augment", ARG_STRING, "auto", "training augmentation: none, flip, crop, crop+flip (crop: random crop after "
     "padding by 4 pixels, crop:N by N, as torchvision's RandomCrop(size, padding=N); RandomResizedCrop "
     "for folders); auto: crop+flip for folders, none otherwise", 0, 0},
    {"mixup-alpha", ARG_STRING, "0", "mix each training batch's images in pairs, x = lam x + (1 - lam) x', and "
     "their labels alike (lam ~ Beta(alpha, alpha)), as torchvision's --mixup-alpha (RandomMixup; 0.2 is usual; "
     "0: off)", 0, 0},
    {"cutmix-alpha", ARG_STRING, "0", "paste into each training image a box of another of its batch and mix "
     "their labels by area, as torchvision's --cutmix-alpha (RandomCutmix; 1.0 is usual; with --mixup-alpha one "
     "of the two per batch; 0: off)", 0, 0},
    {"auto-augment", ARG_STRING, "none", "none, ta_wide, ra, imagenet, cifar10 or svhn, as torchvision's "
     "--auto-augment: on each training image after the crop and flip, ta_wide (TrivialAugmentWide) one of 14 "
     "operations (shears, translations, rotation, colour, contrast, sharpness, posterize, solarize, "
     "autocontrast, equalize) at one of 31 magnitudes, ra (RandAugment) two of them in turn at --ra-magnitude, "
     "imagenet, cifar10 or svhn (AutoAugment's policy learnt on that dataset) one of its 25 sub-policies, two "
     "operations each applied with its own probability (invert among them); each operation as torchvision "
     "computes it on a PIL image", 0, 0},
    {"ra-magnitude", ARG_INT, "9", "RandAugment's magnitude, 0..30 (torchvision's --ra-magnitude)", 0, 0},
    {"ra-sampler", ARG_FLAG, NULL, "repeated augmentation, torchvision's --ra-sampler (RASampler): each image of "
     "the epoch's order --ra-reps times in a row, each time augmented apart, the epoch cut to (images / 256) x 256 "
     "of them, so it sees about 1 / reps of the images (torchvision uses it under torchrun only; here with any "
     "number of ranks)", 0, 0},
    {"ra-reps", ARG_INT, "3", "--ra-sampler's repetitions, 2..64 (torchvision's --ra-reps)", 0, 0},
    {"aa-interpolation", ARG_STRING, "bilinear", "bilinear or nearest: how --auto-augment's shears, translations "
     "and rotations sample the image (bilinear: torchvision's reference script's --interpolation default; "
     "nearest: the TrivialAugmentWide, RandAugment and AutoAugment classes' own default)", 0, 0},
    {"random-erase", ARG_STRING, "0", "probability of torchvision's RandomErasing on each training image, after "
     "the rest of the augmentation and the normalisation: a random rectangle of 2% to 33% of the image, aspect "
     "ratio 0.3 to 3.3, set to 0 (torchvision's --random-erase; 0: off)", 0, 0},
    CLI_TTA_SPEC,
    {"normalize", ARG_STRING, "auto", "none, imagenet (its mean and std; for gray images 0.449:0.226, their "
     "averages), or per-channel MEAN,...:STD,... applied after scaling to [0,1]; auto: imagenet for folders, none "
     "otherwise", 0, 0},
    {"init", ARG_STRING, "default", "default, xavier, or a weights file (.safetensors, PyTorch .pth or ONNX) to start from", 0, 0},
    {"num-classes", ARG_INT, "0", "classifier outputs; 0: the dataset's (or --init FILE's); with --init FILE of "
     "another head size, fc is freshly initialised", 0, 0},
    {"freeze-backbone", ARG_FLAG, NULL, "train only fc; the backbone, BatchNorm statistics included, stays as loaded", 0, 0},
    {"lr-backbone", ARG_STRING, "same", "learning rate for every tensor but fc.*, the schedule run from it as PyTorch runs a second parameter group (cosine's MIN the floor of both; onecycle as max_lr=[lr-backbone, lr]); same: --lr", 0, 0},
    {"save", ARG_STRING, "none", "checkpoint file (.safetensors) written after every epoch, at --max-steps and when "
     "interrupted (SIGINT/SIGTERM); missing folders are created. A file already there is refused unless "
     "--resume continues it or --overwrite replaces it", 0, 0},
    {"overwrite", ARG_FLAG, NULL, "start over when --save names an existing checkpoint: replace it, its "
     "optimizer state, its log and its report, at the new run's first save, so that a run stopped before "
     "then leaves them as they were (and when --log FILE names an existing log: replace it)", 0, 0},
    {"max-bad-steps", ARG_INT, "5", "stop after this many steps in a row whose loss or gradient is not finite "
     "(NaN, inf); such a step is skipped, changing nothing (0: skip them and never stop)", 0, 0},
    {"save-every", ARG_INT, "0", "also write the checkpoint every N optimizer steps (0: at epoch ends only); needs --save", 0, 0},
    {"resume", ARG_STRING, "none", "checkpoint to continue from; the flags not given (epochs, batch size, "
     "optimizer, learning rate, schedule, ...) keep the checkpoint's values, and what the given ones change is shown; "
     "needs --save (the same file continues it in place)", 0, 0},
    {"seed", ARG_INT, "0", "random seed (initialisation, shuffling, augmentation)", 0, 0},
    {"no-shuffle", ARG_FLAG, NULL, "keep the dataset's order", 0, 0},
    {"threads", ARG_INT, "0", "threads to use; 0: all cores", 0, 0},
    CLI_CONV_ALGO_SPEC,
    CLI_TRAIN_PRECISION_SPEC,
    {"log", ARG_STRING, "auto", "JSON-lines log (missing folders are created); auto: next to --save (none without it); "
     "a FILE that holds a log already is refused unless --resume continues it or --overwrite replaces it", 0, 0},
    {"log-every", ARG_INT, "0", "also log every N steps (0: epochs only); needs a log (--log, or --save for auto)", 0, 0},
    {"quiet", ARG_FLAG, NULL, "no progress line", 0, 0},
    {"no-report", ARG_FLAG, NULL, "do not write the training report (HTML page and figures) next to --save at the end", 0, 0},
    TRAIN_DIST_SPECS,
};

/* ---- set-up (the run and its loop: train_loop.h) ------------------------------------------- */

/* The trainer and the evaluation after each epoch, planned at the run's
 * batch and image size: a run that cannot fit in the memory available is
 * refused before anything large is allocated. Returns 0 after a message. */
static int fits_in_memory(const train_run *r, const rn_train_config *cfg) {
    const int side = r->lcfg.image_size ? r->lcfg.image_size : r->train.height,
              val = train_eval_side(r), S = side > val ? side : val;
    /* the loader's batch and the one the loop fills: this rank's share of the global batch */
    size_t image = (size_t)r->train.channels * (size_t)S * (size_t)S * sizeof(float) + sizeof(int32_t);
    /* --ema: a second model (the average's weights) and its evaluation */
    const int ema = cfg->ema_decay > 0.0;
    cli_plan p = {.command = "train", .m = r->m, .tcfg = cfg, .session = ema ? 2 : 1,
                  .batch = r->lcfg.batch_size / r->dist.size, .h = S, .w = S, .per_image = 2 * image,
                  .extra = ema ? (size_t)rn_model_param_count(r->m) * sizeof(float) : 0};
    return cli_plan_fits(&p);
}

/* Whether --init's value names a fresh initialisation (default, xavier), not a weights file. */
static int init_is_fresh(const char *init) {
    return strcmp(init, "default") == 0 || strcmp(init, "xavier") == 0;
}

/* Creates the model (with --resume, loads it) and the trainer's
 * configuration, and checks that training fits in memory. Returns 0, or after an error message
 * the exit status (2: a flag that contradicts the model loaded). */
static int setup_model(train_run *r, const char *resume) {
    arg_table *t = r->t;
    const char *init = args_str(t, "init");
    rn_status st;
    if (resume) {
        st = rn_model_load(resume, NULL, &r->m);
    } else if (init_is_fresh(init)) {
        st = rn_model_create_width(args_str(t, "arch"), r->train.channels,
                                   r->num_classes > 0 ? r->num_classes : r->train.num_classes,
                                   (rn_stem)cli_stem(t), cli_width(t), &r->m);
        if (st == RN_OK)
            st = rn_model_init(r->m, init, (uint64_t)r->seed);
    } else if (r->num_classes > 0) {
        int replaced = 0;
        st = rn_model_load_finetune(init, NULL, r->num_classes, (uint64_t)r->seed, &r->m, &replaced);
        if (st == RN_OK && replaced && r->lead)
            printf("fine-tuning: loaded %s except fc, freshly initialised for %d classes\n", init, r->num_classes);
    } else {
        st = rn_model_load(init, NULL, &r->m);
    }
    if (st != RN_OK) {
        cli_error(r->dist.what, "%s", rn_last_error());
        return EXIT_RUNTIME;
    }
    if (rn_model_is_quantized(r->m)) { /* named here: the trainer's refusal cannot name the file */
        cli_error(r->dist.what, "%s is an int8 model, quantized for inference: training starts from the float32 "
                  "checkpoint it was quantized from", resume ? resume : init);
        return EXIT_RUNTIME;
    }
    /* --stem, --width (and with --resume --num-classes) describe a new model: given with a file's
     * model they must be that model's, not silently dropped (as info and bench refuse them) */
    if (resume || !init_is_fresh(init)) {
        const char *whose = resume ? "the checkpoint --resume continues" : "the model --init loads";
        const arg_spec *stem = args_spec(t, "stem"), *width = args_spec(t, "width");
        const arg_spec *classes = args_spec(t, "num-classes");
        const char *bad = stem->set && cli_stem(t) != (int)rn_model_stem(r->m)         ? "stem"
                          : width->set && cli_width(t) != rn_model_width(r->m)          ? "width"
                          : resume && classes->set && r->num_classes != rn_model_num_classes(r->m) ? "num-classes"
                                                                                         : NULL;
        if (bad) {
            cli_error(r->dist.what, "--%s %s describes another model than %s: drop --%s", bad, args_str(t, bad),
                      whose, bad);
            return EXIT_USAGE;
        }
    }
    if (rn_model_in_channels(r->m) != r->train.channels) {
        cli_error(r->dist.what, "the model takes %d input channels, the dataset has %d", rn_model_in_channels(r->m),
                  r->train.channels);
        return EXIT_RUNTIME;
    }
    /* fewer classes than the dataset names is allowed where its labels stay below them (a subset);
     * a label past them is found now, not at the batch that holds it */
    const rn_dataset *sets[2] = {&r->train, &r->test};
    for (int k = 0; k < 2; k++) {
        int top = -1;
        for (int64_t i = 0; i < sets[k]->count; i++)
            top = sets[k]->labels[i] > top ? sets[k]->labels[i] : top;
        if (top >= rn_model_num_classes(r->m)) {
            cli_error(r->dist.what, "the %s split has label %d, the model only %d classes (0..%d)%s",
                      k ? "test" : "training", top, rn_model_num_classes(r->m),
                      rn_model_num_classes(r->m) - 1,
                      resume || r->num_classes > 0 ? ""
                                                    : ": pass --num-classes N to give it a new classifier of N");
            return EXIT_RUNTIME;
        }
    }
    rn_train_config cfg;
    rn_train_config_default(&cfg);
    cfg.optimizer = args_str(t, "optimizer");
    cfg.lr = atof(args_str(t, "lr"));
    cfg.momentum = atof(args_str(t, "momentum"));
    cfg.nesterov = args_flag(t, "nesterov");
    cfg.weight_decay = atof(args_str(t, "weight-decay"));
    cfg.schedule = args_str(t, "schedule");
    cfg.label_smoothing = (float)atof(args_str(t, "label-smoothing"));
    cfg.freeze_backbone = args_flag(t, "freeze-backbone");
    cfg.conv_algo = args_str(t, "conv-algo");
    cfg.precision = args_str(t, "precision");
    if (strcmp(args_str(t, "lr-backbone"), "same") != 0) {
        if (!cli_number_ok(t, "lr-backbone"))
            return EXIT_USAGE;
        cfg.lr_backbone = atof(args_str(t, "lr-backbone"));
    }
    if (strcmp(args_str(t, "norm-weight-decay"), "same") != 0) /* checked by check_flags */
        cfg.norm_weight_decay = atof(args_str(t, "norm-weight-decay"));
    cfg.clip_grad_norm = atof(args_str(t, "clip-grad-norm")); /* checked by check_flags */
    cfg.ema_decay = atof(args_str(t, "ema"));
    (void)args_int(t, "ema-every", 1, 100000000, &cfg.ema_every); /* checked by check_flags */
    int warmup;
    if (!args_int(t, "warmup", 0, 100000000, &warmup))
        return EXIT_USAGE;
    cfg.warmup_steps = warmup; /* --warmup-epochs' at setup_trainer */
    train_warmup_options(args_str(t, "warmup-epochs"), args_str(t, "warmup-method"), args_str(t, "warmup-factor"),
                         args_str(t, "schedule-by"), &cfg); /* checked by check_flags */
    r->cfg = cfg;
    return fits_in_memory(r, &cfg) ? 0 : EXIT_RUNTIME;
}

/* Creates the trainer; with --resume loads it from `state` (the optimizer
 * state that belongs to the weights). */
static int setup_trainer(train_run *r, const char *resume, const char *state) {
    rn_train_config cfg = r->cfg;
    cfg.steps_per_epoch = rn_loader_steps(r->loader);
    cfg.total_steps = cfg.steps_per_epoch * r->epochs;
    if (r->warmup_epochs > 0)
        cfg.warmup_steps = (int64_t)r->warmup_epochs * cfg.steps_per_epoch;
    if (r->lead && r->warmup_epochs >= r->epochs)
        cli_error(r->dist.what, "warning: --warmup-epochs %d is as long as the run's %d epochs: --schedule never "
                  "starts", r->warmup_epochs, r->epochs);
    else if (r->lead && cfg.warmup_steps > cfg.total_steps)
        cli_error(r->dist.what, "warning: --warmup %lld is longer than the run's %lld steps: the learning rate "
                  "never reaches --lr", (long long)cfg.warmup_steps, (long long)cfg.total_steps);
    if (rn_trainer_create(r->m, &cfg, &r->tr) != RN_OK) {
        cli_error(r->dist.what, "%s", rn_last_error());
        return 0;
    }
    if (resume && rn_trainer_load_state(r->tr, state, NULL, NULL) != RN_OK) {
        cli_error(r->dist.what, "%s", rn_last_error());
        return 0;
    }
    /* --ema: a model of the same shapes, evaluated and saved with the average's weights */
    if (cfg.ema_decay > 0.0 &&
        rn_model_create_width(rn_model_arch(r->m), rn_model_in_channels(r->m), rn_model_num_classes(r->m),
                              rn_model_stem(r->m), rn_model_width(r->m), &r->ema_m) != RN_OK) {
        cli_error(r->dist.what, "%s", rn_last_error());
        return 0;
    }
    if (r->ema_m && r->save[0])
        cli_beside(r->ema_path, sizeof r->ema_path, r->save, ".ema.safetensors");
    return 1;
}

/* The size of the regular file (or link to one) at path; -1 where there is none. */
static long long regular_file_bytes(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? (long long)sb.st_size : -1;
}

/* NULL when the existing file at path is what a run's refusal protects it as (a checkpoint: a
 * safetensors file; a log: JSON lines, text opening with '{'), else what it is ("a text file",
 * "a zip archive", ...): the refusal had called any file a checkpoint or a log. */
static const char *other_kind(const char *path, int log) {
    unsigned char head[4096];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(head, 1, sizeof head, f) : 0;
    if (f)
        fclose(f);
    rn_format fmt = rn_sniff(head, n);
    if (log ? n > 0 && head[0] == '{' : fmt == RN_FMT_SAFETENSORS)
        return NULL;
    return rn_format_name(fmt);
}

/* Whether path is a regular file that starts as resnet's training logs do (the run record). */
static int is_training_log(const char *path) {
    static const char head[] = "{\"run\": ";
    char got[sizeof head] = "";
    struct stat sb;
    FILE *f = stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? fopen(path, "rb") : NULL;
    const size_t n = f ? fread(got, 1, sizeof head - 1, f) : 0;
    if (f)
        fclose(f);
    return n == sizeof head - 1 && memcmp(got, head, n) == 0;
}

/* The log's path (empty: none) from --log: auto is the checkpoint's sibling (save, "" without
 * one), a file only rank 0 (lead) writes. */
static void log_path(const arg_table *t, const char *save, int lead, char *out, size_t cap) {
    const char *log = args_str(t, "log");
    out[0] = 0;
    if (strcmp(log, "auto") == 0 && save[0])
        cli_beside(out, cap, save, ".log.jsonl");
    else if (strcmp(log, "auto") != 0 && strcmp(log, "none") != 0 && lead)
        snprintf(out, cap, "%s", log);
}

/* Where a resumed run starts, and what its flags change (plan_report). */
static void say_resume(const train_run *r, const arg_table *t, const char *resume, const char *state,
                       const rn_train_position *pos) {
    printf("resuming from %s: epoch %lld, %lld images into it, step %lld\n", resume, (long long)pos->epoch + 1,
           (long long)pos->position, (long long)rn_trainer_steps(r->tr));
    if (r->plan.ranks > 0 && r->plan.ranks != r->dist.size)
        printf("the checkpoint was written by a run on %lld rank%s, this one has %d: the global batch, the "
               "data order and the steps stay the same\n", (long long)r->plan.ranks, r->plan.ranks == 1 ? "" : "s",
               r->dist.size);
    plan_report(&r->plan, t, state, rn_trainer_steps(r->tr), pos->epoch, pos->position);
}

int cmd_train(int argc, char **argv) {
    arg_table t = {"train", "Train a model on a dataset; evaluates the test split after every epoch.",
                   SPECS, sizeof SPECS / sizeof SPECS[0]};
    if (recipe_list_asked(argc, argv)) { /* before parsing: it needs no --data */
        recipe_list(stdout);
        return 0;
    }
    int pr = args_parse(&t, argc, argv);
    if (pr)
        return pr > 0 ? 0 : EXIT_USAGE;
    if (!recipe_apply(&t))
        return EXIT_USAGE;
    if (!dist_init(NULL, NULL))
        return EXIT_RUNTIME;
    train_run r = {.t = &t, .started = train_clock_s()};
    r.ck.lock_fd = -1;
    const char *resume = strcmp(args_str(&t, "resume"), "none") ? args_str(&t, "resume") : NULL;
    rn_train_position pos = {0};
    char resume_state[1024] = "", seed_text[32];
    int status = EXIT_USAGE, agreed = 0; /* agreed: every rank fails alike, none need be stopped */
    const char *data = NULL, *kind = NULL;
    cli_made_dirs save_made = {"", ""}; /* the folders made for --save, if any */
    int folder = 0, threads = 0, batch = 0, size = 0, same;
    if (!train_dist_start(&r.dist, &t))
        goto started;
    r.lead = r.dist.rank == 0;
    /* every flag's value first: a bad one is refused before any file is touched or read (with
     * --resume the checkpoint's plan fills the flags not given, and they are checked again) */
    if (!train_check_flags(&r, &batch, &size, &threads, 0))
        goto started;
    status = EXIT_RUNTIME;
    /* a --data that is no folder fails before any output folder is made */
    struct stat data_st;
    const int data_found = stat(args_str(&t, "data"), &data_st) == 0;
    if (!data_found || !S_ISDIR(data_st.st_mode)) {
        cli_error(r.dist.what, "--data %s: %s", args_str(&t, "data"), data_found ? "not a folder" : strerror(errno));
        goto started;
    }

    /* the checkpoint's two files (rank 0 writes them), locked against a second run writing them */
    const char *save = args_str(&t, "save");
    if (strcmp(save, "none") != 0 && r.lead) {
        /* a folder (or a device) found now, not when the first checkpoint is written */
        struct stat save_st;
        const size_t save_len = strlen(save);
        const int save_is_dir = save_len > 0 && save[save_len - 1] == '/';
        if (save_is_dir || (stat(save, &save_st) == 0 && !S_ISREG(save_st.st_mode))) {
            cli_error(r.dist.what, "--save %s: %s", save,
                      save_is_dir || S_ISDIR(save_st.st_mode)
                          ? "is a folder; name the checkpoint file in it (e.g. FOLDER/model.safetensors)"
                          : "is not a regular file");
            status = EXIT_USAGE;
            goto started;
        }
        if (!args_flag(&t, "overwrite") && !(resume && cli_same_file(resume, save)) &&
            regular_file_bytes(save) >= 0) {
            const char *kind = other_kind(save, 0);
            if (kind)
                cli_error(r.dist.what, "--save %s already exists and is %s, not a checkpoint: name another "
                          "file (--overwrite would replace it)", save, kind);
            else
                cli_error(r.dist.what, "%s already holds a checkpoint: pass --resume %s to continue it, or "
                          "--overwrite to start over (replacing it, its optimizer state and its log)", save, save);
            status = EXIT_USAGE;
            goto started;
        }
        snprintf(r.save, sizeof r.save, "%s", save);
        cli_beside(r.optim, sizeof r.optim, save, ".optim.safetensors");
    }
    /* nor a log that --log names, of another run, which opening it would empty (a resumed run's
     * goes on). The checkpoint's own log (--log auto) goes with it: the check above covers it,
     * and where no checkpoint was saved (a run stopped before its first save) it starts over */
    char log_early[sizeof r.log];
    log_path(&t, r.save, r.lead, log_early, sizeof log_early);
    /* --resume's optimizer state (read below), under the name an earlier build may have given it */
    char resume_optim[1024] = "";
    if (resume)
        cli_beside_existing(resume_optim, sizeof resume_optim, resume, ".optim.safetensors");
    /* nor one of the run's other files, which appending to (or trimming) it would ruin */
    if (log_early[0]) {
        const char *init = args_str(&t, "init"), *clash = NULL;
        struct stat log_st;
        if (r.save[0] && cli_same_file(log_early, r.save))
            clash = "the checkpoint --save writes";
        else if (r.save[0] && cli_same_file(log_early, r.optim))
            clash = "the checkpoint's optimizer state";
        else if (resume && cli_same_file(log_early, resume))
            clash = "the checkpoint --resume reads";
        else if (resume && cli_same_file(log_early, resume_optim))
            clash = "the optimizer state --resume reads";
        else if (!init_is_fresh(init) && cli_same_file(log_early, init))
            clash = "the weights --init reads";
        else if (stat(log_early, &log_st) == 0 && S_ISDIR(log_st.st_mode))
            clash = "a folder";
        if (clash) {
            cli_error(r.dist.what, "--log %s is %s: name another file for the log (or --log auto: "
                      "the checkpoint's own)", log_early, clash);
            status = EXIT_USAGE;
            goto started;
        }
    }
    /* --log auto's file beside a checkpoint is refused with the checkpoint (above), and without
     * one it is a stopped run's log, started over; but not a file of another kind */
    const int auto_log = strcmp(args_str(&t, "log"), "auto") == 0;
    const char *log_kind = log_early[0] && regular_file_bytes(log_early) > 0 ? other_kind(log_early, 1) : NULL;
    if (log_early[0] && (!auto_log || log_kind) && !resume && !args_flag(&t, "overwrite") &&
        regular_file_bytes(log_early) > 0) {
        if (log_kind)
            cli_error(r.dist.what, "%s%s%s already exists and is %s, not a training log: name another --log "
                      "(--overwrite would replace it)", auto_log ? "" : "--log ", log_early,
                      auto_log ? " (the log beside the checkpoint)" : "", log_kind);
        else
            cli_error(r.dist.what, "%s already holds a training log: pass --overwrite to replace it, --resume to "
                      "continue its run, or another --log", log_early);
        status = EXIT_USAGE;
        goto started;
    }
    if (r.save[0]) { /* its folder, once the flags are known to be right */
        rn_status made = cli_make_output_dirs_quietly(r.save, &save_made);
        if (made != RN_OK) {
            status = cli_write_failed("train", made);
            goto started;
        }
    }
    if ((status = train_ckpt_open(&r.ck, r.save[0] ? r.save : NULL, r.optim)) != 0)
        goto started;
    status = EXIT_RUNTIME;
    if (resume) {
        /* the optimizer state that belongs to the weights (its run id and step); the checkpoint's
         * plan, for every flag not given; its seed, which the data order follows */
        if (!train_ckpt_find(resume, resume_optim, resume_state, sizeof resume_state, &pos, r.lead))
            goto started;
        if (plan_read(&r.plan, resume_state) != RN_OK) {
            cli_error(r.dist.what, "%s", rn_last_error());
            goto started;
        }
        plan_apply(&r.plan, &t);
        /* the run's --log FILE goes on only with its checkpoint: a resume saved elsewhere (a fork
         * of the run) starts its own log beside its --save (it had cut the run's log back to its
         * step and taken it over) */
        if (!args_spec(&t, "log")->set && !(r.save[0] && cli_same_file(resume, r.save)))
            args_default_to(&t, "log", "auto");
        /* a path from a checkpoint's metadata is written to only where it holds a training log
         * already: a checkpoint from elsewhere cannot point the run at another file */
        const char *planned_log = args_str(&t, "log");
        if (!args_spec(&t, "log")->set && strcmp(planned_log, "auto") != 0 && strcmp(planned_log, "none") != 0 &&
            !is_training_log(planned_log)) {
            if (r.lead)
                printf("note: %s, the --log its run recorded, is not there as a training log: this run logs "
                       "beside its checkpoint (--log auto)\n", planned_log);
            args_default_to(&t, "log", "auto");
        }
        const char *optimizer = plan_value(&r.plan, "optimizer");
        if (optimizer && strcmp(optimizer, args_str(&t, "optimizer")) != 0) {
            cli_error(r.dist.what, "--optimizer %s: %s holds %s's state, which another optimizer cannot go on "
                      "from: drop --optimizer, or start a new run from its weights with --init %s",
                      args_str(&t, "optimizer"), resume_state, optimizer, resume);
            status = EXIT_USAGE;
            goto started;
        }
        r.elapsed_before = r.plan.elapsed; /* the log's "elapsed" goes on */
        snprintf(seed_text, sizeof seed_text, "%lld", (long long)pos.seed);
        args_default_to(&t, "seed", seed_text);
        snprintf(r.ck.run_id, sizeof r.ck.run_id, "%s", pos.id.run_id); /* the same run goes on */
        r.ck.committed = r.save[0] && strcmp(resume, r.save) == 0 ? pos.id.step : -1;
        if (r.ck.committed >= 0) /* ours, under the lock: what killed saves left goes */
            rn_checkpoint_tidy(r.save, r.optim);
    }
    status = EXIT_USAGE;
    if (!train_check_flags(&r, &batch, &size, &threads, 1))
        goto started;
    rn_set_threads(threads);
    if (r.lead && args_flag(&t, "freeze-backbone") && !resume && init_is_fresh(args_str(&t, "init")))
        cli_error(r.dist.what, "warning: --freeze-backbone keeps the backbone as initialised (--init "
                  "%s): only fc learns, on the features of random weights; give --init FILE to "
                  "start from trained ones", args_str(&t, "init"));
    r.quiet = args_flag(&t, "quiet") || !r.lead;
    r.tty = isatty(2);
    data = args_str(&t, "data"), kind = args_str(&t, "dataset");
    folder = rn_dataset_kind_is_folder(kind);
    status = EXIT_RUNTIME;
    if (rn_dataset_load(data, kind, 1, &r.train) != RN_OK || rn_dataset_load(data, kind, 0, &r.test) != RN_OK) {
        cli_error(r.dist.what, "%s", rn_last_error());
        goto started;
    }
    /* in-memory splits go to the network at their own size unless --image-size resizes them: a
     * test split of another shape had been evaluated at it without a word */
    if (!folder && (r.test.channels != r.train.channels ||
                    (!r.lcfg.image_size && !r.val_size &&
                     (r.test.height != r.train.height || r.test.width != r.train.width)))) {
        cli_error(r.dist.what, "%s: the test split's images are %dx%dx%d, the training split's %dx%dx%d%s", data,
                  r.test.channels, r.test.height, r.test.width, r.train.channels, r.train.height, r.train.width,
                  r.test.channels != r.train.channels ? "" : " (--image-size resizes both to one size, "
                  "--val-image-size the test split)");
        goto started;
    }
    if (strcmp(args_str(&t, "normalize"), "auto") == 0 &&
        rn_dataset_default_normalize(&r.train, r.lcfg.mean, r.lcfg.std)) {
        r.lcfg.normalize = 1;
        cli_format_normalize(&r.lcfg, r.train.channels, r.norm_text, sizeof r.norm_text);
    }
    if (!cli_normalize_fits(&t, r.train.channels, &r.lcfg)) {
        status = EXIT_USAGE;
        goto started;
    }
    if (strcmp(args_str(&t, "normalize"), "imagenet") == 0) /* the values for these images' channels */
        cli_format_normalize(&r.lcfg, r.train.channels, r.norm_text, sizeof r.norm_text);
    if (r.lcfg.normalize && r.train.channels > 4) {
        cli_error(r.dist.what, "--normalize supports up to 4 channels");
        goto started;
    }
    if ((status = setup_model(&r, resume)) != 0)
        goto started;
    status = EXIT_RUNTIME;
    if (rn_loader_create(&r.train, &r.lcfg, &r.loader) != RN_OK) {
        cli_error(r.dist.what, "%s", rn_last_error());
        goto started;
    }
    if (resume && pos.position > rn_loader_epoch_positions(r.loader)) {
        /* --ra-sampler given at the resume (or another number of ranks under it) cuts the epoch short
         * of where the checkpoint stands */
        cli_error(r.dist.what, "%s stands %lld images into epoch %lld, past the %d this run's epochs hold "
                  "(--ra-sampler cuts an epoch to (images / 256) x 256, a multiple of the ranks): resume it "
                  "as it ran, or from a checkpoint saved at an epoch's end", resume, (long long)pos.position,
                  (long long)pos.epoch + 1, rn_loader_epoch_positions(r.loader));
        status = EXIT_USAGE;
        goto started;
    }
    r.cfg.schedule_offset = resume ? plan_schedule_offset(&r.plan, &pos, rn_loader_steps(r.loader), batch,
                                                          rn_loader_epoch_positions(r.loader))
                                   : 0;
    plan_record(&r.plan, &t, rn_loader_steps(r.loader), r.cfg.schedule_offset);
    if (!setup_trainer(&r, resume, resume_state))
        goto started;
    status = 0;
started:
    /* every rank here, set up or not: none starts unless all can, and all agree */
    same = train_dist_check(&r.dist, status == 0, &t, &r.train, &r.test, r.m, r.tr ? rn_trainer_steps(r.tr) : 0);
    if (same != 1) {
        status = status ? status : same == 0 ? EXIT_USAGE : EXIT_RUNTIME, agreed = 1;
        goto done;
    }
    if (r.lead) /* said once the run goes on (a refused one takes its folder away) */
        cli_made_dirs_say("train", r.save, &save_made);
    if (!train_dist_attach(&r.dist, &t, r.m, r.tr)) {
        status = EXIT_RUNTIME;
        goto done;
    }

    if (resume && pos.epoch >= r.epochs) { /* said before the log or the report is touched */
        if (r.lead)
            say_resume(&r, &t, resume, resume_state, &pos);
        goto done;
    }
    /* a run --overwrite starts over takes the old one's report away at its first save (with
     * --no-report it had stayed beside the new checkpoint, the old run's figures under its name) */
    if (r.lead && r.save[0] && !resume && args_flag(&t, "overwrite"))
        cli_report_dir(r.save, r.old_report, sizeof r.old_report);
    /* outputs, rank 0's: the log goes on from the checkpoint's step when resuming */
    log_path(&t, r.save, r.lead, r.log, sizeof r.log);
    if (r.log[0]) {
        rn_status made = cli_make_output_dirs("train", r.log);
        if (made != RN_OK) {
            status = cli_write_failed("train", made);
            goto done;
        }
        if (r.save[0])
            cli_beside(r.svg, sizeof r.svg, r.save, ".svg");
        else
            cli_log_beside(r.svg, sizeof r.svg, r.log, ".svg");
        if (resume && !train_log_trim(r.log, pos.id.step)) {
            status = EXIT_RUNTIME;
            goto done;
        }
        struct stat old_log;
        if (!resume && r.save[0] && stat(r.log, &old_log) == 0 && S_ISREG(old_log.st_mode)) {
            /* a log there already (--overwrite's, or one whose run stopped before its first save):
             * the new one is written beside it and takes its place at the first save, so that a
             * run stopped before then leaves the old checkpoint with its own log (it had been
             * emptied at the start) */
            rn_wfile w;
            if (rn_wfile_open(&w, r.log) != RN_OK) {
                cli_error(r.dist.what, "cannot write the log: %s", rn_last_error());
                status = EXIT_WRITE;
                goto done;
            }
            const int fits = strlen(w.path) < sizeof r.log_final && strlen(w.tmp) < sizeof r.log;
            if (fits) {
                snprintf(r.log_final, sizeof r.log_final, "%s", w.path);
                snprintf(r.log, sizeof r.log, "%s", w.tmp);
                r.logf = w.f;
            } else {
                fclose(w.f);
                unlink(w.tmp);
            }
            free(w.path), free(w.tmp);
            if (!fits) {
                cli_error(r.dist.what, "%s: the log's path is too long", r.log);
                status = EXIT_USAGE;
                goto done;
            }
        } else {
            r.logf = fopen(r.log, resume ? "a" : "w");
        }
        if (!r.logf) {
            cli_error(r.dist.what, "cannot write the log %s: %s", r.log, strerror(errno));
            status = EXIT_WRITE;
            goto done;
        }
        run_facts facts = {r.m, &r.train, &r.test, kind, data, r.norm_text, resume,
                           size ? size : r.train.height, batch, rn_loader_steps(r.loader), r.epochs, r.seed};
        if (!cli_write_run_record(r.logf, &t, argc, argv, &facts))
            cli_error(r.dist.what, "warning: could not write the run record to %s", r.log);
    }

    if (r.lead) {
        char width[32] = "";
        if (rn_model_width(r.m) != RN_DEFAULT_WIDTH)
            snprintf(width, sizeof width, " width %d", rn_model_width(r.m));
        char val[96] = ""; /* --val-image-size, --val-resize-size */
        const int side = size ? size : r.train.height, vside = train_eval_side(&r);
        if (r.val_resize)
            snprintf(val, sizeof val, " (evaluated at %dx%d after resizing to %d)", vside, vside, r.val_resize);
        else if (vside != side)
            snprintf(val, sizeof val, " (evaluated at %dx%d)", vside, vside);
        char reps[64] = "";
        if (r.lcfg.repeat_aug > 1)
            snprintf(reps, sizeof reps, " (--ra-sampler: each image %d times in a row)", r.lcfg.repeat_aug);
        printf("training %s%s (%lld parameters) on %s: %d training / %d test images of %dx%dx%d%s, "
               "batch %d, %d steps per epoch%s, %d threads\n",
               rn_model_arch(r.m), width, (long long)rn_model_param_count(r.m), kind, r.train.count, r.test.count,
               r.train.channels, side, size ? size : r.train.width, val, batch, rn_loader_steps(r.loader), reps,
               rn_get_threads());
        if (strcmp(rn_trainer_precision(r.tr), "bf16") == 0)
            printf("mixed precision: the convolutions' and classifier's GEMM products on bf16 "
                   "operands (%s kernels) with fp32 sums, the direct convolution's on bf16 pairs, "
                   "Winograd's forward on fp32 products (its data gradient on bf16 ones); weights, "
                   "optimizer state and BatchNorm in fp32\n",
                   rn_trainer_isa(r.tr));
        if (r.dist.size > 1)
            printf("data parallel over %d ranks (%s): %d images of each batch and %d threads per rank; "
                   "BatchNorm over %s; %s reduction\n",
                   r.dist.size, dist_library(), batch / r.dist.size, rn_get_threads(),
                   r.dist.sync_bn ? "the global batch (--sync-bn)" : "each rank's share, running statistics rank 0's",
                   args_flag(&t, "deterministic") ? "fixed-order (--deterministic)" : "MPI all-reduce");
    }
    char recipe[512];
    recipe_describe(&t, resume ? &r.plan : NULL, recipe, sizeof recipe);
    if (recipe[0] && r.lead)
        printf("recipe %s:%s\n", args_str(&t, "recipe"), recipe);
    if (resume && r.lead)
        say_resume(&r, &t, resume, resume_state, &pos);
    fflush(stdout);
    /* one process: a signal ends the step and saves; under MPI the ranks would notice it at
     * different steps, so the launcher's signal ends the job and the last checkpoint stays */
    if (r.dist.size == 1)
        interrupt_install(r.save[0] != 0);
    status = train_loop(&r, pos.epoch, pos.position);
    /* under MPI, rank 0 saves the checkpoint of such a stop: the other ranks, which end with it,
     * must not abort the job under it (they had: no checkpoint was left) */
    agreed |= r.stopped_together;
    if (r.dist.size == 1)
        interrupt_restore();
    if (status == 0 && r.lead)
        train_dist_summary(&r.dist, stdout);
    if (status == 0 && r.save[0])
        printf("checkpoint: %s\noptimizer state: %s\n", r.save, r.optim);
    if (status == 0 && r.ema_path[0])
        printf("moving average of the weights (--ema): %s\n", r.ema_path);
    if (status == 0 && r.log[0])
        printf("log: %s\n", r.log);
    if (status == 0 && r.curves)
        printf("curves: %s\n", r.svg);
    if (status == 0 && r.save[0] && !args_flag(&t, "no-report")) {
        char dir[1100];
        cli_report_dir(r.save, dir, sizeof dir);
        rn_loader_config rcfg = train_eval_loader(&r);
        rcfg.shards = rcfg.shard = 0;
        rcfg.batch_size /= r.dist.size; /* this rank's share, as planned */
        cli_report_args a = {.command = "train", .model = r.m, .ds = &r.test, .loader = &rcfg,
                             .weights = r.save, .log = r.log[0] ? r.log : NULL, .output_dir = dir,
                             .data_dir = data, .dataset_kind = kind, .split = folder ? "val" : "test",
                             .png = 1, .quiet = r.quiet};
        fflush(stdout);
        cli_report(&a);   /* a report that fails leaves the trained checkpoint good: a warning */
    }
done:
    if (r.logf)
        fclose(r.logf);
    if (r.log_final[0]) /* no save took the new log to its place: the old one stays */
        unlink(r.log);
    train_ckpt_close(&r.ck);
    if (status != 0) /* a run refused after its folder was made leaves none */
        cli_unmake_output_dirs(r.save, &save_made);
    rn_loader_free(r.loader);
    rn_trainer_free(r.tr);
    rn_model_free(r.ema_m);
    rn_model_free(r.m);
    rn_dataset_free(&r.train);
    rn_dataset_free(&r.test);
    plan_free(&r.plan);
    train_dist_free(&r.dist);
    if (status != 0 && dist_size() > 1 && !agreed)
        dist_abort(status); /* the other ranks may be waiting for this one */
    dist_finalize();
    return status;
}
