/*
 * conv2d_backward_data.c - the data gradient of a 2-D convolution, dx (contract in conv2d.h;
 * the routes in conv2d_backward.c's opening comment, the plan in conv2d_backward_plan.h):
 * one GEMM on dy (pointwise), the forward of the flipped weights (by the implicit-im2col GEMM
 * or one of conv_algo.h's algorithms), phase by phase (strided windows), or col2im.
 */
#include <stddef.h>
#include <string.h>

#include "ops/conv2d_backward_plan.h"
#include "ops/gemm.h"

/* ---------------------------------------------------------------------------
 * col2im over output pixels
 * ------------------------------------------------------------------------- */

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
    float *wp = ws; /* the layout conv2d_bwd_plan sized */
    float *apack = wp + align_up((size_t)p->cin_g * (size_t)p->phase_kf);
    float *out = apack + align_up(rn_gemm_packed_a_floats(p->k, p->cin_g, p->phase_kf));
    for (int a = 0; a < st; a++) {
        int ki_top, lead;
        const int th = conv2d_bwd_phase_taps(s->kh, st, s->pad, a, &ki_top, &lead);
        const int ha = phase_len(s->h, st, a);
        size_t offs[RN_PHASE_MAX];
        size_t off = 0;
        for (int b = 0; b < st; b++) {
            int kj_top;
            const int tw = conv2d_bwd_phase_taps(s->kw, st, s->pad, b, &kj_top, &lead);
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
        conv2d_backward_data(k, &c, dy, wc, beta, dx, workspace + conv2d_bwd_cropped_floats(&c),
                             algos);
        return;
    }
    const bwd_plan p = conv2d_bwd_plan(k, s, algos);
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
            const rn_conv_shape f = conv2d_bwd_flipped_shape(s);
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
