/*
 * loader.c - float batches from a dataset, prepared on a background thread:
 * from in-memory uint8 pixels, or decoded and transformed from image files.
 *
 * Determinism: a batch is named by (epoch, position) and its content is a
 * pure function of that name and the configuration - the order of epoch e
 * from a generator seeded by (seed, e), the crop offsets and flip of the
 * image at position i from one seeded by (seed, e, i) (its random erasing
 * and TrivialAugment / RandAugment from others, so that turning them on
 * leaves them). Thread timing only decides when a batch is made, never what
 * it holds.
 *
 * Hand-off: one worker thread and one internal batch buffer. The caller's
 * rn_loader_next waits for the batch it needs (asking for it if the worker
 * was preparing something else, as after rn_loader_set_state), copies it
 * out, and asks for the following batch at once, so the worker fills the
 * internal buffer while the caller computes on its copy.
 *
 * Sources: in-memory images are made one after another from buffers
 * allocated and validated at creation, so they cannot fail. Image files are
 * decoded by an OpenMP team the worker starts for each batch, each image
 * into its own slot of the batch, so the result does not depend on which
 * thread made which image. A file that fails is reported from the batch's
 * lowest-numbered failing image, whatever the timing.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/rng.h"
#include "core/status.h"
#include "core/threads.h"
#include "data/augment.h"
#include "data/dataset.h"
#include "data/resize.h"
#include "data/transform.h"
#include "io/image.h"

#define LOADER_MAX_BATCH (1 << 20)
#define LOADER_MAX_PADDING 4096
#define LOADER_MSG_CAP 1024

typedef enum job_state { JOB_NONE, JOB_PENDING, JOB_DONE } job_state;

struct rn_loader {
    const rn_dataset *ds;
    rn_loader_config cfg;
    int c, h, w;                /* output image shape */
    int steps;                  /* batches per epoch */
    int end;                    /* positions per epoch: the images (fewer with drop_last;
                                   repeat_aug: RASampler's cut) */
    int reps;                   /* each image of the order this many times in a row (1: once) */
    int shards, shard;          /* 1, 0 unless sharded */
    int cap;                    /* images of one handed-out batch: batch_size / shards */
    float table[4][256];        /* u8 -> scaled, normalised float per channel */
    int files;                  /* the dataset is a list of image files */
    rn_preprocess_config pp;    /* files: the transform */

    /* Owned by the worker while a job is pending. */
    rn_resize_plan *plan;       /* NULL when no resize */
    uint8_t *resized;           /* (h, w) one resized plane */
    uint8_t *bytes, *scratch;   /* in memory with auto_augment: (c, h, w) each */
    int32_t *perm;              /* (count) order of perm_epoch */
    int64_t perm_epoch;         /* -1: none yet */
    float *x;                   /* (cap, c, h, w) */
    int32_t *labels;            /* (cap) */
    int err_b;                  /* files: lowest failing image of the batch, or n */
    rn_status err_status;
    char err_msg[LOADER_MSG_CAP];

    /* Shared, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int shutdown;
    job_state job;
    int64_t job_epoch, job_pos;
    int job_n, job_advance;     /* images handed out, positions of the order consumed */
    rn_status job_status;       /* JOB_DONE: RN_OK or the failure in job_msg */
    char job_msg[LOADER_MSG_CAP];

    /* The caller's position. */
    int64_t epoch, position;
};

/* ---------------------------------------------------------------------------
 * Seeded randomness
 * ------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t z) {
    return rn_rng_mix64(z + 0x9e3779b97f4a7c15ULL);
}

#define TAG_ORDER 0x4f52444552ULL   /* "ORDER" */
#define TAG_AUGMENT 0x4155474dULL   /* "AUGM" */
#define TAG_ERASE 0x4552415345ULL   /* "ERASE" */
#define TAG_AUTO 0x4155544fULL     /* "AUTO" */

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

/* The position of the order that image b of the batch at `pos` is: this
 * shard's b-th of the window. */
static int64_t batch_pos(const rn_loader *l, int64_t pos, int b) {
    return pos + l->shard + (int64_t)l->shards * b;
}

/* The dataset image at position p (repeat_aug: the order's (p / reps)-th); past the end, the
 * padding repeats the order from its start (as DistributedSampler pads). */
static int index_at(const rn_loader *l, int64_t p) {
    return l->perm[(p < l->end ? p : p - l->end) / l->reps];
}

/* The generator for the augmentation of the image at (epoch, pos). */
static rn_rng augment_rng(const rn_loader *l, int64_t epoch, int64_t pos) {
    rn_rng r;
    rn_rng_seed_at(&r, l->cfg.seed, TAG_AUGMENT, epoch, pos);
    return r;
}

/* torchvision's RandomErasing(p, scale (0.02, 0.33), ratio (0.3, 3.3), value 0) on the
 * (c, h, w) image at out, with the draws of a generator of its own for (epoch, pos), in
 * torchvision's order: whether, then up to ten tries of an area and a log-uniform aspect
 * ratio whose rectangle (sides rounded half to even, as Python's round) fits strictly
 * inside, then its top and left. No try fitting: the image stays as it is. */
static void random_erase(const rn_loader *l, int64_t epoch, int64_t pos, float *out) {
    rn_rng r;
    rn_rng_seed_at(&r, l->cfg.seed, TAG_ERASE, epoch, pos);
    if (!(rn_rng_uniform(&r) < l->cfg.erase_prob))
        return;
    const int H = l->h, W = l->w;
    const double area = (double)H * W, lr0 = log(0.3), lr1 = log(3.3);
    for (int attempt = 0; attempt < 10; attempt++) {
        const double erase = area * (0.02 + (0.33 - 0.02) * rn_rng_uniform(&r));
        const double aspect = exp(lr0 + (lr1 - lr0) * rn_rng_uniform(&r));
        const int h = (int)nearbyint(sqrt(erase * aspect)), w = (int)nearbyint(sqrt(erase / aspect));
        if (!(h < H && w < W))
            continue;
        const int top = (int)(rn_rng_next(&r) % (uint64_t)(H - h + 1));
        const int left = (int)(rn_rng_next(&r) % (uint64_t)(W - w + 1));
        for (int c = 0; c < l->c; c++)
            for (int y = top; y < top + h; y++)
                memset(out + ((size_t)c * H + y) * W + left, 0, (size_t)w * sizeof *out);
        return;
    }
}

/* TrivialAugmentWide, RandAugment or AutoAugment on the (c, h, w) bytes of the image at (epoch,
 * pos), with the draws of a generator of its own. */
static void auto_augment(const rn_loader *l, int64_t epoch, int64_t pos, uint8_t *img,
                         uint8_t *scratch) {
    rn_rng r;
    rn_rng_seed_at(&r, l->cfg.seed, TAG_AUTO, epoch, pos);
    const int bilinear = l->cfg.auto_augment_bilinear != 0;
    if (l->cfg.auto_augment == RN_AUTO_AUGMENT_RA)
        rn_rand_augment(img, l->c, l->h, l->w, l->cfg.ra_ops > 0 ? l->cfg.ra_ops : 2,
                        l->cfg.ra_magnitude, bilinear, &r, scratch);
    else if (l->cfg.auto_augment >= RN_AUTO_AUGMENT_IMAGENET)
        rn_auto_augment(img, l->c, l->h, l->w,
                        RN_AA_IMAGENET + (l->cfg.auto_augment - RN_AUTO_AUGMENT_IMAGENET), bilinear,
                        &r, scratch);
    else
        rn_trivial_augment(img, l->c, l->h, l->w, bilinear, &r, scratch, NULL, NULL);
}

/* In memory: writes dataset image `index`, augmented with the draws for
 * (epoch, pos), to out: (c, h, w). */
static void make_image(rn_loader *l, int index, int64_t epoch, int64_t pos, float *out) {
    const rn_dataset *ds = l->ds;
    int pad = l->cfg.crop_padding, h = l->h, w = l->w;

    /* Always three draws, so turning one augmentation off leaves the others. */
    rn_rng r = augment_rng(l, epoch, pos);
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
        if (l->cfg.auto_augment) { /* the bytes first: the policy works on them */
            uint8_t *b = l->bytes + (size_t)c * h * w;
            for (int y = 0; y < h; y++) {
                const int sy = y + oy - pad;
                for (int x = 0; x < w; x++) {
                    const int sx = (flip ? w - 1 - x : x) + ox - pad;
                    b[(size_t)y * w + x] = sy >= 0 && sy < h && sx >= 0 && sx < w
                                               ? plane[(size_t)sy * w + sx] : 0;
                }
            }
            continue;
        }
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
    if (l->cfg.auto_augment) {
        auto_augment(l, epoch, pos, l->bytes, l->scratch);
        const size_t plane = (size_t)h * w;
        for (int c = 0; c < l->c; c++)
            for (size_t i = 0; i < plane; i++)
                out[c * plane + i] = l->table[c][l->bytes[c * plane + i]];
    }
    if (l->cfg.erase_prob > 0.0f)
        random_erase(l, epoch, pos, out);
}

/* From a file: decodes dataset image `index` and writes it, transformed with the draws for (epoch,
 * pos), to out: (c, h, w). On its bytes the crop (RandomResizedCrop, or the evaluation's resize and
 * centre crop) and the flip, drawn from the image's generator, then the auto-augmentation policy;
 * then the normalisation. Thread-safe: the byte buffers are this image's (the files are decoded
 * by several threads at once). */
static rn_status make_file_image(const rn_loader *l, int index, int64_t epoch, int64_t pos,
                                 float *out) {
    const char *path = l->ds->paths[index];
    rn_rng r = augment_rng(l, epoch, pos);
    rn_image img;
    RN_TRY(rn_image_read_channels(path, l->c, NULL, &img));
    const size_t plane = (size_t)l->h * l->w, n = plane * (size_t)l->c;
    uint8_t *bytes = malloc(l->cfg.auto_augment ? 2 * n : n); /* and the policy's scratch */
    rn_status st;
    if (!bytes) {
        st = rn_fail(RN_ERR_NOMEM, "loader: out of memory for an image of %dx%dx%d", l->c, l->h, l->w);
    } else if (l->cfg.crop_padding > 0) {
        st = rn_preprocess_train_u8(&img, &l->pp, &r, bytes);
    } else {
        st = rn_preprocess_eval_u8(&img, &l->pp, bytes);
        if (st == RN_OK && l->cfg.flip && rn_rng_uniform(&r) < 0.5f)
            for (int row = 0; row < l->c * l->h; row++) {
                uint8_t *p = bytes + (size_t)row * l->w;
                for (int x = 0, y = l->w - 1; x < y; x++, y--) {
                    const uint8_t t = p[x];
                    p[x] = p[y];
                    p[y] = t;
                }
            }
    }
    if (st == RN_OK) {
        if (l->cfg.auto_augment)
            auto_augment(l, epoch, pos, bytes, bytes + n);
        rn_preprocess_normalize(bytes, l->c, plane, &l->pp, out);
    }
    free(bytes);
    rn_image_free(&img);
    if (st == RN_OK && l->cfg.erase_prob > 0.0f)
        random_erase(l, epoch, pos, out);
    return st == RN_OK ? RN_OK : rn_fail_context(st, "%s", path);
}

/* ---------------------------------------------------------------------------
 * The worker
 * ------------------------------------------------------------------------- */

/* Image files: the batch's n images in parallel, each into its own slot. On
 * failure the lowest failing b is kept in l->err_b with its message (images
 * after it are skipped, those before it still made, so which one is
 * reported does not depend on timing). */
static rn_status make_file_batch(rn_loader *l, int64_t epoch, int64_t pos, int n) {
    size_t per_image = (size_t)l->c * l->h * l->w;
    int threads = rn_threads() < n ? rn_threads() : n;
    l->err_b = n;
    l->err_status = RN_OK;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int b = 0; b < n; b++) {
        int first;
#pragma omp atomic read
        first = l->err_b;
        if (b > first)
            continue;
        int64_t p = batch_pos(l, pos, b);
        rn_status st = make_file_image(l, index_at(l, p), epoch, p, l->x + (size_t)b * per_image);
        if (st != RN_OK) {
/* unnamed: a named critical section is a global symbol libresnet.so would export */
#pragma omp critical
            {
                if (b < l->err_b) {
                    snprintf(l->err_msg, sizeof l->err_msg, "%s", rn_last_error());
                    l->err_status = st;
#pragma omp atomic write
                    l->err_b = b;
                }
            }
        }
    }
    return l->err_status;
}

/* Fills l->x and l->labels with the batch at (epoch, pos), its size *n_out
 * and the positions it consumes *advance; on failure the message is in
 * l->err_msg. */
static rn_status make_batch(rn_loader *l, int64_t epoch, int64_t pos, int *n_out, int *advance) {
    if (l->perm_epoch != epoch)
        make_order(l, epoch);
    int64_t left = l->end - pos;
    int window = left < l->cfg.batch_size ? (int)left : l->cfg.batch_size;
    int n = (window + l->shards - 1) / l->shards;
    size_t per_image = (size_t)l->c * l->h * l->w;
    *n_out = n;
    *advance = window;
    if (l->files)
        RN_TRY(make_file_batch(l, epoch, pos, n));
    for (int b = 0; b < n; b++) {
        int64_t p = batch_pos(l, pos, b);
        int index = index_at(l, p);
        if (!l->files)
            make_image(l, index, epoch, p, l->x + (size_t)b * per_image);
        l->labels[b] = l->ds->labels[index];
    }
    return RN_OK;
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
        int n = 0, advance = 0;
        rn_status st = make_batch(l, epoch, pos, &n, &advance);
        pthread_mutex_lock(&l->mu);
        l->job_n = n;
        l->job_advance = advance;
        l->job_status = st;
        if (st != RN_OK)
            memcpy(l->job_msg, l->err_msg, sizeof l->job_msg);
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

/* A RandomResizedCrop range: {0, 0} or 0 < lo <= hi, finite. */
static int range_ok(const float r[2]) {
    return (r[0] == 0.0f && r[1] == 0.0f) ||
           (r[0] > 0.0f && r[0] <= r[1] && isfinite(r[1]));
}

/* The positions of an epoch before drop_last: the dataset's images, or with repeated augmentation
 * RASampler's num_selected_samples on every shard, floor((count // 256 * 256) / shards) each. */
static int epoch_length(const rn_dataset *ds, const rn_loader_config *cfg) {
    if (cfg->repeat_aug <= 1)
        return ds->count;
    const int shards = cfg->shards > 1 ? cfg->shards : 1;
    return ds->count / 256 * 256 / shards * shards;
}

static rn_status check_config(const rn_dataset *ds, const rn_loader_config *cfg) {
    int files = ds->storage == RN_DATASET_FILES;
    if ((files ? !ds->paths : !ds->pixels) || !ds->labels || ds->count < 1 || ds->channels < 1 ||
        ds->height < 1 || ds->width < 1 || ds->num_classes < 1)
        return rn_fail(RN_ERR_ARG, "loader: empty or incomplete dataset (%d images of %dx%dx%d)",
                       ds->count, ds->channels, ds->height, ds->width);
    if (files && ds->channels != 1 && ds->channels != 3)
        return rn_fail(RN_ERR_ARG, "loader: an image folder decodes 1 or 3 channels, not %d",
                       ds->channels);
    if (files && (!range_ok(cfg->crop_scale) || !range_ok(cfg->crop_ratio)))
        return rn_fail(RN_ERR_ARG, "loader: crop scale (%g, %g) or ratio (%g, %g) is not a range "
                       "0 < lo <= hi (or 0, 0 for the default)", cfg->crop_scale[0],
                       cfg->crop_scale[1], cfg->crop_ratio[0], cfg->crop_ratio[1]);
    if (cfg->batch_size < 1 || cfg->batch_size > LOADER_MAX_BATCH)
        return rn_fail(RN_ERR_ARG, "loader: batch size %d is not in 1..%d", cfg->batch_size,
                       LOADER_MAX_BATCH);
    if (cfg->resize_size < 0 || cfg->resize_size > RN_RESIZE_MAX_SIDE || (!files && cfg->resize_size))
        return rn_fail(RN_ERR_ARG, "loader: resize size %d is not in 0..%d%s", cfg->resize_size,
                       RN_RESIZE_MAX_SIDE, files ? "" : " (or is given for images in memory, which "
                       "are resized straight to image_size)");
    if (cfg->image_size < 0 || cfg->image_size > RN_RESIZE_MAX_SIDE)
        return rn_fail(RN_ERR_ARG, "loader: image size %d is not in 0..%d", cfg->image_size,
                       RN_RESIZE_MAX_SIDE);
    if (cfg->crop_padding < 0 || cfg->crop_padding > LOADER_MAX_PADDING)
        return rn_fail(RN_ERR_ARG, "loader: crop padding %d is not in 0..%d", cfg->crop_padding,
                       LOADER_MAX_PADDING);
    if (cfg->auto_augment < RN_AUTO_AUGMENT_NONE || cfg->auto_augment > RN_AUTO_AUGMENT_SVHN)
        return rn_fail(RN_ERR_ARG, "loader: auto_augment %d is none of RN_AUTO_AUGMENT_*",
                       cfg->auto_augment);
    if (cfg->auto_augment && ds->channels != 1 && ds->channels != 3)
        return rn_fail(RN_ERR_ARG, "loader: TrivialAugment, RandAugment and AutoAugment work on "
                       "images of 1 or 3 channels, not %d", ds->channels);
    if (cfg->auto_augment == RN_AUTO_AUGMENT_RA &&
        (cfg->ra_magnitude < 0 || cfg->ra_magnitude >= RN_AUG_BINS || cfg->ra_ops < 0 ||
         cfg->ra_ops > 64))
        return rn_fail(RN_ERR_ARG, "loader: RandAugment's magnitude %d is not in 0..%d, or its "
                       "operations %d not in 0..64", cfg->ra_magnitude, RN_AUG_BINS - 1,
                       cfg->ra_ops);
    if (!(cfg->erase_prob >= 0.0f && cfg->erase_prob <= 1.0f))
        return rn_fail(RN_ERR_ARG, "loader: the random erasing probability %g is not in [0, 1]",
                       (double)cfg->erase_prob);
    if (cfg->shards > 1 && (cfg->shard < 0 || cfg->shard >= cfg->shards))
        return rn_fail(RN_ERR_ARG, "loader: shard %d of %d", cfg->shard, cfg->shards);
    if (cfg->shards > 1 && cfg->batch_size % cfg->shards != 0)
        return rn_fail(RN_ERR_ARG, "loader: the batch size %d is not a multiple of the %d shards",
                       cfg->batch_size, cfg->shards);
    if (cfg->shards > 1 && cfg->shards > ds->count)
        return rn_fail(RN_ERR_ARG, "loader: %d shards of %d images", cfg->shards, ds->count);
    if (cfg->repeat_aug < 0 || cfg->repeat_aug > 64)
        return rn_fail(RN_ERR_ARG, "loader: repeat_aug %d is not in 0..64", cfg->repeat_aug);
    const int len = epoch_length(ds, cfg);
    if (cfg->repeat_aug > 1 && len < 1)
        return rn_fail(RN_ERR_ARG, "loader: repeated augmentation takes (images / 256) * 256 "
                       "positions an epoch, rounded down to a multiple of the %d shard%s, as "
                       "torchvision's RASampler does: %d images give none",
                       cfg->shards > 1 ? cfg->shards : 1, cfg->shards > 1 ? "s" : "", ds->count);
    if (cfg->drop_last && len < cfg->batch_size)
        return rn_fail(RN_ERR_ARG, "loader: drop_last with %d images%s and batch size %d leaves "
                       "no batch", len, cfg->repeat_aug > 1 ? " an epoch" : "", cfg->batch_size);
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

/* Image files: torchvision's Resize(R) + CenterCrop(S) (R: resize_size, else int(S / 0.875)), or
 * RandomResizedCrop(S, scale, ratio) + flip, then Normalize. */
static void make_preprocess(rn_loader *l) {
    rn_preprocess_config *pp = &l->pp;
    rn_preprocess_config_imagenet(pp);
    pp->crop_size = l->h;
    pp->resize_size = l->cfg.resize_size > 0 ? l->cfg.resize_size
                                             : (int)((double)l->h / 0.875); /* Python: int(S / 0.875) */
    pp->hflip = l->cfg.flip != 0;
    if (l->cfg.crop_scale[1] > 0.0f)
        memcpy(pp->scale, l->cfg.crop_scale, sizeof pp->scale);
    if (l->cfg.crop_ratio[1] > 0.0f)
        memcpy(pp->ratio, l->cfg.crop_ratio, sizeof pp->ratio);
    for (int c = 0; c < 3; c++) {
        pp->mean[c] = l->cfg.normalize && c < l->c ? l->cfg.mean[c] : 0.0f;
        pp->std[c] = l->cfg.normalize && c < l->c ? l->cfg.std[c] : 1.0f;
    }
}

/* The loader's buffers and the loader itself (no thread left running). */
static void free_loader_memory(rn_loader *l) {
    rn_resize_plan_free(l->plan);
    free(l->resized);
    free(l->bytes);
    free(l->scratch);
    rn_free(l->x);
    free(l->labels);
    free(l->perm);
    free(l);
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
    const int len = epoch_length(ds, cfg);
    l->reps = cfg->repeat_aug > 1 ? cfg->repeat_aug : 1;
    l->steps = cfg->drop_last ? len / cfg->batch_size : (len + cfg->batch_size - 1) / cfg->batch_size;
    l->end = cfg->drop_last ? l->steps * cfg->batch_size : len;
    l->shards = cfg->shards > 1 ? cfg->shards : 1;
    l->shard = cfg->shards > 1 ? cfg->shard : 0;
    l->cap = cfg->batch_size / l->shards;
    l->perm_epoch = -1;
    l->files = ds->storage == RN_DATASET_FILES;
    make_tables(l);
    if (l->files)
        make_preprocess(l);

    rn_status st = RN_OK;
    size_t plane = (size_t)l->h * l->w, floats;
    if (!l->files && (l->h != ds->height || l->w != ds->width)) {
        st = rn_resize_plan_create(ds->height, ds->width, l->h, l->w, &l->plan);
        if (st == RN_OK && !(l->resized = malloc(plane)))
            st = rn_fail(RN_ERR_NOMEM, "loader: out of memory");
    }
    if (st == RN_OK && !l->files && cfg->auto_augment &&
        (!(l->bytes = malloc(plane * l->c)) || !(l->scratch = malloc(plane * l->c))))
        st = rn_fail(RN_ERR_NOMEM, "loader: out of memory");
    if (st == RN_OK && (!rn_size_mul(plane, (size_t)l->c * l->cap, &floats) ||
                        !rn_size_mul(floats, sizeof(float), &floats) ||
                        !(l->x = rn_alloc(floats)) ||
                        !(l->labels = malloc((size_t)l->cap * sizeof *l->labels)) ||
                        !(l->perm = malloc((size_t)ds->count * sizeof *l->perm))))
        st = rn_fail(RN_ERR_NOMEM, "loader: out of memory for a batch of %d x %dx%dx%d",
                     l->cap, l->c, l->h, l->w);
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
        free_loader_memory(l);
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
    free_loader_memory(l);
}

/* ---------------------------------------------------------------------------
 * Batches and state
 * ------------------------------------------------------------------------- */

int rn_loader_steps(const rn_loader *l) { return l ? l->steps : 0; }
int rn_loader_epoch_positions(const rn_loader *l) { return l ? l->end : 0; }

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
    if (l->job_status != RN_OK) {
        /* Forget the failed batch: the next call makes it again. */
        rn_status st = rn_fail(l->job_status, "%s", l->job_msg);
        l->job = JOB_NONE;
        pthread_mutex_unlock(&l->mu);
        return st;
    }
    int got = l->job_n;
    memcpy(x, l->x, (size_t)got * l->c * l->h * l->w * sizeof(float));
    memcpy(labels, l->labels, (size_t)got * sizeof *labels);
    l->position += l->job_advance;
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
    if (st->epoch < 0)
        return rn_fail(RN_ERR_ARG, "loader state: epoch %lld is negative", (long long)st->epoch);
    if (st->position < 0 || st->position > l->end)
        return rn_fail(RN_ERR_ARG, "loader state: position %lld outside 0..%d (the epoch's positions)",
                       (long long)st->position, l->end);
    l->epoch = st->epoch;
    l->position = st->position;
    return RN_OK;
}
