/*
 * check.h - the smallest test harness: CHECK counts and reports, and
 * check_done() prints "NAME: P passed, F failed" and gives the exit status.
 */
#ifndef RN_TESTS_CHECK_H
#define RN_TESTS_CHECK_H

#include <dirent.h>
#include <fenv.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond, ...)                                  \
    do {                                                  \
        if (cond) {                                       \
            check_passed++;                               \
        } else {                                          \
            check_failed++;                               \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);   \
            printf(__VA_ARGS__);                          \
            printf("\n");                                 \
        }                                                 \
    } while (0)

static inline int check_done(const char *name) {
    printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
    return check_failed ? 1 : 0;
}

/* Arithmetic on memory a kernel did not write (an unwritten lane of a padded panel: harmless to
 * the result, but microcode assists on Intel CPUs where it holds a denormal): fill the workspace
 * with signalling NaNs (check_poison), clear every thread's invalid-operation flag, run, and
 * ask whether any thread raised it. The library's teams of `threads` threads are these regions'
 * (libgomp keeps its threads). */
static inline void check_poison(float *p, size_t n) {
    const uint32_t snan = 0x7fa00000u;
    for (size_t i = 0; i < n; i++)
        memcpy(&p[i], &snan, 4);
}

static inline void check_invalid_clear(int threads) {
#pragma omp parallel num_threads(threads)
    feclearexcept(FE_INVALID);
}

static inline int check_invalid_raised(int threads) {
    int raised = 0;
#pragma omp parallel num_threads(threads) reduction(| : raised)
    raised |= fetestexcept(FE_INVALID) != 0;
    return raised;
}

/* A deterministic generator for test data (xorshift32). */
static uint32_t check_rng_state = 2463534242u;
static inline float check_uniform(float lo, float hi) {
    uint32_t x = check_rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    check_rng_state = x;
    return lo + (hi - lo) * (float)(x >> 8) / 16777216.0f;
}
/* xorshift64 with its state in the caller (tests that keep their own stream). */
static inline uint32_t check_xorshift64(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 32);
}

static inline int check_int(int lo, int hi) { /* inclusive */
    return lo + (int)(check_uniform(0.0f, 1.0f) * (float)(hi - lo + 1)) % (hi - lo + 1);
}
static inline void check_fill(float *p, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++)
        p[i] = check_uniform(lo, hi);
}
static inline int check_same_bits(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

/* n floats from rn_alloc (64-byte aligned, freed by rn_free), or the test exits: out of memory;
 * and the same filled uniformly in [lo, hi). Defined only where core/mem.h is included first. */
#ifdef RN_CORE_MEM_H
static inline float *check_floats(size_t n) {
    float *p = rn_alloc((n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory (%zu floats)\n", n);
        exit(2);
    }
    return p;
}
static inline float *check_frand(size_t n, float lo, float hi) {
    float *p = check_floats(n);
    check_fill(p, n, lo, hi);
    return p;
}
#endif

/* ---- files ---- */

/* Writes len bytes to path; returns 1 on success. */
static inline int check_write_file(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    int ok = fwrite(buf, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

/* Reads a whole file (malloc'ed, free with free()), with a NUL after its
 * *len bytes so that text can be searched as a string; NULL if it cannot. */
static inline unsigned char *check_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n + 1 : 1);
    if (buf && fread(buf, 1, (size_t)(n > 0 ? n : 0), f) != (size_t)(n > 0 ? n : 0)) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n > 0 ? n : 0] = 0;
    fclose(f);
    *len = n > 0 ? (size_t)n : 0;
    return buf;
}

/* Number of entries of a directory whose name satisfies keep(name). */
static inline int check_count_files(const char *dir, int (*keep)(const char *name)) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += keep(e->d_name) != 0;
    if (d)
        closedir(d);
    return n;
}

/* Makes a fresh directory $TMPDIR/NAME_XXXXXX (or under /tmp) in out;
 * returns 0 after printing why if it cannot. */
static inline int check_tmpdir(const char *name, char *out, size_t cap) {
    const char *base = getenv("TMPDIR");
    snprintf(out, cap, "%s/%s_XXXXXX", base && *base ? base : "/tmp", name);
    if (!mkdtemp(out)) {
        perror("mkdtemp");
        return 0;
    }
    return 1;
}

/* Removes a directory made by check_tmpdir, with everything in it. */
static inline void check_tmpdir_remove(const char *dir) {
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
}

/* max|a - b| / max(max|b|, tiny) */
static inline double check_rel_err(const float *a, const float *b, size_t n) {
    double num = 0.0, den = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > num || d != d)
            num = d != d ? INFINITY : d;
        if (fabs((double)b[i]) > den)
            den = fabs((double)b[i]);
    }
    return num / den;
}

/* ---- every kernel path the host supports ------------------------------------------
 * Fills ks[] with the kernel descriptors of every instruction set this
 * build and CPU can run (portable always), prints which run and which the
 * CPU lacks, and returns how many. Defined only where ops/kernels.h is
 * included first. */
#ifdef RN_OPS_KERNELS_H
static inline int check_kernel_paths(const char *test, const rn_kernels *ks[RN_ISA_COUNT]) {
    int n = 0;
    for (int i = RN_ISA_COUNT - 1; i >= 0; i--) {
        const rn_kernels *k = rn_kernels_for((rn_isa)i);
        if (k) {
            ks[n++] = k;
            printf("%s: kernel path %s (%s)\n", test, rn_isa_name((rn_isa)i), k->name);
        } else {
            printf("%s: kernel path %s not run: this CPU (%s) lacks it\n", test,
                   rn_isa_name((rn_isa)i), rn_cpu_name());
        }
    }
    return n;
}
#endif

#endif
