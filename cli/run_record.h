/* run_record.h - the run record `resnet train` writes at the top of its log. */
#ifndef RN_CLI_RUN_RECORD_H
#define RN_CLI_RUN_RECORD_H

#include <stdio.h>

#include "args.h"
#include "data/dataset.h"
#include "resnet.h"

/* What a run is, beside its flags. */
typedef struct run_facts {
    const rn_model *model;
    const rn_dataset *train, *test;
    const char *dataset_kind, *data_dir;
    const char *normalize;       /* the canonical text stored in checkpoints */
    const char *resumed_from;    /* or NULL */
    int image_size, batch_size, steps_per_epoch, epochs, seed;
} run_facts;

/* Writes one line {"run": {...}} to f: resnet.c's version and compiler, the
 * start time (UTC), the command line, every flag of table t with its value
 * ("flags") and the names of those given on the command line ("given"), the
 * architecture, parameter count and FLOPs per image, the data, the CPU's
 * model name (from /proc/cpuinfo), its cores, the threads used, the seed.
 * argv[0] is the subcommand's name, as the commands receive it. Returns 0
 * if the line could not be built or written. */
int cli_write_run_record(FILE *f, const arg_table *t, int argc, char **argv, const run_facts *facts);

/* The CPU's model name from /proc/cpuinfo ("model name", else "Hardware"
 * or "cpu model"), or "unknown". */
void cli_cpu_name(char *out, size_t cap);

#endif
