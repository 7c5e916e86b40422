/*
 * canvas.h - one drawing interface, two outputs: an SVG document and an RGB
 * raster (encoded as PNG). Each figure of the report is drawn once, through
 * these calls, and comes out as both.
 *
 * Coordinates are user units (the SVG's px): x to the right, y downwards,
 * origin at the top left. The raster backend multiplies every coordinate by
 * its scale, so a 1000 x 440 figure at scale 2 is a 2000 x 880 PNG.
 *
 * Text: the SVG backend writes <text> elements in the viewer's sans-serif
 * font; the raster backend draws the built-in stroke font (font.h), every
 * glyph of printable ASCII, a box for other characters. rn_text_width
 * measures with the stroke font's advances, widened a little so that layouts
 * also fit common sans-serif fonts (DejaVu Sans, Arial).
 *
 * Colours are 0xRRGGBB; RN_NONE means no fill or no stroke.
 *
 * Errors: drawing calls return nothing. An allocation failure inside one
 * marks the canvas failed; the finishing call (rn_canvas_svg,
 * rn_canvas_png) then reports it.
 */
#ifndef RN_REPORT_CANVAS_H
#define RN_REPORT_CANVAS_H

#include <stdint.h>

#include "io/json.h"
#include "resnet.h"

typedef uint32_t rn_color;
#define RN_NONE 0xFF000000u

typedef enum rn_align { RN_ALIGN_START, RN_ALIGN_MIDDLE, RN_ALIGN_END } rn_align;

typedef struct rn_font {
    double size;       /* em size in user units */
    rn_align align;    /* where x is: the text's start, middle or end */
    int bold;
    rn_color color;
    int vertical;      /* 1: rotated by -90 degrees, reading upwards */
} rn_font;

typedef struct rn_canvas rn_canvas;

/* An SVG canvas of width x height user units; title becomes the document's
 * <title> (NULL: none). */
rn_status rn_canvas_create_svg(double width, double height, const char *title, rn_canvas **out);

/* A white raster canvas of (width * scale) x (height * scale) pixels;
 * scale in 0.25..8, at most 8192 pixels a side. */
rn_status rn_canvas_create_raster(double width, double height, double scale, rn_canvas **out);

void rn_canvas_free(rn_canvas *c);

/* A rectangle; fill and stroke may each be RN_NONE. */
void rn_draw_rect(rn_canvas *c, double x, double y, double w, double h, rn_color fill,
                  rn_color stroke, double stroke_width);

/* A polyline through n points xy[0..2n), solid or dashed (6 on, 4 off);
 * SVG: one <polyline>. */
void rn_draw_polyline(rn_canvas *c, const double *xy, int n, rn_color color, double width,
                      int dashed);

/* A line segment (SVG: one <line>), solid or dashed. */
void rn_draw_line(rn_canvas *c, double x1, double y1, double x2, double y2, rn_color color,
                  double width, int dashed);

void rn_draw_circle(rn_canvas *c, double cx, double cy, double r, rn_color fill);

/* UTF-8 text with its baseline at y. Invalid UTF-8 bytes are drawn as '?'. */
void rn_draw_text(rn_canvas *c, double x, double y, const rn_font *f, const char *text);
void rn_draw_textf(rn_canvas *c, double x, double y, const rn_font *f, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* An 8-bit image, interleaved rows (ih, iw, channels), channels 1 or 3,
 * stretched over the rectangle with nearest-neighbour sampling (the pixels
 * stay sharp when enlarged). */
void rn_draw_image(rn_canvas *c, double x, double y, double w, double h, const uint8_t *pixels,
                   int iw, int ih, int channels);

/* Groups what is drawn until the matching end; SVG: <g class="cls">. */
void rn_draw_group_begin(rn_canvas *c, const char *cls);
void rn_draw_group_end(rn_canvas *c);

/* The width of text in font f, in user units (see above). */
double rn_text_width(const rn_font *f, const char *text);

/* Copies text into out (capacity cap), cut at a character boundary and
 * ended with "..." when it is wider than max_width in font f. */
void rn_text_fit(const rn_font *f, const char *text, double max_width, char *out, size_t cap);

/* Appends the SVG document to *out: with standalone, an XML declaration and
 * width/height attributes (a file); without, the bare <svg> element sized by
 * its viewBox (to inline in HTML). Fails on a raster canvas. */
rn_status rn_canvas_svg(const rn_canvas *c, int standalone, json_buf *out);

/* Appends the raster as an RGB PNG to *out. Fails on an SVG canvas. */
rn_status rn_canvas_png(const rn_canvas *c, json_buf *out);

#endif
