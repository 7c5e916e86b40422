/*
 * conv_smallmap.h - the small-map convolution (conv_smallmap.c): what the heuristic and the
 * backward passes (conv_algo.c, conv2d_backward.c) need of it beyond its rn_conv_algo.
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

/* The weight gradient of s as the algorithm's product (conv2d_backward_weight's, no bias):
 * dw (cout, cin, kh, kw) overwritten; workspace of rn_smallmap_weight_floats(s) floats. Threaded;
 * call it outside a parallel region. */
size_t rn_smallmap_weight_floats(const rn_conv_shape *s);
void rn_smallmap_weight(const rn_kernels *k, const rn_conv_shape *s, const float *x,
                        const float *dy, float *dw, float *workspace);

#endif
