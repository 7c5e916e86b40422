/*
 * conv_wgrad.c - the direct weight gradient (contract in conv_wgrad.h; the
 * strip kernels' contract in direct.h).
 *
 * dw[co][ci][ki][kj] = sum over pixels of dy[co] x x[ci] shifted by the tap.
 * With the input padded (zeros around) and split into its stride x stride
 * phases (phase (a, b): every stride-th row from a and column from b, a
 * plane of hph x wph), and dy laid out on rows of wph (zeros past wo), tap
 * (ki, kj) is phase (ki % stride, kj % stride) at the fixed offset
 * (ki / stride) * wph + kj / stride along one run of len positions per
 * image, for every output pixel at once; the columns kj of one phase are
 * consecutive there. So the strips read the input in place, and no im2col
 * matrix is written. A unit (input channel, row: window row ki and up to
 * RN_WGRAD_KW_MAX columns of one phase, a group of RN_WGRAD_CO output
 * channels) keeps 8-lane partial sums of its taps; each block's strip
 * starts from zero and is added to them, and the lanes are added at the end
 * in a fixed order. The images go a block at a time (padded by all threads,
 * then the units shared out): every sum runs in an order fixed by the shape
 * alone, bitwise the same on any thread count.
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
 * (copying dy into rows of the padded width, and the short runs of a small map, cost more
 * than the GEMM's im2col there), and strided 3x3 windows (8->16 @28 20 -> 13, 4->16 @28
 * 13 -> 12: the input's phases are scattered pixel by pixel). */
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
    d->len = (s->ho * d->wph + 7) / 8 * 8;
    d->dplane = (size_t)d->len;
    /* a strip reads up to (kh - 1) / st rows and (kw - 1) / st columns past its positions */
    size_t xplane = (size_t)d->len + (size_t)((s->kh - 1) / st) * d->wph +
                    (size_t)((s->kw - 1) / st) + 1;
    if (xplane < (size_t)d->hph * d->wph)
        xplane = (size_t)d->hph * d->wph;
    d->xplane = align_up(xplane);
    d->co4 = (s->cout + RN_WGRAD_CO - 1) / RN_WGRAD_CO * RN_WGRAD_CO;
    d->units = s->cin * d->rows * (d->co4 / RN_WGRAD_CO);
    const size_t per_image = (size_t)s->cin * d->phases * d->xplane + (size_t)d->co4 * d->dplane;
    d->block = WGRAD_BLOCK_FLOATS / per_image < 1 ? 1 : (int)(WGRAD_BLOCK_FLOATS / per_image);
    if (d->block > s->n)
        d->block = s->n;
    /* an image larger than a block: its runs go a segment at a time, every strip of a segment
     * before the next, the block's sums kept apart meanwhile */
    d->seg = d->len;
    if (per_image > WGRAD_BLOCK_FLOATS) {
        const size_t planes = (size_t)s->cin * d->phases + (size_t)d->co4;
        size_t seg = WGRAD_SEGMENT_FLOATS / planes / 8 * 8;
        if (seg < (size_t)d->len)
            d->seg = seg < 8 ? 8 : (int)seg;
    }
    d->acc_floats = (size_t)d->units * RN_WGRAD_CO * RN_WGRAD_KW_MAX * 8;
    d->part_floats = d->seg < d->len ? d->acc_floats : 0;
    d->floats = align_up(per_image * (size_t)d->block) + d->acc_floats + d->part_floats;
    return 1;
}

/* The planes of images [b0, b0 + nb): x's phases at xp ((image, ci, phase)
 * planes of xplane floats), dy's at dp ((image, co) planes of dplane); the
 * zeros around them are written once, by the caller (worksharing). */
static void wgrad_pad_block(const rn_conv_shape *s, const conv_wgrad_plan *d, const float *x,
                            const float *dy, int b0, int nb, float *xp, float *dp) {
    const size_t in_plane = (size_t)s->h * s->w, out_plane = (size_t)s->ho * s->wo;
    const long pix_in = (long)s->n * (long)in_plane, pix_out = (long)s->n * (long)out_plane;
    const long xplanes = (long)nb * s->cin, planes = xplanes + (long)nb * s->cout;
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
                for (int i = 0; i < s->w; i++) { /* each pixel into its phase */
                    const int px = i + s->pad, ph = py % st * st + px % st;
                    dst[(size_t)ph * d->xplane + (size_t)(py / st) * d->wph + px / st] =
                        src[(size_t)y * s->w + i];
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
    const size_t block_floats = xfloats + (size_t)d->block * d->co4 * d->dplane;
    float *xp = ws, *dp = ws + xfloats, *acc = ws + align_up(block_floats);
    float *parts = acc + d->acc_floats; /* the block's sums, when segmented */
    const rn_wgrad_fn strip = k->wgrad;
    /* zeros: the padding, the rows' tails, the channels past cout, the partial sums */
#pragma omp for schedule(static)
    for (long i = 0; i < (long)(align_up(block_floats) + d->acc_floats); i += 4096) {
        const size_t end = align_up(block_floats) + d->acc_floats;
        memset(ws + i, 0, ((size_t)i + 4096 < end ? 4096 : end - (size_t)i) * sizeof(float));
    }
    for (int b0 = 0; b0 < s->n; b0 += d->block) {
        const int nb = s->n - b0 < d->block ? s->n - b0 : d->block;
        wgrad_pad_block(s, d, x, dy, b0, nb, xp, dp); /* ends with a barrier */
        for (int s0 = 0; s0 < d->len; s0 += d->seg) {
            const int last = s0 + d->seg >= d->len;
            /* static and nowait: each thread keeps its units from one segment to the next */
#pragma omp for schedule(static) nowait
            for (int u = 0; u < d->units; u++) {
                /* unit u: input channel ci, row r, output channels RN_WGRAD_CO * g ..; the
                 * input channels and rows vary fastest, so that a thread's strips in a row
                 * read the same four planes of dy */
                const int ci = u % s->cin, r = u / s->cin % d->rows, g = u / s->cin / d->rows;
                const conv_wgrad_row *w = &d->row[r];
                const int ph = w->ki % st * st + w->b;
                float *a = acc + (size_t)u * per_unit;
                float own[RN_WGRAD_CO * RN_WGRAD_KW_MAX * 8];
                float *part = d->part_floats ? parts + (size_t)u * per_unit : own;
                if (s0 == 0)
                    memset(part, 0, sizeof own);
                const rn_wgrad_strip sp = {
                    .dy = dp + (size_t)g * RN_WGRAD_CO * d->dplane + s0,
                    .ldd = (ptrdiff_t)d->dplane,
                    .dstep = (ptrdiff_t)((size_t)d->co4 * d->dplane),
                    .x = xp + ((size_t)ci * d->phases + ph) * d->xplane +
                         (size_t)(w->ki / st) * d->wph + w->t0 + s0,
                    .xstep = (ptrdiff_t)((size_t)s->cin * d->phases * d->xplane),
                    .len = last ? d->len - s0 : d->seg, .nimg = nb, .kw = w->taps};
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
            for (int b = 0; b < s->nimg; b++) {
                const float *dy = s->dy + b * s->dstep + c * s->ldd, *x = s->x + b * s->xstep + j;
                for (int q = 0; q < s->len; q += 8)
                    for (int l = 0; l < 8; l++)
                        acc[(c * s->kw + j) * 8 + l] += dy[q + l] * x[q + l];
            }
}
