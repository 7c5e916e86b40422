/*
 * plot.c - rn_plot_svg: the training log's curves as an SVG document.
 *
 * Reading: each line goes through json_parse; the parser keeps integers but
 * not the values of numbers with a fraction or exponent, so those are read
 * back with strtod from the line at the value's offset.
 *
 * Drawing: a fixed 1000 x 440 canvas, two panels side by side. Each panel
 * maps its data range, widened to "nice" tick steps (1, 2 or 5 x 10^k), onto
 * its plot area; y grows upwards.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "io/file.h"
#include "io/json.h"
#include "train/plot.h"

/* ---------------------------------------------------------------------------
 * The log
 * ------------------------------------------------------------------------- */

enum { M_TRAIN_LOSS, M_TEST_LOSS, M_TRAIN_ACC, M_TEST_ACC, M_COUNT };
static const char *const METRIC_KEYS[M_COUNT] = {"train_loss", "test_loss", "train_acc",
                                                 "test_acc"};

typedef struct record {
    double epoch;
    double v[M_COUNT];    /* NAN where missing */
} record;

typedef struct records {
    record *r;
    size_t n, cap;
} records;

/* The value of number v, parsed in `line` (offsets are line offsets). */
static double number_value(const json_value *v, const char *line) {
    if (v->is_int)
        return (double)v->integer;
    return strtod(line + v->offset, NULL);
}

/* *out = obj[key] as a number; NAN when absent or null. */
static rn_status get_number(const json_value *obj, const char *key, const char *line,
                            const char *path, size_t lineno, double *out) {
    const json_value *v = json_get(obj, key);
    *out = NAN;
    if (!v || v->type == JSON_NULL)
        return RN_OK;
    if (v->type != JSON_NUMBER)
        return rn_fail(RN_ERR_FORMAT, "%s:%zu: \"%s\" is not a number", path, lineno, key);
    *out = number_value(v, line);
    if (!isfinite(*out))
        return rn_fail(RN_ERR_FORMAT, "%s:%zu: \"%s\" is out of range", path, lineno, key);
    return RN_OK;
}

static rn_status add_record(records *rs, const record *rec, const char *path) {
    for (size_t i = 0; i < rs->n; i++) {
        if (rs->r[i].epoch == rec->epoch) {   /* a resumed run: the later record wins */
            rs->r[i] = *rec;
            return RN_OK;
        }
    }
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? 2 * rs->cap : 64;
        record *r = realloc(rs->r, cap * sizeof *r);
        if (!r)
            return rn_fail(RN_ERR_NOMEM, "%s: out of memory after %zu records", path, rs->n);
        rs->r = r;
        rs->cap = cap;
    }
    rs->r[rs->n++] = *rec;
    return RN_OK;
}

/* One line (NUL-terminated, len bytes, newline stripped). */
static rn_status read_line(const char *line, size_t len, const char *path, size_t lineno,
                           records *rs) {
    json_value obj;
    if (json_parse(line, len, 0, &obj) != RN_OK)
        return rn_fail_context(RN_ERR_FORMAT, "%s:%zu", path, lineno);
    rn_status st = RN_OK;
    if (obj.type != JSON_OBJECT) {
        st = rn_fail(RN_ERR_FORMAT, "%s:%zu: expected a JSON object", path, lineno);
    } else if (json_get(&obj, "epoch") && !json_get(&obj, "step")) {
        record rec;
        st = get_number(&obj, "epoch", line, path, lineno, &rec.epoch);
        if (st == RN_OK && isnan(rec.epoch))
            st = rn_fail(RN_ERR_FORMAT, "%s:%zu: \"epoch\" is null", path, lineno);
        for (int m = 0; m < M_COUNT && st == RN_OK; m++)
            st = get_number(&obj, METRIC_KEYS[m], line, path, lineno, &rec.v[m]);
        if (st == RN_OK)
            st = add_record(rs, &rec, path);
    }
    json_free(&obj);
    return st;
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

static int by_epoch(const void *a, const void *b) {
    double x = ((const record *)a)->epoch, y = ((const record *)b)->epoch;
    return (x > y) - (x < y);
}

static rn_status read_log(const char *path, records *rs) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return rn_fail(RN_ERR_IO, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t got;
    rn_status st = RN_OK;
    while (st == RN_OK && (got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        int complete = len > 0 && line[len - 1] == '\n';
        if (complete)
            line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (strlen(line) != len) {
            st = rn_fail(RN_ERR_FORMAT, "%s:%zu: NUL byte in the line", path, lineno);
            break;
        }
        if (blank(line, len))
            continue;
        st = read_line(line, len, path, lineno, rs);
        if (st != RN_OK && !complete && feof(f))
            st = RN_OK;    /* a last line cut short by a killed run */
    }
    if (st == RN_OK && ferror(f))
        st = rn_fail(RN_ERR_IO, "%s: read error after line %zu", path, lineno);
    free(line);
    fclose(f);
    if (st == RN_OK && rs->n == 0)
        st = rn_fail(RN_ERR_FORMAT, "%s: no per-epoch records (lines with \"epoch\")", path);
    if (st == RN_OK)
        qsort(rs->r, rs->n, sizeof *rs->r, by_epoch);
    return st;
}

/* ---------------------------------------------------------------------------
 * Drawing
 * ------------------------------------------------------------------------- */

#define SVG_W 1000
#define SVG_H 440
#define PANEL_W 500      /* each panel's share of the width */
#define PLOT_L 75        /* plot area inside a panel: left margin, width, top, height */
#define PLOT_W 390
#define PLOT_T 70
#define PLOT_H 300

static const char *const COLOR_TRAIN = "#1f77b4";
static const char *const COLOR_TEST = "#ff7f0e";

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

static double map_x(const axis *a, double x, int panel) {
    return panel * PANEL_W + PLOT_L + (x - a->lo) / (a->hi - a->lo) * PLOT_W;
}

static double map_y(const axis *a, double y) {
    return PLOT_T + PLOT_H - (y - a->lo) / (a->hi - a->lo) * PLOT_H;
}

/* Writes s with XML's special characters escaped and control bytes dropped. */
static void put_escaped(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            if ((unsigned char)*s >= 0x20)
                fputc(*s, f);
        }
    }
}

/* The curve of metric m: one polyline per unbroken run, a circle per point. */
static void draw_curve(FILE *f, const records *rs, int m, const axis *ax, const axis *ay,
                       int panel, const char *color, int dashed) {
    size_t i = 0;
    while (i < rs->n) {
        while (i < rs->n && isnan(rs->r[i].v[m]))
            i++;
        if (i == rs->n)
            break;
        fprintf(f, "  <polyline class=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s "
                   "points=\"", METRIC_KEYS[m], color,
                dashed ? " stroke-dasharray=\"6,4\"" : "");
        for (; i < rs->n && !isnan(rs->r[i].v[m]); i++)
            fprintf(f, "%.2f,%.2f ", map_x(ax, rs->r[i].epoch, panel),
                    map_y(ay, rs->r[i].v[m]));
        fputs("\"/>\n", f);
    }
    for (i = 0; i < rs->n; i++)
        if (!isnan(rs->r[i].v[m]))
            fprintf(f, "  <circle cx=\"%.2f\" cy=\"%.2f\" r=\"2.5\" fill=\"%s\"/>\n",
                    map_x(ax, rs->r[i].epoch, panel), map_y(ay, rs->r[i].v[m]), color);
}

/* One panel: frame, grid, ticks, labels, the train and test curves of
 * metrics m_train / m_test, and the legend (top right, or bottom right for
 * curves that rise, accuracy, so that it covers less of them). */
static void draw_panel(FILE *f, const records *rs, int panel, const char *title, int m_train,
                       int m_test, int legend_bottom) {
    double xlo = rs->r[0].epoch, xhi = rs->r[rs->n - 1].epoch;
    int whole = 1;
    for (size_t i = 0; i < rs->n; i++)
        whole &= rs->r[i].epoch == floor(rs->r[i].epoch);
    axis ax = make_axis(xlo, xhi, whole);

    double ylo = INFINITY, yhi = -INFINITY;
    for (size_t i = 0; i < rs->n; i++) {
        for (int k = 0; k < 2; k++) {
            double v = rs->r[i].v[k == 0 ? m_train : m_test];
            if (!isnan(v)) {
                ylo = v < ylo ? v : ylo;
                yhi = v > yhi ? v : yhi;
            }
        }
    }
    if (ylo > yhi)         /* no data in this panel */
        ylo = yhi = 0.0;
    axis ay = make_axis(ylo, yhi, 0);

    double left = panel * PANEL_W + PLOT_L, right = left + PLOT_W;
    double top = PLOT_T, bottom = PLOT_T + PLOT_H;
    fprintf(f, " <g class=\"panel\" font-family=\"sans-serif\" font-size=\"12\">\n");
    fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"15\" "
               "font-weight=\"bold\">%s</text>\n", (left + right) / 2, top - 14.0, title);

    /* grid and ticks */
    for (int k = 0;; k++) {
        double y = ay.lo + k * ay.step;
        if (y > ay.hi + ay.step * 1e-6)
            break;
        double py = map_y(&ay, y);
        fprintf(f, "  <line x1=\"%.1f\" y1=\"%.2f\" x2=\"%.1f\" y2=\"%.2f\" stroke=\"#e0e0e0\"/>\n",
                left, py, right, py);
        fprintf(f, "  <line x1=\"%.1f\" y1=\"%.2f\" x2=\"%.1f\" y2=\"%.2f\" stroke=\"black\"/>\n",
                left - 5, py, left, py);
        fprintf(f, "  <text x=\"%.1f\" y=\"%.2f\" text-anchor=\"end\">%.*f</text>\n", left - 8,
                py + 4, ay.decimals, fabs(y) < ay.step * 1e-9 ? 0.0 : y);
    }
    for (int k = 0;; k++) {
        double x = ax.lo + k * ax.step;
        if (x > ax.hi + ax.step * 1e-6)
            break;
        double px = map_x(&ax, x, panel);
        fprintf(f, "  <line x1=\"%.2f\" y1=\"%.1f\" x2=\"%.2f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n",
                px, top, px, bottom);
        fprintf(f, "  <line x1=\"%.2f\" y1=\"%.1f\" x2=\"%.2f\" y2=\"%.1f\" stroke=\"black\"/>\n",
                px, bottom, px, bottom + 5);
        fprintf(f, "  <text x=\"%.2f\" y=\"%.1f\" text-anchor=\"middle\">%.*f</text>\n", px,
                bottom + 19, ax.decimals, fabs(x) < ax.step * 1e-9 ? 0.0 : x);
    }
    fprintf(f, "  <rect x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"none\" "
               "stroke=\"black\"/>\n", left, top, PLOT_W, PLOT_H);
    fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">epoch"
               "</text>\n", (left + right) / 2, bottom + 40);
    fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\" "
               "transform=\"rotate(-90 %.1f %.1f)\">%s</text>\n", left - 55, (top + bottom) / 2,
            left - 55, (top + bottom) / 2, title);

    draw_curve(f, rs, m_train, &ax, &ay, panel, COLOR_TRAIN, 0);
    draw_curve(f, rs, m_test, &ax, &ay, panel, COLOR_TEST, 1);

    double lx = right - 92, ly = legend_bottom ? bottom - 54 : top + 10;
    fprintf(f, "  <rect x=\"%.1f\" y=\"%.1f\" width=\"84\" height=\"44\" fill=\"white\" "
               "fill-opacity=\"0.85\" stroke=\"#999999\"/>\n", lx, ly);
    fprintf(f, "  <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
               "stroke-width=\"2\"/>\n", lx + 8, ly + 14, lx + 34, ly + 14, COLOR_TRAIN);
    fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\">train</text>\n", lx + 40, ly + 18);
    fprintf(f, "  <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
               "stroke-width=\"2\" stroke-dasharray=\"6,4\"/>\n", lx + 8, ly + 32, lx + 34,
            ly + 32, COLOR_TEST);
    fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\">test</text>\n", lx + 40, ly + 36);
    fputs(" </g>\n", f);
}

static rn_status write_svg(const char *svg_path, const char *log_path, const records *rs) {
    rn_wfile w;
    RN_TRY(rn_wfile_open(&w, svg_path));
    FILE *f = w.f;
    const char *slash = strrchr(log_path, '/');
    char base[128];   /* printable ASCII: any file name makes valid XML */
    json_printable(base, sizeof base, slash ? slash + 1 : log_path);
    const record *last = &rs->r[rs->n - 1];

    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
               "height=\"%d\" viewBox=\"0 0 %d %d\">\n", SVG_W, SVG_H, SVG_W, SVG_H);
    fputs(" <title>Training curves: ", f);
    put_escaped(f, base);
    fputs("</title>\n", f);
    fprintf(f, " <rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", SVG_W, SVG_H);
    fputs(" <text x=\"500\" y=\"26\" text-anchor=\"middle\" font-family=\"sans-serif\" "
          "font-size=\"18\" font-weight=\"bold\">Training curves: ", f);
    put_escaped(f, base);
    fprintf(f, " (%zu epoch%s", rs->n, rs->n == 1 ? "" : "s");
    if (!isnan(last->v[M_TEST_ACC]))
        fprintf(f, ", final test accuracy %.4g", last->v[M_TEST_ACC]);
    fputs(")</text>\n", f);
    draw_panel(f, rs, 0, "loss", M_TRAIN_LOSS, M_TEST_LOSS, 0);
    draw_panel(f, rs, 1, "accuracy", M_TRAIN_ACC, M_TEST_ACC, 1);
    fputs("</svg>\n", f);
    return rn_wfile_commit(&w);
}

rn_status rn_plot_svg(const char *log_path, const char *svg_path) {
    if (!log_path || !svg_path)
        return rn_fail(RN_ERR_ARG, "rn_plot_svg: NULL path");
    records rs = {0};
    rn_status st = read_log(log_path, &rs);
    if (st == RN_OK)
        st = write_svg(svg_path, log_path, &rs);
    free(rs.r);
    return st;
}
