/*
 * gemm.h - single-precision matrix multiply, the engine under convolution,
 * linear layers and their backward passes.
 *
 *     C = op(A) * op(B) + beta * C, then the epilogue
 *
 * Matrices are row-major (as cblas RowMajor): op(A) is M x K, op(B) is K x N,
 * C is M x N; op(X) = X^T when transX is non-zero. beta is 0 or 1: with
 * beta == 0, C is only written, never read (it may be uninitialised).
 *
 * The epilogue runs once per element after the full K sum, in this order:
 *     y += bias[row]                     (bias may be NULL)
 *     y += residual[row * ldr + col]     (residual may be NULL)
 *     y  = max(y, 0)                     (if relu)
 *
 * The work is split over blocks of C only; every element is summed over K in
 * a fixed order, so the result is bitwise identical for any thread count.
 * B is packed into cache-sized panels on each thread's stack (~100 KB). A is
 * read in place, or packed: ahead of time by the caller (rn_gemm_pack_a,
 * e.g. a convolution's weights, once per weight version), or by the call
 * itself into a workspace the caller passes, when N is wide enough to repay
 * it. Nothing is allocated.
 *
 * Every entry point takes the kernel descriptor to use (ops/kernels.h: the
 * micro-kernels and packers of one instruction set); NULL means the process
 * default, chosen once from the CPU's features or RN_ISA.
 *
 * C must not overlap A, B or the residual (the residual is read after C has
 * been partly written). No alignment is required of any argument.
 */
#ifndef RN_OPS_GEMM_H
#define RN_OPS_GEMM_H

#include <stddef.h>

typedef struct rn_kernels rn_kernels;

typedef struct rn_gemm_epilogue {
    const float *bias;      /* bias[row] (M floats), or NULL */
    const float *residual;  /* residual[row * ldr + col], or NULL */
    int ldr;                /* leading dimension of residual */
    int relu;               /* clamp at zero last */
} rn_gemm_epilogue;

/* C = op(A) * op(B) + beta * C, then the epilogue (ep may be NULL). */
void rn_sgemm(const rn_kernels *k, int transa, int transb, int M, int N, int K,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
              const rn_gemm_epilogue *ep);

/* As rn_sgemm; when N is wide, op(A) is first packed into pack_ws (room for
 * rn_gemm_packed_a_floats(k, M, K) floats, 64-byte aligned; may be NULL). */
void rn_sgemm_ws(const rn_kernels *k, int transa, int transb, int M, int N, int K,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                 const rn_gemm_epilogue *ep, float *pack_ws);

/* Floats of op(A) (M x K) packed for the kernels k, and the packing itself
 * (threaded). The packed layout depends on k, M and K only. */
size_t rn_gemm_packed_a_floats(const rn_kernels *k, int M, int K);
void rn_gemm_pack_a(const rn_kernels *k, int transa, int M, int K, const float *A, int lda,
                    float *dst);

/* For callers that wrote a packed A straight into rn_gemm_packed_a_index's places (fp32):
 * converts it to the operand format of k's kernels (bf16 descriptors); nothing for fp32 ones. */
void rn_gemm_finish_packed_a(const rn_kernels *k, int M, int K, float *packed);

/* As rn_sgemm, with A packed by rn_gemm_pack_a for the same kernels. */
void rn_sgemm_packed(const rn_kernels *k, int M, int N, int K, const float *apacked, int transb,
                     const float *B, int ldb, float beta, float *C, int ldc,
                     const rn_gemm_epilogue *ep);

/* The K blocking of the kernels k: a product with inner dimension K sums
 * *nkb blocks of *kc (the last may be shorter); packed layouts follow it. */
void rn_gemm_k_blocks(const rn_kernels *k, int K, int *nkb, int *kc);

/* Where element (kk, j) of a K x npad matrix B goes when B is packed for
 * the kernels k: per K block, nr-column panels, kc x nr each, except a last
 * panel npad % nr wide when npad is not a multiple of nr (a multiple of k's
 * nr_step: rn_gemm_packed_b_width). For callers that write B straight into
 * that layout. */
static inline size_t rn_gemm_packed_b_index(int nr, int K, int nkb, int kcb, int npad, int kk,
                                            int j) {
    const int kb = kk / kcb, k0 = kb * kcb;
    const int kc = kb == nkb - 1 ? K - k0 : kcb;
    const int jp = j / nr, width = jp == npad / nr ? npad % nr : nr;
    return (size_t)k0 * (size_t)npad + (size_t)jp * (size_t)kc * (size_t)nr +
           (size_t)(kk - k0) * (size_t)width + (size_t)(j % nr);
}

/* The packed width of B with N columns for the kernels k: whole panels, then
 * a last one only as wide as it needs (a multiple of nr_step), so that a
 * narrow N (16 Winograd tiles against AVX-512's 48-column panels) is not
 * computed on padding. */
long rn_gemm_packed_b_width(const rn_kernels *k, long N);

/* Where element (i, kk) of an M x K matrix A goes when rn_gemm_pack_a packs
 * it for kernels of mr rows (M padded to m_panels * mr with zeros): per K
 * block, mr-row panels, kc x mr each. For callers that write A straight
 * into that layout. */
static inline size_t rn_gemm_packed_a_index(int mr, int K, int nkb, int kcb, int m_panels, int i,
                                            int kk) {
    const int kb = kk / kcb, k0 = kb * kcb;
    const int kc = kb == nkb - 1 ? K - k0 : kcb;
    return (size_t)k0 * (size_t)m_panels * (size_t)mr + (size_t)(i / mr) * (size_t)kc * (size_t)mr +
           (size_t)(kk - k0) * (size_t)mr + (size_t)(i % mr);
}

/* Rows [i0, i1) (i0 a multiple of the kernels' mr) of C (M x N, ldc) =
 * A x B, on the calling thread, C overwritten (no epilogue). A packed by
 * rn_gemm_pack_a (M x K), B packed as rn_gemm_packed_b_index lays it out
 * (K x npad, npad >= N, the last panel npad % nr wide if that is not 0);
 * columns past N are computed from B's padding but not stored. On a bf16 descriptor both are
 * in its operand format already: A finished (rn_gemm_finish_packed_a), B's panels in the pairs
 * of its finish_b, each in the place of the fp32 panel (Winograd's products). */
void rn_sgemm_packed_ab_1t(const rn_kernels *k, int i0, int i1, int N, int K,
                           const float *apacked, int M, const float *bpacked, int npad, float *C,
                           int ldc);

/* As rn_sgemm, on the calling thread alone: for callers that split a larger
 * product over their own threads (inside a parallel region). The result is
 * bitwise the same as rn_sgemm's. */
void rn_sgemm_1t(const rn_kernels *k, int transa, int transb, int M, int N, int K,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                 const rn_gemm_epilogue *ep);

/* The oracle: the same contract as rn_sgemm, a plain triple loop summing in
 * double. */
void rn_sgemm_ref(int transa, int transb, int M, int N, int K, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc,
                  const rn_gemm_epilogue *ep);

/* ---------------------------------------------------------------------------
 * Implicit GEMM: B is the im2col matrix of a batch of images, packed straight
 * from the images into the GEMM's panels and never formed in memory.
 *
 *     B[k, j] = x[ci, b, oh*stride - pad + ki, ow*stride - pad + kj]  (0 outside)
 *     k = (ci * kh + ki) * kw + kj          K = c * kh * kw
 *     j = (b * ho + oh) * wo + ow           N = n * ho * wo
 * ------------------------------------------------------------------------- */

typedef struct rn_im2col {
    const float *x;             /* x: (c, n, h, w), each channel n*h*w floats */
    int c, n, h, w;
    int kh, kw, stride, pad;
    int ho, wo;
} rn_im2col;

/* C (M x N) = A (M x K, row-major, lda) * im2col(x) + beta * C, then the
 * epilogue, with K and N as above; pack_ws as for rn_sgemm_ws. */
void rn_sgemm_im2col(const rn_kernels *k, int M, const float *A, int lda, const rn_im2col *im,
                     float beta, float *C, int ldc, const rn_gemm_epilogue *ep, float *pack_ws);

/* The same with A packed by rn_gemm_pack_a. With b_ws (room for
 * rn_gemm_im2col_b_floats floats, or NULL) a narrow im2col matrix is packed
 * once, shared by the threads, which then split C by rows: A, the larger
 * operand, is read once (batch-1 layers on small maps). Bitwise the same
 * result either way. */
void rn_sgemm_im2col_packed(const rn_kernels *k, int M, const float *apacked,
                            const rn_im2col *im, float beta, float *C, int ldc,
                            const rn_gemm_epilogue *ep, float *b_ws);

/* Floats of b_ws that rn_sgemm_im2col_packed uses for im (0: im2col too
 * wide to pack whole; it is then packed panel by panel). */
size_t rn_gemm_im2col_b_floats(const rn_kernels *k, const rn_im2col *im);

/* The im2col matrix written out, one block: dst[k * ldd + t] =
 * im2col(x)[k0 + k, j0 + t] for k < rows, t < ncols (inside K x N). Packed
 * with the GEMM's own im2col packers, in fp32 whatever k's operands; runs on
 * the calling thread only (the caller splits the matrix over threads). For
 * the convolution's weight gradient, whose im2col operand is not a GEMM's B. */
void rn_im2col_block(const rn_kernels *k, const rn_im2col *im, int k0, int rows, long j0,
                     int ncols, float *dst, int ldd);

#endif
