/*
 * conv_case.h - the tensor sizes of a convolution test case, in floats:
 * input (cin, n, h, w), weights (cout, cin / groups, kh, kw) and output
 * (cout, n, ho, wo). conv_case_init completes the shape and fails the
 * test (check.h's CHECK, included first) when it is rejected.
 */
#ifndef RN_TESTS_CONV_CASE_H
#define RN_TESTS_CONV_CASE_H

#include <stddef.h>

#include "ops/conv2d.h"

typedef struct conv_sizes {
    size_t x, w, y;
} conv_sizes;

/* A square-window shape (n images of cin x h x w, cout outputs, k x k windows), not yet
 * completed by conv2d_shape_init. */
static inline rn_conv_shape conv_case_shape(int n, int cin, int h, int w, int cout, int k,
                                            int stride, int pad, int groups) {
    return (rn_conv_shape){.n = n, .cin = cin, .h = h, .w = w, .cout = cout, .kh = k, .kw = k,
                           .stride = stride, .pad = pad, .groups = groups};
}

static inline conv_sizes conv_case_sizes(const rn_conv_shape *s) {
    return (conv_sizes){.x = (size_t)s->cin * s->n * s->h * s->w,
                        .w = (size_t)s->cout * (s->cin / s->groups) * s->kh * s->kw,
                        .y = (size_t)s->cout * s->n * s->ho * s->wo};
}

static inline int conv_case_init(rn_conv_shape *s, const char *tag, conv_sizes *sz) {
    if (!conv2d_shape_init(s)) {
        CHECK(0, "%s: shape rejected", tag);
        return 0;
    }
    *sz = conv_case_sizes(s);
    return 1;
}

#endif
