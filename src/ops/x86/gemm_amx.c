/*
 * gemm_amx.c - the bf16 micro-kernels on AMX tiles (contract in kernels.h).
 *
 * A 32 x 32 tile of C is four 16 x 16 fp32 tiles (tmm0..3: rows 16r, columns 16v at 2r + v).
 * Per 32 values of k, tdpbf16ps adds the products of a 16 x 32 bf16 tile of A (tmm4, tmm5:
 * rows 0-15, 16-31) and a 16 x 16 tile of bf16 pairs of B (tmm6, tmm7: columns 0-15, 16-31).
 * Operands:
 *   B: the bf16 pair panel (rn_panel_bf16_pairs): pair row p of the panel's w columns is
 *      exactly a row of a B tile; a tile reads 16 pair rows, w * 4 bytes apart.
 *   A: rows of kc bf16 (rn_panel_bf16_rows_amx): row i at i * kc, a tile reads 64 bytes of
 *      16 rows, kc * 2 bytes apart.
 * A comes from L2 (an item's row panels, each run against a B panel in L1), 32 lines a step,
 * which the hardware prefetchers do not fetch ahead of the tile loads: each step asks for the
 * next one's (the GEMM 512 x 1568 x 4608, old and new kernels alternated in one process, 2
 * threads, Xeon SPR: 11-16 of 16 rounds faster, 3-10% more GFLOP/s; fetching C's tile ahead
 * too added nothing, and loading C into the accumulators instead of zeroing them, for blocks
 * of K after the first, lost 4-10%: the first products wait for those loads). K past the last
 * whole 32 is copied, zero-padded, into small tiles of its own, by masked vector loads (a
 * memset and a memcpy per row before: the stems' GEMMs, K 147 and 49, 5% and 8% slower in one
 * process, alternated). The sums: the products are
 * exact; how the hardware orders and rounds the fp32 additions inside one tdpbf16ps is its own
 * (denormals read and written as zero), so these kernels match the others to a tolerance, not
 * bit for bit. The store and epilogue are the AVX-512 kernels'.
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops/kernels.h"
#include "ops/x86/amx_util.h"
#include "ops/x86/gemm_store_avx512.h"

static inline __attribute__((always_inline)) void amx_bf16(const int NV, int kc, const float *a,
                                                           const float *b, const rn_gemm_tile *t) {
    const uint16_t *a16 = (const uint16_t *)a; /* row i at a16 + i * kc */
    const uint32_t *b32 = (const uint32_t *)b; /* pair row p at b32 + p * w */
    const int w = 16 * NV;
    const long sa = (long)kc * 2, sb = (long)w * 4;
    rn_amx_configure();
    _tile_zero(0);
    _tile_zero(2);
    if (NV > 1) {
        _tile_zero(1);
        _tile_zero(3);
    }
    const int chunks = kc / 32, tail = kc % 32;
    for (int c = 0; c < chunks; c++) {
        const uint16_t *ac = a16 + c * 32;
        const uint32_t *bc = b32 + (long)c * 16 * w;
        if (c + 1 < chunks) /* the next step's 32 rows of A: a line each, kc * 2 bytes apart */
            for (int i = 0; i < 32; i++)
                _mm_prefetch((const char *)(ac + 32 + (long)i * kc), _MM_HINT_T0);
        _tile_loadd(4, ac, sa);
        _tile_loadd(6, bc, sb);
        _tile_dpbf16ps(0, 4, 6);
        _tile_loadd(5, ac + 16 * (long)kc, sa);
        _tile_dpbf16ps(2, 5, 6);
        if (NV > 1) {
            _tile_loadd(7, bc + 16, sb);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(3, 5, 7);
        }
    }
    if (tail) { /* the last tail values of k, zero-padded to a whole step (masked loads: none
                   reads past a row, nor past the panel) */
        _Alignas(64) uint16_t at[32][32];
        _Alignas(64) uint32_t bt[16][32];
        const __mmask32 ma = (__mmask32)((1u << tail) - 1u);
        for (int i = 0; i < 32; i++)
            _mm512_store_si512((void *)at[i],
                               _mm512_maskz_loadu_epi16(ma, a16 + (long)i * kc + chunks * 32));
        const int pairs = (tail + 1) / 2;
        for (int p = 0; p < 16; p++)
            for (int q = 0; q < NV; q++)
                _mm512_store_si512((void *)&bt[p][16 * q],
                                   p < pairs ? _mm512_loadu_si512(b32 + (long)(chunks * 16 + p) * w +
                                                                  16 * q)
                                             : _mm512_setzero_si512());
        rn_amx_fence();
        _tile_loadd(4, at[0], 64);
        _tile_loadd(5, at[16], 64);
        _tile_loadd(6, bt, 128);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(2, 5, 6);
        if (NV > 1) {
            _tile_loadd(7, &bt[0][16], 128);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(3, 5, 7);
        }
    }
    _Alignas(64) float acc[32][32];
    _tile_stored(0, &acc[0][0], 128);
    _tile_stored(2, &acc[16][0], 128);
    if (NV > 1) {
        _tile_stored(1, &acc[0][16], 128);
        _tile_stored(3, &acc[16][16], 128);
    }
    rn_amx_fence();
    /* the store, 8 rows at a time */
    for (int r0 = 0; r0 < 32 && r0 < t->m; r0 += 8) {
        __m512 v[MAX_MR][MAX_NV];
        for (int i = 0; i < 8; i++)
            for (int q = 0; q < NV; q++)
                v[i][q] = _mm512_load_ps(&acc[r0 + i][16 * q]);
        rn_gemm_tile s = *t;
        s.c = t->c + (ptrdiff_t)r0 * t->ldc;
        s.m = t->m - r0;
        s.bias = t->bias ? t->bias + r0 : NULL;
        s.residual = t->residual ? t->residual + (ptrdiff_t)r0 * t->ldr : NULL;
        rn_store_tile_avx512(8, NV, v, &s);
    }
}

void rn_bgemm_kernel_amx_32x16(int kc, const float *a, const float *b, const rn_gemm_tile *t) {
    amx_bf16(1, kc, a, b, t);
}

void rn_bgemm_kernel_amx_32x32(int kc, const float *a, const float *b, const rn_gemm_tile *t) {
    amx_bf16(2, kc, a, b, t);
}

void rn_pack_a_bf16_rows_amx(const float *src, ptrdiff_t lda, int kc, int rows, int mr,
                             float *dst) {
    uint16_t *out = (uint16_t *)dst; /* row i at out + i * kc, as rn_panel_bf16_rows_amx */
    for (int i = 0; i < mr; i++) {
        uint16_t *o = out + (size_t)i * kc;
        if (i >= rows) {
            memset(o, 0, (size_t)kc * 2);
            continue;
        }
        const float *s = src + (ptrdiff_t)i * lda;
        int k = 0;
        for (; k + 32 <= kc; k += 32)
            _mm512_storeu_si512((void *)(o + k),
                                (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + k + 16),
                                                             _mm512_loadu_ps(s + k)));
        for (; k < kc; k += 16) {
            const __mmask16 m = kc - k >= 16 ? 0xFFFF : (__mmask16)((1u << (kc - k)) - 1);
            _mm256_mask_storeu_epi16(o + k, m,
                                     (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, s + k)));
        }
    }
}

void rn_panel_bf16_rows_amx(float *panel, int kc, int w) {
    /* w is the descriptor's MR (32): row k of the panel is one value of each of 32 rows */
    _Alignas(64) uint16_t rows[RN_AMX_MR * RN_KC_MAX];
    for (int k = 0; k < kc; k++) {
        _Alignas(64) uint16_t v[32];
        const __m512 lo = _mm512_loadu_ps(panel + (ptrdiff_t)k * w);
        const __m512 hi = w > 16 ? _mm512_loadu_ps(panel + (ptrdiff_t)k * w + 16)
                                 : _mm512_setzero_ps();
        _mm512_store_si512((void *)v, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        for (int i = 0; i < w; i++)
            rows[i * kc + k] = v[i];
    }
    memcpy(panel, rows, (size_t)w * (size_t)kc * 2);
}
