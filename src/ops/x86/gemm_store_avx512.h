/*
 * gemm_store_avx512.h - the start and the store of an AVX-512 micro-kernel's tile (kernels.h):
 * zeroed accumulators, then C = acc + beta * C over the valid corner, then bias, residual,
 * ReLU. Shared by the fp32 and bf16 kernels; included only by files compiled for AVX-512.
 */
#ifndef RN_OPS_X86_GEMM_STORE_AVX512_H
#define RN_OPS_X86_GEMM_STORE_AVX512_H

#include <immintrin.h>
#include <stddef.h>

#include "ops/kernels.h"

#define MAX_MR 8
#define MAX_NV 4

/* Lanes 0 .. n-1 of a 16-lane vector (n may be <= 0 or >= 16). */
static inline __mmask16 lane_mask(int n) {
    if (n <= 0)
        return 0;
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
}

/* Zeroes the accumulators; the C tile is needed only after the k loop: fetch it meanwhile. */
static inline __attribute__((always_inline)) void
rn_start_tile_avx512(const int MR, const int NV, __m512 acc[MAX_MR][MAX_NV], const rn_gemm_tile *t) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[i][v] = _mm512_setzero_ps();
    for (int i = 0; i < MR && i < t->m; i++)
        for (int v = 0; v < NV; v++)
            _mm_prefetch((const char *)(t->c + (ptrdiff_t)i * t->ldc + 16 * v), _MM_HINT_T0);
}

/* acc[i][v]: row i, columns 16v .. 16v + 15 of the tile. */
static inline __attribute__((always_inline)) void
rn_store_tile_avx512(const int MR, const int NV, __m512 acc[MAX_MR][MAX_NV], const rn_gemm_tile *t) {
    __mmask16 mask[MAX_NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++)
        mask[v] = lane_mask(t->n - 16 * v);
    const __m512 beta = _mm512_set1_ps(t->beta);
    const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        if (i >= t->m)
            break;
        float *c = t->c + (ptrdiff_t)i * t->ldc;
        const float *res = t->residual ? t->residual + (ptrdiff_t)i * t->ldr : NULL;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            __m512 r = acc[i][v];
            if (t->beta != 0.0f)
                r = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(mask[v], c + 16 * v), r);
            if (t->last) {
                if (t->bias)
                    r = _mm512_add_ps(r, _mm512_set1_ps(t->bias[i]));
                if (res)
                    r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mask[v], res + 16 * v));
                if (t->relu)
                    r = _mm512_max_ps(zero, r); /* NaN (2nd operand) passes, as in PyTorch */
            }
            _mm512_mask_storeu_ps(c + 16 * v, mask[v], r);
        }
    }
}

#endif
