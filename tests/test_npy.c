/*
 * test_npy.c - rn_npy_read / rn_npy_write: round trips, hand-made headers,
 * a malformed corpus, truncations at every length and seeded byte flips.
 *
 * Exits non-zero on any failure; the last line reads
 * "test_npy: N passed, M failed".
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resnet.h"
#include "check.h"

/* ---------------------------------------------------------------------------
 * Temporary files
 * ------------------------------------------------------------------------- */

static char tmpdir[256];

static void tmp_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

/* Magic, version major.minor, header length (2 bytes for 1.x, else 4),
 * header text, then data_len bytes. */
static unsigned char *make_npy(int major, int minor, const char *header, size_t data_len,
                               size_t *len) {
    size_t h = strlen(header), pre = major == 1 ? 10 : 12;
    *len = pre + h + data_len;
    unsigned char *buf = calloc(*len, 1);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = (unsigned char)minor;
    for (size_t i = 0; i < pre - 8; i++)
        buf[8 + i] = (unsigned char)(h >> (8 * i));
    memcpy(buf + pre, header, h);
    for (size_t i = 0; i < data_len; i++)
        buf[pre + h + i] = (unsigned char)(i * 7);
    return buf;
}

/* Writes buf to a file and reads it back; the result and message are left
 * for the caller. */
static rn_status read_buffer(const unsigned char *buf, size_t len, const char *name,
                             float **data, int *ndim, int64_t shape[RN_NPY_MAX_DIMS]) {
    char path[512];
    tmp_path(path, sizeof path, name);
    if (!check_write_file(path, buf, len))
        return (rn_status)-1;
    return rn_npy_read(path, data, ndim, shape);
}

/* ---------------------------------------------------------------------------
 * Round trips
 * ------------------------------------------------------------------------- */

static void test_round_trip(void) {
    static const int64_t shapes[][RN_NPY_MAX_DIMS] = {
        {0}, {5}, {2, 3}, {1, 3, 4, 5}, {0}, {2, 0, 3}, {1, 1, 1, 1, 1, 1, 2, 3}};
    static const int ndims[] = {0, 1, 2, 4, 1, 3, 8};
    static const char *const reprs[] = {"()", "(5,)", "(2, 3)", "(1, 3, 4, 5)", "(0,)",
                                        "(2, 0, 3)", "(1, 1, 1, 1, 1, 1, 2, 3)"};
    float values[60];
    for (int i = 0; i < 60; i++)
        values[i] = (float)i * 1.5f - 20.0f;
    values[1] = -0.0f;
    values[2] = INFINITY;
    values[3] = NAN;
    values[4] = FLT_TRUE_MIN;
    for (int c = 0; c < 7; c++) {
        char path[512];
        tmp_path(path, sizeof path, "round.npy");
        rn_status st = rn_npy_write(path, values, ndims[c], shapes[c]);
        CHECK(st == RN_OK, "write %s: %s", reprs[c], rn_last_error());
        size_t len = 0, numel = 1;
        for (int d = 0; d < ndims[c]; d++)
            numel *= (size_t)shapes[c][d];
        unsigned char *raw = check_read_file(path, &len);
        if (raw && len >= 10) {
            size_t hlen = raw[8] | (size_t)raw[9] << 8;
            char want[128];
            snprintf(want, sizeof want, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }",
                     reprs[c]);
            CHECK(memcmp(raw, "\x93NUMPY\x01\x00", 8) == 0, "magic and version 1.0");
            CHECK((10 + hlen) % 64 == 0 && raw[10 + hlen - 1] == '\n', "header aligned to 64, "
                  "ends with a newline");
            CHECK(hlen >= strlen(want) && memcmp(raw + 10, want, strlen(want)) == 0,
                  "header text for %s", reprs[c]);
            CHECK(len == 10 + hlen + 4 * numel, "file size for %s", reprs[c]);
        } else {
            CHECK(0, "read back %s", reprs[c]);
        }
        free(raw);

        float *data = NULL;
        int ndim = -1;
        int64_t shape[RN_NPY_MAX_DIMS];
        st = rn_npy_read(path, &data, &ndim, shape);
        CHECK(st == RN_OK && data != NULL, "read %s: %s", reprs[c], rn_last_error());
        if (st != RN_OK)
            continue;
        CHECK(ndim == ndims[c], "ndim of %s", reprs[c]);
        for (int d = 0; d < ndim && d < ndims[c]; d++)
            CHECK(shape[d] == shapes[c][d], "dim %d of %s", d, reprs[c]);
        CHECK(memcmp(data, values, numel * sizeof(float)) == 0, "values of %s", reprs[c]);
        free(data);
    }
}

/* ---------------------------------------------------------------------------
 * Hand-made headers that are valid
 * ------------------------------------------------------------------------- */

typedef struct good_case {
    int major;
    const char *header;
    int ndim;
    int64_t shape[3];
} good_case;

static const good_case good_cases[] = {
    {2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 2, {2, 3}},
    {1, "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}", 2, {2, 3}},
    {1, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (6,)}\n", 1, {6}},
    {1, "  {\t'descr' :'<f4' ,\n'fortran_order':False,'shape':( 3 , 2 , ) ,}  \r\n", 2, {3, 2}},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3)}", 3, {1, 2, 3}},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()}", 0, {0}},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5)}", 2, {0, 5}},
};

static void test_good_headers(void) {
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
        const good_case *g = &good_cases[i];
        size_t numel = 1, len;
        for (int d = 0; d < g->ndim; d++)
            numel *= (size_t)g->shape[d];
        unsigned char *buf = make_npy(g->major, 0, g->header, numel * 4, &len);
        float *data = NULL;
        int ndim = -1;
        int64_t shape[RN_NPY_MAX_DIMS];
        rn_status st = read_buffer(buf, len, "good.npy", &data, &ndim, shape);
        CHECK(st == RN_OK, "good case %zu: %s", i, rn_last_error());
        if (st == RN_OK) {
            int same = ndim == g->ndim;
            for (int d = 0; same && d < ndim; d++)
                same = shape[d] == g->shape[d];
            CHECK(same, "good case %zu: shape", i);
            CHECK(memcmp(data, buf + len - numel * 4, numel * 4) == 0, "good case %zu: data", i);
            free(data);
        }
        free(buf);
    }
}

/* ---------------------------------------------------------------------------
 * Malformed corpus
 * ------------------------------------------------------------------------- */

#define HDR(descr, fortran, shape) \
    "{'descr': " descr ", 'fortran_order': " fortran ", 'shape': " shape ", }\n"
#define OK_HDR HDR("'<f4'", "False", "(2, 3)")

typedef struct bad_case {
    int major, minor;
    const char *header;
    size_t data_len;
    rn_status status;
    const char *needle;
} bad_case;

static const bad_case bad_cases[] = {
    /* version */
    {3, 0, OK_HDR, 24, RN_ERR_UNSUPPORTED, "version 3.0"},
    {1, 1, OK_HDR, 24, RN_ERR_FORMAT, "unknown .npy version 1.1 at byte 6"},
    {0, 0, OK_HDR, 24, RN_ERR_FORMAT, "unknown .npy version 0.0"},
    {2, 1, OK_HDR, 24, RN_ERR_FORMAT, "unknown .npy version 2.1"},
    {9, 0, OK_HDR, 24, RN_ERR_FORMAT, "unknown .npy version"},
    /* dtype and order */
    {1, 0, HDR("'>f4'", "False", "(2, 3)"), 24, RN_ERR_UNSUPPORTED, "dtype '>f4' is not supported"},
    {1, 0, HDR("'<f8'", "False", "(2, 3)"), 48, RN_ERR_UNSUPPORTED, "'<f8'"},
    {1, 0, HDR("'<f2'", "False", "(2, 3)"), 12, RN_ERR_UNSUPPORTED, "'<f2'"},
    {1, 0, HDR("'|u1'", "False", "(2, 3)"), 6, RN_ERR_UNSUPPORTED, "'|u1'"},
    {1, 0, HDR("'<i4'", "False", "(2, 3)"), 24, RN_ERR_UNSUPPORTED, "'<i4'"},
    {1, 0, HDR("'=f4'", "False", "(2, 3)"), 24, RN_ERR_UNSUPPORTED, "'=f4'"},
    {1, 0, HDR("'float32'", "False", "(2, 3)"), 24, RN_ERR_UNSUPPORTED, "'float32'"},
    {1, 0, HDR("[('a', '<f4')]", "False", "(2, 3)"), 24, RN_ERR_FORMAT, "a quoted string"},
    {1, 0, HDR("'<f4", "False", "(2, 3)"), 24, RN_ERR_UNSUPPORTED, "dtype '<f4, ' is not"},
    {1, 0, HDR("'<f4_and_a_name_longer_than_any_key_or_dtype'", "False", "(2, 3)"), 24,
     RN_ERR_FORMAT, "a short string of plain ASCII"},
    {1, 0, HDR("'<\\x66'", "False", "(2, 3)"), 24, RN_ERR_FORMAT, "plain ASCII"},
    {1, 0, HDR("'<f4'", "True", "(2, 3)"), 24, RN_ERR_UNSUPPORTED, "fortran_order True"},
    {1, 0, HDR("'<f4'", "0", "(2, 3)"), 24, RN_ERR_FORMAT, "False or True"},
    {1, 0, HDR("'<f4'", "'False'", "(2, 3)"), 24, RN_ERR_FORMAT, "False or True"},
    {1, 0, HDR("'<f4'", "false", "(2, 3)"), 24, RN_ERR_FORMAT, "False or True"},
    /* shape */
    {1, 0, HDR("'<f4'", "False", "(2, 3"), 24, RN_ERR_FORMAT, "dimension, found '}'"},
    {1, 0, HDR("'<f4'", "False", "[2, 3]"), 24, RN_ERR_FORMAT, "'(' starting the shape tuple"},
    {1, 0, HDR("'<f4'", "False", "(2,,3)"), 24, RN_ERR_FORMAT, "integer dimension"},
    {1, 0, HDR("'<f4'", "False", "(-1,)"), 0, RN_ERR_FORMAT, "non-negative integer"},
    {1, 0, HDR("'<f4'", "False", "(2.0, 3)"), 24, RN_ERR_FORMAT, "',' or ')'"},
    {1, 0, HDR("'<f4'", "False", "(6)"), 24, RN_ERR_FORMAT, "one-element tuple"},
    {1, 0, HDR("'<f4'", "False", "(,)"), 0, RN_ERR_FORMAT, "integer dimension"},
    {1, 0, HDR("'<f4'", "False", "(02, 3)"), 24, RN_ERR_FORMAT, "leading zero"},
    {1, 0, HDR("'<f4'", "False", "(0x2, 3)"), 24, RN_ERR_FORMAT, "',' or ')'"},
    {1, 0, HDR("'<f4'", "False", "(2L, 3)"), 24, RN_ERR_FORMAT, "',' or ')'"},
    {1, 0, HDR("'<f4'", "False", "6"), 24, RN_ERR_FORMAT, "'('"},
    {1, 0, HDR("'<f4'", "False", "(1, 1, 1, 1, 1, 1, 1, 2, 3)"), 24, RN_ERR_UNSUPPORTED,
     "more than 8 dimensions"},
    {1, 0, HDR("'<f4'", "False", "(99999999999999999999,)"), 24, RN_ERR_FORMAT, "too large"},
    {1, 0, HDR("'<f4'", "False", "(9223372036854775808,)"), 24, RN_ERR_FORMAT, "too large"},
    {1, 0, HDR("'<f4'", "False", "(9223372036854775807, 4)"), 24, RN_ERR_FORMAT, "overflows"},
    {1, 0, HDR("'<f4'", "False", "(4611686018427387904,)"), 24, RN_ERR_FORMAT,
     "overflows the byte size"},
    /* dict structure */
    {1, 0, "{'fortran_order': False, 'shape': (2, 3)}", 24, RN_ERR_FORMAT, "missing key 'descr'"},
    {1, 0, "{'descr': '<f4', 'shape': (2, 3)}", 24, RN_ERR_FORMAT, "missing key 'fortran_order'"},
    {1, 0, "{'descr': '<f4', 'fortran_order': False}", 24, RN_ERR_FORMAT, "missing key 'shape'"},
    {1, 0, "{}", 24, RN_ERR_FORMAT, "missing key"},
    {1, 0, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", 24,
     RN_ERR_FORMAT, "duplicate key 'descr'"},
    {1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", 24, RN_ERR_FORMAT,
     "unexpected key 'x'"},
    {1, 0, "{descr: '<f4', 'fortran_order': False, 'shape': (2, 3)}", 24, RN_ERR_FORMAT,
     "quoted string"},
    {1, 0, "{'descr' '<f4', 'fortran_order': False, 'shape': (2, 3)}", 24, RN_ERR_FORMAT, "':'"},
    {1, 0, "{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}", 24, RN_ERR_FORMAT,
     "',' or '}'"},
    {1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3),, }", 24, RN_ERR_FORMAT,
     "quoted string"},
    {1, 0, "'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", 24, RN_ERR_FORMAT,
     "'{' starting the header dict"},
    {1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", 24, RN_ERR_FORMAT,
     "end of header"},
    {1, 0, OK_HDR "x", 24, RN_ERR_FORMAT, "only spaces and a newline"},
    {1, 0, OK_HDR "\x01", 24, RN_ERR_FORMAT, "only spaces"},
    {1, 0, "{'descr': '<f\xc3\xa9', 'fortran_order': False, 'shape': (2, 3)}", 24, RN_ERR_FORMAT,
     "plain ASCII"},
    {1, 0, "", 24, RN_ERR_FORMAT, "'{'"},
    /* data size */
    {1, 0, OK_HDR, 23, RN_ERR_FORMAT, "data at byte 70 is 23 bytes but shape (2, 3) float32 needs 24"},
    {1, 0, OK_HDR, 25, RN_ERR_FORMAT, "is 25 bytes"},
    {1, 0, OK_HDR, 0, RN_ERR_FORMAT, "is 0 bytes"},
    {2, 0, HDR("'<f4'", "False", "(1, 3, 32, 32)"), 12287, RN_ERR_FORMAT, "needs 12288"},
    {1, 0, HDR("'<f4'", "False", "()"), 0, RN_ERR_FORMAT, "needs 4"},
    {1, 0, HDR("'<f4'", "False", "(0,)"), 4, RN_ERR_FORMAT, "needs 0"},
};

static void check_bad(const unsigned char *buf, size_t len, rn_status want, const char *needle,
                      const char *label) {
    float *data = (float *)&data;  /* must be reset to NULL on failure */
    int ndim = -1;
    int64_t shape[RN_NPY_MAX_DIMS];
    rn_status st = read_buffer(buf, len, "bad.npy", &data, &ndim, shape);
    const char *msg = rn_last_error();
    CHECK(st != RN_OK && (want == RN_OK || st == want), "%s: status %d (want %d), msg: %s",
          label, st, want, msg);
    CHECK(strstr(msg, "bad.npy: ") && strstr(msg, needle) && !strchr(msg, '\n'),
          "%s: message '%s' should name the file and contain '%s'", label, msg, needle);
    if (st == RN_OK)
        free(data);
    else
        CHECK(data == NULL, "%s: *data is NULL on failure", label);
}

static void test_malformed_corpus(void) {
    char label[64];
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *b = &bad_cases[i];
        size_t len;
        unsigned char *buf = make_npy(b->major, b->minor, b->header, b->data_len, &len);
        snprintf(label, sizeof label, "bad case %zu", i);
        check_bad(buf, len, b->status, b->needle, label);
        free(buf);
    }

    /* Magic and the header length field. */
    size_t len;
    unsigned char *buf = make_npy(1, 0, OK_HDR, 24, &len);
    buf[5] = 'Z';
    check_bad(buf, len, RN_ERR_FORMAT, "bad magic at byte 0", "wrong magic");
    memcpy(buf, "PK\x03\x04", 4);
    check_bad(buf, len, RN_ERR_FORMAT, "bad magic", "zip magic");
    memcpy(buf, "\x93NUMPY", 6);
    buf[8] = 0xff;
    buf[9] = 0xff;
    check_bad(buf, len, RN_ERR_FORMAT, "header length 65535 at byte 8 goes past the end",
              "header length past EOF");
    free(buf);
    buf = make_npy(2, 0, OK_HDR, 24, &len);
    buf[11] = 0x80;
    check_bad(buf, len, RN_ERR_FORMAT, "goes past the end", "2.0 header length past EOF");
    check_bad(buf, 11, RN_ERR_FORMAT, "too short for a .npy 2.0 header", "2.0 preamble cut");
    free(buf);
    /* Data larger than the header declares (also a data size mismatch), and
     * a 2.0 header over the size limit. */
    size_t big_len = 12 + (1u << 20) + 8;
    buf = calloc(big_len, 1);
    memcpy(buf, "\x93NUMPY\x02\x00", 8);
    buf[8] = 8;
    buf[10] = 0x10;  /* (1 << 20) + 8 */
    check_bad(buf, big_len, RN_ERR_FORMAT, "exceeds", "header over 1 MiB");
    free(buf);
}

static void test_api_errors(void) {
    float *data;
    int ndim;
    int64_t shape[RN_NPY_MAX_DIMS];
    char path[512];
    tmp_path(path, sizeof path, "missing.npy");
    CHECK(rn_npy_read(path, &data, &ndim, shape) == RN_ERR_IO &&
              strstr(rn_last_error(), "missing.npy"), "missing file: %s", rn_last_error());
    CHECK(rn_npy_read(tmpdir, &data, &ndim, shape) == RN_ERR_IO, "directory");
    CHECK(rn_npy_read(NULL, &data, &ndim, shape) == RN_ERR_ARG, "NULL path");
    float v[4] = {0};
    int64_t good[2] = {2, 2}, neg[2] = {2, -2};
    tmp_path(path, sizeof path, "no-such-dir/x.npy");
    CHECK(rn_npy_write(path, v, 2, good) == RN_ERR_IO && strstr(rn_last_error(), "no-such-dir"),
          "write into a missing directory: %s", rn_last_error());
    tmp_path(path, sizeof path, "w.npy");
    CHECK(rn_npy_write(path, v, 2, neg) == RN_ERR_ARG, "negative dimension");
    CHECK(rn_npy_write(path, v, RN_NPY_MAX_DIMS + 1, good) == RN_ERR_ARG, "too many dims");
    CHECK(rn_npy_write(path, NULL, 2, good) == RN_ERR_ARG, "NULL data");
    CHECK(rn_npy_write(path, v, -1, good) == RN_ERR_ARG, "negative ndim");
    CHECK(access(path, F_OK) != 0, "no file left behind by refused writes");
}

/* ---------------------------------------------------------------------------
 * Truncations and seeded mutations of a valid file
 * ------------------------------------------------------------------------- */

static unsigned char *valid_file(size_t *len) {
    float v[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3};
    char path[512];
    tmp_path(path, sizeof path, "valid.npy");
    if (rn_npy_write(path, v, 2, shape) != RN_OK)
        return NULL;
    return check_read_file(path, len);
}

static void test_truncations(void) {
    size_t len;
    unsigned char *buf = valid_file(&len);
    CHECK(buf != NULL, "valid file written");
    if (!buf)
        return;
    char label[64];
    for (size_t n = 0; n < len; n++) {
        snprintf(label, sizeof label, "truncated to %zu of %zu", n, len);
        check_bad(buf, n, RN_OK, "bad.npy", label);
    }
    free(buf);
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint32_t rng(void) { return check_xorshift64(&rng_state); }

#define MUTATIONS 2000

static void test_mutations(void) {
    size_t len;
    unsigned char *orig = valid_file(&len);
    CHECK(orig != NULL, "valid file written");
    if (!orig)
        return;
    static const unsigned char interesting[] = {0, 0xff, 0x80, '\'', '"', '(', ')', '{', '}',
                                                ',', ':', ' ', '0', '1', '9', '-', '<', '>'};
    unsigned char *buf = malloc(len);
    int accepted = 0, clean = 0;
    for (int it = 0; it < MUTATIONS; it++) {
        memcpy(buf, orig, len);
        int flips = 1 + (int)(rng() % 3);
        for (int k = 0; k < flips; k++) {
            size_t at = rng() % (rng() % 2 ? 80 : len);  /* mostly in the header */
            switch (rng() % 3) {
            case 0: buf[at] ^= (unsigned char)(1u << (rng() % 8)); break;
            case 1: buf[at] = (unsigned char)rng(); break;
            default: buf[at] = interesting[rng() % sizeof interesting]; break;
            }
        }
        float *data = NULL;
        int ndim;
        int64_t shape[RN_NPY_MAX_DIMS];
        rn_status st = read_buffer(buf, len, "mutant.npy", &data, &ndim, shape);
        if (st == RN_OK) {
            accepted++;
            clean += data != NULL && ndim >= 0 && ndim <= RN_NPY_MAX_DIMS;
            free(data);
        } else {
            clean += data == NULL && rn_last_error()[0] != '\0';
        }
    }
    CHECK(clean == MUTATIONS, "%d of %d mutants handled cleanly", clean, MUTATIONS);
    CHECK(accepted < MUTATIONS, "most mutants are rejected (%d accepted)", accepted);
    printf("mutations: %d seeded, %d accepted, %d rejected cleanly\n", MUTATIONS, accepted,
           MUTATIONS - accepted);
    free(buf);
    free(orig);
}

int main(void) {
    if (!check_tmpdir("test_npy", tmpdir, sizeof tmpdir))
        return 1;
    test_round_trip();
    test_good_headers();
    test_malformed_corpus();
    test_api_errors();
    test_truncations();
    test_mutations();

    check_tmpdir_remove(tmpdir);
    return check_done("test_npy");
}
