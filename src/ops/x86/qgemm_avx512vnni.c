/*
 * qgemm_avx512vnni.c - the int8 GEMM tile on AVX-512 VNNI (qconv.h): up to
 * 32 output channels (two vectors of 16 int32 lanes) x up to 12 columns.
 *
 * Per 4 bytes of K: the column's 4 input bytes are broadcast to every lane
 * and vpdpbusd adds their products with each channel's 4 weights into the
 * channel's int32 lane. The epilogue is rn_requant's, vectorised operation
 * for operation, so the bytes equal the oracle's.
 */
#include <immintrin.h>
#include <string.h>

#include "ops/qconv.h"
#include "ops/x86/qreq_avx512.h"

#define NJ_MAX 12

static inline __attribute__((always_inline)) void tile(const rn_qtile *t, const int nj,
                                                       const int ncb) {
    __m512i acc[NJ_MAX][2];
#pragma GCC unroll 12
    for (int j = 0; j < nj; j++)
        acc[j][0] = acc[j][1] = _mm512_setzero_si512();
    for (int g = 0; g < t->groups; g++) {
        const uint8_t *a = t->a + (long)g * t->a_gs;
        const int8_t *w = t->w + (long)g * 256;
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            __m512i w0 = _mm512_loadu_si512(w + q * 64);
            __m512i w1 = ncb > 1 ? _mm512_loadu_si512(w + t->w_bs + q * 64) : w0;
#pragma GCC unroll 12
            for (int j = 0; j < nj; j++) {
                __m512i x = rn_bcast4_avx512(a + j * t->a_js + q * 4);
                acc[j][0] = _mm512_dpbusd_epi32(acc[j][0], x, w0);
                if (ncb > 1)
                    acc[j][1] = _mm512_dpbusd_epi32(acc[j][1], x, w1);
            }
        }
    }
    for (int j = 0; j < nj; j++)
        for (int b = 0; b < ncb; b++) {
            const uint8_t *r = t->r ? t->r + b * t->y_bs + j * 16 : NULL;
            _mm_storeu_si128((__m128i *)(t->y + b * t->y_bs + j * 16),
                             rn_requant16_avx512(t, b, acc[j][b], r));
        }
}

#define CASE(n)                                                                                   \
    case n:                                                                                       \
        if (t->ncb > 1)                                                                           \
            tile(t, n, 2);                                                                        \
        else                                                                                      \
            tile(t, n, 1);                                                                        \
        break;

void rn_qgemm_avx512vnni(const rn_qtile *t) {
    switch (t->nj) {
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8) CASE(9) CASE(10) CASE(11)
    default:
        if (t->ncb > 1)
            tile(t, NJ_MAX, 2);
        else
            tile(t, NJ_MAX, 1);
        break;
    }
}
