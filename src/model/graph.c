/*
 * graph.c - building the network schedule (the node list) from the
 * architecture tables (contract in graph.h).
 *
 * One builder runs twice, as arch.c's does: a counting pass (no arrays),
 * then a filling pass. Shapes are worked out as the nodes are added, so a
 * too-small input is found here, once, for every walker.
 */
#include "model/graph.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "ops/ops.h"

typedef struct builder {
    rn_graph *s;
    int filling;
    int nodes, values, convs;
    int failed;
    /* the first conv whose map passes the kernels' int index (conv2d_shape_init's INT_MAX
     * pixels), with its input's or output's pixels: a too-large input, not a too-small one */
    const rn_unit *too_large;
    long long too_large_pixels;
} builder;

/* A new value of shape (c, h, w) written by the node about to be added. */
static int add_value(builder *b, int c, int h, int w) {
    if (b->filling && (h < 1 || w < 1))
        b->failed = 1;
    if (b->filling)
        b->s->values[b->values] = (rn_value){.c = c, .h = h, .w = w, .producer = b->nodes,
                                             .last_use = -1};
    return b->values++;
}

static void note_use(builder *b, int v) {
    if (b->filling && v >= 0)
        b->s->values[v].last_use = b->nodes;
}

static void shape_of(const builder *b, int v, int *c, int *h, int *w) {
    if (b->filling) {
        *c = b->s->values[v].c, *h = b->s->values[v].h, *w = b->s->values[v].w;
    }
}

/* Appends a node reading `in` (and `res`); returns its output value. */
static int add_node(builder *b, rn_node nd) {
    note_use(b, nd.in);
    note_use(b, nd.res);
    int c = 0, h = 0, w = 0;
    shape_of(b, nd.in, &c, &h, &w);
    switch (nd.op) {
    case RN_NODE_CONV:
        nd.shape = (rn_conv_shape){.n = 1, .cin = nd.unit->cin, .h = h, .w = w,
                                   .cout = nd.unit->cout, .kh = nd.unit->k, .kw = nd.unit->k,
                                   .stride = nd.unit->stride, .pad = nd.unit->pad,
                                   .groups = nd.unit->groups};
        if (b->filling && !conv2d_shape_init(&nd.shape)) {
            b->failed = 1;
            /* conv2d_shape_init refuses maps of more than INT_MAX pixels as well as empty
             * ones: tell them apart for the message */
            long hp = (long)h + 2L * nd.unit->pad, wp = (long)w + 2L * nd.unit->pad;
            long long pix = (long long)h * w;
            if (hp >= nd.unit->k && wp >= nd.unit->k && nd.unit->stride > 0) {
                long long o = (long long)((hp - nd.unit->k) / nd.unit->stride + 1) *
                              ((wp - nd.unit->k) / nd.unit->stride + 1);
                pix = o > pix ? o : pix;
            }
            if (pix > INT_MAX && !b->too_large) {
                b->too_large = nd.unit;
                b->too_large_pixels = pix;
            }
        }
        c = nd.unit->cout, h = nd.shape.ho, w = nd.shape.wo;
        b->convs++;
        break;
    case RN_NODE_MAXPOOL:
        h = maxpool2d_out_size(h, nd.k, nd.stride, nd.pad);
        w = maxpool2d_out_size(w, nd.k, nd.stride, nd.pad);
        break;
    case RN_NODE_AVGPOOL:
        h = w = 1;
        break;
    case RN_NODE_LINEAR:
        c = b->s->model->num_classes, h = w = 1;
        break;
    }
    nd.out = add_value(b, c, h, w);
    if (b->filling)
        b->s->nodes[b->nodes] = nd;
    b->nodes++;
    return nd.out;
}

static int conv(builder *b, rn_node_role role, int block, int index, const rn_unit *u, int in,
                int res, int relu) {
    return add_node(b, (rn_node){.op = RN_NODE_CONV, .role = role, .block = block, .index = index,
                                 .in = in, .res = res, .unit = u, .relu = relu});
}

static void build(builder *b) {
    const rn_model *m = b->s->model;
    if (b->filling)
        b->s->values[0] = (rn_value){.c = m->in_channels, .h = b->s->h, .w = b->s->w,
                                     .producer = -1, .last_use = -1};
    b->values = 1;

    /* stem: conv -> BN -> ReLU, then the max-pool if there is one */
    int cur = conv(b, RN_ROLE_STEM, -1, 0, &m->stem, 0, -1, 1);
    if (m->pool_k)
        cur = add_node(b, (rn_node){.op = RN_NODE_MAXPOOL, .role = RN_ROLE_STEM_POOL,
                                    .block = -1, .in = cur, .res = -1, .k = m->pool_k,
                                    .stride = m->pool_stride, .pad = m->pool_pad});

    /* blocks: the main units; the shortcut just before the last, which adds it */
    for (int bi = 0; bi < m->n_blocks; bi++) {
        const rn_block *blk = &m->blocks[bi];
        int in = cur, t = cur;
        for (int j = 0; j < blk->n_main; j++) {
            int res = -1;
            if (j == blk->n_main - 1)
                res = blk->has_shortcut
                          ? conv(b, RN_ROLE_SHORTCUT, bi, 0, &blk->shortcut, in, -1, 0)
                          : in;
            t = conv(b, RN_ROLE_MAIN, bi, j, &blk->main[j], t, res, 1);
        }
        cur = t;
    }

    /* head: global average pool -> linear */
    cur = add_node(b, (rn_node){.op = RN_NODE_AVGPOOL, .role = RN_ROLE_HEAD_POOL, .block = -1,
                                .in = cur, .res = -1});
    add_node(b, (rn_node){.op = RN_NODE_LINEAR, .role = RN_ROLE_HEAD_FC, .block = -1, .in = cur,
                          .res = -1});
}

rn_status rn_graph_build(const rn_model *m, int h, int w, rn_graph **out) {
    if (!m || !out || h < 1 || w < 1)
        return rn_fail(RN_ERR_ARG, "rn_graph_build: bad argument");
    *out = NULL;
    rn_graph *s = calloc(1, sizeof *s);
    if (!s)
        return rn_fail(RN_ERR_NOMEM, "out of memory building the schedule");
    s->model = m;
    s->h = h, s->w = w;
    builder b = {.s = s};
    build(&b);
    s->nodes = calloc((size_t)b.nodes, sizeof *s->nodes);
    s->values = calloc((size_t)b.values, sizeof *s->values);
    if (!s->nodes || !s->values) {
        rn_graph_free(s);
        return rn_fail(RN_ERR_NOMEM, "out of memory building the schedule");
    }
    b = (builder){.s = s, .filling = 1};
    build(&b);
    s->n_nodes = b.nodes;
    s->n_values = b.values;
    s->n_convs = b.convs;
    if (b.failed && b.too_large) {
        rn_graph_free(s);
        return rn_fail(RN_ERR_ARG, "input %dx%d is too large for %s: %s would have %lld pixels an "
                       "image, more than the %d the convolutions can index", h, w, m->arch->name,
                       b.too_large->conv_name, b.too_large_pixels, INT_MAX);
    }
    if (b.failed) {
        rn_graph_free(s);
        return rn_fail(RN_ERR_ARG, "input %dx%d is too small for %s (a layer's output would be empty)",
                       h, w, m->arch->name);
    }
    *out = s;
    return RN_OK;
}

rn_status rn_graph_check_batch(const rn_graph *sc, int n) {
    if (!sc || n < 1)
        return rn_fail(RN_ERR_ARG, "rn_graph_check_batch: bad argument");
    for (int i = 0; i < sc->n_nodes; i++) {
        const rn_node *nd = &sc->nodes[i];
        const rn_value *vi = &sc->values[nd->in], *vo = &sc->values[nd->out];
        const char *name = nd->op == RN_NODE_CONV      ? nd->unit->conv_name
                           : nd->op == RN_NODE_MAXPOOL ? sc->model->pool_name
                           : nd->op == RN_NODE_AVGPOOL ? "avgpool"
                                                       : "fc";
        long long pix = (long long)n * vi->h * vi->w, opix = (long long)n * vo->h * vo->w;
        pix = opix > pix ? opix : pix;
        long long planes = (long long)n * (vi->c > vo->c ? vi->c : vo->c);
        rn_conv_shape cs = rn_node_conv_shape(nd, n);
        if (pix > INT_MAX || planes > INT_MAX || (nd->op == RN_NODE_CONV && !conv2d_shape_init(&cs)))
            return rn_fail(RN_ERR_ARG, "batch %d at %dx%d is too large: %s would index %lld %s, "
                           "more than the %d the kernels can (use smaller batches)", n, sc->h,
                           sc->w, name, pix > INT_MAX ? pix : planes,
                           pix > INT_MAX ? "pixels (batch x map)" : "planes (batch x channels)",
                           INT_MAX);
    }
    return RN_OK;
}

void rn_graph_free(rn_graph *s) {
    if (!s)
        return;
    free(s->nodes);
    free(s->values);
    free(s);
}

int rn_graph_stage_value(const rn_graph *s, int stage) {
    if (stage == RN_STAGE_POOL)
        return rn_graph_features(s);
    int v = -1;
    for (int i = 0; i < s->n_nodes; i++) {
        const rn_node *nd = &s->nodes[i];
        if (stage == RN_STAGE_STEM ? nd->role == RN_ROLE_STEM || nd->role == RN_ROLE_STEM_POOL
                       : stage >= 1 && stage <= 4 && nd->block >= 0 &&
                             s->model->blocks[nd->block].stage == stage - 1)
            v = nd->out; /* the stage's last node: its output */
    }
    return v;
}

int rn_graph_features(const rn_graph *s) {
    for (int i = 0; i < s->n_nodes; i++)
        if (s->nodes[i].op == RN_NODE_AVGPOOL)
            return s->nodes[i].out;
    return -1;
}

/* ---- the stages, by name and shape (resnet.h) -------------------------------------------- */

const char *rn_model_stage_name(const rn_model *m, int stage) {
    if (!m || stage < 0 || stage > RN_STAGE_POOL)
        return "";
    if (stage == RN_STAGE_STEM)
        return m->pool_k ? m->pool_name : m->stem_relu_name;
    if (stage == RN_STAGE_POOL) /* d2l's AdaptiveAvgPool2d is `pool` */
        return m->arch->kind == RN_BLOCK_D2L ? "pool" : "avgpool";
    return m->stage_names[stage - 1];
}

int rn_model_stage_index(const rn_model *m, const char *name) {
    if (!m || !name)
        return -1;
    static const char *const generic[] = {"stem", "layer1", "layer2", "layer3", "layer4", "pool"};
    for (int k = 0; k <= RN_STAGE_POOL; k++)
        if (strcmp(name, generic[k]) == 0 || strcmp(name, rn_model_stage_name(m, k)) == 0)
            return k;
    /* the pooled features by torchvision's names on any architecture */
    return strcmp(name, "flatten") == 0 || strcmp(name, "avgpool") == 0 ? RN_STAGE_POOL : -1;
}

rn_status rn_model_stage_shape(const rn_model *m, int stage, int h, int w, int *c, int *oh,
                               int *ow) {
    if (!m || !c || !oh || !ow)
        return rn_fail(RN_ERR_ARG, "rn_model_stage_shape: NULL argument");
    if (stage < 0 || stage > RN_STAGE_POOL)
        return rn_fail(RN_ERR_ARG, "rn_model_stage_shape: stage %d is not one of 0..%d", stage,
                       RN_STAGE_POOL);
    rn_graph *g;
    RN_TRY(rn_graph_build(m, h, w, &g));
    const rn_value *v = &g->values[rn_graph_stage_value(g, stage)];
    *c = v->c, *oh = v->h, *ow = v->w;
    rn_graph_free(g);
    return RN_OK;
}
