/*
 * gemm.c - the blocked, packed, threaded SGEMM (contract in gemm.h).
 *
 * Blocking, for C = A (M x K) * B (K x N):
 *   - K is cut into blocks of at most the descriptor's kc; the block size depends on K
 *     alone, so every element is summed in the same order on any thread count.
 *   - C is cut into work items (a range of MR-row panels x a range of
 *     NR-column panels), handed out dynamically. An item walks its K blocks;
 *     per block it packs its B micro-panels (kc x NR each) a group at a time, as
 *     many as its buffer holds, each row of B read in one piece, and runs each
 *     panel (from L1) against every A micro-panel of the item (from L2).
 *   - A is packed once per call into MR-row micro-panels, shared by all
 *     threads, when N is wide enough to repay it; otherwise (and if that
 *     memory cannot be had) the kernels read A in place.
 *   - The last column panel is only as wide as it needs (16, 32 or 48 on
 *     AVX-512), so a narrow N (a batch-1 layer: 49 or 196) wastes little.
 * B comes from a matrix or straight from images (implicit im2col); only the
 * packer differs. The micro-kernels, packers and the tile and block sizes
 * come from the kernel descriptor (kernels.h) the caller passes, or the
 * process default.
 */
#include "ops/gemm.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/mem.h"
#include "core/threads.h"
#include "ops/kernels.h"

#define ITEM_C_FLOATS 65536 /* C floats per work item: stays in L2 across K blocks */
#define SERIAL_FLOPS 2e6    /* below this, one thread, */
/* unless A is larger than this: a matrix-vector product is paced by reading A, which two cores
 * do faster than one (resnet18's classifier at batch 1, 2 MB of weights for 1 MFLOP: the
 * pass's non-convolution time 0.30 -> 0.21 ms, medians of eleven interleaved pairs of
 * dev/profile_layers, AMD EPYC Zen 5, 2 threads) */
#define SERIAL_A_BYTES (256u << 10)
/* Kernels without an in-place A (bf16: A converted to pairs) pack an item's rows of A once per K
 * block, not once per tile; an item then has at most this many rows. */
#define ITEM_A_ROWS 128
/* A matrix B is packed a row piece at a time, rows far apart (a 1x1 convolution's input
 * channels: 12.5 KB at 56x56), which the hardware does not prefetch: the packer asks for the
 * row this many ahead. Share of the packing beside the micro-kernel's (perf, 1x1 256 -> 64 at
 * 56x56, batch 1, 1 thread, Zen 3, two runs): none 28% and 28%, 16 rows 28-29%, 32 rows 19-22%,
 * 64 rows 21-26%. */
#define B_PREFETCH_ROWS 32
/* A thread's buffer of packed B panels (run_item's bbuf): what a group of panels may fill. */
#define B_BUF_FLOATS (RN_KC_MAX * RN_PANEL_MAX)

/* ---------------------------------------------------------------------------
 * Packing
 * ------------------------------------------------------------------------- */

/* dst[k * mr + i] = op(A)[i0 + i, k0 + k], zero for rows >= M. */
static void pack_a(const rn_kernels *kd, int transa, const float *A, int lda, int M, int i0,
                   int k0, int kc, int mr, float *dst) {
    int rows = M - i0 < mr ? M - i0 : mr;
    if (!transa && mr % 8 == 0) {
        /* rows of A along k, transposed: the transposing B packer's job (kernels.h) */
        kd->pack_bt(A + (ptrdiff_t)i0 * lda + k0, lda, kc, rows, mr, dst);
        return;
    }
    if (!transa) {
        for (int i = 0; i < rows; i++) {
            const float *src = A + (ptrdiff_t)(i0 + i) * lda + k0;
            for (int k = 0; k < kc; k++)
                dst[(ptrdiff_t)k * mr + i] = src[k];
        }
    } else {
        for (int k = 0; k < kc; k++) {
            const float *src = A + (ptrdiff_t)(k0 + k) * lda + i0;
            for (int i = 0; i < rows; i++)
                dst[(ptrdiff_t)k * mr + i] = src[i];
        }
    }
    for (int k = 0; k < kc; k++)
        for (int i = rows; i < mr; i++)
            dst[(ptrdiff_t)k * mr + i] = 0.0f;
}

/* pack_a, then the descriptor's finish_a where it has one; a row-major A straight into that
 * format where the descriptor can (pack_a_finished). */
static void pack_a_finished(const rn_kernels *kd, int transa, const float *A, int lda, int M,
                            int i0, int k0, int kc, int mr, float *dst) {
    if (!transa && kd->pack_a_finished) {
        const int rows = M - i0 < mr ? M - i0 : mr;
        kd->pack_a_finished(A + (ptrdiff_t)i0 * lda + k0, lda, kc, rows, mr, dst);
        return;
    }
    pack_a(kd, transa, A, lda, M, i0, k0, kc, mr, dst);
    if (kd->finish_a)
        kd->finish_a(dst, kc, mr);
}

/* Where B comes from: a matrix, or the im2col of images. */
typedef struct b_source {
    const float *B;         /* matrix: op(B) is K x N */
    int ldb, transb;
    const rn_im2col *im;    /* or im2col, when not NULL */
    int N;
} b_source;

void rn_pack_bt_portable(const float *src, ptrdiff_t ldb, int kc, int cols, int nr, float *dst) {
    for (int j = 0; j < cols; j++)
        for (int k = 0; k < kc; k++)
            dst[(ptrdiff_t)k * nr + j] = src[(ptrdiff_t)j * ldb + k];
    for (int k = 0; k < kc; k++)
        for (int j = cols; j < nr; j++)
            dst[(ptrdiff_t)k * nr + j] = 0.0f;
}

/* Panels p < np of op(B), each kc x nr: dst[(p * kc + k) * nr + j] =
 * op(B)[k0 + k, j0 + p * nr + j], zero for columns >= N. Several panels are
 * packed together so that each row of B is read in one longer piece: rows
 * lie far apart, and short reads of many rows are slow. A transposed B is
 * packed a panel at a time by the descriptor's packer. */
static void pack_b_matrix(const rn_kernels *kd, const b_source *bs, int k0, int kc, long j0,
                          int nr, int np, float *dst) {
    const int total = bs->N - j0 < (long)nr * np ? (int)(bs->N - j0) : nr * np;
    if (!bs->transb) {
        for (int k = 0; k < kc; k++) {
            const float *src = bs->B + (ptrdiff_t)(k0 + k) * bs->ldb + j0;
            if (k + B_PREFETCH_ROWS < kc) {
                for (int c = 0; c < total; c += 64 / (int)sizeof(float))
                    __builtin_prefetch(src + B_PREFETCH_ROWS * (ptrdiff_t)bs->ldb + c, 0, 3);
            } else if (j0 + total < bs->N && k + B_PREFETCH_ROWS - kc < kc) {
                /* the last rows ask for the first rows of the pieces to the right, which the
                 * GEMM packs next, as the bf16 packer does (without, every group's first rows
                 * waited on memory). `bench_conv -m resnet50 -b 32 -s 1x1`, pointwise column,
                 * Zen 5, 2 threads, 7 runs alternated: 1x1 64->64 at 56x56 257-279 -> 270-300
                 * effective GFLOP/s, 256->64 273-288 -> 275-315, the 15 shapes summed
                 * 5283-5401 -> 5182-5447 (ahead in 6 of the 7 pairs); rows of this block only */
                const long next = bs->N - (j0 + total) < total ? bs->N - (j0 + total) : total;
                const float *ahead = bs->B + (ptrdiff_t)(k0 + k + B_PREFETCH_ROWS - kc) * bs->ldb +
                                     j0 + total;
                for (long c = 0; c < next; c += 64 / (long)sizeof(float))
                    __builtin_prefetch(ahead + c, 0, 3);
            }
            for (int q = 0; q < np; q++) {
                float *row = dst + ((ptrdiff_t)q * kc + k) * nr;
                const int cols = total - q * nr < nr ? total - q * nr : nr;
                rn_copy_floats(row, src + q * nr, cols > 0 ? cols : 0);
                for (int j = cols > 0 ? cols : 0; j < nr; j++)
                    row[j] = 0.0f;
            }
        }
    } else {
        for (int q = 0; q < np; q++) {
            const int cols = total - q * nr < nr ? total - q * nr : nr;
            const float *src = cols > 0 ? bs->B + (ptrdiff_t)(j0 + q * nr) * bs->ldb + k0 : bs->B;
            kd->pack_bt(src, bs->ldb, kc, cols > 0 ? cols : 0, nr, dst + (ptrdiff_t)q * kc * nr);
        }
    }
}

/* np B panels from column j0, each nr wide (kc x nr) in fp32; np is 1 for im2col. */
static void pack_b_fp32(const rn_kernels *kd, const b_source *bs, int k0, int kc, long j0, int nr,
                        int np, float *dst) {
    if (bs->im)
        kd->pack_im2col(bs->im, k0, kc, j0, nr, dst);
    else
        pack_b_matrix(kd, bs, k0, kc, j0, nr, np, dst);
}

/* The same panels in the operand format of kd's kernels. */
static void pack_b(const rn_kernels *kd, const b_source *bs, int k0, int kc, long j0, int nr,
                   int np, float *dst) {
    if (kd->pack_b_finished && !bs->im && !bs->transb) { /* a row-major B: in one pass */
        for (int q = 0; q < np; q++) {
            const long jq = j0 + (long)q * nr, left = bs->N - jq;
            const int cols = left <= 0 ? 0 : left < nr ? (int)left : nr;
            kd->pack_b_finished(bs->B + (ptrdiff_t)k0 * bs->ldb + (cols > 0 ? jq : 0), bs->ldb,
                                kc, cols, nr, dst + (ptrdiff_t)q * kc * nr);
        }
        return;
    }
    pack_b_fp32(kd, bs, k0, kc, j0, nr, np, dst);
    if (kd->finish_b)
        for (int q = 0; q < np; q++)
            kd->finish_b(dst + (ptrdiff_t)q * kc * nr, kc, nr);
}

/* ---------------------------------------------------------------------------
 * Driver
 * ------------------------------------------------------------------------- */

typedef struct gemm_plan {
    const rn_kernels *kd;
    int transa, M, N, K, lda;
    const float *A;
    const b_source *bs;
    float beta;
    float *C;
    int ldc;
    const rn_gemm_epilogue *ep;
    int kc, nkb;            /* K block size and count */
    int m_panels, n_panels;
    int mcp, ncp;           /* panels per work item */
    int m_items, n_items;
    const float *apack;     /* all of A packed (K blocks of Mp x kc), or NULL */
    int raw_b;              /* 1: whole panels of B read in place (rawb_pays) */
    float *bpack;           /* all of B packed (K blocks of kc x npad), or NULL */
    long npad;              /* B's packed width: full panels, then the last one's */
} gemm_plan;

static int ceil_div(long a, long b) { return (int)((a + b - 1) / b); }

/* Share `part` of `parts` of the kc rows (ld apart) of a panel of w floats at b, asked for
 * into L2: the rows of a B read in place lie far apart, which the hardware does not foresee. */
static void prefetch_rows(const float *b, int ld, int kc, int part, int parts, int w) {
    const int per = ceil_div(kc, parts), r1 = (part + 1) * per < kc ? (part + 1) * per : kc;
    for (int r = part * per; r < r1; r++)
        for (int c = 0; c < w; c += 64 / (int)sizeof(float))
            __builtin_prefetch(b + (ptrdiff_t)r * ld + c, 0, 2);
}

/* One work item: panels [ip0, ip1) x [jp0, jp1) of C over all of K. */
static void run_item(const gemm_plan *p, int item, float *bbuf, float *abuf) {
    const int mr = p->kd->mr, nr = p->kd->nr;
    const int mi = item % p->m_items, ni = item / p->m_items;
    const int ip0 = mi * p->mcp, jp0 = ni * p->ncp;
    const int ip1 = ip0 + p->mcp < p->m_panels ? ip0 + p->mcp : p->m_panels;
    const int jp1 = jp0 + p->ncp < p->n_panels ? jp0 + p->ncp : p->n_panels;
    const rn_gemm_epilogue *ep = p->ep;
    const int a_item = !p->apack && p->kd->finish_a; /* A packed here, once per K block */

    for (int kb = 0; kb < p->nkb; kb++) {
        const int k0 = kb * p->kc;
        const int kc = p->K - k0 < p->kc ? p->K - k0 : p->kc;
        if (a_item)
            for (int ip = ip0; ip < ip1; ip++) {
                float *panel = abuf + (ptrdiff_t)(ip - ip0) * kc * mr;
                pack_a_finished(p->kd, p->transa, p->A, p->lda, p->M, ip * mr, k0, kc, mr,
                                panel);
            }
        rn_gemm_tile tile = {
            .ldc = p->ldc,
            .beta = kb == 0 ? p->beta : 1.0f,
            .last = kb == p->nkb - 1,
            .ldr = ep ? ep->ldr : 0,
            .relu = ep ? ep->relu : 0,
        };
        /* B panels are packed `group` at a time (one for im2col), as many as bbuf holds, so
         * that each row of a matrix B is read in one piece of group x nr columns (pack_b_matrix);
         * a ragged last panel of B alone, only as wide as it needs. Until 2026-12-06 a group was
         * RN_PANEL_MAX columns, one 48-column panel on AVX-512: with bbuf's 3 (kc 192) to 10
         * (kc 64), 1x1 layers at batch 32 (`bench_conv -m resnet50 -b 32 -s 1x1`, the pointwise
         * column summed over its 15 shapes, AMD EPYC Zen 5, 2 threads, three runs alternated)
         * 4877-5098 -> 5064-5155 effective GFLOP/s; `resnet bench --arch resnet50 --batch-size
         * 32` faster in 9 of 11 alternated pairs, about 1%; AVX2 and bf16 level. */
        const int group = p->bs->im ? 1 : B_BUF_FLOATS / (kc * nr);
        const int full_end = p->N % nr ? p->n_panels - 1 : p->n_panels;
        for (int jp = jp0; jp < jp1; jp++) {
            const long j0 = (long)jp * nr;
            tile.n = p->N - j0 < nr ? (int)(p->N - j0) : nr;
            const int width = ceil_div(tile.n, p->kd->nr_step) * p->kd->nr_step;
            /* a whole panel of a row-major B read in place, not packed (rawb_pays) */
            const int raw_b = p->raw_b && jp < full_end;
            int q = (jp - jp0) % group;
            if (p->bpack || raw_b) {
                q = 0;
            } else if (jp >= full_end) {
                q = 0;
                pack_b(p->kd, p->bs, k0, kc, j0, width, 1, bbuf);
            } else if (q == 0) {
                const int end = jp1 < full_end ? jp1 : full_end;
                pack_b(p->kd, p->bs, k0, kc, j0, nr, end - jp < group ? end - jp : group, bbuf);
            }
            const float *b = p->bpack  ? p->bpack + k0 * p->npad + (ptrdiff_t)jp * kc * nr
                             : raw_b ? p->bs->B + (ptrdiff_t)k0 * p->bs->ldb + j0
                                     : bbuf + (ptrdiff_t)q * kc * nr;
            tile.ldb = p->bs->ldb;
            for (int ip = ip0; ip < ip1; ip++) {
                const int i0 = ip * mr;
                const float *a;
                rn_gemm_kernel_fn fn =
                    raw_b ? p->kd->fn_rawb : p->kd->fn[width / p->kd->nr_step - 1];
                if (raw_b && jp + 1 < jp1) /* the next panel's rows, a share per tile, to L2 */
                    prefetch_rows(b + nr, p->bs->ldb, kc, ip - ip0, ip1 - ip0, nr);
                tile.m = p->M - i0 < mr ? p->M - i0 : mr;
                tile.a_rs = 1;
                tile.a_cs = mr;
                if (p->apack) {
                    a = p->apack + (ptrdiff_t)k0 * p->m_panels * mr + (ptrdiff_t)ip * kc * mr;
                } else if (a_item) {
                    a = abuf + (ptrdiff_t)(ip - ip0) * kc * mr;
                } else if (tile.m == mr) {
                    /* op(A)[i0, k0] in place */
                    a = p->transa ? p->A + (ptrdiff_t)k0 * p->lda + i0
                                  : p->A + (ptrdiff_t)i0 * p->lda + k0;
                    tile.a_rs = p->transa ? 1 : p->lda;
                    tile.a_cs = p->transa ? p->lda : 1;
                    fn = p->kd->fn_raw[width / p->kd->nr_step - 1];
                } else {
                    pack_a(p->kd, p->transa, p->A, p->lda, p->M, i0, k0, kc, mr, abuf);
                    a = abuf;
                }
                tile.c = p->C + (ptrdiff_t)i0 * p->ldc + j0;
                tile.bias = ep && ep->bias ? ep->bias + i0 : NULL;
                tile.residual =
                    ep && ep->residual ? ep->residual + (ptrdiff_t)i0 * ep->ldr + j0 : NULL;
                fn(kc, a, b, &tile);
            }
        }
    }
}

/* Splits C into work items: whole rows of A up to the descriptor's mc, columns so that an
 * item's C fits in L2, then smaller until every thread has a few items. */
static void plan_items(gemm_plan *p, int threads) {
    const int mr = p->kd->mr, nr = p->kd->nr;
    p->m_panels = ceil_div(p->M, mr);
    p->n_panels = ceil_div(p->N, nr);
    int rows = !p->apack && p->kd->finish_a && p->kd->mc > ITEM_A_ROWS ? ITEM_A_ROWS : p->kd->mc;
    /* mc x kc of A fits in L2: a shorter K leaves room for more rows, and an item with all of
     * M packs its B panels once instead of once per row block (a 1x1 convolution on 64
     * channels: K = 64, M = 256) */
    if (rows == p->kd->mc && p->kc < p->kd->kc)
        rows = (int)((long)rows * p->kd->kc / p->kc / mr * mr);
    p->m_items = ceil_div(p->m_panels, rows / mr);
    p->mcp = ceil_div(p->m_panels, p->m_items);
    p->ncp = ITEM_C_FLOATS / (p->mcp * mr * nr);
    if (p->ncp < 1)
        p->ncp = 1;
    if (p->ncp > p->n_panels)
        p->ncp = p->n_panels;
    p->n_items = ceil_div(p->n_panels, p->ncp);
    while (threads > 1 && p->m_items * p->n_items < 4 * threads) {
        if (p->bpack && p->mcp > 1) {
            /* B is packed already: split the rows, so that A is read once */
            p->mcp = ceil_div(p->mcp, 2);
            p->m_items = ceil_div(p->m_panels, p->mcp);
        } else if (p->ncp > 1) {
            p->ncp = ceil_div(p->ncp, 2);
            p->n_items = ceil_div(p->n_panels, p->ncp);
        } else if (p->mcp > 1) {
            p->mcp = ceil_div(p->mcp, 2);
            p->m_items = ceil_div(p->m_panels, p->mcp);
        } else {
            break;
        }
    }
}

/* B packed whole (the panels of K block kb from bpack + k0 * npad, the
 * last panel only as wide as it needs), the threads sharing the panels;
 * ends with a barrier. */
static void pack_b_all(const gemm_plan *p) {
    const int nr = p->kd->nr;
#pragma omp for schedule(static)
    for (long t = 0; t < (long)p->nkb * p->n_panels; t++) {
        const int kb = (int)(t / p->n_panels), jp = (int)(t % p->n_panels);
        const int k0 = kb * p->kc, kc = p->K - k0 < p->kc ? p->K - k0 : p->kc;
        const long j0 = (long)jp * nr;
        const int n = p->N - j0 < nr ? (int)(p->N - j0) : nr;
        const int width = ceil_div(n, p->kd->nr_step) * p->kd->nr_step;
        pack_b(p->kd, p->bs, k0, kc, j0, width, 1,
               p->bpack + k0 * p->npad + (ptrdiff_t)jp * kc * nr);
    }
}

#define PREPACK_B_MAX_COLS 1024 /* im2col packed whole up to this many columns */

/* B's packed width when packed whole: full panels, then the last one's. */
static long packed_b_width(const rn_kernels *kd, long N) {
    const long full = N / kd->nr * kd->nr, rest = N - full;
    return full + (rest ? ceil_div(rest, kd->nr_step) * kd->nr_step : 0);
}

long rn_gemm_packed_b_width(const rn_kernels *kd, long N) {
    return packed_b_width(rn_kernels_or_default(kd), N);
}

size_t rn_gemm_im2col_b_floats(const rn_kernels *kd, const rn_im2col *im) {
    kd = rn_kernels_or_default(kd);
    const long N = (long)im->n * im->ho * im->wo;
    if (N > PREPACK_B_MAX_COLS)
        return 0;
    return (size_t)im->c * (size_t)im->kh * (size_t)im->kw * (size_t)packed_b_width(kd, N);
}

/* C = beta * C, then the epilogue: the product of an empty K. */
static void epilogue_only(int M, int N, float beta, float *C, int ldc,
                          const rn_gemm_epilogue *ep) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float *c = C + (ptrdiff_t)i * ldc + j;
            float r = beta != 0.0f ? beta * *c : 0.0f;
            if (ep && ep->bias)
                r += ep->bias[i];
            if (ep && ep->residual)
                r += ep->residual[(ptrdiff_t)i * ep->ldr + j];
            if (ep && ep->relu && r < 0.0f) /* NaN stays NaN, as in PyTorch */
                r = 0.0f;
            *c = r;
        }
}


/* K blocks of a product with inner dimension K: *nkb blocks of *kc (the last may be shorter),
 * as even as the descriptor's K step allows. A function of K and the descriptor alone, so
 * packed copies of A made ahead of time fit the driver. A block the AMX tiles' 32 do not divide
 * sends every kernel call through its zero-padded tail (with blocks of up to 256, K 1152 went
 * in blocks of 231: 3x3 layers on 128 channels; weight gradients over 6272 pixels in blocks of
 * 251). Rounded up to whole steps (1152: 256 x 4 + 128), the bf16 GEMMs 128 x 25088 x 1152 and
 * 512 x 1152 x 1152 gained 8% GFLOP/s, 512 x 4608 x 6272 3% (AMX, Xeon SPR, 2 threads, the two
 * alternated in one process, 6-10 rounds). */
static void k_blocks(const rn_kernels *kd, int K, int *nkb, int *kc) {
    *nkb = ceil_div(K, kd->kc);
    *kc = ceil_div(K, *nkb);
    if (kd->k_step > 1 && *kc % kd->k_step) {
        *kc = (*kc / kd->k_step + 1) * kd->k_step; /* <= kd->kc, a multiple of k_step */
        *nkb = ceil_div(K, *kc);
    }
}

void rn_gemm_k_blocks(const rn_kernels *kd, int K, int *nkb, int *kc) {
    k_blocks(rn_kernels_or_default(kd), K, nkb, kc);
}

/* All of op(A) packed: per K block, every MR-row panel (kc x mr), in the
 * layout run_item reads (worksharing over the panels when inside a
 * parallel region). */
static void pack_a_all(const rn_kernels *kd, int transa, int M, int K, const float *A, int lda,
                       float *dst) {
    const int mr = kd->mr, m_panels = ceil_div(M, mr);
    int nkb, kcb;
    k_blocks(kd, K, &nkb, &kcb);
#pragma omp for schedule(static)
    for (long t = 0; t < (long)nkb * m_panels; t++) {
        const int kb = (int)(t / m_panels), ip = (int)(t % m_panels);
        const int k0 = kb * kcb;
        const int kc = K - k0 < kcb ? K - k0 : kcb;
        float *panel = dst + (ptrdiff_t)k0 * m_panels * mr + (ptrdiff_t)ip * kc * mr;
        pack_a_finished(kd, transa, A, lda, M, ip * mr, k0, kc, mr, panel);
    }
}

size_t rn_gemm_packed_a_floats(const rn_kernels *kd, int M, int K) {
    kd = rn_kernels_or_default(kd);
    return (size_t)ceil_div(M, kd->mr) * (size_t)kd->mr * (size_t)(K > 0 ? K : 0);
}

void rn_gemm_pack_a(const rn_kernels *kd, int transa, int M, int K, const float *A, int lda,
                    float *dst) {
    kd = rn_kernels_or_default(kd);
    if (M <= 0 || K <= 0)
        return;
#pragma omp parallel num_threads(rn_threads()) if ((double)M * K > 65536.0)
    pack_a_all(kd, transa, M, K, A, lda, dst);
}

void rn_gemm_finish_packed_a(const rn_kernels *kd, int M, int K, float *packed) {
    kd = rn_kernels_or_default(kd);
    if (!kd->finish_a || M <= 0 || K <= 0)
        return;
    const int mr = kd->mr, m_panels = ceil_div(M, mr);
    int nkb, kcb;
    k_blocks(kd, K, &nkb, &kcb);
    for (long t = 0; t < (long)nkb * m_panels; t++) {
        const int kb = (int)(t / m_panels), ip = (int)(t % m_panels);
        const int k0 = kb * kcb, kc = K - k0 < kcb ? K - k0 : kcb;
        kd->finish_a(packed + (ptrdiff_t)k0 * m_panels * mr + (ptrdiff_t)ip * kc * mr, kc, mr);
    }
}

/* How A reaches the driver: in place, packed ahead by the caller, or packed
 * now into the caller's workspace (when N is wide enough to repay it). */
typedef struct a_source {
    int transa;
    const float *A;         /* in place: op(A) is M x K */
    int lda;
    const float *packed;    /* or packed by rn_gemm_pack_a */
    float *pack_ws;         /* or NULL: room for rn_gemm_packed_a_floats floats */
} a_source;

/* B read in place instead of packed: a row-major B (a 1x1 convolution's input, K channels of
 * N pixels), against packed A, where the descriptor has the kernel and a panel's kc rows,
 * ldb apart, spread evenly over L1's sets (64 of 64-byte lines on the CPUs here: no set holds
 * more than one line over the even share), so that the panel stays in L1 for every A panel
 * the kernel runs it against, as a packed one would. Packing copied every panel once per
 * work item: 28% of the GEMM's time on 1x1 256 -> 64 at 56x56 (perf, 1 thread, Xeon). Inside
 * resnet50 at batch 1 (Xeon, Sapphire Rapids class, 2 threads, `profile_layers` in ABBA
 * order, 20-24 runs each, medians, three runs), the 1x1 layers at 28x28 (784 columns: rows
 * 49 lines apart, every set) 0.78-1.01 of the packed time, most 0.90-0.97. Not at 56x56
 * (3136 columns: rows 196 lines apart start on 16 sets, a quarter of the sets empty): 0.80 to
 * 1.14 between runs; nor at batch 32 (1568 columns: half the sets get twice the lines). */
#define L1_SETS 64

static int rawb_pays(const gemm_plan *p) {
    if (!p->kd->fn_rawb || p->bs->im || p->bs->transb || !p->apack || p->bpack)
        return 0;
    const long row_bytes = (long)p->bs->ldb * (long)sizeof(float);
    const int lines = p->kd->nr * (int)sizeof(float) / 64; /* a row's lines in one panel */
    const int most = (p->kc * lines + L1_SETS - 1) / L1_SETS + 1;
    int per_set[L1_SETS] = {0};
    for (int r = 0; r < p->kc; r++)
        for (int l = 0; l < lines; l++)
            if (++per_set[(r * row_bytes / 64 + l) % L1_SETS] > most)
                return 0;
    return 1;
}

/* How the threads share the work items: each its own run of consecutive items (rn_claims,
 * core/threads.h), then what is left of the others' from their back, instead of one item at a
 * time from a shared counter. Items run column panel by column panel, so a thread's run is a
 * range of output pixels (a 1x1 convolution's columns): the same rows of the map on every call
 * and in every layer that splits this way (Winograd's runs of tiles too), so most of what a
 * thread reads is what it wrote itself the layer before, in its own core's caches; the claims
 * still even out items of unequal size and a core the host stalls. `resnet bench`, AMD EPYC
 * Zen 5 (two cores on two dies), 2 threads, alternated with the shared counter, 3-5 rounds,
 * medians, ms: fp32 resnet50 batch 1 19.93 -> 19.68, resnet18 batch 1 7.13 -> 7.06, resnet50
 * batch 32 581 -> 552, resnet18 batch 32 167.4 -> 166.2; bf16 resnet50 batch 1 14.14 -> 13.79,
 * batch 32 421 -> 408; inside resnet50 at batch 1 (`profile_layers`) its 56x56 stage's layers
 * 5-12% faster, the 28x28 stage's level (a static share of its 9 unequal items had been 15%
 * slower there); training steps (`resnet bench --train`, the four workloads of part 6) level.
 * More items than flags: the shared counter, as before. */
#define CLAIMED_ITEMS_MAX 4096

static void gemm_driver(const rn_kernels *kd, int M, int N, int K, const a_source *as,
                        const b_source *bs, float *b_ws, float beta, float *C, int ldc,
                        const rn_gemm_epilogue *ep, int max_threads) {
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        epilogue_only(M, N, beta, C, ldc, ep);
        return;
    }
    gemm_plan p = {.kd = rn_kernels_or_default(kd), .transa = as->transa, .M = M, .N = N, .K = K,
                   .lda = as->lda, .A = as->A, .bs = bs, .beta = beta, .C = C, .ldc = ldc,
                   .ep = ep};
    k_blocks(p.kd, K, &p.nkb, &p.kc);

    int threads = max_threads;
    if (2.0 * M * N * K < SERIAL_FLOPS && (double)M * K * sizeof(float) <= SERIAL_A_BYTES)
        threads = 1;
    if (b_ws && bs->im && N <= PREPACK_B_MAX_COLS) {
        p.bpack = b_ws;
        p.npad = packed_b_width(p.kd, N);
    }
    /* A packed once and shared when it is reused over many columns; else
     * read in place, only a ragged last panel packed (kernels without an
     * in-place A: packed per work item) */
    float *pack_now = NULL;
    if (as->packed)
        p.apack = (float *)as->packed;
    else if (as->pack_ws && p.N > RN_RAW_A_MAX_COLS)
        p.apack = pack_now = as->pack_ws;
    p.raw_b = rawb_pays(&p);
    plan_items(&p, threads);
    const int items = p.m_items * p.n_items;
    if (threads > items)
        threads = items;
    uint32_t flags[CLAIMED_ITEMS_MAX];
    const int claimed = items <= CLAIMED_ITEMS_MAX;
    if (claimed)
        memset(flags, 0, (size_t)items * sizeof *flags);
    const rn_claims claims = {.flags = flags, .cap = CLAIMED_ITEMS_MAX, .gen = 1};

#pragma omp parallel num_threads(threads)
    {
        _Alignas(64) float bbuf[B_BUF_FLOATS];
        _Alignas(64) float abuf[RN_KC_MAX * ITEM_A_ROWS]; /* >= RN_KC_MAX * RN_MR_MAX */
        if (pack_now)
            pack_a_all(p.kd, p.transa, M, K, p.A, p.lda, pack_now); /* ends with a barrier */
        if (p.bpack)
            pack_b_all(&p); /* ends with a barrier */
        if (claimed) {
            rn_claim_walk walk = rn_claims_walk(claims, rn_team_here(), items);
            for (long item; (item = rn_claims_next(&walk)) >= 0;)
                run_item(&p, (int)item, bbuf, abuf);
        } else {
#pragma omp for schedule(dynamic, 1)
            for (int item = 0; item < items; item++)
                run_item(&p, item, bbuf, abuf);
        }
    }
}

/* ---------------------------------------------------------------------------
 * Entry points
 * ------------------------------------------------------------------------- */

void rn_sgemm(const rn_kernels *kd, int transa, int transb, int M, int N, int K, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc,
              const rn_gemm_epilogue *ep) {
    a_source as = {.transa = transa, .A = A, .lda = lda};
    b_source bs = {.B = B, .ldb = ldb, .transb = transb, .N = N};
    gemm_driver(kd, M, N, K, &as, &bs, NULL, beta, C, ldc, ep, rn_threads());
}

void rn_sgemm_ws(const rn_kernels *kd, int transa, int transb, int M, int N, int K,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                 const rn_gemm_epilogue *ep, float *pack_ws) {
    a_source as = {.transa = transa, .A = A, .lda = lda, .pack_ws = pack_ws};
    b_source bs = {.B = B, .ldb = ldb, .transb = transb, .N = N};
    gemm_driver(kd, M, N, K, &as, &bs, NULL, beta, C, ldc, ep, rn_threads());
}

void rn_sgemm_1t(const rn_kernels *kd, int transa, int transb, int M, int N, int K,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                 const rn_gemm_epilogue *ep) {
    a_source as = {.transa = transa, .A = A, .lda = lda};
    b_source bs = {.B = B, .ldb = ldb, .transb = transb, .N = N};
    gemm_driver(kd, M, N, K, &as, &bs, NULL, beta, C, ldc, ep, 1);
}

void rn_sgemm_packed(const rn_kernels *kd, int M, int N, int K, const float *apacked, int transb,
                     const float *B, int ldb, float beta, float *C, int ldc,
                     const rn_gemm_epilogue *ep) {
    a_source as = {.packed = apacked};
    b_source bs = {.B = B, .ldb = ldb, .transb = transb, .N = N};
    gemm_driver(kd, M, N, K, &as, &bs, NULL, beta, C, ldc, ep, rn_threads());
}

void rn_sgemm_im2col(const rn_kernels *kd, int M, const float *A, int lda, const rn_im2col *im,
                     float beta, float *C, int ldc, const rn_gemm_epilogue *ep, float *pack_ws) {
    a_source as = {.A = A, .lda = lda, .pack_ws = pack_ws};
    b_source bs = {.im = im, .N = im->n * im->ho * im->wo};
    gemm_driver(kd, M, bs.N, im->c * im->kh * im->kw, &as, &bs, NULL, beta, C, ldc, ep,
                rn_threads());
}

void rn_sgemm_im2col_packed(const rn_kernels *kd, int M, const float *apacked,
                            const rn_im2col *im, float beta, float *C, int ldc,
                            const rn_gemm_epilogue *ep, float *b_ws) {
    a_source as = {.packed = apacked};
    b_source bs = {.im = im, .N = im->n * im->ho * im->wo};
    gemm_driver(kd, M, bs.N, im->c * im->kh * im->kw, &as, &bs, b_ws, beta, C, ldc, ep,
                rn_threads());
}

void rn_sgemm_packed_ab_1t(const rn_kernels *kd, int i0, int i1, int N, int K,
                           const float *apacked, int M, const float *bpacked, int npad, float *C,
                           int ldc) {
    kd = rn_kernels_or_default(kd);
    const int mr = kd->mr, nr = kd->nr, m_panels = ceil_div(M, mr);
    int nkb, kcb;
    k_blocks(kd, K, &nkb, &kcb);
    for (int ip = i0 / mr; ip < ceil_div(i1, mr); ip++) {
        for (int jp = 0; jp < ceil_div(N, nr); jp++) {
            /* the last panel as wide as the layout made it (rn_gemm_packed_b_index) */
            const int width = jp == npad / nr ? npad % nr : nr;
            const rn_gemm_kernel_fn fn = kd->fn[width / kd->nr_step - 1];
            rn_gemm_tile tile = {.ldc = ldc, .a_rs = 1, .a_cs = mr};
            tile.m = M - ip * mr < mr ? M - ip * mr : mr;
            tile.n = N - jp * nr < width ? N - jp * nr : width;
            tile.c = C + (ptrdiff_t)ip * mr * ldc + (ptrdiff_t)jp * nr;
            for (int kb = 0; kb < nkb; kb++) {
                const int k0 = kb * kcb, kc = K - k0 < kcb ? K - k0 : kcb;
                tile.beta = kb == 0 ? 0.0f : 1.0f;
                const float *a = apacked + (ptrdiff_t)k0 * m_panels * mr + (ptrdiff_t)ip * kc * mr;
                const float *b = bpacked + (ptrdiff_t)k0 * npad + (ptrdiff_t)jp * kc * nr;
                fn(kc, a, b, &tile);
            }
        }
    }
}

void rn_im2col_block(const rn_kernels *kd, const rn_im2col *im, int k0, int rows, long j0,
                     int ncols, float *dst, int ldd) {
    // panel: (kc, RN_PANEL_MAX) of im2col, copied out row by row into dst: (rows, ncols)
    _Alignas(64) float panel[RN_KC_MAX * RN_PANEL_MAX];
    const b_source bs = {.im = im, .N = im->n * im->ho * im->wo};
    kd = rn_kernels_or_default(kd);
    const int step = kd->nr_step;
    for (int t0 = 0; t0 < ncols; t0 += RN_PANEL_MAX) {
        const int cols = ncols - t0 < RN_PANEL_MAX ? ncols - t0 : RN_PANEL_MAX;
        const int width = ceil_div(cols, step) * step;
        for (int r0 = 0; r0 < rows; r0 += RN_KC_MAX) {
            const int kc = rows - r0 < RN_KC_MAX ? rows - r0 : RN_KC_MAX;
            pack_b_fp32(kd, &bs, k0 + r0, kc, j0 + t0, width, 1, panel);
            for (int r = 0; r < kc; r++)
                rn_copy_floats(dst + (ptrdiff_t)(r0 + r) * ldd + t0, panel + (ptrdiff_t)r * width,
                            cols);
        }
    }
}

void rn_sgemm_ref(int transa, int transb, int M, int N, int K, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc,
                  const rn_gemm_epilogue *ep) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double sum = 0.0;
            for (int k = 0; k < K; k++) {
                float a = transa ? A[(ptrdiff_t)k * lda + i] : A[(ptrdiff_t)i * lda + k];
                float b = transb ? B[(ptrdiff_t)j * ldb + k] : B[(ptrdiff_t)k * ldb + j];
                sum += (double)a * b;
            }
            float *c = C + (ptrdiff_t)i * ldc + j;
            float r = (float)sum;
            if (beta != 0.0f)
                r += beta * *c;
            if (ep && ep->bias)
                r += ep->bias[i];
            if (ep && ep->residual)
                r += ep->residual[(ptrdiff_t)i * ep->ldr + j];
            if (ep && ep->relu && r < 0.0f) /* NaN stays NaN, as in PyTorch */
                r = 0.0f;
            *c = r;
        }
}
