/*
 * mem.h - aligned allocation and overflow-checked size arithmetic.
 *
 * Every size computed from something read from a file goes through
 * rn_size_mul / rn_size_add: they return 0 (false) on overflow and never
 * wrap. Buffers come from rn_alloc (64-byte aligned, for SIMD) and go back
 * through rn_free.
 */
#ifndef RN_CORE_MEM_H
#define RN_CORE_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* dst[0 .. n-1] = src[0 .. n-1] by fixed-size pieces: a variable-length memcpy compiles to a
 * library call (rep movs), slow for the short rows of a GEMM panel or a padded image (a fifth
 * of a 16-channel layer's weight gradient, once). */
static inline void rn_copy_floats(float *dst, const float *src, int n) {
    int j = 0;
    for (; j + 8 <= n; j += 8)
        memcpy(dst + j, src + j, 8 * sizeof(float));
    for (; j < n; j++)
        dst[j] = src[j];
}

/* *out = a * b; returns 1 on success, 0 on overflow. */
static inline int rn_size_mul(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}

/* *out = a + b; returns 1 on success, 0 on overflow. */
static inline int rn_size_add(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* 64-byte aligned, uninitialised; NULL on failure or bytes == 0 overflow. From RN_HUGE_BYTES
 * up (unless RN_HUGEPAGES=0 is set), 2 MB aligned and in transparent huge pages where Linux
 * has them (mem.c). */
void *rn_alloc(size_t bytes);
#define RN_HUGE_BYTES ((size_t)2 << 20)
/* Writes a byte in every 4 KB page of p[0 .. bytes - 1] (their contents are then undefined, as
 * rn_alloc's are), the pages shared out over rn_threads() threads by 2 MB: a buffer about to be
 * filled takes its page faults on every core at once instead of on whichever thread first
 * writes each page (mem.c). */
void rn_touch_pages(void *p, size_t bytes);
/* As rn_alloc, zero-filled. */
void *rn_calloc(size_t count, size_t size);
/* free(p): a buffer from rn_alloc may also go to free() (the file readers hand theirs out so). */
void rn_free(void *p);

#endif
