/*
 * zip.h - a validating reader for STORED zip archives in memory, as
 * torch.save writes them (PyTorch >= 1.6).
 *
 * zip_open() indexes an archive held in a buffer without copying data. It
 * trusts nothing:
 *   - the End of Central Directory record must end the buffer exactly (its
 *     comment included); multi-disk archives are refused;
 *   - a ZIP64 locator / ZIP64 EOCD record, when present, supplies the 64-bit
 *     counts, sizes and offsets (32-bit fields that are not saturated must
 *     agree with them); per-entry ZIP64 extra fields supply saturated sizes
 *     and offsets;
 *   - every entry must be STORED (method 0), unencrypted, with compressed
 *     size = uncompressed size, a name without NUL bytes, unique;
 *   - every local header must match its central entry (name, method, and
 *     size and CRC unless a data descriptor defers them);
 *   - all offsets and sizes are overflow-checked and in bounds; local
 *     records (header + data) may not overlap each other, and all lie before
 *     the central directory, which lies before the EOCD records;
 *   - every entry's CRC-32 is verified.
 * Every failure names the buffer (`what`) and the entry or offset at fault.
 */
#ifndef RN_IO_ZIP_H
#define RN_IO_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "resnet.h"

/* At most this many entries in one archive. */
#define ZIP_MAX_ENTRIES (1u << 20)

typedef struct zip_entry {
    char *name;                  /* NUL-terminated (NUL bytes inside are refused) */
    size_t name_len;
    size_t header_offset;        /* where the local header starts */
    size_t data_offset;          /* where the data starts, in the buffer */
    size_t size;                 /* bytes of data */
    uint32_t crc32;
} zip_entry;

typedef struct zip_archive {
    const unsigned char *buf;    /* the caller's buffer; not owned */
    size_t len;
    zip_entry *entries;          /* in central directory order */
    size_t count;
    size_t *by_name;             /* entry indices sorted by name, for zip_find */
} zip_archive;

/* Indexes the archive buf[0..len). On success *out refers into buf, which
 * must outlive it; free with zip_close(). On failure *out is empty. */
rn_status zip_open(const unsigned char *buf, size_t len, const char *what, zip_archive *out);
void zip_close(zip_archive *z);

/* The entry named `name`, or NULL (binary search). */
const zip_entry *zip_find(const zip_archive *z, const char *name);

/* The entry's bytes (inside the caller's buffer). */
static inline const unsigned char *zip_data(const zip_archive *z, const zip_entry *e) {
    return z->buf + e->data_offset;
}

#endif
