/* cmd_report.h - writing the training report, shared by `resnet report` and `resnet train`. */
#ifndef RN_CLI_CMD_REPORT_H
#define RN_CLI_CMD_REPORT_H

#include "data/dataset.h"
#include "resnet.h"

typedef struct cli_report_args {
    const char *command;              /* for messages: "report", "train" */
    rn_model *model;
    const rn_dataset *ds;             /* the split to evaluate */
    const rn_loader_config *loader;
    const char *weights;              /* the checkpoint's path */
    const char *log;                  /* training log, or NULL */
    const char *output_dir;
    const char *data_dir, *dataset_kind, *split;
    int grid;                         /* images per grid; 0: 24 */
    int png;                          /* also PNG figures */
    double png_scale;                 /* 0: 2 */
    int quiet;                        /* no progress line */
} cli_report_args;

/* Writes the report and prints its path; returns 0, or after an error message the exit
 * status: EXIT_WRITE where a file could not be written, else EXIT_RUNTIME. */
int cli_report(const cli_report_args *a);

/* The default report folder of a checkpoint: "dir/run.safetensors" -> "dir/run_report". */
void cli_report_dir(const char *weights, char *out, size_t cap);

#endif
