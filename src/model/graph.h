/*
 * graph.h - the network schedule: the network as one list of nodes, built
 * once from the architecture tables for an input size. Forward (engine/session.c),
 * backward (train/backprop.c), weight preparation, `resnet info`
 * (summary.c) and the tests all walk this list; nothing else knows the
 * order of the layers, the stem's width or the pooling's size.
 *
 * A node reads values and writes one value. Values are activations, per
 * image (c, h, w); a batch of n images is stored channel-major,
 * (c, n, h, w). Value 0 is the network input; the last value is the logits
 * (num_classes, 1, 1). Nodes are in execution order: every value is written
 * by exactly one node before any node reads it.
 *
 *   CONV     out = relu?(bn?(conv(in)) + res?)   (a conv "unit": conv, its
 *            BatchNorm, the residual add and the ReLU, fused)
 *   MAXPOOL  out = maxpool_k/s/p(in)
 *   AVGPOOL  out = global average of in          (c, 1, 1)
 *   LINEAR   out = fc(in)                        (num_classes, 1, 1)
 *
 * In a residual block the projection shortcut runs just before the block's
 * last main conv, whose epilogue adds it (or the block input) and applies
 * the ReLU.
 */
#ifndef RN_MODEL_GRAPH_H
#define RN_MODEL_GRAPH_H

#include "model/model.h"
#include "ops/conv2d.h"

typedef enum rn_node_op {
    RN_NODE_CONV,
    RN_NODE_MAXPOOL,
    RN_NODE_AVGPOOL,
    RN_NODE_LINEAR,
} rn_node_op;

/* What a node is in the module tree (for names and `info`). */
typedef enum rn_node_role {
    RN_ROLE_STEM,       /* the stem conv (+ BN + ReLU) */
    RN_ROLE_STEM_POOL,  /* the stem's max-pool */
    RN_ROLE_MAIN,       /* main path unit `index` of block `block` */
    RN_ROLE_SHORTCUT,   /* projection shortcut of block `block` */
    RN_ROLE_HEAD_POOL,  /* global average pooling */
    RN_ROLE_HEAD_FC,    /* the classifier */
} rn_node_role;

typedef struct rn_value {
    int c, h, w;            /* per image */
    int producer;           /* node that writes it; -1 for the input */
    int last_use;           /* last node that reads it; -1 if none */
} rn_value;

typedef struct rn_node {
    rn_node_op op;
    rn_node_role role;
    int block, index;       /* block index (-1 outside blocks) and unit index */
    int in, out, res;       /* value ids; res is -1 without a residual */
    /* CONV */
    const rn_unit *unit;    /* weights, BN, names */
    int relu;
    rn_conv_shape shape;    /* with n = 1; the batch is set at run time */
    /* MAXPOOL */
    int k, stride, pad;
} rn_node;

typedef struct rn_graph {
    const rn_model *model;
    int h, w;               /* input size it was built for */
    rn_node *nodes;
    int n_nodes;
    rn_value *values;
    int n_values;
    int n_convs;            /* CONV nodes */
} rn_graph;

/* Builds the schedule of m for h x w inputs. Fails (RN_ERR_ARG) when the
 * input is too small (some layer's output would be empty) or too large (one image's map past
 * the kernels' int indices). */
rn_status rn_graph_build(const rn_model *m, int h, int w, rn_graph **out);

/* Whether a batch of n fits the kernels' int indices on every layer of schedule g
 * (rn_graph_build checks one image): each conv's batch x map pixels (conv2d_shape_init's
 * INT_MAX), each value's batch x pixels and batch x channels (the pools and the classifier take
 * them as int). RN_ERR_ARG naming the layer, "batch N at HxW is too large", where one does not:
 * every planner (inference, training) calls it before it sizes anything for n. */
rn_status rn_graph_check_batch(const rn_graph *g, int n);
void rn_graph_free(rn_graph *s);

/* The conv shape of node nd for a batch of n images. */
static inline rn_conv_shape rn_node_conv_shape(const rn_node *nd, int n) {
    rn_conv_shape s = nd->shape;
    s.n = n;
    return s;
}

/* Floats of value v for a batch of n images. */
static inline size_t rn_value_floats(const rn_graph *s, int v, int n) {
    const rn_value *val = &s->values[v];
    return (size_t)val->c * (size_t)n * (size_t)val->h * (size_t)val->w;
}

/* The value with the network's pooled features (the head's AVGPOOL output). */
int rn_graph_features(const rn_graph *s);

/* The value holding stage `stage`'s output (resnet.h RN_STAGE_*: 0 the stem, after its max-pool
 * where it has one, 1..4 the residual stages, 5 the pooled features), or -1. */
int rn_graph_stage_value(const rn_graph *s, int stage);

#endif
