/*
 * fig_confusion.c - the confusion matrix as a heat map.
 *
 * Rows are true classes, columns predicted ones. A cell's colour is its
 * share of the row (the fraction of the true class predicted as the column)
 * on a white-to-blue ramp, through a square root so that rare mistakes stay
 * visible; its number is the image count (empty cells hold none). A colour
 * bar on the right gives the scale.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_impl.h"

#define MAX_SHOWN 30
#define TOP 62.0
#define AXIS_GAP 34.0    /* room for the rotated axis title left of the row labels */
#define BAR_GAP 26.0     /* matrix to colour bar */
#define BAR_W 14.0
#define RIGHT 104.0      /* colour bar, its ticks and title */

static const rn_color INK = 0x222222;

/* The white-to-blue ramp at t in [0, 1]. */
static rn_color ramp(double t) {
    static const rn_color STOPS[] = {0xf7fbff, 0xc6dbef, 0x6baed6, 0x2171b5, 0x08306b};
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double pos = t * 4;
    int i = pos >= 4 ? 3 : (int)pos;
    double f = pos - i;
    rn_color a = STOPS[i], b = STOPS[i + 1], out = 0;
    for (int shift = 16; shift >= 0; shift -= 8) {
        double ca = a >> shift & 255, cb = b >> shift & 255;
        out |= (rn_color)lround(ca + (cb - ca) * f) << shift;
    }
    return out;
}

typedef struct layout {
    int k;                  /* classes shown */
    int idx[MAX_SHOWN];     /* their indices */
    double cell, left, label_w, label_h;
    rn_font label;
    double w, h;
} layout;

static int64_t cell_count(const report_eval *e, int r, int c) {
    return e->ev.confusion[(size_t)r * e->ev.num_classes + c];
}

int fig_confusion_classes(const report_eval *e, int *idx) {
    int K = e->ev.num_classes;
    if (K <= MAX_SHOWN) {
        for (int i = 0; i < K; i++)
            idx[i] = i;
        return K;
    }
    /* the MAX_SHOWN classes with the most mistakes, as label or as prediction */
    int64_t *miss = calloc((size_t)K, sizeof *miss);
    if (!miss) {
        for (int i = 0; i < MAX_SHOWN; i++)
            idx[i] = i;
        return MAX_SHOWN;
    }
    for (int r = 0; r < K; r++)
        for (int c = 0; c < K; c++)
            if (r != c) {
                miss[r] += cell_count(e, r, c);
                miss[c] += cell_count(e, r, c);
            }
    for (int s = 0; s < MAX_SHOWN; s++) {
        int best = -1;
        for (int i = 0; i < K; i++)
            if (miss[i] >= 0 && (best < 0 || miss[i] > miss[best]))
                best = i;
        idx[s] = best;
        miss[best] = -1;
    }
    free(miss);
    for (int a = 1; a < MAX_SHOWN; a++)      /* back to class order */
        for (int b = a; b > 0 && idx[b] < idx[b - 1]; b--) {
            int t = idx[b];
            idx[b] = idx[b - 1];
            idx[b - 1] = t;
        }
    return MAX_SHOWN;
}

static void make_layout(const report_eval *e, const report_names *n, layout *L) {
    int *all = malloc((size_t)e->ev.num_classes * sizeof *all);
    L->k = all ? fig_confusion_classes(e, all) : (e->ev.num_classes < MAX_SHOWN ? e->ev.num_classes : MAX_SHOWN);
    for (int i = 0; i < L->k; i++)
        L->idx[i] = all ? all[i] : i;
    free(all);
    L->cell = L->k <= 10 ? 50 : L->k <= 20 ? 34 : 24;
    L->label = (rn_font){L->k <= 20 ? 13 : 11, RN_ALIGN_END, 0, INK, 0};
    L->label_w = 0;
    for (int i = 0; i < L->k; i++) {
        char name[64];
        rn_text_fit(&L->label, n->name[L->idx[i]], 160, name, sizeof name);
        double w = rn_text_width(&L->label, name);
        L->label_w = w > L->label_w ? w : L->label_w;
    }
    L->label_w += 10;
    L->label_h = L->label_w;
    L->left = AXIS_GAP + L->label_w;
    double side = L->k * L->cell;
    L->w = L->left + side + RIGHT;
    L->h = TOP + side + L->label_h + 40;
    if (L->w < 560)
        L->w = 560;
}

void fig_confusion_size(const report_eval *e, const report_names *n, double *w, double *h) {
    layout L;
    make_layout(e, n, &L);
    *w = L.w;
    *h = L.h;
}

static void colour_bar(rn_canvas *c, double x, double top, double height) {
    int steps = 64;
    for (int s = 0; s < steps; s++) {
        double t0 = (double)s / steps;
        rn_draw_rect(c, x, top + height * (1 - t0 - 1.0 / steps), BAR_W, height / steps + 0.5,
                     ramp(t0 + 0.5 / steps), RN_NONE, 0);
    }
    rn_draw_rect(c, x, top, BAR_W, height, RN_NONE, 0xaaaaaa, 1);
    static const double TICKS[] = {0, 0.05, 0.25, 0.5, 1};
    rn_font f = {11, RN_ALIGN_START, 0, 0x444444, 0};
    for (size_t i = 0; i < sizeof TICKS / sizeof TICKS[0]; i++) {
        double y = top + height * (1 - sqrt(TICKS[i]));
        rn_draw_line(c, x + BAR_W, y, x + BAR_W + 4, y, 0x444444, 1, 0);
        rn_draw_textf(c, x + BAR_W + 7, y + 4, &f, "%.0f%%", TICKS[i] * 100);
    }
    rn_font t = {12, RN_ALIGN_MIDDLE, 0, INK, 1};
    rn_draw_text(c, x + BAR_W + 56, top + height / 2, &t, "share of the true class");
}

void fig_confusion(rn_canvas *c, const report_eval *e, const report_names *n) {
    layout L;
    make_layout(e, n, &L);
    double side = L.k * L.cell, right = L.left + side, bottom = TOP + side;
    int64_t right_n = e->ev.top1;
    rn_font title = {17, RN_ALIGN_MIDDLE, 1, INK, 0};
    if (L.k < e->ev.num_classes) { /* how many of the mistakes the cells shown hold */
        int64_t shown = 0;
        for (int i = 0; i < L.k; i++)
            for (int j = 0; j < L.k; j++)
                shown += i != j ? cell_count(e, L.idx[i], L.idx[j]) : 0;
        rn_draw_textf(c, L.w / 2, 28, &title,
                      "Confusion matrix: the %d classes with the most mistakes (%lld of the %lld "
                      "mistakes are between them)", L.k, (long long)shown,
                      (long long)(e->ev.count - right_n));
    } else
        rn_draw_textf(c, L.w / 2, 28, &title, "Confusion matrix: %lld of %lld right (%.1f%%)",
                      (long long)right_n, (long long)e->ev.count,
                      e->ev.count ? 100.0 * right_n / e->ev.count : 0.0);

    rn_draw_group_begin(c, "cells");
    double num_size = fmin(13, L.cell * 0.34);
    for (int i = 0; i < L.k; i++) {
        int64_t row = 0;
        for (int j = 0; j < e->ev.num_classes; j++)
            row += cell_count(e, L.idx[i], j);
        for (int j = 0; j < L.k; j++) {
            int64_t v = cell_count(e, L.idx[i], L.idx[j]);
            double t = row ? sqrt((double)v / row) : 0.0;
            double x = L.left + j * L.cell, y = TOP + i * L.cell;
            rn_draw_rect(c, x + 0.5, y + 0.5, L.cell - 1, L.cell - 1, ramp(t), RN_NONE, 0);
            if (v > 0) {
                rn_font f = {num_size, RN_ALIGN_MIDDLE, i == j, t > 0.62 ? 0xffffff : INK, 0};
                rn_draw_textf(c, x + L.cell / 2, y + L.cell / 2 + num_size * 0.36, &f, "%lld",
                              (long long)v);
            }
        }
    }
    rn_draw_group_end(c);
    rn_draw_rect(c, L.left, TOP, side, side, RN_NONE, 0xbbbbbb, 1);

    /* class names: rows on the left, columns below reading upwards */
    rn_font row_f = L.label, col_f = L.label;
    col_f.vertical = 1;
    for (int i = 0; i < L.k; i++) {
        char name[64];
        rn_text_fit(&L.label, n->name[L.idx[i]], 160, name, sizeof name);
        rn_draw_text(c, L.left - 8, TOP + (i + 0.5) * L.cell + row_f.size * 0.36, &row_f, name);
        rn_draw_text(c, L.left + (i + 0.5) * L.cell + col_f.size * 0.36, bottom + 8, &col_f, name);
    }
    rn_font axis = {13, RN_ALIGN_MIDDLE, 1, INK, 0};
    rn_draw_text(c, L.left + side / 2, bottom + L.label_h + 26, &axis, "predicted class");
    axis.vertical = 1;
    rn_draw_text(c, 18, TOP + side / 2, &axis, "true class");
    colour_bar(c, right + BAR_GAP, TOP, side);
}
