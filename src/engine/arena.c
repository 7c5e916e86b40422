/*
 * arena.c - greedy placement of buffers with lifetimes (contract in arena.h).
 */
#include "engine/arena.h"

#include <stdlib.h>

#include "core/mem.h"
#include "core/status.h"

#define ALIGN 16 /* floats */

static size_t align_up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

static int overlaps(const rn_arena_buf *a, const rn_arena_buf *b) {
    return a->first <= b->last && b->first <= a->last;
}

/* A buffer's index with the key it is sorted by. */
typedef struct keyed {
    size_t key;
    int index;
} keyed;

static int ascending(const void *x, const void *y) {
    const keyed *a = x, *b = y;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

rn_status rn_arena_plan(rn_arena_buf *bufs, int count, size_t *total) {
    *total = 0;
    const size_t cap = (size_t)(count > 0 ? count : 1);
    keyed *order = malloc(cap * sizeof *order), *live = malloc(cap * sizeof *live);
    int *placed = malloc(cap * sizeof *placed);
    if (!order || !placed || !live) {
        free(order), free(placed), free(live);
        return rn_fail(RN_ERR_NOMEM, "out of memory planning buffers");
    }
    /* largest first: the key is the size, complemented */
    int n = 0;
    for (int i = 0; i < count; i++) {
        bufs[i].offset = 0;
        if (bufs[i].floats)
            order[n++] = (keyed){~bufs[i].floats, i};
    }
    qsort(order, (size_t)n, sizeof *order, ascending);

    rn_status st = RN_OK;
    for (int a = 0; a < n && st == RN_OK; a++) {
        rn_arena_buf *b = &bufs[order[a].index];
        const size_t size = align_up(b->floats);
        /* the placed buffers alive at the same time, by offset; take the first gap */
        int nl = 0;
        for (int c = 0; c < a; c++)
            if (overlaps(b, &bufs[placed[c]]))
                live[nl++] = (keyed){bufs[placed[c]].offset, placed[c]};
        qsort(live, (size_t)nl, sizeof *live, ascending);
        size_t at = 0;
        for (int c = 0; c < nl; c++) {
            const rn_arena_buf *o = &bufs[live[c].index];
            if (o->offset >= at + size)
                break; /* the gap before o is wide enough */
            size_t end = o->offset + align_up(o->floats);
            if (end > at)
                at = end;
        }
        b->offset = at;
        placed[a] = order[a].index;
        size_t end;
        if (!rn_size_add(at, size, &end))
            st = rn_fail(RN_ERR_NOMEM, "buffer sizes overflow");
        else if (end > *total)
            *total = end;
    }
    free(order), free(placed), free(live);
    return st;
}
