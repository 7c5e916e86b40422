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
#include "ops/winograd_weights.h"

#define LL RN_WINO_LANES
#define V __m512
#define VOP(op) _mm512_##op
#include "ops/x86/winograd_x86.h"

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
    input_points(D, dst, stride);
}

void rn_wino_out2_avx512(const float *src, ptrdiff_t stride, const rn_wino_out o[2]) {
    __m512 Y[4][4]; /* one output channel: the same bias in both groups */
    output_block(src, stride, o[0].bias, Y);
#pragma GCC unroll 8
    for (int r = 0; r < 4; r++) {
        __m512 q[4]; /* lane 4 p + i in q[i]'s 128-bit part p */
        block_rows(Y[r], q);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            store_block_row(&o[0], i, r, _mm512_extractf32x4_ps(q[i], 0));
            store_block_row(&o[0], 4 + i, r, _mm512_extractf32x4_ps(q[i], 1));
            store_block_row(&o[1], i, r, _mm512_extractf32x4_ps(q[i], 2));
            store_block_row(&o[1], 4 + i, r, _mm512_extractf32x4_ps(q[i], 3));
        }
    }
}

/* rn_wino_sums_fn, 16 input channels a step: rn_wino_sums_avx2's steps at twice the width (the
 * same operations on every lane, so the same results), each half of w[0..7] transposed. */
void rn_wino_sums_avx512(const float *sums, ptrdiff_t plane, int n, float *dw) {
    for (int c0 = 0; c0 < n; c0 += 2 * LL) {
        const int nl = n - c0 < 2 * LL ? n - c0 : 2 * LL;
        const __mmask16 mask = (__mmask16)((1u << nl) - 1u);
        __m512 m[36], w[9];
        for (int xi = 0; xi < 36; xi++)
            m[xi] = _mm512_maskz_loadu_ps(mask, sums + xi * plane + c0);
        sums_block(m, w);
        float ninth[2 * LL];
        _mm512_storeu_ps(ninth, w[8]);
        transpose8_halves(w); /* w[l]: channel l's values 0..7 (low half), channel 8 + l's */
        float *out = dw + (ptrdiff_t)c0 * 9; /* channel l's 9 values, l < nl: all inside dw */
        for (int l = 0; l < LL; l++) {
            if (l < nl) {
                _mm256_storeu_ps(out + l * 9, _mm512_castps512_ps256(w[l]));
                out[l * 9 + 8] = ninth[l];
            }
            if (LL + l < nl) {
                _mm256_storeu_ps(out + (LL + l) * 9, _mm512_extractf32x8_ps(w[l], 1));
                out[(LL + l) * 9 + 8] = ninth[LL + l];
            }
        }
    }
}

/* The weight transforms (winograd.h rn_wino_weights_fn): winograd_weights.h compiled for this
 * file's instruction set, the same bits as the portable build. */
void rn_wino_weights_avx512(const float *const g[RN_WINO_LANES], float *dst, ptrdiff_t ld) {
    rn_wino_weights4(g, dst, ld);
}

void rn_wino2_weights_avx512(const float *const g[RN_WINO_LANES], float *dst, ptrdiff_t ld) {
    rn_wino_weights2(g, dst, ld);
}
