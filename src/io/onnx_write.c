/*
 * onnx_write.c - encoding an ONNX ModelProto (contract in onnx.h).
 *
 * The model is built in one buffer, field by field, in the order the calls
 * come; the graph is a nested message opened by onnx_w_begin and closed by
 * onnx_w_graph_end (protobuf allows any field order, and ONNX readers keep
 * the order of repeated fields: nodes stay in execution order).
 */
#include "io/onnx.h"

#include <stdint.h>
#include <string.h>

#include "core/status.h"
#include "io/file.h"

/* ModelProto */
enum { M_IR_VERSION = 1, M_PRODUCER = 2, M_PRODUCER_VERSION = 3, M_GRAPH = 7, M_OPSET = 8,
       M_METADATA = 14 };
/* GraphProto */
enum { G_NODE = 1, G_NAME = 2, G_INITIALIZER = 5, G_DOC = 10, G_INPUT = 11, G_OUTPUT = 12 };
/* NodeProto */
enum { N_INPUT = 1, N_OUTPUT = 2, N_NAME = 3, N_OP_TYPE = 4, N_ATTRIBUTE = 5 };
/* AttributeProto */
enum { A_NAME = 1, A_F = 2, A_I = 3, A_INTS = 8, A_TYPE = 20 };
/* TensorProto */
enum { T_DIMS = 1, T_DATA_TYPE = 2, T_NAME = 8, T_RAW_DATA = 9 };

#define PROTOBUF_LIMIT ((size_t)INT32_MAX)   /* protobuf's 2 GiB message limit */

void onnx_w_begin(onnx_writer *w, int64_t ir_version, int64_t opset, const char *producer,
                  const char *producer_version) {
    memset(w, 0, sizeof *w);
    pb_put_varint(&w->b, M_IR_VERSION, (uint64_t)ir_version);
    pb_put_string(&w->b, M_PRODUCER, producer);
    pb_put_string(&w->b, M_PRODUCER_VERSION, producer_version);
    size_t op = pb_begin(&w->b, M_OPSET);
    pb_put_string(&w->b, 1, "");
    pb_put_varint(&w->b, 2, (uint64_t)opset);
    pb_end(&w->b, op);
    w->graph_mark = pb_begin(&w->b, M_GRAPH);
}

void onnx_w_node(onnx_writer *w, const char *op_type, const char *name, const char *const *inputs,
                 size_t n_inputs, const char *output, const onnx_wattr *attrs, size_t n_attrs) {
    size_t node = pb_begin(&w->b, G_NODE);
    for (size_t i = 0; i < n_inputs; i++)
        pb_put_string(&w->b, N_INPUT, inputs[i]);
    pb_put_string(&w->b, N_OUTPUT, output);
    pb_put_string(&w->b, N_NAME, name);
    pb_put_string(&w->b, N_OP_TYPE, op_type);
    for (size_t i = 0; i < n_attrs; i++) {
        const onnx_wattr *a = &attrs[i];
        size_t at = pb_begin(&w->b, N_ATTRIBUTE);
        pb_put_string(&w->b, A_NAME, a->name);
        pb_put_varint(&w->b, A_TYPE, (uint64_t)a->type);
        if (a->type == ONNX_ATTR_INT)
            pb_put_varint(&w->b, A_I, (uint64_t)a->i);
        else if (a->type == ONNX_ATTR_FLOAT)
            pb_put_float(&w->b, A_F, a->f);
        else
            for (size_t k = 0; k < a->n; k++) /* repeated, unpacked: onnx.proto's declaration */
                pb_put_varint(&w->b, A_INTS, (uint64_t)a->ints[k]);
        pb_end(&w->b, at);
    }
    pb_end(&w->b, node);
}

void onnx_w_initializer(onnx_writer *w, const char *name, const int64_t *dims, int ndim,
                        const float *data) {
    size_t numel = 1;
    size_t t = pb_begin(&w->b, G_INITIALIZER);
    for (int i = 0; i < ndim; i++) {
        pb_put_varint(&w->b, T_DIMS, (uint64_t)dims[i]);
        numel *= (size_t)dims[i];
    }
    pb_put_varint(&w->b, T_DATA_TYPE, ONNX_FLOAT);
    pb_put_string(&w->b, T_NAME, name);
    pb_put_floats_le(&w->b, T_RAW_DATA, data, numel);
    pb_end(&w->b, t);
}

void onnx_w_value_info(onnx_writer *w, int is_output, const char *name, const int64_t *dims,
                       const char *const *dim_params, int ndim) {
    size_t vi = pb_begin(&w->b, is_output ? G_OUTPUT : G_INPUT);
    pb_put_string(&w->b, 1, name);
    size_t type = pb_begin(&w->b, 2);        /* TypeProto */
    size_t tensor = pb_begin(&w->b, 1);      /* .tensor_type */
    pb_put_varint(&w->b, 1, ONNX_FLOAT);     /* elem_type */
    size_t shape = pb_begin(&w->b, 2);       /* TensorShapeProto */
    for (int i = 0; i < ndim; i++) {
        size_t dim = pb_begin(&w->b, 1);
        if (dims[i] >= 0)
            pb_put_varint(&w->b, 1, (uint64_t)dims[i]);
        else
            pb_put_string(&w->b, 2, dim_params[i]);
        pb_end(&w->b, dim);
    }
    pb_end(&w->b, shape);
    pb_end(&w->b, tensor);
    pb_end(&w->b, type);
    pb_end(&w->b, vi);
}

void onnx_w_graph_end(onnx_writer *w, const char *name, const char *doc_string) {
    pb_put_string(&w->b, G_NAME, name);
    if (doc_string)
        pb_put_string(&w->b, G_DOC, doc_string);
    pb_end(&w->b, w->graph_mark);
}

void onnx_w_meta(onnx_writer *w, const char *key, const char *value) {
    size_t e = pb_begin(&w->b, M_METADATA);
    pb_put_string(&w->b, 1, key);
    pb_put_string(&w->b, 2, value);
    pb_end(&w->b, e);
}

void onnx_w_free(onnx_writer *w) { pb_buf_free(&w->b); }

rn_status onnx_w_finish(onnx_writer *w, const char *path) {
    rn_status st;
    if (w->b.failed)
        st = rn_fail(RN_ERR_NOMEM, "%s: out of memory encoding the ONNX model", path);
    else if (w->b.len > PROTOBUF_LIMIT)
        st = rn_fail(RN_ERR_UNSUPPORTED, "%s: the ONNX model would be %.2f GB, past protobuf's 2 GB "
                     "limit for one file", path, (double)w->b.len / 1e9);
    else
        st = rn_file_write_all(path, w->b.data, w->b.len);
    onnx_w_free(w);
    return st;
}
