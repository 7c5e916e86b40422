/*
 * resize.c - Pillow's bilinear resample (libImaging/Resample.c, Pillow 9.4).
 *
 * For each output position xx along an axis of input size in and output
 * size out:
 *     scale       = in / out;  filterscale = max(scale, 1)
 *     support     = 1 * filterscale              (triangle filter, radius 1)
 *     center      = (xx + 0.5) * scale
 *     xmin        = max((int)(center - support + 0.5), 0)
 *     xmax        = min((int)(center + support + 0.5), in)
 *     w[x]        = tri((x + xmin - center + 0.5) / filterscale), normalised
 *                   to sum 1 (skipped when the sum is 0)
 * uint8: w8[x] = (int)(w[x] * 2^22 +- 0.5), out = clip8((2^21 + sum p*w8) >> 22).
 * float: out = (float)(sum over x of (double)p * w[x]).
 * The horizontal pass produces only the rows the vertical pass reads.
 */
#include "resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/status.h"

#define PRECISION_BITS (32 - 8 - 2)

/* ---------------------------------------------------------------------------
 * Coefficients of one axis
 * ------------------------------------------------------------------------- */

typedef struct resize_axis {
    int in, out;
    int ksize;          /* coefficients stored per output position */
    int *bounds;        /* (out, 2): first input index, number of taps */
    double *kk;         /* (out, ksize) normalised weights */
    int32_t *kk8;       /* (out, ksize) fixed-point weights */
} resize_axis;

struct rn_resize_plan {
    int in_h, in_w, out_h, out_w;
    int need_h, need_v;         /* whether each pass runs */
    int row_first, row_count;   /* input rows the vertical pass reads */
    resize_axis horiz, vert;
    void *tmp;                  /* (row_count, out_w) uint8 or float */
};

static double triangle(double x) {
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static void axis_free(resize_axis *a) {
    free(a->bounds);
    free(a->kk);
    free(a->kk8);
}

/* Pillow's precompute_coeffs + normalize_coeffs_8bpc for box (0, in). */
static rn_status axis_init(resize_axis *a, int in, int out) {
    memset(a, 0, sizeof *a);
    a->in = in;
    a->out = out;
    double scale = (double)(float)in / out;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    a->ksize = (int)ceil(support) * 2 + 1;

    size_t n;
    if (!rn_size_mul((size_t)out, (size_t)a->ksize, &n))
        return rn_fail(RN_ERR_NOMEM, "resize: %d -> %d needs too many coefficients", in, out);
    a->bounds = malloc((size_t)out * 2 * sizeof(int));
    a->kk = calloc(n, sizeof(double));
    a->kk8 = calloc(n, sizeof(int32_t));
    if (!a->bounds || !a->kk || !a->kk8) {
        axis_free(a);
        return rn_fail(RN_ERR_NOMEM, "resize: out of memory for %d -> %d coefficients", in, out);
    }

    for (int xx = 0; xx < out; xx++) {
        double center = (xx + 0.5) * scale;
        double ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in)
            xmax = in;
        xmax -= xmin;
        double *k = &a->kk[(size_t)xx * a->ksize];
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            double w = triangle((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < xmax; x++)
            if (ww != 0.0)
                k[x] /= ww;
        a->bounds[xx * 2 + 0] = xmin;
        a->bounds[xx * 2 + 1] = xmax;
    }
    for (size_t i = 0; i < n; i++) {
        double v = a->kk[i] * (1 << PRECISION_BITS);
        a->kk8[i] = (int32_t)(v < 0 ? -0.5 + v : 0.5 + v);
    }
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Plans
 * ------------------------------------------------------------------------- */

rn_status rn_resize_plan_create(int in_h, int in_w, int out_h, int out_w,
                                rn_resize_plan **out) {
    *out = NULL;
    if (in_h < 1 || in_w < 1 || out_h < 1 || out_w < 1 || in_h > RN_RESIZE_MAX_SIDE ||
        in_w > RN_RESIZE_MAX_SIDE || out_h > RN_RESIZE_MAX_SIDE || out_w > RN_RESIZE_MAX_SIDE)
        return rn_fail(RN_ERR_ARG, "resize: %dx%d -> %dx%d (width x height): each side must be in "
                       "1..%d", in_w, in_h, out_w, out_h, RN_RESIZE_MAX_SIDE);
    rn_resize_plan *p = calloc(1, sizeof *p);
    if (!p)
        return rn_fail(RN_ERR_NOMEM, "resize: out of memory");
    p->in_h = in_h;
    p->in_w = in_w;
    p->out_h = out_h;
    p->out_w = out_w;
    p->need_h = out_w != in_w;
    p->need_v = out_h != in_h;
    rn_status st = axis_init(&p->horiz, in_w, out_w);
    if (st == RN_OK)
        st = axis_init(&p->vert, in_h, out_h);
    if (st != RN_OK) {
        rn_resize_plan_free(p);
        return st;
    }
    p->row_first = p->vert.bounds[0];
    p->row_count = p->vert.bounds[out_h * 2 - 2] + p->vert.bounds[out_h * 2 - 1] - p->row_first;
    if (p->need_h && p->need_v) {
        size_t bytes;
        if (!rn_size_mul((size_t)p->row_count, (size_t)out_w, &bytes) ||
            !rn_size_mul(bytes, sizeof(float), &bytes) || !(p->tmp = malloc(bytes))) {
            rn_resize_plan_free(p);
            return rn_fail(RN_ERR_NOMEM, "resize: out of memory for a buffer of %d rows of %d",
                           p->row_count, out_w);
        }
    }
    *out = p;
    return RN_OK;
}

void rn_resize_plan_free(rn_resize_plan *p) {
    if (!p)
        return;
    axis_free(&p->horiz);
    axis_free(&p->vert);
    free(p->tmp);
    free(p);
}

/* ---------------------------------------------------------------------------
 * uint8 passes (ImagingResampleHorizontal_8bpc / Vertical_8bpc)
 * ------------------------------------------------------------------------- */

static inline uint8_t clip8(int32_t v) {
    v >>= PRECISION_BITS;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* src rows [row0, row0 + rows) of width in_w -> dst (rows, out_w). */
static void horizontal_u8(const resize_axis *a, const uint8_t *src, int row0, int rows,
                          uint8_t *dst) {
    for (int y = 0; y < rows; y++) {
        const uint8_t *s = src + (size_t)(row0 + y) * a->in;
        uint8_t *d = dst + (size_t)y * a->out;
        for (int xx = 0; xx < a->out; xx++) {
            int xmin = a->bounds[xx * 2], xmax = a->bounds[xx * 2 + 1];
            const int32_t *k = &a->kk8[(size_t)xx * a->ksize];
            int32_t ss = 1 << (PRECISION_BITS - 1);
            for (int x = 0; x < xmax; x++)
                ss += s[xmin + x] * k[x];
            d[xx] = clip8(ss);
        }
    }
}

/* src (rows, width) whose row 0 is input row row0 -> dst (out, width). */
static void vertical_u8(const resize_axis *a, const uint8_t *src, int row0, int width,
                        uint8_t *dst) {
    for (int yy = 0; yy < a->out; yy++) {
        int ymin = a->bounds[yy * 2] - row0, ymax = a->bounds[yy * 2 + 1];
        const int32_t *k = &a->kk8[(size_t)yy * a->ksize];
        uint8_t *d = dst + (size_t)yy * width;
        for (int xx = 0; xx < width; xx++) {
            int32_t ss = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < ymax; y++)
                ss += src[(size_t)(ymin + y) * width + xx] * k[y];
            d[xx] = clip8(ss);
        }
    }
}

void rn_resize_plan_u8(rn_resize_plan *p, const uint8_t *src, uint8_t *dst) {
    if (p->need_h && p->need_v) {
        horizontal_u8(&p->horiz, src, p->row_first, p->row_count, p->tmp);
        vertical_u8(&p->vert, p->tmp, p->row_first, p->out_w, dst);
    } else if (p->need_h) {
        horizontal_u8(&p->horiz, src, 0, p->in_h, dst);
    } else if (p->need_v) {
        vertical_u8(&p->vert, src, 0, p->in_w, dst);
    } else {
        memcpy(dst, src, (size_t)p->in_h * p->in_w);
    }
}

/* ---------------------------------------------------------------------------
 * float passes (ImagingResampleHorizontal_32bpc / Vertical_32bpc, mode "F")
 * ------------------------------------------------------------------------- */

static void horizontal_f32(const resize_axis *a, const float *src, int row0, int rows,
                           float *dst) {
    for (int y = 0; y < rows; y++) {
        const float *s = src + (size_t)(row0 + y) * a->in;
        float *d = dst + (size_t)y * a->out;
        for (int xx = 0; xx < a->out; xx++) {
            int xmin = a->bounds[xx * 2], xmax = a->bounds[xx * 2 + 1];
            const double *k = &a->kk[(size_t)xx * a->ksize];
            double ss = 0.0;
            for (int x = 0; x < xmax; x++)
                ss += s[xmin + x] * k[x];
            d[xx] = (float)ss;
        }
    }
}

static void vertical_f32(const resize_axis *a, const float *src, int row0, int width,
                         float *dst) {
    for (int yy = 0; yy < a->out; yy++) {
        int ymin = a->bounds[yy * 2] - row0, ymax = a->bounds[yy * 2 + 1];
        const double *k = &a->kk[(size_t)yy * a->ksize];
        float *d = dst + (size_t)yy * width;
        for (int xx = 0; xx < width; xx++) {
            double ss = 0.0;
            for (int y = 0; y < ymax; y++)
                ss += src[(size_t)(ymin + y) * width + xx] * k[y];
            d[xx] = (float)ss;
        }
    }
}

void rn_resize_plan_f32(rn_resize_plan *p, const float *src, float *dst) {
    if (p->need_h && p->need_v) {
        horizontal_f32(&p->horiz, src, p->row_first, p->row_count, p->tmp);
        vertical_f32(&p->vert, p->tmp, p->row_first, p->out_w, dst);
    } else if (p->need_h) {
        horizontal_f32(&p->horiz, src, 0, p->in_h, dst);
    } else if (p->need_v) {
        vertical_f32(&p->vert, src, 0, p->in_w, dst);
    } else {
        memcpy(dst, src, (size_t)p->in_h * p->in_w * sizeof(float));
    }
}

/* ---------------------------------------------------------------------------
 * Whole images
 * ------------------------------------------------------------------------- */

rn_status rn_resize_bilinear_u8(const uint8_t *src, int channels, int in_h, int in_w,
                                uint8_t *dst, int out_h, int out_w) {
    if (!src || !dst || channels < 1)
        return rn_fail(RN_ERR_ARG, "resize: NULL image or channels %d < 1", channels);
    rn_resize_plan *p;
    RN_TRY(rn_resize_plan_create(in_h, in_w, out_h, out_w, &p));
    for (int c = 0; c < channels; c++)
        rn_resize_plan_u8(p, src + (size_t)c * in_h * in_w, dst + (size_t)c * out_h * out_w);
    rn_resize_plan_free(p);
    return RN_OK;
}

rn_status rn_resize_bilinear_f32(const float *src, int channels, int in_h, int in_w,
                                 float *dst, int out_h, int out_w) {
    if (!src || !dst || channels < 1)
        return rn_fail(RN_ERR_ARG, "resize: NULL image or channels %d < 1", channels);
    rn_resize_plan *p;
    RN_TRY(rn_resize_plan_create(in_h, in_w, out_h, out_w, &p));
    for (int c = 0; c < channels; c++)
        rn_resize_plan_f32(p, src + (size_t)c * in_h * in_w, dst + (size_t)c * out_h * out_w);
    rn_resize_plan_free(p);
    return RN_OK;
}
