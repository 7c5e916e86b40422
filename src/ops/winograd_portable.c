/*
 * winograd_portable.c - the portable Winograd transforms (contracts in winograd.h): the input
 * and output tile transforms of F(4x4, 3x3) and F(2x2, 3x3) and the weight transforms, for the
 * portable descriptor; the x86 ones (x86/winograd_avx2.c, winograd_avx512.c) do the same
 * additions in the same order, eight lanes at once. The driver is conv_winograd.c.
 */
#include <stddef.h>

#include "ops/winograd.h"
#include "ops/winograd_weights.h"

#define WINO4_XI 36 /* F(4x4)'s points of the transformed domain */

/* t = B^T d along one axis: d[0..5] at stride sd -> t[0..5] at stride st. */
static inline void bt_1d(const float *d, int sd, float *t, int st) {
    const float d0 = d[0], d1 = d[sd], d2 = d[2 * sd], d3 = d[3 * sd], d4 = d[4 * sd],
                d5 = d[5 * sd];
    t[0] = 4.0f * d0 - 5.0f * d2 + d4;
    t[st] = -4.0f * d1 - 4.0f * d2 + d3 + d4;
    t[2 * st] = 4.0f * d1 - 4.0f * d2 - d3 + d4;
    t[3 * st] = -2.0f * d1 - d2 + 2.0f * d3 + d4;
    t[4 * st] = 2.0f * d1 - d2 - 2.0f * d3 + d4;
    t[5 * st] = 4.0f * d1 - 5.0f * d3 + d5;
}

/* o = A^T m along one axis: m[0..5] at stride sm -> o[0..3] at stride so. */
static inline void at_1d(const float *m, int sm, float *o, int so) {
    const float m0 = m[0], m1 = m[sm], m2 = m[2 * sm], m3 = m[3 * sm], m4 = m[4 * sm],
                m5 = m[5 * sm];
    const float a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
    o[0] = m0 + a + c;
    o[so] = b + 2.0f * d;
    o[2 * so] = a + 4.0f * c;
    o[3 * so] = b + 8.0f * d + m5;
}

void rn_wino_in_portable(const rn_wino_in *in, float *dst, ptrdiff_t stride) {
    for (int l = 0; l < RN_WINO_LANES; l++) {
        float d[36], t[36], v[36];
        for (int r = 0; r < 6; r++)
            for (int c = 0; c < 6; c++)
                d[r * 6 + c] = r >= in->r0[l] && r < in->r1[l] && (in->cols[l] >> c & 1)
                                   ? in->x[in->origin[l] + r * in->ld + c]
                                   : 0.0f;
        for (int c = 0; c < 6; c++)
            bt_1d(d + c, 6, t + c, 6); /* columns: rows combined */
        for (int i = 0; i < 6; i++)
            bt_1d(t + i * 6, 1, v + i * 6, 1); /* then within each row */
        for (int xi = 0; xi < WINO4_XI; xi++)
            dst[xi * stride + l] = v[xi];
    }
}

/* Lane l's output block y (m x m, the part inside the map: rows[l] x cols[l]) with the
 * epilogue: + bias, + the residual, ReLU. */
static void store_block(const float *y, int m, int l, const rn_wino_out *o) {
    for (int r = 0; r < o->rows[l]; r++)
        for (int c = 0; c < o->cols[l]; c++) {
            float v = y[r * m + c] + o->bias;
            if (o->res[l])
                v += o->res[l][r * o->ld + c];
            if (o->relu && v < 0.0f) /* NaN stays NaN, as in PyTorch */
                v = 0.0f;
            o->y[l][r * o->ld + c] = v;
        }
}

void rn_wino_out_portable(const float *src, ptrdiff_t stride, const rn_wino_out *o) {
    for (int l = 0; l < RN_WINO_LANES; l++) {
        if (!o->y[l])
            continue;
        float m[36], t[24], y[16];
        for (int xi = 0; xi < WINO4_XI; xi++)
            m[xi] = src[xi * stride + l];
        for (int j = 0; j < 6; j++)
            at_1d(m + j, 6, t + j, 6); /* t (4 x 6) */
        for (int r = 0; r < 4; r++)
            at_1d(t + r * 6, 1, y + r * 4, 1);
        store_block(y, 4, l, o);
    }
}

/* F(2x2, 3x3): t = B^T d along one axis (4 -> 4), o = A^T m (4 -> 2). */
static inline void bt2_1d(const float *d, int sd, float *t, int st) {
    const float d0 = d[0], d1 = d[sd], d2 = d[2 * sd], d3 = d[3 * sd];
    t[0] = d0 - d2;
    t[st] = d1 + d2;
    t[2 * st] = d2 - d1;
    t[3 * st] = d1 - d3;
}

static inline void at2_1d(const float *m, int sm, float *o, int so) {
    const float m0 = m[0], m1 = m[sm], m2 = m[2 * sm], m3 = m[3 * sm];
    o[0] = m0 + m1 + m2;
    o[so] = m1 - m2 - m3;
}

void rn_wino2_in_portable(const rn_wino_in *in, float *dst, ptrdiff_t stride) {
    for (int l = 0; l < RN_WINO_LANES; l++) {
        float d[16], t[16], v[16];
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                d[r * 4 + c] = r >= in->r0[l] && r < in->r1[l] && (in->cols[l] >> c & 1)
                                   ? in->x[in->origin[l] + r * in->ld + c]
                                   : 0.0f;
        for (int c = 0; c < 4; c++)
            bt2_1d(d + c, 4, t + c, 4);
        for (int i = 0; i < 4; i++)
            bt2_1d(t + i * 4, 1, v + i * 4, 1);
        for (int xi = 0; xi < 16; xi++)
            dst[xi * stride + l] = v[xi];
    }
}

void rn_wino2_out_portable(const float *src, ptrdiff_t stride, const rn_wino_out *o) {
    for (int l = 0; l < RN_WINO_LANES; l++) {
        if (!o->y[l])
            continue;
        float m[16], t[8], y[4];
        for (int xi = 0; xi < 16; xi++)
            m[xi] = src[xi * stride + l];
        for (int j = 0; j < 4; j++)
            at2_1d(m + j, 4, t + j, 4); /* t (2 x 4) */
        for (int r = 0; r < 2; r++)
            at2_1d(t + r * 4, 1, y + r * 2, 1);
        store_block(y, 2, l, o);
    }
}

void rn_wino_weights_portable(const float *const g[RN_WINO_LANES], float *dst, ptrdiff_t ld) {
    rn_wino_weights4(g, dst, ld);
}

void rn_wino2_weights_portable(const float *const g[RN_WINO_LANES], float *dst, ptrdiff_t ld) {
    rn_wino_weights2(g, dst, ld);
}
