/* train_ckpt.c - checkpoints as `resnet train` writes and resumes them (see train_ckpt.h). */
#include "train_ckpt.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "io/file.h"
#include "io/json.h"

/* ---------------------------------------------------------------------------
 * Saving
 * ------------------------------------------------------------------------- */

int train_ckpt_open(train_ckpt *c, const char *weights, const char *state) {
    memset(c, 0, sizeof *c);
    c->lock_fd = -1;
    c->committed = -1;
    rn_checkpoint_new_run_id(c->run_id);
    const char *pause = getenv("RESNET_TEST_SAVE_PAUSE_MS");
    c->test_hook = pause != NULL;
    c->pause_ms = pause ? atoi(pause) : 0;
    if (!weights)
        return 0;
    snprintf(c->weights, sizeof c->weights, "%s", weights);
    snprintf(c->state, sizeof c->state, "%s", state);
    long holder;
    if (rn_checkpoint_lock(c->weights, &c->lock_fd, &holder) != RN_OK) {
        if (holder) {
            cli_error("train", "%s; give another --save path or stop that run", rn_last_error());
            return EXIT_RUNTIME;
        }
        cli_error("train", "%s (checked before training, so that no work is lost)", rn_last_error());
        return EXIT_WRITE;
    }
    return 0;
}

void train_ckpt_close(train_ckpt *c) {
    rn_checkpoint_unlock(c->weights, c->lock_fd);
    c->lock_fd = -1;
}

static void test_hook(void *ctx, const char *phase, int64_t step) {
    const train_ckpt *c = ctx;
    fprintf(stderr, "rn-test-hook: checkpoint step %" PRId64 " %s\n", step, phase);
    fflush(stderr);
    if (c->pause_ms > 0 && strcmp(phase, "done") != 0) {
        struct timespec ts = {c->pause_ms / 1000, (long)(c->pause_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            continue;
    }
}

int train_ckpt_save(train_ckpt *c, const rn_model *m, const rn_trainer *t, const char *const *wkeys,
                    const char *const *wvals, int wn, const char *const *skeys, const char *const *svals, int sn) {
    rn_checkpoint_spec spec = {c->weights, c->state, c->run_id, wkeys, wvals, wn, skeys, svals, sn,
                               c->test_hook ? test_hook : NULL, c};
    rn_status st = rn_checkpoint_save(&spec, m, t);
    if (st == RN_OK) {
        c->committed = rn_trainer_steps(t);
        return 0;
    }
    cli_error("train", "%s", rn_last_error());
    if (c->committed >= 0)
        fprintf(stderr, "resnet train: training stopped at step %" PRId64 "; the last checkpoint, %s at step %" PRId64
                ", is intact\n", rn_trainer_steps(t), c->weights, c->committed);
    else
        fprintf(stderr, "resnet train: training stopped at step %" PRId64 "; no checkpoint was committed\n",
                rn_trainer_steps(t));
    return st == RN_ERR_IO ? EXIT_WRITE : EXIT_RUNTIME;
}

/* ---------------------------------------------------------------------------
 * Resuming
 * ------------------------------------------------------------------------- */

int train_ckpt_find(const char *weights, const char *state, char *use, size_t cap, rn_train_position *pos,
                    int say) {
    rn_checkpoint_id id;
    if (rn_checkpoint_match(weights, state, use, cap, &id) != RN_OK ||
        rn_checkpoint_position(use, pos) != RN_OK) {
        char why[1024];
        snprintf(why, sizeof why, "%s", rn_last_error());
        rn_model *m = NULL; /* an int8 file has no optimizer state to miss: say what it is */
        if (rn_model_load(weights, NULL, &m) == RN_OK && rn_model_is_quantized(m))
            cli_error("train", "--resume %s is an int8 model, quantized for inference: a run resumes from its "
                      "float32 checkpoint", weights);
        else
            cli_error("train", "%s", why);
        rn_model_free(m);
        return 0;
    }
    if (say && strcmp(use, state) != 0)
        printf("%s is from a save that was interrupted before %s was replaced; using %s, which belongs to it\n",
               state, weights, use);
    return 1;
}

/* The step a log record belongs to ("step" of a step record, "steps" of an
 * epoch record), or -1. */
static int64_t record_step(const char *line, size_t len) {
    json_value v;
    if (json_parse(line, len, 0, &v) != RN_OK)
        return -1;
    const json_value *s = json_get(&v, "step");
    if (!s)
        s = json_get(&v, "steps");
    int64_t step = s && s->type == JSON_NUMBER && s->is_int ? s->integer : -1;
    json_free(&v);
    return step;
}

int train_log_trim(const char *log, int64_t step) {
    unsigned char *buf = NULL;
    size_t len = 0;
    FILE *probe = fopen(log, "rb");
    if (!probe)
        return 1;
    fclose(probe);
    if (rn_file_read_all(log, &buf, &len) != RN_OK) {
        cli_error("train", "%s", rn_last_error());
        return 0;
    }
    size_t kept = 0, dropped = 0;
    for (size_t at = 0; at < len;) {
        unsigned char *nl = memchr(buf + at, '\n', len - at);
        if (!nl) { /* a last line cut short */
            dropped++;
            break;
        }
        size_t n = (size_t)(nl - (buf + at)) + 1;
        if (record_step((const char *)buf + at, n - 1) > step)
            dropped++;
        else {
            memmove(buf + kept, buf + at, n);
            kept += n;
        }
        at += n;
    }
    int ok = 1;
    if (dropped) {
        if (rn_file_write_all(log, buf, kept) != RN_OK) {
            cli_error("train", "%s", rn_last_error());
            ok = 0;
        } else {
            printf("log: %zu record%s after step %" PRId64 " dropped from %s\n", dropped, dropped == 1 ? "" : "s",
                   step, log);
        }
    }
    free(buf);
    return ok;
}

/* ---------------------------------------------------------------------------
 * The command that resumes
 * ------------------------------------------------------------------------- */

static void print_quoted(const char *s) {
    int plain = *s != '\0';
    for (const char *p = s; *p && plain; p++)
        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:,=+-@%", *p) != NULL;
    if (plain) {
        fputs(s, stdout);
        return;
    }
    putchar('\'');
    for (const char *p = s; *p; p++)
        if (*p == '\'')
            fputs("'\\''", stdout);
        else
            putchar(*p);
    putchar('\'');
}

void train_print_resume(const arg_table *t, const char *save, const char *flag, const char *value) {
    fputs("  resnet train", stdout);
    for (int i = 0; i < t->count; i++) {
        const arg_spec *s = &t->specs[i];
        if (!s->set || s->kind == ARG_POSITIONAL || strcmp(s->name, "resume") == 0 ||
            strcmp(s->name, "overwrite") == 0 ||
            (flag && strcmp(s->name, flag) == 0))
            continue;
        printf(" --%s", s->name);
        if (s->kind != ARG_FLAG) {
            putchar(' ');
            print_quoted(s->value);
        }
    }
    if (flag) {
        printf(" --%s ", flag);
        print_quoted(value);
    }
    fputs(" --resume ", stdout);
    print_quoted(save);
    putchar('\n');
}
