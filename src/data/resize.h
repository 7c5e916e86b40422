/*
 * resize.h - bilinear image resizing with exactly Pillow's arithmetic.
 *
 * The algorithm is Pillow 9.4's Image.resize(size, Image.BILINEAR) with the
 * default box and reducing_gap=None (libImaging/Resample.c): a separable
 * two-pass resample, horizontal pass first, with a triangle filter whose
 * support grows with the downscale factor (antialiasing). For uint8 planes
 * the weights are fixed-point with 22 fraction bits and every pass rounds and
 * clips to 0..255, so results are bit-identical to PIL on "L" (and, band by
 * band, "RGB") images. For float planes the passes accumulate in double and
 * store float, as PIL's "F" mode does. A pass whose size does not change is
 * skipped, as in PIL.
 *
 * Planes are independent: a (C, H, W) image is C separate resizes (PIL's
 * premultiplied-alpha path for "LA"/"RGBA" is not reproduced).
 */
#ifndef RN_DATA_RESIZE_H
#define RN_DATA_RESIZE_H

#include <stdint.h>

#include "resnet.h"

/* The largest input or output side accepted. */
#define RN_RESIZE_MAX_SIDE 65536

/* Coefficients for one (in_h, in_w) -> (out_h, out_w) resize plus a scratch
 * row buffer, so that repeated resizes allocate nothing. A plan is used by
 * one thread at a time. */
typedef struct rn_resize_plan rn_resize_plan;

/* Creates a plan. Sides must be in 1..RN_RESIZE_MAX_SIDE. */
rn_status rn_resize_plan_create(int in_h, int in_w, int out_h, int out_w,
                                rn_resize_plan **out);
void rn_resize_plan_free(rn_resize_plan *plan);

/* One plane: src (in_h, in_w) -> dst (out_h, out_w). src and dst must not
 * overlap. */
void rn_resize_plan_u8(rn_resize_plan *plan, const uint8_t *src, uint8_t *dst);
void rn_resize_plan_f32(rn_resize_plan *plan, const float *src, float *dst);

/* Convenience wrappers: `channels` planes, src (channels, in_h, in_w) ->
 * dst (channels, out_h, out_w); they build and free a plan. */
rn_status rn_resize_bilinear_u8(const uint8_t *src, int channels, int in_h, int in_w,
                                uint8_t *dst, int out_h, int out_w);
rn_status rn_resize_bilinear_f32(const float *src, int channels, int in_h, int in_w,
                                 float *dst, int out_h, int out_w);

#endif
