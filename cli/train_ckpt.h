/*
 * train_ckpt.h - checkpoints as `resnet train` writes and resumes them: the
 * lock on the --save path, saving (with the library's two-file commit,
 * train/checkpoint.h) and saying what happened when a save fails, finding
 * where a resumed run stands, cutting the log back to the checkpoint, and
 * the command line that resumes a stopped run.
 *
 * Test hook: with RESNET_TEST_SAVE_PAUSE_MS=N in the environment every save
 * prints "rn-test-hook: checkpoint step S PHASE" on stderr at each phase of
 * its commit and pauses N ms after each, so that tests/kill_harness.py can
 * kill the process inside a save. Nothing else changes.
 */
#ifndef RN_CLI_TRAIN_CKPT_H
#define RN_CLI_TRAIN_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "args.h"
#include "resnet.h"
#include "train/checkpoint.h"

typedef struct train_ckpt {
    char weights[1024], state[1024];       /* "" without --save */
    char run_id[RN_RUN_ID_MAX + 1];
    int lock_fd;
    int64_t committed;                     /* step of the last checkpoint committed, -1: none yet */
    int test_hook, pause_ms;               /* the test hook and its pause */
} train_ckpt;

/* Prepares saving to weights/state (weights NULL: no --save) with a new run
 * id and no committed checkpoint (a resumed run sets run_id and committed),
 * and takes the lock. Returns 0, or after printing the error EXIT_RUNTIME
 * when another run holds the lock, EXIT_WRITE when the lock file cannot be
 * created (the folder is missing or read-only: training would lose its
 * work). */
int train_ckpt_open(train_ckpt *c, const char *weights, const char *state);
void train_ckpt_close(train_ckpt *c);

/* Saves a checkpoint with the given extra metadata. Returns 0 on success;
 * on failure prints the error and where the last committed checkpoint
 * stands, and returns the exit status (EXIT_WRITE for a file that could not
 * be written, EXIT_RUNTIME otherwise). */
int train_ckpt_save(train_ckpt *c, const rn_model *m, const rn_trainer *t, const char *const *wkeys,
                    const char *const *wvals, int wn, const char *const *skeys, const char *const *svals, int sn);

/* For --resume WEIGHTS (whose optimizer state is `state`): the state file
 * that matches it (state, or the backup of an interrupted save, into `use`)
 * and where training stood; `say`: tell which file is used when it is the
 * backup (rank 0 of a data-parallel run, or the one process). Prints the
 * error and returns 0 on failure. */
int train_ckpt_find(const char *weights, const char *state, char *use, size_t cap, rn_train_position *pos,
                    int say);

/* Rewrites the JSON-lines log without the records of steps after `step`
 * (a killed run's) and without a last line cut short. A missing log is
 * fine. Prints the error and returns 0 on failure. */
int train_log_trim(const char *log, int64_t step);

/* Prints "  resnet train FLAGS --resume SAVE" with the flags given on the
 * command line (quoted for a POSIX shell), the old --resume dropped; with
 * `flag` (may be NULL), --FLAG VALUE replaces the one given, if any. */
void train_print_resume(const arg_table *t, const char *save, const char *flag, const char *value);

#endif
