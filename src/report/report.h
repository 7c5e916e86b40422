/*
 * report.h - the training report: one self-contained HTML page a person can
 * look at, and its figures as SVG and PNG files for papers and slides.
 *
 * rn_report_write evaluates the model on a dataset split (eval mode, as
 * rn_evaluate) and writes into cfg->output_dir (created if missing):
 *   report.html    the page: headline numbers, the most common mistakes,
 *                  every figure inline (SVG, images as data URIs), per-class
 *                  and per-epoch tables, and the run's facts (architecture,
 *                  parameters, recipe, time per epoch, throughput, CPU,
 *                  threads, version, seed). It loads nothing else: no
 *                  scripts, no fonts, no network.
 *   curves.svg/png      loss, accuracy and learning rate per epoch (with a log)
 *   confusion.svg/png   the confusion matrix as a heat map with counts
 *   per_class.svg/png   per-class recall (accuracy on the class), precision
 *                       and F1, worst recall first
 *   wrong.svg/png       the most confidently wrong images, true and predicted
 *                       names with probabilities
 *   correct.svg/png     correct images: the most confident of each class (or
 *                       a seeded sample when there are more classes than cells)
 * Figures without data (no log, no mistakes) are left out, and the page says
 * why. PNGs are written only with cfg->png. Where the folder holds an earlier
 * report (its report.html), that report's figure files this one does not
 * write are removed, so that none contradicts the new page.
 *
 * The run's facts come from the training log's run record (train/runlog.h)
 * and the checkpoint's metadata; what neither has is shown as not recorded.
 */
#ifndef RN_REPORT_REPORT_H
#define RN_REPORT_REPORT_H

#include "data/dataset.h"
#include "resnet.h"

typedef struct rn_report_config {
    const char *output_dir;     /* required */
    const char *weights_path;   /* the checkpoint (metadata, name); may be NULL */
    const char *log_path;       /* JSON-lines training log; may be NULL */
    const char *data_dir;       /* shown in the facts; may be NULL */
    const char *dataset_kind;   /* "fashion-mnist", ...; may be NULL */
    const char *split;          /* "test", "train", "val"; may be NULL ("test") */
    rn_loader_config loader;    /* how the split is fed to the model */
    int grid;                   /* images per grid, 1..200 (0: 24) */
    int png;                    /* also write the figures as PNG */
    double png_scale;           /* PNG pixels per SVG unit, 0.5..4 (0: 2); less for a
                                 * figure that would exceed 8192 pixels a side */
} rn_report_config;

typedef struct rn_report_summary {
    int64_t images;             /* images evaluated */
    double top1, top5, loss;
    int figures;                /* figure files written (SVG and PNG) */
    char html[1100];            /* the page's path */
    char warning[600];          /* why the log was left out, or "" */
} rn_report_summary;

/* Evaluates m on ds and writes the report (see above). The loader's shuffle
 * and augmentation are switched off. progress (may be NULL) is called after
 * each evaluated batch. On failure the message names the file or step. */
rn_status rn_report_write(rn_model *m, const rn_dataset *ds, const rn_report_config *cfg,
                          rn_eval_progress progress, void *ctx, rn_report_summary *summary);

/* Removes the report in folder `dir` (its report.html and the figure files a report writes;
 * nothing else) and the folder where that empties it: the report of a run that `train
 * --overwrite` starts over. Returns 1 when there was a report, 0 when `dir` holds none
 * (nothing is touched). */
int rn_report_remove(const char *dir);

#endif
