/*
 * checkpoint.c - saving a checkpoint's two files as one commit, finding the
 * optimizer state that belongs to a weights file, reading where training
 * stood, and the lock that keeps two runs from writing one checkpoint. The
 * protocol is described in checkpoint.h.
 */
#include "train/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/finite.h"
#include "core/status.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/model.h"

#define BACKUP_SUFFIX ".prev.safetensors"
#define MAX_POSITION ((int64_t)1 << 53)
#define MAX_SEED INT64_C(2147483647)

/* ---------------------------------------------------------------------------
 * Strict values
 * ------------------------------------------------------------------------- */

static int valid_run_id(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > RN_RUN_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* Decimal digits only (no sign, no spaces), value in 0..max. */
static int parse_count(const char *s, int64_t max, int64_t *out) {
    if (!s || !*s || strlen(s) > 19)
        return 0;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > (max - (*p - '0')) / 10)
            return 0;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return 1;
}

/* The metadata value `key` of f, parsed as a count in 0..max. */
static rn_status meta_count(const st_file *f, const char *path, const char *key, int64_t max, int64_t *out) {
    const char *v = st_meta_get(f, key);
    if (!v)
        return rn_fail(RN_ERR_MISMATCH, "%s: no '%s' in the metadata (not a checkpoint of this version of resnet)",
                       path, key);
    if (!parse_count(v, max, out)) {
        char shown[48];
        json_printable(shown, sizeof shown, v);
        return rn_fail(RN_ERR_FORMAT, "%s: metadata '%s' is '%s', not a whole number in 0..%" PRId64, path, key,
                       shown, max);
    }
    return RN_OK;
}

static rn_status meta_id(const st_file *f, const char *path, rn_checkpoint_id *id) {
    const char *run = st_meta_get(f, "run_id");
    if (!run)
        return rn_fail(RN_ERR_MISMATCH, "%s: no 'run_id' in the metadata (not a checkpoint of this version of "
                       "resnet)", path);
    if (!valid_run_id(run)) {
        char shown[48];
        json_printable(shown, sizeof shown, run);
        return rn_fail(RN_ERR_FORMAT, "%s: metadata 'run_id' is '%s', not 1 to %d hex digits", path, shown,
                       RN_RUN_ID_MAX);
    }
    snprintf(id->run_id, sizeof id->run_id, "%s", run);
    return meta_count(f, path, "step", INT64_MAX, &id->step);
}

/* ---------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------- */

rn_status rn_checkpoint_read_id(const char *path, rn_checkpoint_id *id) {
    if (!path || !id)
        return rn_fail(RN_ERR_ARG, "rn_checkpoint_read_id: NULL argument");
    memset(id, 0, sizeof *id);
    st_file f;
    RN_TRY(st_read_meta(path, &f));
    rn_status st = meta_id(&f, path, id);
    st_free(&f);
    return st;
}

rn_status rn_checkpoint_position(const char *state, rn_train_position *pos) {
    if (!state || !pos)
        return rn_fail(RN_ERR_ARG, "rn_checkpoint_position: NULL argument");
    memset(pos, 0, sizeof *pos);
    st_file f;
    RN_TRY(st_read_meta(state, &f));
    rn_status st = meta_id(&f, state, &pos->id);
    if (st == RN_OK)
        st = meta_count(&f, state, "epoch", MAX_POSITION, &pos->epoch);
    if (st == RN_OK)
        st = meta_count(&f, state, "position", MAX_POSITION, &pos->position);
    if (st == RN_OK)
        st = meta_count(&f, state, "seed", MAX_SEED, &pos->seed);
    st_free(&f);
    return st;
}

void rn_checkpoint_backup_path(const char *state, char *out, size_t cap) {
    size_t n = strlen(state), ext = strlen(".safetensors");
    if (n > ext && strcmp(state + n - ext, ".safetensors") == 0)
        n -= ext;
    snprintf(out, cap, "%.*s%s", (int)n, state, BACKUP_SUFFIX);
}

rn_status rn_checkpoint_match(const char *weights, const char *state, char *use, size_t cap,
                              rn_checkpoint_id *id) {
    if (!weights || !state || !use || !id)
        return rn_fail(RN_ERR_ARG, "rn_checkpoint_match: NULL argument");
    RN_TRY(rn_checkpoint_read_id(weights, id));
    char backup[4096];
    rn_checkpoint_backup_path(state, backup, sizeof backup);
    rn_checkpoint_id s, b;
    rn_status ss = rn_checkpoint_read_id(state, &s);
    char state_error[512];
    snprintf(state_error, sizeof state_error, "%s", ss == RN_OK ? "" : rn_last_error());
    if (ss == RN_OK && s.step == id->step && strcmp(s.run_id, id->run_id) == 0) {
        snprintf(use, cap, "%s", state);
        return RN_OK;
    }
    /* a save interrupted between its renames: the backup is the state of WEIGHTS */
    int have_backup = access(backup, F_OK) == 0;
    if (have_backup && rn_checkpoint_read_id(backup, &b) == RN_OK && b.step == id->step &&
        strcmp(b.run_id, id->run_id) == 0) {
        snprintf(use, cap, "%s", backup);
        return RN_OK;
    }
    char what[600];
    if (ss == RN_OK)
        snprintf(what, sizeof what, "%s is run %s at step %" PRId64, state, s.run_id, s.step);
    else
        snprintf(what, sizeof what, "%s", state_error);
    return rn_fail(RN_ERR_MISMATCH, "%s (run %s at step %" PRId64 ") and its optimizer state are not one "
                   "checkpoint: %s%s", weights, id->run_id, id->step, what,
                   have_backup ? "; nor is the backup of an interrupted save" : "");
}

/* ---------------------------------------------------------------------------
 * Saving
 * ------------------------------------------------------------------------- */

static void phase(const rn_checkpoint_spec *spec, const char *name, int64_t step) {
    if (spec->on_phase)
        spec->on_phase(spec->ctx, name, step);
}

/* keys/values followed by run_id and step, in arrays of count + 2. */
static rn_status with_id(const char *const *keys, const char *const *values, int count, const char *run_id,
                         const char *step, const char ***k, const char ***v) {
    *k = calloc((size_t)count + 2, sizeof **k);
    *v = calloc((size_t)count + 2, sizeof **v);
    if (!*k || !*v) {
        free(*k), free(*v);
        return rn_fail(RN_ERR_NOMEM, "out of memory for checkpoint metadata");
    }
    for (int i = 0; i < count; i++)
        (*k)[i] = keys[i], (*v)[i] = values[i];
    (*k)[count] = "run_id", (*v)[count] = run_id;
    (*k)[count + 1] = "step", (*v)[count + 1] = step;
    return RN_OK;
}

/* Whether STATE should become BACKUP before it is replaced: not when BACKUP
 * is what belongs to the weights on disk (STATE is then from a save that
 * died before its weights were renamed in, and must not overwrite it). */
static int state_to_back_up(const rn_checkpoint_spec *spec, const char *backup) {
    struct stat sb;
    if (lstat(spec->state, &sb) != 0)
        return 0;
    char use[4096];
    rn_checkpoint_id id;
    return !(rn_checkpoint_match(spec->weights, spec->state, use, sizeof use, &id) == RN_OK &&
             strcmp(use, backup) == 0);
}

/* Steps 1 to 5 of checkpoint.h, with both files written. */
static rn_status commit_pair(const rn_checkpoint_spec *spec, rn_wfile *ww, rn_wfile *ws, int64_t step) {
    char backup[4096];
    rn_checkpoint_backup_path(spec->state, backup, sizeof backup);
    int backed_up = 0;
    if (state_to_back_up(spec, backup)) {
        RN_TRY(rn_file_rename(spec->state, backup));
        backed_up = 1;
        phase(spec, "state backed up", step);
    }
    rn_status st = rn_wfile_commit(ws);
    if (st != RN_OK) {
        if (backed_up)
            rename(backup, spec->state);
        return st;
    }
    phase(spec, "state replaced", step);
    if ((st = rn_wfile_commit(ww)) != RN_OK) {
        /* the weights are the old ones: so must the state be */
        if (backed_up)
            rename(backup, spec->state);
        return st;
    }
    phase(spec, "weights replaced", step);
    unlink(backup); /* ours, or one an interrupted save left */
    return RN_OK;
}

/* The first float tensor of m (weights or BatchNorm statistics) holding a NaN
 * or an infinity, or NULL. */
static const rn_tensor_ref *non_finite_tensor(const rn_model *m) {
    for (int i = 0; i < m->n_tensors; i++) {
        const rn_tensor_ref *r = &m->tensors[i];
        if (r->f32 && !rn_floats_finite(r->f32, r->numel))
            return r;
    }
    return NULL;
}

rn_status rn_checkpoint_save(const rn_checkpoint_spec *spec, const rn_model *m, const rn_trainer *t) {
    if (!spec || !spec->weights || !spec->state || !m || !t)
        return rn_fail(RN_ERR_ARG, "rn_checkpoint_save: NULL argument");
    if (!valid_run_id(spec->run_id))
        return rn_fail(RN_ERR_ARG, "rn_checkpoint_save: the run id must be 1 to %d hex digits", RN_RUN_ID_MAX);
    if (strcmp(spec->weights, spec->state) == 0)
        return rn_fail(RN_ERR_ARG, "%s: the weights and the optimizer state need two files", spec->weights);
    const rn_tensor_ref *bad = non_finite_tensor(m);
    if (bad)
        return rn_fail(RN_ERR_ARG, "%s: not written: tensor '%s' of the model holds a NaN or an infinity "
                       "(the file on disk, if any, is unchanged)", spec->weights, bad->name);
    int64_t step = rn_trainer_steps(t);
    char step_text[32];
    snprintf(step_text, sizeof step_text, "%" PRId64, step);
    const char **wk = NULL, **wv = NULL, **sk = NULL, **sv = NULL;
    rn_status st = with_id(spec->weight_keys, spec->weight_values, spec->weight_count, spec->run_id, step_text,
                           &wk, &wv);
    if (st == RN_OK)
        st = with_id(spec->state_keys, spec->state_values, spec->state_count, spec->run_id, step_text, &sk, &sv);
    if (st == RN_OK)
        phase(spec, "begin", step);
    rn_wfile ww = {0}, ws = {0};
    if (st == RN_OK && (st = rn_wfile_open(&ww, spec->weights)) == RN_OK &&
        (st = rn_model_write_to(m, &ww, wk, wv, spec->weight_count + 2)) == RN_OK &&
        (st = rn_wfile_stage(&ww)) == RN_OK) {
        phase(spec, "weights written", step);
        if ((st = rn_wfile_open(&ws, spec->state)) == RN_OK &&
            (st = rn_trainer_write_state_to(t, &ws, sk, sv, spec->state_count + 2)) == RN_OK &&
            (st = rn_wfile_stage(&ws)) == RN_OK) {
            phase(spec, "state written", step);
            st = commit_pair(spec, &ww, &ws, step);
        }
    }
    rn_wfile_discard(&ws);
    rn_wfile_discard(&ww);
    free(wk), free(wv), free(sk), free(sv);
    if (st == RN_OK)
        phase(spec, "done", step);
    return st;
}

void rn_checkpoint_tidy(const char *weights, const char *state) {
    if (!weights || !state)
        return;
    rn_file_remove_stale(weights);
    rn_file_remove_stale(state);
    char backup[4096], use[4096];
    rn_checkpoint_backup_path(state, backup, sizeof backup);
    rn_checkpoint_id id;
    if (rn_checkpoint_match(weights, state, use, sizeof use, &id) == RN_OK && strcmp(use, state) == 0)
        unlink(backup);
}

/* ---------------------------------------------------------------------------
 * Run ids and the lock
 * ------------------------------------------------------------------------- */

void rn_checkpoint_new_run_id(char out[RN_RUN_ID_MAX + 1]) {
    uint64_t x = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, &x, sizeof x) != (ssize_t)sizeof x) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec << 20 ^ (uint64_t)getpid();
    }
    if (fd >= 0)
        close(fd);
    snprintf(out, RN_RUN_ID_MAX + 1, "%016" PRIx64, x);
}

static void lock_path(const char *weights, char *out, size_t cap) {
    snprintf(out, cap, "%s.lock", weights);
}

rn_status rn_checkpoint_lock(const char *weights, int *fd, long *holder) {
    if (!weights || !fd || !holder)
        return rn_fail(RN_ERR_ARG, "rn_checkpoint_lock: NULL argument");
    *fd = -1;
    *holder = 0;
    char path[4096];
    lock_path(weights, path, sizeof path);
    for (int attempt = 0; attempt < 16; attempt++) {
        int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (f < 0)
            return rn_fail(RN_ERR_IO, "%s: cannot create the lock file: %s", path, strerror(errno));
        if (flock(f, LOCK_EX | LOCK_NB) != 0) {
            int err = errno;
            char text[32] = "";
            ssize_t got = read(f, text, sizeof text - 1);
            close(f);
            if (err != EWOULDBLOCK)
                return rn_fail(RN_ERR_IO, "%s: cannot lock: %s", path, strerror(err));
            long pid = got > 0 ? strtol(text, NULL, 10) : 0;
            *holder = pid > 0 ? pid : -1;
            return rn_fail(RN_ERR_IO, "%s is in use by another training run (process %ld holds %s)", weights, pid,
                           path);
        }
        /* the holder before us may have removed the file after we opened it */
        struct stat a, b;
        if (fstat(f, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            char text[32];
            int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
            int told = ftruncate(f, 0) == 0 && pwrite(f, text, (size_t)n, 0) == n;
            (void)told; /* the pid is only for messages */
            *fd = f;
            return RN_OK;
        }
        close(f);
    }
    return rn_fail(RN_ERR_IO, "%s: cannot take the lock (its file keeps changing)", path);
}

void rn_checkpoint_unlock(const char *weights, int fd) {
    if (fd < 0)
        return;
    char path[4096];
    lock_path(weights, path, sizeof path);
    unlink(path);
    close(fd);
}
