/*
 * fit.h - refusing, before anything large is allocated, a run whose planned
 * memory exceeds what the machine has available, instead of letting the
 * kernel's out-of-memory killer end it halfway.
 */
#ifndef RN_CLI_FIT_H
#define RN_CLI_FIT_H

#include <stddef.h>

#include "resnet.h"

/* The bytes this process can still take: MemAvailable of /proc/meminfo, or
 * less when its cgroup (v1 or v2) has a memory limit. `source` (cap bytes)
 * receives where the figure comes from. 0 when nothing can be read. */
size_t cli_memory_available(char *source, size_t cap);

/* A run of m on batches of `batch` images of h x w: a trainer with tcfg
 * (NULL: none) and / or `session` sessions with scfg (NULL: defaults), plus
 * `per_image` bytes of the caller's per image (input and output buffers)
 * and `extra` bytes besides (a second model's weights). */
typedef struct cli_plan {
    const char *command;
    const rn_model *m;
    const rn_train_config *tcfg;
    const rn_session_config *scfg;
    int session;            /* sessions: 0, 1, or 2 (train --ema evaluates a second model) */
    int batch, h, w;
    size_t per_image;
    size_t extra;
    const char *task;       /* what the run is, in the refusal ("int8 calibration ..."); NULL:
                               "training" or "inference" */
    const char *size_flag;  /* the flag of the image size, in the advice; NULL: "--image-size" */
    const char *weights;    /* the file m was read from, named in a plan that fails (an int8
                               model at --precision fp32...); NULL: none */
} cli_plan;

/* cli_check_fits for such a run, planned at batch 1 and at its batch.
 * Returns 0 after a message (too big, or a plan that failed). */
int cli_plan_fits(const cli_plan *p);

#endif
