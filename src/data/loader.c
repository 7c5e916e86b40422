/*
 * loader.c - float batches from an in-memory uint8 dataset, prepared on a
 * background thread.
 *
 * Determinism: a batch is named by (epoch, position) and its content is a
 * pure function of that name and the configuration - the order of epoch e
 * from a generator seeded by (seed, e), the crop offsets and flip of the
 * image at position i from one seeded by (seed, e, i). Thread timing only
 * decides when a batch is made, never what it holds.
 *
 * Hand-off: one worker thread and one internal batch buffer. The caller's
 * rn_loader_next waits for the batch it needs (asking for it if the worker
 * was preparing something else, as after rn_loader_set_state), copies it
 * out, and asks for the following batch at once, so the worker fills the
 * internal buffer while the caller computes on its copy. Everything the
 * worker touches is allocated and validated at creation, so it cannot fail.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/rng.h"
#include "core/status.h"
#include "data/dataset.h"
#include "data/resize.h"

#define LOADER_MAX_BATCH (1 << 20)
#define LOADER_MAX_PADDING 4096

typedef enum job_state { JOB_NONE, JOB_PENDING, JOB_DONE } job_state;

struct rn_loader {
    const rn_dataset *ds;
    rn_loader_config cfg;
    int c, h, w;                /* output image shape */
    int steps;                  /* batches per epoch */
    int end;                    /* images per epoch (fewer with drop_last) */
    float table[4][256];        /* u8 -> scaled, normalised float per channel */

    /* Owned by the worker while a job is pending. */
    rn_resize_plan *plan;       /* NULL when no resize */
    uint8_t *resized;           /* (h, w) one resized plane */
    int32_t *perm;              /* (count) order of perm_epoch */
    int64_t perm_epoch;         /* -1: none yet */
    float *x;                   /* (batch_size, c, h, w) */
    int32_t *labels;            /* (batch_size) */

    /* Shared, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int shutdown;
    job_state job;
    int64_t job_epoch, job_pos;
    int job_n;

    /* The caller's position. */
    int64_t epoch, position;
};

/* ---------------------------------------------------------------------------
 * Seeded randomness
 * ------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#define TAG_ORDER 0x4f52444552ULL   /* "ORDER" */
#define TAG_AUGMENT 0x4155474dULL   /* "AUGM" */

/* The order of epoch `epoch`: identity without shuffling, else Fisher-Yates
 * from a generator seeded by (seed, epoch). */
static void make_order(rn_loader *l, int64_t epoch) {
    int n = l->ds->count;
    for (int i = 0; i < n; i++)
        l->perm[i] = i;
    if (l->cfg.shuffle) {
        rn_rng r;
        rn_rng_seed(&r, mix64(mix64(l->cfg.seed ^ TAG_ORDER) ^ (uint64_t)epoch));
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(rn_rng_next(&r) % (uint64_t)(i + 1));
            int32_t t = l->perm[i];
            l->perm[i] = l->perm[j];
            l->perm[j] = t;
        }
    }
    l->perm_epoch = epoch;
}

/* ---------------------------------------------------------------------------
 * One image
 * ------------------------------------------------------------------------- */

/* Writes dataset image `index`, augmented with the draws for (epoch, pos),
 * to out: (c, h, w). */
static void make_image(rn_loader *l, int index, int64_t epoch, int64_t pos, float *out) {
    const rn_dataset *ds = l->ds;
    int pad = l->cfg.crop_padding, h = l->h, w = l->w;

    /* Always three draws, so turning one augmentation off leaves the others. */
    rn_rng r;
    rn_rng_seed(&r, mix64(mix64(mix64(l->cfg.seed ^ TAG_AUGMENT) ^ (uint64_t)epoch) ^
                          (uint64_t)pos));
    int oy = (int)(rn_rng_next(&r) % (uint64_t)(2 * pad + 1));
    int ox = (int)(rn_rng_next(&r) % (uint64_t)(2 * pad + 1));
    int flip = rn_rng_uniform(&r) < 0.5f && l->cfg.flip;

    size_t in_plane = (size_t)ds->height * ds->width;
    const uint8_t *img = ds->pixels + (size_t)index * ds->channels * in_plane;
    for (int c = 0; c < l->c; c++) {
        const uint8_t *plane = img + c * in_plane;
        if (l->plan) {
            rn_resize_plan_u8(l->plan, plane, l->resized);
            plane = l->resized;
        }
        const float *table = l->table[c];
        float *o = out + (size_t)c * h * w;
        /* Output (y, x) is padded-plane (y + oy, x' + ox), x' = x or w-1-x. */
        for (int y = 0; y < h; y++) {
            int sy = y + oy - pad;
            float *orow = o + (size_t)y * w;
            if (sy < 0 || sy >= h) {
                for (int x = 0; x < w; x++)
                    orow[x] = table[0];
                continue;
            }
            const uint8_t *row = plane + (size_t)sy * w;
            for (int x = 0; x < w; x++) {
                int sx = (flip ? w - 1 - x : x) + ox - pad;
                orow[x] = table[sx >= 0 && sx < w ? row[sx] : 0];
            }
        }
    }
}

/* ---------------------------------------------------------------------------
 * The worker
 * ------------------------------------------------------------------------- */

/* Fills l->x and l->labels with the batch at (epoch, pos); returns its size. */
static int make_batch(rn_loader *l, int64_t epoch, int64_t pos) {
    if (l->perm_epoch != epoch)
        make_order(l, epoch);
    int64_t left = l->end - pos;
    int n = left < l->cfg.batch_size ? (int)left : l->cfg.batch_size;
    size_t per_image = (size_t)l->c * l->h * l->w;
    for (int b = 0; b < n; b++) {
        int index = l->perm[pos + b];
        make_image(l, index, epoch, pos + b, l->x + (size_t)b * per_image);
        l->labels[b] = l->ds->labels[index];
    }
    return n;
}

static void *worker_main(void *arg) {
    rn_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->shutdown && l->job != JOB_PENDING)
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->shutdown)
            break;
        int64_t epoch = l->job_epoch, pos = l->job_pos;
        pthread_mutex_unlock(&l->mu);
        int n = make_batch(l, epoch, pos);
        pthread_mutex_lock(&l->mu);
        l->job_n = n;
        l->job = JOB_DONE;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Under mu: waits until no job is pending. */
static void wait_idle(rn_loader *l) {
    while (l->job == JOB_PENDING)
        pthread_cond_wait(&l->cv, &l->mu);
}

/* Under mu, worker idle: asks for the batch at (epoch, pos). */
static void submit(rn_loader *l, int64_t epoch, int64_t pos) {
    l->job_epoch = epoch;
    l->job_pos = pos;
    l->job = JOB_PENDING;
    pthread_cond_broadcast(&l->cv);
}

/* ---------------------------------------------------------------------------
 * Creation
 * ------------------------------------------------------------------------- */

static rn_status check_config(const rn_dataset *ds, const rn_loader_config *cfg) {
    if (!ds->pixels || !ds->labels || ds->count < 1 || ds->channels < 1 || ds->height < 1 ||
        ds->width < 1 || ds->num_classes < 1)
        return rn_fail(RN_ERR_ARG, "loader: empty or incomplete dataset (%d images of %dx%dx%d)",
                       ds->count, ds->channels, ds->height, ds->width);
    if (cfg->batch_size < 1 || cfg->batch_size > LOADER_MAX_BATCH)
        return rn_fail(RN_ERR_ARG, "loader: batch size %d is not in 1..%d", cfg->batch_size,
                       LOADER_MAX_BATCH);
    if (cfg->image_size < 0 || cfg->image_size > RN_RESIZE_MAX_SIDE)
        return rn_fail(RN_ERR_ARG, "loader: image size %d is not in 0..%d", cfg->image_size,
                       RN_RESIZE_MAX_SIDE);
    if (cfg->crop_padding < 0 || cfg->crop_padding > LOADER_MAX_PADDING)
        return rn_fail(RN_ERR_ARG, "loader: crop padding %d is not in 0..%d", cfg->crop_padding,
                       LOADER_MAX_PADDING);
    if (cfg->drop_last && ds->count < cfg->batch_size)
        return rn_fail(RN_ERR_ARG, "loader: drop_last with %d images and batch size %d leaves "
                       "no batch", ds->count, cfg->batch_size);
    if (cfg->normalize) {
        if (ds->channels > 4)
            return rn_fail(RN_ERR_ARG, "loader: normalisation takes at most 4 channels, the "
                           "dataset has %d", ds->channels);
        for (int c = 0; c < ds->channels; c++)
            if (!(cfg->std[c] > 0.0f) || !isfinite(cfg->std[c]) || !isfinite(cfg->mean[c]))
                return rn_fail(RN_ERR_ARG, "loader: channel %d: mean %g, std %g (std must be "
                               "positive and both finite)", c, cfg->mean[c], cfg->std[c]);
    } else if (ds->channels > 4) {
        /* The lookup table holds four channels. */
        return rn_fail(RN_ERR_UNSUPPORTED, "loader: %d channels (at most 4)", ds->channels);
    }
    for (int i = 0; i < ds->count; i++)
        if (ds->labels[i] < 0 || ds->labels[i] >= ds->num_classes)
            return rn_fail(RN_ERR_ARG, "loader: label %d of image %d is out of range 0..%d",
                           ds->labels[i], i, ds->num_classes - 1);
    return RN_OK;
}

/* The lookup tables: ToTensor's u / 255, then Normalize's (v - mean) / std. */
static void make_tables(rn_loader *l) {
    for (int c = 0; c < l->c; c++)
        for (int u = 0; u < 256; u++) {
            float v = (float)u / 255.0f;
            if (l->cfg.normalize)
                v = (v - l->cfg.mean[c]) / l->cfg.std[c];
            l->table[c][u] = v;
        }
}

rn_status rn_loader_create(const rn_dataset *ds, const rn_loader_config *cfg, rn_loader **out) {
    if (!out)
        return rn_fail(RN_ERR_ARG, "rn_loader_create: NULL output");
    *out = NULL;
    if (!ds || !cfg)
        return rn_fail(RN_ERR_ARG, "rn_loader_create: NULL dataset or configuration");
    RN_TRY(check_config(ds, cfg));

    rn_loader *l = calloc(1, sizeof *l);
    if (!l)
        return rn_fail(RN_ERR_NOMEM, "loader: out of memory");
    l->ds = ds;
    l->cfg = *cfg;
    l->c = ds->channels;
    l->h = cfg->image_size ? cfg->image_size : ds->height;
    l->w = cfg->image_size ? cfg->image_size : ds->width;
    l->steps = cfg->drop_last ? ds->count / cfg->batch_size
                              : (ds->count + cfg->batch_size - 1) / cfg->batch_size;
    l->end = cfg->drop_last ? l->steps * cfg->batch_size : ds->count;
    l->perm_epoch = -1;
    make_tables(l);

    rn_status st = RN_OK;
    size_t plane = (size_t)l->h * l->w, floats;
    if (l->h != ds->height || l->w != ds->width) {
        st = rn_resize_plan_create(ds->height, ds->width, l->h, l->w, &l->plan);
        if (st == RN_OK && !(l->resized = malloc(plane)))
            st = rn_fail(RN_ERR_NOMEM, "loader: out of memory");
    }
    if (st == RN_OK && (!rn_size_mul(plane, (size_t)l->c * cfg->batch_size, &floats) ||
                        !rn_size_mul(floats, sizeof(float), &floats) ||
                        !(l->x = rn_alloc(floats)) ||
                        !(l->labels = malloc((size_t)cfg->batch_size * sizeof *l->labels)) ||
                        !(l->perm = malloc((size_t)ds->count * sizeof *l->perm))))
        st = rn_fail(RN_ERR_NOMEM, "loader: out of memory for a batch of %d x %dx%dx%d",
                     cfg->batch_size, l->c, l->h, l->w);
    int sync_ready = 0;
    if (st == RN_OK) {
        if (pthread_mutex_init(&l->mu, NULL) != 0 || pthread_cond_init(&l->cv, NULL) != 0)
            st = rn_fail(RN_ERR_NOMEM, "loader: cannot create a mutex");
        else
            sync_ready = 1;
    }
    if (st == RN_OK && pthread_create(&l->thread, NULL, worker_main, l) != 0)
        st = rn_fail(RN_ERR_NOMEM, "loader: cannot start the background thread");
    if (st != RN_OK) {
        if (sync_ready) {
            pthread_mutex_destroy(&l->mu);
            pthread_cond_destroy(&l->cv);
        }
        rn_resize_plan_free(l->plan);
        free(l->resized);
        rn_free(l->x);
        free(l->labels);
        free(l->perm);
        free(l);
        return st;
    }
    pthread_mutex_lock(&l->mu);
    submit(l, 0, 0);
    pthread_mutex_unlock(&l->mu);
    *out = l;
    return RN_OK;
}

void rn_loader_free(rn_loader *l) {
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->shutdown = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    rn_resize_plan_free(l->plan);
    free(l->resized);
    rn_free(l->x);
    free(l->labels);
    free(l->perm);
    free(l);
}

/* ---------------------------------------------------------------------------
 * Batches and state
 * ------------------------------------------------------------------------- */

int rn_loader_steps(const rn_loader *l) { return l ? l->steps : 0; }

void rn_loader_shape(const rn_loader *l, int *channels, int *height, int *width) {
    if (channels)
        *channels = l ? l->c : 0;
    if (height)
        *height = l ? l->h : 0;
    if (width)
        *width = l ? l->w : 0;
}

rn_status rn_loader_next(rn_loader *l, float *x, int32_t *labels, int *n) {
    if (n)
        *n = 0;
    if (!l || !x || !labels || !n)
        return rn_fail(RN_ERR_ARG, "rn_loader_next: NULL argument");
    if (l->position >= l->end) {
        l->epoch++;
        l->position = 0;
        return RN_OK;
    }
    pthread_mutex_lock(&l->mu);
    if (l->job == JOB_NONE || l->job_epoch != l->epoch || l->job_pos != l->position) {
        wait_idle(l);
        submit(l, l->epoch, l->position);
    }
    wait_idle(l);
    int got = l->job_n;
    memcpy(x, l->x, (size_t)got * l->c * l->h * l->w * sizeof(float));
    memcpy(labels, l->labels, (size_t)got * sizeof *labels);
    l->position += got;
    if (l->position < l->end)
        submit(l, l->epoch, l->position);
    else
        submit(l, l->epoch + 1, 0);
    pthread_mutex_unlock(&l->mu);
    *n = got;
    return RN_OK;
}

void rn_loader_get_state(const rn_loader *l, rn_loader_state *st) {
    if (!l || !st)
        return;
    st->epoch = l->epoch;
    st->position = l->position;
}

rn_status rn_loader_set_state(rn_loader *l, const rn_loader_state *st) {
    if (!l || !st)
        return rn_fail(RN_ERR_ARG, "rn_loader_set_state: NULL argument");
    if (st->epoch < 0 || st->position < 0 || st->position > l->end)
        return rn_fail(RN_ERR_ARG, "loader state: epoch %lld, position %lld (position must be "
                       "in 0..%d)", (long long)st->epoch, (long long)st->position, l->end);
    l->epoch = st->epoch;
    l->position = st->position;
    return RN_OK;
}
