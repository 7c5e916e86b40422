/*
 * gemm_avx2.c - the AVX2 + FMA micro-kernels and im2col packer behind
 * rn_sgemm, for x86-64 CPUs without AVX-512.
 *
 * Compiled with -mavx2 -mfma; called only when the CPU has both (the
 * descriptor in kernels.c). The contract (packed layouts, tile store) is in
 * ops/kernels.h; the structure follows gemm_avx512.c with 8-lane vectors.
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/kernels.h"
#include "ops/x86/avx2_util.h"
#include "ops/x86/im2col_x86.h"

/* ---------------------------------------------------------------------------
 * Micro-kernel: an MR x (8 * NV) tile of C in MR * NV ymm accumulators
 * (6 x 2 = 12 of the 16 registers). Each k step loads NV vectors of the B
 * panel and broadcasts MR values of the A panel: MR * NV fused multiply-adds.
 * ------------------------------------------------------------------------- */

#define MAX_MR 6
#define MAX_NV 2
/* A packed panel is read once per B panel; where that is once (one column
 * panel: Winograd's products at batch 1, a ResNet's last stage) it streams
 * from memory, a cache line every 2.7 k steps, and the hardware prefetcher,
 * restarting at every 4 KiB page, leaves the kernel waiting. Fetching 4 KiB
 * ahead made F(2x2) Winograd's share of resnet18 at batch 1 (1 thread, in
 * the network, dev/profile_layers) 25.8% -> 23.0-23.6%; where A is in cache
 * it costs a load slot the kernel has spare (`bench_conv` unchanged). */
#define A_PREFETCH_FLOATS 1024

/* All-ones in lanes 0 .. n-1 of an 8-lane vector (n may be <= 0 or >= 8). */
static inline __m256i lane_mask(int n) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lanes);
}

static inline __attribute__((always_inline)) void
micro_kernel(const int MR, const int NV, const int PACKED, int kc, const float *a, ptrdiff_t a_rs,
             ptrdiff_t a_cs, const float *b, const rn_gemm_tile *t) {
    __m256 acc[MAX_MR][MAX_NV];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            acc[i][v] = _mm256_setzero_ps();

    /* The C tile is needed only after the k loop: fetch it meanwhile. */
    for (int i = 0; i < MR && i < t->m; i++)
        _mm_prefetch((const char *)(t->c + (ptrdiff_t)i * t->ldc), _MM_HINT_T0);
    if (t->residual && t->last)
        for (int i = 0; i < MR && i < t->m; i++)
            _mm_prefetch((const char *)(t->residual + (ptrdiff_t)i * t->ldr), _MM_HINT_T0);

#pragma GCC unroll 4
    for (int k = 0; k < kc; k++) {
        __m256 bv[MAX_NV];
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            bv[v] = _mm256_load_ps(b + 8 * v);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m256 ai = _mm256_broadcast_ss(a + i * a_rs);
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++)
                acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        if (PACKED)
            _mm_prefetch((const char *)(a + A_PREFETCH_FLOATS), _MM_HINT_T0);
        a += a_cs;
        b += 8 * NV;
    }

    /* Store: C = acc + beta * C, then bias, residual, relu. */
    __m256i mask[MAX_NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++)
        mask[v] = lane_mask(t->n - 8 * v);
    const int full = t->n == 8 * NV;
    const __m256 beta = _mm256_set1_ps(t->beta);
    const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        if (i >= t->m)
            break;
        float *c = t->c + (ptrdiff_t)i * t->ldc;
        const float *res = t->residual ? t->residual + (ptrdiff_t)i * t->ldr : NULL;
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) {
            __m256 r = acc[i][v];
            if (t->beta != 0.0f) {
                __m256 old = full ? _mm256_loadu_ps(c + 8 * v) : _mm256_maskload_ps(c + 8 * v, mask[v]);
                r = _mm256_fmadd_ps(beta, old, r);
            }
            if (t->last) {
                if (t->bias)
                    r = _mm256_add_ps(r, _mm256_broadcast_ss(t->bias + i));
                if (res)
                    r = _mm256_add_ps(r, full ? _mm256_loadu_ps(res + 8 * v)
                                              : _mm256_maskload_ps(res + 8 * v, mask[v]));
                if (t->relu)
                    r = _mm256_max_ps(zero, r); /* NaN (2nd operand) passes, as in PyTorch */
            }
            if (full)
                _mm256_storeu_ps(c + 8 * v, r);
            else
                _mm256_maskstore_ps(c + 8 * v, mask[v], r);
        }
    }
}

/* Packed A panels. */
void rn_sgemm_kernel_avx2_6x8(int kc, const float *a, const float *b, const rn_gemm_tile *t) {
    micro_kernel(6, 1, 1, kc, a, 1, 6, b, t);
}

void rn_sgemm_kernel_avx2_6x16(int kc, const float *a, const float *b, const rn_gemm_tile *t) {
    micro_kernel(6, 2, 1, kc, a, 1, 6, b, t);
}

/* A read in place, with the tile's strides. */
void rn_sgemm_kernel_avx2_6x8_rawa(int kc, const float *a, const float *b, const rn_gemm_tile *t) {
    micro_kernel(6, 1, 0, kc, a, t->a_rs, t->a_cs, b, t);
}

void rn_sgemm_kernel_avx2_6x16_rawa(int kc, const float *a, const float *b, const rn_gemm_tile *t) {
    micro_kernel(6, 2, 0, kc, a, t->a_rs, t->a_cs, b, t);
}

/* ---------------------------------------------------------------------------
 * im2col packer (im2col_x86.h): per 8 lanes a run is read by a masked load
 * (stride 1), two loads of the even elements (masked unless all 8 lanes are
 * read) and a shuffle (stride 2), or a masked gather.
 * ------------------------------------------------------------------------- */

#define LANES 8
#define PACK_NV (RN_PANEL_MAX / 8)

/* PACK_PAIR: all 8 lanes read, and the 16 floats from the first stay in
 * the channel's plane: two plain loads instead of masked ones. */
#define PAIR_FULL 0xFF

typedef struct tap_load {
    ptrdiff_t off;          /* input element read by lane 0 (before masking) */
    uint8_t m[2 * PACK_NV]; /* per 8 lanes: lane bits; PACK_PAIR: source bits, low then high */
} tap_load;

/* Bits 0..3 of x moved to the even bits 0, 2, 4, 6. */
static inline unsigned spread_even4(unsigned x) {
    x &= 0xF;
    x = (x | x << 2) & 0x33;
    x = (x | x << 1) & 0x55;
    return x;
}

/* An 8-lane vector mask from 8 bits. */
static inline __m256i bits_mask(unsigned bits) {
    const __m256i lane_bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)bits), lane_bits), lane_bits);
}

/* The loads of tap (ki, kj) for every run; returns how many (runs wholly in
 * the padding need none). */
static inline __attribute__((always_inline)) int
tap_loads(const int MODE, const int NV, const rn_im2col *im, const rn_im2col_run *runs,
          int nrun, int ki, int kj, tap_load *out) {
    const int s = MODE == PACK_UNIT ? 1 : MODE == PACK_PAIR ? 2 : im->stride;
    const ptrdiff_t plane = (ptrdiff_t)im->n * im->h * im->w;
    int count = 0;
    for (int r = 0; r < nrun; r++) {
        ptrdiff_t off;
        uint64_t bits;
        if (!tap_span(im, &runs[r], s, ki, kj, &off, &bits))
            continue;
        tap_load *e = &out[count++];
        e->off = off;
#pragma GCC unroll 8
        for (int q = 0; q < NV; q++) {
            unsigned m = (unsigned)(bits >> (8 * q)) & 0xFF;
            if (MODE == PACK_PAIR && m == 0xFF && e->off + 16 * q + 16 <= plane) {
                e->m[2 * q] = e->m[2 * q + 1] = PAIR_FULL; /* the odd 16th stays in the plane */
            } else if (MODE == PACK_PAIR) {
                e->m[2 * q] = (uint8_t)spread_even4(m);
                e->m[2 * q + 1] = (uint8_t)spread_even4(m >> 4);
            } else {
                e->m[q] = (uint8_t)m;
            }
        }
    }
    return count;
}

/* One panel row: NV * 8 lanes from the loads of its tap, on channel xc. */
static inline __attribute__((always_inline)) void
pack_row(const int NV, const int MODE, const float *xc, const tap_load *e, int ne, int s,
         float *dst) {
    __m256 v[PACK_NV];
#pragma GCC unroll 8
    for (int q = 0; q < NV; q++)
        v[q] = _mm256_setzero_ps();
    for (; ne > 0; ne--, e++) {
#pragma GCC unroll 8
        for (int q = 0; q < NV; q++) {
            if (MODE == PACK_UNIT) {
                if (e->m[q] == 0xFF)
                    v[q] = _mm256_loadu_ps(addr_at(xc, e->off + 8 * q));
                else if (e->m[q])
                    v[q] = _mm256_or_ps(
                        v[q], _mm256_maskload_ps(addr_at(xc, e->off + 8 * q), bits_mask(e->m[q])));
            } else if (MODE == PACK_PAIR) {
                if (e->m[2 * q] | e->m[2 * q + 1]) {
                    const ptrdiff_t at = e->off + 16 * q;
                    __m256 lo, hi;
                    if (e->m[2 * q] == PAIR_FULL) {
                        lo = _mm256_loadu_ps(addr_at(xc, at));
                        hi = _mm256_loadu_ps(addr_at(xc, at + 8));
                    } else {
                        lo = _mm256_maskload_ps(addr_at(xc, at), bits_mask(e->m[2 * q]));
                        hi = _mm256_maskload_ps(addr_at(xc, at + 8), bits_mask(e->m[2 * q + 1]));
                    }
                    /* even elements: lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6, then the
                     * middle 64-bit lanes swapped */
                    __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
                    ev = _mm256_castpd_ps(
                        _mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0)));
                    v[q] = _mm256_or_ps(v[q], ev);
                }
            } else if (e->m[q]) {
                const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                                       _mm256_set1_epi32(s));
                v[q] = _mm256_mask_i32gather_ps(v[q], addr_at(xc, e->off + 8 * q * s), idx,
                                                _mm256_castsi256_ps(bits_mask(e->m[q])), 4);
            }
        }
    }
#pragma GCC unroll 8
    for (int q = 0; q < NV; q++)
        _mm256_store_ps(dst + 8 * q, v[q]);
}

#include "ops/x86/im2col_panel_x86.h"

/* The common widths get code of their own (the loops unrolled). */
static void pack_any(const int MODE, int NV, const rn_im2col *im, int k0, int kc,
                     const rn_im2col_run *runs, int nrun, float *dst) {
    switch (NV) {
    case 1: pack_panel(1, MODE, im, k0, kc, runs, nrun, dst); break;
    case 2: pack_panel(2, MODE, im, k0, kc, runs, nrun, dst); break;
    case 3: pack_panel(3, MODE, im, k0, kc, runs, nrun, dst); break;
    case 4: pack_panel(4, MODE, im, k0, kc, runs, nrun, dst); break;
    case 5: pack_panel(5, MODE, im, k0, kc, runs, nrun, dst); break;
    case 6: pack_panel(6, MODE, im, k0, kc, runs, nrun, dst); break;
    case 7: pack_panel(7, MODE, im, k0, kc, runs, nrun, dst); break;
    default: pack_panel(8, MODE, im, k0, kc, runs, nrun, dst); break;
    }
}

void rn_im2col_pack_avx2(const rn_im2col *im, int k0, int kc, long j0, int nr, float *dst) {
    // dst: (kc, nr) panel; x: (c, n, h, w)
    const long n_cols = (long)im->n * im->ho * im->wo;
    const int count = n_cols - j0 < nr ? (int)(n_cols - j0) : nr;
    rn_im2col_run runs[RN_PANEL_MAX];
    const int nrun = rn_im2col_runs(im, j0, count, runs);
    const int NV = nr / 8;
    if (im->stride == 1)
        pack_any(PACK_UNIT, NV, im, k0, kc, runs, nrun, dst);
    else if (im->stride == 2)
        pack_any(PACK_PAIR, NV, im, k0, kc, runs, nrun, dst);
    else
        pack_any(PACK_GATHER, NV, im, k0, kc, runs, nrun, dst);
}

/* ---------------------------------------------------------------------------
 * Transposed B panels (rn_pack_bt_fn): 8 source rows x 8 values of k at a
 * time, transposed in registers, so that each write is a whole 8-column row
 * piece of the panel instead of one float per cache line.
 * ------------------------------------------------------------------------- */

void rn_pack_bt_avx2(const float *src, ptrdiff_t ldb, int kc, int cols, int nr, float *dst) {
    /* 8 source rows at a time along the whole of k: rows lie far apart (often
     * a multiple of 4 KB, the same cache sets), and more than 8 at once
     * would evict each other's lines before their second use */
    const int k8 = kc / 8 * 8;
    for (int j0 = 0; j0 < nr; j0 += 8)
        for (int k = 0; k < k8; k += 8) {
            const int rows = cols - j0 < 0 ? 0 : cols - j0 > 8 ? 8 : cols - j0;
            __m256 r[8];
            for (int i = 0; i < 8; i++)
                r[i] = i < rows ? _mm256_loadu_ps(src + (ptrdiff_t)(j0 + i) * ldb + k)
                                : _mm256_setzero_ps();
            rn_transpose8_avx2(r);
            for (int i = 0; i < 8; i++)
                _mm256_storeu_ps(dst + (ptrdiff_t)(k + i) * nr + j0, r[i]);
        }
    for (int k = k8; k < kc; k++)
        for (int j = 0; j < nr; j++)
            dst[(ptrdiff_t)k * nr + j] = j < cols ? src[(ptrdiff_t)j * ldb + k] : 0.0f;
}

/* ---- batch 1's classifier (rn_gemv_fn) -----------------------------------------------------
 * A row at a time, 16 floats a step into two sums, the tail of fewer than 8 masked. */
void rn_sgemv_avx2(const float *x, int C, const float *w, const float *b, int rows, float *y) {
    static const int32_t ones[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int k = 0; k < rows; k++) {
        const float *wr = w + (size_t)k * C;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        int c = 0;
        for (; c + 16 <= C; c += 16) {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + c), _mm256_loadu_ps(x + c), s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(wr + c + 8), _mm256_loadu_ps(x + c + 8), s1);
        }
        for (; c < C; c += 8) {
            const int left = C - c < 8 ? C - c : 8;
            const __m256i m = _mm256_loadu_si256((const __m256i *)(ones + 8 - left));
            s0 = _mm256_fmadd_ps(_mm256_maskload_ps(wr + c, m), _mm256_maskload_ps(x + c, m), s0);
        }
        __m256 s = _mm256_add_ps(s0, s1);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        const float sum = _mm_cvtss_f32(h);
        y[k] = b ? sum + b[k] : sum;
    }
}
