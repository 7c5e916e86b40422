/*
 * test_pth.c - torch.save checkpoints read without Python: zip archive,
 * restricted unpickler, tensors.
 *
 * Runs tools/make_pth_corpus.py (from the repository root) into a temporary
 * folder, then: every valid file loads and matches the tensors PyTorch
 * wrote beside it bit for bit; every hostile file is refused with a message
 * naming the file and the reason; every truncation of two small files
 * fails cleanly; seeded byte mutations (anywhere, and inside data.pkl with
 * its CRC repaired so the unpickler sees them) either load or fail cleanly.
 *
 * Exits non-zero on any failure; the last line reads
 * "test_pth: N passed, M failed".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "io/pickle.h"
#include "io/pth.h"
#include "io/safetensors.h"
#include "io/sniff.h"
#include "io/zip.h"
#include "resnet.h"
#include "check.h"

#define CORPUS_SCRIPT "tools/make_pth_corpus.py"

static char tmpdir[256];

static void corpus_path(char *out, size_t cap, const char *sub, const char *name,
                        const char *ext) {
    snprintf(out, cap, "%s/%s/%s%s", tmpdir, sub, name, ext);
}

static int make_corpus(void) {
    if (access(CORPUS_SCRIPT, R_OK) != 0) {
        CHECK(0, "%s not found: run from the repository root", CORPUS_SCRIPT);
        return 0;
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s '%s'", CORPUS_SCRIPT, tmpdir);
    int rc = system(cmd);
    CHECK(rc == 0, "%s failed (status %d)", cmd, rc);
    return rc == 0;
}

/* ---------------------------------------------------------------------------
 * Valid files: bit-identical to what PyTorch wrote
 * ------------------------------------------------------------------------- */

static const char *const valid_files[] = {
    "resnet18_c3_state_dict", "resnet50_c1_state_dict", "d2l_resnet18_c1_state_dict",
    "wrapper_state_dict_sgd", "wrapper_model_key", "wrapper_protocol4", "dataparallel_prefix",
    "parameters", "empty_dict", "empty_ordered_dict", "dtypes", "views_shared_storages",
    "small", "zip64_records", "zip_comment", "zip_comment_fake_eocd",
    "zip64_comment_unaligned", "assembled_views",
    /* the legacy format (_use_new_zipfile_serialization=False) */
    "legacy_resnet18_c3_state_dict", "legacy_resnet50_c1_state_dict",
    "legacy_d2l_resnet18_c1_state_dict", "legacy_wrapper_state_dict_sgd",
    "legacy_wrapper_model_key", "legacy_wrapper_protocol4", "legacy_dataparallel_prefix",
    "legacy_parameters", "legacy_empty_dict", "legacy_empty_ordered_dict", "legacy_dtypes",
    "legacy_views_shared_storages", "legacy_small", "legacy_assembled_py2",
};

static void compare(const char *name, const st_file *got, const st_file *want) {
    CHECK(got->count == want->count, "%s: %zu tensors, want %zu", name, got->count, want->count);
    CHECK(got->meta_count == 0, "%s: no metadata", name);
    for (size_t i = 0; i < want->count && i < got->count; i++) {
        const st_tensor *w = &want->tensors[i], *g = &got->tensors[i];
        if (strcmp(g->name, w->name) != 0) {
            CHECK(0, "%s: tensor %zu is '%s', want '%s' (dict order)", name, i, g->name, w->name);
            continue;
        }
        int same_shape = g->ndim == w->ndim && g->numel == w->numel;
        for (int d = 0; same_shape && d < w->ndim; d++)
            same_shape = g->shape[d] == w->shape[d];
        CHECK(same_shape, "%s: '%s' shape", name, w->name);
        if (!same_shape)
            continue;
        if (w->dtype == ST_I64) {
            CHECK(g->dtype == ST_I64 && g->i64 && !g->f32, "%s: '%s' is i64", name, w->name);
            if (g->i64)
                CHECK(memcmp(g->i64, w->i64, w->numel * sizeof *w->i64) == 0,
                      "%s: '%s' values", name, w->name);
        } else {
            CHECK(g->dtype != ST_I64 && g->f32 && !g->i64, "%s: '%s' is f32", name, w->name);
            if (g->f32)
                CHECK(memcmp(g->f32, w->f32, w->numel * sizeof *w->f32) == 0,
                      "%s: '%s' values differ bitwise", name, w->name);
        }
    }
}

static void check_dtypes(const char *name);

static void test_valid(void) {
    for (size_t i = 0; i < sizeof valid_files / sizeof valid_files[0]; i++) {
        char pth[512], st[512];
        corpus_path(pth, sizeof pth, "valid", valid_files[i], ".pth");
        corpus_path(st, sizeof st, "valid", valid_files[i], ".safetensors");
        st_file got, want;
        rn_status s1 = pth_read(pth, &got);
        CHECK(s1 == RN_OK, "%s: %s", valid_files[i], rn_last_error());
        rn_status s2 = st_read(st, &want);
        CHECK(s2 == RN_OK, "%s: %s", st, rn_last_error());
        if (s1 == RN_OK && s2 == RN_OK)
            compare(valid_files[i], &got, &want);
        st_free(&got);
        st_free(&want);
    }

    /* Stored dtypes are reported as they were, in both formats. */
    for (int legacy = 0; legacy < 2; legacy++)
        check_dtypes(legacy ? "legacy_dtypes" : "dtypes");
}

static void check_dtypes(const char *name) {
    char pth[512];
    corpus_path(pth, sizeof pth, "valid", name, ".pth");
    st_file f;
    if (pth_read(pth, &f) == RN_OK) {
        static const struct {
            const char *name;
            st_dtype dtype;
        } want[] = {{"f32", ST_F32}, {"f16", ST_F16}, {"bf16", ST_BF16}, {"f64", ST_F64},
                    {"i64", ST_I64}, {"i32", ST_I64}, {"u8", ST_I64}, {"bool", ST_I64}};
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            const st_tensor *t = st_find(&f, want[i].name);
            CHECK(t && t->dtype == want[i].dtype, "%s.pth: '%s' dtype", name, want[i].name);
        }
        const st_tensor *t = st_find(&f, "scalar");
        CHECK(t && t->ndim == 0 && t->numel == 1 && t->f32 && t->f32[0] == 2.75f, "0-d tensor");
        t = st_find(&f, "empty");
        CHECK(t && t->ndim == 2 && t->numel == 0 && t->shape[0] == 0 && t->shape[1] == 3,
              "empty tensor");
        st_free(&f);
    } else {
        CHECK(0, "%s.pth: %s", name, rn_last_error());
    }
}

/* ---------------------------------------------------------------------------
 * Hostile files: refused, with the file and the reason named
 * ------------------------------------------------------------------------- */

static const struct {
    const char *name, *keyword;
} hostile_files[] = {
    {"whole_model_pickled", "torch.nn.modules.container.Sequential"},
    {"reduce_os_system", "posix.system"},
    {"reduce_builtins_eval", "eval"},
    {"numpy_scalar_in_wrapper", "numpy"},
    {"torch_size_global", "torch.Size"},
    {"global_posix_system", "posix.system"},
    {"global_builtins_eval", "builtins.eval"},
    {"stack_global_os_system", "os.system"},
    {"global_without_newline", "newline"},
    {"storage_called", "persistent id"},
    {"stack_underflow_setitem", "underflow"},
    {"stack_underflow_tuple1", "underflow"},
    {"stack_underflow_below_mark", "underflow"},
    {"memo_get_unset", "memo index"},
    {"memo_long_get_unset", "memo index"},
    {"memo_put_huge_index", "memo index"},
    {"mark_missing_setitems", "MARK"},
    {"mark_left_open", "MARK"},
    {"marks_too_many", "MARKs"},
    {"nesting_too_deep", "nested deeper"},
    {"objects_too_many", "objects"},
    {"string_length_huge", "past the end"},
    {"string_invalid_utf8", "UTF-8"},
    {"long1_bigint_in_shape", "non-negative ints"},
    {"opcode_unsupported_inst", "opcode 0x69"},
    {"opcode_unsupported_binbytes", "opcode 0x43"},
    {"reduce_on_int", "REDUCE calls a int"},
    {"build_on_list", "BUILD on a list"},
    {"persid_not_tuple", "persistent id"},
    {"no_stop", "without STOP"},
    {"bytes_after_stop", "after STOP"},
    {"stop_two_values", "STOP"},
    {"root_is_list", "not a dict"},
    {"nested_dict_no_wrapper", "not a tensor"},
    {"wrapper_nested_state_dict", "nested dicts"},
    {"non_str_key", "not a str"},
    {"nul_in_key", "NUL"},
    {"duplicate_key", "appears twice"},
    {"storage_size_mismatch", "does not match its record"},
    {"view_outside_storage", "reaches element"},
    {"view_offset_past_storage", "reaches element"},
    {"view_stride_overflow", "overflows"},
    {"view_size_overflow", "overflows"},
    {"view_expanded_too_far", "exceed"},
    {"views_shared_too_often", "exceed"},
    {"negative_stride", "non-negative"},
    {"negative_size", "non-negative"},
    {"negative_numel", "numel"},
    {"too_many_dims", "at most 8"},
    {"storage_record_missing", "no record"},
    {"storage_type_conflict", "used as both"},
    {"storage_type_unknown", "torch.ComplexFloatStorage"},
    {"version_missing", "version"},
    {"version_garbage", "version"},
    {"byteorder_big", "little"},
    {"two_pickles", "two pickles"},
    {"entry_outside_folder", "outside"},
    {"no_data_pkl", "data.pkl"},
    {"not_a_zip", "no known format"},
    {"empty_file", "empty"},
    {"entry_compressed", "compressed"},
    {"entry_duplicate", "duplicate entry"},
    {"eocd_cd_offset_past_eof", "central directory"},
    {"eocd_cd_size_past_eocd", "central directory"},
    {"eocd_count_too_large", "claims 5000 entries"},
    {"eocd_count_too_small", "after the last central directory entry"},
    {"eocd_multi_disk", "multi-disk"},
    {"eocd_comment_length_wrong", "End of Central Directory"},
    {"eocd_trailing_garbage", "End of Central Directory"},
    {"central_bad_signature", "bad signature"},
    {"central_method_deflate", "compressed"},
    {"central_encrypted_flag", "encrypted"},
    {"central_sizes_differ", "compressed size"},
    {"central_offset_past_directory", "not before"},
    {"central_saturated_without_zip64", "without a ZIP64 extra"},
    {"central_name_length_past_directory", "run past the directory"},
    {"local_bad_signature", "local header signature"},
    {"local_name_differs", "different entry"},
    {"local_size_differs", "disagrees"},
    {"local_crc_differs", "disagrees"},
    {"data_crc_mismatch", "CRC-32 mismatch"},
    {"entries_overlap", "overlap"},
    {"entries_same_record", "overlap"},
    {"zip64_locator_past_eof", "ZIP64 locator"},
    {"zip64_eocd_bad_signature", "ZIP64 End of Central Directory signature"},
    {"zip64_cd_offset_huge", "central directory"},
    {"zip64_count_huge", "at most"},
    {"zip64_extra_too_short", "extra field"},
    /* the legacy format */
    {"legacy_whole_model_pickled", "torch.nn.modules.container.Sequential"},
    {"legacy_reduce_os_system", "posix.system"},
    {"legacy_numpy_in_wrapper", "numpy"},
    {"legacy_global_posix_system", "posix.system"},
    {"legacy_global_in_sys_info", "posix.system"},
    {"legacy_wrong_magic", "magic number"},
    {"legacy_magic_small_int", "magic number"},
    {"legacy_magic_truncated", "magic number"},
    {"legacy_plain_pickle", "magic number"},
    {"legacy_wrong_protocol", "protocol version 1000"},
    {"legacy_protocol_not_int", "not an int"},
    {"legacy_sys_info_not_dict", "not a dict"},
    {"legacy_big_endian", "big-endian"},
    {"legacy_pickle_protocol_1", "protocol 0 or 1"},
    {"legacy_view_metadata", "view_metadata"},
    {"legacy_object_truncated", "object pickle"},
    {"legacy_no_key_list", "storage key list"},
    {"legacy_view_outside_storage", "reaches element"},
    {"legacy_declared_twice_differently", "declared both"},
    {"legacy_storage_type_conflict", "declared both"},
    {"legacy_nul_in_storage_key", "NUL"},
    {"legacy_key_list_not_list", "not a list"},
    {"legacy_key_not_str", "not a str"},
    {"legacy_key_missing_from_list", "missing from the key list"},
    {"legacy_key_unknown_in_list", "named by no persistent id"},
    {"legacy_key_twice_in_list", "twice"},
    {"legacy_storage_count_differs", "declares"},
    {"legacy_storage_count_negative", "declares"},
    {"legacy_storage_size_overflow", "runs past the end"},
    {"legacy_storage_past_eof", "runs past the end"},
    {"legacy_storage_truncated", "runs past the end"},
    {"legacy_storage_count_truncated", "element count"},
    {"legacy_trailing_bytes", "after the last storage"},
};
#define N_HOSTILE (sizeof hostile_files / sizeof hostile_files[0])

static void test_hostile(void) {
    for (size_t i = 0; i < N_HOSTILE; i++) {
        char path[512];
        corpus_path(path, sizeof path, "hostile", hostile_files[i].name, ".pth");
        st_file f;
        rn_status st = pth_read(path, &f);
        const char *msg = rn_last_error();
        CHECK(st != RN_OK && st != RN_ERR_IO, "%s: refused (status %d)", hostile_files[i].name,
              (int)st);
        CHECK(f.count == 0 && f.tensors == NULL, "%s: nothing left to free",
              hostile_files[i].name);
        CHECK(strstr(msg, path) != NULL, "%s: message names the file: %s",
              hostile_files[i].name, msg);
        CHECK(strstr(msg, hostile_files[i].keyword) != NULL, "%s: message mentions '%s': %s",
              hostile_files[i].name, hostile_files[i].keyword, msg);
        st_free(&f);
    }

    /* Every file the script wrote is in the table above. */
    char path[512];
    corpus_path(path, sizeof path, "hostile", "MANIFEST", "");
    FILE *m = fopen(path, "r");
    CHECK(m != NULL, "open %s", path);
    size_t lines = 0;
    char line[256];
    while (m && fgets(line, sizeof line, m)) {
        line[strcspn(line, "\n")] = '\0';
        lines++;
        int known = 0;
        for (size_t i = 0; i < N_HOSTILE && !known; i++)
            known = strcmp(line, hostile_files[i].name) == 0;
        CHECK(known, "hostile file '%s' is not checked by this test", line);
    }
    if (m)
        fclose(m);
    CHECK(lines == N_HOSTILE, "MANIFEST lists %zu files, the test checks %zu", lines,
          (size_t)N_HOSTILE);
}

/* ---------------------------------------------------------------------------
 * The API, the unpickler directly
 * ------------------------------------------------------------------------- */

static void test_api(void) {
    st_file f;
    CHECK(pth_read(NULL, &f) == RN_ERR_ARG, "NULL path");
    CHECK(pth_read("x", NULL) == RN_ERR_ARG, "NULL out");
    CHECK(pth_parse(NULL, 4, "b", &f) == RN_ERR_ARG, "NULL buffer");
    char path[512];
    corpus_path(path, sizeof path, "valid", "missing", ".pth");
    CHECK(pth_read(path, &f) == RN_ERR_IO && strstr(rn_last_error(), "missing.pth"),
          "missing file: %s", rn_last_error());
    CHECK(pth_read(tmpdir, &f) == RN_ERR_IO, "a directory");

    /* Values the state_dict path does not return: ints of every width,
     * floats, MEMOIZE, STACK_GLOBAL, BUILD on an OrderedDict. */
    static const unsigned char pkl[] =
        "\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00"
        "]\x94(K\xffJ\xfe\xff\xff\xffM\x2c\x01\x8a\x01\xff\x8a\x00\x8a\x08"
        "\x00\x00\x00\x00\x00\x00\x00\x80G\xc0\x04\x00\x00\x00\x00\x00\x00"
        "\x8c\x02\xc3\xa9\x88\x89N)h\x00" "e"
        "\x8c\x0b" "collections" "\x8c\x0b" "OrderedDict" "\x93)R}ba.";
    pk_doc doc;
    rn_status st = pk_load(pkl, sizeof pkl - 1, "inline", &doc);
    CHECK(st == RN_OK, "pk_load: %s", rn_last_error());
    if (st == RN_OK) {
        const pk_obj *l = pk_at(&doc, doc.root);
        CHECK(l->kind == PK_LIST && l->n == 14, "root list of 14, got %s of %u",
              pk_kind_name((pk_kind)l->kind), l->n);
        static const int64_t ints[] = {255, -2, 300, -1, 0, INT64_MIN};
        for (int i = 0; l->n == 14 && i < 6; i++) {
            const pk_obj *o = pk_at(&doc, l->u.items[i]);
            CHECK(o->kind == PK_INT && o->u.i == ints[i], "int %d", i);
        }
        if (l->n == 14) {
            const pk_obj *o = pk_at(&doc, l->u.items[6]);
            CHECK(o->kind == PK_FLOAT && o->u.f == -2.5, "float");
            o = pk_at(&doc, l->u.items[7]);
            CHECK(o->kind == PK_STR && o->n == 2 && strcmp(o->u.s, "\xc3\xa9") == 0, "str");
            CHECK(pk_at(&doc, l->u.items[8])->kind == PK_BOOL &&
                  pk_at(&doc, l->u.items[8])->u.i == 1, "True");
            CHECK(pk_at(&doc, l->u.items[9])->kind == PK_BOOL, "False");
            CHECK(pk_at(&doc, l->u.items[10])->kind == PK_NONE, "None");
            CHECK(pk_at(&doc, l->u.items[11])->kind == PK_TUPLE, "()");
            CHECK(l->u.items[12] == doc.root, "memo: the list holds itself");
            CHECK(pk_at(&doc, l->u.items[13])->kind == PK_DICT, "OrderedDict() after BUILD");
        }
        pk_free(&doc);
    }
    CHECK(doc.count == 0 && doc.objs == NULL, "pk_free empties");
}

/* ---------------------------------------------------------------------------
 * Truncations and mutations
 * ------------------------------------------------------------------------- */

/* Parses a private copy of buf[0..len) (so that ASan sees any over-read);
 * the result must be a success or a failure with a message. Returns 1 on
 * success. */
static int parse_copy(const unsigned char *buf, size_t len, const char *what) {
    unsigned char *copy = malloc(len ? len : 1);
    memcpy(copy, buf, len);
    st_file f;
    rn_status st = pth_parse(copy, len, what, &f);
    if (st == RN_OK) {
        for (size_t i = 0; i < f.count; i++) {
            const st_tensor *t = &f.tensors[i];
            CHECK((t->f32 != NULL) != (t->i64 != NULL), "%s: tensor '%s' has one storage", what,
                  t->name);
        }
    } else {
        CHECK(rn_last_error()[0] != '\0' && strstr(rn_last_error(), what),
              "%s: failure with a message naming it", what);
        CHECK(f.count == 0 && f.tensors == NULL, "%s: failure leaves nothing", what);
    }
    st_free(&f);
    free(copy);
    return st == RN_OK;
}

static void test_truncations(void) {
    static const char *const names[] = {"small", "views_shared_storages", "zip64_records",
                                        "legacy_small", "legacy_views_shared_storages"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        char path[512];
        corpus_path(path, sizeof path, "valid", names[k], ".pth");
        size_t len = 0;
        unsigned char *buf = check_read_file(path, &len);
        CHECK(buf && len > 100, "read %s", path);
        if (!buf)
            continue;
        size_t ok = 0;
        for (size_t n = 0; n < len; n++)
            ok += (size_t)parse_copy(buf, n, "truncated.pth");
        CHECK(ok == 0, "%s: %zu truncations loaded", names[k], ok);
        CHECK(parse_copy(buf, len, "whole.pth"), "%s: the whole file loads: %s", names[k],
              rn_last_error());
        free(buf);
    }
}

static uint32_t rng = 12345u;
static uint32_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* Where the central directory stores the CRC of entry `name`. */
static size_t central_crc_at(const unsigned char *buf, size_t len, const char *name) {
    size_t n = strlen(name);
    for (size_t p = 0; p + 46 + n <= len; p++)
        if (memcmp(buf + p, "PK\1\2", 4) == 0 && (size_t)(buf[p + 28] | buf[p + 29] << 8) == n &&
            memcmp(buf + p + 46, name, n) == 0)
            return p + 16;
    return 0;
}

static void test_mutations(void) {
    static const char *const names[] = {"views_shared_storages", "wrapper_state_dict_sgd",
                                        "dtypes"};
    static const unsigned char interesting[] = {0x00, 0xff, 0x80, 0x7f, 0x01, '(', ')', 't',
                                                'u', 's', 'R', 'Q', 'h', 'q', 'K', 'J', 'X',
                                                '.', 'c', 0x85, 0x8a, 'e', 'a', 'b', '}'};
    size_t total = 0, loaded = 0;
    for (size_t k = 0; k < 3; k++) {
        char path[512];
        corpus_path(path, sizeof path, "valid", names[k], ".pth");
        size_t len = 0;
        unsigned char *orig = check_read_file(path, &len);
        zip_archive z;
        if (!orig || zip_open(orig, len, path, &z) != RN_OK) {
            CHECK(0, "open %s: %s", path, rn_last_error());
            free(orig);
            continue;
        }
        const zip_entry *pkl = NULL;
        for (size_t i = 0; i < z.count; i++)
            if (strstr(z.entries[i].name, "/data.pkl"))
                pkl = &z.entries[i];
        size_t crc_at = pkl ? central_crc_at(orig, len, pkl->name) : 0;
        CHECK(pkl && crc_at, "%s: data.pkl and its central CRC found", names[k]);
        unsigned char *buf = malloc(len);
        for (int iter = 0; pkl && crc_at && iter < 1500; iter++) {
            memcpy(buf, orig, len);
            int in_pickle = iter % 3 != 0, flips = 1 + (int)(next_rand() % 4);
            for (int j = 0; j < flips; j++) {
                size_t at = in_pickle ? pkl->data_offset + next_rand() % pkl->size
                                      : next_rand() % len;
                buf[at] = next_rand() % 2 ? (unsigned char)next_rand()
                                          : interesting[next_rand() % sizeof interesting];
            }
            if (in_pickle) {
                uint32_t crc = (uint32_t)crc32(0L, buf + pkl->data_offset, (uInt)pkl->size);
                for (int b = 0; b < 4; b++)
                    buf[crc_at + b] = (unsigned char)(crc >> (8 * b));
            }
            loaded += (size_t)parse_copy(buf, len, "mutated.pth");
            total++;
        }
        free(buf);
        zip_close(&z);
        free(orig);
    }
    printf("mutations: %zu parsed, %zu loaded, %zu refused\n", total, loaded, total - loaded);
    CHECK(total == 4500, "4500 mutations ran");
}

/* The legacy format has no CRC: bytes are flipped anywhere, two times in
 * three inside its five pickles (found with pk_load_at). */
static void test_mutations_legacy(void) {
    static const unsigned char interesting[] = {0x00, 0xff, 0x80, 0x7f, 0x01, '(', ')', 't', 'u',
                                                's', 'R', 'Q', 'h', 'q', 'K', 'J', 'X', 'U',
                                                '.', 'c', 0x85, 0x8a, 'e', 'a', 'N', '}'};
    char path[512];
    corpus_path(path, sizeof path, "valid", "legacy_views_shared_storages", ".pth");
    size_t len = 0, pickles_end = 0;
    unsigned char *orig = check_read_file(path, &len);
    for (int i = 0; orig && i < 5; i++) {
        pk_doc d;
        rn_status st = pk_load_at(orig, len, pickles_end, "legacy", &d, &pickles_end);
        CHECK(st == RN_OK, "pickle %d of %s: %s", i + 1, path, rn_last_error());
        if (st != RN_OK)
            break;
        pk_free(&d);
    }
    CHECK(orig && pickles_end > 100 && pickles_end < len, "%s: five pickles end at byte %zu",
          path, pickles_end);
    if (!orig || pickles_end <= 100 || pickles_end >= len) {
        free(orig);
        return;
    }
    unsigned char *buf = malloc(len);
    size_t total = 0, loaded = 0;
    for (int iter = 0; iter < 1500; iter++) {
        memcpy(buf, orig, len);
        int in_pickle = iter % 3 != 0, flips = 1 + (int)(next_rand() % 4);
        for (int j = 0; j < flips; j++) {
            size_t at = next_rand() % (in_pickle ? pickles_end : len);
            buf[at] = next_rand() % 2 ? (unsigned char)next_rand()
                                      : interesting[next_rand() % sizeof interesting];
        }
        loaded += (size_t)parse_copy(buf, len, "mutated_legacy.pth");
        total++;
    }
    printf("legacy mutations: %zu parsed, %zu loaded, %zu refused\n", total, loaded,
           total - loaded);
    free(buf);
    free(orig);
}

/* ---------------------------------------------------------------------------
 * Other formats: the weights loader says what they are
 * ------------------------------------------------------------------------- */

static const struct {
    const char *name, *keyword;
    int lists_formats;      /* the message says what resnet reads */
} other_files[] = {
    {"tiny.onnx", "ONNX model", 1},
    {"torchscript.pt", "TorchScript", 0},
    {"torchscript_stored.pt", "TorchScript", 0},
    {"array.npy", "NumPy .npy array", 1},
    {"arrays.npz", "zip archive of 1 entry", 1},
    {"state_dict.pth.gz", "gzip", 1},
    {"pickled.pkl", "magic number", 1},
    {"empty.pth", "empty", 1},
    {"notes.txt", "text file starting \"weights: see the README\"", 1},
    {"brace_at_byte_8.json", "text file", 1},
    {"lfs_pointer.pth", "Git LFS pointer", 1},
    {"download.html", "web page", 1},
    {"keras.h5", "HDF5", 1},
    {"image.png", "PNG image", 1},
    {"image.jpg", "JPEG image", 1},
    {"legacy_tar.pth", "tar archive", 1},
    {"random.bin", "no known format starting 0d 6e cf 30", 1},
    {"short.bin", "(3 bytes in all)", 1},
};
#define N_OTHER (sizeof other_files / sizeof other_files[0])

static void test_other_formats(void) {
    for (size_t i = 0; i < N_OTHER; i++) {
        char path[512];
        corpus_path(path, sizeof path, "other", other_files[i].name, "");
        rn_model *m = NULL;
        rn_status st = rn_model_load(path, NULL, &m);
        const char *msg = rn_last_error();
        CHECK(st != RN_OK && st != RN_ERR_IO && !m, "%s: refused (status %d)",
              other_files[i].name, (int)st);
        CHECK(strstr(msg, path) && strstr(msg, other_files[i].keyword) && !strchr(msg, '\n'),
              "%s: one line naming the file and saying '%s': %s", other_files[i].name,
              other_files[i].keyword, msg);
        CHECK(!other_files[i].lists_formats || strstr(msg, "resnet reads safetensors"),
              "%s: the message says what is read: %s", other_files[i].name, msg);
        rn_model_free(m);
    }
    /* The safetensors reader names what it was given instead. */
    static const char *const not_st[][3] = {
        {"other", "pickled.pkl", "Python pickle"}, {"other", "tiny.onnx", "ONNX"},
        {"other", "lfs_pointer.pth", "Git LFS"}, {"valid", "legacy_small.pth", "Python pickle"},
        {"valid", "small.pth", "zip archive"}};
    for (size_t i = 0; i < sizeof not_st / sizeof not_st[0]; i++) {
        char path[512];
        corpus_path(path, sizeof path, not_st[i][0], not_st[i][1], "");
        st_file f;
        rn_status st = st_read(path, &f);
        CHECK(st != RN_OK && strstr(rn_last_error(), "not a safetensors file") &&
              strstr(rn_last_error(), not_st[i][2]), "st_read %s: %s", not_st[i][1],
              rn_last_error());
        st_free(&f);
    }

    char path[512];
    corpus_path(path, sizeof path, "other", "MANIFEST", "");
    FILE *m = fopen(path, "r");
    CHECK(m != NULL, "open %s", path);
    char line[256];
    size_t lines = 0;
    while (m && fgets(line, sizeof line, m)) {
        line[strcspn(line, "\n")] = '\0';
        int known = 0;
        for (size_t i = 0; i < N_OTHER && !known; i++)
            known = strcmp(line, other_files[i].name) == 0;
        CHECK(known, "other file '%s' is not checked by this test", line);
        lines++;
    }
    if (m)
        fclose(m);
    CHECK(lines == N_OTHER, "MANIFEST lists %zu files, the test checks %zu", lines,
          (size_t)N_OTHER);

    /* The sniffer on its own. */
    static const struct {
        const char *bytes;
        size_t len;
        rn_format want;
    } sniffs[] = {
        {"PK\3\4xx", 6, RN_FMT_ZIP}, {"PK\5\6", 4, RN_FMT_ZIP}, {"\x80\x02", 2, RN_FMT_PICKLE},
        {"\x80\x06", 2, RN_FMT_UNKNOWN}, {"", 0, RN_FMT_EMPTY},
        {"\x10\0\0\0\0\0\0\0{", 9, RN_FMT_SAFETENSORS},
        {"\xff\xff\xff\xff\xff\xff\xff\xff{\x01", 10, RN_FMT_SAFETENSORS},
        {"L119547037146038801333356L\n.", 28, RN_FMT_PICKLE_TEXT},
        {"\x08\x07\x12\x07pytorch", 11, RN_FMT_ONNX}, {"caf\xc3\xa9\n", 6, RN_FMT_TEXT},
        {"caf\xc3", 4, RN_FMT_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof sniffs / sizeof sniffs[0]; i++)
        CHECK(rn_sniff((const unsigned char *)sniffs[i].bytes, sniffs[i].len) == sniffs[i].want,
              "sniff case %zu: %s", i, rn_format_name(rn_sniff((const unsigned char *)
                                                                sniffs[i].bytes, sniffs[i].len)));
    CHECK(rn_sniff(NULL, 0) == RN_FMT_EMPTY, "sniff NULL");
}

int main(void) {
    if (!check_tmpdir("test_pth", tmpdir, sizeof tmpdir))
        return 1;
    if (make_corpus()) {
        test_valid();
        test_hostile();
        test_api();
        test_truncations();
        test_mutations();
        test_mutations_legacy();
        test_other_formats();
    }
    check_tmpdir_remove(tmpdir);
    return check_done("test_pth");
}
