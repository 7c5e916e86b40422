/*
 * winograd_weights.h - the Winograd weight transform U = G g G^T (winograd.h's
 * rn_wino_weights_fn), one source for every instruction set: winograd_portable.c includes it for
 * the portable descriptor, x86/winograd_avx2.c and x86/winograd_avx512.c for theirs, each
 * compiled for its own ISA, so the compiler maps the 8 lanes to what the CPU has (four SSE
 * registers, two AVX ones, one AVX-512 one).
 *
 * Each lane is one 3x3 kernel, its operations in double in the same order on every ISA, then
 * rounded to float once: the transformed weights are the same bits whichever descriptor
 * prepared them (tests/test_conv2d.c checks). No fused multiply-add: GCC contracts nothing in
 * ISO C mode (-std=c11, the Makefile's); clang is told so below.
 *
 * The kernels' taps are gathered lane by lane into vectors built in registers: written to
 * memory one double at a time and read back as vectors, they stalled on store forwarding for
 * a third of the preparation's time.
 */
#ifndef RN_OPS_WINOGRAD_WEIGHTS_H
#define RN_OPS_WINOGRAD_WEIGHTS_H

#include <stddef.h>
#include <string.h>

#include "ops/winograd.h"

/* 8 lanes as one value (GCC's and clang's vector extension); every function that takes or
 * returns one is static, so no ABI is crossed (the Makefile's -Wno-psabi). */
typedef double rn_wino_wd __attribute__((vector_size(RN_WINO_LANES * sizeof(double))));
typedef float rn_wino_wf __attribute__((vector_size(RN_WINO_LANES * sizeof(float))));

/* tap[t] = the lanes' tap t (row-major 3x3), in double. */
static inline void rn_wino_weights_taps(const float *const g[RN_WINO_LANES], rn_wino_wd tap[9]) {
    for (int t = 0; t < 9; t++)
        tap[t] = (rn_wino_wd){g[0][t], g[1][t], g[2][t], g[3][t],
                              g[4][t], g[5][t], g[6][t], g[7][t]};
}

/* A point of every lane, rounded to float, into dst[0..7]. */
static inline void rn_wino_weights_store(rn_wino_wd u, float *dst) {
    const rn_wino_wf f = __builtin_convertvector(u, rn_wino_wf);
    memcpy(dst, &f, sizeof f);
}

/* F(4x4, 3x3): the rows t = G g first, then u = t G^T, G's zeros and symmetries written out. */
static inline void rn_wino_weights4(const float *const g[RN_WINO_LANES], float *dst,
                                    ptrdiff_t ld) {
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif
    rn_wino_wd tap[9], t[6][3];
    rn_wino_weights_taps(g, tap);
    for (int c = 0; c < 3; c++) {
        const rn_wino_wd g0 = tap[c], g1 = tap[3 + c], g2 = tap[6 + c];
        const rn_wino_wd even = g0 + g2;
        t[0][c] = g0 * (1.0 / 4);
        t[1][c] = -(even + g1) * (1.0 / 6);
        t[2][c] = -(even - g1) * (1.0 / 6);
        t[3][c] = g0 * (1.0 / 24) + g1 * (1.0 / 12) + g2 * (1.0 / 6);
        t[4][c] = g0 * (1.0 / 24) - g1 * (1.0 / 12) + g2 * (1.0 / 6);
        t[5][c] = g2;
    }
    for (int i = 0; i < 6; i++) {
        const rn_wino_wd t0 = t[i][0], t1 = t[i][1], t2 = t[i][2];
        const rn_wino_wd even = t0 + t2;
        float *row = dst + (ptrdiff_t)(i * 6) * ld;
        rn_wino_weights_store(t0 * (1.0 / 4), row);
        rn_wino_weights_store(-(even + t1) * (1.0 / 6), row + ld);
        rn_wino_weights_store(-(even - t1) * (1.0 / 6), row + 2 * ld);
        rn_wino_weights_store(t0 * (1.0 / 24) + t1 * (1.0 / 12) + t2 * (1.0 / 6), row + 3 * ld);
        rn_wino_weights_store(t0 * (1.0 / 24) - t1 * (1.0 / 12) + t2 * (1.0 / 6), row + 4 * ld);
        rn_wino_weights_store(t2, row + 5 * ld);
    }
}

/* F(2x2, 3x3): G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]. Written out as F(4x4)'s is: one
 * two-pass driver for both over a 1D helper ran 1.3-1.7x slower (its vectors went through the
 * stack). */
static inline void rn_wino_weights2(const float *const g[RN_WINO_LANES], float *dst,
                                    ptrdiff_t ld) {
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif
    rn_wino_wd tap[9], t[4][3];
    rn_wino_weights_taps(g, tap);
    for (int c = 0; c < 3; c++) {
        const rn_wino_wd g0 = tap[c], g1 = tap[3 + c], g2 = tap[6 + c];
        t[0][c] = g0;
        t[1][c] = (g0 + g1 + g2) * 0.5;
        t[2][c] = (g0 - g1 + g2) * 0.5;
        t[3][c] = g2;
    }
    for (int i = 0; i < 4; i++) {
        const rn_wino_wd t0 = t[i][0], t1 = t[i][1], t2 = t[i][2];
        float *row = dst + (ptrdiff_t)(i * 4) * ld;
        rn_wino_weights_store(t0, row);
        rn_wino_weights_store((t0 + t1 + t2) * 0.5, row + ld);
        rn_wino_weights_store((t0 - t1 + t2) * 0.5, row + 2 * ld);
        rn_wino_weights_store(t2, row + 3 * ld);
    }
}

#endif
