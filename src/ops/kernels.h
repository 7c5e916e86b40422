/*
 * kernels.h - the kernel descriptor: what the GEMM driver (gemm.c) and the
 * convolution algorithms need to know of the micro-kernels and packers of
 * one instruction set, and the contract between them.
 *
 * One descriptor per ISA (portable, AVX2, AVX-512, AMX), chosen once per
 * process from the CPU's features (core/cpu.h) or passed explicitly (tests run
 * every ISA the host supports); a bf16 twin of it where the CPU multiplies
 * bf16 (rn_kernels_bf16: same packers, panels converted after packing). Blocking constants elsewhere (panel widths, chunk
 * steps, K blocks) are derived from the descriptor, never mirrored by hand.
 *
 * Packed layouts (k-major micro-panels, zero-padded at the edges):
 *     A panel: a[k * MR + i]   rows i < MR of op(A), k < kc
 *     B panel: b[k * NR + j]   columns j < NR of op(B), k < kc, 64-byte aligned
 * A micro-kernel multiplies one A panel by one B panel into an MR x NR tile
 * held in registers, then stores the valid m x n corner of it into C:
 *     C = acc + beta * C          (beta == 0: C is not read)
 *     and, if `last`, the epilogue (bias, residual, relu).
 * The "_rawa" kernels read A in place instead, element (i, k) at
 * a[i * a_rs + k * a_cs], all MR rows valid. Each element is summed over k in
 * order, the same way by every kernel of one build, so neither the tile
 * shape nor where a tile starts changes the result.
 */
#ifndef RN_OPS_KERNELS_H
#define RN_OPS_KERNELS_H

#include <stdint.h>
#include <string.h>

#include "core/cpu.h"
#include "ops/gemm.h"
#include "ops/direct.h"
#include "ops/qconv.h"
#include "ops/winograd.h"

typedef struct rn_gemm_tile {
    float *c;               /* top-left of the tile in C */
    int ldc;
    int m, n;               /* valid rows and columns, <= MR, NR */
    int a_rs, a_cs;         /* A's row and column strides (packed: 1, MR) */
    float beta;             /* 0: overwrite C; otherwise C = acc + beta * C */
    int last;               /* apply the epilogue below */
    const float *bias;      /* bias of the tile's first row, or NULL */
    const float *residual;  /* residual at the tile's top-left, or NULL */
    int ldr;
    int relu;
    int ldb;                /* fn_rawb only: B's row stride (its rows k0 .. at b, b + ldb, ..) */
} rn_gemm_tile;

typedef void (*rn_gemm_kernel_fn)(int kc, const float *a, const float *b,
                                  const rn_gemm_tile *t);

/* Packs columns j0 .. j0+nr-1 (those < N; the rest are zero) and rows
 * k0 .. k0+kc-1 of im2col(x) into one B panel (dst 64-byte aligned); nr is a
 * multiple of the descriptor's nr_step, at most RN_PANEL_MAX. */
typedef void (*rn_im2col_pack_fn)(const rn_im2col *im, int k0, int kc, long j0, int nr,
                                  float *dst);

/* Packs one B panel of a transposed matrix: dst[k * nr + j] = src[j * ldb + k]
 * for k < kc and j < cols (cols <= nr rows of the source, each read along
 * k), zero for cols <= j < nr; nr a multiple of the descriptor's nr_step, or
 * of 8 (the GEMM packs A panels of 8 or 32 rows of a row-major A with it). */
typedef void (*rn_pack_bt_fn)(const float *src, ptrdiff_t ldb, int kc, int cols, int nr,
                              float *dst);

/* Packs one B panel of a row-major B straight into the operand format of a descriptor's
 * kernels (what packing it as fp32, then finish_b, writes): rows k < kc of src, ldb floats
 * apart, columns j < cols (cols <= nr) of each, zero for cols <= j < nr. */
typedef void (*rn_pack_b_fn)(const float *src, ptrdiff_t ldb, int kc, int cols, int nr,
                             float *dst);

/* Converts one packed panel of kc rows x w columns (k-major: p[k * w + j], as packed for an
 * fp32 kernel) in place into the operand format of a descriptor's kernels. */
typedef void (*rn_panel_fn)(float *panel, int kc, int w);

/* Batch 1's classifier (linear.c): y[k] = w[k, :] . x (+ b[k]) for the `rows` rows k of the
 * row-major w (C floats a row), each row summed in one order whatever the threads. */
typedef void (*rn_gemv_fn)(const float *x, int C, const float *w, const float *b, int rows,
                           float *y);

/* The blocked max-pool's (pool.c) whole 3x3 windows at stride 2 on one output row: `cols`
 * windows of an input blocked by 16 channels, window c's first tap at x + 32 c (its rows ldx
 * floats apart, every tap inside the input); channel l's output c to y[l * ldy + c]. Each
 * window's largest value as the reference takes it: taps in scan order, "greater replaces"
 * (the input holds no NaN). */
typedef void (*rn_maxpool16_fn)(const float *x, ptrdiff_t ldx, int cols, float *y,
                                ptrdiff_t ldy);
/* The int8 max-pool (qconv.c) on one output row of a c16 plane, for 3x3 windows at stride 2:
 * rows[0 .. nrows) are the window's rows inside the map, w pixels of 16 bytes each; output
 * pixel ow (16 bytes at y + 16 ow, ow < wo) takes, byte by byte, the largest over those rows
 * and columns 2 ow - pad .. 2 ow - pad + 2 inside the map (0 where none: the bytes are never
 * negative, and the reference starts from 0). vm: scratch of pad + w + 2 wo + 8 pixels. */
typedef void (*rn_qmaxpool_row_fn)(const uint8_t *const *rows, int nrows, int w, int pad, int wo,
                                   uint8_t *vm, uint8_t *y);
/* Whether x[0 .. n) holds a NaN (the blocked max-pool's choice of rule). */
typedef int (*rn_has_nan_fn)(const float *x, size_t n);
/* dst[r * ldd + q] = the bf16 pair of lo[r * ld + q] (low half) and hi[r * ld + q] (high half;
 * hi NULL: zero), for r < rows and q < n: the direct convolution's input on bf16 pairs
 * (direct.h), a plane's rows at a time. */
typedef void (*rn_pair_rows_fn)(const float *lo, const float *hi, ptrdiff_t ld, int rows, int n,
                                uint32_t *dst, ptrdiff_t ldd);

#define RN_PANEL_MAX 64     /* widest B panel any packer writes */
/* largest K block of any descriptor (AMX bf16's); the GEMM driver keeps a B panel and an
 * item's A rows of it on each thread's stack, RN_KC_MAX x (RN_PANEL_MAX + 128) floats: 384 KB */
#define RN_KC_MAX 512
#define RN_RAW_A_MAX_COLS 1536  /* up to this many columns of B, the GEMM reads A in place */
#define RN_MR_MAX 32        /* most rows of any micro-kernel */
#define RN_WIDTHS_MAX 8     /* kernels per descriptor: widths nr_step .. nr */

/* The kernel descriptor of one instruction set. */
typedef struct rn_kernels {
    rn_isa isa;
    const char *name;       /* e.g. "avx2 6x16" */
    int mr, nr;             /* register tile: MR rows of A x NR columns of B */
    int nr_step;            /* a narrow last column panel is a multiple of this */
    int kc;                 /* K block: a kc x nr B panel stays in L1 (<= RN_KC_MAX) */
    int k_step;             /* > 1: K blocks but the last are multiples of it (kc is one), the
                               K of one matrix-tile step (AMX bf16: 32); 0: any */
    int mc;                 /* rows of A per work item: mc x kc of packed A stays in L2 */
    /* fn[w / nr_step - 1]: an MR x w tile from packed A; fn_raw: A read in place */
    rn_gemm_kernel_fn fn[RN_WIDTHS_MAX];
    rn_gemm_kernel_fn fn_raw[RN_WIDTHS_MAX];
    /* an MR x nr tile from packed A and B read in place (a row-major matrix, t->ldb), or NULL:
     * B is packed (gemm.c) */
    rn_gemm_kernel_fn fn_rawb;
    rn_im2col_pack_fn pack_im2col;
    rn_pack_bt_fn pack_bt;  /* B panels of a transposed B (transb) */
    rn_gemv_fn gemv;        /* fp32 rows times a vector (batch 1's classifier); NULL: C's loop */
    rn_maxpool16_fn maxpool16; /* the stem's blocked max-pool windows; NULL: pool.c's loop */
    rn_has_nan_fn has_nan;     /* and its scan for NaN; NULL: pool.c's loop */
    rn_wino_in_fn wino_in;  /* Winograd F(4x4, 3x3) tile transforms (winograd.h) */
    rn_wino_out_fn wino_out;
    rn_wino_in2_fn wino_in2;   /* and two groups of 8 tiles at once, or NULL */
    rn_wino_out2_fn wino_out2;
    rn_wino_in_fn wino2_in; /* and F(2x2, 3x3)'s */
    rn_wino_out_fn wino2_out;
    rn_wino_weights_fn wino_weights;  /* the weight transforms of F(4x4) and F(2x2) */
    rn_wino_weights_fn wino2_weights;
    rn_wino_dy_fn wino_dy;     /* the F(4x4) weight gradient's dy transform, or NULL */
    rn_wino_sums_fn wino_sums; /* and its dw from the sums, or NULL */
    rn_direct_fn direct;    /* direct convolution tiles (direct.h) */
    rn_pair_rows_fn pair_rows; /* their input's bf16 pairs (bf16 descriptors), or NULL: the
                                  portable loop (rn_bf16_bits) */
    int direct_mr, direct_nr; /* their output pixels (<= RN_DIRECT_MR_MAX) and channels */
    rn_wgrad_fn wgrad;      /* the direct weight gradient's strips (direct.h); NULL: GEMM only */
    int wgrad_rows;         /* 1: the strips may read dy in place, row by row (conv_wgrad.c) */
    /* int8 convolution (qconv.h): tiles of up to q_nj columns x q_ncb blocks
     * of 16 output channels */
    rn_qgemm_fn qgemm;
    int q_nj, q_ncb;
    int q_inplace;          /* 1: qgemm takes a table of group offsets (rn_qtile.a_goff), and
                               stride-1 windows are read in place (qconv.c); 0 (AMX, whose tiles
                               load 64 bytes of K at once): always im2col */
    rn_qim2col_plain_fn q_im2col_plain; /* the plain input's window copy in groups (qconv.h),
                                           and its scratch bytes; NULL: im2col_rows_plain's rows */
    rn_qim2col_scratch_fn q_im2col_scratch;
    rn_qquantize_fn q_quantize; /* the network input's quantization; NULL: the oracle's loop */
    rn_qmaxpool_row_fn q_maxpool_row; /* the int8 3x3/2 max-pool's rows; NULL: qconv.c's loop */
    const char *q_name;     /* e.g. "avx512-vnni 32x12" */
    /* bf16 products (rn_kernels_bf16): the packed fp32 panels of A and B are converted by
     * finish_a / finish_b before the kernels read them; fp32 descriptors leave both NULL.
     * Such a descriptor has no in-place-A kernels (fn_raw) and no Winograd transforms. */
    rn_panel_fn finish_a, finish_b;
    /* or, for a row-major A, its panel packed straight into finish_a's format (the arguments of
     * pack_bt: kc values of `cols` rows, ldb apart, into a panel of nr rows); NULL: pack_bt,
     * then finish_a */
    rn_pack_bt_fn pack_a_finished;
    /* and a row-major B's panel packed straight into finish_b's format; NULL: copied in fp32,
     * then finish_b */
    rn_pack_b_fn pack_b_finished;
    /* 1: the GEMM multiplies on matrix tiles (AMX), several times the rate of the vector units
     * that run the direct tile and Winograd's products; the bf16 heuristic then prefers it */
    int matrix_tiles;
} rn_kernels;

/* The descriptor of isa, or NULL when this build or CPU cannot run it. */
const rn_kernels *rn_kernels_for(rn_isa isa);

/* The bf16 descriptor of the same instruction set as k (kernels of bf16 operands with fp32
 * sums, same blocking), or NULL when this build or CPU has no bf16 product for it (AVX2: the
 * caller runs k's fp32 kernels on bf16-rounded operands instead). */
const rn_kernels *rn_kernels_bf16(const rn_kernels *k);

/* The fp32 descriptor of the same instruction set as k: k itself when its products are fp32.
 * Winograd runs on it in bf16 training (forward, data and weight gradients), and in bf16
 * inference on AMX (conv_algo.h rn_conv_bf16_kernels); elsewhere bf16 inference runs Winograd's
 * products on the bf16 descriptor, its tile transforms on this one. */
const rn_kernels *rn_kernels_fp32(const rn_kernels *k);

/* 1 when k's kernels multiply bf16 operands (a descriptor rn_kernels_bf16 returned). */
static inline int rn_kernels_are_bf16(const rn_kernels *k) { return k->finish_a != NULL; }

/* The bf16 operand layout (bf16 descriptors' finish_a and finish_b): row pairs (2p, 2p + 1)
 * of a kc x w panel become row p of w 32-bit words, each element rounded to bf16 (ties to
 * even, as rn_round_bf16), k = 2p in the low half, 2p + 1 (zero past kc) in the high half:
 * the operand of vdpbf16ps. In place: ceil(kc / 2) x w words. */
void rn_panel_bf16_pairs(float *panel, int kc, int w);

/* The bf16 bits of x (the high half of the word), rounded to nearest, ties to even, as
 * rn_round_bf16; a NaN stays a NaN (made quiet), infinities stay. Without branches, so that
 * loops over it vectorise. */
static inline uint32_t rn_bf16_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    const uint32_t special = (u >> 16) | ((u & 0x007FFFFFu) != 0 ? 0x40u : 0u);
    return (u & 0x7F800000u) != 0x7F800000u ? rounded : special;
}

/* The float whose bits are the bf16 bits h (the low 16 bits of h). */
static inline float rn_bf16_value(uint32_t h) {
    const uint32_t u = (h & 0xFFFFu) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The process default (core/cpu.h rn_isa_default). If RN_ISA names an ISA
 * the CPU lacks, this is the portable descriptor; rn_isa_default() reports
 * the error, and sessions and trainers fail to be created. */
const rn_kernels *rn_kernels_default(void);

/* The kernels to use: k itself, or the default when k is NULL. */
static inline const rn_kernels *rn_kernels_or_default(const rn_kernels *k) {
    return k ? k : rn_kernels_default();
}

/* ---------------------------------------------------------------------------
 * im2col runs: the columns j0 .. j0+count-1 of an im2col matrix split into
 * runs that lie in one output row (b, oh), so a run reads one input row.
 * ------------------------------------------------------------------------- */

typedef struct rn_im2col_run {
    int lane;               /* first panel column of the run */
    int len;                /* columns in the run */
    int ih0, iw0;           /* input row and column of tap (0, 0) for the first column */
    long base;              /* offset of image b inside a channel: b * h * w */
} rn_im2col_run;

/* Fills runs[] (capacity >= count) and returns how many there are. */
static inline int rn_im2col_runs(const rn_im2col *im, long j0, int count,
                                 rn_im2col_run *runs) {
    long hw_out = (long)im->ho * im->wo;
    int nrun = 0;
    for (int lane = 0; lane < count;) {
        long j = j0 + lane;
        int b = (int)(j / hw_out);
        int rem = (int)(j % hw_out);
        int oh = rem / im->wo, ow = rem % im->wo;
        int len = im->wo - ow < count - lane ? im->wo - ow : count - lane;
        runs[nrun].lane = lane;
        runs[nrun].len = len;
        runs[nrun].ih0 = oh * im->stride - im->pad;
        runs[nrun].iw0 = ow * im->stride - im->pad;
        runs[nrun].base = (long)b * im->h * im->w;
        nrun++;
        lane += len;
    }
    return nrun;
}

/* The portable packer (any nr up to RN_PANEL_MAX), in gemm.c. */
void rn_im2col_pack_portable(const rn_im2col *im, int k0, int kc, long j0, int nr, float *dst);
/* The portable transposing packer, in gemm.c. */
void rn_pack_bt_portable(const float *src, ptrdiff_t ldb, int kc, int cols, int nr, float *dst);

/* ---------------------------------------------------------------------------
 * AVX-512 (src/ops/x86/gemm_avx512.c)
 * ------------------------------------------------------------------------- */

#ifdef RN_HAVE_X86_KERNELS
/* 8 x 48 tiles; 8 x 32 and 8 x 16 for the last panel of a narrow N. */
#define RN_AVX512_MR 8
#define RN_AVX512_NR 48

void rn_sgemm_kernel_avx512_8x16(int kc, const float *a, const float *b,
                                 const rn_gemm_tile *t);
void rn_sgemm_kernel_avx512_8x32(int kc, const float *a, const float *b,
                                 const rn_gemm_tile *t);
void rn_sgemm_kernel_avx512_8x48(int kc, const float *a, const float *b,
                                 const rn_gemm_tile *t);
void rn_sgemm_kernel_avx512_8x16_rawa(int kc, const float *a, const float *b,
                                      const rn_gemm_tile *t);
void rn_sgemm_kernel_avx512_8x32_rawa(int kc, const float *a, const float *b,
                                      const rn_gemm_tile *t);
void rn_sgemm_kernel_avx512_8x48_rawb(int kc, const float *a, const float *b,
                                      const rn_gemm_tile *t);
void rn_sgemm_kernel_avx512_8x48_rawa(int kc, const float *a, const float *b,
                                      const rn_gemm_tile *t);

/* bf16 operands (rn_panel_bf16_pairs) on AVX-512 BF16 (src/ops/x86/gemm_avx512bf16.c). */
void rn_bgemm_kernel_avx512bf16_8x16(int kc, const float *a, const float *b,
                                     const rn_gemm_tile *t);
void rn_bgemm_kernel_avx512bf16_8x32(int kc, const float *a, const float *b,
                                     const rn_gemm_tile *t);
void rn_bgemm_kernel_avx512bf16_8x48(int kc, const float *a, const float *b,
                                     const rn_gemm_tile *t);
/* rn_panel_bf16_pairs in AVX-512 BF16 conversions (denormals to zero). */
void rn_panel_bf16_pairs_avx512bf16(float *panel, int kc, int w);
/* rn_pair_rows_fn in the same conversions (denormals to zero, which vdpbf16ps reads as zero). */
void rn_pair_rows_avx512bf16(const float *lo, const float *hi, ptrdiff_t ld, int rows, int n,
                             uint32_t *dst, ptrdiff_t ldd);
/* a row-major B's panel straight into those pairs (pack_b_finished) */
void rn_pack_b_bf16_pairs_avx512bf16(const float *src, ptrdiff_t ldb, int kc, int cols, int nr,
                                     float *dst);

/* bf16 operands on AMX tiles (src/ops/x86/gemm_amx.c): 32 x 32 tiles of C (32 x 16 for a
 * narrow last panel); B in bf16 pairs, A row-major bf16 (rn_panel_bf16_rows_amx). */
#define RN_AMX_MR 32
#define RN_AMX_NR 32
void rn_bgemm_kernel_amx_32x16(int kc, const float *a, const float *b, const rn_gemm_tile *t);
void rn_bgemm_kernel_amx_32x32(int kc, const float *a, const float *b, const rn_gemm_tile *t);
/* An A panel (kc x 32, k-major fp32) to 32 rows of kc bf16 (row i at i * kc), in place. */
void rn_panel_bf16_rows_amx(float *panel, int kc, int w);
/* rows of a row-major A converted to those bf16 rows directly (pack_a_finished) */
void rn_pack_a_bf16_rows_amx(const float *src, ptrdiff_t lda, int kc, int rows, int mr,
                             float *dst);

void rn_sgemv_avx512(const float *x, int C, const float *w, const float *b, int rows, float *y);
void rn_maxpool16_avx512(const float *x, ptrdiff_t ldx, int cols, float *y, ptrdiff_t ldy);
int rn_has_nan_avx512(const float *x, size_t n);
void rn_qmaxpool_row_avx2(const uint8_t *const *rows, int nrows, int w, int pad, int wo,
                          uint8_t *vm, uint8_t *y);
void rn_qmaxpool_row_avx512(const uint8_t *const *rows, int nrows, int w, int pad, int wo,
                            uint8_t *vm, uint8_t *y);

/* nr a multiple of 16, <= 64. */
void rn_im2col_pack_avx512(const rn_im2col *im, int k0, int kc, long j0, int nr,
                           float *dst);

/* ---------------------------------------------------------------------------
 * AVX2 + FMA (src/ops/x86/gemm_avx2.c)
 * ------------------------------------------------------------------------- */

/* 6 x 16 tiles; 6 x 8 for the last panel of a narrow N. */
#define RN_AVX2_MR 6
#define RN_AVX2_NR 16

void rn_sgemm_kernel_avx2_6x8(int kc, const float *a, const float *b, const rn_gemm_tile *t);
void rn_sgemm_kernel_avx2_6x16(int kc, const float *a, const float *b, const rn_gemm_tile *t);
void rn_sgemm_kernel_avx2_6x8_rawa(int kc, const float *a, const float *b, const rn_gemm_tile *t);
void rn_sgemm_kernel_avx2_6x16_rawa(int kc, const float *a, const float *b, const rn_gemm_tile *t);

void rn_sgemv_avx2(const float *x, int C, const float *w, const float *b, int rows, float *y);

/* nr a multiple of 8, <= 64. */
void rn_im2col_pack_avx2(const rn_im2col *im, int k0, int kc, long j0, int nr, float *dst);
/* 8 x 8 blocks transposed in registers; also used on AVX-512 CPUs. */
void rn_pack_bt_avx2(const float *src, ptrdiff_t ldb, int kc, int cols, int nr, float *dst);

/* Winograd transforms (src/ops/x86/winograd_avx2.c), also used on AVX-512 CPUs, which run
 * two groups at once where they can (winograd_avx512.c). */
void rn_wino_in2_avx512(const rn_wino_in in[2], float *dst, ptrdiff_t stride);
void rn_wino_out2_avx512(const float *src, ptrdiff_t stride, const rn_wino_out o[2]);
void rn_wino_in_avx2(const rn_wino_in *in, float *dst, ptrdiff_t stride);
void rn_wino_out_avx2(const float *src, ptrdiff_t stride, const rn_wino_out *o);
void rn_wino2_in_avx2(const rn_wino_in *in, float *dst, ptrdiff_t stride);
void rn_wino2_out_avx2(const float *src, ptrdiff_t stride, const rn_wino_out *o);
void rn_wino_dy_avx2(const float *dy, const ptrdiff_t at[RN_WINO_LANES], ptrdiff_t ld, float *dst,
                     ptrdiff_t stride);
void rn_wino_sums_avx2(const float *sums, ptrdiff_t plane, int n, float *dw);
void rn_wino_sums_avx512(const float *sums, ptrdiff_t plane, int n, float *dw);
void rn_wino_weights_avx2(const float *const g[RN_WINO_LANES], float *dst, ptrdiff_t ld);
void rn_wino2_weights_avx2(const float *const g[RN_WINO_LANES], float *dst, ptrdiff_t ld);
void rn_wino_weights_avx512(const float *const g[RN_WINO_LANES], float *dst, ptrdiff_t ld);
void rn_wino2_weights_avx512(const float *const g[RN_WINO_LANES], float *dst, ptrdiff_t ld);

/* Direct convolution tiles (src/ops/x86/conv_direct_avx2.c: 6 pixels x 16 channels,
 * conv_direct_avx512.c: 14 x 32, conv_direct_avx512bf16.c: 14 x 32 on bf16 pairs) and the
 * weight gradient's strips (AVX2: 8 lanes; AVX-512: 16, in conv_direct_avx512.c). */
void rn_direct_tile_avx2(const float *w, const rn_direct_tile *t);
void rn_direct_tile_avx512(const float *w, const rn_direct_tile *t);
void rn_direct_tile_avx512bf16(const float *w, const rn_direct_tile *t);
#define RN_DIRECT_AVX512_MR RN_DIRECT_MR_MAX /* the AVX-512 tile: 14 pixels */
#define RN_DIRECT_AVX512_NR 32               /* x 32 channels */
void rn_wgrad_strip_avx2(const rn_wgrad_strip *s, float *acc);
void rn_wgrad_strip_avx512(const rn_wgrad_strip *s, float *acc);
#endif

#endif
