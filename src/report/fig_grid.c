/*
 * fig_grid.c - a grid of test images with their labels: each image framed in
 * red (wrong) or green (right), with two caption lines under it.
 *
 * Images fill rows of up to COLS, in order, except the correct images kept
 * per class when there are at most BY_CLASS_MAX classes: then each class is
 * a column (most confident on top), and a class without any correct image
 * shows an empty dashed frame, so that it stands out.
 *
 * Small images (28 x 28, 32 x 32) are enlarged by a whole factor, so every
 * pixel stays a sharp square; larger ones are shown about 100 units wide.
 */
#include <math.h>
#include <stdio.h>

#include "report/report_impl.h"

#define COLS 8
#define BY_CLASS_MAX 12
#define MARGIN 16.0
#define TOP 50.0
#define CAPTION_H 40.0
#define MIN_CELL_W 128.0       /* room for "pred: Ankle boot (99.6%)" */
#define MIN_CELL_W_CLASS 104.0 /* by class: a name and "prob. 99.9%"; ten fit a page */

static const rn_color INK = 0x222222;
static const rn_color RED = 0xc62828;
static const rn_color GREEN = 0x2e7d32;

typedef struct layout {
    const report_pick *picks;
    int count;
    int by_class;           /* a column per class */
    double img_w, img_h;    /* displayed image size */
    double cell_w, cell_h;
    int cols, rows;
    double w, h;
} layout;

static layout make_layout(const report_eval *e, int wrong) {
    layout L;
    L.picks = wrong ? e->wrong : e->right;
    L.count = wrong ? e->n_wrong : e->n_right;
    L.by_class = !wrong && e->right_per_class > 0 && e->ev.num_classes <= BY_CLASS_MAX;
    int side = e->thumb_h > e->thumb_w ? e->thumb_h : e->thumb_w;
    double scale = side <= 50 ? floor(100.0 / side) : 100.0 / side;
    L.img_w = e->thumb_w * scale;
    L.img_h = e->thumb_h * scale;
    L.cell_w = fmax(L.img_w, L.by_class ? MIN_CELL_W_CLASS : MIN_CELL_W) + (L.by_class ? 8 : 12);
    L.cell_h = L.img_h + CAPTION_H + 14;
    if (L.by_class) {
        /* as many rows as the class with the most picks fills (a class has fewer right images
         * than right_per_class where it has few images: the figure had kept blank rows) */
        L.cols = e->ev.num_classes;
        L.rows = 1;
        for (int i = 0, run = 0; i < L.count; i++) {
            run = i > 0 && L.picks[i - 1].label == L.picks[i].label ? run + 1 : 1;
            L.rows = run > L.rows ? run : L.rows;
        }
    } else {
        L.cols = L.count < COLS ? (L.count > 0 ? L.count : 1) : COLS;
        L.rows = (L.count + L.cols - 1) / L.cols;
    }
    L.w = fmax(2 * MARGIN + L.cols * L.cell_w, 560);
    L.h = TOP + L.rows * L.cell_h + 8;
    return L;
}

void fig_grid_size(const report_eval *e, int wrong, double *w, double *h) {
    layout L = make_layout(e, wrong);
    *w = L.w;
    *h = L.h;
}

/* "97%", "99.9%", "0.4%": whole percent from 10% up to 99%, one decimal
 * otherwise, "100%" only for a probability of exactly 1 (as float). */
static void percent(char *out, size_t cap, double p) {
    double v = 100 * p;
    if (v >= 100)
        snprintf(out, cap, "100%%");
    else if (v >= 10 && v < 99.5)
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

/* Where pick i goes: (column, row). By class, picks come sorted by class
 * then confidence, so a pick's row is its rank within its class. */
static void place(const layout *L, int i, int *col, int *row) {
    if (!L->by_class) {
        *col = i % L->cols;
        *row = i / L->cols;
        return;
    }
    int rank = 0;
    while (rank < i && L->picks[i - rank - 1].label == L->picks[i].label)
        rank++;
    *col = L->picks[i].label;
    *row = rank;
}

void fig_grid(rn_canvas *c, const report_eval *e, const report_names *n, int wrong,
              const char *title) {
    layout L = make_layout(e, wrong);
    rn_font head = {17, RN_ALIGN_MIDDLE, 1, INK, 0};
    rn_draw_text(c, L.w / 2, 30, &head, title);
    double x0 = (L.w - L.cols * L.cell_w) / 2;
    rn_font line1 = {11.5, RN_ALIGN_MIDDLE, !wrong, INK, 0};
    rn_font line2 = {11.5, RN_ALIGN_MIDDLE, 0, wrong ? RED : GREEN, 0};
    double room = L.cell_w - 6, dy = (L.cell_w - L.img_w) / 2;
    for (int k = 0; L.by_class && k < L.cols; k++) {   /* classes never right */
        int found = 0;
        for (int i = 0; i < L.count && !found; i++)
            found = L.picks[i].label == k;
        if (found)
            continue;
        class_stats s; /* the class's images in the split: none is no failure */
        report_class_stats(&e->ev, k, &s);
        const int64_t images = s.images;
        double ix = x0 + k * L.cell_w + dy, mid = x0 + (k + 0.5) * L.cell_w, ty = TOP + L.img_h + 17;
        rn_draw_rect(c, ix, TOP, L.img_w, L.img_h, 0xf4f4f4, RN_NONE, 0);
        double frame[10] = {ix, TOP, ix + L.img_w, TOP, ix + L.img_w, TOP + L.img_h, ix, TOP + L.img_h, ix, TOP};
        rn_draw_polyline(c, frame, 5, 0xaaaaaa, 1.5, 1);
        char name[96];
        rn_text_fit(&line1, n->name[k], room, name, sizeof name);
        rn_draw_text(c, mid, ty, &line1, name);
        rn_font none = line2;
        none.color = images ? RED : 0x888888;
        rn_draw_text(c, mid, ty + 16, &none, images ? "none right" : "no images");
    }
    for (int i = 0; i < L.count; i++) {
        const report_pick *p = &L.picks[i];
        int col, row;
        place(&L, i, &col, &row);
        double cx = x0 + col * L.cell_w, cy = TOP + row * L.cell_h;
        double ix = cx + dy, mid = cx + L.cell_w / 2;
        rn_draw_group_begin(c, wrong ? "wrong" : "correct");
        rn_draw_image(c, ix, cy, L.img_w, L.img_h, p->thumb, e->thumb_w, e->thumb_h, e->channels);
        rn_draw_rect(c, ix - 1, cy - 1, L.img_w + 2, L.img_h + 2, RN_NONE, wrong ? RED : GREEN, 2);
        double ty = cy + L.img_h + 17;
        if (wrong) {
            caption(c, mid, ty, room, &line1, "true:", n->name[p->label], p->p_label);
            caption(c, mid, ty + 16, room, &line2, "pred:", n->name[p->pred], p->p_pred);
        } else {
            char name[96], pct[16];
            rn_text_fit(&line1, n->name[p->label], room, name, sizeof name);
            rn_draw_text(c, mid, ty, &line1, name);
            percent(pct, sizeof pct, p->p_pred);
            rn_draw_textf(c, mid, ty + 16, &line2, "prob. %s", pct);
        }
        rn_draw_group_end(c);
    }
}
