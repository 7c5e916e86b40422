/*
 * train_dist.c - data-parallel `resnet train` over the process group
 * (contract in train_dist.h).
 */
#include "train_dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/model.h"

/* ---------------------------------------------------------------------------
 * Flags and hooks
 * ------------------------------------------------------------------------- */

int train_dist_start(train_dist *d, const arg_table *t) {
    memset(d, 0, sizeof *d);
    d->rank = dist_rank();
    d->size = dist_size();
    snprintf(d->what, sizeof d->what, d->size > 1 ? "train: rank %d" : "train", d->rank);
    int mb, timeout;
    if (!args_int(t, "bucket-mb", 1, 1024, &mb) || !args_int(t, "dist-timeout", 1, 86400, &timeout))
        return 0;
    d->bucket_floats = (size_t)mb * (1u << 20) / sizeof(float);
    dist_set_timeout(timeout);
    dist_set_deterministic(args_flag(t, "deterministic"));
    return 1;
}

static void on_grads(void *ctx, float *grads, size_t offset, size_t count) {
    train_dist *d = ctx;
    dist_reducer_ready(d->red, grads, offset, count);
}

/* Gradients final; this step's loss and correct images over the global batch
 * (every rank's share is as large, so the mean of the means is the mean). */
static void on_update(void *ctx, float *grads, size_t count, float *loss, int *correct) {
    train_dist *d = ctx;
    (void)grads, (void)count;
    dist_reducer_finish(d->red);
    double v[2] = {*loss, *correct};
    dist_sum(v, 2, "adding up the losses");
    *loss = (float)(v[0] / d->size);
    *correct = (int)v[1];
}

static void on_bn(void *ctx, double *v, size_t len) {
    (void)ctx;
    dist_sum(v, len, "synchronising BatchNorm statistics");
}

int train_dist_attach(train_dist *d, const arg_table *t, rn_model *m, rn_trainer *tr) {
    d->m = m;
    d->sync_bn = args_flag(t, "sync-bn"); /* after --resume gave it the checkpoint's value */
    if (d->size == 1)
        return 1;
    d->red = dist_reducer_create(m->n_params, d->bucket_floats, m->n_tensors + 1);
    if (!d->red)
        return 0;
    rn_trainer_set_grad_hook(tr, on_grads, d);
    rn_trainer_set_update_hook(tr, on_update, d);
    if (d->sync_bn)
        rn_trainer_set_bn_sync(tr, on_bn, d);
    d->alone_s = dist_reducer_time_alone(d->red, 3);
    return 1;
}

void train_dist_free(train_dist *d) {
    dist_reducer_free(d->red);
    d->red = NULL;
}

/* ---------------------------------------------------------------------------
 * The same configuration everywhere
 * ------------------------------------------------------------------------- */

#define DESC_CAP 16384

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/* A file's last two path components (class folder and name): the same
 * wherever the dataset is mounted. */
static const char *path_tail(const char *path) {
    const char *end = path + strlen(path), *p = end;
    int slashes = 0;
    while (p > path && slashes < 2)
        if (*--p == '/')
            slashes++;
    return slashes == 2 ? p + 1 : path;
}

static int describe_data(char *buf, size_t cap, const char *split, const rn_dataset *ds) {
    uint64_t h = hash_bytes(0xcbf29ce484222325ULL, ds->labels, (size_t)ds->count * sizeof *ds->labels);
    if (ds->pixels)
        h = hash_bytes(h, ds->pixels, (size_t)ds->count * ds->channels * ds->height * ds->width);
    /* an image folder: each file's class folder, name and size (its bytes are not read here:
     * the size tells most copies apart that differ) */
    for (int i = 0; ds->paths && i < ds->count; i++) {
        const char *tail = path_tail(ds->paths[i]);
        h = hash_bytes(h, tail, strlen(tail) + 1);
        struct stat sb;
        const int64_t size = stat(ds->paths[i], &sb) == 0 ? (int64_t)sb.st_size : -1;
        h = hash_bytes(h, &size, sizeof size);
    }
    return snprintf(buf, cap, "%s data: %d images of %dx%dx%d, %d classes, content %016llx\n", split,
                    ds->count, ds->channels, ds->height, ds->width, ds->num_classes, (unsigned long long)h);
}

/* This rank's configuration, one fact a line. */
static void describe(char *buf, const arg_table *t, const rn_dataset *train, const rn_dataset *test,
                     const rn_model *m, int64_t steps) {
    size_t used = (size_t)snprintf(buf, DESC_CAP, "resnet %s\n", RN_VERSION);
    for (int i = 0; i < t->count && used < DESC_CAP; i++) {
        const arg_spec *s = &t->specs[i];
        if (strcmp(s->name, "threads") == 0 || strcmp(s->name, "quiet") == 0 || strcmp(s->name, "data") == 0)
            continue; /* per rank, or a path that may differ between nodes (the content is checked) */
        const char *v = s->kind == ARG_FLAG ? (args_flag(t, s->name) ? "on" : "off") : args_str(t, s->name);
        /* a number as its value, not its spelling (--lr 0.05 on one rank, 5e-2 on another) */
        char *end = NULL, num[32];
        const double d = v && *v ? strtod(v, &end) : 0.0;
        if (end && end != v && *end == '\0' && isfinite(d) && snprintf(num, sizeof num, "%.15g", d) > 0)
            v = num;
        used += (size_t)snprintf(buf + used, DESC_CAP - used, "--%s %s\n", s->name, v ? v : "");
    }
    if (used < DESC_CAP)
        used += (size_t)describe_data(buf + used, DESC_CAP - used, "training", train);
    if (used < DESC_CAP)
        used += (size_t)describe_data(buf + used, DESC_CAP - used, "test", test);
    uint64_t h = hash_bytes(0xcbf29ce484222325ULL, m->params, m->n_params * sizeof *m->params);
    if (used < DESC_CAP)
        used += (size_t)snprintf(buf + used, DESC_CAP - used, "model: %s, %zu floats, weights %016llx\n",
                                 m->arch->name, m->n_params, (unsigned long long)h);
    if (used < DESC_CAP)
        snprintf(buf + used, DESC_CAP - used, "optimizer steps taken: %lld\n", (long long)steps);
}

/* The next line of *p (without its newline) into line; advances *p. */
static int next_line(const char **p, char *line, size_t cap) {
    if (!**p)
        return 0;
    size_t n = strcspn(*p, "\n");
    snprintf(line, cap, "%.*s", (int)n, *p);
    *p += n + ((*p)[n] == '\n');
    return 1;
}

int train_dist_check(const train_dist *d, int ready, const arg_table *t, const rn_dataset *train,
                     const rn_dataset *test, const rn_model *m, int64_t steps) {
    if (d->size == 1)
        return ready ? 1 : -1;
    double failed = !ready;
    dist_sum(&failed, 1, "waiting for every rank to set up");
    if (failed > 0) {
        if (ready && d->rank == 0)
            cli_error("train", "%.0f of the %d ranks could not set up (see their messages); not starting", failed,
                      d->size);
        return -1;
    }
    char *mine = calloc(1, DESC_CAP);
    char *all = d->rank == 0 ? calloc((size_t)d->size, DESC_CAP) : NULL;
    if (!mine || (d->rank == 0 && !all)) {
        cli_error(d->what, "out of memory comparing the ranks' configurations");
        dist_abort(1);
    }
    describe(mine, t, train, test, m, steps);
    dist_gather(mine, DESC_CAP, all, "comparing the ranks' configurations");
    int differ = 0;
    for (int r = 1; d->rank == 0 && r < d->size; r++) {
        const char *a = all, *b = all + (size_t)r * DESC_CAP;
        char la[512], lb[512];
        for (int shown = 0;;) {
            la[0] = lb[0] = '\0';
            int more_a = next_line(&a, la, sizeof la), more_b = next_line(&b, lb, sizeof lb);
            if (!more_a && !more_b)
                break;
            if (strcmp(la, lb) == 0)
                continue;
            differ = 1;
            if (shown++ < 4)
                cli_error("train", "rank %d does not match rank 0: %s (rank 0: %s)", r, lb, la);
        }
    }
    dist_broadcast(&differ, sizeof differ, "comparing the ranks' configurations");
    if (differ && d->rank == 0)
        cli_error("train", "every rank must train the same model on the same data with the same flags; "
                           "not starting");
    free(mine);
    free(all);
    return !differ;
}

/* ---------------------------------------------------------------------------
 * Replicas, evaluation, figures
 * ------------------------------------------------------------------------- */

void train_dist_sync_model(const train_dist *d) {
    if (d->size == 1)
        return;
    rn_model *m = d->m;
    if (!d->sync_bn) {
        size_t n = 0;
        for (int i = 0; i < m->n_tensors; i++)
            if (m->tensors[i].f32 && !m->tensors[i].trainable)
                n += m->tensors[i].numel;
        float *buf = malloc((n ? n : 1) * sizeof *buf);
        if (!buf) {
            cli_error(d->what, "out of memory sending the BatchNorm statistics");
            dist_abort(1);
        }
        for (int pass = 0; pass < 2; pass++) {
            size_t at = 0;
            for (int i = 0; i < m->n_tensors; i++) {
                const rn_tensor_ref *r = &m->tensors[i];
                if (!r->f32 || r->trainable)
                    continue;
                if (pass == 0)
                    memcpy(buf + at, r->f32, r->numel * sizeof *buf);
                else
                    memcpy(r->f32, buf + at, r->numel * sizeof *buf);
                at += r->numel;
            }
            if (pass == 0)
                dist_broadcast(buf, n * sizeof *buf, "sending rank 0's BatchNorm statistics");
        }
        free(buf);
        rn_model_params_changed(m);
    }
    uint64_t h = hash_bytes(0xcbf29ce484222325ULL, m->params, m->n_params * sizeof *m->params);
    uint64_t *hs = d->rank == 0 ? calloc((size_t)d->size, sizeof *hs) : NULL;
    if (d->rank == 0 && !hs)
        dist_abort(1);
    dist_gather(&h, sizeof h, hs, "comparing the replicas");
    int bad = -1;
    for (int r = 1; d->rank == 0 && r < d->size && bad < 0; r++)
        if (hs[r] != hs[0])
            bad = r;
    free(hs);
    dist_broadcast(&bad, sizeof bad, "comparing the replicas");
    if (bad >= 0) {
        if (d->rank == 0)
            cli_error("train", "the weights of rank %d no longer equal rank 0's (the all-reduce did not give "
                               "every rank the same sum); rerun with --deterministic", bad);
        dist_abort(1);
    }
}

typedef struct eval_scale {
    rn_eval_progress fn;
    void *ctx;
    int size;
} eval_scale;

/* Rank 0's own progress, scaled to the whole test set. */
static void scaled_progress(void *ctx, int64_t done, int64_t total) {
    eval_scale *s = ctx;
    s->fn(s->ctx, done * s->size, total * s->size);
}

void train_dist_share_model(const train_dist *d, rn_model *m) {
    if (d->size == 1)
        return;
    dist_broadcast(m->params, m->n_params * sizeof *m->params, "sending rank 0's moving average of the weights");
    rn_model_params_changed(m);
}

rn_status train_dist_evaluate(const train_dist *d, rn_model *m, const rn_dataset *test,
                              const rn_loader_config *cfg, rn_eval_progress progress, void *ctx,
                              rn_eval_result *out) {
    if (d->size == 1)
        return rn_evaluate(m, test, cfg, progress, ctx, out);
    /* rank r: images [count * r / N, count * (r + 1) / N) */
    rn_dataset part = *test;
    int lo = (int)((int64_t)test->count * d->rank / d->size);
    int hi = (int)((int64_t)test->count * (d->rank + 1) / d->size);
    part.count = hi - lo;
    part.labels = test->labels + lo;
    if (test->pixels)
        part.pixels = test->pixels + (size_t)lo * test->channels * test->height * test->width;
    if (test->paths)
        part.paths = test->paths + lo;
    rn_eval_result mine = {0};
    rn_status st = RN_OK;
    eval_scale sc = {progress, ctx, d->size};
    if (part.count > 0)
        st = rn_evaluate(m, &part, cfg, progress && d->rank == 0 ? scaled_progress : NULL, &sc, &mine);
    if (st != RN_OK) {
        cli_error(d->what, "evaluating: %s", rn_last_error());
        dist_abort(1);
    }
    const int K = rn_model_num_classes(m);
    const size_t n = 4 + (size_t)K * K;
    double *v = calloc(n, sizeof *v);
    memset(out, 0, sizeof *out);
    out->confusion = calloc((size_t)K * K, sizeof *out->confusion);
    if (!v || !out->confusion) {
        cli_error(d->what, "out of memory adding up the evaluation");
        dist_abort(1);
    }
    v[0] = (double)mine.count;
    v[1] = mine.loss * (double)mine.count;
    v[2] = (double)mine.top1;
    v[3] = (double)mine.top5;
    for (size_t i = 0; mine.confusion && i < (size_t)K * K; i++)
        v[4 + i] = (double)mine.confusion[i];
    rn_eval_result_free(&mine);
    dist_sum(v, n, "adding up the evaluation");
    out->count = (int64_t)v[0];
    out->loss = v[0] > 0 ? v[1] / v[0] : 0.0;
    out->top1 = (int64_t)v[2];
    out->top5 = (int64_t)v[3];
    out->num_classes = K;
    for (size_t i = 0; i < (size_t)K * K; i++)
        out->confusion[i] = (int64_t)v[4 + i];
    free(v);
    return RN_OK;
}

void train_dist_summary(const train_dist *d, FILE *f) {
    if (d->size == 1 || d->rank != 0 || !d->red)
        return;
    dist_reducer_stats st;
    dist_reducer_get_stats(d->red, &st);
    if (st.steps == 0)
        return;
    double in_ms = st.inline_s / st.steps * 1e3, wait_ms = st.wait_s / st.steps * 1e3;
    double alone_ms = d->alone_s * 1e3;
    double hidden = alone_ms > 0 ? 1.0 - (in_ms + wait_ms) / alone_ms : 0.0;
    hidden = hidden < 0 ? 0 : hidden > 1 ? 1 : hidden;
    fprintf(f, "data parallel: %d ranks; %.1f MiB of gradients all-reduced per step in %.3g buckets; "
               "all-reduce alone %.1f ms; per step %.1f ms in MPI calls during backward + %.1f ms waiting "
               "before the update: %.0f%% of the all-reduce hidden behind backward\n",
            d->size, st.floats_per_step * 4.0 / 1048576.0, (double)st.buckets / st.steps, alone_ms, in_ms,
            wait_ms, hidden * 100.0);
}
