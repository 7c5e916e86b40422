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

/* *out = a * b; returns 1 on success, 0 on overflow. */
static inline int rn_size_mul(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}

/* *out = a + b; returns 1 on success, 0 on overflow. */
static inline int rn_size_add(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* 64-byte aligned, uninitialised; NULL on failure or bytes == 0 overflow. */
void *rn_alloc(size_t bytes);
/* As rn_alloc, zero-filled. */
void *rn_calloc(size_t count, size_t size);
void rn_free(void *p);

#endif
