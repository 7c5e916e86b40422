/*
 * test_checkpoint.c - a checkpoint's two files committed as one
 * (train/checkpoint.h): a process that dies at any phase of a save, or at any
 * phase of the save after that, leaves a pair that rn_checkpoint_match finds
 * and that loads; a mismatched pair is refused naming both files; the lock
 * refuses a second holder; the training-state metadata is read strictly.
 *
 * The deaths are real: a forked child saves and calls _exit() from the
 * save's phase callback, so the files are exactly what a kill at that moment
 * leaves (the page cache survives a killed process). Files go to /dev/shm
 * when it exists (45 MB per file), else $TMPDIR.
 */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "io/safetensors.h"
#include "resnet.h"
#include "train/checkpoint.h"

static const char *const PHASES[] = {"begin", "weights written", "state written",
                                     "state backed up", "state replaced", "weights replaced"};
#define N_PHASES 6

static char dir[256], weights[512], state[512], backup[600];
static rn_model *model;
static rn_trainer *trainer;

static void die_at(void *ctx, const char *phase, int64_t step) {
    (void)step;
    if (strcmp(phase, (const char *)ctx) == 0)
        _exit(0);
}

/* Saves; with `phase`, in a child that dies at that phase. Returns 1 when
 * the save was committed (it ran to the end, or died after its last rename). */
static int save(const char *phase) {
    rn_checkpoint_spec spec = {weights, state, "00c0ffee", NULL, NULL, 0, NULL, NULL, 0,
                               phase ? die_at : NULL, (void *)phase};
    if (!phase) {
        CHECK(rn_checkpoint_save(&spec, model, trainer) == RN_OK, "save: %s", rn_last_error());
        return 1;
    }
    pid_t child = fork();
    if (child == 0)
        _exit(rn_checkpoint_save(&spec, model, trainer) == RN_OK ? 1 : 2); /* the phase never came */
    int status = 0;
    waitpid(child, &status, 0);
    /* without a state to back up (none yet, or the backup is the one in use)
     * there is no "state backed up": that save runs to the end */
    int whole = WIFEXITED(status) && WEXITSTATUS(status) == 1 && strcmp(phase, "state backed up") == 0;
    CHECK(WIFEXITED(status) && (WEXITSTATUS(status) == 0 || whole), "the child died at '%s'", phase);
    return whole || strcmp(phase, "weights replaced") == 0;
}

/* One optimizer step (a small learning rate keeps it finite, so it is never skipped). */
static void step(void) {
    float x[2 * 32 * 32];
    int32_t labels[2] = {1, 7};
    check_fill(x, sizeof x / sizeof *x, 0.0f, 1.0f);
    int64_t before = rn_trainer_steps(trainer);
    CHECK(rn_trainer_step(trainer, x, labels, 2, 32, 32, NULL) == RN_OK && rn_trainer_steps(trainer) == before + 1,
          "step: %s", rn_last_error());
}

static int temps_left(void) { return check_count_files(dir, rn_file_is_temp); }

/* The pair on disk must be the checkpoint of step `want`, from `file`; with
 * `load`, the model and the trainer load from it. */
static void expect_pair(int64_t want, const char *file, const char *what, int load) {
    char use[600];
    rn_checkpoint_id id;
    rn_status st = rn_checkpoint_match(weights, state, use, sizeof use, &id);
    CHECK(st == RN_OK, "%s: match: %s", what, rn_last_error());
    if (st != RN_OK)
        return;
    CHECK(id.step == want && strcmp(id.run_id, "00c0ffee") == 0, "%s: step %lld, expected %lld", what,
          (long long)id.step, (long long)want);
    CHECK(strcmp(use, file) == 0, "%s: state from %s, expected %s", what, use, file);
    if (!load)
        return;
    rn_model *m = NULL;
    rn_trainer *t = NULL;
    rn_train_config cfg;
    rn_train_config_default(&cfg);
    cfg.momentum = 0.9;
    CHECK(rn_model_load(weights, NULL, &m) == RN_OK && rn_trainer_create(m, &cfg, &t) == RN_OK &&
              rn_trainer_load_state(t, use, NULL, NULL) == RN_OK && rn_trainer_steps(t) == want,
          "%s: the pair loads: %s", what, rn_last_error());
    rn_trainer_free(t);
    rn_model_free(m);
}

static void test_deaths(void) {
    save(NULL);
    expect_pair(0, state, "first save", 1);
    int64_t committed = 0;
    /* a death at each phase; then, after a death that leaves the backup in use,
     * a death at each phase of the next save too */
    for (int a = 0; a < N_PHASES; a++) {
        int deep = strcmp(PHASES[a], "state backed up") == 0 || strcmp(PHASES[a], "state replaced") == 0;
        for (int b = deep ? 0 : N_PHASES; b <= N_PHASES; b++) {
            char what[96];
            step();
            if (save(PHASES[a]))
                committed = rn_trainer_steps(trainer);
            snprintf(what, sizeof what, "died at '%s'", PHASES[a]);
            expect_pair(committed, deep ? backup : state, what, 1);
            if (b < N_PHASES) {
                /* the backup is in use: whatever happens next must not lose it */
                step();
                if (save(PHASES[b]))
                    committed = rn_trainer_steps(trainer);
                snprintf(what, sizeof what, "died at '%s', then at '%s'", PHASES[a], PHASES[b]);
                expect_pair(committed, committed == rn_trainer_steps(trainer) ? state : backup, what, 1);
            }
            save(NULL);
            committed = rn_trainer_steps(trainer);
            snprintf(what, sizeof what, "a full save after dying at '%s'", PHASES[a]);
            expect_pair(committed, state, what, 0);
            CHECK(temps_left() == 0 && access(backup, F_OK) != 0, "%s: no temporary file or backup left", what);
        }
    }
}

static void test_mismatch(void) {
    char other[600], other_state[600];
    snprintf(other, sizeof other, "%s/other.safetensors", dir);
    snprintf(other_state, sizeof other_state, "%s/other.optim.safetensors", dir);
    rn_checkpoint_spec spec = {other, other_state, "00c0ffee", NULL, NULL, 0, NULL, NULL, 0, NULL, NULL};
    step();
    CHECK(rn_checkpoint_save(&spec, model, trainer) == RN_OK, "save another checkpoint");
    char use[600];
    rn_checkpoint_id id;
    rn_status st = rn_checkpoint_match(weights, other_state, use, sizeof use, &id);
    CHECK(st == RN_ERR_MISMATCH && strstr(rn_last_error(), weights) && strstr(rn_last_error(), other_state),
          "a mismatched pair is refused naming both files: %s", rn_last_error());
    spec.run_id = "abc";
    CHECK(rn_checkpoint_save(&spec, model, trainer) == RN_OK, "save with another run id");
    st = rn_checkpoint_match(weights, other_state, use, sizeof use, &id);
    CHECK(st == RN_ERR_MISMATCH, "another run's state is refused");
    spec.run_id = "not hex";
    CHECK(rn_checkpoint_save(&spec, model, trainer) == RN_ERR_ARG, "a bad run id is refused");
}

/* A state file with the given metadata values for epoch, position, seed, run_id, step. */
static rn_status position_of(const char *epoch, const char *position, const char *seed, const char *run,
                             const char *stp) {
    char path[600];
    snprintf(path, sizeof path, "%s/meta.safetensors", dir);
    st_meta meta[5] = {{"epoch", (char *)epoch}, {"position", (char *)position}, {"seed", (char *)seed},
                       {"run_id", (char *)run}, {"step", (char *)stp}};
    st_write(path, NULL, 0, meta, 5);
    rn_train_position pos;
    return rn_checkpoint_position(path, &pos);
}

static void test_metadata(void) {
    CHECK(position_of("3", "1280", "7", "3f2a", "120") == RN_OK, "valid metadata: %s", rn_last_error());
    const char *bad[][5] = {
        {"-1", "0", "0", "ab", "1"}, {"1e3", "0", "0", "ab", "1"}, {"1", " 5", "0", "ab", "1"},
        {"1", "0", "2147483648", "ab", "1"}, {"1", "0", "0", "AB", "1"}, {"1", "0", "0", "", "1"},
        {"1", "0", "0", "ab", "99999999999999999999"}, {"1", "0", "0", "0123456789abcdef0123456789abcdef0", "1"},
        {"9007199254740993", "0", "0", "ab", "1"}, {"1", "0x10", "0", "ab", "1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(position_of(bad[i][0], bad[i][1], bad[i][2], bad[i][3], bad[i][4]) == RN_ERR_FORMAT,
              "bad metadata %zu refused (%s)", i, rn_last_error());
    /* the step in the metadata must be the optimizer's */
    char path[600];
    snprintf(path, sizeof path, "%s/meta.safetensors", dir);
    CHECK(rn_trainer_save_state(trainer, path, (const char *[]){"step"}, (const char *[]){"1"}, 1) == RN_OK,
          "save a state with a wrong step");
    /* ... and refused before it changes anything: the trainer, a step further on, saves the
     * same bytes after the failed load as before it (the moments were once copied first) */
    step();
    char before[600], after[600];
    snprintf(before, sizeof before, "%s/before.safetensors", dir);
    snprintf(after, sizeof after, "%s/after.safetensors", dir);
    CHECK(rn_trainer_save_state(trainer, before, NULL, NULL, 0) == RN_OK, "save the state before");
    CHECK(rn_trainer_load_state(trainer, path, NULL, NULL) == RN_ERR_MISMATCH && strstr(rn_last_error(), "step"),
          "a state whose metadata step disagrees is refused: %s", rn_last_error());
    CHECK(rn_trainer_save_state(trainer, after, NULL, NULL, 0) == RN_OK, "save the state after");
    size_t na = 0, nb = 0;
    unsigned char *a = check_read_file(before, &na), *b = check_read_file(after, &nb);
    CHECK(a && b && na == nb && memcmp(a, b, na) == 0,
          "the refused state left the trainer's moments and step as they were");
    free(a);
    free(b);
}

static void test_lock(void) {
    int a, b;
    long holder;
    CHECK(rn_checkpoint_lock(weights, &a, &holder) == RN_OK, "take the lock: %s", rn_last_error());
    CHECK(rn_checkpoint_lock(weights, &b, &holder) == RN_ERR_IO && holder == (long)getpid() &&
              strstr(rn_last_error(), weights),
          "a second holder is refused, named: %s", rn_last_error());
    rn_checkpoint_unlock(weights, a);
    CHECK(rn_checkpoint_lock(weights, &b, &holder) == RN_OK, "free again after unlock");
    rn_checkpoint_unlock(weights, b);
    char lock[600];
    snprintf(lock, sizeof lock, "%s.lock", weights);
    CHECK(access(lock, F_OK) != 0, "the lock file is removed");
    char nowhere[600];
    snprintf(nowhere, sizeof nowhere, "%s/missing/x.safetensors", dir);
    CHECK(rn_checkpoint_lock(nowhere, &a, &holder) == RN_ERR_IO && holder == 0, "no folder: not a holder");
}

int main(void) {
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%s/test_checkpoint_XXXXXX", base);
    if (!mkdtemp(dir))
        return 1;
    snprintf(weights, sizeof weights, "%s/ck.safetensors", dir);
    snprintf(state, sizeof state, "%s/ck.optim.safetensors", dir);
    rn_checkpoint_backup_path(state, backup, sizeof backup);
    rn_set_threads(1);
    rn_train_config cfg;
    rn_train_config_default(&cfg);
    cfg.momentum = 0.9;
    cfg.lr = 1e-4;
    if (rn_model_create("d2l_resnet18", 1, 10, &model) != RN_OK || rn_trainer_create(model, &cfg, &trainer) != RN_OK)
        return 1;
    test_deaths();
    test_mismatch();
    test_metadata();
    test_lock();
    rn_trainer_free(trainer);
    rn_model_free(model);
    check_tmpdir_remove(dir);
    return check_done("test_checkpoint");
}
