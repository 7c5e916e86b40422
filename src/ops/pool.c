/*
 * pool.c - max pooling and global average pooling, forward and backward.
 *
 * Planes: x: (P, H, W) with P = C*N in the channel-major layout.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/threads.h"
#include "ops/kernels.h"
#include "ops/ops.h"

int maxpool2d_out_size(int in, int k, int stride, int pad) {
    int span = in + 2 * pad - k;
    return span < 0 ? 0 : span / stride + 1;
}

/* ---- max pooling ------------------------------------------------------------ */

/* The part of a k-wide window starting at o0 = out * stride - pad that lies
 * inside 0..n-1, as kernel offsets [*k0, *k1). */
static inline void window_clip(int o0, int k, int n, int *k0, int *k1) {
    *k0 = o0 < 0 ? -o0 : 0;
    *k1 = o0 + k > n ? n - o0 : k;
}

/* Whether x[0 .. n-1] holds a NaN (a pass the compiler vectorizes). */
static int has_nan(const float *x, size_t n) {
    int found = 0;
#pragma omp simd reduction(| : found)
    for (size_t i = 0; i < n; i++)
        found |= x[i] != x[i];
    return found;
}

/* Outputs [ox0, ox1) of one output row whose windows lie wholly inside the
 * plane: x points at the window of output ox0. Each window is scanned in
 * the reference's order with its rule (a later value replaces the maximum
 * only when greater), so ties (+0 after -0) resolve the same, bit for bit;
 * K and S are constants where inlined, and the loop runs across outputs in
 * SIMD lanes. */
static inline __attribute__((always_inline)) void
pool_interior(const float *x, int W, int K, int S, int ox0, int ox1, float *y) {
#pragma omp simd
    for (int ox = ox0; ox < ox1; ox++) {
        const float *w = x + (ptrdiff_t)(ox - ox0) * S;
        float m = -INFINITY;
#pragma GCC unroll 16
        for (int t = 0; t < K * K; t++) {
            const float v = w[(ptrdiff_t)(t / K) * W + t % K];
            m = v > m ? v : m;
        }
        y[ox] = m;
    }
}

/* Along an axis of n inputs and out outputs: the outputs [*lo, *hi) whose
 * windows lie wholly inside (o * stride - pad >= 0, o * stride - pad + k <= n). */
static void inside_range(int n, int k, int stride, int pad, int out, int *lo, int *hi) {
    *lo = (pad + stride - 1) / stride;
    *hi = n + pad - k < 0 ? 0 : (n + pad - k) / stride + 1;
    *hi = *hi > out ? out : *hi;
    *lo = *lo > *hi ? *hi : *lo;
}

/* As pool_interior, with each window's winner: the tap where the maximum was last replaced
 * (tap 0, the first in-bounds one, where nothing beats -inf). */
static inline __attribute__((always_inline)) void
pool_interior_arg(const float *x, int W, int K, int S, int ox0, int ox1, float *y, uint8_t *arg) {
#pragma omp simd
    for (int ox = ox0; ox < ox1; ox++) {
        const float *w = x + (ptrdiff_t)(ox - ox0) * S;
        float m = -INFINITY, at = 0.0f; /* the tap as a float: selects of one type vectorize */
#pragma GCC unroll 16
        for (int t = 0; t < K * K; t++) {
            const float v = w[(ptrdiff_t)(t / K) * W + t % K];
            at = v > m ? (float)t : at;
            m = v > m ? v : m;
        }
        y[ox] = m;
        arg[ox] = (uint8_t)(int)at;
    }
}

/* One window that may cross the plane's border, by the reference's scan and rule, its winner
 * into *arg where arg is not NULL (a window wholly in the padding has none); `nan`: the plane
 * holds a NaN, which then wins (the last one), else the plain "greater replaces" as selects, no
 * branch on the data. */
static inline __attribute__((always_inline)) float
pool_clipped(const float *x, int H, int W, int k, int stride, int pad, int oy, int ox, int nan,
             uint8_t *arg) {
    int y0 = oy * stride - pad, x0 = ox * stride - pad, ky0, ky1, kx0, kx1;
    window_clip(y0, k, H, &ky0, &ky1);
    window_clip(x0, k, W, &kx0, &kx1);
    float m = -INFINITY;
    int at = ky1 > ky0 && kx1 > kx0 ? ky0 * k + kx0 : RN_POOL_NO_WINNER;
    for (int ky = ky0; ky < ky1; ky++) {
        const float *row = x + (size_t)(y0 + ky) * W + x0;
        for (int kx = kx0; kx < kx1; kx++) {
            const float v = row[kx];
            const int wins = nan ? v > m || v != v : v > m;
            at = wins ? ky * k + kx : at;
            m = wins ? v : m;
        }
    }
    if (arg)
        *arg = (uint8_t)at;
    return m;
}

/* One plane: the largest value of each window and, with arg (else NULL), its winner (the tap
 * where the maximum was last replaced); inlined into its two callers, so that the plain forward
 * computes no winners. A plane holding a NaN (found first, in one pass) has
 * every window scanned by the reference's rule, which passes the NaN on as PyTorch does;
 * otherwise windows inside the plane go through pool_interior (ResNet's 3x3 stride-2 pool with
 * constant sizes), those on the border one at a time. */
static inline __attribute__((always_inline)) void
maxpool_plane(const float *x, int H, int W, int k, int stride, int pad, int HO, int WO, float *y,
              uint8_t *arg) {
    const int nan = has_nan(x, (size_t)H * W);
    int lo_y, hi_y, lo_x, hi_x;
    inside_range(H, k, stride, pad, HO, &lo_y, &hi_y);
    inside_range(W, k, stride, pad, WO, &lo_x, &hi_x);
    for (int oy = 0; oy < HO; oy++) {
        float *yr = y + (size_t)oy * WO;
        uint8_t *ar = arg ? arg + (size_t)oy * WO : NULL;
        const int inside = !nan && oy >= lo_y && oy < hi_y;
        for (int ox = 0; ox < WO; ox++) {
            if (inside && ox == lo_x && hi_x > lo_x) {
                const float *w = x + (size_t)(oy * stride - pad) * W + (lo_x * stride - pad);
                if (ar && k == 3 && stride == 2)
                    pool_interior_arg(w, W, 3, 2, lo_x, hi_x, yr, ar);
                else if (ar)
                    pool_interior_arg(w, W, k, stride, lo_x, hi_x, yr, ar);
                else if (k == 3 && stride == 2)
                    pool_interior(w, W, 3, 2, lo_x, hi_x, yr);
                else
                    pool_interior(w, W, k, stride, lo_x, hi_x, yr);
                ox = hi_x - 1;
                continue;
            }
            yr[ox] = pool_clipped(x, H, W, k, stride, pad, oy, ox, nan, ar ? ar + ox : NULL);
        }
    }
}

void maxpool2d_forward_ref(const float *x, int P, int H, int W, int k, int stride,
                           int pad, float *y) {
    int HO = maxpool2d_out_size(H, k, stride, pad), WO = maxpool2d_out_size(W, k, stride, pad);
    for (int p = 0; p < P; p++)
        for (int oy = 0; oy < HO; oy++)
            for (int ox = 0; ox < WO; ox++) {
                float m = -INFINITY;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                            continue;
                        float v = x[((size_t)p * H + iy) * W + ix];
                        if (v > m || v != v) /* PyTorch's rule: NaN wins */
                            m = v;
                    }
                y[((size_t)p * HO + oy) * WO + ox] = m;
            }
}

void maxpool2d_forward(const float *x, int P, int H, int W, int k, int stride,
                       int pad, float *y) {
    int HO = maxpool2d_out_size(H, k, stride, pad), WO = maxpool2d_out_size(W, k, stride, pad);
#pragma omp parallel for num_threads(rn_threads()) schedule(static)
    for (int p = 0; p < P; p++)
        maxpool_plane(x + (size_t)p * H * W, H, W, k, stride, pad, HO, WO,
                      y + (size_t)p * HO * WO, NULL);
}

/* ---- max pooling that keeps its winners (a training step's) ---------------------------- */

void maxpool2d_forward_arg(const float *x, int P, int H, int W, int k, int stride, int pad,
                           float *y, uint8_t *arg) {
    int HO = maxpool2d_out_size(H, k, stride, pad), WO = maxpool2d_out_size(W, k, stride, pad);
#pragma omp parallel for num_threads(rn_threads()) schedule(static)
    for (int p = 0; p < P; p++)
        maxpool_plane(x + (size_t)p * H * W, H, W, k, stride, pad, HO, WO,
                      y + (size_t)p * HO * WO, arg + (size_t)p * HO * WO);
}

void maxpool2d_backward_arg(const uint8_t *arg, const float *dy, int P, int H, int W, int k,
                            int stride, int pad, float *dx) {
    int HO = maxpool2d_out_size(H, k, stride, pad), WO = maxpool2d_out_size(W, k, stride, pad);
    ptrdiff_t off[RN_POOL_ARG_MAX_K * RN_POOL_ARG_MAX_K]; /* a winner's offset in its window */
    for (int t = 0; t < k * k && k <= RN_POOL_ARG_MAX_K; t++)
        off[t] = (ptrdiff_t)(t / k) * W + t % k;
#pragma omp parallel for num_threads(rn_threads()) schedule(static)
    for (int p = 0; p < P; p++) {
        float *d = dx + (size_t)p * H * W;
        const uint8_t *a = arg + (size_t)p * HO * WO;
        const float *g = dy + (size_t)p * HO * WO;
        memset(d, 0, (size_t)H * W * sizeof(float));
        for (int oy = 0; oy < HO; oy++)
            for (int ox = 0; ox < WO; ox++) {
                const int t = a[oy * WO + ox];
                if (t != RN_POOL_NO_WINNER) /* each window's origin may lie in the padding */
                    d[(ptrdiff_t)(oy * stride - pad) * W + (ox * stride - pad) + off[t]] +=
                        g[oy * WO + ox];
            }
    }
}

/* Outputs per chunk of a row in the blocked pool: their 16 channels gathered, then stored as
 * 16 runs along the output rows. */
#define BLOCKED_CHUNK 64

/* One chunk of outputs [ox0, ox0 + cols) of output row oy of a blocked plane xq (H x W x 16)
 * into m: each window scanned in the reference's order. With `exact` the reference's rule (a
 * NaN wins); without, the plane holds no NaN and the rule is a plain "greater replaces", which
 * the compiler turns into max instructions (their tie keeps the first operand's zero, as the
 * rule does). */
static inline __attribute__((always_inline)) void
pool_chunk16(const float *xq, int H, int W, int k, int stride, int pad, int oy, int ox0, int cols,
             int exact, float m[BLOCKED_CHUNK][16]) {
    int ky0, ky1;
    window_clip(oy * stride - pad, k, H, &ky0, &ky1);
    for (int c = 0; c < cols; c++) {
        const int x0 = (ox0 + c) * stride - pad;
        int kx0, kx1;
        window_clip(x0, k, W, &kx0, &kx1);
        if (!exact && k == 3 && ky1 - ky0 == 3 && kx1 - kx0 == 3) {
            /* a whole 3x3 window (ResNet's pool): the 9 taps unrolled, each lane's maximum in
             * a register */
            const float *w = xq + ((size_t)(oy * stride - pad) * W + x0) * 16;
#pragma omp simd
            for (int l = 0; l < 16; l++) {
                float mx = -INFINITY;
#pragma GCC unroll 9
                for (int t = 0; t < 9; t++) {
                    const float v = w[((size_t)(t / 3) * W + t % 3) * 16 + l];
                    mx = v > mx ? v : mx;
                }
                m[c][l] = mx;
            }
            continue;
        }
        float mc[16];
        for (int l = 0; l < 16; l++)
            mc[l] = -INFINITY;
        for (int ky = ky0; ky < ky1; ky++)
            for (int kx = kx0; kx < kx1; kx++) {
                const float *v = xq + ((size_t)(oy * stride - pad + ky) * W + x0 + kx) * 16;
                if (exact) {
#pragma omp simd
                    for (int l = 0; l < 16; l++)
                        mc[l] = v[l] > mc[l] || v[l] != v[l] ? v[l] : mc[l];
                } else {
#pragma omp simd
                    for (int l = 0; l < 16; l++)
                        mc[l] = v[l] > mc[l] ? v[l] : mc[l];
                }
            }
        for (int l = 0; l < 16; l++)
            m[c][l] = mc[l];
    }
}

/* Output rows per work item of the blocked pool: at batch 1, resnet's 56 rows of 4 blocks
 * make 28 items rather than 4, claimed (each thread its own run of bands, then what is left of
 * the other's: rn_claims), so that a thread the host stalls (the Xeon VM here: 10-46% steal
 * time under load) leaves its rows to the other; the items go band by band across the blocks,
 * so each thread pools the rows whose stem output it wrote (the stem's threads take runs of
 * its rows the same way: conv_direct.c), and the next layer reads the rows it pooled. Each
 * band scans its own input rows for NaN, which are then in cache for the pool. Xeon (Sapphire
 * Rapids class), 2 threads, `profile_layers` in ABBA order, medians, 28 items shared out
 * guided against one item per image's block: resnet50 batch 1 0.54 -> 0.44 ms, resnet18 batch
 * 32 19.2 -> 16.3 ms; claimed against guided, AMD EPYC Zen 5: batch 1 0.13-0.15 -> 0.09-0.12
 * ms, batch 32 level. */
#define BLOCKED_BAND_ROWS 8

/* Output columns [c0, c1) of output row oy of image img's block b (plane xq) by pool_chunk16,
 * stored as 16 runs along the output rows. */
static void pool_cols16(const float *xq, int H, int W, int k, int stride, int pad, int oy, int c0,
                        int c1, int exact, float *yrow, size_t ldy) {
    float m[BLOCKED_CHUNK][16];
    for (int ox0 = c0; ox0 < c1; ox0 += BLOCKED_CHUNK) {
        const int cols = c1 - ox0 < BLOCKED_CHUNK ? c1 - ox0 : BLOCKED_CHUNK;
        if (exact)
            pool_chunk16(xq, H, W, k, stride, pad, oy, ox0, cols, 1, m);
        else
            pool_chunk16(xq, H, W, k, stride, pad, oy, ox0, cols, 0, m);
        for (int l = 0; l < 16; l++)
            for (int c = 0; c < cols; c++)
                yrow[l * ldy + (size_t)ox0 + c] = m[c][l];
    }
}

/* What every item (band) of one maxpool2d_forward_blocked16 call reads. */
typedef struct pool16_run {
    const float *x;
    float *y;
    rn_maxpool16_fn fast;
    rn_has_nan_fn any_nan;
    int blocks, n, H, W, k, stride, pad, HO, WO, bands, ca, cb;
} pool16_run;

/* Item q: one band of output rows of one image's block of 16 channels. */
static void pool_band16(const pool16_run *r, long q) {
    const int H = r->H, W = r->W, k = r->k, stride = r->stride, pad = r->pad, WO = r->WO;
    const long img = q / ((long)r->bands * r->blocks), band = q / r->blocks % r->bands,
               b = q % r->blocks;
    const size_t plane = (size_t)r->HO * WO;
    const float *xq = r->x + ((size_t)b * r->n + (size_t)img) * H * W * 16;
    const int oy0 = (int)band * BLOCKED_BAND_ROWS;
    const int oy1 = oy0 + BLOCKED_BAND_ROWS < r->HO ? oy0 + BLOCKED_BAND_ROWS : r->HO;
    /* the input rows the band's windows read */
    const int r0 = oy0 * stride - pad < 0 ? 0 : oy0 * stride - pad;
    const int r1 = (oy1 - 1) * stride - pad + k > H ? H : (oy1 - 1) * stride - pad + k;
    const int exact = r1 > r0 && r->any_nan(xq + (size_t)r0 * W * 16, (size_t)(r1 - r0) * W * 16);
    for (int oy = oy0; oy < oy1; oy++) {
        float *yrow = r->y + ((size_t)b * 16 * r->n + (size_t)img) * plane + (size_t)oy * WO;
        const size_t ldy = (size_t)r->n * plane; /* channel l + 1's plane after channel l's */
        /* the next output row's lines in its 16 planes asked for, to be written, while this
         * one is pooled: 16 short runs a row, far apart, which the hardware does not foresee,
         * each otherwise waiting on memory at its first store (resnet18's pool after the stem,
         * `profile_layers`, Zen 5, 2 threads, 3 rounds alternated, ms: bf16 batch 32
         * 3.45-3.66 -> 3.22-3.37, batch 1 0.095-0.103 -> 0.088-0.089; fp32 batch 32 3.50-3.71
         * -> 3.19-3.32, batch 1 0.098-0.102 -> 0.081-0.088) */
        if (oy + 1 < oy1)
            for (int l = 0; l < 16; l++)
                for (int c = 0; c < WO; c += 16)
                    __builtin_prefetch(yrow + WO + l * ldy + c, 1, 3);
        const int y0 = oy * stride - pad;
        if (!r->fast || exact || y0 < 0 || y0 + 3 > H || r->cb <= r->ca) {
            pool_cols16(xq, H, W, k, stride, pad, oy, 0, WO, exact, yrow, ldy);
            continue;
        }
        pool_cols16(xq, H, W, k, stride, pad, oy, 0, r->ca, 0, yrow, ldy);
        r->fast(xq + ((size_t)y0 * W + (size_t)(2 * r->ca - pad)) * 16, (ptrdiff_t)W * 16,
                r->cb - r->ca, yrow + r->ca, (ptrdiff_t)ldy);
        pool_cols16(xq, H, W, k, stride, pad, oy, r->cb, WO, 0, yrow, ldy);
    }
}

/* Bands claimed (rn_claims) up to this many, else shared out guided. */
#define POOL_CLAIMED_MAX 4096

void maxpool2d_forward_blocked16(const rn_kernels *kd, const float *x, int blocks, int n, int H,
                                 int W, int k, int stride, int pad, float *y) {
    kd = rn_kernels_or_default(kd);
    pool16_run r = {.x = x, .y = y, .fast = k == 3 && stride == 2 ? kd->maxpool16 : NULL,
                    .any_nan = kd->has_nan ? kd->has_nan : has_nan, .blocks = blocks, .n = n,
                    .H = H, .W = W, .k = k, .stride = stride, .pad = pad,
                    .HO = maxpool2d_out_size(H, k, stride, pad),
                    .WO = maxpool2d_out_size(W, k, stride, pad)};
    r.bands = (r.HO + BLOCKED_BAND_ROWS - 1) / BLOCKED_BAND_ROWS;
    /* where fast runs (3x3 at stride 2), the output columns whose windows lie inside the rows
     * (the kernel's): [ca, cb) */
    const int cb_all = W + pad >= 3 ? (W + pad - 3) / 2 + 1 : 0;
    r.ca = (pad + 1) / 2;
    r.cb = cb_all < r.WO ? cb_all : r.WO;
    const long items = (long)n * r.bands * blocks;
    if (items > POOL_CLAIMED_MAX) {
#pragma omp parallel for num_threads(rn_threads()) schedule(guided)
        for (long q = 0; q < items; q++)
            pool_band16(&r, q);
        return;
    }
    uint32_t flags[POOL_CLAIMED_MAX];
    memset(flags, 0, (size_t)items * sizeof *flags);
    const rn_claims claims = {.flags = flags, .cap = POOL_CLAIMED_MAX, .gen = 1};
#pragma omp parallel num_threads(rn_threads())
    {
        rn_claim_walk walk = rn_claims_walk(claims, rn_team_here(), items);
        for (long q; (q = rn_claims_next(&walk)) >= 0;)
            pool_band16(&r, q);
    }
}

/* ---- global average pooling ---------------------------------------------------- */

void avgpool_global_forward_ref(const float *x, size_t P, size_t HW, float *y) {
    for (size_t p = 0; p < P; p++) {
        float sum = 0.0f;
        for (size_t i = 0; i < HW; i++)
            sum += x[p * HW + i];
        y[p] = sum / (float)HW;
    }
}

void avgpool_global_forward(const float *x, size_t P, size_t HW, float *y) {
#pragma omp parallel for num_threads(rn_threads()) schedule(static)
    for (size_t p = 0; p < P; p++) {
        const float *row = x + p * HW;
        float acc[8] = {0};
        size_t i = 0;
        for (; i + 8 <= HW; i += 8)
            for (int j = 0; j < 8; j++)
                acc[j] += row[i + j];
        for (; i < HW; i++)
            acc[0] += row[i];
        float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        y[p] = sum / (float)HW;
    }
}

/* ---- backward -------------------------------------------------------------------
 * Max pooling sends each dy to the first maximum of its window in scan order
 * (ky, then kx), as PyTorch: the candidate starts at the window's first
 * in-bounds element with the value -inf, and moves on a strictly greater
 * value (or a NaN). Windows overlap when stride < k: a plane's outputs are
 * added in order, and planes are split over the threads. */

/* Bit 8 r + c set where window element (r, c) is the window's winner: for
 * a maximum m that is not NaN, the elements with m's bits (the first of
 * them is the forward's choice: an earlier element equal to m, even -0 for
 * +0, would have been chosen instead); for NaN, the NaNs. Rows and columns
 * at most 8; inlined, so that the full 3x3 window of ResNet's pool unrolls. */
static inline __attribute__((always_inline)) uint64_t
window_hits(const float *x, int W, int rows, int cols, float m, int is_nan) {
    uint64_t hits = 0;
    if (!is_nan) {
        uint32_t mb;
        memcpy(&mb, &m, sizeof mb);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) {
                uint32_t vb;
                memcpy(&vb, x + (size_t)r * W + c, sizeof vb);
                hits |= (uint64_t)(vb == mb) << (r * 8 + c);
            }
    } else {
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) {
                const float v = x[(size_t)r * W + c];
                hits |= (uint64_t)(v != v) << (r * 8 + c);
            }
    }
    return hits;
}

/* Outputs per chunk of a row's inside windows in the backward: their winners found across
 * SIMD lanes, then their gradients added one by one. */
#define UNPOOL_CHUNK 128

/* Winners of outputs [ox0, ox1) of one output row whose windows lie wholly inside the plane
 * and hold no NaN: x points at the window of output ox0; at[ox - ox0] is the offset from its
 * window's first element of the first element equal to the window's maximum y[ox] in scan
 * order (the reference's winner: it moves only on a strictly greater value, so it stops at
 * the first element equal to the maximum, -0 and +0 alike). The taps are tested from the
 * last to the first, each test independent, so the loop runs across outputs in SIMD lanes
 * (K and S constants where inlined). */
static inline __attribute__((always_inline)) void
unpool_interior(const float *x, int W, int K, int S, int ox0, int ox1, const float *y, int *at) {
#pragma omp simd
    for (int ox = ox0; ox < ox1; ox++) {
        const float *w = x + (ptrdiff_t)(ox - ox0) * S;
        const float m = y[ox];
        int a = 0;
#pragma GCC unroll 16
        for (int t = K * K - 1; t >= 0; t--) {
            const int off = (t / K) * W + t % K;
            a = w[off] == m ? off : a;
        }
        at[ox - ox0] = a;
    }
}

/* One plane. Each window's winner is where x equals the window's maximum y
 * (the first such, in scan order: ties and +-0 go to the first maximum),
 * or, where y is NaN, the last NaN (PyTorch's rule). Rows of windows wholly
 * inside the plane and free of NaN (ResNet's 3x3 stride-2 pool, but for its
 * first row and column) find their winners across SIMD lanes
 * (unpool_interior); the others gather each window's tests into a bit mask
 * (8 bits a window row), so that there is no chain of dependent,
 * mispredicted comparisons. Every output's gradient is added in the
 * reference's order (row by row, left to right), so dx is bitwise the
 * reference's. Windows past 8x8 take the reference's scan. */
static void maxpool_backward_plane(const float *x, const float *y, const float *dy, int H, int W,
                                   int k, int stride, int pad, int HO, int WO, float *dx) {
    // x, dx: (H, W)  y, dy: (HO, WO)
    if (k > 8) { /* windows past the mask's 8x8: the reference's scan */
        maxpool2d_backward_ref(x, dy, 1, H, W, k, stride, pad, dx);
        return;
    }
    for (size_t i = 0; i < (size_t)H * W; i++)
        dx[i] = 0.0f;
    int lo_y, hi_y, lo_x, hi_x;
    inside_range(H, k, stride, pad, HO, &lo_y, &hi_y);
    inside_range(W, k, stride, pad, WO, &lo_x, &hi_x);
    for (int oy = 0; oy < HO; oy++) {
        int y0 = oy * stride - pad, ky0, ky1;
        window_clip(y0, k, H, &ky0, &ky1);
        const float *yr = y + (size_t)oy * WO, *dyr = dy + (size_t)oy * WO;
        const int lanes = oy >= lo_y && oy < hi_y && hi_x > lo_x && !has_nan(yr, (size_t)WO);
        for (int ox = 0; ox < WO; ox++) {
            if (lanes && ox == lo_x) {
                for (int c0 = lo_x; c0 < hi_x; c0 += UNPOOL_CHUNK) {
                    const int c1 = hi_x - c0 < UNPOOL_CHUNK ? hi_x : c0 + UNPOOL_CHUNK;
                    const ptrdiff_t first = (ptrdiff_t)y0 * W + (ptrdiff_t)c0 * stride - pad;
                    int at[UNPOOL_CHUNK];
                    if (k == 3 && stride == 2)
                        unpool_interior(x + first, W, 3, 2, c0, c1, yr, at);
                    else
                        unpool_interior(x + first, W, k, stride, c0, c1, yr, at);
                    for (int c = c0; c < c1; c++)
                        dx[first + (ptrdiff_t)(c - c0) * stride + at[c - c0]] += dyr[c];
                }
                ox = hi_x - 1;
                continue;
            }
            int x0 = ox * stride - pad, kx0, kx1;
            window_clip(x0, k, W, &kx0, &kx1);
            const int cols = kx1 - kx0, rows = ky1 - ky0;
            if (cols <= 0 || rows <= 0)
                continue; /* a window wholly in the padding */
            const float m = yr[ox];
            const int is_nan = m != m;
            const size_t origin = (size_t)(y0 + ky0) * W + (size_t)(x0 + kx0);
            const uint64_t hits = rows == 3 && cols == 3
                                      ? window_hits(x + origin, W, 3, 3, m, is_nan)
                                      : window_hits(x + origin, W, rows, cols, m, is_nan);
            size_t at = origin; /* y is x's maximum: some element wins */
            if (hits) {
                const int t = is_nan ? 63 - __builtin_clzll(hits) : __builtin_ctzll(hits);
                at = origin + (size_t)(t / 8) * W + (size_t)(t % 8);
            }
            dx[at] += dyr[ox];
        }
    }
}

void maxpool2d_backward_ref(const float *x, const float *dy, int P, int H, int W, int k,
                            int stride, int pad, float *dx) {
    int HO = maxpool2d_out_size(H, k, stride, pad), WO = maxpool2d_out_size(W, k, stride, pad);
    for (size_t i = 0; i < (size_t)P * H * W; i++)
        dx[i] = 0.0f;
    for (int p = 0; p < P; p++)
        for (int oy = 0; oy < HO; oy++)
            for (int ox = 0; ox < WO; ox++) {
                long best = -1;
                float m = -INFINITY;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                            continue;
                        long at = ((long)p * H + iy) * W + ix;
                        if (best < 0)
                            best = at;
                        if (x[at] > m || x[at] != x[at]) {
                            m = x[at];
                            best = at;
                        }
                    }
                if (best >= 0)
                    dx[best] += dy[((size_t)p * HO + oy) * WO + ox];
            }
}

void maxpool2d_backward(const float *x, const float *y, const float *dy, int P, int H, int W,
                        int k, int stride, int pad, float *dx) {
    int HO = maxpool2d_out_size(H, k, stride, pad), WO = maxpool2d_out_size(W, k, stride, pad);
#pragma omp parallel for num_threads(rn_threads()) schedule(static)
    for (int p = 0; p < P; p++)
        maxpool_backward_plane(x + (size_t)p * H * W, y + (size_t)p * HO * WO,
                               dy + (size_t)p * HO * WO, H, W, k, stride, pad, HO, WO,
                               dx + (size_t)p * H * W);
}

void avgpool_global_backward_ref(const float *dy, size_t P, size_t HW, float *dx) {
    for (size_t p = 0; p < P; p++)
        for (size_t i = 0; i < HW; i++)
            dx[p * HW + i] = dy[p] / (float)HW;
}

void avgpool_global_backward(const float *dy, size_t P, size_t HW, float *dx) {
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if (P * HW >= 32768)
    for (size_t p = 0; p < P; p++) {
        const float v = dy[p] / (float)HW;
#pragma omp simd
        for (size_t i = 0; i < HW; i++)
            dx[p * HW + i] = v;
    }
}
