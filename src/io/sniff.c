/* sniff.c - what a file looks like, from its first (and last) bytes. */
#include "io/sniff.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/status.h"
#include "io/json.h"

#define HEAD_BYTES 4096
#define EOCD_SEARCH (65535 + 22)   /* an EOCD record with the longest comment */

/* ---------------------------------------------------------------------------
 * Signatures
 * ------------------------------------------------------------------------- */

static int starts(const unsigned char *buf, size_t len, const void *sig, size_t n) {
    return len >= n && memcmp(buf, sig, n) == 0;
}

static int is_text(const unsigned char *buf, size_t len);

/* 8-byte little-endian header length, then the JSON header's '{'. A length
 * past the end of the file still counts (a truncated safetensors file is
 * one, and its reader says what is wrong with it), unless the file is text
 * that happens to hold a '{' at byte 8. */
static int is_safetensors(const unsigned char *buf, size_t len) {
    if (len < 9 || buf[8] != '{')
        return 0;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | buf[i];
    return hlen <= len - 8 || !is_text(buf, len);
}

/* ModelProto: ir_version (field 1, a small varint) comes first, then
 * producer_name, graph, opset_import, ... */
static int is_onnx(const unsigned char *buf, size_t len) {
    static const unsigned char next[] = {0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72};
    return len >= 3 && buf[0] == 0x08 && buf[1] >= 1 && buf[1] <= 15 &&
           memchr(next, buf[2], sizeof next) != NULL;
}

/* An End of Central Directory signature within the last EOCD_SEARCH bytes. */
static int has_eocd(const unsigned char *buf, size_t len) {
    if (len < 22)
        return 0;
    size_t lo = len > EOCD_SEARCH ? len - EOCD_SEARCH : 0;
    for (size_t p = len - 22 + 1; p-- > lo;)
        if (memcmp(buf + p, "PK\5\6", 4) == 0)
            return 1;
    return 0;
}

/* Printable UTF-8 with the usual whitespace, no other control bytes (a
 * sequence cut by the end of the sample is fine). */
static int is_text(const unsigned char *buf, size_t len) {
    size_t n = len < HEAD_BYTES ? len : HEAD_BYTES, i = 0;
    while (i < n) {
        unsigned char c = buf[i];
        if (c < 0x80) {
            if (c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f')
                return 0;
            if (c == 0x7f)
                return 0;
            i++;
            continue;
        }
        size_t k = json_utf8_seq(buf + i, n - i);
        if (k == 0)
            return n - i < 4 && n < len;
        i += k;
    }
    return 1;
}

/* The first non-blank bytes, lower-cased, start with `prefix`. */
static int text_starts(const unsigned char *buf, size_t len, const char *prefix) {
    size_t i = 0, n = strlen(prefix);
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
        i = 3;
    while (i < len && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t'))
        i++;
    if (len - i < n)
        return 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = buf[i + k];
        if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != (unsigned char)prefix[k])
            return 0;
    }
    return 1;
}

rn_format rn_sniff(const unsigned char *buf, size_t len) {
    if (!buf || len == 0)
        return RN_FMT_EMPTY;
    if (is_safetensors(buf, len))
        return RN_FMT_SAFETENSORS;
    if (starts(buf, len, "PK\3\4", 4) || starts(buf, len, "PK\5\6", 4))
        return RN_FMT_ZIP;
    if (len >= 2 && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5)
        return RN_FMT_PICKLE;
    /* pickle protocols 0 and 1 write torch's magic number as a decimal LONG */
    if (starts(buf, len, "L119547037146038801333356L\n", 27))
        return RN_FMT_PICKLE_TEXT;
    if (len >= 262 && memcmp(buf + 257, "ustar", 5) == 0)
        return RN_FMT_TAR;
    if (starts(buf, len, "\x93NUMPY", 6))
        return RN_FMT_NPY;
    if (starts(buf, len, "\x89HDF\r\n\x1a\n", 8))
        return RN_FMT_HDF5;
    if (starts(buf, len, "\x1f\x8b", 2))
        return RN_FMT_GZIP;
    if (starts(buf, len, "\x89PNG\r\n\x1a\n", 8))
        return RN_FMT_PNG;
    if (starts(buf, len, "\xff\xd8\xff", 3))
        return RN_FMT_JPEG;
    if (is_onnx(buf, len))
        return RN_FMT_ONNX;
    if (is_text(buf, len)) {
        if (starts(buf, len, "version https://git-lfs.github.com/spec/", 40))
            return RN_FMT_LFS_POINTER;
        if (text_starts(buf, len, "<!doctype html") || text_starts(buf, len, "<html") ||
            text_starts(buf, len, "<head"))
            return RN_FMT_HTML;
        return RN_FMT_TEXT;
    }
    if (has_eocd(buf, len))
        return RN_FMT_ZIP;
    return RN_FMT_UNKNOWN;
}

/* ---------------------------------------------------------------------------
 * Names and messages
 * ------------------------------------------------------------------------- */

static const struct {
    const char *name, *hint;
} formats[] = {
    [RN_FMT_UNKNOWN] = {"binary data of no known format", NULL},
    [RN_FMT_EMPTY] = {"an empty file (0 bytes)", NULL},
    [RN_FMT_SAFETENSORS] = {"a safetensors file", NULL},
    [RN_FMT_ZIP] = {"a zip archive", NULL},
    [RN_FMT_PICKLE] = {"a Python pickle", NULL},
    [RN_FMT_PICKLE_TEXT] = {"a torch.save legacy file written with pickle protocol 0 or 1",
                            "only protocols 2 to 5 are read: load it in Python and save it again "
                            "with torch.save's default protocol"},
    [RN_FMT_TAR] = {"a tar archive", "torch.save wrote tar archives only in PyTorch's earliest "
                    "releases: load it in Python and save its state_dict() again"},
    [RN_FMT_ONNX] = {"an ONNX model (protobuf)",
                     "resnet does not read ONNX: save the PyTorch model's state_dict() with "
                     "torch.save instead"},
    [RN_FMT_NPY] = {"a NumPy .npy array", "arrays are inputs (resnet forward --input), not "
                    "weights"},
    [RN_FMT_HDF5] = {"an HDF5 file (Keras .h5 weights?)", "resnet does not read HDF5"},
    [RN_FMT_GZIP] = {"gzip-compressed data", "decompress it first (gunzip)"},
    [RN_FMT_PNG] = {"a PNG image", "images are classified with resnet predict"},
    [RN_FMT_JPEG] = {"a JPEG image", "images are classified with resnet predict"},
    [RN_FMT_LFS_POINTER] = {"a Git LFS pointer, not the file it stands for",
                            "fetch the file itself with git lfs pull"},
    [RN_FMT_HTML] = {"a web page (HTML)", "the download returned a page (an error, a login or "
                     "a confirmation page) instead of the file"},
    [RN_FMT_TEXT] = {"a text file", NULL},
};

const char *rn_format_name(rn_format format) {
    return (unsigned)format < sizeof formats / sizeof formats[0] ? formats[format].name
                                                                 : formats[RN_FMT_UNKNOWN].name;
}

/* What the bytes show, for text and unknown binary: the start of the first
 * line, or the first 8 bytes in hex. */
static void show_start(const unsigned char *buf, size_t len, rn_format f, char *out, size_t cap) {
    out[0] = '\0';
    if (f == RN_FMT_TEXT) {
        char line[48];
        size_t n = 0;
        while (n < len && n < sizeof line - 1 && buf[n] != '\n' && buf[n] != '\r')
            n++;
        memcpy(line, buf, n);
        line[n] = '\0';
        char shown[48];
        json_printable(shown, sizeof shown, line);
        snprintf(out, cap, " starting \"%s\"", shown);
    } else if (f == RN_FMT_UNKNOWN) {
        size_t used = (size_t)snprintf(out, cap, " starting");
        for (size_t i = 0; i < len && i < 8 && used < cap; i++)
            used += (size_t)snprintf(out + used, cap - used, " %02x", buf[i]);
        if (used < cap && len < 8)
            snprintf(out + used, cap - used, " (%zu bytes in all)", len);
    }
}

rn_status rn_sniff_refuse(const unsigned char *buf, size_t len, const char *what,
                          const char *reader) {
    rn_format f = rn_sniff(buf, len);
    if (!what)
        what = "<buffer>";
    char start[80];
    show_start(buf, len, f, start, sizeof start);
    const char *hint = formats[f].hint;
    rn_status st = f == RN_FMT_EMPTY ? RN_ERR_FORMAT : RN_ERR_UNSUPPORTED;
    if (reader)
        return rn_fail(st, "%s: not %s: this is %s%s%s%s", what, reader, rn_format_name(f), start,
                       hint ? "; " : "", hint ? hint : "");
    return rn_fail(st, "%s: this is %s%s%s%s; %s", what, rn_format_name(f), start,
                   hint ? "; " : "", hint ? hint : "", RN_WEIGHT_FORMATS);
}
