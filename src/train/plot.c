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
static const rn_color COLOR_EMA = 0x9467bd;
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

/* One curve: n points (x[i], y[i]); a point with a NAN is passed over. */
typedef struct series {
    const double *x, *y;
    size_t n;
    rn_color color;
    int dashed;
    const char *label;
} series;

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

/* A circle marks each point of a series of at most MARKS_MAX points; past that they merge into
 * a band (a 600-epoch run's), and the line alone shows the curve. */
#define MARKS_MAX 120

/* Points xy[0 .. n) (in order of x) thinned to each pixel column's first, lowest, highest and
 * last, in their order: the same picture, its spikes kept, in at most 4 points a column (a
 * 20000-epoch log had drawn 20000 points a line, and its report page had weighed 11.8 MB).
 * Returns the points kept, in place. */
static int thin_columns(double *xy, int n) {
    int out = 0;
    for (int i = 0; i < n;) {
        const double col = floor(xy[2 * i]);
        int j = i, lo = i, hi = i;
        while (j < n && floor(xy[2 * j]) == col) {
            if (xy[2 * j + 1] < xy[2 * lo + 1])
                lo = j;
            if (xy[2 * j + 1] > xy[2 * hi + 1])
                hi = j;
            j++;
        }
        int keep[4] = {i, lo < hi ? lo : hi, lo < hi ? hi : lo, j - 1}, last = -1;
        for (int k = 0; k < 4; k++)
            if (keep[k] > last) { /* each kept once, in order */
                xy[2 * out] = xy[2 * keep[k]];
                xy[2 * out + 1] = xy[2 * keep[k] + 1];
                out++;
                last = keep[k];
            }
        i = j;
    }
    return out;
}

/* A series' points: one polyline through those it has (epochs without a value, such as the
 * test metrics of the epochs --eval-every passes over, joined across: they had broken the
 * line into lone dots), thinned where the plot's columns hold several, and a circle per point
 * where there are at most MARKS_MAX. */
static void draw_curve(rn_canvas *c, const series *s, const panel *p) {
    double *xy = malloc(2 * (s->n ? s->n : 1) * sizeof *xy);
    if (!xy)
        return;
    int n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!isnan(s->y[i]) && !isnan(s->x[i])) {
            xy[2 * n] = map_x(p, s->x[i]);
            xy[2 * n + 1] = map_y(p, s->y[i]);
            n++;
        }
    const int marks = n <= MARKS_MAX;
    if (n > 2 * (int)PLOT_W)
        n = thin_columns(xy, n);
    if (n > 0)
        rn_draw_polyline(c, xy, n, s->color, 2.0, s->dashed);
    for (size_t i = 0; marks && i < s->n; i++)
        if (!isnan(s->y[i]) && !isnan(s->x[i]))
            rn_draw_circle(c, map_x(p, s->x[i]), map_y(p, s->y[i]), 2.8, s->color);
    free(xy);
}

/* A box with a line and the label of each series: top right, or bottom right. */
static void draw_legend(rn_canvas *c, const panel *p, const series *s, int n, int bottom) {
    rn_font f = {12, RN_ALIGN_START, 0, COLOR_INK, 0};
    double tw = 0.0;
    for (int k = 0; k < n; k++) {
        double w = rn_text_width(&f, s[k].label);
        tw = w > tw ? w : tw;
    }
    double bw = 48 + tw, bh = 8 + 18 * n;
    double lx = p->left + PLOT_W - bw - 8, ly = bottom ? p->top + PLOT_H - bh - 8 : p->top + 8;
    rn_draw_rect(c, lx, ly, bw, bh, 0xffffff, 0xbbbbbb, 1);
    for (int k = 0; k < n; k++) {
        rn_draw_line(c, lx + 8, ly + 14 + 18 * k, lx + 34, ly + 14 + 18 * k, s[k].color, 2, s[k].dashed);
        rn_draw_text(c, lx + 40, ly + 18 + 18 * k, &f, s[k].label);
    }
}

/* Panel `index`: frame, grid, ticks, labels and the curves s[0..n); a legend
 * when n > 1 (top right, or bottom right for curves that rise, so that it
 * covers less). */
static void draw_panel(rn_canvas *c, int index, const char *title, const char *xlabel, const series *s, int n,
                       int legend_bottom) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    int whole = 1;
    for (int k = 0; k < n; k++) {
        for (size_t i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (isnan(x))
                continue;
            xlo = x < xlo ? x : xlo;
            xhi = x > xhi ? x : xhi;
            whole &= x == floor(x);
            if (!isnan(y)) {
                ylo = y < ylo ? y : ylo;
                yhi = y > yhi ? y : yhi;
            }
        }
    }
    if (xlo > xhi)         /* no points at all */
        xlo = xhi = 0.0;
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
    rn_draw_text(c, p.left + PLOT_W / 2, bottom + 40, &label, xlabel);
    label.vertical = 1;
    rn_draw_text(c, p.left - 52, p.top + PLOT_H / 2, &label, title);

    for (int k = 0; k < n; k++)
        draw_curve(c, &s[k], &p);
    if (n > 1)
        draw_legend(c, &p, s, n, legend_bottom);
    rn_draw_group_end(c);
}

/* A metric of every epoch record, or with COL_EPOCH the epoch, into y (log->count values). */
#define COL_EPOCH RN_LOG_METRICS
static void metric_column(const rn_run_log *log, rn_log_metric m, double *y) {
    for (size_t i = 0; i < log->count; i++)
        y[i] = m == COL_EPOCH ? log->epochs[i].epoch : log->epochs[i].v[m];
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

    /* columns: epoch, then the seven metrics drawn */
    static const rn_log_metric COLS[] = {COL_EPOCH, RN_LOG_TRAIN_LOSS, RN_LOG_TEST_LOSS, RN_LOG_TRAIN_ACC,
                                         RN_LOG_TEST_ACC, RN_LOG_LR, RN_LOG_EMA_TEST_LOSS, RN_LOG_EMA_TEST_ACC};
    enum { NC = sizeof COLS / sizeof COLS[0] };
    double *col = malloc(NC * log->count * sizeof *col);
    if (!col)
        return;
    for (int k = 0; k < NC; k++)
        metric_column(log, COLS[k], col + k * log->count);
    const double *x = col, *at = col + log->count;
    size_t n = log->count;
    series loss[3] = {{x, at, n, COLOR_TRAIN, 0, "train"}, {x, at + n, n, COLOR_TEST, 1, "test"},
                      {x, at + 5 * n, n, COLOR_EMA, 1, "test, moving average"}};
    series acc[3] = {{x, at + 2 * n, n, COLOR_TRAIN, 0, "train"}, {x, at + 3 * n, n, COLOR_TEST, 1, "test"},
                     {x, at + 6 * n, n, COLOR_EMA, 1, "test, moving average"}};
    series lr = {x, at + 4 * n, n, COLOR_LR, 0, "learning rate"};
    const int curves = has_metric(log, RN_LOG_EMA_TEST_ACC) ? 3 : 2; /* train --ema's average */
    draw_panel(c, 0, "loss", "epoch", loss, curves, 0);
    draw_panel(c, 1, "accuracy", "epoch", acc, curves, 1);
    if (has_metric(log, RN_LOG_LR))
        draw_panel(c, 2, "learning rate", "epoch", &lr, 1, 0);
    free(col);
}

/* ---------------------------------------------------------------------------
 * Runs side by side
 * ------------------------------------------------------------------------- */

static const rn_color COMPARE_COLORS[] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b};

void rn_plot_compare(rn_canvas *c, const rn_run_log *logs, const char *const *labels, int n) {
    size_t total = 0;
    for (int k = 0; k < n; k++)
        total += logs[k].count;
    double *col = malloc(2 * (total ? total : 1) * sizeof *col);
    series *s = calloc((size_t)(n > 0 ? n : 1), sizeof *s);
    if (!col || !s) {
        free(col), free(s);
        return;
    }
    rn_font f = {18, RN_ALIGN_MIDDLE, 1, COLOR_INK, 0};
    rn_draw_text(c, PANEL_W * 1.5 / 2, 28, &f, "Test accuracy against wall time");
    size_t at = 0;
    for (int k = 0; k < n; k++) {
        metric_column(&logs[k], RN_LOG_ELAPSED, col + at);
        metric_column(&logs[k], RN_LOG_TEST_ACC, col + total + at);
        s[k] = (series){col + at, col + total + at, logs[k].count,
                        COMPARE_COLORS[k % (int)(sizeof COMPARE_COLORS / sizeof COMPARE_COLORS[0])], 0, labels[k]};
        at += logs[k].count;
    }
    draw_panel(c, 0, "test accuracy", "seconds since the start (evaluation included)", s, n, 1);
    free(col), free(s);
}

/* The SVG document of `draw` into svg_path (titled `title`). */
static rn_status write_svg(const char *svg_path, double w, double h, const char *title,
                           void (*draw)(rn_canvas *c, const void *ctx), const void *ctx) {
    rn_canvas *c = NULL;
    json_buf svg = {0};
    rn_status st = rn_canvas_create_svg(w, h, title, &c);
    if (st == RN_OK) {
        draw(c, ctx);
        st = rn_canvas_svg(c, 1, &svg);
    }
    if (st == RN_OK)
        st = rn_file_write_all(svg_path, svg.data, svg.len);
    json_buf_free(&svg);
    rn_canvas_free(c);
    return st;
}

typedef struct curves_args {
    const rn_run_log *log;
    const char *name;
} curves_args;

static void draw_curves(rn_canvas *c, const void *ctx) {
    const curves_args *a = ctx;
    rn_plot_curves(c, a->log, a->name);
}

typedef struct compare_args {
    const rn_run_log *logs;
    const char *const *labels;
    int n;
} compare_args;

static void draw_compare(rn_canvas *c, const void *ctx) {
    const compare_args *a = ctx;
    rn_plot_compare(c, a->logs, a->labels, a->n);
}

rn_status rn_plot_compare_svg(const char *const *log_paths, const char *const *labels, int n,
                              const char *svg_path) {
    if (!log_paths || !labels || n < 1 || !svg_path)
        return rn_fail(RN_ERR_ARG, "rn_plot_compare_svg: bad argument");
    rn_run_log *logs = calloc((size_t)n, sizeof *logs);
    if (!logs)
        return rn_fail(RN_ERR_NOMEM, "out of memory reading %d logs", n);
    rn_status st = RN_OK;
    int read = 0;
    for (; read < n && st == RN_OK; read++) {
        st = rn_run_log_read(log_paths[read], &logs[read]);
        if (st == RN_OK && !has_metric(&logs[read], RN_LOG_ELAPSED))
            st = rn_fail(RN_ERR_FORMAT, "%s: no per-epoch record has \"elapsed\" (wall seconds since the start)",
                         log_paths[read]);
    }
    if (st == RN_OK) {
        compare_args a = {logs, labels, n};
        st = write_svg(svg_path, PANEL_W * 1.5, FIG_H, "Test accuracy against wall time", draw_compare, &a);
    }
    for (int k = 0; k < read; k++)
        rn_run_log_free(&logs[k]);
    free(logs);
    return st;
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
    if (st == RN_OK) {
        double w, h;
        rn_plot_curves_size(&log, &w, &h);
        curves_args a = {&log, name};
        st = write_svg(svg_path, w, h, title, draw_curves, &a);
    }
    rn_run_log_free(&log);
    return st;
}
