/*
 * test_safetensors.c - safetensors reader/writer: round trips, every dtype,
 * a malformed corpus, truncations at every length and seeded byte flips.
 *
 * Exits non-zero on any failure; the last line reads
 * "test_safetensors: N passed, M failed".
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/json.h"
#include "io/safetensors.h"
#include "resnet.h"
#include "check.h"

/* ---------------------------------------------------------------------------
 * Temporary files
 * ------------------------------------------------------------------------- */

static char tmpdir[256];

static void tmp_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

/* An 8-byte length, the header text, then data_len bytes 0, 1, 2, ... */
static unsigned char *make_st(const char *header, size_t data_len, size_t *len) {
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    unsigned char *buf = malloc(*len);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + h + i] = (unsigned char)i;
    return buf;
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ---------------------------------------------------------------------------
 * Round trip through st_write / st_read
 * ------------------------------------------------------------------------- */

static void test_round_trip(void) {
    float w[24], bias[3] = {0.5f, -0.0f, FLT_MAX}, scalar = 1e-45f;
    for (int i = 0; i < 24; i++)
        w[i] = (float)i * 0.25f - 3.0f;
    w[5] = INFINITY;
    w[6] = -INFINITY;
    w[7] = NAN;
    w[8] = FLT_MIN / 4;
    int64_t nbt = 12345, ids[4] = {INT64_MIN, -1, 0, INT64_MAX};
    int64_t s_w[4] = {2, 3, 2, 2}, s_b[1] = {3}, s_empty[2] = {0, 4}, s_ids[1] = {4};
    const char *weird = "we\"ird\\name \xc3\xa9\n\x01";
    st_entry entries[] = {
        {"conv.weight", ST_F32, 4, s_w, w},
        {"fc.bias", ST_F32, 1, s_b, bias},
        {"scalar", ST_F32, 0, NULL, &scalar},
        {"empty", ST_F32, 2, s_empty, NULL},
        {"bn.num_batches_tracked", ST_I64, 0, NULL, &nbt},
        {"ids", ST_I64, 1, s_ids, ids},
        {weird, ST_F32, 1, s_b, bias},
    };
    size_t n = sizeof entries / sizeof entries[0];
    st_meta meta[] = {{"arch", "resnet18"}, {"\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87", "v\"\\\t"},
                      {"empty", ""}};
    char path[512];
    tmp_path(path, sizeof path, "round.safetensors");
    rn_status st = st_write(path, entries, n, meta, 3);
    CHECK(st == RN_OK, "st_write: %s", rn_last_error());

    size_t len = 0;
    unsigned char *raw = check_read_file(path, &len);
    CHECK(raw && len > 8, "read back raw file");
    if (raw && len > 8) {
        uint64_t h = 0;
        for (int i = 0; i < 8; i++)
            h |= (uint64_t)raw[i] << (8 * i);
        CHECK(h % 8 == 0, "header length %llu is a multiple of 8", (unsigned long long)h);
        CHECK(raw[8] == '{', "header starts with '{'");
        size_t data = (24 + 3 + 1 + 3) * 4 + 5 * 8;
        CHECK(8 + h + data == len, "file size %zu = 8 + %llu + %zu", len, (unsigned long long)h,
              data);
        size_t end = 8 + (size_t)h;
        while (end > 8 && raw[end - 1] == ' ')
            end--;
        CHECK(raw[end - 1] == '}' && 8 + h - end < 8, "header padded with fewer than 8 spaces");
    }
    free(raw);

    st_file f;
    st = st_read(path, &f);
    CHECK(st == RN_OK, "st_read: %s", rn_last_error());
    if (st != RN_OK)
        return;
    CHECK(f.count == n, "count %zu", f.count);
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = st_find(&f, entries[i].name);
        CHECK(t != NULL, "tensor %zu found", i);
        if (!t)
            continue;
        CHECK(t->dtype == entries[i].dtype && t->ndim == entries[i].ndim, "dtype/ndim of %zu", i);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            CHECK(t->shape[d] == entries[i].shape[d], "shape of %zu", i);
            numel *= (size_t)entries[i].shape[d];
        }
        CHECK(t->numel == numel, "numel of %zu", i);
        if (t->dtype == ST_F32) {
            CHECK(t->f32 && !t->i64, "f32 storage of %zu", i);
            for (size_t k = 0; t->f32 && k < numel; k++)
                CHECK(same_bits(t->f32[k], ((const float *)entries[i].data)[k]),
                      "value %zu of tensor %zu", k, i);
        } else {
            CHECK(t->i64 && !t->f32, "i64 storage of %zu", i);
            for (size_t k = 0; t->i64 && k < numel; k++)
                CHECK(t->i64[k] == ((const int64_t *)entries[i].data)[k], "value %zu of %zu", k, i);
        }
    }
    CHECK(f.meta_count == 3, "meta_count %zu", f.meta_count);
    for (int i = 0; i < 3; i++) {
        const char *v = st_meta_get(&f, meta[i].key);
        CHECK(v && strcmp(v, meta[i].value) == 0, "metadata %d", i);
    }
    CHECK(st_find(&f, "missing") == NULL && st_meta_get(&f, "missing") == NULL, "absent keys");
    st_free(&f);
    CHECK(f.count == 0 && f.tensors == NULL, "st_free empties");

    /* No tensors, no metadata. */
    tmp_path(path, sizeof path, "empty.safetensors");
    CHECK(st_write(path, NULL, 0, NULL, 0) == RN_OK, "write empty: %s", rn_last_error());
    CHECK(st_read(path, &f) == RN_OK && f.count == 0 && f.meta_count == 0, "read empty: %s",
          rn_last_error());
    st_free(&f);
}

/* ---------------------------------------------------------------------------
 * Hand-made files: every readable dtype, converted exactly
 * ------------------------------------------------------------------------- */

static void put16(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t double_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static void test_dtypes(void) {
    static const uint16_t f16[] = {0x0000, 0x8000, 0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff,
                                   0x0400, 0x7c00, 0xfc00, 0x3555, 0x8001};
    const float f16_want[] = {0.0f, -0.0f, 1.0f, -2.0f, 65504.0f, ldexpf(1, -24),
                              ldexpf(1023, -24), ldexpf(1, -14), INFINITY, -INFINITY,
                              0.333251953125f, -ldexpf(1, -24)};
    static const uint16_t bf16[] = {0x3f80, 0xc049, 0x7f80, 0xff80, 0x0001, 0x8000, 0x4120};
    const float bf16_want[] = {1.0f, -3.140625f, INFINITY, -INFINITY, ldexpf(1, -133), -0.0f,
                               10.0f};
    const double f64[] = {1.0, -2.5, 1e-3, 1e300, -1e300, ldexp(1, -149), 0.1, ldexp(1, -160)};
    const int64_t i64[] = {0, -1, INT64_MAX, INT64_MIN};
    const size_t nf16 = 12, nbf = 7, nf64 = 8, ni64 = 4;
    size_t data_len = (nf16 + 2 + nbf) * 2 + nf64 * 8 + ni64 * 8;
    char header[1024];
    size_t a = nf16 * 2, b = a + 4, c = b + nbf * 2, d = c + nf64 * 8, e = d + ni64 * 8;
    snprintf(header, sizeof header,
             "  {\"i\":{\"dtype\":\"I64\",\"shape\":[2,2],\"data_offsets\":[%zu,%zu]},\n"
             "\"h\":{\"shape\":[3,4],\"dtype\":\"F16\",\"data_offsets\":[0,%zu]},"
             "\"nan\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[%zu,%zu]},"
             "\"b\":{\"data_offsets\":[%zu,%zu],\"dtype\":\"BF16\",\"shape\":[7]},"
             "\"d\":{\"dtype\":\"F64\",\"shape\":[8],\"data_offsets\":[%zu,%zu]},"
             "\"__metadata__\":null}   \n",
             d, e, a, a, b, b, c, c, d);
    size_t len;
    unsigned char *buf = make_st(header, data_len, &len);
    unsigned char *data = buf + 8 + strlen(header);
    for (size_t i = 0; i < nf16; i++)
        put16(data + 2 * i, f16[i]);
    put16(data + a, 0x7e00);
    put16(data + a + 2, 0xfd01);
    for (size_t i = 0; i < nbf; i++)
        put16(data + b + 2 * i, bf16[i]);
    for (size_t i = 0; i < nf64; i++)
        put64(data + c + 8 * i, double_bits(f64[i]));
    for (size_t i = 0; i < ni64; i++)
        put64(data + d + 8 * i, (uint64_t)i64[i]);

    st_file f;
    rn_status st = st_parse(buf, len, "dtypes.safetensors", &f);
    CHECK(st == RN_OK, "parse dtypes: %s", rn_last_error());
    free(buf);
    if (st != RN_OK)
        return;
    CHECK(f.count == 5 && f.meta_count == 0, "dtypes file has 5 tensors, no metadata");
    const st_tensor *t = st_find(&f, "h");
    CHECK(t && t->dtype == ST_F16 && t->numel == nf16 && t->f32, "F16 tensor");
    for (size_t i = 0; t && t->f32 && i < nf16; i++)
        CHECK(same_bits(t->f32[i], f16_want[i]), "F16 0x%04x -> %a, want %a", f16[i],
              (double)t->f32[i], (double)f16_want[i]);
    t = st_find(&f, "nan");
    CHECK(t && t->f32 && isnan(t->f32[0]) && !signbit(t->f32[0]) && isnan(t->f32[1]) &&
              signbit(t->f32[1]), "F16 NaNs keep their sign");
    t = st_find(&f, "b");
    CHECK(t && t->dtype == ST_BF16 && t->numel == nbf && t->f32, "BF16 tensor");
    for (size_t i = 0; t && t->f32 && i < nbf; i++)
        CHECK(same_bits(t->f32[i], bf16_want[i]), "BF16 0x%04x -> %a, want %a", bf16[i],
              (double)t->f32[i], (double)bf16_want[i]);
    t = st_find(&f, "d");
    CHECK(t && t->dtype == ST_F64 && t->numel == nf64 && t->f32, "F64 tensor");
    for (size_t i = 0; t && t->f32 && i < nf64; i++)
        CHECK(same_bits(t->f32[i], (float)f64[i]), "F64 %a -> %a", f64[i], (double)t->f32[i]);
    CHECK(t && t->f32 && t->f32[0] == 1.0f && t->f32[3] == INFINITY && t->f32[5] > 0 &&
              t->f32[7] == 0.0f, "F64 exact, overflow to inf, smallest subnormal, underflow");
    t = st_find(&f, "i");
    CHECK(t && t->dtype == ST_I64 && t->ndim == 2 && t->i64 && !t->f32, "I64 tensor");
    for (size_t i = 0; t && t->i64 && i < ni64; i++)
        CHECK(t->i64[i] == i64[i], "I64 value %zu", i);
    st_free(&f);

    /* Unicode escapes in a name decode to UTF-8; zero-size tensors anywhere. */
    buf = make_st("{\"\\u00e9\\ud83d\\ude00\":{\"dtype\":\"F32\",\"shape\":[1],"
                  "\"data_offsets\":[0,4]},\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],"
                  "\"data_offsets\":[4,4]},\"z0\":{\"dtype\":\"BF16\",\"shape\":[0],"
                  "\"data_offsets\":[0,0]}}", 4, &len);
    st = st_parse(buf, len, "unicode", &f);
    CHECK(st == RN_OK, "unicode names: %s", rn_last_error());
    CHECK(st_find(&f, "\xc3\xa9\xf0\x9f\x98\x80") != NULL, "escaped name decoded");
    t = st_find(&f, "z");
    CHECK(t && t->numel == 0 && t->f32, "zero-size tensor has a buffer");
    st_free(&f);
    free(buf);
}

/* ---------------------------------------------------------------------------
 * Files and arguments the API must refuse
 * ------------------------------------------------------------------------- */

static void test_api_errors(void) {
    st_file f;
    char path[512];
    tmp_path(path, sizeof path, "does-not-exist.safetensors");
    CHECK(st_read(path, &f) == RN_ERR_IO && strstr(rn_last_error(), "does-not-exist"),
          "missing file: %s", rn_last_error());
    CHECK(st_read(tmpdir, &f) == RN_ERR_IO && strstr(rn_last_error(), "regular"),
          "directory: %s", rn_last_error());
    CHECK(st_read(NULL, &f) == RN_ERR_ARG, "NULL path");
    CHECK(st_parse(NULL, 0, "x", &f) != RN_OK && rn_last_error()[0], "empty buffer");

    float v[2] = {1, 2};
    int64_t s2[1] = {2}, neg[1] = {-2};
    st_entry ok = {"a", ST_F32, 1, s2, v};
    tmp_path(path, sizeof path, "no-such-dir/x.safetensors");
    CHECK(st_write(path, &ok, 1, NULL, 0) == RN_ERR_IO && strstr(rn_last_error(), "no-such-dir"),
          "write into a missing directory: %s", rn_last_error());
    tmp_path(path, sizeof path, "bad.safetensors");
    st_entry dup[2] = {ok, ok};
    CHECK(st_write(path, dup, 2, NULL, 0) == RN_ERR_ARG && strstr(rn_last_error(), "duplicate"),
          "duplicate names: %s", rn_last_error());
    st_entry bad = ok;
    bad.dtype = ST_F16;
    CHECK(st_write(path, &bad, 1, NULL, 0) == RN_ERR_ARG, "F16 cannot be written");
    bad = ok;
    bad.shape = neg;
    CHECK(st_write(path, &bad, 1, NULL, 0) == RN_ERR_ARG, "negative dimension");
    bad = ok;
    bad.data = NULL;
    CHECK(st_write(path, &bad, 1, NULL, 0) == RN_ERR_ARG, "NULL data");
    bad = ok;
    bad.name = "__metadata__";
    CHECK(st_write(path, &bad, 1, NULL, 0) == RN_ERR_ARG, "reserved name");
    bad = ok;
    bad.name = "\xff";
    CHECK(st_write(path, &bad, 1, NULL, 0) == RN_ERR_ARG, "invalid UTF-8 name");
    bad = ok;
    bad.ndim = ST_MAX_DIMS + 1;
    CHECK(st_write(path, &bad, 1, NULL, 0) == RN_ERR_ARG, "too many dims");
    st_meta m2[2] = {{"k", "1"}, {"k", "2"}};
    CHECK(st_write(path, &ok, 1, m2, 2) == RN_ERR_ARG, "duplicate metadata keys");
    CHECK(access(path, F_OK) != 0, "no file left behind by refused writes");
}

/* ---------------------------------------------------------------------------
 * Malformed corpus
 * ------------------------------------------------------------------------- */

#define T(name, body) "\"" name "\":{" body "}"
#define F32_2 "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"

typedef struct bad_case {
    const char *header;
    size_t data_len;
    rn_status status;        /* RN_OK here means "any failure" */
    const char *needle;      /* must appear in the message */
} bad_case;

static const bad_case bad_cases[] = {
    /* JSON syntax */
    {" ", 0, RN_ERR_FORMAT, "expected a value"},
    {"{", 0, RN_ERR_FORMAT, "byte 9"},
    {"}", 0, RN_ERR_FORMAT, "invalid JSON"},
    {"{\"a\":}", 0, RN_ERR_FORMAT, "expected a value"},
    {"{" T("a", F32_2) ",}", 8, RN_ERR_FORMAT, "string key"},
    {"{'a':1}", 0, RN_ERR_FORMAT, "string key"},
    {"{a:1}", 0, RN_ERR_FORMAT, "string key"},
    {"{\"a\" 1}", 0, RN_ERR_FORMAT, "':'"},
    {"{\"a\":[1,2,]}", 0, RN_ERR_FORMAT, "expected a value"},
    {"{\"a\":[1 2]}", 0, RN_ERR_FORMAT, "',' or ']'"},
    {"{\"a\":1 \"b\":2}", 0, RN_ERR_FORMAT, "',' or '}'"},
    {"{} x", 0, RN_ERR_FORMAT, "after the value"},
    {"{}{}", 0, RN_ERR_FORMAT, "after the value"},
    {"{\"a\":tru}", 0, RN_ERR_FORMAT, "invalid JSON"},
    {"{\"a\":nul}", 0, RN_ERR_FORMAT, "invalid JSON"},
    {"{\"a\":NaN}", 0, RN_ERR_FORMAT, "invalid JSON"},
    {"{\"a\":Infinity}", 0, RN_ERR_FORMAT, "invalid JSON"},
    {"{\"a\":-}", 0, RN_ERR_FORMAT, "'-'"},
    {"{\"a\":01}", 0, RN_ERR_FORMAT, "leading zero"},
    {"{\"a\":-01}", 0, RN_ERR_FORMAT, "leading zero"},
    {"{\"a\":1.}", 0, RN_ERR_FORMAT, "'.'"},
    {"{\"a\":.5}", 0, RN_ERR_FORMAT, "invalid JSON"},
    {"{\"a\":1e}", 0, RN_ERR_FORMAT, "exponent"},
    {"{\"a\":1e+}", 0, RN_ERR_FORMAT, "exponent"},
    {"{\"a\":+1}", 0, RN_ERR_FORMAT, "invalid JSON"},
    {"{\"a\":0x10}", 0, RN_ERR_FORMAT, "invalid JSON"},
    {"{\"a\":\"x\ty\"}", 0, RN_ERR_FORMAT, "control character"},
    {"{\"a\":\"x\ny\"}", 0, RN_ERR_FORMAT, "control character"},
    {"{\"a\":\"\\q\"}", 0, RN_ERR_FORMAT, "invalid escape"},
    {"{\"a\":\"\\x41\"}", 0, RN_ERR_FORMAT, "invalid escape"},
    {"{\"a\":\"\\u12\"}", 0, RN_ERR_FORMAT, "4 hex digits"},
    {"{\"a\":\"\\u12G4\"}", 0, RN_ERR_FORMAT, "4 hex digits"},
    {"{\"a\":\"\\ud800\"}", 0, RN_ERR_FORMAT, "surrogate"},
    {"{\"a\":\"\\ud800\\u0041\"}", 0, RN_ERR_FORMAT, "surrogate"},
    {"{\"a\":\"\\udc00\"}", 0, RN_ERR_FORMAT, "surrogate"},
    {"{\"a\":\"\\u0000\"}", 0, RN_ERR_FORMAT, "\\u0000"},
    {"{\"a\":\"abc}", 0, RN_ERR_FORMAT, "unterminated"},
    {"{\"a\":\"abc\\\"}", 0, RN_ERR_FORMAT, "unterminated"},
    {"{\"a\":\"\\", 0, RN_ERR_FORMAT, "unterminated"},
    {"{\"a\":\"\xff\"}", 0, RN_ERR_FORMAT, "UTF-8"},
    {"{\"a\":\"\xc0\x80\"}", 0, RN_ERR_FORMAT, "UTF-8"},
    {"{\"a\":\"\xe0\x80\xaf\"}", 0, RN_ERR_FORMAT, "UTF-8"},
    {"{\"a\":\"\xed\xa0\x80\"}", 0, RN_ERR_FORMAT, "UTF-8"},
    {"{\"a\":\"\xf4\x90\x80\x80\"}", 0, RN_ERR_FORMAT, "UTF-8"},
    {"{\"a\":\"\xe2\x82\"}", 0, RN_ERR_FORMAT, "UTF-8"},
    {"{\"a\":\"\x80\"}", 0, RN_ERR_FORMAT, "UTF-8"},
    {"{\"\xfe\":1}", 0, RN_ERR_FORMAT, "UTF-8"},
    {"\xef\xbb\xbf{}", 0, RN_ERR_FORMAT, "byte 0xef"},
    {"{/*c*/}", 0, RN_ERR_FORMAT, "string key"},
    {"{\"a\":99999999999999999999}", 0, RN_ERR_FORMAT, "64-bit"},
    {"{\"a\":9223372036854775808}", 0, RN_ERR_FORMAT, "64-bit"},
    {"{\"a\":-9223372036854775809}", 0, RN_ERR_FORMAT, "64-bit"},
    {"{\"a\":{\"b\":1,\"b\":2}}", 0, RN_ERR_FORMAT, "duplicate key 'b'"},
    {"{" T("a", F32_2) "," T("a", F32_2) "}", 8, RN_ERR_FORMAT, "duplicate key 'a'"},
    {"{" T("a", F32_2 ",\"dtype\":\"F32\"") "}", 8, RN_ERR_FORMAT, "duplicate key 'dtype'"},
    {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, RN_ERR_FORMAT, "duplicate key"},
    /* header structure */
    {"[]", 0, RN_ERR_FORMAT, "not a JSON object"},
    {"null", 0, RN_ERR_FORMAT, "not a JSON object"},
    {"12345678", 0, RN_ERR_FORMAT, "not a JSON object"},
    {"\"str\"", 0, RN_ERR_FORMAT, "not a JSON object"},
    {"{\"a\":1}", 0, RN_ERR_FORMAT, "tensor 'a' at byte 13 is not an object"},
    {"{\"a\":[]}", 0, RN_ERR_FORMAT, "not an object"},
    {"{" T("a", "\"shape\":[2],\"data_offsets\":[0,8]") "}", 8, RN_ERR_FORMAT, "no 'dtype'"},
    {"{" T("a", "\"dtype\":\"F32\",\"data_offsets\":[0,8]") "}", 8, RN_ERR_FORMAT, "no 'shape'"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[2]") "}", 8, RN_ERR_FORMAT, "no 'data_offsets'"},
    {"{" T("a", "") "}", 0, RN_ERR_FORMAT, "no 'dtype'"},
    {"{" T("a", F32_2 ",\"extra\":1") "}", 8, RN_ERR_FORMAT, "unexpected key 'extra'"},
    /* dtype */
    {"{" T("a", "\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]") "}", 8, RN_ERR_FORMAT,
     "unknown dtype 'F33'"},
    {"{" T("a", "\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]") "}", 8, RN_ERR_FORMAT,
     "unknown dtype"},
    {"{" T("a", "\"dtype\":\"\",\"shape\":[2],\"data_offsets\":[0,8]") "}", 8, RN_ERR_FORMAT,
     "unknown dtype"},
    {"{" T("a", "\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]") "}", 8,
     RN_ERR_UNSUPPORTED, "I32 is not supported"},
    {"{" T("a", "\"dtype\":\"BOOL\",\"shape\":[8],\"data_offsets\":[0,8]") "}", 8,
     RN_ERR_UNSUPPORTED, "not supported"},
    {"{" T("a", "\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]") "}", 8, RN_ERR_FORMAT,
     "dtype at byte"},
    /* shape */
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]") "}", 8, RN_ERR_FORMAT,
     "shape at byte 36 is not an array"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]") "}", 8, RN_ERR_FORMAT,
     "shape[0] at byte 37 is not an integer"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[2e0],\"data_offsets\":[0,8]") "}", 8, RN_ERR_FORMAT,
     "not an integer"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]") "}", 8,
     RN_ERR_FORMAT, "not an integer"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[true],\"data_offsets\":[0,8]") "}", 8,
     RN_ERR_FORMAT, "not an integer"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[1,-2],\"data_offsets\":[0,8]") "}", 8,
     RN_ERR_FORMAT, "shape[1] at byte 39 is negative (-2)"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[-0],\"data_offsets\":[0,0]") "}", 0, RN_OK, ""},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]") "}",
     8, RN_ERR_FORMAT, "overflows"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]") "}",
     8, RN_ERR_FORMAT, "overflows the byte size"},
    {"{" T("a", "\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,8]") "}",
     8, RN_ERR_FORMAT, "overflows the byte size"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]") "}", 8,
     RN_ERR_UNSUPPORTED, "9 dimensions"},
    /* data_offsets */
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]") "}", 8, RN_ERR_FORMAT,
     "data_offsets at byte 55 is not an array [begin, end]"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]") "}", 8, RN_ERR_FORMAT,
     "not an array"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{}") "}", 8, RN_ERR_FORMAT,
     "not an array"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0.0,8]") "}", 8, RN_ERR_FORMAT,
     "data_offsets[0] at byte 56 is not an integer"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]") "}", 8, RN_ERR_FORMAT,
     "data_offsets[1]"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8e0]") "}", 8, RN_ERR_FORMAT,
     "not an integer"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[null,8]") "}", 8, RN_ERR_FORMAT,
     "not an integer"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[-8,-8]") "}", 8, RN_ERR_FORMAT,
     "negative"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]") "}", 8, RN_ERR_FORMAT,
     "end before they begin"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9223372036854775807]") "}",
     8, RN_ERR_FORMAT, "span"},
    {"{" T("fc.weight", "\"dtype\":\"F32\",\"shape\":[10,512],\"data_offsets\":[0,400]") "}", 400,
     RN_ERR_FORMAT,
     "tensor 'fc.weight': data_offsets [0, 400] span 400 bytes but shape [10, 512] F32 needs 20480"},
    {"{" T("a", "\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,8]") "}", 8, RN_ERR_FORMAT,
     "needs 4"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,8]") "}", 8, RN_ERR_FORMAT,
     "shape [] F32 needs 4"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]") "}", 8, RN_ERR_FORMAT,
     "go past the end of the data section (8 bytes)"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]") "}", 8, RN_ERR_FORMAT,
     "past the end"},
    /* layout */
    {"{" T("a", F32_2) "," T("b", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]") "}",
     12, RN_ERR_FORMAT, "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]"},
    {"{" T("a", F32_2) "," T("b", F32_2) "}", 8, RN_ERR_FORMAT, "overlap"},
    {"{" T("a", F32_2) "," T("b", "\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]") "}",
     8, RN_ERR_FORMAT, "overlap"},
    {"{" T("a", F32_2) "," T("b", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]") "}",
     20, RN_ERR_FORMAT, "leave bytes [8, 12) of the data section unused"},
    {"{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]") "}", 12, RN_ERR_FORMAT,
     "leave bytes [0, 4)"},
    {"{" T("a", F32_2) "}", 12, RN_ERR_FORMAT, "bytes [8, 12) at the end of the data section"},
    {"{}", 1, RN_ERR_FORMAT, "bytes [0, 1)"},
    /* metadata */
    {"{\"__metadata__\":\"x\"}", 0, RN_ERR_FORMAT, "__metadata__ at byte 24 is not an object"},
    {"{\"__metadata__\":[]}", 0, RN_ERR_FORMAT, "__metadata__"},
    {"{\"__metadata__\":{\"k\":1}}", 0, RN_ERR_FORMAT, "__metadata__ 'k' at byte 29"},
    {"{\"__metadata__\":{\"k\":null}}", 0, RN_ERR_FORMAT, "not a string"},
    {"{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, RN_ERR_FORMAT, "not a string"},
};

static void check_bad(const unsigned char *buf, size_t len, rn_status want, const char *needle,
                      const char *label) {
    st_file f;
    rn_status st = st_parse(buf, len, "bad.safetensors", &f);
    const char *msg = rn_last_error();
    if (want == RN_OK && needle[0] == '\0') {  /* a valid edge case */
        CHECK(st == RN_OK, "%s: should parse: %s", label, msg);
        st_free(&f);
        return;
    }
    CHECK(st != RN_OK && (want == RN_OK || st == want), "%s: status %d (want %d), msg: %s",
          label, st, want, msg);
    CHECK(f.count == 0 && f.tensors == NULL && f.meta == NULL, "%s: out left empty", label);
    CHECK(strncmp(msg, "bad.safetensors: ", 17) == 0 && strstr(msg, needle) && !strchr(msg, '\n'),
          "%s: message '%s' should name the file and contain '%s'", label, msg, needle);
    if (st == RN_OK)
        st_free(&f);
}

static void test_malformed_corpus(void) {
    char label[64];
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        size_t len;
        unsigned char *buf = make_st(bad_cases[i].header, bad_cases[i].data_len, &len);
        snprintf(label, sizeof label, "bad case %zu", i);
        check_bad(buf, len, bad_cases[i].status, bad_cases[i].needle, label);
        free(buf);
    }

    /* The length field. */
    unsigned char small[16] = {0};
    for (size_t n = 0; n < 8; n++) {
        snprintf(label, sizeof label, "%zu-byte file", n);
        check_bad(small, n, RN_ERR_FORMAT, "too short", label);
    }
    check_bad(small, 16, RN_ERR_FORMAT, "header length at byte 0 is 0", "zero header length");
    const uint64_t huge[] = {9, UINT64_MAX, (uint64_t)1 << 63, 0x100000000ull};
    for (size_t i = 0; i < 4; i++) {
        put64(small, huge[i]);
        snprintf(label, sizeof label, "header length %llu", (unsigned long long)huge[i]);
        check_bad(small, 16, RN_ERR_FORMAT, "goes past the end of the file (16 bytes)", label);
    }
    size_t big_len = 100u * 1000u * 1000u + 16;
    unsigned char *big = calloc(big_len, 1);  /* untouched pages: cheap */
    if (big) {
        put64(big, 100u * 1000u * 1000u + 1);
        check_bad(big, big_len, RN_ERR_FORMAT, "exceeds the 100000000-byte limit", "100 MB header");
        free(big);
    }

    /* Nesting: at the limit it parses (then fails as metadata), beyond it is
     * refused without recursing further, however deep the input goes. */
    const size_t depths[] = {JSON_MAX_DEPTH - 1, JSON_MAX_DEPTH, 100000};
    for (size_t i = 0; i < 3; i++) {
        size_t d = depths[i], n = 0;
        char *h = malloc(2 * d + 64);
        n += (size_t)sprintf(h, "{\"__metadata__\":{\"k\":");
        for (size_t k = 0; k < d - 2; k++)
            h[n++] = '[';
        for (size_t k = 0; k < d - 2; k++)
            h[n++] = ']';
        sprintf(h + n, "}}");
        size_t len;
        unsigned char *buf = make_st(h, 0, &len);
        snprintf(label, sizeof label, "nesting depth %zu", d);
        check_bad(buf, len, RN_ERR_FORMAT, d <= JSON_MAX_DEPTH ? "not a string" : "nesting deeper",
                  label);
        free(buf);
        free(h);
    }

    /* Valid edge cases that must be accepted. */
    const char *good[] = {"{}", "{\"__metadata__\":null}", "{\"__metadata__\":{}}",
                          " \t\r\n{ }\n   ", "{" T("a", F32_2) "}        "};
    const size_t good_data[] = {0, 0, 0, 0, 8};
    for (size_t i = 0; i < 5; i++) {
        size_t len;
        unsigned char *buf = make_st(good[i], good_data[i], &len);
        snprintf(label, sizeof label, "good case %zu", i);
        check_bad(buf, len, RN_OK, "", label);
        free(buf);
    }
}

/* ---------------------------------------------------------------------------
 * Truncations and seeded mutations of a valid file
 * ------------------------------------------------------------------------- */

static unsigned char *valid_file(size_t *len) {
    float w[6] = {1, 2, 3, 4, 5, 6}, b[2] = {-1, 1};
    int64_t nbt = 7, s_w[2] = {2, 3}, s_b[1] = {2};
    st_entry e[] = {{"conv.weight", ST_F32, 2, s_w, w},
                    {"conv.bias", ST_F32, 1, s_b, b},
                    {"bn.num_batches_tracked", ST_I64, 0, NULL, &nbt}};
    st_meta meta[] = {{"arch", "resnet18"}};
    char path[512];
    tmp_path(path, sizeof path, "valid.safetensors");
    if (st_write(path, e, 3, meta, 1) != RN_OK)
        return NULL;
    return check_read_file(path, len);
}

static void test_truncations(void) {
    size_t len;
    unsigned char *buf = valid_file(&len);
    CHECK(buf != NULL, "valid file written");
    if (!buf)
        return;
    st_file f;
    CHECK(st_parse(buf, len, "valid", &f) == RN_OK, "valid file parses: %s", rn_last_error());
    st_free(&f);
    char path[512], label[64];
    tmp_path(path, sizeof path, "trunc.safetensors");
    for (size_t n = 0; n < len; n++) {
        snprintf(label, sizeof label, "truncated to %zu of %zu", n, len);
        check_bad(buf, n, RN_OK, "bad.safetensors", label);
        /* and through st_read, from a file of that length */
        check_write_file(path, buf, n);
        rn_status st = st_read(path, &f);
        CHECK(st != RN_OK && strstr(rn_last_error(), "trunc.safetensors"), "%s (file): %s",
              label, rn_last_error());
        if (st == RN_OK)
            st_free(&f);
    }
    /* One byte too many is an uncovered trailing region. */
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    check_bad(longer, len + 1, RN_ERR_FORMAT, "belong to no tensor", "one extra byte");
    free(longer);
    free(buf);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rng(void) { return check_xorshift64(&rng_state); }

#define MUTATIONS 4000

static void test_mutations(void) {
    size_t len;
    unsigned char *orig = valid_file(&len);
    CHECK(orig != NULL, "valid file written");
    if (!orig)
        return;
    static const unsigned char interesting[] = {0, 0xff, 0x80, '"', '\\', '{', '}', '[', ']',
                                                ',', ':', '-', '.', 'e', '0', '1', '9', ' '};
    unsigned char *buf = malloc(len);
    int ok_count = 0, clean = 0, total = 0;
    for (int it = 0; it < MUTATIONS; it++) {
        memcpy(buf, orig, len);
        int flips = 1 + (int)(rng() % 3);
        for (int k = 0; k < flips; k++) {
            size_t at = rng() % len;
            if (rng() % 4 == 0)
                at = rng() % 8;  /* the length field */
            switch (rng() % 3) {
            case 0: buf[at] ^= (unsigned char)(1u << (rng() % 8)); break;
            case 1: buf[at] = (unsigned char)rng(); break;
            default: buf[at] = interesting[rng() % sizeof interesting]; break;
            }
        }
        st_file f;
        rn_status st = st_parse(buf, len, "mutant", &f);
        total++;
        if (st == RN_OK) {
            int sane = 1;
            for (size_t i = 0; i < f.count; i++)
                sane &= (f.tensors[i].dtype == ST_I64) ? f.tensors[i].i64 != NULL
                                                       : f.tensors[i].f32 != NULL;
            ok_count++;
            clean += sane;
            st_free(&f);
        } else {
            clean += rn_last_error()[0] != '\0' && f.count == 0 && f.tensors == NULL;
        }
    }
    CHECK(clean == total, "%d of %d mutants handled cleanly", clean, total);
    CHECK(ok_count < total, "most mutants are rejected (%d accepted)", ok_count);
    printf("mutations: %d seeded, %d accepted, %d rejected cleanly\n", total, ok_count,
           total - ok_count);
    free(buf);
    free(orig);
}

/* ---------------------------------------------------------------------------
 * Model files whose sizes no model has: refused as the file's
 * ------------------------------------------------------------------------- */

/* A file whose stem (conv1.weight) gives the model a width or input channel count out of
 * range, or a width that a ResNeXt cannot split into groups: refused with RN_ERR_FORMAT
 * naming the file and the tensor, not as a bad argument. */
static void test_model_sizes(void) {
    static const struct {
        const char *arch;
        int64_t stem[4];
        const char *needle;
    } cases[] = {
        {"resnet18", {5000, 3, 1, 1}, "5000 channels"},
        {"resnet18", {64, 5000, 1, 1}, "5000 input channels"},
        {"resnext50_32x4d", {40, 3, 1, 1}, "multiple of 64"},
    };
    char path[512];
    tmp_path(path, sizeof path, "sizes.safetensors");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int64_t *sh = cases[i].stem;
        const int64_t fc_shape[2] = {10, 512};
        float *stem = calloc((size_t)(sh[0] * sh[1] * sh[2] * sh[3]), sizeof *stem);
        float *fc = calloc(10 * 512, sizeof *fc);
        st_entry e[2] = {{"conv1.weight", ST_F32, 4, sh, stem}, {"fc.weight", ST_F32, 2, fc_shape, fc}};
        st_meta meta[1] = {{"arch", (char *)cases[i].arch}};
        CHECK(stem && fc && st_write(path, e, 2, meta, 1) == RN_OK, "write: %s", rn_last_error());
        free(stem), free(fc);
        rn_model *m = NULL;
        rn_status st = rn_model_load(path, NULL, &m);
        CHECK(st == RN_ERR_FORMAT && !m && strstr(rn_last_error(), path) &&
                  strstr(rn_last_error(), "'conv1.weight'") &&
                  strstr(rn_last_error(), cases[i].needle),
              "%s conv1.weight %lld x %lld: refused naming the file and tensor: %d %s",
              cases[i].arch, (long long)sh[0], (long long)sh[1], st, rn_last_error());
        rn_model_free(m);
    }
    remove(path);
}

int main(void) {
    if (!check_tmpdir("test_safetensors", tmpdir, sizeof tmpdir))
        return 1;
    test_round_trip();
    test_dtypes();
    test_api_errors();
    test_malformed_corpus();
    test_truncations();
    test_mutations();
    test_model_sizes();

    check_tmpdir_remove(tmpdir);
    return check_done("test_safetensors");
}
