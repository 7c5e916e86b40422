/*
 * runlog.h - reading the JSON-lines log that `resnet train` writes.
 *
 * One JSON object per line. Of the lines, two kinds are read:
 *   - a per-epoch record: it has "epoch" and no "step". Its numbers
 *     "train_loss", "train_acc", "test_loss", "test_acc", "test_top5", "lr",
 *     "seconds", "images_per_second" and "elapsed" are kept; a missing or null one is
 *     NAN (a gap in a curve), other members are ignored. A repeated epoch (a
 *     resumed run) replaces the earlier record; records are sorted by epoch.
 *   - a run record: it has an object "run" (what was trained, how, where;
 *     written once when a run starts or resumes). The last one is kept.
 * Other lines (per-step records, anything else) are skipped, as are blank
 * lines and a final line cut short without a newline (a run killed
 * mid-write).
 *
 * Fails with RN_ERR_IO when the file cannot be read and RN_ERR_FORMAT
 * ("LOG:LINE: ...") on a line that is not a JSON object, or an epoch or
 * metric that is not a finite number.
 */
#ifndef RN_TRAIN_RUNLOG_H
#define RN_TRAIN_RUNLOG_H

#include <stddef.h>

#include "io/json.h"
#include "resnet.h"

typedef enum rn_log_metric {
    RN_LOG_TRAIN_LOSS,
    RN_LOG_TEST_LOSS,
    RN_LOG_TRAIN_ACC,
    RN_LOG_TEST_ACC,
    RN_LOG_TEST_TOP5,
    RN_LOG_LR,
    RN_LOG_SECONDS,
    RN_LOG_IMAGES_PER_SECOND,
    RN_LOG_ELAPSED,              /* wall seconds since the run's command started, evaluation included */
    RN_LOG_STEPS,                /* optimizer steps taken by the epoch's end, in all */
    RN_LOG_EMA_TEST_LOSS,        /* train --ema: the moving average's test loss and accuracy */
    RN_LOG_EMA_TEST_ACC,
    RN_LOG_METRICS
} rn_log_metric;

/* The log's member name of metric m ("train_loss", ...). */
const char *rn_log_metric_key(rn_log_metric m);

typedef struct rn_log_epoch {
    double epoch;
    double v[RN_LOG_METRICS];   /* NAN where missing */
} rn_log_epoch;

typedef struct rn_run_log {
    rn_log_epoch *epochs;       /* count records, by epoch */
    size_t count, cap;
    json_value run;             /* the last run record's "run" object; JSON_NULL if none */
    char *run_line;             /* the line it was parsed from (owns its numbers' text) */
} rn_run_log;

/* Reads the log at path into *out (free with rn_run_log_free, also after a
 * failure). A log without epoch records is not an error: count is 0. */
rn_status rn_run_log_read(const char *path, rn_run_log *out);
void rn_run_log_free(rn_run_log *log);

/* The number value of a parsed member (json_parse keeps only integers;
 * others are read back from `text`, the line the value was parsed from). */
double rn_json_number(const json_value *v, const char *text);

#endif
