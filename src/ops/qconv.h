/*
 * qconv.h - int8 convolution: the quantization scheme, the activation
 * layouts, the plain-C oracle and the fast path.
 *
 * Scheme (post-training static quantization, as `resnet quantize` writes it):
 *   weights      int8, symmetric per output channel: w = w_q * w_scale[co],
 *                w_q in [-127, 127], BatchNorm folded in first;
 *   activations  uint8 per tensor with a zero point: x = (x_q - zp) * scale,
 *                x_q in [0, RN_Q_MAX]. 7 bits, not 8: an AVX2 u8 x s8 pair
 *                sum (vpmaddubsw) then never saturates, 2 * 127 * 127 <
 *                32767, so every ISA (portable, AVX2, AVX-512 VNNI) computes
 *                the same int32 sums and the same bytes;
 *   a conv       acc = sum_k w_q * x_q over the window, padding read as the
 *                input's zero point (real 0), accumulated in int32; then in
 *                fp32, in this order (rn_requant below, which every kernel
 *                repeats operation for operation):
 *                    f = (float)(acc - comp[co]) * mult[co] + bias[co]
 *                        comp = zp_in * sum_k w_q,  mult = scale_in * w_scale
 *                    f += (float)(r_q - r_zp) * r_scale      (residual, if any)
 *                    f = max(f, 0)                           (ReLU, if any)
 *                    y_q = clamp(round_half_even(clamp(f / scale_out)) + zp_out)
 *                (the division is a multiplication by inv_out = 1 / scale_out.)
 *
 * Layouts of uint8 activations (N images, H x W):
 *   plain  (C, N, H, W), a byte per value: the network input only;
 *   c16    (ceil(C/16), N, H, W, 16): channel c of pixel p (p over N*H*W)
 *          at [(c / 16) * NHW + p] * 16 + c % 16. Every conv writes c16, so
 *          16 output channels of a pixel are one 16-byte store.
 *
 * The fast path is a GEMM whose vector lanes are output channels: for
 * output column j (a pixel) and 4 consecutive k, the 4 input bytes are one
 * broadcast 32-bit word, the 16 channels' 4 weights each one 64-byte row of
 * the packed weights. K runs in groups of 16 bytes: for a group g the input
 * bytes of column j are at a + j * a_js + g * a_gs. A conv copies its
 * window into rows of K bytes per column first (im2col, in the workspace,
 * a block of columns at a time): a_js = K, a_gs = 16. Or, where the kernels
 * can (rn_kernels.q_inplace) and the conv is a "same" stride-1 one on c16
 * input (a 1x1, or a 3x3 on a wide enough map), the tiles read windows in
 * place: a_js = 16 (the next pixel), group g (tap t of the window, block cb)
 * at a table's offset (t's pixel, cb's plane); the columns whose windows
 * reach the padding are copied and multiplied as before (rn_qconv_forward).
 */
#ifndef RN_OPS_QCONV_H
#define RN_OPS_QCONV_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "core/threads.h"
#include "ops/conv2d.h"

#define RN_Q_MAX 127          /* activations: uint8 in [0, RN_Q_MAX] */
#define RN_Q_CB 16            /* channels per c16 block */

/* c16 blocks holding c channels. */
static inline int rn_q_cblocks(int c) { return (c + RN_Q_CB - 1) / RN_Q_CB; }

/* A tensor's quantization: x = (q - zp) * scale. */
typedef struct rn_qparam {
    float scale;
    int zp;
} rn_qparam;

/* The quantization of a range [lo, hi] (widened to hold 0) to
 * [0, RN_Q_MAX]; a degenerate range gets scale 1. */
rn_qparam rn_qparam_for_range(float lo, float hi);

/* The requantization of one output, shared by the oracle and the portable
 * kernel; the SIMD kernels do the same operations in the same order. */
typedef struct rn_qreq {
    const int32_t *comp;      /* per output channel */
    const float *mult, *bias;
    float r_scale;            /* residual's scale and zero point (if any) */
    int r_zp;
    float inv_out;            /* 1 / output scale */
    int out_zp;
    int relu;
} rn_qreq;

#define RN_Q_CLAMP 512.0f     /* |f / scale_out| is clamped to this before rounding */

static inline uint8_t rn_requant(const rn_qreq *rq, int co, int32_t acc, const uint8_t *r) {
    float f = (float)(acc - rq->comp[co]) * rq->mult[co];
    f = f + rq->bias[co];
    if (r) {
        float t = (float)((int)*r - rq->r_zp) * rq->r_scale;
        f = f + t;
    }
    if (rq->relu)
        f = f > 0.0f ? f : 0.0f;
    float v = f * rq->inv_out;
    v = v > -RN_Q_CLAMP ? v : -RN_Q_CLAMP;
    v = v < RN_Q_CLAMP ? v : RN_Q_CLAMP;
    int q = (int)nearbyintf(v) + rq->out_zp;
    return (uint8_t)(q < 0 ? 0 : q > RN_Q_MAX ? RN_Q_MAX : q);
}

/* ---- a prepared int8 convolution ----------------------------------------------------------- */

/* A grouped convolution (ResNeXt) runs as `sg` independent dense convolutions, its super-groups:
 * super-group q takes input channels [q * cin', (q + 1) * cin') and writes output channels
 * [q * cout', (q + 1) * cout'), whole c16 blocks on both sides, with the weights that cross
 * groups inside it zero. Groups of 16 or more output channels are super-groups on their own;
 * smaller ones are gathered 16 / cout_g at a time (ResNeXt-50 32x4d's first stage: 32 groups of
 * 4 channels, 8 super-groups of 16). The zeros cost multiplications (4x on those layers), not
 * exactness: the int32 sums are the grouped convolution's. An ordinary conv has sg = 1. */
typedef struct rn_qconv {
    rn_conv_shape s;          /* one super-group's dense conv: groups 1; s.n is set per call */
    int sg;                   /* super-groups */
    int groups;               /* the convolution's own groups (weights: (cout, cin / groups, k, k)) */
    int in_c16;               /* input layout: 1 c16, 0 plain */
    int kpad;                 /* K bytes per column of a super-group: a multiple of 16 */
    int cb_out;               /* output channel blocks of a super-group: ceil(cout' / 16) */
    const int8_t *w;          /* packed: sg x [cb_out][kpad / 16][4][16][4], see qconv.c */
    rn_qreq rq;               /* comp, mult, bias: sg * cb_out * 16 each (padding 0) */
} rn_qconv;

/* Fills c (all but w and rq) for the conv of shape s (groups allowed) and input layout. Returns 0
 * if the int8 path cannot run it: a grouped conv on plain input, or groups whose channels do not
 * gather into whole c16 blocks (cin / groups and cout / groups must divide 16 or be multiples of
 * it, alike); then `why` (may be NULL) gets a sentence. */
int rn_qconv_init(rn_qconv *c, const rn_conv_shape *s, int in_c16, char *why, size_t why_cap);

/* Bytes of packed weights, and output channels of comp / mult / bias (padding included). */
size_t rn_qconv_packed_bytes(const rn_qconv *c);
size_t rn_qconv_channels(const rn_qconv *c);

/* Bytes of K per column for a dense (groups 1) shape s and input layout. */
int rn_qconv_kpad(const rn_conv_shape *s, int in_c16);

/* Packs w_q (cout, cin / groups, kh, kw) into dst (rn_qconv_packed_bytes) and fills comp
 * (rn_qconv_channels int32) for an input zero point in_zp. */
void rn_qconv_pack_weights(const rn_qconv *c, const int8_t *wq, int in_zp, int8_t *dst,
                           int32_t *comp);

/* The plain-C oracle: a direct loop nest over w_q (cout, cin / groups, kh, kw) for any shape s
 * (groups too), x in its layout (n = s->n), residual (c16, or NULL) and y (c16). */
void rn_qconv_forward_ref(const rn_conv_shape *s, int in_c16, const uint8_t *x, int in_zp,
                          const int8_t *wq, const rn_qreq *rq, const uint8_t *res, uint8_t *y);

/* Workspace bytes of rn_qconv_forward for a batch of s->n on `threads`. */
size_t rn_qconv_workspace_bytes(const rn_kernels *k, const rn_qconv *c, int threads);

/* The fast path on kernels k, threaded over rn_threads(); equal to the oracle
 * byte for byte. x, res and y as above for a batch of n; in_zp is the
 * input's zero point (padding). */
void rn_qconv_forward(const rn_kernels *k, const rn_qconv *c, int n, const uint8_t *x, int in_zp,
                      const uint8_t *res, uint8_t *y, uint8_t *workspace);

/* The same, called by every thread of a team (threads.h) inside the caller's parallel region:
 * this thread's share of the work (the workspace sized for at least team.size threads), then,
 * with claims (threads.h rn_claims: flags for rn_qconv_items items, shared by the team), what
 * the others have not started of theirs. The caller waits for the whole team before it reads
 * y. The other ops' _team forms alike (static shares). */
void rn_qconv_forward_team(const rn_kernels *k, const rn_qconv *c, int n, const uint8_t *x,
                           int in_zp, const uint8_t *res, uint8_t *y, uint8_t *workspace,
                           rn_claims claims, rn_team team);

/* Work items of rn_qconv_forward_team at batch n on a team of `threads` (its claims' flags). */
long rn_qconv_items(const rn_kernels *k, const rn_qconv *c, int n, int threads);

/* ---- the other int8 ops (oracle = the only implementation) ------------------------------- */

/* x fp32 (N, C, H, W) -> plain uint8 (C, N, H, W), on kernels k (their q_quantize, or the
 * oracle's loop). */
void rn_quantize_input(const rn_kernels *k, const float *x, int n, int c, int h, int w,
                       rn_qparam q, uint8_t *y);
void rn_quantize_input_team(const rn_kernels *k, const float *x, int n, int c, int h, int w,
                            rn_qparam q, uint8_t *y, rn_team team);

/* Max-pool k/s/p on c16 (c channels): padding never wins, as in PyTorch. On kernels kd (their
 * q_maxpool_row for 3x3 windows at stride 2, or the C loop; the same bytes either way). */
void rn_qmaxpool_c16(const rn_kernels *kd, const uint8_t *x, int c, int n, int h, int w, int k,
                     int stride, int pad, int ho, int wo, uint8_t *y);
void rn_qmaxpool_c16_team(const rn_kernels *kd, const uint8_t *x, int c, int n, int h, int w,
                          int k, int stride, int pad, int ho, int wo, uint8_t *y, rn_team team);

/* Global average pool of c16 x (c channels) into fp32 features (C, N). */
void rn_qavgpool_c16(const uint8_t *x, int c, int n, int hw, rn_qparam q, float *y);
void rn_qavgpool_c16_team(const uint8_t *x, int c, int n, int hw, rn_qparam q, float *y,
                          rn_team team);

/* ---- kernels -------------------------------------------------------------------------------- */

/* One tile: nj output columns x ncb blocks of 16 output channels. */
typedef struct rn_qtile {
    int nj, ncb;
    int groups;               /* K / 16 */
    const uint8_t *a;         /* column j, group g: a + j * a_js + g * a_gs (16 bytes) */
    long a_js, a_gs;
    const long *a_goff;       /* or, if not NULL, a + j * a_js + a_goff[g] (q_inplace kernels) */
    const int8_t *w;          /* block b's packed weights: w + b * w_bs */
    long w_bs;
    uint8_t *y;               /* block b, column j: y + b * y_bs + j * 16 (16 bytes) */
    long y_bs;
    const long *y_joff;       /* or, if not NULL, y + b * y_bs + y_joff[j] (q_inplace kernels) */
    const uint8_t *r;         /* residual, same layout and strides as y, or NULL */
    const rn_qreq *rq;        /* comp, mult, bias start at the tile's first channel */
} rn_qtile;

/* Where group g's 16 bytes of column 0 lie, from t->a: the table's offset, or g * a_gs. */
static inline long rn_qtile_group_at(const rn_qtile *t, int g) {
    return t->a_goff ? t->a_goff[g] : (long)g * t->a_gs;
}

/* Where column j's 16 output (and residual) bytes of block 0 lie, from t->y (and t->r). */
static inline long rn_qtile_col_at(const rn_qtile *t, int j) {
    return t->y_joff ? t->y_joff[j] : (long)j * 16;
}

typedef void (*rn_qgemm_fn)(const rn_qtile *t);

/* The window copy of plain input (the network's; groups 1) in the group-major layout: columns
 * j0 .. j0 + count - 1 of the convolution s, column i's group g (K bytes 16g .. 16g + 15, the
 * oracle's order, 0 past the window up to kpad) at dst + g * gs + i * 16, which the tiles read
 * with a_js 16 and a_gs gs (q_inplace kernels). scratch: the scratch function's bytes. Only
 * where 3 * stride + kw <= 64 (four columns' windows in one 64-byte load). */
typedef void (*rn_qim2col_plain_fn)(const rn_conv_shape *s, int kpad, const uint8_t *x, int zp,
                                    long j0, int count, uint8_t *dst, long gs, uint8_t *scratch);
typedef size_t (*rn_qim2col_scratch_fn)(const rn_conv_shape *s, int kpad);

/* y[i] = the quantization of x[i] * inv with zero point zp, i < count: rn_quantize_input's
 * operations in its order (the clamps, rounding half to even, the byte clamps). */
typedef void (*rn_qquantize_fn)(const float *x, size_t count, float inv, int zp, uint8_t *y);

/* A padded window row of the scratch: every input column and the padding, and 64 bytes from
 * the last window's start, in whole cache lines. */
static inline size_t rn_qim2col_plain_row_bytes(const rn_conv_shape *s) {
    size_t a = (size_t)(s->wo - 1) * s->stride + 64, b = (size_t)s->pad + s->w;
    return ((a > b ? a : b) + 63) / 64 * 64;
}

void rn_qgemm_portable(const rn_qtile *t);
#ifdef RN_HAVE_X86_KERNELS
void rn_qgemm_avx2(const rn_qtile *t);          /* nj <= 4, ncb 1 */
void rn_qgemm_avx512vnni(const rn_qtile *t);    /* nj <= 12, ncb <= 2 */
void rn_qgemm_amx(const rn_qtile *t);           /* nj <= 32, ncb <= 2 */
void rn_qim2col_plain_avx512vbmi(const rn_conv_shape *s, int kpad, const uint8_t *x, int zp,
                                 long j0, int count, uint8_t *dst, long gs, uint8_t *scratch);
size_t rn_qim2col_plain_scratch_avx512vbmi(const rn_conv_shape *s, int kpad);
void rn_qquantize_avx512(const float *x, size_t count, float inv, int zp, uint8_t *y);
#endif

#endif
