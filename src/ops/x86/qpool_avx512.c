/*
 * qpool_avx512.c - the int8 max-pool's output rows (rn_qmaxpool_row_fn, kernels.h; ResNet's
 * stem pool, 3x3 windows at stride 2 on c16 planes) with AVX-512: four pixels of 16 channels
 * a vector. The window rows' maxima first, into a row padded with zero pixels (the bytes are
 * never negative: a zero never wins where the reference, starting from 0, lets none win), then
 * each output pixel's maximum over three neighbours of that row, four outputs a store. The C
 * loop beside it (qconv.c) runs 16 bytes at a time: resnet18's int8 pool at batch 1
 * (`profile_layers -p int8`, AMD EPYC Zen 5, 2 threads, 4 rounds alternated) 41-46 -> 28-30 us;
 * at batch 32 level (1.49-1.63 against 1.60-1.66 ms: there it waits on reading the stem's 26 MB
 * output from memory). AVX2 (qpool_avx2.c, `RN_ISA=avx2`) 38-40 -> 34-35 us.
 *
 * Compiled with AVX512_FLAGS; called only when the CPU has them.
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/kernels.h"

static inline __mmask64 byte_mask(size_t left) {
    return left >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << left) - 1;
}

void rn_qmaxpool_row_avx512(const uint8_t *const *rows, int nrows, int w, int pad, int wo,
                            uint8_t *vm, uint8_t *y) {
    const int groups = (wo + 3) / 4;          /* four outputs a group */
    const int data_end = pad + w, end = 8 * groups + 2; /* the pixels the windows read */
    const __m128i zero = _mm_setzero_si128();
    for (int p = 0; p < pad; p++)
        _mm_storeu_si128((__m128i *)(vm + 16 * (size_t)p), zero);
    const size_t bytes = (size_t)w * 16;
    uint8_t *v = vm + 16 * (size_t)pad;
    size_t i = 0;
    for (; i + 64 <= bytes; i += 64) {
        __m512i mx = _mm512_setzero_si512();
        for (int r = 0; r < nrows; r++)
            mx = _mm512_max_epu8(mx, _mm512_loadu_si512(rows[r] + i));
        _mm512_storeu_si512(v + i, mx);
    }
    if (i < bytes) {
        const __mmask64 m = byte_mask(bytes - i);
        __m512i mx = _mm512_setzero_si512();
        for (int r = 0; r < nrows; r++)
            mx = _mm512_max_epu8(mx, _mm512_maskz_loadu_epi8(m, rows[r] + i));
        _mm512_mask_storeu_epi8(v + i, m, mx);
    }
    for (int p = data_end; p < end; p++)
        _mm_storeu_si128((__m128i *)(vm + 16 * (size_t)p), zero);
    /* output ow's window is pixels 2 ow .. 2 ow + 2 of vm: the maxima of three shifted loads
     * at pixel 2 ow (h0) and 2 ow + 4 (h1) hold those of outputs ow, ow + 1 in their 16-byte
     * lanes 0 and 2, and ow + 2, ow + 3 in h1's */
    for (int g = 0; g < groups; g++) {
        const uint8_t *a = vm + 128 * (size_t)g;
        const __m512i h0 = _mm512_max_epu8(
            _mm512_max_epu8(_mm512_loadu_si512(a), _mm512_loadu_si512(a + 16)),
            _mm512_loadu_si512(a + 32));
        const __m512i h1 = _mm512_max_epu8(
            _mm512_max_epu8(_mm512_loadu_si512(a + 64), _mm512_loadu_si512(a + 80)),
            _mm512_loadu_si512(a + 96));
        const __m512i out = _mm512_shuffle_i64x2(h0, h1, _MM_SHUFFLE(2, 0, 2, 0));
        if (4 * g + 4 <= wo)
            _mm512_storeu_si512(y + 64 * (size_t)g, out);
        else
            _mm512_mask_storeu_epi8(y + 64 * (size_t)g, byte_mask(16 * (size_t)(wo - 4 * g)), out);
    }
}
