/*
 * conv2d_backward_plan.h - the plan the backward convolution's three files share (private to
 * src/ops/conv2d_backward*.c): which route each gradient takes, its chunk sizes and its
 * workspace layout, all from the shape alone (conv2d_backward.c makes it), and the helpers
 * both gradients use. The routes themselves: conv2d_backward.c's opening comment.
 */
#ifndef RN_OPS_CONV2D_BACKWARD_PLAN_H
#define RN_OPS_CONV2D_BACKWARD_PLAN_H

#include <stddef.h>

#include "core/threads.h"
#include "ops/conv2d.h"
#include "ops/conv_algo.h"
#include "ops/conv_wgrad.h"
#include "ops/kernels.h"

#define ALIGN_FLOATS 16          /* workspace pieces start 64-byte aligned */
#define RN_PHASE_MAX 16          /* strides the phase route takes (DATA_PHASES) */
/* From the kernel descriptor: chunks are multiples of the GEMM's panel
 * width; weight rows are shared out in blocks of two register tiles,
 * weight columns in blocks of one panel. */

enum { DATA_POINTWISE, DATA_FLIPPED, DATA_ALGO, DATA_PHASES, DATA_COL2IM };

typedef struct bwd_plan {
    const rn_kernels *k;    /* the GEMM's kernels */
    int G, cin_g, cout_g, khw;
    int K;                  /* cin_g * kh * kw: rows of im2col */
    long pix_in, pix_out;   /* n*h*w and n*ho*wo: one channel's floats */
    int pointwise;          /* 1x1, stride 1, unpadded: im2col(x) is x */
    int data_route;
    const rn_conv_algo *algo; /* DATA_ALGO: Winograd, direct or smallmap, as the heuristic picks */
    const rn_kernels *ka;   /* DATA_ALGO: its kernels (direct: fp32, k's own or k's fp32 twin;
                               Winograd and smallmap: k's, bf16 products on bf16 ones, but
                               Winograd's on matrix tiles, rn_conv_bf16_kernels) */
    int threads;            /* DATA_ALGO: the thread count its workspace is for */
    int chunk_d;            /* pixels per col2im chunk (DATA_COL2IM) */
    int phase_pad;          /* DATA_PHASES: every phase's window starts this far above dy's
                               row (and left of its column) */
    int phase_kf;           /* DATA_PHASES: the longest phase product's K (cout_g x its taps) */
    int chunk_w;            /* pixels per weight chunk */
    int wt_by_col;          /* weight product dy x col^T, not col x dy^T (K < cout_g) */
    const rn_kernels *kw;   /* the weight product's GEMM kernels */
    int wt_direct;          /* weight gradient by the direct strips (few channels) */
    conv_wgrad_plan wd;     /* its layout, when wt_direct */
    int wt_wino;            /* or by Winograd (3x3 stride 1, with algos), on the fp32 kernels
                               (bf16 descriptors: their fp32 twin) */
    conv_wgrad_wino_plan ww; /* its layout, when wt_wino */
    int wt_small;           /* or as the small-map product's (conv_smallmap.c), on k's kernels */
    size_t ws_data;         /* floats the data gradient uses */
    size_t dwt_floats;      /* weight gradient pieces, aligned: dw_g^T (by dy, else none), */
    size_t col_floats;      /* an im2col chunk */
} bwd_plan;

static inline size_t align_up(size_t n) {
    return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

/* Rows (or columns) of phase a in an axis of n positions, stride st. */
static inline int phase_len(int n, int st, int a) { return (n - a + st - 1) / st; }

/* The plan for shape s (uncropped: the callers crop first) with kernels k; `algos` as
 * conv2d_backward_data's (0: the GEMM routes only). */
bwd_plan conv2d_bwd_plan(const rn_kernels *k, const rn_conv_shape *s, int algos);

/* The data gradient of a stride-1 convolution as the forward convolution it is: dy, padded
 * by k - 1 - pad, with the flipped and transposed weights, (cout, kh, kw) -> cin. */
rn_conv_shape conv2d_bwd_flipped_shape(const rn_conv_shape *s);

/* The taps of one axis (kernel k, stride st, padding pad) that reach the input positions of
 * phase a (those = a modulo st): k_top - st * r for r < *count, and how far above the phase
 * position's own output row their window starts (-(a + pad - k_top) / st). 0 when none. */
int conv2d_bwd_phase_taps(int k, int st, int pad, int a, int *k_top, int *lead);

/* Floats of the cropped weights (or their gradient) at the workspace's start, aligned. */
static inline size_t conv2d_bwd_cropped_floats(const rn_conv_shape *c) {
    return align_up(conv2d_weight_floats(c));
}

/* ---------------------------------------------------------------------------
 * Work sharing inside the gradients' parallel regions
 *
 * The chunked products run inside one parallel region per call: each
 * thread owns a fixed share of the rows (or columns) of every chunk and
 * multiplies it with rn_sgemm_1t, so the chunks need no barrier. Functions
 * marked "(worksharing)" contain an orphaned `omp for` and are called by
 * every thread of the region.
 * ------------------------------------------------------------------------- */

/* This thread's share [*lo, *hi) of n items, dealt in blocks of `step`. */
static inline void my_share(int n, int step, int *lo, int *hi) {
#ifdef _OPENMP
    const int team = omp_get_num_threads();
#else
    const int team = 1;
#endif
    const int blocks = (n + step - 1) / step;
    const int per = (blocks + team - 1) / team;
    const long a = (long)rn_thread_id() * per * step, z = a + (long)per * step;
    *lo = a < n ? (int)a : n;
    *hi = z < n ? (int)z : n;
}

#endif
