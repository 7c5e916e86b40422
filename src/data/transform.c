/*
 * transform.c - torchvision's Resize / CenterCrop / RandomResizedCrop /
 * RandomHorizontalFlip / ToTensor / Normalize on rn_image (see transform.h).
 */
#include "transform.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/status.h"
#include "data/resize.h"

void rn_preprocess_config_imagenet(rn_preprocess_config *cfg) {
    static const float mean[3] = {0.485f, 0.456f, 0.406f};
    static const float std[3] = {0.229f, 0.224f, 0.225f};
    memset(cfg, 0, sizeof *cfg);
    cfg->resize_size = 256;
    cfg->crop_size = 224;
    cfg->scale[0] = 0.08f;
    cfg->scale[1] = 1.0f;
    cfg->ratio[0] = 3.0f / 4.0f;
    cfg->ratio[1] = 4.0f / 3.0f;
    cfg->hflip = 1;
    memcpy(cfg->mean, mean, sizeof mean);
    memcpy(cfg->std, std, sizeof std);
}

/* ---------------------------------------------------------------------------
 * Sizes and offsets
 * ------------------------------------------------------------------------- */

rn_status rn_resize_shorter_size(int in_h, int in_w, int size, int *out_h, int *out_w) {
    if (in_h <= 0 || in_w <= 0 || size <= 0)
        return rn_fail(RN_ERR_ARG, "resize: bad sizes (image %d x %d, size %d)", in_w, in_h, size);
    int64_t shorter = in_w <= in_h ? in_w : in_h, longer = in_w <= in_h ? in_h : in_w;
    /* Python: int(size * long / short); the product is exact, the division
     * correctly rounded in double, then truncated. */
    double new_long = (double)((int64_t)size * longer) / (double)shorter;
    if (new_long >= (double)INT_MAX)
        return rn_fail(RN_ERR_ARG, "resize: %d x %d image would become too long", in_w, in_h);
    int nl = (int)new_long;
    *out_w = in_w <= in_h ? size : nl;
    *out_h = in_w <= in_h ? nl : size;
    return RN_OK;
}

/* Python's int(round(d / 2.0)) for d >= 0: halves round to even. */
static int half_round_even(int d) {
    int k = d / 2;
    return (d & 1) && (k & 1) ? k + 1 : k;
}

rn_status rn_preprocess_eval_size(const rn_preprocess_config *cfg, int in_h, int in_w,
                                  int *out_h, int *out_w) {
    if (!cfg || in_h <= 0 || in_w <= 0 || cfg->resize_size < 0 || cfg->crop_size < 0)
        return rn_fail(RN_ERR_ARG, "preprocess: bad sizes");
    int h = in_h, w = in_w;
    if (cfg->resize_size > 0)
        RN_TRY(rn_resize_shorter_size(in_h, in_w, cfg->resize_size, &h, &w));
    if (cfg->crop_size > 0)
        h = w = cfg->crop_size;
    *out_h = h;
    *out_w = w;
    return RN_OK;
}

static rn_status check_config(const rn_image *img, const rn_preprocess_config *cfg) {
    if (!img || !img->pixels || !cfg || img->width <= 0 || img->height <= 0)
        return rn_fail(RN_ERR_ARG, "preprocess: no image or no config");
    if (img->channels != 1 && img->channels != 3)
        return rn_fail(RN_ERR_ARG, "preprocess: %d channels (1 or 3 expected)", img->channels);
    for (int c = 0; c < img->channels; c++)
        if (!(cfg->std[c] != 0.0f) || !isfinite(cfg->std[c]) || !isfinite(cfg->mean[c]))
            return rn_fail(RN_ERR_ARG, "preprocess: bad mean/std for channel %d", c);
    return RN_OK;
}

/* uint8 planes (c, h, w) -> a new buffer (c, out_h, out_w); *dst = src when
 * the size does not change (torchvision returns the image as it is). */
static rn_status resize_planes(const uint8_t *src, int c, int h, int w, int out_h, int out_w,
                               uint8_t **dst) {
    if (out_h == h && out_w == w) {
        *dst = (uint8_t *)src;
        return RN_OK;
    }
    /* the resize's own limit, before the output is allocated (a 16384 x 1 image resized to a
     * shorter side of 256 would ask for 3 GB, then be refused) */
    if (out_h < 1 || out_w < 1 || out_h > RN_RESIZE_MAX_SIDE || out_w > RN_RESIZE_MAX_SIDE)
        return rn_fail(RN_ERR_ARG, "resize: a %dx%d image (width x height) would become %dx%d: each "
                       "side must be in 1..%d", w, h, out_w, out_h, RN_RESIZE_MAX_SIDE);
    size_t n;
    if (!rn_size_mul((size_t)out_h, (size_t)out_w, &n) || !rn_size_mul(n, (size_t)c, &n))
        return rn_fail(RN_ERR_NOMEM, "resize: %d x %d output overflows", out_w, out_h);
    uint8_t *buf = malloc(n);
    if (!buf)
        return rn_fail(RN_ERR_NOMEM, "resize: cannot allocate %zu bytes", n);
    rn_status st = rn_resize_bilinear_u8(src, c, h, w, buf, out_h, out_w);
    if (st != RN_OK) {
        free(buf);
        return st;
    }
    *dst = buf;
    return RN_OK;
}

/* ToTensor + Normalize of one value, in float32 as torch computes it. */
static inline float normalize(uint8_t u, float mean, float std) {
    float v = (float)u / 255.0f;
    return (v - mean) / std;
}

/* ---------------------------------------------------------------------------
 * Eval: Resize -> CenterCrop -> ToTensor -> Normalize
 * ------------------------------------------------------------------------- */

rn_status rn_preprocess_eval_u8(const rn_image *img, const rn_preprocess_config *cfg,
                                uint8_t *out) {
    RN_TRY(check_config(img, cfg));
    if (!out)
        return rn_fail(RN_ERR_ARG, "preprocess: out is NULL");
    int C = img->channels, h = img->height, w = img->width, oh, ow;
    RN_TRY(rn_preprocess_eval_size(cfg, h, w, &oh, &ow));
    if (cfg->resize_size > 0)
        RN_TRY(rn_resize_shorter_size(h, w, cfg->resize_size, &h, &w));
    uint8_t *res;
    RN_TRY(resize_planes(img->pixels, C, img->height, img->width, h, w, &res));
    /* res: (C, h, w). torchvision pads a short side with zeros to the crop
     * ((crop - w) // 2 on the left / top), then crops at half_round_even. */
    int pad_t = oh > h ? (oh - h) / 2 : 0, pad_l = ow > w ? (ow - w) / 2 : 0;
    int ph = oh > h ? oh : h, pw = ow > w ? ow : w;
    int top = half_round_even(ph - oh) - pad_t, left = half_round_even(pw - ow) - pad_l;
    size_t plane = (size_t)h * (size_t)w, oplane = (size_t)oh * (size_t)ow;
    for (int c = 0; c < C; c++) {
        const uint8_t *src = res + (size_t)c * plane;
        uint8_t *dst = out + (size_t)c * oplane;
        for (int y = 0; y < oh; y++) {
            int sy = y + top;
            uint8_t *row = dst + (size_t)y * (size_t)ow;
            for (int x = 0; x < ow; x++) {
                int sx = x + left;
                row[x] = sy >= 0 && sy < h && sx >= 0 && sx < w
                             ? src[(size_t)sy * (size_t)w + (size_t)sx]
                             : 0;
            }
        }
    }
    if (res != img->pixels)
        free(res);
    return RN_OK;
}

void rn_preprocess_normalize(const uint8_t *in, int channels, size_t plane,
                             const rn_preprocess_config *cfg, float *out) {
    for (int c = 0; c < channels; c++) {
        const float m = cfg->mean[c], s = cfg->std[c];
        for (size_t i = 0; i < plane; i++)
            out[(size_t)c * plane + i] = normalize(in[(size_t)c * plane + i], m, s);
    }
}

/* A stage that writes bytes (eval's or train's), then the normalisation into out. */
static rn_status then_normalize(rn_status st, uint8_t *bytes, int channels, size_t plane,
                                const rn_preprocess_config *cfg, float *out) {
    if (st == RN_OK)
        rn_preprocess_normalize(bytes, channels, plane, cfg, out);
    free(bytes);
    return st;
}

rn_status rn_preprocess_eval(const rn_image *img, const rn_preprocess_config *cfg, float *out) {
    RN_TRY(check_config(img, cfg));
    if (!out)
        return rn_fail(RN_ERR_ARG, "preprocess: out is NULL");
    int oh, ow;
    RN_TRY(rn_preprocess_eval_size(cfg, img->height, img->width, &oh, &ow));
    const size_t plane = (size_t)oh * (size_t)ow;
    uint8_t *bytes = malloc(plane * (size_t)img->channels);
    if (!bytes)
        return rn_fail(RN_ERR_NOMEM, "preprocess: cannot allocate %d x %d", ow, oh);
    return then_normalize(rn_preprocess_eval_u8(img, cfg, bytes), bytes, img->channels, plane, cfg,
                          out);
}

/* ---------------------------------------------------------------------------
 * Train: RandomResizedCrop -> RandomHorizontalFlip -> ToTensor -> Normalize
 * ------------------------------------------------------------------------- */

/* Uniform integer in [0, n). */
static int rng_below(rn_rng *rng, int n) { return (int)(rn_rng_next(rng) % (uint64_t)n); }

void rn_random_resized_crop_params(int in_h, int in_w, const float scale[2],
                                   const float ratio[2], rn_rng *rng, int *top, int *left,
                                   int *h, int *w) {
    double area = (double)in_h * (double)in_w;
    double log_r0 = log((double)ratio[0]), log_r1 = log((double)ratio[1]);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (scale[0] + (scale[1] - scale[0]) * (double)rn_rng_uniform(rng));
        double aspect = exp(log_r0 + (log_r1 - log_r0) * (double)rn_rng_uniform(rng));
        double cw = nearbyint(sqrt(target * aspect)), ch = nearbyint(sqrt(target / aspect));
        if (cw > 0 && cw <= in_w && ch > 0 && ch <= in_h) {
            *w = (int)cw;
            *h = (int)ch;
            *top = rng_below(rng, in_h - *h + 1);
            *left = rng_below(rng, in_w - *w + 1);
            return;
        }
    }
    /* Fallback: the central crop of the allowed aspect ratio. */
    double in_ratio = (double)in_w / (double)in_h;
    double rmin = ratio[0] < ratio[1] ? ratio[0] : ratio[1];
    double rmax = ratio[0] < ratio[1] ? ratio[1] : ratio[0];
    if (in_ratio < rmin) {
        *w = in_w;
        *h = (int)nearbyint(in_w / rmin);
    } else if (in_ratio > rmax) {
        *h = in_h;
        *w = (int)nearbyint(in_h * rmax);
    } else {
        *w = in_w;
        *h = in_h;
    }
    /* Only a degenerate ratio range (w / rmin < 0.5) rounds to an empty
     * side, where torchvision would fail; keep at least one pixel. */
    if (*h > in_h)
        *h = in_h;
    if (*w > in_w)
        *w = in_w;
    if (*h < 1)
        *h = 1;
    if (*w < 1)
        *w = 1;
    *top = (in_h - *h) / 2;
    *left = (in_w - *w) / 2;
}

rn_status rn_preprocess_train_u8(const rn_image *img, const rn_preprocess_config *cfg, rn_rng *rng,
                                 uint8_t *out) {
    RN_TRY(check_config(img, cfg));
    if (!rng || !out || cfg->crop_size <= 0)
        return rn_fail(RN_ERR_ARG, "preprocess_train: no rng, no output or crop_size <= 0");
    if (!(cfg->scale[0] > 0.0f && cfg->scale[0] <= cfg->scale[1]) ||
        !(cfg->ratio[0] > 0.0f && cfg->ratio[0] <= cfg->ratio[1]))
        return rn_fail(RN_ERR_ARG, "preprocess_train: bad scale or ratio range");
    int C = img->channels, H = img->height, W = img->width, S = cfg->crop_size;
    int top, left, ch, cw;
    rn_random_resized_crop_params(H, W, cfg->scale, cfg->ratio, rng, &top, &left, &ch, &cw);
    int flip = cfg->hflip && rn_rng_uniform(rng) < 0.5f;

    size_t cn = (size_t)ch * (size_t)cw;
    uint8_t *crop = malloc(cn * (size_t)C);
    if (!crop)
        return rn_fail(RN_ERR_NOMEM, "preprocess_train: cannot allocate the crop");
    for (int c = 0; c < C; c++)
        for (int y = 0; y < ch; y++)
            memcpy(crop + (size_t)c * cn + (size_t)y * (size_t)cw,
                   img->pixels + ((size_t)c * (size_t)H + (size_t)(top + y)) * (size_t)W +
                       (size_t)left,
                   (size_t)cw);
    uint8_t *res;
    rn_status st = resize_planes(crop, C, ch, cw, S, S, &res);
    if (st != RN_OK) {
        free(crop);
        return st;
    }
    size_t plane = (size_t)S * (size_t)S;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < S; y++) {
            const uint8_t *src = res + (size_t)c * plane + (size_t)y * (size_t)S;
            uint8_t *dst = out + (size_t)c * plane + (size_t)y * (size_t)S;
            for (int x = 0; x < S; x++)
                dst[x] = src[flip ? S - 1 - x : x];
        }
    if (res != crop)
        free(res);
    free(crop);
    return RN_OK;
}

rn_status rn_preprocess_train(const rn_image *img, const rn_preprocess_config *cfg, rn_rng *rng,
                              float *out) {
    RN_TRY(check_config(img, cfg));
    if (!rng || !out || cfg->crop_size <= 0)
        return rn_fail(RN_ERR_ARG, "preprocess_train: no rng, no output or crop_size <= 0");
    const size_t plane = (size_t)cfg->crop_size * (size_t)cfg->crop_size;
    uint8_t *bytes = malloc(plane * (size_t)img->channels);
    if (!bytes)
        return rn_fail(RN_ERR_NOMEM, "preprocess_train: cannot allocate the crop");
    return then_normalize(rn_preprocess_train_u8(img, cfg, rng, bytes), bytes, img->channels, plane,
                          cfg, out);
}
