/*
 * fig_grid.c - a grid of test images with their labels: each image framed in
 * red (wrong) or green (right), with two caption lines under it.
 *
 * Small images (28 x 28, 32 x 32) are enlarged by a whole factor, so every
 * pixel stays a sharp square; larger ones are shown about 100 units wide.
 */
#include <math.h>
#include <stdio.h>

#include "report/report_impl.h"

#define COLS 8
#define MARGIN 16.0
#define TOP 50.0
#define CAPTION_H 40.0
#define MIN_CELL_W 128.0

static const rn_color INK = 0x222222;
static const rn_color RED = 0xc62828;
static const rn_color GREEN = 0x2e7d32;

typedef struct layout {
    double img_w, img_h;    /* displayed image size */
    double cell_w, cell_h;
    int cols, rows;
} layout;

static layout make_layout(const report_eval *e, int count) {
    layout L;
    int side = e->thumb_h > e->thumb_w ? e->thumb_h : e->thumb_w;
    double scale = side <= 50 ? floor(100.0 / side) : 100.0 / side;
    L.img_w = e->thumb_w * scale;
    L.img_h = e->thumb_h * scale;
    L.cell_w = fmax(L.img_w, MIN_CELL_W) + 12;
    L.cell_h = L.img_h + CAPTION_H + 14;
    L.cols = count < COLS ? (count > 0 ? count : 1) : COLS;
    L.rows = (count + L.cols - 1) / L.cols;
    return L;
}

void fig_grid_size(const report_eval *e, int count, double *w, double *h) {
    layout L = make_layout(e, count);
    *w = fmax(2 * MARGIN + L.cols * L.cell_w, 560);
    *h = TOP + L.rows * L.cell_h + 8;
}

/* "97%", "99.9%", "0.4%": whole percent from 10% up to 99%, one decimal otherwise. */
static void percent(char *out, size_t cap, double p) {
    double v = 100 * p;
    if (v >= 10 && v < 99.5)
        snprintf(out, cap, "%.0f%%", v);
    else
        snprintf(out, cap, "%.1f%%", v > 99.95 && v < 100 ? 99.9 : v);
}

/* One caption line: prefix, the class name cut to fit, and a percentage. */
static void caption(rn_canvas *c, double x, double y, double width, const rn_font *f,
                    const char *prefix, const char *name, double p) {
    char pct[16], fitted[96], line[160];
    percent(pct, sizeof pct, p);
    snprintf(line, sizeof line, "%s %s", prefix, pct);
    double room = width - rn_text_width(f, line) - rn_text_width(f, "  ");
    rn_text_fit(f, name, room, fitted, sizeof fitted);
    rn_draw_textf(c, x, y, f, "%s%s%s (%s)", prefix, *prefix ? " " : "", fitted, pct);
}

void fig_grid(rn_canvas *c, const report_eval *e, const report_names *n, const report_pick *p,
              int count, int wrong, const char *title) {
    layout L = make_layout(e, count);
    double w, h;
    fig_grid_size(e, count, &w, &h);
    rn_font head = {17, RN_ALIGN_MIDDLE, 1, INK, 0};
    rn_draw_text(c, w / 2, 30, &head, title);
    double x0 = (w - L.cols * L.cell_w) / 2;
    rn_font line1 = {11.5, RN_ALIGN_MIDDLE, !wrong, INK, 0};
    rn_font line2 = {11.5, RN_ALIGN_MIDDLE, 0, wrong ? RED : GREEN, 0};
    for (int i = 0; i < count; i++) {
        double cx = x0 + (i % L.cols) * L.cell_w, cy = TOP + (i / L.cols) * L.cell_h;
        double ix = cx + (L.cell_w - L.img_w) / 2, mid = cx + L.cell_w / 2;
        rn_draw_group_begin(c, wrong ? "wrong" : "correct");
        rn_draw_image(c, ix, cy, L.img_w, L.img_h, p[i].thumb, e->thumb_w, e->thumb_h, e->channels);
        rn_draw_rect(c, ix - 1.5, cy - 1.5, L.img_w + 3, L.img_h + 3, RN_NONE, wrong ? RED : GREEN, 2);
        double ty = cy + L.img_h + 17, room = L.cell_w - 6;
        if (wrong) {
            caption(c, mid, ty, room, &line1, "true:", n->name[p[i].label], p[i].p_label);
            caption(c, mid, ty + 16, room, &line2, "pred:", n->name[p[i].pred], p[i].p_pred);
        } else {
            char name[96];
            rn_text_fit(&line1, n->name[p[i].label], room, name, sizeof name);
            rn_draw_text(c, mid, ty, &line1, name);
            char pct[16];
            percent(pct, sizeof pct, p[i].p_pred);
            rn_draw_textf(c, mid, ty + 16, &line2, "probability %s", pct);
        }
        rn_draw_group_end(c);
    }
}
