/*
 * backprop.h - a training step's forward pass (keeping what backward needs),
 * the loss, and the backward pass, over the schedule.
 *
 * An rn_backprop belongs to a trainer (or to a one-off gradient
 * computation). It holds its own arena, planned for the largest batch it
 * has seen at one input size (rn_arena_plan: every forward value lives until
 * its node's backward, gradient buffers only while they are needed), so a
 * smaller batch, such as the last one of an epoch, runs in the same memory.
 *
 * The forward pass does not touch the model: the batch statistics it
 * computes are kept, and rn_backprop_update_bn applies them to the running
 * statistics afterwards (PyTorch's update, momentum 0.1, unbiased
 * variance), so a step can still be abandoned after its gradients are
 * known.
 */
#ifndef RN_TRAIN_BACKPROP_H
#define RN_TRAIN_BACKPROP_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "ops/kernels.h"

typedef struct rn_backprop rn_backprop;

/* Called during backward each time the gradients of params [offset,
 * offset + count) (floats of the parameter block) are final; the ranges
 * arrive from the end of the block towards its start, each exactly once. */
typedef void (*rn_grad_ready_fn)(void *ctx, float *grads, size_t offset, size_t count);

/* forced_algo: -1 for the heuristic per layer (Winograd where it pays, for
 * the forward convolution and the data gradient), RN_CONV_IM2COL for the
 * GEMM paths everywhere (exact up to rounding), or another algorithm id
 * forced wherever it applies. k may be a bf16 descriptor (rn_kernels_bf16):
 * every product (convolutions forward, data and weight gradients, the
 * classifier) then runs on bf16-rounded operands with fp32 sums, on the GEMM
 * paths only; everything else stays fp32. */
rn_status rn_backprop_create(const rn_model *m, const rn_kernels *k, int forced_algo,
                             rn_backprop **out);
void rn_backprop_free(rn_backprop *bp);

/* The forward convolutions' algorithms of the current plan, as
 * rn_session_algorithms; fails before the first forward pass. */
rn_status rn_backprop_algorithms(const rn_backprop *bp, char *buf, size_t cap);

/* Forward in train mode on x (n, C, h, w) with labels (n), then the mean
 * cross-entropy (with label smoothing) and its gradient; for a mixed batch
 * (mixup, CutMix) labels2 (n) the second label of each image and lam the
 * first's share (softmax_cross_entropy_mix); labels2 NULL: unmixed (lam 1). */
rn_status rn_backprop_forward(rn_backprop *bp, const float *x, const int32_t *labels, const int32_t *labels2,
                              float lam, int n, int h, int w, float label_smoothing, float *loss, int *correct);

/* The gradient of the last forward's loss for every trainable tensor, into
 * grads (the layout of m->params; entries of BN statistics untouched).
 * ready (may be NULL) hears of each final range, as rn_trainer_set_grad_hook
 * describes. */
rn_status rn_backprop_backward(rn_backprop *bp, float *grads, rn_grad_hook ready, void *ctx);

/* Synchronised BatchNorm (rn_trainer_set_bn_sync): from the next forward
 * pass on, every BatchNorm hands its sums to fn and normalises with the
 * statistics of the batches of all processes together (see
 * ops/batchnorm_sync.h); fn NULL: this batch's own statistics. */
void rn_backprop_set_bn_sync(rn_backprop *bp, rn_bn_sync_hook fn, void *ctx);

/* Moves m's BatchNorm running statistics by the last forward's batch
 * statistics (running_var by the unbiased variance over the images the
 * statistics are over: every process's with a BatchNorm hook) and counts
 * the batch (num_batches_tracked). */
void rn_backprop_update_bn(const rn_backprop *bp, rn_model *m);

/* 1 when the running statistics rn_backprop_update_bn would store are all
 * finite (a batch whose variance overflows is not), else 0. */
int rn_backprop_bn_finite(const rn_backprop *bp, const rn_model *m);

/* The logits (n, num_classes) of the last forward. */
const float *rn_backprop_logits(const rn_backprop *bp);

/* The forward algorithm of conv node i of the current plan (rn_conv_algo_id), or -1 when node i
 * is not a convolution or no step has run. */
int rn_backprop_conv_algo(const rn_backprop *bp, int i);

/* Where a step's time goes (dev/profile_train): with a stamp hook set, fn
 * hears as each part of a node's work ends, in the order they run; the time
 * since the previous call is that part's. Node -1 is the input's layout, node n_nodes
 * the loss. No hook (fn NULL, the default): nothing is called. */
typedef enum rn_bp_part {
    RN_BP_PREPARE,      /* a convolution's own weights made (Winograd, direct) */
    RN_BP_CONV,         /* the forward convolution */
    RN_BP_NORM,         /* BatchNorm statistics and apply (with residual, ReLU) */
    RN_BP_OTHER,        /* a pool, the classifier, the loss, forward or backward */
    RN_BP_NORM_BACK,    /* ReLU and BatchNorm backward (and the residual's copy) */
    RN_BP_WEIGHT_GRAD,  /* the convolution's weight (and bias) gradient */
    RN_BP_DATA_GRAD,    /* the convolution's data gradient */
    RN_BP_PARTS
} rn_bp_part;
typedef void (*rn_bp_stamp_fn)(void *ctx, int node, rn_bp_part part);
void rn_backprop_set_stamp(rn_backprop *bp, rn_bp_stamp_fn fn, void *ctx);

/* Bytes of the arena. */
size_t rn_backprop_bytes(const rn_backprop *bp);

/* Bytes of the arena an rn_backprop of m on kernels k (with forced_algo, as
 * for rn_backprop_create) would hold for batches of up to n at h x w:
 * planned, not allocated. */
rn_status rn_backprop_plan_bytes(const rn_model *m, const rn_kernels *k, int forced_algo, int n, int h, int w,
                                 size_t *bytes);

#endif
