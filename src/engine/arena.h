/*
 * arena.h - planning one block of memory for many buffers.
 *
 * Each buffer has a size and a lifetime: the steps [first, last] during
 * which it holds something. Two buffers may share memory when their
 * lifetimes do not overlap. rn_arena_plan places every buffer at an offset
 * (largest first, each at the lowest offset that does not collide with an
 * already placed buffer whose lifetime overlaps), and returns the size of
 * the block. Offsets are multiples of 16 floats (64 bytes).
 *
 * Activations scale with the batch: a plan made for the largest batch holds
 * any smaller one at the same offsets.
 */
#ifndef RN_ENGINE_ARENA_H
#define RN_ENGINE_ARENA_H

#include <stddef.h>

#include "resnet.h"

typedef struct rn_arena_buf {
    size_t floats;      /* size; 0: not placed (offset 0) */
    int first, last;    /* lifetime, in steps, inclusive */
    size_t offset;      /* out: in floats from the start of the block */
} rn_arena_buf;

/* Places bufs[0 .. count-1]; *total receives the block's size in floats.
 * Fails only when size arithmetic overflows or scratch memory runs out. */
rn_status rn_arena_plan(rn_arena_buf *bufs, int count, size_t *total);

#endif
