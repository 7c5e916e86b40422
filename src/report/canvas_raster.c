/*
 * canvas_raster.c - the raster backend: anti-aliased shapes on an RGB image.
 *
 * A shape is first drawn into the coverage plane `cov` (per pixel, the
 * fraction of it the shape covers, the largest over the shape's parts),
 * then blended once over the image in its colour: where the segments of a
 * polyline or the strokes of a glyph overlap, nothing is painted twice.
 * Coverage is estimated from the distance of the pixel's centre to the
 * shape's edge (a one-pixel ramp), and for rectangles from the exact area.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "io/png_write.h"
#include "report/canvas_impl.h"
#include "report/font.h"
#include "report/markup.h"

/* ---------------------------------------------------------------------------
 * Coverage
 * ------------------------------------------------------------------------- */

static double clamp01(double v) {
    return v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v;
}

/* Clips [x0, x1) x [y0, y1) (device pixels, from doubles) to the image and
 * widens the dirty box; returns 0 if nothing is left. */
static int clip_box(rn_canvas *c, double fx0, double fy0, double fx1, double fy1, int *x0, int *y0,
                    int *x1, int *y1) {
    *x0 = fx0 < 0 ? 0 : (int)floor(fx0);
    *y0 = fy0 < 0 ? 0 : (int)floor(fy0);
    *x1 = fx1 > c->pw ? c->pw : (int)ceil(fx1);
    *y1 = fy1 > c->ph ? c->ph : (int)ceil(fy1);
    if (*x0 >= *x1 || *y0 >= *y1)
        return 0;
    if (c->bx0 >= c->bx1) {
        c->bx0 = *x0, c->by0 = *y0, c->bx1 = *x1, c->by1 = *y1;
    } else {
        c->bx0 = *x0 < c->bx0 ? *x0 : c->bx0;
        c->by0 = *y0 < c->by0 ? *y0 : c->by0;
        c->bx1 = *x1 > c->bx1 ? *x1 : c->bx1;
        c->by1 = *y1 > c->by1 ? *y1 : c->by1;
    }
    return 1;
}

static void cov_max(rn_canvas *c, int x, int y, double a) {
    float *p = &c->cov[(size_t)y * c->pw + x];
    if (a > *p)
        *p = (float)a;
}

/* Blends the coverage plane over the image in colour `col` and clears it. */
static void flush(rn_canvas *c, rn_color col) {
    int r = col >> 16 & 255, g = col >> 8 & 255, b = col & 255;
    for (int y = c->by0; y < c->by1; y++) {
        for (int x = c->bx0; x < c->bx1; x++) {
            float *cv = &c->cov[(size_t)y * c->pw + x];
            if (*cv <= 0.0f)
                continue;
            double a = *cv >= 1.0f ? 1.0 : *cv;
            uint8_t *p = &c->rgb[((size_t)y * c->pw + x) * 3];
            p[0] = (uint8_t)lround(p[0] + (r - p[0]) * a);
            p[1] = (uint8_t)lround(p[1] + (g - p[1]) * a);
            p[2] = (uint8_t)lround(p[2] + (b - p[2]) * a);
            *cv = 0.0f;
        }
    }
    c->bx0 = c->bx1 = c->by0 = c->by1 = 0;
}

/* A segment (device pixels) of half-width hw with round ends. */
static void cov_segment(rn_canvas *c, double ax, double ay, double bx, double by, double hw) {
    int x0, y0, x1, y1;
    double pad = hw + 1.0;
    if (!clip_box(c, fmin(ax, bx) - pad, fmin(ay, by) - pad, fmax(ax, bx) + pad, fmax(ay, by) + pad,
                  &x0, &y0, &x1, &y1))
        return;
    double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
    for (int y = y0; y < y1; y++) {
        for (int x = x0; x < x1; x++) {
            double px = x + 0.5 - ax, py = y + 0.5 - ay;
            double t = len2 > 0 ? (px * dx + py * dy) / len2 : 0.0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            double ex = px - t * dx, ey = py - t * dy;
            double a = clamp01(hw + 0.5 - sqrt(ex * ex + ey * ey));
            if (a > 0)
                cov_max(c, x, y, a);
        }
    }
}

/* ---------------------------------------------------------------------------
 * Shapes
 * ------------------------------------------------------------------------- */

static void fill_rect(rn_canvas *c, double x, double y, double w, double h, rn_color col) {
    double fx0 = x * c->scale, fy0 = y * c->scale, fx1 = (x + w) * c->scale, fy1 = (y + h) * c->scale;
    int x0, y0, x1, y1;
    if (!clip_box(c, fx0, fy0, fx1, fy1, &x0, &y0, &x1, &y1))
        return;
    for (int py = y0; py < y1; py++) {
        double cy = fmin(py + 1.0, fy1) - fmax((double)py, fy0);
        for (int px = x0; px < x1; px++) {
            double cx = fmin(px + 1.0, fx1) - fmax((double)px, fx0);
            cov_max(c, px, py, clamp01(cx) * clamp01(cy));
        }
    }
    flush(c, col);
}

void raster_rect(rn_canvas *c, double x, double y, double w, double h, rn_color fill,
                 rn_color stroke, double sw) {
    if (fill != RN_NONE)
        fill_rect(c, x, y, w, h, fill);
    if (stroke != RN_NONE && sw > 0) {
        double xy[10] = {x, y, x + w, y, x + w, y + h, x, y + h, x, y};
        raster_polyline(c, xy, 5, stroke, sw, 0);
    }
}

void raster_polyline(rn_canvas *c, const double *xy, int n, rn_color color, double width,
                     int dashed) {
    double s = c->scale, hw = width * s / 2;
    if (n == 1)
        cov_segment(c, xy[0] * s, xy[1] * s, xy[0] * s, xy[1] * s, hw);
    /* dashes: 6 units on, 4 off, continuing across the vertices */
    double phase = 0.0;
    for (int i = 0; i + 1 < n; i++) {
        double ax = xy[2 * i] * s, ay = xy[2 * i + 1] * s, bx = xy[2 * i + 2] * s,
               by = xy[2 * i + 3] * s;
        if (!dashed) {
            cov_segment(c, ax, ay, bx, by, hw);
            continue;
        }
        double len = hypot(bx - ax, by - ay), on = 6 * s, period = 10 * s;
        for (double t = 0; t < len;) {
            double in_period = fmod(phase + t, period);
            double step = in_period < on ? on - in_period : period - in_period;
            double t1 = fmin(t + step, len);
            if (in_period < on && len > 0)
                cov_segment(c, ax + (bx - ax) * t / len, ay + (by - ay) * t / len,
                            ax + (bx - ax) * t1 / len, ay + (by - ay) * t1 / len, hw);
            t = t1;
        }
        phase = fmod(phase + len, period);
    }
    flush(c, color);
}

void raster_circle(rn_canvas *c, double cx, double cy, double r, rn_color fill) {
    double s = c->scale, x = cx * s, y = cy * s, rr = r * s;
    int x0, y0, x1, y1;
    if (!clip_box(c, x - rr - 1, y - rr - 1, x + rr + 1, y + rr + 1, &x0, &y0, &x1, &y1))
        return;
    for (int py = y0; py < y1; py++)
        for (int px = x0; px < x1; px++)
            cov_max(c, px, py, clamp01(rr + 0.5 - hypot(px + 0.5 - x, py + 0.5 - y)));
    flush(c, fill);
}

/* ---------------------------------------------------------------------------
 * Text: the stroke font's glyphs, placed and scaled
 * ------------------------------------------------------------------------- */

typedef struct text_pen {
    rn_canvas *c;
    double x, y;       /* device position of the text's origin */
    double advance;    /* font units along the baseline so far */
    double k;          /* device pixels per font unit */
    double hw;         /* stroke half-width, device pixels */
    int vertical;
} text_pen;

/* Font units (u along the baseline from the pen, v up) to device pixels. */
static void place(const text_pen *t, double u, double v, double *dx, double *dy) {
    double along = (t->advance + u) * t->k, down = -v * t->k;
    if (t->vertical) {
        *dx = t->x + down;
        *dy = t->y - along;
    } else {
        *dx = t->x + along;
        *dy = t->y + down;
    }
}

static void glyph_stroke(void *ctx, const double *xy, int n) {
    text_pen *t = ctx;
    double ax, ay, bx, by;
    place(t, xy[0], xy[1], &ax, &ay);
    if (n == 1)
        cov_segment(t->c, ax, ay, ax, ay, t->hw);
    for (int i = 1; i < n; i++) {
        place(t, xy[2 * i], xy[2 * i + 1], &bx, &by);
        cov_segment(t->c, ax, ay, bx, by, t->hw);
        ax = bx, ay = by;
    }
}

void raster_text(rn_canvas *c, double x, double y, const rn_font *f, const char *text) {
    double units = 0.0;
    for (const char *p = text; *p;)
        units += rn_glyph_advance(rn_utf8_next(&p));
    text_pen t = {.c = c, .k = f->size / RN_FONT_EM * c->scale, .vertical = f->vertical};
    t.hw = (f->bold ? RN_FONT_STROKE_BOLD : RN_FONT_STROKE) * t.k / 2;
    double shift = f->align == RN_ALIGN_MIDDLE ? units / 2 : f->align == RN_ALIGN_END ? units : 0.0;
    t.x = x * c->scale, t.y = y * c->scale;
    t.advance = -shift;
    for (const char *p = text; *p;) {
        uint32_t cp = rn_utf8_next(&p);
        rn_glyph_strokes(cp, glyph_stroke, &t);
        t.advance += rn_glyph_advance(cp);
    }
    flush(c, f->color);
}

/* ---------------------------------------------------------------------------
 * Images: nearest-neighbour, no blending
 * ------------------------------------------------------------------------- */

void raster_image(rn_canvas *c, double x, double y, double w, double h, const uint8_t *pixels,
                  int iw, int ih, int channels) {
    double s = c->scale;
    int x0 = (int)lround(x * s), y0 = (int)lround(y * s);
    int x1 = (int)lround((x + w) * s), y1 = (int)lround((y + h) * s);
    if (x1 <= x0 || y1 <= y0)
        return;
    for (int py = y0 < 0 ? 0 : y0; py < y1 && py < c->ph; py++) {
        int sy = (int)((int64_t)(py - y0) * ih / (y1 - y0));
        for (int px = x0 < 0 ? 0 : x0; px < x1 && px < c->pw; px++) {
            int sx = (int)((int64_t)(px - x0) * iw / (x1 - x0));
            const uint8_t *src = pixels + ((size_t)sy * iw + sx) * channels;
            uint8_t *dst = &c->rgb[((size_t)py * c->pw + px) * 3];
            dst[0] = src[0];
            dst[1] = src[channels == 3 ? 1 : 0];
            dst[2] = src[channels == 3 ? 2 : 0];
        }
    }
}

rn_status rn_canvas_png(const rn_canvas *c, json_buf *out) {
    if (!c->raster)
        return rn_fail(RN_ERR_ARG, "rn_canvas_png: an SVG canvas");
    if (c->failed)
        return rn_fail(RN_ERR_NOMEM, "out of memory while drawing a raster figure");
    return rn_png_encode(c->rgb, c->pw, c->ph, 3, out);
}
