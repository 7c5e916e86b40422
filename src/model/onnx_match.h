/*
 * onnx_match.h - matching an ONNX graph to a ResNet's schedule, node by node
 * (onnx_match.c), for the importer (onnx_import.c, whose opening comment
 * gives the rules): the graph's names indexed, and one candidate
 * architecture's match with what each schedule node found.
 */
#ifndef RN_MODEL_ONNX_MATCH_H
#define RN_MODEL_ONNX_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "io/onnx.h"
#include "model/graph.h"
#include "resnet.h"

/* ---- the graph's names: producers, readers and initializers, sorted by name ---- */

typedef struct name_ref {
    const char *name;
    size_t idx;
} name_ref;

typedef struct onnx_index {
    const onnx_model *om;
    name_ref *producers, *readers, *inits;
    size_t n_producers, n_readers, n_inits;
} onnx_index;

/* Indexes om's names; a tensor written by two nodes is refused (`what` names the file). */
rn_status onnx_index_build(const onnx_model *om, const char *what, onnx_index *ix);
void onnx_index_free(onnx_index *ix);

/* The first entry named `name` of r[0..n) (entries of one name sorted by index), or NULL. */
const name_ref *onnx_index_find(const name_ref *r, size_t n, const char *name);

/* Whether n is the standard-domain op `op`. */
int onnx_is_op(const onnx_node *n, const char *op);

/* n's INT attribute `name`, or dflt when absent. */
int64_t onnx_int_attr(const onnx_node *n, const char *name, int64_t dflt);

/* The initializer tensor `name` stands for, following up to 8 Identity nodes back (each handed
 * to through(ctx, node) where through is not NULL); NULL if it is none. */
const onnx_tensor *onnx_initializer_of(const onnx_index *ix, const char *name,
                                       void (*through)(void *ctx, size_t node), void *ctx);

/* ---- one candidate's match ---- */

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

/* Walks the schedule mt->g from the network input `input`; 1 if every node found its ONNX
 * nodes and none is left over, else 0 with mt->blame and mt->why saying where and why. */
int onnx_match_all(match *mt, const char *input);

#endif
