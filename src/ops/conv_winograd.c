/*
 * conv_winograd.c - 3x3 stride-1 convolutions by Winograd F(4x4, 3x3) and
 * F(2x2, 3x3) (two algorithms behind conv_algo.h's seam, one driver; the
 * transforms in winograd.h).
 *
 * With T tiles of 4x4 output, C input and K output channels, the
 * convolution becomes 36 matrix products, one per point xi of the
 * transformed domain:
 *     M_xi (K x T) = U_xi (K x C) x V_xi (C x T)
 *     U = G g G^T (the weights, once per weight version)
 *     V = B^T d B (each input tile), Y = A^T M A (each output tile)
 * 4x fewer multiplications than direct convolution (36 against 144 per 4x4
 * output and channel pair), for transforms that grow with C + K rather than
 * C x K.
 *
 * Preparation: U_xi, computed in double, rounded once, packed per xi as the
 * GEMM's A (rn_gemm_pack_a).
 *
 * Forward, a block of Tb tiles at a time (Tb chosen so the block's V and M
 * stay in the last-level cache):
 *   1. the input transform writes V_xi straight in the layout of the GEMM's
 *      packed B;
 *   2. per range of output channels: the 36 products on the calling thread,
 *      then the output transform with the bias, residual and ReLU epilogue.
 * The threads either each take their own run of tiles through both steps,
 * or share out a block's input channels in 1 and its output channels in 2
 * (see "How the threads share the work" below).
 * Every output element is summed in an order fixed by the shape, so results
 * do not depend on the thread count.
 *
 * Accuracy: the transforms' coefficients (up to 8 in A^T, 5 in B^T)
 * magnify rounding; on random data the result is within 1e-4 (relative to
 * the largest output) of the direct sum, against 1e-6 for the GEMM
 * algorithms. `tolerance` below is what the tests hold it to.
 *
 * On a bf16 descriptor (rn_kernels_bf16) the products multiply bf16 pairs with fp32 sums, as
 * the GEMM's do: U is converted to the kernels' pairs once, at preparation
 * (rn_gemm_finish_packed_a), and the input transform, in fp32 on the descriptor's fp32 twin,
 * writes V as pairs of channels (input_pairs); the output transform reads fp32 sums as before.
 * Half the bytes of U and V to read, twice the multiplications per instruction: inside
 * resnet18's bf16 pass at batch 32 (AMD EPYC Zen 5, 2 threads, `resnet bench`, alternated)
 * 180 -> 153 ms. The price is accuracy: U and V are rounded after the transforms, whose
 * coefficients (up to 5 in B^T, 8 in A^T) magnify that rounding: F(4x4) on bf16 products is
 * within 1e-1 of the oracle on bf16-rounded operands (tests/test_conv2d: 7.7e-2 its worst
 * shape; 2e-2 relative in norm), F(2x2) within 1e-2 (4.9e-3), where the direct tile and the
 * GEMMs are exact on such operands. In a network that is about 3x bf16's error: resnet50 at
 * 64x64, batch 8, the worst layer 0.033 of its largest value against 0.012 (tests/test_bf16).
 *
 * F(2x2, 3x3) is the same driver on 2x2 output tiles from 4x4 patches: 16
 * products per tile (2.25x fewer multiplications than direct), transformed
 * weights 16/9 of the raw ones instead of 36/9, coefficients 1/2 and 1 (no
 * loss of accuracy to speak of). It is the one for small maps at small
 * batches (ResNet's last stage at batch 1: 7x7, 512 channels), where
 * F(4x4)'s 4 tiles per image cannot repay reading 38 MB of weights and
 * im2col's N = 49 columns fill its register tiles badly.
 */
#include <stdint.h>
#include <string.h>

#include "core/threads.h"
#include "ops/conv_algo.h"
#include "ops/gemm.h"
#include "ops/kernels.h"
#include "ops/winograd.h"

#define XI 36               /* points of the transformed domain (F(4x4): the most) */
#define LL RN_WINO_LANES
#define BLOCK_MIN_BYTES (1u << 20) /* V and M of one block of tiles: at least, */
#define BLOCK_MAX_BYTES (6u << 20) /* at most */

/* ---------------------------------------------------------------------------
 * The two variants
 * ------------------------------------------------------------------------- */

/* Lanes of the weight preparation: output channels transformed together (winograd.h
 * rn_wino_weights_fn). */
#define PREP_LANES RN_WINO_LANES

typedef struct wino_variant {
    int m;                  /* output tile side (4 or 2) */
    int a;                  /* input patch side, m + 2 */
    int xi;                 /* points of the transformed domain, a * a */
} wino_variant;

/* ---------------------------------------------------------------------------
 * Shapes and sizes
 * ------------------------------------------------------------------------- */

static int supports(const rn_conv_shape *s) {
    return s->kh == 3 && s->kw == 3 && s->stride == 1 && s->groups == 1 && s->pad <= 2;
}

static int ceil_div(long a, long b) { return (int)((a + b - 1) / b); }

/* Tiles of the output: th x tw per image. */
static void tiles_of(const wino_variant *v, const rn_conv_shape *s, int *th, int *tw) {
    *th = ceil_div(s->ho, v->m);
    *tw = ceil_div(s->wo, v->m);
}

/* Tiles per block: a multiple of the GEMM's panel width (and of the lanes),
 * V and M within BLOCK_BYTES, no more than the tiles there are. Threads
 * share the work inside a block, so it depends on the shape alone (and so
 * does the workspace). */
static int block_tiles(const wino_variant *v, const rn_kernels *k, const rn_conv_shape *s) {
    int th, tw;
    tiles_of(v, s, &th, &tw);
    const long tiles = (long)s->n * th * tw;
    const int step = k->nr % LL == 0 ? k->nr : k->nr * LL; /* a multiple of both */
    /* V and M in about a megabyte (cache-resident between the transforms
     * and the products), more when the transformed weights, read once per
     * block, are large */
    size_t bytes = (size_t)v->xi * (size_t)s->cin * (size_t)s->cout * sizeof(float) / 2;
    bytes = bytes < BLOCK_MIN_BYTES ? BLOCK_MIN_BYTES : bytes > BLOCK_MAX_BYTES ? BLOCK_MAX_BYTES : bytes;
    long tb = (long)(bytes / (sizeof(float) * (size_t)v->xi * (size_t)(s->cin + s->cout)));
    tb = tb / step * step;
    if (tb < step)
        tb = step;
    if (tb > (long)ceil_div(tiles, step) * step)
        tb = (long)ceil_div(tiles, step) * step;
    return (int)tb;
}

static size_t u_floats(const rn_kernels *k, const rn_conv_shape *s) {
    return rn_gemm_packed_a_floats(k, s->cout, s->cin);
}

static size_t prepared_floats(const wino_variant *v, const rn_kernels *k, const rn_conv_shape *s) {
    return (size_t)v->xi * u_floats(k, s);
}

/* V (C x tb) and M (K x tb) per xi: one block's. */
static size_t block_floats(const wino_variant *v, const rn_conv_shape *s, int tb) {
    return (size_t)v->xi * (rn_wino_plane_floats((size_t)s->cin * (size_t)tb) +
                            rn_wino_plane_floats((size_t)s->cout * (size_t)tb));
}

/* ---------------------------------------------------------------------------
 * Preparation: U = G g G^T per (output, input) channel, packed per xi
 * ------------------------------------------------------------------------- */

/* Floats of one chunk of a panel's U, staged per xi before it is copied. */
#define PREP_CHUNK 512

/* Output channels in panels of the kernels' mr rows (threads share out the
 * panels); per panel, a chunk of input channels inside one K block at a
 * time (about PREP_CHUNK / mr of them) is transformed into a staging buffer
 * in the packed order, then copied out one xi at a time (in the packed
 * layout a chunk's mr rows lie together per xi), so that the 36 planes are
 * written in long runs. The lanes of a transform are PREP_LANES rows of the
 * panel (output channels) of one input channel: in the packed order they lie
 * side by side, so each point's lanes are stored in one run (with the lanes
 * over input channels they went mr floats apart, one by one). With the
 * staging rows below, 3x3 512->512 15.1-16.3 -> 13.9-15.0 ms, 256->256
 * 4.0-4.1 -> 3.6-3.8 (Xeon SPR, 2 threads, alternated; the same bits). The
 * transform itself is the descriptor's (winograd_weights.h, compiled for each
 * ISA; the same bits on all; before, one portable loop whose lanes went through
 * memory and stalled on store forwarding, its doubles two to an SSE register):
 * 3x3 512->512 on AVX-512 4.2 -> 1.8 ms, AVX2 4.8-4.9 -> 3.6, portable 5.9 ->
 * 4.5-4.6; 256->256 on AVX-512 0.95 -> 0.32 (AMD EPYC Zen 5, 2 threads, medians
 * of 21, alternated). Rows past K (the last panel's padding) are zeros. */
static void prepare(const wino_variant *v, const rn_kernels *k, const rn_conv_shape *s,
                    const float *w, float *prepared) {
    // w: (K, C, 3, 3) -> prepared: per xi, U_xi (K x C) packed as the GEMM's A
    const int K = s->cout, C = s->cin, mr = k->mr, m_panels = ceil_div(K, mr);
    const size_t uf = u_floats(k, s);
    int nkb, kcb;
    rn_gemm_k_blocks(k, C, &nkb, &kcb);
    int chunk = PREP_CHUNK / mr;
    if (chunk < 1)
        chunk = 1;
    /* the descriptor's transform (its fp32 twin's for bf16 products), zeros past K */
    const rn_kernels *kt = rn_kernels_fp32(k);
    const rn_wino_weights_fn weights = v->m == 4 ? kt->wino_weights : kt->wino2_weights;
    static const float zeros[9];
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if ((long)K * C > 4096)
    for (int panel = 0; panel < m_panels; panel++) {
        /* rows an odd number of cache lines apart: 36 rows 2 KB apart fall in two sets of the
         * L1 cache (the 16 floats of slack also take a last transform's lanes past the
         * chunk: at most PREP_LANES - 1) */
        float stage[XI][(RN_MR_MAX > PREP_CHUNK ? RN_MR_MAX : PREP_CHUNK) + 16];
        for (int k0 = 0; k0 < C; k0 += kcb) {
            const int k1 = C - k0 < kcb ? C : k0 + kcb;
            for (int c0 = k0; c0 < k1; c0 += chunk) {
                const int c1 = k1 - c0 < chunk ? k1 : c0 + chunk;
                for (int ci = c0; ci < c1; ci++)
                    for (int r0 = 0; r0 < mr; r0 += PREP_LANES) {
                        /* all 8 lanes written: those past the panel's rows land on the next
                         * input channel's (rewritten next) or, at the chunk's end, on the
                         * stage's slack, which is not copied out */
                        const int lanes = mr - r0 < PREP_LANES ? mr - r0 : PREP_LANES;
                        const float *g[PREP_LANES];
                        for (int l = 0; l < PREP_LANES; l++) {
                            const int ko = panel * mr + r0 + l;
                            g[l] = l < lanes && ko < K ? w + ((size_t)ko * C + ci) * 9 : zeros;
                        }
                        weights(g, &stage[0][0] + (size_t)(ci - c0) * mr + r0,
                                (ptrdiff_t)(sizeof stage[0] / sizeof(float)));
                    }
                const size_t at = rn_gemm_packed_a_index(mr, C, nkb, kcb, m_panels, panel * mr, c0);
                const size_t run = (size_t)(c1 - c0) * (size_t)mr;
                for (int xi = 0; xi < v->xi; xi++)
                    memcpy(prepared + xi * uf + at, stage[xi], run * sizeof(float));
            }
            /* bf16 products (a bf16 descriptor): the panel's K block of each U_xi in the
             * operand format of its kernels (rn_gemm_finish_packed_a's), by the thread that
             * wrote it. Converted after the threads' loop instead, by one thread, it cost
             * each U made every step (training's data gradient on bf16 products makes the
             * flipped one): with the forward's U on bf16 products too (an experiment, not
             * kept: train/backprop.c), resnet18 CIFAR stem batch 128's weights made 12 -> 31
             * ms a step, 14 after this. */
            if (k->finish_a) {
                const size_t block =
                    rn_gemm_packed_a_index(mr, C, nkb, kcb, m_panels, panel * mr, k0);
                for (int xi = 0; xi < v->xi; xi++)
                    k->finish_a(prepared + xi * uf + block, k1 - k0, mr);
            }
        }
    }
}

/* ---------------------------------------------------------------------------
 * Forward
 * ------------------------------------------------------------------------- */

typedef struct wino_plan {
    const wino_variant *var;
    rn_wino_in_fn in;
    rn_wino_out_fn out;
    rn_wino_in2_fn in2;     /* two groups of lanes at once, or NULL */
    rn_wino_out2_fn out2;
    const rn_kernels *k;    /* the products' kernels (bf16 ones: V and U in bf16 pairs) */
    int pairs;              /* 1: k multiplies bf16 pairs */
    const rn_conv_shape *s;
    int th, tw, tiles, tb;
    int nkb, kcb;           /* the GEMM's K blocking over C */
    const float *x, *u, *bias, *res;
    int relu;
    float *y, *v, *m;
    size_t v_xi, m_xi;      /* floats between two points' planes of V and of M
                               (rn_wino_plane_floats) */
} wino_plan;

void rn_wino_patch_lanes(int h, int w, int pad, int m, int th, int tw, long t, long end,
                         rn_wino_in *in) {
    const long per_image = (long)th * tw;
    const int a = m + 2;
    in->ld = w;
    for (int l = 0; l < LL; l++) {
        in->origin[l] = 0;
        in->r0[l] = in->r1[l] = 0;
        in->cols[l] = 0;
        in->wide[l] = 0;
        if (t + l >= end)
            continue;
        const long b = (t + l) / per_image;
        const int ty = (int)((t + l) % per_image / tw), tx = (int)((t + l) % tw);
        const int y0 = m * ty - pad, x0 = m * tx - pad;
        in->origin[l] = ((ptrdiff_t)b * h + y0) * w + x0;
        in->r0[l] = y0 < 0 ? -y0 : 0;
        in->r1[l] = h - y0 < a ? h - y0 : a;
        for (int q = 0; q < a; q++)
            in->cols[l] |= (unsigned)(x0 + q >= 0 && x0 + q < w) << q;
        in->wide[l] = x0 >= 0 && x0 + 8 <= w;
    }
}

/* Where the patches of the 8 tiles [t, t + LL) (those below `end`) lie,
 * and which part of each is inside the image. */
static void patch_lanes(const wino_plan *p, int t, int end, rn_wino_in *in) {
    rn_wino_patch_lanes(p->s->h, p->s->w, p->s->pad, p->var->m, p->th, p->tw, t, end, in);
}

/* Channels ahead whose input (the part of their planes the group's patches read) and output
 * (the part of their planes the group's blocks cover, and of the residual's) are asked for while
 * a channel is transformed. For each channel the transforms read 96 rows of 6 floats and write
 * 64 rows of 4, in another plane at every channel, which the hardware does not foresee: the
 * transforms had taken 1.6x the products' time inside the pass (per-thread timers, bf16 resnet18
 * at batch 1), twice what they take on data in cache. AMD EPYC Zen 5, 2 threads, alternated with
 * the binary before: `profile_layers`, resnet18's Winograd layers at batch 32, fp32 108.9-114.1
 * -> 97.3-98.5 ms, bf16 97.4-98.2 -> 82.4-83.3 (3 rounds), at batch 1 bf16 1.83-1.85 -> 1.73-1.74
 * ms; `resnet bench` resnet18 batch 32 fp32 172-175 -> 158-170 ms, bf16 118-122 -> 102-112;
 * `bench --train` d2l_resnet18 28x28 batch 256 fp32 136-145 -> 131-133 ms, bf16 133-142 ->
 * 128-131; passes at batch 1 within the host's noise. */
#define PREFETCH_CHANNELS 2

void rn_wino_patch_span(const rn_wino_in *in, int n, ptrdiff_t plane, ptrdiff_t *lo,
                        ptrdiff_t *hi) {
    *lo = plane;
    *hi = 0;
    for (int g = 0; g < n; g++)
        for (int l = 0; l < LL; l++)
            if (in[g].r0[l] < in[g].r1[l]) {
                const ptrdiff_t a = in[g].origin[l] + in[g].r0[l] * in[g].ld;
                const ptrdiff_t b = in[g].origin[l] + (in[g].r1[l] - 1) * in[g].ld + 8;
                *lo = a < *lo ? a : *lo;
                *hi = b > *hi ? b : *hi;
            }
    *lo = *lo < 0 ? 0 : *lo;
    *hi = *hi > plane ? plane : *hi;
}

/* V's packed width for a block of nt tiles (rn_gemm_packed_b_width): the last
 * panel only as wide as the tiles need (whole lanes), so that 16 tiles
 * against AVX-512's 48-column panels run the 16-column kernel. */
static int block_width(const wino_plan *p, int nt) {
    return (int)rn_gemm_packed_b_width(p->k, (long)ceil_div(nt, LL) * LL);
}

/* Phase 1 on bf16 products: channels [c0, c1) of the block's tiles into V as the bf16 GEMM's
 * packed B: per K block, its channels by pairs from the block's first (a K block of an odd
 * count ends on a pair whose high half is zero), each pair one 32-bit word per tile (kernels.h's
 * pair layout). c0 and c1 start pairs (pair_start). Each group of lanes (16 where the
 * descriptor transforms two groups at once and they lie side by side in a panel, else 8) of a
 * pair is transformed in fp32 into a scratch (xi-major), converted there by the descriptor's
 * finish_b, as the GEMM's own B panels are, and stored a row of words a point. */
static void input_pairs(const wino_plan *p, int t0, int nt, int c0, int c1) {
    const rn_conv_shape *s = p->s;
    const ptrdiff_t plane = (ptrdiff_t)s->n * s->h * s->w;
    const int nr = p->k->nr, xis = p->var->xi, npad = block_width(p, nt);
    const int span = p->in2 && nr % (2 * LL) == 0 && npad % (2 * LL) == 0 ? 2 * LL : LL;
    _Alignas(64) float scratch[2 * XI * 2 * LL];
    for (int g0 = 0; g0 < npad; g0 += span) {
        rn_wino_in in[2];
        patch_lanes(p, t0 + g0, t0 + nt, &in[0]);
        if (span > LL)
            patch_lanes(p, t0 + g0 + LL, t0 + nt, &in[1]);
        const size_t row = (size_t)xis * span; /* a channel's transformed lanes */
        ptrdiff_t lo, hi;
        rn_wino_patch_span(in, span / LL, plane, &lo, &hi);
        for (int c = c0; c < c1;) {
            const int k0 = c / p->kcb * p->kcb, k1 = k0 + p->kcb < s->cin ? k0 + p->kcb : s->cin;
            const int two = c + 1 < k1;
            for (int h = 0; h < 2 && c + PREFETCH_CHANNELS + h < c1; h++)
                rn_prefetch_span(p->x + (ptrdiff_t)(c + PREFETCH_CHANNELS + h) * plane, lo, hi,
                                 0);
            for (int h = 0; h <= two; h++) {
                in[0].x = in[1].x = p->x + (ptrdiff_t)(c + h) * plane;
                if (span > LL)
                    p->in2(in, scratch + h * row, span);
                else
                    p->in(&in[0], scratch + h * row, span);
            }
            if (!two)
                memset(scratch + row, 0, row * sizeof(float));
            p->k->finish_b(scratch, 2, (int)row); /* row 0: the pair's words */
            const size_t first = rn_gemm_packed_b_index(nr, s->cin, p->nkb, p->kcb, npad, k0, g0);
            const size_t at =
                first + (rn_gemm_packed_b_index(nr, s->cin, p->nkb, p->kcb, npad, c, g0) - first) / 2;
            /* rows of a size the compiler knows: a memcpy of a size it does not became `rep
             * movsq`, whose start-up on AMD Zen 5 cost more than the 32 or 64 bytes it moved
             * (`perf`: 4% of a bf16 resnet18 pass at batch 1) */
            float *v = p->v + at;
            if (span == 2 * LL)
                for (int xi = 0; xi < xis; xi++)
                    memcpy(v + xi * p->v_xi, scratch + (size_t)xi * span, 2 * LL * sizeof(float));
            else
                for (int xi = 0; xi < xis; xi++)
                    memcpy(v + xi * p->v_xi, scratch + (size_t)xi * span, LL * sizeof(float));
            c += two ? 2 : 1;
        }
    }
}

/* The first channel of pair q (counted over the K blocks, each from its first channel), or C. */
static int pair_start(const wino_plan *p, long q) {
    const long per_block = (p->kcb + 1) / 2;
    const long c = q / per_block * p->kcb + 2 * (q % per_block);
    return c < p->s->cin ? (int)c : p->s->cin;
}

/* Phase 1: channels [c0, c1) of the block's tiles [t0, t0 + nt) into V.
 * The lanes of one GEMM panel (its nr tiles, 8 per transform) are
 * transformed one after the other for each channel, so that every row of
 * the panel is written whole while it is in cache; where the patches lie is
 * worked out once for all channels. */
static void input_channels(const wino_plan *p, int t0, int nt, int c0, int c1) {
    if (p->pairs) {
        input_pairs(p, t0, nt, c0, c1);
        return;
    }
    const rn_conv_shape *s = p->s;
    const ptrdiff_t plane = (ptrdiff_t)s->n * s->h * s->w;
    const int nr = p->k->nr, span = nr % LL == 0 ? nr : LL; /* tiles done together */
    const int npad = block_width(p, nt);
    rn_wino_in in[RN_PANEL_MAX / LL];
    /* every lane of the packed width, those past the block's tiles zero: the GEMM multiplies
     * whole panels, and what a lane left unwritten held before (a bf16 panel's words read as
     * floats are often denormals) costs microcode assists on Intel CPUs, 7x on 128 channels */
    for (int g0 = 0; g0 < npad; g0 += span) {
        int groups = 0;
        for (int q = 0; q < span / LL && g0 + q * LL < npad; q++, groups++)
            patch_lanes(p, t0 + g0 + q * LL, t0 + nt, &in[q]);
        ptrdiff_t lo, hi;
        rn_wino_patch_span(in, groups, plane, &lo, &hi);
        for (int c = c0; c < c1; c++) {
            if (c + PREFETCH_CHANNELS < c1)
                rn_prefetch_span(p->x + (ptrdiff_t)(c + PREFETCH_CHANNELS) * plane, lo, hi, 0);
            for (int q = 0; q < groups; q++) {
                in[q].x = p->x + (ptrdiff_t)c * plane;
                const size_t v = rn_gemm_packed_b_index(nr, s->cin, p->nkb, p->kcb, npad, c,
                                                        g0 + q * LL);
                if (p->in2 && q + 1 < groups &&
                    rn_gemm_packed_b_index(nr, s->cin, p->nkb, p->kcb, npad, c,
                                           g0 + (q + 1) * LL) == v + LL) {
                    in[q + 1].x = in[q].x; /* the next group's columns follow: both at once */
                    p->in2(&in[q], p->v + v, (ptrdiff_t)p->v_xi);
                    q++;
                    continue;
                }
                p->in(&in[q], p->v + v, (ptrdiff_t)p->v_xi);
            }
        }
    }
}

/* Phase 2: output channels [k0, k1) of the block: 36 products, then the
 * output transform and epilogue. */
static void output_channels(const wino_plan *p, int t0, int nt, int k0, int k1) {
    const rn_conv_shape *s = p->s;
    const int K = s->cout, C = s->cin;
    const size_t uf = rn_gemm_packed_a_floats(p->k, K, C);
    const size_t v_xi = p->v_xi, m_xi = p->m_xi;
    const int npad = block_width(p, nt);
    /* M for whole groups of lanes, those past the tiles from V's zero lanes: the output
     * transforms read LL lanes at a time */
    const int nl = ceil_div(nt, LL) * LL;
    for (int xi = 0; xi < p->var->xi; xi++)
        rn_sgemm_packed_ab_1t(p->k, k0, k1, nl, C, p->u + xi * uf, K, p->v + xi * v_xi, npad,
                              p->m + xi * m_xi, p->tb);
    const ptrdiff_t out_plane = (ptrdiff_t)s->n * s->ho * s->wo;
    /* per group of LL tiles (two at once where the descriptor can), where its blocks lie
     * (worked out once for all the channels), then each channel's transform */
    const int m = p->var->m;
    for (int g = 0; g < nt; g += LL) {
        const int pair = p->out2 && g + LL < nt;
        ptrdiff_t at[2][LL];
        rn_wino_out o[2] = {{.ld = s->wo, .relu = p->relu}, {.ld = s->wo, .relu = p->relu}};
        for (int h = 0; h <= pair; h++)
            for (int l = 0; l < LL; l++) {
                at[h][l] = -1;
                if (g + h * LL + l >= nt)
                    continue;
                at[h][l] = rn_wino_tile_at(s->ho, s->wo, m, p->th, p->tw, t0 + g + h * LL + l,
                                           &o[h].rows[l], &o[h].cols[l]);
            }
        ptrdiff_t lo, hi; /* the part of an output plane the blocks cover */
        rn_wino_tiles_span(s->ho, s->wo, m, p->th, p->tw, t0 + g,
                           nt - g < (pair + 1) * LL ? nt - g : (pair + 1) * LL, &lo, &hi);
        for (int ko = k0; ko < k1; ko++) {
            if (ko + PREFETCH_CHANNELS < k1) {
                const ptrdiff_t ahead = (ptrdiff_t)(ko + PREFETCH_CHANNELS) * out_plane;
                rn_prefetch_span(p->y + ahead, lo, hi, 1);
                if (p->res)
                    rn_prefetch_span(p->res + ahead, lo, hi, 0);
            }
            float *yk = p->y + (ptrdiff_t)ko * out_plane;
            const float *rk = p->res ? p->res + (ptrdiff_t)ko * out_plane : NULL;
            for (int h = 0; h <= pair; h++) {
                o[h].bias = p->bias ? p->bias[ko] : 0.0f;
                for (int l = 0; l < LL; l++) {
                    o[h].y[l] = at[h][l] >= 0 ? yk + at[h][l] : NULL;
                    o[h].res[l] = at[h][l] >= 0 && rk ? rk + at[h][l] : NULL;
                }
            }
            if (pair)
                p->out2(p->m + (size_t)ko * p->tb + g, (ptrdiff_t)m_xi, o);
            else
                p->out(p->m + (size_t)ko * p->tb + g, (ptrdiff_t)m_xi, &o[0]);
        }
        g += pair ? LL : 0;
    }
}

/* How the threads share the work. By tiles: each thread takes its own run of consecutive
 * tiles (the same rows of the same images on every call, and in every layer that splits
 * this way, so most of the input it reads is what it wrote itself the layer before, in its
 * own core's caches) and carries it through transforms, products and output in sub-blocks of
 * its own slice of the workspace, with no barrier until the end; every thread reads all the
 * transformed weights. By blocks: the block's input channels transformed by all threads, a
 * barrier, then its output channels shared out, so that the transformed weights are read
 * once per block between the threads; each thread reads the whole block's V, half of it
 * written by the other thread. The sums are the same either way (a tile's outputs do not
 * depend on the blocks), so results do not change with the split.
 *
 * Measured (dev/bench_conv, 2 threads, AMD EPYC Zen 5, whose two cores sit on two dies): the
 * split by tiles ran resnet18's 3x3 64->64 at 56x56 at batch 1 at 590-650 effective GFLOP/s
 * against 260-300 by blocks (by blocks it was no faster than one thread), 128->128 at 28x28
 * 570-600 against 400-430, at batch 32 680-970 against 280-500, and the narrow networks'
 * layers 1.5-3x faster; by blocks stays ahead only where each thread would get few tiles of
 * large weights (resnet18's 256->256 at 14x14 at batch 1: 16 tiles, 9.4 MB). So: by tiles
 * unless the transformed weights are large and the tiles per thread few.
 *
 * Split by tiles, a thread done with its own run takes the sub-blocks left at the end of
 * another's (each claimed once, by an atomic flag): the runs are equal, but the host stalls
 * one core or the other, and the thread ahead spun at the end of every layer (`perf`: 6% of
 * a bf16 resnet18 pass at batch 32 in libgomp's wait, called from here). Zen 5, 2 threads,
 * `resnet bench` alternated with the binary before, 4-5 rounds, medians, ms: resnet18 batch
 * 32 bf16 209 -> 185, fp32 228 -> 211; resnet50 batch 32 bf16 494 -> 482; batch 1 level. A
 * tile's sums do not depend on the thread that does it, and a team smaller than the threads
 * the workspace was cut for (a call from inside another parallel region) still does every run. */
#define SPLIT_MAX_WEIGHT_BYTES (512u << 10) /* the transformed weights, at most, */
#define SPLIT_MIN_TILES 32                  /* or the tiles per thread, at least */

/* Tiles in a run of `tiles` cut into pieces of at most `most`, as even as whole `step`s allow. */
static int even_piece(long tiles, int most, int step) {
    const long pieces = (tiles + most - 1) / most;
    const long piece = (tiles + pieces - 1) / pieces;
    return (int)((piece + step - 1) / step * step);
}

/* The split by tiles on `threads` threads: each thread's run of tiles (*run, a whole number of
 * transform lanes and narrow GEMM panels) and the tiles of its sub-blocks; 0 for the split by
 * blocks. */
static int tile_split(const wino_variant *v, const rn_kernels *k, const rn_conv_shape *s,
                      int threads, int *run) {
    if (threads < 2)
        return 0;
    int th, tw;
    tiles_of(v, s, &th, &tw);
    const long tiles = (long)s->n * th * tw;
    const int step = k->nr_step % LL == 0 ? k->nr_step : k->nr_step * LL;
    const int share = even_piece(tiles, (int)((tiles + threads - 1) / threads), step);
    if ((size_t)v->xi * s->cin * s->cout * sizeof(float) > SPLIT_MAX_WEIGHT_BYTES &&
        share < SPLIT_MIN_TILES)
        return 0;
    *run = share;
    return even_piece(share, block_tiles(v, k, s), step);
}

/* A block's V and M, or, split by tiles, a sub-block's for each thread (run on another
 * thread count, the forward splits by blocks). */
static size_t workspace_floats(const wino_variant *v, const rn_kernels *k, const rn_conv_shape *s,
                               int threads) {
    int run;
    const int sub = tile_split(v, k, s, threads, &run);
    const size_t block = block_floats(v, s, block_tiles(v, k, s)); /* also when run on others */
    const size_t split = sub ? (size_t)threads * block_floats(v, s, sub) : 0;
    return split > block ? split : block;
}

static void forward(const wino_variant *v, const rn_kernels *k, const rn_conv_shape *s,
                    const float *x, const float *prepared, const float *bias, const float *residual,
                    int relu, float *y, float *workspace, int ws_threads) {
    k = rn_kernels_or_default(k);
    const int threads = rn_threads();
    wino_plan p = {.var = v, .k = k, .pairs = rn_kernels_are_bf16(k), .s = s, .x = x,
                   .u = prepared, .bias = bias, .res = residual, .relu = relu, .y = y};
    /* the tile transforms: the descriptor's, or (bf16 products) its fp32 twin's */
    const rn_kernels *kt = rn_kernels_fp32(k);
    p.in = v->m == 4 ? kt->wino_in : kt->wino2_in;
    p.out = v->m == 4 ? kt->wino_out : kt->wino2_out;
    /* two groups of tiles a call where the descriptor can (AVX-512): resnet18's Winograd
     * layers 2-8% faster at batch 1, 3.5-14% at batch 32 (profile_layers, interleaved, Zen 5) */
    p.in2 = v->m == 4 ? kt->wino_in2 : NULL;
    p.out2 = v->m == 4 ? kt->wino_out2 : NULL;
    tiles_of(v, s, &p.th, &p.tw);
    p.tiles = s->n * p.th * p.tw;
    p.tb = block_tiles(v, k, s);
    rn_gemm_k_blocks(k, s->cin, &p.nkb, &p.kcb);
    int run = 0;
    /* split by tiles where it pays and the workspace was cut for these threads */
    const int sub = threads == ws_threads ? tile_split(v, k, s, threads, &run) : 0;
    if (sub) {
        p.tb = sub;
        p.v_xi = rn_wino_plane_floats((size_t)s->cin * (size_t)sub);
        p.m_xi = rn_wino_plane_floats((size_t)s->cout * (size_t)sub);
        /* each run's sub-blocks are its thread's share of the items (threads.h rn_claims: a
         * thread done with its own takes what is left of the others'); a run shorter than the
         * others (the last) leaves its share's last items empty */
        const int per_run = ceil_div(run, sub);
        uint32_t flags[threads * per_run];
        memset(flags, 0, sizeof flags);
        const rn_claims claims = {.flags = flags, .cap = threads * per_run, .gen = 1};
#pragma omp parallel num_threads(threads)
        {
            wino_plan q = p;
            q.v = workspace + (size_t)rn_thread_id() * block_floats(v, s, sub);
            q.m = q.v + (size_t)v->xi * q.v_xi;
            /* the shares are the runs even in a smaller team than asked for (a call from inside
             * another parallel region): all of them, some claimed from the back */
            rn_claim_walk walk = rn_claims_walk(claims, (rn_team){rn_thread_id(), threads},
                                                (long)threads * per_run);
            for (long it; (it = rn_claims_next(&walk)) >= 0;) {
                const int r = (int)(it / per_run), b = (int)(it % per_run);
                const int t_end = (r + 1) * run < p.tiles ? (r + 1) * run : p.tiles;
                const int t0 = r * run + b * sub, nt = t_end - t0 < sub ? t_end - t0 : sub;
                if (nt <= 0)
                    continue;
                input_channels(&q, t0, nt, 0, s->cin);
                output_channels(&q, t0, nt, 0, s->cout);
            }
        }
        return;
    }
    p.v_xi = rn_wino_plane_floats((size_t)s->cin * p.tb);
    p.m_xi = rn_wino_plane_floats((size_t)s->cout * p.tb);
    p.v = workspace;
    p.m = p.v + (size_t)v->xi * p.v_xi;
    /* output channels are shared out in whole register tiles, each thread the same run of
     * them in every block (its share of the transformed weights stays in its caches) */
    const int mr = k->mr, k_items = ceil_div(s->cout, mr);
#pragma omp parallel num_threads(threads)
    {
        const int team = rn_team_size(), me = rn_thread_id();
        int c0, c1;
        if (p.pairs) { /* whole pairs of input channels (pair_start) */
            const long pairs = (long)(p.nkb - 1) * ((p.kcb + 1) / 2) +
                               (s->cin - (p.nkb - 1) * p.kcb + 1) / 2;
            const long per = (pairs + team - 1) / team;
            c0 = pair_start(&p, me * per);
            c1 = pair_start(&p, (me + 1) * per);
        } else {
            const int per = ceil_div(s->cin, team);
            c0 = me * per < s->cin ? me * per : s->cin;
            c1 = (me + 1) * per < s->cin ? (me + 1) * per : s->cin;
        }
        const int items = ceil_div(k_items, team), k0 = me * items * mr;
        const int k1 = (me + 1) * items * mr < s->cout ? (me + 1) * items * mr : s->cout;
        for (int t0 = 0; t0 < p.tiles; t0 += p.tb) {
            const int nt = p.tiles - t0 < p.tb ? p.tiles - t0 : p.tb;
            /* this thread's share of the input channels, then everyone's V is ready */
            input_channels(&p, t0, nt, c0, c1);
#pragma omp barrier
            if (k0 < k1)
                output_channels(&p, t0, nt, k0, k1);
#pragma omp barrier /* V is rewritten by the next block */
        }
    }
}

/* ---------------------------------------------------------------------------
 * The algorithms
 * ------------------------------------------------------------------------- */

static const wino_variant F4 = {.m = 4, .a = 6, .xi = 36};
static const wino_variant F2 = {.m = 2, .a = 4, .xi = 16};

#define VARIANT_FNS(V)                                                                             \
    static size_t prepared_##V(const rn_kernels *k, const rn_conv_shape *s) {                     \
        return prepared_floats(&V, k, s);                                                          \
    }                                                                                              \
    static void prepare_##V(const rn_kernels *k, const rn_conv_shape *s, const float *w,          \
                            float *prepared) {                                                     \
        prepare(&V, rn_kernels_or_default(k), s, w, prepared);                                     \
    }                                                                                              \
    static size_t workspace_##V(const rn_kernels *k, const rn_conv_shape *s, int threads) {       \
        return workspace_floats(&V, rn_kernels_or_default(k), s, threads);                         \
    }                                                                                              \
    static void forward_##V(const rn_kernels *k, const rn_conv_shape *s, const float *x,          \
                            const float *prepared, const float *bias, const float *residual,       \
                            int relu, float *y, float *workspace, int threads) {                   \
        forward(&V, k, s, x, prepared, bias, residual, relu, y, workspace, threads);               \
    }
VARIANT_FNS(F4)
VARIANT_FNS(F2)

const rn_conv_algo rn_conv_winograd = {
    .id = RN_CONV_WINOGRAD,
    .name = "winograd",
    .description = "Winograd F(4x4, 3x3): 3x3 stride-1 convolutions, 4x fewer multiplications",
    .tolerance = 1e-4,
    .tolerance_bf16 = 1e-1, /* 7.7e-2 the worst of tests/test_conv2d's shapes */
    .supports = supports,
    .prepared_floats = prepared_F4,
    .prepare = prepare_F4,
    .workspace_floats = workspace_F4,
    .forward = forward_F4,
};

const rn_conv_algo rn_conv_winograd2 = {
    .id = RN_CONV_WINOGRAD2,
    .name = "winograd2",
    .description = "Winograd F(2x2, 3x3): 3x3 stride-1 convolutions on small maps, 2.25x fewer "
                   "multiplications, weights 16/9 of their size (F(4x4): 4x)",
    .tolerance = 1e-5,
    .tolerance_bf16 = 1e-2, /* 4.9e-3 the worst of tests/test_conv2d's shapes */
    .supports = supports,
    .prepared_floats = prepared_F2,
    .prepare = prepare_F2,
    .workspace_floats = workspace_F2,
    .forward = forward_F2,
};
