/*
 * forward.c - the forward pass, and the buffers it is planned into.
 *
 * The pass runs twice per new input shape: a dry run that only measures
 * (largest activation, largest conv workspace, widest layer), then the real
 * runs into buffers allocated once from those sizes. Nothing is allocated
 * while a batch is being computed.
 *
 * Activations are channel-major, (C, N, H, W). Four activation buffers
 * suffice for every block kind: `cur` (block input), `t1`/`t2` (the main
 * path, alternating), `sc` (the projection shortcut); the last unit of a
 * block writes into whichever of t1/t2 it does not read, which then becomes
 * `cur`.
 *
 * Eval mode folds each BatchNorm into its convolution once per weight
 * version (w' = w * s, b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps)),
 * so a unit is one convolution with bias, residual add and ReLU in the
 * GEMM epilogue. Train mode computes batch statistics after the conv and
 * applies BN, the residual add and ReLU in one pass.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/status.h"
#include "model/model.h"
#include "ops/conv2d.h"
#include "ops/ops.h"

typedef struct rn_plan {
    int n, h, w;                  /* input shape the buffers are sized for */
    size_t act_floats, ws_floats; /* per buffer */
    int max_channels;
    float *act[5];                /* input/cur, t1, t2, sc, spare */
    float *ws;                    /* conv workspace */
    float *feat, *fc_work;        /* (feat, n), (num_classes, n) */
    float *mean, *var, *scale, *shift;  /* (max_channels) */
    /* Eval-mode folded weights, one copy of every conv weight and bias. */
    float *folded;
    size_t folded_floats;
    unsigned folded_version;
    int folded_valid;
} rn_plan;

/* What a pass needs: filled by the dry run, consumed by the real one. */
typedef struct pass {
    rn_model *m;
    rn_plan *p;
    rn_mode mode;
    int dry;
    size_t act_floats, ws_floats, folded_floats;
    int max_channels;
    int failed;
} pass;

void rn_plan_free(rn_plan *p) {
    if (!p)
        return;
    for (int i = 0; i < 5; i++)
        rn_free(p->act[i]);
    rn_free(p->ws);
    rn_free(p->feat);
    rn_free(p->fc_work);
    rn_free(p->mean);
    rn_free(p->var);
    rn_free(p->scale);
    rn_free(p->shift);
    rn_free(p->folded);
    free(p);
}

/* ---- folding BatchNorm into convolutions (eval mode) ------------------------------- */

static size_t unit_weight_floats(const rn_unit *u) {
    return (size_t)u->cout * (size_t)(u->cin / u->groups) * (size_t)(u->k * u->k);
}

/* The folded weight and bias of u live at *offset in p->folded. */
static void fold_unit(const rn_unit *u, float *fw, float *fb) {
    size_t per_out = unit_weight_floats(u) / (size_t)u->cout;
    for (int co = 0; co < u->cout; co++) {
        float s = 1.0f, t = u->b ? u->b[co] : 0.0f;
        if (u->has_bn) {
            batchnorm_scale_shift(1, &u->bn_weight[co], &u->bn_bias[co], &u->bn_mean[co],
                                  &u->bn_var[co], RN_BN_EPS, &s, &t);
            t += (u->b ? u->b[co] : 0.0f) * s;
        }
        for (size_t i = 0; i < per_out; i++)
            fw[(size_t)co * per_out + i] = u->w[(size_t)co * per_out + i] * s;
        fb[co] = t;
    }
}

/* ---- one conv (+ BN) (+ residual) (+ ReLU) unit ------------------------------------------ */

/* x: (u->cin, n, *h, *w) -> y: (u->cout, n, ho, wo); updates *h, *w. *folded_at walks
 * through the folded-weight block in unit order. */
static void run_unit(pass *ps, const rn_unit *u, const float *x, int n, int *h, int *w,
                     float *y, const float *residual, int relu, size_t *folded_at) {
    rn_conv_shape s = {.n = n, .cin = u->cin, .h = *h, .w = *w, .cout = u->cout, .kh = u->k,
                       .kw = u->k, .stride = u->stride, .pad = u->pad, .groups = u->groups};
    if (!conv2d_shape_init(&s)) {
        ps->failed = 1;
        return;
    }
    size_t M = (size_t)n * (size_t)s.ho * (size_t)s.wo;
    size_t wf = unit_weight_floats(u);
    size_t at = *folded_at;
    *folded_at += wf + (size_t)u->cout;
    *h = s.ho;
    *w = s.wo;
    if (ps->dry) {
        size_t out = M * (size_t)u->cout, ws = conv2d_workspace_floats(&s);
        if (out > ps->act_floats)
            ps->act_floats = out;
        if (ws > ps->ws_floats)
            ps->ws_floats = ws;
        if (u->cout > ps->max_channels)
            ps->max_channels = u->cout;
        ps->folded_floats = *folded_at;
        return;
    }
    rn_plan *p = ps->p;
    if (ps->mode == RN_MODE_EVAL || !u->has_bn) {
        const float *fw = u->w, *fb = u->b;
        if (u->has_bn) {
            fw = p->folded + at;
            fb = p->folded + at + wf;
        }
        conv2d_forward(NULL, &s, x, fw, fb, residual, relu, y, p->ws);
        return;
    }
    conv2d_forward(NULL, &s, x, u->w, u->b, NULL, 0, y, p->ws);
    batchnorm_stats(y, u->cout, M, p->mean, p->var);
    batchnorm_scale_shift(u->cout, u->bn_weight, u->bn_bias, p->mean, p->var, RN_BN_EPS,
                          p->scale, p->shift);
    batchnorm_apply(y, u->cout, M, p->scale, p->shift, residual, relu, y);
}

/* ---- the whole network ------------------------------------------------------------------------ */

static void note_size(pass *ps, size_t floats) {
    if (ps->dry && floats > ps->act_floats)
        ps->act_floats = floats;
}

static void run_network(pass *ps, const float *x_nchw, int n, int h, int w, float *logits) {
    rn_model *m = ps->m;
    rn_plan *p = ps->p;
    float *cur = p ? p->act[0] : NULL, *t1 = p ? p->act[1] : NULL, *t2 = p ? p->act[2] : NULL;
    float *sc = p ? p->act[3] : NULL, *spare = p ? p->act[4] : NULL;
    size_t folded_at = 0;

    /* x: (N, C, H, W) -> (C, N, H, W) */
    note_size(ps, (size_t)n * (size_t)m->in_channels * (size_t)h * (size_t)w);
    if (!ps->dry)
        layout_nchw_to_cnhw(x_nchw, n, m->in_channels, (size_t)h * (size_t)w, spare);

    /* stem: conv -> BN -> ReLU -> maxpool 3x3/2 (no max-pool for the CIFAR stem) */
    int pool = m->stem_kind == RN_STEM_IMAGENET;
    run_unit(ps, &m->stem, spare, n, &h, &w, pool ? t1 : cur, NULL, 1, &folded_at);
    if (ps->failed)
        return;
    if (pool) {
        int ph = maxpool2d_out_size(h, 3, 2, 1), pw = maxpool2d_out_size(w, 3, 2, 1);
        if (ph < 1 || pw < 1) {
            ps->failed = 1;
            return;
        }
        if (!ps->dry)
            maxpool2d_forward(t1, 64 * n, h, w, 3, 2, 1, cur);
        h = ph, w = pw;
    }

    for (int b = 0; b < m->n_blocks; b++) {
        const rn_block *blk = &m->blocks[b];
        int bh = h, bw = w;
        float *in = cur, *out = NULL;
        for (int j = 0; j < blk->n_main; j++) {
            out = j % 2 == 0 ? t1 : t2;
            int last = j == blk->n_main - 1;
            const float *res = NULL;
            if (last) {
                res = cur;
                if (blk->has_shortcut) {
                    int sh = bh, sw = bw;
                    run_unit(ps, &blk->shortcut, cur, n, &sh, &sw, sc, NULL, 0, &folded_at);
                    res = sc;
                }
            }
            run_unit(ps, &blk->main[j], in, n, &h, &w, out, res, 1, &folded_at);
            if (ps->failed)
                return;
            in = out;
        }
        /* The block output becomes the next block's input. */
        float *old = cur;
        cur = out;
        if (out == t1)
            t1 = old;
        else
            t2 = old;
    }

    /* head: global average pool -> linear */
    if (ps->dry)
        return;
    avgpool_global_forward(cur, (size_t)m->feat * (size_t)n, (size_t)h * (size_t)w, p->feat);
    linear_forward(NULL, p->feat, m->feat, n, m->fc_w, m->fc_b, m->num_classes, logits, p->fc_work);
}

/* ---- planning ---------------------------------------------------------------------------------- */

static rn_status plan_for(rn_model *m, int n, int h, int w) {
    if (m->plan && m->plan->n == n && m->plan->h == h && m->plan->w == w)
        return RN_OK;
    pass dry = {.m = m, .dry = 1};
    run_network(&dry, NULL, n, h, w, NULL);
    if (dry.failed)
        return rn_fail(RN_ERR_ARG, "input %dx%d is too small for %s (a layer's output would be empty)",
                       h, w, m->arch->name);

    /* Keep the folded weights across re-plans: they depend on the weights only. */
    float *folded = m->plan ? m->plan->folded : NULL;
    unsigned folded_version = m->plan ? m->plan->folded_version : 0;
    int folded_valid = m->plan ? m->plan->folded_valid : 0;
    if (m->plan)
        m->plan->folded = NULL;
    rn_plan_free(m->plan);
    m->plan = NULL;

    rn_plan *p = calloc(1, sizeof *p);
    if (!p) {
        rn_free(folded);
        return rn_fail(RN_ERR_NOMEM, "out of memory planning the forward pass");
    }
    p->n = n, p->h = h, p->w = w;
    p->act_floats = dry.act_floats;
    p->ws_floats = dry.ws_floats;
    p->max_channels = dry.max_channels > m->feat ? dry.max_channels : m->feat;
    p->folded = folded;
    p->folded_floats = dry.folded_floats;
    p->folded_version = folded_version;
    p->folded_valid = folded_valid;
    int ok = 1;
    for (int i = 0; i < 5; i++)
        ok &= (p->act[i] = rn_calloc(p->act_floats, sizeof(float))) != NULL;
    ok &= (p->ws = rn_alloc((p->ws_floats ? p->ws_floats : 1) * sizeof(float))) != NULL;
    ok &= (p->feat = rn_calloc((size_t)m->feat * (size_t)n, sizeof(float))) != NULL;
    ok &= (p->fc_work = rn_calloc((size_t)m->num_classes * (size_t)n, sizeof(float))) != NULL;
    ok &= (p->mean = rn_calloc((size_t)p->max_channels, sizeof(float))) != NULL;
    ok &= (p->var = rn_calloc((size_t)p->max_channels, sizeof(float))) != NULL;
    ok &= (p->scale = rn_calloc((size_t)p->max_channels, sizeof(float))) != NULL;
    ok &= (p->shift = rn_calloc((size_t)p->max_channels, sizeof(float))) != NULL;
    if (!p->folded)
        ok &= (p->folded = rn_alloc(p->folded_floats * sizeof(float))) != NULL;
    m->plan = p;
    if (!ok) {
        rn_plan_free(p);
        m->plan = NULL;
        return rn_fail(RN_ERR_NOMEM, "out of memory: the forward pass for batch %d at %dx%d needs "
                       "5 x %zu floats of activations", n, h, w, dry.act_floats);
    }
    return RN_OK;
}

static void refold(rn_model *m) {
    rn_plan *p = m->plan;
    if (p->folded_valid && p->folded_version == m->version)
        return;
    size_t at = 0;
    const rn_unit *units[4];
    fold_unit(&m->stem, p->folded, p->folded + unit_weight_floats(&m->stem));
    at += unit_weight_floats(&m->stem) + (size_t)m->stem.cout;
    /* The same order as run_network visits units: main units, the shortcut before the last. */
    for (int b = 0; b < m->n_blocks; b++) {
        const rn_block *blk = &m->blocks[b];
        int k = 0;
        for (int j = 0; j < blk->n_main; j++) {
            if (j == blk->n_main - 1 && blk->has_shortcut)
                units[k++] = &blk->shortcut;
            units[k++] = &blk->main[j];
        }
        for (int i = 0; i < k; i++) {
            size_t wf = unit_weight_floats(units[i]);
            fold_unit(units[i], p->folded + at, p->folded + at + wf);
            at += wf + (size_t)units[i]->cout;
        }
    }
    p->folded_version = m->version;
    p->folded_valid = 1;
}

rn_status rn_model_forward(rn_model *m, const float *x, int n, int h, int w, rn_mode mode,
                           float *logits) {
    if (!m || !x || !logits)
        return rn_fail(RN_ERR_ARG, "rn_model_forward: NULL argument");
    if (n < 1 || h < 1 || w < 1 || n > 1000000 || h > 65536 || w > 65536)
        return rn_fail(RN_ERR_ARG, "rn_model_forward: bad input shape (%d, %d, %d, %d)", n,
                       m->in_channels, h, w);
    if (mode != RN_MODE_EVAL && mode != RN_MODE_TRAIN)
        return rn_fail(RN_ERR_ARG, "rn_model_forward: unknown mode %d", (int)mode);
    size_t total;
    if (!rn_size_mul((size_t)n * (size_t)m->in_channels, (size_t)h * (size_t)w, &total) ||
        !rn_size_mul(total, 64, &total))
        return rn_fail(RN_ERR_NOMEM, "rn_model_forward: input too large");
    RN_TRY(plan_for(m, n, h, w));
    if (mode == RN_MODE_EVAL)
        refold(m);
    pass ps = {.m = m, .p = m->plan, .mode = mode};
    run_network(&ps, x, n, h, w, logits);
    return RN_OK;
}

const float *rn_model_features(const rn_model *m) { return m->plan ? m->plan->feat : NULL; }
