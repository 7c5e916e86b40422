/*
 * conv_direct_avx512.c - the direct convolution's tile (contract in
 * ops/direct.h) with AVX-512: up to 14 pixels x 32 channels in 28 zmm
 * accumulators; per tap, two vectors of 16 weights, and per pixel one
 * broadcast and two fused multiply-adds (16 loads for 28 FMAs; the AVX2 tile,
 * 6 pixels x 2 ymm, leaves half of a 512-bit FMA unit idle). A 7-wide map
 * (ResNet's last stage) still has 14 sums in flight. The tile is transposed
 * in registers (16 x 16 per 16 channels) for the store, where a channel's
 * pixels lie together.
 *
 * Compiled with -mavx512f (and the rest of AVX512_FLAGS); called only when
 * the CPU has them.
 */
#include <immintrin.h>
#include <stddef.h>

#include "ops/kernels.h"

#define NR RN_DIRECT_AVX512_NR /* output channels per tile: the descriptor's direct_nr */

/* In place: r[i] (16 rows of 16) -> its transpose. */
static inline __attribute__((always_inline)) void transpose16(__m512 r[16]) {
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) { /* per 128-bit lane: a0 b0 a1 b1, a2 b2 a3 b3 */
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) { /* r[4g + q], lane L: rows 4g .. 4g+3 of column 4L + q */
        const __m512d lo0 = _mm512_castps_pd(t[4 * g]), hi0 = _mm512_castps_pd(t[4 * g + 1]);
        const __m512d lo1 = _mm512_castps_pd(t[4 * g + 2]), hi1 = _mm512_castps_pd(t[4 * g + 3]);
        r[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(lo0, lo1));
        r[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(lo0, lo1));
        r[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(hi0, hi1));
        r[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(hi0, hi1));
    }
    __m512 o[16];
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) { /* column 4L + q: lane L of r[q], r[4 + q], r[8 + q], r[12 + q] */
        const __m512 x0 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x88);
        const __m512 x1 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xDD);
        const __m512 y0 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x88);
        const __m512 y1 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xDD);
        o[q] = _mm512_shuffle_f32x4(x0, y0, 0x88);
        o[8 + q] = _mm512_shuffle_f32x4(x0, y0, 0xDD);
        o[4 + q] = _mm512_shuffle_f32x4(x1, y1, 0x88);
        o[12 + q] = _mm512_shuffle_f32x4(x1, y1, 0xDD);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        r[i] = o[i];
}

/* M pixels; XS their stride when known at compile time (1, 2), else 0: t->xs; V vectors of 16
 * channels (1 where the tile has at most 16: a narrow layer's, the other half being zeros). */
static inline __attribute__((always_inline)) void tile(const int M, const int XS, const int V,
                                                       const float *w, const rn_direct_tile *t) {
    __m512 acc[2][16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        acc[0][i] = acc[1][i] = _mm512_setzero_ps();
    const float *x = t->x;
    const ptrdiff_t xs = XS ? XS : t->xs;
    const int kc = t->kc;
#pragma GCC unroll 2
    for (int k = 0; k < kc; k++) {
        const float *xk = x + t->off[k];
        const __m512 b0 = _mm512_loadu_ps(w + (ptrdiff_t)k * NR);
        const __m512 b1 = V > 1 ? _mm512_loadu_ps(w + (ptrdiff_t)k * NR + 16) : b0;
#pragma GCC unroll 14
        for (int i = 0; i < M; i++) {
            const __m512 a = _mm512_set1_ps(xk[i * xs]);
            acc[0][i] = _mm512_fmadd_ps(a, b0, acc[0][i]);
            if (V > 1)
                acc[1][i] = _mm512_fmadd_ps(a, b1, acc[1][i]);
        }
    }

    /* rows: pixels x 16 channels -> rows: channels x 16 pixels (the first M valid) */
    const __mmask16 mask = (__mmask16)((1u << M) - 1);
    const __m512 zero = _mm512_setzero_ps();
    for (int v = 0; v < 2 && 16 * v < t->n; v++) {
        transpose16(acc[v]);
        const int n = t->n - 16 * v < 16 ? t->n - 16 * v : 16;
        for (int j = 0; j < n; j++) {
            const int ch = 16 * v + j;
            const ptrdiff_t at = (ptrdiff_t)ch * t->ldy;
            __m512 o = acc[v][j];
            if (t->bias)
                o = _mm512_add_ps(o, _mm512_set1_ps(t->bias[ch]));
            if (t->res)
                o = _mm512_add_ps(o, _mm512_maskz_loadu_ps(mask, t->res + at));
            if (t->relu)
                o = _mm512_max_ps(zero, o); /* NaN (2nd operand) passes, as in PyTorch */
            _mm512_mask_storeu_ps(t->y + at, mask, o);
        }
    }
}

#define BY_WIDTH(M, XS) (t->n > 16 ? tile(M, XS, 2, w, t) : tile(M, XS, 1, w, t))
#define BY_STRIDE(M)                                                                               \
    (t->xs == 2 ? BY_WIDTH(M, 2) : t->xs == 1 ? BY_WIDTH(M, 1) : BY_WIDTH(M, 0))

void rn_direct_tile_avx512(const float *w, const rn_direct_tile *t) {
    switch (t->m) {
    case 14: BY_STRIDE(14); break;
    case 13: BY_STRIDE(13); break;
    case 12: BY_STRIDE(12); break;
    case 11: BY_STRIDE(11); break;
    case 10: BY_STRIDE(10); break;
    case 9: BY_STRIDE(9); break;
    case 8: BY_STRIDE(8); break;
    case 7: BY_STRIDE(7); break;
    case 6: BY_STRIDE(6); break;
    case 5: BY_STRIDE(5); break;
    case 4: BY_STRIDE(4); break;
    case 3: BY_STRIDE(3); break;
    case 2: BY_STRIDE(2); break;
    default: BY_STRIDE(1); break;
    }
}
