/*
 * canvas_svg.c - the SVG backend: each drawing call appends one element.
 * Images become PNG data URIs, so a document is self-contained.
 */
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "io/png_write.h"
#include "report/canvas_impl.h"
#include "report/markup.h"

static void num(rn_canvas *c, double v) {
    rn_markup_number(&c->body, v, 2);
}

static void color(rn_canvas *c, rn_color v) {
    if (v == RN_NONE)
        RN_PUT(&c->body, "none");
    else
        json_buf_printf(&c->body, "#%06x", (unsigned)(v & 0xffffff));
}

/* Appends ` name="#rrggbb"` (or "none"). */
static void color_attr(rn_canvas *c, const char *name, rn_color v) {
    json_buf_printf(&c->body, " %s=\"", name);
    color(c, v);
    RN_PUT(&c->body, "\"");
}

/* Appends ` name="value"` for a number. */
static void attr(rn_canvas *c, const char *name, double v) {
    json_buf_printf(&c->body, " %s=\"", name);
    num(c, v);
    RN_PUT(&c->body, "\"");
}

void svg_rect(rn_canvas *c, double x, double y, double w, double h, rn_color fill, rn_color stroke,
              double sw) {
    RN_PUT(&c->body, "<rect");
    attr(c, "x", x);
    attr(c, "y", y);
    attr(c, "width", w);
    attr(c, "height", h);
    color_attr(c, "fill", fill);
    if (stroke != RN_NONE) {
        color_attr(c, "stroke", stroke);
        attr(c, "stroke-width", sw);
    }
    RN_PUT(&c->body, "/>\n");
}

void svg_polyline(rn_canvas *c, const double *xy, int n, rn_color stroke, double width, int dashed) {
    RN_PUT(&c->body, "<polyline fill=\"none\"");
    color_attr(c, "stroke", stroke);
    attr(c, "stroke-width", width);
    json_buf_printf(&c->body, " stroke-linejoin=\"round\"%s points=\"",
                    dashed ? " stroke-dasharray=\"6,4\"" : " stroke-linecap=\"round\"");
    for (int i = 0; i < n; i++) {
        if (i)
            RN_PUT(&c->body, " ");
        num(c, xy[2 * i]);
        RN_PUT(&c->body, ",");
        num(c, xy[2 * i + 1]);
    }
    RN_PUT(&c->body, "\"/>\n");
}

void svg_line(rn_canvas *c, const double xy[4], rn_color stroke, double width, int dashed) {
    RN_PUT(&c->body, "<line");
    attr(c, "x1", xy[0]);
    attr(c, "y1", xy[1]);
    attr(c, "x2", xy[2]);
    attr(c, "y2", xy[3]);
    color_attr(c, "stroke", stroke);
    attr(c, "stroke-width", width);
    if (dashed)
        RN_PUT(&c->body, " stroke-dasharray=\"6,4\"");
    RN_PUT(&c->body, "/>\n");
}

void svg_circle(rn_canvas *c, double cx, double cy, double r, rn_color fill) {
    RN_PUT(&c->body, "<circle");
    attr(c, "cx", cx);
    attr(c, "cy", cy);
    attr(c, "r", r);
    color_attr(c, "fill", fill);
    RN_PUT(&c->body, "/>\n");
}

void svg_text(rn_canvas *c, double x, double y, const rn_font *f, const char *text) {
    static const char *const ANCHOR[] = {"start", "middle", "end"};
    RN_PUT(&c->body, "<text");
    attr(c, "x", x);
    attr(c, "y", y);
    attr(c, "font-size", f->size);
    if (f->bold)
        RN_PUT(&c->body, " font-weight=\"bold\"");
    if (f->align != RN_ALIGN_START)
        json_buf_printf(&c->body, " text-anchor=\"%s\"", ANCHOR[f->align]);
    if (f->color != 0)
        color_attr(c, "fill", f->color);
    if (f->vertical) {
        RN_PUT(&c->body, " transform=\"rotate(-90 ");
        num(c, x);
        RN_PUT(&c->body, " ");
        num(c, y);
        RN_PUT(&c->body, ")\"");
    }
    RN_PUT(&c->body, ">");
    rn_markup_escape(&c->body, text);
    RN_PUT(&c->body, "</text>\n");
}

void svg_image(rn_canvas *c, double x, double y, double w, double h, const uint8_t *pixels, int iw,
               int ih, int channels) {
    json_buf png = {0};
    if (rn_png_encode(pixels, iw, ih, channels, &png) != RN_OK) {
        c->failed = 1;
        json_buf_free(&png);
        return;
    }
    RN_PUT(&c->body, "<image");
    attr(c, "x", x);
    attr(c, "y", y);
    attr(c, "width", w);
    attr(c, "height", h);
    RN_PUT(&c->body, " preserveAspectRatio=\"none\" image-rendering=\"optimizeSpeed\" "
                 "style=\"image-rendering:pixelated\" xlink:href=\"data:image/png;base64,");
    rn_base64_append(&c->body, png.data, png.len);
    RN_PUT(&c->body, "\"/>\n");
    json_buf_free(&png);
}

void svg_group(rn_canvas *c, const char *cls) {
    if (cls) {
        RN_PUT(&c->body, "<g class=\"");
        rn_markup_escape(&c->body, cls);
        RN_PUT(&c->body, "\">\n");
        c->open_groups++;
    } else if (c->open_groups > 0) {
        RN_PUT(&c->body, "</g>\n");
        c->open_groups--;
    }
}

rn_status rn_canvas_svg(const rn_canvas *c, int standalone, json_buf *out) {
    if (c->raster)
        return rn_fail(RN_ERR_ARG, "rn_canvas_svg: a raster canvas");
    if (c->failed || c->body.failed)
        return rn_fail(RN_ERR_NOMEM, "out of memory while drawing an SVG figure");
    if (standalone)
        RN_PUT(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    RN_PUT(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
                 "xmlns:xlink=\"http://www.w3.org/1999/xlink\" version=\"1.1\"");
    if (standalone)
        json_buf_printf(out, " width=\"%.0f\" height=\"%.0f\"", c->width, c->height);
    else
        RN_PUT(out, " role=\"img\"");
    json_buf_printf(out, " viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Arial, Helvetica, "
                    "sans-serif\">\n", c->width, c->height);
    if (c->title) {
        RN_PUT(out, "<title>");
        rn_markup_escape(out, c->title);
        RN_PUT(out, "</title>\n");
    }
    json_buf_printf(out, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", c->width,
                    c->height);
    if (c->body.len)
        json_buf_put(out, c->body.data, c->body.len);
    for (int i = 0; i < c->open_groups; i++)
        RN_PUT(out, "</g>\n");
    RN_PUT(out, "</svg>\n");
    return out->failed ? rn_fail(RN_ERR_NOMEM, "out of memory for an SVG document") : RN_OK;
}
