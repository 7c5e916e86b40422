/*
 * report_impl.h - what the parts of the report share: the evaluation's
 * results with the images picked for the grids, the figures, and the page.
 */
#ifndef RN_REPORT_REPORT_IMPL_H
#define RN_REPORT_REPORT_IMPL_H

#include <stdint.h>

#include "io/json.h"
#include "report/canvas.h"
#include "report/report.h"
#include "train/runlog.h"

/* ---------------------------------------------------------------------------
 * The evaluation (collect.c)
 * ------------------------------------------------------------------------- */

typedef struct report_pick {
    int64_t index;              /* dataset index */
    int label, pred;
    float p_pred, p_label;      /* softmax probabilities of the prediction and the label */
    uint8_t *thumb;             /* (thumb_h, thumb_w, channels), as the model saw it */
} report_pick;

typedef struct report_eval {
    rn_eval_result ev;          /* loss, top-1/5, confusion (num_classes^2) */
    double seconds;             /* wall time of the evaluation */
    int channels, thumb_h, thumb_w;
    report_pick *wrong;         /* the most confidently wrong, most confident first */
    int n_wrong;
    report_pick *right;         /* correct ones, by class, most confident first */
    int n_right;
    int right_per_class;        /* > 0: that many per class; 0: a seeded sample */
    uint8_t *thumbs;            /* the block every pick's thumbnail lives in */
} report_eval;

/* Runs the evaluation, keeping `grid` images of each kind. */
rn_status report_collect(rn_model *m, const rn_dataset *ds, const rn_loader_config *cfg, int grid,
                         rn_eval_progress progress, void *ctx, report_eval *out);
void report_eval_free(report_eval *e);

/* ---------------------------------------------------------------------------
 * Figures (fig_*.c): each has a size and draws itself on a canvas of it
 * ------------------------------------------------------------------------- */

/* The names of the K classes (K = ev.num_classes), never NULL. */
typedef struct report_names {
    const char *const *name;
    int count;
} report_names;

/* The classes the confusion figure shows: all when K <= 30, else the 30
 * involved in the most mistakes. Fills idx (capacity K), returns the count. */
int fig_confusion_classes(const report_eval *e, int *idx);
void fig_confusion_size(const report_eval *e, const report_names *n, double *w, double *h);
void fig_confusion(rn_canvas *c, const report_eval *e, const report_names *n);

/* The classes the per-class figure shows: the 30 worst by recall at most. */
void fig_classes_size(const report_eval *e, const report_names *n, double *w, double *h);
void fig_classes(rn_canvas *c, const report_eval *e, const report_names *n);

/* The grid of e->wrong (wrong: captions with both names, red frames) or of
 * e->right (green frames). */
void fig_grid_size(const report_eval *e, int wrong, double *w, double *h);
void fig_grid(rn_canvas *c, const report_eval *e, const report_names *n, int wrong,
              const char *title);

/* Per-class counts from the confusion matrix. */
typedef struct class_stats {
    int64_t images, correct, predicted;   /* row sum, diagonal, column sum */
    double recall, precision, f1;         /* 0 where undefined */
    int confused_with;                    /* the most frequent wrong prediction, -1 if none */
    int64_t confused_count;
} class_stats;

void report_class_stats(const rn_eval_result *ev, int k, class_stats *out);

/* ---------------------------------------------------------------------------
 * The page (html.c)
 * ------------------------------------------------------------------------- */

typedef enum report_figure {
    FIG_CURVES,
    FIG_CONFUSION,
    FIG_CLASSES,
    FIG_WRONG,
    FIG_CORRECT,
    FIG_COUNT
} report_figure;

/* The file stem of each figure ("curves", ...). */
extern const char *const REPORT_FIGURE_NAMES[FIG_COUNT];

typedef struct report_page {
    const rn_report_config *cfg;
    const rn_model *model;
    const report_eval *eval;
    const report_names *names;
    const rn_run_log *log;       /* NULL without a log */
    const char *log_error;       /* why the log could not be read, or NULL */
    int image_size;              /* the model's input side */
    long long ckpt_step;         /* the checkpoint's optimizer step (its metadata "step"), or -1 */
    char generated[32];          /* UTC time, ISO 8601 */
    json_buf svg[FIG_COUNT];     /* inline SVG of each figure; empty when left out */
    int have_png;                /* PNG files were written */
} report_page;

/* The evaluated split's name in the page's words ("test", "validation", "training"; "test"
 * where cfg names none), lower case. */
const char *report_split_word(const rn_report_config *cfg);

/* Appends the whole HTML document to *out. */
void report_html(const report_page *page, json_buf *out);

#endif
