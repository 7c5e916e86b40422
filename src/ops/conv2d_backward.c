/*
 * conv2d_backward.c - 2-D convolution, backward (contract in conv2d.h): the reference, the
 * plan (conv2d_backward_plan.h) and the queries; the fast data gradient in
 * conv2d_backward_data.c, the fast weight gradient in conv2d_backward_weight.c.
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
 *   - K < cout/G (widening 1x1): dw_g = dy_g x col^T, the GEMM packing col^T
 *     from col (a pointwise conv's x in place).
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

#include "ops/conv2d_backward_plan.h"
#include "ops/conv_smallmap.h"
#include "ops/gemm.h"

#define COL_CAP_FLOATS (1 << 18) /* im2col chunks stay in L2: 1 MB */
#define CHUNK_D_MAX RN_RAW_A_MAX_COLS /* widest GEMM that reads A in place */

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

/* The weight product by col on the fp32 twin of a bf16 descriptor (no matrix tiles) up to
 * this many rows of im2col: the strided 1x1 shortcuts. Each thread's GEMM converts all of
 * dy into bf16 pairs for a share of K columns; the fp32 kernels read it in place. Measured
 * (AMD EPYC Zen 5, 2 threads, AVX-512 BF16; `bench_backward -p bf16`, two runs each,
 * effective GFLOP/s, bf16 -> fp32 kernels): 1x1/2 64->128 at 56x56, batch 32, 82-84 ->
 * 106-110; 128->256 at 28x28 130-133 -> 151-161; but 256->512 at 14x14 232-243 -> 210-222;
 * d2l_resnet18's 28x28 shapes, batch 256: 64->128 at 7x7 73-94 -> 74-102, 128->256 at 4x4
 * 114-170 -> 95-152 (a slower 0.07 ms, kept for the rule's sake). Inside the bf16 training
 * steps (`profile_train -p bf16`, 2 runs alternated, ms of the layer's weight gradient):
 * d2l_resnet18 96x96 batch 128 64->128 5.9-6.2 -> 3.7-4.6, 128->256 3.7 -> 2.6-3.1; CIFAR-stem
 * resnet18 batch 128 7.5-7.6 -> 6.3-6.5 and 5.0-5.1 -> 4.6-5.0. */
#define WT_FP32_MAX_K 128

/* (conv2d_backward_plan.h) */
rn_conv_shape conv2d_bwd_flipped_shape(const rn_conv_shape *s) {
    rn_conv_shape f = {.n = s->n, .cin = s->cout, .h = s->ho, .w = s->wo, .cout = s->cin,
                       .kh = s->kh, .kw = s->kw, .stride = 1, .pad = s->kh - 1 - s->pad,
                       .groups = 1};
    conv2d_shape_init(&f);
    return f;
}

/* (conv2d_backward_plan.h) */
int conv2d_bwd_phase_taps(int k, int st, int pad, int a, int *k_top, int *lead) {
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

static int phases_fit(const rn_conv_shape *s, int *pad) {
    if (s->stride < 2 || s->stride > RN_PHASE_MAX || s->h < s->stride || s->w < s->stride ||
        s->cin / s->groups < PHASES_MIN_CIN ||
        phase_len(s->h, s->stride, s->stride - 1) < PHASES_MIN_WIDTH ||
        phase_len(s->w, s->stride, s->stride - 1) < PHASES_MIN_WIDTH)
        return 0;
    for (int a = 0; a < s->stride; a++) {
        int top_h = 0, top_w = 0, lead_h = 0, lead_w = 0;
        if (!conv2d_bwd_phase_taps(s->kh, s->stride, s->pad, a, &top_h, &lead_h) ||
            !conv2d_bwd_phase_taps(s->kw, s->stride, s->pad, a, &top_w, &lead_w) ||
            lead_h != lead_w || lead_h < 0 || (a > 0 && lead_h != *pad))
            return 0;
        *pad = lead_h;
    }
    return 1;
}

bwd_plan conv2d_bwd_plan(const rn_kernels *k, const rn_conv_shape *s, int algos) {
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
        const rn_conv_shape f = conv2d_bwd_flipped_shape(s);
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
        const rn_conv_shape f = conv2d_bwd_flipped_shape(s);
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
    /* bf16 descriptors without matrix tiles: the product by col on their fp32 twin up to
     * WT_FP32_MAX_K rows of im2col. There the GEMM (dw = dy x col^T: K a share of its
     * columns, the pixels its depth) reads dy in place on fp32 kernels but converts it into
     * bf16 pairs on bf16 ones, which the few columns do not repay. */
    p.kw = rn_kernels_are_bf16(p.k) && !p.k->matrix_tiles && p.wt_by_col && p.K <= WT_FP32_MAX_K
               ? rn_kernels_fp32(p.k)
               : p.k;
    size_t widest = p.K > p.cout_g ? (size_t)p.K : (size_t)p.cout_g;
    p.chunk_w = weight_chunk(widest, p.cout_g, (size_t)p.kw->nr, p.pix_out);
    const size_t chunk = (size_t)p.chunk_w;
    p.dwt_floats = p.wt_by_col ? 0 : align_up((size_t)p.K * (size_t)p.cout_g);
    p.col_floats = p.pointwise ? 0 : (size_t)p.K * chunk;
    return p;
}

static size_t workspace_uncropped(const rn_kernels *k, const rn_conv_shape *s, int algos) {
    bwd_plan p = conv2d_bwd_plan(k, s, algos);
    size_t ws_weight = p.wt_direct ? p.wd.floats
                       : p.wt_wino ? p.ww.floats
                       : p.wt_small ? rn_smallmap_weight_floats(s)
                                    : p.dwt_floats + p.col_floats;
    return p.ws_data > ws_weight ? p.ws_data : ws_weight;
}

size_t conv2d_backward_workspace_floats(const rn_kernels *k, const rn_conv_shape *s, int algos) {
    rn_conv_shape c;
    int k0;
    if (conv2d_crop_shape(s, &c, &k0))
        return conv2d_bwd_cropped_floats(&c) + workspace_uncropped(k, &c, algos);
    return workspace_uncropped(k, s, algos);
}

/* The plan both backward functions follow for shape s: that of its live taps where they crop. */
static bwd_plan cropped_plan(const rn_kernels *k, const rn_conv_shape *s, int algos) {
    rn_conv_shape c;
    int k0;
    return conv2d_bwd_plan(k, conv2d_crop_shape(s, &c, &k0) ? &c : s, algos);
}

int conv2d_backward_weight_direct(const rn_kernels *k, const rn_conv_shape *s) {
    return cropped_plan(k, s, 0).wt_direct;
}

int conv2d_backward_weight_winograd(const rn_kernels *k, const rn_conv_shape *s) {
    return cropped_plan(k, s, 1).wt_wino;
}

int conv2d_backward_weight_fp32(const rn_kernels *k, const rn_conv_shape *s, int algos) {
    const bwd_plan p = cropped_plan(k, s, algos);
    return !rn_kernels_are_bf16(p.k) || p.wt_direct || p.wt_wino ||
           (!p.wt_small && !rn_kernels_are_bf16(p.kw));
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
