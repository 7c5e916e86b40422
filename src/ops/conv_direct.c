/*
 * conv_direct.c - direct convolution (an algorithm behind conv_algo.h's
 * seam; the tile contract in direct.h).
 *
 * Each tile multiplies a row of up to direct_mr output pixels by direct_nr
 * output channels (the kernel descriptor's: 6 x 16 for AVX2 and C, 14 x 32
 * for AVX-512) over the whole window: the input values broadcast, the
 * weights loaded as vectors. Nothing is packed per call but a copy of the
 * input with its padding written out, so the im2col GEMM's packing (for the
 * 3-channel 7x7/2 stem, a strided gather of 147 taps into every panel,
 * about a third of the stem's time) disappears. It pays where the input has
 * few channels: the weights of a tile (K x 16 or 32) stay in L1 and every
 * input value is used for 16 or 32 channels straight from there. The wide tile also takes
 * 1x1 convolutions on small maps, where its rows are the whole map (flat below) and a 7x7 map
 * wastes less of it than of the GEMM's 16-column vectors.
 *
 * Preparation: the weights packed in panels of direct_nr output channels,
 * K x direct_nr each (zero past cout), tap k = (c, ki, kj) in the order of w.
 * Forward, a round of images at a time: the padded copy and the taps'
 * offsets into it (the workspace), then the tiles, threads sharing out
 * (output row, channel panel) pairs: the panels of a row together where the
 * weights are smaller than the round's input (the stems: every panel stays
 * in cache while a row's input is read once), the rows of a panel together
 * where they are larger (a small map at batch 1, 512 channels at 7x7: each
 * thread streams its share of the 9.4 MB of weights once, not once a row).
 * Every output is one sum over k in order, the same on any thread count.
 *
 * On a bf16 descriptor the tile multiplies bf16 pairs (direct.h): the same
 * algorithm on "words" (words() below: one per pair of input channels), the
 * copy of the input interleaving channel pairs rounded to bf16 (pad_pairs,
 * gather_pairs), the weights packed as pairs. forward_blocked16 writes the
 * output blocked by 16 channels for the stem's max-pool (conv_algo.h).
 */
#include <stdint.h>
#include <string.h>

#include "core/threads.h"
#include "ops/conv_algo.h"
#include "ops/kernels.h"

#define NR RN_DIRECT_NR

static int ceil_div(long a, long b) { return (int)((a + b - 1) / b); }

/* The portable tiles' store: acc[i][j] (pixel i, channel j) with the epilogue. */
static void store_tile(float acc[RN_DIRECT_MR_MAX][NR], const rn_direct_tile *t) {
    for (int j = 0; j < t->n; j++)
        for (int i = 0; i < t->m; i++) {
            const ptrdiff_t at = t->blocked ? (ptrdiff_t)(j / 16) * t->ldy + 16 * i + j % 16
                                            : (ptrdiff_t)j * t->ldy + i;
            float v = acc[i][j];
            if (t->bias)
                v += t->bias[j];
            if (t->res)
                v += t->res[at];
            if (t->relu && v < 0.0f) /* NaN stays NaN */
                v = 0.0f;
            t->y[at] = v;
        }
}

void rn_direct_tile_portable(const float *w, const rn_direct_tile *t) {
    rn_direct_prefetch_lines(t);
    float acc[RN_DIRECT_MR_MAX][NR] = {{0}};
    for (int k = 0; k < t->kc; k++) {
        const float *xk = t->x + t->off[k], *wk = w + (ptrdiff_t)k * NR;
        for (int i = 0; i < t->m; i++)
            for (int j = 0; j < NR; j++)
                acc[i][j] += xk[(ptrdiff_t)i * t->xs] * wk[j];
    }
    store_tile(acc, t);
}

void rn_direct_tile_portable_bf16(const float *w, const rn_direct_tile *t) {
    rn_direct_prefetch_lines(t);
    float acc[RN_DIRECT_MR_MAX][NR] = {{0}};
    const uint32_t *x = (const uint32_t *)t->x, *w2 = (const uint32_t *)w;
    for (int k = 0; k < t->kc; k++) {
        const uint32_t *xk = x + t->off[k], *wk = w2 + (ptrdiff_t)k * NR;
        for (int i = 0; i < t->m; i++) {
            const uint32_t a = xk[(ptrdiff_t)i * t->xs];
            for (int j = 0; j < NR; j++) {
                acc[i][j] += rn_bf16_value(a >> 16) * rn_bf16_value(wk[j] >> 16);
                acc[i][j] += rn_bf16_value(a & 0xFFFFu) * rn_bf16_value(wk[j] & 0xFFFFu);
            }
        }
    }
    store_tile(acc, t);
}

static int supports(const rn_conv_shape *s) { return s->groups == 1; }

static int taps(const rn_conv_shape *s) { return s->cin * s->kh * s->kw; }

/* Whether k's tile multiplies bf16 pairs (a bf16 descriptor's: direct.h). */
static int paired(const rn_kernels *k) { return rn_kernels_are_bf16(rn_kernels_or_default(k)); }

/* On bf16 pairs, a lone last channel (the 3-channel and 1-channel stems) pairs along its
 * window's rows instead of with zeros where the window is at least 2 wide: the word at column q
 * of its own plane holds its values at columns q and q + 1, so one pair tap covers two columns
 * of the window, and each row's odd last column is a tap of its own, from a plane of the channel
 * beside zeros as before (so that no input value ever meets a zero weight of a column that is
 * not in its window: an infinite input stays out of the outputs it does not reach). A 7x7
 * window on one channel takes 28 pair taps instead of 49, on three channels 77 instead of 98. */
static int odd_rows(const rn_kernels *k, const rn_conv_shape *s) {
    return paired(k) && s->cin % 2 == 1 && s->kw >= 2;
}

/* The shape the tile sees: its channels are words, one per input channel, or on bf16 pairs one
 * per pair of them (the lone last channel's plane after the pairs) and, where odd_rows, a plane
 * of the last channel's row pairs after that. */
static rn_conv_shape words(const rn_kernels *k, const rn_conv_shape *s) {
    rn_conv_shape w = *s;
    if (paired(k))
        w.cin = (s->cin + 1) / 2 + odd_rows(k, s);
    return w;
}

/* One pair tap on bf16 pairs: the word it reads (plane, window row i, column j) and what the
 * two halves of that word are (the low half input channel c0 at window column j0 of row i, the
 * high half c1 at j1, or zero where c1 < 0). */
typedef struct pair_tap {
    int plane, i, j;
    int c0, j0, c1, j1;
} pair_tap;

/* The taps of a window on bf16 pairs (s the real shape): each pair of channels at every window
 * place, then, for a lone last channel, each row's column pairs and its odd last column. */
static int pair_taps(const rn_kernels *k, const rn_conv_shape *s) {
    const int khw = s->kh * s->kw, full = s->cin / 2 * khw;
    if (s->cin % 2 == 0)
        return full;
    return full + (odd_rows(k, s) ? s->kh * ((s->kw + 1) / 2) : khw);
}

/* Pair tap kk of shape s; rows: odd_rows of it. */
static inline pair_tap pair_tap_at(const rn_conv_shape *s, int rows, int kk) {
    const int khw = s->kh * s->kw, full = s->cin / 2 * khw;
    if (kk < full || !rows) { /* a pair of channels, or the lone one beside zeros */
        const int c = 2 * (kk / khw), i = kk % khw / s->kw, j = kk % s->kw;
        return (pair_tap){kk / khw, i, j, c, j, c + 1 < s->cin ? c + 1 : -1, j};
    }
    const int per_row = (s->kw + 1) / 2, i = (kk - full) / per_row, j = 2 * ((kk - full) % per_row);
    const int c = s->cin - 1, lone = s->cin / 2;
    if (j + 1 < s->kw) /* columns j and j + 1 of the row */
        return (pair_tap){lone + 1, i, j, c, j, c, j + 1};
    return (pair_tap){lone, i, j, c, j, -1, j}; /* the row's odd last column */
}

/* The tile of k: its function, pixels and channels (the portable tile's where k has none). */
typedef struct tile_geometry {
    rn_direct_fn fn;
    int mr, nr;
} tile_geometry;

static tile_geometry geometry(const rn_kernels *k) {
    k = rn_kernels_or_default(k);
    if (k->direct && k->direct_mr > 0 && k->direct_nr > 0)
        return (tile_geometry){k->direct, k->direct_mr, k->direct_nr};
    return (tile_geometry){paired(k) ? rn_direct_tile_portable_bf16 : rn_direct_tile_portable,
                           RN_DIRECT_MR, RN_DIRECT_NR};
}

/* The taps a tile sums: words of the window (one per input value, or per pair tap). */
static int word_taps(const rn_kernels *k, const rn_conv_shape *s) {
    return paired(k) ? pair_taps(k, s) : taps(s);
}

static size_t prepared_floats(const rn_kernels *k, const rn_conv_shape *s) {
    const int nr = geometry(k).nr;
    return (size_t)ceil_div(s->cout, nr) * nr * (size_t)word_taps(k, s);
}

/* The panels are shared out over the threads where there are several (every training step
 * prepares its weights anew: bf16 resnet18 at 224x224, batch 32, its 3x3 512->512 layers took
 * 3.1 ms each on one thread). */
#define PREPARE_PARALLEL_WEIGHTS 65536

static void prepare(const rn_kernels *k, const rn_conv_shape *s, const float *w, float *prepared) {
    // w: (cout, K) -> prepared: panels of nr channels, (K, nr) each
    const int K = taps(s), nr = geometry(k).nr, panels = ceil_div(s->cout, nr);
    const int parallel = panels > 1 && (long)s->cout * K >= PREPARE_PARALLEL_WEIGHTS;
    if (paired(k) && !odd_rows(k, s)) { /* pair tap (c2, at): channels 2 c2 and 2 c2 + 1 at
                                          * window place at */
        const int khw = s->kh * s->kw, pairs = (s->cin + 1) / 2, K2 = pairs * khw;
        uint32_t *out = (uint32_t *)prepared;
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if (parallel)
        for (int p = 0; p < panels; p++)
            for (int c2 = 0; c2 < pairs; c2++) {
                const int c = 2 * c2, second = c + 1 < s->cin;
                for (int at = 0; at < khw; at++) {
                    uint32_t *row = out + ((size_t)p * K2 + (size_t)c2 * khw + at) * nr;
                    for (int j = 0; j < nr; j++) {
                        const int co = p * nr + j;
                        const float *wc = w + (size_t)co * K + (size_t)c * khw + at;
                        uint32_t word = 0;
                        if (co < s->cout)
                            word = rn_bf16_bits(wc[0]) |
                                   (second ? rn_bf16_bits(wc[khw]) << 16 : 0u);
                        row[j] = word;
                    }
                }
            }
        return;
    }
    if (paired(k)) { /* a lone last channel's row pairs too: pair tap kk as pair_tap_at says */
        const int K2 = pair_taps(k, s), khw = s->kh * s->kw;
        uint32_t *out = (uint32_t *)prepared;
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if (parallel)
        for (int p = 0; p < panels; p++)
            for (int kk = 0; kk < K2; kk++) {
                const pair_tap t = pair_tap_at(s, 1, kk);
                /* the two halves' places in an output channel's weights (hi < 0: zero) */
                const ptrdiff_t lo = (ptrdiff_t)t.c0 * khw + t.i * s->kw + t.j0,
                                hi = t.c1 < 0 ? -1 : (ptrdiff_t)t.c1 * khw + t.i * s->kw + t.j1;
                for (int j = 0; j < nr; j++) {
                    const int co = p * nr + j;
                    const float *wo = w + (size_t)co * K;
                    uint32_t word = 0;
                    if (co < s->cout)
                        word = rn_bf16_bits(wo[lo]) | (hi >= 0 ? rn_bf16_bits(wo[hi]) << 16 : 0u);
                    out[((size_t)p * K2 + kk) * nr + j] = word;
                }
            }
        return;
    }
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if (parallel)
    for (int p = 0; p < panels; p++)
        for (int kk = 0; kk < K; kk++)
            for (int j = 0; j < nr; j++) {
                const int co = p * nr + j;
                prepared[((size_t)p * K + kk) * nr + j] = co < s->cout ? w[(size_t)co * K + kk] : 0.0f;
            }
}

/* Images padded and convolved per round: about this many bytes of padded input, at least one
 * image (the 224x224 stem: one; 28x28 with one channel: 227), so that the copy stays in cache
 * until it is read and the workspace does not grow with the batch. */
#define ROUND_BYTES (1u << 20)

static size_t image_floats(const rn_conv_shape *s) {
    return (size_t)s->cin * (size_t)(s->h + 2 * s->pad) * (size_t)(s->w + 2 * s->pad);
}

static int images_per_round(const rn_conv_shape *s) {
    const size_t per = ROUND_BYTES / sizeof(float) / image_floats(s);
    return per < 1 ? 1 : per > (size_t)s->n ? s->n : (int)per;
}

/* The padded images of one round, (images, cin, h + 2 pad, w + 2 pad). */
static size_t padded_floats(const rn_conv_shape *s) {
    return (image_floats(s) * (size_t)images_per_round(s) + 15) / 16 * 16;
}

/* A 1x1 convolution at stride 1 without padding maps each pixel to itself: its n images of
 * h x w are one row of n * h * w pixels, in the same memory, and every tile but the last is
 * full (resnet50's 7x7 maps at batch 1: tiles of 14, 14, 14 and 7 pixels, not 7 and 7 a
 * row). Up to this many pixels, which the copy of the input then holds all of. */
#define FLAT_MAX_PIXELS 4096

/* A 1x1 without padding whose output has at most FLAT_MAX_PIXELS pixels. */
static int small_unpadded_1x1(const rn_conv_shape *s) {
    return s->kh == 1 && s->kw == 1 && s->pad == 0 &&
           (long)s->n * s->ho * s->wo <= FLAT_MAX_PIXELS;
}

static rn_conv_shape flat(const rn_conv_shape *s) {
    rn_conv_shape f = *s;
    const long pixels = (long)s->n * s->h * s->w;
    if (s->stride == 1 && small_unpadded_1x1(s)) {
        f.n = f.h = f.ho = 1;
        f.w = f.wo = (int)pixels;
    }
    return f;
}

/* A strided 1x1 without padding whose output is that small reads its input subsampled into
 * the workspace first (conv2d_subsample), as a flat 1x1 at stride 1 (*g). */
static size_t subsampled_floats(const rn_conv_shape *s, rn_conv_shape *g) {
    *g = *s;
    const long pixels = (long)s->n * s->ho * s->wo;
    if (s->stride == 1 || !small_unpadded_1x1(s))
        return 0;
    g->h = s->ho, g->w = s->wo, g->stride = 1;
    return ((size_t)s->cin * (size_t)pixels + 15) / 16 * 16;
}

/* The subsampled input if any, the padded images of a round, then the K tap offsets
 * (ptrdiff_t: two float-sized slots each). */
static size_t workspace_floats(const rn_kernels *k, const rn_conv_shape *shape, int threads) {
    (void)threads;
    rn_conv_shape g;
    const size_t sub = subsampled_floats(shape, &g);
    const rn_conv_shape f = flat(&g), ws = words(k, &f);
    return sub + padded_floats(&ws) + 2 * (size_t)word_taps(k, &f) + 16;
}

/* Zeroes the n words (or floats) of padding between two rows of a padded copy: a few stores,
 * not a call (a call of memset for each side of each row: bf16 resnet18 at batch 1 took 24-27
 * us a direct convolution to make its pairs on one thread, 20 without the calls). */
#define ZERO_PAD(d, n)                                                                           \
    do {                                                                                          \
        switch (n) {                                                                              \
        case 8: (d)[7] = 0; /* fall through */                                                    \
        case 7: (d)[6] = 0; /* fall through */                                                    \
        case 6: (d)[5] = 0; /* fall through */                                                    \
        case 5: (d)[4] = 0; /* fall through */                                                    \
        case 4: (d)[3] = 0; /* fall through */                                                    \
        case 3: (d)[2] = 0; /* fall through */                                                    \
        case 2: (d)[1] = 0; /* fall through */                                                    \
        case 1: (d)[0] = 0; /* fall through */                                                    \
        case 0: break;                                                                            \
        default: memset((d), 0, (size_t)(n) * sizeof *(d));                                       \
        }                                                                                         \
    } while (0)
static inline void zero_pad(uint32_t *d, int n) { ZERO_PAD(d, n); }
static inline void zero_pad_floats(float *d, int n) { ZERO_PAD(d, n); }

/* The padded copy is written in work items of one band of rows of one plane of one image, the
 * bands of an image in order (a thread's items are a band of the image's rows in every plane,
 * the rows its own tiles read most of) and as many bands as give each thread a few items: a
 * plane an item left the 3-channel stem with three items an image for two threads (bf16
 * resnet18 at batch 1, AMD EPYC Zen 5: the copy took 64 us a thread on two threads, 70 on
 * one). The stem inside the pass (`profile_layers`, 2 threads, 3 rounds alternated, ms): bf16
 * batch 1 0.483-0.494 -> 0.455-0.478, batch 32 16.7-18.7 -> 15.3-15.6; fp32 batch 1
 * 0.730-0.732 -> 0.703-0.729, batch 32 level (23.8-25.4 against 23.7-24.5). */
#define PAD_ITEMS_PER_THREAD 8

static int pad_bands(const rn_conv_shape *s, int nb) {
    const long planes = (long)nb * s->cin, want = (long)PAD_ITEMS_PER_THREAD * rn_threads();
    const long bands = planes >= want ? 1 : (want + planes - 1) / planes;
    return bands < s->h ? (int)bands : s->h;
}

/* Item q of pad_bands(s, nb) bands: image *b (from b0), plane *c (of s->cin), rows
 * [*r0, *r1). */
static void pad_item(const rn_conv_shape *s, int bands, int b0, long q, long *b, long *c,
                     int *r0, int *r1) {
    const long band = q / s->cin % bands;
    *b = b0 + q / ((long)s->cin * bands);
    *c = q % s->cin;
    *r0 = (int)(band * s->h / bands);
    *r1 = (int)((band + 1) * s->h / bands);
}

/* xp = images [b0, b0 + nb) of x (cin, n, h, w) with `pad` zeros around every plane (inside a
 * parallel region: the threads share the items of pad_item; ends with a barrier). */
static void pad_images(const rn_conv_shape *s, const float *x, int b0, int nb, float *xp) {
    const int hp = s->h + 2 * s->pad, wp = s->w + 2 * s->pad, p = s->pad;
    const int bands = pad_bands(s, nb);
#pragma omp for schedule(static)
    for (long q = 0; q < (long)nb * bands * s->cin; q++) {
        long b, c;
        int r0, r1;
        pad_item(s, bands, b0, q, &b, &c, &r0, &r1);
        float *dst = xp + ((size_t)(b - b0) * s->cin + (size_t)c) * hp * wp;
        const float *src = x + ((size_t)c * s->n + (size_t)b) * s->h * s->w;
        if (r0 == 0) /* the top rows */
            memset(dst, 0, (size_t)p * wp * sizeof(float));
        for (int r = r0; r < r1; r++) { /* each row with its two sides */
            float *row = dst + (size_t)(r + p) * wp;
            zero_pad_floats(row, p);
            memcpy(row + p, src + (size_t)r * s->w, (size_t)s->w * sizeof(float));
            zero_pad_floats(row + p + s->w, p);
        }
        if (r1 == s->h) /* the bottom rows */
            memset(dst + (size_t)(p + s->h) * wp, 0, (size_t)p * wp * sizeof(float));
    }
}

/* The input's pairs where the descriptor has no pair_rows of its own (kernels.h's
 * rn_pair_rows_fn): each word rounded by rn_bf16_bits. */
static void pair_rows(const float *lo, const float *hi, ptrdiff_t ld, int rows, int n,
                      uint32_t *dst, ptrdiff_t ldd) {
    for (int r = 0; r < rows; r++) {
        const float *l = lo + r * ld;
        uint32_t *d = dst + r * ldd;
        if (hi) {
            const float *h = hi + r * ld;
#pragma omp simd
            for (int q = 0; q < n; q++)
                d[q] = rn_bf16_bits(l[q]) | rn_bf16_bits(h[q]) << 16;
        } else {
#pragma omp simd
            for (int q = 0; q < n; q++)
                d[q] = rn_bf16_bits(l[q]);
        }
    }
}

/* As pad_images, on bf16 pairs: ws the word shape (ws->cin planes of the cin channels of x),
 * word (c2, r, q) of an image holding channels 2 c2 (low half) and 2 c2 + 1 (high; zero past
 * cin), each rounded to bf16; with `rows` (odd_rows) the last plane holds the last channel's
 * padded row pairs instead: word (r, q) its values at columns q (low) and q + 1 (high) of the
 * padded row, zero past it. Each item's padding first, then its rows' words in one call of run
 * (one a row cost 7x7 maps more than the conversion). */
static void pad_pairs(rn_pair_rows_fn run, const rn_conv_shape *ws, int cin, int rows,
                      const float *x, int b0, int nb, float *xp) {
    const int hp = ws->h + 2 * ws->pad, wp = ws->w + 2 * ws->pad, p = ws->pad, w = ws->w;
    const size_t plane = (size_t)ws->h * w;
    const int bands = pad_bands(ws, nb);
#pragma omp for schedule(static)
    for (long q = 0; q < (long)nb * bands * ws->cin; q++) {
        long b, c2;
        int r0, r1;
        pad_item(ws, bands, b0, q, &b, &c2, &r0, &r1);
        const int row_pairs = rows && c2 == ws->cin - 1;
        const long c = row_pairs ? cin - 1 : 2 * c2;
        uint32_t *dst = (uint32_t *)xp + ((size_t)(b - b0) * ws->cin + (size_t)c2) * hp * wp;
        const float *lo = x + ((size_t)c * ws->n + (size_t)b) * plane;
        const float *hi = c + 1 < cin ? lo + (size_t)ws->n * plane : NULL;
        if (r0 == 0) /* the top rows */
            memset(dst, 0, (size_t)p * wp * sizeof *dst);
        for (int r = r0; r < r1; r++) { /* each row's two sides */
            uint32_t *row = dst + (size_t)(r + p) * wp;
            zero_pad(row, p);
            zero_pad(row + p + w, p);
            if (row_pairs) { /* the padded row's columns p - 1 and p + w - 1 */
                const float *src = lo + (size_t)r * w;
                if (p > 0)
                    row[p - 1] = rn_bf16_bits(src[0]) << 16;
                row[p + w - 1] = rn_bf16_bits(src[w - 1]);
            }
        }
        uint32_t *inner = dst + (size_t)(p + r0) * wp + p;
        const float *lo_r = lo + (size_t)r0 * w, *hi_r = hi ? hi + (size_t)r0 * w : NULL;
        if (row_pairs) /* columns q and q + 1 of each row, q < w - 1 */
            run(lo_r, lo_r + 1, w, r1 - r0, w - 1, inner, wp);
        else
            run(lo_r, hi_r, w, r1 - r0, w, inner, wp);
        if (r1 == ws->h) /* the bottom rows */
            memset(dst + (size_t)(p + ws->h) * wp, 0, (size_t)p * wp * sizeof *dst);
    }
}

/* The conversion of rows of n words: the descriptor's (wide) for rows of 16 words or more,
 * the portable loop for narrower ones, where it is ahead (the AVX-512 one's masked stores:
 * resnet18's 3x3 512 -> 512 at 7x7, batch 32, bf16, `bench_conv`, Zen 5, 3 rounds alternated,
 * 717-731 effective GFLOP/s against 754-808; the stem's 224-wide rows 4.6x faster). */
static rn_pair_rows_fn pair_rows_for(rn_pair_rows_fn wide, int n) {
    return n >= 16 ? wide : pair_rows;
}

/* Pixels of a row gathered at a time (gather_pairs). */
#define GATHER_RUN 128

/* A subsampled 1x1's input on bf16 pairs (ws: its flat word shape, one row of the n * ho * wo
 * output pixels), gathered from x at the stride of the strided shape st: one pass for what
 * conv2d_subsample and pad_pairs would do in two. */
static void gather_pairs(rn_pair_rows_fn wide, const rn_conv_shape *ws,
                         const rn_conv_shape *st, const float *x, float *xp) {
    const size_t plane = (size_t)st->n * st->h * st->w;
#pragma omp for schedule(static)
    for (long c2 = 0; c2 < ws->cin; c2++) {
        uint32_t *dst = (uint32_t *)xp + (size_t)c2 * ws->w;
        const float *lo = x + (size_t)(2 * c2) * plane;
        const float *hi = 2 * c2 + 1 < st->cin ? lo + plane : NULL;
        /* output pixel by pixel along the rows: no division per word (a 64-bit division per
         * index cost resnet50's 1x1/2 512 -> 1024 at batch 1 a third of its time); a run of
         * a row's pixels gathered first, then converted by the run function, which vectorises
         * (converted one by one as they were gathered, resnet18's 1x1/2 64 -> 128 at 56x56,
         * batch 1, took 0.09 ms on one thread, most of it the conversions). The run goes on
         * across rows and images, whose words follow one another here, so that 7- and 14-wide
         * rows reach the conversion GATHER_RUN words at a time, not as rows too narrow for the
         * vector conversion (bf16 resnet50 at batch 1, `profile_layers`, AMD EPYC Zen 5, 2
         * threads, 3 rounds alternated, ms: 1x1/2 512 -> 1024 to 14x14 0.455-0.475 ->
         * 0.430-0.447, 1024 -> 2048 to 7x7 0.442-0.452 -> 0.405-0.414; resnet18's 128 -> 256
         * 0.079-0.080 -> 0.071, 256 -> 512 0.058-0.062 -> 0.053-0.054) */
        float run_lo[GATHER_RUN], run_hi[GATHER_RUN];
        int fill = 0; /* values gathered into the run, for words from d on */
        uint32_t *d = dst;
        for (int b = 0; b < st->n; b++)
            for (int oy = 0; oy < st->ho; oy++) {
                const size_t row = ((size_t)b * st->h + (size_t)oy * st->stride) * st->w;
                for (int o0 = 0; o0 < st->wo;) {
                    const int len = st->wo - o0 < GATHER_RUN - fill ? st->wo - o0
                                                                    : GATHER_RUN - fill;
                    const float *l = lo + row + (size_t)o0 * st->stride;
                    for (int i = 0; i < len; i++)
                        run_lo[fill + i] = l[(size_t)i * st->stride];
                    if (hi) {
                        const float *h = hi + row + (size_t)o0 * st->stride;
                        for (int i = 0; i < len; i++)
                            run_hi[fill + i] = h[(size_t)i * st->stride];
                    }
                    fill += len, o0 += len;
                    if (fill == GATHER_RUN) {
                        pair_rows_for(wide, fill)(run_lo, hi ? run_hi : NULL, 0, 1, fill, d, 0);
                        d += fill, fill = 0;
                    }
                }
            }
        if (fill)
            pair_rows_for(wide, fill)(run_lo, hi ? run_hi : NULL, 0, 1, fill, d, 0);
    }
}

/* What every work item of one forward_on call reads (items: its output rows and channel
 * panels, ordered by direct_item). */
typedef struct direct_run {
    const rn_conv_shape *s; /* the word shape */
    tile_geometry g;
    const ptrdiff_t *off;
    const float *xp, *prepared, *bias, *residual;
    float *y;
    int relu, blocked, by_panel, pair_rows, row_items, panels, hp, wp, K;
    int out_prefetch;       /* a planar output's lines asked for before each tile */
    ptrdiff_t out_plane;
} direct_run;

/* A tile asks for its planar output's lines before it sums where the window has at most
 * OUT_PREFETCH_MAX_TAPS taps (words) and the call's output at least OUT_PREFETCH_MIN_BYTES:
 * the stems' windows (147 taps at most in fp32, 77 pair taps in bf16), whose few products per
 * output leave the stores a large share of the tile's time, on outputs past the caches (the
 * wider layers' windows, 288 taps and more, showed no gain; on 1.6 MB the 16-channel 3x3 stem
 * at batch 32 lost 9%). `bench_conv -m stems`, Zen 5, 2 threads, 3 runs alternated, effective
 * GFLOP/s of the direct column: 7x7/2 3->64 at 224x224, batch 128, 282-283 -> 309-316; d2l's
 * 7x7/2 1->64 at 96x96, batch 256, 159-170 -> 193-195; the CIFAR stem 3x3 1->64 at 28x28,
 * batch 256, 39-45 -> 59-63; outputs under 4 MB level. Inside a training step (`profile_train`,
 * 3 rounds alternated), the stem's forward: resnet18 at 224x224, batch 32, 27.0-28.9 ->
 * 24.6-26.5 ms, d2l_resnet18 at 96x96, batch 128, 11.0-12.1 -> 10.1-10.7. */
#define OUT_PREFETCH_MAX_TAPS 256
#define OUT_PREFETCH_MIN_BYTES (4.0 * 1024 * 1024)

/* Work item `it` of a round of nb images from image b0: one output row (pair) of one image
 * against one channel panel. Consecutive items: the panels of one output row (pair), which
 * share its input rows, or (by_panel) the rows of one panel, which share its weights. */
static void direct_item(const direct_run *r, int b0, int nb, long it) {
    const rn_conv_shape *s = r->s;
    const int mr = r->g.mr, nr = r->g.nr, K = r->K;
    const long rows = (long)nb * r->row_items;
    const int p = (int)(r->by_panel ? it / rows : it % r->panels);
    const int row = (int)(r->by_panel ? it % rows : it / r->panels);
    const int b = row / r->row_items, oh = row % r->row_items * r->pair_rows;
    const int two = r->pair_rows == 2 && oh + 1 < s->ho; /* else one row (an odd last) */
    rn_direct_tile t = {.off = r->off, .kc = K, .xs = s->stride, .ldy = r->out_plane,
                        .relu = r->relu, .blocked = r->blocked};
    if (r->blocked) /* channel blocks of 16: 16 floats a pixel */
        t.ldy = 16 * r->out_plane;
    if (two)
        t.rs = (ptrdiff_t)s->stride * r->wp;
    t.n = s->cout - p * nr < nr ? s->cout - p * nr : nr;
    t.bias = r->bias ? r->bias + p * nr : NULL;
    const float *w = r->prepared + (size_t)p * K * nr;
    const int row_tiles = ceil_div(s->wo, mr), tiles = (int)rows * row_tiles;
    const float *xrow =
        r->xp + ((ptrdiff_t)b * s->cin * r->hp + (ptrdiff_t)oh * s->stride) * r->wp;
    /* the panel's first channel, and the row's first pixel */
    const ptrdiff_t ych = (ptrdiff_t)p * nr * r->out_plane,
                    ypix = ((ptrdiff_t)(b0 + b) * s->ho + oh) * s->wo, yrow = ych + ypix;
    for (int ow = 0; ow < s->wo; ow += mr) {
        t.m = two ? 2 * s->wo : s->wo - ow < mr ? s->wo - ow : mr;
        t.wide = !two && ow + 8 <= s->wo;
        t.x = xrow + (ptrdiff_t)ow * s->stride;
        t.y = r->blocked ? r->y + ych + (ypix + ow) * 16 : r->y + yrow + ow;
        t.res = r->residual ? r->residual + yrow + ow : NULL;
        /* the tiles of a panel each ask for a share of the next panel's weights (to L2), whose
         * first tile otherwise waits on memory for them (resnet18 at batch 1, 512 -> 512 at
         * 7x7, 9.4 MB of weights: 0.90-0.93 ms -> 0.84-0.86, Zen 5, 2 threads) */
        t.pf = NULL;
        t.pf_lines = 0;
        if (r->by_panel && tiles > 1 && p + 1 < r->panels) {
            const size_t bytes = (size_t)K * nr * sizeof(float);
            const size_t share = bytes / (size_t)tiles + 64;
            const size_t from = (size_t)(row * row_tiles + ow / mr) * share;
            const size_t to = from + share < bytes ? from + share : bytes;
            if (from < to) {
                const size_t lines = (to - from + 63) / 64;
                t.pf = (const char *)(w + (size_t)K * nr) + from;
                t.pf_lines = lines < (size_t)K ? (int)lines : K;
            }
        }
        /* a blocked output's lines (one a pixel and block) asked for, to be written, before
         * the tile sums: the stem's output (3.2 MB an image) comes from memory, and each of
         * its lines then arrives while the tile multiplies instead of holding its stores
         * (resnet18, `profile_layers`, Zen 5, 2 threads, 3 rounds alternated, ms: the stem at
         * batch 1 bf16 0.445-0.451 -> 0.418-0.435, fp32 0.703-0.711 -> 0.693-0.702; at batch
         * 32 bf16 13.0-14.0 -> 12.5-13.0, fp32 20.7-20.8 -> 20.2-20.4). So are a planar
         * output's, a run of at most 14 pixels in each channel's plane, where the window has
         * few taps (the stems in training, whose output planes outgrow the caches) */
        if (r->blocked)
            for (int v = 0; v < t.n / 16; v++)
                for (int i = 0; i < t.m; i++)
                    __builtin_prefetch(t.y + v * t.ldy + 16 * i, 1, 3);
        else if (r->out_prefetch)
            for (int j = 0; j < t.n; j++) { /* each channel's run: its first and last line */
                const float *run = t.y + j * t.ldy;
                __builtin_prefetch(run, 1, 3);
                __builtin_prefetch(run + t.m - 1, 1, 3);
            }
        r->g.fn(w, &t);
    }
}

/* How the threads share a round's items: each its own run of consecutive items, then what is
 * left of the other's from its back (rn_claims, core/threads.h), instead of guided chunks from
 * a shared counter. Where the panels of a row go together a thread's run is a band of output
 * rows, the same on every call; where the rows of a panel do (by_panel), a range of output
 * channels, whose weights then stay with one core. The claims, as guided did, let a thread the
 * host stalls (a virtual CPU preempted: 10-46% steal time on the Xeon VM here) leave its last
 * items to the others instead of holding everyone at the barrier. `resnet bench`, AMD EPYC Zen
 * 5 (two cores on two dies), 2 threads, alternated with guided, medians, ms: bf16 resnet50
 * batch 1 14.59 -> 14.08 (7 rounds) and 14.60 -> 14.09 (5); fp32 resnet50 and resnet18 batch
 * 1, bf16 resnet18 batch 1, batch 32 (bf16, fp32) and training steps level. More items than
 * flags: guided, as before. */
#define CLAIMED_ITEMS_MAX 4096

/* Strided windows go by rows, not by panels, up to this many bytes of weights although they
 * outweigh the input: each thread then reads all the weights (from memory, at batch 1) but
 * only the input rows its own output rows need, most of them written by its own core the layer
 * before (Winograd's runs of tiles, the GEMM's runs of columns), where by panels each thread
 * read every row, half of them from the other core. Inside the network at batch 1
 * (`profile_layers`, AMD EPYC Zen 5, 2 cores on two dies, 3 rounds alternated, ms): fp32
 * resnet50's 3x3/2 256->256 at 28x28 (2.4 MB) 0.82 -> 0.72-0.74, resnet18's 128->256 (1.2 MB)
 * 0.43 -> 0.39-0.42; bf16 0.42-0.44 -> 0.39-0.40 and 0.22 -> 0.19-0.20; fp32 256->512 at 14x14
 * (4.7 MB) slower by rows (0.40 -> 0.40-0.44), stride-1 windows too (bf16 resnet18's 3x3
 * layers at 28x28 and 14x14 0.32-0.35 -> 0.33-0.37). Nor where the weights are more than
 * ROWS_MAX_WEIGHT_RATIO times the round's padded input (those above: 2.6 times): there the
 * rows a thread would spare are few and the weights it would read twice are many (bf16
 * resnet18's 3x3/2 256->512 to 7x7 at batch 1, 2.4 MB of weights on 131 KB of input, 18
 * times: inside the pass, `profile_layers -p bf16`, Zen 5, 2 threads, 3 rounds alternated,
 * 0.219-0.233 -> 0.197-0.204 ms). */
#define ROWS_MAX_WEIGHT_BYTES (3.0 * 1024 * 1024)
#define ROWS_MAX_WEIGHT_RATIO 8.0

/* The forward of shape on x; `strided` (bf16 pairs only): the strided 1x1 whose input x is,
 * shape being its subsampled form, else NULL; `blocked`: y blocked by 16 channels (direct.h). */
static void forward_on(const rn_kernels *k, const rn_conv_shape *shape,
                       const rn_conv_shape *strided, const float *x, const float *prepared,
                       const float *bias, const float *residual, int relu, float *y,
                       float *workspace, int blocked) {
    const rn_conv_shape f = flat(shape), ws = words(k, &f), *s = &ws;
    const int pairs = paired(k);
    const rn_kernels *kd = rn_kernels_or_default(k);
    /* on bf16 pairs: the descriptor's conversion, or the portable loop (pair_rows_for) */
    const rn_pair_rows_fn wide = kd->pair_rows ? kd->pair_rows : pair_rows;
    direct_run r = {.s = s, .g = geometry(k), .prepared = prepared, .bias = bias,
                    .residual = residual, .y = y, .relu = relu, .blocked = blocked,
                    .hp = s->h + 2 * s->pad, .wp = s->w + 2 * s->pad,
                    .K = word_taps(k, &f),
                    .out_plane = (ptrdiff_t)s->n * s->ho * s->wo};
    r.panels = ceil_div(s->cout, r.g.nr);
    const double out_bytes = (double)s->cout * (double)r.out_plane * sizeof(float);
    r.out_prefetch =
        !blocked && r.K <= OUT_PREFETCH_MAX_TAPS && out_bytes >= OUT_PREFETCH_MIN_BYTES;
    const int round = images_per_round(s);
    const double weight_bytes = (double)r.panels * r.g.nr * r.K * sizeof(float);
    const double input_bytes = (double)padded_floats(s) * sizeof(float);
    r.by_panel = weight_bytes > input_bytes &&
                 !(s->stride > 1 && s->kh * s->kw > 1 && weight_bytes <= ROWS_MAX_WEIGHT_BYTES &&
                   weight_bytes <= ROWS_MAX_WEIGHT_RATIO * input_bytes);
    /* output rows a tile takes (direct.h): two where a row fills at most half of it */
    r.pair_rows = s->wo >= 4 && 2 * s->wo <= r.g.mr && s->ho > 1 ? 2 : 1;
    r.row_items = ceil_div(s->ho, r.pair_rows); /* an image's */
    /* one image without padding is its own padded copy (a flat 1x1 is one image) */
    const int copy = pairs || s->pad > 0 || s->n > 1;
    r.xp = copy ? workspace : x;
    /* the tap offsets after the padded copy, if any (a strided 1x1 read in place has none) */
    ptrdiff_t *off = (ptrdiff_t *)(workspace + (copy ? padded_floats(s) : 0));
    /* the taps, from a window's origin in its image: each word plane's window in order (on
     * bf16 pairs, the planes of whole pairs), then a lone channel's taps (pair_tap_at) */
    const int whole = pairs ? f.cin / 2 : s->cin;
    int kk = 0;
    for (int c = 0; c < whole; c++)
        for (int i = 0; i < s->kh; i++)
            for (int j = 0; j < s->kw; j++)
                off[kk++] = ((ptrdiff_t)c * r.hp + i) * r.wp + j;
    for (; kk < r.K; kk++) {
        const pair_tap t = pair_tap_at(&f, odd_rows(k, &f), kk);
        off[kk] = ((ptrdiff_t)t.plane * r.hp + t.i) * r.wp + t.j;
    }
    r.off = off;
    const long most_items = (long)(s->n < round ? s->n : round) * r.row_items * r.panels;
    uint32_t flags[CLAIMED_ITEMS_MAX];
    const int claimed = most_items <= CLAIMED_ITEMS_MAX;
    if (claimed)
        memset(flags, 0, (size_t)most_items * sizeof *flags);

#pragma omp parallel num_threads(rn_threads())
    for (int b0 = 0; b0 < s->n; b0 += round) {
        const int nb = s->n - b0 < round ? s->n - b0 : round;
        if (strided)
            gather_pairs(wide, s, strided, x, workspace);
        else if (pairs)
            pad_pairs(pair_rows_for(wide, s->w), s, f.cin, odd_rows(k, &f), x, b0, nb,
                      workspace);
        else if (copy)
            pad_images(s, x, b0, nb, workspace);
        const long items = (long)nb * r.row_items * r.panels;
        if (claimed) { /* a new generation of the flags each round */
            const rn_claims claims = {.flags = flags, .cap = CLAIMED_ITEMS_MAX,
                                      .gen = (uint32_t)(b0 / round + 1)};
            rn_claim_walk walk = rn_claims_walk(claims, rn_team_here(), items);
            for (long it; (it = rn_claims_next(&walk)) >= 0;)
                direct_item(&r, b0, nb, it);
#pragma omp barrier /* the copy is free for the next round */
        } else {
#pragma omp for schedule(guided)
            for (long it = 0; it < items; it++)
                direct_item(&r, b0, nb, it);
        }
    }
}

static void forward_any(const rn_kernels *k, const rn_conv_shape *shape, const float *x,
                        const float *prepared, const float *bias, const float *residual,
                        int relu, float *y, float *workspace, int blocked) {
    rn_conv_shape unstrided;
    const size_t sub = subsampled_floats(shape, &unstrided);
    if (sub && paired(k)) /* gathered straight into the pairs */
        forward_on(k, &unstrided, shape, x, prepared, bias, residual, relu, y, workspace + sub,
                   blocked);
    /* one image: its rows read in place at the stride, no subsampled copy (resnet18 at batch 1,
     * 1x1/2 128->256 to 14x14 inside the pass 0.073-0.074 -> 0.059-0.060 ms, `profile_layers`,
     * AMD EPYC Zen 5, 2 threads, 3 alternated rounds; 256->512 level) */
    else if (sub && shape->n == 1)
        forward_on(k, shape, NULL, x, prepared, bias, residual, relu, y, workspace, blocked);
    else if (sub) {
        conv2d_subsample(shape, x, workspace);
        forward_on(k, &unstrided, NULL, workspace, prepared, bias, residual, relu, y,
                   workspace + sub, blocked);
    } else {
        forward_on(k, shape, NULL, x, prepared, bias, residual, relu, y, workspace, blocked);
    }
}

static void forward(const rn_kernels *k, const rn_conv_shape *shape, const float *x,
                    const float *prepared, const float *bias, const float *residual, int relu,
                    float *y, float *workspace, int threads) {
    (void)threads;
    forward_any(k, shape, x, prepared, bias, residual, relu, y, workspace, 0);
}

/* The output blocked by 16 channels (conv_algo.h): whole lines stored in order, no transpose.
 * resnet18's stem (7x7/2 3 -> 64 at 224x224) inside the network, `profile_layers`, AMD EPYC
 * Zen 5, 2 threads, interleaved, medians: batch 1 1.05 -> 0.86 ms, batch 32 34.6 -> 28.3 (the
 * output, 3.2 MB an image, comes to the tile out of cache: a store of 16 channel rows of 56
 * bytes each waits on 16 lines; a blocked one fills the lines it asks for). */
static void forward_blocked16(const rn_kernels *k, const rn_conv_shape *shape, const float *x,
                              const float *prepared, const float *bias, int relu, float *y,
                              float *workspace, int threads) {
    (void)threads;
    forward_any(k, shape, x, prepared, bias, NULL, relu, y, workspace, 1);
}

const rn_conv_algo rn_conv_direct = {
    .id = RN_CONV_DIRECT,
    .name = "direct",
    .description = "direct convolution, input broadcast against vectors of weights (narrow "
                   "inputs: the stems, 16 channels)",
    .tolerance = 1e-5,
    .tolerance_bf16 = 1e-5,
    .supports = supports,
    .prepared_floats = prepared_floats,
    .prepare = prepare,
    .workspace_floats = workspace_floats,
    .forward = forward,
    .forward_blocked16 = forward_blocked16,
};
