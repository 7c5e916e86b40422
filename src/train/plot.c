/*
 * plot.c - the training curves figure (see plot.h).
 *
 * Layout: panels of PANEL_W x FIG_H side by side under a heading. Each panel
 * maps its data range, widened to "nice" tick steps (1, 2 or 5 x 10^k), onto
 * its plot area; y grows upwards.
 */
#include "train/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "io/file.h"

#define PANEL_W 420.0    /* each panel's share of the width */
#define FIG_H 410.0
#define PLOT_L 72.0      /* plot area inside a panel: left margin, width, top, height */
#define PLOT_W 318.0
#define PLOT_T 70.0
#define PLOT_H 280.0

static const rn_color COLOR_TRAIN = 0x1f77b4;
static const rn_color COLOR_TEST = 0xff7f0e;
static const rn_color COLOR_LR = 0x2ca02c;
static const rn_color COLOR_GRID = 0xe6e6e6;
static const rn_color COLOR_INK = 0x222222;

/* ---------------------------------------------------------------------------
 * Axes
 * ------------------------------------------------------------------------- */

typedef struct axis {
    double lo, hi, step;
    int decimals;        /* for tick labels */
} axis;

/* 1, 2 or 5 x 10^k, at least x. */
static double nice_step(double x) {
    double p = pow(10.0, floor(log10(x)));
    double f = x / p;
    return (f <= 1.0 ? 1.0 : f <= 2.0 ? 2.0 : f <= 5.0 ? 5.0 : 10.0) * p;
}

/* An axis covering [lo, hi] with about 5 ticks; integer steps when `whole`. */
static axis make_axis(double lo, double hi, int whole) {
    axis a;
    if (!(hi > lo)) {
        double pad = fabs(lo) > 0.0 ? fabs(lo) * 0.1 : 1.0;
        if (whole && pad < 1.0)
            pad = 1.0;
        lo -= pad;
        hi += pad;
    }
    a.step = nice_step((hi - lo) / 5.0);
    if (whole && a.step < 1.0)
        a.step = 1.0;
    a.lo = floor(lo / a.step + 1e-9) * a.step;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    a.decimals = a.step >= 1.0 ? 0 : (int)ceil(-log10(a.step) - 1e-9);
    if (a.decimals > 9)
        a.decimals = 9;
    return a;
}

typedef struct panel {
    double left, top;    /* the plot area's corner */
    axis ax, ay;
} panel;

static double map_x(const panel *p, double x) {
    return p->left + (x - p->ax.lo) / (p->ax.hi - p->ax.lo) * PLOT_W;
}

static double map_y(const panel *p, double y) {
    return p->top + PLOT_H - (y - p->ay.lo) / (p->ay.hi - p->ay.lo) * PLOT_H;
}

/* ---------------------------------------------------------------------------
 * Drawing
 * ------------------------------------------------------------------------- */

static int has_metric(const rn_run_log *log, rn_log_metric m) {
    for (size_t i = 0; i < log->count; i++)
        if (!isnan(log->epochs[i].v[m]))
            return 1;
    return 0;
}

void rn_plot_curves_size(const rn_run_log *log, double *width, double *height) {
    *width = PANEL_W * (has_metric(log, RN_LOG_LR) ? 3 : 2);
    *height = FIG_H;
}

/* The curve of metric m: one polyline per unbroken run, a circle per point. */
static void draw_curve(rn_canvas *c, const rn_run_log *log, rn_log_metric m, const panel *p,
                       rn_color color, int dashed) {
    double *xy = malloc(2 * log->count * sizeof *xy);
    if (!xy)
        return;
    size_t i = 0;
    while (i < log->count) {
        while (i < log->count && isnan(log->epochs[i].v[m]))
            i++;
        int n = 0;
        for (; i < log->count && !isnan(log->epochs[i].v[m]); i++, n++) {
            xy[2 * n] = map_x(p, log->epochs[i].epoch);
            xy[2 * n + 1] = map_y(p, log->epochs[i].v[m]);
        }
        if (n > 0)
            rn_draw_polyline(c, xy, n, color, 2.0, dashed);
    }
    for (i = 0; i < log->count; i++)
        if (!isnan(log->epochs[i].v[m]))
            rn_draw_circle(c, map_x(p, log->epochs[i].epoch), map_y(p, log->epochs[i].v[m]), 2.8,
                           color);
    free(xy);
}

static void draw_legend(rn_canvas *c, const panel *p, int bottom) {
    rn_font f = {12, RN_ALIGN_START, 0, COLOR_INK, 0};
    double lx = p->left + PLOT_W - 88, ly = bottom ? p->top + PLOT_H - 52 : p->top + 8;
    rn_draw_rect(c, lx, ly, 80, 44, 0xffffff, 0xbbbbbb, 1);
    rn_draw_line(c, lx + 8, ly + 14, lx + 34, ly + 14, COLOR_TRAIN, 2, 0);
    rn_draw_text(c, lx + 40, ly + 18, &f, "train");
    rn_draw_line(c, lx + 8, ly + 32, lx + 34, ly + 32, COLOR_TEST, 2, 1);
    rn_draw_text(c, lx + 40, ly + 36, &f, "test");
}

/* Panel `index`: frame, grid, ticks, labels and the curves of metrics
 * m[0..n) (the first solid, the second dashed); a legend when n == 2 (top
 * right, or bottom right for curves that rise, so that it covers less). */
static void draw_panel(rn_canvas *c, const rn_run_log *log, int index, const char *title,
                       const rn_log_metric *m, int n, int legend_bottom) {
    double xlo = log->epochs[0].epoch, xhi = log->epochs[log->count - 1].epoch;
    int whole = 1;
    for (size_t i = 0; i < log->count; i++)
        whole &= log->epochs[i].epoch == floor(log->epochs[i].epoch);
    double ylo = INFINITY, yhi = -INFINITY;
    for (size_t i = 0; i < log->count; i++) {
        for (int k = 0; k < n; k++) {
            double v = log->epochs[i].v[m[k]];
            if (!isnan(v)) {
                ylo = v < ylo ? v : ylo;
                yhi = v > yhi ? v : yhi;
            }
        }
    }
    if (ylo > yhi)         /* no data in this panel */
        ylo = yhi = 0.0;
    panel p = {index * PANEL_W + PLOT_L, PLOT_T, make_axis(xlo, xhi, whole), make_axis(ylo, yhi, 0)};
    double right = p.left + PLOT_W, bottom = p.top + PLOT_H;

    rn_draw_group_begin(c, "panel");
    rn_font head = {15, RN_ALIGN_MIDDLE, 1, COLOR_INK, 0};
    rn_draw_text(c, p.left + PLOT_W / 2, p.top - 14, &head, title);
    rn_font tick = {12, RN_ALIGN_END, 0, 0x444444, 0};
    for (int k = 0;; k++) {
        double y = p.ay.lo + k * p.ay.step;
        if (y > p.ay.hi + p.ay.step * 1e-6)
            break;
        double py = map_y(&p, y);
        rn_draw_line(c, p.left, py, right, py, COLOR_GRID, 1, 0);
        rn_draw_line(c, p.left - 5, py, p.left, py, COLOR_INK, 1, 0);
        rn_draw_textf(c, p.left - 8, py + 4, &tick, "%.*f", p.ay.decimals,
                      fabs(y) < p.ay.step * 1e-9 ? 0.0 : y);
    }
    tick.align = RN_ALIGN_MIDDLE;
    for (int k = 0;; k++) {
        double x = p.ax.lo + k * p.ax.step;
        if (x > p.ax.hi + p.ax.step * 1e-6)
            break;
        double px = map_x(&p, x);
        rn_draw_line(c, px, p.top, px, bottom, COLOR_GRID, 1, 0);
        rn_draw_line(c, px, bottom, px, bottom + 5, COLOR_INK, 1, 0);
        rn_draw_textf(c, px, bottom + 19, &tick, "%.*f", p.ax.decimals,
                      fabs(x) < p.ax.step * 1e-9 ? 0.0 : x);
    }
    rn_draw_rect(c, p.left, p.top, PLOT_W, PLOT_H, RN_NONE, COLOR_INK, 1);
    rn_font label = {13, RN_ALIGN_MIDDLE, 0, COLOR_INK, 0};
    rn_draw_text(c, p.left + PLOT_W / 2, bottom + 40, &label, "epoch");
    label.vertical = 1;
    rn_draw_text(c, p.left - 52, p.top + PLOT_H / 2, &label, title);

    if (n == 1) {
        draw_curve(c, log, m[0], &p, COLOR_LR, 0);
    } else {
        draw_curve(c, log, m[0], &p, COLOR_TRAIN, 0);
        draw_curve(c, log, m[1], &p, COLOR_TEST, 1);
        draw_legend(c, &p, legend_bottom);
    }
    rn_draw_group_end(c);
}

void rn_plot_curves(rn_canvas *c, const rn_run_log *log, const char *name) {
    if (log->count == 0)
        return;
    double w, h;
    rn_plot_curves_size(log, &w, &h);
    const rn_log_epoch *last = &log->epochs[log->count - 1];
    char heading[512];
    int used = snprintf(heading, sizeof heading, "Training curves: %s (%zu epoch%s", name, log->count,
                        log->count == 1 ? "" : "s");
    if (used > 0 && (size_t)used < sizeof heading && !isnan(last->v[RN_LOG_TEST_ACC]))
        snprintf(heading + used, sizeof heading - (size_t)used, ", final test accuracy %.4g",
                 last->v[RN_LOG_TEST_ACC]);
    rn_font f = {18, RN_ALIGN_MIDDLE, 1, COLOR_INK, 0};
    rn_draw_textf(c, w / 2, 28, &f, "%s)", heading);

    static const rn_log_metric LOSS[] = {RN_LOG_TRAIN_LOSS, RN_LOG_TEST_LOSS};
    static const rn_log_metric ACC[] = {RN_LOG_TRAIN_ACC, RN_LOG_TEST_ACC};
    static const rn_log_metric LR[] = {RN_LOG_LR};
    draw_panel(c, log, 0, "loss", LOSS, 2, 0);
    draw_panel(c, log, 1, "accuracy", ACC, 2, 1);
    if (has_metric(log, RN_LOG_LR))
        draw_panel(c, log, 2, "learning rate", LR, 1, 0);
}

rn_status rn_plot_svg(const char *log_path, const char *svg_path) {
    if (!log_path || !svg_path)
        return rn_fail(RN_ERR_ARG, "rn_plot_svg: NULL path");
    rn_run_log log;
    rn_status st = rn_run_log_read(log_path, &log);
    if (st == RN_OK && log.count == 0)
        st = rn_fail(RN_ERR_FORMAT, "%s: no per-epoch records (lines with \"epoch\")", log_path);
    const char *slash = strrchr(log_path, '/');
    char name[128], title[160];
    json_printable(name, sizeof name, slash ? slash + 1 : log_path);
    snprintf(title, sizeof title, "Training curves: %s", name);
    rn_canvas *c = NULL;
    json_buf svg = {0};
    double w, h;
    if (st == RN_OK) {
        rn_plot_curves_size(&log, &w, &h);
        st = rn_canvas_create_svg(w, h, title, &c);
    }
    if (st == RN_OK) {
        rn_plot_curves(c, &log, name);
        st = rn_canvas_svg(c, 1, &svg);
    }
    if (st == RN_OK)
        st = rn_file_write_all(svg_path, svg.data, svg.len);
    json_buf_free(&svg);
    rn_canvas_free(c);
    rn_run_log_free(&log);
    return st;
}
