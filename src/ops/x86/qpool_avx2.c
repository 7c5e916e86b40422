/*
 * qpool_avx2.c - the int8 max-pool's output rows (rn_qmaxpool_row_fn, kernels.h) with AVX2:
 * qpool_avx512.c's method at two pixels of 16 channels a vector.
 *
 * Compiled with AVX2_FLAGS; called only when the CPU has them.
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/kernels.h"

void rn_qmaxpool_row_avx2(const uint8_t *const *rows, int nrows, int w, int pad, int wo,
                          uint8_t *vm, uint8_t *y) {
    const int groups = (wo + 1) / 2;          /* two outputs a group */
    const int data_end = pad + w, end = 4 * groups + 2; /* the pixels the windows read */
    const __m128i zero = _mm_setzero_si128();
    for (int p = 0; p < pad; p++)
        _mm_storeu_si128((__m128i *)(vm + 16 * (size_t)p), zero);
    uint8_t *v = vm + 16 * (size_t)pad;
    int p = 0;
    for (; p + 2 <= w; p += 2) {
        __m256i mx = _mm256_setzero_si256();
        for (int r = 0; r < nrows; r++)
            mx = _mm256_max_epu8(mx, _mm256_loadu_si256((const __m256i *)(rows[r] + 16 * p)));
        _mm256_storeu_si256((__m256i *)(v + 16 * p), mx);
    }
    if (p < w) {
        __m128i mx = zero;
        for (int r = 0; r < nrows; r++)
            mx = _mm_max_epu8(mx, _mm_loadu_si128((const __m128i *)(rows[r] + 16 * p)));
        _mm_storeu_si128((__m128i *)(v + 16 * p), mx);
    }
    for (int q = data_end; q < end; q++)
        _mm_storeu_si128((__m128i *)(vm + 16 * (size_t)q), zero);
    /* output ow's window is pixels 2 ow .. 2 ow + 2 of vm: the maxima of three shifted loads at
     * pixel 2 ow (h0) and 2 ow + 2 (h1) hold those of outputs ow and ow + 1 in their low lanes */
    for (int g = 0; g < groups; g++) {
        const uint8_t *a = vm + 64 * (size_t)g;
        const __m256i h0 = _mm256_max_epu8(
            _mm256_max_epu8(_mm256_loadu_si256((const __m256i *)a),
                            _mm256_loadu_si256((const __m256i *)(a + 16))),
            _mm256_loadu_si256((const __m256i *)(a + 32)));
        const __m256i h1 = _mm256_max_epu8(
            _mm256_max_epu8(_mm256_loadu_si256((const __m256i *)(a + 32)),
                            _mm256_loadu_si256((const __m256i *)(a + 48))),
            _mm256_loadu_si256((const __m256i *)(a + 64)));
        if (2 * g + 1 < wo)
            _mm256_storeu_si256((__m256i *)(y + 32 * (size_t)g),
                                _mm256_permute2x128_si256(h0, h1, 0x20));
        else
            _mm_storeu_si128((__m128i *)(y + 32 * (size_t)g), _mm256_castsi256_si128(h0));
    }
}
