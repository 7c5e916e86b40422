/*
 * onnx_import.c - an ONNX ResNet as a state_dict (contract in onnx_import.h;
 * what fits is described at rn_model_load in resnet.h).
 *
 * The ONNX graph is matched to an architecture by its structure, never by
 * its names: the network schedule of a candidate model (graph.h) is walked
 * node by node, and each node looks for its ONNX counterpart among the
 * readers of the ONNX tensor its input maps to:
 *
 *   CONV     Conv (attributes and weight shape as the unit's) [-> BatchNormalization]
 *            [-> Add with the tensor of the residual] [-> Relu]
 *   MAXPOOL  MaxPool with the same window
 *   AVGPOOL  GlobalAveragePool (or ReduceMean over axes 2, 3)
 *   LINEAR   Flatten(axis 1) -> Gemm, whose output is the graph's output
 *
 * A unit without a ReLU must not be followed by one: that tells a
 * projection shortcut from a main-path conv of the same shape (ResNeXt-101's
 * first block). Every ONNX node must be used; the first that is not, or
 * the first that does not fit, is named in the error. Candidates are tried
 * in turn (the metadata's architecture first, the D2L ResNet, which a folded
 * graph cannot tell from resnet18, last); the first that fits wins.
 *
 * The matching itself is onnx_match.c; this file picks the candidates, and
 * fills the model's tensors from the match that fits.
 */
#include "model/onnx_import.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/status.h"
#include "io/onnx.h"
#include "model/graph.h"
#include "model/onnx_match.h"
#include "ops/ops.h"

/* ---------------------------------------------------------------------------
 * From a match to the model's tensors
 * ------------------------------------------------------------------------- */

static rn_status fill_unit(const match *mt, rn_unit *u, const unit_found *f) {
    RN_TRY(onnx_tensor_floats(f->w, mt->what, u->w));
    float *bias = u->b ? u->b : u->has_bn ? u->bn_bias : NULL;
    if (bias) {
        if (f->b)
            RN_TRY(onnx_tensor_floats(f->b, mt->what, bias));
        else
            memset(bias, 0, (size_t)u->cout * sizeof *bias);
    }
    if (!u->has_bn)
        return RN_OK;
    *u->bn_batches = 0;
    if (!f->bn[0]) { /* folded: an identity BatchNorm; its bias holds the conv's if the conv has none */
        for (int c = 0; c < u->cout; c++) {
            u->bn_weight[c] = 1.0f;
            u->bn_mean[c] = 0.0f;
            u->bn_var[c] = 1.0f - RN_BN_EPS;
            if (u->b)
                u->bn_bias[c] = 0.0f;
        }
        return RN_OK;
    }
    RN_TRY(onnx_tensor_floats(f->bn[0], mt->what, u->bn_weight));
    RN_TRY(onnx_tensor_floats(f->bn[1], mt->what, u->bn_bias));
    RN_TRY(onnx_tensor_floats(f->bn[2], mt->what, u->bn_mean));
    RN_TRY(onnx_tensor_floats(f->bn[3], mt->what, u->bn_var));
    if (f->eps != RN_BN_EPS) /* keep var + eps, which is what the normalisation uses */
        for (int c = 0; c < u->cout; c++)
            u->bn_var[c] += f->eps - RN_BN_EPS;
    return RN_OK;
}

static rn_status fill_model(const match *mt, rn_model *m) {
    for (int i = 0; i < mt->g->n_nodes; i++)
        if (mt->g->nodes[i].op == RN_NODE_CONV)
            RN_TRY(fill_unit(mt, (rn_unit *)mt->g->nodes[i].unit, &mt->units[i]));
    size_t K = (size_t)m->num_classes, F = (size_t)m->feat;
    float *w = rn_alloc(K * F * sizeof *w);
    if (!w)
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory reading the classifier", mt->what);
    rn_status st = onnx_tensor_floats(mt->fc_w, mt->what, w);
    for (size_t k = 0; st == RN_OK && k < K; k++)
        for (size_t j = 0; j < F; j++)
            m->fc_w[k * F + j] = mt->alpha * (mt->fc_trans ? w[j * K + k] : w[k * F + j]);
    free(w);
    RN_TRY(st);
    if (mt->fc_b) {
        RN_TRY(onnx_tensor_floats(mt->fc_b, mt->what, m->fc_b));
        for (size_t k = 0; k < K; k++)
            m->fc_b[k] *= mt->beta;
    }
    return RN_OK;
}

/* The model's state_dict and the ONNX metadata (with "arch" set) as an st_file. */
static rn_status to_st_file(const rn_model *m, const onnx_model *om, const char *what, st_file *f) {
    memset(f, 0, sizeof *f);
    f->tensors = calloc((size_t)m->n_tensors, sizeof *f->tensors);
    f->meta = calloc(om->n_meta + 1, sizeof *f->meta);
    if (!f->tensors || !f->meta) {
        st_free(f);
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory", what);
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const rn_tensor_ref *t = &m->tensors[i];
        st_tensor *s = &f->tensors[f->count++];
        s->name = strdup(t->name);
        s->dtype = t->i64 ? ST_I64 : ST_F32;
        s->ndim = t->ndim;
        memcpy(s->shape, t->shape, sizeof t->shape);
        s->numel = t->numel;
        if (t->i64 && (s->i64 = malloc(sizeof *s->i64)))
            *s->i64 = *t->i64;
        if (t->f32 && (s->f32 = rn_alloc(t->numel * sizeof *s->f32)))
            memcpy(s->f32, t->f32, t->numel * sizeof *s->f32);
        if (!s->name || (t->i64 && !s->i64) || (t->f32 && !s->f32)) {
            st_free(f);
            return rn_fail(RN_ERR_NOMEM, "%s: out of memory", what);
        }
    }
    f->meta[f->meta_count++] = (st_meta){strdup("arch"), strdup(m->arch->name)};
    for (size_t i = 0; i < om->n_meta; i++)
        if (strcmp(om->meta[i].key, "arch") != 0)
            f->meta[f->meta_count++] = (st_meta){strdup(om->meta[i].key), strdup(om->meta[i].value)};
    for (size_t i = 0; i < f->meta_count; i++)
        if (!f->meta[i].key || !f->meta[i].value) {
            st_free(f);
            return rn_fail(RN_ERR_NOMEM, "%s: out of memory", what);
        }
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Candidates
 * ------------------------------------------------------------------------- */

/* How a node is named in messages: 'name' (Op), or #i (Op, output 'x'). */
static void node_desc(const onnx_model *om, long i, char *buf, size_t cap) {
    const onnx_node *n = &om->nodes[i];
    if (n->name[0])
        snprintf(buf, cap, "'%s' (%s)", n->name, n->op_type);
    else
        snprintf(buf, cap, "#%ld (%s, output '%s')", i, n->op_type, n->n_outputs ? n->outputs[0] : "");
}

typedef struct attempt {
    int done;                    /* schedule nodes matched by the best candidate */
    char msg[700];               /* its failure */
} attempt;

/* Matches candidate `arch`; on success fills *f. Returns RN_OK, or
 * RN_ERR_MISMATCH with best updated when the graph does not fit. */
static rn_status try_arch(const onnx_index *ix, const char *what, const char *arch, const char *input,
                          int in_channels, int classes, rn_stem stem, int width, st_file *f, attempt *best) {
    rn_model *m = NULL;
    rn_graph *g = NULL;
    rn_status made = rn_model_create_zero(arch, in_channels, classes, stem, width, &m);
    if (made == RN_ERR_ARG && rn_arch_find(arch)) { /* a width this architecture cannot have */
        if (best->done == 0)
            snprintf(best->msg, sizeof best->msg, "%s", rn_last_error());
        return RN_ERR_MISMATCH;
    }
    RN_TRY(made);
    rn_status st = rn_graph_build(m, 224, 224, &g);
    match mt = {.ix = ix, .m = m, .g = g, .what = what, .blame = -1};
    if (st == RN_OK) {
        mt.vname = calloc((size_t)g->n_values, sizeof *mt.vname);
        mt.used = calloc(ix->om->n_nodes + 1, 1);
        mt.units = calloc((size_t)g->n_nodes, sizeof *mt.units);
        if (!mt.vname || !mt.used || !mt.units)
            st = rn_fail(RN_ERR_NOMEM, "%s: out of memory matching the ONNX graph", what);
    }
    if (st == RN_OK && onnx_match_all(&mt, input)) {
        st = fill_model(&mt, m);
        if (st == RN_OK)
            st = to_st_file(m, ix->om, what, f);
    } else if (st == RN_OK) {
        st = RN_ERR_MISMATCH;
        if (mt.done >= best->done) {
            char node[300] = "";
            if (mt.blame >= 0)
                node_desc(ix->om, mt.blame, node, sizeof node);
            best->done = mt.done + 1;
            if (mt.blame >= 0)
                snprintf(best->msg, sizeof best->msg, "ONNX node %s does not fit %s: %s", node, arch, mt.why);
            else
                snprintf(best->msg, sizeof best->msg, "the ONNX graph does not fit %s: %s", arch, mt.why);
        }
    }
    free(mt.vname), free(mt.used), free(mt.units);
    rn_graph_free(g);
    rn_model_free(m);
    return st;
}

/* The attributes the matcher reads, each of the type ONNX defines for it: an attribute of
 * another type (epsilon stored as an INT) had been read as its unset field (eps 0). An
 * attribute without a type (files of the first IR versions) is taken as what it holds. */
static rn_status check_attr_types(const onnx_model *om, const char *what) {
    static const struct {
        const char *name;
        int type;
    } known[] = {
        {"epsilon", ONNX_ATTR_FLOAT},     {"momentum", ONNX_ATTR_FLOAT},
        {"alpha", ONNX_ATTR_FLOAT},       {"beta", ONNX_ATTR_FLOAT},
        {"transA", ONNX_ATTR_INT},        {"transB", ONNX_ATTR_INT},
        {"axis", ONNX_ATTR_INT},          {"group", ONNX_ATTR_INT},
        {"ceil_mode", ONNX_ATTR_INT},     {"training_mode", ONNX_ATTR_INT},
        {"keepdims", ONNX_ATTR_INT},      {"count_include_pad", ONNX_ATTR_INT},
        {"storage_order", ONNX_ATTR_INT}, {"kernel_shape", ONNX_ATTR_INTS},
        {"strides", ONNX_ATTR_INTS},      {"pads", ONNX_ATTR_INTS},
        {"dilations", ONNX_ATTR_INTS},    {"axes", ONNX_ATTR_INTS},
        {"auto_pad", ONNX_ATTR_STRING},
    };
    static const char *const type_name[] = {"UNDEFINED", "FLOAT", "INT", "STRING", "TENSOR",
                                            "GRAPH", "FLOATS", "INTS", "STRINGS"};
    for (size_t i = 0; i < om->n_nodes; i++) {
        const onnx_node *n = &om->nodes[i];
        for (size_t a = 0; a < n->n_attrs; a++) {
            const onnx_attr *at = &n->attrs[a];
            for (size_t k = 0; at->type != 0 && k < sizeof known / sizeof known[0]; k++) {
                if (strcmp(at->name, known[k].name) != 0 || at->type == known[k].type)
                    continue;
                char node[300];
                node_desc(om, (long)i, node, sizeof node);
                const int t = at->type;
                return rn_fail(RN_ERR_FORMAT, "%s: ONNX node %s: attribute '%s' is of type %s%s%d%s, "
                               "where ONNX defines it as %s", what, node, at->name,
                               t >= 0 && t <= 8 ? type_name[t] : "", t >= 0 && t <= 8 ? " (" : "", t,
                               t >= 0 && t <= 8 ? ")" : "", type_name[known[k].type]);
            }
        }
    }
    return RN_OK;
}

/* The network input: the one graph input that is no initializer. */
static rn_status network_input(const onnx_index *ix, const char *what, const char **input) {
    const onnx_model *om = ix->om;
    *input = NULL;
    for (size_t i = 0; i < om->n_inputs; i++) {
        if (onnx_index_find(ix->inits, ix->n_inits, om->inputs[i].name))
            continue;
        if (*input)
            return rn_fail(RN_ERR_MISMATCH, "%s: the ONNX graph has more than one input ('%s', '%s'); "
                           "a ResNet has one, the images", what, *input, om->inputs[i].name);
        *input = om->inputs[i].name;
    }
    if (!*input)
        return rn_fail(RN_ERR_MISMATCH, "%s: the ONNX graph has no input", what);
    return RN_OK;
}

rn_status rn_onnx_import(const unsigned char *buf, size_t len, const char *what, const char *arch,
                         st_file *out) {
    memset(out, 0, sizeof *out);
    onnx_model om;
    RN_TRY(onnx_read(buf, len, what, &om));
    onnx_index ix;
    rn_status st = onnx_index_build(&om, what, &ix);
    if (st != RN_OK) {
        onnx_free(&om);
        return st;
    }
    const char *input = NULL;
    if (om.n_sparse) /* the weights they hold would be found missing, under another name */
        st = rn_fail(RN_ERR_UNSUPPORTED, "%s: the graph holds %zu sparse initializer%s (sparse_initializer), "
                     "which resnet does not read: store the weights as dense initializers", what,
                     om.n_sparse, om.n_sparse == 1 ? "" : "s");
    if (st == RN_OK)
        st = check_attr_types(&om, what);
    if (st == RN_OK)
        st = network_input(&ix, what, &input);

    /* the stem conv tells the input channels, the width and the stem; the first Gemm the classes */
    rn_stem stem = RN_STEM_IMAGENET;
    int in_channels = 1, classes = 1, width = RN_DEFAULT_WIDTH;
    if (st == RN_OK) {
        const name_ref *r = onnx_index_find(ix.readers, ix.n_readers, input);
        const onnx_node *first = r ? &om.nodes[r->idx] : NULL;
        const onnx_tensor *w = NULL;
        if (first && onnx_is_op(first, "Conv") && first->n_inputs >= 2)
            w = onnx_initializer_of(&ix, first->inputs[1], NULL, NULL);
        char node[300];
        if (!first)
            st = rn_fail(RN_ERR_MISMATCH, "%s: nothing in the ONNX graph reads its input '%s'", what, input);
        else if (!w || w->ndim != 4 || w->dims[1] < 1 || w->dims[1] > 4096 || w->dims[0] < 1 || w->dims[0] > 4096) {
            node_desc(&om, (long)r->idx, node, sizeof node);
            st = rn_fail(RN_ERR_MISMATCH, "%s: ONNX node %s does not fit a ResNet: it reads the input, "
                         "where a ResNet starts with a convolution", what, node);
        } else {
            in_channels = (int)w->dims[1];
            width = (int)w->dims[0];
            stem = w->dims[2] == 3 ? RN_STEM_CIFAR : RN_STEM_IMAGENET;
        }
    }
    for (size_t i = 0; st == RN_OK && i < om.n_nodes; i++) {
        const onnx_node *n = &om.nodes[i];
        const onnx_tensor *w =
            onnx_is_op(n, "Gemm") && n->n_inputs >= 2 ? onnx_initializer_of(&ix, n->inputs[1], NULL, NULL) : NULL;
        if (w && w->ndim == 2) {
            int64_t k = onnx_int_attr(n, "transB", 0) ? w->dims[0] : w->dims[1];
            classes = k >= 1 && k <= 1000000 ? (int)k : 1;
            break;
        }
    }

    /* candidates: the one asked for; else the metadata's, then the table (D2L last) */
    const char *cands[32];
    int n_cands = 0;
    if (arch) {
        cands[n_cands++] = arch;
    } else {
        for (size_t i = 0; i < om.n_meta; i++)
            if (strcmp(om.meta[i].key, "arch") == 0 && rn_arch_find(om.meta[i].value))
                cands[n_cands++] = rn_arch_find(om.meta[i].value)->name;
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < rn_arch_count() && n_cands < 30; i++) {
                const rn_arch_desc *a = rn_arch_find(rn_arch_name(i));
                if ((a->kind == RN_BLOCK_D2L) == (pass == 1) && (n_cands == 0 || strcmp(cands[0], a->name) != 0))
                    cands[n_cands++] = a->name;
            }
    }
    attempt best = {0};
    rn_status found = RN_ERR_MISMATCH;
    for (int i = 0; st == RN_OK && i < n_cands && found == RN_ERR_MISMATCH; i++) {
        found = try_arch(&ix, what, cands[i], input, in_channels, classes, stem, width, out, &best);
        if (found != RN_OK && found != RN_ERR_MISMATCH)
            st = found;
    }
    if (st == RN_OK && found == RN_ERR_MISMATCH)
        st = rn_fail(RN_ERR_MISMATCH, "%s: %s%s", what, best.msg,
                     arch ? "" : " (the closest of the architectures resnet reads)");
    onnx_index_free(&ix);
    onnx_free(&om);
    return st;
}
