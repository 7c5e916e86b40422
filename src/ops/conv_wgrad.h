/*
 * conv_wgrad.h - the routes conv2d_backward_weight takes instead of its GEMM on an im2col
 * matrix: the direct weight gradient of convolutions on few channels (conv_wgrad.c: the
 * stems and the narrow 3x3 layers), and Winograd's for the wider 3x3 stride-1 layers
 * (conv_wgrad_winograd.c).
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

/* The Winograd weight gradient's layout: per point xi of the transformed domain, M_xi (cout x
 * cin, the sums) and a block's V_xi (cin x tb) and W_xi (cout x tb), planes apart as
 * rn_wino_plane_floats spaces them. */
#define CONV_WGRAD_WINO_GROUPS_MAX 64 /* groups of RN_WINO_LANES tiles per block, at most */
typedef struct conv_wgrad_wino_plan {
    int m;                  /* output tile side: 4 (F(4x4, 3x3)) or 2 (F(2x2, 3x3)) */
    int xi;                 /* points of the transformed domain, (m + 2)^2 */
    int th, tw;             /* tiles per image */
    long tiles;             /* n * th * tw */
    int tb;                 /* tiles per block (a multiple of RN_WINO_LANES) */
    size_t m_xi, v_xi, w_xi; /* floats between two points' planes of M, V and W */
    int parts;              /* 1, or 2: the tiles in two halves, each with its own M, V and W */
    size_t floats;          /* the workspace: M (per part), then a block's V and W (per part) */
} conv_wgrad_wino_plan;

/* 1 when Winograd takes shape s's weight gradient on kernels k (a 3x3 stride-1 convolution on
 * enough channels, k fp32 with Winograd transforms; the rule and its measurements are in
 * conv_wgrad_winograd.c), with its layout in *d; 0 otherwise. */
int conv_wgrad_wino_plan_for(const rn_kernels *k, const rn_conv_shape *s, conv_wgrad_wino_plan *d);

/* The layout for tiles of side m (4 or 2) whatever the rule says (tests), or 0 where shape s
 * is not a 3x3 stride-1 convolution of one group with padding of at most 2, or k has no
 * transforms for m. */
int conv_wgrad_wino_plan_m(const rn_kernels *k, const rn_conv_shape *s, int m,
                           conv_wgrad_wino_plan *d);

/* *d (a plan for shape s) laid out again for blocks of tb tiles (rounded up to whole lanes, at
 * most CONV_WGRAD_WINO_GROUPS_MAX groups): tests, for several blocks on small shapes. */
void conv_wgrad_wino_plan_blocks(const rn_conv_shape *s, int tb, conv_wgrad_wino_plan *d);

/* dw (cout, cin, 3, 3) = the weight gradient of s from x (cin, n, h, w) and dy (cout, n, ho,
 * wo) by the plan d, in ws (d->floats floats, 64-byte aligned). Worksharing: called by every
 * thread of a parallel region; ends with a barrier. Every sum runs in an order fixed by the
 * shape alone; the result is within the tolerance of conv_wgrad_winograd.c of the exact one. */
void conv_wgrad_wino_run(const rn_kernels *k, const rn_conv_shape *s,
                         const conv_wgrad_wino_plan *d, const float *x, const float *dy,
                         float *dw, float *ws);

#endif
