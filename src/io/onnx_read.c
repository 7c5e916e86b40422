/*
 * onnx_read.c - decoding an ONNX ModelProto (contract in onnx.h).
 *
 * One function per message: model -> graph -> node / attribute / tensor /
 * value info. Strings are copied (NUL-terminated, refused if they hold a
 * NUL byte); tensor values stay in the caller's buffer. Fields resnet.c
 * has no use for are skipped, as protobuf readers do.
 */
#include "io/onnx.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/status.h"
#include "io/safetensors.h"

/* TensorProto fields that hold values */
enum { T_FLOAT_DATA = 4, T_INT32_DATA = 5, T_STRING_DATA = 6, T_INT64_DATA = 7, T_RAW_DATA = 9,
       T_DOUBLE_DATA = 10, T_UINT64_DATA = 11 };

typedef struct reader {
    const char *what;
    const unsigned char *base;
} reader;

/* ---------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------- */

static rn_status malformed(const reader *rd, size_t offset, const char *in) {
    return rn_fail(RN_ERR_FORMAT, "%s: not a valid ONNX file: malformed protobuf in %s at offset %zu",
                   rd->what, in, offset);
}

/* Appends one zeroed element to *arr (count *n, capacity *cap); NULL when
 * out of memory. */
static void *push(void *arr_ptr, size_t *n, size_t *cap, size_t elem) {
    void **arr = arr_ptr;
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8, bytes;
        if (!rn_size_mul(c, elem, &bytes))
            return NULL;
        void *p = realloc(*arr, bytes);
        if (!p)
            return NULL;
        *arr = p;
        *cap = c;
    }
    char *slot = (char *)*arr + *n * elem;
    memset(slot, 0, elem);
    (*n)++;
    return slot;
}

/* A copy of a string field; sets *st on failure. */
static char *dup_field(const reader *rd, const pb_field *f, const char *in, rn_status *st) {
    if (f->wire != PB_LEN) {
        *st = malformed(rd, f->offset, in);
        return NULL;
    }
    if (memchr(f->data, 0, f->len)) {
        *st = rn_fail(RN_ERR_FORMAT, "%s: a name in %s at offset %zu holds a NUL byte", rd->what, in,
                      f->offset);
        return NULL;
    }
    char *s = malloc(f->len + 1);
    if (!s) {
        *st = rn_fail(RN_ERR_NOMEM, "%s: out of memory reading the ONNX model", rd->what);
        return NULL;
    }
    memcpy(s, f->data, f->len);
    s[f->len] = '\0';
    return s;
}

/* Sets *dst to a copy of the field (replacing an earlier one). */
static rn_status take_string(const reader *rd, const pb_field *f, const char *in, char **dst) {
    rn_status st = RN_OK;
    char *s = dup_field(rd, f, in, &st);
    if (!s)
        return st;
    free(*dst);
    *dst = s;
    return RN_OK;
}

static rn_status nomem(const reader *rd) {
    return rn_fail(RN_ERR_NOMEM, "%s: out of memory reading the ONNX model", rd->what);
}

/* Walks the fields of message f (or the whole buffer); calls on_field for each. */
typedef rn_status (*field_fn)(const reader *rd, const pb_reader *pr, const pb_field *f, void *obj);

static rn_status walk(const reader *rd, pb_reader r, const char *in, field_fn on_field, void *obj) {
    pb_field f;
    size_t bad;
    int got;
    while ((got = pb_next(&r, &f, &bad)) == 1)
        RN_TRY(on_field(rd, &r, &f, obj));
    return got < 0 ? malformed(rd, bad, in) : RN_OK;
}

/* Repeated int64 (packed or not) into a growing array. */
static rn_status take_ints(const reader *rd, const pb_field *f, const char *in, int64_t **arr,
                           size_t *n, size_t *cap) {
    if (f->wire == PB_VARINT) {
        int64_t *slot = push(arr, n, cap, sizeof **arr);
        if (!slot)
            return nomem(rd);
        *slot = (int64_t)f->varint;
        return RN_OK;
    }
    if (f->wire != PB_LEN)
        return malformed(rd, f->offset, in);
    for (size_t at = 0; at < f->len;) {
        uint64_t v;
        size_t k = pb_varint_decode(f->data + at, f->len - at, &v);
        if (k == 0)
            return malformed(rd, (size_t)(f->data + at - rd->base), in);
        int64_t *slot = push(arr, n, cap, sizeof **arr);
        if (!slot)
            return nomem(rd);
        *slot = (int64_t)v;
        at += k;
    }
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * AttributeProto
 * ------------------------------------------------------------------------- */

typedef struct attr_ctx {
    onnx_attr *a;
    size_t cap_ints;
} attr_ctx;

static rn_status attr_field(const reader *rd, const pb_reader *pr, const pb_field *f, void *obj) {
    (void)pr;
    attr_ctx *c = obj;
    onnx_attr *a = c->a;
    switch (f->number) {
    case 1: return take_string(rd, f, "an attribute", &a->name);
    case 20: a->type = (int)f->varint; return RN_OK;
    case 2:
        if (f->wire != PB_FIXED32)
            return malformed(rd, f->offset, "an attribute");
        a->f = pb_field_float(f);
        return RN_OK;
    case 3: a->i = (int64_t)f->varint; return RN_OK;
    case 4: return take_string(rd, f, "an attribute", &a->s);
    case 8: return take_ints(rd, f, "an attribute", &a->ints, &a->n_ints, &c->cap_ints);
    default: return RN_OK;
    }
}

/* ---------------------------------------------------------------------------
 * NodeProto
 * ------------------------------------------------------------------------- */

typedef struct node_ctx {
    onnx_node *n;
    size_t cap_in, cap_out, cap_attrs;
} node_ctx;

static rn_status node_field(const reader *rd, const pb_reader *pr, const pb_field *f, void *obj) {
    node_ctx *c = obj;
    onnx_node *n = c->n;
    rn_status st = RN_OK;
    switch (f->number) {
    case 1:
    case 2: {
        int in = f->number == 1;
        char **slot = push(in ? (void *)&n->inputs : (void *)&n->outputs, in ? &n->n_inputs : &n->n_outputs,
                           in ? &c->cap_in : &c->cap_out, sizeof(char *));
        if (!slot)
            return nomem(rd);
        *slot = dup_field(rd, f, "a node", &st);
        return st;
    }
    case 3: return take_string(rd, f, "a node", &n->name);
    case 4: return take_string(rd, f, "a node", &n->op_type);
    case 7: return take_string(rd, f, "a node", &n->domain);
    case 5: {
        if (f->wire != PB_LEN)
            return malformed(rd, f->offset, "a node");
        onnx_attr *a = push(&n->attrs, &n->n_attrs, &c->cap_attrs, sizeof *a);
        if (!a)
            return nomem(rd);
        attr_ctx ac = {.a = a};
        RN_TRY(walk(rd, pb_reader_sub(pr, f), "an attribute", attr_field, &ac));
        if (!a->name)
            return rn_fail(RN_ERR_FORMAT, "%s: an attribute at offset %zu has no name", rd->what,
                           f->offset);
        return RN_OK;
    }
    default: return RN_OK;
    }
}

/* ---------------------------------------------------------------------------
 * TensorProto
 * ------------------------------------------------------------------------- */

typedef struct tensor_ctx {
    onnx_tensor *t;
    int64_t *dims;
    size_t n_dims, cap_dims;
    int data_field;              /* T_* of the values seen, 0 if none */
    int64_t location;
} tensor_ctx;

static rn_status tensor_field(const reader *rd, const pb_reader *pr, const pb_field *f, void *obj) {
    (void)pr;
    tensor_ctx *c = obj;
    onnx_tensor *t = c->t;
    switch (f->number) {
    case 1: return take_ints(rd, f, "a tensor", &c->dims, &c->n_dims, &c->cap_dims);
    case 2: t->dtype = (int)f->varint; return RN_OK;
    case 8: return take_string(rd, f, "a tensor", &t->name);
    case 14: c->location = (int64_t)f->varint; return RN_OK;
    case T_RAW_DATA:
    case T_FLOAT_DATA:
    case T_DOUBLE_DATA:
    case T_INT64_DATA:
    case T_INT32_DATA:
    case T_STRING_DATA:
    case T_UINT64_DATA:
        if (f->wire == PB_LEN && f->number != T_STRING_DATA) {
            t->data = f->data;
            t->bytes = f->len;
        } else {
            t->unpacked = 1;
        }
        c->data_field = f->number;
        return RN_OK;
    default: return RN_OK;
    }
}

static size_t dtype_bytes(int dtype) {
    switch (dtype) {
    case ONNX_FLOAT: return 4;
    case ONNX_DOUBLE: return 8;
    case ONNX_FLOAT16:
    case ONNX_BFLOAT16: return 2;
    case ONNX_INT64: return 8;
    default: return 0;
    }
}

static rn_status read_tensor(const reader *rd, const pb_reader *pr, const pb_field *f, onnx_tensor *t) {
    tensor_ctx c = {.t = t};
    t->offset = f->offset;
    rn_status st = walk(rd, pb_reader_sub(pr, f), "a tensor", tensor_field, &c);
    if (st == RN_OK && !t->name)
        st = rn_fail(RN_ERR_FORMAT, "%s: an initializer at offset %zu has no name", rd->what, f->offset);
    if (st == RN_OK && c.n_dims > ONNX_MAX_DIMS)
        st = rn_fail(RN_ERR_MISMATCH, "%s: initializer '%s' has %zu dimensions (at most %d are read)",
                     rd->what, t->name, c.n_dims, ONNX_MAX_DIMS);
    size_t numel = 1;
    for (size_t i = 0; st == RN_OK && i < c.n_dims; i++) {
        if (c.dims[i] < 0 || !rn_size_mul(numel, (size_t)c.dims[i], &numel))
            st = rn_fail(RN_ERR_FORMAT, "%s: initializer '%s' at offset %zu has a bad shape", rd->what,
                         t->name, f->offset);
        t->dims[i] = c.dims[i];
    }
    free(c.dims);
    if (st != RN_OK)
        return st;
    t->ndim = (int)c.n_dims;
    t->numel = numel;
    t->external = c.location == 1;
    /* Values read: raw_data of a type of known size, float_data of a FLOAT and double_data of
     * a DOUBLE tensor (packed); their size must be the shape's. Any other field (int32_data,
     * where FLOAT16 values live, int64_data, a typed field of another type, ...) is not read:
     * onnx_tensor_floats refuses the tensor by name. */
    size_t eb = 0;
    if (c.data_field == T_RAW_DATA)
        eb = dtype_bytes(t->dtype);
    else if (c.data_field == T_FLOAT_DATA && t->dtype == ONNX_FLOAT)
        eb = 4;
    else if (c.data_field == T_DOUBLE_DATA && t->dtype == ONNX_DOUBLE)
        eb = 8;
    if (c.data_field != 0 && eb == 0) {
        t->unpacked = 1;
        return RN_OK;
    }
    size_t need;
    if (!t->external && !t->unpacked && eb && (!rn_size_mul(numel, eb, &need) || need != t->bytes))
        return rn_fail(RN_ERR_FORMAT, "%s: initializer '%s' at offset %zu holds %zu bytes of values, "
                       "its shape and type need %zu", rd->what, t->name, f->offset, t->bytes,
                       rn_size_mul(numel, eb, &need) ? need : (size_t)-1);
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * ValueInfoProto -> TypeProto -> TypeProto.Tensor -> TensorShapeProto
 * ------------------------------------------------------------------------- */

static rn_status dim_field(const reader *rd, const pb_reader *pr, const pb_field *f, void *obj) {
    (void)rd, (void)pr;
    int64_t *d = obj;
    if (f->number == 1 && f->wire == PB_VARINT)
        *d = (int64_t)f->varint;
    return RN_OK;
}

static rn_status shape_field(const reader *rd, const pb_reader *pr, const pb_field *f, void *obj) {
    onnx_value_info *v = obj;
    if (f->number != 1)
        return RN_OK;
    if (f->wire != PB_LEN)
        return malformed(rd, f->offset, "a shape");
    if (v->ndim < 0)
        v->ndim = 0;
    int64_t d = -1;
    RN_TRY(walk(rd, pb_reader_sub(pr, f), "a shape", dim_field, &d));
    if (v->ndim < ONNX_MAX_DIMS)
        v->dims[v->ndim] = d;
    v->ndim++;
    return RN_OK;
}

static rn_status tensor_type_field(const reader *rd, const pb_reader *pr, const pb_field *f, void *obj) {
    onnx_value_info *v = obj;
    if (f->number == 1)
        v->elem_type = (int)f->varint;
    else if (f->number == 2 && f->wire == PB_LEN) {
        v->ndim = 0;
        RN_TRY(walk(rd, pb_reader_sub(pr, f), "a shape", shape_field, v));
    }
    return RN_OK;
}

static rn_status type_field(const reader *rd, const pb_reader *pr, const pb_field *f, void *obj) {
    if (f->number == 1 && f->wire == PB_LEN)
        return walk(rd, pb_reader_sub(pr, f), "a type", tensor_type_field, obj);
    return RN_OK;
}

static rn_status value_info_field(const reader *rd, const pb_reader *pr, const pb_field *f, void *obj) {
    onnx_value_info *v = obj;
    if (f->number == 1)
        return take_string(rd, f, "a graph input or output", &v->name);
    if (f->number == 2 && f->wire == PB_LEN)
        return walk(rd, pb_reader_sub(pr, f), "a type", type_field, v);
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * GraphProto and ModelProto
 * ------------------------------------------------------------------------- */

typedef struct model_ctx {
    onnx_model *m;
    size_t cap_nodes, cap_inits, cap_in, cap_out, cap_meta;
    int graphs;
} model_ctx;

static rn_status graph_field(const reader *rd, const pb_reader *pr, const pb_field *f, void *obj) {
    model_ctx *c = obj;
    onnx_model *m = c->m;
    if ((f->number == 1 || f->number == 5 || f->number == 11 || f->number == 12) && f->wire != PB_LEN)
        return malformed(rd, f->offset, "the graph");
    switch (f->number) {
    case 1: {
        onnx_node *n = push(&m->nodes, &m->n_nodes, &c->cap_nodes, sizeof *n);
        if (!n)
            return nomem(rd);
        n->offset = f->offset;
        node_ctx nc = {.n = n};
        RN_TRY(walk(rd, pb_reader_sub(pr, f), "a node", node_field, &nc));
        if (!n->op_type)
            return rn_fail(RN_ERR_FORMAT, "%s: the node at offset %zu has no op_type", rd->what,
                           f->offset);
        if ((!n->name && !(n->name = strdup(""))) || (!n->domain && !(n->domain = strdup(""))))
            return nomem(rd);
        return RN_OK;
    }
    case 5: {
        onnx_tensor *t = push(&m->inits, &m->n_inits, &c->cap_inits, sizeof *t);
        if (!t)
            return nomem(rd);
        return read_tensor(rd, pr, f, t);
    }
    case 11:
    case 12: {
        int in = f->number == 11;
        onnx_value_info *v = push(in ? (void *)&m->inputs : (void *)&m->outputs,
                                  in ? &m->n_inputs : &m->n_outputs, in ? &c->cap_in : &c->cap_out,
                                  sizeof *v);
        if (!v)
            return nomem(rd);
        v->ndim = -1;
        RN_TRY(walk(rd, pb_reader_sub(pr, f), "a graph input or output", value_info_field, v));
        if (!v->name)
            return rn_fail(RN_ERR_FORMAT, "%s: a graph %s at offset %zu has no name", rd->what,
                           in ? "input" : "output", f->offset);
        return RN_OK;
    }
    case 15: m->n_sparse++; return RN_OK; /* sparse_initializer */
    default: return RN_OK;
    }
}

typedef struct opset_ctx {
    char *domain;
    int64_t version;
} opset_ctx;

static rn_status opset_field(const reader *rd, const pb_reader *pr, const pb_field *f, void *obj) {
    (void)pr;
    opset_ctx *o = obj;
    if (f->number == 1)
        return take_string(rd, f, "an opset", &o->domain);
    if (f->number == 2)
        o->version = (int64_t)f->varint;
    return RN_OK;
}

static rn_status meta_field(const reader *rd, const pb_reader *pr, const pb_field *f, void *obj) {
    (void)pr;
    onnx_meta *e = obj;
    if (f->number == 1)
        return take_string(rd, f, "metadata", &e->key);
    if (f->number == 2)
        return take_string(rd, f, "metadata", &e->value);
    return RN_OK;
}

static rn_status model_field(const reader *rd, const pb_reader *pr, const pb_field *f, void *obj) {
    model_ctx *c = obj;
    onnx_model *m = c->m;
    if ((f->number == 7 || f->number == 8 || f->number == 14) && f->wire != PB_LEN)
        return malformed(rd, f->offset, "the model");
    switch (f->number) {
    case 1: m->ir_version = (int64_t)f->varint; return RN_OK;
    case 2: return take_string(rd, f, "the model", &m->producer_name);
    case 3: return take_string(rd, f, "the model", &m->producer_version);
    case 7:
        if (c->graphs++)
            return rn_fail(RN_ERR_FORMAT, "%s: a second graph at offset %zu", rd->what, f->offset);
        return walk(rd, pb_reader_sub(pr, f), "the graph", graph_field, c);
    case 8: {
        opset_ctx o = {0};
        rn_status st = walk(rd, pb_reader_sub(pr, f), "an opset", opset_field, &o);
        if (st == RN_OK && (!o.domain || !o.domain[0] || strcmp(o.domain, "ai.onnx") == 0))
            m->opset = o.version;
        free(o.domain);
        return st;
    }
    case 14: {
        onnx_meta *e = push(&m->meta, &m->n_meta, &c->cap_meta, sizeof *e);
        if (!e)
            return nomem(rd);
        RN_TRY(walk(rd, pb_reader_sub(pr, f), "metadata", meta_field, e));
        if ((!e->key && !(e->key = strdup(""))) || (!e->value && !(e->value = strdup(""))))
            return nomem(rd);
        return RN_OK;
    }
    case 20:
    case 25: m->has_functions = 1; return RN_OK;
    default: return RN_OK;
    }
}

rn_status onnx_read(const unsigned char *buf, size_t len, const char *what, onnx_model *out) {
    memset(out, 0, sizeof *out);
    reader rd = {.what = what ? what : "<buffer>", .base = buf};
    model_ctx c = {.m = out};
    rn_status st = walk(&rd, pb_reader_init(buf, len, buf), "the model", model_field, &c);
    if (st == RN_OK && c.graphs == 0)
        st = rn_fail(RN_ERR_FORMAT, "%s: the ONNX model has no graph", rd.what);
    if (st != RN_OK)
        onnx_free(out);
    return st;
}

/* ---------------------------------------------------------------------------
 * Freeing and looking up
 * ------------------------------------------------------------------------- */

static void free_strings(char **s, size_t n) {
    for (size_t i = 0; s && i < n; i++)
        free(s[i]);
    free(s);
}

void onnx_free(onnx_model *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->n_nodes; i++) {
        onnx_node *n = &m->nodes[i];
        free(n->name), free(n->op_type), free(n->domain);
        free_strings(n->inputs, n->n_inputs);
        free_strings(n->outputs, n->n_outputs);
        for (size_t j = 0; j < n->n_attrs; j++)
            free(n->attrs[j].name), free(n->attrs[j].s), free(n->attrs[j].ints);
        free(n->attrs);
    }
    free(m->nodes);
    for (size_t i = 0; i < m->n_inits; i++)
        free(m->inits[i].name);
    free(m->inits);
    for (size_t i = 0; i < m->n_inputs; i++)
        free(m->inputs[i].name);
    free(m->inputs);
    for (size_t i = 0; i < m->n_outputs; i++)
        free(m->outputs[i].name);
    free(m->outputs);
    for (size_t i = 0; i < m->n_meta; i++)
        free(m->meta[i].key), free(m->meta[i].value);
    free(m->meta);
    free(m->producer_name), free(m->producer_version);
    memset(m, 0, sizeof *m);
}

const onnx_attr *onnx_node_attr(const onnx_node *n, const char *name) {
    for (size_t i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

const char *onnx_dtype_name(int dtype) {
    static const char *names[] = {"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32",
                                  "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64",
                                  "COMPLEX64", "COMPLEX128", "BFLOAT16"};
    return dtype >= 0 && dtype < (int)(sizeof names / sizeof names[0]) ? names[dtype] : "an unknown type";
}

rn_status onnx_tensor_floats(const onnx_tensor *t, const char *what, float *dst) {
    if (t->external)
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: initializer '%s' keeps its values in another file "
                       "(ONNX external data); save the model with its weights inside", what, t->name);
    st_dtype d;
    switch (t->dtype) {
    case ONNX_FLOAT: d = ST_F32; break;
    case ONNX_FLOAT16: d = ST_F16; break;
    case ONNX_BFLOAT16: d = ST_BF16; break;
    case ONNX_DOUBLE: d = ST_F64; break;
    default:
        return rn_fail(RN_ERR_MISMATCH, "%s: initializer '%s' is %s, expected a float type", what,
                       t->name, onnx_dtype_name(t->dtype));
    }
    if (t->unpacked || (t->numel && !t->data))
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: initializer '%s' stores its values in a form not read "
                       "(only raw_data and packed float_data / double_data are)", what, t->name);
    if (t->numel)
        st_convert_to_float(d, t->data, dst, t->numel);
    return RN_OK;
}
