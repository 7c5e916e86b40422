/*
 * test_folder.c - image-folder datasets (torchvision ImageFolder layout)
 * through rn_folder_load and the loader.
 *
 * Runs `/usr/bin/python3 tools/make_image_folder.py DIR` (from the repository
 * root), which writes a small ImageFolder and torchvision's view of it, then
 * checks: classes, sample order and labels equal ImageFolder's; evaluation
 * batches equal torchvision's Resize(int(S/0.875)) + CenterCrop(S) +
 * ToTensor + Normalize tensors (RGB and "L"; and Resize(66), resize_size); training batches
 * (RandomResizedCrop + flip) are deterministic for a seed and a thread
 * count, differ across seeds, resume exactly from a saved state; a corrupt
 * file mid-epoch is a clean error naming it; broken folders fail naming the
 * folder. Exits non-zero on any failure; the last line reads
 * "test_folder: N passed, M failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resnet.h"
#include "check.h"
#include "data/augment.h"
#include "data/dataset.h"

#define S 64
#define SCRIPT "tools/make_image_folder.py"

static char tmpdir[256];

/* tmpdir/name in one of four static buffers. */
static const char *tmp(const char *name) {
    static char path[4][512];
    static int which;
    char *p = path[which = (which + 1) & 3];
    snprintf(p, sizeof path[0], "%s/%s", tmpdir, name);
    return p;
}

/* The lines of a text file (at most cap), malloc'ed; returns the count or -1. */
static int read_lines(const char *path, char **lines, int cap) {
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char buf[1024];
    int n = 0;
    while (n < cap && fgets(buf, sizeof buf, f)) {
        buf[strcspn(buf, "\n")] = '\0';
        lines[n++] = strdup(buf);
    }
    fclose(f);
    return n;
}

static void free_lines(char **lines, int n) {
    for (int i = 0; i < n; i++)
        free(lines[i]);
}

/* A float32 .npy file with the given element count, or NULL. */
static float *load_npy(const char *name, size_t want) {
    float *data = NULL;
    int ndim;
    int64_t shape[RN_NPY_MAX_DIMS];
    if (rn_npy_read(tmp(name), &data, &ndim, shape) != RN_OK) {
        CHECK(0, "reading %s: %s", name, rn_last_error());
        return NULL;
    }
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    CHECK(n == want, "%s holds %zu values, expected %zu", name, n, want);
    if (n != want) {
        free(data);
        return NULL;
    }
    return data;
}

static rn_loader_config config(int batch, uint64_t seed) {
    rn_loader_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.batch_size = batch;
    cfg.image_size = S;
    cfg.seed = seed;
    return cfg;
}

/* Runs `epochs` epochs (plus their end markers) of a loader into x and
 * labels (room for all); returns the images made, or -1 on failure. */
static int run_loader(const rn_dataset *ds, const rn_loader_config *cfg, int epochs, float *x,
                      int32_t *labels) {
    rn_loader *l;
    if (rn_loader_create(ds, cfg, &l) != RN_OK) {
        CHECK(0, "loader: %s", rn_last_error());
        return -1;
    }
    int c, h, w, total = 0, n;
    rn_loader_shape(l, &c, &h, &w);
    size_t per = (size_t)c * h * w;
    float *batch = malloc((size_t)cfg->batch_size * per * sizeof *batch);
    int32_t *lab = malloc((size_t)cfg->batch_size * sizeof *lab);
    for (int e = 0; e < epochs; e++) {
        while (rn_loader_next(l, batch, lab, &n) == RN_OK && n > 0) {
            memcpy(x + (size_t)total * per, batch, (size_t)n * per * sizeof *x);
            memcpy(labels + total, lab, (size_t)n * sizeof *lab);
            total += n;
        }
        if (n != 0)
            total = -1;
    }
    free(batch);
    free(lab);
    rn_loader_free(l);
    return total;
}

static float max_abs_diff(const float *a, const float *b, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m))
            m = d;
    }
    return m;
}

/* ---------------------------------------------------------------------------
 * Classes, samples and labels
 * ------------------------------------------------------------------------- */

static void test_listing(void) {
    char *classes[8];
    int nc = read_lines(tmp("classes.txt"), classes, 8);
    CHECK(nc == 3, "classes.txt: %d lines", nc);
    for (int train = 1; train >= 0; train--) {
        rn_dataset ds;
        if (rn_dataset_load(tmp("good"), "folder", train, &ds) != RN_OK) {
            CHECK(0, "loading the %s split: %s", train ? "train" : "val", rn_last_error());
            continue;
        }
        CHECK(ds.storage == RN_DATASET_FILES && ds.channels == 3 && ds.height == 224 &&
                  ds.width == 224 && !ds.pixels && ds.paths,
              "folder dataset: storage %d, %dx%dx%d", ds.storage, ds.channels, ds.height, ds.width);
        int same = ds.num_classes == nc;
        for (int c = 0; same && c < nc; c++)
            same = strcmp(ds.class_names[c], classes[c]) == 0;
        CHECK(same, "class names and order equal ImageFolder's (%d classes)", ds.num_classes);

        char *files[64];
        int nf = read_lines(tmp(train ? "train_files.txt" : "val_files.txt"), files, 64);
        float *labels = load_npy(train ? "train_labels.npy" : "val_labels.npy", (size_t)nf);
        size_t prefix = strlen(tmp("good/"));
        int order = ds.count == nf && nf == 18, lab = order && labels;
        for (int i = 0; order && i < nf; i++)
            order = strlen(ds.paths[i]) > prefix && strcmp(ds.paths[i] + prefix, files[i]) == 0;
        for (int i = 0; lab && i < nf; i++)
            lab = ds.labels[i] == (int32_t)labels[i];
        CHECK(order, "%s: the %d samples in ImageFolder's order (%d listed)",
              train ? "train" : "val", ds.count, nf);
        CHECK(lab, "%s: labels equal ImageFolder's targets", train ? "train" : "val");
        free(labels);
        free_lines(files, nf);

        float mean[4], std[4];
        CHECK(rn_dataset_default_normalize(&ds, mean, std) == 1 && mean[0] == 0.485f &&
                  std[2] == 0.225f, "folders default to ImageNet's normalisation");
        rn_dataset_free(&ds);
    }
    rn_dataset mem = {0};
    float mean[4], std[4];
    CHECK(rn_dataset_default_normalize(&mem, mean, std) == 0, "no default for in-memory data");
    free_lines(classes, nc);
}

/* ---------------------------------------------------------------------------
 * Evaluation batches against torchvision
 * ------------------------------------------------------------------------- */

static void test_eval(const char *kind, const char *npy, int channels, int resize) {
    rn_dataset ds;
    if (rn_dataset_load(tmp("good"), kind, 0, &ds) != RN_OK) {
        CHECK(0, "%s: %s", kind, rn_last_error());
        return;
    }
    CHECK(ds.channels == channels, "%s: %d channels", kind, ds.channels);
    size_t per = (size_t)channels * S * S, n = (size_t)ds.count;
    float *want = load_npy(npy, n * per);
    float *x = malloc(n * per * sizeof *x), *x1 = malloc(n * per * sizeof *x);
    int32_t *lab = malloc(n * sizeof *lab);
    rn_loader_config cfg = config(5, 1);   /* 18 images: batches of 5, 5, 5, 3 */
    cfg.normalize = rn_dataset_default_normalize(&ds, cfg.mean, cfg.std);
    cfg.resize_size = resize;
    int got = run_loader(&ds, &cfg, 1, x, lab);
    CHECK(got == (int)n, "%s: one epoch gives %d of %zu images", kind, got, n);
    if (want && got == (int)n) {
        float tol = 2.0f / 255.0f / (channels == 1 ? 0.226f : 0.224f);
        float d = max_abs_diff(x, want, n * per);
        size_t exact = 0;
        for (size_t i = 0; i < n * per; i++)
            exact += x[i] == want[i];
        CHECK(d <= tol, "%s: eval batches vs torchvision: max |diff| %g > %g", kind, d, tol);
        printf("  %s eval vs torchvision: max |diff| %g, %.2f%% of values bit-identical\n", kind,
               (double)d, 100.0 * (double)exact / (double)(n * per));
        int labels_ok = 1;
        for (size_t i = 0; i < n; i++)
            labels_ok &= lab[i] == ds.labels[i];
        CHECK(labels_ok, "%s: unshuffled labels in dataset order", kind);
    }
    /* One thread gives the same batches as several. */
    rn_set_threads(1);
    int got1 = run_loader(&ds, &cfg, 1, x1, lab);
    rn_set_threads(0);
    CHECK(got1 == got && memcmp(x, x1, n * per * sizeof *x) == 0,
          "%s: 1 thread and %d threads agree", kind, rn_get_threads());

    /* Flip only: every image is the eval image or its mirror, both occur. */
    if (want) {
        cfg.flip = 1;
        int got2 = run_loader(&ds, &cfg, 1, x1, lab);
        int same = 0, mirrored = 0, other = 0;
        for (size_t i = 0; got2 == (int)n && i < n; i++) {
            const float *a = x1 + i * per, *b = x + i * per;
            int eq = memcmp(a, b, per * sizeof *a) == 0, mir = 1;
            for (size_t r = 0; r < per / S && mir; r++)
                for (int k = 0; k < S && mir; k++)
                    mir = a[r * S + k] == b[r * S + S - 1 - k];
            same += eq, mirrored += mir && !eq, other += !eq && !mir;
        }
        CHECK(got2 == (int)n && other == 0 && same > 0 && mirrored > 0,
              "%s: flip gives the image or its mirror (%d same, %d mirrored, %d other)", kind,
              same, mirrored, other);
    }
    free(want);
    free(x);
    free(x1);
    free(lab);
    rn_dataset_free(&ds);
}

/* ---------------------------------------------------------------------------
 * Training batches
 * ------------------------------------------------------------------------- */

static void test_train(void) {
    rn_dataset ds;
    if (rn_dataset_load(tmp("good"), "folder", 1, &ds) != RN_OK) {
        CHECK(0, "train split: %s", rn_last_error());
        return;
    }
    const int epochs = 2, n = 18 * epochs, B = 4;
    size_t per = (size_t)3 * S * S;
    float *x[4];
    int32_t *lab[4];
    for (int i = 0; i < 4; i++) {
        x[i] = malloc((size_t)n * per * sizeof(float));
        lab[i] = malloc((size_t)n * sizeof(int32_t));
    }
    rn_loader_config cfg = config(B, 7);
    cfg.shuffle = cfg.flip = 1;
    cfg.crop_padding = 1;   /* folders: RandomResizedCrop */
    cfg.normalize = rn_dataset_default_normalize(&ds, cfg.mean, cfg.std);

    rn_loader *l;
    CHECK(rn_loader_create(&ds, &cfg, &l) == RN_OK, "train loader: %s", rn_last_error());
    int c, h, w;
    rn_loader_shape(l, &c, &h, &w);
    CHECK(c == 3 && h == S && w == S && rn_loader_steps(l) == 5, "shape %dx%dx%d, %d steps", c,
          h, w, rn_loader_steps(l));
    rn_loader_free(l);

    int got = run_loader(&ds, &cfg, epochs, x[0], lab[0]);
    CHECK(got == n, "two epochs give %d images", got);
    /* Ranges: (0 - mean) / std .. (1 - mean) / std per channel, hit closely. */
    int in_range = 1;
    float lo = 1e9f, hi = -1e9f;
    for (int i = 0; i < got; i++)
        for (int ch = 0; ch < 3; ch++) {
            const float *p = x[0] + (size_t)i * per + (size_t)ch * S * S;
            float a = (0.0f - cfg.mean[ch]) / cfg.std[ch], b = (1.0f - cfg.mean[ch]) / cfg.std[ch];
            for (int k = 0; k < S * S; k++) {
                in_range &= p[k] >= a - 1e-6f && p[k] <= b + 1e-6f;
                lo = p[k] < lo ? p[k] : lo;
                hi = p[k] > hi ? p[k] : hi;
            }
        }
    CHECK(in_range && lo < -1.5f && hi > 2.0f, "values in the normalised range [%g, %g]", lo, hi);
    /* Each epoch holds every image once: 6 labels of each class. */
    for (int e = 0; e < epochs; e++) {
        int hist[3] = {0}, bad = 0;
        for (int i = 0; i < 18; i++) {
            int32_t v = lab[0][e * 18 + i];
            if (v < 0 || v > 2)
                bad++;
            else
                hist[v]++;
        }
        CHECK(!bad && hist[0] == 6 && hist[1] == 6 && hist[2] == 6, "epoch %d labels balanced", e);
    }
    CHECK(memcmp(lab[0], lab[0] + 18, 18 * sizeof(int32_t)) != 0 ||
              memcmp(x[0], x[0] + 18 * per, 18 * per * sizeof(float)) != 0,
          "the two epochs differ");

    /* Same seed, one thread: the same batches. */
    rn_set_threads(1);
    got = run_loader(&ds, &cfg, epochs, x[1], lab[1]);
    rn_set_threads(0);
    CHECK(got == n && memcmp(x[0], x[1], (size_t)n * per * sizeof(float)) == 0 &&
              memcmp(lab[0], lab[1], (size_t)n * sizeof(int32_t)) == 0,
          "same seed, 1 thread vs %d: identical batches", rn_get_threads());

    /* Another seed: other batches. */
    rn_loader_config cfg2 = cfg;
    cfg2.seed = 8;
    got = run_loader(&ds, &cfg2, 1, x[2], lab[2]);
    CHECK(got == 18 && memcmp(x[0], x[2], 18 * per * sizeof(float)) != 0, "seed 8 differs");

    /* Without the crop and flip (same order): other pixels, same labels. */
    rn_loader_config cfg3 = cfg;
    cfg3.crop_padding = cfg3.flip = 0;
    got = run_loader(&ds, &cfg3, 1, x[3], lab[3]);
    int differ = 0;
    for (int i = 0; got == 18 && i < 18; i++)
        differ += memcmp(x[0] + i * per, x[3] + i * per, per * sizeof(float)) != 0;
    CHECK(got == 18 && memcmp(lab[0], lab[3], 18 * sizeof(int32_t)) == 0 && differ >= 16,
          "RandomResizedCrop changes the images (%d of 18)", differ);

    /* Resume: a new loader at (1, 8) continues with images 26.. of the run. */
    rn_loader_state st = {1, 8};
    CHECK(rn_loader_create(&ds, &cfg, &l) == RN_OK && rn_loader_set_state(l, &st) == RN_OK,
          "set state: %s", rn_last_error());
    float *batch = malloc((size_t)B * per * sizeof(float));
    int32_t bl[4];
    int pos = 18 + 8, ok = 1, k;
    while (ok && rn_loader_next(l, batch, bl, &k) == RN_OK && k > 0) {
        ok = memcmp(batch, x[0] + (size_t)pos * per, (size_t)k * per * sizeof(float)) == 0 &&
             memcmp(bl, lab[0] + pos, (size_t)k * sizeof(int32_t)) == 0;
        pos += k;
    }
    rn_loader_get_state(l, &st);
    CHECK(ok && pos == n && st.epoch == 2 && st.position == 0,
          "restored state resumes exactly (to %d, state %lld/%lld)", pos, (long long)st.epoch,
          (long long)st.position);
    rn_loader_free(l);
    free(batch);

    rn_loader_config badcfg = cfg;
    badcfg.crop_scale[0] = 0.5f, badcfg.crop_scale[1] = 0.1f;
    l = NULL;
    CHECK(rn_loader_create(&ds, &badcfg, &l) == RN_ERR_ARG && !l, "a bad crop scale is refused");
    for (int i = 0; i < 4; i++) {
        free(x[i]);
        free(lab[i]);
    }
    rn_dataset_free(&ds);
}

/* ---------------------------------------------------------------------------
 * Broken folders
 * ------------------------------------------------------------------------- */

/* TrivialAugmentWide on image files: each image the crop (RandomResizedCrop, or the evaluation's
 * resize and centre crop) and flip's as without it, then one of its operations at one of its
 * magnitudes (found among all of them); the same twice. */
static void test_train_trivial(void) {
    rn_dataset ds;
    if (rn_dataset_load(tmp("good"), "folder", 1, &ds) != RN_OK) {
        CHECK(0, "train split: %s", rn_last_error());
        return;
    }
    enum { N = 18 };
    const size_t per = (size_t)3 * S * S;
    float *x[3];
    int32_t lab[N];
    static uint8_t plain[3 * S * S], aug[3 * S * S], cand[3 * S * S], scratch[3 * S * S];
    for (int crop = 0; crop <= 1; crop++) {
        const int bilinear = crop; /* the evaluation's crop with nearest, RandomResizedCrop with bilinear */
        for (int run = 0; run < 3; run++) {
            rn_loader_config cfg = config(N, 5);
            cfg.flip = 1;
            cfg.crop_padding = crop;
            cfg.auto_augment = run > 0 ? RN_AUTO_AUGMENT_TA_WIDE : RN_AUTO_AUGMENT_NONE;
            cfg.auto_augment_bilinear = bilinear;
            x[run] = malloc(N * per * sizeof(float));
            CHECK(run_loader(&ds, &cfg, 1, x[run], lab) == N, "crop %d, auto_augment %d: an epoch", crop,
                  run > 0);
        }
        int found = 0, changed = 0;
        for (int i = 0; i < N; i++) {
            for (size_t k = 0; k < per; k++) {
                plain[k] = (uint8_t)(x[0][i * per + k] * 255.0f + 0.5f);
                aug[k] = (uint8_t)(x[1][i * per + k] * 255.0f + 0.5f);
            }
            changed += memcmp(plain, aug, per) != 0;
            int hit = 0;
            for (int op = 0; op < RN_AUG_WIDE_OPS && !hit; op++)
                for (int b = 0; b < (rn_augment_op_has_magnitude(op) ? RN_AUG_BINS : 1) && !hit; b++)
                    for (int sign = 0; sign < (rn_augment_op_signed(op) ? 2 : 1) && !hit; sign++) {
                        memcpy(cand, plain, per);
                        const double m = rn_augment_magnitude(op, b);
                        rn_augment_apply(cand, 3, S, S, op, sign ? -m : m, bilinear, scratch);
                        hit = memcmp(cand, aug, per) == 0;
                    }
            found += hit;
        }
        CHECK(found == N, "crop %d: %d of %d images are one operation of the crop and flip's image", crop,
              found, N);
        CHECK(changed > N / 2, "crop %d: %d of %d images changed", crop, changed, N);
        CHECK(memcmp(x[1], x[2], N * per * sizeof(float)) == 0, "crop %d: the same augmentation twice", crop);
        for (int run = 0; run < 3; run++)
            free(x[run]);
    }
    rn_dataset_free(&ds);
}

static void test_corrupt(void) {
    rn_dataset ds;
    if (rn_dataset_load(tmp("corrupt"), "folder", 1, &ds) != RN_OK) {
        CHECK(0, "corrupt folder lists: %s", rn_last_error());
        return;
    }
    CHECK(ds.count == 8, "corrupt folder: %d files", ds.count);
    rn_loader_config cfg = config(4, 3);
    cfg.image_size = 32;
    rn_loader *l;
    if (rn_loader_create(&ds, &cfg, &l) != RN_OK) {
        CHECK(0, "corrupt loader: %s", rn_last_error());
        rn_dataset_free(&ds);
        return;
    }
    static float x[4 * 3 * 32 * 32];
    int32_t lab[4];
    int n = -1;
    CHECK(rn_loader_next(l, x, lab, &n) == RN_OK && n == 4, "the first batch is fine");
    for (int attempt = 0; attempt < 3; attempt++) {
        n = -1;
        rn_status st = rn_loader_next(l, x, lab, &n);
        rn_loader_state ls;
        rn_loader_get_state(l, &ls);
        CHECK(st != RN_OK && n == 0 && strstr(rn_last_error(), "b/2_truncated.jpg") &&
                  ls.epoch == 0 && ls.position == 4,
              "try %d: the corrupt file is named (status %d, n %d, at %lld): %s", attempt, st, n,
              (long long)ls.position, rn_last_error());
    }
    printf("  corrupt file: %s\n", rn_last_error());
    rn_loader_free(l);
    rn_dataset_free(&ds);
}

static void expect_fail(const char *dir, int train, const char *needle, const char *what) {
    rn_dataset ds;
    rn_status st = rn_dataset_load(tmp(dir), "folder", train, &ds);
    CHECK(st != RN_OK && strstr(rn_last_error(), needle) && ds.count == 0 && !ds.paths,
          "%s fails naming '%s': %s", what, needle, rn_last_error());
    rn_dataset_free(&ds);
}

static void test_broken(void) {
    expect_fail("emptyclass", 1, "emptyclass/train/b", "an empty class");
    expect_fail("nosplit", 0, "nosplit/val", "a missing split");
    expect_fail("bmp", 1, "y.bmp", "a .bmp file");
    expect_fail("noclasses", 1, "noclasses/train: no class folders", "a split without classes");
    expect_fail("absent", 1, "absent/train", "a missing folder");
    expect_fail("extra", 0, "extra/val/z: a class the training split", "a val class train lacks");
    /* val/{a,c} beside train/{a,b,c}: c is label 2, as the model trained on train knows it */
    rn_dataset ds;
    CHECK(rn_dataset_load(tmp("subset"), "folder", 0, &ds) == RN_OK && ds.count == 2 &&
              ds.num_classes == 3 && ds.labels[0] == 0 && ds.labels[1] == 2 &&
              strcmp(ds.class_names[2], "c") == 0,
          "val's classes by train's names: %d images, %d classes, labels %d %d (%s)", ds.count,
          ds.num_classes, ds.count > 0 ? ds.labels[0] : -1, ds.count > 1 ? ds.labels[1] : -1,
          rn_last_error());
    rn_dataset_free(&ds);
    rn_folder_options opt = {.channels = 2};
    CHECK(rn_folder_load(tmp("good"), 1, &opt, &ds) == RN_ERR_ARG, "2 channels refused");
    opt.channels = 1, opt.image_size = 48;
    CHECK(rn_folder_load(tmp("good"), 1, &opt, &ds) == RN_OK && ds.channels == 1 &&
              ds.height == 48 && ds.count == 18,
          "options: gray, size 48: %s", rn_last_error());
    rn_dataset_free(&ds);
}

/* ---------------------------------------------------------------------------
 * Main
 * ------------------------------------------------------------------------- */

int main(void) {
    if (!check_tmpdir("test_folder", tmpdir, sizeof tmpdir))
        return 1;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -W ignore " SCRIPT " '%s'", tmpdir);
    int made = access(SCRIPT, R_OK) == 0 && system(cmd) == 0;
    CHECK(made, "%s failed (run from the repository root with /usr/bin/python3, torchvision)",
          cmd);
    if (made) {
        test_listing();
        test_eval("folder", "val_eval.npy", 3, 0);
        test_eval("folder-gray", "val_gray.npy", 1, 0);
        test_eval("folder", "val_resize66.npy", 3, 66);
        test_train();
        test_train_trivial();
        test_corrupt();
        test_broken();
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    return check_done("test_folder");
}
