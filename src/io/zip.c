/* zip.c - a validating reader for STORED zip archives in memory. */
#include "io/zip.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/mem.h"
#include "core/status.h"
#include "io/json.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u

#define EOCD_SIZE 22u
#define LOCATOR64_SIZE 20u
#define EOCD64_SIZE 56u
#define CENTRAL_SIZE 46u
#define LOCAL_SIZE 30u

#define SAT16 0xffffu
#define SAT32 0xffffffffu

/* General purpose flags: encrypted, data descriptor, strong encryption. */
#define FLAG_ENCRYPTED 0x0001u
#define FLAG_DESCRIPTOR 0x0008u
#define FLAG_STRONG 0x0040u

/* ---------------------------------------------------------------------------
 * Little-endian fields
 * ------------------------------------------------------------------------- */

static uint32_t u16(const unsigned char *b) { return (uint32_t)b[0] | (uint32_t)b[1] << 8; }

static uint32_t u32(const unsigned char *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t u64(const unsigned char *b) {
    return (uint64_t)u32(b) | (uint64_t)u32(b + 4) << 32;
}

/* A 64-bit file quantity as a size_t, or 0 when it does not fit. */
static int to_size(uint64_t v, size_t *out) {
    if (v > SIZE_MAX)
        return 0;
    *out = (size_t)v;
    return 1;
}

/* ---------------------------------------------------------------------------
 * End of Central Directory (and its ZIP64 form)
 * ------------------------------------------------------------------------- */

typedef struct zip_dir {
    size_t count;        /* entries */
    size_t offset, size; /* the central directory */
    size_t limit;        /* where the EOCD records start: the directory ends by here */
} zip_dir;

/* The EOCD record is the last one whose comment reaches the end exactly. */
static rn_status find_eocd(const unsigned char *buf, size_t len, const char *what, size_t *pos) {
    if (len >= 2 && buf[0] == 0x80 && buf[1] <= 5)
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: a bare pickle (the legacy torch.save format "
                       "before PyTorch 1.6) is not supported; re-save it with a newer PyTorch",
                       what);
    if (len < EOCD_SIZE)
        return rn_fail(RN_ERR_FORMAT, "%s: %zu bytes is too short for a zip archive", what, len);
    size_t last = len - EOCD_SIZE, first = last > SAT16 ? last - SAT16 : 0;
    for (size_t p = last + 1; p-- > first;)
        if (u32(buf + p) == SIG_EOCD && u16(buf + p + 20) == len - p - EOCD_SIZE) {
            *pos = p;
            return RN_OK;
        }
    return rn_fail(RN_ERR_FORMAT, "%s: no End of Central Directory record in the last %zu "
                   "bytes (not a zip archive, or truncated)", what, len - first);
}

/* Reads the ZIP64 locator just before the EOCD at `pos` and the ZIP64 EOCD
 * it points to; the 32-bit fields of the EOCD must agree unless saturated. */
static rn_status read_eocd64(const unsigned char *buf, size_t pos, const char *what,
                             const unsigned char *e, zip_dir *dir) {
    size_t loc = pos - LOCATOR64_SIZE;
    const unsigned char *l = buf + loc;
    if (u32(l + 4) != 0 || u32(l + 16) > 1)
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: ZIP64 locator at byte %zu names a multi-disk "
                       "archive", what, loc);
    uint64_t off64 = u64(l + 8);
    size_t off;
    if (!to_size(off64, &off) || off > loc || loc - off < EOCD64_SIZE)
        return rn_fail(RN_ERR_FORMAT, "%s: ZIP64 locator at byte %zu points to byte %llu, "
                       "outside the file before it", what, loc, (unsigned long long)off64);
    const unsigned char *r = buf + off;
    if (u32(r) != SIG_EOCD64)
        return rn_fail(RN_ERR_FORMAT, "%s: no ZIP64 End of Central Directory signature at byte "
                       "%zu (named by the locator at byte %zu)", what, off, loc);
    uint64_t rec = u64(r + 4);
    if (rec < EOCD64_SIZE - 12 || rec > loc - off - 12)
        return rn_fail(RN_ERR_FORMAT, "%s: ZIP64 End of Central Directory at byte %zu: record "
                       "size %llu does not fit before the locator", what, off,
                       (unsigned long long)rec);
    if (u32(r + 16) != 0 || u32(r + 20) != 0 || u64(r + 24) != u64(r + 32))
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: ZIP64 End of Central Directory at byte %zu "
                       "describes a multi-disk archive", what, off);
    uint64_t n = u64(r + 32), size = u64(r + 40), start = u64(r + 48);
    if ((u16(e + 10) != SAT16 && u16(e + 10) != n) ||
        (u32(e + 12) != SAT32 && u32(e + 12) != size) ||
        (u32(e + 16) != SAT32 && u32(e + 16) != start))
        return rn_fail(RN_ERR_FORMAT, "%s: End of Central Directory at byte %zu disagrees with "
                       "the ZIP64 record at byte %zu (entries, size or offset)", what, pos, off);
    if (!to_size(n, &dir->count) || !to_size(size, &dir->size) || !to_size(start, &dir->offset))
        return rn_fail(RN_ERR_FORMAT, "%s: ZIP64 End of Central Directory at byte %zu: sizes "
                       "too large", what, off);
    dir->limit = off;
    return RN_OK;
}

static rn_status read_dir(const unsigned char *buf, size_t len, const char *what, zip_dir *dir) {
    size_t pos = 0;
    RN_TRY(find_eocd(buf, len, what, &pos));
    const unsigned char *e = buf + pos;
    uint32_t disk = u16(e + 4), cd_disk = u16(e + 6), n_disk = u16(e + 8), n = u16(e + 10);
    int zip64 = pos >= LOCATOR64_SIZE && u32(buf + pos - LOCATOR64_SIZE) == SIG_LOCATOR64;
    if ((disk != 0 && !(zip64 && disk == SAT16)) || (cd_disk != 0 && !(zip64 && cd_disk == SAT16))
        || n_disk != n)
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: End of Central Directory at byte %zu describes "
                       "a multi-disk archive", what, pos);
    if (zip64) {
        RN_TRY(read_eocd64(buf, pos, what, e, dir));
    } else {
        dir->count = n;
        dir->size = u32(e + 12);
        dir->offset = u32(e + 16);
        dir->limit = pos;
    }
    size_t end;
    if (!rn_size_add(dir->offset, dir->size, &end) || end > dir->limit)
        return rn_fail(RN_ERR_FORMAT, "%s: central directory [%zu, +%zu) goes past byte %zu "
                       "where the End of Central Directory records start", what, dir->offset,
                       dir->size, dir->limit);
    if (dir->count > ZIP_MAX_ENTRIES)
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: %zu entries, at most %u supported", what,
                       dir->count, ZIP_MAX_ENTRIES);
    if (dir->count > dir->size / CENTRAL_SIZE)
        return rn_fail(RN_ERR_FORMAT, "%s: End of Central Directory claims %zu entries but the "
                       "central directory at byte %zu has only %zu bytes", what, dir->count,
                       dir->offset, dir->size);
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Entries
 * ------------------------------------------------------------------------- */

/* Reads the ZIP64 extra field (id 1) of extra[0..n): want[k] says whether
 * value k (uncompressed size, compressed size, header offset) is saturated
 * and so stored there, in that order; a saturated disk number is refused.
 * Returns 0 with *why set when the extra fields are malformed. */
static int read_zip64_extra(const unsigned char *x, size_t n, const int want[3], uint64_t v[3],
                            const char **why) {
    int found = 0;
    size_t j = 0;
    while (j < n) {
        if (n - j < 4) {
            *why = "extra field header cut short";
            return 0;
        }
        uint32_t id = u16(x + j), sz = u16(x + j + 2);
        if (sz > n - j - 4) {
            *why = "extra field runs past its area";
            return 0;
        }
        if (id == 1) {
            if (found++) {
                *why = "two ZIP64 extra fields";
                return 0;
            }
            size_t k = 0;
            for (int i = 0; i < 3; i++) {
                if (!want[i])
                    continue;
                if (sz - k < 8) {
                    *why = "ZIP64 extra field too short for its saturated sizes";
                    return 0;
                }
                v[i] = u64(x + j + 4 + k);
                k += 8;
            }
        }
        j += 4 + sz;
    }
    if (!found && (want[0] || want[1] || want[2])) {
        *why = "saturated size or offset without a ZIP64 extra field";
        return 0;
    }
    return 1;
}

/* Parses the central entry at *p (advanced past it) into e. */
static rn_status read_central(const unsigned char *buf, size_t *p, size_t end, size_t i,
                              const char *what, zip_entry *e) {
    size_t at = *p;
    if (end - at < CENTRAL_SIZE || u32(buf + at) != SIG_CENTRAL)
        return rn_fail(RN_ERR_FORMAT, "%s: central directory entry %zu at byte %zu: %s", what, i,
                       at, end - at < CENTRAL_SIZE ? "cut short" : "bad signature");
    const unsigned char *c = buf + at;
    size_t nlen = u16(c + 28), xlen = u16(c + 30), clen = u16(c + 32);
    if (end - at - CENTRAL_SIZE < nlen + xlen + clen)
        return rn_fail(RN_ERR_FORMAT, "%s: central directory entry %zu at byte %zu: name, extra "
                       "and comment run past the directory", what, i, at);
    const unsigned char *name = c + CENTRAL_SIZE;
    if (memchr(name, 0, nlen))
        return rn_fail(RN_ERR_FORMAT, "%s: central directory entry %zu at byte %zu: name holds "
                       "a NUL byte", what, i, at);
    if (!(e->name = malloc(nlen + 1)))
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory", what);
    memcpy(e->name, name, nlen);
    e->name[nlen] = '\0';
    e->name_len = nlen;
    char shown[80];
    json_printable(shown, sizeof shown, e->name);

    uint32_t flags = u16(c + 8), method = u16(c + 10);
    if (flags & (FLAG_ENCRYPTED | FLAG_STRONG))
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: entry '%s' is encrypted", what, shown);
    if (method != 0)
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: entry '%s' is compressed (method %u); only "
                       "STORED entries are supported%s", what, shown, method,
                       strstr(e->name, "/code/") ? " (torch.save stores every entry; compressed "
                       "code/ entries are those of a TorchScript archive written by "
                       "torch.jit.save, which resnet does not read)" : "");
    uint64_t v[3] = {u32(c + 24), u32(c + 20), u32(c + 42)};
    int want[3] = {v[0] == SAT32, v[1] == SAT32, v[2] == SAT32};
    const char *why = NULL;
    if (u16(c + 34) == SAT16)
        why = "saturated disk number";
    else if (read_zip64_extra(name + nlen, xlen, want, v, &why))
        why = NULL;
    if (why)
        return rn_fail(RN_ERR_FORMAT, "%s: entry '%s' (central directory byte %zu): %s", what,
                       shown, at, why);
    if (u16(c + 34) != 0)
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: entry '%s' starts on disk %u", what, shown,
                       u16(c + 34));
    if (v[0] != v[1])
        return rn_fail(RN_ERR_FORMAT, "%s: entry '%s': stored entry with compressed size %llu "
                       "!= uncompressed size %llu", what, shown, (unsigned long long)v[1],
                       (unsigned long long)v[0]);
    if (!to_size(v[0], &e->size) || !to_size(v[2], &e->header_offset))
        return rn_fail(RN_ERR_FORMAT, "%s: entry '%s': size or offset too large", what, shown);
    e->crc32 = u32(c + 16);
    *p = at + CENTRAL_SIZE + nlen + xlen + clen;
    return RN_OK;
}

/* Checks the local header of e against its central entry and sets
 * e->data_offset; everything must end before `limit` (the directory). */
static rn_status read_local(const unsigned char *buf, size_t limit, const char *what,
                            zip_entry *e) {
    char shown[80];
    json_printable(shown, sizeof shown, e->name);
    size_t at = e->header_offset;
    if (at > limit || limit - at < LOCAL_SIZE)
        return rn_fail(RN_ERR_FORMAT, "%s: entry '%s': local header offset %zu is not before "
                       "the central directory at byte %zu", what, shown, at, limit);
    const unsigned char *l = buf + at;
    if (u32(l) != SIG_LOCAL)
        return rn_fail(RN_ERR_FORMAT, "%s: entry '%s': no local header signature at byte %zu",
                       what, shown, at);
    uint32_t flags = u16(l + 6), method = u16(l + 8);
    size_t nlen = u16(l + 26), xlen = u16(l + 28);
    if (limit - at - LOCAL_SIZE < nlen + xlen)
        return rn_fail(RN_ERR_FORMAT, "%s: entry '%s': local header at byte %zu runs into the "
                       "central directory", what, shown, at);
    if (nlen != e->name_len || memcmp(l + LOCAL_SIZE, e->name, nlen) != 0)
        return rn_fail(RN_ERR_FORMAT, "%s: entry '%s': the local header at byte %zu names a "
                       "different entry", what, shown, at);
    if (method != 0 || (flags & (FLAG_ENCRYPTED | FLAG_STRONG)))
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: entry '%s': local header at byte %zu says "
                       "compressed (method %u) or encrypted", what, shown, at, method);
    if (!(flags & FLAG_DESCRIPTOR)) {
        uint64_t v[3] = {u32(l + 22), u32(l + 18), 0};
        int want[3] = {v[0] == SAT32, v[1] == SAT32, 0};
        const char *why = NULL;
        if (!read_zip64_extra(l + LOCAL_SIZE + nlen, xlen, want, v, &why))
            return rn_fail(RN_ERR_FORMAT, "%s: entry '%s': local header at byte %zu: %s", what,
                           shown, at, why);
        if (u32(l + 14) != e->crc32 || v[0] != e->size || v[1] != e->size)
            return rn_fail(RN_ERR_FORMAT, "%s: entry '%s': local header at byte %zu disagrees "
                           "with the central directory (CRC or sizes)", what, shown, at);
    }
    e->data_offset = at + LOCAL_SIZE + nlen + xlen;
    if (e->size > limit - e->data_offset)
        return rn_fail(RN_ERR_FORMAT, "%s: entry '%s': data [%zu, +%zu) runs past byte %zu "
                       "where the central directory starts", what, shown, e->data_offset,
                       e->size, limit);
    return RN_OK;
}

static uint32_t crc_of(const unsigned char *p, size_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)crc;
}

/* ---------------------------------------------------------------------------
 * Layout: unique names, no overlaps
 * ------------------------------------------------------------------------- */

/* Sorts idx[0..n) by cmp over the entries: a bottom-up merge sort, as
 * qsort cannot pass the entries to its comparison without a global. */
static void sort_indices(size_t *idx, size_t *tmp, size_t n, const zip_entry *e,
                         int (*cmp)(const zip_entry *, size_t, size_t)) {
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = cmp(e, idx[j], idx[i]) < 0 ? idx[j++] : idx[i++];
            while (i < mid)
                tmp[k++] = idx[i++];
            while (j < hi)
                tmp[k++] = idx[j++];
        }
        memcpy(idx, tmp, n * sizeof *idx);
    }
}

static int cmp_offset(const zip_entry *e, size_t a, size_t b) {
    return e[a].header_offset < e[b].header_offset ? -1 : e[a].header_offset > e[b].header_offset;
}

static int cmp_name(const zip_entry *e, size_t a, size_t b) { return strcmp(e[a].name, e[b].name); }

static rn_status check_layout(zip_archive *z, const char *what) {
    size_t n = z->count;
    size_t *order = malloc((n ? n : 1) * sizeof *order), *tmp = malloc((n ? n : 1) * sizeof *tmp);
    z->by_name = malloc((n ? n : 1) * sizeof *z->by_name);
    if (!order || !tmp || !z->by_name) {
        free(order);
        free(tmp);
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory for %zu entries", what, n);
    }
    for (size_t i = 0; i < n; i++)
        order[i] = z->by_name[i] = i;
    sort_indices(order, tmp, n, z->entries, cmp_offset);
    sort_indices(z->by_name, tmp, n, z->entries, cmp_name);
    free(tmp);
    rn_status st = RN_OK;
    for (size_t i = 1; i < n && st == RN_OK; i++) {
        const zip_entry *a = &z->entries[order[i - 1]], *b = &z->entries[order[i]];
        if (a->data_offset + a->size > b->header_offset) {
            char na[80], nb[80];
            json_printable(na, sizeof na, a->name);
            json_printable(nb, sizeof nb, b->name);
            st = rn_fail(RN_ERR_FORMAT, "%s: entries '%s' [%zu, %zu) and '%s' [%zu, %zu) "
                         "overlap", what, na, a->header_offset, a->data_offset + a->size, nb,
                         b->header_offset, b->data_offset + b->size);
        }
    }
    for (size_t i = 1; i < n && st == RN_OK; i++) {
        const zip_entry *a = &z->entries[z->by_name[i - 1]], *b = &z->entries[z->by_name[i]];
        if (strcmp(a->name, b->name) == 0) {
            char na[80];
            json_printable(na, sizeof na, a->name);
            st = rn_fail(RN_ERR_FORMAT, "%s: duplicate entry '%s' (local headers at bytes %zu "
                         "and %zu)", what, na, a->header_offset, b->header_offset);
        }
    }
    free(order);
    return st;
}

/* ---------------------------------------------------------------------------
 * Public
 * ------------------------------------------------------------------------- */

rn_status zip_open(const unsigned char *buf, size_t len, const char *what, zip_archive *out) {
    if (!out)
        return rn_fail(RN_ERR_ARG, "zip_open: out is NULL");
    memset(out, 0, sizeof *out);
    if (!what)
        what = "<buffer>";
    if (!buf && len)
        return rn_fail(RN_ERR_ARG, "%s: buffer is NULL", what);
    zip_dir dir = {0, 0, 0, 0};
    RN_TRY(read_dir(buf, len, what, &dir));
    out->buf = buf;
    out->len = len;
    if (dir.count && !(out->entries = calloc(dir.count, sizeof *out->entries)))
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory for %zu entries", what, dir.count);
    rn_status st = RN_OK;
    size_t p = dir.offset, end = dir.offset + dir.size;
    for (size_t i = 0; i < dir.count && st == RN_OK; i++) {
        out->count = i + 1;
        st = read_central(buf, &p, end, i, what, &out->entries[i]);
        if (st == RN_OK)
            st = read_local(buf, dir.offset, what, &out->entries[i]);
    }
    if (st == RN_OK && p != end)
        st = rn_fail(RN_ERR_FORMAT, "%s: %zu bytes after the last central directory entry at "
                     "byte %zu", what, end - p, p);
    if (st == RN_OK)
        st = check_layout(out, what);
    for (size_t i = 0; i < out->count && st == RN_OK; i++) {
        const zip_entry *e = &out->entries[i];
        uint32_t crc = crc_of(buf + e->data_offset, e->size);
        if (crc != e->crc32) {
            char shown[80];
            json_printable(shown, sizeof shown, e->name);
            st = rn_fail(RN_ERR_FORMAT, "%s: entry '%s' at byte %zu: CRC-32 mismatch (stored "
                         "0x%08x, computed 0x%08x)", what, shown, e->data_offset,
                         (unsigned)e->crc32, (unsigned)crc);
        }
    }
    if (st != RN_OK)
        zip_close(out);
    return st;
}

void zip_close(zip_archive *z) {
    if (!z)
        return;
    for (size_t i = 0; i < z->count; i++)
        free(z->entries[i].name);
    free(z->entries);
    free(z->by_name);
    memset(z, 0, sizeof *z);
}

const zip_entry *zip_find(const zip_archive *z, const char *name) {
    if (!z || !name || !z->by_name)
        return NULL;
    size_t lo = 0, hi = z->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const zip_entry *e = &z->entries[z->by_name[mid]];
        int c = strcmp(name, e->name);
        if (c == 0)
            return e;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
