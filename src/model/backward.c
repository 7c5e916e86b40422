/*
 * backward.c - a training step through the network: a forward pass that
 * keeps what backward needs, the loss, and the backward pass.
 *
 * Every conv (+ BN) unit becomes a `slot` in execution order (the stem, then
 * per block: the main units, with the projection shortcut just before the
 * last one, exactly as forward.c runs them). A slot keeps its input x, the
 * conv output z (what BatchNorm normalised), the batch statistics, and its
 * output y = relu(bn(z) + residual). All of it is carved out of one arena
 * planned for the batch shape; a step allocates nothing.
 *
 * Backward walks the blocks in reverse with four gradient buffers of the
 * largest activation size: `gout` (gradient of the block output), `t1`/`t2`
 * (inside the main path) and `gin` (gradient of the block input, which both
 * the main path and the shortcut write into).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/status.h"
#include "model/model.h"
#include "ops/conv2d.h"
#include "ops/ops.h"

typedef struct slot {
    rn_unit *u;
    rn_conv_shape s;
    size_t M;                 /* n * ho * wo */
    const float *x;           /* input: (cin, n, h, w) */
    float *z;                 /* conv output: (cout, M); == y for a unit without BN */
    float *y;                 /* unit output: (cout, M) */
    float *mean, *invstd;     /* batch statistics: (cout) */
    const float *res;         /* residual added before the ReLU, or NULL */
    int relu;
} slot;

typedef struct rn_train_plan {
    int n, h, w;
    slot *slots;
    int n_slots;
    int *block_first;         /* first slot of each block */
    float *arena;
    float *x;                 /* input, channel-major: (in_channels, n, h, w) */
    float *pool;              /* stem output after max-pooling: (64, n, ph, pw) */
    int ph, pw;               /* size after the max-pool */
    int fh, fw;               /* size of the last block's output */
    float *feat;              /* (feat, n) */
    float *logits, *dlogits;  /* (n, num_classes) */
    float *dfeat;             /* (feat, n) */
    int32_t *labels;          /* (n) */
    float *g[4];              /* gradient buffers, act_floats each */
    float *ws;                /* conv workspace */
    float *scale, *shift;     /* (max channels) */
    int ready;                /* a forward pass has filled the slots */
} rn_train_plan;

void rn_train_plan_free(rn_train_plan *tp) {
    if (!tp)
        return;
    rn_free(tp->arena);
    free(tp->slots);
    free(tp->block_first);
    free(tp);
}

/* ---- planning ------------------------------------------------------------------------- */

/* Bump allocator over the arena: counts on the first pass (base NULL), carves on the second. */
typedef struct carver {
    float *base;
    size_t used;
} carver;

static float *carve(carver *c, size_t floats) {
    float *p = c->base ? c->base + c->used : NULL;
    c->used += (floats + 15) & ~(size_t)15; /* keep 64-byte alignment */
    return p;
}

static int count_slots(const rn_model *m) {
    int k = 1;
    for (int b = 0; b < m->n_blocks; b++)
        k += m->blocks[b].n_main + m->blocks[b].has_shortcut;
    return k;
}

/* Lays out slots and buffers; with c->base == NULL only measures. Returns 0 if
 * the input is too small. */
static int layout(rn_model *m, rn_train_plan *tp, carver *c, size_t *act_max, size_t *ws_max,
                  int *ch_max) {
    int n = tp->n, h = tp->h, w = tp->w, k = 0;
    size_t act = 0, ws = 0;
    int chans = m->feat;
    tp->x = carve(c, (size_t)m->in_channels * n * h * w);

    /* Fills slot k for unit u on input x at (*h, *w). */
#define ADD_SLOT(unit, input, residual, use_relu)                                          \
    do {                                                                                    \
        slot *sl = &tp->slots[k++];                                                         \
        sl->u = (unit);                                                                     \
        sl->s = (rn_conv_shape){.n = n, .cin = sl->u->cin, .h = *hp, .w = *wp,              \
                                .cout = sl->u->cout, .kh = sl->u->k, .kw = sl->u->k,         \
                                .stride = sl->u->stride, .pad = sl->u->pad,                  \
                                .groups = sl->u->groups};                                    \
        if (!conv2d_shape_init(&sl->s))                                                     \
            return 0;                                                                       \
        *hp = sl->s.ho, *wp = sl->s.wo;                                                     \
        sl->M = (size_t)n * sl->s.ho * sl->s.wo;                                            \
        sl->x = (input);                                                                    \
        sl->z = carve(c, sl->M * sl->u->cout);                                              \
        sl->y = sl->u->has_bn ? carve(c, sl->M * sl->u->cout) : sl->z;                      \
        sl->mean = carve(c, (size_t)sl->u->cout);                                           \
        sl->invstd = carve(c, (size_t)sl->u->cout);                                         \
        sl->res = (residual);                                                               \
        sl->relu = (use_relu);                                                              \
        size_t out_ = sl->M * sl->u->cout;                                                  \
        size_t a_ = conv2d_workspace_floats(&sl->s), b_ = conv2d_backward_workspace_floats(NULL, &sl->s); \
        act = out_ > act ? out_ : act;                                                      \
        ws = a_ > ws ? a_ : ws;                                                             \
        ws = b_ > ws ? b_ : ws;                                                             \
        chans = sl->u->cout > chans ? sl->u->cout : chans;                                  \
    } while (0)

    int *hp = &h, *wp = &w;
    ADD_SLOT(&m->stem, tp->x, NULL, 1);
    int ph = h, pw = w;
    if (m->stem_kind == RN_STEM_IMAGENET) {
        ph = maxpool2d_out_size(h, 3, 2, 1), pw = maxpool2d_out_size(w, 3, 2, 1);
        if (ph < 1 || pw < 1)
            return 0;
        tp->pool = carve(c, (size_t)64 * n * ph * pw);
    } else {
        tp->pool = tp->slots[0].y; /* the CIFAR stem has no max-pool */
    }
    tp->ph = ph, tp->pw = pw;
    h = ph, w = pw;
    const float *in = tp->pool;
    for (int b = 0; b < m->n_blocks; b++) {
        rn_block *blk = &m->blocks[b];
        int bh = h, bw = w;
        tp->block_first[b] = k;
        const float *prev = in;
        for (int j = 0; j < blk->n_main; j++) {
            const float *res = NULL;
            if (j == blk->n_main - 1) {
                res = in;
                if (blk->has_shortcut) {
                    int sh = bh, sw = bw;
                    hp = &sh, wp = &sw;
                    ADD_SLOT(&blk->shortcut, in, NULL, 0);
                    res = tp->slots[k - 1].y;
                    hp = &h, wp = &w;
                }
            }
            ADD_SLOT(&blk->main[j], prev, res, 1);
            prev = tp->slots[k - 1].y;
        }
        in = prev;
    }
#undef ADD_SLOT
    tp->fh = h, tp->fw = w;
    int K = m->num_classes;
    tp->feat = carve(c, (size_t)m->feat * n);
    tp->dfeat = carve(c, (size_t)m->feat * n);
    tp->logits = carve(c, (size_t)n * K);
    tp->dlogits = carve(c, (size_t)n * K);
    tp->labels = (int32_t *)carve(c, (size_t)n);
    act = (size_t)64 * n * ph * pw > act ? (size_t)64 * n * ph * pw : act;
    for (int i = 0; i < 4; i++)
        tp->g[i] = carve(c, act);
    tp->ws = carve(c, ws ? ws : 1);
    tp->scale = carve(c, (size_t)chans);
    tp->shift = carve(c, (size_t)chans);
    *act_max = act, *ws_max = ws;
    *ch_max = chans;
    return 1;
}

static rn_status train_plan_for(rn_model *m, int n, int h, int w) {
    rn_train_plan *tp = m->train;
    if (tp && tp->n == n && tp->h == h && tp->w == w)
        return RN_OK;
    rn_train_plan_free(tp);
    m->train = NULL;
    if (!m->grads && !(m->grads = rn_calloc(m->n_params, sizeof(float))))
        return rn_fail(RN_ERR_NOMEM, "out of memory for gradients");
    tp = calloc(1, sizeof *tp);
    if (!tp)
        return rn_fail(RN_ERR_NOMEM, "out of memory planning a training step");
    tp->n = n, tp->h = h, tp->w = w;
    tp->n_slots = count_slots(m);
    tp->slots = calloc((size_t)tp->n_slots, sizeof *tp->slots);
    tp->block_first = calloc((size_t)m->n_blocks, sizeof *tp->block_first);
    if (!tp->slots || !tp->block_first) {
        rn_train_plan_free(tp);
        return rn_fail(RN_ERR_NOMEM, "out of memory planning a training step");
    }
    carver c = {0};
    size_t act, ws;
    int chans;
    if (!layout(m, tp, &c, &act, &ws, &chans)) {
        rn_train_plan_free(tp);
        return rn_fail(RN_ERR_ARG, "input %dx%d is too small for %s", h, w, m->arch->name);
    }
    size_t bytes;
    if (!rn_size_mul(c.used, sizeof(float), &bytes) || !(tp->arena = rn_alloc(bytes))) {
        rn_train_plan_free(tp);
        return rn_fail(RN_ERR_NOMEM, "out of memory: a training step for batch %d at %dx%d needs %.1f GB",
                       n, h, w, (double)c.used * 4.0 / 1e9);
    }
    c = (carver){.base = tp->arena};
    layout(m, tp, &c, &act, &ws, &chans);
    m->train = tp;
    return RN_OK;
}

/* ---- forward, keeping activations ------------------------------------------------------ */

static void slot_forward(rn_train_plan *tp, slot *sl, int update_stats) {
    rn_unit *u = sl->u;
    if (!u->has_bn) {
        /* D2L's 1x1 shortcut: conv with bias, nothing after it. */
        conv2d_forward(NULL, &sl->s, sl->x, u->w, u->b, sl->res, sl->relu, sl->z, tp->ws);
        return;
    }
    conv2d_forward(NULL, &sl->s, sl->x, u->w, u->b, NULL, 0, sl->z, tp->ws);
    float *var = sl->invstd; /* holds the variance until turned into invstd below */
    batchnorm_stats(sl->z, u->cout, sl->M, sl->mean, var);
    if (update_stats) {
        float unbias = sl->M > 1 ? (float)sl->M / (float)(sl->M - 1) : 1.0f;
        for (int c = 0; c < u->cout; c++) {
            u->bn_mean[c] = (1.0f - RN_BN_MOMENTUM) * u->bn_mean[c] + RN_BN_MOMENTUM * sl->mean[c];
            u->bn_var[c] = (1.0f - RN_BN_MOMENTUM) * u->bn_var[c] + RN_BN_MOMENTUM * var[c] * unbias;
        }
        (*u->bn_batches)++;
    }
    batchnorm_scale_shift(u->cout, u->bn_weight, u->bn_bias, sl->mean, var, RN_BN_EPS, tp->scale,
                          tp->shift);
    for (int c = 0; c < u->cout; c++)
        sl->invstd[c] = 1.0f / sqrtf(var[c] + RN_BN_EPS);
    batchnorm_apply(sl->z, u->cout, sl->M, tp->scale, tp->shift, sl->res, sl->relu, sl->y);
}

rn_status rn_model_train_forward(rn_model *m, const float *x, const int32_t *labels, int n, int h,
                                 int w, float label_smoothing, int update_stats, float *loss,
                                 int *correct) {
    if (!m || !x || !labels)
        return rn_fail(RN_ERR_ARG, "rn_model_train_forward: NULL argument");
    if (n < 1 || h < 1 || w < 1 || n > 1000000 || h > 65536 || w > 65536)
        return rn_fail(RN_ERR_ARG, "training batch: bad shape (%d, %d, %d, %d)", n, m->in_channels, h, w);
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= m->num_classes)
            return rn_fail(RN_ERR_ARG, "training batch: label %d of image %d is outside 0..%d",
                           (int)labels[i], i, m->num_classes - 1);
    RN_TRY(train_plan_for(m, n, h, w));
    rn_train_plan *tp = m->train;
    memcpy(tp->labels, labels, (size_t)n * sizeof *labels);
    layout_nchw_to_cnhw(x, n, m->in_channels, (size_t)h * w, tp->x);

    slot *stem = &tp->slots[0];
    slot_forward(tp, stem, update_stats);
    if (m->stem_kind == RN_STEM_IMAGENET)
        maxpool2d_forward(stem->y, 64 * n, stem->s.ho, stem->s.wo, 3, 2, 1, tp->pool);
    for (int k = 1; k < tp->n_slots; k++)
        slot_forward(tp, &tp->slots[k], update_stats);

    const slot *last = &tp->slots[tp->n_slots - 1];
    avgpool_global_forward(last->y, (size_t)m->feat * n, (size_t)tp->fh * tp->fw, tp->feat);
    linear_forward(NULL, tp->feat, m->feat, n, m->fc_w, m->fc_b, m->num_classes, tp->logits, tp->dlogits);
    float l = softmax_cross_entropy(tp->logits, (const int *)tp->labels, n, m->num_classes,
                                    label_smoothing, tp->dlogits, correct);
    if (loss)
        *loss = l;
    if (update_stats)
        m->version++;
    tp->ready = 1;
    return RN_OK;
}

const float *rn_model_train_logits(const rn_model *m) {
    return m->train && m->train->ready ? m->train->logits : NULL;
}

/* ---- backward ---------------------------------------------------------------------------- */

/* BatchNorm's backward: dy = d loss / d (BN output), the ReLU mask already
 * applied; writes the BN parameter gradients and dz = d loss / d z into dx
 * (which may be dy). A unit without BN passes dy through. */
static const float *slot_backward_bn(rn_model *m, const slot *sl, const float *dy, float *dx) {
    rn_unit *u = sl->u;
    if (!u->has_bn)
        return dy;
    batchnorm_backward(sl->z, dy, u->cout, sl->M, u->bn_weight, sl->mean, sl->invstd, dx,
                       rn_grad_of(m, u->bn_weight), rn_grad_of(m, u->bn_bias));
    return dx;
}

/* Conv parameter gradients from dz, and (if dx) the input gradient (beta 0 or 1). */
static void slot_backward_conv(rn_model *m, rn_train_plan *tp, const slot *sl, const float *dz,
                               float *dx, float beta) {
    rn_unit *u = sl->u;
    conv2d_backward_weight(NULL, &sl->s, sl->x, dz, rn_grad_of(m, u->w), u->b ? rn_grad_of(m, u->b) : NULL,
                           tp->ws);
    if (dx)
        conv2d_backward_data(NULL, &sl->s, dz, u->w, beta, dx, tp->ws);
}

rn_status rn_model_train_backward(rn_model *m) {
    rn_train_plan *tp = m ? m->train : NULL;
    if (!tp || !tp->ready)
        return rn_fail(RN_ERR_ARG, "rn_model_train_backward: no training forward pass to differentiate");
    int n = tp->n;
    float *gout = tp->g[0], *t1 = tp->g[1], *t2 = tp->g[2], *gin = tp->g[3];

    /* head: linear, then global average pooling */
    linear_backward(NULL, tp->feat, m->feat, n, m->fc_w, m->num_classes, tp->dlogits, tp->dfeat,
                    rn_grad_of(m, m->fc_w), rn_grad_of(m, m->fc_b));
    avgpool_global_backward(tp->dfeat, (size_t)m->feat * n, (size_t)tp->fh * tp->fw, gout);

    for (int b = m->n_blocks - 1; b >= 0; b--) {
        const rn_block *blk = &m->blocks[b];
        const slot *first = &tp->slots[tp->block_first[b]];
        const slot *last = &tp->slots[tp->block_first[b] + blk->n_main + blk->has_shortcut - 1];
        const slot *sc = blk->has_shortcut ? last - 1 : NULL;
        size_t out_floats = last->M * last->u->cout;
        size_t in_floats = first->s.n * (size_t)first->s.cin * first->s.h * first->s.w;

        /* gout: d/d(block output) -> d/d(main + shortcut), in place */
        relu_backward(last->y, gout, out_floats, gout);

        /* the main path, last unit first; g: d/d(the unit's BN output) */
        float *g = t1, *spare = t2;
        for (int j = blk->n_main - 1; j >= 0; j--) {
            const slot *sl = j == blk->n_main - 1 ? last : first + j;
            const float *dy = gout;
            if (j != blk->n_main - 1) {
                relu_backward(sl->y, g, sl->M * sl->u->cout, g);
                dy = g;
            }
            const float *dz = slot_backward_bn(m, sl, dy, g);
            float *dx = j == 0 ? gin : spare;
            slot_backward_conv(m, tp, sl, dz, dx, 0.0f);
            spare = g;
            g = dx;
        }

        /* the shortcut adds its gradient into gin */
        if (sc) {
            const float *dz = slot_backward_bn(m, sc, gout, gout);
            slot_backward_conv(m, tp, sc, dz, gin, 1.0f);
        } else {
            add_forward(gin, gout, in_floats, 0, gin);
        }
        float *tmp = gout;
        gout = gin;
        gin = tmp;
    }

    /* stem: max-pool, ReLU, BN, conv (no input gradient needed) */
    slot *stem = &tp->slots[0];
    size_t stem_floats = stem->M * stem->u->cout;
    if (m->stem_kind == RN_STEM_IMAGENET)
        maxpool2d_backward(stem->y, gout, 64 * n, stem->s.ho, stem->s.wo, 3, 2, 1, gin);
    else
        memcpy(gin, gout, stem_floats * sizeof *gin);
    relu_backward(stem->y, gin, stem_floats, gin);
    slot_backward_conv(m, tp, stem, slot_backward_bn(m, stem, gin, gin), NULL, 0.0f);
    return RN_OK;
}
