/*
 * conv2d_backward_weight.c - the weight gradient of a 2-D convolution, dw and db (contract in
 * conv2d.h; the routes in conv2d_backward.c's opening comment, the plan in
 * conv2d_backward_plan.h): chunks of im2col against dy (one GEMM per thread's share, no
 * barrier per chunk), the direct strips (conv_wgrad.c), Winograd's (conv_wgrad_winograd.c) or
 * the small-map product's (conv_smallmap.c).
 */
#include <stddef.h>
#include <string.h>

#include "ops/conv2d_backward_plan.h"
#include "ops/conv_smallmap.h"
#include "ops/gemm.h"

#define N_BLOCK_MAX RN_RAW_A_MAX_COLS /* the GEMM's cout columns: it reads A in place */
#define TILE 16                  /* transpose tile */
#define SAME_MIN_W 7             /* im2col by shifted planes from this width up */
#define ROW_BLOCK 1024           /* bias gradient: values per float partial sum */

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
 * Transposes and im2col over output pixels
 * ------------------------------------------------------------------------- */

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
    my_share(p->K, 2 * p->kw->mr, &r0, &r1);
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
            rn_sgemm_1t(p->kw, 0, 1, r1 - r0, nb, nc, a, (int)lda, dyg + (size_t)n0 * p->pix_out + j0,
                        (int)p->pix_out, beta, dwt + (size_t)r0 * p->cout_g + n0, p->cout_g,
                        NULL);
        }
    }
#pragma omp barrier
    transpose_shared(dwt, p->cout_g, p->K, p->cout_g, dwg, p->K);
}

/* K < cout_g: dw_g (cout_g, K) += dy_g x col^T chunk by chunk, each thread owning a block of
 * dw_g's columns, i.e. of col's rows, which it builds itself (a pointwise conv's are x's own):
 * no thread waits for another. The GEMM packs col^T straight from col (transb), as weight_by_dy
 * packs dy^T; it had been transposed into a buffer first (AMD EPYC Zen 5, 2 threads,
 * `bench_backward` twice each, effective GFLOP/s, transposed first -> packed from col: fp32
 * 1x1/2 64->128 at 56x56 batch 32 96-133 -> 119-159, 128->256 at 28x28 139-160 -> 145-209,
 * 256->512 at 14x14 250-261 -> 242-276; d2l_resnet18 28x28 batch 256 64->128 at 7x7 103-108
 * -> 131-133, 256->512 at 2x2 172-178 -> 190-199; bf16 kernels likewise; `profile_train -a
 * resnet50 -s 112 -b 16`, three runs alternated, the 18 pointwise layers' weight gradients
 * 19.4-20.7 -> 17.9-19.5 ms a step). The columns are dealt in the narrowest panels the kernels
 * have (nr_step), not whole ones: a strided 1x1 on 16 input channels (K = 16) ran on one thread
 * (dev/profile_train, the fmnist-fast network, batch 128, Zen 3: 1x1/2 16->32 at 28x28 3.7 ->
 * 2.4 ms, 32->64 at 14x14 1.6 -> 1.1-1.5 ms). */
static void weight_by_col(const rn_conv_shape *s, const bwd_plan *p, const float *xg,
                          const float *dyg, float *dwg, float *col) {
    // col: (K, chunk_w)
    int n0, n1;
    my_share(p->K, p->kw->nr_step, &n0, &n1);
    for (long j0 = 0; j0 < p->pix_out && n1 > n0; j0 += p->chunk_w) {
        const int nc = p->pix_out - j0 < p->chunk_w ? (int)(p->pix_out - j0) : p->chunk_w;
        const float beta = j0 == 0 ? 0.0f : 1.0f;
        /* b: the chunk's im2col, rows ldb apart (x in place for a pointwise conv) */
        const float *b = xg + j0;
        ptrdiff_t ldb = (ptrdiff_t)p->pix_in;
        if (!p->pointwise) {
            im2col_rows(s, p, xg, j0, nc, n0, n1, col, p->chunk_w);
            b = col, ldb = p->chunk_w;
        }
        for (int b0 = n0; b0 < n1; b0 += N_BLOCK_MAX) {
            int nb = n1 - b0 < N_BLOCK_MAX ? n1 - b0 : N_BLOCK_MAX;
            rn_sgemm_1t(p->kw, 0, 1, p->cout_g, nb, nc, dyg + j0, (int)p->pix_out,
                        b + (size_t)b0 * ldb, (int)ldb, beta, dwg + b0, p->K, NULL);
        }
    }
}

void conv2d_backward_weight(const rn_kernels *k, const rn_conv_shape *s, const float *x,
                            const float *dy, float *dw, float *db, float *workspace, int algos) {
    rn_conv_shape c;
    int k0;
    if (conv2d_crop_shape(s, &c, &k0)) {
        /* the live taps' gradient dwc (cout, cin_g, c.kh, c.kw), zeros around it */
        float *dwc = workspace;
        conv2d_backward_weight(k, &c, x, dy, dwc, db, workspace + conv2d_bwd_cropped_floats(&c),
                               algos);
        expand_weights(dwc, (size_t)s->cout * (s->cin / s->groups), c.kh, c.kw, k0, s->kh, s->kw,
                       dw);
        return;
    }
    const bwd_plan p = conv2d_bwd_plan(k, s, algos);
    // dwt: (K, cout_g) or none  col: (K, chunk_w)
    float *dwt = workspace;
    float *col = dwt + p.dwt_floats;
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
                weight_by_col(s, &p, xg, dyg, dwg, col);
            else
                weight_by_dy(s, &p, xg, dyg, dwg, dwt, col);
        }
        if (db)
            row_sums(dy, s->cout, (size_t)p.pix_out, db);
    }
}

