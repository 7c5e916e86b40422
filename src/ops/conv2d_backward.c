/*
 * conv2d_backward.c - 2-D convolution, backward (contract in conv2d.h).
 *
 * Per group g, with K = cin/G * kh * kw and P = n * ho * wo output pixels,
 * the forward pass is y_g (cout/G, P) = w_g (cout/G, K) x col_g (K, P),
 * col_g = im2col(x_g). Its two gradients:
 *
 * Data, dx_g = col2im(w_g^T x dy_g), by one of three routes:
 *   - 1x1, stride 1, unpadded: col2im is the identity, one GEMM on dy.
 *   - stride 1, square kernel, pad <= k - 1: the transposed convolution is
 *     a forward convolution of dy padded by k - 1 - pad with the weights
 *     flipped and transposed, (cin/G, cout/G * kh * kw); it reuses the
 *     implicit-im2col GEMM, and dx is written once, by the GEMM's store.
 *   - strided (3x3/2 and the like): dx splits into stride x stride phases
 *     (the rows and columns = a, b modulo the stride). Phase (a, b) only
 *     meets the taps ki = a + pad, kj = b + pad modulo the stride, over a
 *     window of dy that moves one pixel per phase pixel: a stride-1
 *     convolution of dy with those taps flipped (3x3/2: 1x1, 1x2, 2x1 and
 *     2x2), one implicit-im2col GEMM each, no dcol matrix. A row phase's
 *     results are interleaved into dx's rows in one pass.
 *   - otherwise (odd kernels): dcol = w_g^T x dy_g over chunks of
 *     pixels, each scattered back into dx (col2im); every thread owns a
 *     share of the input channels, their dcol rows and their scatter.
 *
 * Weights, dw_g = dy_g x col_g^T, a GEMM whose sum runs over all P pixels,
 * in chunks of pixels accumulated in pixel order (beta 1). The chunk's
 * im2col rows are written out, sized to stay in L2 (by shifted-plane
 * memcpy for stride-1 "same" convolutions, else by the GEMM's SIMD im2col
 * packers). Both operands run along the pixels; the product is oriented so
 * that the smaller one is transposed:
 *   - K >= cout/G (3x3 and larger): dw_g^T (K, cout/G) = col x dy_g^T, the
 *     GEMM packing dy_g^T from dy_g; dw_g^T is transposed into dw at the end.
 *   - K < cout/G (widening 1x1): dw_g = dy_g x col^T, col transposed.
 * Each thread owns a fixed share of the rows (or columns) of dw and runs
 * its own single-threaded GEMMs (rn_sgemm_1t) inside one parallel region:
 * no barrier per chunk, which keeps the speed when cores are oversubscribed.
 * Windows on few channels (the stems, 3x3 on up to 16) take direct strips
 * instead, with no im2col matrix at all (conv_wgrad.c).
 *
 * Taps that only ever read padding (3x3 on a 1x1 input) are cropped off
 * the kernel first when they can be (crop_shape): 9x less work there.
 *
 * Every sum runs in an order fixed by the shape alone (the chunk sizes too);
 * threads split whole output elements, never a sum: results are bitwise
 * identical for any thread count. Buffers come from the caller's workspace,
 * sized by conv2d_backward_workspace_floats(); no alignment is required.
 * The chunked GEMMs stay within RN_RAW_A_MAX_COLS columns, where the GEMM
 * reads A in place; the pointwise and flipped data routes span all n*h*w
 * columns and give the GEMM room in the workspace to pack A (the weights'
 * size).
 *
 * Aliasing: dx must not overlap dy, w or the workspace; dw and db must not
 * overlap x, dy or the workspace.
 */
#include <stddef.h>
#include <string.h>

#include "core/threads.h"
#include "ops/conv2d.h"
#include "ops/conv_algo.h"
#include "ops/conv_smallmap.h"
#include "ops/conv_wgrad.h"
#include "ops/gemm.h"
#include "ops/kernels.h"

#define COL_CAP_FLOATS (1 << 18) /* im2col chunks stay in L2: 1 MB */
#define CHUNK_D_MAX RN_RAW_A_MAX_COLS /* widest GEMM that reads A in place */
#define N_BLOCK_MAX RN_RAW_A_MAX_COLS /* the same, for the weight GEMM's cout columns */
#define ALIGN_FLOATS 16          /* workspace pieces start 64-byte aligned */
#define TILE 16                  /* transpose tile */
#define SAME_MIN_W 7             /* im2col by shifted planes from this width up */
#define ROW_BLOCK 1024           /* bias gradient: values per float partial sum */
#define RN_PHASE_MAX 16          /* strides the phase route takes (DATA_PHASES) */
/* From the kernel descriptor: chunks are multiples of the GEMM's panel
 * width; weight rows are shared out in blocks of two register tiles,
 * weight columns in blocks of one panel. */

/* ---------------------------------------------------------------------------
 * Reference: direct loop nests, sums in double
 * ------------------------------------------------------------------------- */

void conv2d_backward_data_ref(const rn_conv_shape *s, const float *dy, const float *w,
                              float beta, float *dx) {
    // dy: (cout, n, ho, wo)  w: (cout, cin/G, kh, kw)  dx: (cin, n, h, w)
    const int cin_g = s->cin / s->groups, cout_g = s->cout / s->groups;
    for (int ci = 0; ci < s->cin; ci++) {
        const int g = ci / cin_g, c = ci % cin_g;
        for (int b = 0; b < s->n; b++)
            for (int ih = 0; ih < s->h; ih++)
                for (int iw = 0; iw < s->w; iw++) {
                    double sum = 0.0;
                    for (int co = g * cout_g; co < (g + 1) * cout_g; co++)
                        for (int ki = 0; ki < s->kh; ki++) {
                            int th = ih + s->pad - ki;
                            if (th < 0 || th % s->stride || th / s->stride >= s->ho)
                                continue;
                            for (int kj = 0; kj < s->kw; kj++) {
                                int tw = iw + s->pad - kj;
                                if (tw < 0 || tw % s->stride || tw / s->stride >= s->wo)
                                    continue;
                                size_t yi = (((size_t)co * s->n + b) * s->ho + th / s->stride) *
                                                s->wo + tw / s->stride;
                                size_t wi = (((size_t)co * cin_g + c) * s->kh + ki) * s->kw + kj;
                                sum += (double)dy[yi] * w[wi];
                            }
                        }
                    size_t xi = (((size_t)ci * s->n + b) * s->h + ih) * s->w + iw;
                    float r = (float)sum;
                    if (beta != 0.0f)
                        r += beta * dx[xi];
                    dx[xi] = r;
                }
    }
}

void conv2d_backward_weight_ref(const rn_conv_shape *s, const float *x, const float *dy,
                                float *dw, float *db) {
    // x: (cin, n, h, w)  dy: (cout, n, ho, wo)  dw: (cout, cin/G, kh, kw)  db: (cout)
    const int cin_g = s->cin / s->groups, cout_g = s->cout / s->groups;
    const size_t out_plane = (size_t)s->n * s->ho * s->wo;
    for (int co = 0; co < s->cout; co++) {
        const int ci0 = co / cout_g * cin_g;
        const float *dyc = dy + (size_t)co * out_plane;
        for (int c = 0; c < cin_g; c++)
            for (int ki = 0; ki < s->kh; ki++)
                for (int kj = 0; kj < s->kw; kj++) {
                    double sum = 0.0;
                    for (int b = 0; b < s->n; b++)
                        for (int oh = 0; oh < s->ho; oh++) {
                            int ih = oh * s->stride - s->pad + ki;
                            if (ih < 0 || ih >= s->h)
                                continue;
                            for (int ow = 0; ow < s->wo; ow++) {
                                int iw = ow * s->stride - s->pad + kj;
                                if (iw < 0 || iw >= s->w)
                                    continue;
                                size_t xi =
                                    (((size_t)(ci0 + c) * s->n + b) * s->h + ih) * s->w + iw;
                                size_t yi = ((size_t)b * s->ho + oh) * s->wo + ow;
                                sum += (double)dyc[yi] * x[xi];
                            }
                        }
                    dw[(((size_t)co * cin_g + c) * s->kh + ki) * s->kw + kj] = (float)sum;
                }
        if (db) {
            double sum = 0.0;
            for (size_t i = 0; i < out_plane; i++)
                sum += dyc[i];
            db[co] = (float)sum;
        }
    }
}

/* ---------------------------------------------------------------------------
 * Plan: routes, chunk sizes and workspace layout, from the shape alone
 * ------------------------------------------------------------------------- */

enum { DATA_POINTWISE, DATA_FLIPPED, DATA_ALGO, DATA_PHASES, DATA_COL2IM };

typedef struct bwd_plan {
    const rn_kernels *k;    /* the GEMM's kernels */
    int G, cin_g, cout_g, khw;
    int K;                  /* cin_g * kh * kw: rows of im2col */
    long pix_in, pix_out;   /* n*h*w and n*ho*wo: one channel's floats */
    int pointwise;          /* 1x1, stride 1, unpadded: im2col(x) is x */
    int data_route;
    const rn_conv_algo *algo; /* DATA_ALGO: Winograd, direct or smallmap, as the heuristic picks */
    const rn_kernels *ka;   /* DATA_ALGO: its kernels (direct: fp32, k's own or k's fp32 twin;
                               Winograd and smallmap: k's, bf16 products on bf16 ones, but
                               Winograd's on matrix tiles, rn_conv_bf16_kernels) */
    int threads;            /* DATA_ALGO: the thread count its workspace is for */
    int chunk_d;            /* pixels per col2im chunk (DATA_COL2IM) */
    int phase_pad;          /* DATA_PHASES: every phase's window starts this far above dy's
                               row (and left of its column) */
    int phase_kf;           /* DATA_PHASES: the longest phase product's K (cout_g x its taps) */
    int chunk_w;            /* pixels per weight chunk */
    int wt_by_col;          /* weight product transposes col, not dy (K < cout_g) */
    int wt_direct;          /* weight gradient by the direct strips (few channels) */
    conv_wgrad_plan wd;     /* its layout, when wt_direct */
    int wt_wino;            /* or by Winograd (3x3 stride 1, with algos), on the fp32 kernels
                               (bf16 descriptors: their fp32 twin) */
    conv_wgrad_wino_plan ww; /* its layout, when wt_wino */
    int wt_small;           /* or as the small-map product's (conv_smallmap.c), on k's kernels */
    size_t ws_data;         /* floats the data gradient uses */
    size_t dwt_floats;      /* weight gradient pieces, aligned: dw_g^T (by dy), */
    size_t colt_floats;     /* a transposed im2col chunk (by col), */
    size_t col_floats;      /* an im2col chunk */
} bwd_plan;

static size_t align_up(size_t n) { return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }

/* Pixels per col2im chunk: dcol (K x chunk) within COL_CAP_FLOATS, a
 * multiple of step, at most limit. */
static int data_chunk(size_t rows, size_t step, long limit) {
    size_t c = COL_CAP_FLOATS / rows / step * step;
    if (c < step)
        c = step;
    return (long)c < limit ? (int)c : (int)limit;
}

/* Pixels per weight chunk: the im2col chunk (rows x chunk) within
 * COL_CAP_FLOATS, but at least cout_g pixels, so that a chunk's product
 * outweighs its update of dw^T (K x cout_g); a multiple of step, at most
 * limit. */
static int weight_chunk(size_t rows, int cout_g, size_t step, long limit) {
    size_t c = COL_CAP_FLOATS / rows / step * step;
    size_t least = ((size_t)cout_g + step - 1) / step * step;
    if (c < least)
        c = least;
    return (long)c < limit ? (int)c : (int)limit;
}

/* The data gradient of a stride-1 "same" 3x3 convolution as the forward
 * convolution it is: dy, padded by 2 - pad, with the flipped and
 * transposed weights, (cout, 3, 3) -> cin. */
static rn_conv_shape flipped_shape(const rn_conv_shape *s) {
    rn_conv_shape f = {.n = s->n, .cin = s->cout, .h = s->ho, .w = s->wo, .cout = s->cin,
                       .kh = s->kh, .kw = s->kw, .stride = 1, .pad = s->kh - 1 - s->pad,
                       .groups = 1};
    conv2d_shape_init(&f);
    return f;
}

/* The taps of one axis (kernel k, stride st, padding pad) that reach the input positions of
 * phase a (those = a modulo st): k_top - st * r for r < *count, and how far above the phase
 * position's own output row their window starts (-(a + pad - k_top) / st). 0 when none. */
static int phase_taps(int k, int st, int pad, int a, int *k_top, int *lead) {
    int count = 0;
    for (int ki = k - 1; ki >= 0; ki--)
        if (((a + pad - ki) % st + st) % st == 0) {
            if (!count++)
                *k_top = ki;
        }
    if (count)
        *lead = -(a + pad - *k_top) / st;
    return count;
}

/* Whether the data gradient of a strided s goes by phases: enough input channels
 * (the rows of each phase's product: below, packing its im2col panels costs as much as the
 * products they feed, and the phases' results pass over memory once more), every phase meets
 * taps on both axes, and every phase's window starts equally far above and left (im2col's one
 * pad). Measured against col2im, 3x3/2 on a Xeon (Sapphire Rapids class), the data gradient
 * alone, 2 threads, 6-8 alternated runs, medians, ms:
 *     256 -> 512 at 14x14, batch 32: AVX-512 44.6 -> 36.9, AVX2 59.7 -> 54.8, AMX bf16 40.6 ->
 *         25.8; at 8x8, batch 128: AVX-512 67.6 -> 47.6, AVX2 79.4 -> 70.7
 *     128 -> 256 at 28x28, batch 32: AVX-512 35.7 -> 35.2, AVX2 60.3 -> 50.7, AMX 31.8 -> 27.0;
 *         at 16x16, batch 128: AVX-512 49.3 -> 46.9, AVX2 74.4 -> 68.3
 *     not 64 -> 128 at 56x56, batch 32: AVX-512 38.0 -> 38.7, AVX2 54.4 -> 58.9, AMX 35.2 ->
 *         36.2; at 32x32, batch 128, AVX-512 56.6 -> 53.2, AVX2 80.5 -> 81.3
 * Nor where a phase would be narrower than PHASES_MIN_WIDTH rows or columns: on d2l_resnet18's
 * square maps at 28x28 input, batch 256 (`bench_backward -f -m -t 2`, AMD EPYC Zen 5, two runs,
 * the data gradient's GFLOP/s, phases against col2im), 128 -> 256 at 4x4 (phases of 2) 165-167
 * against 209-211, AVX2 122 against 130, bf16 188 against 236; 256 -> 512 at 2x2 (phases of
 * 1) 196-198 against 339-349, AVX2 166 against 205, bf16 182 against 317. */
#define PHASES_MIN_CIN 128
#define PHASES_MIN_WIDTH 3

/* On matrix tiles (AMX) the bf16 GEMM takes the weight gradient of the 3x3 stride-1 layers on
 * fewer input channels than this from Winograd's: their Winograd products (64 x 64 a point,
 * over the tiles of a block) run its fp32 kernels short of rows and columns, while the GEMM's
 * long K (every pixel) suits the tiles. Measured (Xeon, Sapphire Rapids class, 2 threads,
 * `profile_train -p bf16` alternated with `-c im2col`, medians of 4-6, ms, Winograd -> GEMM):
 * 64 -> 64 at 56x56, batch 32, 37.5-41.3 -> 28.3-29.4 with the tiles at full speed (about 1.9
 * TFLOP/s a core on their own), 64 -> 64 at 24x24, batch 128, 38.3-41.5 -> 37.9-38.8 with
 * them at a fifth of it (the host's two states); not 128 -> 128 at 28x28 (23.3-24.8 -> 25.0-
 * 27.1) nor at 12x12 (23.2-23.4 -> 31.1-32.8), nor 512 -> 512 at 7x7 (24.0-24.6 -> 31.8-35.1). */
#define TILES_WGRAD_WINO_MIN_CIN 128
static int wgrad_on_tiles(const rn_kernels *k, const rn_conv_shape *s) {
    return rn_kernels_are_bf16(k) && k->matrix_tiles && s->cin / s->groups < TILES_WGRAD_WINO_MIN_CIN;
}

/* Rows (or columns) of phase a in an axis of n positions, stride st. */
static int phase_len(int n, int st, int a) { return (n - a + st - 1) / st; }

static int phases_fit(const rn_conv_shape *s, int *pad) {
    if (s->stride < 2 || s->stride > RN_PHASE_MAX || s->h < s->stride || s->w < s->stride ||
        s->cin / s->groups < PHASES_MIN_CIN ||
        phase_len(s->h, s->stride, s->stride - 1) < PHASES_MIN_WIDTH ||
        phase_len(s->w, s->stride, s->stride - 1) < PHASES_MIN_WIDTH)
        return 0;
    for (int a = 0; a < s->stride; a++) {
        int top_h = 0, top_w = 0, lead_h = 0, lead_w = 0;
        if (!phase_taps(s->kh, s->stride, s->pad, a, &top_h, &lead_h) ||
            !phase_taps(s->kw, s->stride, s->pad, a, &top_w, &lead_w) || lead_h != lead_w ||
            lead_h < 0 || (a > 0 && lead_h != *pad))
            return 0;
        *pad = lead_h;
    }
    return 1;
}

static bwd_plan make_plan(const rn_kernels *k, const rn_conv_shape *s, int algos) {
    bwd_plan p = {0};
    p.k = rn_kernels_or_default(k);
    p.G = s->groups;
    p.cin_g = s->cin / s->groups;
    p.cout_g = s->cout / s->groups;
    p.khw = s->kh * s->kw;
    p.K = p.cin_g * p.khw;
    p.pix_in = (long)s->n * s->h * s->w;
    p.pix_out = (long)s->n * s->ho * s->wo;
    p.pointwise = s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad == 0;

    const long flipped_k = (long)p.cout_g * p.khw;
    if (p.pointwise)
        p.data_route = DATA_POINTWISE;
    else if (s->stride == 1 && s->kh == s->kw && s->pad <= s->kh - 1 && flipped_k <= 0x7fffffffL)
        p.data_route = DATA_FLIPPED;
    else if (phases_fit(s, &p.phase_pad))
        p.data_route = DATA_PHASES;
    else
        p.data_route = DATA_COL2IM;

    if (p.data_route == DATA_FLIPPED && algos && p.G == 1) {
        /* bf16 kernels: Winograd, on bf16 products as the forward's (rn_conv_bf16_kernels;
         * on matrix tiles, AMX, fp32 ones), not the direct tile, and on matrix tiles only
         * where the forward keeps it too: from 256 channels up the bf16 GEMM on the flipped
         * weights outruns it (resnet18 at 224x224, batch 32, on a Sapphire Rapids class Xeon:
         * see the commit that made this rule); the small-map product (a GEMM) on k's own
         * kernels at either precision */
        const rn_conv_shape f = flipped_shape(s);
        p.ka = rn_kernels_fp32(p.k);
        const rn_conv_algo_id a = rn_conv_algo_choose(p.ka, &f);
        if (a == RN_CONV_SMALLMAP || rn_conv_algo_is_winograd(a))
            p.ka = rn_conv_bf16_kernels(p.k, a);
        if (a == RN_CONV_SMALLMAP ||
            (rn_kernels_are_bf16(p.k)
                 ? rn_conv_algo_is_winograd(a) && rn_conv_bf16_keeps_winograd(p.k, &f)
                 : rn_conv_algo_own_weights(a))) {
            p.data_route = DATA_ALGO;
            p.algo = rn_conv_algo_get(a);
            p.threads = algos;
        }
    }

    if (p.data_route == DATA_POINTWISE) {
        p.ws_data = rn_gemm_packed_a_floats(p.k, p.cin_g, p.cout_g);
    } else if (p.data_route == DATA_ALGO) {
        const rn_conv_shape f = flipped_shape(s);
        p.ws_data = align_up((size_t)p.cin_g * (size_t)flipped_k) +
                    align_up(p.algo->prepared_floats(p.ka, &f)) +
                    p.algo->workspace_floats(p.ka, &f, p.threads);
    } else if (p.data_route == DATA_FLIPPED) {
        p.ws_data = align_up((size_t)p.cin_g * (size_t)flipped_k) +
                    rn_gemm_packed_a_floats(p.k, p.cin_g, (int)flipped_k);
    } else if (p.data_route == DATA_PHASES) {
        /* one phase's weights and their packing, and a row phase's results */
        p.phase_kf = p.cout_g * ((s->kh + s->stride - 1) / s->stride) *
                     ((s->kw + s->stride - 1) / s->stride);
        p.ws_data = align_up((size_t)p.cin_g * (size_t)p.phase_kf) +
                    align_up(rn_gemm_packed_a_floats(p.k, p.cin_g, p.phase_kf)) +
                    (size_t)p.cin_g * s->n * phase_len(s->h, s->stride, 0) * s->w;
    } else if (p.data_route == DATA_COL2IM) {
        long limit = p.pix_out < CHUNK_D_MAX ? p.pix_out : CHUNK_D_MAX;
        p.chunk_d = data_chunk((size_t)p.K, (size_t)p.k->nr, limit);
        p.ws_data = (size_t)p.K * (size_t)p.chunk_d;
    }

    /* bf16 descriptors: the strips of their fp32 twin (float32 products; the bf16 GEMM ran the
     * stems' weight gradients 1.3-1.6x slower: see conv_wgrad.c), and Winograd's (fp32
     * products too) but on matrix tiles below TILES_WGRAD_WINO_MIN_CIN */
    p.wt_direct = conv_wgrad_plan_for(rn_kernels_fp32(p.k), s, &p.wd);
    /* where the forward takes the small-map product, its weight gradient is one too */
    p.wt_small = algos && !p.wt_direct &&
                 rn_conv_algo_choose(rn_kernels_fp32(p.k), s) == RN_CONV_SMALLMAP;
    p.wt_wino = algos && !p.wt_direct && !p.wt_small && !wgrad_on_tiles(p.k, s) &&
                conv_wgrad_wino_plan_for(rn_kernels_fp32(p.k), s, &p.ww);

    /* Transpose the smaller operand: dy (cout_g rows) or im2col (K rows). */
    p.wt_by_col = p.K < p.cout_g;
    size_t widest = p.K > p.cout_g ? (size_t)p.K : (size_t)p.cout_g;
    p.chunk_w = weight_chunk(widest, p.cout_g, (size_t)p.k->nr, p.pix_out);
    const size_t chunk = (size_t)p.chunk_w;
    p.dwt_floats = p.wt_by_col ? 0 : align_up((size_t)p.K * (size_t)p.cout_g);
    p.colt_floats = p.wt_by_col ? align_up(chunk * (size_t)p.K) : 0;
    p.col_floats = p.pointwise ? 0 : (size_t)p.K * chunk;
    return p;
}

static size_t workspace_uncropped(const rn_kernels *k, const rn_conv_shape *s, int algos) {
    bwd_plan p = make_plan(k, s, algos);
    size_t ws_weight = p.wt_direct ? p.wd.floats
                       : p.wt_wino ? p.ww.floats
                       : p.wt_small ? rn_smallmap_weight_floats(s)
                                    : p.dwt_floats + p.colt_floats + p.col_floats;
    return p.ws_data > ws_weight ? p.ws_data : ws_weight;
}

/* Floats of the cropped weights (or their gradient), aligned. */
static size_t cropped_floats(const rn_conv_shape *c) {
    return align_up(conv2d_weight_floats(c));
}

size_t conv2d_backward_workspace_floats(const rn_kernels *k, const rn_conv_shape *s, int algos) {
    rn_conv_shape c;
    int k0;
    if (conv2d_crop_shape(s, &c, &k0))
        return cropped_floats(&c) + workspace_uncropped(k, &c, algos);
    return workspace_uncropped(k, s, algos);
}

/* dw (planes, kh, kw) = zero, with dwc (planes, kc_h, kc_w) at tap (k0, k0). */
static void expand_weights(const float *dwc, size_t planes, int kc_h, int kc_w, int k0, int kh,
                           int kw, float *dw) {
    memset(dw, 0, planes * kh * kw * sizeof(float));
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if (planes > 4096)
    for (size_t q = 0; q < planes; q++)
        for (int i = 0; i < kc_h; i++)
            for (int j = 0; j < kc_w; j++)
                dw[(q * kh + i + k0) * kw + j + k0] = dwc[(q * kc_h + i) * kc_w + j];
}

/* ---------------------------------------------------------------------------
 * Helpers: work sharing, transpose, im2col and col2im over output pixels
 *
 * The chunked products run inside one parallel region per call: each
 * thread owns a fixed share of the rows (or columns) of every chunk and
 * multiplies it with rn_sgemm_1t, so the chunks need no barrier. Functions
 * marked "(worksharing)" contain an orphaned `omp for` and are called by
 * every thread of the region.
 * ------------------------------------------------------------------------- */

/* This thread's share [*lo, *hi) of n items, dealt in blocks of `step`. */
static void my_share(int n, int step, int *lo, int *hi) {
#ifdef _OPENMP
    const int team = omp_get_num_threads();
#else
    const int team = 1;
#endif
    const int blocks = (n + step - 1) / step;
    const int per = (blocks + team - 1) / team;
    const long a = (long)rn_thread_id() * per * step, z = a + (long)per * step;
    *lo = a < n ? (int)a : n;
    *hi = z < n ? (int)z : n;
}

/* dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols, in TILE x TILE
 * tiles (worksharing; ends with a barrier). */
static void transpose_shared(const float *src, ptrdiff_t lds, int rows, int cols, float *dst,
                             ptrdiff_t ldd) {
    const int tr = (rows + TILE - 1) / TILE, tc = (cols + TILE - 1) / TILE;
#pragma omp for schedule(static)
    for (int t = 0; t < tr * tc; t++) {
        const int r0 = t / tc * TILE, c0 = t % tc * TILE; /* along src rows */
        const int r1 = r0 + TILE < rows ? r0 + TILE : rows;
        const int c1 = c0 + TILE < cols ? c0 + TILE : cols;
        for (int c = c0; c < c1; c++)
            for (int r = r0; r < r1; r++)
                dst[(ptrdiff_t)c * ldd + r] = src[(ptrdiff_t)r * lds + c];
    }
}

/* The same on the calling thread only. */
static void transpose_local(const float *src, ptrdiff_t lds, int rows, int cols, float *dst,
                            ptrdiff_t ldd) {
    for (int r0 = 0; r0 < rows; r0 += TILE)
        for (int c0 = 0; c0 < cols; c0 += TILE) {
            const int r1 = r0 + TILE < rows ? r0 + TILE : rows;
            const int c1 = c0 + TILE < cols ? c0 + TILE : cols;
            for (int c = c0; c < c1; c++)
                for (int r = r0; r < r1; r++)
                    dst[(ptrdiff_t)c * ldd + r] = src[(ptrdiff_t)r * lds + c];
        }
}

/* Where a run of output pixels starts: image b, output row oh, column ow. */
typedef struct pix_pos {
    int b, oh, ow;
} pix_pos;

static pix_pos pix_at(const rn_conv_shape *s, long j) {
    const long hw = (long)s->ho * s->wo;
    pix_pos q = {(int)(j / hw), (int)(j % hw / s->wo), (int)(j % s->wo)};
    return q;
}

/* Columns [lo, hi) of a run of len output columns starting at input column
 * iw0 (stepping by stride) that land inside 0 .. W-1. */
static void run_bounds(int iw0, int len, int stride, int W, int *lo, int *hi) {
    int a = iw0 >= 0 ? 0 : (-iw0 + stride - 1) / stride;
    int z = iw0 < W ? (W - iw0 + stride - 1) / stride : 0;
    *lo = a < len ? a : len;
    *hi = z < len ? z : len;
    if (*hi < *lo)
        *hi = *lo;
}

/* Rows [k0, k1) of col (K, ld): col[k, t] = im2col(x_g)[k, j0 + t] for
 * t < ncols, on the calling thread.
 *
 * A stride-1 "same" convolution (kh = kw = 2 * pad + 1, so ho = h, wo = w)
 * is copied by planes: a tap's row over one image is the image plane
 * shifted by off = (ki - pad) * w + (kj - pad), one memcpy per image; then
 * the columns that wrapped around a row's edge are zeroed, and so are the
 * rows outside the image. Other shapes, and planes narrower than SAME_MIN_W
 * (where the per-row fix-ups dominate), go through the GEMM's own im2col
 * packers (SIMD, masked loads). */
static void im2col_rows(const rn_conv_shape *s, const bwd_plan *p, const float *xg, long j0,
                        int ncols, int k0, int k1, float *col, int ld) {
    // xg: (cin_g, n, h, w)  col: (K, ncols)
    if (k1 <= k0)
        return;
    if (!(s->stride == 1 && s->kh == 2 * s->pad + 1 && s->kw == 2 * s->pad + 1 &&
          s->w >= SAME_MIN_W)) {
        const rn_im2col im = {.x = xg, .c = p->cin_g, .n = s->n, .h = s->h, .w = s->w,
                              .kh = s->kh, .kw = s->kw, .stride = s->stride, .pad = s->pad,
                              .ho = s->ho, .wo = s->wo};
        rn_im2col_block(p->k, &im, k0, k1 - k0, j0, ncols, col + (size_t)k0 * ld, ld);
        return;
    }
    const long hw = (long)s->h * s->w;
    const int w = s->w;
    for (int k = k0; k < k1; k++) {
        const int c = k / p->khw, di = k % p->khw / s->kw - s->pad, dj = k % s->kw - s->pad;
        const long off = (long)di * w + dj;
        /* valid output rows [r0, r1): those whose input row is inside */
        const long r0 = di < 0 ? -di : 0, r1 = di > 0 ? s->h - di : s->h;
        /* the wrapped columns of a valid row: [0, -dj) or [w - dj, w) */
        const long z0 = dj < 0 ? 0 : w - dj, z1 = dj < 0 ? -dj : w;
        for (long j = j0; j < j0 + ncols;) {
            /* image b, positions [i0, i1) of its plane, at d[0 ..] */
            const long b = j / hw, i0 = j % hw;
            const long i1 = hw - i0 < j0 + ncols - j ? hw : i0 + (j0 + ncols - j);
            const float *img = xg + (size_t)c * p->pix_in + (size_t)b * hw;
            float *d = col + (size_t)k * ld + (j - j0);
            /* copy [a, z): the valid rows, clamped to [i0, i1) and the plane */
            long a = r0 * w, z = r1 * w;
            a = a > i0 ? a : i0;
            a = a > -off ? a : -off;
            a = a < i1 ? a : i1;
            z = z < i1 ? z : i1;
            z = z < hw - off ? z : hw - off;
            z = z > a ? z : a;
            memset(d, 0, (size_t)(a - i0) * sizeof(float));
            memcpy(d + (a - i0), img + a + off, (size_t)(z - a) * sizeof(float));
            memset(d + (z - i0), 0, (size_t)(i1 - z) * sizeof(float));
            for (long row = a / w; dj != 0 && row * w < z; row++)
                for (long i = row * w + z0; i < row * w + z1; i++)
                    if (i >= a && i < z)
                        d[i - i0] = 0.0f;
            j += i1 - i0;
        }
    }
}

/* dx_g += col2im(dcol) for channels [c0, c1), from the columns j0 ..
 * j0+ncols-1 held in dcol (K, ld), on the calling thread: a channel's taps,
 * then its pixels, are added in order. */
static void col2im_channels(const rn_conv_shape *s, const bwd_plan *p, const float *dcol,
                            int ld, long j0, int ncols, int c0, int c1, float *dxg) {
    // dcol: (K, ld)  dxg: (cin_g, n, h, w)
    const pix_pos start = pix_at(s, j0);
    const int stride = s->stride;
    for (int c = c0; c < c1; c++) {
        float *dxc = dxg + (size_t)c * p->pix_in;
        for (int tap = 0; tap < p->khw; tap++) {
            const int ki = tap / s->kw, kj = tap % s->kw;
            const float *src = dcol + ((size_t)c * p->khw + tap) * ld;
            pix_pos q = start;
            for (int t = 0; t < ncols;) {
                int len = s->wo - q.ow < ncols - t ? s->wo - q.ow : ncols - t;
                int ih = q.oh * stride - s->pad + ki;
                if (ih >= 0 && ih < s->h) {
                    int iw0 = q.ow * stride - s->pad + kj, lo, hi;
                    run_bounds(iw0, len, stride, s->w, &lo, &hi);
                    float *row = dxc + ((size_t)q.b * s->h + ih) * s->w;
                    const float *v = src + t;
                    if (stride == 1) {
#pragma omp simd
                        for (int u = lo; u < hi; u++)
                            row[iw0 + u] += v[u];
                    } else {
                        for (int u = lo; u < hi; u++)
                            row[iw0 + u * stride] += v[u];
                    }
                }
                t += len;
                q.ow = 0;
                if (++q.oh == s->ho) {
                    q.oh = 0;
                    q.b++;
                }
            }
        }
    }
}

/* ---------------------------------------------------------------------------
 * Fast path: data gradient
 * ------------------------------------------------------------------------- */

/* wf (cin_g, cout_g * kh * kw): the group's weights transposed and flipped,
 * wf[c, (co * kh + a) * kw + b] = w_g[co, c, kh-1-a, kw-1-b]. */
static void flip_weights(const bwd_plan *p, const float *wg, float *wf) {
    const size_t kf = (size_t)p->cout_g * p->khw;
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if (kf * p->cin_g > 65536)
    for (int c = 0; c < p->cin_g; c++)
        for (int co = 0; co < p->cout_g; co++)
            for (int tap = 0; tap < p->khw; tap++)
                wf[c * kf + (size_t)co * p->khw + tap] =
                    wg[((size_t)co * p->cin_g + c) * p->khw + (p->khw - 1 - tap)];
}

/* dx_g = beta dx_g + col2im(w_g^T dy_g), a chunk of pixels at a time: each
 * thread computes the dcol rows of its own input channels and scatters them
 * into those channels only, so no thread waits for another. */
static void data_col2im(const rn_conv_shape *s, const bwd_plan *p, const float *dyg,
                        const float *wg, float beta, float *dxg, float *dcol) {
    // dy_g: (cout_g, n*ho*wo)  w_g: (cout_g, K)  dx_g: (cin_g, n*h*w)  dcol: (K, chunk_d)
#pragma omp parallel num_threads(rn_threads())
    {
        int c0, c1;
        my_share(p->cin_g, 1, &c0, &c1);
        const int i0 = c0 * p->khw, rows = (c1 - c0) * p->khw;
        if (beta == 0.0f && c1 > c0)
            memset(dxg + (size_t)c0 * p->pix_in, 0,
                   (size_t)(c1 - c0) * p->pix_in * sizeof(float));
        for (long j0 = 0; j0 < p->pix_out && rows > 0; j0 += p->chunk_d) {
            const int nc = p->pix_out - j0 < p->chunk_d ? (int)(p->pix_out - j0) : p->chunk_d;
            /* dcol rows [i0, i0 + rows) = (w_g^T)[those rows] x dy_g chunk; the
             * row stride is fixed, as threads may be on different chunks */
            rn_sgemm_1t(p->k, 1, 0, rows, nc, p->cout_g, wg + i0, p->K, dyg + j0, (int)p->pix_out,
                        0.0f, dcol + (size_t)i0 * p->chunk_d, p->chunk_d, NULL);
            col2im_channels(s, p, dcol, p->chunk_d, j0, nc, c0, c1, dxg);
        }
    }
}

/* dx_g = beta dx_g + the data gradient of a strided convolution, phase by phase
 * (DATA_PHASES): per row phase a, each column phase b's GEMM of its flipped taps wp
 * (cin_g, cout_g x th x tw) with im2col of dy (a window of th x tw, stride 1), into out;
 * then dx's rows of phase a, each written once, from those results interleaved. */
static void data_phases(const rn_conv_shape *s, const bwd_plan *p, const float *dyg,
                        const float *wg, float beta, float *dxg, float *ws) {
    const int st = s->stride;
    float *wp = ws; /* the layout make_plan sized */
    float *apack = wp + align_up((size_t)p->cin_g * (size_t)p->phase_kf);
    float *out = apack + align_up(rn_gemm_packed_a_floats(p->k, p->cin_g, p->phase_kf));
    for (int a = 0; a < st; a++) {
        int ki_top, lead;
        const int th = phase_taps(s->kh, st, s->pad, a, &ki_top, &lead);
        const int ha = phase_len(s->h, st, a);
        size_t offs[RN_PHASE_MAX];
        size_t off = 0;
        for (int b = 0; b < st; b++) {
            int kj_top;
            const int tw = phase_taps(s->kw, st, s->pad, b, &kj_top, &lead);
            const int wb = phase_len(s->w, st, b), kf = p->cout_g * th * tw;
            /* wp[c, (co * th + r) * tw + q] = w_g[co, c, ki_top - st r, kj_top - st q] */
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if ((long)kf * p->cin_g > 65536)
            for (int c = 0; c < p->cin_g; c++)
                for (int co = 0; co < p->cout_g; co++)
                    for (int r = 0; r < th; r++)
                        for (int q = 0; q < tw; q++)
                            wp[(size_t)c * kf + ((size_t)co * th + r) * tw + q] =
                                wg[(((size_t)co * p->cin_g + c) * s->kh + ki_top - st * r) * s->kw +
                                   kj_top - st * q];
            const rn_im2col im = {.x = dyg, .c = p->cout_g, .n = s->n, .h = s->ho, .w = s->wo,
                                  .kh = th, .kw = tw, .stride = 1, .pad = p->phase_pad,
                                  .ho = ha, .wo = wb};
            offs[b] = off;
            const long cols = (long)s->n * ha * wb;
            if (th * tw == 1 && p->phase_pad == 0 && ha == s->ho && wb == s->wo)
                /* one tap over dy as it is: a plain product, B read in place */
                rn_sgemm_ws(p->k, 0, 0, p->cin_g, (int)cols, p->cout_g, wp, kf, dyg, (int)cols,
                            0.0f, out + off, (int)cols, NULL, apack);
            else
                rn_sgemm_im2col(p->k, p->cin_g, wp, kf, &im, 0.0f, out + off, (int)cols, NULL,
                                apack);
            off += (size_t)p->cin_g * cols;
        }
        /* dx's rows a, a + st, ..: column b + st q from phase b's row */
        const long rows = (long)p->cin_g * s->n * ha;
#pragma omp parallel for num_threads(rn_threads()) schedule(static)
        for (long row = 0; row < rows; row++) {
            const long c = row / ((long)s->n * ha), img = row / ha % s->n, pr = row % ha;
            float *d = dxg + (size_t)c * p->pix_in + ((size_t)img * s->h + st * pr + a) * s->w;
            const size_t at = (size_t)c * s->n * ha + (size_t)img * ha + pr;
            if (st == 2 && s->w % 2 == 0) { /* two phases of equal width, in pairs */
                const int wb = s->w / 2;
                const float *v0 = out + offs[0] + at * wb, *v1 = out + offs[1] + at * wb;
                if (beta == 0.0f)
#pragma omp simd
                    for (int q = 0; q < wb; q++) {
                        d[2 * q] = v0[q];
                        d[2 * q + 1] = v1[q];
                    }
                else
#pragma omp simd
                    for (int q = 0; q < wb; q++) {
                        d[2 * q] += v0[q];
                        d[2 * q + 1] += v1[q];
                    }
                continue;
            }
            for (int b = 0; b < st; b++) {
                const int wb = phase_len(s->w, st, b);
                const float *v = out + offs[b] + at * wb;
                if (beta == 0.0f)
                    for (int q = 0; q < wb; q++)
                        d[b + st * q] = v[q];
                else
                    for (int q = 0; q < wb; q++)
                        d[b + st * q] += v[q];
            }
        }
    }
}

void conv2d_backward_data(const rn_kernels *k, const rn_conv_shape *s, const float *dy,
                          const float *w, float beta, float *dx, float *workspace, int algos) {
    rn_conv_shape c;
    int k0;
    if (conv2d_crop_shape(s, &c, &k0)) {
        /* the live taps only: wc (cout, cin_g, c.kh, c.kw) cropped from w */
        float *wc = workspace;
        conv2d_crop_weights(s, &c, k0, w, wc);
        conv2d_backward_data(k, &c, dy, wc, beta, dx, workspace + cropped_floats(&c), algos);
        return;
    }
    const bwd_plan p = make_plan(k, s, algos);
    for (int g = 0; g < p.G; g++) {
        // dy_g: (cout_g, n*ho*wo)  w_g: (cout_g, K)  dx_g: (cin_g, n*h*w)
        const float *dyg = dy + (size_t)g * p.cout_g * p.pix_out;
        const float *wg = w + (size_t)g * p.cout_g * p.K;
        float *dxg = dx + (size_t)g * p.cin_g * p.pix_in;

        if (p.data_route == DATA_POINTWISE) {
            /* dx_g = w_g^T dy_g */
            rn_sgemm_ws(p.k, 1, 0, p.cin_g, (int)p.pix_in, p.cout_g, wg, p.cin_g, dyg,
                        (int)p.pix_out, beta, dxg, (int)p.pix_in, NULL, workspace);
        } else if (p.data_route == DATA_ALGO) {
            /* dx = the forward convolution of dy with the flipped weights, by
             * Winograd or directly; beta 1 adds dx as its residual (each value
             * read before it is written) */
            const rn_conv_shape f = flipped_shape(s);
            float *wf = workspace;
            float *u = wf + align_up((size_t)p.cin_g * p.cout_g * p.khw);
            float *aws = u + align_up(p.algo->prepared_floats(p.ka, &f));
            flip_weights(&p, wg, wf);
            p.algo->prepare(p.ka, &f, wf, u);
            p.algo->forward(p.ka, &f, dyg, u, NULL, beta != 0.0f ? dxg : NULL, 0, dxg, aws,
                            p.threads);
        } else if (p.data_route == DATA_FLIPPED) {
            /* dx_g = wf x im2col(dy_g padded by k-1-pad) */
            float *wf = workspace;
            const int kf = p.cout_g * p.khw;
            flip_weights(&p, wg, wf);
            rn_im2col im = {.x = dyg, .c = p.cout_g, .n = s->n, .h = s->ho, .w = s->wo,
                            .kh = s->kh, .kw = s->kw, .stride = 1, .pad = s->kh - 1 - s->pad,
                            .ho = s->h, .wo = s->w};
            rn_sgemm_im2col(p.k, p.cin_g, wf, kf, &im, beta, dxg, (int)p.pix_in, NULL,
                            wf + align_up((size_t)p.cin_g * kf));
        } else if (p.data_route == DATA_PHASES) {
            data_phases(s, &p, dyg, wg, beta, dxg, workspace);
        } else {
            data_col2im(s, &p, dyg, wg, beta, dxg, workspace);
        }
    }
}

/* ---------------------------------------------------------------------------
 * Fast path: weight gradient
 * ------------------------------------------------------------------------- */

/* db[c] = sum of row c of dy (C rows of M): 16 float lanes over blocks of
 * ROW_BLOCK values, each block's lanes added into double; a fixed order
 * (worksharing). */
static void row_sums(const float *dy, int C, size_t M, float *db) {
#pragma omp for schedule(static)
    for (int c = 0; c < C; c++) {
        const float *row = dy + (size_t)c * M;
        double total = 0.0;
        for (size_t m0 = 0; m0 < M; m0 += ROW_BLOCK) {
            const size_t m1 = M - m0 < ROW_BLOCK ? M : m0 + ROW_BLOCK;
            float acc[16] = {0};
            size_t m = m0;
            for (; m + 16 <= m1; m += 16)
#pragma GCC unroll 16
                for (int j = 0; j < 16; j++)
                    acc[j] += row[m + j];
            for (; m < m1; m++)
                acc[0] += row[m];
            for (int j = 0; j < 16; j++)
                total += acc[j];
        }
        db[c] = (float)total;
    }
}

/* K >= cout_g: dw_g^T (K, cout_g) += col x dy_g^T chunk by chunk, each
 * thread owning a block of dw_g^T's rows, i.e. of col's rows, which it
 * builds itself; the GEMM packs dy_g^T straight from dy_g (transb), so no
 * thread waits for another until dw_g = (dw_g^T)^T (worksharing). Shared
 * buffers with a barrier per chunk measured no faster alone and collapse
 * when the cores are oversubscribed. */
static void weight_by_dy(const rn_conv_shape *s, const bwd_plan *p, const float *xg,
                         const float *dyg, float *dwg, float *dwt, float *col) {
    // dwt: (K, cout_g)  col: (K, chunk_w)
    int r0, r1;
    my_share(p->K, 2 * p->k->mr, &r0, &r1);
    for (long j0 = 0; j0 < p->pix_out && r1 > r0; j0 += p->chunk_w) {
        const int nc = p->pix_out - j0 < p->chunk_w ? (int)(p->pix_out - j0) : p->chunk_w;
        const float beta = j0 == 0 ? 0.0f : 1.0f;
        /* a: rows [r0, r1) of the chunk's im2col, in place for a pointwise conv;
         * col's row stride is fixed, as threads may be on different chunks */
        const float *a = col + (size_t)r0 * p->chunk_w;
        ptrdiff_t lda = p->chunk_w;
        if (p->pointwise) {
            a = xg + (size_t)r0 * p->pix_in + j0;
            lda = (ptrdiff_t)p->pix_in;
        } else {
            im2col_rows(s, p, xg, j0, nc, r0, r1, col, p->chunk_w);
        }
        for (int n0 = 0; n0 < p->cout_g; n0 += N_BLOCK_MAX) {
            int nb = p->cout_g - n0 < N_BLOCK_MAX ? p->cout_g - n0 : N_BLOCK_MAX;
            rn_sgemm_1t(p->k, 0, 1, r1 - r0, nb, nc, a, (int)lda, dyg + (size_t)n0 * p->pix_out + j0,
                        (int)p->pix_out, beta, dwt + (size_t)r0 * p->cout_g + n0, p->cout_g,
                        NULL);
        }
    }
#pragma omp barrier
    transpose_shared(dwt, p->cout_g, p->K, p->cout_g, dwg, p->K);
}

/* K < cout_g: dw_g (cout_g, K) += dy_g x col^T chunk by chunk, each thread
 * owning a block of dw_g's columns, i.e. of col's rows, which it builds and
 * transposes itself: no thread waits for another. The columns are dealt in
 * the narrowest panels the kernels have (nr_step), not whole ones: a strided
 * 1x1 on 16 input channels (K = 16) ran on one thread (dev/profile_train,
 * the fmnist-fast network, batch 128, Zen 3: 1x1/2 16->32 at 28x28 3.7 ->
 * 2.4 ms, 32->64 at 14x14 1.6 -> 1.1-1.5 ms). */
static void weight_by_col(const rn_conv_shape *s, const bwd_plan *p, const float *xg,
                          const float *dyg, float *dwg, float *colt, float *col) {
    // colt: (chunk_w, K)  col: (K, chunk_w)
    int n0, n1;
    my_share(p->K, p->k->nr_step, &n0, &n1);
    for (long j0 = 0; j0 < p->pix_out && n1 > n0; j0 += p->chunk_w) {
        const int nc = p->pix_out - j0 < p->chunk_w ? (int)(p->pix_out - j0) : p->chunk_w;
        const float beta = j0 == 0 ? 0.0f : 1.0f;
        if (p->pointwise) {
            transpose_local(xg + (size_t)n0 * p->pix_in + j0, (ptrdiff_t)p->pix_in, n1 - n0, nc,
                            colt + n0, p->K);
        } else {
            im2col_rows(s, p, xg, j0, nc, n0, n1, col, p->chunk_w);
            transpose_local(col + (size_t)n0 * p->chunk_w, p->chunk_w, n1 - n0, nc, colt + n0,
                            p->K);
        }
        for (int b0 = n0; b0 < n1; b0 += N_BLOCK_MAX) {
            int nb = n1 - b0 < N_BLOCK_MAX ? n1 - b0 : N_BLOCK_MAX;
            rn_sgemm_1t(p->k, 0, 0, p->cout_g, nb, nc, dyg + j0, (int)p->pix_out, colt + b0, p->K,
                        beta, dwg + b0, p->K, NULL);
        }
    }
}

/* The plan both backward functions follow for shape s: that of its live taps where they crop. */
static bwd_plan cropped_plan(const rn_kernels *k, const rn_conv_shape *s, int algos) {
    rn_conv_shape c;
    int k0;
    return make_plan(k, conv2d_crop_shape(s, &c, &k0) ? &c : s, algos);
}

int conv2d_backward_weight_direct(const rn_kernels *k, const rn_conv_shape *s) {
    return cropped_plan(k, s, 0).wt_direct;
}

int conv2d_backward_weight_winograd(const rn_kernels *k, const rn_conv_shape *s) {
    return cropped_plan(k, s, 1).wt_wino;
}

int conv2d_backward_by_smallmap(const rn_kernels *k, const rn_conv_shape *s) {
    const bwd_plan p = cropped_plan(k, s, 1);
    return p.wt_small && p.data_route == DATA_ALGO && p.algo == &rn_conv_smallmap;
}

int conv2d_backward_data_algo(const rn_kernels *k, const rn_conv_shape *s, const rn_kernels **ka) {
    const bwd_plan p = cropped_plan(k, s, 1);
    if (p.data_route != DATA_ALGO)
        return -1;
    *ka = p.ka;
    return (int)p.algo->id;
}

int conv2d_backward_data_by_phases(const rn_kernels *k, const rn_conv_shape *s) {
    return cropped_plan(k, s, 0).data_route == DATA_PHASES;
}

void conv2d_backward_weight(const rn_kernels *k, const rn_conv_shape *s, const float *x,
                            const float *dy, float *dw, float *db, float *workspace, int algos) {
    rn_conv_shape c;
    int k0;
    if (conv2d_crop_shape(s, &c, &k0)) {
        /* the live taps' gradient dwc (cout, cin_g, c.kh, c.kw), zeros around it */
        float *dwc = workspace;
        conv2d_backward_weight(k, &c, x, dy, dwc, db, workspace + cropped_floats(&c), algos);
        expand_weights(dwc, (size_t)s->cout * (s->cin / s->groups), c.kh, c.kw, k0, s->kh, s->kw,
                       dw);
        return;
    }
    const bwd_plan p = make_plan(k, s, algos);
    // dwt: (K, cout_g) or none  colt: (chunk_w, K) or none  col: (K, chunk_w)
    float *dwt = workspace;
    float *colt = dwt + p.dwt_floats;
    float *col = colt + p.colt_floats;
    if (p.wt_small) /* its gathers and product share themselves out */
        rn_smallmap_weight(p.k, s, x, dy, dw, workspace);
#pragma omp parallel num_threads(rn_threads())
    {
        if (p.wt_direct)
            conv_wgrad_run(rn_kernels_fp32(p.k), s, &p.wd, x, dy, dw, workspace);
        else if (p.wt_wino)
            conv_wgrad_wino_run(rn_kernels_fp32(p.k), s, &p.ww, x, dy, dw, workspace);
        for (int g = 0; g < p.G && !p.wt_direct && !p.wt_wino && !p.wt_small; g++) {
            // x_g: (cin_g, n*h*w)  dy_g: (cout_g, n*ho*wo)  dw_g: (cout_g, K)
            const float *xg = x + (size_t)g * p.cin_g * p.pix_in;
            const float *dyg = dy + (size_t)g * p.cout_g * p.pix_out;
            float *dwg = dw + (size_t)g * p.cout_g * p.K;
            if (p.wt_by_col)
                weight_by_col(s, &p, xg, dyg, dwg, colt, col);
            else
                weight_by_dy(s, &p, xg, dyg, dwg, dwt, col);
        }
        if (db)
            row_sums(dy, s->cout, (size_t)p.pix_out, db);
    }
}
