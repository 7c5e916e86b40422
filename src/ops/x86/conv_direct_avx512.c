/*
 * conv_direct_avx512.c - the direct convolution's tile (contract in
 * ops/direct.h) with AVX-512: up to 14 pixels x 32 channels in 28 zmm
 * accumulators; per tap, two vectors of 16 weights, and per pixel one
 * broadcast and two fused multiply-adds (16 loads for 28 FMAs; the AVX2 tile,
 * 6 pixels x 2 ymm, leaves half of a 512-bit FMA unit idle). A 7-wide map
 * (ResNet's last stage) fills it with two rows (direct.h). The store (transposed in
 * registers, then the epilogue) is direct_store_avx512.h's.
 *
 * Compiled with -mavx512f (and the rest of AVX512_FLAGS); called only when
 * the CPU has them.
 */
#include <immintrin.h>
#include <stddef.h>

#include "ops/kernels.h"
#include "ops/x86/direct_store_avx512.h"

#define NR RN_DIRECT_AVX512_NR /* output channels per tile: the descriptor's direct_nr */

/* M pixels; XS their stride when known at compile time (1, 2), else 0: t->xs; V vectors of 16
 * channels (1 where the tile has at most 16: a narrow layer's, the other half being zeros). */
static inline __attribute__((always_inline)) void tile(const int M, const int XS, const int V,
                                                       const int TWO, const float *w,
                                                       const rn_direct_tile *t) {
    __m512 acc[2][16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        acc[0][i] = acc[1][i] = _mm512_setzero_ps();
    const float *x = t->x;
    const ptrdiff_t xs = XS ? XS : t->xs;
    const int kc = t->kc;
    /* tap k + RN_DIRECT_PREFETCH asked for where the weights would not stay in L1 (direct.h) */
    const int kpf = kc >= RN_DIRECT_PREFETCH_MIN_TAPS ? kc - RN_DIRECT_PREFETCH : 0;
#pragma GCC unroll 2
    for (int k = 0; k < kc; k++) {
        const float *xk = x + t->off[k];
        if (k < t->pf_lines) /* the next panel's lines, one a tap (direct.h) */
            _mm_prefetch(t->pf + (ptrdiff_t)k * 64, _MM_HINT_T1);
        if (k < kpf) {
            const float *xf = x + t->off[k + RN_DIRECT_PREFETCH];
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
        const __m512 b0 = _mm512_loadu_ps(w + (ptrdiff_t)k * NR);
        const __m512 b1 = V > 1 ? _mm512_loadu_ps(w + (ptrdiff_t)k * NR + 16) : b0;
#pragma GCC unroll 14
        for (int i = 0; i < M; i++) {
            const __m512 a = _mm512_set1_ps(TWO && i >= M / 2 ? xk[t->rs + (i - M / 2) * xs]
                                                              : xk[i * xs]);
            acc[0][i] = _mm512_fmadd_ps(a, b0, acc[0][i]);
            if (V > 1)
                acc[1][i] = _mm512_fmadd_ps(a, b1, acc[1][i]);
        }
    }

    rn_direct_store_avx512(M, acc, t);
}

void rn_direct_tile_avx512(const float *w, const rn_direct_tile *t) { RN_DIRECT_DISPATCH_AVX512(); }

/* ---------------------------------------------------------------------------
 * The direct weight gradient's strip (contract in ops/direct.h) on 16 lanes:
 * 4 output channels x KW taps in 4 * KW zmm accumulators; per 16 positions
 * of a row, KW vectors of the input (offsets 0 .. KW-1, unaligned), then for
 * each channel a vector of dy and KW fused multiply-adds; a row's last
 * positions under a mask (zeros past wid). The contract's 8 lanes start in
 * the low half; the halves are added, low + high, at the end.
 * ------------------------------------------------------------------------- */

/* 16 positions (those of m) of KW taps x 4 channels */
static inline __attribute__((always_inline)) void step(const int KW, const float *x,
                                                       const float *dy, ptrdiff_t ldd,
                                                       __mmask16 m,
                                                       __m512 a[RN_WGRAD_CO][RN_WGRAD_KW_MAX]) {
    __m512 xv[RN_WGRAD_KW_MAX];
#pragma GCC unroll 3
    for (int j = 0; j < KW; j++)
        xv[j] = _mm512_maskz_loadu_ps(m, x + j);
#pragma GCC unroll 4
    for (int c = 0; c < RN_WGRAD_CO; c++) {
        __m512 dv = _mm512_maskz_loadu_ps(m, dy + c * ldd);
        /* in a register: gcc otherwise folds the load into each of the KW multiply-adds,
         * 15 loads for 12 FMAs (the load ports, not the FMAs, then pace the strip) */
        __asm__("" : "+v"(dv));
#pragma GCC unroll 3
        for (int j = 0; j < KW; j++)
            a[c][j] = _mm512_fmadd_ps(dv, xv[j], a[c][j]);
    }
}

static inline __attribute__((always_inline)) void strip(const int KW, const rn_wgrad_strip *s,
                                                        float *acc) {
    __m512 a[RN_WGRAD_CO][RN_WGRAD_KW_MAX];
#pragma GCC unroll 4
    for (int c = 0; c < RN_WGRAD_CO; c++)
#pragma GCC unroll 3
        for (int j = 0; j < KW; j++)
            a[c][j] = _mm512_zextps256_ps512(_mm256_loadu_ps(acc + (c * KW + j) * 8));
    const ptrdiff_t ldd = s->ldd;
    const int whole = s->wid / 16 * 16;
    const __mmask16 tail = (__mmask16)((1u << (s->wid - whole)) - 1);
    for (int b = 0; b < s->nimg; b++)
        for (int r = 0; r < s->nrows; r++) {
            const float *x = s->x + b * s->xstep + r * s->xld;
            const float *d0 = s->dy + b * s->dstep + r * s->dld;
            int q = 0;
            for (; q < whole; q += 16)
                step(KW, x + q, d0 + q, ldd, 0xffff, a);
            if (tail)
                step(KW, x + q, d0 + q, ldd, tail, a);
        }
#pragma GCC unroll 4
    for (int c = 0; c < RN_WGRAD_CO; c++)
#pragma GCC unroll 3
        for (int j = 0; j < KW; j++)
            _mm256_storeu_ps(acc + (c * KW + j) * 8,
                             _mm256_add_ps(_mm512_castps512_ps256(a[c][j]),
                                           _mm512_extractf32x8_ps(a[c][j], 1)));
}

void rn_wgrad_strip_avx512(const rn_wgrad_strip *s, float *acc) {
    switch (s->kw) {
    case 3: strip(3, s, acc); break;
    case 2: strip(2, s, acc); break;
    default: strip(1, s, acc); break;
    }
}
