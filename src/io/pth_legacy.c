/*
 * pth_legacy.c - torch.save's legacy format (PyTorch < 1.6, or
 * _use_new_zipfile_serialization=False): five pickles, then the storages.
 *
 * torch/serialization.py writes it as (_legacy_save):
 *   pickle(MAGIC_NUMBER) pickle(PROTOCOL_VERSION) pickle(sys_info)
 *   pickle(obj, persistent ids for storages) pickle(sorted storage keys)
 *   for each key: int64 element count, then the storage's bytes
 * with the counts and the bytes little-endian whatever the machine. Every
 * field is checked here against the file's length and against the other
 * fields before the state_dict reader (pth.c) looks at a tensor.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/status.h"
#include "io/json.h"
#include "io/pth_internal.h"
#include "io/sniff.h"

#define LEGACY_PROTOCOL 1001

/* 0x1950a86a20f9469cfc6c, as LONG1 writes it: little-endian two's complement. */
static const unsigned char MAGIC[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

/* A storage the object pickle names, with what its persistent ids say. */
typedef struct declared {
    const char *key;         /* in c->doc */
    int type;                /* pk_stype */
    int64_t numel;
    int listed;              /* seen in the key list */
} declared;

static int compare_declared(const void *a, const void *b) {
    return strcmp(((const declared *)a)->key, ((const declared *)b)->key);
}

/* ---------------------------------------------------------------------------
 * The preamble: magic number, protocol version, sys_info
 * ------------------------------------------------------------------------- */

/* The int torch's magic number is, however many sign bytes pad it. */
static int is_magic(const pk_obj *o) {
    if (o->kind != PK_BIGINT)
        return 0;
    const unsigned char *b = (const unsigned char *)o->u.s;
    size_t n = o->n;
    while (n > sizeof MAGIC && b[n - 1] == 0 && !(b[n - 2] & 0x80))
        n--;
    return n == sizeof MAGIC && memcmp(b, MAGIC, n) == 0;
}

static rn_status check_magic(pth_ctx *c, const unsigned char *buf, size_t len, size_t *pos) {
    pk_doc d;
    char why[400] = "";
    if (pk_load_at(buf, len, 0, "its first pickle", &d, pos) != RN_OK) {
        snprintf(why, sizeof why, "%s", rn_last_error());
    } else {
        if (!is_magic(pk_at(&d, d.root)))
            snprintf(why, sizeof why, "its first pickle holds a value of type %s",
                     pk_kind_name((pk_kind)pk_at(&d, d.root)->kind));
        pk_free(&d);
    }
    if (!why[0])
        return RN_OK;
    return rn_fail(RN_ERR_FORMAT, "%s: a Python pickle that does not start with torch.save's "
                   "magic number 0x1950a86a20f9469cfc6c (%s), so not a PyTorch checkpoint; %s",
                   c->what, why, RN_WEIGHT_FORMATS);
}

/* Unpickles the pickle at *pos into d; *pos moves past it, *at keeps
 * where it began, and what[cap] names it ("<file>: the <name>"). */
static rn_status next_pickle(const pth_ctx *c, const unsigned char *buf, size_t len, size_t *pos,
                             const char *name, char *what, size_t cap, pk_doc *d, size_t *at) {
    snprintf(what, cap, "%s: the %s", c->what, name);
    *at = *pos;
    return pk_load_at(buf, len, *at, what, d, pos);
}

static rn_status check_protocol(pth_ctx *c, const unsigned char *buf, size_t len, size_t *pos) {
    char what[600];
    size_t at;
    pk_doc d;
    RN_TRY(next_pickle(c, buf, len, pos, "protocol version pickle", what, sizeof what, &d, &at));
    const pk_obj *v = pk_at(&d, d.root);
    rn_status st = RN_OK;
    if (v->kind != PK_INT)
        st = rn_fail(RN_ERR_FORMAT, "%s: byte %zu: the protocol version is a %s, not an int",
                     what, at, pk_kind_name((pk_kind)v->kind));
    else if (v->u.i != LEGACY_PROTOCOL)
        st = rn_fail(RN_ERR_UNSUPPORTED, "%s: byte %zu: legacy protocol version %" PRId64
                     "; only %d is read", what, at, v->u.i, LEGACY_PROTOCOL);
    pk_free(&d);
    return st;
}

/* sys_info: a dict; little_endian, when present, must be True. */
static rn_status check_sys_info(pth_ctx *c, const unsigned char *buf, size_t len, size_t *pos) {
    char what[600];
    size_t at;
    pk_doc d;
    RN_TRY(next_pickle(c, buf, len, pos, "sys_info pickle", what, sizeof what, &d, &at));
    const pk_obj *info = pk_at(&d, d.root);
    const pk_obj *little = pk_dict_get(&d, info, "little_endian");
    rn_status st = RN_OK;
    if (info->kind != PK_DICT)
        st = rn_fail(RN_ERR_FORMAT, "%s: byte %zu: sys_info is a %s, not a dict", what, at,
                     pk_kind_name((pk_kind)info->kind));
    else if (little && !(little->kind == PK_BOOL && little->u.i == 1))
        st = rn_fail(RN_ERR_UNSUPPORTED, "%s: byte %zu: the file says it was written on a "
                     "big-endian machine; only little-endian files are read", what, at);
    pk_free(&d);
    return st;
}

/* ---------------------------------------------------------------------------
 * The storages
 * ------------------------------------------------------------------------- */

/* Every storage the object pickle names, once each, sorted by key; the same
 * key must always come with the same type and numel. */
static rn_status collect_declared(pth_ctx *c, declared **out, size_t *count) {
    const pk_doc *d = &c->doc;
    size_t n = 0;
    for (size_t i = 0; i < d->count; i++)
        n += d->objs[i].kind == PK_STORAGE;
    *out = NULL;
    *count = 0;
    if (n == 0)
        return RN_OK;
    declared *all = calloc(n, sizeof *all);
    if (!all)
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory for %zu storages", c->what, n);
    *out = all;
    n = 0;
    for (size_t i = 0; i < d->count; i++) {
        const pk_obj *o = &d->objs[i];
        if (o->kind != PK_STORAGE)
            continue;
        const pk_obj *key = pk_at(d, o->u.storage.key);
        if (strlen(key->u.s) != key->n)
            return rn_fail(RN_ERR_FORMAT, "%s: the storage key at byte %zu holds a NUL byte",
                           c->what, key->offset);
        all[n++] = (declared){key->u.s, o->sub, o->u.storage.numel, 0};
    }
    qsort(all, n, sizeof *all, compare_declared);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (kept && strcmp(all[kept - 1].key, all[i].key) == 0) {
            const declared *a = &all[kept - 1], *b = &all[i];
            if (a->type != b->type || a->numel != b->numel) {
                char shown[80];
                json_printable(shown, sizeof shown, a->key);
                return rn_fail(RN_ERR_FORMAT, "%s: storage '%s' is declared both as %" PRId64
                               " x %s and as %" PRId64 " x %s", c->what, shown, a->numel,
                               pk_stype_name((pk_stype)a->type), b->numel,
                               pk_stype_name((pk_stype)b->type));
            }
            continue;
        }
        all[kept++] = all[i];
    }
    *count = kept;
    return RN_OK;
}

/* The key list pickle: a list of distinct declared keys naming every
 * declared storage. */
static rn_status check_key_list(pth_ctx *c, const pk_doc *keys, size_t at, declared *decl,
                                size_t n_decl) {
    const pk_obj *list = pk_at(keys, keys->root);
    if (list->kind != PK_LIST)
        return rn_fail(RN_ERR_FORMAT, "%s: the storage key list at byte %zu is a %s, not a list",
                       c->what, at, pk_kind_name((pk_kind)list->kind));
    for (uint32_t i = 0; i < list->n; i++) {
        const pk_obj *k = pk_at(keys, list->u.items[i]);
        if (k->kind != PK_STR || strlen(k->u.s) != k->n)
            return rn_fail(RN_ERR_FORMAT, "%s: storage key %u of the list at byte %zu is not "
                           "a str without NUL bytes", c->what, i, at);
        declared probe = {.key = k->u.s};
        declared *hit = n_decl ? bsearch(&probe, decl, n_decl, sizeof *decl, compare_declared)
                               : NULL;
        char shown[80];
        json_printable(shown, sizeof shown, k->u.s);
        if (!hit)
            return rn_fail(RN_ERR_FORMAT, "%s: storage '%s' of the key list at byte %zu is "
                           "named by no persistent id", c->what, shown, at);
        if (hit->listed)
            return rn_fail(RN_ERR_FORMAT, "%s: storage '%s' appears twice in the key list at "
                           "byte %zu", c->what, shown, at);
        hit->listed = 1;
    }
    for (size_t i = 0; i < n_decl; i++)
        if (!decl[i].listed) {
            char shown[80];
            json_printable(shown, sizeof shown, decl[i].key);
            return rn_fail(RN_ERR_FORMAT, "%s: storage '%s' (%" PRId64 " x %s) is missing from "
                           "the key list at byte %zu, so the file holds no data for it",
                           c->what, shown, decl[i].numel, pk_stype_name((pk_stype)decl[i].type),
                           at);
        }
    return RN_OK;
}

static int64_t load_i64(const unsigned char *p) {
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = u << 8 | p[i];
    return (int64_t)u;
}

/* The storages after the key list, in its order, into c->storages. */
static rn_status read_storages(pth_ctx *c, const unsigned char *buf, size_t len, size_t pos,
                               const pk_doc *keys, const declared *decl, size_t n_decl) {
    const pk_obj *list = pk_at(keys, keys->root);
    if (list->n && !(c->storages = calloc(list->n, sizeof *c->storages)))
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory", c->what);
    for (uint32_t i = 0; i < list->n; i++) {
        declared probe = {.key = pk_at(keys, list->u.items[i])->u.s};
        const declared *s = bsearch(&probe, decl, n_decl, sizeof *decl, compare_declared);
        char shown[80];
        json_printable(shown, sizeof shown, s->key);
        if (len - pos < 8)
            return rn_fail(RN_ERR_FORMAT, "%s: the file ends at byte %zu, inside the element "
                           "count of storage '%s' (%u of %u)", c->what, len, shown, i + 1,
                           list->n);
        int64_t count = load_i64(buf + pos);
        if (count != s->numel)
            return rn_fail(RN_ERR_FORMAT, "%s: byte %zu: storage '%s' holds %" PRId64
                           " elements, its persistent id declares %" PRId64, c->what, pos,
                           shown, count, s->numel);
        size_t elsize = pk_stype_size((pk_stype)s->type), bytes;
        if ((uint64_t)count > SIZE_MAX || !rn_size_mul((size_t)count, elsize, &bytes) ||
            bytes > len - pos - 8)
            return rn_fail(RN_ERR_FORMAT, "%s: byte %zu: storage '%s' of %" PRId64 " x %s "
                           "(%zu bytes each) runs past the end of the file (%zu bytes)",
                           c->what, pos, shown, count, pk_stype_name((pk_stype)s->type), elsize,
                           len);
        c->storages[c->n_storages++] = (pth_storage){s->key, buf + pos + 8, bytes, -1};
        pos += 8 + bytes;
    }
    if (pos != len)
        return rn_fail(RN_ERR_FORMAT, "%s: %zu bytes after the last storage (from byte %zu)",
                       c->what, len - pos, pos);
    return pth_sort_storages(c);
}

/* ---------------------------------------------------------------------------
 * Public (to pth.c)
 * ------------------------------------------------------------------------- */

rn_status pth_legacy_open(pth_ctx *c, const unsigned char *buf, size_t len) {
    size_t pos = 0, at;
    RN_TRY(check_magic(c, buf, len, &pos));
    RN_TRY(check_protocol(c, buf, len, &pos));
    RN_TRY(check_sys_info(c, buf, len, &pos));
    char what[600];
    RN_TRY(next_pickle(c, buf, len, &pos, "object pickle", what, sizeof what, &c->doc, &at));
    size_t keys_at;
    pk_doc keys;
    RN_TRY(next_pickle(c, buf, len, &pos, "storage key list", what, sizeof what, &keys, &keys_at));
    declared *decl = NULL;
    size_t n_decl = 0;
    rn_status st = collect_declared(c, &decl, &n_decl);
    if (st == RN_OK)
        st = check_key_list(c, &keys, keys_at, decl, n_decl);
    if (st == RN_OK)
        st = read_storages(c, buf, len, pos, &keys, decl, n_decl);
    free(decl);
    pk_free(&keys);
    return st;
}
