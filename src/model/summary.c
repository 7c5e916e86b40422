/*
 * summary.c - the module tree with output shapes, parameters and MACs, as
 * `resnet info` prints it (in the manner of torchinfo), and the FLOP count,
 * both read off the schedule.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "model/model.h"
#include "model/graph.h"

typedef struct table {
    rn_layer_info *rows;
    int cap, count;
} table;

/* Appends a row; returns its index (or -1 when past capacity). */
static int add_row(table *t, const char *name, const char *type, int depth, int c, int h, int w,
                   int64_t params, int64_t macs, int leaf) {
    int i = t->count++;
    if (!t->rows || i >= t->cap)
        return -1;
    rn_layer_info *r = &t->rows[i];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->type, sizeof r->type, "%s", type);
    r->depth = depth;
    r->out_c = c, r->out_h = h, r->out_w = w;
    r->params = params;
    r->macs = macs;
    r->leaf = leaf;
    return i;
}

/* A container's row is written first and completed once its children are known. */
static void close_row(table *t, int row, int first_child, int c, int h, int w) {
    if (!t->rows || row < 0 || row >= t->cap)
        return;
    rn_layer_info *r = &t->rows[row];
    r->out_c = c, r->out_h = h, r->out_w = w;
    for (int i = first_child; i < t->count && i < t->cap; i++)
        if (t->rows[i].leaf) {
            r->params += t->rows[i].params;
            r->macs += t->rows[i].macs;
        }
}

/* The rows of a conv node: Conv2d, BatchNorm2d when it has one, and a ReLU
 * row named relu_name (none when NULL). */
static void unit_rows(table *t, const rn_graph *sc, const rn_node *nd, int depth,
                      const char *relu_name) {
    const rn_unit *u = nd->unit;
    const rn_value *o = &sc->values[nd->out];
    int64_t wparams = (int64_t)u->cout * (u->cin / u->groups) * u->k * u->k;
    add_row(t, u->conv_name, "Conv2d", depth, o->c, o->h, o->w,
            wparams + (u->has_bias ? u->cout : 0), wparams * o->h * o->w, 1);
    if (u->has_bn)
        add_row(t, u->bn_name, "BatchNorm2d", depth, o->c, o->h, o->w, 2 * (int64_t)u->cout, 0, 1);
    if (relu_name)
        add_row(t, relu_name, "ReLU", depth, o->c, o->h, o->w, 0, 0, 1);
}

/* The open containers while walking: the D2L top-level Sequential, the
 * stem's Sequential (D2L), a stage and a block. */
typedef struct walker {
    table *t;
    const rn_graph *sc;
    const rn_model *m;
    int d2l, top;              /* depth of the stages: 1 under D2L's "conv", else 0 */
    int stem_row, stem_first;  /* D2L's stem Sequential, or -1 */
    int stage, stage_row, stage_first;
    int block, block_row, block_first;
    const rn_node *shortcut;   /* waits until the block's main units are listed */
    const rn_node *last_main;
} walker;

static void close_block(walker *k) {
    if (k->block < 0)
        return;
    const rn_block *blk = &k->m->blocks[k->block];
    char name[RN_NAME_CAP + 16];
    if (k->shortcut) {
        const rn_value *so = &k->sc->values[k->shortcut->out];
        if (k->d2l) {
            unit_rows(k->t, k->sc, k->shortcut, k->top + 2, NULL);
        } else {
            snprintf(name, sizeof name, "%s.downsample", blk->name);
            int ds_first = k->t->count + 1;
            int ds_row = add_row(k->t, name, "Sequential", k->top + 2, 0, 0, 0, 0, 0, 0);
            unit_rows(k->t, k->sc, k->shortcut, k->top + 3, NULL);
            close_row(k->t, ds_row, ds_first, so->c, so->h, so->w);
        }
    }
    const rn_value *o = &k->sc->values[k->last_main->out];
    snprintf(name, sizeof name, "%s.relu", blk->name);
    add_row(k->t, name, "ReLU", k->top + 2, o->c, o->h, o->w, 0, 0, 1);
    close_row(k->t, k->block_row, k->block_first, o->c, o->h, o->w);
    k->block = -1;
    k->shortcut = NULL;
}

static void close_stage(walker *k) {
    close_block(k);
    if (k->stage < 0)
        return;
    const rn_value *o = &k->sc->values[k->last_main->out];
    close_row(k->t, k->stage_row, k->stage_first, o->c, o->h, o->w);
    k->stage = -1;
}

static void open_block(walker *k, int bi) {
    const rn_block *blk = &k->m->blocks[bi];
    if (k->stem_row >= 0) {
        /* the D2L stem's Sequential ends where the first block starts */
        const rn_node *first = NULL;
        for (int i = 0; i < k->sc->n_nodes && !first; i++)
            if (k->sc->nodes[i].block == bi)
                first = &k->sc->nodes[i];
        const rn_value *in = &k->sc->values[first->in];
        close_row(k->t, k->stem_row, k->stem_first, in->c, in->h, in->w);
        k->stem_row = -1;
    }
    if (blk->stage != k->stage) {
        close_stage(k);
        k->stage = blk->stage;
        k->stage_first = k->t->count + 1;
        k->stage_row = add_row(k->t, k->m->stage_names[blk->stage], "Sequential", k->top, 0, 0, 0,
                               0, 0, 0);
    }
    const char *type = k->d2l ? "Residual" : k->m->arch->kind == RN_BLOCK_BASIC ? "BasicBlock"
                                                                               : "Bottleneck";
    k->block = bi;
    k->block_first = k->t->count + 1;
    k->block_row = add_row(k->t, blk->name, type, k->top + 1, 0, 0, 0, 0, 0, 0);
}

/* Walks the schedule, listing modules in PyTorch's module-tree order. */
static void walk(const rn_graph *sc, table *t) {
    const rn_model *m = sc->model;
    walker k = {.t = t, .sc = sc, .m = m, .d2l = m->arch->kind == RN_BLOCK_D2L, .stem_row = -1,
                .stage = -1, .block = -1};
    k.top = k.d2l ? 1 : 0;
    for (int i = 0; i < sc->n_nodes; i++) {
        const rn_node *nd = &sc->nodes[i];
        const rn_value *o = &sc->values[nd->out];
        const int sd = k.d2l ? k.top + 1 : 0; /* depth of the stem's layers */
        switch (nd->role) {
        case RN_ROLE_STEM:
            if (k.d2l) {
                add_row(t, "conv", "Sequential", 0, 0, 0, 0, 0, 0, 0);
                k.stem_first = t->count;
                k.stem_row = add_row(t, m->stem_seq_name, "Sequential", k.top, 0, 0, 0, 0, 0, 0);
            }
            unit_rows(t, sc, nd, sd, m->stem_relu_name);
            break;
        case RN_ROLE_STEM_POOL:
            add_row(t, m->pool_name, "MaxPool2d", sd, o->c, o->h, o->w, 0, 0, 1);
            break;
        case RN_ROLE_MAIN:
        case RN_ROLE_SHORTCUT: {
            if (nd->block != k.block) {
                close_block(&k);
                open_block(&k, nd->block);
            }
            const rn_block *blk = &m->blocks[nd->block];
            char name[RN_NAME_CAP + 16];
            snprintf(name, sizeof name, "%s.relu", blk->name);
            if (nd->role == RN_ROLE_SHORTCUT) {
                k.shortcut = nd;
            } else {
                unit_rows(t, sc, nd, k.top + 2, nd->index < blk->n_main - 1 ? name : NULL);
                k.last_main = nd;
            }
            break;
        }
        case RN_ROLE_HEAD_POOL:
            close_stage(&k);
            if (k.d2l)
                close_row(t, 0, 1, o->c, sc->values[nd->in].h, sc->values[nd->in].w);
            add_row(t, "avgpool", "AdaptiveAvgPool2d", 0, o->c, 1, 1, 0, 0, 1);
            break;
        case RN_ROLE_HEAD_FC:
            add_row(t, "fc", "Linear", 0, o->c, 1, 1, (int64_t)o->c * m->feat + o->c,
                    (int64_t)o->c * m->feat, 1);
            break;
        }
    }
}

rn_status rn_model_summary(const rn_model *m, int h, int w, rn_layer_info *layers, int cap,
                           int *count) {
    if (!m || !count || h < 1 || w < 1)
        return rn_fail(RN_ERR_ARG, "rn_model_summary: bad argument");
    rn_graph *sc;
    RN_TRY(rn_graph_build(m, h, w, &sc));
    table t = {.rows = layers, .cap = layers ? cap : 0};
    walk(sc, &t);
    rn_graph_free(sc);
    *count = t.count;
    return RN_OK;
}

double rn_model_flops(const rn_model *m, int h, int w) {
    if (!m || h < 1 || w < 1) /* 0, leaving rn_last_error() as it was (it returns no status) */
        return 0.0;
    int count = 0;
    if (rn_model_summary(m, h, w, NULL, 0, &count) != RN_OK)
        return 0.0;
    rn_layer_info *rows = calloc((size_t)count, sizeof *rows);
    if (!rows)
        return 0.0;
    double macs = 0.0;
    if (rn_model_summary(m, h, w, rows, count, &count) == RN_OK)
        for (int i = 0; i < count; i++)
            if (rows[i].leaf)
                macs += (double)rows[i].macs;
    free(rows);
    return 2.0 * macs;
}
