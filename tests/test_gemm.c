/*
 * test_gemm.c - rn_sgemm against the rn_sgemm_ref oracle.
 *
 * Random shapes with edge sizes, all transpose combinations, beta 0 and 1,
 * every epilogue combination and padded leading dimensions, on the SIMD and
 * the portable kernels; then bitwise determinism across thread counts.
 * Tolerance: max |fast - ref| / max |ref| <= 1e-5 per check.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/mem.h"
#include "ops/gemm.h"
#include "resnet.h"

#define TOL 1e-5

static int passed, failed;

/* ---------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rng_next(void) { return check_xorshift64(&rng_state); }

/* Uniform in [-1, 1). */
static float rng_float(void) { return (float)(rng_next() >> 8) / 8388608.0f - 1.0f; }

static float *random_buffer(size_t n) {
    float *p = rn_alloc(n * sizeof(float));
    if (!p) {
        fprintf(stderr, "test_gemm: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = rng_float();
    return p;
}

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (ok)
        passed++;
    else
        failed++;
}

/* max |a - b| / max |b| over an M x N block with leading dimension ld. */
static double rel_error(const float *a, const float *b, int M, int N, int ld) {
    double err = 0.0, scale = 0.0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double x = a[(size_t)i * ld + j], y = b[(size_t)i * ld + j];
            double d = fabs(x - y);
            if (!(d <= err))
                err = d; /* NaN sticks */
            if (fabs(y) > scale)
                scale = fabs(y);
        }
    return err / (scale > 1e-30 ? scale : 1.0);
}

/* ---------------------------------------------------------------------------
 * One comparison against the oracle
 * ------------------------------------------------------------------------- */

/* epi bits: 1 bias, 2 residual, 4 relu. pad: extra leading-dimension slack. */
static void check_case(int transa, int transb, int M, int N, int K, float beta, int epi,
                       int pad, const char *kernel) {
    int lda = (transa ? M : K) + pad, ldb = (transb ? K : N) + pad;
    int ldc = N + pad, ldr = N + 2 * pad;
    size_t a_rows = transa ? K : M, b_rows = transb ? N : K;
    float *A = random_buffer(a_rows * lda + 1);
    float *B = random_buffer(b_rows * ldb + 1);
    float *bias = random_buffer(M + 1);
    float *res = random_buffer((size_t)M * ldr + 1);
    float *C = random_buffer((size_t)M * ldc + 1);
    float *Cref = rn_alloc(((size_t)M * ldc + 1) * sizeof(float));
    memcpy(Cref, C, ((size_t)M * ldc + 1) * sizeof(float));
    if (beta == 0.0f) /* C must not be read: poison it */
        for (size_t i = 0; i < (size_t)M * ldc; i++)
            C[i] = NAN;

    rn_gemm_epilogue ep = {.bias = (epi & 1) ? bias : NULL,
                           .residual = (epi & 2) ? res : NULL,
                           .ldr = ldr,
                           .relu = (epi & 4) != 0};
    rn_sgemm(transa, transb, M, N, K, A, lda, B, ldb, beta, C, ldc, epi ? &ep : NULL);
    rn_sgemm_ref(transa, transb, M, N, K, A, lda, B, ldb, beta, Cref, ldc,
                 epi ? &ep : NULL);
    double err = rel_error(C, Cref, M, N, ldc);

    char what[160];
    snprintf(what, sizeof what,
             "%s ta=%d tb=%d M=%d N=%d K=%d beta=%g bias=%d res=%d relu=%d pad=%d err=%.2e",
             kernel, transa, transb, M, N, K, beta, epi & 1, (epi >> 1) & 1, (epi >> 2) & 1,
             pad, err);
    check(err <= TOL, what);
    rn_free(A);
    rn_free(B);
    rn_free(bias);
    rn_free(res);
    rn_free(C);
    rn_free(Cref);
}

/* ---------------------------------------------------------------------------
 * Thread-count determinism
 * ------------------------------------------------------------------------- */

static void check_determinism(int transa, int transb, int M, int N, int K) {
    int lda = transa ? M : K, ldb = transb ? K : N;
    float *A = random_buffer((size_t)M * K);
    float *B = random_buffer((size_t)K * N);
    float *bias = random_buffer(M);
    float *res = random_buffer((size_t)M * N);
    float *C1 = rn_alloc((size_t)M * N * sizeof(float));
    rn_gemm_epilogue ep = {.bias = bias, .residual = res, .ldr = N, .relu = 1};

    rn_set_threads(1);
    rn_sgemm(transa, transb, M, N, K, A, lda, B, ldb, 0.0f, C1, N, &ep);
    int same = 1;
    for (int t = 2; t <= 4; t++) {
        float *Ct = rn_alloc((size_t)M * N * sizeof(float));
        rn_set_threads(t);
        rn_sgemm(transa, transb, M, N, K, A, lda, B, ldb, 0.0f, Ct, N, &ep);
        if (memcmp(C1, Ct, (size_t)M * N * sizeof(float)) != 0)
            same = 0;
        rn_free(Ct);
    }
    rn_set_threads(0);

    char what[128];
    snprintf(what, sizeof what, "determinism 1..4 threads ta=%d tb=%d M=%d N=%d K=%d bitwise",
             transa, transb, M, N, K);
    check(same, what);
    rn_free(A);
    rn_free(B);
    rn_free(bias);
    rn_free(res);
    rn_free(C1);
}

/* ---------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------- */

int main(void) {
    static const int sizes[] = {1, 7, 13, 31, 64, 100, 257};
    const int nsizes = (int)(sizeof sizes / sizeof sizes[0]);

    for (int portable = 0; portable <= 1; portable++) {
        rn_gemm_force_portable(portable);
        const char *kernel = rn_gemm_kernel_name();
        int count = 0;
        /* Every size on each axis, the others drawn from the list. */
        for (int axis = 0; axis < 3; axis++)
            for (int s = 0; s < nsizes; s++) {
                int dims[3];
                for (int d = 0; d < 3; d++)
                    dims[d] = sizes[rng_next() % nsizes];
                dims[axis] = sizes[s];
                int ta = count & 1, tb = (count >> 1) & 1;
                float beta = (count / 4) % 2 ? 1.0f : 0.0f;
                int epi = (count * 3 + axis) % 8, pad = (count % 3 == 2) ? 3 : 0;
                if (portable && count % 2)
                    continue; /* half as many on the slow kernel */
                check_case(ta, tb, dims[0], dims[1], dims[2], beta, epi, pad, kernel);
                count++;
            }
        /* Every transpose / beta / epilogue combination on one ragged shape. */
        for (int ta = 0; ta <= 1; ta++)
            for (int tb = 0; tb <= 1; tb++)
                for (int b = 0; b <= 1; b++)
                    for (int epi = 0; epi < 8; epi += portable ? 7 : 1)
                        check_case(ta, tb, 45, 113, 300, (float)b, epi, 1, kernel);
        /* Wide N: A packed once and shared (narrower N reads A in place). */
        for (int ta = 0; ta <= 1; ta++)
            for (int tb = 0; tb <= 1; tb++)
                check_case(ta, tb, 45, 1700, 400, (float)tb, 7 - 2 * ta, ta, kernel);
        /* Large K (several K blocks), wide N, tall M, empty K. */
        check_case(0, 0, 19, 70, 1000, 1.0f, 7, 0, kernel);
        check_case(1, 0, 530, 50, 40, 0.0f, 1, 0, kernel);
        check_case(0, 1, 9, 2000, 33, 0.0f, 6, 2, kernel);
        check_case(0, 0, 5, 9, 0, 1.0f, 7, 0, kernel);
        check_case(0, 0, 5, 9, 0, 0.0f, 3, 0, kernel);
        /* every path the host supports is run and named */
        printf("kernel %s: checked against the reference (%d failures so far)\n", kernel, failed);
        if (!portable && strncmp(kernel, "portable", 8) == 0)
            printf("kernel avx512: this CPU lacks AVX-512F/BW/DQ/VL or FMA, not run\n");
    }
    rn_gemm_force_portable(0);

    check_determinism(0, 0, 300, 1000, 700);
    check_determinism(1, 1, 130, 517, 1100);
    check_determinism(0, 0, 600, 49, 2304);
    check_determinism(1, 0, 70, 2000, 300);

    printf("test_gemm: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
