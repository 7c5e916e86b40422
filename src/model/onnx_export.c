/*
 * onnx_export.c - a model as an ONNX graph (rn_model_export_onnx, contract
 * in resnet.h).
 *
 * The graph is the network schedule (graph.h) written node by node: each
 * CONV unit becomes Conv [-> BatchNormalization] [-> Add] [-> Relu], then
 * MaxPool, GlobalAveragePool, Flatten and Gemm. ONNX nodes and initializers
 * are named after the PyTorch modules and state_dict keys ("layer1.0.conv1",
 * "layer1.0.bn1.running_mean"), so a reader of the graph finds its way.
 * Every operator used means the same from opset 13 to 17 (BatchNormalization
 * in inference form, one output), so the opset only changes the version
 * numbers in the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "io/onnx.h"
#include "model/graph.h"
#include "model/model.h"
#include "ops/ops.h"

#define NAME_LEN (RN_NAME_CAP + 32)

typedef struct exporter {
    onnx_writer w;
    const rn_model *m;
    const rn_graph *g;
    int fold;
    char (*names)[NAME_LEN];     /* (g->n_values): the ONNX name of each value */
} exporter;

void rn_onnx_options_default(rn_onnx_options *opt) {
    if (!opt)
        return;
    memset(opt, 0, sizeof *opt);
    opt->opset = 17;
}

/* ---------------------------------------------------------------------------
 * Initializers
 * ------------------------------------------------------------------------- */

static void vector_init(exporter *e, const char *module, const char *what, int n, const float *v) {
    char name[NAME_LEN + 16];
    snprintf(name, sizeof name, "%s.%s", module, what);
    int64_t d[1] = {n};
    onnx_w_initializer(&e->w, name, d, 1, v);
}

/* The unit's weight (and bias) as Conv inputs; with folding, BatchNorm
 * folded in: w' = w * s, b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps),
 * as PyTorch's fuse_conv_bn_eval computes it. Returns the number of inputs
 * written to in[1..], or -1 when out of memory. */
static int conv_weights(exporter *e, const rn_unit *u, char wname[], char bname[]) {
    size_t per_out = (size_t)(u->cin / u->groups) * (size_t)u->k * (size_t)u->k;
    int64_t wd[4] = {u->cout, u->cin / u->groups, u->k, u->k};
    snprintf(wname, NAME_LEN, "%s.weight", u->conv_name);
    snprintf(bname, NAME_LEN, "%s.bias", u->conv_name);
    if (!e->fold || !u->has_bn) {
        onnx_w_initializer(&e->w, wname, wd, 4, u->w);
        if (u->has_bias)
            vector_init(e, u->conv_name, "bias", u->cout, u->b);
        return u->has_bias ? 2 : 1;
    }
    float *fw = malloc(per_out * (size_t)u->cout * sizeof *fw), *fb = malloc((size_t)u->cout * sizeof *fb);
    float *scale = malloc((size_t)u->cout * sizeof *scale);
    if (!fw || !fb || !scale) {
        free(fw), free(fb), free(scale);
        return -1;
    }
    batchnorm_scale_shift(u->cout, u->bn_weight, u->bn_bias, u->bn_mean, u->bn_var, RN_BN_EPS, scale, fb);
    for (int co = 0; co < u->cout; co++) {
        if (u->b)
            fb[co] += u->b[co] * scale[co];
        for (size_t i = 0; i < per_out; i++)
            fw[(size_t)co * per_out + i] = u->w[(size_t)co * per_out + i] * scale[co];
    }
    onnx_w_initializer(&e->w, wname, wd, 4, fw);
    vector_init(e, u->conv_name, "bias", u->cout, fb);
    free(fw), free(fb), free(scale);
    return 2;
}

/* ---------------------------------------------------------------------------
 * Nodes
 * ------------------------------------------------------------------------- */

#define INTS(attr, arr) {attr, ONNX_ATTR_INTS, 0, 0, arr, sizeof arr / sizeof arr[0]}

static rn_status conv_node(exporter *e, const rn_node *nd) {
    const rn_unit *u = nd->unit;
    const rn_model *m = e->m;
    char wname[NAME_LEN], bname[NAME_LEN], cur[NAME_LEN];
    int n_w = conv_weights(e, u, wname, bname);
    if (n_w < 0)
        return rn_fail(RN_ERR_NOMEM, "out of memory folding %s", u->conv_name);
    const char *in[3] = {e->names[nd->in], wname, bname};
    const int64_t k[2] = {u->k, u->k}, s[2] = {u->stride, u->stride}, dil[2] = {1, 1};
    const int64_t pads[4] = {u->pad, u->pad, u->pad, u->pad};
    const onnx_wattr attrs[] = {INTS("dilations", dil), {"group", ONNX_ATTR_INT, u->groups, 0, NULL, 0},
                                INTS("kernel_shape", k), INTS("pads", pads), INTS("strides", s)};
    onnx_w_node(&e->w, "Conv", u->conv_name, in, 1 + (size_t)n_w, u->conv_name, attrs, 5);
    snprintf(cur, sizeof cur, "%s", u->conv_name);

    if (u->has_bn && !e->fold) {
        vector_init(e, u->bn_name, "weight", u->cout, u->bn_weight);
        vector_init(e, u->bn_name, "bias", u->cout, u->bn_bias);
        vector_init(e, u->bn_name, "running_mean", u->cout, u->bn_mean);
        vector_init(e, u->bn_name, "running_var", u->cout, u->bn_var);
        char p[4][NAME_LEN + 16];
        const char *bn_in[5] = {cur, p[0], p[1], p[2], p[3]};
        static const char *suffix[4] = {"weight", "bias", "running_mean", "running_var"};
        for (int i = 0; i < 4; i++)
            snprintf(p[i], sizeof p[i], "%s.%s", u->bn_name, suffix[i]);
        const onnx_wattr bn_attrs[] = {{"epsilon", ONNX_ATTR_FLOAT, 0, RN_BN_EPS, NULL, 0},
                                       {"momentum", ONNX_ATTR_FLOAT, 0, 0.9f, NULL, 0}};
        onnx_w_node(&e->w, "BatchNormalization", u->bn_name, bn_in, 5, u->bn_name, bn_attrs, 2);
        snprintf(cur, sizeof cur, "%s", u->bn_name);
    }
    const char *block = nd->block >= 0 ? m->blocks[nd->block].name : "";
    char name[NAME_LEN];
    if (nd->res >= 0) {
        snprintf(name, sizeof name, "%s.add", block);
        const char *add_in[2] = {cur, e->names[nd->res]};
        onnx_w_node(&e->w, "Add", name, add_in, 2, name, NULL, 0);
        snprintf(cur, sizeof cur, "%s", name);
    }
    if (nd->relu) {
        if (nd->role == RN_ROLE_STEM)
            snprintf(name, sizeof name, "%s", m->stem_relu_name);
        else if (nd->res >= 0)
            snprintf(name, sizeof name, "%s.relu", block);
        else
            snprintf(name, sizeof name, "%s.relu", u->has_bn && !e->fold ? u->bn_name : u->conv_name);
        const char *relu_in[1] = {cur};
        onnx_w_node(&e->w, "Relu", name, relu_in, 1, name, NULL, 0);
        snprintf(cur, sizeof cur, "%s", name);
    }
    snprintf(e->names[nd->out], NAME_LEN, "%s", cur);
    return RN_OK;
}

static rn_status write_node(exporter *e, const rn_node *nd) {
    const rn_model *m = e->m;
    const char *in[3] = {e->names[nd->in]};
    char *out = e->names[nd->out];
    switch (nd->op) {
    case RN_NODE_CONV:
        return conv_node(e, nd);
    case RN_NODE_MAXPOOL: {
        const int64_t k[2] = {nd->k, nd->k}, s[2] = {nd->stride, nd->stride};
        const int64_t pads[4] = {nd->pad, nd->pad, nd->pad, nd->pad};
        const onnx_wattr attrs[] = {{"ceil_mode", ONNX_ATTR_INT, 0, 0, NULL, 0}, INTS("kernel_shape", k),
                                    INTS("pads", pads), INTS("strides", s)};
        snprintf(out, NAME_LEN, "%s", m->pool_name);
        onnx_w_node(&e->w, "MaxPool", out, in, 1, out, attrs, 4);
        return RN_OK;
    }
    case RN_NODE_AVGPOOL:
        snprintf(out, NAME_LEN, "avgpool");
        onnx_w_node(&e->w, "GlobalAveragePool", out, in, 1, out, NULL, 0);
        return RN_OK;
    case RN_NODE_LINEAR: {
        const onnx_wattr flat[] = {{"axis", ONNX_ATTR_INT, 1, 0, NULL, 0}};
        onnx_w_node(&e->w, "Flatten", "flatten", in, 1, "flatten", flat, 1);
        int64_t wd[2] = {m->num_classes, m->feat};
        onnx_w_initializer(&e->w, "fc.weight", wd, 2, m->fc_w);
        vector_init(e, "fc", "bias", m->num_classes, m->fc_b);
        const char *gin[3] = {"flatten", "fc.weight", "fc.bias"};
        const onnx_wattr gemm[] = {{"alpha", ONNX_ATTR_FLOAT, 0, 1.0f, NULL, 0},
                                   {"beta", ONNX_ATTR_FLOAT, 0, 1.0f, NULL, 0},
                                   {"transB", ONNX_ATTR_INT, 1, 0, NULL, 0}};
        snprintf(out, NAME_LEN, "logits");
        onnx_w_node(&e->w, "Gemm", "fc", gin, 3, out, gemm, 3);
        return RN_OK;
    }
    }
    return rn_fail(RN_ERR_ARG, "unknown node %d in the schedule", (int)nd->op);
}

/* ---------------------------------------------------------------------------
 * The model
 * ------------------------------------------------------------------------- */

/* The keys the exporter writes itself; metadata passed in under these names is dropped. */
static const char *const OWN_KEYS[] = {"arch", "stem", "in_channels", "num_classes", "image_size"};

static void write_meta(exporter *e, const rn_onnx_options *o, int h, int w) {
    const rn_model *m = e->m;
    char in_ch[16], classes[16], size[32];
    snprintf(in_ch, sizeof in_ch, "%d", m->in_channels);
    snprintf(classes, sizeof classes, "%d", m->num_classes);
    snprintf(size, sizeof size, "%d", h);
    onnx_w_meta(&e->w, "arch", m->arch->name);
    onnx_w_meta(&e->w, "stem", m->stem_kind == RN_STEM_CIFAR ? "cifar" : "imagenet");
    onnx_w_meta(&e->w, "in_channels", in_ch);
    onnx_w_meta(&e->w, "num_classes", classes);
    if (h == w)
        onnx_w_meta(&e->w, "image_size", size);
    for (int i = 0; i < o->meta_count; i++) {
        int own = 0;
        for (size_t k = 0; k < sizeof OWN_KEYS / sizeof OWN_KEYS[0]; k++)
            own |= strcmp(o->meta_keys[i], OWN_KEYS[k]) == 0;
        if (!own)
            onnx_w_meta(&e->w, o->meta_keys[i], o->meta_values[i]);
    }
}

rn_status rn_model_export_onnx(const rn_model *m, const char *path, const rn_onnx_options *opt) {
    rn_onnx_options o;
    if (opt)
        o = *opt;
    else
        rn_onnx_options_default(&o);
    if (!m || !path)
        return rn_fail(RN_ERR_ARG, "rn_model_export_onnx: NULL argument");
    if (m->quantized)
        return rn_fail(RN_ERR_UNSUPPORTED, "ONNX export of an int8 model is not supported: export "
                       "the float32 weights it was quantized from");
    if (o.opset < 13 || o.opset > 17)
        return rn_fail(RN_ERR_ARG, "ONNX opset %d: the exporter writes opsets 13 to 17", o.opset);
    if (o.batch < 0 || o.batch > 1000000)
        return rn_fail(RN_ERR_ARG, "ONNX batch %d out of range 0 (dynamic)..1000000", o.batch);
    if (o.meta_count < 0 || (o.meta_count > 0 && (!o.meta_keys || !o.meta_values)))
        return rn_fail(RN_ERR_ARG, "rn_model_export_onnx: bad metadata");
    for (int i = 0; i < o.meta_count; i++)
        if (!o.meta_keys[i] || !o.meta_values[i])
            return rn_fail(RN_ERR_ARG, "%s: metadata entry %d has a NULL %s", path, i,
                           o.meta_keys[i] ? "value" : "key");
    int dflt = m->stem_kind == RN_STEM_CIFAR ? 32 : 224;
    int h = o.height > 0 ? o.height : dflt, w = o.width > 0 ? o.width : dflt;
    if (o.height < 0 || o.width < 0 || h > 65536 || w > 65536)
        return rn_fail(RN_ERR_ARG, "ONNX input height %d, width %d: each 0 (the stem's %d) or 1..65536",
                       o.height, o.width, dflt);

    exporter e = {.m = m, .fold = o.fold_bn != 0};
    rn_graph *g;
    RN_TRY(rn_graph_build(m, h, w, &g));
    e.g = g;
    e.names = calloc((size_t)g->n_values, sizeof *e.names);
    if (!e.names) {
        rn_graph_free(g);
        return rn_fail(RN_ERR_NOMEM, "out of memory exporting %s", path);
    }
    snprintf(e.names[0], NAME_LEN, "input");

    onnx_w_begin(&e.w, o.opset >= 15 ? 8 : 7, o.opset, "resnet.c", RN_VERSION);
    const int64_t in_dims[4] = {o.batch ? o.batch : -1, m->in_channels, h, w};
    const int64_t out_dims[2] = {o.batch ? o.batch : -1, m->num_classes};
    const char *params[4] = {"batch", NULL, NULL, NULL};
    onnx_w_value_info(&e.w, 0, "input", in_dims, params, 4);
    rn_status st = RN_OK;
    for (int i = 0; i < g->n_nodes && st == RN_OK; i++)
        st = write_node(&e, &g->nodes[i]);
    onnx_w_value_info(&e.w, 1, "logits", out_dims, params, 2);
    char doc[160];
    snprintf(doc, sizeof doc, "%s exported by resnet.c %s (BatchNorm %s)", m->arch->name, RN_VERSION,
             e.fold ? "folded into the convolutions" : "kept");
    onnx_w_graph_end(&e.w, m->arch->name, doc);
    write_meta(&e, &o, h, w);
    free(e.names);
    rn_graph_free(g);
    if (st != RN_OK) {
        onnx_w_free(&e.w);
        return st;
    }
    return onnx_w_finish(&e.w, path);
}
