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

/* The same in a session configured by scfg (NULL: the defaults). */
rn_status rn_evaluate_config(rn_model *m, const rn_session_config *scfg, const rn_dataset *ds,
                             const rn_loader_config *cfg, rn_eval_progress progress, void *ctx,
                             rn_eval_result *out);
void rn_eval_result_free(rn_eval_result *r);

#endif
