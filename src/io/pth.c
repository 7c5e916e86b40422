/* pth.c - torch.save checkpoints (zip or legacy, restricted pickle) into an st_file. */
#include "io/pth.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/status.h"
#include "io/file.h"
#include "io/json.h"
#include "io/pickle.h"
#include "io/pth_internal.h"
#include "io/sniff.h"
#include "io/zip.h"

_Static_assert(PK_MAX_DIMS == ST_MAX_DIMS, "tensor dimension limits differ");

/* Views may share and repeat storages (tied weights, expand()), and 1-byte
 * storages widen to 8-byte i64: the values produced may take at most this
 * many bytes per byte of file, plus PTH_BUDGET_SLACK, so that a small file
 * cannot make the reader allocate without bound. */
#define PTH_BUDGET_PER_BYTE 8u
#define PTH_BUDGET_SLACK ((size_t)1 << 28)

/* ---------------------------------------------------------------------------
 * The storage table
 * ------------------------------------------------------------------------- */

static int compare_storages(const void *a, const void *b) {
    return strcmp(((const pth_storage *)a)->key, ((const pth_storage *)b)->key);
}

rn_status pth_sort_storages(pth_ctx *c) {
    if (c->n_storages > 1)
        qsort(c->storages, c->n_storages, sizeof *c->storages, compare_storages);
    for (size_t i = 1; i < c->n_storages; i++)
        if (strcmp(c->storages[i - 1].key, c->storages[i].key) == 0) {
            char shown[80];
            json_printable(shown, sizeof shown, c->storages[i].key);
            return rn_fail(RN_ERR_FORMAT, "%s: storage '%s' appears twice", c->what, shown);
        }
    return RN_OK;
}

pth_storage *pth_find_storage(const pth_ctx *c, const char *key) {
    pth_storage probe = {.key = key};
    return c->n_storages ? bsearch(&probe, c->storages, c->n_storages, sizeof *c->storages,
                                   compare_storages)
                         : NULL;
}

/* ---------------------------------------------------------------------------
 * The archive: one folder, data.pkl, version, byteorder
 * ------------------------------------------------------------------------- */

/* A TorchScript archive (torch.jit.save) holds code/ and constants.pkl
 * beside its data.pkl. */
static int is_torchscript(const pth_ctx *c) {
    for (size_t i = 0; i < c->zip.count; i++) {
        const char *rest = c->zip.entries[i].name + c->prefix_len;
        if (strncmp(rest, "code/", 5) == 0 || strcmp(rest, "constants.pkl") == 0)
            return 1;
    }
    return 0;
}

static rn_status find_pickle(pth_ctx *c, const zip_entry **pkl) {
    *pkl = NULL;
    for (size_t i = 0; i < c->zip.count; i++) {
        const zip_entry *e = &c->zip.entries[i];
        const char *slash = strchr(e->name, '/');
        if (slash && slash != e->name && strcmp(slash, "/data.pkl") == 0) {
            if (*pkl) {
                char a[80], b[80];
                json_printable(a, sizeof a, (*pkl)->name);
                json_printable(b, sizeof b, e->name);
                return rn_fail(RN_ERR_FORMAT, "%s: two pickles, '%s' and '%s'", c->what, a, b);
            }
            *pkl = e;
        }
    }
    if (!*pkl) {
        char first[80] = "";
        if (c->zip.count)
            json_printable(first, sizeof first, c->zip.entries[0].name);
        return rn_fail(RN_ERR_FORMAT, "%s: a zip archive of %zu entr%s%s%s%s with no "
                       "<name>/data.pkl record, so not a torch.save checkpoint; %s", c->what,
                       c->zip.count, c->zip.count == 1 ? "y" : "ies",
                       c->zip.count ? " (the first '" : "", first,
                       c->zip.count ? "')" : "", RN_WEIGHT_FORMATS);
    }
    c->prefix_len = (size_t)(strchr((*pkl)->name, '/') - (*pkl)->name) + 1;
    if (!(c->prefix = strndup((*pkl)->name, c->prefix_len)))
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory", c->what);
    for (size_t i = 0; i < c->zip.count; i++) {
        const zip_entry *e = &c->zip.entries[i];
        if (strncmp(e->name, c->prefix, c->prefix_len) != 0) {
            char a[80], p[80];
            json_printable(a, sizeof a, e->name);
            json_printable(p, sizeof p, c->prefix);
            return rn_fail(RN_ERR_FORMAT, "%s: entry '%s' lies outside the archive folder '%s'",
                           c->what, a, p);
        }
    }
    if (is_torchscript(c))
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: a TorchScript archive (torch.jit.save), which "
                       "resnet does not read: in Python, torch.jit.load it and torch.save its "
                       "state_dict() instead", c->what);
    return RN_OK;
}

/* The record <prefix><name>, or NULL. */
static const zip_entry *record(const pth_ctx *c, const char *name) {
    char full[512];
    int n = snprintf(full, sizeof full, "%s%s", c->prefix, name);
    if (n < 0 || (size_t)n >= sizeof full)
        return NULL;
    return zip_find(&c->zip, full);
}

/* "version" must be a positive decimal number (a newline may follow);
 * "byteorder", when present, must say "little". */
static rn_status check_version(const pth_ctx *c) {
    const zip_entry *v = record(c, "version");
    if (!v)
        return rn_fail(RN_ERR_FORMAT, "%s: no '%sversion' record", c->what, c->prefix);
    const unsigned char *p = zip_data(&c->zip, v);
    size_t n = v->size, i = 0;
    unsigned long value = 0;
    while (i < n && i < 6 && p[i] >= '0' && p[i] <= '9')
        value = value * 10 + (unsigned long)(p[i++] - '0');
    if (i == 0 || value == 0 || !(i == n || (i + 1 == n && p[i] == '\n')))
        return rn_fail(RN_ERR_FORMAT, "%s: record '%sversion' is not a positive decimal "
                       "number", c->what, c->prefix);
    const zip_entry *b = record(c, "byteorder");
    if (b) {
        const unsigned char *q = zip_data(&c->zip, b);
        if (!(b->size == 6 && memcmp(q, "little", 6) == 0))
            return rn_fail(RN_ERR_UNSUPPORTED, "%s: record '%sbyteorder' does not say 'little'; "
                           "only little-endian data is supported", c->what, c->prefix);
    }
    return RN_OK;
}

/* The records under <prefix>data/, by the key after it. */
static rn_status zip_storages(pth_ctx *c) {
    static const char dir[] = "data/";
    size_t n = 0;
    for (size_t i = 0; i < c->zip.count; i++)
        n += strncmp(c->zip.entries[i].name + c->prefix_len, dir, 5) == 0;
    if (n && !(c->storages = calloc(n, sizeof *c->storages)))
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory", c->what);
    for (size_t i = 0; i < c->zip.count; i++) {
        const zip_entry *e = &c->zip.entries[i];
        if (strncmp(e->name + c->prefix_len, dir, 5) != 0)
            continue;
        c->storages[c->n_storages++] = (pth_storage){e->name + c->prefix_len + 5,
                                                     zip_data(&c->zip, e), e->size, -1};
    }
    return pth_sort_storages(c);
}

/* The zip format: the archive, its records, the pickle. */
static rn_status zip_open_ctx(pth_ctx *c, const unsigned char *buf, size_t len) {
    RN_TRY(zip_open(buf, len, c->what, &c->zip));
    const zip_entry *pkl = NULL;
    RN_TRY(find_pickle(c, &pkl));
    RN_TRY(check_version(c));
    char pwhat[600];
    char shown[80];
    json_printable(shown, sizeof shown, pkl->name);
    snprintf(pwhat, sizeof pwhat, "%s: %s", c->what, shown);
    RN_TRY(pk_load(zip_data(&c->zip, pkl), pkl->size, pwhat, &c->doc));
    return zip_storages(c);
}

/* ---------------------------------------------------------------------------
 * Finding the state_dict
 * ------------------------------------------------------------------------- */

/* A str key without NUL bytes, printable into shown[cap]. */
static rn_status key_name(const pth_ctx *c, const pk_obj *dict, uint32_t i, const char **name,
                          char *shown, size_t cap) {
    const pk_obj *k = pk_at(&c->doc, dict->u.items[2 * i]);
    if (k->kind != PK_STR)
        return rn_fail(RN_ERR_FORMAT, "%s: state_dict entry %u (pickle byte %zu) has a %s key, "
                       "not a str", c->what, i, k->offset, pk_kind_name((pk_kind)k->kind));
    json_printable(shown, cap, k->u.s);
    if (strlen(k->u.s) != k->n)
        return rn_fail(RN_ERR_FORMAT, "%s: state_dict key '%s' (pickle byte %zu) holds a NUL "
                       "byte", c->what, shown, k->offset);
    *name = k->u.s;
    return RN_OK;
}

static int all_tensors(const pk_doc *doc, const pk_obj *dict) {
    for (uint32_t i = 0; i < dict->n; i++)
        if (pk_at(doc, dict->u.items[2 * i + 1])->kind != PK_TENSOR)
            return 0;
    return 1;
}

static rn_status find_state_dict(const pth_ctx *c, const pk_obj **sd) {
    const pk_obj *root = pk_at(&c->doc, c->doc.root);
    if (root->kind != PK_DICT)
        return rn_fail(RN_ERR_FORMAT, "%s: the pickle holds a %s, not a dict (state_dict)",
                       c->what, pk_kind_name((pk_kind)root->kind));
    *sd = root;
    if (all_tensors(&c->doc, root))
        return RN_OK;
    static const char *const wrappers[] = {"state_dict", "model"};
    for (size_t w = 0; w < 2; w++) {
        const pk_obj *v = pk_dict_get(&c->doc, root, wrappers[w]);
        if (v && v->kind == PK_DICT) {
            *sd = v;
            return RN_OK;
        }
    }
    for (uint32_t i = 0; i < root->n; i++) {
        const pk_obj *v = pk_at(&c->doc, root->u.items[2 * i + 1]);
        if (v->kind == PK_TENSOR)
            continue;
        const char *name;
        char shown[100];
        RN_TRY(key_name(c, root, i, &name, shown, sizeof shown));
        return rn_fail(RN_ERR_FORMAT, "%s: key '%s' holds a %s, not a tensor, and there is no "
                       "'state_dict' or 'model' dict to load instead", c->what, shown,
                       pk_kind_name((pk_kind)v->kind));
    }
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Tensors
 * ------------------------------------------------------------------------- */

static st_dtype dtype_of(pk_stype s) {
    switch (s) {
    case PK_S_FLOAT: return ST_F32;
    case PK_S_HALF: return ST_F16;
    case PK_S_BFLOAT16: return ST_BF16;
    case PK_S_DOUBLE: return ST_F64;
    default: return ST_I64;
    }
}

/* One integer element of storage type s at p, little-endian. */
static int64_t int_at(pk_stype s, const unsigned char *p) {
    switch (s) {
    case PK_S_LONG: {
        uint64_t u = 0;
        for (int i = 7; i >= 0; i--)
            u = u << 8 | p[i];
        return (int64_t)u;
    }
    case PK_S_INT:
        return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                         (uint32_t)p[3] << 24);
    case PK_S_SHORT: return (int16_t)(uint16_t)(p[0] | p[1] << 8);
    case PK_S_CHAR: return (int8_t)p[0];
    case PK_S_BOOL: return p[0] != 0;
    default: return p[0]; /* Byte */
    }
}

/* The bytes of storage `s`, checked: present, of exactly numel x element
 * size bytes, always read as the same type. */
static rn_status storage_data(pth_ctx *c, const pk_obj *s, const char *tname,
                              const unsigned char **data) {
    const pk_obj *key = pk_at(&c->doc, s->u.storage.key);
    char shown[80];
    json_printable(shown, sizeof shown, key->u.s);
    pth_storage *e = strlen(key->u.s) == key->n ? pth_find_storage(c, key->u.s) : NULL;
    if (!e && c->prefix)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': no record '%sdata/%s' for its storage",
                       c->what, tname, c->prefix, shown);
    if (!e)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': no storage '%s' in the file", c->what,
                       tname, shown);
    pk_stype type = (pk_stype)s->sub;
    size_t bytes;
    if ((uint64_t)s->u.storage.numel > SIZE_MAX ||
        !rn_size_mul((size_t)s->u.storage.numel, pk_stype_size(type), &bytes) ||
        bytes != e->bytes)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': storage '%s' of %" PRId64 " x %s "
                       "(%zu bytes each) does not match its record of %zu bytes", c->what,
                       tname, shown, s->u.storage.numel, pk_stype_name(type),
                       pk_stype_size(type), e->bytes);
    if (e->type >= 0 && e->type != (int)type)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': record '%s' is used as both %s and %s",
                       c->what, tname, shown, pk_stype_name((pk_stype)e->type),
                       pk_stype_name(type));
    e->type = (int)type;
    *data = e->data;
    return RN_OK;
}

/* Reads the view `v` (a PK_TENSOR) into t, gathering its elements. */
static rn_status load_tensor(pth_ctx *c, const pk_obj *v, const char *tname, st_tensor *t) {
    const pk_doc *d = &c->doc;
    const pk_obj *s = pk_at(d, v->u.tensor.storage);
    const pk_obj *size = pk_at(d, v->u.tensor.size), *stride = pk_at(d, v->u.tensor.stride);
    const unsigned char *data = NULL;
    RN_TRY(storage_data(c, s, tname, &data));
    pk_stype type = (pk_stype)s->sub;
    size_t elsize = pk_stype_size(type), snumel = (size_t)s->u.storage.numel;

    /* Shape, element count, and the highest element the view reaches. */
    size_t sz[ST_MAX_DIMS], st[ST_MAX_DIMS], numel = 1, last, offset;
    t->ndim = (int)size->n;
    t->dtype = dtype_of(type);
    int ok = (uint64_t)v->u.tensor.offset <= SIZE_MAX;
    offset = last = ok ? (size_t)v->u.tensor.offset : 0;
    for (int i = 0; i < t->ndim && ok; i++) {
        int64_t a = pk_at(d, size->u.items[i])->u.i, b = pk_at(d, stride->u.items[i])->u.i;
        ok = (uint64_t)a <= SIZE_MAX && (uint64_t)b <= SIZE_MAX;
        sz[i] = ok ? (size_t)a : 0;
        st[i] = ok ? (size_t)b : 0;
        t->shape[i] = a;
        ok = ok && rn_size_mul(numel, sz[i], &numel);
    }
    for (int i = 0; i < t->ndim && ok && numel > 0; i++) {
        size_t reach;
        ok = rn_size_mul(sz[i] - 1, st[i], &reach) && rn_size_add(last, reach, &last);
    }
    if (!ok || numel > (size_t)INT64_MAX)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': size, stride or offset overflows",
                       c->what, tname);
    if (numel > 0 ? last >= snumel : offset > snumel)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': view (offset %zu) reaches element %zu "
                       "of a storage of %zu elements", c->what, tname, offset,
                       numel > 0 ? last : offset, snumel);
    t->numel = numel;
    size_t count = numel ? numel : 1, out_bytes;
    size_t out_size = t->dtype == ST_I64 ? sizeof *t->i64 : sizeof *t->f32;
    if (!rn_size_mul(count, out_size, &out_bytes) || out_bytes > c->budget)
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: tensor '%s': its %zu values exceed what the "
                       "file may expand to (%u bytes per byte of file + %zu MiB in all, for "
                       "shared and expanded views)", c->what, tname, numel,
                       PTH_BUDGET_PER_BYTE, PTH_BUDGET_SLACK >> 20);
    c->budget -= out_bytes;

    /* Gather the raw elements unless the view is contiguous. */
    int contiguous = 1;
    size_t want = 1;
    for (int i = t->ndim - 1; i >= 0 && numel > 0; i--) {
        if (sz[i] != 1 && st[i] != want)
            contiguous = 0;
        want *= sz[i];
    }
    const unsigned char *src = data + offset * elsize;
    unsigned char *gathered = NULL;
    size_t raw_bytes;
    if (!contiguous && numel > 0) {
        if (!rn_size_mul(numel, elsize, &raw_bytes) || !(gathered = rn_alloc(raw_bytes)))
            return rn_fail(RN_ERR_NOMEM, "%s: tensor '%s': out of memory", c->what, tname);
        size_t idx[ST_MAX_DIMS] = {0}, at = offset;
        for (size_t k = 0; k < numel; k++) {
            memcpy(gathered + k * elsize, data + at * elsize, elsize);
            for (int i = t->ndim - 1; i >= 0; i--) {
                if (++idx[i] < sz[i]) {
                    at += st[i];
                    break;
                }
                at -= (sz[i] - 1) * st[i];
                idx[i] = 0;
            }
        }
        src = gathered;
    }

    rn_status status = RN_OK;
    if (t->dtype == ST_I64) {
        if (!(t->i64 = rn_alloc(out_bytes)))
            status = rn_fail(RN_ERR_NOMEM, "%s: tensor '%s': out of memory", c->what, tname);
        for (size_t k = 0; t->i64 && k < numel; k++)
            t->i64[k] = int_at(type, src + k * elsize);
    } else {
        if (!(t->f32 = rn_alloc(out_bytes)))
            status = rn_fail(RN_ERR_NOMEM, "%s: tensor '%s': out of memory", c->what, tname);
        else
            st_convert_to_float(t->dtype, src, t->f32, numel);
    }
    free(gathered);
    return status;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static rn_status load_state_dict(pth_ctx *c, const pk_obj *sd, st_file *out) {
    if (sd->n == 0)
        return RN_OK;
    if (!(out->tensors = calloc(sd->n, sizeof *out->tensors)))
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory for %u tensors", c->what, sd->n);
    for (uint32_t i = 0; i < sd->n; i++) {
        const char *name;
        char shown[100];
        RN_TRY(key_name(c, sd, i, &name, shown, sizeof shown));
        const pk_obj *v = pk_at(&c->doc, sd->u.items[2 * i + 1]);
        if (v->kind != PK_TENSOR)
            return rn_fail(RN_ERR_FORMAT, "%s: state_dict key '%s' holds a %s, not a tensor%s",
                           c->what, shown, pk_kind_name((pk_kind)v->kind),
                           v->kind == PK_DICT ? " (nested dicts are not a state_dict)" : "");
        st_tensor *t = &out->tensors[out->count++];
        if (!(t->name = strdup(name)))
            return rn_fail(RN_ERR_NOMEM, "%s: out of memory", c->what);
        RN_TRY(load_tensor(c, v, shown, t));
    }
    char **names = malloc(out->count * sizeof *names);
    if (!names)
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory", c->what);
    for (size_t i = 0; i < out->count; i++)
        names[i] = out->tensors[i].name;
    qsort(names, out->count, sizeof *names, compare_names);
    rn_status st = RN_OK;
    for (size_t i = 1; i < out->count && st == RN_OK; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            char shown[100];
            json_printable(shown, sizeof shown, names[i]);
            st = rn_fail(RN_ERR_FORMAT, "%s: state_dict key '%s' appears twice", c->what, shown);
        }
    free(names);
    return st;
}

/* ---------------------------------------------------------------------------
 * Public
 * ------------------------------------------------------------------------- */

rn_status pth_parse(const unsigned char *buf, size_t len, const char *what, st_file *out) {
    if (!out)
        return rn_fail(RN_ERR_ARG, "pth_parse: out is NULL");
    memset(out, 0, sizeof *out);
    if (!what)
        what = "<buffer>";
    if (!buf && len)
        return rn_fail(RN_ERR_ARG, "%s: buffer is NULL", what);
    rn_format format = rn_sniff(buf, len);
    if (format != RN_FMT_ZIP && format != RN_FMT_PICKLE)
        return rn_sniff_refuse(buf, len, what, "a PyTorch checkpoint");
    pth_ctx c;
    memset(&c, 0, sizeof c);
    c.what = what;
    if (!rn_size_mul(len, PTH_BUDGET_PER_BYTE, &c.budget) ||
        !rn_size_add(c.budget, PTH_BUDGET_SLACK, &c.budget))
        c.budget = SIZE_MAX;
    rn_status st = format == RN_FMT_ZIP ? zip_open_ctx(&c, buf, len)
                                        : pth_legacy_open(&c, buf, len);
    const pk_obj *sd = NULL;
    if (st == RN_OK)
        st = find_state_dict(&c, &sd);
    if (st == RN_OK)
        st = load_state_dict(&c, sd, out);
    free(c.storages);
    free(c.prefix);
    pk_free(&c.doc);
    zip_close(&c.zip);
    if (st != RN_OK)
        st_free(out);
    return st;
}

rn_status pth_read(const char *path, st_file *out) {
    if (!out)
        return rn_fail(RN_ERR_ARG, "pth_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path)
        return rn_fail(RN_ERR_ARG, "pth_read: path is NULL");
    unsigned char *buf = NULL;
    size_t len = 0;
    RN_TRY(rn_file_read_all(path, &buf, &len));
    rn_status st = pth_parse(buf, len, path, out);
    free(buf);
    return st;
}
