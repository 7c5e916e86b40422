/*
 * plot.h - training curves from a JSON-lines log, as a standalone SVG.
 */
#ifndef RN_TRAIN_PLOT_H
#define RN_TRAIN_PLOT_H

#include "resnet.h"

/* Reads the training log at log_path: one JSON object per line. A line with
 * "epoch" and no "step" is a per-epoch record and is plotted; other lines
 * (per-step records, anything else) are skipped, as are blank lines and a
 * final line cut short without a newline (a run killed mid-write). Of an
 * epoch record it uses the numbers "epoch", "train_loss", "train_acc",
 * "test_loss", "test_acc"; a missing or null metric leaves a gap in its
 * curve, other members are ignored. A repeated epoch (a resumed run) replaces
 * the earlier record; points are plotted in epoch order.
 *
 * Writes svg_path: a standalone SVG 1.1 document with a title and two panels,
 * loss (train and test) and accuracy (train and test), each with axes, ticks,
 * tick labels, axis labels and a legend; every unbroken run of a curve is
 * one <polyline>, and each point is also a <circle>.
 *
 * Fails with RN_ERR_IO when a file cannot be read or written, RN_ERR_FORMAT
 * ("LOG:LINE: ...") on a line that is not a JSON object, an epoch or metric
 * that is not a number, or a log without epoch records. */
rn_status rn_plot_svg(const char *log_path, const char *svg_path);

#endif
