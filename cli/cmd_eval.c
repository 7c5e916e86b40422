/* cmd_eval.c - `resnet eval`: loss, top-1, top-5, per-class accuracy and the confusion matrix;
 * and, asked for, every image's features and label as .npy files (a linear probe's inputs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "fit.h"
#include "commands.h"
#include "core/status.h"
#include "data/dataset.h"
#include "io/npy.h"
#include "resnet.h"
#include "run_common.h"

static arg_spec SPECS[] = {
    {"weights", ARG_STRING, NULL, "checkpoint or weights file: safetensors, PyTorch .pth or ONNX (the architecture comes from it)", 0, 0},
    {"arch", ARG_STRING, "auto", "architecture; auto: from the file", 0, 0},
    {"data", ARG_STRING, NULL, "dataset directory", 0, 0},
    {"dataset", ARG_STRING, "auto", "fashion-mnist, mnist, cifar10, folder or folder-gray; auto: from the checkpoint", 0, 0},
    {"split", ARG_STRING, "test", "test (an image folder's val), val (image folders only) or train", 0, 0},
    {"classes", ARG_STRING, "names", "an image folder's labels: names (its class folders matched to the checkpoint's class names, where it has them) or position (the folders in sorted order as the model's classes 0, 1, ...)", 0, 0},
    {"batch-size", ARG_INT, "256", "images per batch", 0, 0},
    {"image-size", ARG_INT, "-1", "resize to this size (image folders: the centre crop's side); -1: from the "
     "checkpoint; 0: the dataset's own", 0, 0},
    CLI_RESIZE_SIZE_SPEC,
    {"normalize", ARG_STRING, "auto", "none, imagenet, MEAN,..:STD,.., or auto (from the checkpoint)", 0, 0},
    {"threads", ARG_INT, "0", "threads to use; 0: all cores", 0, 0},
    CLI_CONV_ALGO_SPEC,
    CLI_PRECISION_SPEC,
    CLI_TTA_SPEC,
    {"features", ARG_STRING, "none", ".npy file to write every image's (N, D) float32 features to, in the "
     "split's order: what the classifier reads, the global average pool of the last stage (D 512 for "
     "resnet18/34, 2048 for resnet50 and deeper; with --tta flip the mean of both views'), or with "
     "--feature-layer a stage's maps; for a linear probe, embeddings or image search; none: not written", 0, 0},
    CLI_FEATURE_LAYER_SPEC,
    {"feature-labels", ARG_STRING, "none", ".npy file to write the images' (N,) int64 labels to, in the same "
     "order; none: not written", 0, 0},
    {"json", ARG_FLAG, NULL, "print one JSON object", 0, 0},
    {"quiet", ARG_FLAG, NULL, "no progress line (shown on stderr when it is a terminal)", 0, 0},
};

/* --features and --feature-labels: written a batch at a time as the evaluation goes */
typedef struct eval_outputs {
    rn_npy_writer feats, labels;
    int want_feats, want_labels;
    int stage;              /* --feature-layer's (RN_STAGE_POOL: the batch's own features) */
    cli_features fp;        /* an image's features or maps */
    rn_session *maps;       /* a stage's maps: run on the batch in a session of their own */
    float *buf;             /* (batch, fp.per_image) */
    rn_status write_st;     /* a write that failed (exit 3), else RN_OK */
} eval_outputs;

static rn_status write_batch(void *ctx, const rn_eval_batch *b) {
    eval_outputs *o = ctx;
    if (o->want_feats && o->stage != RN_STAGE_POOL)
        RN_TRY(rn_session_forward_stage(o->maps, b->x, b->n, b->height, b->width, RN_MODE_EVAL,
                                        o->stage, o->buf));
    rn_status st = RN_OK;
    if (o->want_feats)
        st = rn_npy_writer_f32(&o->feats, o->stage != RN_STAGE_POOL ? o->buf : b->features,
                               (size_t)b->n * o->fp.per_image);
    if (st == RN_OK && o->want_labels)
        st = rn_npy_writer_i32(&o->labels, b->labels, (size_t)b->n);
    o->write_st = st;
    return st;
}

/* The output files' paths: each a file (not a folder), not the weights, not a file of the
 * dataset's folder, not the other. */
static int outputs_ok(const arg_table *t) {
    const char *f = args_str(t, "features"), *l = args_str(t, "feature-labels");
    const char *w = args_str(t, "weights"), *data = args_str(t, "data");
    const int wf = strcmp(f, "none") != 0, wl = strcmp(l, "none") != 0;
    return (!wf || (cli_path_ok(t, "features") && cli_output_file_ok("eval", "--features", f) &&
                    cli_output_not_input("eval", "--features", f, "--weights", w) &&
                    cli_output_not_in_folder("eval", "--features", f, "--data", data))) &&
           (!wl || (cli_path_ok(t, "feature-labels") &&
                    cli_output_file_ok("eval", "--feature-labels", l) &&
                    cli_output_not_input("eval", "--feature-labels", l, "--weights", w) &&
                    cli_output_not_in_folder("eval", "--feature-labels", l, "--data", data))) &&
           (!wf || !wl || cli_output_not_input("eval", "--feature-labels", l, "--features", f));
}

/* Opens the writers for n images of o->fp's features (folders made as needed). */
static rn_status open_outputs(const arg_table *t, eval_outputs *o, int64_t n) {
    const char *f = args_str(t, "features"), *l = args_str(t, "feature-labels");
    const int64_t fshape[4] = {n, o->fp.shape[0], o->fp.shape[1], o->fp.shape[2]}, lshape[1] = {n};
    if (o->want_feats) {
        RN_TRY(cli_make_output_dirs("eval", f));
        RN_TRY(rn_npy_writer_open(&o->feats, f, RN_NPY_F32, o->fp.ndim, fshape));
    }
    if (o->want_labels) {
        rn_status st = cli_make_output_dirs("eval", l);
        if (st == RN_OK)
            st = rn_npy_writer_open(&o->labels, l, RN_NPY_I64, 1, lshape);
        if (st != RN_OK) {
            rn_npy_writer_discard(&o->feats);
            return st;
        }
    }
    return RN_OK;
}

static void progress(void *ctx, int64_t done, int64_t total) {
    (void)ctx;
    fprintf(stderr, "\r  evaluating %lld/%lld   ", (long long)done, (long long)total);
}

/* Rows: the dataset's classes (its labels); columns: the model's (ev->num_classes, as many or
 * more: a model of more classes than the dataset, or a folder labelled by position, predicts
 * classes no image is labelled with). The text shows the dataset's columns and, where the model
 * has more, one "other" column for the predictions past them. */
static void print_report(const rn_eval_result *ev, const rn_dataset *ds, int json) {
    const int K = ds->num_classes, P = ev->num_classes;
    if (json) {
        char loss[32]; /* NaN logits: null, as JSON has it */
        printf("{\"count\": %lld, \"loss\": %s, \"top1\": %.6f, \"top5\": %.6f, \"per_class\": [",
               (long long)ev->count, cli_json_number(loss, sizeof loss, "%.6f", ev->loss),
               (double)ev->top1 / ev->count, (double)ev->top5 / ev->count);
        for (int c = 0; c < K; c++) {
            int64_t total = 0;
            for (int p = 0; p < ev->num_classes; p++)
                total += ev->confusion[(size_t)c * ev->num_classes + p];
            printf("%s%.6f", c ? ", " : "", total ? (double)ev->confusion[(size_t)c * ev->num_classes + c] / total : 0.0);
        }
        printf("], \"confusion\": [");
        for (int c = 0; c < K; c++) {
            printf("%s[", c ? ", " : "");
            for (int p = 0; p < P; p++)
                printf("%s%lld", p ? ", " : "", (long long)ev->confusion[(size_t)c * ev->num_classes + p]);
            printf("]");
        }
        printf("]}\n");
        return;
    }
    printf("images: %lld\nloss:   %.4f\ntop-1:  %.4f\ntop-5:  %.4f\n\nper-class accuracy:\n", (long long)ev->count,
           ev->loss, (double)ev->top1 / ev->count, (double)ev->top5 / ev->count);
    for (int c = 0; c < K; c++) {
        int64_t total = 0;
        for (int p = 0; p < ev->num_classes; p++)
            total += ev->confusion[(size_t)c * ev->num_classes + p];
        printf("  %2d %-14s %.4f  (%lld images)\n", c, ds->class_names ? ds->class_names[c] : "",
               total ? (double)ev->confusion[(size_t)c * ev->num_classes + c] / total : 0.0, (long long)total);
    }
    printf("\nconfusion matrix (rows: label, columns: predicted):\n     ");
    for (int p = 0; p < K; p++)
        printf("%6d", p);
    printf(P > K ? "  other\n" : "\n");
    for (int c = 0; c < K; c++) {
        printf("  %2d ", c);
        int64_t other = 0;
        for (int p = 0; p < P; p++)
            if (p < K)
                printf("%6lld", (long long)ev->confusion[(size_t)c * ev->num_classes + p]);
            else
                other += ev->confusion[(size_t)c * ev->num_classes + p];
        if (P > K)
            printf("%7lld", (long long)other);
        printf("\n");
    }
}

int cmd_eval(int argc, char **argv) {
    arg_table t = {"eval", "Evaluate a checkpoint on a dataset split.", SPECS, sizeof SPECS / sizeof SPECS[0]};
    int pr = args_parse(&t, argc, argv);
    if (pr)
        return pr > 0 ? 0 : EXIT_USAGE;
    int threads;
    if (!args_int(&t, "threads", 0, 1024, &threads))
        return EXIT_USAGE;
    const char *split = args_str(&t, "split");
    if (!cli_eval_flags_ok(&t) || !outputs_ok(&t) || !cli_feature_layer_ok(&t))
        return EXIT_USAGE;
    rn_set_threads(threads);
    eval_outputs out = {.want_feats = strcmp(args_str(&t, "features"), "none") != 0,
                        .want_labels = strcmp(args_str(&t, "feature-labels"), "none") != 0,
                        .stage = RN_STAGE_POOL};
    const int each = out.want_feats || out.want_labels;
    const char *weights = args_str(&t, "weights");

    /* the checkpoint, read once: its weights and the metadata the flags default to */
    cli_ckpt_meta meta;
    cli_ckpt_meta_init(&meta);
    rn_model *m = NULL;
    rn_dataset ds = {0};
    rn_eval_result ev = {0};
    int status = EXIT_RUNTIME;
    const char *arch = strcmp(args_str(&t, "arch"), "auto") ? args_str(&t, "arch") : NULL;
    if (rn_model_load_meta(weights, arch, cli_ckpt_meta_take, &meta, &m) != RN_OK) {
        cli_error("eval", "%s", rn_last_error());
        goto done;
    }
    char kind[64];
    rn_loader_config cfg;
    if (!cli_eval_config(&t, weights, &meta, kind, sizeof kind, &cfg) || !cli_parse_tta(&t, &cfg)) {
        status = EXIT_USAGE;
        goto done;
    }
    const int train_split = cli_eval_split(&t, weights, kind, &status);
    if (train_split < 0)
        goto done;
    if (out.want_feats && (out.stage = cli_feature_layer(&t, m)) < 0) {
        status = EXIT_USAGE;
        goto done;
    }
    if (out.stage != RN_STAGE_POOL && cfg.tta_flip) {
        cli_error("eval", "--feature-layer %s with --tta flip: the maps of an image and of its mirror "
                  "do not average (take --feature-layer pool, or no --tta)",
                  args_str(&t, "feature-layer"));
        status = EXIT_USAGE;
        goto done;
    }
    status = EXIT_RUNTIME;
    rn_session_config scfg;
    cli_session_config(&t, &scfg);
    if (rn_dataset_load(args_str(&t, "data"), kind, train_split, &ds) != RN_OK) {
        cli_error("eval", "%s", rn_last_error());
        goto done;
    }
    if (!cli_normalize_fits(&t, ds.channels, &cfg)) {
        status = EXIT_USAGE;
        goto done;
    }
    if (!cli_match_classes(&t, weights, kind, m, &ds))
        goto done;
    int side = cfg.image_size ? cfg.image_size : ds.height, wide = cfg.image_size ? cfg.image_size : ds.width;
    if (each && !cli_features_shape("eval", m, out.stage, side, wide, &out.fp))
        goto done;
    size_t per_image = ((size_t)ds.channels * side * wide + 2 * (size_t)rn_model_num_classes(m) +
                        (each ? out.fp.per_image : 0)) * sizeof(float);
    /* the loader's batch and ours; with --tta flip, the mirrored batch and its logits too; a
     * stage's maps come from a second session */
    cli_plan plan = {.command = "eval", .m = m, .scfg = &scfg, .session = out.stage != RN_STAGE_POOL ? 2 : 1,
                     .batch = cfg.batch_size, .h = side, .w = wide,
                     .per_image = (cfg.tta_flip ? 3 : 2) * per_image, .weights = weights};
    if (side > 0 && wide > 0 && !cli_plan_fits(&plan))
        goto done;
    if (each && ds.count == 0) {
        cli_error("eval", "the %s split is empty", split);
        goto done;
    }
    if (out.stage != RN_STAGE_POOL) {
        out.buf = malloc((size_t)cfg.batch_size * out.fp.per_image * sizeof *out.buf);
        if (!out.buf || rn_session_create(m, &scfg, &out.maps) != RN_OK) {
            cli_error("eval", "%s", out.buf ? rn_last_error() : "out of memory for the maps");
            goto done;
        }
    }
    if (each) {
        rn_status ost = open_outputs(&t, &out, ds.count);
        if (ost != RN_OK) {
            status = cli_write_failed("eval", ost);
            goto done;
        }
    }
    const int show = !args_flag(&t, "quiet") && isatty(2);
    rn_status st = rn_evaluate_config(m, &scfg, &ds, &cfg, show ? progress : NULL, NULL,
                                      each ? write_batch : NULL, &out, &ev);
    if (show)
        fprintf(stderr, "\r%*s\r", 60, "");
    if (st != RN_OK && out.write_st != RN_OK) {
        status = cli_write_failed("eval", out.write_st);
        goto done;
    }
    if (st != RN_OK) {
        cli_error("eval", "%s", rn_last_error());
        goto done;
    }
    if (ev.count == 0) {
        cli_error("eval", "the %s split is empty", split);
        goto done;
    }
    /* the report is printed before the files are renamed into place: a failed write says so
     * after it (exit 3) */
    print_report(&ev, &ds, args_flag(&t, "json"));
    fflush(stdout);
    rn_status wst = out.want_feats ? rn_npy_writer_commit(&out.feats) : RN_OK;
    if (wst == RN_OK && out.want_labels)
        wst = rn_npy_writer_commit(&out.labels);
    if (wst != RN_OK) {
        status = cli_write_failed("eval", wst);
        goto done;
    }
    status = 0;
done:
    rn_npy_writer_discard(&out.feats);
    rn_npy_writer_discard(&out.labels);
    rn_session_free(out.maps);
    free(out.buf);
    rn_eval_result_free(&ev);
    rn_dataset_free(&ds);
    rn_model_free(m);
    return status;
}
