/*
 * gemm_avx512bf16.c - the bf16 micro-kernels on AVX-512 BF16 (contract in kernels.h).
 *
 * The packed panels hold bf16 pairs (rn_panel_bf16_pairs): per pair of k, a B row of NR
 * 32-bit words and an A row of MR. Each step loads NV vectors of 16 columns x 2 k, broadcasts
 * MR pairs of A, and vdpbf16ps adds both products of a pair into each fp32 lane (the odd k
 * first, then the even one; exact products, each sum rounded to nearest even; denormal inputs
 * and results are read and written as zero). Twice the multiply-adds of an fp32 fma per
 * instruction. The store and epilogue are the fp32 kernels' (gemm_store_avx512.h).
 *
 * Compiled with the AVX-512 flags and -mavx512bf16; reached only through the bf16 descriptors
 * (kernels.c), which need the CPU's AVX-512 BF16.
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/kernels.h"
#include "ops/x86/gemm_store_avx512.h"

static inline __attribute__((always_inline)) void
bf16_kernel(const int MR, const int NV, int kc, const float *a, const float *b,
            const rn_gemm_tile *t) {
    const int32_t *a2 = (const int32_t *)a;
    const int32_t *b2 = (const int32_t *)b;
    __m512 acc[MAX_MR][MAX_NV];
    rn_start_tile_avx512(MR, NV, acc, t);

    const int pairs = (kc + 1) / 2;
#pragma GCC unroll 2
    for (int p = 0; p < pairs; p++) {
        __m512bh bv[MAX_NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            bv[v] = (__m512bh)_mm512_load_si512((const void *)(b2 + 16 * v));
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            const __m512bh ai = (__m512bh)_mm512_set1_epi32(a2[i]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                acc[i][v] = _mm512_dpbf16_ps(acc[i][v], ai, bv[v]);
        }
        /* the next A panel's pair, kc * MR words on (a panel's place holds kc x MR floats, its
         * pairs the first half): where A streams from memory, read once (Winograd's U at batch
         * 1), the hardware prefetcher leaves the kernel waiting at every panel. Packed U of 16 x
         * 512 x 512 against 16 columns, from memory, 2 threads: 0.94 -> 0.35 ms (Zen 5) */
        _mm_prefetch((const char *)(a2 + (ptrdiff_t)kc * MR), _MM_HINT_T0);
        a2 += MR;
        b2 += 16 * NV;
    }

    rn_store_tile_avx512(MR, NV, acc, t);
}

void rn_bgemm_kernel_avx512bf16_8x16(int kc, const float *a, const float *b,
                                     const rn_gemm_tile *t) {
    bf16_kernel(8, 1, kc, a, b, t);
}

void rn_bgemm_kernel_avx512bf16_8x32(int kc, const float *a, const float *b,
                                     const rn_gemm_tile *t) {
    bf16_kernel(8, 2, kc, a, b, t);
}

void rn_bgemm_kernel_avx512bf16_8x48(int kc, const float *a, const float *b,
                                     const rn_gemm_tile *t) {
    bf16_kernel(8, 3, kc, a, b, t);
}

/* ---------------------------------------------------------------------------
 * rn_panel_bf16_pairs (kernels.h) with vcvtne2ps2bf16: 16 columns of a row pair converted
 * (round to nearest even; NaN stays NaN; denormals become zero, which the bf16 products read
 * as zero anyway) and interleaved per column in one permute. In place as the portable one:
 * a store covers only columns of row pairs already read.
 * ------------------------------------------------------------------------- */

/* word j of the output: bf16 j of the first row (low), then of the second (high) */
static const short pair_order[32] = {0,  16, 1,  17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                     8,  24, 9,  25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

/* Columns [j, j + 16) under mask m of rows r0 and r1 (r1 NULL: zeros) as 16 words of pairs. */
static inline __m512i pair_words(__m512i idx, __mmask16 m, const float *r0, const float *r1,
                                 int j) {
    const __m512 lo = _mm512_maskz_loadu_ps(m, r0 + j);
    const __m512 hi = r1 ? _mm512_maskz_loadu_ps(m, r1 + j) : _mm512_setzero_ps();
    return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

static inline __mmask16 cols_mask(int left) {
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

void rn_panel_bf16_pairs_avx512bf16(float *panel, int kc, int w) {
    const __m512i idx = _mm512_loadu_si512((const void *)pair_order);
    int32_t *out = (int32_t *)panel;
    for (int p = 0; p < (kc + 1) / 2; p++) {
        const float *r0 = panel + (ptrdiff_t)(2 * p) * w;
        const float *r1 = 2 * p + 1 < kc ? r0 + w : NULL;
        for (int j = 0; j < w; j += 16) {
            const __mmask16 m = cols_mask(w - j);
            _mm512_mask_storeu_epi32(out + (ptrdiff_t)p * w + j, m, pair_words(idx, m, r0, r1, j));
        }
    }
}

void rn_pair_rows_avx512bf16(const float *lo, const float *hi, ptrdiff_t ld, int rows, int n,
                             uint32_t *dst, ptrdiff_t ldd) {
    const __m512i idx = _mm512_loadu_si512((const void *)pair_order);
    for (int r = 0; r < rows; r++) {
        const float *l = lo + r * ld, *h = hi ? hi + r * ld : NULL;
        uint32_t *d = dst + r * ldd;
        for (int j = 0; j < n; j += 16) {
            const __mmask16 m = cols_mask(n - j);
            _mm512_mask_storeu_epi32(d + j, m, pair_words(idx, m, l, h, j));
        }
    }
}

/* ---------------------------------------------------------------------------
 * rn_pack_b_bf16_pairs_avx512bf16 (pack_b_finished): the same pairs read from the rows of a
 * row-major B, which lie far apart (a layer's input planes), so each pair of rows asks for
 * the rows PREFETCH_ROWS further on, and the last ones for the first rows of the panel to the
 * right, which the GEMM packs next (without, every panel's first rows waited on memory); one
 * pass where copying the panel in fp32 and converting it in place took three. `bench_conv -m
 * resnet50 -b 32 -p bf16`, AMD EPYC Zen 5, 2 threads, alternated, effective GFLOP/s: 1x1 64->64
 * at 56x56 297-307 -> 393-394, 64->256 422-427 -> 476-482, 256->64 337-372 -> 381-392; 16 or 64
 * rows ahead no better than 32.
 * ------------------------------------------------------------------------- */

#define PREFETCH_ROWS 32

void rn_pack_b_bf16_pairs_avx512bf16(const float *src, ptrdiff_t ldb, int kc, int cols, int nr,
                                     float *dst) {
    const __m512i idx = _mm512_loadu_si512((const void *)pair_order);
    int32_t *out = (int32_t *)dst;
    for (int p = 0; p < (kc + 1) / 2; p++) {
        const float *r0 = src + (ptrdiff_t)(2 * p) * ldb;
        const float *r1 = 2 * p + 1 < kc ? r0 + ldb : NULL;
        /* rows PREFETCH_ROWS on; past the last, the first rows of the panel to the right,
         * which the GEMM packs next */
        for (int r = 2 * p + PREFETCH_ROWS; r < 2 * p + 2 + PREFETCH_ROWS; r++) {
            const float *at = r < kc ? src + (ptrdiff_t)r * ldb : src + (ptrdiff_t)(r - kc) * ldb + nr;
            if (r - kc < kc)
                for (int c = 0; c < nr; c += 16)
                    __builtin_prefetch(at + c, 0, 3);
        }
        int32_t *row = out + (ptrdiff_t)p * nr;
        for (int j = 0; j < nr; j += 16) {
            const __m512i w = j < cols ? pair_words(idx, cols_mask(cols - j), r0, r1, j)
                                       : _mm512_setzero_si512();
            _mm512_mask_storeu_epi32(row + j, cols_mask(nr - j), w);
        }
    }
}
