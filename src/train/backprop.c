/*
 * backprop.c - training forward, loss and backward over the schedule
 * (contract in backprop.h).
 *
 * Steps: node i's forward runs at step i, the loss at step N (N nodes), node
 * i's backward at step 2N - i. The arena holds, each only while needed:
 *   act[v]   every value, from its node's forward to that node's backward
 *            (the next node's weight gradient reads it as its input);
 *   z[i]     a conv's output before its BatchNorm (BN backward reads it);
 *   grad[v]  the loss gradient of value v, from the backward of its last
 *            reader to the backward of its producer. A projection
 *            shortcut's output is read only as the residual of its block's
 *            last conv, whose gradient (after the ReLU mask) is exactly the
 *            shortcut's: the two share one buffer;
 *   the batch statistics of every BatchNorm (kept for the running update),
 *   the logits, their gradient, the labels and the conv workspace.
 * Every trainable tensor's gradient is written (not accumulated) once.
 *
 * With a BatchNorm hook (rn_backprop_set_bn_sync) the batch statistics are
 * those of the batch of every process together: each BatchNorm hands its
 * per-channel sums to the hook in forward and in backward
 * (ops/batchnorm_sync.h), and stat_n is the images of that whole batch.
 */
#include "train/backprop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/status.h"
#include "core/threads.h"
#include "engine/arena.h"
#include "model/graph.h"
#include "ops/batchnorm_sync.h"
#include "ops/conv2d.h"
#include "ops/conv_algo.h"
#include "ops/ops.h"

struct rn_backprop {
    const rn_model *m;
    const rn_kernels *k;
    int forced_algo;            /* -1: the heuristic per layer */
    int *algo;                  /* per node: the forward convolution's algorithm */
    float **prep;               /* per node: its prepared weights (Winograd), or NULL */
    rn_graph *sc;
    int n_cap, n;               /* batch planned for, batch of the last forward */
    int threads;                /* thread count the workspace is for (rn_threads()) */
    float *arena;
    size_t arena_floats;
    float **act, **grad;        /* per value (grad NULL where none is kept) */
    float **z, **mean, **var;   /* per node: CONV nodes with BN */
    float **gz;                 /* per node: BN backward's output when grad[out] is shared */
    uint8_t **arg;              /* per node: a MAXPOOL node's windows' winners (ops.h), or NULL */
    int *shares;                /* per value: 1 if its gradient is its reader's grad[out] */
    int *written;               /* per value, during backward: its gradient has a first write */
    float *logits, *dlogits;    /* (n, num_classes) */
    int32_t *labels;
    float *ws, *scale, *shift, *invstd;
    int max_channels;
    /* grad-ready tracking: per node, its unit's tensors; per tensor, done */
    int *node_tensors;          /* 4 per node: tensor indices or -1 */
    unsigned char *done;
    int frontier;               /* tensors [frontier, n_tensors) are final */
    /* synchronised BatchNorm: the hook, its sums (2 * max_channels + 1) */
    rn_bn_sync_hook bn_sync;
    void *bn_ctx;
    double *bn_v;
    double stat_n;              /* images the batch statistics are over */
    /* profiling (rn_backprop_set_stamp): NULL unless a tool asks */
    rn_bp_stamp_fn stamp;
    void *stamp_ctx;
};

static void stamp(const rn_backprop *bp, int node, rn_bp_part part) {
    if (bp->stamp)
        bp->stamp(bp->stamp_ctx, node, part);
}

void rn_backprop_set_stamp(rn_backprop *bp, rn_bp_stamp_fn fn, void *ctx) {
    bp->stamp = fn;
    bp->stamp_ctx = ctx;
}

/* ---- creation and planning --------------------------------------------------------------- */

rn_status rn_backprop_create(const rn_model *m, const rn_kernels *k, int forced_algo,
                             rn_backprop **out) {
    *out = NULL;
    rn_backprop *bp = calloc(1, sizeof *bp);
    if (!bp)
        return rn_fail(RN_ERR_NOMEM, "out of memory creating a training plan");
    bp->m = m;
    bp->k = rn_kernels_or_default(k);
    bp->forced_algo = forced_algo;
    *out = bp;
    return RN_OK;
}

rn_status rn_backprop_algorithms(const rn_backprop *bp, char *buf, size_t cap) {
    if (!bp || !buf || cap == 0)
        return rn_fail(RN_ERR_ARG, "rn_backprop_algorithms: bad argument");
    buf[0] = 0;
    if (!bp->sc)
        return rn_fail(RN_ERR_ARG, "rn_backprop_algorithms: no training step has run yet");
    int count[RN_CONV_ALGO_COUNT] = {0};
    for (int i = 0; i < bp->sc->n_nodes; i++)
        if (bp->sc->nodes[i].op == RN_NODE_CONV)
            count[bp->algo[i]]++;
    char text[192];
    rn_conv_algo_format(count, text, sizeof text);
    return rn_copy_text(buf, cap, text, "rn_trainer_algorithms");
}

int rn_backprop_conv_algo(const rn_backprop *bp, int i) {
    if (!bp || !bp->sc || i < 0 || i >= bp->sc->n_nodes || bp->sc->nodes[i].op != RN_NODE_CONV)
        return -1;
    return bp->algo[i];
}

/* Winograd, direct or smallmap for the data gradients too, where the heuristic picks them (bf16
 * kernels: Winograd and smallmap on bf16 products, conv2d_backward.c), unless the GEMM path is
 * forced: the `algos` of conv2d_backward_data (the threads its workspace is for), or 0. */
static int data_by_algos(const rn_backprop *bp) {
    return bp->forced_algo != RN_CONV_IM2COL ? bp->threads : 0;
}

/* The forward convolution's algorithm for shape cs: the forced one where it applies, else the
 * heuristic's. bf16 kernels keep Winograd, on fp32 products (algo_kernels), keep the direct
 * convolution, on its bf16 tile, and run every other layer as a GEMM on bf16 operands. */
static int forward_algo(const rn_backprop *bp, const rn_conv_shape *cs) {
    int a = RN_CONV_IM2COL;
    if (bp->forced_algo >= 0 && rn_conv_algo_get(bp->forced_algo)->supports(cs))
        a = bp->forced_algo;
    else if (bp->forced_algo < 0)
        a = rn_conv_algo_choose(rn_kernels_fp32(bp->k), cs);
    return rn_kernels_are_bf16(bp->k) ? (int)rn_conv_algo_for_bf16(bp->k, a, bp->forced_algo, 0, cs) : a;
}

/* The kernels node i's forward algorithm runs on: Winograd's fp32 ones under bf16 (the direct
 * convolution's tile multiplies bf16 pairs there). bf16 products lose accuracy to Winograd's
 * transforms (their coefficients magnify the rounding of U and V: about 3x bf16's error,
 * conv_winograd.c); bf16 inference takes that since stop 50 (so do a --freeze-backbone run's
 * frozen features, which come from an inference session), and training's data gradient since
 * stop 63 (conv2d_backward.c), but not the forward: on bf16 products there,
 * tests/test_train_bf16's trainer fell behind fp32's losses step by step (2.9% of the first
 * loss after six steps, 0.6-0.7% with fp32 products in the forward), where the data gradient's
 * alone left it level. (What the forward's would save, AMD EPYC Zen 5, 2 threads,
 * `profile_train -p bf16 -r 5`, alternated: resnet18 224x224 batch 32, Winograd's forward 76-81
 * -> 56-60 ms a step.) */
static const rn_kernels *algo_kernels(const rn_backprop *bp, int i) {
    return rn_conv_algo_is_winograd(bp->algo[i]) ? rn_kernels_fp32(bp->k) : bp->k;
}

static void free_plan(rn_backprop *bp) {
    rn_graph_free(bp->sc);
    rn_free(bp->arena);
    free(bp->act), free(bp->grad), free(bp->z), free(bp->mean), free(bp->var), free(bp->gz);
    free(bp->arg);
    bp->arg = NULL;
    free(bp->shares), free(bp->written), free(bp->node_tensors), free(bp->done);
    free(bp->algo), free(bp->prep);
    free(bp->bn_v);
    bp->bn_v = NULL;
    bp->sc = NULL;
    bp->arena = NULL;
    bp->act = bp->grad = bp->z = bp->mean = bp->var = bp->gz = NULL;
    bp->shares = bp->written = bp->node_tensors = bp->algo = NULL;
    bp->prep = NULL;
    bp->done = NULL;
    bp->n_cap = 0;
}

void rn_backprop_free(rn_backprop *bp) {
    if (!bp)
        return;
    free_plan(bp);
    free(bp);
}

size_t rn_backprop_bytes(const rn_backprop *bp) { return bp ? bp->arena_floats * sizeof(float) : 0; }

const float *rn_backprop_logits(const rn_backprop *bp) { return bp->logits; }

void rn_backprop_set_bn_sync(rn_backprop *bp, rn_bn_sync_hook fn, void *ctx) {
    bp->bn_sync = fn;
    bp->bn_ctx = ctx;
}

/* The index of the tensor whose data is p, or -1. */
static int tensor_at(const rn_model *m, const float *p) {
    for (int t = 0; p && t < m->n_tensors; t++)
        if (m->tensors[t].f32 == p)
            return t;
    return -1;
}

/* Buffers of the plan, in the order they are carved. */
enum { B_ACT, B_GRAD, B_Z, B_MEAN, B_VAR, B_GZ, B_PREP, B_ARG, B_KINDS };

/* Plans (and allocates) the arena for batches of up to n at h x w; with
 * `dry`, only computes its size into *dry and leaves no plan behind. */
static rn_status plan_for(rn_backprop *bp, int n, int h, int w, size_t *dry) {
    if (bp->sc && bp->sc->h == h && bp->sc->w == w && n <= bp->n_cap &&
        bp->threads == rn_threads())
        return RN_OK;
    /* a new input size no taller and no wider than the last keeps room for the largest batch so
     * far; any other is planned for this batch only (as the session's plan_for) */
    if (bp->n_cap > n && bp->sc && h <= bp->sc->h && w <= bp->sc->w)
        n = bp->n_cap;
    free_plan(bp);
    bp->threads = rn_threads(); /* workspaces are cut per thread: a new count plans anew */
    const rn_model *m = bp->m;
    RN_TRY(rn_graph_build(m, h, w, &bp->sc));
    rn_status fits = rn_graph_check_batch(bp->sc, n); /* the kernels' int indices */
    if (fits != RN_OK) {
        free_plan(bp);
        return fits;
    }
    const rn_graph *sc = bp->sc;
    const int N = sc->n_nodes, V = sc->n_values, K = m->num_classes;
    const int nb = B_KINDS * (V > N ? V : N) + 8;
    rn_arena_buf *b = calloc((size_t)nb, sizeof *b);
    int *readers = calloc((size_t)V, sizeof *readers);
    bp->act = calloc((size_t)V, sizeof *bp->act);
    bp->grad = calloc((size_t)V, sizeof *bp->grad);
    bp->shares = calloc((size_t)V, sizeof *bp->shares);
    bp->written = calloc((size_t)V, sizeof *bp->written);
    bp->z = calloc((size_t)N, sizeof *bp->z);
    bp->mean = calloc((size_t)N, sizeof *bp->mean);
    bp->var = calloc((size_t)N, sizeof *bp->var);
    bp->gz = calloc((size_t)N, sizeof *bp->gz);
    bp->arg = calloc((size_t)N, sizeof *bp->arg);
    bp->node_tensors = malloc((size_t)N * 4 * sizeof *bp->node_tensors);
    bp->algo = calloc((size_t)N, sizeof *bp->algo);
    bp->prep = calloc((size_t)N, sizeof *bp->prep);
    bp->done = calloc((size_t)m->n_tensors, 1);
    if (!b || !readers || !bp->act || !bp->grad || !bp->shares || !bp->written || !bp->z || !bp->mean ||
        !bp->var || !bp->gz || !bp->arg || !bp->node_tensors || !bp->done || !bp->algo ||
        !bp->prep) {
        free(b), free(readers);
        free_plan(bp);
        return rn_fail(RN_ERR_NOMEM, "out of memory planning a training step");
    }
#define BSTEP(i) (2 * N - (i))
#define BUF(kind, idx) b[(kind) * (V > N ? V : N) + (idx)]
    for (int i = 0; i < N; i++) {
        const rn_node *nd = &sc->nodes[i];
        readers[nd->in]++;
        if (nd->res >= 0)
            readers[nd->res]++;
    }
    /* a shortcut conv's output, read only as a residual, shares its reader's gradient */
    for (int i = 0; i < N; i++) {
        const rn_node *nd = &sc->nodes[i];
        if (nd->op == RN_NODE_CONV && nd->res >= 0 && readers[nd->res] == 1 &&
            sc->values[nd->res].producer >= 0 && sc->nodes[sc->values[nd->res].producer].op == RN_NODE_CONV)
            bp->shares[nd->res] = 1;
    }
    size_t ws = 0;
    int chans = m->feat;
    for (int v = 0; v < V; v++) {
        const rn_value *val = &sc->values[v];
        const int prod = val->producer;
        const size_t floats = rn_value_floats(sc, v, n);
        BUF(B_ACT, v) = (rn_arena_buf){floats, prod < 0 ? -1 : prod, BSTEP(prod < 0 ? 0 : prod), 0};
        if (v == 0 || val->last_use < 0)
            continue; /* no gradient for the input; the logits' is dlogits */
        BUF(B_GRAD, v) = (rn_arena_buf){floats, BSTEP(val->last_use), BSTEP(prod), 0};
    }
    for (int v = 0; v < V; v++)
        if (bp->shares[v]) {
            /* the reader's grad[out] lives on until the shortcut's own backward */
            const rn_node *reader = &sc->nodes[sc->values[v].last_use];
            BUF(B_GRAD, reader->out).last = BSTEP(sc->values[v].producer);
            BUF(B_GRAD, v).floats = 0;
        }
    for (int i = 0; i < N; i++) {
        const rn_node *nd = &sc->nodes[i];
        int *nt = &bp->node_tensors[4 * i];
        nt[0] = nt[1] = nt[2] = nt[3] = -1;
        if (nd->op == RN_NODE_LINEAR) {
            nt[0] = tensor_at(m, m->fc_w), nt[1] = tensor_at(m, m->fc_b);
            continue;
        }
        if (nd->op == RN_NODE_MAXPOOL && nd->k <= RN_POOL_ARG_MAX_K) {
            /* the winners, a byte an output, from the forward to the node's backward: the
             * backward then scans no window again. AMD EPYC Zen 5, 2 threads, the two ops
             * alone, forward + backward: 64 x 256 planes of 14x14 (d2l_resnet18 at 28x28, batch
             * 256) 1.2 + 2.7 -> 2.0-2.2 + 0.5 ms, 64 x 32 of 112x112 (resnet18 at 224x224,
             * batch 32) 5.1-7.4 + 14.2-14.7 -> 9.9-11.3 + 5.7 */
            const size_t outputs = rn_value_floats(sc, nd->out, n);
            BUF(B_ARG, i) = (rn_arena_buf){(outputs + sizeof(float) - 1) / sizeof(float), i,
                                           BSTEP(i), 0};
            continue;
        }
        if (nd->op != RN_NODE_CONV)
            continue;
        const rn_unit *u = nd->unit;
        nt[0] = tensor_at(m, u->w), nt[1] = tensor_at(m, u->b);
        nt[2] = tensor_at(m, u->bn_weight), nt[3] = tensor_at(m, u->bn_bias);
        rn_conv_shape cs = rn_node_conv_shape(nd, n);
        size_t out = rn_value_floats(sc, nd->out, n);
        if (u->has_bn) {
            BUF(B_Z, i) = (rn_arena_buf){out, i, BSTEP(i), 0};
            BUF(B_MEAN, i) = (rn_arena_buf){(size_t)u->cout, i, 2 * N + 1, 0};
            BUF(B_VAR, i) = (rn_arena_buf){(size_t)u->cout, i, 2 * N + 1, 0};
            if (nd->res >= 0 && bp->shares[nd->res])
                BUF(B_GZ, i) = (rn_arena_buf){out, BSTEP(i), BSTEP(i), 0};
        }
        /* the forward's algorithm: Winograd's and the direct convolution's weights are
         * prepared every step */
        bp->algo[i] = forward_algo(bp, &cs);
        size_t f = conv2d_workspace_floats(bp->k, &cs);
        if (rn_conv_algo_own_weights(bp->algo[i])) { /* the others run on the weights as they are */
            const rn_conv_algo *a = rn_conv_algo_get(bp->algo[i]);
            f = a->workspace_floats(algo_kernels(bp, i), &cs, bp->threads);
            BUF(B_PREP, i) = (rn_arena_buf){a->prepared_floats(algo_kernels(bp, i), &cs), i, i, 0};
        }
        size_t g = conv2d_backward_workspace_floats(bp->k, &cs, data_by_algos(bp));
        ws = f > ws ? f : ws;
        ws = g > ws ? g : ws;
        chans = u->cout > chans ? u->cout : chans;
    }
    const int extra = B_KINDS * (V > N ? V : N);
    b[extra + 0] = (rn_arena_buf){(size_t)n * K, N - 1, 2 * N + 1, 0}; /* logits */
    b[extra + 1] = (rn_arena_buf){(size_t)n * K, N, N + 1, 0};         /* dlogits */
    b[extra + 2] = (rn_arena_buf){(size_t)n, -1, N, 0};                 /* labels */
    b[extra + 3] = (rn_arena_buf){ws ? ws : 1, -1, 2 * N + 1, 0};       /* workspace */
    b[extra + 4] = (rn_arena_buf){(size_t)chans, -1, 2 * N + 1, 0};    /* scale */
    b[extra + 5] = (rn_arena_buf){(size_t)chans, -1, 2 * N + 1, 0};    /* shift */
    b[extra + 6] = (rn_arena_buf){(size_t)chans, -1, 2 * N + 1, 0};    /* invstd */
    rn_status st = rn_arena_plan(b, nb, &bp->arena_floats);
    if (st == RN_OK && !dry && !(bp->bn_v = malloc((2 * (size_t)chans + 1) * sizeof *bp->bn_v)))
        st = rn_fail(RN_ERR_NOMEM, "out of memory planning a training step");
    size_t bytes = 0;
    if (st == RN_OK && !rn_size_mul(bp->arena_floats, sizeof(float), &bytes))
        st = rn_fail(RN_ERR_NOMEM, "a training step for batch %d at %dx%d needs more memory than can be "
                     "addressed", n, h, w);
    if (st == RN_OK && dry)
        *dry = bytes;
    else if (st == RN_OK && !(bp->arena = rn_alloc(bytes)))
        st = rn_fail(RN_ERR_NOMEM, "out of memory: a training step for batch %d at %dx%d needs %.1f GB",
                     n, h, w, (double)bp->arena_floats * 4.0 / 1e9);
    if (st == RN_OK && !dry) {
#define PTR(buf) ((buf).floats ? bp->arena + (buf).offset : NULL)
        for (int v = 0; v < V; v++) {
            bp->act[v] = PTR(BUF(B_ACT, v));
            bp->grad[v] = PTR(BUF(B_GRAD, v));
        }
        for (int v = 0; v < V; v++)
            if (bp->shares[v])
                bp->grad[v] = bp->grad[sc->nodes[sc->values[v].last_use].out];
        for (int i = 0; i < N; i++) {
            bp->z[i] = PTR(BUF(B_Z, i));
            bp->mean[i] = PTR(BUF(B_MEAN, i));
            bp->var[i] = PTR(BUF(B_VAR, i));
            bp->gz[i] = PTR(BUF(B_GZ, i));
            bp->prep[i] = PTR(BUF(B_PREP, i));
            bp->arg[i] = (uint8_t *)PTR(BUF(B_ARG, i));
        }
        bp->logits = PTR(b[extra + 0]);
        bp->dlogits = PTR(b[extra + 1]);
        bp->labels = (int32_t *)PTR(b[extra + 2]);
        bp->ws = PTR(b[extra + 3]);
        bp->scale = PTR(b[extra + 4]);
        bp->shift = PTR(b[extra + 5]);
        bp->invstd = PTR(b[extra + 6]);
#undef PTR
        bp->max_channels = chans;
        bp->n_cap = n;
    }
#undef BUF
#undef BSTEP
    free(b);
    free(readers);
    if (st != RN_OK || dry)
        free_plan(bp);
    return st;
}

rn_status rn_backprop_plan_bytes(const rn_model *m, const rn_kernels *k, int forced_algo, int n, int h, int w,
                                 size_t *bytes) {
    rn_backprop *bp;
    RN_TRY(rn_backprop_create(m, k, forced_algo, &bp));
    rn_status st = plan_for(bp, n, h, w, bytes);
    rn_backprop_free(bp);
    return st;
}

/* ---- forward ------------------------------------------------------------------------------ */

/* y = conv(x) with the epilogue, by the node's algorithm. */
static void conv_run(rn_backprop *bp, int i, const rn_conv_shape *cs, const float *x,
                     const float *res, int relu, float *y) {
    const rn_unit *u = bp->sc->nodes[i].unit;
    if (rn_conv_algo_own_weights(bp->algo[i])) {
        const rn_conv_algo *a = rn_conv_algo_get(bp->algo[i]);
        a->prepare(algo_kernels(bp, i), cs, u->w, bp->prep[i]);
        stamp(bp, i, RN_BP_PREPARE);
        a->forward(algo_kernels(bp, i), cs, x, bp->prep[i], u->b, res, relu, y, bp->ws,
                   bp->threads);
    } else {
        conv2d_forward(bp->k, cs, x, u->w, u->b, res, relu, y, bp->ws);
    }
    stamp(bp, i, RN_BP_CONV);
}

static void conv_forward(rn_backprop *bp, int i, int n) {
    const rn_node *nd = &bp->sc->nodes[i];
    const rn_unit *u = nd->unit;
    rn_conv_shape cs = rn_node_conv_shape(nd, n);
    const float *x = bp->act[nd->in], *res = nd->res >= 0 ? bp->act[nd->res] : NULL;
    float *y = bp->act[nd->out];
    if (!u->has_bn) {
        /* D2L's 1x1 shortcut: conv with bias, nothing after it */
        conv_run(bp, i, &cs, x, res, nd->relu, y);
        return;
    }
    const size_t M = (size_t)n * cs.ho * cs.wo;
    conv_run(bp, i, &cs, x, NULL, 0, bp->z[i]);
    if (bp->bn_sync) {
        batchnorm_sync_sums(bp->z[i], u->cout, M, bp->bn_v);
        bp->bn_sync(bp->bn_ctx, bp->bn_v, 2 * (size_t)u->cout + 1);
        batchnorm_sync_stats(bp->bn_v, u->cout, bp->mean[i], bp->var[i]);
        bp->stat_n = bp->bn_v[2 * u->cout] / ((double)cs.ho * cs.wo);
    } else {
        batchnorm_stats(bp->z[i], u->cout, M, bp->mean[i], bp->var[i]);
    }
    batchnorm_scale_shift(u->cout, u->bn_weight, u->bn_bias, bp->mean[i], bp->var[i], RN_BN_EPS,
                          bp->scale, bp->shift);
    batchnorm_apply(bp->z[i], u->cout, M, bp->scale, bp->shift, res, nd->relu, y);
    stamp(bp, i, RN_BP_NORM);
}

rn_status rn_backprop_forward(rn_backprop *bp, const float *x, const int32_t *labels, const int32_t *labels2,
                              float lam, int n, int h, int w, float label_smoothing, float *loss, int *correct) {
    const rn_model *m = bp->m;
    if (!x || !labels)
        return rn_fail(RN_ERR_ARG, "training batch: NULL argument");
    if (!labels2) /* unmixed */
        labels2 = labels, lam = 1.0f;
    if (n < 1 || h < 1 || w < 1 || n > 1000000 || h > 65536 || w > 65536)
        return rn_fail(RN_ERR_ARG, "training batch: bad shape (%d, %d, %d, %d)", n, m->in_channels, h, w);
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= m->num_classes || labels2[i] < 0 || labels2[i] >= m->num_classes)
            return rn_fail(RN_ERR_ARG, "training batch: label %d of image %d is outside 0..%d",
                           (int)(labels[i] < 0 || labels[i] >= m->num_classes ? labels[i] : labels2[i]), i,
                           m->num_classes - 1);
    if (!(lam >= 0.0f && lam <= 1.0f))
        return rn_fail(RN_ERR_ARG, "training batch: the first labels' share %g is not in [0, 1]", (double)lam);
    RN_TRY(plan_for(bp, n, h, w, NULL));
    bp->n = n;
    bp->stat_n = n;
    const rn_graph *sc = bp->sc;
    memcpy(bp->labels, labels, (size_t)n * sizeof *labels);
    layout_nchw_to_cnhw(x, n, m->in_channels, (size_t)h * (size_t)w, bp->act[0]);
    stamp(bp, -1, RN_BP_OTHER);
    for (int i = 0; i < sc->n_nodes; i++) {
        const rn_node *nd = &sc->nodes[i];
        const rn_value *vi = &sc->values[nd->in];
        const float *src = bp->act[nd->in];
        float *dst = bp->act[nd->out];
        switch (nd->op) {
        case RN_NODE_CONV:
            conv_forward(bp, i, n);
            break;
        case RN_NODE_MAXPOOL:
            if (bp->arg[i])
                maxpool2d_forward_arg(src, vi->c * n, vi->h, vi->w, nd->k, nd->stride, nd->pad,
                                      dst, bp->arg[i]);
            else
                maxpool2d_forward(src, vi->c * n, vi->h, vi->w, nd->k, nd->stride, nd->pad, dst);
            break;
        case RN_NODE_AVGPOOL:
            avgpool_global_forward(src, (size_t)vi->c * n, (size_t)vi->h * vi->w, dst);
            break;
        case RN_NODE_LINEAR:
            linear_forward(bp->k, src, vi->c, n, m->fc_w, m->fc_b, m->num_classes, bp->logits, dst);
            break;
        }
        if (nd->op != RN_NODE_CONV)
            stamp(bp, i, RN_BP_OTHER);
    }
    float l = softmax_cross_entropy_mix(bp->logits, (const int *)bp->labels, (const int *)labels2, lam, n,
                                        m->num_classes, label_smoothing, bp->dlogits, correct);
    stamp(bp, sc->n_nodes, RN_BP_OTHER);
    if (loss)
        *loss = l;
    return RN_OK;
}

/* Every BatchNorm's running statistics as the last forward moves them: with
 * apply, stored (and the batch counted); without, only whether every value
 * would be finite (m is not written). Returns 1 when all are finite. */
static int bn_running_update(const rn_backprop *bp, rn_model *m, int apply) {
    const rn_graph *sc = bp->sc;
    float acc = 0.0f;   /* 0 * finite = 0; 0 * inf or NaN = NaN */
    for (int i = 0; sc && i < sc->n_nodes; i++) {
        const rn_node *nd = &sc->nodes[i];
        if (nd->op != RN_NODE_CONV || !nd->unit->has_bn)
            continue;
        rn_unit *u = (rn_unit *)nd->unit; /* m's own unit */
        const double M = bp->stat_n * sc->values[nd->out].h * sc->values[nd->out].w;
        const float unbias = M > 1 ? (float)M / (float)(M - 1) : 1.0f;
        for (int c = 0; c < u->cout; c++) {
            float mean = (1.0f - RN_BN_MOMENTUM) * u->bn_mean[c] + RN_BN_MOMENTUM * bp->mean[i][c];
            float var = (1.0f - RN_BN_MOMENTUM) * u->bn_var[c] + RN_BN_MOMENTUM * bp->var[i][c] * unbias;
            if (apply)
                u->bn_mean[c] = mean, u->bn_var[c] = var;
            else
                acc += mean * 0.0f + var * 0.0f;
        }
        if (apply)
            (*u->bn_batches)++;
    }
    if (apply)
        rn_model_params_changed(m);
    return acc == 0.0f;
}

void rn_backprop_update_bn(const rn_backprop *bp, rn_model *m) { bn_running_update(bp, m, 1); }

int rn_backprop_bn_finite(const rn_backprop *bp, const rn_model *m) {
    return bn_running_update(bp, (rn_model *)m, 0);
}

/* ---- backward ------------------------------------------------------------------------------ */

/* Marks node i's tensors final and reports the ranges that became final. */
static void tensors_final(rn_backprop *bp, int i, float *grads, rn_grad_hook ready, void *ctx) {
    const rn_model *m = bp->m;
    for (int j = 0; j < 4; j++)
        if (bp->node_tensors[4 * i + j] >= 0)
            bp->done[bp->node_tensors[4 * i + j]] = 1;
    int f = bp->frontier;
    while (f > 0 && (bp->done[f - 1] || !m->tensors[f - 1].trainable))
        f--;
    if (f < bp->frontier && ready) {
        /* the range runs to the end of the first tensor past the frontier; the
         * counters (int64) hold no floats */
        size_t lo = m->n_params, hi = 0;
        for (int t = f; t < bp->frontier; t++) {
            const rn_tensor_ref *r = &m->tensors[t];
            if (!r->f32)
                continue;
            size_t at = (size_t)(r->f32 - m->params);
            lo = at < lo ? at : lo;
            hi = at + r->numel > hi ? at + r->numel : hi;
        }
        if (hi > lo)
            ready(ctx, grads, lo, hi - lo);
    }
    bp->frontier = f;
}

static void conv_backward(rn_backprop *bp, int i, float *grads, int *written) {
    const rn_model *m = bp->m;
    const rn_node *nd = &bp->sc->nodes[i];
    const rn_unit *u = nd->unit;
    const int n = bp->n;
    rn_conv_shape cs = rn_node_conv_shape(nd, n);
    const size_t M = (size_t)n * cs.ho * cs.wo, out = M * (size_t)u->cout;
#define GRAD_OF(p) (grads + ((p) - m->params))
    float *g = bp->grad[nd->out];
    /* the residual's gradient is g itself: shared, or copied as its first contribution, in
     * the ReLU's pass on every thread (the copy alone, by memcpy on one thread, left the
     * BatchNorm backward of resnet18's residual layers 1.0-1.2x faster on two threads than on
     * one, against 1.5-1.6x for the others: `profile_train -a resnet18 -b 16 -s 224 -t 1|2`;
     * the step's ReLU/BatchNorm backward 18.0-18.9 -> 15.4-15.7 ms, AMD EPYC Zen 5, 3 rounds
     * alternated) */
    if (nd->res >= 0 && !bp->shares[nd->res]) {
        relu_backward_copy(nd->relu ? bp->act[nd->out] : NULL, g, out, g, bp->grad[nd->res]);
        written[nd->res] = 1;
    } else if (nd->relu) {
        relu_backward(bp->act[nd->out], g, out, g);
    }
    const float *dz = g;
    if (u->has_bn) {
        float *dst = bp->gz[i] ? bp->gz[i] : g;
        for (int c = 0; c < u->cout; c++)
            bp->invstd[c] = 1.0f / sqrtf(bp->var[i][c] + RN_BN_EPS);
        if (bp->bn_sync) {
            batchnorm_sync_grad_sums(bp->z[i], g, u->cout, M, bp->mean[i], bp->invstd, bp->bn_v,
                                     GRAD_OF(u->bn_weight), GRAD_OF(u->bn_bias));
            bp->bn_sync(bp->bn_ctx, bp->bn_v, 2 * (size_t)u->cout);
            batchnorm_sync_backward(bp->z[i], g, u->cout, M, bp->stat_n * cs.ho * cs.wo, u->bn_weight,
                                    bp->mean[i], bp->invstd, bp->bn_v, dst);
        } else {
            batchnorm_backward(bp->z[i], g, u->cout, M, u->bn_weight, bp->mean[i], bp->invstd, dst,
                               GRAD_OF(u->bn_weight), GRAD_OF(u->bn_bias));
        }
        dz = dst;
    }
    stamp(bp, i, RN_BP_NORM_BACK);
    conv2d_backward_weight(bp->k, &cs, bp->act[nd->in], dz, GRAD_OF(u->w),
                           u->b ? GRAD_OF(u->b) : NULL, bp->ws, data_by_algos(bp));
    stamp(bp, i, RN_BP_WEIGHT_GRAD);
    if (nd->in != 0) {
        conv2d_backward_data(bp->k, &cs, dz, u->w, written[nd->in] ? 1.0f : 0.0f,
                             bp->grad[nd->in], bp->ws, data_by_algos(bp));
        written[nd->in] = 1;
        stamp(bp, i, RN_BP_DATA_GRAD);
    }
#undef GRAD_OF
}

rn_status rn_backprop_backward(rn_backprop *bp, float *grads, rn_grad_hook ready, void *ctx) {
    if (!bp->sc || !bp->n)
        return rn_fail(RN_ERR_ARG, "backward: no training forward pass to differentiate");
    const rn_model *m = bp->m;
    const rn_graph *sc = bp->sc;
    const int n = bp->n;
    int *written = bp->written;
    memset(written, 0, (size_t)sc->n_values * sizeof *written);
    memset(bp->done, 0, (size_t)m->n_tensors);
    bp->frontier = m->n_tensors;
    for (int i = sc->n_nodes - 1; i >= 0; i--) {
        const rn_node *nd = &sc->nodes[i];
        const rn_value *vi = &sc->values[nd->in];
        switch (nd->op) {
        case RN_NODE_CONV:
            conv_backward(bp, i, grads, written);
            break;
        /* the pools' and the classifier's inputs have no other reader: their
         * gradients are written, not accumulated */
        case RN_NODE_MAXPOOL:
            if (bp->arg[i])
                maxpool2d_backward_arg(bp->arg[i], bp->grad[nd->out], vi->c * n, vi->h, vi->w,
                                       nd->k, nd->stride, nd->pad, bp->grad[nd->in]);
            else
                maxpool2d_backward(bp->act[nd->in], bp->act[nd->out], bp->grad[nd->out],
                                   vi->c * n, vi->h, vi->w, nd->k, nd->stride, nd->pad,
                                   bp->grad[nd->in]);
            written[nd->in] = 1;
            break;
        case RN_NODE_AVGPOOL:
            avgpool_global_backward(bp->grad[nd->out], (size_t)vi->c * n, (size_t)vi->h * vi->w,
                                    bp->grad[nd->in]);
            written[nd->in] = 1;
            break;
        case RN_NODE_LINEAR:
            linear_backward(bp->k, bp->act[nd->in], vi->c, n, m->fc_w, m->num_classes, bp->dlogits,
                            bp->grad[nd->in], grads + (m->fc_w - m->params),
                            grads + (m->fc_b - m->params));
            written[nd->in] = 1;
            break;
        }
        if (nd->op != RN_NODE_CONV)
            stamp(bp, i, RN_BP_OTHER);
        tensors_final(bp, i, grads, ready, ctx);
    }
    return RN_OK;
}
