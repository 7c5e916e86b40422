/*
 * conv_algo.c - the registry of convolution algorithms and the heuristic
 * that picks one per layer (contract in conv_algo.h).
 */
#include "ops/conv_algo.h"

#include <string.h>

static const rn_conv_algo *const ALGOS[RN_CONV_ALGO_COUNT] = {
    [RN_CONV_IM2COL] = &rn_conv_im2col,
    [RN_CONV_POINTWISE] = &rn_conv_pointwise,
};

const rn_conv_algo *rn_conv_algo_get(int id) {
    return id >= 0 && id < RN_CONV_ALGO_COUNT ? ALGOS[id] : NULL;
}

int rn_conv_algo_find(const char *name) {
    for (int i = 0; name && i < RN_CONV_ALGO_COUNT; i++)
        if (ALGOS[i] && strcmp(ALGOS[i]->name, name) == 0)
            return i;
    return -1;
}

rn_conv_algo_id rn_conv_algo_choose(const rn_kernels *k, const rn_conv_shape *s) {
    (void)k;
    /* a 1x1 stride-1 convolution needs no im2col at all */
    return rn_conv_pointwise.supports(s) ? RN_CONV_POINTWISE : RN_CONV_IM2COL;
}
