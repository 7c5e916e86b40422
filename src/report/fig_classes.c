/*
 * fig_classes.c - per-class statistics, and the per-class bar chart: for
 * each class its recall (the accuracy on the class's images), precision and
 * F1 as three bars, classes sorted by recall, worst first, so that where the
 * model fails is at the top.
 */
#include <math.h>
#include <stdlib.h>

#include "report/report_impl.h"

#define MAX_SHOWN 30
#define TOP 84.0         /* title and legend */
#define ROW_H 30.0
#define BAR_H 7.0
#define BARS_W 440.0
#define VALUE_W 64.0     /* the recall figure right of the bars */

static const rn_color INK = 0x222222;
static const rn_color COLORS[3] = {0x4c72b0, 0xdd8452, 0x55a868};   /* recall, precision, F1 */
static const char *const SERIES[3] = {"recall (accuracy on the class)", "precision", "F1"};

void report_class_stats(const rn_eval_result *ev, int k, class_stats *s) {
    int K = ev->num_classes;
    const int64_t *cm = ev->confusion;
    *s = (class_stats){.confused_with = -1};
    for (int j = 0; j < K; j++) {
        int64_t v = cm[(size_t)k * K + j];
        s->images += v;
        s->predicted += cm[(size_t)j * K + k];
        if (j != k && v > s->confused_count) {
            s->confused_count = v;
            s->confused_with = j;
        }
    }
    s->correct = cm[(size_t)k * K + k];
    s->recall = s->images ? (double)s->correct / s->images : 0.0;
    s->precision = s->predicted ? (double)s->correct / s->predicted : 0.0;
    s->f1 = s->recall + s->precision > 0 ? 2 * s->recall * s->precision / (s->recall + s->precision) : 0.0;
}

typedef struct layout {
    int k;                  /* classes shown */
    int with_images;        /* classes with images in the split, or predicted: the others are
                               left out (a recall of 0 there is no failure), as the page's
                               table leaves them out */
    int *order;             /* (num_classes): by recall, worst first; owned */
    class_stats *stats;     /* (num_classes); owned */
    double left, w, h;
    rn_font label;
} layout;

typedef struct ranked {
    double recall;
    int index;
} ranked;

static int by_recall(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->recall != y->recall)
        return (x->recall > y->recall) - (x->recall < y->recall);
    return (x->index > y->index) - (x->index < y->index);
}

/* Fills L; returns 0 (L->k = 0) when out of memory. */
static int make_layout(const report_eval *e, const report_names *n, layout *L) {
    int K = e->ev.num_classes;
    L->order = malloc((size_t)K * sizeof *L->order);
    L->stats = malloc((size_t)K * sizeof *L->stats);
    ranked *rank = malloc((size_t)K * sizeof *rank);
    L->k = 0;
    L->label = (rn_font){12, RN_ALIGN_END, 0, INK, 0};
    L->left = 40;
    L->w = 640, L->h = TOP + 60;
    if (!L->order || !L->stats || !rank) {
        free(rank);
        return 0;
    }
    int m = 0;
    for (int i = 0; i < K; i++) {
        report_class_stats(&e->ev, i, &L->stats[i]);
        if (L->stats[i].images > 0 || L->stats[i].predicted > 0)
            rank[m++] = (ranked){L->stats[i].recall, i};
    }
    qsort(rank, (size_t)m, sizeof *rank, by_recall);
    for (int i = 0; i < m; i++)
        L->order[i] = rank[i].index;
    free(rank);
    L->with_images = m;
    L->k = m < MAX_SHOWN ? m : MAX_SHOWN;
    double label_w = 0;
    for (int i = 0; i < L->k; i++) {
        char name[64];
        rn_text_fit(&L->label, n->name[L->order[i]], 180, name, sizeof name);
        double w = rn_text_width(&L->label, name);
        label_w = w > label_w ? w : label_w;
    }
    L->left = 20 + label_w + 10;
    L->w = L->left + BARS_W + VALUE_W + 20;
    L->h = TOP + L->k * ROW_H + 50;
    return 1;
}

static void free_layout(layout *L) {
    free(L->order);
    free(L->stats);
}

void fig_classes_size(const report_eval *e, const report_names *n, double *w, double *h) {
    layout L;
    make_layout(e, n, &L);
    *w = L.w;
    *h = L.h;
    free_layout(&L);
}

void fig_classes(rn_canvas *c, const report_eval *e, const report_names *n) {
    layout L;
    if (!make_layout(e, n, &L)) {
        free_layout(&L);
        return;
    }
    rn_font title = {17, RN_ALIGN_MIDDLE, 1, INK, 0};
    if (L.k < L.with_images)
        rn_draw_textf(c, L.w / 2, 28, &title, "Per class: the %d classes with the lowest recall", L.k);
    else
        rn_draw_text(c, L.w / 2, 28, &title, "Per class: recall, precision and F1, worst recall first");

    /* legend */
    rn_font f = {12, RN_ALIGN_START, 0, INK, 0};
    double lx = L.left;
    for (int s = 0; s < 3; s++) {
        rn_draw_rect(c, lx, 46, 12, 12, COLORS[s], RN_NONE, 0);
        rn_draw_text(c, lx + 17, 56.5, &f, SERIES[s]);
        lx += 17 + rn_text_width(&f, SERIES[s]) + 22;
    }

    /* grid and axis */
    double bottom = TOP + L.k * ROW_H;
    rn_font tick = {11, RN_ALIGN_MIDDLE, 0, 0x444444, 0};
    for (int t = 0; t <= 10; t += 2) {
        double x = L.left + BARS_W * t / 10.0;
        rn_draw_line(c, x, TOP - 6, x, bottom, t == 0 ? 0x888888 : 0xe6e6e6, 1, 0);
        rn_draw_textf(c, x, bottom + 16, &tick, "%d%%", t * 10);
    }

    rn_font value = {12, RN_ALIGN_START, 1, COLORS[0], 0};
    for (int i = 0; i < L.k; i++) {
        const class_stats *s = &L.stats[L.order[i]];
        double y = TOP + i * ROW_H;
        char name[64];
        rn_text_fit(&L.label, n->name[L.order[i]], 180, name, sizeof name);
        rn_draw_text(c, L.left - 8, y + ROW_H / 2 + 4, &L.label, name);
        const double v[3] = {s->recall, s->precision, s->f1};
        rn_draw_group_begin(c, "class");
        for (int b = 0; b < 3; b++)
            rn_draw_rect(c, L.left, y + 4 + b * (BAR_H + 1), fmax(BARS_W * v[b], 0.01), BAR_H, COLORS[b],
                         RN_NONE, 0);
        rn_draw_group_end(c);
        rn_draw_textf(c, L.left + BARS_W + 8, y + ROW_H / 2 + 4, &value, "%.1f%%", 100 * s->recall);
    }
    rn_font axis = {12, RN_ALIGN_MIDDLE, 0, INK, 0};
    rn_draw_textf(c, L.left + BARS_W / 2, bottom + 38, &axis, "share of images (recall) or of predictions (precision)");
    free_layout(&L);
}
