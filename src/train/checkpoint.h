/*
 * checkpoint.h - a training checkpoint: two files committed as one, the
 * lock on them, and reading back where training stood.
 *
 * A checkpoint is WEIGHTS (the model's state_dict in safetensors, as
 * rn_model_save_meta writes it, loadable by PyTorch) and STATE (the
 * optimizer state, as rn_trainer_save_state writes it). Both carry the run's
 * id and the optimizer step in their metadata ("run_id", "step"), so a pair
 * from different checkpoints is recognised and refused.
 *
 * rn_checkpoint_save commits the pair in this order, each file written
 * atomically (io/file.h):
 *   1. WEIGHTS and STATE are written to temporary files and fsync'ed;
 *   2. the current STATE, if any, is renamed to BACKUP (STATE with
 *      ".prev.safetensors" in place of ".safetensors");
 *   3. the new STATE is renamed into place;
 *   4. the new WEIGHTS is renamed into place: the checkpoint is committed;
 *   5. BACKUP is removed.
 * Whenever the process dies (a kill, a crash, a full disk), WEIGHTS is the
 * last committed checkpoint, and STATE or, after a death between steps 2
 * and 4, BACKUP holds the optimizer state of the same run id and step:
 * rn_checkpoint_match finds it. A failure leaves the files as they were
 * (BACKUP renamed back if step 3 fails).
 */
#ifndef RN_TRAIN_CHECKPOINT_H
#define RN_TRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "io/file.h"
#include "resnet.h"

#define RN_RUN_ID_MAX 32   /* hexadecimal digits of a run id */

/* What is to be saved besides the tensors. */
typedef struct rn_checkpoint_spec {
    const char *weights, *state;   /* the two paths */
    const char *run_id;            /* 1 to RN_RUN_ID_MAX lowercase hex digits, the same for a whole run */
    const char *const *weight_keys, *const *weight_values;
    int weight_count;              /* extra metadata of WEIGHTS (image size, normalisation...) */
    const char *const *state_keys, *const *state_values;
    int state_count;               /* extra metadata of STATE (epoch, position, seed...) */
    /* Optional: called with a phase name ("begin", "weights written", "state
     * written", "state backed up", "state replaced", "weights replaced",
     * "done") as each step starts or ends; for progress and for tests. */
    void (*on_phase)(void *ctx, const char *phase, int64_t step);
    void *ctx;
} rn_checkpoint_spec;

/* Saves the model and the trainer's state as described above, with
 * "run_id" and "step" (rn_trainer_steps) added to both files' metadata.
 * Weights, BatchNorm statistics or optimizer state holding a NaN or an
 * infinity are never written: RN_ERR_ARG naming the tensor, nothing on disk
 * changed. */
rn_status rn_checkpoint_save(const rn_checkpoint_spec *spec, const rn_model *m, const rn_trainer *t);

/* Where a checkpoint file stands: its run id and step (from its metadata,
 * header only). The values are checked strictly: a run id of hex digits,
 * a step of decimal digits within int64. */
typedef struct rn_checkpoint_id {
    char run_id[RN_RUN_ID_MAX + 1];
    int64_t step;
} rn_checkpoint_id;
rn_status rn_checkpoint_read_id(const char *path, rn_checkpoint_id *id);

/* The STATE file that belongs to WEIGHTS: `state` when its run id and step
 * equal WEIGHTS', else BACKUP when it does (a save interrupted between its
 * renames). Its path goes to `use` (capacity cap) and WEIGHTS' id to *id.
 * Fails with RN_ERR_MISMATCH, naming both files and what each holds, when
 * neither matches. */
rn_status rn_checkpoint_match(const char *weights, const char *state, char *use, size_t cap,
                              rn_checkpoint_id *id);

/* Removes what interrupted saves left beside a checkpoint: temporary files
 * of dead processes, and BACKUP when STATE belongs to WEIGHTS. For the
 * holder of the lock. */
void rn_checkpoint_tidy(const char *weights, const char *state);

/* BACKUP's path for STATE (see above). */
void rn_checkpoint_backup_path(const char *state, char *out, size_t cap);

/* Where training stood, from STATE's metadata, each value checked: epoch
 * and position in 0..2^53, seed in 0..2^31-1, and run id and step as
 * rn_checkpoint_read_id. A missing or malformed key fails naming it. */
typedef struct rn_train_position {
    rn_checkpoint_id id;
    int64_t epoch;      /* epochs finished */
    int64_t position;   /* images handed out in the current epoch */
    int64_t seed;       /* the run's seed (data order, augmentation) */
} rn_train_position;
rn_status rn_checkpoint_position(const char *state, rn_train_position *pos);

/* A new run id: 16 random hex digits (from /dev/urandom, else the clock and
 * the process id). */
void rn_checkpoint_new_run_id(char out[RN_RUN_ID_MAX + 1]);

/* Takes the lock of a checkpoint: WEIGHTS + ".lock", held with flock() until
 * rn_checkpoint_unlock or the process ends (a killed process holds nothing).
 * *fd receives the lock's descriptor. Fails with RN_ERR_IO when the lock
 * file cannot be created (a missing or read-only folder: *holder is 0) or
 * another process holds the lock (*holder is its process id, or -1 when
 * unknown); the message names the file. */
rn_status rn_checkpoint_lock(const char *weights, int *fd, long *holder);
/* Removes the lock file and releases the lock (fd < 0: nothing to do). */
void rn_checkpoint_unlock(const char *weights, int fd);

/* trainer.c: the optimizer state and metadata, as rn_trainer_save_state
 * writes them, into a file the caller opened and then commits. */
rn_status rn_trainer_write_state_to(const rn_trainer *t, rn_wfile *w, const char *const *keys,
                                    const char *const *values, int count);

#endif
