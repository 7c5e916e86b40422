/*
 * plot.h - training curves from a JSON-lines log: loss, accuracy and, when
 * the log has it, the learning rate, one panel each; and the test accuracy
 * of several runs against wall time.
 */
#ifndef RN_TRAIN_PLOT_H
#define RN_TRAIN_PLOT_H

#include "report/canvas.h"
#include "resnet.h"
#include "train/runlog.h"

/* The size of the curves figure for `log`, in user units: panels side by
 * side (loss, accuracy, and learning rate when any epoch record has "lr"). */
void rn_plot_curves_size(const rn_run_log *log, double *width, double *height);

/* Draws the curves of log's epoch records (count > 0) on c, a canvas of
 * rn_plot_curves_size: a heading (`name` and the final test accuracy) and,
 * per panel, a <g class="panel"> with axes, ticks, tick labels, axis labels
 * and a legend; every unbroken run of a curve (a missing or null metric
 * leaves a gap) is one polyline, and each point is also a circle. Axes span
 * the data widened to "nice" ticks (1, 2 or 5 x 10^k). */
void rn_plot_curves(rn_canvas *c, const rn_run_log *log, const char *name);

/* Reads the log at log_path (see runlog.h) and writes svg_path: a standalone
 * SVG 1.1 document of the curves, titled after the log's file name. Fails as
 * rn_run_log_read does, with RN_ERR_FORMAT on a log without epoch records,
 * and RN_ERR_IO when the SVG cannot be written. */
rn_status rn_plot_svg(const char *log_path, const char *svg_path);

/* Draws runs side by side on c, a canvas of 1.5 panels' width (630 x 410
 * user units): one panel, the test accuracy of each log's epoch records
 * against "elapsed" (wall seconds since the run's start, evaluation
 * included), one line per log labelled labels[k], with a legend. */
void rn_plot_compare(rn_canvas *c, const rn_run_log *logs, const char *const *labels, int n);

/* Reads the n logs (n >= 1) and writes svg_path: a standalone SVG document
 * of rn_plot_compare. Fails as rn_run_log_read does, with RN_ERR_FORMAT
 * naming a log none of whose epoch records has "elapsed", and RN_ERR_IO
 * when the SVG cannot be written. */
rn_status rn_plot_compare_svg(const char *const *log_paths, const char *const *labels, int n,
                              const char *svg_path);

#endif
