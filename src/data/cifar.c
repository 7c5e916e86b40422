/*
 * cifar.c - CIFAR-10 binary batches.
 *
 * Each file is a sequence of 3073-byte records: one label byte (0..9), then
 * 3072 pixel bytes, the 32x32 red plane, then green, then blue - already
 * the (C, H, W) order of rn_dataset. The training split is data_batch_1.bin
 * .. data_batch_5.bin, the test split test_batch.bin, in DIR or in
 * DIR/cifar-10-batches-bin (the layout of the official archive). Class names
 * come from batches.meta.txt beside them (ten non-empty lines) when present.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/mem.h"
#include "core/status.h"
#include "data/dataset.h"

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_CLASSES 10
#define CIFAR_MAX_FILES 5
#define CIFAR_META_MAX 4096

/* ---------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------- */

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The batch file names of a split; returns how many. */
static int split_files(int train, const char *names[CIFAR_MAX_FILES]) {
    static const char *const train_files[CIFAR_MAX_FILES] = {
        "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
        "data_batch_4.bin", "data_batch_5.bin",
    };
    if (!train) {
        names[0] = "test_batch.bin";
        return 1;
    }
    for (int i = 0; i < CIFAR_MAX_FILES; i++)
        names[i] = train_files[i];
    return CIFAR_MAX_FILES;
}

/* Number of records in path, checking its size. */
static rn_status count_records(const char *path, size_t *records) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return rn_fail(RN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return rn_fail(RN_ERR_IO, "%s: not a regular file", path);
    size_t size = (size_t)sb.st_size;
    if (size == 0 || size % CIFAR_RECORD != 0)
        return rn_fail(RN_ERR_FORMAT, "%s: size %zu is not a positive multiple of %d (1 label "
                       "byte + %d pixel bytes per image)", path, size, CIFAR_RECORD, CIFAR_PIXELS);
    *records = size / CIFAR_RECORD;
    return RN_OK;
}

/* Reads the records of path into pixels/labels (room for `records`). buf
 * holds one file. */
static rn_status read_batch(const char *path, size_t records, uint8_t *buf, uint8_t *pixels,
                            int32_t *labels) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return rn_fail(RN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t bytes = records * CIFAR_RECORD;
    size_t got = fread(buf, 1, bytes, f);
    int extra = got == bytes && fgetc(f) != EOF;
    fclose(f);
    if (got != bytes || extra)
        return rn_fail(RN_ERR_IO, "%s: read %zu bytes, expected %zu (did the file change?)", path,
                       got, bytes);
    for (size_t r = 0; r < records; r++) {
        const uint8_t *rec = buf + r * CIFAR_RECORD;
        if (rec[0] >= CIFAR_CLASSES)
            return rn_fail(RN_ERR_FORMAT, "%s: label %u at offset %zu (image %zu) is out of "
                           "range 0..%d", path, (unsigned)rec[0], r * CIFAR_RECORD, r,
                           CIFAR_CLASSES - 1);
        labels[r] = rec[0];
        memcpy(pixels + r * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
    }
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Class names
 * ------------------------------------------------------------------------- */

/* Ten non-empty lines (surrounding spaces trimmed) from batches.meta.txt. */
static rn_status read_meta(const char *path, rn_dataset *ds) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return rn_fail(RN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char text[CIFAR_META_MAX + 1];
    size_t len = fread(text, 1, sizeof text, f);
    fclose(f);
    if (len > CIFAR_META_MAX)
        return rn_fail(RN_ERR_FORMAT, "%s: longer than %d bytes", path, CIFAR_META_MAX);
    text[len] = '\0';

    const char *names[CIFAR_CLASSES];
    int count = 0;
    char *line = text;
    while (line < text + len) {
        char *end = memchr(line, '\n', (size_t)(text + len - line));
        char *next = end ? end + 1 : text + len;
        if (!end)
            end = text + len;
        while (end > line && isspace((unsigned char)end[-1]))
            end--;
        while (line < end && isspace((unsigned char)*line))
            line++;
        *end = '\0';
        if (line < end) {
            for (const char *c = line; c < end; c++)
                if ((unsigned char)*c < 0x20)
                    return rn_fail(RN_ERR_FORMAT, "%s: control byte 0x%02x at offset %zu", path,
                                   (unsigned char)*c, (size_t)(c - text));
            if (count == CIFAR_CLASSES)
                return rn_fail(RN_ERR_FORMAT, "%s: more than %d class names (at offset %zu)",
                               path, CIFAR_CLASSES, (size_t)(line - text));
            names[count++] = line;
        }
        line = next;
    }
    if (count != CIFAR_CLASSES)
        return rn_fail(RN_ERR_FORMAT, "%s: %d class names, expected %d", path, count,
                       CIFAR_CLASSES);
    return rn_dataset_set_class_names(ds, names, CIFAR_CLASSES);
}

/* ---------------------------------------------------------------------------
 * A split
 * ------------------------------------------------------------------------- */

rn_status rn_cifar10_load(const char *dir, int train, rn_dataset *out) {
    memset(out, 0, sizeof *out);
    if (!dir)
        return rn_fail(RN_ERR_ARG, "rn_cifar10_load: NULL directory");
    const char *files[CIFAR_MAX_FILES];
    int nfiles = split_files(train, files);

    /* DIR itself, or the archive's folder inside it. */
    char base[4096], path[4200];
    snprintf(base, sizeof base, "%s", dir);
    snprintf(path, sizeof path, "%s/%s", base, files[0]);
    if (!file_exists(path)) {
        snprintf(base, sizeof base, "%s/cifar-10-batches-bin", dir);
        snprintf(path, sizeof path, "%s/%s", base, files[0]);
        if (!file_exists(path))
            return rn_fail(RN_ERR_IO, "cifar10: %s/%s not found (nor %s)", dir, files[0], path);
    }

    size_t records[CIFAR_MAX_FILES], total = 0, largest = 0;
    for (int i = 0; i < nfiles; i++) {
        snprintf(path, sizeof path, "%s/%s", base, files[i]);
        RN_TRY(count_records(path, &records[i]));
        if (!rn_size_add(total, records[i], &total) || total > INT32_MAX)
            return rn_fail(RN_ERR_FORMAT, "%s: more than %d images in the split", path, INT32_MAX);
        if (records[i] > largest)
            largest = records[i];
    }

    size_t pix_bytes, buf_bytes;
    rn_status st = RN_OK;
    uint8_t *buf = NULL;
    if (!rn_size_mul(total, CIFAR_PIXELS, &pix_bytes) ||
        !rn_size_mul(largest, CIFAR_RECORD, &buf_bytes) ||
        !(out->pixels = malloc(pix_bytes)) ||
        !(out->labels = malloc(total * sizeof *out->labels)) || !(buf = malloc(buf_bytes)))
        st = rn_fail(RN_ERR_NOMEM, "cifar10: out of memory for %zu images", total);
    size_t at = 0;
    for (int i = 0; st == RN_OK && i < nfiles; i++) {
        snprintf(path, sizeof path, "%s/%s", base, files[i]);
        st = read_batch(path, records[i], buf, out->pixels + at * CIFAR_PIXELS, out->labels + at);
        at += records[i];
    }
    free(buf);

    out->count = (int)total;
    out->channels = 3;
    out->height = CIFAR_SIDE;
    out->width = CIFAR_SIDE;
    if (st == RN_OK) {
        snprintf(path, sizeof path, "%s/batches.meta.txt", base);
        st = file_exists(path) ? read_meta(path, out)
                               : rn_dataset_set_class_names(out, rn_dataset_builtin_names("cifar10", NULL),
                                                            CIFAR_CLASSES);
    }
    out->num_classes = CIFAR_CLASSES;
    if (st != RN_OK)
        rn_dataset_free(out);
    return st;
}
