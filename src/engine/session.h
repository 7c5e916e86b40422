/*
 * session.h - the inside of an rn_session: inference on a model that stays
 * read-only.
 *
 * A session owns everything inference needs besides the weights:
 *   - the schedule for the input size it was last asked for;
 *   - the plan: an algorithm per conv node (conv_algo.h), and the offsets of
 *     every activation in one arena, planned for the largest batch so far
 *     (rn_arena_plan reuses memory between values that are not alive at the
 *     same time); a smaller batch runs in the same arena;
 *   - the prepared weights: BatchNorm folded into each conv, then prepared
 *     by the conv's algorithm (packed, transformed), made again whenever the
 *     model's generation changes.
 * Two sessions on one model can run at the same time from two threads.
 */
#ifndef RN_ENGINE_SESSION_H
#define RN_ENGINE_SESSION_H

#include <stdint.h>

#include "model/graph.h"
#include "ops/kernels.h"
#include "resnet.h"

struct rn_session {
    const rn_model *m;
    const rn_kernels *k;        /* the kernels of the session's ISA */
    const rn_kernels *kconv;    /* the eval-mode convolutions': k, or its bf16 descriptor for
                                   bf16 where the CPU has bf16 products (rn_kernels_bf16) */
    int forced_algo;            /* -1: the heuristic per layer */

    rn_graph *sc;            /* for the last input size */
    int n_cap;                  /* batch the plan is for; 0: no plan */
    int threads;                /* thread count the plan's workspace is for (rn_threads()) */
    int *algo;                  /* per node: rn_conv_algo_id (CONV nodes) */
    size_t *value_at;           /* per value: offset in the arena, eval mode (a residual
                                   block's last conv written over its residual: in_place) */
    size_t *value_at_train;     /* the same in train mode, where no value shares a buffer */
    const size_t *value_now;    /* the offsets of the mode that ran last */
    float *arena;
    size_t arena_floats;
    float *ws;                  /* conv workspace */
    size_t ws_floats;
    float *bn;                  /* train mode: mean, var, scale, shift (4 x max channels) */
    int max_channels;

    size_t *prep_at;            /* per node: prepared weights (bias after them) */
    float *prepared;
    size_t prepared_floats;
    float *fold;                /* scratch: one unit's folded weights */
    size_t fold_floats;
    uint64_t prepared_generation;
    int prepared_valid;

    /* int8 (session_int8.c): the model is quantized; a prepared conv per
     * CONV node (pointing into `prepared`) and each value's quantization */
    int int8;
    int bf16;                   /* bf16 operands, fp32 accumulation (see rn_session_config) */
    struct rn_qconv *qc;
    struct rn_qparam *vq;
    uint32_t *q_claims;         /* the convolutions' work-item claims (threads.h rn_claims) */
    long q_claims_cap;
    uint32_t q_gen;             /* their last generation: one per convolution run */

    /* calibration (calibrate.c): called with every value the forward pass
     * writes (value 0 included), (c, n, h, w) floats; a stem's output that its max-pool
     * reads blocked by 16 channels (session.c pool_fused) comes so, the same values, with
     * blocked16 1 (the layout of ops.h's maxpool2d_forward_blocked16); an int8 pass
     * (session_int8.c) calls it from one thread as each node's output is complete, with data
     * NULL and count 0 (its values are bytes): for timing (dev/profile_layers), not statistics */
    void (*observe)(void *ctx, int value, const float *data, size_t count, int blocked16);
    void *observe_ctx;
};

/* session_int8.c, for plan_for / prepare_weights / rn_session_forward */
size_t rn_int8_value_floats(const rn_session *s, int v, int n);
size_t rn_int8_prepared_floats(const rn_node *nd);
size_t rn_int8_workspace_floats(const rn_session *s, const rn_node *nd, int n);
long rn_int8_work_items(const rn_session *s, const rn_node *nd, int n);
rn_status rn_int8_plan(rn_session *s);
void rn_int8_prepare(rn_session *s);
/* The nodes up to `last` (the classifier only where it is the last and logits is not NULL:
 * rn_session_forward_features and _stage skip it). */
void rn_int8_forward(rn_session *s, const float *x, int n, float *logits, int last);
/* Uint8 value v (c16, or plain for value 0) of the pass just run, dequantized into out as
 * (n, c, h, w). */
void rn_int8_dequantize(const rn_session *s, int v, int n, float *out);
/* Whether image b of the input x (n, C, h, w) has only finite values: an int8 pass gives NaN
 * outputs for one that does not (a value that is not finite has no int8 code). */
int rn_int8_image_finite(const rn_session *s, const float *x, int b);

/* Plans s for batches of up to n at h x w (the input shape checked as rn_session_forward
 * checks it), as rn_session_forward does before it runs: a caller can learn that a batch does
 * not fit (too large for the kernels' indices, out of memory) before reading its input. A
 * failure leaves s without a plan (s->sc NULL); the next call plans anew. */
rn_status rn_session_plan(rn_session *s, int n, int h, int w);

/* The pooled features (feat, n) of the last forward pass, channel-major. */
const float *rn_session_features(const rn_session *s);

#endif
