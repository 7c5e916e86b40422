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

/* rn_requant's per-tensor operands as vectors, loaded once per tile (the byte stores that follow
 * may alias the rn_qreq, so a compiler reloads its fields after each store otherwise). */
typedef struct rn_qreq_avx512 {
    __m512 inv_out, r_scale, lo, hi, qmax_f;
    __m512i out_zp, r_zp, qmax;
} rn_qreq_avx512;

/* The ReLU argument of rn_requant16_vec_avx512 for rq: 0 none, 1 ReLU, 2 ReLU into a zero point
 * of 0 (after a ReLU, always: rn_qparam_for_range of [0, hi]). */
static inline int rn_qreq_relu_kind(const rn_qreq *rq) {
    return !rq->relu ? 0 : rq->out_zp == 0 ? 2 : 1;
}

static inline rn_qreq_avx512 rn_qreq_load_avx512(const rn_qreq *rq) {
    return (rn_qreq_avx512){.inv_out = _mm512_set1_ps(rq->inv_out),
                            .r_scale = _mm512_set1_ps(rq->r_scale),
                            .lo = _mm512_set1_ps(-RN_Q_CLAMP),
                            .hi = _mm512_set1_ps(RN_Q_CLAMP),
                            .qmax_f = _mm512_set1_ps((float)RN_Q_MAX),
                            .out_zp = _mm512_set1_epi32(rq->out_zp),
                            .r_zp = _mm512_set1_epi32(rq->r_zp),
                            .qmax = _mm512_set1_epi32(RN_Q_MAX)};
}

/* rn_requant on 16 channels: acc with their comp, mult and bias vectors, the residual's 16 bytes
 * at r (if res), ReLU (relu, rn_qreq_relu_kind's); the same operations in the same order, but
 * for relu 2: there max(f, 0) * inv_out = max(f * inv_out, 0) (inv_out > 0; a NaN and -0 give
 * +0 either way), which makes the clamp at -RN_Q_CLAMP idle, and with the zero point 0 the
 * rounding of a value clamped to [0, RN_Q_MAX] (an integer) is the clamped rounding, so
 * multiply, max, min and round replace max, multiply, two clamps, round, add and two integer
 * clamps: the same bytes, 9 operations a vector instead of 13. */
static inline __m128i rn_requant16_vec_avx512(const rn_qreq_avx512 *k, __m512i acc, __m512i comp,
                                              __m512 mult, __m512 bias, const int res,
                                              const uint8_t *r, const int relu) {
    __m512i v = _mm512_sub_epi32(acc, comp);
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), mult);
    f = _mm512_add_ps(f, bias);
    if (res) {
        __m512i ri = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)r)),
                                      k->r_zp);
        f = _mm512_add_ps(f, _mm512_mul_ps(_mm512_cvtepi32_ps(ri), k->r_scale));
    }
    if (relu == 2) {
        f = _mm512_mul_ps(f, k->inv_out);
        f = _mm512_min_ps(_mm512_max_ps(f, _mm512_setzero_ps()), k->qmax_f);
        return _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(f));
    }
    if (relu)
        f = _mm512_max_ps(f, _mm512_setzero_ps());
    f = _mm512_mul_ps(f, k->inv_out);
    f = _mm512_max_ps(f, k->lo);
    f = _mm512_min_ps(f, k->hi);
    __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), k->out_zp);
    q = _mm512_max_epi32(q, _mm512_setzero_si512());
    q = _mm512_min_epi32(q, k->qmax);
    return _mm512_cvtepi32_epi8(q);
}

/* Requantizes the 16 channels of block b (acc) into 16 bytes. */
static inline __m128i rn_requant16_avx512(const rn_qtile *t, int b, __m512i acc, const uint8_t *r) {
    const rn_qreq *rq = t->rq;
    const rn_qreq_avx512 k = rn_qreq_load_avx512(rq);
    const int c0 = b * 16;
    return rn_requant16_vec_avx512(&k, acc, _mm512_loadu_si512(rq->comp + c0),
                                   _mm512_loadu_ps(rq->mult + c0), _mm512_loadu_ps(rq->bias + c0),
                                   r != NULL, r, rn_qreq_relu_kind(rq));
}

#endif
