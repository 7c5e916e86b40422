/*
 * qreq_avx512.h - what the AVX-512 int8 tiles share: the broadcast of a column's 4 input bytes
 * (VNNI's operand), and rn_requant (qconv.h) on 16 output channels at once (VNNI and AMX), the
 * same operations in the same order, so the bytes equal the oracle's. Included only by files
 * compiled for AVX-512.
 */
#ifndef RN_OPS_X86_QREQ_AVX512_H
#define RN_OPS_X86_QREQ_AVX512_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "ops/qconv.h"

/* 4 bytes of K of one column, in every 32-bit lane (vpdpbusd's unsigned operand). */
static inline __m512i rn_bcast4_avx512(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* Requantizes the 16 channels of block b (acc) into 16 bytes. */
static inline __m128i rn_requant16_avx512(const rn_qtile *t, int b, __m512i acc, const uint8_t *r) {
    const rn_qreq *rq = t->rq;
    int c0 = b * 16;
    __m512i v = _mm512_sub_epi32(acc, _mm512_loadu_si512(rq->comp + c0));
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_loadu_ps(rq->mult + c0));
    f = _mm512_add_ps(f, _mm512_loadu_ps(rq->bias + c0));
    if (r) {
        __m512i ri = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)r)),
                                      _mm512_set1_epi32(rq->r_zp));
        f = _mm512_add_ps(f, _mm512_mul_ps(_mm512_cvtepi32_ps(ri), _mm512_set1_ps(rq->r_scale)));
    }
    if (rq->relu)
        f = _mm512_max_ps(f, _mm512_setzero_ps());
    f = _mm512_mul_ps(f, _mm512_set1_ps(rq->inv_out));
    f = _mm512_max_ps(f, _mm512_set1_ps(-RN_Q_CLAMP));
    f = _mm512_min_ps(f, _mm512_set1_ps(RN_Q_CLAMP));
    __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), _mm512_set1_epi32(rq->out_zp));
    q = _mm512_max_epi32(q, _mm512_setzero_si512());
    q = _mm512_min_epi32(q, _mm512_set1_epi32(RN_Q_MAX));
    return _mm512_cvtepi32_epi8(q);
}

#endif
