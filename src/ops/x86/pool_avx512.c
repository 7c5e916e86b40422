/*
 * pool_avx512.c - the blocked max-pool's whole 3x3 windows at stride 2 (rn_maxpool16_fn,
 * kernels.h; ResNet's stem pool) with AVX-512: each window's 9 vectors of 16 channels taken
 * in the reference's scan order, 16 windows' maxima transposed in registers
 * (direct_store_avx512.h) so that a channel's 16 outputs are one store. The C loop it replaces
 * (pool.c) ran at SSE's width and stored its outputs one float at a time. Also the scan for NaN
 * that decides between this rule and the reference's (rn_has_nan_fn).
 *
 * Compiled with AVX512_FLAGS; called only when the CPU has them.
 */
#include <immintrin.h>
#include <math.h>
#include <stddef.h>

#include "ops/kernels.h"
#include "ops/x86/direct_store_avx512.h"

void rn_maxpool16_avx512(const float *x, ptrdiff_t ldx, int cols, float *y, ptrdiff_t ldy) {
    for (int c0 = 0; c0 < cols; c0 += 16) {
        const int m = cols - c0 < 16 ? cols - c0 : 16;
        __m512 r[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            r[i] = _mm512_setzero_ps();
            if (i < m) {
                const float *w = x + (ptrdiff_t)(c0 + i) * 32; /* stride 2 of 16 channels */
                __m512 mx = _mm512_set1_ps(-INFINITY);
                /* max(v, mx) is "v > mx ? v : mx": a tie (signed zeros) keeps the earlier */
#pragma GCC unroll 9
                for (int t = 0; t < 9; t++)
                    mx = _mm512_max_ps(_mm512_loadu_ps(w + (t / 3) * ldx + (t % 3) * 16), mx);
                r[i] = mx;
            }
        }
        rn_transpose16_avx512(r); /* r[l]: channel l of the 16 windows */
        const __mmask16 mask = (__mmask16)((1u << m) - 1);
#pragma GCC unroll 16
        for (int l = 0; l < 16; l++)
            _mm512_mask_storeu_ps(y + l * ldy + c0, mask, r[l]);
    }
}

int rn_has_nan_avx512(const float *x, size_t n) {
    __mmask16 any = 0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
        const __m512 c = _mm512_loadu_ps(x + i + 32), d = _mm512_loadu_ps(x + i + 48);
        any |= _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(c, d, _CMP_UNORD_Q);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 a = _mm512_maskz_loadu_ps(m, x + i); /* zeros past n: ordered */
        any |= _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
    }
    return any != 0;
}
