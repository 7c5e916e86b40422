/*
 * qgemm_avx2.c - the int8 GEMM tile on AVX2 (qconv.h): 16 output channels
 * (two vectors of 8 int32 lanes) x up to 4 columns.
 *
 * Per 4 bytes of K: the column's 4 input bytes are broadcast to every lane,
 * vpmaddubsw multiplies them with each channel's 4 weights and adds pairs
 * (u8 <= 127 x s8: no saturation, see qconv.h), vpmaddwd by ones adds the
 * two pairs into int32. The epilogue is rn_requant's, vectorised operation
 * for operation, so the bytes equal the oracle's.
 */
#include <immintrin.h>
#include <string.h>

#include "ops/qconv.h"

static inline __m256i bcast4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Requantizes 8 channels (acc) starting at channel c0 of the tile. */
static inline __m256i requant8(const rn_qtile *t, int c0, __m256i acc, const uint8_t *r) {
    const rn_qreq *rq = t->rq;
    __m256i v = _mm256_sub_epi32(acc, _mm256_loadu_si256((const __m256i *)(rq->comp + c0)));
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(rq->mult + c0));
    f = _mm256_add_ps(f, _mm256_loadu_ps(rq->bias + c0));
    if (r) {
        __m128i rb;
        memcpy(&rb, r, 8);
        __m256i ri = _mm256_sub_epi32(_mm256_cvtepu8_epi32(rb), _mm256_set1_epi32(rq->r_zp));
        f = _mm256_add_ps(f, _mm256_mul_ps(_mm256_cvtepi32_ps(ri), _mm256_set1_ps(rq->r_scale)));
    }
    if (rq->relu)
        f = _mm256_max_ps(f, _mm256_setzero_ps());
    f = _mm256_mul_ps(f, _mm256_set1_ps(rq->inv_out));
    f = _mm256_max_ps(f, _mm256_set1_ps(-RN_Q_CLAMP));
    f = _mm256_min_ps(f, _mm256_set1_ps(RN_Q_CLAMP));
    __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(f), _mm256_set1_epi32(rq->out_zp));
    q = _mm256_max_epi32(q, _mm256_setzero_si256());
    return _mm256_min_epi32(q, _mm256_set1_epi32(RN_Q_MAX));
}

static inline __attribute__((always_inline)) void tile(const rn_qtile *t, const int nj) {
    __m256i acc[4][2];
#pragma GCC unroll 12
    for (int j = 0; j < nj; j++)
        acc[j][0] = acc[j][1] = _mm256_setzero_si256();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int g = 0; g < t->groups; g++) {
        const uint8_t *a = t->a + rn_qtile_group_at(t, g);
        const int8_t *w = t->w + (long)g * 256;
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + q * 64));
            __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + q * 64 + 32));
#pragma GCC unroll 12
            for (int j = 0; j < nj; j++) {
                __m256i x = bcast4(a + j * t->a_js + q * 4);
                acc[j][0] = _mm256_add_epi32(acc[j][0],
                                             _mm256_madd_epi16(_mm256_maddubs_epi16(x, w0), ones));
                acc[j][1] = _mm256_add_epi32(acc[j][1],
                                             _mm256_madd_epi16(_mm256_maddubs_epi16(x, w1), ones));
            }
        }
    }
    for (int j = 0; j < nj; j++) {
        const long o = rn_qtile_col_at(t, j);
        const uint8_t *r = t->r ? t->r + o : NULL;
        __m256i q0 = requant8(t, 0, acc[j][0], r);
        __m256i q1 = requant8(t, 8, acc[j][1], r ? r + 8 : NULL);
        /* int32 -> bytes, channels 0..15 in order */
        __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);
        __m128i b = _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
        _mm_storeu_si128((__m128i *)(t->y + o), b);
    }
}

void rn_qgemm_avx2(const rn_qtile *t) {
    switch (t->nj) {
    case 1: tile(t, 1); break;
    case 2: tile(t, 2); break;
    case 3: tile(t, 3); break;
    default: tile(t, 4); break;
    }
}
