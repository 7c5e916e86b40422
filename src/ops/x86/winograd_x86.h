/*
 * winograd_x86.h - the Winograd F(4x4, 3x3) one-dimensional transforms on vectors (one tile a
 * lane), written once for the AVX2 and the AVX-512 transforms (winograd_avx2.c,
 * winograd_avx512.c): each file defines V, its vector type, and VOP(op), its intrinsics
 * (_mm256_##op, _mm512_##op), before including this. The same operations in the same order at
 * either width, so both widths give the same results bit for bit. Shared partial sums and fused
 * multiply-adds: the last bits may differ from the portable transforms'.
 */
#ifndef RN_OPS_X86_WINOGRAD_X86_H
#define RN_OPS_X86_WINOGRAD_X86_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

/* t = B^T d along one axis. */
static inline void bt(const V d[6], V t[6]) {
    const V c2 = VOP(set1_ps)(2.0f), c4 = VOP(set1_ps)(4.0f), c5 = VOP(set1_ps)(5.0f);
    const V s12 = VOP(add_ps)(d[1], d[2]), s34 = VOP(add_ps)(d[3], d[4]);
    const V m12 = VOP(sub_ps)(d[1], d[2]), m34 = VOP(sub_ps)(d[3], d[4]);
    const V a = VOP(sub_ps)(d[4], d[2]), b = VOP(sub_ps)(d[3], d[1]);
    t[0] = VOP(fnmadd_ps)(c5, d[2], VOP(fmadd_ps)(c4, d[0], d[4]));
    t[1] = VOP(fnmadd_ps)(c4, s12, s34);
    t[2] = VOP(fmsub_ps)(c4, m12, m34);
    t[3] = VOP(fmadd_ps)(c2, b, a);
    t[4] = VOP(fnmadd_ps)(c2, b, a);
    t[5] = VOP(fnmadd_ps)(c5, d[3], VOP(fmadd_ps)(c4, d[1], d[5]));
}

/* o = A^T m along one axis. */
static inline void at(const V m[6], V o[4]) {
    const V a = VOP(add_ps)(m[1], m[2]), b = VOP(sub_ps)(m[1], m[2]);
    const V c = VOP(add_ps)(m[3], m[4]), d = VOP(sub_ps)(m[3], m[4]);
    o[0] = VOP(add_ps)(VOP(add_ps)(m[0], a), c);
    o[1] = VOP(fmadd_ps)(VOP(set1_ps)(2.0f), d, b);
    o[2] = VOP(fmadd_ps)(VOP(set1_ps)(4.0f), c, a);
    o[3] = VOP(add_ps)(VOP(fmadd_ps)(VOP(set1_ps)(8.0f), d, b), m[5]);
}

/* The 36 points of a separable transform on every lane: f (n values -> 6) down the columns of
 * the n x n block D (element (r, c) at D[r * ld + c]), then along the rows of the result,
 * stored as dst[(i * 6 + q) * stride + lane]. f is a constant at every call, inlined. */
static inline __attribute__((always_inline)) void points_2d(const V *D, int n, int ld,
                                                            void (*f)(const V *, V *),
                                                            float *dst, ptrdiff_t stride) {
    V T[6][6]; /* T[i][c] = f of column c, point i */
#pragma GCC unroll 8
    for (int c = 0; c < n; c++) {
        V col[6], t[6];
#pragma GCC unroll 8
        for (int r = 0; r < n; r++)
            col[r] = D[r * ld + c];
        f(col, t);
#pragma GCC unroll 8
        for (int i = 0; i < 6; i++)
            T[i][c] = t[i];
    }
#pragma GCC unroll 8
    for (int i = 0; i < 6; i++) {
        V v[6];
        f(T[i], v);
#pragma GCC unroll 8
        for (int q = 0; q < 6; q++)
            VOP(storeu_ps)(dst + (i * 6 + q) * stride, v[q]);
    }
}

/* V = B^T d B from D[r][j] (element (r, j) of every lane's 6x6 patch), stored as
 * dst[(i * 6 + q) * stride + lane]. */
static inline __attribute__((always_inline)) void input_points(const V D[6][8], float *dst,
                                                               ptrdiff_t stride) {
    points_2d(&D[0][0], 6, 8, bt, dst, stride);
}

/* Y[r][c] = (A^T m A)[r][c] + bias, lanes = tiles, from m[xi] = src[xi * stride + lane]. */
static inline __attribute__((always_inline)) void output_block(const float *src, ptrdiff_t stride,
                                                               float bias, V Y[4][4]) {
    V T[4][6];
#pragma GCC unroll 8
    for (int j = 0; j < 6; j++) {
        V m[6], t[4];
#pragma GCC unroll 8
        for (int i = 0; i < 6; i++)
            m[i] = VOP(loadu_ps)(src + (i * 6 + j) * stride);
        at(m, t);
#pragma GCC unroll 8
        for (int r = 0; r < 4; r++)
            T[r][j] = t[r];
    }
    const V b = VOP(set1_ps)(bias);
#pragma GCC unroll 8
    for (int r = 0; r < 4; r++) {
        at(T[r], Y[r]);
#pragma GCC unroll 8
        for (int c = 0; c < 4; c++)
            Y[r][c] = VOP(add_ps)(Y[r][c], b);
    }
}

/* w = A d along one axis (4 values -> 6 points), A the transpose of at()'s A^T: the portable
 * transform's sums (conv_wgrad_winograd.c a4_1d) with fused multiply-adds. */
static inline void a_dy(const V d[4], V w[6]) {
    const V e = VOP(add_ps)(d[0], d[2]), o = VOP(add_ps)(d[1], d[3]);
    const V e4 = VOP(fmadd_ps)(VOP(set1_ps)(4.0f), d[2], d[0]);
    const V o4 = VOP(fmadd_ps)(VOP(set1_ps)(8.0f), d[3], VOP(add_ps)(d[1], d[1]));
    w[0] = d[0];
    w[1] = VOP(add_ps)(e, o);
    w[2] = VOP(sub_ps)(e, o);
    w[3] = VOP(add_ps)(e4, o4);
    w[4] = VOP(sub_ps)(e4, o4);
    w[5] = d[3];
}

/* W = A dY A^T from D[r][c] (element (r, c) of every lane's 4x4 block), stored as
 * dst[(a * 6 + b) * stride + lane]. */
static inline __attribute__((always_inline)) void dy_points(const V D[4][4], float *dst,
                                                            ptrdiff_t stride) {
    points_2d(&D[0][0], 4, 4, a_dy, dst, stride);
}

/* r = G^T m along one axis (6 points -> 3), G winograd.h's: the portable transform's sums
 * (conv_wgrad_winograd.c g4_1d) with fused multiply-adds. */
static inline void gt(const V m[6], V r[3]) {
    const V s12 = VOP(add_ps)(m[1], m[2]), s34 = VOP(add_ps)(m[3], m[4]);
    const V c4 = VOP(set1_ps)(1.0f / 4), c6 = VOP(set1_ps)(1.0f / 6);
    const V c12 = VOP(set1_ps)(1.0f / 12), c24 = VOP(set1_ps)(1.0f / 24);
    r[0] = VOP(fmadd_ps)(s34, c24, VOP(fnmadd_ps)(s12, c6, VOP(mul_ps)(m[0], c4)));
    r[1] = VOP(fmadd_ps)(VOP(sub_ps)(m[3], m[4]), c12, VOP(mul_ps)(VOP(sub_ps)(m[2], m[1]), c6));
    r[2] = VOP(fmadd_ps)(VOP(sub_ps)(s34, s12), c6, m[5]);
}

/* w[3 i + j] = (G^T M G)[i][j], lanes = input channels, from M's 36 points m[xi]. */
static inline __attribute__((always_inline)) void sums_block(const V m[36], V w[9]) {
    V t[6][3]; /* t[b] = G^T of column b */
#pragma GCC unroll 8
    for (int b = 0; b < 6; b++) {
        V col[6];
#pragma GCC unroll 8
        for (int q = 0; q < 6; q++)
            col[q] = m[q * 6 + b];
        gt(col, t[b]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 3; i++) {
        V row[6], r[3];
#pragma GCC unroll 8
        for (int q = 0; q < 6; q++)
            row[q] = t[q][i];
        gt(row, r);
#pragma GCC unroll 4
        for (int j = 0; j < 3; j++)
            w[i * 3 + j] = r[j];
    }
}

/* Y[0..3] (the 4 values of a block row, each a vector of lanes) -> q[i], whose 128-bit part p
 * holds lane 4 p + i's 4 values. */
static inline void block_rows(const V Y[4], V q[4]) {
    const V t0 = VOP(unpacklo_ps)(Y[0], Y[1]), t1 = VOP(unpackhi_ps)(Y[0], Y[1]);
    const V t2 = VOP(unpacklo_ps)(Y[2], Y[3]), t3 = VOP(unpackhi_ps)(Y[2], Y[3]);
    q[0] = VOP(shuffle_ps)(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    q[1] = VOP(shuffle_ps)(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    q[2] = VOP(shuffle_ps)(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    q[3] = VOP(shuffle_ps)(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
}

/* The address of p[off], computed without forming an out-of-bounds pointer
 * in C: masked-off elements may lie outside the image and are never read. */
static inline const float *addr_at(const float *p, ptrdiff_t off) {
    return (const float *)((uintptr_t)p + (uintptr_t)(off * (ptrdiff_t)sizeof(float)));
}

/* Row r of lane l's 4x4 output block (its 4 values v) with o's epilogue (residual, ReLU),
 * stored where the block lies and as far as it is valid. */
static inline void store_block_row(const rn_wino_out *o, int l, int r, __m128 v) {
    if (!o->y[l] || r >= o->rows[l])
        return;
    float *y = o->y[l] + r * o->ld;
    const float *res = o->res[l] ? o->res[l] + r * o->ld : NULL;
    if (o->cols[l] == 4) {
        if (res)
            v = _mm_add_ps(v, _mm_loadu_ps(res));
        if (o->relu)
            v = _mm_max_ps(_mm_setzero_ps(), v); /* NaN (2nd operand) passes, as in PyTorch */
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

#endif
