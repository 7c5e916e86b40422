/*
 * direct_store_avx512.h - the store of an AVX-512 direct convolution tile (direct.h): the
 * accumulators, one vector of 16 channels per pixel, transposed in registers (16 x 16 per 16
 * channels) so that a channel's pixels lie together, then bias, residual, ReLU (or, blocked by
 * 16 channels, each pixel's vector stored as it is: direct.h). Shared by the
 * fp32 and bf16 tiles; included only by files compiled for AVX-512.
 */
#ifndef RN_OPS_X86_DIRECT_STORE_AVX512_H
#define RN_OPS_X86_DIRECT_STORE_AVX512_H

#include <immintrin.h>
#include <stddef.h>

#include "ops/direct.h"

/* In place: r[i] (16 rows of 16) -> its transpose. */
static inline __attribute__((always_inline)) void rn_transpose16_avx512(__m512 r[16]) {
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

/* Stores the M pixels (M <= 16) x t->n channels (t->n <= 32) of acc[v][i] (pixel i, channels
 * 16 v .. 16 v + 15) with the epilogue. */
static inline __attribute__((always_inline)) void
rn_direct_store_avx512(const int M, __m512 acc[2][16], const rn_direct_tile *t) {
    if (t->blocked) { /* pixel i's 16 channels of block v: one line, no transpose */
        const __m512 zero = _mm512_setzero_ps();
        for (int v = 0; v < 2 && 16 * v < t->n; v++) {
            const __m512 b = t->bias ? _mm512_loadu_ps(t->bias + 16 * v) : zero;
            float *yv = t->y + (ptrdiff_t)v * t->ldy;
#pragma GCC unroll 16
            for (int i = 0; i < M; i++) {
                __m512 o = _mm512_add_ps(acc[v][i], b);
                if (t->relu)
                    o = _mm512_max_ps(zero, o); /* NaN (2nd operand) passes, as in PyTorch */
                _mm512_storeu_ps(yv + 16 * i, o);
            }
        }
        return;
    }
    /* rows: pixels x 16 channels -> rows: channels x 16 pixels (the first M valid) */
    const __mmask16 mask = (__mmask16)((1u << M) - 1);
    const __m512 zero = _mm512_setzero_ps();
    for (int v = 0; v < 2 && 16 * v < t->n; v++) {
        rn_transpose16_avx512(acc[v]);
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

/* The body of an AVX-512 tile function: the including file's tile(M, XS, V, TWO, w, t)
 * instance for t's pixel count M (1 .. 14), its stride XS (1, 2, or 0: any), its width V (one
 * vector of 16 channels, or two) and its rows (TWO: two rows of M / 2, M even from 8, direct.h). */
#define RN_DIRECT_BY_WIDTH(M, XS, TWO)                                                            \
    (t->n > 16 ? tile(M, XS, 2, TWO, w, t) : tile(M, XS, 1, TWO, w, t))
#define RN_DIRECT_BY_STRIDE(M, TWO)                                                               \
    (t->xs == 2 ? RN_DIRECT_BY_WIDTH(M, 2, TWO)                                                   \
                : t->xs == 1 ? RN_DIRECT_BY_WIDTH(M, 1, TWO) : RN_DIRECT_BY_WIDTH(M, 0, TWO))
#define RN_DIRECT_DISPATCH_AVX512()                                                                \
    if (t->rs) {                                                                                   \
        switch (t->m) {                                                                            \
        case 14: RN_DIRECT_BY_STRIDE(14, 1); break;                                                \
        case 12: RN_DIRECT_BY_STRIDE(12, 1); break;                                                \
        case 10: RN_DIRECT_BY_STRIDE(10, 1); break;                                                \
        default: RN_DIRECT_BY_STRIDE(8, 1); break;                                                 \
        }                                                                                          \
        return;                                                                                    \
    }                                                                                              \
    switch (t->m) {                                                                                \
    case 14: RN_DIRECT_BY_STRIDE(14, 0); break;                                                    \
    case 13: RN_DIRECT_BY_STRIDE(13, 0); break;                                                    \
    case 12: RN_DIRECT_BY_STRIDE(12, 0); break;                                                    \
    case 11: RN_DIRECT_BY_STRIDE(11, 0); break;                                                    \
    case 10: RN_DIRECT_BY_STRIDE(10, 0); break;                                                    \
    case 9: RN_DIRECT_BY_STRIDE(9, 0); break;                                                      \
    case 8: RN_DIRECT_BY_STRIDE(8, 0); break;                                                      \
    case 7: RN_DIRECT_BY_STRIDE(7, 0); break;                                                      \
    case 6: RN_DIRECT_BY_STRIDE(6, 0); break;                                                      \
    case 5: RN_DIRECT_BY_STRIDE(5, 0); break;                                                      \
    case 4: RN_DIRECT_BY_STRIDE(4, 0); break;                                                      \
    case 3: RN_DIRECT_BY_STRIDE(3, 0); break;                                                      \
    case 2: RN_DIRECT_BY_STRIDE(2, 0); break;                                                      \
    default: RN_DIRECT_BY_STRIDE(1, 0); break;                                                     \
    }

#endif
