/*
 * transform.h - torchvision's image transforms on decoded images, producing
 * normalised float32 (C, H, W) tensors.
 *
 * Eval (rn_preprocess_eval) is, on a PIL image, exactly
 *     Resize(resize_size) -> CenterCrop(crop_size) -> ToTensor -> Normalize(mean, std)
 * of torchvision 0.14: the shorter side becomes resize_size and the longer
 * int(resize_size * long / short) (Python's float division, truncated); the
 * resize is Pillow's antialiased bilinear (src/data/resize.h); the crop
 * starts at int(round((H - crop) / 2.0)) with Python's round-half-to-even,
 * and an image smaller than the crop is first zero-padded as torchvision
 * pads it; ToTensor divides by 255 in float32 and Normalize computes
 * (x - mean) / std in float32. With the same decoded pixels the result is
 * bit-identical to torchvision's.
 *
 * Train (rn_preprocess_train) is RandomResizedCrop(crop_size, scale, ratio)
 * -> RandomHorizontalFlip(0.5) -> ToTensor -> Normalize: the same sampling
 * rule as torchvision (ten tries, then the central fallback), drawn from an
 * rn_rng, so the same distribution but not torch's random stream.
 *
 * A 1-channel image uses mean[0] and std[0].
 */
#ifndef RN_DATA_TRANSFORM_H
#define RN_DATA_TRANSFORM_H

#include "core/rng.h"
#include "io/image.h"
#include "resnet.h"

typedef struct rn_preprocess_config {
    int resize_size;           /* eval: shorter side after Resize; 0: no resize */
    int crop_size;             /* eval: CenterCrop side, 0: no crop; train: output side */
    float scale[2];            /* train: range of the crop's area fraction */
    float ratio[2];            /* train: range of the crop's aspect ratio (w / h) */
    int hflip;                 /* train: flip horizontally with probability 0.5 */
    float mean[3], std[3];
} rn_preprocess_config;

/* ImageNet: 256, 224, scale (0.08, 1), ratio (3/4, 4/3), hflip on,
 * mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225). */
void rn_preprocess_config_imagenet(rn_preprocess_config *cfg);

/* torchvision's Resize(size) rule: (in_h, in_w) -> (*out_h, *out_w). */
rn_status rn_resize_shorter_size(int in_h, int in_w, int size, int *out_h, int *out_w);

/* Output height and width of rn_preprocess_eval for an in_h x in_w image. */
rn_status rn_preprocess_eval_size(const rn_preprocess_config *cfg, int in_h, int in_w,
                                  int *out_h, int *out_w);

/* out: (img->channels, out_h, out_w) float32 as given by rn_preprocess_eval_size. */
rn_status rn_preprocess_eval(const rn_image *img, const rn_preprocess_config *cfg, float *out);

/* The same before ToTensor and Normalize: out holds the bytes (channels, out_h, out_w). */
rn_status rn_preprocess_eval_u8(const rn_image *img, const rn_preprocess_config *cfg,
                                uint8_t *out);

/* ToTensor and Normalize of `channels` planes of `plane` bytes each, into out. */
void rn_preprocess_normalize(const uint8_t *in, int channels, size_t plane,
                             const rn_preprocess_config *cfg, float *out);

/* torchvision RandomResizedCrop.get_params: a crop (top, left, h, w) of an
 * in_h x in_w image. */
void rn_random_resized_crop_params(int in_h, int in_w, const float scale[2],
                                   const float ratio[2], rn_rng *rng, int *top, int *left,
                                   int *h, int *w);

/* out: (img->channels, crop_size, crop_size) float32. */
rn_status rn_preprocess_train(const rn_image *img, const rn_preprocess_config *cfg, rn_rng *rng,
                              float *out);

/* The same before ToTensor and Normalize: out holds the bytes (channels, crop_size, crop_size);
 * the same draws from rng. */
rn_status rn_preprocess_train_u8(const rn_image *img, const rn_preprocess_config *cfg, rn_rng *rng,
                                 uint8_t *out);

#endif
