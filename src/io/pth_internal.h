/*
 * pth_internal.h - what the two containers of torch.save (pth.c: the zip
 * format; pth_legacy.c: the legacy format) hand to the state_dict reader.
 *
 * A container yields the pickle that holds the state_dict and a table of
 * storages: for each storage key the pickle's persistent ids may name, its
 * raw little-endian bytes inside the caller's buffer. The state_dict reader
 * (pth.c) then checks every tensor view against its storage.
 */
#ifndef RN_IO_PTH_INTERNAL_H
#define RN_IO_PTH_INTERNAL_H

#include <stddef.h>

#include "io/pickle.h"
#include "io/zip.h"
#include "resnet.h"

typedef struct pth_storage {
    const char *key;             /* NUL-terminated, without NUL bytes; not owned */
    const unsigned char *data;   /* in the caller's buffer */
    size_t bytes;
    int type;                    /* the pk_stype it is read as, -1 until first used */
} pth_storage;

typedef struct pth_ctx {
    const char *what;
    pk_doc doc;                  /* the pickle holding the state_dict */
    pth_storage *storages;       /* sorted by key (pth_sort_storages) */
    size_t n_storages;
    size_t budget;               /* bytes of tensor values still allowed */
    /* zip format only */
    zip_archive zip;
    char *prefix;                /* "<name>/" */
    size_t prefix_len;
} pth_ctx;

/* Sorts c->storages by key for pth_find_storage; a key that appears twice
 * is refused. */
rn_status pth_sort_storages(pth_ctx *c);

/* The storage with `key`, or NULL. */
pth_storage *pth_find_storage(const pth_ctx *c, const char *key);

/* Reads the legacy format in buf[0..len) into c->doc and c->storages (see
 * pth.h). c->what is set; on failure the caller frees what was made. */
rn_status pth_legacy_open(pth_ctx *c, const unsigned char *buf, size_t len);

#endif
