/*
 * optim.h - optimizers and learning-rate schedules with PyTorch's semantics.
 *
 * Updates work on one parameter tensor at a time (p, its gradient g, and
 * its state buffers), so the caller decides which tensors are trained and
 * with which learning rate.
 */
#ifndef RN_TRAIN_OPTIM_H
#define RN_TRAIN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "resnet.h"

/* torch.optim.SGD, one step (dampening 0):
 *   g = g + weight_decay * p
 *   buf = g on the first step (first != 0), else buf = momentum * buf + g
 *   g = g + momentum * buf if nesterov, else buf      (when momentum != 0)
 *   p = p - lr * g
 * buf: n floats (unused when momentum == 0). */
void rn_sgd_update(float *p, const float *g, float *buf, size_t n, float lr, float momentum,
                   float weight_decay, int nesterov, int first);

/* torch.optim.AdamW, one step; step counts from 1:
 *   p = p * (1 - lr * weight_decay)
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p = p - lr * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps) */
void rn_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr,
                     float beta1, float beta2, float eps, float weight_decay, int64_t step);

/* ---- learning-rate schedules ------------------------------------------------- */

typedef enum rn_schedule_kind {
    RN_SCHED_CONSTANT,
    RN_SCHED_STEP,       /* lr * gamma^(epoch / step_size)                 (StepLR) */
    RN_SCHED_MULTISTEP,  /* lr * gamma^(milestones passed)                (MultiStepLR) */
    RN_SCHED_COSINE,     /* eta_min + (lr - eta_min)(1 + cos(pi t / T))/2  (CosineAnnealingLR, per step) */
    RN_SCHED_ONECYCLE    /* OneCycleLR, per step, cosine annealing */
} rn_schedule_kind;

typedef struct rn_schedule {
    rn_schedule_kind kind;
    double base_lr;
    int64_t steps_per_epoch, total_steps;
    int64_t warmup_steps;          /* linear warm-up from lr/warmup... (see optim.c) */
    int step_size;                 /* epochs, StepLR */
    int milestones[16], n_milestones;  /* epochs, MultiStepLR */
    double gamma;
    double eta_min;                /* cosine */
    double pct_start, div_factor, final_div_factor;  /* one-cycle */
} rn_schedule;

/* Parses a schedule spec: "constant", "step:STEP_SIZE[:GAMMA]",
 * "multistep:M1,M2,...[:GAMMA]", "cosine[:ETA_MIN]", "onecycle[:PCT_START]".
 * Fills kind and its parameters; the caller sets base_lr, steps and warm-up. */
rn_status rn_schedule_parse(const char *spec, rn_schedule *out);

/* The learning rate for 0-based optimizer step `step`. */
double rn_schedule_lr(const rn_schedule *s, int64_t step);

#endif
