/*
 * im2col_x86.h - what the vector im2col packers (gemm_avx2.c, gemm_avx512.c) share.
 *
 * A panel row k = (ci, ki, kj) is the panel's runs (kernels.h) read at tap (ki, kj) of channel
 * ci; each run reads one input row. The loads a tap needs (an offset and lane masks per run)
 * are worked out once per panel, then replayed for every channel. Per vector a run is read:
 *   stride 1 (PACK_UNIT):   one contiguous masked load (lanes outside the image are masked off
 *                           and never touched);
 *   stride 2 (PACK_PAIR):   two contiguous masked loads, their even elements kept;
 *   other (PACK_GATHER):    a masked gather.
 * This header has the modes, the limits and the span of a run at a tap (tap_span); each packer
 * encodes the span's lane bits as its loads want them (its tap_load and tap_loads) and reads
 * them (pack_row). im2col_panel_x86.h then builds the panel on those.
 */
#ifndef RN_OPS_X86_IM2COL_X86_H
#define RN_OPS_X86_IM2COL_X86_H

#include <stddef.h>
#include <stdint.h>

#include "ops/kernels.h"

enum { PACK_UNIT, PACK_PAIR, PACK_GATHER };

#define TAP_CAP 512         /* tap loads cached per panel */
#define TAP_MAX 64          /* taps (kh * kw) cached per panel */

/* The address of p[off], computed without forming an out-of-bounds pointer
 * in C: masked-off lanes may sit before or past the buffer, and are never
 * read. */
static inline const float *addr_at(const float *p, ptrdiff_t off) {
    return (const float *)((uintptr_t)p + (uintptr_t)(off * (ptrdiff_t)sizeof(float)));
}

static inline int ceil_div_pos(int a, int b) { return (a + b - 1) / b; }

/* What run reads at tap (ki, kj), its columns s input columns apart: 0 where it is wholly in
 * the padding; else 1, with *off the input element its lane 0 would read (before masking) and
 * *bits the panel lanes (bit l: lane l) that read inside the image. */
static inline __attribute__((always_inline)) int
tap_span(const rn_im2col *im, const rn_im2col_run *run, int s, int ki, int kj, ptrdiff_t *off,
         uint64_t *bits) {
    const int H = im->h, W = im->w;
    const int ih = run->ih0 + ki;
    if (ih < 0 || ih >= H)
        return 0;
    /* Column t of the run reads input column iw + t * s. */
    const int iw = run->iw0 + kj;
    const int tlo = iw >= 0 ? 0 : ceil_div_pos(-iw, s);
    int thi = iw < W ? ceil_div_pos(W - iw, s) : 0;
    if (thi > run->len)
        thi = run->len;
    if (tlo >= thi)
        return 0;
    const int width = thi - tlo;
    *bits = (width >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << width) - 1) << (run->lane + tlo);
    *off = run->base + (ptrdiff_t)ih * W + iw - (ptrdiff_t)run->lane * s;
    return 1;
}

#endif
