/*
 * evaluate.h - a model's loss and accuracy on a dataset (eval mode).
 */
#ifndef RN_TRAIN_EVALUATE_H
#define RN_TRAIN_EVALUATE_H

#include <stdint.h>

#include "data/dataset.h"
#include "resnet.h"

/* The evaluation API (rn_evaluate, rn_evaluate_config, ...) is public:
 * see resnet.h. */

#endif
