/*
 * html.c - the report page: one HTML document with its style sheet inline
 * and every figure as inline SVG, so that it needs nothing else to display
 * (no script, no font, no request).
 *
 * Order, most wanted first: headline numbers, training curves, the
 * confusion matrix with the most common mistakes, per-class results, the
 * image grids, the per-epoch table and the run's facts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/markup.h"
#include "report/report_impl.h"

#define PUT(b, lit) RN_PUT(b, lit)

static const char STYLE[] =
    ":root{--ink:#1d2330;--muted:#5d6779;--line:#e4e8ef;--bg:#f3f5f9;--card:#fff;"
    "--accent:#1f5bd8;--good:#2e7d32;--bad:#c62828}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;background:var(--bg);color:var(--ink);"
    "font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',Arial,sans-serif}\n"
    ".wrap{max-width:1240px;margin:0 auto;padding:0 24px}\n"
    "header.top{background:linear-gradient(135deg,#14307a,#1f5bd8 70%,#3b82f6);color:#fff;"
    "padding:26px 0 44px}\n"
    ".kicker{text-transform:uppercase;letter-spacing:.09em;font-size:12px;opacity:.85}\n"
    "h1{margin:4px 0 6px;font-size:30px;line-height:1.2}\n"
    ".sub{margin:0;font-size:14px;opacity:.92}\n"
    ".sub code{background:rgba(255,255,255,.16);padding:1px 6px;border-radius:4px}\n"
    "nav{margin-top:14px;display:flex;flex-wrap:wrap;gap:6px}\n"
    "nav a{color:#fff;text-decoration:none;font-size:13px;padding:3px 10px;border-radius:99px;"
    "background:rgba(255,255,255,.14)}\n"
    "nav a:hover{background:rgba(255,255,255,.28)}\n"
    ".tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:14px;"
    "margin-top:-28px}\n"
    ".tile,.card{background:var(--card);border-radius:12px;"
    "box-shadow:0 1px 3px rgba(16,24,40,.09),0 1px 2px rgba(16,24,40,.05)}\n"
    ".tile{padding:14px 18px}\n"
    ".tile .label{font-size:12px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted)}\n"
    ".tile .value{font-size:28px;font-weight:700;line-height:1.25;margin-top:2px}\n"
    ".tile.primary .value{color:var(--accent);font-size:34px}\n"
    ".tile .note{font-size:13px;color:var(--muted)}\n"
    ".card{padding:20px 24px;margin:18px 0}\n"
    "h2{font-size:20px;margin:0 0 2px}\n"
    "h3{font-size:15px;margin:18px 0 6px}\n"
    ".lead{color:var(--muted);margin:0 0 14px;font-size:14px}\n"
    ".fig{margin:0 auto}\n"
    ".fig svg{display:block;width:100%;height:auto}\n"
    ".files{font-size:13px;color:var(--muted);margin-top:8px;text-align:right}\n"
    ".files a{color:var(--accent)}\n"
    ".note-box{background:#fff8e6;border:1px solid #f3d38a;border-radius:8px;padding:10px 14px;"
    "font-size:14px}\n"
    "ol.mistakes{margin:6px 0 0;padding:0;list-style-position:inside;display:grid;"
    "grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:4px 32px}\n"
    ".arrow{color:var(--bad);font-weight:700;padding:0 4px}\n"
    ".count{color:var(--muted);font-size:13px}\n"
    ".scroll{overflow-x:auto}\n"
    "table{border-collapse:collapse;width:100%;font-size:14px;font-variant-numeric:tabular-nums}\n"
    "th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}\n"
    "th.num,td.num{text-align:right}\n"
    "thead th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);"
    "font-weight:600}\n"
    "tbody tr:hover{background:#f7f9fc}\n"
    "td.low{color:var(--bad);font-weight:600}\n"
    "td .meter{display:inline-block;width:64px;height:8px;border-radius:4px;background:#e8edf5;"
    "margin-right:8px;vertical-align:middle;overflow:hidden}\n"
    "td .meter i{display:block;height:100%;background:#4c72b0}\n"
    "dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:7px 22px;margin:0}\n"
    "dl.facts dt{color:var(--muted)}\n"
    "dl.facts dd{margin:0}\n"
    ".missing{color:var(--muted);font-style:italic}\n"
    ".flags{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:3px 18px;"
    "font:13px/1.6 'DejaVu Sans Mono',Menlo,Consolas,monospace}\n"
    ".flags .k{color:var(--muted)}\n"
    ".flags .set .k,.flags .set .v{color:var(--accent);font-weight:700}\n"
    "pre.cmd{background:#0f172a;color:#e2e8f0;padding:10px 14px;border-radius:8px;font-size:13px;"
    "white-space:pre-wrap;word-break:break-all;margin:6px 0 0}\n"
    "code{font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:.92em}\n"
    "footer{color:var(--muted);font-size:13px;padding:8px 0 40px}\n";

/* ---------------------------------------------------------------------------
 * Formatting
 * ------------------------------------------------------------------------- */

static void esc(json_buf *b, const char *s) {
    rn_markup_escape(b, s ? s : "");
}

/* 11171146 -> "11,171,146" */
static void put_count(json_buf *b, int64_t v) {
    char digits[32], out[48];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? -v : v)), o = 0;
    if (v < 0)
        out[o++] = '-';
    for (int i = 0; i < n; i++) {
        out[o++] = digits[i];
        if ((n - i - 1) % 3 == 0 && i < n - 1)
            out[o++] = ',';
    }
    json_buf_put(b, out, (size_t)o);
}

/* 11171146 -> "11.2 M" */
static void put_short_count(json_buf *b, int64_t v) {
    if (v >= 1000000)
        json_buf_printf(b, "%.1f M", v / 1e6);
    else if (v >= 1000)
        json_buf_printf(b, "%.1f k", v / 1e3);
    else
        json_buf_printf(b, "%lld", (long long)v);
}

static void put_duration(json_buf *b, double s) {
    if (s < 60)
        json_buf_printf(b, "%.1f s", s);
    else if (s < 3600)
        json_buf_printf(b, "%d min %02d s", (int)(s / 60), (int)fmod(s, 60));
    else
        json_buf_printf(b, "%d h %02d min", (int)(s / 3600), (int)fmod(s / 60, 60));
}

static void put_percent(json_buf *b, double v) {
    json_buf_printf(b, "%.1f%%", 100 * v);
}

/* ---------------------------------------------------------------------------
 * The run record (may be absent)
 * ------------------------------------------------------------------------- */

static const json_value *run_get(const report_page *p, const char *key) {
    return p->log ? json_get(&p->log->run, key) : NULL;
}

static const char *run_str(const report_page *p, const char *key) {
    const json_value *v = run_get(p, key);
    return v && v->type == JSON_STRING ? v->string : NULL;
}

static int run_num(const report_page *p, const char *key, double *out) {
    const json_value *v = run_get(p, key);
    if (!v || v->type != JSON_NUMBER)
        return 0;
    *out = rn_json_number(v, p->log->run_line);
    return isfinite(*out);
}

/* Training time and throughput over the logged epochs. */
typedef struct epoch_totals {
    int epochs;               /* records with seconds */
    double seconds;
    double images, ips_seconds; /* over the records with images per second: their images (rate x
                                   seconds) and seconds, whose ratio is train's own "img/s" (a
                                   mean of the epochs' rates had disagreed with it) */
    int ips_n;
    double min_s, max_s;
} epoch_totals;

static epoch_totals totals(const rn_run_log *log) {
    epoch_totals t = {.min_s = INFINITY};
    for (size_t i = 0; log && i < log->count; i++) {
        double s = log->epochs[i].v[RN_LOG_SECONDS], ips = log->epochs[i].v[RN_LOG_IMAGES_PER_SECOND];
        /* an epoch trained before a resume, as older builds logged it: "seconds": 0 with no
         * images per second; its time is not known, not 0 */
        if (s == 0 && isnan(ips))
            s = NAN;
        if (!isnan(s)) {
            t.epochs++;
            t.seconds += s;
            t.min_s = s < t.min_s ? s : t.min_s;
            t.max_s = s > t.max_s ? s : t.max_s;
        }
        if (!isnan(ips) && !isnan(s) && s > 0)
            t.images += ips * s, t.ips_seconds += s, t.ips_n++;
    }
    return t;
}

/* ---------------------------------------------------------------------------
 * Sections
 * ------------------------------------------------------------------------- */

static const char *dataset_name(const report_page *p) {
    const char *kind = p->cfg->dataset_kind;
    return kind ? kind : run_str(p, "dataset") ? run_str(p, "dataset") : "a dataset";
}

static void header(const report_page *p, json_buf *b) {
    const rn_report_config *cfg = p->cfg;
    PUT(b, "<header class=\"top\"><div class=\"wrap\">\n<div class=\"kicker\">resnet.c training report</div>\n<h1>");
    esc(b, rn_model_arch(p->model));
    PUT(b, " on ");
    esc(b, dataset_name(p));
    PUT(b, "</h1>\n<p class=\"sub\">");
    if (cfg->weights_path) {
        PUT(b, "checkpoint <code>");
        esc(b, cfg->weights_path);
        PUT(b, "</code> &middot; ");
    }
    esc(b, cfg->split ? cfg->split : "test");
    PUT(b, " split");
    if (cfg->data_dir) {
        PUT(b, " of <code>");
        esc(b, cfg->data_dir);
        PUT(b, "</code>");
    }
    PUT(b, " &middot; generated ");
    esc(b, p->generated);
    PUT(b, "</p>\n<nav>");
    if (p->svg[FIG_CURVES].len)
        PUT(b, "<a href=\"#curves\">Curves</a>");
    PUT(b, "<a href=\"#confusion\">Confusion</a><a href=\"#classes\">Per class</a>");
    if (p->svg[FIG_WRONG].len)
        PUT(b, "<a href=\"#wrong\">Wrong</a>");
    if (p->svg[FIG_CORRECT].len)
        PUT(b, "<a href=\"#correct\">Right</a>");
    if (p->log && p->log->count)
        PUT(b, "<a href=\"#epochs\">Epochs</a>");
    PUT(b, "<a href=\"#run\">Run</a></nav>\n</div></header>\n");
}

static void tile(json_buf *b, const char *cls, const char *label) {
    json_buf_printf(b, "<div class=\"tile%s\"><div class=\"label\">%s</div><div class=\"value\">",
                    cls, label);
}

static void tiles(const report_page *p, json_buf *b) {
    const rn_eval_result *ev = &p->eval->ev;
    PUT(b, "<section class=\"tiles\">\n");
    /* the split evaluated: test, validation or training */
    const char *split = report_split_word(p->cfg);
    char label[48];
    snprintf(label, sizeof label, "%c%s accuracy", split[0] - 'a' + 'A', split + 1);
    tile(b, " primary", label);
    put_percent(b, ev->count ? (double)ev->top1 / ev->count : 0);
    PUT(b, "</div><div class=\"note\">top-1: ");
    put_count(b, ev->top1);
    PUT(b, " of ");
    put_count(b, ev->count);
    PUT(b, " images right</div></div>\n");
    if (ev->num_classes > 5) {
        tile(b, "", "Top-5 accuracy");
        put_percent(b, ev->count ? (double)ev->top5 / ev->count : 0);
        json_buf_printf(b, "</div><div class=\"note\">label among the 5 likeliest of %d</div></div>\n",
                        ev->num_classes);
    } else {
        tile(b, "", "Classes");
        json_buf_printf(b, "%d</div><div class=\"note\">top-5 says nothing with 5 or fewer</div></div>\n",
                        ev->num_classes);
    }
    snprintf(label, sizeof label, "%c%s loss", split[0] - 'a' + 'A', split + 1);
    tile(b, "", label);
    json_buf_printf(b, "%.4f</div><div class=\"note\">mean cross-entropy</div></div>\n", ev->loss);
    tile(b, "", "Training");
    epoch_totals t = totals(p->log);
    if (p->log && p->log->count) {
        json_buf_printf(b, "%zu epoch%s</div><div class=\"note\">", p->log->count,
                        p->log->count == 1 ? "" : "s");
        if (t.epochs) {
            put_duration(b, t.seconds);
            if (t.ips_n)
                json_buf_printf(b, " &middot; %.0f img/s", t.images / t.ips_seconds);
        } else {
            PUT(b, "time not logged");
        }
        /* a checkpoint saved inside an epoch (--max-steps, --save-every, a signal): its steps
         * past the last logged epoch are in no figure of the log */
        const double logged = p->log->epochs[p->log->count - 1].v[RN_LOG_STEPS];
        if (!isnan(logged) && p->ckpt_step > (long long)logged)
            json_buf_printf(b, "; the checkpoint is %lld step%s past the end of epoch %.0f",
                            p->ckpt_step - (long long)logged,
                            p->ckpt_step - (long long)logged == 1 ? "" : "s",
                            p->log->epochs[p->log->count - 1].epoch);
    } else {
        PUT(b, "&ndash;</div><div class=\"note\">no training log");
    }
    PUT(b, "</div></div>\n");
    tile(b, "", "Model");
    put_short_count(b, rn_model_param_count(p->model));
    PUT(b, "</div><div class=\"note\">parameters, ");
    esc(b, rn_model_arch(p->model));
    PUT(b, "</div></div>\n</section>\n");
}

/* A figure: the inline SVG no wider than drawn, and links to its files. */
static void figure(const report_page *p, json_buf *b, report_figure f) {
    if (!p->svg[f].len) {
        PUT(b, "<p class=\"note-box\">No images were evaluated, so there is nothing to show.</p>\n");
        return;
    }
    const char *svg = p->svg[f].data;
    const char *vb = svg ? strstr(svg, "viewBox=\"0 0 ") : NULL;
    double width = vb ? strtod(vb + 13, NULL) : 1000;
    json_buf_printf(b, "<div class=\"fig\" style=\"max-width:%.0fpx\">\n", width);
    json_buf_put(b, svg, p->svg[f].len);
    PUT(b, "</div>\n<div class=\"files\">");
    json_buf_printf(b, "<a href=\"%s.svg\">%s.svg</a>", REPORT_FIGURE_NAMES[f], REPORT_FIGURE_NAMES[f]);
    if (p->have_png)
        json_buf_printf(b, " &middot; <a href=\"%s.png\">%s.png</a>", REPORT_FIGURE_NAMES[f],
                        REPORT_FIGURE_NAMES[f]);
    PUT(b, "</div>\n");
}

static void section_open(json_buf *b, const char *id, const char *title, const char *lead) {
    json_buf_printf(b, "<section class=\"card\" id=\"%s\">\n<h2>%s</h2>\n", id, title);
    if (lead)
        json_buf_printf(b, "<p class=\"lead\">%s</p>\n", lead);
}

static void curves(const report_page *p, json_buf *b) {
    section_open(b, "curves", "Training curves",
                 "Loss and top-1 accuracy after every epoch, on the training batches (solid) and "
                 "the test split (dashed), and the learning rate at the end of each epoch.");
    if (p->svg[FIG_CURVES].len) {
        figure(p, b, FIG_CURVES);
    } else {
        PUT(b, "<p class=\"note-box\">");
        if (p->log_error) {
            PUT(b, "The training log could not be read: ");
            esc(b, p->log_error);
        } else if (p->log) {
            PUT(b, "The training log has no finished epoch yet.");
        } else {
            PUT(b, "No training log was given (<code>--log</code>), so there are no curves.");
        }
        PUT(b, "</p>\n");
    }
    PUT(b, "</section>\n");
}

typedef struct mistake {
    int label, pred;
    int64_t count;
} mistake;

static void mistakes(const report_page *p, json_buf *b) {
    const rn_eval_result *ev = &p->eval->ev;
    enum { TOP = 8 };
    mistake top[TOP];
    int n = 0, K = ev->num_classes;
    for (int r = 0; r < K; r++) {
        for (int c = 0; c < K; c++) {
            int64_t v = ev->confusion[(size_t)r * K + c];
            if (r == c || v == 0 || (n == TOP && v <= top[n - 1].count))
                continue;
            int at = n < TOP ? n++ : TOP - 1;
            while (at > 0 && top[at - 1].count < v) {
                top[at] = top[at - 1];
                at--;
            }
            top[at] = (mistake){r, c, v};
        }
    }
    PUT(b, "<h3>Most common mistakes</h3>\n");
    if (n == 0) {
        PUT(b, "<p>None: every image was classified correctly.</p>\n");
        return;
    }
    PUT(b, "<ol class=\"mistakes\">\n");
    for (int i = 0; i < n; i++) {
        int64_t row = 0;
        for (int c = 0; c < K; c++)
            row += ev->confusion[(size_t)top[i].label * K + c];
        PUT(b, "<li><b>");
        esc(b, p->names->name[top[i].label]);
        PUT(b, "</b><span class=\"arrow\">&rarr;</span><b>");
        esc(b, p->names->name[top[i].pred]);
        PUT(b, "</b> <span class=\"count\">");
        put_count(b, top[i].count);
        json_buf_printf(b, " image%s, %.1f%% of ", top[i].count == 1 ? "" : "s",
                        row ? 100.0 * top[i].count / row : 0.0);
        esc(b, p->names->name[top[i].label]);
        PUT(b, "</span></li>\n");
    }
    PUT(b, "</ol>\n");
    /* pairs as common as the last one shown, left out for the list's length: said, not dropped
     * without a word (a third pair of 11 had been) */
    if (n < TOP)
        return;
    int64_t tied = 0;
    for (size_t i = 0; i < (size_t)K * K; i++)
        tied += i / K != i % K && ev->confusion[i] == top[TOP - 1].count;
    for (int i = 0; i < TOP; i++)
        tied -= top[i].count == top[TOP - 1].count;
    if (tied > 0)
        json_buf_printf(b, "<p class=\"lead\">and %lld more pair%s of %lld image%s each, as common as the "
                        "last one listed</p>\n", (long long)tied, tied == 1 ? "" : "s",
                        (long long)top[TOP - 1].count, top[TOP - 1].count == 1 ? "" : "s");
}

static void confusion(const report_page *p, json_buf *b) {
    section_open(b, "confusion", "Confusion matrix",
                 "Rows are the true classes, columns the predicted ones. The numbers count "
                 "images; the colour is the share of the row, so a dark cell off the diagonal is "
                 "a class the model often mistakes for another.");
    figure(p, b, FIG_CONFUSION);
    mistakes(p, b);
    PUT(b, "</section>\n");
}

static void classes(const report_page *p, json_buf *b) {
    const rn_eval_result *ev = &p->eval->ev;
    section_open(b, "classes", "Per class",
                 "Recall is the accuracy on a class's images; precision is how often a prediction "
                 "of the class is right; F1 is their harmonic mean.");
    figure(p, b, FIG_CLASSES);
    double overall = ev->count ? (double)ev->top1 / ev->count : 0;
    PUT(b, "<div class=\"scroll\"><table>\n<thead><tr><th>class</th><th class=\"num\">images</th>"
           "<th class=\"num\">right</th><th>recall (accuracy)</th><th class=\"num\">precision</th>"
           "<th class=\"num\">F1</th><th>most often taken for</th></tr></thead>\n<tbody>\n");
    for (int k = 0; k < ev->num_classes; k++) {
        class_stats s;
        report_class_stats(ev, k, &s);
        if (s.images == 0 && s.predicted == 0)
            continue;
        PUT(b, "<tr><td>");
        esc(b, p->names->name[k]);
        PUT(b, "</td><td class=\"num\">");
        put_count(b, s.images);
        PUT(b, "</td><td class=\"num\">");
        put_count(b, s.correct);
        json_buf_printf(b, "</td><td%s><span class=\"meter\"><i style=\"width:%.1f%%\"></i></span>",
                        s.images && s.recall < overall - 0.1 ? " class=\"low\"" : "", 100 * s.recall);
        put_percent(b, s.recall);
        PUT(b, "</td><td class=\"num\">");
        put_percent(b, s.precision);
        json_buf_printf(b, "</td><td class=\"num\">%.3f</td><td>", s.f1);
        if (s.confused_with >= 0) {
            esc(b, p->names->name[s.confused_with]);
            PUT(b, " <span class=\"count\">(");
            put_count(b, s.confused_count);
            PUT(b, ")</span>");
        } else {
            PUT(b, "&ndash;");
        }
        PUT(b, "</td></tr>\n");
    }
    PUT(b, "</tbody></table></div>\n</section>\n");
}

static void grids(const report_page *p, json_buf *b) {
    const report_eval *e = p->eval;
    char lead[320];
    snprintf(lead, sizeof lead,
             "The %s images the model got wrong with the highest confidence, as the model "
             "saw them: the true class with the probability the model gave it, then the "
             "prediction. Confident mistakes are often mislabelled or ambiguous images.",
             report_split_word(p->cfg));
    section_open(b, "wrong", "Most confidently wrong", lead);
    if (e->n_wrong)
        figure(p, b, FIG_WRONG);
    else
        PUT(b, "<p>No mistakes on this split.</p>\n");
    PUT(b, "</section>\n");
    if (e->n_right) {
        section_open(b, "correct", "Classified correctly",
                     e->right_per_class ? "The correct predictions the model was surest of, for "
                                          "each class: what it has learnt a class looks like."
                                        : "A sample of the correctly classified images.");
        figure(p, b, FIG_CORRECT);
        PUT(b, "</section>\n");
    }
}

static void put_metric(json_buf *b, double v, const char *fmt) {
    if (isnan(v))
        PUT(b, "<td class=\"num missing\">&ndash;</td>");
    else
        json_buf_printf(b, fmt, v);
}

static void epochs(const report_page *p, json_buf *b) {
    if (!p->log || !p->log->count)
        return;
    section_open(b, "epochs", "Epochs", NULL);
    PUT(b, "<div class=\"scroll\"><table>\n<thead><tr><th class=\"num\">epoch</th>"
           "<th class=\"num\">train loss</th><th class=\"num\">train acc</th>"
           "<th class=\"num\">test loss</th><th class=\"num\">test acc</th>"
           "<th class=\"num\">test top-5</th>");
    int ema = 0; /* train --ema: the moving average's test accuracy */
    for (size_t i = 0; i < p->log->count; i++)
        ema |= !isnan(p->log->epochs[i].v[RN_LOG_EMA_TEST_ACC]);
    if (ema)
        PUT(b, "<th class=\"num\">EMA test acc</th>");
    PUT(b, "<th class=\"num\">learning rate</th>"
           "<th class=\"num\">seconds</th><th class=\"num\">images/s</th></tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < p->log->count; i++) {
        const rn_log_epoch *r = &p->log->epochs[i];
        json_buf_printf(b, "<tr><td class=\"num\">%g</td>", r->epoch);
        put_metric(b, r->v[RN_LOG_TRAIN_LOSS], "<td class=\"num\">%.4f</td>");
        put_metric(b, r->v[RN_LOG_TRAIN_ACC], "<td class=\"num\">%.4f</td>");
        put_metric(b, r->v[RN_LOG_TEST_LOSS], "<td class=\"num\">%.4f</td>");
        put_metric(b, r->v[RN_LOG_TEST_ACC], "<td class=\"num\">%.4f</td>");
        put_metric(b, r->v[RN_LOG_TEST_TOP5], "<td class=\"num\">%.4f</td>");
        if (ema)
            put_metric(b, r->v[RN_LOG_EMA_TEST_ACC], "<td class=\"num\">%.4f</td>");
        put_metric(b, r->v[RN_LOG_LR], "<td class=\"num\">%.4g</td>");
        put_metric(b, r->v[RN_LOG_SECONDS], "<td class=\"num\">%.1f</td>");
        put_metric(b, r->v[RN_LOG_IMAGES_PER_SECOND], "<td class=\"num\">%.0f</td>");
        PUT(b, "</tr>\n");
    }
    PUT(b, "</tbody></table></div>\n</section>\n");
}

/* ---------------------------------------------------------------------------
 * The run's facts
 * ------------------------------------------------------------------------- */

static void not_recorded(json_buf *b) {
    PUT(b, "<span class=\"missing\">not recorded</span>");
}

static void fact_open(json_buf *b, const char *label) {
    json_buf_printf(b, "<dt>%s</dt><dd>", label);
}

static void fact_text(json_buf *b, const char *label, const char *value) {
    fact_open(b, label);
    if (value)
        esc(b, value);
    else
        not_recorded(b);
    PUT(b, "</dd>\n");
}

static void flags(const report_page *p, json_buf *b) {
    const json_value *fl = run_get(p, "flags"), *given = run_get(p, "given");
    if (!fl || fl->type != JSON_OBJECT)
        return;
    PUT(b, "<h3>Recipe</h3>\n<p class=\"lead\">Every flag of <code>resnet train</code>; the ones "
           "given on the command line are highlighted.</p>\n<div class=\"flags\">\n");
    for (size_t i = 0; i < fl->count; i++) {
        const json_member *m = &fl->members[i];
        int set = 0;
        for (size_t g = 0; given && given->type == JSON_ARRAY && g < given->count; g++)
            set |= given->items[g].type == JSON_STRING && strcmp(given->items[g].string, m->key) == 0;
        json_buf_printf(b, "<div%s><span class=\"k\">--", set ? " class=\"set\"" : "");
        esc(b, m->key);
        PUT(b, "</span> <span class=\"v\">");
        if (m->value.type == JSON_STRING)
            esc(b, m->value.string);
        else if (m->value.type == JSON_BOOL && m->value.boolean)
            PUT(b, "on");
        else if (m->value.type == JSON_BOOL)
            PUT(b, "off");
        PUT(b, "</span></div>\n");
    }
    PUT(b, "</div>\n");
    const char *cmd = run_str(p, "command");
    if (cmd) {
        PUT(b, "<pre class=\"cmd\">");
        esc(b, cmd);
        PUT(b, "</pre>\n");
    }
}

static void facts(const report_page *p, json_buf *b) {
    const rn_report_config *cfg = p->cfg;
    const report_eval *e = p->eval;
    double v;
    section_open(b, "run", "The run", p->log ? NULL
                 : "No training log was given: what only the log records is marked as not recorded.");
    PUT(b, "<dl class=\"facts\">\n");
    fact_open(b, "Architecture");
    esc(b, rn_model_arch(p->model));
    json_buf_printf(b, ", %s stem, %d input channel%s, %d class%s</dd>\n",
                    rn_model_stem(p->model) == RN_STEM_CIFAR ? "CIFAR (3x3)" : "ImageNet (7x7 + max-pool)",
                    rn_model_in_channels(p->model), rn_model_in_channels(p->model) == 1 ? "" : "s",
                    rn_model_num_classes(p->model), rn_model_num_classes(p->model) == 1 ? "" : "es");
    fact_open(b, "Parameters");
    put_count(b, rn_model_param_count(p->model));
    double flops = rn_model_flops(p->model, p->image_size, p->image_size);
    json_buf_printf(b, " &middot; %.3g GFLOP per %dx%d image</dd>\n", flops / 1e9, p->image_size,
                    p->image_size);
    fact_open(b, "Data");
    esc(b, dataset_name(p));
    if (cfg->data_dir) {
        PUT(b, " in <code>");
        esc(b, cfg->data_dir);
        PUT(b, "</code>");
    }
    double tr, te;
    if (run_num(p, "train_images", &tr) && run_num(p, "test_images", &te)) {
        PUT(b, ": ");
        put_count(b, (int64_t)tr);
        PUT(b, " training, ");
        put_count(b, (int64_t)te);
        PUT(b, " test images");
    }
    PUT(b, "</dd>\n");
    fact_open(b, "Evaluated here");
    put_count(b, e->ev.count);
    json_buf_printf(b, " %s images in %.1f s (%.0f images/s, %d thread%s)</dd>\n",
                    report_split_word(cfg), e->seconds,
                    e->seconds > 0 ? e->ev.count / e->seconds : 0.0, rn_get_threads(),
                    rn_get_threads() == 1 ? "" : "s");
    epoch_totals t = totals(p->log);
    fact_open(b, "Time per epoch");
    if (t.epochs) {
        put_duration(b, t.seconds / t.epochs);
        if (t.epochs > 1) {
            PUT(b, " on average (");
            put_duration(b, t.min_s);
            PUT(b, " to ");
            put_duration(b, t.max_s);
            PUT(b, ")");
        }
        PUT(b, "; ");
        put_duration(b, t.seconds);
        json_buf_printf(b, " of training in all, evaluation excluded");
    } else {
        not_recorded(b);
    }
    PUT(b, "</dd>\n");
    fact_open(b, "Throughput");
    if (t.ips_n)
        json_buf_printf(b, "%.1f training images/s (the images of %d epoch%s over their seconds)",
                        t.images / t.ips_seconds, t.ips_n, t.ips_n == 1 ? "" : "s");
    else
        not_recorded(b);
    PUT(b, "</dd>\n");
    fact_text(b, "CPU", run_str(p, "cpu"));
    fact_open(b, "Threads");
    if (run_num(p, "threads", &v)) {
        json_buf_printf(b, "%.0f", v);
        if (run_num(p, "cores", &v))
            json_buf_printf(b, " (of %.0f cores)", v);
    } else {
        not_recorded(b);
    }
    PUT(b, "</dd>\n");
    fact_open(b, "Seed");
    if (run_num(p, "seed", &v))
        json_buf_printf(b, "%.0f", v);
    else
        not_recorded(b);
    PUT(b, "</dd>\n");
    fact_open(b, "resnet.c");
    const char *version = run_str(p, "version");
    if (version) {
        esc(b, version);
        PUT(b, " trained it");
        const char *compiler = run_str(p, "compiler");
        if (compiler) {
            PUT(b, " (built with ");
            esc(b, compiler);
            PUT(b, ")");
        }
        PUT(b, "; ");
    }
    PUT(b, RN_VERSION " wrote this report</dd>\n");
    fact_text(b, "Started", run_str(p, "started"));
    const char *resumed = run_str(p, "resumed_from");
    if (resumed)
        fact_text(b, "Resumed from", resumed);
    if (cfg->log_path)
        fact_text(b, "Log", cfg->log_path);
    PUT(b, "</dl>\n");
    flags(p, b);
    PUT(b, "</section>\n");
}

/* ---------------------------------------------------------------------------
 * The document
 * ------------------------------------------------------------------------- */

void report_html(const report_page *p, json_buf *b) {
    PUT(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    esc(b, rn_model_arch(p->model));
    PUT(b, " on ");
    esc(b, dataset_name(p));
    PUT(b, ": training report</title>\n<style>\n");
    json_buf_put(b, STYLE, sizeof STYLE - 1);
    PUT(b, "</style>\n</head>\n<body>\n");
    header(p, b);
    PUT(b, "<main class=\"wrap\">\n");
    tiles(p, b);
    curves(p, b);
    confusion(p, b);
    classes(p, b);
    grids(p, b);
    epochs(p, b);
    facts(p, b);
    PUT(b, "</main>\n<footer class=\"wrap\">Written by <code>resnet report</code> " RN_VERSION
           " on ");
    esc(b, p->generated);
    PUT(b, ". This page is self-contained: it loads no script, font or image from anywhere. "
           "The figures are also beside it as SVG");
    if (p->have_png)
        PUT(b, " and PNG");
    PUT(b, " files.</footer>\n</body>\n</html>\n");
}
