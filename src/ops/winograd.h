/*
 * winograd.h - the Winograd F(4x4, 3x3) tile transforms, the contract
 * between the convolution algorithm (conv_winograd.c) and its per-ISA
 * transforms (portable in winograd_portable.c, AVX2 in x86/winograd_avx2.c).
 *
 * A 3x3 stride-1 convolution computes each 4x4 block of output ("tile")
 * from a 6x6 block of input: Y = A^T [(G g G^T) . (B^T d B)] A, 36
 * multiplications per input channel instead of 144 (Lavin and Gray 2015,
 * interpolation points 0, +-1, +-2, infinity). With the transforms below,
 * xi = 6 * i + j indexes the 6x6 transformed domain.
 *
 *   B^T = [ 4  0 -5  0  1  0 ]     G = [  1/4     0     0  ]     A^T = [ 1  1  1  1  1  0 ]
 *         [ 0 -4 -4  1  1  0 ]         [ -1/6  -1/6  -1/6 ]           [ 0  1 -1  2 -2  0 ]
 *         [ 0  4 -4 -1  1  0 ]         [ -1/6   1/6  -1/6 ]           [ 0  1  1  4  4  0 ]
 *         [ 0 -2 -1  2  1  0 ]         [ 1/24  1/12   1/6 ]           [ 0  1 -1  8 -8  1 ]
 *         [ 0  2 -1 -2  1  0 ]         [ 1/24 -1/12   1/6 ]
 *         [ 0  4  0 -5  0  1 ]         [    0     0     1  ]
 *
 * The transforms work on 8 tiles at once ("lanes"), so that SIMD versions
 * vectorise across tiles.
 */
#ifndef RN_OPS_WINOGRAD_H
#define RN_OPS_WINOGRAD_H

#include <stddef.h>
#include <stdint.h>

#define RN_WINO_LANES 8     /* tiles per transform call */

/* Where the 6x6 input patch of each lane is: element (r, q) is
 * x[origin + r * ld + q] when r0 <= r < r1 and bit q of cols is set, and
 * zero (the convolution's padding) otherwise; an origin may lie outside the
 * image (the addresses of elements outside are computed but never read).
 * A lane whose r0 >= r1 is all zero. */
typedef struct rn_wino_in {
    const float *x;                      /* the channel's plane */
    ptrdiff_t ld;                        /* row stride */
    ptrdiff_t origin[RN_WINO_LANES];
    int r0[RN_WINO_LANES], r1[RN_WINO_LANES];
    unsigned cols[RN_WINO_LANES];        /* bits 0..5 */
    unsigned char wide[RN_WINO_LANES];   /* 1: all 6 columns inside and 2 more
                                            readable after them in the row */
} rn_wino_in;

/* Input: dst[xi * stride + l] = (B^T d_l B)[xi], xi < 36, lane l < 8. */
typedef void (*rn_wino_in_fn)(const rn_wino_in *in, float *dst, ptrdiff_t stride);

/* Where the output tiles of the 8 lanes go, and what the epilogue adds. */
typedef struct rn_wino_out {
    float *y[RN_WINO_LANES];             /* top-left of lane l's 4x4 output block, or NULL */
    const float *res[RN_WINO_LANES];     /* the residual at the same place, or NULL */
    ptrdiff_t ld;                        /* row stride of y and the residual */
    int rows[RN_WINO_LANES], cols[RN_WINO_LANES];  /* valid part of each block (<= 4) */
    float bias;
    int relu;
} rn_wino_out;

/* Output: lane l's tile Y = A^T m A from m[xi] = src[xi * stride + l],
 * then + bias, + residual, ReLU (NaN kept), stored (its valid part). */
typedef void (*rn_wino_out_fn)(const float *src, ptrdiff_t stride, const rn_wino_out *o);

/* The Winograd weight gradient's transform of dy (conv_wgrad_winograd.c), F(4x4), for 8 lanes
 * whose 4x4 blocks all lie inside the map, block l's element (r, c) at dy[at[l] + r * ld + c]:
 * dst[xi * stride + l] = (A dY_l A^T)[xi], A the transpose of the output transform's A^T. */
typedef void (*rn_wino_dy_fn)(const float *dy, const ptrdiff_t at[RN_WINO_LANES], ptrdiff_t ld,
                              float *dst, ptrdiff_t stride);

/* The Winograd weight gradient's last step (conv_wgrad_winograd.c), F(4x4): for n input channels
 * c of one output channel, dw[c * 9 + 3 i + j] = (G^T M_c G)[i][j], where M_c's 36 points are
 * sums[xi * plane + c]. */
typedef void (*rn_wino_sums_fn)(const float *sums, ptrdiff_t plane, int n, float *dw);

/* The weight transform (preparation, conv_winograd.c): for the 3x3 kernels of 8 lanes, lane l's
 * 9 taps in row order at g[l] (a lane without a kernel points at 9 zeros),
 * dst[xi * ld + l] = (G g_l G^T)[xi] rounded to float, for all 8 lanes and every point xi (36,
 * F(2x2)'s 16). Computed in double, each lane's operations in one order on every ISA
 * (winograd_weights.h): the same bits from every descriptor. */
typedef void (*rn_wino_weights_fn)(const float *const g[RN_WINO_LANES], float *dst, ptrdiff_t ld);

/* Two groups of 8 lanes at once (in[0], o[0]: lanes 0-7; in[1], o[1]: 8-15), the second
 * group's columns of dst and src right after the first's (its lane l at dst[xi * stride + 8 +
 * l]); both o[] of one output channel (the same bias and relu). The same results as two calls
 * of the 8-lane transforms, bit for bit. Optional in a descriptor (AVX-512's). */
typedef void (*rn_wino_in2_fn)(const rn_wino_in in[2], float *dst, ptrdiff_t stride);
typedef void (*rn_wino_out2_fn)(const float *src, ptrdiff_t stride, const rn_wino_out o[2]);

/* Where the patches of the 8 output tiles [t, t + 8) (those below `end`; the others all
 * zero) lie for a 3x3 stride-1 convolution of an (h, w) map padded by `pad`, cut into
 * m x m tiles, th x tw per image, images one after the other in the channel's plane; which
 * part of each patch ((m + 2) x (m + 2)) is inside the image (conv_winograd.c). */
void rn_wino_patch_lanes(int h, int w, int pad, int m, int th, int tw, long t, long end,
                         rn_wino_in *in);

/* The part [*lo, *hi) of a channel's plane (floats from its start, at most `plane`) that the
 * patches of the n groups in[] read; *lo >= *hi where they read nothing (conv_winograd.c). */
void rn_wino_patch_span(const rn_wino_in *in, int n, ptrdiff_t plane, ptrdiff_t *lo,
                        ptrdiff_t *hi);

/* Asks for the cache lines of x[lo, hi) ahead, to be read (write 0) or written (1): the
 * transforms read and write a plane's part for each channel in turn, jumping from plane to
 * plane, which the hardware does not foresee (conv_winograd.c PREFETCH_CHANNELS). */
static inline void rn_prefetch_span(const float *x, ptrdiff_t lo, ptrdiff_t hi, int write) {
    const uintptr_t end = (uintptr_t)(x + hi);
    for (uintptr_t a = (uintptr_t)(x + lo) & ~(uintptr_t)63; a < end; a += 64) {
        if (write)
            __builtin_prefetch((const void *)a, 1, 3);
        else
            __builtin_prefetch((const void *)a, 0, 3);
    }
}

/* Where output tile t of an (ho, wo) map cut into m x m tiles, th x tw per image (images one
 * after the other in the channel's plane), starts in that plane; its rows and columns inside
 * the map in *rows, *cols (at most m). */
static inline ptrdiff_t rn_wino_tile_at(int ho, int wo, int m, int th, int tw, long t, int *rows,
                                        int *cols) {
    const long per_image = (long)th * tw, b = t / per_image;
    const int ty = (int)(t % per_image / tw), tx = (int)(t % tw);
    *rows = ho - m * ty < m ? ho - m * ty : m;
    *cols = wo - m * tx < m ? wo - m * tx : m;
    return ((ptrdiff_t)b * ho + m * ty) * wo + m * tx;
}

/* The part [*lo, *hi) of an output plane that the blocks of the n > 0 tiles [t, t + n) cover
 * (rn_wino_tile_at's map): from the first block's start to the last one's end, tiles being in
 * the order of the plane. */
static inline void rn_wino_tiles_span(int ho, int wo, int m, int th, int tw, long t, long n,
                                      ptrdiff_t *lo, ptrdiff_t *hi) {
    int rows, cols;
    *lo = rn_wino_tile_at(ho, wo, m, th, tw, t, &rows, &cols);
    *hi = rn_wino_tile_at(ho, wo, m, th, tw, t + n - 1, &rows, &cols) +
          (ptrdiff_t)(rows - 1) * wo + cols;
}

/* The distance between two points' planes of a transformed block (`floats` of data each):
 * rounded up to whole cache lines, then an odd number of them. The transforms touch all 36
 * planes at once; at a multiple of 4 KiB apart (C x Tb floats is one, for every ResNet shape)
 * they would all fall in one set of the L1 cache, and the transforms ran at a quarter of
 * their speed. */
static inline size_t rn_wino_plane_floats(size_t floats) {
    const size_t line = 64 / sizeof(float);
    const size_t lines = (floats + line - 1) / line;
    return (lines | 1) * line;
}

/* The portable transforms (winograd_portable.c). */
void rn_wino_in_portable(const rn_wino_in *in, float *dst, ptrdiff_t stride);
void rn_wino_out_portable(const float *src, ptrdiff_t stride, const rn_wino_out *o);

/* F(2x2, 3x3) with the same contracts on 4x4 patches (bits 0..3 of cols,
 * rows < 4) and 2x2 output blocks: 16 points xi = 4 * i + j, with
 *   B^T = [ 1  0 -1  0 ]    G = [  1    0    0  ]    A^T = [ 1  1  1  0 ]
 *         [ 0  1  1  0 ]        [ 1/2  1/2  1/2 ]          [ 0  1 -1 -1 ]
 *         [ 0 -1  1  0 ]        [ 1/2 -1/2  1/2 ]
 *         [ 0  1  0 -1 ]        [  0    0    1  ]
 * (AVX2 versions in x86/winograd_avx2.c, the same additions in the same order.) */
void rn_wino2_in_portable(const rn_wino_in *in, float *dst, ptrdiff_t stride);
void rn_wino2_out_portable(const float *src, ptrdiff_t stride, const rn_wino_out *o);

/* The weight transforms of F(4x4) and F(2x2) (rn_wino_weights_fn), portable builds of
 * winograd_weights.h (AVX2 and AVX-512 builds in x86/winograd_avx2.c, winograd_avx512.c). */
void rn_wino_weights_portable(const float *const g[RN_WINO_LANES], float *dst, ptrdiff_t ld);
void rn_wino2_weights_portable(const float *const g[RN_WINO_LANES], float *dst, ptrdiff_t ld);

#endif
