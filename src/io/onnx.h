/*
 * onnx.h - ONNX models (ModelProto) in and out of memory: the parts of the
 * format a convolutional network without control flow uses.
 *
 * Reading (onnx_read.c) decodes a whole file into plain arrays: the graph's
 * nodes with their inputs, outputs and attributes, the initializers (their
 * data left in the caller's buffer), the graph's inputs and outputs, the
 * metadata_props and the default domain's opset. It trusts nothing: every
 * length, count and size is checked against the buffer (overflow-checked)
 * and a failure names the file and the offset or node at fault. What it
 * reads is a description; whether it is a network resnet.c can run is the
 * importer's question (model/onnx_import.c).
 *
 * Writing (onnx_write.c) encodes a model in one buffer, in the order the
 * calls come: onnx_w_begin, then the graph (nodes, initializers, inputs,
 * outputs in any order), onnx_w_graph_end, then metadata, onnx_w_finish.
 *
 * Field numbers are onnx.proto's (IR version 7 and 8).
 */
#ifndef RN_IO_ONNX_H
#define RN_IO_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "io/protobuf.h"
#include "resnet.h"

#define ONNX_MAX_DIMS 8

/* TensorProto.DataType values resnet.c converts to float. */
enum {
    ONNX_FLOAT = 1,
    ONNX_INT64 = 7,
    ONNX_FLOAT16 = 10,
    ONNX_DOUBLE = 11,
    ONNX_BFLOAT16 = 16,
};

/* AttributeProto.AttributeType */
enum {
    ONNX_ATTR_FLOAT = 1,
    ONNX_ATTR_INT = 2,
    ONNX_ATTR_STRING = 3,
    ONNX_ATTR_TENSOR = 4,
    ONNX_ATTR_GRAPH = 5,
    ONNX_ATTR_FLOATS = 6,
    ONNX_ATTR_INTS = 7,
};

/* ---------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------- */

typedef struct onnx_attr {
    char *name;
    int type;                    /* ONNX_ATTR_*; other types are kept as their number */
    float f;
    int64_t i;
    char *s;                     /* ONNX_ATTR_STRING, NUL-terminated */
    int64_t *ints;               /* ONNX_ATTR_INTS */
    size_t n_ints;
} onnx_attr;

typedef struct onnx_node {
    char *name;                  /* may be "" */
    char *op_type;
    char *domain;                /* "" or "ai.onnx" for the default domain */
    char **inputs;               /* an omitted optional input is "" */
    size_t n_inputs;
    char **outputs;
    size_t n_outputs;
    onnx_attr *attrs;
    size_t n_attrs;
    size_t offset;               /* of the NodeProto in the file */
} onnx_node;

typedef struct onnx_tensor {
    char *name;
    int dtype;                   /* TensorProto.DataType */
    int ndim;
    int64_t dims[ONNX_MAX_DIMS];
    size_t numel;
    const unsigned char *data;   /* raw_data, or float_data / double_data packed: in the buffer */
    size_t bytes;                /* numel values of dtype (onnx_read checks), unless unpacked */
    int external;                /* data_location EXTERNAL: the values are in another file */
    int unpacked;                /* values given as unpacked repeated fields (not read) */
    size_t offset;
} onnx_tensor;

/* A graph input or output: a float tensor of some shape, or anything else. */
typedef struct onnx_value_info {
    char *name;
    int elem_type;               /* 0 when not a tensor */
    int ndim;                    /* -1: no shape given */
    int64_t dims[ONNX_MAX_DIMS]; /* -1: symbolic or unknown */
} onnx_value_info;

typedef struct onnx_meta {
    char *key, *value;
} onnx_meta;

typedef struct onnx_model {
    int64_t ir_version;
    int64_t opset;               /* of the default domain; 0 if not imported */
    char *producer_name, *producer_version;
    onnx_node *nodes;
    size_t n_nodes;
    onnx_tensor *inits;
    size_t n_inits;
    onnx_value_info *inputs, *outputs;
    size_t n_inputs, n_outputs;
    onnx_meta *meta;
    size_t n_meta;
    int has_functions;           /* model-local functions or a training section */
    size_t n_sparse;             /* sparse initializers (not read) */
} onnx_model;

/* Decodes buf[0..len) (kept: initializers point into it). `what` names the
 * file in messages. On failure *out is empty (nothing to free). */
rn_status onnx_read(const unsigned char *buf, size_t len, const char *what, onnx_model *out);
void onnx_free(onnx_model *m);

/* The attribute `name` of node n, or NULL. */
const onnx_attr *onnx_node_attr(const onnx_node *n, const char *name);

/* Converts the n float values of t (FLOAT, FLOAT16, BFLOAT16 or DOUBLE)
 * into dst. Fails (RN_ERR_MISMATCH) for other types, external or unpacked
 * data, naming the tensor. */
rn_status onnx_tensor_floats(const onnx_tensor *t, const char *what, float *dst);

/* "FLOAT", "INT64", ... for messages. */
const char *onnx_dtype_name(int dtype);

/* ---------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------- */

typedef struct onnx_writer {
    pb_buf b;
    size_t graph_mark;
} onnx_writer;

/* An attribute to write: INT (i), FLOAT (f) or INTS (ints[0..n)). */
typedef struct onnx_wattr {
    const char *name;
    int type;
    int64_t i;
    float f;
    const int64_t *ints;
    size_t n;
} onnx_wattr;

/* Starts the model: ir_version, producer, the default domain's opset, and
 * opens the graph. */
void onnx_w_begin(onnx_writer *w, int64_t ir_version, int64_t opset, const char *producer,
                  const char *producer_version);
void onnx_w_node(onnx_writer *w, const char *op_type, const char *name, const char *const *inputs,
                 size_t n_inputs, const char *output, const onnx_wattr *attrs, size_t n_attrs);
/* A FLOAT initializer with raw_data. */
void onnx_w_initializer(onnx_writer *w, const char *name, const int64_t *dims, int ndim,
                        const float *data);
/* A FLOAT tensor graph input (is_output 0) or output (1); a dimension < 0
 * is symbolic, named by dim_params[i]. */
void onnx_w_value_info(onnx_writer *w, int is_output, const char *name, const int64_t *dims,
                       const char *const *dim_params, int ndim);
/* Names the graph and closes it. */
void onnx_w_graph_end(onnx_writer *w, const char *name, const char *doc_string);
void onnx_w_meta(onnx_writer *w, const char *key, const char *value);
/* Writes the model to path and frees the writer. Fails with RN_ERR_NOMEM
 * when an allocation failed on the way, RN_ERR_UNSUPPORTED past protobuf's
 * 2 GiB limit. */
rn_status onnx_w_finish(onnx_writer *w, const char *path);
void onnx_w_free(onnx_writer *w);

#endif
