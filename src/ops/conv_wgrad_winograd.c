/*
 * conv_wgrad_winograd.c - the weight gradient of 3x3 stride-1 convolutions by Winograd
 * F(4x4, 3x3) or F(2x2, 3x3) (contract in conv_wgrad.h; the transforms in winograd.h).
 *
 * The forward convolution by Winograd computes each m x m tile t of the output as
 *     Y_t = A^T [(G g G^T) . (B^T d_t B)] A
 * exactly (in exact arithmetic), so its derivative with respect to the 3x3 kernel g is
 *     dg = G^T [ sum over t of (B^T d_t B) . (A dY_t A^T) ] G
 * and the weight gradient becomes, per point xi of the transformed domain, one product
 *     M_xi (cout x cin) = W_xi (cout x T) x V_xi^T (T x cin)
 *     V = B^T d B   (each input patch: the forward's input transform, the descriptor's)
 *     W = A dY A^T  (each m x m block of dy, zeros past the map: below)
 * then dw = G^T M G per (output, input) channel pair. F(4x4): 36 products per tile of 16
 * outputs, against 144 directly, 4x fewer multiplications on maps of whole tiles.
 *
 * A block of tb tiles at a time: the threads share out V's input channels and W's output
 * channels, a barrier, then each thread adds the products of its own points xi into M
 * (overwritten by the first block); at the end, dw from M, shared out by output channel.
 * Where M is small (up to 128 channels), the tiles are cut in two parts instead, each with its
 * own M, V and W: on two threads each part stays on one core from the transforms to its sums,
 * and the two Ms are added before dw (below, PARTS_MAX_SUMS_BYTES). Every sum runs in an order
 * fixed by the shape alone, so the result does not depend on the thread count.
 *
 * Accuracy: the transforms' coefficients (up to 8 in A, 5 in B^T) magnify rounding as in
 * the forward. On random data (uniform in [-1, 1]) the largest error, relative to the largest
 * gradient, was about 3e-6 by F(4x4) and 5e-7 by F(2x2), against 3e-7 for the GEMM;
 * tests/test_backward_conv.c holds them to the forward's tolerances, 1e-4 and 1e-5. The exact
 * routes stay one flag away: `algos` 0 (conv2d.h), `--conv-algo im2col` in training.
 */
#include <string.h>

#include "core/threads.h"
#include "ops/conv_wgrad.h"
#include "ops/gemm.h"
#include "ops/kernels.h"
#include "ops/winograd.h"

#define LL RN_WINO_LANES

static int ceil_div(long a, long b) { return (int)((a + b - 1) / b); }

/* ---------------------------------------------------------------------------
 * The transforms of dy and of the sums
 * ------------------------------------------------------------------------- */

/* 8 lanes as one value: GCC's and clang's vector extension, two SSE registers on any x86-64
 * (one AVX register where the compiler may use it), plain loops elsewhere. Every function
 * that takes or returns one is static: no ABI is crossed (the Makefile's -Wno-psabi). */
typedef float v8 __attribute__((vector_size(LL * sizeof(float))));

static inline v8 load8(const float *p) {
    v8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store8(float *p, v8 v) { memcpy(p, &v, sizeof v); }

/* Where the m x m blocks of dy of 8 tiles lie in an output channel's plane (rows wo apart),
 * and how much of each is inside the map; a lane with rows == 0 is all zero. */
typedef struct dy_lanes {
    ptrdiff_t at[LL];
    int rows[LL], cols[LL];
    int whole;              /* every lane's block wholly inside */
    int ld;
} dy_lanes;

static void dy_lanes_of(const rn_conv_shape *s, const conv_wgrad_wino_plan *d, long t, long end,
                        dy_lanes *o) {
    o->ld = s->wo;
    o->whole = 1;
    for (int l = 0; l < LL; l++) {
        o->at[l] = 0;
        o->rows[l] = o->cols[l] = 0;
        if (t + l < end)
            o->at[l] = rn_wino_tile_at(s->ho, s->wo, d->m, d->th, d->tw, t + l, &o->rows[l],
                                       &o->cols[l]);
        o->whole &= o->rows[l] == d->m && o->cols[l] == d->m;
    }
}

/* The m x m blocks of 8 lanes from one channel's plane p: blk[r * m + c] lane l, zeros
 * outside. */
static void dy_gather(const float *p, const dy_lanes *o, int m, v8 blk[16]) {
    float g[16][LL];
    if (o->whole) {
        for (int l = 0; l < LL; l++)
            for (int r = 0; r < m; r++)
                for (int c = 0; c < m; c++)
                    g[r * m + c][l] = p[o->at[l] + (ptrdiff_t)r * o->ld + c];
    } else {
        for (int l = 0; l < LL; l++)
            for (int r = 0; r < m; r++)
                for (int c = 0; c < m; c++)
                    g[r * m + c][l] = r < o->rows[l] && c < o->cols[l]
                                          ? p[o->at[l] + (ptrdiff_t)r * o->ld + c]
                                          : 0.0f;
    }
    for (int i = 0; i < m * m; i++)
        blk[i] = load8(g[i]);
}

/* F(4x4): w = A d along one axis, 4 values -> 6 (A = the transpose of winograd.h's A^T). */
static inline void a4_1d(v8 d0, v8 d1, v8 d2, v8 d3, v8 w[6]) {
    const v8 e = d0 + d2, o = d1 + d3;
    const v8 e4 = d0 + 4.0f * d2, o4 = 2.0f * d1 + 8.0f * d3;
    w[0] = d0;
    w[1] = e + o;
    w[2] = e - o;
    w[3] = e4 + o4;
    w[4] = e4 - o4;
    w[5] = d3;
}

/* W = A dY A^T of 8 lanes into dst[xi * stride + l]. */
static void dy_transform4(const v8 blk[16], float *dst, ptrdiff_t stride) {
    v8 t[4][6]; /* per column c: the rows combined */
    for (int c = 0; c < 4; c++)
        a4_1d(blk[c], blk[4 + c], blk[8 + c], blk[12 + c], t[c]);
    for (int a = 0; a < 6; a++) {
        v8 w[6];
        a4_1d(t[0][a], t[1][a], t[2][a], t[3][a], w);
        for (int b = 0; b < 6; b++)
            store8(dst + (a * 6 + b) * stride, w[b]);
    }
}

/* F(2x2): A = [1 0; 1 1; 1 -1; 0 -1]. */
static inline void a2_1d(v8 d0, v8 d1, v8 w[4]) {
    w[0] = d0;
    w[1] = d0 + d1;
    w[2] = d0 - d1;
    w[3] = -d1;
}

static void dy_transform2(const v8 blk[16], float *dst, ptrdiff_t stride) {
    v8 t[2][4];
    for (int c = 0; c < 2; c++)
        a2_1d(blk[c], blk[2 + c], t[c]);
    for (int a = 0; a < 4; a++) {
        v8 w[4];
        a2_1d(t[0][a], t[1][a], w);
        for (int b = 0; b < 4; b++)
            store8(dst + (a * 4 + b) * stride, w[b]);
    }
}

/* r = G^T m along one axis (6 values -> 3); G is winograd.h's. */
static inline void g4_1d(const v8 m[6], v8 r[3]) {
    const v8 s12 = m[1] + m[2], s34 = m[3] + m[4];
    r[0] = m[0] * (1.0f / 4) - s12 * (1.0f / 6) + s34 * (1.0f / 24);
    r[1] = (m[2] - m[1]) * (1.0f / 6) + (m[3] - m[4]) * (1.0f / 12);
    r[2] = (s34 - s12) * (1.0f / 6) + m[5];
}

/* F(2x2): G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]. */
static inline void g2_1d(const v8 m[4], v8 r[3]) {
    const v8 s12 = m[1] + m[2];
    r[0] = m[0] + s12 * 0.5f;
    r[1] = (m[1] - m[2]) * 0.5f;
    r[2] = s12 * 0.5f + m[3];
}

/* dw of output channel co, input channels [c0, c0 + n) (n <= LL), from the sums M. */
static void sums_to_dw(const conv_wgrad_wino_plan *d, const float *M, int cin, int co, int c0,
                       int n, float *dw) {
    const int a = d->m + 2;
    v8 mm[36], t[6][3], w[3][3];
    for (int xi = 0; xi < d->xi; xi++) {
        const float *src = M + xi * d->m_xi + (size_t)co * cin + c0;
        if (n == LL) {
            mm[xi] = load8(src);
        } else {
            float v[LL] = {0};
            memcpy(v, src, (size_t)n * sizeof(float));
            mm[xi] = load8(v);
        }
    }
    for (int b = 0; b < a; b++) { /* t[b][i] = sum over a of G[a][i] M[a][b] */
        v8 col[6];
        for (int q = 0; q < a; q++)
            col[q] = mm[q * a + b];
        if (d->m == 4)
            g4_1d(col, t[b]);
        else
            g2_1d(col, t[b]);
    }
    for (int i = 0; i < 3; i++) { /* w[i][j] = sum over b of t[b][i] G[b][j] */
        v8 row[6];
        for (int q = 0; q < a; q++)
            row[q] = t[q][i];
        if (d->m == 4)
            g4_1d(row, w[i]);
        else
            g2_1d(row, w[i]);
    }
    float out[9][LL];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            store8(out[i * 3 + j], w[i][j]);
    for (int l = 0; l < n; l++)
        for (int q = 0; q < 9; q++)
            dw[((size_t)co * cin + c0 + l) * 9 + q] = out[q][l];
}

/* ---------------------------------------------------------------------------
 * When, and the layout
 * ------------------------------------------------------------------------- */

/* A block's V and W: at least BLOCK_MIN_BYTES, as large as M where M is larger (the products
 * reread and rewrite M once per block), at most BLOCK_MAX_BYTES. Measured (Xeon SPR, 2
 * threads, batch 32, alternated, medians of 3-6 noisy runs): blocks of 2, 4 and 8 MB on
 * 64->64 at 56x56 50.9 / 51.3 / 48.6 ms, 128->128 at 28x28 35.0 / 39.0 / 34.0, 256->256 at
 * 14x14 33.8 / 35.1 / 32.3; 512->512 at 7x7 (M 38 MB) in two blocks of 64 tiles 26.5-35.2 ms,
 * in one of 128 23.4-29.3 (F(2x2): 38.5-40.3). M itself (4x the weights) is the cost in
 * memory, so layers whose M would pass BLOCK_MAX_BYTES keep the GEMM (wide_resnet50_2's
 * 1024 channels: 151 MB). */
#define BLOCK_MIN_BYTES (8u << 20)
#define BLOCK_MAX_BYTES (40u << 20)

/* Two parts (conv_wgrad.h) up to sums of this size, from this many tiles. Shared by channels
 * and then by points, each thread's products read the V and W rows the other thread wrote, and
 * the two cores of the AMD EPYC Zen 5 here sit on two dies (a cache line there and back
 * 460-500 ns): 64 -> 64 products ran 1.35x faster on two threads than on one, 512 -> 512's
 * 2.2x. In parts, `profile_train -a resnet18 -S cifar -b 128 -s 32 -t 2`, 2 rounds
 * alternated, weight gradient ms: 64 -> 64 at 32x32 25.0-25.6 -> 18.0-19.9, 128 -> 128 at
 * 16x16 15.8-18.1 -> 12.6-13.2, the step's weight gradients 291-296 -> 253-256. From 256
 * channels (M 9.4 MB, twice that in parts) the products keep the shared split, which already
 * scales there. */
#define PARTS_MAX_SUMS_BYTES (4u << 20)
#define PARTS_MIN_TILES (4 * LL)

/* The tiles of the first of two parts: half of them, in whole lanes (the second has the rest). */
static long first_part_tiles(long tiles) { return (long)ceil_div(ceil_div(tiles, 2), LL) * LL; }

int conv_wgrad_wino_plan_m(const rn_kernels *k, const rn_conv_shape *s, int m,
                           conv_wgrad_wino_plan *d) {
    if (s->kh != 3 || s->kw != 3 || s->stride != 1 || s->groups != 1 || s->pad > 2 ||
        (m != 4 && m != 2) || rn_kernels_are_bf16(k) || !(m == 4 ? k->wino_in : k->wino2_in) ||
        s->n < 1 || s->ho < 1 || s->wo < 1)
        return 0;
    d->m = m;
    d->xi = (m + 2) * (m + 2);
    d->th = ceil_div(s->ho, m);
    d->tw = ceil_div(s->wo, m);
    d->tiles = (long)s->n * d->th * d->tw;
    /* two parts where the sums are small enough to keep twice and each half has tiles */
    const size_t sums_bytes = sizeof(float) * (size_t)d->xi * (size_t)s->cin * (size_t)s->cout;
    d->parts = sums_bytes <= PARTS_MAX_SUMS_BYTES && d->tiles >= PARTS_MIN_TILES ? 2 : 1;
    const long part_tiles = d->parts == 2 ? first_part_tiles(d->tiles) : d->tiles;
    const size_t per_tile = sizeof(float) * (size_t)d->xi * (size_t)(s->cin + s->cout);
    size_t bytes = sizeof(float) * (size_t)d->xi * (size_t)s->cin * (size_t)s->cout;
    bytes = bytes < BLOCK_MIN_BYTES ? BLOCK_MIN_BYTES : bytes > BLOCK_MAX_BYTES ? BLOCK_MAX_BYTES : bytes;
    long tb = (long)(bytes / per_tile) / LL * LL;
    tb = tb < LL ? LL : tb > CONV_WGRAD_WINO_GROUPS_MAX * LL ? CONV_WGRAD_WINO_GROUPS_MAX * LL : tb;
    const long blocks = (part_tiles + tb - 1) / tb; /* as even as whole lanes allow */
    conv_wgrad_wino_plan_blocks(s, ceil_div(ceil_div(part_tiles, blocks), LL) * LL, d);
    return 1;
}

void conv_wgrad_wino_plan_blocks(const rn_conv_shape *s, int tb, conv_wgrad_wino_plan *d) {
    tb = ceil_div(tb, LL) * LL;
    d->tb = tb < LL ? LL : tb > CONV_WGRAD_WINO_GROUPS_MAX * LL ? CONV_WGRAD_WINO_GROUPS_MAX * LL : tb;
    d->m_xi = rn_wino_plane_floats((size_t)s->cout * (size_t)s->cin);
    d->v_xi = rn_wino_plane_floats((size_t)s->cin * (size_t)d->tb);
    d->w_xi = rn_wino_plane_floats((size_t)s->cout * (size_t)d->tb);
    d->floats = (size_t)d->parts * d->xi * (d->m_xi + d->v_xi + d->w_xi);
}

/* Winograd takes the weight gradient from WINO_MIN_CHANNELS input and output channels up (its
 * transforms cost in proportion to cin + cout per tile, the products to cin x cout), with the
 * tiles that need fewer multiplications (F(2x2) on a tie: smaller coefficients), where they
 * are at most WINO_MAX_MULTIPLY of the direct sum's. Measured (2 threads, Xeon SPR, GEMM ->
 * Winograd, alternated, 3 runs each): 3x3 32->32 at 14x14 batch 128 5.8-6.4 -> 6.6-9.1 ms
 * (not taken), 64->64 at 7x7 batch 128 5.2-6.0 -> 4.6-5.4, batch 256 10.4-10.8 -> 7.5-9.2,
 * 128->128 at 4x4 5.7-6.6 -> 2.8-3.0, 256->256 at 2x2 (batch 256) 10.5-10.9 -> 5.8-6.2 by
 * F(2x2) (by F(4x4), one tile of 16 for 4 outputs: 14.2-15.6); resnet18's at batch 32:
 * 64->64 at 56x56 54-64 -> 36-48, 128->128 at 28x28 52-63 -> 26-34, 256->256 at 14x14
 * 52-57 -> 32-37, 512->512 at 7x7 55-57 -> 23-29. */
#define WINO_MIN_CHANNELS 64
#define WINO_MAX_MULTIPLY 0.45

int conv_wgrad_wino_plan_for(const rn_kernels *k, const rn_conv_shape *s, conv_wgrad_wino_plan *d) {
    if (s->cin < WINO_MIN_CHANNELS || s->cout < WINO_MIN_CHANNELS ||
        (size_t)36 * sizeof(float) * (size_t)s->cin * (size_t)s->cout > BLOCK_MAX_BYTES ||
        s->ho < 1 || s->wo < 1)
        return 0;
    const double direct = 9.0 * s->ho * s->wo;
    const double f4 = 36.0 * ceil_div(s->ho, 4) * ceil_div(s->wo, 4);
    const double f2 = 16.0 * ceil_div(s->ho, 2) * ceil_div(s->wo, 2);
    const int m = f4 < f2 ? 4 : 2;
    if ((m == 4 ? f4 : f2) > WINO_MAX_MULTIPLY * direct)
        return 0;
    return conv_wgrad_wino_plan_m(k, s, m, d);
}

/* ---------------------------------------------------------------------------
 * The weight gradient
 * ------------------------------------------------------------------------- */

/* Where the lanes of a block's tiles [t0, t0 + nt) lie: the patches of x and the blocks of dy,
 * worked out once for all channels. */
typedef struct block_lanes {
    int ng;                 /* groups of LL tiles */
    rn_wino_in in[CONV_WGRAD_WINO_GROUPS_MAX];
    dy_lanes o[CONV_WGRAD_WINO_GROUPS_MAX];
    ptrdiff_t x_lo, x_hi;   /* the part of an input plane the patches read */
    ptrdiff_t dy_lo, dy_hi; /* the part of a dy plane the blocks cover */
} block_lanes;

static void block_lanes_of(const rn_conv_shape *s, const conv_wgrad_wino_plan *d, long t0, int nt,
                           block_lanes *b) {
    b->ng = ceil_div(nt, LL);
    for (int g = 0; g < b->ng; g++) {
        rn_wino_patch_lanes(s->h, s->w, s->pad, d->m, d->th, d->tw, t0 + g * LL, t0 + nt, &b->in[g]);
        dy_lanes_of(s, d, t0 + g * LL, t0 + nt, &b->o[g]);
    }
    rn_wino_tiles_span(s->ho, s->wo, d->m, d->th, d->tw, t0, nt, &b->dy_lo, &b->dy_hi);
    rn_wino_patch_span(b->in, b->ng, (ptrdiff_t)s->n * s->h * s->w, &b->x_lo, &b->x_hi);
}

/* Asks for the part of channel c's plane (c < C: x's, else dy's channel c - C) that the block
 * reads, ahead of its transform (winograd.h rn_prefetch_span), as the forward does: the channel
 * the thread transforms next. `profile_train -a d2l_resnet18 -s 96 -b 128`, AMD EPYC Zen 5, 2
 * threads, two rounds alternated: the weight gradients 177.0-179.2 -> 167.8-170.7 ms (the step
 * 502-511 -> 498-505); at 28x28, batch 256, 50.9-54.0 -> 50.2-53.3. */
static void prefetch_channel(const rn_conv_shape *s, const block_lanes *b, int c, const float *x,
                             const float *dy) {
    if (c < s->cin)
        rn_prefetch_span(x + (ptrdiff_t)c * s->n * s->h * s->w, b->x_lo, b->x_hi, 0);
    else if (c < s->cin + s->cout)
        rn_prefetch_span(dy + (ptrdiff_t)(c - s->cin) * s->n * s->ho * s->wo, b->dy_lo, b->dy_hi,
                         0);
}

/* Channel c of the block into V (c < C: x's input transform) or W (else: dy's output channel
 * c - C). */
static void transform_channel(const rn_kernels *k, const rn_conv_shape *s,
                              const conv_wgrad_wino_plan *d, block_lanes *b, int c, const float *x,
                              const float *dy, float *V, float *W) {
    const int C = s->cin, m = d->m, tb = d->tb;
    if (c < C) {
        const rn_wino_in_fn in_fn = m == 4 ? k->wino_in : k->wino2_in;
        const rn_wino_in2_fn in2 = m == 4 ? k->wino_in2 : NULL;
        const ptrdiff_t in_plane = (ptrdiff_t)s->n * s->h * s->w;
        for (int g = 0; g < b->ng; g++) {
            float *dst = V + (size_t)c * tb + (size_t)g * LL;
            b->in[g].x = x + (ptrdiff_t)c * in_plane;
            if (in2 && g + 1 < b->ng) { /* two groups at once where the kernels can */
                b->in[g + 1].x = b->in[g].x;
                in2(&b->in[g], dst, (ptrdiff_t)d->v_xi);
                g++;
                continue;
            }
            in_fn(&b->in[g], dst, (ptrdiff_t)d->v_xi);
        }
        return;
    }
    const float *p = dy + (ptrdiff_t)(c - C) * s->n * s->ho * s->wo;
    for (int g = 0; g < b->ng; g++) {
        float *dst = W + (size_t)(c - C) * tb + (size_t)g * LL;
        /* the descriptor's where every block is inside: `profile_train -a resnet18 -b
         * 16`, AMD EPYC Zen 5, 2 threads, 3 rounds alternated, weight gradients of
         * 64 -> 64 at 56x56 11.0-11.3 -> 8.8-9.0 ms, 128 -> 128 at 28x28 6.9-7.1 ->
         * 5.7-5.9, the step 400-402 -> 391-397 */
        if (m == 4 && k->wino_dy && b->o[g].whole) {
            k->wino_dy(p, b->o[g].at, b->o[g].ld, dst, (ptrdiff_t)d->w_xi);
            continue;
        }
        v8 blk[16] = {0};
        dy_gather(p, &b->o[g], m, blk);
        if (m == 4)
            dy_transform4(blk, dst, (ptrdiff_t)d->w_xi);
        else
            dy_transform2(blk, dst, (ptrdiff_t)d->w_xi);
    }
}

/* Point xi's products of a block of nt tiles, added into M (overwritten where first). */
static void block_products(const rn_kernels *k, const rn_conv_shape *s,
                           const conv_wgrad_wino_plan *d, int xi, int nt, const float *V,
                           const float *W, int first, float *M) {
    rn_sgemm_1t(k, 0, 1, s->cout, s->cin, nt, W + (size_t)xi * d->w_xi, d->tb,
                V + (size_t)xi * d->v_xi, d->tb, first ? 0.0f : 1.0f, M + (size_t)xi * d->m_xi,
                s->cin, NULL);
}

void conv_wgrad_wino_run(const rn_kernels *k, const rn_conv_shape *s,
                         const conv_wgrad_wino_plan *d, const float *x, const float *dy,
                         float *dw, float *ws) {
    const int C = s->cin, K = s->cout, tb = d->tb;
    const size_t m_floats = (size_t)d->xi * d->m_xi;
    const size_t vw_floats = (size_t)d->xi * (d->v_xi + d->w_xi);
    if (d->parts == 2) {
        /* Two parts, each its own half of the tiles and its own sums (see conv_wgrad.h): on two
         * threads each part stays with one core from the transforms to its sums; one thread
         * does both in turn, more threads share each part as below, so the sums are the same
         * on any thread count. */
        const int team = rn_team_size(), me = rn_thread_id();
        const long half = first_part_tiles(d->tiles);
        const int blocks = ceil_div(half, tb);
        const int sync = team > 2; /* a part shared by several threads */
        for (int part = team == 1 ? 0 : me % 2; part < 2; part += team == 1 ? 1 : 2) {
            const int sub = team == 1 ? 0 : me / 2;
            const int share = team == 1 ? 1 : (team - part + 1) / 2; /* threads of the part */
            float *M = ws + (size_t)part * m_floats;
            float *V = ws + 2 * m_floats + (size_t)part * vw_floats;
            float *W = V + (size_t)d->xi * d->v_xi;
            const long end = part == 0 ? half : d->tiles;
            for (int b = 0; b < blocks; b++) {
                const long t0 = part * half + (long)b * tb;
                const int nt = end - t0 < tb ? (int)(end - t0) : tb;
                if (nt > 0) {
                    block_lanes bl;
                    block_lanes_of(s, d, t0, nt, &bl);
                    for (int c = sub; c < C + K; c += share) {
                        prefetch_channel(s, &bl, c + share, x, dy);
                        transform_channel(k, s, d, &bl, c, x, dy, V, W);
                    }
                }
                if (sync) {
#pragma omp barrier
                }
                for (int xi = sub; xi < d->xi && nt > 0; xi += share)
                    block_products(k, s, d, xi, nt, V, W, b == 0, M);
                if (sync) {
#pragma omp barrier
                }
            }
        }
#pragma omp barrier
    } else {
        float *M = ws, *V = M + m_floats, *W = V + (size_t)d->xi * d->v_xi;
        for (long t0 = 0; t0 < d->tiles; t0 += tb) {
            const int nt = d->tiles - t0 < tb ? (int)(d->tiles - t0) : tb;
            block_lanes bl;
            block_lanes_of(s, d, t0, nt, &bl);
            /* V's input channels and W's output channels, dealt out one by one (the two
             * transforms do not cost the same) */
            const int team = rn_team_size();
#pragma omp for schedule(static, 1)
            for (int c = 0; c < C + K; c++) {
                prefetch_channel(s, &bl, c + team, x, dy);
                transform_channel(k, s, d, &bl, c, x, dy, V, W);
            }
            /* each point's products on one thread, added into M block after block */
#pragma omp for schedule(static)
            for (int xi = 0; xi < d->xi; xi++)
                block_products(k, s, d, xi, nt, V, W, t0 == 0, M);
        }
    }
    /* the descriptor's F(4x4) sums where it has them (winograd_x86.h sums_block: 8 or 16
     * input channels a step on whole AVX vectors, where this file's loop spends about 0.5 us on
     * 8 of them in two SSE halves). `profile_train -a resnet18 -b 16`, AMD EPYC Zen 5, 2
     * threads, 3 rounds alternated with the loop: the 3x3 512 -> 512 layers' weight gradient
     * 9.1-9.4 -> 7.0-7.2 ms, 256 -> 256 7.3-7.4 -> 6.7-6.9, the step 422 -> 407-414 ms (AVX2:
     * 512 -> 512 12.2-14.4 -> 10.5-12.1); `resnet bench --train` batch 32, fp32 766-859 ->
     * 763-783, bf16 739-752 -> 723-745. */
    const rn_wino_sums_fn sums = d->m == 4 ? k->wino_sums : NULL;
    float *M = ws;
#pragma omp for schedule(static)
    for (int co = 0; co < K; co++) {
        if (d->parts == 2) /* the second part's sums into the first's, row co of every point */
            for (int xi = 0; xi < d->xi; xi++) {
                float *dst = M + (size_t)xi * d->m_xi + (size_t)co * C;
                const float *src = dst + m_floats;
                for (int c = 0; c < C; c++)
                    dst[c] += src[c];
            }
        if (sums) {
            sums(M + (size_t)co * C, (ptrdiff_t)d->m_xi, C, dw + (size_t)co * C * 9);
            continue;
        }
        for (int c0 = 0; c0 < C; c0 += LL)
            sums_to_dw(d, M, C, co, c0, C - c0 < LL ? C - c0 : LL, dw);
    }
}
