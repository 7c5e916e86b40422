/*
 * conv_wgrad.c - the direct weight gradient (contract in conv_wgrad.h; the
 * strip kernels' contract in direct.h).
 *
 * dw[co][ci][ki][kj] = sum over pixels of dy[co] x x[ci] shifted by the tap.
 * With the input padded (zeros around) and split into its stride x stride
 * phases (phase (a, b): every stride-th row from a and column from b, a
 * plane of hph x wph), tap (ki, kj) of output pixel (oh, ow) is phase
 * (ki % stride, kj % stride) at row oh + ki / stride, column ow + kj / stride;
 * the columns kj of one phase are consecutive there. So a strip reads the
 * padded input and dy (its rows as they are) along the output rows, and no
 * im2col matrix is written. A unit (input channel, row: window row ki and up
 * to RN_WGRAD_KW_MAX columns of one phase, a group of RN_WGRAD_CO output
 * channels) keeps 8-lane partial sums of its taps; each block's strip
 * starts from zero and is added to them, and the lanes are added at the end
 * in a fixed order. The images go a block at a time (padded by all threads,
 * then the units shared out), an image larger than a block a segment of its
 * rows at a time: every sum runs in an order fixed by the shape alone,
 * bitwise the same on any thread count. dy is copied (into rows of wph,
 * zeros past wo, so that a segment's rows are one run) only where cout is
 * not a whole number of groups, or where its rows would waste more vector
 * lanes than that padding (copy_dy below).
 */
#include "ops/conv_wgrad.h"

#include <string.h>

#include "core/mem.h"
#include "ops/direct.h"

#define ALIGN_FLOATS 16 /* workspace pieces start 64-byte aligned */

static size_t align_up(size_t n) { return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }

/* The direct weight gradient takes windows (not 1x1) on few input channels, where the GEMM's
 * K (cin x taps) is too short to share out or to repay packing, or, at stride 1, on few of
 * both, where an im2col row feeds only 2 x cout FLOPs of the GEMM and costs about as much to
 * write and read. Measured (batch 128 unless said, 2 threads, AMD EPYC Zen 3, the two routes
 * alternated in one process, medians of 7-9; effective GFLOP/s, GEMM -> direct): the stems
 * 7x7/2 1->64 @96 27 -> 66, @28 (batch 256) 20 -> 44, 7x7/2 3->64 @224 (batch 32) 64 -> 84,
 * 3x3 1->16 @28 6 -> 28, 3x3 3->64 @32 28 -> 37; 3x3 8->8 @28 34 -> 48, 8->16 @28 52 -> 53,
 * 16->16 @28 57-65 -> 64-68. Not taken: 16->16 @14 80 -> 73, 32->32 @14 81-87 -> 72-76
 * (copying dy into rows of the padded width, as the strips then did, and the short runs
 * of a small map, cost more than the GEMM's im2col there), and strided 3x3 windows (8->16
 * @28 20 -> 13, 4->16 @28 13 -> 12: the input's phases are scattered pixel by pixel). */
#define WGRAD_DIRECT_MAX_CIN 8        /* any cout up to WGRAD_DIRECT_MAX_COUT */
#define WGRAD_DIRECT_MAX_COUT 64
#define WGRAD_DIRECT_MAX_NARROW 16    /* or cin and cout up to this, */
#define WGRAD_DIRECT_MIN_WIDTH 24     /* on maps at least this wide (stride 1) */
#define WGRAD_DIRECT_MAX_STRIDE 2     /* the input split into stride x stride phases */
#define WGRAD_DIRECT_MIN_TAPS_STRIDED 25 /* strided: 5x5 windows and wider (the stems) */
#define WGRAD_BLOCK_FLOATS (1 << 17) /* padded inputs and dy of a block of images: 512 KB */
/* A segment's runs of every plane of one image, read by all its strips before the next:
 * 256 KB, from L2. Whole planes (the 7x7/2 stem at 224: 64 planes of dy, 3.3 MB an image)
 * went through the strips from L3, once per strip row and input channel (63 times). */
#define WGRAD_SEGMENT_FLOATS (1 << 16)
/* On kernels that can (AVX-512's 16 lanes), dy read in place unless its rows waste more lanes
 * than a copy into rows of the padded width would, on a layer whose products outweigh the copy
 * (cin x taps at least this): in place, 3x3 1->16 at 28x28 1.05 -> 0.54 ms, 8->8 2.1 -> 1.7,
 * 3->64 at 32x32 10.5 -> 6.9, the 7x7/2 stems 8.3 -> 7.7 (28x28, batch 256), 36 -> 31 (96x96,
 * batch 128), 117 -> 101 (224x224, batch 32; 170 before segments); Xeon SPR, 2 threads,
 * interleaved runs, batch 128 unless said */
#define WGRAD_ROW_LANES 16
#define WGRAD_COPY_MIN_K 128

/* Floats of a block's padded inputs, and of its copy of dy (when made). */
static size_t block_floats(const rn_conv_shape *s, const conv_wgrad_plan *d) {
    return (size_t)d->block * s->cin * d->phases * d->xplane +
           (d->copy_dy ? (size_t)d->block * d->co4 * d->dplane : 0);
}

int conv_wgrad_plan_for(const rn_kernels *k, const rn_conv_shape *s, conv_wgrad_plan *d) {
    const int narrow = s->cout <= WGRAD_DIRECT_MAX_COUT &&
                       (s->cin <= WGRAD_DIRECT_MAX_CIN ||
                        (s->cin <= WGRAD_DIRECT_MAX_NARROW && s->cout <= WGRAD_DIRECT_MAX_NARROW &&
                         s->wo >= WGRAD_DIRECT_MIN_WIDTH && s->stride == 1));
    if (!k->wgrad || s->groups != 1 || s->kh * s->kw == 1 || s->stride > WGRAD_DIRECT_MAX_STRIDE ||
        (s->stride > 1 && s->kh * s->kw < WGRAD_DIRECT_MIN_TAPS_STRIDED) || !narrow)
        return 0;
    const int st = s->stride;
    d->rows = 0;
    for (int ki = 0; ki < s->kh; ki++)
        for (int b = 0; b < st && b < s->kw; b++) {
            const int n = (s->kw - b + st - 1) / st; /* columns b, b + st, ... */
            for (int t0 = 0; t0 < n; t0 += RN_WGRAD_KW_MAX) {
                if (d->rows == CONV_WGRAD_ROWS_MAX)
                    return 0;
                const int taps = n - t0 < RN_WGRAD_KW_MAX ? n - t0 : RN_WGRAD_KW_MAX;
                d->row[d->rows++] = (conv_wgrad_row){(unsigned char)ki, (unsigned char)b,
                                                (unsigned char)t0, (unsigned char)taps};
            }
        }
    d->phases = st * st;
    d->hph = (s->h + 2 * s->pad + st - 1) / st;
    d->wph = (s->w + 2 * s->pad + st - 1) / st;
    /* a strip reads up to (kh - 1) / st rows and (kw - 1) / st columns past its pixel's
     * position, inside the phase's plane */
    d->co4 = (s->cout + RN_WGRAD_CO - 1) / RN_WGRAD_CO * RN_WGRAD_CO;
    /* dy copied where the kernels read it so (AVX2, portable: the summation order of the
     * fmnist-fast recipe's measured runs; read in place it ended at 0.9390 test top-1, below
     * its 0.94, with RN_ISA=avx2: the recipe sits on that edge), where cout is not whole
     * groups, or where its rows are short of whole vectors by more than the padded width and
     * the copy is a small part of the work (3x3 16->16 at 28x28: 7.1 copied, 7.4 in place,
     * 7.2 before rows were read in place; 20% slower in place on AVX2, whose rows of 28 end
     * on a 4-wide masked load) */
    d->copy_dy = !k->wgrad_rows || d->co4 != s->cout ||
                 ((s->wo + WGRAD_ROW_LANES - 1) / WGRAD_ROW_LANES * WGRAD_ROW_LANES > d->wph &&
                  s->cin * s->kh * s->kw >= WGRAD_COPY_MIN_K);
    /* copied, dy's rows are wph apart (zeros past wo), a segment of rows one run: the strips
     * read up to (kw - 1) / st floats past the last row of a phase's plane */
    d->dplane = (size_t)s->ho * (d->copy_dy ? (size_t)d->wph : (size_t)s->wo);
    d->xplane = align_up((size_t)d->hph * d->wph + (size_t)((s->kw - 1) / st));
    d->units = s->cin * d->rows * (d->co4 / RN_WGRAD_CO);
    const size_t per_image = (size_t)s->cin * d->phases * d->xplane + (size_t)d->co4 * d->dplane;
    d->block = WGRAD_BLOCK_FLOATS / per_image < 1 ? 1 : (int)(WGRAD_BLOCK_FLOATS / per_image);
    if (d->block > s->n)
        d->block = s->n;
    /* an image larger than a block: its rows go a segment at a time, every strip of a segment
     * before the next, the block's sums kept apart meanwhile */
    d->seg_rows = s->ho;
    if (per_image > WGRAD_BLOCK_FLOATS) {
        const size_t row =
            (size_t)s->cin * d->phases * d->wph + (size_t)d->co4 * (d->dplane / s->ho);
        const size_t seg = WGRAD_SEGMENT_FLOATS / row;
        if (seg < (size_t)s->ho)
            d->seg_rows = seg < 1 ? 1 : (int)seg;
    }
    d->acc_floats = (size_t)d->units * RN_WGRAD_CO * RN_WGRAD_KW_MAX * 8;
    d->part_floats = d->seg_rows < s->ho ? d->acc_floats : 0;
    d->floats = align_up(block_floats(s, d)) + d->acc_floats + d->part_floats;
    return 1;
}

/* The planes of images [b0, b0 + nb): x's phases at xp ((image, ci, phase)
 * planes of xplane floats), and, where the plan copies dy, dy's at dp
 * ((image, co) planes of dplane, rows wph apart); the zeros around them are
 * written once, by the caller (worksharing). */
static void wgrad_pad_block(const rn_conv_shape *s, const conv_wgrad_plan *d, const float *x,
                            const float *dy, int b0, int nb, float *xp, float *dp) {
    const size_t in_plane = (size_t)s->h * s->w, out_plane = (size_t)s->ho * s->wo;
    const long pix_in = (long)s->n * (long)in_plane, pix_out = (long)s->n * (long)out_plane;
    const long xplanes = (long)nb * s->cin;
    const long planes = xplanes + (d->copy_dy ? (long)nb * s->cout : 0);
    const int st = s->stride;
#pragma omp for schedule(static)
    for (long q = 0; q < planes; q++) {
        if (q < xplanes) {
            const int b = (int)(q / s->cin), ci = (int)(q % s->cin);
            const float *src = x + ci * pix_in + (size_t)(b0 + b) * in_plane;
            float *dst = xp + ((size_t)b * s->cin + ci) * d->phases * d->xplane;
            for (int y = 0; y < s->h; y++) {
                const int py = y + s->pad;
                if (st == 1) {
                    rn_copy_floats(dst + (size_t)py * d->wph + s->pad, src + (size_t)y * s->w,
                                   s->w);
                    continue;
                }
                /* each column phase b: the row's pixels i with (i + pad) % st == b, every
                 * st-th from the first, into consecutive places of the phase's row. Pixel by
                 * pixel with a division each, this copy was a sixth of the stems' weight
                 * gradient: 7x7/2 3->64 at 224x224 batch 16 24.9 -> 22.5 ms on 2 threads
                 * (45.5 -> 42.7 on one), 1->64 at 96x96 batch 128 16.3-16.6 -> 14.9-15.1, at
                 * 28x28 batch 256 3.50-3.56 -> 3.29-3.38 (AMD EPYC Zen 5, medians of 9, two
                 * rounds alternated) */
                const float *row = src + (size_t)y * s->w;
                float *prow = dst + (size_t)(py % st * st) * d->xplane + (size_t)(py / st) * d->wph;
                for (int b = 0; b < st; b++) {
                    const int i0 = ((b - s->pad) % st + st) % st;
                    float *o = prow + (size_t)b * d->xplane + (i0 + s->pad) / st;
                    for (int i = i0, q = 0; i < s->w; i += st, q++)
                        o[q] = row[i];
                }
            }
        } else {
            const int b = (int)((q - xplanes) / s->cout), co = (int)((q - xplanes) % s->cout);
            const float *src = dy + co * pix_out + (size_t)(b0 + b) * out_plane;
            float *dst = dp + ((size_t)b * d->co4 + co) * d->dplane;
            for (int y = 0; y < s->ho; y++)
                rn_copy_floats(dst + (size_t)y * d->wph, src + (size_t)y * s->wo, s->wo);
        }
    }
}

void conv_wgrad_run(const rn_kernels *k, const rn_conv_shape *s, const conv_wgrad_plan *d,
                    const float *x, const float *dy, float *dw, float *ws) {
    const int per_unit = RN_WGRAD_CO * RN_WGRAD_KW_MAX * 8;
    const int st = s->stride;
    const size_t xfloats = (size_t)d->block * s->cin * d->phases * d->xplane;
    const size_t zeros = align_up(block_floats(s, d)) + d->acc_floats;
    float *xp = ws, *dp = ws + xfloats, *acc = ws + align_up(block_floats(s, d));
    float *parts = acc + d->acc_floats; /* the block's sums, when segmented */
    const rn_wgrad_fn strip = k->wgrad;
    const size_t out_plane = (size_t)s->ho * s->wo;
    /* dy: its copy (channels past cout zero), or as it is */
    const ptrdiff_t ldd = d->copy_dy ? (ptrdiff_t)d->dplane : (ptrdiff_t)(s->n * out_plane);
    const ptrdiff_t dstep = d->copy_dy ? (ptrdiff_t)(d->co4 * d->dplane) : (ptrdiff_t)out_plane;
    const ptrdiff_t dld = d->copy_dy ? d->wph : s->wo;
    /* zeros: the padding, the channels past cout, the partial sums */
#pragma omp for schedule(static)
    for (long i = 0; i < (long)zeros; i += 4096)
        memset(ws + i, 0, ((size_t)i + 4096 < zeros ? 4096 : zeros - (size_t)i) * sizeof(float));
    for (int b0 = 0; b0 < s->n; b0 += d->block) {
        const int nb = s->n - b0 < d->block ? s->n - b0 : d->block;
        const float *dblock = d->copy_dy ? dp : dy + (size_t)b0 * out_plane;
        wgrad_pad_block(s, d, x, dy, b0, nb, xp, dp); /* ends with a barrier */
        for (int r0 = 0; r0 < s->ho; r0 += d->seg_rows) {
            const int last = r0 + d->seg_rows >= s->ho;
            /* static and nowait: each thread keeps its units from one segment to the next */
#pragma omp for schedule(static) nowait
            for (int u = 0; u < d->units; u++) {
                /* unit u: input channel ci, row r, output channels RN_WGRAD_CO * g ..; the
                 * input channels and rows vary fastest, so that a thread's strips in a row
                 * read the same four channels of dy */
                const int ci = u % s->cin, r = u / s->cin % d->rows, g = u / s->cin / d->rows;
                const conv_wgrad_row *w = &d->row[r];
                const int ph = w->ki % st * st + w->b;
                float *a = acc + (size_t)u * per_unit;
                float own[RN_WGRAD_CO * RN_WGRAD_KW_MAX * 8];
                float *part = d->part_floats ? parts + (size_t)u * per_unit : own;
                if (r0 == 0)
                    memset(part, 0, sizeof own);
                const int nrows = last ? s->ho - r0 : d->seg_rows;
                /* dy copied: the segment's rows one run of nrows * wph positions */
                const rn_wgrad_strip sp = {
                    .dy = dblock + (size_t)g * RN_WGRAD_CO * ldd + (size_t)r0 * dld,
                    .ldd = ldd, .dstep = dstep, .dld = dld,
                    .x = xp + ((size_t)ci * d->phases + ph) * d->xplane +
                         (size_t)(w->ki / st + r0) * d->wph + w->t0,
                    .xstep = (ptrdiff_t)((size_t)s->cin * d->phases * d->xplane), .xld = d->wph,
                    .wid = d->copy_dy ? nrows * d->wph : s->wo, .nrows = d->copy_dy ? 1 : nrows,
                    .nimg = nb, .kw = w->taps};
                strip(&sp, part); /* the block's sums, then added to the whole's */
                if (last)
                    for (int i = 0; i < RN_WGRAD_CO * w->taps * 8; i++)
                        a[i] += part[i];
            }
        }
#pragma omp barrier
    }
    /* the lanes added: dw (cout, cin, kh, kw) */
#pragma omp for schedule(static)
    for (int u = 0; u < d->units; u++) {
        const int ci = u % s->cin, r = u / s->cin % d->rows, g = u / s->cin / d->rows;
        const conv_wgrad_row *w = &d->row[r];
        const float *a = acc + (size_t)u * per_unit;
        for (int c = 0; c < RN_WGRAD_CO && g * RN_WGRAD_CO + c < s->cout; c++)
            for (int j = 0; j < w->taps; j++) {
                const float *l = a + (c * w->taps + j) * 8;
                const int co = g * RN_WGRAD_CO + c, kj = w->b + st * (w->t0 + j);
                dw[(((size_t)co * s->cin + ci) * s->kh + w->ki) * s->kw + kj] =
                    ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
            }
    }
}

void rn_wgrad_strip_portable(const rn_wgrad_strip *s, float *acc) {
    for (int c = 0; c < RN_WGRAD_CO; c++)
        for (int j = 0; j < s->kw; j++)
            for (int b = 0; b < s->nimg; b++)
                for (int r = 0; r < s->nrows; r++) {
                    const float *dy = s->dy + b * s->dstep + c * s->ldd + r * s->dld;
                    const float *x = s->x + b * s->xstep + r * s->xld + j;
                    for (int p = 0; p < s->wid; p++)
                        acc[(c * s->kw + j) * 8 + p % 8] += dy[p] * x[p];
                }
}
