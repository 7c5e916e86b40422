/*
 * canvas_impl.h - what the canvas's two backends share (private to
 * canvas.c, canvas_svg.c and canvas_raster.c).
 */
#ifndef RN_REPORT_CANVAS_IMPL_H
#define RN_REPORT_CANVAS_IMPL_H

#include "report/canvas.h"

struct rn_canvas {
    int raster;              /* 0: SVG, 1: raster */
    double width, height;    /* user units */
    int failed;              /* an allocation failed while drawing */

    /* SVG */
    json_buf body;           /* the elements drawn so far */
    char *title;             /* or NULL */
    int open_groups;

    /* raster */
    double scale;            /* pixels per user unit */
    int pw, ph;              /* pixels */
    uint8_t *rgb;            /* (ph, pw, 3) */
    float *cov;              /* (ph, pw): coverage of the shape being drawn */
    int bx0, by0, bx1, by1;  /* where cov may be non-zero (half-open) */
};

void svg_rect(rn_canvas *c, double x, double y, double w, double h, rn_color fill, rn_color stroke,
              double sw);
void svg_polyline(rn_canvas *c, const double *xy, int n, rn_color color, double width, int dashed);
void svg_line(rn_canvas *c, const double xy[4], rn_color color, double width, int dashed);
void svg_circle(rn_canvas *c, double cx, double cy, double r, rn_color fill);
void svg_text(rn_canvas *c, double x, double y, const rn_font *f, const char *text);
void svg_image(rn_canvas *c, double x, double y, double w, double h, const uint8_t *pixels, int iw,
               int ih, int channels);
void svg_group(rn_canvas *c, const char *cls);   /* cls NULL: close the group */

void raster_rect(rn_canvas *c, double x, double y, double w, double h, rn_color fill,
                 rn_color stroke, double sw);
void raster_polyline(rn_canvas *c, const double *xy, int n, rn_color color, double width,
                     int dashed);
void raster_circle(rn_canvas *c, double cx, double cy, double r, rn_color fill);
void raster_text(rn_canvas *c, double x, double y, const rn_font *f, const char *text);
void raster_image(rn_canvas *c, double x, double y, double w, double h, const uint8_t *pixels,
                  int iw, int ih, int channels);

#endif
