/*
 * collect.c - the report's evaluation pass: rn_evaluate_each over the split,
 * keeping, besides the confusion matrix, the images for the two grids.
 *
 * Wrong: a fixed set of `grid` slots holding the most confident mistakes so
 * far; a new mistake replaces the least confident one when it is more
 * confident. Right: with K classes and K <= grid, grid / K slots per class,
 * each keeping that class's most confident correct images; with more
 * classes than slots, a reservoir sample (seeded, so reports repeat) of the
 * correct images. Each slot owns its thumbnail buffer: nothing is allocated
 * per image.
 *
 * Thumbnails are the loader's output (what the model saw), mapped back to
 * 0..255 by undoing the normalisation, and shrunk (Pillow's bilinear) when a
 * side exceeds THUMB_MAX.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rng.h"
#include "core/status.h"
#include "data/resize.h"
#include "report/report_impl.h"

#define THUMB_MAX 112

typedef struct collector {
    report_eval *out;
    const rn_loader_config *cfg;
    int grid, num_classes;
    int right_cap;              /* slots for correct images */
    int64_t right_seen;         /* correct images so far (reservoir) */
    int *right_count;           /* (K) per-class slots used, per-class mode */
    rn_rng rng;
    rn_resize_plan *plan;       /* NULL when no shrinking is needed */
    uint8_t *full, *small;      /* planar scratch: (C, H, W) and (C, th, tw) */
    float *probs;               /* (K) */
} collector;

/* ---------------------------------------------------------------------------
 * Thumbnails
 * ------------------------------------------------------------------------- */

static uint8_t to_byte(float v, const rn_loader_config *cfg, int c) {
    double u = cfg->normalize ? (double)v * cfg->std[c < 4 ? c : 0] + cfg->mean[c < 4 ? c : 0] : v;
    double b = round(u * 255.0);
    return (uint8_t)(b < 0 ? 0 : b > 255 ? 255 : b);
}

/* Image i of the batch into dst: (th, tw, C) interleaved. */
static void make_thumb(collector *col, const rn_eval_batch *b, int i, uint8_t *dst) {
    int C = b->channels, H = b->height, W = b->width;
    size_t plane = (size_t)H * W;
    const float *x = b->x + (size_t)i * C * plane;
    for (int c = 0; c < C; c++)
        for (size_t p = 0; p < plane; p++)
            col->full[c * plane + p] = to_byte(x[c * plane + p], col->cfg, c);
    const uint8_t *src = col->full;
    int th = col->out->thumb_h, tw = col->out->thumb_w;
    if (col->plan) {
        for (int c = 0; c < C; c++)
            rn_resize_plan_u8(col->plan, col->full + c * plane, col->small + (size_t)c * th * tw);
        src = col->small;
    }
    size_t tplane = (size_t)th * tw;
    for (size_t p = 0; p < tplane; p++)
        for (int c = 0; c < C; c++)
            dst[p * C + c] = src[c * tplane + p];
}

/* ---------------------------------------------------------------------------
 * Picking
 * ------------------------------------------------------------------------- */

static void fill(collector *col, report_pick *p, const rn_eval_batch *b, int i, int pred,
                 int label) {
    p->index = b->first + i;
    p->label = label;
    p->pred = pred;
    p->p_pred = col->probs[pred];
    p->p_label = col->probs[label];
    make_thumb(col, b, i, p->thumb);
}

/* The least confident of picks p[0..n). */
static int weakest(const report_pick *p, int n) {
    int w = 0;
    for (int j = 1; j < n; j++)
        if (p[j].p_pred < p[w].p_pred)
            w = j;
    return w;
}

static void pick_wrong(collector *col, const rn_eval_batch *b, int i, int pred, int label) {
    report_eval *e = col->out;
    if (e->n_wrong < col->grid) {
        fill(col, &e->wrong[e->n_wrong++], b, i, pred, label);
        return;
    }
    int w = weakest(e->wrong, e->n_wrong);
    if (col->probs[pred] > e->wrong[w].p_pred)
        fill(col, &e->wrong[w], b, i, pred, label);
}

static void pick_right(collector *col, const rn_eval_batch *b, int i, int label) {
    report_eval *e = col->out;
    int per = e->right_per_class;
    if (per > 0) {
        report_pick *slots = e->right + (size_t)label * per;
        int *used = &col->right_count[label];
        if (*used < per) {
            fill(col, &slots[(*used)++], b, i, label, label);
            return;
        }
        int w = weakest(slots, per);
        if (col->probs[label] > slots[w].p_pred)
            fill(col, &slots[w], b, i, label, label);
        return;
    }
    /* reservoir sampling: each correct image is kept with probability cap / seen */
    int64_t seen = ++col->right_seen;
    if (seen <= col->right_cap) {
        fill(col, &e->right[seen - 1], b, i, label, label);
        return;
    }
    uint64_t r = rn_rng_next(&col->rng) % (uint64_t)seen;
    if (r < (uint64_t)col->right_cap)
        fill(col, &e->right[r], b, i, label, label);
}

static rn_status on_batch(void *ctx, const rn_eval_batch *b) {
    collector *col = ctx;
    int K = b->num_classes;
    for (int i = 0; i < b->n; i++) {
        const float *row = b->logits + (size_t)i * K;
        int pred = 0;
        for (int j = 1; j < K; j++)
            if (row[j] > row[pred])
                pred = j;
        double sum = 0.0;
        for (int j = 0; j < K; j++)
            sum += exp((double)row[j] - row[pred]);
        for (int j = 0; j < K; j++)
            col->probs[j] = (float)(exp((double)row[j] - row[pred]) / sum);
        int label = b->labels[i];   /* in 0..K-1: rn_evaluate_each checked the dataset */
        if (pred != label)
            pick_wrong(col, b, i, pred, label);
        else
            pick_right(col, b, i, label);
    }
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Set-up, run, order
 * ------------------------------------------------------------------------- */

static int by_confidence(const void *a, const void *b) {
    float x = ((const report_pick *)a)->p_pred, y = ((const report_pick *)b)->p_pred;
    return (x < y) - (x > y);
}

static int by_class_then_confidence(const void *a, const void *b) {
    const report_pick *p = a, *q = b;
    if (p->label != q->label)
        return (p->label > q->label) - (p->label < q->label);
    return by_confidence(a, b);
}

/* Packs the per-class slots (some may be unused) and sorts both lists. */
static void finish(collector *col) {
    report_eval *e = col->out;
    qsort(e->wrong, (size_t)e->n_wrong, sizeof *e->wrong, by_confidence);
    if (e->right_per_class > 0) {
        int n = 0, per = e->right_per_class;
        for (int k = 0; k < col->num_classes; k++) {
            for (int j = 0; j < col->right_count[k]; j++) {
                report_pick tmp = e->right[n];
                e->right[n] = e->right[(size_t)k * per + j];
                e->right[(size_t)k * per + j] = tmp;
                n++;
            }
        }
        e->n_right = n;
    } else {
        e->n_right = col->right_seen < col->right_cap ? (int)col->right_seen : col->right_cap;
    }
    qsort(e->right, (size_t)e->n_right, sizeof *e->right, by_class_then_confidence);
}

/* Allocates the slots and scratch buffers for images of C x H x W. */
static rn_status prepare(collector *col, int C, int H, int W) {
    report_eval *e = col->out;
    int K = col->num_classes;
    double shrink = (H > THUMB_MAX || W > THUMB_MAX) ? (double)THUMB_MAX / (H > W ? H : W) : 1.0;
    e->channels = C;
    e->thumb_h = shrink < 1.0 ? (int)fmax(1.0, round(H * shrink)) : H;
    e->thumb_w = shrink < 1.0 ? (int)fmax(1.0, round(W * shrink)) : W;
    e->right_per_class = K <= col->grid ? col->grid / K : 0;
    col->right_cap = e->right_per_class > 0 ? e->right_per_class * K : col->grid;
    size_t thumb = (size_t)e->thumb_h * e->thumb_w * C;
    int slots = col->grid + col->right_cap;
    e->wrong = calloc((size_t)slots, sizeof *e->wrong);
    uint8_t *block = e->thumbs = malloc((size_t)slots * thumb);
    col->full = malloc((size_t)C * H * W);
    col->small = malloc(thumb);
    col->probs = malloc((size_t)K * sizeof *col->probs);
    col->right_count = calloc((size_t)K, sizeof *col->right_count);
    if (!e->wrong || !block || !col->full || !col->small || !col->probs || !col->right_count)
        return rn_fail(RN_ERR_NOMEM, "out of memory for the report's %d image slots", slots);
    e->right = e->wrong + col->grid;
    for (int s = 0; s < slots; s++)
        e->wrong[s].thumb = block + (size_t)s * thumb;
    if (shrink < 1.0)
        RN_TRY(rn_resize_plan_create(H, W, e->thumb_h, e->thumb_w, &col->plan));
    return RN_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

rn_status report_collect(rn_model *m, const rn_dataset *ds, const rn_loader_config *cfg, int grid,
                         rn_eval_progress progress, void *ctx, report_eval *out) {
    memset(out, 0, sizeof *out);
    if (grid < 1)
        return rn_fail(RN_ERR_ARG, "report: grid size %d must be positive", grid);
    collector col = {.out = out, .cfg = cfg, .grid = grid, .num_classes = rn_model_num_classes(m)};
    rn_rng_seed(&col.rng, 0x5eed);
    int S = cfg->image_size ? cfg->image_size : ds->height;
    int W = cfg->image_size ? cfg->image_size : ds->width;
    double t0 = now_s();
    rn_status st = prepare(&col, ds->channels, S, W);
    if (st == RN_OK)
        st = rn_evaluate_each(m, ds, cfg, progress, ctx, on_batch, &col, &out->ev);
    out->seconds = now_s() - t0;
    if (st == RN_OK)
        finish(&col);
    rn_resize_plan_free(col.plan);
    free(col.full);
    free(col.small);
    free(col.probs);
    free(col.right_count);
    if (st != RN_OK)
        report_eval_free(out);
    return st;
}

void report_eval_free(report_eval *e) {
    if (!e)
        return;
    free(e->thumbs);
    free(e->wrong);
    rn_eval_result_free(&e->ev);
    memset(e, 0, sizeof *e);
}
