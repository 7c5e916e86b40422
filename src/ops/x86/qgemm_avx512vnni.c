/*
 * qgemm_avx512vnni.c - the int8 GEMM tile on AVX-512 VNNI (qconv.h): up to
 * 32 output channels (two vectors of 16 int32 lanes) x up to 12 columns.
 *
 * Per 4 bytes of K: the column's 4 input bytes are broadcast to every lane
 * and vpdpbusd adds their products with each channel's 4 weights into the
 * channel's int32 lane. The epilogue is rn_requant's, vectorised operation
 * for operation, so the bytes equal the oracle's.
 *
 * The full tile (12 columns x 32 channels, almost every call) runs its K loop
 * in assembly (full_tile below). The C loop, which the narrower tiles run, is
 * 20-40% slower there (one thread, operands in L1, AMD Zen 5): gcc 12 fits
 * the 24 accumulators, two weight vectors and the broadcasts into the 32
 * registers only by copying accumulators from register to register, and the
 * copies take the vector ports the dot products need.
 */
#include <immintrin.h>
#include <string.h>

#include "ops/qconv.h"
#include "ops/x86/qreq_avx512.h"

#define NJ_MAX 12

/* The epilogue of nj columns x ncb blocks (column j, block b: acc[2j + b]), each block's channel
 * vectors and the per-tensor operands loaded once and the residual and ReLU tests out of the
 * columns' loop (RES, RELU: constants in the full tile). rn_requant16_avx512 per vector, which
 * the AMX tile uses, reloads and tests them at every vector: 40 instructions a vector instead of
 * about 15, half of a full tile's time at K = 64 (resnet50's 1x1 layers on 64 channels). */
static inline __attribute__((always_inline)) void store_cols(const rn_qtile *t,
                                                             const __m512i *acc, const int nj,
                                                             const int ncb, const int RES,
                                                             const int RELU) {
    const rn_qreq *rq = t->rq;
    const rn_qreq_avx512 k = rn_qreq_load_avx512(rq);
    for (int b = 0; b < ncb; b++) {
        const __m512i comp = _mm512_loadu_si512(rq->comp + b * 16);
        const __m512 mult = _mm512_loadu_ps(rq->mult + b * 16);
        const __m512 bias = _mm512_loadu_ps(rq->bias + b * 16);
        uint8_t *y = t->y + b * t->y_bs;
        const uint8_t *r = RES ? t->r + b * t->y_bs : NULL;
#pragma GCC unroll 12
        for (int j = 0; j < nj; j++)
            _mm_storeu_si128((__m128i *)(y + rn_qtile_col_at(t, j)),
                             rn_requant16_vec_avx512(&k, acc[2 * j + b], comp, mult, bias, RES,
                                                     RES ? r + rn_qtile_col_at(t, j) : NULL,
                                                     RELU));
    }
}

static inline __attribute__((always_inline)) void tile(const rn_qtile *t, const int nj,
                                                       const int ncb) {
    __m512i acc[NJ_MAX][2];
#pragma GCC unroll 12
    for (int j = 0; j < nj; j++)
        acc[j][0] = acc[j][1] = _mm512_setzero_si512();
    for (int g = 0; g < t->groups; g++) {
        const uint8_t *a = t->a + rn_qtile_group_at(t, g);
        const int8_t *w = t->w + (long)g * 256;
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            __m512i w0 = _mm512_loadu_si512(w + q * 64);
            __m512i w1 = ncb > 1 ? _mm512_loadu_si512(w + t->w_bs + q * 64) : w0;
#pragma GCC unroll 12
            for (int j = 0; j < nj; j++) {
                __m512i x = rn_bcast4_avx512(a + j * t->a_js + q * 4);
                acc[j][0] = _mm512_dpbusd_epi32(acc[j][0], x, w0);
                if (ncb > 1)
                    acc[j][1] = _mm512_dpbusd_epi32(acc[j][1], x, w1);
            }
        }
    }
    store_cols(t, &acc[0][0], nj, ncb, t->r != NULL, rn_qreq_relu_kind(t->rq));
}

/* Column j's 4 bytes of K (byte 4q of the group) at ADDR, broadcast into zmm T, times both blocks'
 * weights (zmm24, zmm25) into the column's accumulators zmm A0 (block 0) and zmm A1 (block 1).
 * Columns 0-3 start at p0, 4-7 at p4, 8-11 at p8, each a_js (js) after the one before. */
#define COL(q, ADDR, T, A0, A1)                                                                   \
    "vpbroadcastd 4*" #q ADDR ", %%zmm" #T "\n\t"                                                 \
    "vpdpbusd %%zmm24, %%zmm" #T ", %%zmm" #A0 "\n\t"                                             \
    "vpdpbusd %%zmm25, %%zmm" #T ", %%zmm" #A1 "\n\t"
/* Each step asks for both blocks' weights WPF bytes (8 groups) ahead: a channel tile's weights
 * stream from L3 or memory in its first column tile (and in every one where they outgrow L1 and
 * L2: resnet50's layer4, 4608 bytes of K), and this VM's hardware prefetch left the tile waiting
 * on them. resnet50 int8 at batch 1, node timers, 3 rounds alternated (Zen 5, 2 threads): the
 * 1x1/2 1024 -> 2048 at 7x7 177-192 -> 163-178 us, the pass 6.62-6.70 -> 6.03-6.64 ms; resnet18 at
 * batch 1 2.69-2.87 -> 2.63-2.78, at batch 32 level (83.0-84.6 -> 82.6-82.7). 4 KB ahead did as
 * well on resnet50, 1 KB and 512 B less. */
#define WPF "2048"
#define STEP(q)                                                                                   \
    "prefetcht0 " WPF "+64*" #q "(%[w])\n\t"                                                        \
    "prefetcht0 " WPF "+64*" #q "(%[w],%[wbs])\n\t"                                                 \
    "vmovdqu64 64*" #q "(%[w]), %%zmm24\n\t"                                                      \
    "vmovdqu64 64*" #q "(%[w],%[wbs]), %%zmm25\n\t"                                               \
    COL(q, "(%[p0])", 26, 0, 1) COL(q, "(%[p0],%[js])", 27, 2, 3)                                 \
    COL(q, "(%[p0],%[js],2)", 28, 4, 5) COL(q, "(%[p0],%[js3])", 29, 6, 7)                        \
    COL(q, "(%[p4])", 26, 8, 9) COL(q, "(%[p4],%[js])", 27, 10, 11)                               \
    COL(q, "(%[p4],%[js],2)", 28, 12, 13) COL(q, "(%[p4],%[js3])", 29, 14, 15)                    \
    COL(q, "(%[p8])", 26, 16, 17) COL(q, "(%[p8],%[js])", 27, 18, 19)                             \
    COL(q, "(%[p8],%[js],2)", 28, 20, 21) COL(q, "(%[p8],%[js3])", 29, 22, 23)
#define ZERO2(a, b)                                                                               \
    "vpxord %%zmm" #a ", %%zmm" #a ", %%zmm" #a "\n\t"                                            \
    "vpxord %%zmm" #b ", %%zmm" #b ", %%zmm" #b "\n\t"
#define SAVE2(a, b)                                                                               \
    "vmovdqa64 %%zmm" #a ", 64*" #a "(%[acc])\n\t"                                                \
    "vmovdqa64 %%zmm" #b ", 64*" #b "(%[acc])\n\t"

/* The full tile, 12 columns x 2 blocks (groups >= 1): the sums of tile(t, 12, 2), accumulated in
 * zmm0-23 (column j, block b: zmm 2j + b), then through memory into the epilogue. Group g's
 * columns start at a + off, off the table's a_goff[g] or g * a_gs. */
static void full_tile(const rn_qtile *t) {
    _Alignas(64) int32_t acc[2 * NJ_MAX][16];
    const uint8_t *p0, *p4, *p8;
    const int8_t *w = t->w;
    const long *goff = t->a_goff;
    long g = t->groups, off = 0;
    const long js = t->a_js, js3 = 3 * t->a_js, js4 = 4 * t->a_js, wbs = t->w_bs, gs = t->a_gs;
    __asm__ volatile(
        ZERO2(0, 1) ZERO2(2, 3) ZERO2(4, 5) ZERO2(6, 7) ZERO2(8, 9) ZERO2(10, 11)
        ZERO2(12, 13) ZERO2(14, 15) ZERO2(16, 17) ZERO2(18, 19) ZERO2(20, 21) ZERO2(22, 23)
        "1:\n\t"
        "test %[goff], %[goff]\n\t"
        "jz 2f\n\t"
        "mov (%[goff]), %[off]\n\t"
        "add $8, %[goff]\n\t"
        "2:\n\t"
        "lea (%[a],%[off]), %[p0]\n\t"
        "lea (%[p0],%[js4]), %[p4]\n\t"
        "lea (%[p0],%[js4],2), %[p8]\n\t"
        STEP(0) STEP(1) STEP(2) STEP(3)
        "add %[gs], %[off]\n\t"
        "add $256, %[w]\n\t"
        "dec %[g]\n\t"
        "jnz 1b\n\t"
        SAVE2(0, 1) SAVE2(2, 3) SAVE2(4, 5) SAVE2(6, 7) SAVE2(8, 9) SAVE2(10, 11)
        SAVE2(12, 13) SAVE2(14, 15) SAVE2(16, 17) SAVE2(18, 19) SAVE2(20, 21) SAVE2(22, 23)
        : [p0] "=&r"(p0), [p4] "=&r"(p4), [p8] "=&r"(p8), [w] "+r"(w), [g] "+r"(g),
          [off] "+r"(off), [goff] "+r"(goff)
        : [a] "r"(t->a), [js] "r"(js), [js3] "r"(js3), [js4] "r"(js4), [wbs] "r"(wbs),
          [gs] "r"(gs), [acc] "r"(acc)
        : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
          "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18",
          "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27",
          "xmm28", "xmm29");
    const __m512i *sums = (const __m512i *)acc;
    const int relu = rn_qreq_relu_kind(t->rq);
    if (t->r)
        relu == 2   ? store_cols(t, sums, NJ_MAX, 2, 1, 2)
        : relu == 1 ? store_cols(t, sums, NJ_MAX, 2, 1, 1)
                    : store_cols(t, sums, NJ_MAX, 2, 1, 0);
    else
        relu == 2   ? store_cols(t, sums, NJ_MAX, 2, 0, 2)
        : relu == 1 ? store_cols(t, sums, NJ_MAX, 2, 0, 1)
                    : store_cols(t, sums, NJ_MAX, 2, 0, 0);
}

#define CASE(n)                                                                                   \
    case n:                                                                                       \
        if (t->ncb > 1)                                                                           \
            tile(t, n, 2);                                                                        \
        else                                                                                      \
            tile(t, n, 1);                                                                        \
        break;

void rn_qgemm_avx512vnni(const rn_qtile *t) {
    switch (t->nj) {
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8) CASE(9) CASE(10) CASE(11)
    default:
        if (t->ncb > 1 && t->groups > 0)
            full_tile(t);
        else
            tile(t, NJ_MAX, 1);
        break;
    }
}
