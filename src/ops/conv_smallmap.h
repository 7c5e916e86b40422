/*
 * conv_smallmap.h - the small-map convolution's layout (conv_smallmap.c), shared with the
 * backward passes (conv2d_backward.c), which run the same dense product on the same matrices.
 */
#ifndef RN_OPS_CONV_SMALLMAP_H
#define RN_OPS_CONV_SMALLMAP_H

#include "ops/conv2d.h"

/* The most input (and output) pixels a map may have for the algorithm: 2x2. */
#define RN_SMALLMAP_MAX_PIXELS 4

/* Whether the algorithm computes s: one group, maps of at most RN_SMALLMAP_MAX_PIXELS. */
int rn_smallmap_supports(const rn_conv_shape *s);

/* The tap (ky * kw + kx) through which output pixel p (of ho x wo) reads input pixel q (of
 * h x w), or -1 where that falls outside the window. */
int rn_smallmap_tap(const rn_conv_shape *s, int p, int q);

/* xm[(q * c + ci) * n + b] = x[(ci * n + b) * pixels + q]: a (c, n, pixels) tensor as the
 * matrix of rows (q, ci) and a column per image (threaded). */
void rn_smallmap_gather(const float *x, int c, int n, int pixels, float *xm);

#endif
