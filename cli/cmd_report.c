/*
 * cmd_report.c - `resnet report`: the training report of a checkpoint (an
 * HTML page with its figures as SVG and PNG files, see src/report/report.h),
 * and cli_report, which `resnet train` calls when it is done.
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
#include "report/report.h"
#include "run_common.h"

static arg_spec SPECS[] = {
    {"weights", ARG_STRING, NULL, "checkpoint (.safetensors) to report on", 0, 0},
    {"data", ARG_STRING, NULL, "dataset directory", 0, 0},
    {"dataset", ARG_STRING, "auto", "fashion-mnist, mnist, cifar10, folder or folder-gray; auto: from the checkpoint", 0, 0},
    {"split", ARG_STRING, "test", "test (an image folder's val), val (image folders only) or train", 0, 0},
    {"classes", ARG_STRING, "names", "an image folder's labels: names (its class folders matched to the checkpoint's class names, where it has them) or position (the folders in sorted order as the model's classes 0, 1, ...)", 0, 0},
    {"log", ARG_STRING, "auto", "training log (JSON lines); auto: the checkpoint's (CKPT.log.jsonl, or the --log FILE its run recorded), if it exists; none: no curves; "
     "a log named must exist", 0, 0},
    {"output", ARG_STRING, "auto", "folder for report.html and the figures; auto: next to the checkpoint, named after it + _report", 0, 0},
    {"grid", ARG_INT, "24", "images in each image grid (most confidently wrong, correct)", 0, 0},
    {"png-scale", ARG_STRING, "2", "pixels per SVG unit of the PNG figures (0.5 to 4)", 0, 0},
    {"no-png", ARG_FLAG, NULL, "write the figures as SVG only", 0, 0},
    {"batch-size", ARG_INT, "256", "images per batch", 0, 0},
    {"image-size", ARG_INT, "-1", "resize to this size (image folders: the centre crop's side); -1: from the "
     "checkpoint; 0: the dataset's own", 0, 0},
    CLI_RESIZE_SIZE_SPEC,
    {"normalize", ARG_STRING, "auto", "none, imagenet, MEAN,..:STD,.., or auto (from the checkpoint)", 0, 0},
    {"threads", ARG_INT, "0", "threads to use; 0: all cores", 0, 0},
    {"quiet", ARG_FLAG, NULL, "no progress line", 0, 0},
};

void cli_report_dir(const char *weights, char *out, size_t cap) {
    cli_beside(out, cap, weights, "_report");
}

static void progress(void *ctx, int64_t done, int64_t total) {
    (void)ctx;
    fprintf(stderr, "\r  report: evaluating %lld/%lld   ", (long long)done, (long long)total);
}

int cli_report(const cli_report_args *a) {
    rn_report_config cfg = {
        .output_dir = a->output_dir,
        .weights_path = a->weights,
        .log_path = a->log,
        .data_dir = a->data_dir,
        .dataset_kind = a->dataset_kind,
        .split = a->split,
        .loader = *a->loader,
        .grid = a->grid,
        .png = a->png,
        .png_scale = a->png_scale,
    };
    int show = !a->quiet && isatty(2);
    rn_report_summary sum;
    rn_status st = rn_report_write(a->model, a->ds, &cfg, show ? progress : NULL, NULL, &sum);
    if (show)
        fprintf(stderr, "\r%*s\r", 60, "");
    if (st != RN_OK) {
        cli_error(a->command, "could not write the report: %s", rn_last_error());
        return st == RN_ERR_IO ? EXIT_WRITE : EXIT_RUNTIME;
    }
    if (sum.warning[0])
        cli_error(a->command, "warning: the report has no curves: %s", sum.warning);
    printf("report: %s (%lld images, top-1 %.4f; %d figure files beside it)\n", sum.html,
           (long long)sum.images, sum.top1, sum.figures);
    return 0;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int cmd_report(int argc, char **argv) {
    arg_table t = {"report",
                   "Write a checkpoint's training report: an HTML page (curves, confusion matrix, "
                   "per-class results, image grids, the run's facts) and its figures as SVG/PNG.",
                   SPECS, sizeof SPECS / sizeof SPECS[0]};
    int pr = args_parse(&t, argc, argv);
    if (pr)
        return pr > 0 ? 0 : EXIT_USAGE;
    int threads, grid;
    if (!args_int(&t, "threads", 0, 1024, &threads) || !args_int(&t, "grid", 1, 200, &grid) ||
        !cli_number_ok(&t, "png-scale"))
        return EXIT_USAGE;
    double png_scale = atof(args_str(&t, "png-scale"));
    if (png_scale < 0.5 || png_scale > 4) {
        cli_error("report", "--png-scale must be between 0.5 and 4, got %s", args_str(&t, "png-scale"));
        return EXIT_USAGE;
    }
    if (args_flag(&t, "no-png") && args_spec(&t, "png-scale")->set) {
        cli_error("report", "--png-scale sizes the PNG figures, which --no-png leaves out: give one of them");
        return EXIT_USAGE;
    }
    const char *split = args_str(&t, "split");
    if (!cli_eval_flags_ok(&t) || !cli_path_ok(&t, "output") || !cli_path_ok(&t, "log"))
        return EXIT_USAGE;
    const char *weights = args_str(&t, "weights");
    rn_set_threads(threads);

    char log[1100] = "", out[1100];
    const char *log_flag = args_str(&t, "log");
    if (strcmp(log_flag, "auto") == 0) {
        cli_beside_existing(log, sizeof log, weights, ".log.jsonl");
        /* else the --log FILE its run trained with, as its optimizer state's plan records it (the
         * report of such a run had had no curves) */
        char optim[1100], planned[1024];
        cli_beside(optim, sizeof optim, weights, ".optim.safetensors");
        if (!file_exists(log) && file_exists(optim) &&
            rn_weights_meta(optim, "plan.log", planned, sizeof planned) == RN_OK &&
            strcmp(planned, "auto") != 0 && strcmp(planned, "none") != 0 && file_exists(planned))
            snprintf(log, sizeof log, "%s", planned);
        if (!file_exists(log))
            log[0] = '\0';
    } else if (strcmp(log_flag, "none") != 0) {
        /* a log named is one to draw: a missing one is an error (as in plot), before anything is made */
        snprintf(log, sizeof log, "%s", log_flag);
        if (!cli_readable("report", "--log ", log))
            return EXIT_RUNTIME;
    }
    if (strcmp(args_str(&t, "output"), "auto") == 0)
        cli_report_dir(weights, out, sizeof out);
    else
        snprintf(out, sizeof out, "%s", args_str(&t, "output"));

    /* the checkpoint, read once: its weights and the metadata the flags default to */
    cli_ckpt_meta meta;
    cli_ckpt_meta_init(&meta);
    rn_model *m = NULL;
    rn_dataset ds = {0};
    char kind[64];
    rn_loader_config lcfg;
    int status = EXIT_RUNTIME;
    if (rn_model_load_meta(weights, NULL, cli_ckpt_meta_take, &meta, &m) != RN_OK) {
        cli_error("report", "%s", rn_last_error());
        goto done;
    }
    if (!cli_eval_config(&t, weights, &meta, kind, sizeof kind, &lcfg)) {
        status = EXIT_USAGE;
        goto done;
    }
    const int train_split = cli_eval_split(&t, weights, kind, &status);
    if (train_split < 0)
        goto done;
    status = EXIT_RUNTIME;
    if (rn_dataset_load(args_str(&t, "data"), kind, train_split, &ds) != RN_OK) {
        cli_error("report", "%s", rn_last_error());
        goto done;
    }
    if (!cli_normalize_fits(&t, ds.channels, &lcfg)) {
        status = EXIT_USAGE;
        goto done;
    }
    if (!cli_match_classes(&t, weights, kind, m, &ds))
        goto done;
    if (ds.count == 0) {
        cli_error("report", "the %s split is empty", split);
        goto done;
    }
    if (ds.channels != rn_model_in_channels(m)) { /* before the report's folder is made */
        cli_error("report", "the dataset has %d channel%s, %s takes %d", ds.channels, ds.channels == 1 ? "" : "s",
                  weights, rn_model_in_channels(m));
        goto done;
    }
    if (ds.num_classes > rn_model_num_classes(m)) { /* evaluating would fail: found here too */
        cli_error("report", "the dataset has %d classes, %s only %d", ds.num_classes, weights,
                  rn_model_num_classes(m));
        goto done;
    }
    cli_report_args a = {
        .command = "report", .model = m, .ds = &ds, .loader = &lcfg, .weights = weights,
        .log = log[0] ? log : NULL, .output_dir = out, .data_dir = args_str(&t, "data"),
        .dataset_kind = kind, .split = split, .grid = grid, .png = !args_flag(&t, "no-png"),
        .png_scale = png_scale, .quiet = args_flag(&t, "quiet"),
    };
    /* the folders missing above the report's are created, as every --output does */
    char page[1200];
    snprintf(page, sizeof page, "%s/report.html", out);
    const rn_status made = cli_make_output_dirs("report", page);
    status = made != RN_OK ? cli_write_failed("report", made) : cli_report(&a);
done:
    rn_dataset_free(&ds);
    rn_model_free(m);
    return status;
}
