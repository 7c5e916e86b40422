/*
 * evaluate.h - a model's loss and accuracy on a dataset (eval mode).
 */
#ifndef RN_TRAIN_EVALUATE_H
#define RN_TRAIN_EVALUATE_H

#include <stdint.h>

#include "data/dataset.h"
#include "resnet.h"

typedef struct rn_eval_result {
    int64_t count;            /* images evaluated */
    double loss;              /* mean cross-entropy */
    int64_t top1, top5;       /* images whose label is the top-1 / among the top-5 */
    int num_classes;
    int64_t *confusion;       /* (num_classes, num_classes): [label][predicted]; owned */
} rn_eval_result;

/* Called after each batch with the images done so far and the total. */
typedef void (*rn_eval_progress)(void *ctx, int64_t done, int64_t total);

/* Runs the whole dataset through the model in eval mode with the loader
 * configuration cfg (its shuffle and augmentation are switched off), in a
 * session of the default configuration. */
rn_status rn_evaluate(rn_model *m, const rn_dataset *ds, const rn_loader_config *cfg,
                      rn_eval_progress progress, void *ctx, rn_eval_result *out);

/* One batch as the model saw it, for rn_evaluate_each. */
typedef struct rn_eval_batch {
    int64_t first;            /* dataset index of the batch's first image (in order) */
    int n;                    /* images in the batch */
    int channels, height, width;
    int num_classes;
    const float *x;           /* (n, channels, height, width): the loader's output */
    const int32_t *labels;    /* (n) */
    const float *logits;      /* (n, num_classes) */
} rn_eval_batch;

/* Called after each batch; a status other than RN_OK stops the evaluation
 * and is returned. */
typedef rn_status (*rn_eval_each)(void *ctx, const rn_eval_batch *batch);

/* As rn_evaluate, also handing every batch to each(each_ctx, batch). */
rn_status rn_evaluate_each(rn_model *m, const rn_dataset *ds, const rn_loader_config *cfg,
                           rn_eval_progress progress, void *ctx, rn_eval_each each,
                           void *each_ctx, rn_eval_result *out);

/* The same in a session configured by scfg (NULL: the defaults); each may be NULL. */
rn_status rn_evaluate_config(rn_model *m, const rn_session_config *scfg, const rn_dataset *ds,
                             const rn_loader_config *cfg, rn_eval_progress progress, void *ctx,
                             rn_eval_each each, void *each_ctx, rn_eval_result *out);
void rn_eval_result_free(rn_eval_result *r);

#endif
