/*
 * direct.h - the direct convolution's tile, the contract between the
 * algorithm (conv_direct.c) and its per-ISA tile functions (portable in
 * conv_direct.c, AVX2 in x86/conv_direct_avx2.c, AVX-512 in
 * x86/conv_direct_avx512.c).
 *
 * A tile is up to the descriptor's direct_mr (at most RN_DIRECT_MR_MAX) output
 * pixels along one output row by up to its direct_nr output channels (NR below:
 * 16 for the AVX2 and C tiles, 32 for AVX-512's), summed over the K taps of the
 * window in order (k = 0 .. K-1, one sum per output):
 *     y[j * ldy + i] = epilogue( sum_k x[off[k] + i * xs] * w[k * NR + j] )
 * for pixels i < m and channels j < n. The input is read where each tap's
 * offset says (a copy of it with the padding written out, so no tap is ever
 * out of bounds); pixel i of the row lies xs (the stride) further on. The
 * weights are packed k-major, NR per tap, zero past the channels. The input
 * values are the broadcast operand and the weights the vector one: a strided
 * or oddly shaped window costs nothing to gather, which is what a GEMM's
 * packing pays for a 3-channel 7x7/2 stem.
 *
 * bf16 pairs (the tiles of bf16 descriptors, rn_kernels_are_bf16): x and w hold
 * 32-bit words, each two bf16 values (kernels.h's pair layout: the even input
 * channel in the low half, the odd one in the high half, zero past the last
 * channel), and a tap k is a pair tap, two input channels at one window
 * position (or, for a lone last channel, two columns of one window row: conv_direct.c's
 * odd_rows); each step adds both halves' products to the fp32 sum, as vdpbf16ps
 * does (the portable tile: the high product, then the low one). xs, off and
 * the other fields count words; y, bias and res stay fp32.
 *
 * Two rows (`rs`): where an output row fills at most half the tile (ResNet's last stage, 7
 * pixels wide, on AVX-512's 14), a tile takes two consecutive output rows of one image, so
 * that each weight vector it loads feeds 14 pixels, not 7 (Xeon, Sapphire Rapids class, 2
 * threads, resnet18 at batch 1, `profile_layers` in ABBA order, 16 runs each, medians: 3x3
 * 512 -> 512 at 7x7 0.87-0.89 of the time with one row, 3x3/2 256 -> 512 to 7x7 0.92). Only
 * tiles of direct_mr >= 8 get them (the AVX-512 ones; the AVX2 and C tiles, 6 pixels, never
 * do).
 *
 * Blocked output (`blocked`, for a consumer that reads it so: the stem's
 * max-pool, conv_algo.h's forward_blocked16): each pixel's 16 channels of a
 * block lie together, one 64-byte line, so a tile stores whole lines in
 * order, without the transpose.
 */
#ifndef RN_OPS_DIRECT_H
#define RN_OPS_DIRECT_H

#include <stddef.h>

#define RN_DIRECT_MR_MAX 14 /* output pixels per tile, at most (AVX-512's) */
#define RN_DIRECT_MR 6      /* output pixels per tile of the AVX2 and C tiles */
#define RN_DIRECT_NR 16     /* output channels per tile of the AVX2 and C tiles */
/* The AVX-512 tile asks for tap k + RN_DIRECT_PREFETCH's input lines and weights while it
 * multiplies tap k's, on windows of RN_DIRECT_PREFETCH_MIN_TAPS taps or more: there the
 * tile's weights (K x 32: 128 KB for a 1x1 on 1024 channels) come from L2 at every tile, and
 * a window's taps jump between input planes and rows, which the hardware does not foresee.
 * Xeon (Sapphire Rapids class), 2 threads, resnet50 at batch 1, `profile_layers` in ABBA
 * order, 20 runs each, medians: 3x3/2 256 -> 256 at 28x28 0.78-0.84 of the time without,
 * 1x1 1024 -> 256 at 14x14 0.89-0.95, the rest within the noise; 16 taps ahead no better
 * than 8. Not on fewer taps (the stem's 147, whose weights stay in L1: 0.97-1.06), nor in
 * the AVX2 tile, whose 12 products a tap leave no load slots to spare (the stem 1.18x
 * slower). */
#define RN_DIRECT_PREFETCH 8
#define RN_DIRECT_PREFETCH_MIN_TAPS 512

typedef struct rn_direct_tile {
    const float *x;         /* the tile's first pixel's window origin */
    const ptrdiff_t *off;   /* K tap offsets from x */
    int kc;                 /* K */
    int xs;                 /* input floats between two pixels of the tile */
    int m, n;               /* pixels (<= direct_mr) and channels (<= NR) to store */
    float *y;               /* channel j, pixel i at y[j * ldy + i] */
    ptrdiff_t ldy;
    const float *bias;      /* n of them, or NULL */
    const float *res;       /* laid out as y, or NULL */
    int relu;               /* ReLU last; NaN stays NaN, as in PyTorch */
    int wide;               /* 1: pixels m .. 7 of the row exist and are written later by the
                               same caller (a tile may store 8 pixels) */
    ptrdiff_t rs;           /* 0: the m pixels lie along one row; else two rows of m / 2 (m
                               even, 8 to 14): pixel i >= m / 2 at x + rs + (i - m / 2) * xs,
                               and y (and res) holds the two rows one after the other */
    int blocked;            /* 1: y blocked by 16 channels instead: channel 16 v + l of pixel
                               i at y[v * ldy + 16 * i + l]; n a multiple of 16, res NULL */
    const char *pf;         /* the next panel's weights: pf_lines cache lines from pf to ask */
    int pf_lines;           /* for, to L2; at most kc (rn_direct_prefetch_lines), 0: none */
} rn_direct_tile;

/* The lines of t->pf asked for: by the AVX-512 tiles one per tap, line k at tap k, so that
 * they never queue at once (all of them before the first tap, as the other tiles ask, filled
 * the core's miss buffers: the issuing loop was 41% of the direct convolution's own samples
 * outside the tiles in a bf16 resnet18 pass at batch 1, `perf`, AMD EPYC Zen 5); the others
 * ask for all of them first, with this. */
static inline void rn_direct_prefetch_lines(const rn_direct_tile *t) {
    for (int l = 0; l < t->pf_lines; l++)
        __builtin_prefetch(t->pf + (ptrdiff_t)l * 64, 0, 2);
}

/* One tile from the packed weights w (K x NR, NR the descriptor's direct_nr). */
typedef void (*rn_direct_fn)(const float *w, const rn_direct_tile *t);

/* The portable tiles (conv_direct.c): fp32, and on bf16 pairs. */
void rn_direct_tile_portable(const float *w, const rn_direct_tile *t);
void rn_direct_tile_portable_bf16(const float *w, const rn_direct_tile *t);

/* ---------------------------------------------------------------------------
 * The direct weight gradient's strip (conv_wgrad.c), for convolutions on
 * few channels, where an im2col matrix costs more to write and read than
 * the few products per element it feeds. The caller lays the input out
 * padded (and split into its stride x stride phases), so that a window tap
 * is a fixed offset from an output pixel's position; dy is read as it is,
 * rows of wid pixels. For RN_WGRAD_CO output channels and kw (1 to
 * RN_WGRAD_KW_MAX) consecutive taps (the columns of one window row in one
 * phase), over nrows rows of each of nimg images:
 *     acc[(c * kw + j) * 8 + l] += the sum over images b < nimg, rows r < nrows and
 *         positions p < wid with p % 8 == l of
 *         dy[b * dstep + c * ldd + r * dld + p] * x[b * xstep + r * xld + p + j]
 * Each lane l is a partial sum of its own, summed in an order fixed by the
 * kernel and the shape; the caller adds the 8 lanes in a fixed order.
 * ------------------------------------------------------------------------- */
#define RN_WGRAD_CO 4
#define RN_WGRAD_KW_MAX 3

typedef struct rn_wgrad_strip {
    const float *dy;        /* the first image's first channel's first row */
    ptrdiff_t ldd, dstep, dld; /* floats between channels, between images, between rows */
    const float *x;         /* the first image's first row's first tap */
    ptrdiff_t xstep, xld;   /* floats between images, between rows */
    int wid, nrows, nimg, kw;
} rn_wgrad_strip;

typedef void (*rn_wgrad_fn)(const rn_wgrad_strip *s, float *acc);

/* The portable strip (conv_wgrad.c). */
void rn_wgrad_strip_portable(const rn_wgrad_strip *s, float *acc);

#endif
