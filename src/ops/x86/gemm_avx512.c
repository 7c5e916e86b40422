/*
 * gemm_avx512.c - the AVX-512 micro-kernels and im2col packer behind rn_sgemm.
 *
 * Compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma; gemm.c calls
 * in only when the CPU has all of those. The contract (packed layouts, tile
 * store) is in kernels.h.
 */
#include "ops/kernels.h"
#include "ops/x86/gemm_store_avx512.h"
#include "ops/x86/im2col_x86.h"

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------
 * Micro-kernel: an MR x (16 * NV) tile of C in MR * NV zmm accumulators.
 * Each k step loads NV vectors of the B panel and broadcasts MR values of
 * the A panel: MR * NV fused multiply-adds.
 * ------------------------------------------------------------------------- */

/* A packed A panel is read once per B panel; where that is once (Winograd's products at batch
 * 1, a ResNet's last stage) it streams from memory, and the hardware prefetcher, restarting at
 * every 4 KiB page, leaves the kernel waiting: PACKED kernels ask for A 4 KiB ahead (as the
 * AVX2 kernel does, gemm_avx2.c). */
#define A_PREFETCH_FLOATS 1024

static inline __attribute__((always_inline)) void
micro_kernel(const int MR, const int NV, const int PACKED, int kc, const float *a, ptrdiff_t a_rs,
             ptrdiff_t a_cs, const float *b, ptrdiff_t b_rs, const rn_gemm_tile *t) {
    __m512 acc[MAX_MR][MAX_NV];
    rn_start_tile_avx512(MR, NV, acc, t);

#pragma GCC unroll 4
    for (int k = 0; k < kc; k++) {
        __m512 bv[MAX_NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            bv[v] = _mm512_loadu_ps(b + 16 * v); /* in place: any alignment */
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(a[i * a_rs]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        if (PACKED)
            _mm_prefetch((const char *)(a + A_PREFETCH_FLOATS), _MM_HINT_T0);
        a += a_cs;
        b += b_rs;
    }

    rn_store_tile_avx512(MR, NV, acc, t);
}

/* Packed A panels. */
void rn_sgemm_kernel_avx512_8x16(int kc, const float *a, const float *b,
                                 const rn_gemm_tile *t) {
    micro_kernel(8, 1, 1, kc, a, 1, 8, b, 16 * 1, t);
}

void rn_sgemm_kernel_avx512_8x32(int kc, const float *a, const float *b,
                                 const rn_gemm_tile *t) {
    micro_kernel(8, 2, 1, kc, a, 1, 8, b, 16 * 2, t);
}

void rn_sgemm_kernel_avx512_8x48(int kc, const float *a, const float *b,
                                 const rn_gemm_tile *t) {
    micro_kernel(8, 3, 1, kc, a, 1, 8, b, 16 * 3, t);
}

/* B read in place, its rows t->ldb apart (a 1x1 convolution's input: no packing pass). */
void rn_sgemm_kernel_avx512_8x48_rawb(int kc, const float *a, const float *b,
                                      const rn_gemm_tile *t) {
    micro_kernel(8, 3, 1, kc, a, 1, 8, b, t->ldb, t);
}

/* A read in place, with the tile's strides. */
void rn_sgemm_kernel_avx512_8x16_rawa(int kc, const float *a, const float *b,
                                      const rn_gemm_tile *t) {
    micro_kernel(8, 1, 0, kc, a, t->a_rs, t->a_cs, b, 16 * 1, t);
}

void rn_sgemm_kernel_avx512_8x32_rawa(int kc, const float *a, const float *b,
                                      const rn_gemm_tile *t) {
    micro_kernel(8, 2, 0, kc, a, t->a_rs, t->a_cs, b, 16 * 2, t);
}

void rn_sgemm_kernel_avx512_8x48_rawa(int kc, const float *a, const float *b,
                                      const rn_gemm_tile *t) {
    micro_kernel(8, 3, 0, kc, a, t->a_rs, t->a_cs, b, 16 * 3, t);
}

/* ---------------------------------------------------------------------------
 * im2col packer (im2col_x86.h): per 16 lanes a run is read by a masked load
 * (stride 1), two masked loads and a permute keeping even elements (stride 2)
 * or a masked gather.
 * ------------------------------------------------------------------------- */

#define LANES 16

typedef struct tap_load {
    ptrdiff_t off;              /* input element read by lane 0 (before masking) */
    __mmask16 m[2 * MAX_NV];    /* per 16 lanes: lane masks; PACK_PAIR: source masks */
} tap_load;

/* Bits 0..7 of x moved to the even bits 0, 2, .., 14. */
static inline __mmask16 spread_even(unsigned x) {
    x &= 0xFF;
    x = (x | x << 4) & 0x0F0F;
    x = (x | x << 2) & 0x3333;
    x = (x | x << 1) & 0x5555;
    return (__mmask16)x;
}

/* The loads of tap (ki, kj) for every run; returns how many (runs wholly in
 * the padding need none). */
static inline __attribute__((always_inline)) int
tap_loads(const int MODE, const int NV, const rn_im2col *im, const rn_im2col_run *runs,
          int nrun, int ki, int kj, tap_load *out) {
    const int s = MODE == PACK_UNIT ? 1 : MODE == PACK_PAIR ? 2 : im->stride;
    int count = 0;
    for (int r = 0; r < nrun; r++) {
        ptrdiff_t off;
        uint64_t bits;
        if (!tap_span(im, &runs[r], s, ki, kj, &off, &bits))
            continue;
        tap_load *e = &out[count++];
        e->off = off;
#pragma GCC unroll 4
        for (int q = 0; q < NV; q++) {
            unsigned m = (unsigned)(bits >> (16 * q)) & 0xFFFF;
            if (MODE == PACK_PAIR) {
                e->m[2 * q] = spread_even(m);
                e->m[2 * q + 1] = spread_even(m >> 8);
            } else {
                e->m[q] = (__mmask16)m;
            }
        }
    }
    return count;
}

/* One panel row: NV * 16 lanes from the loads of its tap, on channel xc. */
static inline __attribute__((always_inline)) void
pack_row(const int NV, const int MODE, const float *xc, const tap_load *e, int ne,
         int s, float *dst) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8,
                                          6, 4, 2, 0);
    __m512 v[MAX_NV];
#pragma GCC unroll 4
    for (int q = 0; q < NV; q++)
        v[q] = _mm512_setzero_ps();
    for (; ne > 0; ne--, e++) {
#pragma GCC unroll 4
        for (int q = 0; q < NV; q++) {
            if (MODE == PACK_UNIT) {
                if (e->m[q])
                    v[q] = _mm512_mask_loadu_ps(v[q], e->m[q], addr_at(xc, e->off + 16 * q));
            } else if (MODE == PACK_PAIR) {
                if (e->m[2 * q] | e->m[2 * q + 1]) {
                    const ptrdiff_t at = e->off + 32 * q;
                    __m512 lo = _mm512_maskz_loadu_ps(e->m[2 * q], addr_at(xc, at));
                    __m512 hi = _mm512_maskz_loadu_ps(e->m[2 * q + 1], addr_at(xc, at + 16));
                    v[q] = _mm512_or_ps(v[q], _mm512_permutex2var_ps(lo, even, hi));
                }
            } else if (e->m[q]) {
                const __m512i idx = _mm512_mullo_epi32(
                    _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                    _mm512_set1_epi32(s));
                v[q] = _mm512_mask_i32gather_ps(v[q], e->m[q], idx,
                                                addr_at(xc, e->off + 16 * q * s), 4);
            }
        }
    }
#pragma GCC unroll 4
    for (int q = 0; q < NV; q++)
        _mm512_store_ps(dst + 16 * q, v[q]);
}

#include "ops/x86/im2col_panel_x86.h"

void rn_im2col_pack_avx512(const rn_im2col *im, int k0, int kc, long j0, int nr,
                           float *dst) {
    // dst: (kc, nr) panel; x: (c, n, h, w)
    const long n_cols = (long)im->n * im->ho * im->wo;
    const int count = n_cols - j0 < nr ? (int)(n_cols - j0) : nr;
    rn_im2col_run runs[64];
    const int nrun = rn_im2col_runs(im, j0, count, runs);
    const int mode = im->stride == 1 ? PACK_UNIT : im->stride == 2 ? PACK_PAIR : PACK_GATHER;
    switch ((nr / 16) * 3 + mode) {
    case 3: pack_panel(1, PACK_UNIT, im, k0, kc, runs, nrun, dst); break;
    case 4: pack_panel(1, PACK_PAIR, im, k0, kc, runs, nrun, dst); break;
    case 5: pack_panel(1, PACK_GATHER, im, k0, kc, runs, nrun, dst); break;
    case 6: pack_panel(2, PACK_UNIT, im, k0, kc, runs, nrun, dst); break;
    case 7: pack_panel(2, PACK_PAIR, im, k0, kc, runs, nrun, dst); break;
    case 8: pack_panel(2, PACK_GATHER, im, k0, kc, runs, nrun, dst); break;
    case 9: pack_panel(3, PACK_UNIT, im, k0, kc, runs, nrun, dst); break;
    case 10: pack_panel(3, PACK_PAIR, im, k0, kc, runs, nrun, dst); break;
    case 11: pack_panel(3, PACK_GATHER, im, k0, kc, runs, nrun, dst); break;
    case 12: pack_panel(4, PACK_UNIT, im, k0, kc, runs, nrun, dst); break;
    case 13: pack_panel(4, PACK_PAIR, im, k0, kc, runs, nrun, dst); break;
    default: pack_panel(4, PACK_GATHER, im, k0, kc, runs, nrun, dst); break;
    }
}

/* ---- batch 1's classifier (rn_gemv_fn) -----------------------------------------------------
 * A row at a time, 32 floats a step into two sums (columns c % 32 < 16 and the rest), the tail
 * masked; the row streams from memory, x stays in L1. The C loop of linear.c, compiled for any
 * x86-64 (SSE2), took 225-240 us of resnet50's int8 pass at batch 1 for its 8 MB of weights,
 * this one 77-80 us (Zen 5, 2 threads; read cold alone, 62 us: about 130 GB/s). Asking for the
 * lines 512 B or 2 KB ahead gained nothing. */
void rn_sgemv_avx512(const float *x, int C, const float *w, const float *b, int rows, float *y) {
    for (int k = 0; k < rows; k++) {
        const float *wr = w + (size_t)k * C;
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        int c = 0;
        for (; c + 32 <= C; c += 32) {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(wr + c), _mm512_loadu_ps(x + c), s0);
            s1 = _mm512_fmadd_ps(_mm512_loadu_ps(wr + c + 16), _mm512_loadu_ps(x + c + 16), s1);
        }
        for (; c < C; c += 16) {
            const __mmask16 m = C - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (C - c)) - 1);
            s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, wr + c), _mm512_maskz_loadu_ps(m, x + c),
                                 s0);
        }
        const float sum = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
        y[k] = b ? sum + b[k] : sum;
    }
}
