/* evaluate.c - loss, top-1, top-5 and the confusion matrix over a dataset
 * (rn_evaluate and its variants, declared in resnet.h). */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/status.h"
#include "data/dataset.h"
#include "ops/ops.h"

void rn_eval_result_free(rn_eval_result *r) {
    if (r) {
        free(r->confusion);
        r->confusion = NULL;
    }
}

/* The first largest logit, NaNs passed over (class 0 where every logit is NaN). */
static int arg_max(const float *row, int k) {
    int best = 0;
    for (int j = 1; j < k; j++)
        if (row[j] > row[best] || (row[best] != row[best] && row[j] == row[j]))
            best = j;
    return best;
}

/* Where the label's logit stands in row `row` (0: the prediction), by arg_max's rule: a larger
 * logit, or an equal one of a lower class, comes first, and a NaN after every number. So top-1 is
 * arg_max's, the confusion matrix's diagonal: until 2026-12-07 ties favoured the label, and a
 * model whose logits were all NaN or all equal scored top-1 1.0. */
static int label_rank(const float *row, int k, int label) {
    const float v = row[label];
    int rank = 0;
    if (v != v) { /* after every number, then by class among the NaNs */
        for (int j = 0; j < k; j++)
            rank += row[j] == row[j] || j < label;
        return rank;
    }
    for (int j = 0; j < k; j++)
        rank += row[j] > v || (j < label && row[j] == v);
    return rank;
}

/* x: (n, c, h, w) -> its left-right mirror, in place. */
static void mirror(float *x, size_t rows, int w) {
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * (size_t)w;
        for (int i = 0, j = w - 1; i < j; i++, j--) {
            float t = row[i];
            row[i] = row[j];
            row[j] = t;
        }
    }
}

static rn_status evaluate(const char *fn, rn_model *m, const rn_session_config *scfg,
                          const rn_dataset *ds, const rn_loader_config *cfg,
                          rn_eval_progress progress, void *ctx, rn_eval_each each, void *each_ctx,
                          rn_eval_result *out);

rn_status rn_evaluate(rn_model *m, const rn_dataset *ds, const rn_loader_config *cfg,
                      rn_eval_progress progress, void *ctx, rn_eval_result *out) {
    return evaluate("rn_evaluate", m, NULL, ds, cfg, progress, ctx, NULL, NULL, out);
}

rn_status rn_evaluate_each(rn_model *m, const rn_dataset *ds, const rn_loader_config *cfg,
                           rn_eval_progress progress, void *ctx, rn_eval_each each,
                           void *each_ctx, rn_eval_result *out) {
    return evaluate("rn_evaluate_each", m, NULL, ds, cfg, progress, ctx, each, each_ctx, out);
}

rn_status rn_evaluate_config(rn_model *m, const rn_session_config *scfg, const rn_dataset *ds,
                             const rn_loader_config *cfg, rn_eval_progress progress, void *ctx,
                             rn_eval_each each, void *each_ctx, rn_eval_result *out) {
    return evaluate("rn_evaluate_config", m, scfg, ds, cfg, progress, ctx, each, each_ctx, out);
}

/* The three above, `fn` naming the one called in messages. */
static rn_status evaluate(const char *fn, rn_model *m, const rn_session_config *scfg,
                          const rn_dataset *ds, const rn_loader_config *cfg,
                          rn_eval_progress progress, void *ctx, rn_eval_each each, void *each_ctx,
                          rn_eval_result *out) {
    if (!m || !ds || !cfg || !out)
        return rn_fail(RN_ERR_ARG, "%s: NULL argument", fn);
    memset(out, 0, sizeof *out);
    int K = rn_model_num_classes(m);
    if (ds->num_classes > K)
        return rn_fail(RN_ERR_MISMATCH, "the dataset has %d classes, the model only %d", ds->num_classes, K);
    if (ds->channels != rn_model_in_channels(m))
        return rn_fail(RN_ERR_MISMATCH, "the dataset has %d channels, the model expects %d", ds->channels,
                       rn_model_in_channels(m));
    rn_loader_config c = *cfg;
    c.shuffle = 0, c.flip = 0, c.crop_padding = 0, c.drop_last = 0, c.shards = 0, c.shard = 0;
    c.erase_prob = 0.0f;
    c.auto_augment = RN_AUTO_AUGMENT_NONE;
    c.repeat_aug = 0;
    int S = c.image_size ? c.image_size : ds->height;
    int W = c.image_size ? c.image_size : ds->width;
    /* the loader checks the batch and image sizes before the buffers are sized by them */
    rn_loader *l = NULL;
    rn_session *sess = NULL;
    rn_status st = rn_loader_create(ds, &c, &l);
    const int D = rn_model_feature_dim(m);
    size_t per_image = 0, batch_floats = 0, logit_floats = 0, feat_floats = 0, bytes = 0;
    if (st == RN_OK &&
        (!rn_size_mul((size_t)ds->channels * (size_t)S, (size_t)W, &per_image) ||
         !rn_size_mul((size_t)c.batch_size, per_image, &batch_floats) ||
         !rn_size_mul((size_t)c.batch_size, (size_t)K, &logit_floats) ||
         !rn_size_mul((size_t)c.batch_size, (size_t)D, &feat_floats) ||
         !rn_size_mul(batch_floats, sizeof(float), &bytes)))
        st = rn_fail(RN_ERR_NOMEM, "evaluation: a batch of %d images of %d x %d overflows",
                     c.batch_size, S, W);
    const int ok = st == RN_OK;
    float *x = ok ? malloc(batch_floats * sizeof *x) : NULL;
    float *logits = ok ? malloc(logit_floats * sizeof *logits) : NULL;
    /* test-time flip: the mirrored batch and its logits */
    float *xm = ok && c.tta_flip ? malloc(batch_floats * sizeof *xm) : NULL;
    float *lm = ok && c.tta_flip ? malloc(logit_floats * sizeof *lm) : NULL;
    /* the features, for `each` only (and the mirrored batch's) */
    float *feats = ok && each ? malloc(feat_floats * sizeof *feats) : NULL;
    float *fm = ok && each && c.tta_flip ? malloc(feat_floats * sizeof *fm) : NULL;
    int32_t *labels = ok ? malloc((size_t)c.batch_size * sizeof *labels) : NULL;
    out->confusion = ok ? calloc((size_t)K * K, sizeof *out->confusion) : NULL;
    out->num_classes = K;
    if (ok)
        st = (!x || !logits || !labels || !out->confusion || (c.tta_flip && (!xm || !lm)) ||
              (each && (!feats || (c.tta_flip && !fm))))
                 ? rn_fail(RN_ERR_NOMEM, "out of memory for evaluation")
                 : rn_session_create(m, scfg, &sess);
    double loss_sum = 0.0;
    for (int n = 1; st == RN_OK;) {
        st = rn_loader_next(l, x, labels, &n);
        if (st != RN_OK || n == 0)
            break;
        st = each ? rn_session_forward_features(sess, x, n, S, W, RN_MODE_EVAL, feats, logits)
                  : rn_session_forward(sess, x, n, S, W, RN_MODE_EVAL, logits);
        if (st == RN_OK && c.tta_flip) {
            memcpy(xm, x, (size_t)n * per_image * sizeof *xm);
            mirror(xm, (size_t)n * ds->channels * S, W);
            st = each ? rn_session_forward_features(sess, xm, n, S, W, RN_MODE_EVAL, fm, lm)
                      : rn_session_forward(sess, xm, n, S, W, RN_MODE_EVAL, lm);
            for (size_t i = 0; st == RN_OK && i < (size_t)n * K; i++)
                logits[i] = 0.5f * (logits[i] + lm[i]);
            for (size_t i = 0; st == RN_OK && each && i < (size_t)n * D; i++)
                feats[i] = 0.5f * (feats[i] + fm[i]);
        }
        if (st != RN_OK)
            break;
        loss_sum += (double)softmax_cross_entropy(logits, (const int *)labels, n, K, 0.0f, NULL, NULL) * n;
        for (int i = 0; i < n; i++) {
            const float *row = logits + (size_t)i * K;
            int rank = label_rank(row, K, labels[i]);
            out->top1 += rank == 0;
            out->top5 += rank < 5;
            out->confusion[(size_t)labels[i] * K + arg_max(row, K)]++;
        }
        if (each) {
            rn_eval_batch b = {out->count, n, ds->channels, S, W, K, x, labels, logits, D, feats};
            st = each(each_ctx, &b);
            if (st != RN_OK)
                break;
        }
        out->count += n;
        if (progress)
            progress(ctx, out->count, ds->count);
    }
    out->loss = out->count ? loss_sum / (double)out->count : 0.0;
    rn_loader_free(l);
    rn_session_free(sess);
    free(x);
    free(logits);
    free(xm);
    free(lm);
    free(feats);
    free(fm);
    free(labels);
    if (st != RN_OK)
        rn_eval_result_free(out);
    return st;
}
