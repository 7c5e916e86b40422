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
 */
#include "model/onnx_import.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/status.h"
#include "io/onnx.h"
#include "model/graph.h"
#include "ops/ops.h"

/* ---------------------------------------------------------------------------
 * Name index: producers, readers and initializers, sorted by name
 * ------------------------------------------------------------------------- */

typedef struct name_ref {
    const char *name;
    size_t idx;
} name_ref;

typedef struct onnx_index {
    const onnx_model *om;
    name_ref *producers, *readers, *inits;
    size_t n_producers, n_readers, n_inits;
} onnx_index;

static int ref_cmp(const void *a, const void *b) {
    const name_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

/* The first entry named `name` (entries of one name are sorted by index). */
static size_t lower_bound(const name_ref *r, size_t n, const char *name) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(r[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const name_ref *find_ref(const name_ref *r, size_t n, const char *name) {
    size_t i = lower_bound(r, n, name);
    return i < n && strcmp(r[i].name, name) == 0 ? &r[i] : NULL;
}

static void index_free(onnx_index *ix) {
    free(ix->producers), free(ix->readers), free(ix->inits);
}

static rn_status index_build(const onnx_model *om, const char *what, onnx_index *ix) {
    memset(ix, 0, sizeof *ix);
    ix->om = om;
    size_t n_in = 0, n_out = 0;
    for (size_t i = 0; i < om->n_nodes; i++)
        n_in += om->nodes[i].n_inputs, n_out += om->nodes[i].n_outputs;
    ix->producers = malloc((n_out + 1) * sizeof *ix->producers);
    ix->readers = malloc((n_in + 1) * sizeof *ix->readers);
    ix->inits = malloc((om->n_inits + 1) * sizeof *ix->inits);
    if (!ix->producers || !ix->readers || !ix->inits) {
        index_free(ix);
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory indexing the ONNX graph", what);
    }
    for (size_t i = 0; i < om->n_nodes; i++) {
        const onnx_node *n = &om->nodes[i];
        for (size_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k][0])
                ix->readers[ix->n_readers++] = (name_ref){n->inputs[k], i};
        for (size_t k = 0; k < n->n_outputs; k++)
            if (n->outputs[k][0])
                ix->producers[ix->n_producers++] = (name_ref){n->outputs[k], i};
    }
    for (size_t i = 0; i < om->n_inits; i++)
        ix->inits[ix->n_inits++] = (name_ref){om->inits[i].name, i};
    qsort(ix->producers, ix->n_producers, sizeof *ix->producers, ref_cmp);
    qsort(ix->readers, ix->n_readers, sizeof *ix->readers, ref_cmp);
    qsort(ix->inits, ix->n_inits, sizeof *ix->inits, ref_cmp);
    for (size_t i = 1; i < ix->n_producers; i++)
        if (strcmp(ix->producers[i].name, ix->producers[i - 1].name) == 0) {
            const onnx_node *n = &om->nodes[ix->producers[i].idx];
            rn_status st = rn_fail(RN_ERR_FORMAT, "%s: tensor '%s' is written by two nodes (the second "
                                   "at offset %zu)", what, ix->producers[i].name, n->offset);
            index_free(ix);
            return st;
        }
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Matching one candidate
 * ------------------------------------------------------------------------- */

/* What a CONV node of the schedule found. */
typedef struct unit_found {
    const onnx_tensor *w, *b;            /* the Conv's weight and bias (NULL: none) */
    const onnx_tensor *bn[4];            /* scale, B, mean, var; bn[0] NULL: folded */
    float eps;
} unit_found;

#define MAX_TAKE 16

typedef struct match {
    const onnx_index *ix;
    const rn_model *m;
    const rn_graph *g;
    const char *what;
    const char **vname;                  /* (g->n_values) ONNX tensor of each value */
    unsigned char *used;                 /* (om->n_nodes) */
    unit_found *units;                   /* (g->n_nodes) */
    const onnx_tensor *fc_w, *fc_b;
    int fc_trans;                        /* fc_w is (feat, K): transB = 0 */
    float alpha, beta;
    int done;                            /* schedule nodes matched */
    /* the failure: the ONNX node at fault (-1: none) and why */
    long blame;
    char why[400];
    /* the nodes a try takes, committed when it fits */
    size_t take[MAX_TAKE];
    int n_take;
} match;

static const onnx_node *node_at(const match *mt, size_t i) { return &mt->ix->om->nodes[i]; }

static int is_op(const onnx_node *n, const char *op) {
    return strcmp(n->op_type, op) == 0 && (!n->domain[0] || strcmp(n->domain, "ai.onnx") == 0);
}

static void fail_at(match *mt, long node, const char *fmt, ...) RN_PRINTF(3, 4);
static void fail_at(match *mt, long node, const char *fmt, ...) {
    mt->blame = node;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(mt->why, sizeof mt->why, fmt, ap);
    va_end(ap);
}

static void take(match *mt, size_t node) {
    if (mt->n_take < MAX_TAKE)
        mt->take[mt->n_take++] = node;
}

static void commit(match *mt) {
    for (int i = 0; i < mt->n_take; i++)
        mt->used[mt->take[i]] = 1;
    mt->n_take = 0;
}

/* The first unused node reading `tensor` with op type `op` (NULL: any), or -1. */
static long reader_of(const match *mt, const char *tensor, const char *op) {
    const onnx_index *ix = mt->ix;
    for (size_t i = lower_bound(ix->readers, ix->n_readers, tensor);
         i < ix->n_readers && strcmp(ix->readers[i].name, tensor) == 0; i++) {
        size_t n = ix->readers[i].idx;
        if (!mt->used[n] && (!op || is_op(node_at(mt, n), op)))
            return (long)n;
    }
    return -1;
}

/* The initializer `name` stands for, following Identity nodes (which the
 * current try takes); NULL if it is no initializer. */
static const onnx_tensor *weight(match *mt, const char *name) {
    const onnx_index *ix = mt->ix;
    for (int depth = 0; depth < 8; depth++) {
        const name_ref *r = find_ref(ix->inits, ix->n_inits, name);
        if (r)
            return &ix->om->inits[r->idx];
        const name_ref *p = find_ref(ix->producers, ix->n_producers, name);
        if (!p)
            return NULL;
        const onnx_node *n = node_at(mt, p->idx);
        if (!is_op(n, "Identity") || n->n_inputs != 1)
            return NULL;
        take(mt, p->idx);
        name = n->inputs[0];
    }
    return NULL;
}

static int dims_equal(const onnx_tensor *t, int ndim, const int64_t *dims) {
    if (t->ndim != ndim)
        return 0;
    for (int i = 0; i < ndim; i++)
        if (t->dims[i] != dims[i])
            return 0;
    return 1;
}

/* An INTS attribute equals want[0..n) (absent: every element is `dflt`). */
static int ints_attr_is(const onnx_node *n, const char *name, const int64_t *want, size_t k,
                        int64_t dflt) {
    const onnx_attr *a = onnx_node_attr(n, name);
    if (!a) {
        for (size_t i = 0; i < k; i++)
            if (want[i] != dflt)
                return 0;
        return 1;
    }
    if (a->n_ints != k)
        return 0;
    for (size_t i = 0; i < k; i++)
        if (a->ints[i] != want[i])
            return 0;
    return 1;
}

static int64_t int_attr(const onnx_node *n, const char *name, int64_t dflt) {
    const onnx_attr *a = onnx_node_attr(n, name);
    return a ? a->i : dflt;
}

static float float_attr(const onnx_node *n, const char *name, float dflt) {
    const onnx_attr *a = onnx_node_attr(n, name);
    return a ? a->f : dflt;
}

/* A node has one output (further optional outputs left empty). */
static int one_output(const onnx_node *n) {
    if (n->n_outputs < 1 || !n->outputs[0][0])
        return 0;
    for (size_t i = 1; i < n->n_outputs; i++)
        if (n->outputs[i][0])
            return 0;
    return 1;
}

/* The node that writes `tensor`, or -1 (a graph input, an initializer). */
static long producer_of(const match *mt, const char *tensor) {
    const name_ref *p = find_ref(mt->ix->producers, mt->ix->n_producers, tensor);
    return p ? (long)p->idx : -1;
}

/* Blames whatever reads `tensor` (unused), else the node that writes it:
 * the schedule expected a node there that is not. */
static void fail_after(match *mt, const char *tensor, const char *fmt, ...) RN_PRINTF(3, 4);
static void fail_after(match *mt, const char *tensor, const char *fmt, ...) {
    char text[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    long r = reader_of(mt, tensor, NULL);
    if (r >= 0)
        fail_at(mt, r, "%s", text);
    else
        fail_at(mt, producer_of(mt, tensor), "nothing reads its output '%s'; %s", tensor, text);
}

/* Tries Conv node c for schedule node nd; 1 if it fits (found filled). */
static int try_conv(match *mt, const rn_node *nd, long c, const char *in, unit_found *found,
                    const char **out) {
    const rn_unit *u = nd->unit;
    const onnx_node *n = node_at(mt, (size_t)c);
    const char *arch = mt->m->arch->name;
    mt->n_take = 0;
    take(mt, (size_t)c);
    memset(found, 0, sizeof *found);
    if (n->n_inputs < 2 || n->n_inputs > 3 || strcmp(n->inputs[0], in) != 0 || !one_output(n)) {
        fail_at(mt, c, "%s's %s reads the previous tensor as its input", arch, u->conv_name);
        return 0;
    }
    const int64_t wd[4] = {u->cout, u->cin / u->groups, u->k, u->k};
    char want[64], got[64];
    found->w = weight(mt, n->inputs[1]);
    if (!found->w) {
        fail_at(mt, c, "its weight '%s' is not an initializer", n->inputs[1]);
        return 0;
    }
    if (!dims_equal(found->w, 4, wd)) {
        rn_shape_str(want, sizeof want, 4, wd);
        rn_shape_str(got, sizeof got, found->w->ndim, found->w->dims);
        fail_at(mt, c, "its weight has shape %s; %s's %s has %s", got, arch, u->conv_name, want);
        return 0;
    }
    const int64_t k2[2] = {u->k, u->k}, s2[2] = {u->stride, u->stride}, one[2] = {1, 1};
    const int64_t pads[4] = {u->pad, u->pad, u->pad, u->pad};
    const onnx_attr *auto_pad = onnx_node_attr(n, "auto_pad");
    if (int_attr(n, "group", 1) != u->groups || !ints_attr_is(n, "kernel_shape", k2, 2, u->k) ||
        !ints_attr_is(n, "strides", s2, 2, 1) || !ints_attr_is(n, "pads", pads, 4, 0) ||
        !ints_attr_is(n, "dilations", one, 2, 1) ||
        (auto_pad && auto_pad->s && strcmp(auto_pad->s, "NOTSET") != 0)) {
        fail_at(mt, c, "%s's %s is a %dx%d convolution with stride %d, padding %d and %d group%s",
                arch, u->conv_name, u->k, u->k, u->stride, u->pad, u->groups, u->groups > 1 ? "s" : "");
        return 0;
    }
    if (n->n_inputs == 3 && n->inputs[2][0]) {
        const int64_t bd[1] = {u->cout};
        found->b = weight(mt, n->inputs[2]);
        if (!found->b || !dims_equal(found->b, 1, bd)) {
            fail_at(mt, c, "its bias is not an initializer of %d values", u->cout);
            return 0;
        }
    }
    const char *cur = n->outputs[0];

    /* BatchNorm: a node, folded in (the bias carries it), or none */
    long bn = reader_of(mt, cur, "BatchNormalization");
    if (bn >= 0 && !u->has_bn) {
        fail_at(mt, bn, "%s's %s has no BatchNorm after it", arch, u->conv_name);
        return 0;
    }
    if (bn >= 0) {
        const onnx_node *b = node_at(mt, (size_t)bn);
        take(mt, (size_t)bn);
        const int64_t vd[1] = {u->cout};
        int ok = b->n_inputs == 5 && strcmp(b->inputs[0], cur) == 0 && one_output(b) &&
                 int_attr(b, "training_mode", 0) == 0;
        for (int i = 0; ok && i < 4; i++)
            ok = (found->bn[i] = weight(mt, b->inputs[1 + i])) != NULL && dims_equal(found->bn[i], 1, vd);
        if (!ok) {
            fail_at(mt, bn, "%s's %s expects an inference BatchNormalization with four initializers "
                    "of %d values", arch, u->bn_name, u->cout);
            return 0;
        }
        if (found->b && !u->has_bias) {
            fail_at(mt, c, "it has a bias before its BatchNormalization; %s's %s has none", arch,
                    u->conv_name);
            return 0;
        }
        found->eps = float_attr(b, "epsilon", 1e-5f);
        if (!(found->eps >= 0.0f && found->eps < 1.0f)) {
            fail_at(mt, bn, "its epsilon %g is out of range", (double)found->eps);
            return 0;
        }
        cur = b->outputs[0];
    } else if (!u->has_bn && found->b && !u->has_bias) {
        fail_at(mt, c, "it has a bias; %s's %s has none", arch, u->conv_name);
        return 0;
    }

    /* the residual Add */
    if (nd->res >= 0) {
        const char *res = mt->vname[nd->res];
        long add = reader_of(mt, cur, "Add");
        const onnx_node *a = add >= 0 ? node_at(mt, (size_t)add) : NULL;
        if (!a || a->n_inputs != 2 || !one_output(a) ||
            strcmp(strcmp(a->inputs[0], cur) == 0 ? a->inputs[1] : a->inputs[0], res) != 0) {
            if (a)
                fail_at(mt, add, "%s expects the residual Add of %s with '%s' here", arch, u->conv_name,
                        res);
            else
                fail_after(mt, cur, "%s expects the residual Add of %s with '%s' here", arch,
                           u->conv_name, res);
            return 0;
        }
        take(mt, (size_t)add);
        cur = a->outputs[0];
    }

    /* the ReLU, or none */
    long relu = reader_of(mt, cur, "Relu");
    if (nd->relu && relu < 0) {
        fail_after(mt, cur, "%s expects a Relu after %s", arch, u->has_bn ? u->bn_name : u->conv_name);
        return 0;
    }
    if (!nd->relu && relu >= 0) {
        fail_at(mt, relu, "%s's %s is not followed by a Relu", arch, u->has_bn ? u->bn_name : u->conv_name);
        return 0;
    }
    if (nd->relu) {
        const onnx_node *r = node_at(mt, (size_t)relu);
        if (r->n_inputs != 1 || !one_output(r)) {
            fail_at(mt, relu, "a Relu with one input and one output was expected");
            return 0;
        }
        take(mt, (size_t)relu);
        cur = r->outputs[0];
    }
    *out = cur;
    return 1;
}

static int match_conv(match *mt, int i) {
    const rn_node *nd = &mt->g->nodes[i];
    const char *in = mt->vname[nd->in];
    long first = -1;
    char why[sizeof mt->why];
    long blame = -1;
    /* every unused Conv reading the input, in graph order */
    const onnx_index *ix = mt->ix;
    for (size_t r = lower_bound(ix->readers, ix->n_readers, in);
         r < ix->n_readers && strcmp(ix->readers[r].name, in) == 0; r++) {
        long c = (long)ix->readers[r].idx;
        if (mt->used[c] || !is_op(node_at(mt, (size_t)c), "Conv"))
            continue;
        const char *out;
        if (try_conv(mt, nd, c, in, &mt->units[i], &out)) {
            commit(mt);
            mt->vname[nd->out] = out;
            return 1;
        }
        if (first < 0) {
            first = c;
            blame = mt->blame;
            snprintf(why, sizeof why, "%s", mt->why);
        }
    }
    if (first >= 0) {
        mt->blame = blame;
        snprintf(mt->why, sizeof mt->why, "%s", why);
    } else {
        const rn_unit *u = nd->unit;
        fail_after(mt, in, "%s expects the convolution %s (%dx%d, %d -> %d channels) here",
                   mt->m->arch->name, u->conv_name, u->k, u->k, u->cin, u->cout);
    }
    return 0;
}

/* A single-input, single-output node of type `op` reading the input of nd. */
static long simple_node(match *mt, const rn_node *nd, const char *op, const char *expect) {
    const char *in = mt->vname[nd->in];
    long n = reader_of(mt, in, op);
    if (n < 0 || node_at(mt, (size_t)n)->n_inputs < 1 || strcmp(node_at(mt, (size_t)n)->inputs[0], in) != 0 ||
        !one_output(node_at(mt, (size_t)n))) {
        fail_after(mt, in, "%s expects %s here", mt->m->arch->name, expect);
        return -1;
    }
    return n;
}

static int match_maxpool(match *mt, const rn_node *nd) {
    long p = simple_node(mt, nd, "MaxPool", "its stem's max-pool");
    if (p < 0)
        return 0;
    const onnx_node *n = node_at(mt, (size_t)p);
    const int64_t k2[2] = {nd->k, nd->k}, s2[2] = {nd->stride, nd->stride}, one[2] = {1, 1};
    const int64_t pads[4] = {nd->pad, nd->pad, nd->pad, nd->pad};
    if (!ints_attr_is(n, "kernel_shape", k2, 2, -1) || !ints_attr_is(n, "strides", s2, 2, 1) ||
        !ints_attr_is(n, "pads", pads, 4, 0) || !ints_attr_is(n, "dilations", one, 2, 1) ||
        int_attr(n, "ceil_mode", 0) != 0 || onnx_node_attr(n, "auto_pad")) {
        fail_at(mt, p, "%s's max-pool is %dx%d with stride %d and padding %d", mt->m->arch->name, nd->k,
                nd->k, nd->stride, nd->pad);
        return 0;
    }
    mt->used[p] = 1;
    mt->vname[nd->out] = n->outputs[0];
    return 1;
}

static int match_avgpool(match *mt, const rn_node *nd) {
    const char *in = mt->vname[nd->in];
    long p = reader_of(mt, in, "GlobalAveragePool");
    if (p < 0) {
        long r = reader_of(mt, in, "ReduceMean");
        const onnx_node *n = r >= 0 ? node_at(mt, (size_t)r) : NULL;
        const int64_t hw[2] = {2, 3}, neg[2] = {-2, -1};
        if (n && n->n_inputs == 1 && int_attr(n, "keepdims", 1) == 1 && onnx_node_attr(n, "axes") &&
            (ints_attr_is(n, "axes", hw, 2, 0) || ints_attr_is(n, "axes", neg, 2, 0)))
            p = r;
    }
    if (p < 0 || !one_output(node_at(mt, (size_t)p))) {
        fail_after(mt, in, "%s expects the global average pooling (GlobalAveragePool) here",
                   mt->m->arch->name);
        return 0;
    }
    mt->used[p] = 1;
    mt->vname[nd->out] = node_at(mt, (size_t)p)->outputs[0];
    return 1;
}

static int is_graph_output(const match *mt, const char *name) {
    const onnx_model *om = mt->ix->om;
    for (size_t i = 0; i < om->n_outputs; i++)
        if (strcmp(om->outputs[i].name, name) == 0)
            return 1;
    return 0;
}

static int match_linear(match *mt, const rn_node *nd) {
    const char *arch = mt->m->arch->name;
    long f = simple_node(mt, nd, "Flatten", "Flatten (axis 1) before its classifier");
    if (f < 0)
        return 0;
    const onnx_node *fl = node_at(mt, (size_t)f);
    if (int_attr(fl, "axis", 1) != 1) {
        fail_at(mt, f, "%s flattens from axis 1 before its classifier", arch);
        return 0;
    }
    const char *flat = fl->outputs[0];
    long gi = reader_of(mt, flat, "Gemm");
    const onnx_node *g = gi >= 0 ? node_at(mt, (size_t)gi) : NULL;
    if (!g) {
        fail_after(mt, flat, "%s expects its classifier fc (Gemm) here", arch);
        return 0;
    }
    mt->n_take = 0;
    const int K = mt->m->num_classes, F = mt->m->feat;
    int trans = int_attr(g, "transB", 0) != 0;
    const int64_t wd[2] = {trans ? K : F, trans ? F : K}, bd[1] = {K}, bd2[2] = {1, K};
    mt->fc_w = g->n_inputs >= 2 && strcmp(g->inputs[0], flat) == 0 ? weight(mt, g->inputs[1]) : NULL;
    mt->fc_b = g->n_inputs == 3 && g->inputs[2][0] ? weight(mt, g->inputs[2]) : NULL;
    if (!mt->fc_w || !dims_equal(mt->fc_w, 2, wd) || int_attr(g, "transA", 0) != 0 || !one_output(g) ||
        (g->n_inputs == 3 && g->inputs[2][0] &&
         (!mt->fc_b || (!dims_equal(mt->fc_b, 1, bd) && !dims_equal(mt->fc_b, 2, bd2))))) {
        fail_at(mt, gi, "%s's classifier fc maps %d features to %d classes", arch, F, K);
        return 0;
    }
    if (!is_graph_output(mt, g->outputs[0])) {
        fail_after(mt, g->outputs[0], "%s ends with its classifier fc, whose output is the graph's output",
                   arch);
        return 0;
    }
    take(mt, (size_t)f);
    take(mt, (size_t)gi);
    commit(mt);
    mt->fc_trans = !trans;
    mt->alpha = float_attr(g, "alpha", 1.0f);
    mt->beta = float_attr(g, "beta", 1.0f);
    mt->vname[nd->out] = g->outputs[0];
    return 1;
}

/* Walks the schedule; 1 if every node found its ONNX nodes and none is left. */
static int match_all(match *mt, const char *input) {
    const onnx_model *om = mt->ix->om;
    mt->vname[0] = input;
    for (int i = 0; i < mt->g->n_nodes; i++, mt->done++) {
        const rn_node *nd = &mt->g->nodes[i];
        int ok = nd->op == RN_NODE_CONV      ? match_conv(mt, i)
                 : nd->op == RN_NODE_MAXPOOL ? match_maxpool(mt, nd)
                 : nd->op == RN_NODE_AVGPOOL ? match_avgpool(mt, nd)
                                             : match_linear(mt, nd);
        if (!ok)
            return 0;
    }
    for (size_t i = 0; i < om->n_nodes; i++)
        if (!mt->used[i]) {
            fail_at(mt, (long)i, "it is not part of %s", mt->m->arch->name);
            return 0;
        }
    if (om->n_outputs != 1) {
        fail_at(mt, -1, "the graph has %zu outputs; %s has one, the logits", om->n_outputs,
                mt->m->arch->name);
        return 0;
    }
    return 1;
}

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
    if (st == RN_OK && match_all(&mt, input)) {
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

/* The network input: the one graph input that is no initializer. */
static rn_status network_input(const onnx_index *ix, const char *what, const char **input) {
    const onnx_model *om = ix->om;
    *input = NULL;
    for (size_t i = 0; i < om->n_inputs; i++) {
        if (find_ref(ix->inits, ix->n_inits, om->inputs[i].name))
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
    rn_status st = index_build(&om, what, &ix);
    if (st != RN_OK) {
        onnx_free(&om);
        return st;
    }
    const char *input = NULL;
    st = network_input(&ix, what, &input);

    /* the stem conv tells the input channels, the width and the stem; the first Gemm the classes */
    rn_stem stem = RN_STEM_IMAGENET;
    int in_channels = 1, classes = 1, width = RN_DEFAULT_WIDTH;
    if (st == RN_OK) {
        const name_ref *r = find_ref(ix.readers, ix.n_readers, input);
        const onnx_node *first = r ? &om.nodes[r->idx] : NULL;
        const onnx_tensor *w = NULL;
        if (first && is_op(first, "Conv") && first->n_inputs >= 2) {
            const name_ref *wi = find_ref(ix.inits, ix.n_inits, first->inputs[1]);
            w = wi ? &om.inits[wi->idx] : NULL;
        }
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
        const name_ref *wi = is_op(n, "Gemm") && n->n_inputs >= 2 ? find_ref(ix.inits, ix.n_inits, n->inputs[1]) : NULL;
        if (wi && om.inits[wi->idx].ndim == 2) {
            const onnx_tensor *w = &om.inits[wi->idx];
            int64_t k = int_attr(n, "transB", 0) ? w->dims[0] : w->dims[1];
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
    index_free(&ix);
    onnx_free(&om);
    return st;
}
