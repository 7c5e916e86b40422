/*
 * gen_malformed.c - writes the corpus that tests/malformed_cli.sh feeds to
 * `resnet forward`. Standalone: it does not use the library, so a reader
 * bug cannot hide in the files that test it.
 *
 *     gen_malformed OUTDIR
 *
 * writes
 *     OUTDIR/valid_weights.safetensors   a well-formed resnet18 state_dict
 *                                        (3 input channels, 10 classes)
 *     OUTDIR/valid_input.npy             float32 (1, 3, 32, 32)
 *     OUTDIR/st/<case>.safetensors       malformed weights, one per case
 *     OUTDIR/npy/<case>.npy              malformed inputs, one per case
 * and prints "st N" and "npy M", the number of cases of each kind.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *outdir;
static int n_st, n_npy;

/* ---------------------------------------------------------------------------
 * Writing files
 * ------------------------------------------------------------------------- */

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void write_file(const char *sub, const char *name, const void *a, size_t alen,
                       const void *b, size_t blen) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s%s%s", outdir, sub, *sub ? "/" : "", name);
    FILE *f = fopen(path, "wb");
    if (!f)
        die(path);
    if ((alen && fwrite(a, 1, alen, f) != alen) || (blen && fwrite(b, 1, blen, f) != blen) ||
        fclose(f) != 0)
        die(path);
}

static void le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* A safetensors file: 8-byte length, header, then data_len bytes 0, 1, ... */
static unsigned char *st_bytes(const char *header, size_t data_len, size_t *len) {
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    unsigned char *buf = malloc(*len);
    if (!buf)
        die("malloc");
    le64(buf, h);
    memcpy(buf + 8, header, h);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + h + i] = (unsigned char)i;
    return buf;
}

static void st_case(const char *name, const void *bytes, size_t len) {
    char file[256];
    snprintf(file, sizeof file, "%s.safetensors", name);
    write_file("st", file, bytes, len, NULL, 0);
    n_st++;
}

/* A .npy file: magic, version, header length (2 bytes for 1.x, else 4),
 * header, then data_len bytes. */
static unsigned char *npy_bytes(int major, int minor, const char *header, size_t data_len,
                                size_t *len) {
    size_t h = strlen(header), pre = major == 1 ? 10 : 12;
    *len = pre + h + data_len;
    unsigned char *buf = calloc(*len, 1);
    if (!buf)
        die("calloc");
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = (unsigned char)minor;
    for (size_t i = 0; i < pre - 8; i++)
        buf[8 + i] = (unsigned char)(h >> (8 * i));
    memcpy(buf + pre, header, h);
    return buf;
}

static void npy_case(const char *name, const void *bytes, size_t len) {
    char file[256];
    snprintf(file, sizeof file, "%s.npy", name);
    write_file("npy", file, bytes, len, NULL, 0);
    n_npy++;
}

/* ---------------------------------------------------------------------------
 * The valid files
 * ------------------------------------------------------------------------- */

typedef struct tensor {
    char name[128];
    int ndim;
    long shape[4];
    int fill;                /* 0: zeros, 1: ones, 2: I64 scalar */
} tensor;

static tensor tensors[160];
static int n_tensors;

static void add(const char *name, int fill, int ndim, long a, long b, long c, long d) {
    tensor *t = &tensors[n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = a, t->shape[1] = b, t->shape[2] = c, t->shape[3] = d;
    t->fill = fill;
}

static void add_conv(const char *name, long out, long in, long k) {
    add(name, 0, 4, out, in, k, k);
}

static void add_bn(const char *prefix, long c) {
    static const char *const parts[] = {"weight", "bias", "running_mean", "running_var"};
    char name[128];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, parts[i]);
        add(name, i == 0 || i == 3, 1, c, 0, 0, 0);
    }
    snprintf(name, sizeof name, "%s.num_batches_tracked", prefix);
    add(name, 2, 0, 0, 0, 0, 0);
}

/* torchvision resnet18 with 3 input channels and 10 classes. */
static void resnet18_tensors(void) {
    add_conv("conv1.weight", 64, 3, 7);
    add_bn("bn1", 64);
    long in = 64;
    for (int layer = 1; layer <= 4; layer++) {
        long planes = 64L << (layer - 1);
        for (int block = 0; block < 2; block++) {
            char p[32], name[96];
            snprintf(p, sizeof p, "layer%d.%d", layer, block);
            snprintf(name, sizeof name, "%s.conv1.weight", p);
            add_conv(name, planes, in, 3);
            snprintf(name, sizeof name, "%s.bn1", p);
            add_bn(name, planes);
            snprintf(name, sizeof name, "%s.conv2.weight", p);
            add_conv(name, planes, planes, 3);
            snprintf(name, sizeof name, "%s.bn2", p);
            add_bn(name, planes);
            if (block == 0 && layer > 1) {
                snprintf(name, sizeof name, "%s.downsample.0.weight", p);
                add_conv(name, planes, in, 1);
                snprintf(name, sizeof name, "%s.downsample.1", p);
                add_bn(name, planes);
            }
            in = planes;
        }
    }
    add("fc.weight", 0, 2, 10, 512, 0, 0);
    add("fc.bias", 0, 1, 10, 0, 0, 0);
}

static size_t tensor_bytes(const tensor *t) {
    size_t n = t->fill == 2 ? 8 : 4;
    for (int d = 0; d < t->ndim; d++)
        n *= (size_t)t->shape[d];
    return n;
}

static void write_valid_weights(void) {
    resnet18_tensors();
    static char header[1 << 16];
    size_t h = (size_t)snprintf(header, sizeof header, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t offset = 0;
    for (int i = 0; i < n_tensors; i++) {
        const tensor *t = &tensors[i];
        h += (size_t)snprintf(header + h, sizeof header - h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                              t->name, t->fill == 2 ? "I64" : "F32");
        for (int d = 0; d < t->ndim; d++)
            h += (size_t)snprintf(header + h, sizeof header - h, "%s%ld", d ? "," : "",
                                  t->shape[d]);
        size_t bytes = tensor_bytes(t);
        h += (size_t)snprintf(header + h, sizeof header - h, "],\"data_offsets\":[%zu,%zu]}",
                              offset, offset + bytes);
        offset += bytes;
    }
    h += (size_t)snprintf(header + h, sizeof header - h, "}");
    while (h % 8)
        header[h++] = ' ';

    char path[1024];
    snprintf(path, sizeof path, "%s/valid_weights.safetensors", outdir);
    FILE *f = fopen(path, "wb");
    if (!f)
        die(path);
    unsigned char len8[8];
    le64(len8, h);
    if (fwrite(len8, 1, 8, f) != 8 || fwrite(header, 1, h, f) != h)
        die(path);
    static unsigned char zeros[1 << 16], ones[1 << 16];
    for (size_t i = 0; i < sizeof ones; i += 4)
        memcpy(ones + i, "\x00\x00\x80\x3f", 4);  /* 1.0f, little-endian */
    for (int i = 0; i < n_tensors; i++) {
        size_t left = tensor_bytes(&tensors[i]);
        const unsigned char *src = tensors[i].fill == 1 ? ones : zeros;
        while (left > 0) {
            size_t n = left < sizeof zeros ? left : sizeof zeros;
            if (fwrite(src, 1, n, f) != n)
                die(path);
            left -= n;
        }
    }
    if (fclose(f) != 0)
        die(path);
}

#define NPY_HDR(descr, fortran, shape) \
    "{'descr': " descr ", 'fortran_order': " fortran ", 'shape': " shape ", }"

/* Pads a header to a 64-byte boundary (10-byte preamble) like numpy. */
static const char *npy_padded(const char *dict) {
    static char h[256];
    size_t n = (size_t)snprintf(h, sizeof h - 64, "%s", dict);
    while ((10 + n + 1) % 64)
        h[n++] = ' ';
    h[n++] = '\n';
    h[n] = '\0';
    return h;
}

static void write_valid_input(void) {
    size_t len;
    unsigned char *buf = npy_bytes(1, 0, npy_padded(NPY_HDR("'<f4'", "False", "(1, 3, 32, 32)")),
                                   3 * 32 * 32 * 4, &len);
    write_file("", "valid_input.npy", buf, len, NULL, 0);
    free(buf);
}

/* ---------------------------------------------------------------------------
 * Malformed safetensors
 * ------------------------------------------------------------------------- */

#define F32_2 "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"

static const struct {
    const char *name, *header;
    size_t data_len;
} st_cases[] = {
    {"json_empty_object_trailing_data", "{}", 8},
    {"json_unclosed", "{\"a\":{" F32_2 "}", 8},
    {"json_trailing_comma", "{\"a\":{" F32_2 "},}", 8},
    {"json_single_quotes", "{'a':{" F32_2 "}}", 8},
    {"json_garbage_after", "{\"a\":{" F32_2 "}} x", 8},
    {"json_bad_escape", "{\"a\\q\":{" F32_2 "}}", 8},
    {"json_lone_surrogate", "{\"\\ud800\":{" F32_2 "}}", 8},
    {"json_invalid_utf8", "{\"\xff\":{" F32_2 "}}", 8},
    {"json_overlong_utf8", "{\"\xc0\xaf\":{" F32_2 "}}", 8},
    {"json_control_char", "{\"a\tb\":{" F32_2 "}}", 8},
    {"json_nan", "{\"a\":{\"dtype\":\"F32\",\"shape\":[NaN],\"data_offsets\":[0,8]}}", 8},
    {"not_an_object", "[1,2]", 8},
    {"tensor_not_object", "{\"a\":[0,8]}", 8},
    {"missing_dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8},
    {"missing_shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8},
    {"missing_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8},
    {"unknown_dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8},
    {"unsupported_dtype", "{\"a\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8},
    {"shape_vs_span", "{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[10,512],"
                      "\"data_offsets\":[0,400]}}", 400},
    {"shape_negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8},
    {"shape_float", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8},
    {"shape_overflow", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                       "\"data_offsets\":[0,8]}}", 8},
    {"shape_huge_int", "{\"a\":{\"dtype\":\"F32\",\"shape\":[18446744073709551616],"
                       "\"data_offsets\":[0,8]}}", 8},
    {"too_many_dims", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],"
                      "\"data_offsets\":[0,8]}}", 8},
    {"offsets_float", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0.0,8]}}", 8},
    {"offsets_negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[-8,-8]}}", 8},
    {"offsets_reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8},
    {"offsets_one_value", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", 8},
    {"offsets_past_end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8},
    {"offsets_overlap", "{\"a\":{" F32_2 "},\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
                        "\"data_offsets\":[4,12]}}", 12},
    {"offsets_gap", "{\"a\":{" F32_2 "},\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
                    "\"data_offsets\":[12,20]}}", 20},
    {"offsets_trailing_bytes", "{\"a\":{" F32_2 "}}", 12},
    {"duplicate_tensor", "{\"a\":{" F32_2 "},\"a\":{" F32_2 "}}", 8},
    {"duplicate_field", "{\"a\":{" F32_2 ",\"dtype\":\"F32\"}}", 8},
    {"metadata_not_strings", "{\"__metadata__\":{\"arch\":18},\"a\":{" F32_2 "}}", 8},
    {"well_formed_wrong_model", "{\"__metadata__\":{\"arch\":\"resnet18\"},\"a\":{" F32_2 "}}", 8},
};

static void write_st_cases(void) {
    size_t len;
    for (size_t i = 0; i < sizeof st_cases / sizeof st_cases[0]; i++) {
        unsigned char *buf = st_bytes(st_cases[i].header, st_cases[i].data_len, &len);
        st_case(st_cases[i].name, buf, len);
        free(buf);
    }

    /* The length field: zero, huge, one past EOF, over 100 MB. */
    unsigned char *buf = st_bytes("{\"a\":{" F32_2 "}}", 8, &len);
    const struct { const char *name; uint64_t value; } lengths[] = {
        {"hlen_zero", 0}, {"hlen_max", UINT64_MAX}, {"hlen_2_63", (uint64_t)1 << 63},
        {"hlen_past_eof", len - 8 + 1}, {"hlen_100mb", 100000001}};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        unsigned char *copy = malloc(len);
        memcpy(copy, buf, len);
        le64(copy, lengths[i].value);
        st_case(lengths[i].name, copy, len);
        free(copy);
    }

    /* Truncation at every length of a small valid file. */
    for (size_t n = 0; n < len; n++) {
        char name[64];
        snprintf(name, sizeof name, "trunc_%04zu_of_%zu", n, len);
        st_case(name, buf, n);
    }
    free(buf);

    /* Nesting far beyond any depth limit. */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 64);
    size_t n = (size_t)sprintf(deep, "{\"__metadata__\":{\"k\":");
    memset(deep + n, '[', depth);
    memset(deep + n + depth, ']', depth);
    strcpy(deep + n + 2 * depth, "}}");
    buf = st_bytes(deep, 0, &len);
    st_case("deep_nesting", buf, len);
    free(buf);
    free(deep);
}

/* ---------------------------------------------------------------------------
 * Malformed .npy
 * ------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int major, minor;
    const char *dict;
    size_t data_len;
} npy_cases[] = {
    {"version_3", 3, 0, NPY_HDR("'<f4'", "False", "(1, 3, 32, 32)"), 12288},
    {"version_1_1", 1, 1, NPY_HDR("'<f4'", "False", "(1, 3, 32, 32)"), 12288},
    {"big_endian", 1, 0, NPY_HDR("'>f4'", "False", "(1, 3, 32, 32)"), 12288},
    {"float64", 1, 0, NPY_HDR("'<f8'", "False", "(1, 3, 32, 32)"), 24576},
    {"uint8", 1, 0, NPY_HDR("'|u1'", "False", "(1, 3, 32, 32)"), 3072},
    {"fortran_order", 1, 0, NPY_HDR("'<f4'", "True", "(1, 3, 32, 32)"), 12288},
    {"shape_list", 1, 0, NPY_HDR("'<f4'", "False", "[1, 3, 32, 32]"), 12288},
    {"shape_unclosed", 1, 0, NPY_HDR("'<f4'", "False", "(1, 3, 32, 32"), 12288},
    {"shape_negative", 1, 0, NPY_HDR("'<f4'", "False", "(1, 3, -32, 32)"), 12288},
    {"shape_float", 1, 0, NPY_HDR("'<f4'", "False", "(1, 3, 32.0, 32)"), 12288},
    {"shape_double_comma", 1, 0, NPY_HDR("'<f4'", "False", "(1, 3,, 32, 32)"), 12288},
    {"shape_not_tuple", 1, 0, NPY_HDR("'<f4'", "False", "(3072)"), 12288},
    {"shape_overflow", 1, 0, NPY_HDR("'<f4'", "False", "(4294967296, 4294967296)"), 12288},
    {"shape_too_many_dims", 1, 0, NPY_HDR("'<f4'", "False", "(1, 1, 1, 1, 1, 1, 1, 3, 32, 32)"),
     12288},
    {"missing_shape", 1, 0, "{'descr': '<f4', 'fortran_order': False, }", 12288},
    {"extra_key", 1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 32, 32), "
                        "'x': 1, }", 12288},
    {"duplicate_key", 1, 0, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
                            "'shape': (1, 3, 32, 32), }", 12288},
    {"garbage_after_dict", 1, 0, NPY_HDR("'<f4'", "False", "(1, 3, 32, 32)") " x", 12288},
    {"data_short", 1, 0, NPY_HDR("'<f4'", "False", "(1, 3, 32, 32)"), 12287},
    {"data_long", 1, 0, NPY_HDR("'<f4'", "False", "(1, 3, 32, 32)"), 12289},
    {"data_missing", 1, 0, NPY_HDR("'<f4'", "False", "(1, 3, 32, 32)"), 0},
    {"well_formed_wrong_channels", 1, 0, NPY_HDR("'<f4'", "False", "(1, 5, 32, 32)"), 20480},
};

static void write_npy_cases(void) {
    size_t len;
    for (size_t i = 0; i < sizeof npy_cases / sizeof npy_cases[0]; i++) {
        unsigned char *buf = npy_bytes(npy_cases[i].major, npy_cases[i].minor,
                                       npy_padded(npy_cases[i].dict), npy_cases[i].data_len, &len);
        npy_case(npy_cases[i].name, buf, len);
        free(buf);
    }

    unsigned char *buf = npy_bytes(1, 0, npy_padded(NPY_HDR("'<f4'", "False", "(2,)")), 8, &len);
    unsigned char *copy = malloc(len);
    memcpy(copy, buf, len);
    copy[1] = 'X';
    npy_case("bad_magic", copy, len);
    memcpy(copy, buf, len);
    copy[8] = 0xff;
    copy[9] = 0xff;
    npy_case("hlen_past_eof", copy, len);
    free(copy);

    /* Truncation at every length of a small valid file. */
    for (size_t n = 0; n < len; n++) {
        char name[64];
        snprintf(name, sizeof name, "trunc_%04zu_of_%zu", n, len);
        npy_case(name, buf, n);
    }
    free(buf);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    char path[1024];
    snprintf(path, sizeof path, "%s/st", outdir);
    if (mkdir(path, 0755) != 0)
        die(path);
    snprintf(path, sizeof path, "%s/npy", outdir);
    if (mkdir(path, 0755) != 0)
        die(path);
    write_valid_weights();
    write_valid_input();
    write_st_cases();
    write_npy_cases();
    printf("st %d\nnpy %d\n", n_st, n_npy);
    return 0;
}
