/* mem.c - aligned allocation. */
#include "mem.h"

#include <stdlib.h>
#include <string.h>

#define RN_ALIGN 64

void *rn_alloc(size_t bytes) {
    size_t rounded;
    if (!rn_size_add(bytes ? bytes : 1, RN_ALIGN - 1, &rounded))
        return NULL;
    rounded &= ~(size_t)(RN_ALIGN - 1);
    return aligned_alloc(RN_ALIGN, rounded);
}

void *rn_calloc(size_t count, size_t size) {
    size_t bytes;
    if (!rn_size_mul(count, size, &bytes))
        return NULL;
    void *p = rn_alloc(bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void rn_free(void *p) { free(p); }
