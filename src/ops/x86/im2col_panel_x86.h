/*
 * im2col_panel_x86.h - one im2col panel of NV vectors of LANES floats (im2col_x86.h), on the
 * packer's own loads: included by gemm_avx2.c and gemm_avx512.c after they define LANES (floats
 * a vector), their tap_load, tap_loads(MODE, NV, im, runs, nrun, ki, kj, out) and
 * pack_row(NV, MODE, xc, loads, count, stride, dst).
 */
#ifndef RN_OPS_X86_IM2COL_PANEL_X86_H
#define RN_OPS_X86_IM2COL_PANEL_X86_H

#include "ops/x86/im2col_x86.h"

static inline __attribute__((always_inline)) void
pack_panel(const int NV, const int MODE, const rn_im2col *im, int k0, int kc,
           const rn_im2col_run *runs, int nrun, float *dst) {
    const ptrdiff_t plane = (ptrdiff_t)im->n * im->h * im->w;
    const int khw = im->kh * im->kw;
    tap_load loads[TAP_CAP];
    int first[TAP_MAX + 1];

    /* Cache every tap's loads when they fit, else work them out per row. */
    const int cached = khw <= TAP_MAX && khw * nrun <= TAP_CAP;
    if (cached) {
        first[0] = 0;
        for (int tap = 0; tap < khw; tap++)
            first[tap + 1] = first[tap] + tap_loads(MODE, NV, im, runs, nrun, tap / im->kw,
                                                    tap % im->kw, loads + first[tap]);
    }

    int ci = k0 / khw, tap = k0 % khw;
    for (int k = 0; k < kc; k++) {
        const float *xc = im->x + ci * plane;
        float *row = dst + (ptrdiff_t)k * NV * LANES;
        if (cached) {
            pack_row(NV, MODE, xc, loads + first[tap], first[tap + 1] - first[tap],
                     im->stride, row);
        } else {
            int ne = tap_loads(MODE, NV, im, runs, nrun, tap / im->kw, tap % im->kw, loads);
            pack_row(NV, MODE, xc, loads, ne, im->stride, row);
        }
        if (++tap == khw) {
            tap = 0;
            ci++;
        }
    }
}

#endif
