/*
 * winograd_avx512.c - the Winograd F(4x4, 3x3) tile transforms with AVX-512, two groups of 8
 * tiles per call (winograd.h's rn_wino_in2_fn and rn_wino_out2_fn): winograd_avx2.c's
 * transforms with each 256-bit vector widened to 512 bits, the first group's tiles in the low
 * halves and the second's in the high ones. The same operations in the same order on every
 * lane as the AVX2 transforms, so the results are theirs bit for bit; each instruction does
 * twice the tiles (the transforms were a tenth of resnet18's time at batch 1 on AVX2 code).
 *
 * Compiled with AVX512_FLAGS; called only when the CPU has them.
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/kernels.h"

#define LL RN_WINO_LANES

/* t = B^T d, as winograd_avx2.c's bt. */
static inline void bt(const __m512 d[6], __m512 t[6]) {
    const __m512 c2 = _mm512_set1_ps(2.0f), c4 = _mm512_set1_ps(4.0f), c5 = _mm512_set1_ps(5.0f);
    const __m512 s12 = _mm512_add_ps(d[1], d[2]), s34 = _mm512_add_ps(d[3], d[4]);
    const __m512 m12 = _mm512_sub_ps(d[1], d[2]), m34 = _mm512_sub_ps(d[3], d[4]);
    const __m512 a = _mm512_sub_ps(d[4], d[2]), b = _mm512_sub_ps(d[3], d[1]);
    t[0] = _mm512_fnmadd_ps(c5, d[2], _mm512_fmadd_ps(c4, d[0], d[4]));
    t[1] = _mm512_fnmadd_ps(c4, s12, s34);
    t[2] = _mm512_fmsub_ps(c4, m12, m34);
    t[3] = _mm512_fmadd_ps(c2, b, a);
    t[4] = _mm512_fnmadd_ps(c2, b, a);
    t[5] = _mm512_fnmadd_ps(c5, d[3], _mm512_fmadd_ps(c4, d[1], d[5]));
}

/* o = A^T m, as winograd_avx2.c's at. */
static inline void at(const __m512 m[6], __m512 o[4]) {
    const __m512 a = _mm512_add_ps(m[1], m[2]), b = _mm512_sub_ps(m[1], m[2]);
    const __m512 c = _mm512_add_ps(m[3], m[4]), d = _mm512_sub_ps(m[3], m[4]);
    o[0] = _mm512_add_ps(_mm512_add_ps(m[0], a), c);
    o[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d, b);
    o[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), c, a);
    o[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), d, b), m[5]);
}

/* Each 256-bit half of r[0..7] (8 rows of 8) transposed, as rn_transpose8_avx2 on each. */
static inline void transpose8_halves(__m512 r[8]) {
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
    const __m512i hi = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    const __m512 t0 = _mm512_unpacklo_ps(r[0], r[1]), t1 = _mm512_unpackhi_ps(r[0], r[1]);
    const __m512 t2 = _mm512_unpacklo_ps(r[2], r[3]), t3 = _mm512_unpackhi_ps(r[2], r[3]);
    const __m512 t4 = _mm512_unpacklo_ps(r[4], r[5]), t5 = _mm512_unpackhi_ps(r[4], r[5]);
    const __m512 t6 = _mm512_unpacklo_ps(r[6], r[7]), t7 = _mm512_unpackhi_ps(r[6], r[7]);
    const __m512 u0 = _mm512_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    const __m512 u1 = _mm512_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    const __m512 u2 = _mm512_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    const __m512 u3 = _mm512_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    const __m512 u4 = _mm512_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    const __m512 u5 = _mm512_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    const __m512 u6 = _mm512_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    const __m512 u7 = _mm512_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm512_permutex2var_ps(u0, lo, u4);
    r[1] = _mm512_permutex2var_ps(u1, lo, u5);
    r[2] = _mm512_permutex2var_ps(u2, lo, u6);
    r[3] = _mm512_permutex2var_ps(u3, lo, u7);
    r[4] = _mm512_permutex2var_ps(u0, hi, u4);
    r[5] = _mm512_permutex2var_ps(u1, hi, u5);
    r[6] = _mm512_permutex2var_ps(u2, hi, u6);
    r[7] = _mm512_permutex2var_ps(u3, hi, u7);
}

/* The address of p[off], computed without forming an out-of-bounds pointer
 * in C: masked-off elements may lie outside the image and are never read. */
static inline const float *addr_at(const float *p, ptrdiff_t off) {
    return (const float *)((uintptr_t)p + (uintptr_t)(off * (ptrdiff_t)sizeof(float)));
}

/* Patch row r of lane l of in: 8 floats, masked where the patch leaves the image. */
static inline __m256 patch_row(const rn_wino_in *in, int l, int r, __m256i mask) {
    const float *row = addr_at(in->x, in->origin[l] + r * in->ld);
    if (r < in->r0[l] || r >= in->r1[l])
        return _mm256_setzero_ps();
    if (in->wide[l])
        return _mm256_loadu_ps(row); /* columns 6, 7 are read and not used */
    return _mm256_maskload_ps(row, mask);
}

void rn_wino_in2_avx512(const rn_wino_in in[2], float *dst, ptrdiff_t stride) {
    const __m256i lane_bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i mask[2][LL];
#pragma GCC unroll 8
    for (int l = 0; l < LL; l++)
        for (int g = 0; g < 2; g++)
            mask[g][l] = _mm256_cmpeq_epi32(
                _mm256_and_si256(_mm256_set1_epi32((int)in[g].cols[l]), lane_bits), lane_bits);
    __m512 D[6][8];
#pragma GCC unroll 8
    for (int r = 0; r < 6; r++) {
#pragma GCC unroll 8
        for (int l = 0; l < LL; l++)
            D[r][l] = _mm512_insertf32x8(_mm512_castps256_ps512(patch_row(&in[0], l, r, mask[0][l])),
                                         patch_row(&in[1], l, r, mask[1][l]), 1);
        transpose8_halves(D[r]);
    }
    __m512 T[6][6];
#pragma GCC unroll 8
    for (int j = 0; j < 6; j++) {
        __m512 col[6], t[6];
#pragma GCC unroll 8
        for (int r = 0; r < 6; r++)
            col[r] = D[r][j];
        bt(col, t);
#pragma GCC unroll 8
        for (int i = 0; i < 6; i++)
            T[i][j] = t[i];
    }
#pragma GCC unroll 8
    for (int i = 0; i < 6; i++) {
        __m512 v[6];
        bt(T[i], v);
#pragma GCC unroll 8
        for (int q = 0; q < 6; q++)
            _mm512_storeu_ps(dst + (i * 6 + q) * stride, v[q]);
    }
}

/* Lane l's row of 4 (v) with the epilogue of o, as winograd_avx2.c's output transform. */
static inline void store_row(const rn_wino_out *o, int l, int r, __m128 v) {
    if (!o->y[l] || r >= o->rows[l])
        return;
    const __m128 zero = _mm_setzero_ps();
    float *y = o->y[l] + r * o->ld;
    const float *res = o->res[l] ? o->res[l] + r * o->ld : NULL;
    if (o->cols[l] == 4) {
        if (res)
            v = _mm_add_ps(v, _mm_loadu_ps(res));
        if (o->relu)
            v = _mm_max_ps(zero, v); /* NaN (2nd operand) passes, as in PyTorch */
        _mm_storeu_ps(y, v);
    } else {
        float tmp[4];
        _mm_storeu_ps(tmp, v);
        for (int c = 0; c < o->cols[l]; c++) {
            float x = tmp[c] + (res ? res[c] : 0.0f);
            if (o->relu && x < 0.0f)
                x = 0.0f;
            y[c] = x;
        }
    }
}

void rn_wino_out2_avx512(const float *src, ptrdiff_t stride, const rn_wino_out o[2]) {
    __m512 T[4][6], Y[4][4];
#pragma GCC unroll 8
    for (int j = 0; j < 6; j++) {
        __m512 m[6], t[4];
#pragma GCC unroll 8
        for (int i = 0; i < 6; i++)
            m[i] = _mm512_loadu_ps(src + (i * 6 + j) * stride);
        at(m, t);
#pragma GCC unroll 8
        for (int r = 0; r < 4; r++)
            T[r][j] = t[r];
    }
    const __m512 bias = _mm512_set1_ps(o[0].bias); /* one output channel: the same in both */
#pragma GCC unroll 8
    for (int r = 0; r < 4; r++) {
        at(T[r], Y[r]);
#pragma GCC unroll 8
        for (int c = 0; c < 4; c++)
            Y[r][c] = _mm512_add_ps(Y[r][c], bias);
    }
#pragma GCC unroll 8
    for (int r = 0; r < 4; r++) {
        /* q[i], 128-bit part p: lane 4 p + i's 4 values */
        const __m512 t0 = _mm512_unpacklo_ps(Y[r][0], Y[r][1]), t1 = _mm512_unpackhi_ps(Y[r][0], Y[r][1]);
        const __m512 t2 = _mm512_unpacklo_ps(Y[r][2], Y[r][3]), t3 = _mm512_unpackhi_ps(Y[r][2], Y[r][3]);
        const __m512 q[4] = {_mm512_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)),
                             _mm512_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2))};
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            store_row(&o[0], i, r, _mm512_extractf32x4_ps(q[i], 0));
            store_row(&o[0], 4 + i, r, _mm512_extractf32x4_ps(q[i], 1));
            store_row(&o[1], i, r, _mm512_extractf32x4_ps(q[i], 2));
            store_row(&o[1], 4 + i, r, _mm512_extractf32x4_ps(q[i], 3));
        }
    }
}
