/* run_common.h - flag parsing shared by `train`, `eval` and `predict`. */
#ifndef RN_CLI_RUN_COMMON_H
#define RN_CLI_RUN_COMMON_H

#include <stddef.h>

#include "args.h"
#include "data/dataset.h"

/* --mode: RN_MODE_EVAL or RN_MODE_TRAIN; -1 (after an error message) otherwise. */
int cli_mode(const arg_table *t);

/* --stem: RN_STEM_IMAGENET or RN_STEM_CIFAR; -1 (after an error message) otherwise. */
int cli_stem(const arg_table *t);

/* The flag holds a finite number; prints an error otherwise. */
int cli_number_ok(const arg_table *t, const char *name);

/* --augment none|flip|crop|crop+flip|auto into cfg (crop: zero padding 4,
 * RandomResizedCrop for folders); auto means `auto_value`. */
int cli_parse_augment(const arg_table *t, rn_loader_config *cfg, const char *auto_value);

/* The canonical "M1,..:S1,.." text of cfg's normalisation for `channels`. */
void cli_format_normalize(const rn_loader_config *cfg, int channels, char *text, size_t cap);

/* --normalize none | auto | M1,M2,..:S1,S2,.. into cfg; `text` receives the
 * canonical form stored in checkpoints ("none" or the same syntax). auto is
 * left as "none" here: the caller decides once the dataset is known. */
int cli_parse_normalize(const arg_table *t, rn_loader_config *cfg, char *text, size_t cap);

/* After a failed write of an output file (status st): prints the error and
 * returns EXIT_WRITE for a file that could not be written (RN_ERR_IO: disk
 * full, read-only, no such folder...), EXIT_RUNTIME for anything else. */
int cli_write_failed(const char *command, rn_status st);

/* Parses "M1,M2,..:S1,S2,.." (1 to 4 channels); returns 0 if malformed. */
int parse_mean_std(const char *s, float *mean, float *std, int *channels);

#endif
