/* pickle.c - a restricted unpickler: plain values, OrderedDict and torch tensors only. */
#include "io/pickle.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/status.h"
#include "io/json.h"

#define NO_OBJ UINT32_MAX

/* ---------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
} stypes[] = {
    [PK_S_FLOAT] = {"FloatStorage", 4}, [PK_S_HALF] = {"HalfStorage", 2},
    [PK_S_BFLOAT16] = {"BFloat16Storage", 2}, [PK_S_DOUBLE] = {"DoubleStorage", 8},
    [PK_S_LONG] = {"LongStorage", 8}, [PK_S_INT] = {"IntStorage", 4},
    [PK_S_SHORT] = {"ShortStorage", 2}, [PK_S_CHAR] = {"CharStorage", 1},
    [PK_S_BYTE] = {"ByteStorage", 1}, [PK_S_BOOL] = {"BoolStorage", 1},
};
#define N_STYPES (sizeof stypes / sizeof stypes[0])

const char *pk_stype_name(pk_stype type) {
    return (unsigned)type < N_STYPES ? stypes[type].name : "?";
}

size_t pk_stype_size(pk_stype type) { return (unsigned)type < N_STYPES ? stypes[type].size : 0; }

const char *pk_kind_name(pk_kind kind) {
    static const char *const names[] = {"None", "bool", "int", "float", "str", "tuple", "list",
                                        "dict", "global", "storage", "tensor", "big int"};
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

/* ---------------------------------------------------------------------------
 * The machine
 * ------------------------------------------------------------------------- */

typedef struct vm {
    const unsigned char *buf;
    size_t len, pos;         /* pos: the next byte */
    size_t op;               /* where the current opcode starts */
    const char *what;
    pk_doc *doc;
    uint32_t *stack;
    size_t sp, stack_cap;
    size_t marks[PK_MAX_MARKS];
    size_t n_marks;
    uint32_t *memo;          /* NO_OBJ where unset */
    size_t memo_len;         /* allocated (and initialised) slots */
    size_t memo_next;        /* MEMOIZE's index: 1 + highest index set */
} vm;

static rn_status fail(vm *m, const char *fmt, const char *detail) {
    return rn_fail(RN_ERR_FORMAT, "%s: byte %zu: %s%s", m->what, m->op, fmt, detail ? detail : "");
}

static rn_status nomem(vm *m) {
    return rn_fail(RN_ERR_NOMEM, "%s: byte %zu: out of memory", m->what, m->op);
}

/* Grows *p (of *cap elements of `size` bytes) to hold at least `need`. */
static int grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap)
        return 1;
    size_t n = *cap ? *cap : 16, bytes;
    while (n < need)
        if (!rn_size_mul(n, 2, &n))
            return 0;
    if (!rn_size_mul(n, size, &bytes))
        return 0;
    void *q = realloc(*p, bytes);
    if (!q)
        return 0;
    *p = q;
    *cap = n;
    return 1;
}

/* A new object of `kind`; returns its index in *out. */
static rn_status new_obj(vm *m, pk_kind kind, uint32_t *out) {
    pk_doc *d = m->doc;
    if (d->count >= PK_MAX_OBJECTS)
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: byte %zu: more than %u objects", m->what, m->op,
                       PK_MAX_OBJECTS);
    if (!grow((void **)&d->objs, &d->cap, d->count + 1, sizeof *d->objs))
        return nomem(m);
    pk_obj *o = &d->objs[d->count];
    memset(o, 0, sizeof *o);
    o->kind = (uint8_t)kind;
    o->offset = m->op;
    if (kind == PK_TUPLE || kind == PK_LIST || kind == PK_DICT)
        o->depth = 1;
    *out = (uint32_t)d->count++;
    return RN_OK;
}

static rn_status push(vm *m, uint32_t obj) {
    if (m->sp >= PK_MAX_STACK)
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: byte %zu: stack deeper than %u", m->what, m->op,
                       PK_MAX_STACK);
    if (!grow((void **)&m->stack, &m->stack_cap, m->sp + 1, sizeof *m->stack))
        return nomem(m);
    m->stack[m->sp++] = obj;
    return RN_OK;
}

static rn_status push_new(vm *m, pk_kind kind, uint32_t *out) {
    uint32_t o;
    RN_TRY(new_obj(m, kind, &o));
    if (out)
        *out = o;
    return push(m, o);
}

/* The stack entries above the innermost MARK may be popped. */
static size_t floor_of(const vm *m) { return m->n_marks ? m->marks[m->n_marks - 1] : 0; }

static rn_status need(vm *m, size_t n) {
    if (m->sp - floor_of(m) < n)
        return fail(m, "stack underflow", NULL);
    return RN_OK;
}

static rn_status pop(vm *m, uint32_t *out) {
    RN_TRY(need(m, 1));
    *out = m->stack[--m->sp];
    return RN_OK;
}

/* Pops the innermost MARK; *start is where its items begin. */
static rn_status pop_mark(vm *m, size_t *start) {
    if (m->n_marks == 0)
        return fail(m, "no MARK to pop", NULL);
    *start = m->marks[--m->n_marks];
    return RN_OK;
}

static pk_obj *obj(vm *m, uint32_t i) { return &m->doc->objs[i]; }

static rn_status read_bytes(vm *m, size_t n, const unsigned char **out) {
    if (m->len - m->pos < n)
        return fail(m, "operand runs past the end of the pickle", NULL);
    *out = m->buf + m->pos;
    m->pos += n;
    return RN_OK;
}

static uint32_t le32(const unsigned char *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* ---------------------------------------------------------------------------
 * Containers
 * ------------------------------------------------------------------------- */

/* Raises container c's depth for a new child `child`. */
static rn_status nest(vm *m, uint32_t c, uint32_t child) {
    unsigned d = obj(m, child)->depth;
    if (d + 1 > obj(m, c)->depth) {
        if (d + 1 > PK_MAX_DEPTH)
            return rn_fail(RN_ERR_UNSUPPORTED, "%s: byte %zu: containers nested deeper than %d",
                           m->what, m->op, PK_MAX_DEPTH);
        obj(m, c)->depth = (uint8_t)(d + 1);
    }
    return RN_OK;
}

/* Appends the stack entries [from, from + n) to list/dict/tuple c (whose n
 * counts items, or pairs for a dict). The stack is not touched when n is 0:
 * it may not exist yet. */
static rn_status add_items(vm *m, uint32_t c, size_t from, size_t n) {
    pk_doc *d = m->doc;
    if (n == 0)
        return RN_OK;
    const uint32_t *items = m->stack + from;
    if (n > PK_MAX_ITEMS - d->items)
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: byte %zu: containers hold more than %u items",
                       m->what, m->op, PK_MAX_ITEMS);
    for (size_t i = 0; i < n; i++)
        RN_TRY(nest(m, c, items[i]));
    pk_obj *o = obj(m, c);
    size_t have = o->kind == PK_DICT ? 2 * (size_t)o->n : o->n, cap = o->cap;
    if (!grow((void **)&o->u.items, &cap, have + n, sizeof *o->u.items))
        return nomem(m);
    o->cap = (uint32_t)cap;
    memcpy(o->u.items + have, items, n * sizeof *items);
    o->n = (uint32_t)(o->kind == PK_DICT ? (have + n) / 2 : have + n);
    d->items += n;
    return RN_OK;
}

/* Pops the top n entries into a new tuple, pushed in their place. */
static rn_status make_tuple(vm *m, size_t n) {
    RN_TRY(need(m, n));
    uint32_t t;
    RN_TRY(new_obj(m, PK_TUPLE, &t));
    RN_TRY(add_items(m, t, m->sp - n, n));
    m->sp -= n;
    return push(m, t);
}

/* Pops the items above the innermost MARK into a new list, tuple or dict. */
static rn_status make_from_mark(vm *m, pk_kind kind) {
    size_t start = 0;
    RN_TRY(pop_mark(m, &start));
    size_t n = m->sp - start;
    if (kind == PK_DICT && n % 2)
        return fail(m, "DICT with an odd number of items", NULL);
    uint32_t c;
    RN_TRY(new_obj(m, kind, &c));
    RN_TRY(add_items(m, c, start, n));
    m->sp = start;
    return push(m, c);
}

/* SETITEM(S) / APPEND(S): adds the n entries on top of the stack to the
 * container below them, which must be of `kind`. */
static rn_status add_to(vm *m, size_t n, pk_kind kind, const char *opname) {
    if (m->sp - floor_of(m) < n + 1)
        return fail(m, "stack underflow in ", opname);
    uint32_t c = m->stack[m->sp - n - 1];
    if (obj(m, c)->kind != kind)
        return rn_fail(RN_ERR_FORMAT, "%s: byte %zu: %s on a %s, not a %s", m->what, m->op,
                       opname, pk_kind_name((pk_kind)obj(m, c)->kind), pk_kind_name(kind));
    RN_TRY(add_items(m, c, m->sp - n, n));
    m->sp -= n;
    return RN_OK;
}

/* SETITEMS / APPENDS: the items above the innermost MARK. */
static rn_status add_marked(vm *m, pk_kind kind, const char *opname) {
    size_t start = 0;
    RN_TRY(pop_mark(m, &start));
    size_t n = m->sp - start;
    if (kind == PK_DICT && n % 2)
        return fail(m, "odd number of items in ", opname);
    if (start <= floor_of(m))
        return fail(m, "no container below the MARK of ", opname);
    return add_to(m, n, kind, opname);
}

/* ---------------------------------------------------------------------------
 * Scalars and strings
 * ------------------------------------------------------------------------- */

static rn_status push_int(vm *m, int64_t v) {
    uint32_t o;
    RN_TRY(push_new(m, PK_INT, &o));
    obj(m, o)->u.i = v;
    return RN_OK;
}

/* A PK_STR or PK_BIGINT holding a NUL-terminated copy of the n bytes at p. */
static rn_status push_bytes(vm *m, pk_kind kind, const unsigned char *p, size_t n) {
    if (n > UINT32_MAX - 1)
        return fail(m, "string too long", NULL);
    char *s = malloc(n + 1);
    if (!s)
        return nomem(m);
    memcpy(s, p, n);
    s[n] = '\0';
    uint32_t o;
    rn_status st = push_new(m, kind, &o);
    if (st != RN_OK) {
        free(s);
        return st;
    }
    obj(m, o)->u.s = s;
    obj(m, o)->n = (uint32_t)n;
    return RN_OK;
}

static rn_status push_str(vm *m, size_t n) {
    const unsigned char *p = NULL;
    RN_TRY(read_bytes(m, n, &p));
    if (!json_utf8_valid((const char *)p, n))
        return fail(m, "string is not valid UTF-8", NULL);
    return push_bytes(m, PK_STR, p, n);
}

/* LONG1: n little-endian two's complement bytes. Beyond int64 it becomes
 * a PK_BIGINT, which no tensor field accepts. */
static rn_status push_long1(vm *m) {
    const unsigned char *p = NULL;
    RN_TRY(read_bytes(m, 1, &p));
    size_t n = p[0];
    RN_TRY(read_bytes(m, n, &p));
    for (size_t i = 8; i < n; i++)
        if (p[i] != (p[7] & 0x80 ? 0xff : 0x00))
            return push_bytes(m, PK_BIGINT, p, n);
    n = n > 8 ? 8 : n;
    uint64_t u = 0;
    for (size_t i = 0; i < n; i++)
        u |= (uint64_t)p[i] << (8 * i);
    if (n > 0 && n < 8 && (p[n - 1] & 0x80))
        u |= ~(uint64_t)0 << (8 * n);
    return push_int(m, (int64_t)u);
}

static rn_status push_float(vm *m) {
    const unsigned char *p = NULL;
    RN_TRY(read_bytes(m, 8, &p));
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    uint32_t o;
    RN_TRY(push_new(m, PK_FLOAT, &o));
    memcpy(&obj(m, o)->u.f, &u, sizeof u);
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Globals, REDUCE, BUILD, persistent ids
 * ------------------------------------------------------------------------- */

static rn_status push_global(vm *m, const char *module, size_t mlen, const char *name,
                             size_t nlen) {
    int g = -1, sub = 0;
#define IS(s, l, lit) ((l) == sizeof(lit) - 1 && memcmp((s), (lit), (l)) == 0)
    if (IS(module, mlen, "collections") && IS(name, nlen, "OrderedDict")) {
        g = PK_G_ORDERED_DICT;
    } else if (IS(module, mlen, "torch._utils") && IS(name, nlen, "_rebuild_tensor_v2")) {
        g = PK_G_REBUILD_TENSOR_V2;
    } else if (IS(module, mlen, "torch._utils") && IS(name, nlen, "_rebuild_tensor")) {
        g = PK_G_REBUILD_TENSOR;
    } else if (IS(module, mlen, "torch._utils") && IS(name, nlen, "_rebuild_parameter")) {
        g = PK_G_REBUILD_PARAMETER;
    } else if (IS(module, mlen, "torch")) {
        for (size_t i = 0; i < N_STYPES; i++)
            if (nlen == strlen(stypes[i].name) && memcmp(name, stypes[i].name, nlen) == 0) {
                g = PK_G_STORAGE;
                sub = (int)i;
            }
    }
#undef IS
    if (g < 0) {
        char full[200], shown[120];
        snprintf(full, sizeof full, "%.*s.%.*s", (int)(mlen < 90 ? mlen : 90), module,
                 (int)(nlen < 90 ? nlen : 90), name);
        json_printable(shown, sizeof shown, full);
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: byte %zu: global '%s' is not allowed (only "
                       "collections.OrderedDict, torch._utils._rebuild_tensor(_v2), "
                       "torch._utils._rebuild_parameter and torch storage types: a file that "
                       "pickles a whole model or other Python objects cannot be read; save "
                       "model.state_dict() instead)", m->what,
                       m->op, shown);
    }
    uint32_t o;
    RN_TRY(push_new(m, PK_GLOBAL, &o));
    obj(m, o)->u.i = g;
    obj(m, o)->sub = (uint8_t)sub;
    return RN_OK;
}

/* GLOBAL: "module\nname\n". */
static rn_status op_global(vm *m) {
    const unsigned char *start[2];
    size_t len[2];
    for (int k = 0; k < 2; k++) {
        start[k] = m->buf + m->pos;
        size_t room = m->len - m->pos, max = room < 256 ? room : 256;
        const unsigned char *nl = memchr(start[k], '\n', max);
        if (!nl)
            return fail(m, "GLOBAL without a newline-terminated ", k ? "name" : "module");
        len[k] = (size_t)(nl - start[k]);
        m->pos += len[k] + 1;
    }
    return push_global(m, (const char *)start[0], len[0], (const char *)start[1], len[1]);
}

static rn_status op_stack_global(vm *m) {
    uint32_t name, module;
    RN_TRY(pop(m, &name));
    RN_TRY(pop(m, &module));
    if (obj(m, name)->kind != PK_STR || obj(m, module)->kind != PK_STR)
        return fail(m, "STACK_GLOBAL operands are not strings", NULL);
    return push_global(m, obj(m, module)->u.s, obj(m, module)->n, obj(m, name)->u.s,
                       obj(m, name)->n);
}

static int is_int(const pk_obj *o) { return o->kind == PK_INT; }

/* A tuple of at most PK_MAX_DIMS non-negative ints. */
static int is_dims(vm *m, uint32_t t) {
    const pk_obj *o = obj(m, t);
    if (o->kind != PK_TUPLE || o->n > PK_MAX_DIMS)
        return 0;
    for (uint32_t i = 0; i < o->n; i++)
        if (!is_int(obj(m, o->u.items[i])) || obj(m, o->u.items[i])->u.i < 0)
            return 0;
    return 1;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
 * backward_hooks[, metadata]), or with v2 == 0 the _rebuild_tensor(storage,
 * offset, size, stride) of PyTorch 0.3 and earlier. */
static rn_status rebuild_tensor(vm *m, const pk_obj *args, int v2) {
    const uint32_t *a = args->u.items;
    const char *fn = v2 ? "_rebuild_tensor_v2: " : "_rebuild_tensor: ";
    if (v2 ? args->n != 6 && args->n != 7 : args->n != 4)
        return fail(m, fn, v2 ? "takes 6 or 7 arguments" : "takes 4 arguments");
    if (obj(m, a[0])->kind != PK_STORAGE)
        return fail(m, fn, "argument 1 is not a storage");
    if (!is_int(obj(m, a[1])) || obj(m, a[1])->u.i < 0)
        return fail(m, fn, "storage offset is not a non-negative int");
    if (!is_dims(m, a[2]) || !is_dims(m, a[3]) || obj(m, a[2])->n != obj(m, a[3])->n)
        return fail(m, fn, "size and stride are not tuples of the same length (at most 8) of "
                    "non-negative ints");
    if (v2 && obj(m, a[4])->kind != PK_BOOL)
        return fail(m, fn, "requires_grad is not a bool");
    if (v2 && obj(m, a[5])->kind != PK_DICT && obj(m, a[5])->kind != PK_NONE)
        return fail(m, fn, "backward_hooks is not a dict");
    if (v2 && args->n == 7 && obj(m, a[6])->kind != PK_DICT && obj(m, a[6])->kind != PK_NONE)
        return fail(m, fn, "metadata is not a dict");
    uint32_t t;
    RN_TRY(push_new(m, PK_TENSOR, &t));
    pk_obj *o = obj(m, t);
    o->u.tensor.storage = a[0];
    o->u.tensor.offset = obj(m, a[1])->u.i;
    o->u.tensor.size = a[2];
    o->u.tensor.stride = a[3];
    return RN_OK;
}

static rn_status op_reduce(vm *m) {
    uint32_t args, fn;
    RN_TRY(pop(m, &args));
    RN_TRY(pop(m, &fn));
    const pk_obj *f = obj(m, fn), *a = obj(m, args);
    if (f->kind != PK_GLOBAL)
        return rn_fail(RN_ERR_FORMAT, "%s: byte %zu: REDUCE calls a %s", m->what, m->op,
                       pk_kind_name((pk_kind)f->kind));
    if (a->kind != PK_TUPLE)
        return fail(m, "REDUCE arguments are not a tuple", NULL);
    switch ((pk_global)f->u.i) {
    case PK_G_ORDERED_DICT:
        if (a->n != 0)
            return fail(m, "OrderedDict called with arguments", NULL);
        return push_new(m, PK_DICT, NULL);
    case PK_G_REBUILD_TENSOR_V2:
        return rebuild_tensor(m, a, 1);
    case PK_G_REBUILD_TENSOR:
        return rebuild_tensor(m, a, 0);
    case PK_G_REBUILD_PARAMETER:
        if (a->n != 3 || obj(m, a->u.items[0])->kind != PK_TENSOR ||
            obj(m, a->u.items[1])->kind != PK_BOOL ||
            (obj(m, a->u.items[2])->kind != PK_DICT && obj(m, a->u.items[2])->kind != PK_NONE))
            return fail(m, "_rebuild_parameter takes (tensor, bool, dict)", NULL);
        return push(m, a->u.items[0]);
    case PK_G_STORAGE:
        break;
    }
    return rn_fail(RN_ERR_UNSUPPORTED, "%s: byte %zu: torch.%s may only appear in a persistent "
                   "id, not be called", m->what, m->op, pk_stype_name((pk_stype)f->sub));
}

/* BUILD on a dict (OrderedDict's _metadata): the state is dropped. */
static rn_status op_build(vm *m) {
    uint32_t state;
    RN_TRY(pop(m, &state));
    RN_TRY(need(m, 1));
    const pk_obj *target = obj(m, m->stack[m->sp - 1]), *s = obj(m, state);
    if (target->kind != PK_DICT)
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: byte %zu: BUILD on a %s is not supported",
                       m->what, m->op, pk_kind_name((pk_kind)target->kind));
    if (s->kind != PK_DICT && s->kind != PK_NONE && s->kind != PK_TUPLE)
        return fail(m, "BUILD state is not a dict", NULL);
    return RN_OK;
}

/* BINPERSID: ('storage', torch.XStorage, key, location, numel), or in the
 * legacy format the same with a sixth item, view_metadata, which must be
 * None (storage views were written only by PyTorch 0.3 and earlier). */
static rn_status op_persid(vm *m) {
    uint32_t pid;
    RN_TRY(pop(m, &pid));
    const pk_obj *t = obj(m, pid);
    const uint32_t *a = t->u.items;
    if (t->kind != PK_TUPLE || (t->n != 5 && t->n != 6) || obj(m, a[0])->kind != PK_STR ||
        strcmp(obj(m, a[0])->u.s, "storage") != 0)
        return fail(m, "persistent id is not a ('storage', type, key, location, numel"
                    "[, view_metadata]) tuple", NULL);
    if (t->n == 6 && obj(m, a[5])->kind != PK_NONE)
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: byte %zu: persistent id: storage views "
                       "(view_metadata, written by PyTorch 0.3 and earlier) are not supported",
                       m->what, m->op);
    const pk_obj *type = obj(m, a[1]), *key = obj(m, a[2]), *numel = obj(m, a[4]);
    if (type->kind != PK_GLOBAL || type->u.i != PK_G_STORAGE)
        return fail(m, "persistent id: the storage type is not a torch storage class", NULL);
    if (key->kind != PK_STR || obj(m, a[3])->kind != PK_STR)
        return fail(m, "persistent id: key or location is not a str", NULL);
    if (!is_int(numel) || numel->u.i < 0)
        return fail(m, "persistent id: numel is not a non-negative int", NULL);
    uint8_t sub = type->sub;
    int64_t count = numel->u.i;
    uint32_t o;
    RN_TRY(push_new(m, PK_STORAGE, &o)); /* moves the objects: no pointers into them below */
    obj(m, o)->sub = sub;
    obj(m, o)->u.storage.key = a[2];
    obj(m, o)->u.storage.numel = count;
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Memo
 * ------------------------------------------------------------------------- */

static rn_status memo_put(vm *m, size_t index) {
    if (index >= PK_MAX_MEMO)
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: byte %zu: memo index %zu beyond the limit of %u",
                       m->what, m->op, index, PK_MAX_MEMO);
    if (m->sp == floor_of(m))
        return fail(m, "memo store with nothing on the stack above the MARK", NULL);
    size_t old = m->memo_len;
    if (!grow((void **)&m->memo, &m->memo_len, index + 1, sizeof *m->memo))
        return nomem(m);
    for (size_t i = old; i < m->memo_len; i++)
        m->memo[i] = NO_OBJ;
    m->memo[index] = m->stack[m->sp - 1];
    if (index >= m->memo_next)
        m->memo_next = index + 1;
    return RN_OK;
}

static rn_status memo_get(vm *m, size_t index) {
    if (index >= m->memo_len || m->memo[index] == NO_OBJ) {
        char detail[32];
        snprintf(detail, sizeof detail, "%zu", index);
        return fail(m, "memo index is not set: ", detail);
    }
    return push(m, m->memo[index]);
}

/* ---------------------------------------------------------------------------
 * The loop
 * ------------------------------------------------------------------------- */

static rn_status step(vm *m, int *stop) {
    const unsigned char *p = NULL;
    m->op = m->pos;
    RN_TRY(read_bytes(m, 1, &p));
    unsigned char code = p[0];
    switch (code) {
    case 0x80: /* PROTO */
        RN_TRY(read_bytes(m, 1, &p));
        if (p[0] > 5)
            return fail(m, "unknown pickle protocol", NULL);
        return RN_OK;
    case 0x95: /* FRAME: a length hint, checked and ignored */
        RN_TRY(read_bytes(m, 8, &p));
        if ((uint64_t)le32(p) + ((uint64_t)le32(p + 4) << 32) > m->len - m->pos)
            return fail(m, "FRAME runs past the end of the pickle", NULL);
        return RN_OK;
    case '.': /* STOP */
        if (m->n_marks != 0 || m->sp != 1)
            return fail(m, "STOP with an open MARK or not exactly one value on the stack", NULL);
        m->doc->root = m->stack[0];
        *stop = 1;
        return RN_OK;
    case '(': /* MARK */
        if (m->n_marks >= PK_MAX_MARKS)
            return rn_fail(RN_ERR_UNSUPPORTED, "%s: byte %zu: more than %d nested MARKs",
                           m->what, m->op, PK_MAX_MARKS);
        m->marks[m->n_marks++] = m->sp;
        return RN_OK;
    case '}': return push_new(m, PK_DICT, NULL);
    case ']': return push_new(m, PK_LIST, NULL);
    case ')': return push_new(m, PK_TUPLE, NULL);
    case 't': return make_from_mark(m, PK_TUPLE);
    case 'l': return make_from_mark(m, PK_LIST);
    case 'd': return make_from_mark(m, PK_DICT);
    case 0x85: return make_tuple(m, 1);
    case 0x86: return make_tuple(m, 2);
    case 0x87: return make_tuple(m, 3);
    case 'X': /* BINUNICODE */
        RN_TRY(read_bytes(m, 4, &p));
        return push_str(m, le32(p));
    case 0x8c: /* SHORT_BINUNICODE */
    case 'U':  /* SHORT_BINSTRING: a Python 2 str, read as UTF-8 as torch.load does */
        RN_TRY(read_bytes(m, 1, &p));
        return push_str(m, p[0]);
    case 'T': /* BINSTRING (Python 2) */
        RN_TRY(read_bytes(m, 4, &p));
        return push_str(m, le32(p));
    case 'J': /* BININT */
        RN_TRY(read_bytes(m, 4, &p));
        return push_int(m, (int32_t)le32(p));
    case 'K': /* BININT1 */
        RN_TRY(read_bytes(m, 1, &p));
        return push_int(m, p[0]);
    case 'M': /* BININT2 */
        RN_TRY(read_bytes(m, 2, &p));
        return push_int(m, p[0] | p[1] << 8);
    case 0x8a: return push_long1(m);
    case 'G': return push_float(m);
    case 0x88:
    case 0x89: { /* NEWTRUE, NEWFALSE */
        uint32_t o;
        RN_TRY(push_new(m, PK_BOOL, &o));
        obj(m, o)->u.i = code == 0x88;
        return RN_OK;
    }
    case 'N': return push_new(m, PK_NONE, NULL);
    case 'c': return op_global(m);
    case 0x93: return op_stack_global(m);
    case 'R': return op_reduce(m);
    case 'b': return op_build(m);
    case 'Q': return op_persid(m);
    case 'q': /* BINPUT */
        RN_TRY(read_bytes(m, 1, &p));
        return memo_put(m, p[0]);
    case 'r': /* LONG_BINPUT */
        RN_TRY(read_bytes(m, 4, &p));
        return memo_put(m, le32(p));
    case 0x94: return memo_put(m, m->memo_next); /* MEMOIZE */
    case 'h': /* BINGET */
        RN_TRY(read_bytes(m, 1, &p));
        return memo_get(m, p[0]);
    case 'j': /* LONG_BINGET */
        RN_TRY(read_bytes(m, 4, &p));
        return memo_get(m, le32(p));
    case 's': return add_to(m, 2, PK_DICT, "SETITEM");
    case 'u': return add_marked(m, PK_DICT, "SETITEMS");
    case 'a': return add_to(m, 1, PK_LIST, "APPEND");
    case 'e': return add_marked(m, PK_LIST, "APPENDS");
    default: break;
    }
    char detail[40];
    snprintf(detail, sizeof detail, "0x%02x%s%c%s", code, code >= 0x20 && code < 0x7f ? " ('" : "",
             code >= 0x20 && code < 0x7f ? code : ' ', code >= 0x20 && code < 0x7f ? "')" : "");
    return rn_fail(RN_ERR_UNSUPPORTED, "%s: byte %zu: pickle opcode %s is not supported",
                   m->what, m->op, detail);
}

rn_status pk_load_at(const unsigned char *buf, size_t len, size_t start, const char *what,
                     pk_doc *out, size_t *end) {
    if (!out)
        return rn_fail(RN_ERR_ARG, "pk_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!what)
        what = "<pickle>";
    if ((!buf && len) || start > len)
        return rn_fail(RN_ERR_ARG, "%s: buffer is NULL or starts past its end", what);
    vm m;
    memset(&m, 0, sizeof m);
    m.buf = buf;
    m.len = len;
    m.pos = start;
    m.what = what;
    m.doc = out;
    rn_status st = RN_OK;
    int stop = 0;
    while (st == RN_OK && !stop) {
        if (m.pos == m.len) {
            m.op = m.pos;
            st = fail(&m, "the pickle ends without STOP", NULL);
            break;
        }
        st = step(&m, &stop);
    }
    free(m.stack);
    free(m.memo);
    if (st != RN_OK)
        pk_free(out);
    else if (end)
        *end = m.pos;
    return st;
}

rn_status pk_load(const unsigned char *buf, size_t len, const char *what, pk_doc *out) {
    size_t end = 0;
    RN_TRY(pk_load_at(buf, len, 0, what, out, &end));
    if (end != len) {
        pk_free(out);
        return rn_fail(RN_ERR_FORMAT, "%s: byte %zu: bytes after STOP", what ? what : "<pickle>",
                       end);
    }
    return RN_OK;
}

void pk_free(pk_doc *doc) {
    if (!doc)
        return;
    for (size_t i = 0; i < doc->count; i++) {
        pk_obj *o = &doc->objs[i];
        if (o->kind == PK_STR || o->kind == PK_BIGINT)
            free(o->u.s);
        else if (o->kind == PK_TUPLE || o->kind == PK_LIST || o->kind == PK_DICT)
            free(o->u.items);
    }
    free(doc->objs);
    memset(doc, 0, sizeof *doc);
}

const pk_obj *pk_dict_get(const pk_doc *doc, const pk_obj *dict, const char *key) {
    if (!doc || !dict || dict->kind != PK_DICT || !key)
        return NULL;
    size_t klen = strlen(key);
    const pk_obj *found = NULL;
    for (uint32_t i = 0; i < dict->n; i++) {
        const pk_obj *k = pk_at(doc, dict->u.items[2 * i]);
        if (k->kind == PK_STR && k->n == klen && memcmp(k->u.s, key, klen) == 0)
            found = pk_at(doc, dict->u.items[2 * i + 1]);
    }
    return found;
}
