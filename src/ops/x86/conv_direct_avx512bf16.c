/*
 * conv_direct_avx512bf16.c - the direct convolution's tile on bf16 pairs (contract in
 * ops/direct.h) with AVX-512 BF16: the AVX-512 tile's 14 pixels x 32 channels, each step one
 * pair tap (two input channels at once) by vdpbf16ps, which multiplies both halves of a 32-bit
 * word and adds them to the fp32 sum: twice the multiplications of an fp32 FMA per
 * instruction, and half the bytes of weights and input to read. The store is the fp32 tile's
 * (direct_store_avx512.h).
 *
 * Compiled with -mavx512bf16 (and AVX512_FLAGS); called only when the CPU has it.
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/kernels.h"
#include "ops/x86/direct_store_avx512.h"

#define NR RN_DIRECT_AVX512_NR /* output channels per tile: the descriptor's direct_nr */

/* As conv_direct_avx512.c's tile, on words of bf16 pairs. */
static inline __attribute__((always_inline)) void tile(const int M, const int XS, const int V,
                                                       const int TWO, const float *w,
                                                       const rn_direct_tile *t) {
    __m512 acc[2][16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        acc[0][i] = acc[1][i] = _mm512_setzero_ps();
    const int32_t *x = (const int32_t *)t->x;
    const ptrdiff_t xs = XS ? XS : t->xs;
    const int kc = t->kc;
    /* tap k + RN_DIRECT_PREFETCH asked for, as in the fp32 tile (direct.h) */
    const int kpf = kc >= RN_DIRECT_PREFETCH_MIN_TAPS ? kc - RN_DIRECT_PREFETCH : 0;
#pragma GCC unroll 2
    for (int k = 0; k < kc; k++) {
        const int32_t *xk = x + t->off[k];
        if (k < t->pf_lines) /* the next panel's lines, one a tap (direct.h) */
            _mm_prefetch(t->pf + (ptrdiff_t)k * 64, _MM_HINT_T1);
        if (k < kpf) {
            const int32_t *xf = x + t->off[k + RN_DIRECT_PREFETCH];
            const int last = TWO ? M / 2 - 1 : M - 1; /* the row's last pixel */
            _mm_prefetch((const char *)xf, _MM_HINT_T0);
            _mm_prefetch((const char *)(xf + last * xs), _MM_HINT_T0);
            if (TWO) {
                _mm_prefetch((const char *)(xf + t->rs), _MM_HINT_T0);
                _mm_prefetch((const char *)(xf + t->rs + last * xs), _MM_HINT_T0);
            }
            const float *wf = w + (ptrdiff_t)(k + RN_DIRECT_PREFETCH) * NR;
            _mm_prefetch((const char *)wf, _MM_HINT_T0);
            if (V > 1)
                _mm_prefetch((const char *)(wf + 16), _MM_HINT_T0);
        }
        const __m512bh b0 = (__m512bh)_mm512_loadu_ps(w + (ptrdiff_t)k * NR);
        const __m512bh b1 = V > 1 ? (__m512bh)_mm512_loadu_ps(w + (ptrdiff_t)k * NR + 16) : b0;
#pragma GCC unroll 14
        for (int i = 0; i < M; i++) {
            const __m512bh a = (__m512bh)_mm512_set1_epi32(
                TWO && i >= M / 2 ? xk[t->rs + (i - M / 2) * xs] : xk[i * xs]);
            acc[0][i] = _mm512_dpbf16_ps(acc[0][i], a, b0);
            if (V > 1)
                acc[1][i] = _mm512_dpbf16_ps(acc[1][i], a, b1);
        }
    }
    rn_direct_store_avx512(M, acc, t);
}

void rn_direct_tile_avx512bf16(const float *w, const rn_direct_tile *t) { RN_DIRECT_DISPATCH_AVX512(); }
