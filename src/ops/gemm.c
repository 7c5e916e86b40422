/*
 * gemm.c - the blocked, packed, threaded SGEMM (contract in gemm.h).
 *
 * Blocking, for C = A (M x K) * B (K x N):
 *   - K is cut into blocks of at most KC_MAX; the block size depends on K
 *     alone, so every element is summed in the same order on any thread count.
 *   - C is cut into work items (a range of MR-row panels x a range of
 *     NR-column panels), handed out dynamically. An item walks its K blocks;
 *     per block it packs one B micro-panel (kc x NR, L1-resident) at a time
 *     and runs it against every A micro-panel of the item (from L2).
 *   - A is packed once per call into MR-row micro-panels, shared by all
 *     threads, when N is wide enough to repay it; otherwise (and if that
 *     memory cannot be had) the kernels read A in place.
 *   - The last column panel is only as wide as it needs (16, 32 or 48 on
 *     AVX-512), so a narrow N (a batch-1 layer: 49 or 196) wastes little.
 * B comes from a matrix or straight from images (implicit im2col); only the
 * packer differs. Micro-kernels and packers meet in x86/kernels.h.
 */
#include "ops/gemm.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/mem.h"
#include "core/threads.h"
#include "ops/x86/kernels.h"

#define KC_MAX 192          /* K block: B micro-panel kc x NR stays in L1 */
#define MC_MAX 512          /* rows of A per work item: its K block stays in L2 */
#define ITEM_C_FLOATS 65536 /* C floats per work item: stays in L2 across K blocks */
#define MR_MAX 16
#define NR_MAX 64
#define SERIAL_FLOPS 2e6    /* below this, one thread */
#define RAW_A_MAX_PANELS 32 /* up to this many B panels, A is read in place */

/* ---------------------------------------------------------------------------
 * Kernel selection
 * ------------------------------------------------------------------------- */

/* Kernels for MR x (step, 2 step, .. nr) tiles: full panels are nr wide, the
 * last one only as wide as it needs. */
typedef struct gemm_kernel {
    int mr, nr, step;
    rn_gemm_kernel_fn fn[NR_MAX / 16];  /* fn[w / step - 1]: width w, packed A */
    rn_gemm_kernel_fn fn_raw[NR_MAX / 16];  /* the same reading A in place */
    int simd;                           /* the SIMD packers may be used */
    const char *name;
} gemm_kernel;

#define PORTABLE_MR 4
#define PORTABLE_NR 16

static void kernel_portable(int kc, const float *a, const float *b,
                            const rn_gemm_tile *t);

static int force_portable;

void rn_gemm_force_portable(int on) { force_portable = on; }

static gemm_kernel select_kernel(void) {
#ifdef RN_HAVE_X86_KERNELS
    __builtin_cpu_init();
    if (!force_portable && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
        return (gemm_kernel){RN_AVX512_MR, RN_AVX512_NR, 16,
                             {rn_sgemm_kernel_avx512_8x16, rn_sgemm_kernel_avx512_8x32,
                              rn_sgemm_kernel_avx512_8x48},
                             {rn_sgemm_kernel_avx512_8x16_rawa,
                              rn_sgemm_kernel_avx512_8x32_rawa,
                              rn_sgemm_kernel_avx512_8x48_rawa},
                             1, "avx512 8x48"};
#endif
    return (gemm_kernel){PORTABLE_MR, PORTABLE_NR, PORTABLE_NR, {kernel_portable},
                         {kernel_portable}, 0, "portable 4x16"};
}

const char *rn_gemm_kernel_name(void) { return select_kernel().name; }

/* ---------------------------------------------------------------------------
 * Portable micro-kernel: PORTABLE_MR x PORTABLE_NR, written for the
 * auto-vectoriser: the tile loops unrolled so the accumulators stay in
 * registers, the inner one running across the NR columns.
 * ------------------------------------------------------------------------- */

static void kernel_portable(int kc, const float *a, const float *b,
                            const rn_gemm_tile *t) {
    float acc[PORTABLE_MR][PORTABLE_NR] = {{0}};
    for (int k = 0; k < kc; k++) {
        const float *ak = a + (ptrdiff_t)k * t->a_cs;
        const float *bk = b + (ptrdiff_t)k * PORTABLE_NR;
#pragma GCC unroll 16
        for (int i = 0; i < PORTABLE_MR; i++) {
            const float ai = ak[(ptrdiff_t)i * t->a_rs];
#pragma GCC unroll 16
            for (int j = 0; j < PORTABLE_NR; j++)
                acc[i][j] += ai * bk[j];
        }
    }
    for (int i = 0; i < t->m; i++) {
        float *c = t->c + (ptrdiff_t)i * t->ldc;
        const float *res = t->residual ? t->residual + (ptrdiff_t)i * t->ldr : NULL;
        for (int j = 0; j < t->n; j++) {
            float r = acc[i][j];
            if (t->beta != 0.0f)
                r += t->beta * c[j];
            if (t->last) {
                if (t->bias)
                    r += t->bias[i];
                if (res)
                    r += res[j];
                if (t->relu && r < 0.0f) /* NaN stays NaN, as in PyTorch */
                    r = 0.0f;
            }
            c[j] = r;
        }
    }
}

/* ---------------------------------------------------------------------------
 * Packing
 * ------------------------------------------------------------------------- */

/* dst[k * mr + i] = op(A)[i0 + i, k0 + k], zero for rows >= M. */
static void pack_a(int transa, const float *A, int lda, int M, int i0, int k0, int kc,
                   int mr, float *dst) {
    int rows = M - i0 < mr ? M - i0 : mr;
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

/* Where B comes from: a matrix, or the im2col of images. */
typedef struct b_source {
    const float *B;         /* matrix: op(B) is K x N */
    int ldb, transb;
    const rn_im2col *im;    /* or im2col, when not NULL */
    int N;
} b_source;

/* dst[k * nr + j] = op(B)[k0 + k, j0 + j], zero for columns >= N. */
static void pack_b_matrix(const b_source *bs, int k0, int kc, long j0, int nr,
                          float *dst) {
    int cols = bs->N - j0 < nr ? (int)(bs->N - j0) : nr;
    if (!bs->transb) {
        for (int k = 0; k < kc; k++) {
            float *row = dst + (ptrdiff_t)k * nr;
            memcpy(row, bs->B + (ptrdiff_t)(k0 + k) * bs->ldb + j0,
                   (size_t)cols * sizeof(float));
            for (int j = cols; j < nr; j++)
                row[j] = 0.0f;
        }
    } else {
        for (int j = 0; j < cols; j++) {
            const float *src = bs->B + (ptrdiff_t)(j0 + j) * bs->ldb + k0;
            for (int k = 0; k < kc; k++)
                dst[(ptrdiff_t)k * nr + j] = src[k];
        }
        for (int k = 0; k < kc; k++)
            for (int j = cols; j < nr; j++)
                dst[(ptrdiff_t)k * nr + j] = 0.0f;
    }
}

/* The same panel of im2col(x), element by element. */
static void pack_b_im2col(const rn_im2col *im, int k0, int kc, long j0, int nr,
                          float *dst) {
    const long n_cols = (long)im->n * im->ho * im->wo;
    const int count = n_cols - j0 < nr ? (int)(n_cols - j0) : nr;
    const int s = im->stride, H = im->h, W = im->w;
    const ptrdiff_t plane = (ptrdiff_t)im->n * H * W;
    const int khw = im->kh * im->kw;
    rn_im2col_run runs[NR_MAX];
    const int nrun = rn_im2col_runs(im, j0, count, runs);

    int ci = k0 / khw, ki = (k0 % khw) / im->kw, kj = k0 % im->kw;
    for (int k = 0; k < kc; k++) {
        const float *xc = im->x + ci * plane;
        float *row = dst + (ptrdiff_t)k * nr;
        for (int j = 0; j < nr; j++)
            row[j] = 0.0f;
        for (int r = 0; r < nrun; r++) {
            const rn_im2col_run *run = &runs[r];
            int ih = run->ih0 + ki;
            if (ih < 0 || ih >= H)
                continue;
            int iw = run->iw0 + kj;
            int tlo = iw >= 0 ? 0 : (-iw + s - 1) / s;
            int thi = iw < W ? (W - iw + s - 1) / s : 0;
            if (thi > run->len)
                thi = run->len;
            ptrdiff_t at = run->base + (ptrdiff_t)ih * W + iw;
            for (int t = tlo; t < thi; t++)
                row[run->lane + t] = xc[at + (ptrdiff_t)t * s];
        }
        if (++kj == im->kw) {
            kj = 0;
            if (++ki == im->kh) {
                ki = 0;
                ci++;
            }
        }
    }
}

/* One B panel, nr columns wide. */
static void pack_b(const b_source *bs, int simd, int k0, int kc, long j0, int nr,
                   float *dst) {
    if (!bs->im) {
        pack_b_matrix(bs, k0, kc, j0, nr, dst);
        return;
    }
#ifdef RN_HAVE_X86_KERNELS
    if (simd) {
        rn_im2col_pack_avx512(bs->im, k0, kc, j0, nr, dst);
        return;
    }
#else
    (void)simd;
#endif
    pack_b_im2col(bs->im, k0, kc, j0, nr, dst);
}

/* ---------------------------------------------------------------------------
 * Driver
 * ------------------------------------------------------------------------- */

typedef struct gemm_plan {
    gemm_kernel kd;
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
    float *apack;           /* all of A packed (K blocks of Mp x kc), or NULL */
} gemm_plan;

static int ceil_div(long a, long b) { return (int)((a + b - 1) / b); }

/* One work item: panels [ip0, ip1) x [jp0, jp1) of C over all of K. */
static void run_item(const gemm_plan *p, int item, float *bbuf, float *abuf) {
    const int mr = p->kd.mr, nr = p->kd.nr;
    const int mi = item % p->m_items, ni = item / p->m_items;
    const int ip0 = mi * p->mcp, jp0 = ni * p->ncp;
    const int ip1 = ip0 + p->mcp < p->m_panels ? ip0 + p->mcp : p->m_panels;
    const int jp1 = jp0 + p->ncp < p->n_panels ? jp0 + p->ncp : p->n_panels;
    const rn_gemm_epilogue *ep = p->ep;

    for (int kb = 0; kb < p->nkb; kb++) {
        const int k0 = kb * p->kc;
        const int kc = p->K - k0 < p->kc ? p->K - k0 : p->kc;
        rn_gemm_tile tile = {
            .ldc = p->ldc,
            .beta = kb == 0 ? p->beta : 1.0f,
            .last = kb == p->nkb - 1,
            .ldr = ep ? ep->ldr : 0,
            .relu = ep ? ep->relu : 0,
        };
        for (int jp = jp0; jp < jp1; jp++) {
            const long j0 = (long)jp * nr;
            tile.n = p->N - j0 < nr ? (int)(p->N - j0) : nr;
            const int width = ceil_div(tile.n, p->kd.step) * p->kd.step;
            pack_b(p->bs, p->kd.simd, k0, kc, j0, width, bbuf);
            for (int ip = ip0; ip < ip1; ip++) {
                const int i0 = ip * mr;
                const float *a;
                rn_gemm_kernel_fn fn = p->kd.fn[width / p->kd.step - 1];
                tile.m = p->M - i0 < mr ? p->M - i0 : mr;
                tile.a_rs = 1;
                tile.a_cs = mr;
                if (p->apack) {
                    a = p->apack + (ptrdiff_t)k0 * p->m_panels * mr + (ptrdiff_t)ip * kc * mr;
                } else if (tile.m == mr) {
                    /* op(A)[i0, k0] in place */
                    a = p->transa ? p->A + (ptrdiff_t)k0 * p->lda + i0
                                  : p->A + (ptrdiff_t)i0 * p->lda + k0;
                    tile.a_rs = p->transa ? 1 : p->lda;
                    tile.a_cs = p->transa ? p->lda : 1;
                    fn = p->kd.fn_raw[width / p->kd.step - 1];
                } else {
                    pack_a(p->transa, p->A, p->lda, p->M, i0, k0, kc, mr, abuf);
                    a = abuf;
                }
                tile.c = p->C + (ptrdiff_t)i0 * p->ldc + j0;
                tile.bias = ep && ep->bias ? ep->bias + i0 : NULL;
                tile.residual =
                    ep && ep->residual ? ep->residual + (ptrdiff_t)i0 * ep->ldr + j0 : NULL;
                fn(kc, a, bbuf, &tile);
            }
        }
    }
}

/* Splits C into work items: whole rows of A up to MC_MAX, columns so that an
 * item's C fits in L2, then smaller until every thread has a few items. */
static void plan_items(gemm_plan *p, int threads) {
    const int mr = p->kd.mr, nr = p->kd.nr;
    p->m_panels = ceil_div(p->M, mr);
    p->n_panels = ceil_div(p->N, nr);
    p->m_items = ceil_div(p->m_panels, MC_MAX / mr);
    p->mcp = ceil_div(p->m_panels, p->m_items);
    p->ncp = ITEM_C_FLOATS / (p->mcp * mr * nr);
    if (p->ncp < 1)
        p->ncp = 1;
    if (p->ncp > p->n_panels)
        p->ncp = p->n_panels;
    p->n_items = ceil_div(p->n_panels, p->ncp);
    while (threads > 1 && p->m_items * p->n_items < 4 * threads) {
        if (p->ncp > 1) {
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


/* The packed copy of A lives in a buffer of the calling thread that only
 * grows: after the first pass over a network's shapes (the first training
 * step or batch), GEMMs allocate nothing. */
static _Thread_local float *apack_mem;
static _Thread_local size_t apack_cap;

static float *apack_buffer(size_t floats) {
    if (floats > apack_cap) {
        float *p = rn_alloc(floats * sizeof(float));
        if (!p)
            return NULL; /* the kernels then read A in place */
        rn_free(apack_mem);
        apack_mem = p;
        apack_cap = floats;
    }
    return apack_mem;
}

static void gemm_driver(int transa, int M, int N, int K, const float *A, int lda,
                        const b_source *bs, float beta, float *C, int ldc,
                        const rn_gemm_epilogue *ep, int max_threads) {
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        epilogue_only(M, N, beta, C, ldc, ep);
        return;
    }
    gemm_plan p = {.kd = select_kernel(), .transa = transa, .M = M, .N = N, .K = K,
                   .lda = lda, .A = A, .bs = bs, .beta = beta, .C = C, .ldc = ldc,
                   .ep = ep};
    p.nkb = ceil_div(K, KC_MAX);
    p.kc = ceil_div(K, p.nkb);

    int threads = max_threads;
    if (2.0 * M * N * K < SERIAL_FLOPS)
        threads = 1;
    plan_items(&p, threads);
    const int items = p.m_items * p.n_items;
    if (threads > items)
        threads = items;

    /* A packed once and shared when it is reused over many columns; else (or
     * without the memory) read in place, only a ragged last panel packed. */
    size_t apack_floats;
    if (p.n_panels > RAW_A_MAX_PANELS)
        if (rn_size_mul((size_t)p.m_panels * p.kd.mr, (size_t)K, &apack_floats))
            p.apack = apack_buffer(apack_floats);

#pragma omp parallel num_threads(threads)
    {
        _Alignas(64) float bbuf[KC_MAX * NR_MAX];
        _Alignas(64) float abuf[KC_MAX * MR_MAX];
        if (p.apack) {
            const int mr = p.kd.mr;
#pragma omp for schedule(static)
            for (long t = 0; t < (long)p.nkb * p.m_panels; t++) {
                const int kb = (int)(t / p.m_panels), ip = (int)(t % p.m_panels);
                const int k0 = kb * p.kc;
                const int kc = K - k0 < p.kc ? K - k0 : p.kc;
                pack_a(transa, A, lda, M, ip * mr, k0, kc, mr,
                       p.apack + (ptrdiff_t)k0 * p.m_panels * mr + (ptrdiff_t)ip * kc * mr);
            }
        }
#pragma omp for schedule(dynamic, 1)
        for (int item = 0; item < items; item++)
            run_item(&p, item, bbuf, abuf);
    }
}

/* ---------------------------------------------------------------------------
 * Entry points
 * ------------------------------------------------------------------------- */

void rn_sgemm(int transa, int transb, int M, int N, int K, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc,
              const rn_gemm_epilogue *ep) {
    b_source bs = {.B = B, .ldb = ldb, .transb = transb, .N = N};
    gemm_driver(transa, M, N, K, A, lda, &bs, beta, C, ldc, ep, rn_threads());
}

void rn_sgemm_1t(int transa, int transb, int M, int N, int K, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc,
                 const rn_gemm_epilogue *ep) {
    b_source bs = {.B = B, .ldb = ldb, .transb = transb, .N = N};
    gemm_driver(transa, M, N, K, A, lda, &bs, beta, C, ldc, ep, 1);
}

void rn_sgemm_im2col(int M, const float *A, int lda, const rn_im2col *im, float beta,
                     float *C, int ldc, const rn_gemm_epilogue *ep) {
    const int K = im->c * im->kh * im->kw;
    const int N = im->n * im->ho * im->wo;
    b_source bs = {.im = im, .N = N};
    gemm_driver(0, M, N, K, A, lda, &bs, beta, C, ldc, ep, rn_threads());
}

void rn_im2col_block(const rn_im2col *im, int k0, int rows, long j0, int ncols, float *dst,
                     int ldd) {
    // panel: (kc, NR_MAX) of im2col, copied out row by row into dst: (rows, ncols)
    _Alignas(64) float panel[KC_MAX * NR_MAX];
    const b_source bs = {.im = im, .N = im->n * im->ho * im->wo};
    const int simd = select_kernel().simd;
    for (int t0 = 0; t0 < ncols; t0 += NR_MAX) {
        const int cols = ncols - t0 < NR_MAX ? ncols - t0 : NR_MAX;
        const int width = ceil_div(cols, 16) * 16;
        for (int r0 = 0; r0 < rows; r0 += KC_MAX) {
            const int kc = rows - r0 < KC_MAX ? rows - r0 : KC_MAX;
            pack_b(&bs, simd, k0 + r0, kc, j0 + t0, width, panel);
            for (int r = 0; r < kc; r++) {
                /* fixed-size copies: a variable-length memcpy compiles to rep movs */
                float *d = dst + (ptrdiff_t)(r0 + r) * ldd + t0;
                const float *src = panel + (ptrdiff_t)r * width;
                int j = 0;
                for (; j + 16 <= cols; j += 16)
                    memcpy(d + j, src + j, 16 * sizeof(float));
                for (; j < cols; j++)
                    d[j] = src[j];
            }
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
