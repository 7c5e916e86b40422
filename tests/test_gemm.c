/*
 * test_gemm.c - rn_sgemm against the rn_sgemm_ref oracle.
 *
 * Random shapes with edge sizes, all transpose combinations, beta 0 and 1,
 * every epilogue combination and padded leading dimensions, on every kernel
 * path the host supports (and the driver with each SIMD path's tile
 * geometry on a plain-C kernel, so hosts without AVX-512 still exercise the
 * driver as the AVX-512 kernels see it); then bitwise determinism across
 * thread counts.
 * Tolerance: max |fast - ref| / max |ref| <= 1e-5 per check.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "ops/gemm.h"
#include "ops/kernels.h"
#include "ops/ops.h"
#include "resnet.h"
#include "check.h"

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
static void check_case(const rn_kernels *kd, int transa, int transb, int M, int N, int K,
                       float beta, int epi, int pad) {
    const char *kernel = kd->name;
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
    if (kd->finish_a) { /* bf16 operands: the oracle multiplies the rounded values */
        rn_round_bf16(A, a_rows * lda + 1);
        rn_round_bf16(B, b_rows * ldb + 1);
    }
    if (beta == 0.0f) /* C must not be read: poison it */
        for (size_t i = 0; i < (size_t)M * ldc; i++)
            C[i] = NAN;

    rn_gemm_epilogue ep = {.bias = (epi & 1) ? bias : NULL,
                           .residual = (epi & 2) ? res : NULL,
                           .ldr = ldr,
                           .relu = (epi & 4) != 0};
    /* A packed ahead (as a convolution's prepared weights): the same product, through the
     * driver's packed-A paths (a row-major B read in place where the descriptor can) */
    float *C2 = NULL, *apacked = NULL;
    if (!transa) {
        C2 = rn_alloc(((size_t)M * ldc + 1) * sizeof(float));
        memcpy(C2, C, ((size_t)M * ldc + 1) * sizeof(float));
        apacked = rn_alloc((rn_gemm_packed_a_floats(kd, M, K) + 1) * sizeof(float));
        rn_gemm_pack_a(kd, 0, M, K, A, lda, apacked);
        rn_sgemm_packed(kd, M, N, K, apacked, transb, B, ldb, beta, C2, ldc, epi ? &ep : NULL);
    }
    rn_sgemm(kd, transa, transb, M, N, K, A, lda, B, ldb, beta, C, ldc, epi ? &ep : NULL);
    rn_sgemm_ref(transa, transb, M, N, K, A, lda, B, ldb, beta, Cref, ldc,
                 epi ? &ep : NULL);
    double err = rel_error(C, Cref, M, N, ldc);
    if (C2) {
        const double err2 = rel_error(C2, Cref, M, N, ldc);
        char what2[160];
        snprintf(what2, sizeof what2,
                 "%s A packed ahead, tb=%d M=%d N=%d K=%d beta=%g epi=%d pad=%d err=%.2e", kernel,
                 transb, M, N, K, beta, epi, pad, err2);
        check(err2 <= TOL, what2);
        rn_free(C2);
        rn_free(apacked);
    }

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

static void check_determinism(const rn_kernels *kd, int transa, int transb, int M, int N, int K) {
    int lda = transa ? M : K, ldb = transb ? K : N;
    float *A = random_buffer((size_t)M * K);
    float *B = random_buffer((size_t)K * N);
    float *bias = random_buffer(M);
    float *res = random_buffer((size_t)M * N);
    float *C1 = rn_alloc((size_t)M * N * sizeof(float));
    rn_gemm_epilogue ep = {.bias = bias, .residual = res, .ldr = N, .relu = 1};

    rn_set_threads(1);
    rn_sgemm(kd, transa, transb, M, N, K, A, lda, B, ldb, 0.0f, C1, N, &ep);
    int same = 1;
    for (int t = 2; t <= 4; t++) {
        float *Ct = rn_alloc((size_t)M * N * sizeof(float));
        rn_set_threads(t);
        rn_sgemm(kd, transa, transb, M, N, K, A, lda, B, ldb, 0.0f, Ct, N, &ep);
        if (memcmp(C1, Ct, (size_t)M * N * sizeof(float)) != 0)
            same = 0;
        rn_free(Ct);
    }
    rn_set_threads(0);

    char what[128];
    snprintf(what, sizeof what, "%s determinism 1..4 threads ta=%d tb=%d M=%d N=%d K=%d bitwise",
             kd->name, transa, transb, M, N, K);
    check(same, what);
    rn_free(A);
    rn_free(B);
    rn_free(bias);
    rn_free(res);
    rn_free(C1);
}

/* ---------------------------------------------------------------------------
 * The driver with another tile geometry: a plain-C micro-kernel of any
 * MR x width, so the blocking, ragged panels and epilogue paths that a SIMD
 * descriptor drives can be checked on any host.
 * ------------------------------------------------------------------------- */

static void geo_kernel(int kc, const float *a, const float *b, const rn_gemm_tile *t, int nr) {
    for (int i = 0; i < t->m; i++)
        for (int j = 0; j < t->n; j++) {
            float acc = 0.0f;
            for (int k = 0; k < kc; k++)
                acc += a[(ptrdiff_t)i * t->a_rs + (ptrdiff_t)k * t->a_cs] * b[(ptrdiff_t)k * nr + j];
            float *c = t->c + (ptrdiff_t)i * t->ldc + j;
            float r = acc + (t->beta != 0.0f ? t->beta * *c : 0.0f);
            if (t->last) {
                if (t->bias)
                    r += t->bias[i];
                if (t->residual)
                    r += t->residual[(ptrdiff_t)i * t->ldr + j];
                if (t->relu && r < 0.0f)
                    r = 0.0f;
            }
            *c = r;
        }
}

#define GEO_FN(W)                                                                          \
    static void geo_##W(int kc, const float *a, const float *b, const rn_gemm_tile *t) { \
        geo_kernel(kc, a, b, t, W);                                                        \
    }
GEO_FN(8)
GEO_FN(16)
GEO_FN(24)
GEO_FN(32)
GEO_FN(48)
GEO_FN(64)

static rn_gemm_kernel_fn geo_fn(int width) {
    switch (width) {
    case 8: return geo_8;
    case 16: return geo_16;
    case 24: return geo_24;
    case 32: return geo_32;
    case 48: return geo_48;
    default: return geo_64;
    }
}

/* A descriptor with the given geometry, plain-C kernels and packer. */
static rn_kernels geometry_of(const char *name, int mr, int nr, int step, int kc, int mc) {
    rn_kernels k = {.isa = RN_ISA_PORTABLE, .name = name, .mr = mr, .nr = nr, .nr_step = step,
                    .kc = kc, .mc = mc, .pack_im2col = rn_im2col_pack_portable,
                    .pack_bt = rn_pack_bt_portable};
    for (int w = step, i = 0; w <= nr; w += step, i++)
        k.fn[i] = k.fn_raw[i] = geo_fn(w);
    return k;
}

/* A packer's check over `cases` random panels, `bad` of them not equal bit for bit. */
static void check_packer(const rn_kernels *kd, const char *packer, int bad, int cases) {
    char what[200];
    snprintf(what, sizeof what, "%s %s, bitwise (%d random panels)", kd->name, packer, cases);
    check(bad == 0, what);
}

/* The descriptor's transposing packer against the portable one, bit for
 * bit, on random panel shapes: every width its kernels take, ragged and
 * empty column counts, K not a multiple of the SIMD block. */
static void check_pack_bt(const rn_kernels *kd) {
    int bad = 0, cases = 0;
    for (int trial = 0; trial < 200; trial++) {
        const int widths = kd->nr / kd->nr_step;
        const int nr = kd->nr_step * (1 + (int)(rng_next() % (unsigned)widths));
        const int kc = 1 + (int)(rng_next() % 300), cols = (int)(rng_next() % (unsigned)(nr + 1));
        const ptrdiff_t ldb = kc + (ptrdiff_t)(rng_next() % 9);
        float *src = rn_alloc((size_t)(nr > 0 ? nr : 1) * (size_t)ldb * sizeof(float));
        float *got = rn_alloc((size_t)kc * (size_t)nr * sizeof(float));
        float *want = rn_alloc((size_t)kc * (size_t)nr * sizeof(float));
        if (!src || !got || !want) {
            fprintf(stderr, "test_gemm: out of memory\n");
            exit(1);
        }
        for (ptrdiff_t i = 0; i < (ptrdiff_t)nr * ldb; i++)
            src[i] = rng_float();
        for (ptrdiff_t i = 0; i < (ptrdiff_t)kc * nr; i++)
            got[i] = want[i] = NAN; /* every element must be written */
        kd->pack_bt(src, ldb, kc, cols, nr, got);
        rn_pack_bt_portable(src, ldb, kc, cols, nr, want);
        if (memcmp(got, want, (size_t)kc * (size_t)nr * sizeof(float)) != 0)
            bad++;
        cases++;
        rn_free(src), rn_free(got), rn_free(want);
    }
    check_packer(kd, "transposing B packer = portable", bad, cases);
}

/* The bf16 pair layout: word (p, j) holds rows 2p (low half) and 2p + 1 (high half, zero
 * past kc) of column j, each as rn_round_bf16 rounds it; NaN stays NaN (a signalling NaN
 * whose payload is all in the low bits too), infinities stay. */
static void check_bf16_pairs(void) {
    int bad = 0;
    for (int c = 0; c < 50; c++) {
        const int kc = 1 + (int)(rng_next() % 40), w = 1 + (int)(rng_next() % 64);
        float *panel = random_buffer((size_t)kc * w), *want = random_buffer((size_t)kc * w);
        for (int i = 0; i < kc * w; i++) {
            const uint32_t r = rng_next() % 16;
            uint32_t u = r == 0 ? 0x7F800001u : r == 1 ? 0xFF800000u : r == 2 ? 0x3F808000u : 0;
            if (u)
                memcpy(&panel[i], &u, 4);
        }
        memcpy(want, panel, (size_t)kc * w * sizeof(float));
        rn_round_bf16(want, (size_t)kc * w);
        rn_panel_bf16_pairs(panel, kc, w);
        const uint32_t *words = (const uint32_t *)panel;
        for (int k = 0; k < (kc + 1) / 2 * 2; k++)
            for (int j = 0; j < w; j++) {
                const uint32_t word = words[(size_t)(k / 2) * w + j];
                const uint32_t got = (k % 2 ? word >> 16 : word & 0xFFFFu) << 16;
                uint32_t exp = 0;
                if (k < kc)
                    memcpy(&exp, &want[(size_t)k * w + j], 4);
                float gf, ef;
                memcpy(&gf, &got, 4);
                memcpy(&ef, &exp, 4);
                if (isnan(ef) ? !isnan(gf) : got != (exp & 0xFFFF0000u))
                    bad++;
            }
        rn_free(panel);
        rn_free(want);
    }
    check(bad == 0, "bf16 pair panels = rn_round_bf16 rounding, row pairs interleaved, in place");
}

/* A bf16 descriptor's own converters against the portable pair layout, bit for bit on normal
 * numbers, NaN and infinities: finish_b always writes pairs; finish_a writes pairs, or (AMX)
 * rows of kc bf16 per A row. */
static void check_finish(const rn_kernels *kd) {
    int bad = 0;
    for (int c = 0; c < 40; c++) {
        const int kc = 1 + (int)(rng_next() % RN_KC_MAX), w = c % 2 ? kd->mr : kd->nr;
        const size_t n = (size_t)kc * w;
        float *got = random_buffer(n), *want = random_buffer(n);
        for (size_t i = 0; i < n; i += 7) {
            const uint32_t u = i % 3 == 0 ? 0x7F800001u : i % 3 == 1 ? 0xFF800000u : 0x3F818000u;
            memcpy(&got[i], &u, 4);
        }
        memcpy(want, got, n * sizeof(float));
        rn_panel_bf16_pairs(want, kc, w);
        const uint16_t *g = (const uint16_t *)got, *e = (const uint16_t *)want;
        if (c % 2 == 0 || kd->finish_a == kd->finish_b) {
            (c % 2 ? kd->finish_a : kd->finish_b)(got, kc, w);
            for (size_t i = 0; i < (size_t)(kc + 1) / 2 * 2 * w; i++)
                bad += g[i] != e[i];
        } else { /* rows: element (i, k) at i * kc + k; pairs: at (k / 2 * w + i) * 2 + k % 2 */
            kd->finish_a(got, kc, w);
            for (int i = 0; i < w; i++)
                for (int k = 0; k < kc; k++)
                    bad += g[(size_t)i * kc + k] != e[((size_t)(k / 2) * w + i) * 2 + k % 2];
        }
        rn_free(got);
        rn_free(want);
    }
    char what[160];
    snprintf(what, sizeof what, "%s: its panel converters = the portable bf16 rounding, bitwise",
             kd->name);
    check(bad == 0, what);
}

/* A bf16 descriptor's one-pass packer of a row-major B (pack_b_finished) against packing the
 * panel in fp32 and its finish_b, bit for bit: every width its kernels take, ragged and empty
 * column counts, odd K, rows further apart than the panel is wide, NaN and infinities. */
static void check_pack_b_finished(const rn_kernels *kd) {
    int bad = 0, cases = 0;
    for (int trial = 0; trial < 200; trial++) {
        const int widths = kd->nr / kd->nr_step;
        const int nr = kd->nr_step * (1 + (int)(rng_next() % (unsigned)widths));
        const int kc = 1 + (int)(rng_next() % RN_KC_MAX), cols = (int)(rng_next() % (unsigned)(nr + 1));
        const ptrdiff_t ldb = nr + (ptrdiff_t)(rng_next() % 100);
        const size_t n = (size_t)kc * (size_t)ldb, words = (size_t)(kc + 1) / 2 * (size_t)nr;
        float *src = random_buffer(n), *want = random_buffer((size_t)kc * nr);
        float *got = random_buffer((size_t)kc * nr);
        for (size_t i = 0; i < n; i += 1 + rng_next() % 13) {
            const uint32_t r = rng_next() % 3;
            const uint32_t u = r == 0 ? 0x7F800001u : r == 1 ? 0xFF800000u : 0x3F818000u;
            memcpy(&src[i], &u, 4);
        }
        for (int k = 0; k < kc; k++)
            for (int j = 0; j < nr; j++)
                want[(size_t)k * nr + j] = j < cols ? src[(size_t)k * ldb + j] : 0.0f;
        kd->finish_b(want, kc, nr);
        memset(got, 0xFF, words * sizeof(float)); /* every word must be written */
        kd->pack_b_finished(src, ldb, kc, cols, nr, got);
        bad += memcmp(got, want, words * sizeof(float)) != 0;
        cases++;
        rn_free(src), rn_free(got), rn_free(want);
    }
    check_packer(kd, "one-pass B packer = fp32 packing + finish_b", bad, cases);
}

static void run_cases(const rn_kernels *kd, int slow) {
    static const int sizes[] = {1, 7, 13, 31, 64, 100, 257};
    const int nsizes = (int)(sizeof sizes / sizeof sizes[0]);
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
            if (slow && count % 2)
                continue; /* half as many on the slow kernels */
            check_case(kd, ta, tb, dims[0], dims[1], dims[2], beta, epi, pad);
            count++;
        }
    /* Every transpose / beta / epilogue combination on one ragged shape. */
    for (int ta = 0; ta <= 1; ta++)
        for (int tb = 0; tb <= 1; tb++)
            for (int b = 0; b <= 1; b++)
                for (int epi = 0; epi < 8; epi += slow ? 7 : 1)
                    check_case(kd, ta, tb, 45, 113, 300, (float)b, epi, 1);
    /* Wide N: A packed once and shared (narrower N reads A in place). */
    for (int ta = 0; ta <= 1; ta++)
        for (int tb = 0; tb <= 1; tb++)
            check_case(kd, ta, tb, 45, 1700, 400, (float)tb, 7 - 2 * ta, ta);
    /* Large K (several K blocks), wide N, tall M, empty K. */
    check_case(kd, 0, 0, 19, 70, 1000, 1.0f, 7, 0);
    check_case(kd, 1, 0, 530, 50, 40, 0.0f, 1, 0);
    check_case(kd, 0, 1, 9, 2000, 33, 0.0f, 6, 2);
    check_case(kd, 0, 0, 5, 9, 0, 1.0f, 7, 0);
    check_case(kd, 0, 0, 5, 9, 0, 0.0f, 3, 0);
}

int main(void) {
    const rn_kernels *ks[RN_ISA_COUNT];
    const int nk = check_kernel_paths("test_gemm", ks);
    for (int i = 0; i < nk; i++)
        run_cases(ks[i], ks[i]->isa == RN_ISA_PORTABLE);
    for (int i = 0; i < nk; i++)
        check_pack_bt(ks[i]);
    /* bf16 products (rounded operands, fp32 sums) where a path has them */
    for (int i = 0; i < nk; i++) {
        const rn_kernels *kb = rn_kernels_bf16(ks[i]);
        printf("test_gemm: %s bf16 kernels: %s\n", rn_isa_name(ks[i]->isa),
               kb ? kb->name : "none on this CPU (bf16 runs the fp32 kernels on rounded operands)");
        if (kb) {
            check_finish(kb);
            if (kb->pack_b_finished)
                check_pack_b_finished(kb);
            run_cases(kb, kb->isa == RN_ISA_PORTABLE);
            check_determinism(kb, 0, 0, 300, 1000, 700);
            check_determinism(kb, 1, 0, 70, 2000, 301);
        }
    }
    check_bf16_pairs();

    /* The SIMD descriptors' geometries on the plain-C kernel, and AMX bf16's K blocking (up to
     * 512, whole steps of 32 but the last) */
    rn_kernels steps = geometry_of("C kernel, K blocks of whole steps of 32 up to 512", 8, 32, 16,
                                   512, 512);
    steps.k_step = 32;
    const rn_kernels geo[] = {
        geometry_of("C kernel, avx512 geometry 8x48/16", 8, 48, 16, 192, 512),
        geometry_of("C kernel, avx2 geometry 6x16/8", 6, 16, 8, 256, 240),
        steps,
    };
    int blocks_ok = 1;
    for (int K = 1; K <= 5000; K++) {
        int nkb, kc;
        rn_gemm_k_blocks(&steps, K, &nkb, &kc);
        blocks_ok &= kc <= 512 && (nkb == 1 || kc % 32 == 0) && (long)nkb * kc >= K &&
                     (long)(nkb - 1) * kc < K && nkb == (K + 511) / 512;
    }
    if (blocks_ok)
        passed++;
    else
        failed++, printf("FAIL K blocks of steps of 32: a block not whole steps, or too many\n");
    for (size_t i = 0; i < sizeof geo / sizeof geo[0]; i++)
        run_cases(&geo[i], 1);

    for (int i = 0; i < nk; i++) {
        check_determinism(ks[i], 0, 0, 300, 1000, 700);
        check_determinism(ks[i], 1, 1, 130, 517, 1100);
        check_determinism(ks[i], 0, 0, 600, 49, 2304);
        check_determinism(ks[i], 1, 0, 70, 2000, 300);
    }

    printf("test_gemm: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
