/*
 * report.c - rn_report_write: evaluate, draw every figure twice (SVG and,
 * with cfg->png, raster), write the files, then the page.
 *
 * Every file goes through write_file, one place to make writes atomic.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <time.h>

#include "core/status.h"
#include "io/file.h"
#include "report/report_impl.h"
#include "train/plot.h"

const char *const REPORT_FIGURE_NAMES[FIG_COUNT] = {"curves", "confusion", "per_class", "wrong",
                                                    "correct"};
static const char *const FIGURE_TITLES[FIG_COUNT] = {
    "Training curves", "Confusion matrix", "Per-class recall, precision and F1",
    "Most confidently wrong %s images", "Correct %s images"}; /* %s: the split */

const char *report_split_word(const rn_report_config *cfg) {
    const char *s = cfg && cfg->split ? cfg->split : "test";
    return strcmp(s, "val") == 0 ? "validation" : strcmp(s, "train") == 0 ? "training" : "test";
}

/* ---------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------- */

static rn_status write_file(const char *dir, const char *name, const json_buf *b) {
    char path[1100];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return rn_fail(RN_ERR_ARG, "%s/%s: path too long", dir, name);
    if (b->failed)
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory while building it", path);
    return rn_file_write_all(path, b->data ? b->data : "", b->len);
}

static rn_status make_dir(const char *dir) {
    struct stat sb;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return rn_fail(RN_ERR_IO, "%s: cannot create the report folder: %s", dir, strerror(errno));
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return rn_fail(RN_ERR_IO, "%s: not a folder", dir);
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Class names: the dataset's, else the checkpoint's, else "class N"
 * ------------------------------------------------------------------------- */

typedef struct name_table {
    char **checkpoint;       /* the checkpoint's names (one block), or NULL */
    char **numbered;         /* (K) "class N" for classes without a name, or NULL entries */
    const char **name;       /* (K) */
    int count;
} name_table;

static void names_free(name_table *t) {
    for (int i = 0; t->numbered && i < t->count; i++)
        free(t->numbered[i]);
    free(t->numbered);
    free(t->checkpoint);
    free(t->name);
}

static rn_status make_names(const rn_dataset *ds, const char *weights, int K, name_table *t) {
    t->count = K;
    t->numbered = calloc((size_t)K, sizeof *t->numbered);
    t->name = calloc((size_t)K, sizeof *t->name);
    if (!t->numbered || !t->name)
        return rn_fail(RN_ERR_NOMEM, "out of memory for %d class names", K);
    if ((!ds->class_names || ds->num_classes < K) && weights)
        RN_TRY(rn_checkpoint_class_names(weights, K, &t->checkpoint));
    for (int i = 0; i < K; i++) {
        if (ds->class_names && i < ds->num_classes) {
            t->name[i] = ds->class_names[i];
        } else if (t->checkpoint) {
            t->name[i] = t->checkpoint[i];
        } else {
            char buf[32];
            snprintf(buf, sizeof buf, "class %d", i);
            if (!(t->numbered[i] = strdup(buf)))
                return rn_fail(RN_ERR_NOMEM, "out of memory for class names");
            t->name[i] = t->numbered[i];
        }
    }
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Figures
 * ------------------------------------------------------------------------- */

static int figure_present(const report_page *p, report_figure f) {
    switch (f) {
    case FIG_CURVES: return p->log && p->log->count > 0;
    case FIG_WRONG: return p->eval->n_wrong > 0;
    case FIG_CORRECT: return p->eval->n_right > 0;
    default: return p->eval->ev.count > 0;
    }
}

static void figure_size(const report_page *p, report_figure f, double *w, double *h) {
    switch (f) {
    case FIG_CURVES: rn_plot_curves_size(p->log, w, h); break;
    case FIG_CONFUSION: fig_confusion_size(p->eval, p->names, w, h); break;
    case FIG_CLASSES: fig_classes_size(p->eval, p->names, w, h); break;
    case FIG_WRONG: fig_grid_size(p->eval, 1, w, h); break;
    default: fig_grid_size(p->eval, 0, w, h); break;
    }
}

static void draw_figure(rn_canvas *c, const report_page *p, report_figure f) {
    const report_eval *e = p->eval;
    char title[160];
    switch (f) {
    case FIG_CURVES: {
        const char *w = p->cfg->weights_path ? p->cfg->weights_path : "";
        const char *slash = strrchr(w, '/');
        rn_plot_curves(c, p->log, slash ? slash + 1 : w);
        break;
    }
    case FIG_CONFUSION: fig_confusion(c, e, p->names); break;
    case FIG_CLASSES: fig_classes(c, e, p->names); break;
    case FIG_WRONG:
        snprintf(title, sizeof title, "The %d most confidently wrong of %lld mistakes", e->n_wrong,
                 (long long)(e->ev.count - e->ev.top1));
        fig_grid(c, e, p->names, 1, title);
        break;
    default:
        if (e->right_per_class == 1)
            snprintf(title, sizeof title, "Right: the most confident image of each class");
        else if (e->right_per_class > 1)
            snprintf(title, sizeof title, "Right: the %d most confident images of each class",
                     e->right_per_class);
        else
            snprintf(title, sizeof title, "Right: a sample of %d of %lld", e->n_right,
                     (long long)e->ev.top1);
        fig_grid(c, e, p->names, 0, title);
        break;
    }
}

/* Draws figure f as SVG (file + inline copy in the page) and, if asked, PNG. */
static rn_status render_figure(report_page *p, report_figure f, int *written) {
    const rn_report_config *cfg = p->cfg;
    double w, h;
    figure_size(p, f, &w, &h);
    rn_canvas *c = NULL;
    json_buf file = {0};
    char name[64];
    char fig_title[96];
    snprintf(fig_title, sizeof fig_title, FIGURE_TITLES[f], report_split_word(cfg));
    rn_status st = rn_canvas_create_svg(w, h, fig_title, &c);
    if (st == RN_OK) {
        draw_figure(c, p, f);
        st = rn_canvas_svg(c, 1, &file);
    }
    if (st == RN_OK)
        st = rn_canvas_svg(c, 0, &p->svg[f]);
    snprintf(name, sizeof name, "%s.svg", REPORT_FIGURE_NAMES[f]);
    if (st == RN_OK && (st = write_file(cfg->output_dir, name, &file)) == RN_OK)
        (*written)++;
    rn_canvas_free(c);
    c = NULL;
    json_buf_free(&file);
    if (st != RN_OK || !cfg->png)
        return st;
    double scale = cfg->png_scale;   /* a very large figure is drawn smaller, not refused */
    scale = fmin(scale, fmin(8192 / w, 8192 / h));
    st = rn_canvas_create_raster(w, h, scale, &c);
    if (st == RN_OK) {
        draw_figure(c, p, f);
        st = rn_canvas_png(c, &file);
    }
    snprintf(name, sizeof name, "%s.png", REPORT_FIGURE_NAMES[f]);
    if (st == RN_OK && (st = write_file(cfg->output_dir, name, &file)) == RN_OK)
        (*written)++;
    rn_canvas_free(c);
    json_buf_free(&file);
    return st;
}

/* ---------------------------------------------------------------------------
 * The whole report
 * ------------------------------------------------------------------------- */

/* Removes figure f's SVG (png 0) or PNG file in dir, if there is one. */
static void remove_figure(const char *dir, report_figure f, int png) {
    char path[1100];
    snprintf(path, sizeof path, "%s/%s.%s", dir, REPORT_FIGURE_NAMES[f], png ? "png" : "svg");
    (void)unlink(path);
}

int rn_report_remove(const char *dir) {
    char path[1100];
    struct stat sb;
    if (snprintf(path, sizeof path, "%s/report.html", dir) >= (int)sizeof path || stat(path, &sb) != 0 ||
        !S_ISREG(sb.st_mode))
        return 0;
    for (int f = 0; f < FIG_COUNT; f++) /* the figures first, the page last: an interrupted removal leaves a report */
        for (int png = 0; png < 2; png++)
            remove_figure(dir, (report_figure)f, png);
    (void)unlink(path);
    (void)rmdir(dir); /* fails, as it should, where anything else is in it */
    return 1;
}

rn_status rn_report_write(rn_model *m, const rn_dataset *ds, const rn_report_config *cfg_in,
                          rn_eval_progress progress, void *ctx, rn_report_summary *summary) {
    if (!m || !ds || !cfg_in || !cfg_in->output_dir || !summary)
        return rn_fail(RN_ERR_ARG, "rn_report_write: NULL argument");
    memset(summary, 0, sizeof *summary);
    rn_report_config cfg = *cfg_in;
    cfg.grid = cfg.grid ? cfg.grid : 24;
    cfg.png_scale = cfg.png_scale > 0 ? cfg.png_scale : 2.0;
    if (cfg.grid < 1 || cfg.grid > 200)
        return rn_fail(RN_ERR_ARG, "report: %d images per grid is outside 1..200", cfg.grid);
    if (!(cfg.png_scale >= 0.5 && cfg.png_scale <= 4))
        return rn_fail(RN_ERR_ARG, "report: PNG scale %g is outside 0.5..4", cfg.png_scale);
    RN_TRY(make_dir(cfg.output_dir));

    report_eval eval;
    RN_TRY(report_collect(m, ds, &cfg.loader, cfg.grid, progress, ctx, &eval));
    rn_run_log log;
    memset(&log, 0, sizeof log);
    name_table names = {0};
    report_names rnames = {0};
    report_page page = {.cfg = &cfg, .model = m, .eval = &eval, .names = &rnames};
    page.image_size = cfg.loader.image_size ? cfg.loader.image_size : ds->height;
    page.ckpt_step = -1;
    char step_text[32];
    if (cfg.weights_path && rn_weights_meta(cfg.weights_path, "step", step_text, sizeof step_text) == RN_OK)
        page.ckpt_step = atoll(step_text);
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(page.generated, sizeof page.generated, "%Y-%m-%d %H:%M UTC", &utc);
    char log_error[600] = "";

    rn_status st = make_names(ds, cfg.weights_path, eval.ev.num_classes, &names);
    rnames = (report_names){names.name, names.count};
    if (st == RN_OK && cfg.log_path) {
        if (rn_run_log_read(cfg.log_path, &log) == RN_OK) {
            page.log = &log;
        } else {
            snprintf(log_error, sizeof log_error, "%s", rn_last_error());
            page.log_error = log_error;
        }
    }
    page.have_png = cfg.png;
    /* an earlier report in the folder: its figures this one does not write go (below) */
    char earlier[1100];
    snprintf(earlier, sizeof earlier, "%s/report.html", cfg.output_dir);
    struct stat sb;
    const int had_report = stat(earlier, &sb) == 0 && S_ISREG(sb.st_mode);
    for (int f = 0; f < FIG_COUNT && st == RN_OK; f++) {
        const int present = figure_present(&page, (report_figure)f);
        if (present)
            st = render_figure(&page, (report_figure)f, &summary->figures);
        /* a figure file of an earlier report in the folder (where its report.html is) that this
         * one does not write (no log, --no-png, no mistakes) goes: it would contradict the page
         * beside it */
        for (int png = present; had_report && png < 2 && st == RN_OK; png++) {
            if (png && present && cfg.png)
                break;
            remove_figure(cfg.output_dir, (report_figure)f, png);
        }
    }
    json_buf html = {0};
    if (st == RN_OK) {
        report_html(&page, &html);
        st = write_file(cfg.output_dir, "report.html", &html);
    }
    if (st == RN_OK) {
        snprintf(summary->html, sizeof summary->html, "%s/report.html", cfg.output_dir);
        snprintf(summary->warning, sizeof summary->warning, "%s", log_error);
        summary->images = eval.ev.count;
        summary->top1 = eval.ev.count ? (double)eval.ev.top1 / eval.ev.count : 0.0;
        summary->top5 = eval.ev.count ? (double)eval.ev.top5 / eval.ev.count : 0.0;
        summary->loss = eval.ev.loss;
    }
    json_buf_free(&html);
    for (int f = 0; f < FIG_COUNT; f++)
        json_buf_free(&page.svg[f]);
    names_free(&names);
    rn_run_log_free(&log);
    report_eval_free(&eval);
    return st;
}
