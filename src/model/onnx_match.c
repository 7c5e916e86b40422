/*
 * onnx_match.c - an ONNX graph matched to one candidate's network schedule
 * (contract in onnx_match.h; the rules in onnx_import.c's opening comment):
 * the name index, then each schedule node's search for its ONNX nodes among
 * the readers of the tensor its input maps to.
 */
#include "model/onnx_match.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

/* ---------------------------------------------------------------------------
 * Name index: producers, readers and initializers, sorted by name
 * ------------------------------------------------------------------------- */

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

const name_ref *onnx_index_find(const name_ref *r, size_t n, const char *name) {
    size_t i = lower_bound(r, n, name);
    return i < n && strcmp(r[i].name, name) == 0 ? &r[i] : NULL;
}

void onnx_index_free(onnx_index *ix) {
    free(ix->producers), free(ix->readers), free(ix->inits);
}

rn_status onnx_index_build(const onnx_model *om, const char *what, onnx_index *ix) {
    memset(ix, 0, sizeof *ix);
    ix->om = om;
    size_t n_in = 0, n_out = 0;
    for (size_t i = 0; i < om->n_nodes; i++)
        n_in += om->nodes[i].n_inputs, n_out += om->nodes[i].n_outputs;
    ix->producers = malloc((n_out + 1) * sizeof *ix->producers);
    ix->readers = malloc((n_in + 1) * sizeof *ix->readers);
    ix->inits = malloc((om->n_inits + 1) * sizeof *ix->inits);
    if (!ix->producers || !ix->readers || !ix->inits) {
        onnx_index_free(ix);
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
            onnx_index_free(ix);
            return st;
        }
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Matching one candidate
 * ------------------------------------------------------------------------- */

static const onnx_node *node_at(const match *mt, size_t i) { return &mt->ix->om->nodes[i]; }

int onnx_is_op(const onnx_node *n, const char *op) {
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
        if (!mt->used[n] && (!op || onnx_is_op(node_at(mt, n), op)))
            return (long)n;
    }
    return -1;
}

const onnx_tensor *onnx_initializer_of(const onnx_index *ix, const char *name,
                                       void (*through)(void *ctx, size_t node), void *ctx) {
    for (int depth = 0; depth < 8; depth++) {
        const name_ref *r = onnx_index_find(ix->inits, ix->n_inits, name);
        if (r)
            return &ix->om->inits[r->idx];
        const name_ref *p = onnx_index_find(ix->producers, ix->n_producers, name);
        if (!p)
            return NULL;
        const onnx_node *n = &ix->om->nodes[p->idx];
        if (!onnx_is_op(n, "Identity") || n->n_inputs != 1)
            return NULL;
        if (through)
            through(ctx, p->idx);
        name = n->inputs[0];
    }
    return NULL;
}

static void take_identity(void *ctx, size_t node) { take(ctx, node); }

/* The initializer `name` stands for, following Identity nodes (which the
 * current try takes); NULL if it is no initializer. */
static const onnx_tensor *weight(match *mt, const char *name) {
    return onnx_initializer_of(mt->ix, name, take_identity, mt);
}

static int int64s_equal(const int64_t *a, const int64_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static int dims_equal(const onnx_tensor *t, int ndim, const int64_t *dims) {
    return t->ndim == ndim && int64s_equal(t->dims, dims, (size_t)ndim);
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
    return a->n_ints == k && int64s_equal(a->ints, want, k);
}

int64_t onnx_int_attr(const onnx_node *n, const char *name, int64_t dflt) {
    const onnx_attr *a = onnx_node_attr(n, name);
    return a ? a->i : dflt;
}

static float float_attr(const onnx_node *n, const char *name, float dflt) {
    const onnx_attr *a = onnx_node_attr(n, name);
    return a ? a->f : dflt;
}

/* A node's auto_pad is absent or NOTSET (its default: the pads attribute says the padding). */
static int auto_pad_notset(const onnx_node *n) {
    const onnx_attr *a = onnx_node_attr(n, "auto_pad");
    return !a || (a->s && strcmp(a->s, "NOTSET") == 0);
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
    const name_ref *p = onnx_index_find(mt->ix->producers, mt->ix->n_producers, tensor);
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
    if (onnx_int_attr(n, "group", 1) != u->groups || !ints_attr_is(n, "kernel_shape", k2, 2, u->k) ||
        !ints_attr_is(n, "strides", s2, 2, 1) || !ints_attr_is(n, "pads", pads, 4, 0) ||
        !ints_attr_is(n, "dilations", one, 2, 1) || !auto_pad_notset(n)) {
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
                 onnx_int_attr(b, "training_mode", 0) == 0;
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
        if (mt->used[c] || !onnx_is_op(node_at(mt, (size_t)c), "Conv"))
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
        onnx_int_attr(n, "ceil_mode", 0) != 0 || !auto_pad_notset(n)) {
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
        if (n && n->n_inputs == 1 && onnx_int_attr(n, "keepdims", 1) == 1 && onnx_node_attr(n, "axes") &&
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
    if (onnx_int_attr(fl, "axis", 1) != 1) {
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
    int trans = onnx_int_attr(g, "transB", 0) != 0;
    const int64_t wd[2] = {trans ? K : F, trans ? F : K}, bd[1] = {K}, bd2[2] = {1, K};
    mt->fc_w = g->n_inputs >= 2 && strcmp(g->inputs[0], flat) == 0 ? weight(mt, g->inputs[1]) : NULL;
    mt->fc_b = g->n_inputs == 3 && g->inputs[2][0] ? weight(mt, g->inputs[2]) : NULL;
    if (g->n_inputs > 3) { /* Gemm takes A, B and C: a fourth input had been passed over, C with it */
        fail_at(mt, gi, "it has %zu inputs, where a Gemm takes 2 or 3 (A, B and the bias C)",
                g->n_inputs);
        return 0;
    }
    if (!mt->fc_w || !dims_equal(mt->fc_w, 2, wd) || onnx_int_attr(g, "transA", 0) != 0 || !one_output(g) ||
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
int onnx_match_all(match *mt, const char *input) {
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
