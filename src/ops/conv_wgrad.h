/*
 * conv_wgrad.h - the direct weight gradient of convolutions on few channels
 * (conv_wgrad.c), the route conv2d_backward_weight takes for the stems and
 * the narrow 3x3 layers instead of its GEMM on an im2col matrix.
 */
#ifndef RN_OPS_CONV_WGRAD_H
#define RN_OPS_CONV_WGRAD_H

#include <stddef.h>

#include "ops/conv2d.h"
#include "ops/kernels.h"

/* The direct weight gradient's layout: images padded and split into
 * stride x stride phases, a block at a time. A "row" is one strip's taps:
 * window row ki, the columns kj of one phase b (kj = b, b + stride, ...), up
 * to RN_WGRAD_KW_MAX of them from the t0-th. */
#define CONV_WGRAD_ROWS_MAX 64  /* rows per input channel, at most */
typedef struct conv_wgrad_row {
    unsigned char ki, b, t0, taps;
} conv_wgrad_row;

typedef struct conv_wgrad_plan {
    int phases;             /* stride * stride */
    int hph, wph;           /* a phase's plane: every stride-th row and column of the padded
                               input */
    size_t xplane;          /* floats per phase plane */
    int co4;                /* cout rounded up to RN_WGRAD_CO */
    int copy_dy;            /* 1: dy copied a block at a time into rows of wph, zero channels
                               up to co4 (the rule in conv_wgrad.c); 0: read where it is */
    size_t dplane;          /* floats per plane of dy as the strips read it: ho * wph copied,
                               ho * wo in place */
    int rows;               /* strips per input channel and group of output channels */
    conv_wgrad_row row[CONV_WGRAD_ROWS_MAX];
    int units;              /* cin * rows * co4 / RN_WGRAD_CO */
    int block;              /* images per block */
    int seg_rows;           /* output rows per segment: ho, or fewer when an image's planes
                               exceed a block */
    size_t acc_floats;      /* partial sums: units x (RN_WGRAD_CO * RN_WGRAD_KW_MAX * 8) */
    size_t part_floats;     /* a block's partial sums, kept across segments (or 0) */
    size_t floats;          /* the workspace: padded block, dy's copy, then the partial sums */
} conv_wgrad_plan;

/* 1 when the direct strips take shape s's weight gradient (k has strips, one group, a
 * window on few channels; the rule and its measurements are in conv_wgrad.c), with their
 * layout in *d; 0 otherwise (*d then unspecified). */
int conv_wgrad_plan_for(const rn_kernels *k, const rn_conv_shape *s, conv_wgrad_plan *d);

/* dw (cout, cin, kh, kw) = the weight gradient of s from x (cin, n, h, w) and dy
 * (cout, n, ho, wo), by the plan d of conv_wgrad_plan_for, in ws (d->floats floats).
 * Worksharing: called by every thread of a parallel region; ends with a barrier. Every sum
 * runs in an order fixed by the shape alone. */
void conv_wgrad_run(const rn_kernels *k, const rn_conv_shape *s, const conv_wgrad_plan *d,
                    const float *x, const float *dy, float *dw, float *ws);

#endif
