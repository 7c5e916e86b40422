/*
 * mix.c - mixing a training batch's images and labels: torchvision's
 * RandomMixup and RandomCutmix as its classification reference applies them
 * (--mixup-alpha, --cutmix-alpha: one of the two on every batch, chosen at
 * even odds when both are on; contract in resnet.h, rn_batch_mix).
 *
 * Each image is mixed with the one before it in the batch (the first with
 * the last: torchvision rolls the batch by one), in place: per stretch of
 * pixels the last image's is kept aside on the stack, the images are
 * overwritten from the last to the second, each from its predecessor's
 * still unchanged values, and the first from the kept stretch. Nothing is
 * allocated.
 */
#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "core/status.h"
#include "resnet.h"

#define TAG_MIX 0x4d4958ULL   /* "MIX" */
#define STRETCH 1024          /* floats kept aside at a time */

/* mixup: x_i = lam * x_i + (1 - lam) * x_{i-1} over every value of the images. */
static void mix_images(float *x, int n, size_t per, float lam) {
    const float keep = 1.0f - lam;
    float last[STRETCH];
    for (size_t at = 0; at < per; at += STRETCH) {
        const size_t len = per - at < STRETCH ? per - at : STRETCH;
        memcpy(last, x + (size_t)(n - 1) * per + at, len * sizeof *last);
        for (int i = n - 1; i >= 0; i--) {
            float *dst = x + (size_t)i * per + at;
            const float *src = i > 0 ? x + (size_t)(i - 1) * per + at : last;
            for (size_t k = 0; k < len; k++)
                dst[k] = lam * dst[k] + keep * src[k];
        }
    }
}

/* CutMix: rows y0..y1-1, columns x0..x1-1 of every channel of image i from image i-1's. */
static void paste_boxes(float *x, int n, int c, int h, int w, int y0, int y1, int x0, int x1) {
    const size_t per = (size_t)c * h * w, len = (size_t)(x1 - x0);
    float last[STRETCH];
    for (int ch = 0; ch < c; ch++)
        for (int y = y0; y < y1; y++)
            for (size_t at = 0; at < len; at += STRETCH) {
                const size_t part = len - at < STRETCH ? len - at : STRETCH;
                const size_t off = ((size_t)ch * h + y) * w + (size_t)x0 + at;
                memcpy(last, x + (size_t)(n - 1) * per + off, part * sizeof *last);
                for (int i = n - 1; i >= 0; i--)
                    memcpy(x + (size_t)i * per + off, i > 0 ? x + (size_t)(i - 1) * per + off : last,
                           part * sizeof *last);
            }
}

rn_status rn_batch_mix(const rn_mix_config *cfg, int64_t epoch, int64_t position, float *x,
                       const int32_t *labels, int32_t *labels2, int n, int c, int h, int w, rn_mix_info *info) {
    if (!cfg || !x || !labels || !labels2 || !info)
        return rn_fail(RN_ERR_ARG, "rn_batch_mix: NULL argument");
    if (n < 1 || c < 1 || h < 1 || w < 1)
        return rn_fail(RN_ERR_ARG, "rn_batch_mix: bad batch shape (%d, %d, %d, %d)", n, c, h, w);
    if (!(cfg->mixup_alpha >= 0.0f && isfinite(cfg->mixup_alpha)) ||
        !(cfg->cutmix_alpha >= 0.0f && isfinite(cfg->cutmix_alpha)))
        return rn_fail(RN_ERR_ARG, "rn_batch_mix: the alphas must be finite numbers >= 0, got %g and %g",
                       (double)cfg->mixup_alpha, (double)cfg->cutmix_alpha);
    memset(info, 0, sizeof *info);
    info->lam = 1.0f;
    for (int i = 0; i < n; i++) /* torchvision's batch.roll(1, 0) */
        labels2[i] = labels[i > 0 ? i - 1 : n - 1];
    const int mixup = cfg->mixup_alpha > 0.0f, cutmix = cfg->cutmix_alpha > 0.0f;
    if (!mixup && !cutmix) {
        info->kind = RN_MIX_NONE;
        return RN_OK;
    }
    rn_rng r;
    rn_rng_seed_at(&r, cfg->seed, TAG_MIX, epoch, position);
    info->kind = mixup && cutmix ? (rn_rng_uniform(&r) < 0.5f ? RN_MIX_MIXUP : RN_MIX_CUTMIX)
                                 : mixup ? RN_MIX_MIXUP : RN_MIX_CUTMIX;
    const double alpha = info->kind == RN_MIX_MIXUP ? cfg->mixup_alpha : cfg->cutmix_alpha;
    const double lam = rn_rng_beta_symmetric(&r, alpha);
    if (info->kind == RN_MIX_MIXUP) {
        info->lam = (float)lam;
        mix_images(x, n, (size_t)c * h * w, info->lam);
        return RN_OK;
    }
    /* RandomCutmix: a box centred at a uniform pixel, sides sqrt(1 - lam) of the image's,
     * clipped to it; lam becomes the share of the image left as it was */
    const int cx = (int)(rn_rng_next(&r) % (uint64_t)w), cy = (int)(rn_rng_next(&r) % (uint64_t)h);
    const double half = 0.5 * sqrt(1.0 - lam);
    const int hw = (int)(half * w), hh = (int)(half * h);
    const int x0 = cx - hw > 0 ? cx - hw : 0, y0 = cy - hh > 0 ? cy - hh : 0;
    const int x1 = cx + hw < w ? cx + hw : w, y1 = cy + hh < h ? cy + hh : h;
    if (x1 > x0 && y1 > y0)
        paste_boxes(x, n, c, h, w, y0, y1, x0, x1);
    info->lam = (float)(1.0 - (double)(x1 - x0) * (y1 - y0) / ((double)w * h));
    info->box[0] = y0, info->box[1] = y1, info->box[2] = x0, info->box[3] = x1;
    return RN_OK;
}
