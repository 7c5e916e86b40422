/*
 * qim2col_avx512vbmi.c - the window copy of plain int8 input (the network's: the stem) in the
 * group-major layout (rn_qim2col_plain_fn, qconv.h), with AVX-512 VBMI's byte permutes.
 *
 * Per run of output columns on one output row: each window row (input channel ci, kernel row r:
 * "piece" p = ci * kh + r, K bytes p * kw .. p * kw + kw - 1) is first copied into a row of the
 * scratch with the padding written out (the zero point left and right, a whole row of it above
 * and below the image), so no window needs a bounds test. Then per group g of 16 K bytes and 4
 * columns at a time, one 64-byte vector (column c's 16 bytes in lane block c): the pieces that
 * meet the group, two at a time, each load 64 bytes of their row from the first column's window
 * on, and one vpermt2b moves byte c * stride + q (q the tap in the piece) of either into the
 * lanes the pair fills, under their mask. K bytes past the window (up to kpad) are 0, as
 * im2col_rows_plain writes them. So four columns cost two loads and a permute per pair of
 * pieces and one store per group, against one load and one store per piece and column (a 7x7
 * stem: 21 of each, and their loop, 40% of the stem's time on AMD Zen 5).
 *
 * Compiled with the AVX-512 flags and -mavx512vbmi; reached only through descriptors that need
 * the CPU's VBMI (kernels.c).
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops/qconv.h"

/* A pair of window rows that meet one group: the lanes they fill and, per lane, the byte in
 * the two rows' 64-byte loads (bit 6: the second row's), from the first column's window on. */
typedef struct pair {
    uint8_t idx[64];
    uint64_t mask;
    int p0, p1; /* the rows (pieces) */
} pair;

#define PAIRS_MAX 8 /* a group of 16 bytes meets at most 16 pieces (kw = 1) */

/* The scratch: each group's pairs and their count, then (from a cache line on) the padded
 * window rows. */
static size_t tables_bytes(int groups) {
    const size_t bytes = (size_t)groups * (PAIRS_MAX * sizeof(pair) + sizeof(int));
    return (bytes + 63) / 64 * 64;
}

size_t rn_qim2col_plain_scratch_avx512vbmi(const rn_conv_shape *s, int kpad) {
    return tables_bytes(kpad / 16) + (size_t)s->cin * s->kh * rn_qim2col_plain_row_bytes(s);
}

/* Group g's pairs into pr[g * PAIRS_MAX ...], their count into npair[g]. */
static void build_pairs(const rn_conv_shape *s, int groups, pair *pr, int *npair) {
    const int kw = s->kw, st = s->stride, kreal = s->cin * s->kh * kw;
    for (int g = 0; g < groups; g++) {
        const int k0 = 16 * g;
        pair *gp = pr + (size_t)g * PAIRS_MAX;
        int np = 0; /* pieces so far */
        if (k0 < kreal) {
            int p = k0 / kw, q = k0 % kw;
            uint8_t pat[16] = {0};
            unsigned m16 = 0;
            for (int l = 0; l < 16 && k0 + l < kreal; l++) {
                pat[l] = (uint8_t)(q + (np & 1) * 64);
                m16 |= 1u << l;
                const int last = l == 15 || k0 + l + 1 == kreal;
                if (++q == kw || last) { /* the piece ends */
                    pair *pp = gp + np / 2;
                    if (np & 1) {
                        pp->p1 = p;
                    } else {
                        pp->p0 = pp->p1 = p;
                        pp->mask = 0;
                    }
                    if (np & 1 || last) { /* the pair ends */
                        for (int c = 0; c < 4; c++)
                            for (int b = 0; b < 16; b++)
                                pp->idx[16 * c + b] = (uint8_t)(pat[b] + c * st);
                        pp->mask |= (uint64_t)m16 * 0x0001000100010001ull;
                        m16 = 0;
                    }
                    np++, p++, q = 0;
                }
            }
        }
        npair[g] = (np + 1) / 2;
    }
}

/* One group's 16 bytes of columns [0, len) of the run into o (column t at o + 16 t), 4 columns
 * a vector: its np pairs' rows, permutes and masks held in registers over the columns (np a
 * constant where the caller's switch makes it one). Reloading them from the table for every
 * vector, the loop had taken 23% of the stem's time on one thread (AMD Zen 5). */
static inline __attribute__((always_inline)) void copy_group(const pair *gp, const int np,
                                                             const uint8_t *first, size_t pw,
                                                             int st, int len, uint8_t *o) {
    const uint8_t *r0[PAIRS_MAX], *r1[PAIRS_MAX];
    __m512i idx[PAIRS_MAX];
    __mmask64 m[PAIRS_MAX];
    for (int q = 0; q < np; q++) {
        r0[q] = first + (size_t)gp[q].p0 * pw;
        r1[q] = first + (size_t)gp[q].p1 * pw;
        idx[q] = _mm512_loadu_si512((const void *)gp[q].idx);
        m[q] = gp[q].mask;
    }
    for (int t = 0; t < len; t += 4) {
        const size_t at = (size_t)t * st;
        __m512i v = _mm512_maskz_permutex2var_epi8(m[0], _mm512_loadu_si512(r0[0] + at), idx[0],
                                                   _mm512_loadu_si512(r1[0] + at));
        for (int q = 1; q < np; q++)
            v = _mm512_or_si512(v, _mm512_maskz_permutex2var_epi8(
                                       m[q], _mm512_loadu_si512(r0[q] + at), idx[q],
                                       _mm512_loadu_si512(r1[q] + at)));
        if (t + 4 <= len)
            _mm512_storeu_si512((void *)(o + t * 16), v);
        else
            _mm512_mask_storeu_epi8(o + t * 16, ((__mmask64)1 << (16 * (len - t))) - 1, v);
    }
}

void rn_qim2col_plain_avx512vbmi(const rn_conv_shape *s, int kpad, const uint8_t *x, int zp,
                                 long j0, int count, uint8_t *dst, long gs, uint8_t *scratch) {
    const size_t nhw = (size_t)s->n * s->h * s->w;
    const long hw_out = (long)s->ho * s->wo;
    const int st = s->stride, kh = s->kh, pad = s->pad;
    const int npiece = s->cin * kh, groups = kpad / 16;
    const size_t pw = rn_qim2col_plain_row_bytes(s);
    pair *pr = (pair *)scratch;
    int *npair = (int *)(pr + (size_t)groups * PAIRS_MAX);
    uint8_t *rows = scratch + tables_bytes(groups);
    build_pairs(s, groups, pr, npair);
    for (int i = 0; i < count;) {
        const long j = j0 + i;
        const int b = (int)(j / hw_out), rem = (int)(j % hw_out);
        const int oh = rem / s->wo, ow0 = rem % s->wo;
        const int len = s->wo - ow0 < count - i ? s->wo - ow0 : count - i;
        /* the run's window rows, padded: byte u of row p is input column u - pad */
        for (int p = 0; p < npiece; p++) {
            const int ci = p / kh, ih = oh * st - pad + p % kh;
            uint8_t *row = rows + (size_t)p * pw;
            if (ih < 0 || ih >= s->h) {
                memset(row, zp, pw);
                continue;
            }
            memset(row, zp, (size_t)pad);
            memcpy(row + pad, x + (size_t)ci * nhw + ((size_t)b * s->h + ih) * s->w,
                   (size_t)s->w);
            memset(row + pad + s->w, zp, pw - (size_t)pad - (size_t)s->w);
        }
        const uint8_t *first = rows + (size_t)ow0 * st; /* row 0 from the run's first window */
        for (int g = 0; g < groups; g++) {
            const pair *gp = pr + (size_t)g * PAIRS_MAX;
            uint8_t *o = dst + (long)g * gs + (long)i * 16;
            /* every group meets a window row (kpad is K rounded up to 16): 1 pair or more; a
             * 7x7 stem's groups meet 3 or 4 rows, 2 pairs */
            switch (npair[g]) {
            case 1: copy_group(gp, 1, first, pw, st, len, o); break;
            case 2: copy_group(gp, 2, first, pw, st, len, o); break;
            default: copy_group(gp, npair[g], first, pw, st, len, o); break;
            }
        }
        i += len;
    }
}
