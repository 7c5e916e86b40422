/*
 * fit.h - refusing, before anything large is allocated, a run whose planned
 * memory exceeds what the machine has available, instead of letting the
 * kernel's out-of-memory killer end it halfway.
 */
#ifndef RN_CLI_FIT_H
#define RN_CLI_FIT_H

#include <stddef.h>

/* The bytes this process can still take: MemAvailable of /proc/meminfo, or
 * less when its cgroup (v1 or v2) has a memory limit. `source` (cap bytes)
 * receives where the figure comes from. 0 when nothing can be read. */
size_t cli_memory_available(char *source, size_t cap);

/* What a run needs: `at_one` bytes at batch 1 and `at_batch` at batch
 * `batch` (memory grows about linearly in between); `what` describes the
 * run for the message ("training resnet50 on batches of 256 at 224x224"). */
typedef struct cli_fit {
    const char *command, *what;
    size_t at_one, at_batch;
    int batch;
} cli_fit;

/* 1 when the run fits in the available memory (or the latter is unknown).
 * Else prints one line with the estimate, what is available and the largest
 * --batch-size that would fit (or that none does), and returns 0. */
int cli_check_fits(const cli_fit *f);

#endif
