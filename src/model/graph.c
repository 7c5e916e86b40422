/*
 * graph.c - building the network schedule (the node list) from the
 * architecture tables (contract in graph.h).
 *
 * One builder runs twice, as arch.c's does: a counting pass (no arrays),
 * then a filling pass. Shapes are worked out as the nodes are added, so a
 * too-small input is found here, once, for every walker.
 */
#include "model/graph.h"

#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "ops/ops.h"

typedef struct builder {
    rn_graph *s;
    int filling;
    int nodes, values, convs;
    int failed;
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
        if (b->filling && !conv2d_shape_init(&nd.shape))
            b->failed = 1;
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
    if (b.failed) {
        rn_graph_free(s);
        return rn_fail(RN_ERR_ARG, "input %dx%d is too small for %s (a layer's output would be empty)",
                       h, w, m->arch->name);
    }
    *out = s;
    return RN_OK;
}

void rn_graph_free(rn_graph *s) {
    if (!s)
        return;
    free(s->nodes);
    free(s->values);
    free(s);
}

int rn_graph_features(const rn_graph *s) {
    for (int i = 0; i < s->n_nodes; i++)
        if (s->nodes[i].op == RN_NODE_AVGPOOL)
            return s->nodes[i].out;
    return -1;
}
