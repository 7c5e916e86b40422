/*
 * arch.c - building the model tables for each architecture.
 *
 * The block structure, module names and parameter tensors are produced by
 * one builder that runs twice: once to count the floats and tensors, once
 * to carve them out of the single parameter block. The names are exactly
 * PyTorch's: torchvision's for resnet18..152, and the D2L book's module
 * tree (conv.block.*, conv.resnet_block{1..4}.*, fc) for d2l_resnet18.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/status.h"
#include "model/model.h"

/* ---- the architecture table ------------------------------------------------- */

static const rn_arch_desc ARCHS[] = {
    {"d2l_resnet18", RN_BLOCK_D2L, {2, 2, 2, 2}, 1, 64},
    {"resnet18", RN_BLOCK_BASIC, {2, 2, 2, 2}, 1, 64},
    {"resnet34", RN_BLOCK_BASIC, {3, 4, 6, 3}, 1, 64},
    {"resnet50", RN_BLOCK_BOTTLENECK, {3, 4, 6, 3}, 1, 64},
    {"resnet101", RN_BLOCK_BOTTLENECK, {3, 4, 23, 3}, 1, 64},
    {"resnet152", RN_BLOCK_BOTTLENECK, {3, 8, 36, 3}, 1, 64},
    {"wide_resnet50_2", RN_BLOCK_BOTTLENECK, {3, 4, 6, 3}, 1, 128},
    {"wide_resnet101_2", RN_BLOCK_BOTTLENECK, {3, 4, 23, 3}, 1, 128},
    {"resnext50_32x4d", RN_BLOCK_BOTTLENECK, {3, 4, 6, 3}, 32, 4},
    {"resnext101_32x8d", RN_BLOCK_BOTTLENECK, {3, 4, 23, 3}, 32, 8},
};
#define N_ARCHS ((int)(sizeof ARCHS / sizeof ARCHS[0]))

int rn_arch_count(void) { return N_ARCHS; }

const char *rn_arch_name(int index) {
    return index >= 0 && index < N_ARCHS ? ARCHS[index].name : NULL;
}

const rn_arch_desc *rn_arch_find(const char *name) {
    for (int i = 0; name && i < N_ARCHS; i++)
        if (strcmp(ARCHS[i].name, name) == 0)
            return &ARCHS[i];
    return NULL;
}

const rn_arch_desc *rn_arch_guess(int (*shape_of)(const void *ctx, const char *key, int64_t dims[4]),
                                  const void *ctx) {
    int64_t d[4];
    if (shape_of(ctx, "conv.block.0.weight", d) >= 0)
        return rn_arch_find("d2l_resnet18");
    int blocks[4];
    char key[RN_NAME_CAP];
    for (int s = 0; s < 4; s++) {
        blocks[s] = 0;
        for (;;) {
            snprintf(key, sizeof key, "layer%d.%d.conv1.weight", s + 1, blocks[s]);
            if (shape_of(ctx, key, d) < 0)
                break;
            blocks[s]++;
        }
    }
    rn_block_kind kind = shape_of(ctx, "layer1.0.conv3.weight", d) >= 0 ? RN_BLOCK_BOTTLENECK : RN_BLOCK_BASIC;
    /* The first Bottleneck's 3x3 conv tells the width and the groups:
     * weight (width, width / groups, 3, 3), width = base / 64 * width_per_group * groups,
     * where base, the stem's output channels, is 64 but for narrower or wider variants. */
    int groups = 1, wpg = 64;
    int64_t base = shape_of(ctx, "conv1.weight", d) == 4 && d[0] > 0 ? d[0] : 64;
    if (kind == RN_BLOCK_BOTTLENECK && shape_of(ctx, "layer1.0.conv2.weight", d) == 4 && d[1] > 0 &&
        d[0] % d[1] == 0) {
        groups = (int)(d[0] / d[1]);
        wpg = (int)(d[0] / groups * 64 / base);
    }
    for (int i = 0; i < N_ARCHS; i++)
        if (ARCHS[i].kind == kind && memcmp(ARCHS[i].blocks, blocks, sizeof blocks) == 0 &&
            ARCHS[i].groups == groups && ARCHS[i].width_per_group == wpg)
            return &ARCHS[i];
    return NULL;
}

/* ---- the builder ------------------------------------------------------------------ */

typedef struct builder {
    rn_model *m;
    int filling;          /* 0: counting pass, 1: filling pass */
    size_t floats;        /* floats handed out so far */
    int tensors, counters;
} builder;

static float *add_f32(builder *b, const char *name, const char *suffix, int ndim,
                      const int64_t *shape, int trainable) {
    size_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= (size_t)shape[i];
    float *p = NULL;
    if (b->filling) {
        rn_tensor_ref *t = &b->m->tensors[b->tensors];
        snprintf(t->name, sizeof t->name, "%s.%s", name, suffix);
        t->ndim = ndim;
        memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
        t->numel = numel;
        t->f32 = p = b->m->params + b->floats;
        t->trainable = trainable;
    }
    b->floats += numel;
    b->tensors++;
    return p;
}

static int64_t *add_counter(builder *b, const char *name) {
    int64_t *p = NULL;
    if (b->filling) {
        rn_tensor_ref *t = &b->m->tensors[b->tensors];
        snprintf(t->name, sizeof t->name, "%s.num_batches_tracked", name);
        t->ndim = 0;
        t->numel = 1;
        t->i64 = p = b->m->counters + b->counters;
    }
    b->counters++;
    b->tensors++;
    return p;
}

/* A BatchNorm's weight or bias: trainable, marked as a norm layer's (rn_tensor_ref.norm). */
static float *add_norm_f32(builder *b, const char *name, const char *suffix, const int64_t *shape) {
    float *p = add_f32(b, name, suffix, 1, shape, 1);
    if (b->filling)
        b->m->tensors[b->tensors - 1].norm = 1;
    return p;
}

/* Sets up a conv (+ BN) unit and registers its tensors. */
static void add_unit(builder *b, rn_unit *u, const char *conv_name, const char *bn_name,
                     int cin, int cout, int k, int stride, int has_bias, int groups) {
    memset(u, 0, sizeof *u);
    snprintf(u->conv_name, sizeof u->conv_name, "%s", conv_name);
    snprintf(u->bn_name, sizeof u->bn_name, "%s", bn_name ? bn_name : "");
    u->cin = cin;
    u->cout = cout;
    u->k = k;
    u->stride = stride;
    u->pad = k / 2;
    u->groups = groups;
    u->has_bias = has_bias;
    u->has_bn = bn_name != NULL;
    int64_t wshape[4] = {cout, cin / groups, k, k}, vshape[1] = {cout};
    u->w = add_f32(b, conv_name, "weight", 4, wshape, 1);
    if (has_bias)
        u->b = add_f32(b, conv_name, "bias", 1, vshape, 1);
    if (u->has_bn) {
        u->bn_weight = add_norm_f32(b, bn_name, "weight", vshape);
        u->bn_bias = add_norm_f32(b, bn_name, "bias", vshape);
        u->bn_mean = add_f32(b, bn_name, "running_mean", 1, vshape, 0);
        u->bn_var = add_f32(b, bn_name, "running_var", 1, vshape, 0);
        u->bn_batches = add_counter(b, bn_name);
    }
}

static void build(builder *b) {
    rn_model *m = b->m;
    const rn_arch_desc *a = m->arch;
    int d2l = a->kind == RN_BLOCK_D2L;
    int expansion = a->kind == RN_BLOCK_BOTTLENECK ? 4 : 1;
    char conv[RN_NAME_CAP + 16], bn[RN_NAME_CAP + 16], sc_bn[RN_NAME_CAP + 16];

    m->expansion = expansion;
    snprintf(m->stem_seq_name, sizeof m->stem_seq_name, "%s", d2l ? "conv.block" : "");
    int cifar = m->stem_kind == RN_STEM_CIFAR;
    add_unit(b, &m->stem, d2l ? "conv.block.0" : "conv1", d2l ? "conv.block.1" : "bn1",
             m->in_channels, m->width, cifar ? 3 : 7, cifar ? 1 : 2, d2l, 1);
    m->stem.pad = cifar ? 1 : 3;
    snprintf(m->stem_relu_name, sizeof m->stem_relu_name, "%s", d2l ? "conv.block.2" : "relu");
    snprintf(m->pool_name, sizeof m->pool_name, "%s", d2l ? "conv.block.3" : "maxpool");
    /* the ImageNet stem ends with a 3x3/2 max-pool (padding 1); the CIFAR stem has none */
    m->pool_k = cifar ? 0 : 3;
    m->pool_stride = 2;
    m->pool_pad = 1;

    const int planes[4] = {m->width, 2 * m->width, 4 * m->width, 8 * m->width};
    int inplanes = m->stem.cout, bi = 0;
    for (int s = 0; s < 4; s++) {
        snprintf(m->stage_names[s], sizeof m->stage_names[s],
                 d2l ? "conv.resnet_block%d" : "layer%d", s + 1);
        for (int i = 0; i < a->blocks[s]; i++, bi++) {
            rn_block *blk = b->filling ? &m->blocks[bi] : &(rn_block){0};
            int stride = (i == 0 && s > 0) ? 2 : 1;
            int out = planes[s] * expansion;
            memset(blk, 0, sizeof *blk);
            snprintf(blk->name, sizeof blk->name, "%s.%d", m->stage_names[s], i);
            blk->stage = s;
#define NAME(buf, what) snprintf(buf, sizeof buf, "%s." what, blk->name)
            if (a->kind == RN_BLOCK_BOTTLENECK) {
                /* torchvision: width = planes * (width_per_group / 64) * groups
                 * (a whole number of channels per group: rn_model_create_zero checks) */
                int width = planes[s] * a->width_per_group / 64 * a->groups;
                blk->n_main = 3;
                NAME(conv, "conv1"), NAME(bn, "bn1");
                add_unit(b, &blk->main[0], conv, bn, inplanes, width, 1, 1, 0, 1);
                NAME(conv, "conv2"), NAME(bn, "bn2");
                add_unit(b, &blk->main[1], conv, bn, width, width, 3, stride, 0, a->groups);
                NAME(conv, "conv3"), NAME(bn, "bn3");
                add_unit(b, &blk->main[2], conv, bn, width, out, 1, 1, 0, 1);
            } else {
                blk->n_main = 2;
                NAME(conv, "conv1"), NAME(bn, "bn1");
                add_unit(b, &blk->main[0], conv, bn, inplanes, out, 3, stride, d2l, 1);
                NAME(conv, "conv2"), NAME(bn, "bn2");
                add_unit(b, &blk->main[1], conv, bn, out, out, 3, 1, d2l, 1);
            }
            /* D2L: a 1x1 conv (with bias, no BN) opens every stage but the first.
             * torchvision: downsample = 1x1 conv + BN whenever the shape changes. */
            blk->has_shortcut = d2l ? (s > 0 && i == 0) : (stride != 1 || inplanes != out);
            if (blk->has_shortcut) {
                if (d2l) {
                    NAME(conv, "conv3");
                    add_unit(b, &blk->shortcut, conv, NULL, inplanes, out, 1, stride, 1, 1);
                } else {
                    NAME(conv, "downsample.0"), NAME(sc_bn, "downsample.1");
                    add_unit(b, &blk->shortcut, conv, sc_bn, inplanes, out, 1, stride, 0, 1);
                }
            }
#undef NAME
            inplanes = out;
        }
    }
    m->n_blocks = bi;
    m->feat = planes[3] * expansion;
    int64_t fw[2] = {m->num_classes, m->feat}, fb[1] = {m->num_classes};
    m->fc_w = add_f32(b, "fc", "weight", 2, fw, 1);
    m->fc_b = add_f32(b, "fc", "bias", 1, fb, 1);
}

/* ---- creation ----------------------------------------------------------------------- */

rn_status rn_model_create(const char *arch, int in_channels, int num_classes, rn_model **out) {
    return rn_model_create_stem(arch, in_channels, num_classes, RN_STEM_IMAGENET, out);
}

rn_stem rn_model_stem(const rn_model *m) { return m ? m->stem_kind : RN_STEM_IMAGENET; }
int rn_model_width(const rn_model *m) { return m ? m->width : 0; }

rn_status rn_model_create_stem(const char *arch, int in_channels, int num_classes, rn_stem stem,
                               rn_model **out) {
    return rn_model_create_width(arch, in_channels, num_classes, stem, RN_DEFAULT_WIDTH, out);
}

rn_status rn_model_create_width(const char *arch, int in_channels, int num_classes, rn_stem stem, int width,
                                rn_model **out) {
    RN_TRY(rn_model_create_zero(arch, in_channels, num_classes, stem, width, out));
    rn_model_init_default(*out, 0);
    return RN_OK;
}

rn_status rn_model_create_zero(const char *arch, int in_channels, int num_classes, rn_stem stem, int width,
                               rn_model **out) {
    if (!out)
        return rn_fail(RN_ERR_ARG, "rn_model_create: out is NULL");
    *out = NULL;
    const rn_arch_desc *a = rn_arch_find(arch);
    if (!a)
        return rn_fail(RN_ERR_ARG, "unknown architecture '%s' (expected one of d2l_resnet18, resnet18, "
                       "resnet34, resnet50, resnet101, resnet152, wide_resnet50_2, wide_resnet101_2, "
                       "resnext50_32x4d, resnext101_32x8d)", arch ? arch : "(null)");
    if (in_channels < 1 || in_channels > 4096)
        return rn_fail(RN_ERR_ARG, "in_channels %d out of range 1..4096", in_channels);
    if (num_classes < 1 || num_classes > 1000000)
        return rn_fail(RN_ERR_ARG, "num_classes %d out of range 1..1000000", num_classes);
    if (stem != RN_STEM_IMAGENET && stem != RN_STEM_CIFAR)
        return rn_fail(RN_ERR_ARG, "unknown stem %d", (int)stem);
    if (width < 1 || width > 4096)
        return rn_fail(RN_ERR_ARG, "width %d out of range 1..4096", width);
    /* a Bottleneck's 3x3 conv has width * width_per_group / 64 channels per group */
    if (a->kind == RN_BLOCK_BOTTLENECK && (width * a->width_per_group) % 64 != 0)
        return rn_fail(RN_ERR_ARG, "%s: width %d gives a fractional number of channels per group "
                       "(width x %d must be a multiple of 64)", a->name, width, a->width_per_group);

    rn_model *m = calloc(1, sizeof *m);
    if (!m)
        return rn_fail(RN_ERR_NOMEM, "out of memory creating %s", arch);
    m->arch = a;
    m->in_channels = in_channels;
    m->num_classes = num_classes;
    m->stem_kind = stem;
    m->width = width;

    builder b = {.m = m};
    build(&b);
    m->n_params = b.floats;
    m->n_tensors = b.tensors;
    m->params = rn_calloc(b.floats, sizeof(float));
    m->counters = rn_calloc((size_t)b.counters, sizeof(int64_t));
    m->tensors = calloc((size_t)b.tensors, sizeof *m->tensors);
    m->blocks = calloc((size_t)m->n_blocks, sizeof *m->blocks);
    if (!m->params || !m->counters || !m->tensors || !m->blocks) {
        rn_model_free(m);
        return rn_fail(RN_ERR_NOMEM, "out of memory creating %s", arch);
    }
    b = (builder){.m = m, .filling = 1};
    build(&b);
    *out = m;
    return RN_OK;
}

void rn_model_free(rn_model *m) {
    if (!m)
        return;
    rn_free(m->params);
    rn_free(m->counters);
    free(m->q_block);
    free(m->tensors);
    free(m->blocks);
    free(m);
}

void rn_model_params_changed(rn_model *m) { m->generation++; }

/* The accessors of a NULL model (a load that failed) give "" and 0, as rn_dataset_count's. */
const char *rn_model_arch(const rn_model *m) { return m ? m->arch->name : ""; }
int rn_model_in_channels(const rn_model *m) { return m ? m->in_channels : 0; }
int rn_model_num_classes(const rn_model *m) { return m ? m->num_classes : 0; }
int rn_model_feature_dim(const rn_model *m) { return m ? m->feat : 0; }

int64_t rn_model_param_count(const rn_model *m) {
    int64_t n = 0;
    for (int i = 0; m && i < m->n_tensors; i++)
        if (m->tensors[i].trainable)
            n += (int64_t)m->tensors[i].numel;
    return n;
}
