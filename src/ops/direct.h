/*
 * direct.h - the direct convolution's tile, the contract between the
 * algorithm (conv_direct.c) and its per-ISA tile functions (portable in
 * conv_direct.c, AVX2 in x86/conv_direct_avx2.c).
 *
 * A tile is up to RN_DIRECT_MR output pixels along one output row by up to
 * RN_DIRECT_NR output channels, summed over the K taps of the window in
 * order (k = 0 .. K-1, one sum per output):
 *     y[j * ldy + i] = epilogue( sum_k x[off[k] + i * xs] * w[k * NR + j] )
 * for pixels i < m and channels j < n. The input is read where each tap's
 * offset says (a copy of it with the padding written out, so no tap is ever
 * out of bounds); pixel i of the row lies xs (the stride) further on. The
 * weights are packed k-major, NR per tap, zero past the channels. The input
 * values are the broadcast operand and the weights the vector one: a strided
 * or oddly shaped window costs nothing to gather, which is what a GEMM's
 * packing pays for a 3-channel 7x7/2 stem.
 */
#ifndef RN_OPS_DIRECT_H
#define RN_OPS_DIRECT_H

#include <stddef.h>

#define RN_DIRECT_MR 6      /* output pixels per tile */
#define RN_DIRECT_NR 16     /* output channels per tile */

typedef struct rn_direct_tile {
    const float *x;         /* the tile's first pixel's window origin */
    const ptrdiff_t *off;   /* K tap offsets from x */
    int kc;                 /* K */
    int xs;                 /* input floats between two pixels of the tile */
    int m, n;               /* pixels (<= MR) and channels (<= NR) to store */
    float *y;               /* channel j, pixel i at y[j * ldy + i] */
    ptrdiff_t ldy;
    const float *bias;      /* n of them, or NULL */
    const float *res;       /* laid out as y, or NULL */
    int relu;               /* ReLU last; NaN stays NaN, as in PyTorch */
    int wide;               /* 1: pixels m .. 7 of the row exist and are written later by the
                               same caller (a tile may store 8 pixels) */
} rn_direct_tile;

/* One tile from the packed weights w (K x NR). */
typedef void (*rn_direct_fn)(const float *w, const rn_direct_tile *t);

/* The portable tile (conv_direct.c). */
void rn_direct_tile_portable(const float *w, const rn_direct_tile *t);

#endif
