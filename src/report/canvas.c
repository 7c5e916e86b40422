/*
 * canvas.c - creating canvases, handing each drawing call to its backend,
 * and measuring text.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "report/canvas_impl.h"
#include "report/font.h"
#include "report/markup.h"

rn_status rn_canvas_create_svg(double width, double height, const char *title, rn_canvas **out) {
    *out = NULL;
    if (!(width > 0 && height > 0 && width < 1e6 && height < 1e6))
        return rn_fail(RN_ERR_ARG, "canvas size %gx%g is out of range", width, height);
    rn_canvas *c = calloc(1, sizeof *c);
    if (!c || (title && !(c->title = strdup(title)))) {
        free(c);
        return rn_fail(RN_ERR_NOMEM, "out of memory for a canvas");
    }
    c->width = width, c->height = height;
    *out = c;
    return RN_OK;
}

rn_status rn_canvas_create_raster(double width, double height, double scale, rn_canvas **out) {
    *out = NULL;
    if (!(scale >= 0.25 && scale <= 8) || !(width > 0 && height > 0) || width * scale > 8192 ||
        height * scale > 8192)
        return rn_fail(RN_ERR_ARG, "raster of %gx%g at scale %g is out of range", width, height, scale);
    rn_canvas *c = calloc(1, sizeof *c);
    if (!c)
        return rn_fail(RN_ERR_NOMEM, "out of memory for a canvas");
    c->raster = 1;
    c->width = width, c->height = height, c->scale = scale;
    c->pw = (int)ceil(width * scale), c->ph = (int)ceil(height * scale);
    size_t pixels = (size_t)c->pw * (size_t)c->ph;
    c->rgb = malloc(pixels * 3);
    c->cov = calloc(pixels, sizeof *c->cov);
    if (!c->rgb || !c->cov) {
        rn_canvas_free(c);
        return rn_fail(RN_ERR_NOMEM, "out of memory for a %dx%d raster", (int)ceil(width * scale),
                       (int)ceil(height * scale));
    }
    memset(c->rgb, 255, pixels * 3);
    *out = c;
    return RN_OK;
}

void rn_canvas_free(rn_canvas *c) {
    if (!c)
        return;
    json_buf_free(&c->body);
    free(c->title);
    free(c->rgb);
    free(c->cov);
    free(c);
}

/* ---------------------------------------------------------------------------
 * Drawing: each call goes to the backend
 * ------------------------------------------------------------------------- */

void rn_draw_rect(rn_canvas *c, double x, double y, double w, double h, rn_color fill,
                  rn_color stroke, double stroke_width) {
    if (!(w > 0 && h > 0))
        return;
    if (c->raster)
        raster_rect(c, x, y, w, h, fill, stroke, stroke_width);
    else
        svg_rect(c, x, y, w, h, fill, stroke, stroke_width);
}

void rn_draw_polyline(rn_canvas *c, const double *xy, int n, rn_color color, double width,
                      int dashed) {
    if (n < 1 || color == RN_NONE)
        return;
    if (c->raster)
        raster_polyline(c, xy, n, color, width, dashed);
    else
        svg_polyline(c, xy, n, color, width, dashed);
}

void rn_draw_line(rn_canvas *c, double x1, double y1, double x2, double y2, rn_color color,
                  double width, int dashed) {
    double xy[4] = {x1, y1, x2, y2};
    if (color == RN_NONE)
        return;
    if (c->raster)
        raster_polyline(c, xy, 2, color, width, dashed);
    else
        svg_line(c, xy, color, width, dashed);
}

void rn_draw_circle(rn_canvas *c, double cx, double cy, double r, rn_color fill) {
    if (!(r > 0) || fill == RN_NONE)
        return;
    if (c->raster)
        raster_circle(c, cx, cy, r, fill);
    else
        svg_circle(c, cx, cy, r, fill);
}

void rn_draw_text(rn_canvas *c, double x, double y, const rn_font *f, const char *text) {
    if (!text || !*text)
        return;
    if (c->raster)
        raster_text(c, x, y, f, text);
    else
        svg_text(c, x, y, f, text);
}

void rn_draw_textf(rn_canvas *c, double x, double y, const rn_font *f, const char *fmt, ...) {
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    rn_draw_text(c, x, y, f, text);
}

void rn_draw_image(rn_canvas *c, double x, double y, double w, double h, const uint8_t *pixels,
                   int iw, int ih, int channels) {
    if (!pixels || iw < 1 || ih < 1 || (channels != 1 && channels != 3) || !(w > 0 && h > 0))
        return;
    if (c->raster)
        raster_image(c, x, y, w, h, pixels, iw, ih, channels);
    else
        svg_image(c, x, y, w, h, pixels, iw, ih, channels);
}

void rn_draw_group_begin(rn_canvas *c, const char *cls) {
    if (!c->raster)
        svg_group(c, cls ? cls : "");
}

void rn_draw_group_end(rn_canvas *c) {
    if (!c->raster)
        svg_group(c, NULL);
}

double rn_text_width(const rn_font *f, const char *text) {
    double units = 0.0;
    while (text && *text)
        units += rn_glyph_advance(rn_utf8_next(&text));
    /* the stroke font is a little narrower than DejaVu Sans: measure for both */
    return units * f->size / RN_FONT_EM * (f->bold ? 1.1 : 1.04);
}

void rn_text_fit(const rn_font *f, const char *text, double max_width, char *out, size_t cap) {
    if (cap == 0)
        return;
    snprintf(out, cap, "%s", text);
    if (rn_text_width(f, out) <= max_width)
        return;
    /* drop whole characters from the end until the rest and "..." fit */
    size_t len = strlen(out);
    while (len > 0) {
        do
            len--;
        while (len > 0 && ((unsigned char)out[len] & 0xc0) == 0x80);
        if (len + 4 > cap)
            continue;
        memcpy(out + len, "...", 4);
        if (rn_text_width(f, out) <= max_width)
            return;
    }
    snprintf(out, cap, "%s", cap > 3 ? "..." : "");
}
