/*
 * winograd_avx2.c - the Winograd F(4x4, 3x3) tile transforms with AVX2
 * (contract and matrices in ops/winograd.h), 8 tiles per call, one tile per
 * vector lane.
 *
 * F(4x4) input: each lane's 6 patch rows are loaded as 8-float rows and turned
 * into lanes by 8x8 transposes; B^T d B then runs on whole vectors.
 * Output: A^T m A on whole vectors, then 4x8 transposes give each tile its
 * rows of 4 values for the epilogue and the store.
 *
 * Compiled with -mavx2 -mfma; the transforms share partial sums and use
 * fused multiply-adds, so their last bits differ from the portable ones'.
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/kernels.h"
#include "ops/winograd_weights.h"
#include "ops/x86/avx2_util.h"

#define LL RN_WINO_LANES
#define V __m256
#define VOP(op) _mm256_##op
#include "ops/x86/winograd_x86.h"

void rn_wino_in_avx2(const rn_wino_in *in, float *dst, ptrdiff_t stride) {
    /* D[r][j]: lanes = tiles, element j of patch row r; a lane's row is one
     * load of 8, masked where the patch leaves the image */
    const __m256i lane_bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i mask[LL];
#pragma GCC unroll 8
    for (int l = 0; l < LL; l++)
        mask[l] = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)in->cols[l]), lane_bits),
                                     lane_bits);
    __m256 D[6][8];
#pragma GCC unroll 8
    for (int r = 0; r < 6; r++) {
#pragma GCC unroll 8
        for (int l = 0; l < LL; l++) {
            const float *row = addr_at(in->x, in->origin[l] + r * in->ld);
            if (r < in->r0[l] || r >= in->r1[l])
                D[r][l] = _mm256_setzero_ps();
            else if (in->wide[l])
                D[r][l] = _mm256_loadu_ps(row); /* columns 6, 7 are read and not used */
            else
                D[r][l] = _mm256_maskload_ps(row, mask[l]);
        }
        rn_transpose8_avx2(D[r]);
    }
    input_points(D, dst, stride);
}

void rn_wino_out_avx2(const float *src, ptrdiff_t stride, const rn_wino_out *o) {
    /* Y[r][c], lanes = tiles */
    __m256 Y[4][4];
    output_block(src, stride, o->bias, Y);
#pragma GCC unroll 8
    for (int r = 0; r < 4; r++) {
        __m256 q[4]; /* lane i in q[i]'s low half, lane i + 4 in its high half */
        block_rows(Y[r], q);
#pragma GCC unroll 8
        for (int l = 0; l < LL; l++)
            store_block_row(o, l, r,
                            l < 4 ? _mm256_castps256_ps128(q[l]) : _mm256_extractf128_ps(q[l - 4], 1));
    }
}

/* ---------------------------------------------------------------------------
 * F(2x2, 3x3): 4x4 patches, 2x2 output blocks (matrices in ops/winograd.h).
 * The same additions in the same order as the portable transforms (no
 * multiplications), so the results are theirs bit for bit.
 * ------------------------------------------------------------------------- */

/* The 4 rows Q[0..3] (lanes l in the low halves, l + 4 in the high ones,
 * 4 values each) -> R[c]: value c of every lane. */
static inline void transpose_4x8(const __m256 Q[4], __m256 R[4]) {
    const __m256 t0 = _mm256_unpacklo_ps(Q[0], Q[1]), t1 = _mm256_unpackhi_ps(Q[0], Q[1]);
    const __m256 t2 = _mm256_unpacklo_ps(Q[2], Q[3]), t3 = _mm256_unpackhi_ps(Q[2], Q[3]);
    R[0] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    R[1] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    R[2] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    R[3] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
}

void rn_wino2_in_avx2(const rn_wino_in *in, float *dst, ptrdiff_t stride) {
    const __m128i lane_bits = _mm_setr_epi32(1, 2, 4, 8);
    __m128i mask[LL];
#pragma GCC unroll 8
    for (int l = 0; l < LL; l++)
        mask[l] = _mm_cmpeq_epi32(_mm_and_si128(_mm_set1_epi32((int)in->cols[l]), lane_bits), lane_bits);
    /* D[r][c]: element (r, c) of every lane's patch */
    __m256 D[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        __m128 p[LL];
#pragma GCC unroll 8
        for (int l = 0; l < LL; l++) {
            const float *row = addr_at(in->x, in->origin[l] + r * in->ld);
            if (r < in->r0[l] || r >= in->r1[l])
                p[l] = _mm_setzero_ps();
            else if ((in->cols[l] & 0xF) == 0xF)
                p[l] = _mm_loadu_ps(row);
            else
                p[l] = _mm_maskload_ps(row, mask[l]);
        }
        __m256 q[4];
#pragma GCC unroll 4
        for (int l = 0; l < 4; l++)
            q[l] = _mm256_insertf128_ps(_mm256_castps128_ps256(p[l]), p[l + 4], 1);
        transpose_4x8(q, D[r]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        /* row i of B^T d, then B^T (row i) along the columns */
        __m256 t[4];
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++)
            t[c] = i == 0   ? _mm256_sub_ps(D[0][c], D[2][c])
                   : i == 1 ? _mm256_add_ps(D[1][c], D[2][c])
                   : i == 2 ? _mm256_sub_ps(D[2][c], D[1][c])
                            : _mm256_sub_ps(D[1][c], D[3][c]);
        _mm256_storeu_ps(dst + (i * 4 + 0) * stride, _mm256_sub_ps(t[0], t[2]));
        _mm256_storeu_ps(dst + (i * 4 + 1) * stride, _mm256_add_ps(t[1], t[2]));
        _mm256_storeu_ps(dst + (i * 4 + 2) * stride, _mm256_sub_ps(t[2], t[1]));
        _mm256_storeu_ps(dst + (i * 4 + 3) * stride, _mm256_sub_ps(t[1], t[3]));
    }
}

void rn_wino2_out_avx2(const float *src, ptrdiff_t stride, const rn_wino_out *o) {
    /* T = A^T m (2 x 4), then Y = T A (2 x 2), lanes = tiles */
    __m256 T[2][4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        const __m256 m0 = _mm256_loadu_ps(src + (0 * 4 + j) * stride);
        const __m256 m1 = _mm256_loadu_ps(src + (1 * 4 + j) * stride);
        const __m256 m2 = _mm256_loadu_ps(src + (2 * 4 + j) * stride);
        const __m256 m3 = _mm256_loadu_ps(src + (3 * 4 + j) * stride);
        T[0][j] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        T[1][j] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
    }
    const __m256 bias = _mm256_set1_ps(o->bias);
    float y[2][2][LL]; /* [row][column][lane] */
#pragma GCC unroll 2
    for (int r = 0; r < 2; r++) {
        const __m256 y0 = _mm256_add_ps(_mm256_add_ps(T[r][0], T[r][1]), T[r][2]);
        const __m256 y1 = _mm256_sub_ps(_mm256_sub_ps(T[r][1], T[r][2]), T[r][3]);
        _mm256_storeu_ps(y[r][0], _mm256_add_ps(y0, bias));
        _mm256_storeu_ps(y[r][1], _mm256_add_ps(y1, bias));
    }
    for (int l = 0; l < LL; l++) {
        if (!o->y[l])
            continue;
        for (int r = 0; r < o->rows[l]; r++)
            for (int c = 0; c < o->cols[l]; c++) {
                float v = y[r][c][l];
                if (o->res[l])
                    v += o->res[l][r * o->ld + c];
                if (o->relu && v < 0.0f) /* NaN stays NaN, as in PyTorch */
                    v = 0.0f;
                o->y[l][r * o->ld + c] = v;
            }
    }
}

/* rn_wino_dy_fn: per row of the blocks, lane l's 4 values and lane 4 + l's in one vector (its
 * two 128-bit halves), then 4 x 4 transposes in each half (block_rows: a transpose is its own
 * inverse) give D[r][c] over the lanes; A dY A^T on whole vectors (the element-by-element gather
 * and two SSE halves of the portable transform: 4.0 ms a thread of resnet18's 64 -> 64 weight
 * gradient at 56x56, batch 16). */
void rn_wino_dy_avx2(const float *dy, const ptrdiff_t at[LL], ptrdiff_t ld, float *dst,
                     ptrdiff_t stride) {
    __m256 D[4][4];
    for (int r = 0; r < 4; r++) {
        __m256 q[4];
        for (int l = 0; l < 4; l++)
            q[l] = _mm256_loadu2_m128(dy + at[4 + l] + r * ld, dy + at[l] + r * ld);
        block_rows(q, D[r]);
    }
    dy_points(D, dst, stride);
}

/* rn_wino_sums_fn, 8 input channels a step: M's 36 points loaded a vector each (masked past n),
 * G^T M G on whole vectors, then w[0..7] transposed so that each channel's first 8 values of dw
 * go out in one store, its ninth alone (the 9 values of consecutive channels are contiguous). */
void rn_wino_sums_avx2(const float *sums, ptrdiff_t plane, int n, float *dw) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int c0 = 0; c0 < n; c0 += LL) {
        const int nl = n - c0 < LL ? n - c0 : LL;
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(nl), lane);
        __m256 m[36], w[9];
        for (int xi = 0; xi < 36; xi++)
            m[xi] = nl == LL ? _mm256_loadu_ps(sums + xi * plane + c0)
                             : _mm256_maskload_ps(sums + xi * plane + c0, mask);
        sums_block(m, w);
        float ninth[LL];
        _mm256_storeu_ps(ninth, w[8]);
        rn_transpose8_avx2(w); /* w[l]: channel l's values 0..7 */
        float *out = dw + (ptrdiff_t)c0 * 9; /* channel l's 9 values, l < nl: all inside dw */
        for (int l = 0; l < nl; l++) {
            _mm256_storeu_ps(out + l * 9, w[l]);
            out[l * 9 + 8] = ninth[l];
        }
    }
}

/* The weight transforms (winograd.h rn_wino_weights_fn): winograd_weights.h compiled for this
 * file's instruction set, the same bits as the portable build. */
void rn_wino_weights_avx2(const float *const g[RN_WINO_LANES], float *dst, ptrdiff_t ld) {
    rn_wino_weights4(g, dst, ld);
}

void rn_wino2_weights_avx2(const float *const g[RN_WINO_LANES], float *dst, ptrdiff_t ld) {
    rn_wino_weights2(g, dst, ld);
}
