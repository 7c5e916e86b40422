/*
 * conv_direct_avx2.c - the direct convolution's tile (contract in
 * ops/direct.h) with AVX2 + FMA: up to 6 pixels x 16 channels in 12 ymm
 * accumulators; per tap, 6 input values broadcast, 2 vectors of weights,
 * 12 fused multiply-adds (the GEMM micro-kernel's shape, with the input
 * read in place at any stride). The tile is transposed in registers for the
 * store, where a channel's pixels lie together.
 *
 * Compiled with -mavx2 -mfma; called only when the CPU has both.
 */
#include <immintrin.h>
#include <stdint.h>
#include <stddef.h>

#include "ops/kernels.h"
#include "ops/x86/avx2_util.h"

/* M pixels; XS their stride when known at compile time (1, 2), else 0: t->xs. */
static inline __attribute__((always_inline)) void tile(const int M, const int XS, const float *w,
                                                       const rn_direct_tile *t) {
    __m256 acc[RN_DIRECT_MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < M; i++)
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    const float *x = t->x;
    const ptrdiff_t xs = XS ? XS : t->xs;
    const int kc = t->kc;
    rn_direct_prefetch_lines(t);
#pragma GCC unroll 2
    for (int k = 0; k < kc; k++) {
        const float *xk = x + t->off[k];
        const __m256 b0 = _mm256_loadu_ps(w + (ptrdiff_t)k * RN_DIRECT_NR);
        const __m256 b1 = _mm256_loadu_ps(w + (ptrdiff_t)k * RN_DIRECT_NR + 8);
#pragma GCC unroll 6
        for (int i = 0; i < M; i++) {
            const __m256 a = _mm256_broadcast_ss(xk + i * xs);
            acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
        }
    }

    if (t->blocked) { /* pixel i's 16 channels in one line (direct.h) */
        const __m256 zero = _mm256_setzero_ps();
        const __m256 b0 = t->bias ? _mm256_loadu_ps(t->bias) : zero;
        const __m256 b1 = t->bias ? _mm256_loadu_ps(t->bias + 8) : zero;
#pragma GCC unroll 6
        for (int i = 0; i < M; i++) {
            __m256 o0 = _mm256_add_ps(acc[i][0], b0), o1 = _mm256_add_ps(acc[i][1], b1);
            if (t->relu) /* NaN (2nd operand) passes, as in PyTorch */
                o0 = _mm256_max_ps(zero, o0), o1 = _mm256_max_ps(zero, o1);
            _mm256_storeu_ps(t->y + 16 * i, o0);
            _mm256_storeu_ps(t->y + 16 * i + 8, o1);
        }
        return;
    }
    /* rows: pixels x 8 channels -> rows: channels x 8 pixels (the first M valid) */
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(M), lanes);
    const __m256 zero = _mm256_setzero_ps();
    /* a whole row of 8 stored where the two past the tile are this row's next pixels, which
     * the next tile (on this thread) overwrites: no masked store (slow on AMD) */
    const int whole = t->wide && !t->res;
#pragma GCC unroll 2
    for (int v = 0; v < 2; v++) {
        __m256 r[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++)
            r[i] = i < M ? acc[i][v] : zero;
        rn_transpose8_avx2(r);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            const int ch = 8 * v + j;
            if (ch >= t->n)
                break;
            const ptrdiff_t at = (ptrdiff_t)ch * t->ldy;
            __m256 o = r[j];
            if (t->bias)
                o = _mm256_add_ps(o, _mm256_broadcast_ss(t->bias + ch));
            if (t->res)
                o = _mm256_add_ps(o, _mm256_maskload_ps(t->res + at, mask));
            if (t->relu)
                o = _mm256_max_ps(zero, o); /* NaN (2nd operand) passes, as in PyTorch */
            if (whole)
                _mm256_storeu_ps(t->y + at, o);
            else
                _mm256_maskstore_ps(t->y + at, mask, o);
        }
    }
}

#define BY_STRIDE(M)                                                                               \
    (t->xs == 2 ? tile(M, 2, w, t) : t->xs == 1 ? tile(M, 1, w, t) : tile(M, 0, w, t))

void rn_direct_tile_avx2(const float *w, const rn_direct_tile *t) {
    switch (t->m) {
    case 6: BY_STRIDE(6); break;
    case 5: BY_STRIDE(5); break;
    case 4: BY_STRIDE(4); break;
    case 3: BY_STRIDE(3); break;
    case 2: BY_STRIDE(2); break;
    default: BY_STRIDE(1); break;
    }
}

/* ---------------------------------------------------------------------------
 * The direct weight gradient's strip (contract in ops/direct.h): 4 output
 * channels x KW taps in 4 * KW ymm accumulators (12 for a 3-wide window);
 * per 8 positions of a row, KW vectors of the input (at offsets 0 .. KW-1,
 * unaligned), then for each channel a vector of dy and KW fused
 * multiply-adds; a row's last positions under a mask (zeros past wid).
 * ------------------------------------------------------------------------- */

static const int32_t LANES[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* 8 positions of KW taps x 4 channels; the masked loads where MASKED (tail) */
static inline __attribute__((always_inline)) void step(const int KW, const int MASKED,
                                                       const float *x, const float *dy,
                                                       ptrdiff_t ldd, __m256i tail,
                                                       __m256 a[RN_WGRAD_CO][RN_WGRAD_KW_MAX]) {
    __m256 xv[RN_WGRAD_KW_MAX];
#pragma GCC unroll 3
    for (int j = 0; j < KW; j++)
        xv[j] = MASKED ? _mm256_maskload_ps(x + j, tail) : _mm256_loadu_ps(x + j);
    /* one dy vector at a time: 12 accumulators, 3 input vectors and 1 of dy fill the 16
     * registers (loading all four first spilled accumulators) */
#pragma GCC unroll 4
    for (int c = 0; c < RN_WGRAD_CO; c++) {
        const __m256 dv = MASKED ? _mm256_maskload_ps(dy + c * ldd, tail)
                                 : _mm256_loadu_ps(dy + c * ldd);
#pragma GCC unroll 3
        for (int j = 0; j < KW; j++)
            a[c][j] = _mm256_fmadd_ps(dv, xv[j], a[c][j]);
    }
}

static inline __attribute__((always_inline)) void strip(const int KW, const rn_wgrad_strip *s,
                                                        float *acc) {
    __m256 a[RN_WGRAD_CO][RN_WGRAD_KW_MAX];
#pragma GCC unroll 4
    for (int c = 0; c < RN_WGRAD_CO; c++)
#pragma GCC unroll 3
        for (int j = 0; j < KW; j++)
            a[c][j] = _mm256_loadu_ps(acc + (c * KW + j) * 8);
    const ptrdiff_t ldd = s->ldd;
    const int whole = s->wid / 8 * 8, rest = s->wid - whole;
    const __m256i tail = _mm256_loadu_si256((const __m256i *)(LANES + 8 - rest));
    for (int b = 0; b < s->nimg; b++)
        for (int r = 0; r < s->nrows; r++) {
            const float *x = s->x + b * s->xstep + r * s->xld;
            const float *d0 = s->dy + b * s->dstep + r * s->dld;
            int q = 0;
#pragma GCC unroll 2
            for (; q < whole; q += 8)
                step(KW, 0, x + q, d0 + q, ldd, tail, a);
            if (rest)
                step(KW, 1, x + q, d0 + q, ldd, tail, a);
        }
#pragma GCC unroll 4
    for (int c = 0; c < RN_WGRAD_CO; c++)
#pragma GCC unroll 3
        for (int j = 0; j < KW; j++)
            _mm256_storeu_ps(acc + (c * KW + j) * 8, a[c][j]);
}

void rn_wgrad_strip_avx2(const rn_wgrad_strip *s, float *acc) {
    switch (s->kw) {
    case 3: strip(3, s, acc); break;
    case 2: strip(2, s, acc); break;
    default: strip(1, s, acc); break;
    }
}
