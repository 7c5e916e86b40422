/*
 * pickle.h - a restricted unpickler for the data.pkl of a torch.save file.
 *
 * pk_load() runs the pickle virtual machine over a buffer without executing
 * anything: it builds a graph of plain values (None, bool, int, float, str,
 * tuple, list, dict) and three torch-specific ones, and refuses everything
 * else. Only these globals may be named (GLOBAL or STACK_GLOBAL):
 *   collections.OrderedDict                 -> an empty dict (REDUCE with ())
 *   torch._utils._rebuild_tensor_v2         -> a tensor view of a storage
 *   torch._utils._rebuild_tensor            -> the same, PyTorch <= 0.3's form
 *   torch._utils._rebuild_parameter         -> the tensor it wraps
 *   torch.{Float,Half,BFloat16,Double,Long,Int,Short,Char,Byte,Bool}Storage,
 *       only inside a persistent id ('storage', type, key, location, numel
 *       [, view_metadata]); the legacy format's sixth item must be None
 * Any other global (os.system, builtins.eval, a pickled nn.Module class,
 * numpy, ...) is refused with a message naming it.
 *
 * Opcodes: PROTO, FRAME, STOP, MARK, EMPTY_{DICT,LIST,TUPLE}, TUPLE,
 * TUPLE1/2/3, LIST, DICT, BINUNICODE, SHORT_BINUNICODE, BINSTRING and
 * SHORT_BINSTRING (Python 2 str, read as UTF-8 as torch.load does), BININT,
 * BININT1, BININT2, LONG1, BINFLOAT, NEWTRUE, NEWFALSE, NONE, GLOBAL,
 * STACK_GLOBAL, REDUCE, BUILD (on a dict only; its state is ignored, as
 * OrderedDict's _metadata), BINPUT, LONG_BINPUT, MEMOIZE, BINGET,
 * LONG_BINGET, SETITEM(S), APPEND(S), BINPERSID. Any other opcode is refused.
 *
 * Stack underflow, a missing or unbalanced MARK, an unset memo index, a
 * wrong operand type, invalid UTF-8, bytes after STOP (pk_load) and the
 * limits below are refused; every message names the byte offset. Dict keys are kept in
 * order, duplicates included (the caller decides). Nesting depth of lists
 * and dicts is tracked when an item is added (a container filled after it
 * was nested is not re-counted), which bounds what a caller walks.
 */
#ifndef RN_IO_PICKLE_H
#define RN_IO_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "resnet.h"

#define PK_MAX_OBJECTS (1u << 20)  /* values created */
#define PK_MAX_ITEMS (1u << 22)    /* items held by all containers together */
#define PK_MAX_STACK (1u << 20)    /* stack entries */
#define PK_MAX_MARKS 64            /* open MARKs */
#define PK_MAX_DEPTH 64            /* container nesting */
#define PK_MAX_MEMO (1u << 20)     /* memo indices 0 .. PK_MAX_MEMO-1 */
#define PK_MAX_DIMS 8              /* tensor dimensions */

typedef enum pk_kind {
    PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR,
    PK_TUPLE, PK_LIST, PK_DICT,
    PK_GLOBAL,      /* an allowed global; `sub` is a pk_global */
    PK_STORAGE,     /* a persistent id; `sub` is a pk_stype */
    PK_TENSOR,      /* a _rebuild_tensor_v2 result */
    PK_BIGINT       /* a LONG1 integer outside int64: u.s holds its n bytes, as pickled */
} pk_kind;

typedef enum pk_global {
    PK_G_ORDERED_DICT, PK_G_REBUILD_TENSOR_V2, PK_G_REBUILD_PARAMETER, PK_G_STORAGE,
    PK_G_REBUILD_TENSOR
} pk_global;

typedef enum pk_stype {
    PK_S_FLOAT, PK_S_HALF, PK_S_BFLOAT16, PK_S_DOUBLE, PK_S_LONG,
    PK_S_INT, PK_S_SHORT, PK_S_CHAR, PK_S_BYTE, PK_S_BOOL
} pk_stype;

typedef struct pk_obj {
    uint8_t kind;            /* pk_kind */
    uint8_t sub;             /* PK_GLOBAL: pk_global; PK_STORAGE, PK_GLOBAL storage: pk_stype */
    uint8_t depth;           /* containers: nesting depth (1 = holds no container) */
    uint32_t n;              /* PK_STR, PK_BIGINT: bytes; PK_TUPLE/PK_LIST: items;
                                PK_DICT: pairs */
    uint32_t cap;            /* PK_LIST/PK_DICT: allocated item slots */
    size_t offset;           /* the pickle byte that made it */
    union {
        int64_t i;           /* PK_BOOL, PK_INT */
        double f;            /* PK_FLOAT */
        char *s;             /* PK_STR: UTF-8, NUL-terminated (may hold NUL);
                                PK_BIGINT: little-endian two's complement */
        uint32_t *items;     /* PK_TUPLE/PK_LIST: n objects; PK_DICT: key, value, ... */
        struct {
            uint32_t key;    /* a PK_STR: the record name under data/ */
            int64_t numel;   /* elements, >= 0 */
        } storage;
        struct {
            uint32_t storage;        /* a PK_STORAGE */
            uint32_t size, stride;   /* PK_TUPLEs of n non-negative PK_INTs, n <= PK_MAX_DIMS */
            int64_t offset;          /* storage offset in elements, >= 0 */
        } tensor;
    } u;
} pk_obj;

typedef struct pk_doc {
    pk_obj *objs;
    size_t count, cap;
    size_t items;            /* container items, against PK_MAX_ITEMS */
    uint32_t root;           /* what STOP returned */
} pk_doc;

/* Unpickles buf[0..len) (`what` names it in messages). On failure *out is
 * empty. Free with pk_free(). */
rn_status pk_load(const unsigned char *buf, size_t len, const char *what, pk_doc *out);

/* Unpickles the pickle that starts at buf[start] and ends with its STOP
 * opcode; *end (may be NULL) receives the offset just after it, so that
 * pickles written one after another are read in turn. Offsets in messages
 * count from buf[0]. */
rn_status pk_load_at(const unsigned char *buf, size_t len, size_t start, const char *what,
                     pk_doc *out, size_t *end);
void pk_free(pk_doc *doc);

static inline const pk_obj *pk_at(const pk_doc *doc, uint32_t index) {
    return &doc->objs[index];
}

/* In dict `dict`, the value of the last str key equal to `key` (as Python
 * keeps the last of duplicates), or NULL. */
const pk_obj *pk_dict_get(const pk_doc *doc, const pk_obj *dict, const char *key);

/* "None", "bool", "int", ..., for messages. */
const char *pk_kind_name(pk_kind kind);
/* "FloatStorage", ... and the element size in bytes. */
const char *pk_stype_name(pk_stype type);
size_t pk_stype_size(pk_stype type);

#endif
