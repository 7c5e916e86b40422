/*
 * test_data.c - datasets and resizing: the bundled Fashion-MNIST subset,
 * hand-made malformed IDX and CIFAR-10 files (gzip bombs included) and
 * resize sanity. The loader has its own suite, test_loader.c.
 *
 * Run from the repository root (it reads data/fmnist-small). Exits non-zero
 * on any failure; the last line reads "test_data: N passed, M failed".
 *
 *   test_data --resize-dump DIR   writes random images and their resized
 *                                 versions as .npy files for
 *                                 tools/check_resize_pil.py, and exits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "resnet.h"
#include "check.h"
#include "data/dataset.h"
#include "data/resize.h"

#define SUBSET_DIR "data/fmnist-small"

/* ---------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------- */

static char tmpdir[256];

/* tmpdir/name, creating the directories on the way. Returns one of two
 * static buffers, so two results can be used together. */
static const char *tmp_path(const char *name) {
    static char path[2][512];
    static int which;
    char *p = path[which ^= 1];
    snprintf(p, sizeof path[0], "%s/%s", tmpdir, name);
    for (char *s = p + strlen(tmpdir) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        mkdir(p, 0700);
        *s = '/';
    }
    return p;
}

/* Compresses buf into a malloc'ed gzip stream. */
static unsigned char *gzip_bytes(const void *buf, size_t len, size_t *out_len) {
    const char *path = tmp_path("gz.tmp");
    gzFile g = gzopen(path, "wb9");
    gzwrite(g, buf, (unsigned)len);
    gzclose(g);
    FILE *f = fopen(path, "rb");
    unsigned char *out = malloc(len + 1024);
    *out_len = fread(out, 1, len + 1024, f);
    fclose(f);
    unlink(path);
    return out;
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* An IDX image file of n images rows x cols, pixel (i, k) = (7i + k) & 255. */
static unsigned char *make_idx_images(uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols,
                                      size_t *len) {
    *len = 16 + (size_t)n * rows * cols;
    unsigned char *b = malloc(*len);
    put_be32(b, magic);
    put_be32(b + 4, n);
    put_be32(b + 8, rows);
    put_be32(b + 12, cols);
    for (size_t i = 16; i < *len; i++)
        b[i] = (unsigned char)(7 * ((i - 16) / (rows * cols)) + (i - 16) % (rows * cols));
    return b;
}

/* An IDX label file of n labels, label i = i % 10. */
static unsigned char *make_idx_labels(uint32_t magic, uint32_t n, size_t *len) {
    *len = 8 + (size_t)n;
    unsigned char *b = malloc(*len);
    put_be32(b, magic);
    put_be32(b + 4, n);
    for (uint32_t i = 0; i < n; i++)
        b[8 + i] = (unsigned char)(i % 10);
    return b;
}

/* The load fails with `want` and a message containing `needle`. */
static void expect_fail(rn_status st, rn_status want, const char *needle, const char *what) {
    const char *msg = rn_last_error();
    CHECK(st == want && strstr(msg, needle), "%s: got %s '%s', expected %s naming '%s'", what,
          rn_status_name(st), msg, rn_status_name(want), needle);
}

/* ---------------------------------------------------------------------------
 * The bundled subset
 * ------------------------------------------------------------------------- */

static void test_subset(void) {
    static const int want_count[2] = {1000, 5000};
    for (int train = 0; train <= 1; train++) {
        rn_dataset ds;
        rn_status st = rn_dataset_load(SUBSET_DIR, "fashion-mnist", train, &ds);
        CHECK(st == RN_OK, "load %s (train %d): %s", SUBSET_DIR, train, rn_last_error());
        if (st != RN_OK)
            continue;
        CHECK(ds.count == want_count[train] && ds.channels == 1 && ds.height == 28 &&
                  ds.width == 28 && ds.num_classes == 10,
              "subset shape %d x %dx%dx%d, %d classes", ds.count, ds.channels, ds.height,
              ds.width, ds.num_classes);
        int hist[10] = {0}, bad = 0;
        for (int i = 0; i < ds.count; i++) {
            if (ds.labels[i] < 0 || ds.labels[i] > 9)
                bad++;
            else
                hist[ds.labels[i]]++;
        }
        for (int c = 0; c < 10; c++)
            bad += hist[c] != want_count[train] / 10;
        CHECK(bad == 0, "label balance (train %d): %d bad classes", train, bad);
        CHECK(ds.class_names && strcmp(ds.class_names[0], "T-shirt/top") == 0 &&
                  strcmp(ds.class_names[9], "Ankle boot") == 0, "fashion class names");
        long sum = 0;
        for (size_t i = 0; i < (size_t)ds.count * 784; i++)
            sum += ds.pixels[i];
        double mean = (double)sum / ((double)ds.count * 784 * 255);
        CHECK(mean > 0.2 && mean < 0.4, "mean pixel %.3f (Fashion-MNIST is about 0.29)", mean);
        rn_dataset_free(&ds);
        CHECK(ds.pixels == NULL && ds.count == 0, "rn_dataset_free zeroes");
    }
    rn_dataset ds;
    CHECK(rn_dataset_load(SUBSET_DIR, "mnist", 0, &ds) == RN_OK &&
              strcmp(ds.class_names[3], "3") == 0, "mnist kind names digits");
    rn_dataset_free(&ds);
    expect_fail(rn_dataset_load(SUBSET_DIR, "imagenet", 0, &ds), RN_ERR_ARG, "imagenet",
                "unknown kind");
    expect_fail(rn_dataset_load(tmp_path("nothing/x"), "mnist", 1, &ds), RN_ERR_IO,
                "train-images-idx3-ubyte", "missing files");
}

/* ---------------------------------------------------------------------------
 * Malformed IDX files
 * ------------------------------------------------------------------------- */

/* Writes images and labels (gzip-compressed when gz) into tmpdir/dir and
 * loads the test split. */
static rn_status load_idx(const char *dir, const unsigned char *img, size_t img_len,
                          const unsigned char *lab, size_t lab_len, rn_dataset *ds) {
    char name[128];
    snprintf(name, sizeof name, "%s/t10k-images-idx3-ubyte", dir);
    check_write_file(tmp_path(name), img, img_len);
    snprintf(name, sizeof name, "%s/t10k-labels-idx1-ubyte", dir);
    check_write_file(tmp_path(name), lab, lab_len);
    return rn_dataset_load(tmp_path(dir), "mnist", 0, ds);
}

static void test_idx_good(void) {
    size_t il, ll, gl;
    unsigned char *img = make_idx_images(0x803, 20, 4, 5, &il);
    unsigned char *lab = make_idx_labels(0x801, 20, &ll);
    rn_dataset ds;
    rn_status st = load_idx("idx_raw", img, il, lab, ll, &ds);
    CHECK(st == RN_OK && ds.count == 20 && ds.height == 4 && ds.width == 5 &&
              ds.labels[13] == 3 && ds.pixels[2 * 20 + 3] == 17,
          "raw IDX loads: %s", rn_last_error());
    rn_dataset_free(&ds);

    /* The same data gzip-compressed, under the .gz names. */
    unsigned char *gz = gzip_bytes(img, il, &gl);
    check_write_file(tmp_path("idx_gz/t10k-images-idx3-ubyte.gz"), gz, gl);
    free(gz);
    gz = gzip_bytes(lab, ll, &gl);
    check_write_file(tmp_path("idx_gz/t10k-labels-idx1-ubyte.gz"), gz, gl);
    free(gz);
    st = rn_dataset_load(tmp_path("idx_gz"), "fashion-mnist", 0, &ds);
    CHECK(st == RN_OK && ds.count == 20 && memcmp(ds.pixels, img + 16, il - 16) == 0 &&
              ds.labels[19] == 9, "gzip IDX loads: %s", rn_last_error());
    rn_dataset_free(&ds);
    free(img);
    free(lab);
}

static void test_idx_malformed(void) {
    size_t il, ll;
    unsigned char *img = make_idx_images(0x803, 20, 4, 5, &il);
    unsigned char *lab = make_idx_labels(0x801, 20, &ll);
    rn_dataset ds;
    const char *I = "t10k-images-idx3-ubyte", *L = "t10k-labels-idx1-ubyte";

    /* Magic numbers. */
    put_be32(img, 0x804);
    expect_fail(load_idx("m1", img, il, lab, ll, &ds), RN_ERR_FORMAT, I, "image magic");
    put_be32(img, 0x801);
    load_idx("m2", img, il, lab, ll, &ds);
    CHECK(strstr(rn_last_error(), "label file") != NULL, "says a label file: %s",
          rn_last_error());
    put_be32(img, 0x803);
    put_be32(lab, 0x803);
    expect_fail(load_idx("m3", img, il, lab, ll, &ds), RN_ERR_FORMAT, L, "label magic");
    put_be32(lab, 0x801);

    /* Truncation at every length, and one byte too many. */
    int bad = 0;
    for (size_t n = 0; n < il; n++)
        bad += load_idx("t1", img, n, lab, ll, &ds) != RN_ERR_FORMAT || !strstr(rn_last_error(), I);
    CHECK(bad == 0, "image file truncated: %d lengths not refused", bad);
    load_idx("t1", img, il - 3, lab, ll, &ds);
    CHECK(strstr(rn_last_error(), "416") && strstr(rn_last_error(), "413"),
          "truncation names expected and actual size: %s", rn_last_error());
    bad = 0;
    for (size_t n = 0; n < ll; n++)
        bad += load_idx("t2", img, il, lab, n, &ds) != RN_ERR_FORMAT || !strstr(rn_last_error(), L);
    CHECK(bad == 0, "label file truncated: %d lengths not refused", bad);
    unsigned char *longer = malloc(il + 1);
    memcpy(longer, img, il);
    longer[il] = 0;
    expect_fail(load_idx("t3", longer, il + 1, lab, ll, &ds), RN_ERR_FORMAT, "trailing",
                "trailing byte");
    free(longer);

    /* Count mismatch, label range, absurd dimensions. */
    expect_fail(load_idx("c1", img, il, lab, ll - 1, &ds), RN_ERR_FORMAT, L, "label count");
    put_be32(lab + 4, 19);
    expect_fail(load_idx("c2", img, il, lab, ll - 1, &ds), RN_ERR_FORMAT, "20 images", "mismatch");
    put_be32(lab + 4, 20);
    lab[8 + 7] = 10;
    expect_fail(load_idx("c3", img, il, lab, ll, &ds), RN_ERR_FORMAT, "offset 15", "label 10");
    lab[8 + 7] = 7;
    static const uint32_t dims[][3] = {{0, 4, 5}, {20, 0, 5}, {20, 4, 0}, {20, 100000, 5},
                                       {0xffffffffu, 4, 5}, {0x7fffffffu, 4096, 4096}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        put_be32(img + 4, dims[i][0]);
        put_be32(img + 8, dims[i][1]);
        put_be32(img + 12, dims[i][2]);
        expect_fail(load_idx("d1", img, il, lab, ll, &ds), RN_ERR_FORMAT, I, "absurd dims");
    }
    put_be32(img + 4, 20);
    put_be32(img + 8, 4);
    put_be32(img + 12, 5);

    /* gzip: truncated at every length, garbage after the magic, a flipped byte. */
    size_t gl;
    unsigned char *gz = gzip_bytes(img, il, &gl);
    bad = 0;
    for (size_t n = 0; n < gl; n++) {
        check_write_file(tmp_path("g1/t10k-images-idx3-ubyte.gz"), gz, n);
        check_write_file(tmp_path("g1/t10k-labels-idx1-ubyte"), lab, ll);
        bad += rn_dataset_load(tmp_path("g1"), "mnist", 0, &ds) == RN_OK ||
               !strstr(rn_last_error(), "t10k-images-idx3-ubyte.gz");
    }
    CHECK(bad == 0, "gzip truncated: %d of %zu lengths not refused", bad, gl);
    unsigned char garbage[64] = {0x1f, 0x8b, 8, 0};
    for (size_t i = 4; i < sizeof garbage; i++)
        garbage[i] = (unsigned char)(i * 37 + 11);
    check_write_file(tmp_path("g1/t10k-images-idx3-ubyte.gz"), garbage, sizeof garbage);
    expect_fail(rn_dataset_load(tmp_path("g1"), "mnist", 0, &ds), RN_ERR_FORMAT,
                "t10k-images-idx3-ubyte.gz", "gzip garbage");
    gz[gl / 2] ^= 0x40;
    check_write_file(tmp_path("g1/t10k-images-idx3-ubyte.gz"), gz, gl);
    CHECK(rn_dataset_load(tmp_path("g1"), "mnist", 0, &ds) != RN_OK &&
              strstr(rn_last_error(), "t10k-images-idx3-ubyte.gz"), "gzip flipped byte: %s",
          rn_last_error());
    free(gz);
    free(img);
    free(lab);
}

/* A gzip member of `head` followed by `zeros` zero bytes (deflated as they
 * stream, so no buffer of that size exists); malloc'ed, length in *out_len. */
static unsigned char *gzip_with_zeros(const unsigned char *head, size_t head_len, size_t zeros,
                                      size_t *out_len) {
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
    size_t cap = zeros / 512 + head_len + 4096, chunk = 1 << 20;
    unsigned char *out = malloc(cap), *zero = calloc(chunk, 1);
    z.next_out = out;
    z.avail_out = (uInt)cap;
    z.next_in = (unsigned char *)head;
    z.avail_in = (uInt)head_len;
    deflate(&z, Z_NO_FLUSH);
    for (size_t left = zeros; left > 0;) {
        size_t n = left < chunk ? left : chunk;
        z.next_in = zero;
        z.avail_in = (uInt)n;
        deflate(&z, Z_NO_FLUSH);
        left -= n;
    }
    deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    free(zero);
    return out;
}

static long peak_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* gzip data is inflated only as far as the header allows: a small file that
 * inflates to 256 MiB after a bad or a small header costs no memory; the
 * header's count is never an allocation size before the data holds it;
 * concatenated members are one stream, anything else after the last is not. */
static void test_idx_gzip_bounds(void) {
    size_t il, ll, gl;
    unsigned char *img = make_idx_images(0x803, 20, 4, 5, &il);
    unsigned char *lab = make_idx_labels(0x801, 20, &ll);
    const char *I = "g2/t10k-images-idx3-ubyte.gz", *L = "g2/t10k-labels-idx1-ubyte";
    rn_dataset ds;
    check_write_file(tmp_path(L), lab, ll);
    long before = peak_rss_kb();
    unsigned char bad_magic[16] = {0, 0, 8, 4};
    unsigned char *gz = gzip_with_zeros(bad_magic, sizeof bad_magic, (size_t)256 << 20, &gl);
    check_write_file(tmp_path(I), gz, gl);
    expect_fail(rn_dataset_load(tmp_path("g2"), "mnist", 0, &ds), RN_ERR_FORMAT, "magic",
                "gzip bomb after a bad magic");
    free(gz);
    gz = gzip_with_zeros(img, il, (size_t)256 << 20, &gl);
    check_write_file(tmp_path(I), gz, gl);
    expect_fail(rn_dataset_load(tmp_path("g2"), "mnist", 0, &ds), RN_ERR_FORMAT, "trailing",
                "gzip bomb after 20 images");
    free(gz);
    long grown = peak_rss_kb() - before;
    CHECK(grown < 32 * 1024, "a %zu-byte gzip bomb raised the peak memory by %ld KiB (the header "
          "allows 416 bytes)", gl, grown);

    /* 2^31-1 images of 4096x4096 announced, 400 bytes there: raw and gzip */
    put_be32(img + 4, 0x7fffffffu);
    put_be32(img + 8, 4096);
    put_be32(img + 12, 4096);
    expect_fail(load_idx("g3", img, il, lab, ll, &ds), RN_ERR_FORMAT, "truncated",
                "raw: a huge count, little data");
    gz = gzip_bytes(img, il, &gl);
    check_write_file(tmp_path(I), gz, gl);
    expect_fail(rn_dataset_load(tmp_path("g2"), "mnist", 0, &ds), RN_ERR_FORMAT, "truncated",
                "gzip: a huge count, little data");
    free(gz);
    put_be32(img + 4, 20);
    put_be32(img + 8, 4);
    put_be32(img + 12, 5);

    /* two members, split inside the header, load as one file */
    size_t l1, l2;
    unsigned char *m1 = gzip_bytes(img, 10, &l1), *m2 = gzip_bytes(img + 10, il - 10, &l2);
    unsigned char *both = malloc(l1 + l2 + 24);
    memcpy(both, m1, l1);
    memcpy(both + l1, m2, l2);
    check_write_file(tmp_path(I), both, l1 + l2);
    rn_status st = rn_dataset_load(tmp_path("g2"), "mnist", 0, &ds);
    CHECK(st == RN_OK && ds.count == 20 && ds.pixels[21] == (7 + 1) % 256,
          "concatenated gzip members: %s", rn_last_error());
    rn_dataset_free(&ds);
    /* bytes after the last member that are not a member */
    memcpy(both + l1 + l2, "garbage!", 8);
    check_write_file(tmp_path(I), both, l1 + l2 + 8);
    char where[64];
    snprintf(where, sizeof where, "offset %zu", l1 + l2);
    expect_fail(rn_dataset_load(tmp_path("g2"), "mnist", 0, &ds), RN_ERR_FORMAT, where,
                "garbage after the gzip stream");
    /* zero bytes after it (padding, as tape and block writers leave): read as gzip(1) and
     * Python's gzip read them; zeros, then garbage, are refused */
    memset(both + l1 + l2, 0, 16);
    check_write_file(tmp_path(I), both, l1 + l2 + 16);
    st = rn_dataset_load(tmp_path("g2"), "mnist", 0, &ds);
    CHECK(st == RN_OK && ds.count == 20, "zero padding after the gzip stream: %s", rn_last_error());
    rn_dataset_free(&ds);
    memcpy(both + l1 + l2 + 16, "garbage!", 8);
    check_write_file(tmp_path(I), both, l1 + l2 + 24);
    expect_fail(rn_dataset_load(tmp_path("g2"), "mnist", 0, &ds), RN_ERR_FORMAT, where,
                "zeros, then garbage, after the gzip stream");
    free(m1);
    free(m2);
    free(both);
    free(img);
    free(lab);
}

/* ---------------------------------------------------------------------------
 * CIFAR-10
 * ------------------------------------------------------------------------- */

/* n records; record r has label (first + r) % 10 and pixel k = (r + k) & 255. */
static unsigned char *make_cifar(int n, int first, size_t *len) {
    *len = (size_t)n * 3073;
    unsigned char *b = malloc(*len);
    for (int r = 0; r < n; r++) {
        b[(size_t)r * 3073] = (unsigned char)((first + r) % 10);
        for (int k = 0; k < 3072; k++)
            b[(size_t)r * 3073 + 1 + k] = (unsigned char)(first + r + k);
    }
    return b;
}

static void test_cifar(void) {
    size_t len;
    rn_dataset ds;
    char dir[512];
    /* The archive's layout: DIR/cifar-10-batches-bin/, no meta file. */
    for (int i = 1; i <= 5; i++) {
        unsigned char *b = make_cifar(2, 2 * (i - 1), &len);
        char name[96];
        snprintf(name, sizeof name, "cifar/cifar-10-batches-bin/data_batch_%d.bin", i);
        check_write_file(tmp_path(name), b, len);
        free(b);
    }
    snprintf(dir, sizeof dir, "%s/cifar", tmpdir);
    rn_status st = rn_dataset_load(dir, "cifar10", 1, &ds);
    CHECK(st == RN_OK && ds.count == 10 && ds.channels == 3 && ds.height == 32 &&
              ds.labels[7] == 7 && ds.pixels[7 * 3072 + 1024] == (uint8_t)(7 + 1024) &&
              strcmp(ds.class_names[1], "automobile") == 0,
          "CIFAR train split loads: %s", rn_last_error());
    rn_dataset_free(&ds);

    /* Test split directly in DIR, with class names from batches.meta.txt. */
    unsigned char *b = make_cifar(5, 3, &len);
    check_write_file(tmp_path("cifar2/test_batch.bin"), b, len);
    const char *meta = "a\nb\nc\nd\ne\nf\ng\nh\ni\n  j j \r\n\n";
    check_write_file(tmp_path("cifar2/batches.meta.txt"), meta, strlen(meta));
    snprintf(dir, sizeof dir, "%s/cifar2", tmpdir);
    st = rn_dataset_load(dir, "cifar10", 0, &ds);
    CHECK(st == RN_OK && ds.count == 5 && ds.labels[0] == 3 &&
              strcmp(ds.class_names[9], "j j") == 0, "CIFAR test split with meta: %s",
          rn_last_error());
    rn_dataset_free(&ds);
    check_write_file(tmp_path("cifar2/batches.meta.txt"), meta, 18);
    expect_fail(rn_dataset_load(dir, "cifar10", 0, &ds), RN_ERR_FORMAT, "batches.meta.txt",
                "nine class names");
    unlink(tmp_path("cifar2/batches.meta.txt"));

    /* Truncations (sizes not a multiple of 3073). */
    int bad = 0;
    for (size_t n = 0; n < len; n += n < 3080 ? 1 : 997) {
        if (n % 3073 == 0 && n)
            continue;
        check_write_file(tmp_path("cifar2/test_batch.bin"), b, n);
        bad += rn_dataset_load(dir, "cifar10", 0, &ds) != RN_ERR_FORMAT ||
               !strstr(rn_last_error(), "test_batch.bin");
    }
    CHECK(bad == 0, "CIFAR truncated: %d lengths not refused", bad);
    b[2 * 3073] = 10;
    check_write_file(tmp_path("cifar2/test_batch.bin"), b, len);
    expect_fail(rn_dataset_load(dir, "cifar10", 0, &ds), RN_ERR_FORMAT, "offset 6146",
                "CIFAR label 10");
    free(b);

    /* A missing training batch; no files at all. */
    unlink(tmp_path("cifar/cifar-10-batches-bin/data_batch_4.bin"));
    snprintf(dir, sizeof dir, "%s/cifar", tmpdir);
    expect_fail(rn_dataset_load(dir, "cifar10", 1, &ds), RN_ERR_IO, "data_batch_4.bin",
                "missing batch");
    expect_fail(rn_dataset_load(dir, "cifar10", 0, &ds), RN_ERR_IO, "test_batch.bin",
                "missing split");
}

/* ---------------------------------------------------------------------------
 * Resize sanity (bit parity with PIL: tools/check_resize_pil.py)
 * ------------------------------------------------------------------------- */

/* rn_dataset_match_classes: a named dataset labelled by a model's classes. */
static rn_dataset named(int n, const char *const *names, int count) {
    rn_dataset ds = {.count = count, .num_classes = n};
    ds.labels = malloc((size_t)count * sizeof *ds.labels);
    ds.class_names = malloc((size_t)n * sizeof *ds.class_names);
    for (int i = 0; i < count; i++)
        ds.labels[i] = i % n;
    for (int c = 0; c < n; c++)
        ds.class_names[c] = strdup(names[c]);
    return ds;
}

static void test_match_classes(void) {
    const char *model[] = {"bird", "cat", "dog"}, *some[] = {"cat", "dog"}, *odd[] = {"cat", "fox"},
               *other[] = {"x", "y"};
    int matched = -1;
    rn_dataset ds = named(2, some, 4); /* labels 0 1 0 1: cat dog cat dog */
    CHECK(rn_dataset_match_classes(&ds, model, 3, &matched) == RN_OK && matched == 2 &&
              ds.num_classes == 3 && ds.labels[0] == 1 && ds.labels[1] == 2 && ds.labels[2] == 1 &&
              ds.labels[3] == 2 && strcmp(ds.class_names[0], "bird") == 0,
          "cat, dog relabelled as the model's 1, 2 (matched %d, %d classes, labels %d %d)", matched,
          ds.num_classes, ds.labels[0], ds.labels[1]);
    rn_dataset_free(&ds);
    ds = named(2, odd, 2);
    CHECK(rn_dataset_match_classes(&ds, model, 3, &matched) == RN_ERR_MISMATCH &&
              strstr(rn_last_error(), "'fox'") && ds.labels[0] == 0 && ds.labels[1] == 1 &&
              ds.num_classes == 2,
          "a class the model lacks refused, the dataset unchanged: %s", rn_last_error());
    rn_dataset_free(&ds);
    ds = named(2, other, 2);
    CHECK(rn_dataset_match_classes(&ds, model, 3, &matched) == RN_OK && matched == 0 &&
              ds.num_classes == 2 && ds.labels[1] == 1 && strcmp(ds.class_names[0], "x") == 0,
          "no name matching: left by position (matched %d)", matched);
    rn_dataset_free(&ds);
    ds = named(3, model, 3);
    CHECK(rn_dataset_match_classes(&ds, model, 3, &matched) == RN_OK && matched == 3 &&
              ds.labels[2] == 2, "the same classes: unchanged");
    rn_dataset_free(&ds);
    /* a class without images (val labelled by train's classes) needs no match: bird, cat, dog
     * with images of cat and dog only, for a model of cat and dog */
    ds = named(3, model, 4);
    for (int i = 0; i < 4; i++)
        ds.labels[i] = 1 + i % 2;
    CHECK(rn_dataset_match_classes(&ds, some, 2, &matched) == RN_OK && matched == 2 &&
              ds.num_classes == 2 && ds.labels[0] == 0 && ds.labels[1] == 1 &&
              strcmp(ds.class_names[1], "dog") == 0,
          "an imageless class the model lacks is no mismatch (matched %d, %d classes): %s", matched,
          ds.num_classes, rn_last_error());
    rn_dataset_free(&ds);
    /* a '/' of the model's name, which no folder can hold, matches '_', '-' or ' ' */
    const char *fashion[] = {"T-shirt/top", "Trouser"}, *folders[] = {"T-shirt_top", "Trouser"},
               *wrong[] = {"T-shirt.top", "Trouser"};
    ds = named(2, folders, 2);
    CHECK(rn_dataset_match_classes(&ds, fashion, 2, &matched) == RN_OK && matched == 2,
          "T-shirt_top is the model's T-shirt/top: %s", rn_last_error());
    rn_dataset_free(&ds);
    ds = named(2, wrong, 2);
    CHECK(rn_dataset_match_classes(&ds, fashion, 2, &matched) == RN_ERR_MISMATCH,
          "T-shirt.top is not T-shirt/top");
    rn_dataset_free(&ds);
    /* a NULL among the class names: refused with a status (it had crashed in strdup) */
    const char *holed[] = {"a", NULL, "c"};
    uint8_t px[2 * 4] = {0};
    int32_t lab[2] = {0, 2};
    rn_dataset *made = (rn_dataset *)1;
    CHECK(rn_dataset_create(2, 1, 2, 2, 3, px, lab, holed, &made) == RN_ERR_ARG && !made &&
              strstr(rn_last_error(), "name 1 is NULL"), "a NULL class name refused: %s", rn_last_error());
}

static void test_resize(void) {
    uint8_t src[6 * 7], dst[13 * 3];
    for (int i = 0; i < 42; i++)
        src[i] = 77;
    CHECK(rn_resize_bilinear_u8(src, 1, 6, 7, dst, 13, 3) == RN_OK, "resize runs");
    int bad = 0;
    for (int i = 0; i < 39; i++)
        bad += dst[i] != 77;
    CHECK(bad == 0, "a constant image stays constant");
    for (int i = 0; i < 42; i++)
        src[i] = (uint8_t)(i * 5);
    uint8_t same[42];
    rn_resize_bilinear_u8(src, 1, 6, 7, same, 6, 7);
    CHECK(memcmp(src, same, 42) == 0, "same size is the identity");
    CHECK(rn_resize_bilinear_u8(src, 1, 6, 7, dst, 0, 3) == RN_ERR_ARG, "zero size refused");
}

/* Writes the cases that tools/check_resize_pil.py compares with PIL. */
static int resize_dump(const char *dir) {
    static const int fixed[][4] = {{28, 28, 224, 224}, {32, 32, 224, 224}, {28, 28, 96, 96},
                                   {224, 224, 32, 32}, {375, 500, 224, 224}, {1, 1, 5, 7},
                                   {9, 8, 1, 1}, {28, 28, 28, 40}, {17, 30, 50, 30},
                                   {300, 7, 13, 7}, {64, 64, 63, 65}, {2, 255, 3, 254}};
    int nfixed = (int)(sizeof fixed / sizeof fixed[0]), cases = 160;
    FILE *list = NULL;
    char path[1024];
    snprintf(path, sizeof path, "%s/cases.txt", dir);
    if (!(list = fopen(path, "w")))
        return 1;
    for (int k = 0; k < cases; k++) {
        int ih, iw, oh, ow, c = 1 + k % 4;
        if (k < nfixed) {
            ih = fixed[k][0], iw = fixed[k][1], oh = fixed[k][2], ow = fixed[k][3];
        } else {
            int big = k % 5 == 0 ? 200 : 40;
            ih = check_int(1, big), iw = check_int(1, big);
            oh = check_int(1, 40), ow = check_int(1, 40);
        }
        size_t in_n = (size_t)c * ih * iw, out_n = (size_t)c * oh * ow;
        uint8_t *in8 = malloc(in_n), *out8 = malloc(out_n);
        float *inf = malloc(in_n * 4), *outf = malloc(out_n * 4), *tmp = malloc(in_n * 4);
        int smooth = k % 3 == 0;   /* smooth images exercise rounding near .5 */
        for (size_t i = 0; i < in_n; i++) {
            in8[i] = smooth ? (uint8_t)((i % (size_t)iw) * 255 / (size_t)iw)
                            : (uint8_t)check_int(0, 255);
            inf[i] = check_uniform(-300.0f, 300.0f);
        }
        int ok = rn_resize_bilinear_u8(in8, c, ih, iw, out8, oh, ow) == RN_OK &&
                 rn_resize_bilinear_f32(inf, c, ih, iw, outf, oh, ow) == RN_OK;
        int64_t in_shape[3] = {c, ih, iw}, out_shape[3] = {c, oh, ow};
        for (size_t i = 0; i < in_n; i++)
            tmp[i] = in8[i];
        snprintf(path, sizeof path, "%s/u8_in_%d.npy", dir, k);
        ok = ok && rn_npy_write(path, tmp, 3, in_shape) == RN_OK;
        float *o8 = malloc(out_n * 4);
        for (size_t i = 0; i < out_n; i++)
            o8[i] = out8[i];
        snprintf(path, sizeof path, "%s/u8_out_%d.npy", dir, k);
        ok = ok && rn_npy_write(path, o8, 3, out_shape) == RN_OK;
        snprintf(path, sizeof path, "%s/f32_in_%d.npy", dir, k);
        ok = ok && rn_npy_write(path, inf, 3, in_shape) == RN_OK;
        snprintf(path, sizeof path, "%s/f32_out_%d.npy", dir, k);
        ok = ok && rn_npy_write(path, outf, 3, out_shape) == RN_OK;
        free(in8), free(out8), free(inf), free(outf), free(tmp), free(o8);
        if (!ok) {
            fprintf(stderr, "resize dump case %d: %s\n", k, rn_last_error());
            fclose(list);
            return 1;
        }
        fprintf(list, "%d\n", k);
    }
    fclose(list);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Main
 * ------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--resize-dump") == 0)
        return resize_dump(argv[2]);
    if (argc != 1) {
        fprintf(stderr, "usage: %s [--resize-dump DIR]\n", argv[0]);
        return 2;
    }
    if (!check_tmpdir("test_data", tmpdir, sizeof tmpdir))
        return 1;
    test_subset();
    test_idx_good();
    test_idx_malformed();
    test_idx_gzip_bounds();
    test_cifar();
    test_resize();
    test_match_classes();

    check_tmpdir_remove(tmpdir);
    return check_done("test_data");
}
