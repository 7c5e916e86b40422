/*
 * kernels.c - the kernel descriptors (contract in kernels.h): the portable
 * micro-kernel and im2col packer, and the table that picks a descriptor per
 * instruction set.
 */
#include "ops/kernels.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/status.h"

/* ---------------------------------------------------------------------------
 * Portable micro-kernel: PORTABLE_MR x PORTABLE_NR, written for the
 * auto-vectoriser: the tile loops unrolled so the accumulators stay in
 * registers, the inner one running across the NR columns.
 * ------------------------------------------------------------------------- */

#define PORTABLE_MR 4
#define PORTABLE_NR 16

/* C = acc + beta * C over the tile's valid corner, then the epilogue (kernels.h). */
static void store_portable(float acc[PORTABLE_MR][PORTABLE_NR], const rn_gemm_tile *t) {
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

static void kernel_portable(int kc, const float *a, const float *b, const rn_gemm_tile *t) {
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
    store_portable(acc, t);
}

/* ---------------------------------------------------------------------------
 * bf16 operands: the pair layout and the portable kernel on it, which does
 * what vdpbf16ps does per pair: acc += a1 * b1, then acc += a0 * b0, each
 * product exact in fp32 (8-bit significands) and each sum rounded once.
 * ------------------------------------------------------------------------- */

void rn_panel_bf16_pairs(float *panel, int kc, int w) {
    uint32_t *out = (uint32_t *)panel;
    for (int p = 0; p < (kc + 1) / 2; p++) {
        /* row p of words overwrites only rows 2p and later (p >= 1), or row 0's columns
         * already read (p = 0) */
        const float *r0 = panel + (ptrdiff_t)(2 * p) * w;
        const float *r1 = 2 * p + 1 < kc ? r0 + w : NULL;
        for (int j = 0; j < w; j++) {
            uint32_t lo = rn_bf16_bits(r0[j]), hi = r1 ? rn_bf16_bits(r1[j]) : 0;
            out[(ptrdiff_t)p * w + j] = lo | hi << 16;
        }
    }
}

static void kernel_portable_bf16(int kc, const float *a, const float *b, const rn_gemm_tile *t) {
    const uint32_t *a2 = (const uint32_t *)a, *b2 = (const uint32_t *)b;
    float acc[PORTABLE_MR][PORTABLE_NR] = {{0}};
    for (int p = 0; p < (kc + 1) / 2; p++) {
        const uint32_t *ap = a2 + (ptrdiff_t)p * PORTABLE_MR, *bp = b2 + (ptrdiff_t)p * PORTABLE_NR;
        for (int i = 0; i < PORTABLE_MR; i++) {
            const float a0 = rn_bf16_value(ap[i] & 0xFFFFu), a1 = rn_bf16_value(ap[i] >> 16);
            for (int j = 0; j < PORTABLE_NR; j++) {
                const float b0 = rn_bf16_value(bp[j] & 0xFFFFu), b1 = rn_bf16_value(bp[j] >> 16);
                acc[i][j] += a1 * b1;
                acc[i][j] += a0 * b0;
            }
        }
    }
    store_portable(acc, t);
}

/* ---------------------------------------------------------------------------
 * Portable im2col packer: element by element along the panel's runs.
 * ------------------------------------------------------------------------- */

void rn_im2col_pack_portable(const rn_im2col *im, int k0, int kc, long j0, int nr, float *dst) {
    const long n_cols = (long)im->n * im->ho * im->wo;
    const int count = n_cols - j0 < nr ? (int)(n_cols - j0) : nr;
    const int s = im->stride, H = im->h, W = im->w;
    const ptrdiff_t plane = (ptrdiff_t)im->n * H * W;
    const int khw = im->kh * im->kw;
    rn_im2col_run runs[RN_PANEL_MAX];
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

/* ---------------------------------------------------------------------------
 * The descriptors
 * ------------------------------------------------------------------------- */

static const rn_kernels PORTABLE = {
    .isa = RN_ISA_PORTABLE, .name = "portable 4x16", .mr = PORTABLE_MR, .nr = PORTABLE_NR,
    .nr_step = PORTABLE_NR, .kc = 192, .mc = 512,
    .fn = {kernel_portable}, .fn_raw = {kernel_portable},
    .pack_im2col = rn_im2col_pack_portable,
    .pack_bt = rn_pack_bt_portable,
    .wino_in = rn_wino_in_portable,
    .wino_out = rn_wino_out_portable,
    .wino2_in = rn_wino2_in_portable,
    .wino2_out = rn_wino2_out_portable,
    .wino_weights = rn_wino_weights_portable, .wino2_weights = rn_wino2_weights_portable,
    .direct = rn_direct_tile_portable, .direct_mr = RN_DIRECT_MR, .direct_nr = RN_DIRECT_NR,
    .wgrad = rn_wgrad_strip_portable,
    .qgemm = rn_qgemm_portable, .q_nj = 4, .q_ncb = 1, .q_inplace = 1, .q_name = "portable 16x4",
};

static const rn_kernels PORTABLE_BF16 = {
    .isa = RN_ISA_PORTABLE, .name = "portable-bf16 4x16", .mr = PORTABLE_MR, .nr = PORTABLE_NR,
    .nr_step = PORTABLE_NR, .kc = 192, .mc = 512,
    .fn = {kernel_portable_bf16},
    .pack_im2col = rn_im2col_pack_portable,
    .pack_bt = rn_pack_bt_portable,
    .direct = rn_direct_tile_portable_bf16, .direct_mr = RN_DIRECT_MR, .direct_nr = RN_DIRECT_NR,
    .finish_a = rn_panel_bf16_pairs, .finish_b = rn_panel_bf16_pairs,
    .qgemm = rn_qgemm_portable, .q_nj = 4, .q_ncb = 1, .q_inplace = 1, .q_name = "portable 16x4",
};

#ifdef RN_HAVE_X86_KERNELS
static const rn_kernels AVX2 = {
    .isa = RN_ISA_AVX2, .name = "avx2 6x16", .mr = RN_AVX2_MR, .nr = RN_AVX2_NR, .nr_step = 8,
    .kc = 256, .mc = 240,
    .fn = {rn_sgemm_kernel_avx2_6x8, rn_sgemm_kernel_avx2_6x16},
    .fn_raw = {rn_sgemm_kernel_avx2_6x8_rawa, rn_sgemm_kernel_avx2_6x16_rawa},
    .pack_im2col = rn_im2col_pack_avx2,
    .pack_bt = rn_pack_bt_avx2,
    .gemv = rn_sgemv_avx2,
    .wino_in = rn_wino_in_avx2,
    .wino_out = rn_wino_out_avx2,
    .wino2_in = rn_wino2_in_avx2,
    .wino2_out = rn_wino2_out_avx2,
    .wino_weights = rn_wino_weights_avx2, .wino2_weights = rn_wino2_weights_avx2,
    .wino_dy = rn_wino_dy_avx2,
    .wino_sums = rn_wino_sums_avx2,
    .direct = rn_direct_tile_avx2, .direct_mr = RN_DIRECT_MR, .direct_nr = RN_DIRECT_NR,
    .wgrad = rn_wgrad_strip_avx2,
    .qgemm = rn_qgemm_avx2, .q_nj = 4, .q_ncb = 1, .q_inplace = 1, .q_name = "avx2 16x4",
    .q_maxpool_row = rn_qmaxpool_row_avx2,
};

#define AVX512_FP32                                                                               \
    .name = "avx512 8x48", .mr = RN_AVX512_MR, .nr = RN_AVX512_NR,                               \
    .nr_step = 16, .kc = 192, .mc = 512,                                                          \
    .fn = {rn_sgemm_kernel_avx512_8x16, rn_sgemm_kernel_avx512_8x32, rn_sgemm_kernel_avx512_8x48}, \
    .fn_raw = {rn_sgemm_kernel_avx512_8x16_rawa, rn_sgemm_kernel_avx512_8x32_rawa,                \
               rn_sgemm_kernel_avx512_8x48_rawa},                                                 \
    .fn_rawb = rn_sgemm_kernel_avx512_8x48_rawb,                                                  \
    .pack_im2col = rn_im2col_pack_avx512,                                                         \
    .pack_bt = rn_pack_bt_avx2, /* AVX-512 CPUs have AVX2 */                                  \
    .gemv = rn_sgemv_avx512,                                                                      \
    .maxpool16 = rn_maxpool16_avx512,                                                             \
    .has_nan = rn_has_nan_avx512,                                                                 \
    .wino_in = rn_wino_in_avx2, /* AVX-512 CPUs have AVX2 */                                      \
    .wino_out = rn_wino_out_avx2,                                                                 \
    .wino_in2 = rn_wino_in2_avx512, .wino_out2 = rn_wino_out2_avx512,                             \
    .wino2_in = rn_wino2_in_avx2,                                                                 \
    .wino2_out = rn_wino2_out_avx2,                                                               \
    .wino_weights = rn_wino_weights_avx512, .wino2_weights = rn_wino2_weights_avx512,             \
    .wino_dy = rn_wino_dy_avx2, .wino_sums = rn_wino_sums_avx512,                                 \
    .direct = rn_direct_tile_avx512, .direct_mr = RN_DIRECT_AVX512_MR,                            \
    .direct_nr = RN_DIRECT_AVX512_NR, .wgrad = rn_wgrad_strip_avx512, .wgrad_rows = 1

/* int8 with VNNI dot products where the CPU has them, else AVX2's; the stem's window copy with
 * VBMI's byte permutes where the CPU has them (every VNNI CPU but Cascade Lake) */
static const rn_kernels AVX512 = {
    AVX512_FP32, .isa = RN_ISA_AVX512, .q_quantize = rn_qquantize_avx512,
    .q_maxpool_row = rn_qmaxpool_row_avx512,
    .qgemm = rn_qgemm_avx512vnni, .q_nj = 12, .q_ncb = 2, .q_inplace = 1, .q_name = "avx512-vnni 32x12",
    .q_im2col_plain = rn_qim2col_plain_avx512vbmi,
    .q_im2col_scratch = rn_qim2col_plain_scratch_avx512vbmi,
};
static const rn_kernels AVX512_NO_VBMI = {
    AVX512_FP32, .isa = RN_ISA_AVX512, .q_quantize = rn_qquantize_avx512,
    .q_maxpool_row = rn_qmaxpool_row_avx512,
    .qgemm = rn_qgemm_avx512vnni, .q_nj = 12, .q_ncb = 2, .q_inplace = 1, .q_name = "avx512-vnni 32x12",
};
static const rn_kernels AVX512_NO_VNNI = {
    AVX512_FP32, .isa = RN_ISA_AVX512, .q_quantize = rn_qquantize_avx512,
    .q_maxpool_row = rn_qmaxpool_row_avx512,
    .qgemm = rn_qgemm_avx2, .q_nj = 4, .q_ncb = 1, .q_inplace = 1, .q_name = "avx2 16x4",
};
/* AMX: float32 on AVX-512 (AMX has no fp32 product), int8 on the tiles */
static const rn_kernels AMX = {
    AVX512_FP32, .isa = RN_ISA_AMX, .q_quantize = rn_qquantize_avx512,
    .q_maxpool_row = rn_qmaxpool_row_avx512,
    .qgemm = rn_qgemm_amx, .q_nj = 32, .q_ncb = 2, .q_name = "amx 32x32",
};
/* bf16 products with AVX-512 BF16's vdpbf16ps: the fp32 descriptor's geometry and packers,
 * panels converted to bf16 pairs after packing (int8 never runs on a bf16 descriptor: its int8
 * fields name the AVX2 tile every AVX-512 CPU can run) */
static const rn_kernels AVX512_BF16_KERNELS = {
    .isa = RN_ISA_AVX512, .name = "avx512-bf16 8x48", .mr = RN_AVX512_MR, .nr = RN_AVX512_NR,
    .nr_step = 16, .kc = 192, .mc = 512,
    .fn = {rn_bgemm_kernel_avx512bf16_8x16, rn_bgemm_kernel_avx512bf16_8x32,
           rn_bgemm_kernel_avx512bf16_8x48},
    .pack_im2col = rn_im2col_pack_avx512, .pack_bt = rn_pack_bt_avx2,
    .direct = rn_direct_tile_avx512bf16, .direct_mr = RN_DIRECT_AVX512_MR,
    .direct_nr = RN_DIRECT_AVX512_NR, .pair_rows = rn_pair_rows_avx512bf16,
    .finish_a = rn_panel_bf16_pairs_avx512bf16, .finish_b = rn_panel_bf16_pairs_avx512bf16,
    .pack_b_finished = rn_pack_b_bf16_pairs_avx512bf16,
    .qgemm = rn_qgemm_avx2, .q_nj = 4, .q_ncb = 1, .q_inplace = 1, .q_name = "avx2 16x4",
};
/* bf16 products on AMX tiles: 32 x 32 tiles of C, K blocks of up to 512 (16 tile steps of 32;
 * a 512 x 32 bf16 B panel is 32 KB, in L1's 48): each call's fixed costs (zeroing the tiles,
 * storing them, the epilogue) over twice the products of blocks of 256, 2-11% more GFLOP/s on
 * resnet's GEMM shapes (M x N x K 512 x 1568 x 4608, 256 x 6272 x 2304, 128 x 25088 x 1152, 64 x
 * 100352 x 576, 512 x 4608 x 6272; Xeon SPR, 2 threads, alternated in one process) */
static const rn_kernels AMX_BF16_KERNELS = {
    .isa = RN_ISA_AMX, .name = "amx-bf16 32x32", .mr = RN_AMX_MR, .nr = RN_AMX_NR, .nr_step = 16,
    .kc = 512, .k_step = 32, .mc = 512,
    .fn = {rn_bgemm_kernel_amx_32x16, rn_bgemm_kernel_amx_32x32},
    .pack_im2col = rn_im2col_pack_avx512, .pack_bt = rn_pack_bt_avx2,
    .direct = rn_direct_tile_avx512bf16, .direct_mr = RN_DIRECT_AVX512_MR, /* AMX CPUs have it */
    .direct_nr = RN_DIRECT_AVX512_NR, .pair_rows = rn_pair_rows_avx512bf16,
    .finish_a = rn_panel_bf16_rows_amx, .finish_b = rn_panel_bf16_pairs_avx512bf16,
    .pack_a_finished = rn_pack_a_bf16_rows_amx, .pack_b_finished = rn_pack_b_bf16_pairs_avx512bf16,
    .matrix_tiles = 1, .qgemm = rn_qgemm_amx, .q_nj = 32, .q_ncb = 2, .q_name = "amx 32x32",
};
#endif

const rn_kernels *rn_kernels_for(rn_isa isa) {
    if (!rn_isa_usable(isa))
        return NULL;
    switch (isa) {
#ifdef RN_HAVE_X86_KERNELS
    case RN_ISA_AVX2:
        return &AVX2;
    case RN_ISA_AVX512:
        return !rn_cpu()->avx512_vnni ? &AVX512_NO_VNNI
               : rn_cpu()->avx512_vbmi ? &AVX512
                                       : &AVX512_NO_VBMI;
    case RN_ISA_AMX:
        return &AMX;
#endif
    case RN_ISA_PORTABLE:
        return &PORTABLE;
    default:
        return NULL;
    }
}

const rn_kernels *rn_kernels_bf16(const rn_kernels *k) {
    k = rn_kernels_or_default(k);
    if (rn_kernels_are_bf16(k))
        return k; /* a bf16 descriptor already */
    switch (k->isa) {
#ifdef RN_HAVE_X86_KERNELS
    case RN_ISA_AVX512:
        return rn_cpu()->avx512_bf16 ? &AVX512_BF16_KERNELS : NULL;
    case RN_ISA_AMX:
        return &AMX_BF16_KERNELS;
#endif
    case RN_ISA_PORTABLE:
        return &PORTABLE_BF16;
    default:
        return NULL;
    }
}

const rn_kernels *rn_kernels_fp32(const rn_kernels *k) {
    k = rn_kernels_or_default(k);
    const rn_kernels *f = rn_kernels_are_bf16(k) ? rn_kernels_for(k->isa) : k;
    return f ? f : k;
}

static const rn_kernels *default_kernels = &PORTABLE;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void pick_default(void) {
    rn_isa isa;
    if (rn_isa_default(&isa) == RN_OK && rn_kernels_for(isa))
        default_kernels = rn_kernels_for(isa);
}

const rn_kernels *rn_kernels_default(void) {
    pthread_once(&default_once, pick_default);
    return default_kernels;
}
