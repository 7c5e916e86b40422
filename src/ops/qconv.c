/*
 * qconv.c - int8 convolution (scheme and layouts in qconv.h): weight
 * packing, the oracle, the im2col copy, the threaded driver and the
 * portable kernel; the other int8 ops.
 *
 * Packed weights: for output block b (16 channels) of a super-group (qconv.h),
 * K group g (16 bytes of K) and quad q (4 of them), one 64-byte row holds
 * channel c's 4 weights at [c * 4 + t], k = g * 16 + q * 4 + t:
 *     dst[((b * groups + g) * 4 + q) * 64 + c * 4 + t]
 * (b counts the blocks of all super-groups, the first's first.)
 * The order of K matches the input layout's im2col row:
 *     c16 input:   k = ((r * kw + s) * cb_in + cb) * 16 + c16   (ci = cb * 16 + c16)
 *     plain input: k = (ci * kh + r) * kw + s, zero-padded to a multiple of 16
 */
#include "ops/qconv.h"

#include <stdio.h>
#include <string.h>

#include "core/threads.h"
#include "ops/kernels.h"

rn_qparam rn_qparam_for_range(float lo, float hi) {
    lo = lo < 0.0f ? lo : 0.0f;
    hi = hi > 0.0f ? hi : 0.0f;
    rn_qparam q = {1.0f, 0};
    if (!(hi - lo > 1e-30f) || !isfinite(hi - lo))
        return q;
    q.scale = (hi - lo) / (float)RN_Q_MAX;
    int zp = (int)nearbyintf(-lo / q.scale);
    q.zp = zp < 0 ? 0 : zp > RN_Q_MAX ? RN_Q_MAX : zp;
    return q;
}

/* ---- weights -------------------------------------------------------------------------------- */

int rn_qconv_kpad(const rn_conv_shape *s, int in_c16) {
    if (in_c16)
        return s->kh * s->kw * rn_q_cblocks(s->cin) * RN_Q_CB;
    int k = s->cin * s->kh * s->kw;
    return (k + 15) / 16 * 16;
}

int rn_qconv_init(rn_qconv *c, const rn_conv_shape *s, int in_c16, char *why, size_t why_cap) {
    const int G = s->groups, cin_g = s->cin / G, cout_g = s->cout / G;
    int m = 1; /* groups per super-group */
    const char *bad = NULL;
    if (G > 1 && !in_c16)
        bad = "a grouped convolution on the network's input";
    else if (G > 1 && cout_g < RN_Q_CB) {
        m = RN_Q_CB / cout_g;
        if (RN_Q_CB % cout_g || G % m || cin_g * m % RN_Q_CB)
            bad = "its groups do not gather into whole blocks of 16 channels";
    } else if (G > 1 && (cout_g % RN_Q_CB || cin_g % RN_Q_CB)) {
        bad = "its groups are not whole blocks of 16 channels";
    }
    if (bad) {
        if (why)
            snprintf(why, why_cap, "%s (%d groups of %d input and %d output channels)", bad, G,
                     cin_g, cout_g);
        return 0;
    }
    *c = (rn_qconv){.s = *s, .sg = G / m, .groups = G, .in_c16 = in_c16};
    c->s.cin = cin_g * m;
    c->s.cout = cout_g * m;
    c->s.groups = 1;
    c->kpad = rn_qconv_kpad(&c->s, in_c16);
    c->cb_out = rn_q_cblocks(c->s.cout);
    return 1;
}

size_t rn_qconv_packed_bytes(const rn_qconv *c) {
    return (size_t)c->sg * c->cb_out * c->kpad * 16;
}

size_t rn_qconv_channels(const rn_qconv *c) { return (size_t)c->sg * c->cb_out * 16; }

/* The weight of super-group q's output channel co (of its cout') at k of the packed K order, or 0
 * for padding and for the pairs of channels in different groups. */
static int weight_at(const rn_qconv *c, const int8_t *wq, int q, int co, int k) {
    const rn_conv_shape *s = &c->s;
    int kk = s->kh * s->kw, ci, rs;
    if (c->in_c16) {
        int cb_in = rn_q_cblocks(s->cin);
        int c16 = k % 16, cb = (k / 16) % cb_in;
        rs = k / 16 / cb_in;
        ci = cb * 16 + c16;
        if (ci >= s->cin)
            return 0;
    } else {
        if (k >= s->cin * kk)
            return 0;
        ci = k / kk;
        rs = k % kk;
    }
    /* the convolution's own channels and groups */
    int cin_g = s->cin * c->sg / c->groups, cout_g = s->cout * c->sg / c->groups;
    int gco = q * s->cout + co, gci = q * s->cin + ci, g = gco / cout_g;
    if (gci / cin_g != g)
        return 0;
    return wq[((size_t)gco * cin_g + (gci - g * cin_g)) * kk + rs];
}

void rn_qconv_pack_weights(const rn_qconv *c, const int8_t *wq, int in_zp, int8_t *dst,
                           int32_t *comp) {
    int groups = c->kpad / 16;
    for (int q = 0; q < c->sg; q++)
        for (int b = 0; b < c->cb_out; b++)
            for (int ch = 0; ch < 16; ch++) {
                int co = b * 16 + ch;
                int32_t sum = 0;
                for (int k = 0; k < c->kpad; k++) {
                    int v = co < c->s.cout ? weight_at(c, wq, q, co, k) : 0;
                    int g = k / 16, qd = (k % 16) / 4, t = k % 4;
                    dst[((((size_t)q * c->cb_out + b) * groups + g) * 4 + qd) * 64 + ch * 4 + t] =
                        (int8_t)v;
                    sum += v;
                }
                comp[((size_t)q * c->cb_out + b) * 16 + ch] = in_zp * sum;
            }
}

/* ---- the oracle ----------------------------------------------------------------------------- */

static size_t c16_index(int c, size_t nhw, size_t p) {
    return ((size_t)(c / 16) * nhw + p) * 16 + (size_t)(c % 16);
}

void rn_qconv_forward_ref(const rn_conv_shape *s, int in_c16, const uint8_t *x, int in_zp,
                          const int8_t *wq, const rn_qreq *rq, const uint8_t *res, uint8_t *y) {
    size_t nhw_in = (size_t)s->n * s->h * s->w, nhw_out = (size_t)s->n * s->ho * s->wo;
    int cin_g = s->cin / s->groups, cout_g = s->cout / s->groups;
    for (int co = 0; co < s->cout; co++)
        for (int b = 0; b < s->n; b++)
            for (int oh = 0; oh < s->ho; oh++)
                for (int ow = 0; ow < s->wo; ow++) {
                    int32_t acc = 0;
                    for (int cg = 0; cg < cin_g; cg++)
                        for (int r = 0; r < s->kh; r++)
                            for (int q = 0; q < s->kw; q++) {
                                int ci = co / cout_g * cin_g + cg;
                                int ih = oh * s->stride - s->pad + r;
                                int iw = ow * s->stride - s->pad + q;
                                int v = in_zp;
                                if (ih >= 0 && ih < s->h && iw >= 0 && iw < s->w) {
                                    size_t p = ((size_t)b * s->h + ih) * s->w + iw;
                                    v = in_c16 ? x[c16_index(ci, nhw_in, p)]
                                               : x[(size_t)ci * nhw_in + p];
                                }
                                acc += v * wq[(((size_t)co * cin_g + cg) * s->kh + r) * s->kw + q];
                            }
                    size_t o = c16_index(co, nhw_out, ((size_t)b * s->ho + oh) * s->wo + ow);
                    y[o] = rn_requant(rq, co, acc, res ? res + o : NULL);
                }
}

/* ---- im2col: the K bytes of columns j0 .. j0 + count - 1, one row each -------------------- */

/* c16 input: per column, per tap, the 16 bytes of each channel block (a run at a time and a
 * block's pixels one after the other measured no faster, AVX-512 VNNI, Xeon) */
#define PREFETCH_COLS 8
static void im2col_rows_c16(const rn_qconv *c, int n, const uint8_t *x, int zp, long j0,
                            int count, uint8_t *dst) {
    const rn_conv_shape *s = &c->s;
    const size_t nhw = (size_t)n * s->h * s->w;
    const long hw_out = (long)s->ho * s->wo;
    const int cb_in = rn_q_cblocks(s->cin);
    for (int i = 0; i < count; i++) {
        long j = j0 + i;
        int b = (int)(j / hw_out), rem = (int)(j % hw_out);
        int ih0 = rem / s->wo * s->stride - s->pad, iw0 = rem % s->wo * s->stride - s->pad;
        uint8_t *row = dst + (size_t)i * c->kpad;
        /* asked for ahead: the window's last `stride` rows (those the output row before did not
         * read), PREFETCH_COLS columns on, in every block's plane; with the hardware's prefetch
         * alone the copy waited on the planes' lines (resnet18's 3x3/2 64 -> 128 at batch 32:
         * 3.14-3.30 -> 2.77-2.82 ms, Zen 5, 2 threads, `bench_qconv`, alternated) */
        for (int r = s->kh - s->stride < 0 ? 0 : s->kh - s->stride; r < s->kh; r++) {
            const int ih = ih0 + r, iw = iw0 + s->kw - 1 + PREFETCH_COLS * s->stride;
            if (ih >= 0 && ih < s->h && iw < s->w) {
                const uint8_t *src = x + (((size_t)b * s->h + ih) * s->w + iw) * 16;
                for (int cb = 0; cb < cb_in; cb++)
                    __builtin_prefetch(src + (size_t)cb * nhw * 16);
            }
        }
        for (int r = 0; r < s->kh; r++)
            for (int q = 0; q < s->kw; q++) {
                int ih = ih0 + r, iw = iw0 + q;
                uint8_t *o = row + (size_t)(r * s->kw + q) * cb_in * 16;
                if (ih < 0 || ih >= s->h || iw < 0 || iw >= s->w) {
                    memset(o, zp, (size_t)cb_in * 16);
                    continue;
                }
                const uint8_t *src = x + (((size_t)b * s->h + ih) * s->w + iw) * 16;
                for (int cb = 0; cb < cb_in; cb++)
                    memcpy(o + cb * 16, src + (size_t)cb * nhw * 16, 16);
            }
    }
}

/* the kw bytes of a window row starting at input column iw of a row w wide, zp outside it */
static inline void window_edge(uint8_t *o, const uint8_t *row, int iw, int kw, int w, int zp) {
    for (int q = 0; q < kw; q++)
        o[q] = iw + q >= 0 && iw + q < w ? row[iw + q] : (uint8_t)zp;
}

/* plain input (the network's, one byte per value): a run of one output row at a time, and per
 * input channel and window row the run's columns one after the other. A window inside the input
 * row is one 8-byte copy where it is at most 8 wide (the next tap overwrites the rest, the last
 * tap's is cleared with the row's tail); windows over the row's ends a byte at a time. Against a
 * column at a time, resnet18's stem at batch 1 on one thread (`bench_qconv`, Xeon, ten runs
 * alternating, medians): 2.91 -> 2.16 ms on the VNNI tile, about 3.2 -> 2.2 on AMX. */
static void im2col_rows_plain(const rn_qconv *c, int n, const uint8_t *x, int zp, long j0,
                              int count, uint8_t *dst) {
    const rn_conv_shape *s = &c->s;
    const size_t nhw = (size_t)n * s->h * s->w, kpad = (size_t)c->kpad;
    const long hw_out = (long)s->ho * s->wo;
    const int st = s->stride, kw = s->kw;
    const uint8_t *x_end = x + (size_t)s->cin * nhw;
    for (int i = 0; i < count;) {
        const long j = j0 + i;
        const int b = (int)(j / hw_out), rem = (int)(j % hw_out);
        const int oh = rem / s->wo, ow = rem % s->wo;
        const int len = s->wo - ow < count - i ? s->wo - ow : count - i;
        const int iw0 = ow * st - s->pad; /* column t's window starts at iw0 + t * st */
        /* columns [ta, tb) of the run have their whole window inside the row */
        int ta = iw0 < 0 ? (-iw0 + st - 1) / st : 0;
        int tb = s->w - kw - iw0 < 0 ? 0 : (s->w - kw - iw0) / st + 1;
        tb = tb > len ? len : tb;
        ta = ta > tb ? tb : ta;
        uint8_t *run = dst + (size_t)i * kpad;
        int k = 0;
        for (int ci = 0; ci < s->cin; ci++) {
            const uint8_t *plane = x + (size_t)ci * nhw + (size_t)b * s->h * s->w;
            for (int r = 0; r < s->kh; r++, k += kw) {
                const int ih = oh * st - s->pad + r;
                if (ih < 0 || ih >= s->h) {
                    for (int t = 0; t < len; t++)
                        memset(run + t * kpad + k, zp, (size_t)kw);
                    continue;
                }
                const uint8_t *row = plane + (size_t)ih * s->w;
                for (int t = 0; t < ta; t++)
                    window_edge(run + t * kpad + k, row, iw0 + t * st, kw, s->w, zp);
                if (ta < tb) { /* the windows inside the row */
                    const uint8_t *src = row + iw0 + ta * st;
                    uint8_t *o = run + ta * kpad + k;
                    int t = ta;
                    if (kw <= 8 && k + 8 <= (int)kpad)
                        for (; t < tb && src + 8 <= x_end; t++, src += st, o += kpad) {
                            uint64_t v;
                            memcpy(&v, src, 8);
                            memcpy(o, &v, 8);
                        }
                    for (; t < tb; t++, src += st, o += kpad)
                        memcpy(o, src, (size_t)kw);
                }
                for (int t = tb; t < len; t++)
                    window_edge(run + t * kpad + k, row, iw0 + t * st, kw, s->w, zp);
            }
        }
        for (int t = 0; t < len; t++)
            memset(run + t * kpad + k, 0, kpad - (size_t)k);
        i += len;
    }
}

/* ---- the driver ----------------------------------------------------------------------------- */

/* Columns per work item: a multiple of the kernel's width, whose im2col rows
 * take about 192 KB. */
static int block_cols(const rn_kernels *k, const rn_qconv *c) {
    int nj = k->q_nj;
    int cols = (192 * 1024 / c->kpad) / nj * nj;
    return cols < nj ? nj : cols > 32 * nj ? 32 * nj : cols;
}

/* Plain input copied in groups by the kernels' q_im2col_plain (qconv.h), where it can. */
static int plain_in_groups(const rn_kernels *k, const rn_qconv *c) {
    return k->q_im2col_plain && k->q_inplace && !c->in_c16 && c->sg == 1 &&
           3 * c->s.stride + c->s.kw <= 64;
}

/* A thread's workspace: a work item's rows, then q_im2col_plain's scratch if it runs, then a
 * gap of THREAD_GAP bytes no thread uses. Without the gap, the stem's rows and scratch next to
 * the next thread's rows ran its window copy at half speed on two threads, not on one (AMD Zen
 * 5, two cores on two dies, `bench_qconv -b 32 -l 0`: 12.2 ms, 8.9 with a gap of 64 KB, 11.8
 * with 4 KB, 11.7 with 16 KB): as if each core's prefetches into the other's lines took them
 * away from it. */
#define THREAD_GAP (64 * 1024)
static size_t thread_workspace(const rn_kernels *k, const rn_qconv *c) {
    size_t bytes = (size_t)block_cols(k, c) * (size_t)c->kpad;
    if (plain_in_groups(k, c))
        bytes += k->q_im2col_scratch(&c->s, c->kpad);
    return (bytes + 63) / 64 * 64 + THREAD_GAP;
}

size_t rn_qconv_workspace_bytes(const rn_kernels *k, const rn_qconv *c, int threads) {
    k = rn_kernels_or_default(k);
    return (size_t)threads * thread_workspace(k, c);
}

/* ---- windows read in place ------------------------------------------------------------------ */

/* A "same" stride-1 convolution (output as large as the input, pad (k - 1) / 2) on c16 input
 * reads the window of column j (pixel j of the flattened N x H x W) at pixel j - pad * (w + 1)
 * onwards: tap (r, q) of block cb is a fixed offset from there, the same for every column, and
 * the next column's window is the next pixel's. So the tiles read such windows in place (a_js 16,
 * a_goff a table of the taps' offsets), from image b's pixel (pad, pad) to (h - pad - 1, w - pad -
 * 1) in one run: the columns of that run whose windows reach the padding (the first and last pad
 * of each row) read the neighbouring rows' pixels instead, all inside the image, and are
 * multiplied again, copied with the padding, afterwards (`fix` runs), as are the first and last
 * pad rows. A 1x1 has no padding: every column in place. 3x3s on maps narrower than
 * INPLACE_MIN_W keep im2col (Zen 5, `bench_qconv`, resnet18's layers: 64 -> 64 at 56x56 batch
 * 32 6.67 -> 5.52-5.61 ms in place, 128 -> 128 at 28x28 level, 256 -> 256 at 14x14 4.5 -> 5.6,
 * its columns done twice a seventh of them); resnet50's 1x1s in place, `resnet bench
 * --precision int8`, alternated: batch 1 7.85-8.23 -> 7.35-7.85 ms, batch 32 219-228 -> 206-207. */
#define INPLACE_MIN_W 28
#define INPLACE_MAX_GROUPS 1152 /* K / 16 of the table: 3x3 on 2048 channels */
#define FIX_COLS_MAX (32 * 12)     /* block_cols' most columns for q_nj <= 12 */
#define FIX_RUNS_MAX (FIX_COLS_MAX + 2)

static int reads_in_place(const rn_kernels *k, const rn_qconv *c) {
    const rn_conv_shape *s = &c->s;
    return k->q_inplace && k->q_nj <= 12 && c->in_c16 && s->stride == 1 && s->kh == s->kw &&
           s->kh == 2 * s->pad + 1 && s->h > 2 * s->pad && (s->kh == 1 || s->w >= INPLACE_MIN_W) &&
           c->kpad / 16 <= INPLACE_MAX_GROUPS;
}

typedef struct col_run {
    long j;                   /* first column */
    int len;                  /* columns */
    int pos;                  /* where its im2col rows start in the work item's buffer */
} col_run;

/* The runs of columns of [j0, j0 + cols) whose windows reach the padding, in order. */
static int fix_runs(const rn_conv_shape *s, long j0, int cols, col_run *runs) {
    const int h = s->h, w = s->w, p = s->pad;
    const long hw = (long)h * w, j1 = j0 + cols;
    int nrun = 0, pos = 0;
    for (long j = j0; j < j1;) {
        const int oh = (int)(j % hw / w), ow = (int)(j % w);
        long end = j - ow + w; /* the row's end, or the interior's bounds */
        int fix = 1;
        if (oh >= p && oh < h - p) {
            if (ow < p)
                end = j - ow + p;
            else if (ow < w - p)
                end = j - ow + w - p, fix = 0;
        }
        end = end < j1 ? end : j1;
        if (fix) {
            if (nrun && runs[nrun - 1].j + runs[nrun - 1].len == j)
                runs[nrun - 1].len += (int)(end - j);
            else
                runs[nrun++] = (col_run){.j = j, .len = (int)(end - j), .pos = pos};
            pos += (int)(end - j);
        }
        j = end;
    }
    return nrun;
}

/* Tiles over columns [j, j + len) of t's channel blocks: column i's A at a + i * t->a_js. */
static void run_tiles(const rn_kernels *k, rn_qtile *t, const uint8_t *a, long j, int len,
                      uint8_t *y_blk, const uint8_t *r_blk) {
    for (int i = 0; i < len; i += k->q_nj) {
        t->nj = len - i < k->q_nj ? len - i : k->q_nj;
        t->a = a + (long)i * t->a_js;
        t->y = y_blk + (size_t)(j + i) * 16;
        t->r = r_blk ? r_blk + (size_t)(j + i) * 16 : NULL;
        k->qgemm(t);
    }
}

/* How rn_qconv_forward_team cuts its work into items for a team of `threads`. */
typedef struct work_split {
    long tiles;             /* column tiles of q_nj */
    long n_colblk;          /* column blocks */
    int units, n_cogrp;     /* channel tiles of a super-group, and groups of them */
    long per_sg, items;     /* items per super-group, and in all */
} work_split;

static work_split split_of(const rn_kernels *k, const rn_qconv *c, int n, int threads) {
    const rn_conv_shape *s = &c->s;
    const long ncols = (long)n * s->ho * s->wo;
    const int nb = block_cols(k, c);
    work_split w;
    /* column blocks of whole tiles, at most nb columns, as many per thread, their tiles as even
     * as whole tiles allow (block i: tiles [i * T / blocks, (i + 1) * T / blocks)); blocks of one
     * width but the last had left resnet18's 14x14 layers at batch 1 120 columns on one thread
     * and 76 on the other */
    w.tiles = (ncols + k->q_nj - 1) / k->q_nj;
    w.n_colblk = (w.tiles + nb / k->q_nj - 1) / (nb / k->q_nj);
    if (w.n_colblk > threads && w.n_colblk % threads)
        w.n_colblk = (w.n_colblk + threads - 1) / threads * threads;
    /* split the output channels too when there are few column blocks (of all super-groups) */
    w.units = (c->cb_out + k->q_ncb - 1) / k->q_ncb;
    const long blocks = w.n_colblk * c->sg;
    w.n_cogrp = blocks >= 2 * threads ? 1 : (int)((2 * threads + blocks - 1) / blocks);
    w.n_cogrp = w.n_cogrp > w.units ? w.units : w.n_cogrp;
    w.per_sg = w.n_colblk * w.n_cogrp;
    w.items = w.per_sg * c->sg;
    return w;
}

long rn_qconv_items(const rn_kernels *k, const rn_qconv *c, int n, int threads) {
    return split_of(rn_kernels_or_default(k), c, n, threads < 1 ? 1 : threads).items;
}

void rn_qconv_forward_team(const rn_kernels *k, const rn_qconv *c, int n, const uint8_t *x,
                           int in_zp, const uint8_t *res, uint8_t *y, uint8_t *workspace,
                           rn_claims claims, rn_team team) {
    k = rn_kernels_or_default(k);
    const rn_conv_shape *s = &c->s;
    long ncols = (long)n * s->ho * s->wo;
    long y_bs = ncols * 16;
    const int nb = block_cols(k, c), groups = c->kpad / 16;
    const work_split split = split_of(k, c, n, team.size);
    const long tiles = split.tiles, n_colblk = split.n_colblk, per_sg = split.per_sg;
    const int units = split.units, n_cogrp = split.n_cogrp;
    /* super-group q reads input blocks [q * cb_in, ...) and writes output blocks
     * [q * cb_out, ...): in c16 each block is a whole plane of the tensor */
    const size_t nhw = (size_t)n * s->h * s->w;
    const size_t x_qs = c->sg > 1 ? (size_t)rn_q_cblocks(s->cin) * nhw * 16 : 0;
    /* windows in place: group g = (r * kw + q) * cb_in + cb at tap (r, q)'s pixel in block cb */
    const int inplace = reads_in_place(k, c), groups_plain = plain_in_groups(k, c);
    const size_t ws_thread = thread_workspace(k, c);
    long goff[INPLACE_MAX_GROUPS];
    if (inplace) {
        const int cb_in = rn_q_cblocks(s->cin);
        for (int g = 0; g < groups; g++) {
            const int tap = g / cb_in, cb = g % cb_in;
            goff[g] = (long)((size_t)cb * nhw + (size_t)(tap / s->kw) * s->w + tap % s->kw) * 16;
        }
    }
    const long hw = (long)s->h * s->w, back = (long)s->pad * (s->w + 1); /* window origin: j - back */
    /* channel-group major: with few column blocks each thread takes all columns of some
     * channels, not some columns of all channels (blocks can be unequal); each thread its own
     * share, then what is left of the others' (claims: rn_claims, or static shares) */
    rn_claim_walk walk = rn_claims_walk(claims, team, split.items);
    for (long it; (it = rn_claims_next(&walk)) >= 0;) {
        int q = (int)(it / per_sg);
        long cbk = it % per_sg % n_colblk;
        int grp = (int)(it % per_sg / n_colblk);
        long j0 = tiles * cbk / n_colblk * k->q_nj, j1 = tiles * (cbk + 1) / n_colblk * k->q_nj;
        int cols = (int)((j1 < ncols ? j1 : ncols) - j0);
        const uint8_t *xq = x + q * x_qs;
        /* the window of each column as one row of K bytes; in place, only the columns of
         * the fix runs */
        uint8_t *rows = workspace + (size_t)team.id * ws_thread;
        col_run fix[FIX_RUNS_MAX];
        long fix_off[FIX_COLS_MAX]; /* the fix runs' columns in the rows: their outputs' offsets */
        int nfix = 0, fix_cols = 0;
        if (inplace) {
            nfix = fix_runs(s, j0, cols, fix);
            for (int f = 0; f < nfix; f++)
                for (int i = 0; i < fix[f].len; i++)
                    fix_off[fix_cols++] = (fix[f].j + i) * 16;
        } else if (c->in_c16) {
            im2col_rows_c16(c, n, xq, in_zp, j0, cols, rows);
        } else if (groups_plain) {
            rn_conv_shape sn = *s;
            sn.n = n;
            k->q_im2col_plain(&sn, c->kpad, xq, in_zp, j0, cols, rows, (long)cols * 16,
                              rows + (size_t)nb * c->kpad);
        } else {
            im2col_rows_plain(c, n, xq, in_zp, j0, cols, rows);
        }
        rn_qtile t = {.groups = groups, .w_bs = (long)groups * 256, .y_bs = y_bs};
        int u0 = (int)((long)units * grp / n_cogrp), u1 = (int)((long)units * (grp + 1) / n_cogrp);
        for (int u = u0; u < u1; u++) {
            int b0 = u * k->q_ncb, qb0 = q * c->cb_out + b0; /* qb0: the block in the tensor */
            t.ncb = c->cb_out - b0 < k->q_ncb ? c->cb_out - b0 : k->q_ncb;
            rn_qreq rq = c->rq;
            rq.comp += qb0 * 16;
            rq.mult += qb0 * 16;
            rq.bias += qb0 * 16;
            t.rq = &rq;
            t.w = c->w + (size_t)qb0 * t.w_bs;
            uint8_t *y_blk = y + (size_t)qb0 * y_bs;
            const uint8_t *r_blk = res ? res + (size_t)qb0 * y_bs : NULL;
            if (groups_plain) {
                t.a_js = 16, t.a_gs = (long)cols * 16, t.a_goff = NULL;
                run_tiles(k, &t, rows, j0, cols, y_blk, r_blk);
                continue;
            }
            if (!inplace) {
                t.a_js = c->kpad, t.a_gs = 16, t.a_goff = NULL;
                run_tiles(k, &t, rows, j0, cols, y_blk, r_blk);
                continue;
            }
            /* each image's run in place, then the fix runs over what it wrote there */
            t.a_js = 16, t.a_gs = 0, t.a_goff = goff, t.y_joff = NULL;
            for (long b = j0 / hw; b * hw < j0 + cols; b++) {
                long lo = b * hw + back, hi = (b + 1) * hw - back;
                lo = lo > j0 ? lo : j0;
                hi = hi < j0 + cols ? hi : j0 + cols;
                if (lo < hi)
                    run_tiles(k, &t, xq + (size_t)(lo - back) * 16, lo, (int)(hi - lo), y_blk,
                              r_blk);
            }
            if (u == u0) /* the fix runs' windows, from input the tiles have just read */
                for (int f = 0; f < nfix; f++)
                    im2col_rows_c16(c, n, xq, in_zp, fix[f].j, fix[f].len,
                                    rows + (size_t)fix[f].pos * c->kpad);
            /* the fix runs' columns side by side in the rows (pairs of columns, a row's last and
             * the next one's first, on most rows), as whole tiles, each column written where it
             * belongs: run by run, most tiles had been of 2 columns, and resnet18's 3x3 layers
             * on 56x56 and 28x28 maps had spent 15-18% of their time on the fix runs */
            t.a_js = c->kpad, t.a_gs = 16, t.a_goff = NULL;
            t.y = y_blk, t.r = r_blk;
            for (int i = 0; i < fix_cols; i += k->q_nj) {
                t.nj = fix_cols - i < k->q_nj ? fix_cols - i : k->q_nj;
                t.a = rows + (size_t)i * c->kpad;
                t.y_joff = fix_off + i;
                k->qgemm(&t);
            }
        }
    }
}

void rn_qconv_forward(const rn_kernels *k, const rn_qconv *c, int n, const uint8_t *x, int in_zp,
                      const uint8_t *res, uint8_t *y, uint8_t *workspace) {
    const int threads = rn_threads();
    /* claims on the stack for up to this many items, else static shares */
    uint32_t flags[4096] = {0};
    const rn_claims claims = {.flags = flags, .cap = 4096, .gen = 1};
#pragma omp parallel num_threads(threads) if (threads > 1)
    rn_qconv_forward_team(k, c, n, x, in_zp, res, y, workspace, claims, rn_team_here());
}

/* ---- the portable kernel -------------------------------------------------------------------- */

void rn_qgemm_portable(const rn_qtile *t) {
    for (int b = 0; b < t->ncb; b++)
        for (int j = 0; j < t->nj; j++) {
            int32_t acc[16] = {0};
            for (int g = 0; g < t->groups; g++) {
                const uint8_t *a = t->a + j * t->a_js + rn_qtile_group_at(t, g);
                const int8_t *w = t->w + b * t->w_bs + (long)g * 256;
                for (int q = 0; q < 4; q++)
                    for (int c = 0; c < 16; c++)
                        for (int u = 0; u < 4; u++)
                            acc[c] += a[q * 4 + u] * w[q * 64 + c * 4 + u];
            }
            uint8_t *y = t->y + b * t->y_bs + rn_qtile_col_at(t, j);
            const uint8_t *r = t->r ? t->r + b * t->y_bs + rn_qtile_col_at(t, j) : NULL;
            for (int c = 0; c < 16; c++)
                y[c] = rn_requant(t->rq, b * 16 + c, acc[c], r ? r + c : NULL);
        }
}

/* ---- the other int8 ops --------------------------------------------------------------------- */

/* The oracle: y[i] = x[i] * inv quantized with zero point zp, i < count. */
static void quantize_run(const float *x, size_t count, float inv, int zp, uint8_t *y) {
    /* Adding and subtracting 1.5 * 2^23 rounds |v| <= RN_Q_CLAMP to an integer, half to even,
     * as nearbyintf does in the default rounding mode, without a libm call per value. (gcc 12
     * at -O2 leaves the loop scalar: -ftrapping-math keeps the float clamps branches; hence the
     * descriptors' q_quantize.) */
    const float magic = 12582912.0f;
    for (size_t i = 0; i < count; i++) {
        float v = x[i] * inv;
        v = v > -RN_Q_CLAMP ? v : -RN_Q_CLAMP; /* NaN -> -RN_Q_CLAMP -> 0 */
        v = v < RN_Q_CLAMP ? v : RN_Q_CLAMP;
        int qv = (int)((v + magic) - magic) + zp;
        y[i] = (uint8_t)(qv < 0 ? 0 : qv > RN_Q_MAX ? RN_Q_MAX : qv);
    }
}

void rn_quantize_input_team(const rn_kernels *k, const float *x, int n, int c, int h, int w,
                            rn_qparam q, uint8_t *y, rn_team team) {
    k = rn_kernels_or_default(k);
    const rn_qquantize_fn run = k->q_quantize ? k->q_quantize : quantize_run;
    const size_t hw = (size_t)h * w;
    const float inv = 1.0f / q.scale;
    /* each thread an equal run of the values in x's order (by planes, a batch of one image's 3
     * planes had left one thread 2 of them); small inputs on the first thread alone */
    const size_t total = (size_t)n * c * hw;
    if (total <= 65536)
        team = (rn_team){.id = team.id, .size = 1};
    if (team.id >= team.size)
        return;
    const size_t hi = total * (size_t)(team.id + 1) / (size_t)team.size;
    for (size_t p = total * (size_t)team.id / (size_t)team.size; p < hi;) {
        const size_t pl = p / hw, i0 = p % hw, i1 = hw < i0 + (hi - p) ? hw : i0 + (hi - p);
        const size_t b = pl / (size_t)c, ch = pl % (size_t)c;
        run(x + pl * hw + i0, i1 - i0, inv, q.zp, y + (ch * (size_t)n + b) * hw + i0);
        p += i1 - i0;
    }
}

void rn_quantize_input(const rn_kernels *k, const float *x, int n, int c, int h, int w,
                       rn_qparam q, uint8_t *y) {
    const int threads = (size_t)n * c * h * w > 65536 ? rn_threads() : 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
    rn_quantize_input_team(k, x, n, c, h, w, q, y, rn_team_here());
}

void rn_qmaxpool_c16_team(const rn_kernels *kd, const uint8_t *x, int c, int n, int h, int w,
                          int k, int stride, int pad, int ho, int wo, uint8_t *y, rn_team team) {
    kd = rn_kernels_or_default(kd);
    const rn_qmaxpool_row_fn fast = k == 3 && stride == 2 ? kd->q_maxpool_row : NULL;
    long planes = (long)rn_q_cblocks(c) * n, pl0, pl1;
    rn_team_share(team, planes, &pl0, &pl1);
    /* per output row, the window rows' maximum of each input pixel first (vm), then each
     * output pixel's maximum over its window's columns of vm: 3 + 3 maxima of 16 bytes a pixel
     * for 3x3/2 instead of 9 (on kd's vectors where it has them: the kernels' vm is padded) */
    uint8_t vm[fast ? pad + w + 2 * wo + 8 : w][16];
    for (long pl = pl0; pl < pl1; pl++) {
        const uint8_t *src = x + (size_t)pl * h * w * 16;
        uint8_t *dst = y + (size_t)pl * ho * wo * 16;
        for (int oh = 0; oh < ho; oh++) {
            int ih0 = oh * stride - pad, ih1 = ih0 + k; /* the window's rows inside the map */
            ih0 = ih0 > 0 ? ih0 : 0;
            ih1 = ih1 < h ? ih1 : h;
            if (fast) {
                const uint8_t *rows[3];
                for (int ih = ih0; ih < ih1; ih++)
                    rows[ih - ih0] = src + (size_t)ih * w * 16;
                fast(rows, ih1 > ih0 ? ih1 - ih0 : 0, w, pad, wo, vm[0],
                     dst + (size_t)oh * wo * 16);
                continue;
            }
            memset(vm, 0, (size_t)w * 16);
            for (int ih = ih0; ih < ih1; ih++)
                for (int iw = 0; iw < w; iw++) {
                    const uint8_t *v = src + ((size_t)ih * w + iw) * 16;
                    for (int i = 0; i < 16; i++)
                        vm[iw][i] = v[i] > vm[iw][i] ? v[i] : vm[iw][i];
                }
            for (int ow = 0; ow < wo; ow++) {
                int iw0 = ow * stride - pad, iw1 = iw0 + k;
                iw0 = iw0 > 0 ? iw0 : 0;
                iw1 = iw1 < w ? iw1 : w;
                uint8_t m[16] = {0};
                for (int iw = iw0; iw < iw1; iw++)
                    for (int i = 0; i < 16; i++)
                        m[i] = vm[iw][i] > m[i] ? vm[iw][i] : m[i];
                memcpy(dst + ((size_t)oh * wo + ow) * 16, m, 16);
            }
        }
    }
}

void rn_qmaxpool_c16(const rn_kernels *kd, const uint8_t *x, int c, int n, int h, int w, int k,
                     int stride, int pad, int ho, int wo, uint8_t *y) {
    const int threads = (long)rn_q_cblocks(c) * n > 1 ? rn_threads() : 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
    rn_qmaxpool_c16_team(kd, x, c, n, h, w, k, stride, pad, ho, wo, y, rn_team_here());
}

void rn_qavgpool_c16_team(const uint8_t *x, int c, int n, int hw, rn_qparam q, float *y,
                          rn_team team) {
    /* a block's 16 channels side by side, one pixel (16 bytes) a step: read channel by channel
     * (16 bytes apart), resnet50's 2048 x 7 x 7 took 50 us of the int8 pass at batch 1 */
    const size_t nhw = (size_t)n * hw;
    long cb0, cb1;
    rn_team_share(team, rn_q_cblocks(c), &cb0, &cb1);
    for (int cb = (int)cb0; cb < (int)cb1; cb++)
        for (int b = 0; b < n; b++) {
            const uint8_t *px = x + ((size_t)cb * nhw + (size_t)b * hw) * 16;
            int32_t sum[16] = {0}; /* hw * 255 at most: hw < 2^23 */
            for (int p = 0; p < hw; p++)
                for (int i = 0; i < 16; i++)
                    sum[i] += px[(size_t)p * 16 + i];
            for (int i = 0; i < 16 && cb * 16 + i < c; i++)
                y[(size_t)(cb * 16 + i) * n + b] =
                    (float)((double)((int64_t)sum[i] - (int64_t)q.zp * hw) * q.scale / (double)hw);
        }
}

void rn_qavgpool_c16(const uint8_t *x, int c, int n, int hw, rn_qparam q, float *y) {
    rn_qavgpool_c16_team(x, c, n, hw, q, y, (rn_team){.id = 0, .size = 1});
}
