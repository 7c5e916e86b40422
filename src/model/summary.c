/*
 * summary.c - the module tree with output shapes, parameters and MACs, as
 * `resnet info` prints it (in the manner of torchinfo), and the FLOP count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "model/model.h"
#include "ops/conv2d.h"
#include "ops/ops.h"

typedef struct table {
    rn_layer_info *rows;
    int cap, count;
    int failed;
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

static void add_unit(table *t, const rn_unit *u, int depth, int *h, int *w, int relu,
                     const char *relu_name) {
    rn_conv_shape s = {.n = 1, .cin = u->cin, .h = *h, .w = *w, .cout = u->cout, .kh = u->k,
                       .kw = u->k, .stride = u->stride, .pad = u->pad, .groups = u->groups};
    if (!conv2d_shape_init(&s)) {
        t->failed = 1;
        return;
    }
    int64_t wparams = (int64_t)u->cout * (u->cin / u->groups) * u->k * u->k;
    int64_t macs = wparams * s.ho * s.wo;
    add_row(t, u->conv_name, "Conv2d", depth, u->cout, s.ho, s.wo, wparams + (u->has_bias ? u->cout : 0),
            macs, 1);
    if (u->has_bn)
        add_row(t, u->bn_name, "BatchNorm2d", depth, u->cout, s.ho, s.wo, 2 * (int64_t)u->cout, 0, 1);
    if (relu)
        add_row(t, relu_name, "ReLU", depth, u->cout, s.ho, s.wo, 0, 0, 1);
    *h = s.ho, *w = s.wo;
}

static void walk(const rn_model *m, int h, int w, table *t) {
    int d2l = m->arch->kind == RN_BLOCK_D2L;
    char name[RN_NAME_CAP + 16];
    int top = 0, seq_row = -1, seq_first = 0;

    if (d2l) {
        add_row(t, "conv", "Sequential", 0, 0, 0, 0, 0, 0, 0);
        top = 1;
        seq_first = t->count;
        seq_row = add_row(t, m->stem_seq_name, "Sequential", top, 0, 0, 0, 0, 0, 0);
    }
    int sd = d2l ? top + 1 : 0;
    snprintf(name, sizeof name, "%s", d2l ? "conv.block.2" : "relu");
    add_unit(t, &m->stem, sd, &h, &w, 1, name);
    if (t->failed)
        return;
    if (m->stem_kind == RN_STEM_IMAGENET) {
        h = maxpool2d_out_size(h, 3, 2, 1), w = maxpool2d_out_size(w, 3, 2, 1);
        if (h < 1 || w < 1) {
            t->failed = 1;
            return;
        }
        add_row(t, d2l ? "conv.block.3" : "maxpool", "MaxPool2d", sd, 64, h, w, 0, 0, 1);
    }
    close_row(t, seq_row, seq_first, 64, h, w);

    const char *block_type = d2l ? "Residual" : m->arch->kind == RN_BLOCK_BASIC ? "BasicBlock" : "Bottleneck";
    int b = 0;
    for (int s = 0; s < 4; s++) {
        int stage_first = t->count + 1;
        int stage_row = add_row(t, m->stage_names[s], "Sequential", top, 0, 0, 0, 0, 0, 0);
        int c = 0;
        for (; b < m->n_blocks && m->blocks[b].stage == s; b++) {
            const rn_block *blk = &m->blocks[b];
            int block_first = t->count + 1;
            int block_row = add_row(t, blk->name, block_type, top + 1, 0, 0, 0, 0, 0, 0);
            int bh = h, bw = w;
            for (int j = 0; j < blk->n_main; j++) {
                int last = j == blk->n_main - 1;
                snprintf(name, sizeof name, "%s.relu", blk->name);
                add_unit(t, &blk->main[j], top + 2, &h, &w, !last, name);
                if (t->failed)
                    return;
            }
            if (blk->has_shortcut) {
                int sh = bh, sw = bw;
                if (d2l) {
                    add_unit(t, &blk->shortcut, top + 2, &sh, &sw, 0, NULL);
                } else {
                    snprintf(name, sizeof name, "%s.downsample", blk->name);
                    int ds_first = t->count + 1;
                    int ds_row = add_row(t, name, "Sequential", top + 2, 0, 0, 0, 0, 0, 0);
                    add_unit(t, &blk->shortcut, top + 3, &sh, &sw, 0, NULL);
                    close_row(t, ds_row, ds_first, blk->shortcut.cout, sh, sw);
                }
            }
            c = blk->main[blk->n_main - 1].cout;
            snprintf(name, sizeof name, "%s.relu", blk->name);
            add_row(t, name, "ReLU", top + 2, c, h, w, 0, 0, 1);
            close_row(t, block_row, block_first, c, h, w);
        }
        close_row(t, stage_row, stage_first, c, h, w);
    }
    if (d2l)
        close_row(t, 0, 1, m->feat, h, w);
    add_row(t, "avgpool", "AdaptiveAvgPool2d", 0, m->feat, 1, 1, 0, 0, 1);
    add_row(t, "fc", "Linear", 0, m->num_classes, 1, 1,
            (int64_t)m->num_classes * m->feat + m->num_classes, (int64_t)m->num_classes * m->feat, 1);
}

rn_status rn_model_summary(const rn_model *m, int h, int w, rn_layer_info *layers, int cap,
                           int *count) {
    if (!m || !count || h < 1 || w < 1)
        return rn_fail(RN_ERR_ARG, "rn_model_summary: bad argument");
    table t = {.rows = layers, .cap = layers ? cap : 0};
    walk(m, h, w, &t);
    if (t.failed)
        return rn_fail(RN_ERR_ARG, "input %dx%d is too small for %s (a layer's output would be empty)",
                       h, w, m->arch->name);
    *count = t.count;
    return RN_OK;
}

double rn_model_flops(const rn_model *m, int h, int w) {
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
