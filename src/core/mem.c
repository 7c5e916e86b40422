/*
 * mem.c - aligned allocation.
 *
 * Buffers of RN_HUGE_BYTES and more (the prepared weights, the activation arenas, a model's
 * parameters) start on a 2 MB boundary, span whole 2 MB pages, and ask Linux for transparent
 * huge pages (madvise): where the kernel gives them only to those who ask (THP "madvise", the
 * default of many distributions), a pass at batch 1 otherwise walks the page tables for every
 * 4 KB of weights it streams (resnet18's 72 MB: ~18000 pages, each a TLB miss, and in a
 * virtual machine a nested walk). Interleaved `resnet bench` pairs against RN_HUGEPAGES=0 (AMD
 * EPYC Zen 5, 2 threads): resnet50 1-3% faster at batch 1, 2-5% at batch 32; resnet18 within
 * the host's noise. Files read whole and the tensors read from them take them too: faulting in
 * a 500 MB weights file 4 KB at a time (twice: the file, then its tensors) had cost
 * `resnet forward` on wide_resnet101_2 5.2-6.7 s, 1.1-2.6 s since (AMD EPYC Zen 5, in a virtual
 * machine, where every fault is dear). RN_HUGEPAGES=0 in the environment turns it off.
 */
#include "mem.h"

#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#include "threads.h"

#define RN_ALIGN 64

/* 0 where the environment says RN_HUGEPAGES=0, else 1. */
static int huge_pages_wanted(void) {
    const char *e = getenv("RN_HUGEPAGES");
    return !(e && e[0] == '0' && e[1] == '\0');
}

void *rn_alloc(size_t bytes) {
    size_t rounded;
    if (!rn_size_add(bytes ? bytes : 1, RN_ALIGN - 1, &rounded))
        return NULL;
    rounded &= ~(size_t)(RN_ALIGN - 1);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (rounded >= RN_HUGE_BYTES && huge_pages_wanted()) {
        if (!rn_size_add(rounded, RN_HUGE_BYTES - 1, &rounded))
            return NULL;
        rounded &= ~(size_t)(RN_HUGE_BYTES - 1);
        void *p = aligned_alloc(RN_HUGE_BYTES, rounded);
        if (p) /* before the first touch; a kernel without THP says no, and that is fine */
            (void)madvise(p, rounded, MADV_HUGEPAGE);
        return p;
    }
#endif
    return aligned_alloc(RN_ALIGN, rounded);
}

/* A page's first write is a fault, in which the kernel zeroes the page, and in a virtual
 * machine whose free memory goes back to the host, first asks the host for it: fresh memory
 * was faulted in at 0.6 GB/s by one thread and 1.2 GB/s by two (AMD EPYC Zen 5 VM, 2 MB
 * pages, a gigabyte timed). A session's prepared weights (168 MB for resnet50 in fp32), written
 * first by serial code (the BatchNorm fold, weight copies), took its first pass at batch 1 to
 * 297-306 ms against 21 for the next; touched ahead, 251-300. Not a training arena: its
 * first step, whose kernels fault it in on both threads already, was level (d2l_resnet18 at
 * 96x96, batch 128: 870-1415 ms against 818-1062). */
void rn_touch_pages(void *p, size_t bytes) {
    char *c = p;
    const size_t chunks = (bytes + RN_HUGE_BYTES - 1) / RN_HUGE_BYTES;
#pragma omp parallel for num_threads(rn_threads()) schedule(static) if (chunks > 1)
    for (size_t k = 0; k < chunks; k++) {
        const size_t end = (k + 1) * RN_HUGE_BYTES < bytes ? (k + 1) * RN_HUGE_BYTES : bytes;
        for (size_t at = k * RN_HUGE_BYTES; at < end; at += 4096)
            c[at] = 0;
    }
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
