/*
 * runlog.c - reading the training log (see runlog.h).
 *
 * Each line goes through json_parse; the parser keeps integers but not the
 * values of numbers with a fraction or an exponent, so those are read back
 * with strtod from the line at the value's offset.
 */
#include "train/runlog.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

static const char *const METRIC_KEYS[RN_LOG_METRICS] = {
    "train_loss", "test_loss", "train_acc", "test_acc", "test_top5", "lr", "seconds",
    "images_per_second", "elapsed", "steps", "ema_test_loss", "ema_test_acc"};

const char *rn_log_metric_key(rn_log_metric m) {
    return m >= 0 && m < RN_LOG_METRICS ? METRIC_KEYS[m] : "";
}

double rn_json_number(const json_value *v, const char *text) {
    if (v->is_int)
        return (double)v->integer;
    return strtod(text + v->offset, NULL);
}

/* *out = obj[key] as a number; NAN when absent or null. */
static rn_status get_number(const json_value *obj, const char *key, const char *line,
                            const char *path, size_t lineno, double *out) {
    const json_value *v = json_get(obj, key);
    *out = NAN;
    if (!v || v->type == JSON_NULL)
        return RN_OK;
    if (v->type != JSON_NUMBER)
        return rn_fail(RN_ERR_FORMAT, "%s:%zu: \"%s\" is not a number", path, lineno, key);
    *out = rn_json_number(v, line);
    if (!isfinite(*out))
        return rn_fail(RN_ERR_FORMAT, "%s:%zu: \"%s\" is out of range", path, lineno, key);
    return RN_OK;
}

static rn_status add_epoch(rn_run_log *log, const rn_log_epoch *rec, const char *path) {
    for (size_t i = 0; i < log->count; i++) {
        if (log->epochs[i].epoch == rec->epoch) {   /* a resumed run: the later record wins */
            log->epochs[i] = *rec;
            return RN_OK;
        }
    }
    if (log->count == log->cap) {
        size_t cap = log->cap ? 2 * log->cap : 64;
        rn_log_epoch *r = realloc(log->epochs, cap * sizeof *r);
        if (!r)
            return rn_fail(RN_ERR_NOMEM, "%s: out of memory after %zu records", path, log->count);
        log->epochs = r;
        log->cap = cap;
    }
    log->epochs[log->count++] = *rec;
    return RN_OK;
}

/* Keeps the "run" object of the record parsed in *obj (taking it out of
 * *obj), with a copy of its line, which holds its numbers' text. */
static rn_status keep_run(rn_run_log *log, json_value *obj, const char *line, size_t len,
                          const char *path) {
    char *copy = malloc(len + 1);
    if (!copy)
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory for the run record", path);
    memcpy(copy, line, len + 1);
    json_free(&log->run);
    free(log->run_line);
    log->run_line = copy;
    for (size_t i = 0; i < obj->count; i++) {
        json_member *m = &obj->members[i];
        if (strcmp(m->key, "run") == 0) {
            log->run = m->value;
            m->value.type = JSON_NULL;
        }
    }
    return RN_OK;
}

/* One line (NUL-terminated, len bytes, newline stripped). */
static rn_status read_line(const char *line, size_t len, const char *path, size_t lineno,
                           rn_run_log *log) {
    json_value obj;
    if (json_parse(line, len, 0, &obj) != RN_OK)
        return rn_fail_context(RN_ERR_FORMAT, "%s:%zu", path, lineno);
    rn_status st = RN_OK;
    const json_value *run = json_get(&obj, "run");
    if (obj.type != JSON_OBJECT) {
        st = rn_fail(RN_ERR_FORMAT, "%s:%zu: expected a JSON object", path, lineno);
    } else if (json_get(&obj, "epoch") && !json_get(&obj, "step")) {
        rn_log_epoch rec;
        st = get_number(&obj, "epoch", line, path, lineno, &rec.epoch);
        if (st == RN_OK && isnan(rec.epoch))
            st = rn_fail(RN_ERR_FORMAT, "%s:%zu: \"epoch\" is null", path, lineno);
        for (int m = 0; m < RN_LOG_METRICS && st == RN_OK; m++)
            st = get_number(&obj, METRIC_KEYS[m], line, path, lineno, &rec.v[m]);
        if (st == RN_OK)
            st = add_epoch(log, &rec, path);
    } else if (run && run->type == JSON_OBJECT) {
        st = keep_run(log, &obj, line, len, path);
    }
    json_free(&obj);
    return st;
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

static int by_epoch(const void *a, const void *b) {
    double x = ((const rn_log_epoch *)a)->epoch, y = ((const rn_log_epoch *)b)->epoch;
    return (x > y) - (x < y);
}

rn_status rn_run_log_read(const char *path, rn_run_log *log) {
    memset(log, 0, sizeof *log);
    if (!path)
        return rn_fail(RN_ERR_ARG, "rn_run_log_read: NULL path");
    FILE *f = fopen(path, "rb");
    if (!f)
        return rn_fail(RN_ERR_IO, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t got;
    rn_status st = RN_OK;
    while (st == RN_OK && (got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        int complete = len > 0 && line[len - 1] == '\n';
        if (complete)
            line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (strlen(line) != len) {
            st = rn_fail(RN_ERR_FORMAT, "%s:%zu: NUL byte in the line", path, lineno);
            break;
        }
        if (blank(line, len))
            continue;
        st = read_line(line, len, path, lineno, log);
        if (st != RN_OK && !complete && feof(f))
            st = RN_OK;    /* a last line cut short by a killed run */
    }
    if (st == RN_OK && ferror(f))
        st = rn_fail(RN_ERR_IO, "%s: read error after line %zu", path, lineno);
    free(line);
    fclose(f);
    if (st == RN_OK && log->count)
        qsort(log->epochs, log->count, sizeof *log->epochs, by_epoch);
    return st;
}

void rn_run_log_free(rn_run_log *log) {
    if (!log)
        return;
    free(log->epochs);
    json_free(&log->run);
    free(log->run_line);
    memset(log, 0, sizeof *log);
}
