/*
 * test_transform.c - the torchvision transforms (src/data/transform.c) on images made here:
 * Resize's shorter-side sizes, CenterCrop's offsets and zero padding, the eval tensor's value
 * range, RandomResizedCrop's crops (inside the image, ratio and scale in range, torchvision's
 * central fallback) and the random horizontal flip. Decoding is test_image.c's; PIL / torchvision
 * parity of the whole pipeline is tools/check_preprocess.py's.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "core/rng.h"
#include "data/transform.h"
#include "io/image.h"
#include "resnet.h"

static void test_sizes(void) {
    int h, w;
    rn_resize_shorter_size(480, 640, 256, &h, &w);
    CHECK(h == 256 && w == 341, "480x640 -> %dx%d", h, w);
    rn_resize_shorter_size(500, 333, 256, &h, &w);
    CHECK(h == 384 && w == 256, "500x333 -> %dx%d", h, w);
    rn_resize_shorter_size(1, 37, 256, &h, &w);
    CHECK(h == 256 && w == 9472, "1x37 -> %dx%d", h, w);
    rn_resize_shorter_size(300, 300, 256, &h, &w);
    CHECK(h == 256 && w == 256, "square -> %dx%d", h, w);
    /* int(256 * 683 / 512) = int(341.5) = 341; int(256*3/7*...) truncation */
    rn_resize_shorter_size(512, 683, 256, &h, &w);
    CHECK(h == 256 && w == 341, "512x683 -> %dx%d", h, w);
    CHECK(rn_resize_shorter_size(0, 5, 256, &h, &w) == RN_ERR_ARG, "empty image refused");
}

/* An image whose pixel (c, y, x) is c * 100 + y * 10 + x. */
static rn_image pattern_image(int c, int h, int w) {
    rn_image img = {w, h, c, malloc((size_t)c * h * w)};
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                img.pixels[((size_t)k * h + y) * w + x] = (uint8_t)(k * 100 + y * 10 + x);
    return img;
}

static void test_center_crop(void) {
    rn_preprocess_config cfg;
    rn_preprocess_config_imagenet(&cfg);
    cfg.resize_size = 0;
    for (int c = 0; c < 3; c++) {
        cfg.mean[c] = 0.0f;
        cfg.std[c] = 1.0f / 255.0f; /* out = pixel value, up to rounding */
    }
    /* width 6, crop 3: round(1.5) = 2; height 4: round(0.5) = 0 */
    rn_image img = pattern_image(3, 4, 6);
    cfg.crop_size = 3;
    float out[3 * 6 * 6];
    CHECK(rn_preprocess_eval(&img, &cfg, out) == RN_OK, "crop: %s", rn_last_error());
    CHECK(fabsf(out[0] - 2.0f) < 1e-3f && fabsf(out[3 * 3 + 4] - (100 + 10 + 3)) < 1e-3f,
          "crop offsets: %g %g", out[0], out[13]);
    rn_image_free(&img);
    /* 3 x 3 image, crop 6: padded 1 left/top, 2 right/bottom, with zeros */
    img = pattern_image(1, 3, 3);
    cfg.crop_size = 6;
    CHECK(rn_preprocess_eval(&img, &cfg, out) == RN_OK, "pad: %s", rn_last_error());
    int ok = 1;
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 6; x++) {
            int inside = y >= 1 && y <= 3 && x >= 1 && x <= 3;
            float want = inside ? (float)((y - 1) * 10 + (x - 1)) : 0.0f;
            ok &= fabsf(out[y * 6 + x] - want) < 1e-3f;
        }
    CHECK(ok, "zero padding placed as torchvision's pad");
    rn_image_free(&img);
}

static void test_eval_ranges(void) {
    rn_preprocess_config cfg;
    rn_preprocess_config_imagenet(&cfg);
    rn_image img = {333, 500, 3, malloc(3 * 333 * 500)};
    for (size_t i = 0; i < 3 * 333 * 500; i++)
        img.pixels[i] = (uint8_t)((i * 2654435761u) >> 24);
    int oh, ow;
    CHECK(rn_preprocess_eval_size(&cfg, 500, 333, &oh, &ow) == RN_OK && oh == 224 && ow == 224,
          "eval size %dx%d", oh, ow);
    float *out = malloc(sizeof(float) * 3 * 224 * 224);
    CHECK(rn_preprocess_eval(&img, &cfg, out) == RN_OK, "eval: %s", rn_last_error());
    int in_range = 1;
    for (int c = 0; c < 3; c++) {
        float lo = (0.0f - cfg.mean[c]) / cfg.std[c], hi = (1.0f - cfg.mean[c]) / cfg.std[c];
        for (int i = 0; i < 224 * 224; i++) {
            float v = out[c * 224 * 224 + i];
            in_range &= v >= lo && v <= hi && isfinite(v);
        }
    }
    CHECK(in_range, "eval values within [(0-mean)/std, (1-mean)/std]");
    cfg.std[1] = 0.0f;
    CHECK(rn_preprocess_eval(&img, &cfg, out) == RN_ERR_ARG, "std 0 refused");
    rn_image_free(&img);
    free(out);
}

static void test_train(void) {
    rn_rng rng;
    rn_rng_seed(&rng, 7);
    float scale[2] = {0.08f, 1.0f}, ratio[2] = {3.0f / 4.0f, 4.0f / 3.0f};
    int ok = 1;
    double area_sum = 0;
    const int n = 4000;
    for (int t = 0; t < n; t++) {
        int top, left, h, w;
        rn_random_resized_crop_params(375, 500, scale, ratio, &rng, &top, &left, &h, &w);
        ok &= h >= 1 && w >= 1 && top >= 0 && left >= 0 && top + h <= 375 && left + w <= 500;
        double r = (double)w / h, a = (double)w * h / (375.0 * 500.0);
        ok &= r > 0.74 && r < 1.35 && a > 0.07 && a < 1.01;
        area_sum += a;
    }
    CHECK(ok, "random crops inside the image, ratio and scale in range");
    /* the mean area fraction of accepted crops is a bit under 0.54 */
    CHECK(area_sum / n > 0.40 && area_sum / n < 0.56, "mean area fraction %.3f", area_sum / n);
    /* impossible scale: torchvision's central fallback */
    float big[2] = {5.0f, 6.0f};
    int top, left, h, w;
    rn_random_resized_crop_params(10, 100, big, ratio, &rng, &top, &left, &h, &w);
    CHECK(top == 0 && h == 10 && w == 13 && left == 43, "fallback crop %d %d %d %d", top, left,
          h, w);

    /* horizontal flips: a left-to-right ramp decreases in about half the outputs */
    rn_preprocess_config cfg;
    rn_preprocess_config_imagenet(&cfg);
    cfg.crop_size = 32;
    rn_image img = {64, 48, 3, malloc(3 * 64 * 48)};
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 48; y++)
            for (int x = 0; x < 64; x++)
                img.pixels[(c * 48 + y) * 64 + x] = (uint8_t)(x * 4);
    float out[3 * 32 * 32];
    int flipped = 0, good = 1;
    for (int t = 0; t < 200; t++) {
        rn_status st = rn_preprocess_train(&img, &cfg, &rng, out);
        good &= st == RN_OK;
        flipped += out[0] > out[31];
        for (int i = 0; i < 3 * 32 * 32; i++)
            good &= out[i] >= (0.0f - 0.485f) / 0.229f - 1e-4f && out[i] <= 2.7f;
    }
    CHECK(good, "train outputs in range");
    CHECK(flipped > 70 && flipped < 130, "%d of 200 flipped", flipped);
    cfg.hflip = 0;
    flipped = 0;
    for (int t = 0; t < 50; t++) {
        rn_preprocess_train(&img, &cfg, &rng, out);
        flipped += out[0] > out[31];
    }
    CHECK(flipped == 0, "hflip off: %d flipped", flipped);
    rn_image_free(&img);
}

int main(void) {
    test_sizes();
    test_center_crop();
    test_eval_ranges();
    test_train();
    return check_done("test_transform");
}
