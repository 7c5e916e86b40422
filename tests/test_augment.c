/*
 * test_augment.c - TrivialAugmentWide's, RandAugment's and AutoAugment's operations against
 * torchvision's.
 *
 * Runs `/usr/bin/python3 tools/augment_ref.py DIR` (from the repository
 * root; a failure of the script fails the test), then:
 *   - the magnitude tables equal torch's float32 values (within their last
 *     bit, which torch's own vectorised linspace rounds by its vector width);
 *   - every operation at every magnitude (both signs where torchvision draws
 *     one) on six images (Fashion-MNIST, gray, RGB, not square, flat) equals
 *     torchvision's _apply_op on the PIL image, byte for byte;
 *   - rn_trivial_augment's draws: each operation, bin and sign about equally
 *     often, the same draws from the same seed, the image what
 *     rn_augment_apply makes of the drawn operation;
 *   - RandAugment's magnitude tables for four image sizes equal torch's, and
 *     its draws: two operations in turn, each about equally often;
 *   - AutoAugment's tables likewise, its three policies step for step as
 *     torchvision lists them, every sub-policy of each applied as
 *     torchvision's forward applies it given the same draws (both steps, one,
 *     the other; both signs; the probability's float32 boundary) on the six
 *     images, byte for byte, and its draws: sub-policies about equally often,
 *     each step as often as its probability, the image the drawn sub-policy's.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "data/augment.h"
#include "resnet.h"

#define PY "/usr/bin/python3"
#define MAX_CASES 2048

static char tmpdir[512];

static float *load(const char *name, int64_t *shape, int *ndim) {
    char path[768];
    snprintf(path, sizeof path, "%s/%s.npy", tmpdir, name);
    float *data = NULL;
    rn_status st = rn_npy_read(path, &data, ndim, shape);
    CHECK(st == RN_OK, "read %s: %s", path, rn_last_error());
    return st == RN_OK ? data : NULL;
}

/* Fixture image `name`'s bytes (NAME_in.npy, c x h x w) and torchvision's n results of it
 * (NAME_SUFFIX.npy) into *want; NULL, after a failed check, where either is missing or misshapen. */
static uint8_t *fixture(const char *name, const char *suffix, int c, int h, int w, int n, float **want) {
    char key[96];
    int64_t shape[RN_NPY_MAX_DIMS];
    int ndim = 0;
    snprintf(key, sizeof key, "%s_in", name);
    float *in = load(key, shape, &ndim);
    snprintf(key, sizeof key, "%s_%s", name, suffix);
    float *out = load(key, shape, &ndim);
    const size_t size = (size_t)c * h * w;
    uint8_t *src = NULL;
    if (in && out && ndim == 4 && shape[0] == n && (size_t)(shape[1] * shape[2] * shape[3]) == size &&
        (src = malloc(size)) != NULL) {
        for (size_t i = 0; i < size; i++)
            src[i] = (uint8_t)in[i];
        *want = out;
    } else {
        CHECK(0, "%s: fixture %s shapes", name, suffix);
        free(out);
    }
    free(in);
    return src;
}

static void test_tables(void) {
    int64_t shape[RN_NPY_MAX_DIMS];
    int ndim = 0;
    float *t = load("tables", shape, &ndim);
    if (!t)
        return;
    CHECK(ndim == 2 && shape[0] == 5 && shape[1] == RN_AUG_BINS, "tables: shape");
    const int ops[5] = {RN_AUG_SHEAR_X, RN_AUG_TRANSLATE_X, RN_AUG_ROTATE, RN_AUG_SOLARIZE,
                        RN_AUG_POSTERIZE};
    const int same[5] = {RN_AUG_BRIGHTNESS, RN_AUG_TRANSLATE_Y, RN_AUG_ROTATE, RN_AUG_SOLARIZE,
                         RN_AUG_POSTERIZE};
    int bad = 0;
    for (int k = 0; k < 5; k++)
        for (int b = 0; b < RN_AUG_BINS; b++) {
            /* within the last bit: torch's vectorised linspace rounds some entries otherwise on a
             * CPU where its dispatch picks another vector width than where the table was taken */
            const double want = t[k * RN_AUG_BINS + b], tol = fabs(want) * 1.2e-7;
            if (!(fabs(rn_augment_magnitude(ops[k], b) - want) <= tol) ||
                rn_augment_magnitude(same[k], b) != rn_augment_magnitude(ops[k], b)) {
                if (bad++ < 5)
                    printf("  %s bin %d: %.9g, torch %.9g\n", rn_augment_op_name(ops[k]), b,
                           rn_augment_magnitude(ops[k], b), want);
            }
        }
    CHECK(!bad, "%d magnitudes differ from torch's tables", bad);
    free(t);
}

/* RandAugment's (31 bins) or AutoAugment's (10) tables for four image sizes: torch's float32 values
 * within their last bit (torch's vectorised linspace rounds some entries otherwise than its scalar
 * rule, and how depends on the vector width its CPU dispatch picks: the scalar rule is the one value
 * it has on every CPU) */
static void test_space_tables(const char *what, const char *file, int bins,
                              double (*magnitude)(int, int, int, int)) {
    int64_t shape[RN_NPY_MAX_DIMS];
    int ndim = 0;
    float *t = load(file, shape, &ndim);
    if (!t)
        return;
    CHECK(ndim == 3 && shape[0] == 4 && shape[1] == 7 && shape[2] == bins, "%s: shape", file);
    char path[768];
    snprintf(path, sizeof path, "%s/ra_sizes.txt", tmpdir);
    FILE *f = fopen(path, "r");
    const int ops[7] = {RN_AUG_SHEAR_X, RN_AUG_TRANSLATE_X, RN_AUG_TRANSLATE_Y, RN_AUG_ROTATE,
                        RN_AUG_BRIGHTNESS, RN_AUG_POSTERIZE, RN_AUG_SOLARIZE};
    int bad = 0, sizes = 0, h, w;
    while (f && sizes < 4 && fscanf(f, "%d %d", &h, &w) == 2) {
        for (int k = 0; k < 7; k++)
            for (int b = 0; b < bins; b++) {
                const float want = t[(sizes * 7 + k) * bins + b];
                const float got = (float)magnitude(ops[k], b, h, w);
                const int ok = fabsf(got - want) <= fabsf(want) * 1.2e-7f;
                if (!ok && bad++ < 5)
                    printf("  %s %dx%d %s bin %d: %.9g, torch %.9g\n", what, h, w,
                           rn_augment_op_name(ops[k]), b, got, want);
            }
        sizes++;
    }
    if (f)
        fclose(f);
    CHECK(sizes == 4 && !bad, "%s: %d magnitudes differ from torch's (%d sizes)", what, bad, sizes);
    CHECK(magnitude(RN_AUG_COLOR, 7, 28, 28) == magnitude(RN_AUG_SHARPNESS, 7, 5, 5) &&
              magnitude(RN_AUG_CONTRAST, 7, 28, 28) == magnitude(RN_AUG_BRIGHTNESS, 7, 5, 5) &&
              magnitude(RN_AUG_SHEAR_Y, 7, 28, 28) == magnitude(RN_AUG_SHEAR_X, 7, 5, 5) &&
              magnitude(RN_AUG_EQUALIZE, 7, 28, 28) == 0.0 &&
              magnitude(RN_AUG_INVERT, 7, 28, 28) == 0.0 && magnitude(RN_AUG_ROTATE, bins, 28, 28) == 0.0,
          "%s: the colour operations and the shears share a table; equalize, invert and bins out "
          "of range have none", what);
    free(t);
}

/* AutoAugment's three policies as torchvision lists them, step for step */
static void test_aa_policies(void) {
    char path[768];
    snprintf(path, sizeof path, "%s/aa_policies.txt", tmpdir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "open %s", path);
    if (!f)
        return;
    int policy, id, k, op, bin, steps = 0, bad = 0;
    double prob;
    while (fscanf(f, "%d %d %d %d %lf %d", &policy, &id, &k, &op, &prob, &bin) == 6) {
        const rn_aa_step *s = rn_auto_augment_subpolicy(policy, id);
        const int ok = s && k >= 0 && k < 2 && s[k].op == op && s[k].prob == (float)prob &&
                       s[k].bin == bin;
        if (!ok && bad++ < 5)
            printf("  AutoAugment %s sub-policy %d step %d: torchvision's (%s, %g, %d)\n",
                   rn_auto_augment_policy_name(policy), id, k, rn_augment_op_name(op), prob, bin);
        steps++;
    }
    fclose(f);
    CHECK(steps == RN_AA_POLICIES * RN_AA_SUBPOLICIES * 2 && !bad,
          "AutoAugment: %d of %d policy steps differ from torchvision's", bad, steps);
    CHECK(!rn_auto_augment_subpolicy(RN_AA_POLICIES, 0) && !rn_auto_augment_subpolicy(0, -1) &&
              !rn_auto_augment_subpolicy(0, RN_AA_SUBPOLICIES),
          "AutoAugment: sub-policies out of range are NULL");
}

/* AutoAugment's forward given torchvision's draws, on each image, against torchvision's */
static void test_aa_cases(void) {
    enum { MAX_AA = 512 };
    static int policy[MAX_AA], id[MAX_AA], sign[MAX_AA][2], bil[MAX_AA];
    static float probs[MAX_AA][2];
    char path[768], line[256];
    snprintf(path, sizeof path, "%s/aa_cases.txt", tmpdir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "open %s", path);
    if (!f)
        return;
    int n = 0;
    while (n < MAX_AA && fgets(line, sizeof line, f))
        if (sscanf(line, "%d %d %f %f %d %d %d", &policy[n], &id[n], &probs[n][0], &probs[n][1],
                   &sign[n][0], &sign[n][1], &bil[n]) == 7)
            n++;
    fclose(f);
    CHECK(n == RN_AA_POLICIES * RN_AA_SUBPOLICIES * 4, "%d AutoAugment cases, expected 300", n);
    snprintf(path, sizeof path, "%s/images.txt", tmpdir);
    f = fopen(path, "r");
    if (!f)
        return;
    int images = 0, bad = 0, unchanged = 0, compared = 0, c, h, w;
    char name[64];
    while (fgets(line, sizeof line, f) && sscanf(line, "%63s %d %d %d", name, &c, &h, &w) == 4) {
        float *out = NULL;
        uint8_t *src = fixture(name, "aa", c, h, w, n, &out);
        const size_t size = (size_t)c * h * w;
        if (src) {
            uint8_t *img = malloc(size), *scratch = malloc(size);
            for (int k = 0; k < n; k++) {
                memcpy(img, src, size);
                const int negative[2] = {sign[k][0] == 0, sign[k][1] == 0};
                rn_auto_augment_apply(img, c, h, w, policy[k], id[k], probs[k], negative, bil[k],
                                      scratch);
                const float *want = out + (size_t)k * size;
                size_t diff = 0, same = 0;
                for (size_t i = 0; i < size; i++) {
                    diff += img[i] != (uint8_t)want[i];
                    same += src[i] == (uint8_t)want[i];
                }
                if (diff && bad++ < 5)
                    printf("  %s AutoAugment %s sub-policy %d (%.9g %.9g, signs %d %d%s): %zu of %zu "
                           "bytes differ\n", name, rn_auto_augment_policy_name(policy[k]), id[k],
                           probs[k][0], probs[k][1], sign[k][0], sign[k][1],
                           bil[k] ? ", bilinear" : "", diff, size);
                unchanged += same == size;
                compared++;
            }
            free(src);
            free(img);
            free(scratch);
            images++;
        }
        free(out);
    }
    fclose(f);
    CHECK(images == 6 && !bad, "AutoAugment: %d of %d sub-policy applications differ from "
          "torchvision's (%d images)", bad, compared, images);
    /* the fixture has teeth: most applications change the image */
    CHECK(unchanged < compared / 4, "AutoAugment: %d of %d applications leave the image", unchanged,
          compared);
    printf("compared %d AutoAugment sub-policy applications with torchvision's\n", compared);
}

static int test_operations(void) {
    char path[768], line[256];
    snprintf(path, sizeof path, "%s/cases.txt", tmpdir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "open %s", path);
    if (!f)
        return 0;
    static int op[MAX_CASES], bil[MAX_CASES];
    static double mag[MAX_CASES];
    int n = 0;
    while (n < MAX_CASES && fgets(line, sizeof line, f))
        if (sscanf(line, "%d %lf %d", &op[n], &mag[n], &bil[n]) == 3)
            n++;
    fclose(f);
    CHECK(n == 624 + 5 * 31 * 2, "%d cases, expected 934 (624 nearest, 310 bilinear)", n);

    snprintf(path, sizeof path, "%s/images.txt", tmpdir);
    f = fopen(path, "r");
    CHECK(f != NULL, "open %s", path);
    if (!f)
        return 0;
    int images = 0, per_op_bad[RN_AUG_OPS] = {0}, per_op[RN_AUG_OPS] = {0}, compared = 0;
    char name[64];
    int c, h, w;
    while (fgets(line, sizeof line, f) && sscanf(line, "%63s %d %d %d", name, &c, &h, &w) == 4) {
        float *out = NULL;
        uint8_t *src = fixture(name, "out", c, h, w, n, &out);
        const size_t size = (size_t)c * h * w;
        if (src) {
            uint8_t *img = malloc(size), *scratch = malloc(size);
            for (int k = 0; k < n; k++) {
                memcpy(img, src, size);
                rn_augment_apply(img, c, h, w, op[k], mag[k], bil[k], scratch);
                const float *want = out + (size_t)k * size;
                size_t diff = 0, first = 0;
                for (size_t i = 0; i < size; i++)
                    if (img[i] != (uint8_t)want[i] && diff++ == 0)
                        first = i;
                if (diff && per_op_bad[op[k]]++ < 3)
                    printf("  %s %s %.9g%s: %zu of %zu bytes differ (first at %zu: %d, torchvision "
                           "%d)\n", name, rn_augment_op_name(op[k]), mag[k], bil[k] ? " bilinear" : "",
                           diff, size, first, img[first], (int)want[first]);
                compared++;
                per_op[op[k] >= 0 && op[k] < RN_AUG_OPS ? op[k] : 0]++;
            }
            free(src);
            free(img);
            free(scratch);
            images++;
        }
        free(out);
    }
    fclose(f);
    for (int o = 0; o < RN_AUG_OPS; o++)
        CHECK(per_op_bad[o] == 0 && per_op[o] > 0, "%s: %d cases of %d differ from torchvision's",
              rn_augment_op_name(o), per_op_bad[o], per_op[o]);
    CHECK(images == 6, "%d images compared, expected 6", images);
    return compared;
}

/* the draws: torchvision draws the operation, the bin and the sign uniformly */
static void test_draws(void) {
    enum { N = 28000, C = 3, H = 12, W = 12 };
    int ops[RN_AUG_WIDE_OPS] = {0}, negative = 0, signed_draws = 0, bins[RN_AUG_BINS] = {0},
        binned = 0;
    uint8_t img[C * H * W], again[C * H * W], ref[C * H * W], scratch[C * H * W];
    rn_rng r, r2;
    rn_rng_seed(&r, 11);
    rn_rng_seed(&r2, 11);
    int mismatch = 0, differs = 0;
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < C * H * W; k++)
            img[k] = again[k] = ref[k] = (uint8_t)(k * 37 + i);
        int op = -1, op2 = -1;
        double m = 0, m2 = 0;
        rn_trivial_augment(img, C, H, W, 0, &r, scratch, &op, &m);
        rn_trivial_augment(again, C, H, W, 0, &r2, scratch, &op2, &m2);
        mismatch += op != op2 || m != m2 || memcmp(img, again, sizeof img) != 0;
        rn_augment_apply(ref, C, H, W, op, m, 0, scratch);
        differs += memcmp(img, ref, sizeof img) != 0;
        ops[op]++;
        if (rn_augment_op_signed(op)) {
            signed_draws++;
            negative += signbit(m) != 0; /* bin 0 is -0.0 */
        }
        if (op == RN_AUG_ROTATE) { /* magnitude 4.5 x bin */
            bins[(int)fabs(m / 4.5)]++;
            binned++;
        }
    }
    CHECK(!mismatch, "the same seed drew otherwise %d times", mismatch);
    CHECK(!differs, "%d drawn images differ from the drawn operation applied", differs);
    for (int o = 0; o < RN_AUG_WIDE_OPS; o++)
        CHECK(fabs(ops[o] - N / 14.0) < 5 * sqrt(N / 14.0), "%s drawn %d times of %d",
              rn_augment_op_name(o), ops[o], N);
    CHECK(fabs(negative - signed_draws / 2.0) < 5 * sqrt(signed_draws / 4.0),
          "%d of %d signed draws negative", negative, signed_draws);
    int low = binned, high = 0;
    for (int b = 0; b < RN_AUG_BINS; b++) {
        low = bins[b] < low ? bins[b] : low;
        high = bins[b] > high ? bins[b] : high;
    }
    CHECK(low > binned / 31 / 2 && high < binned / 31 * 2, "rotation bins drawn %d to %d times of %d",
          low, high, binned);
}

/* RandAugment's draws: two operations a call, each about equally often, signs half negative; the
 * same from the same seed; the image the two drawn operations applied in turn (replayed here) */
static void test_ra_draws(void) {
    enum { N = 14000, C = 1, H = 10, W = 10 };
    int ops[RN_AUG_WIDE_OPS] = {0}, mismatch = 0;
    uint8_t img[C * H * W], ref[C * H * W], scratch[C * H * W];
    rn_rng r, replay;
    rn_rng_seed(&r, 3);
    rn_rng_seed(&replay, 3);
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < C * H * W; k++)
            img[k] = ref[k] = (uint8_t)(k * 11 + i * 7);
        rn_rand_augment(img, C, H, W, 2, 9, 1, &r, scratch);
        for (int k = 0; k < 2; k++) { /* torchvision's order: the operation, then the sign */
            const int op = (int)(rn_rng_next(&replay) % RN_AUG_WIDE_OPS);
            double m = rn_rand_augment_magnitude(op, 9, H, W);
            if (rn_augment_op_signed(op) && (rn_rng_next(&replay) & 1))
                m = -m;
            rn_augment_apply(ref, C, H, W, op, m, 1, scratch);
            ops[op]++;
        }
        mismatch += memcmp(img, ref, sizeof img) != 0;
    }
    CHECK(!mismatch, "RandAugment: %d images not the two drawn operations in turn", mismatch);
    for (int o = 0; o < RN_AUG_WIDE_OPS; o++)
        CHECK(fabs(ops[o] - 2.0 * N / 14) < 5 * sqrt(2.0 * N / 14), "RandAugment: %s drawn %d times of %d",
              rn_augment_op_name(o), ops[o], 2 * N);
}

/* AutoAugment's draws: each sub-policy about equally often, each step applied as often as its
 * probability, the same from the same seed; the image the drawn sub-policy's (replayed here in
 * torchvision's order: the sub-policy, two probabilities, two signs) */
static void test_aa_draws(void) {
    enum { N = 25000, C = 3, H = 9, W = 11 };
    int ids[RN_AA_SUBPOLICIES] = {0}, mismatch = 0;
    double applied = 0.0, expected = 0.0;
    uint8_t img[C * H * W], ref[C * H * W], scratch[C * H * W];
    rn_rng r, replay;
    for (int policy = 0; policy < RN_AA_POLICIES; policy++) {
        rn_rng_seed(&r, 5 + (uint64_t)policy);
        rn_rng_seed(&replay, 5 + (uint64_t)policy);
        for (int i = 0; i < N / RN_AA_POLICIES; i++) {
            for (int k = 0; k < C * H * W; k++)
                img[k] = ref[k] = (uint8_t)(k * 13 + i * 5);
            rn_auto_augment(img, C, H, W, policy, i & 1, &r, scratch);
            const int id = (int)(rn_rng_next(&replay) % RN_AA_SUBPOLICIES);
            float probs[2];
            int negative[2];
            probs[0] = rn_rng_uniform(&replay);
            probs[1] = rn_rng_uniform(&replay);
            negative[0] = (int)(rn_rng_next(&replay) & 1);
            negative[1] = (int)(rn_rng_next(&replay) & 1);
            rn_auto_augment_apply(ref, C, H, W, policy, id, probs, negative, i & 1, scratch);
            mismatch += memcmp(img, ref, sizeof img) != 0;
            ids[id]++;
            const rn_aa_step *s = rn_auto_augment_subpolicy(policy, id);
            for (int k = 0; k < 2; k++) {
                applied += probs[k] <= s[k].prob;
                expected += s[k].prob;
            }
        }
    }
    const int n = N / RN_AA_POLICIES * RN_AA_POLICIES;
    CHECK(!mismatch, "AutoAugment: %d images not the drawn sub-policy's", mismatch);
    for (int id = 0; id < RN_AA_SUBPOLICIES; id++)
        CHECK(fabs(ids[id] - n / 25.0) < 5 * sqrt(n / 25.0), "AutoAugment: sub-policy %d drawn %d "
              "times of %d", id, ids[id], n);
    CHECK(fabs(applied - expected) < 5 * sqrt(expected), "AutoAugment: %.0f steps applied, %.0f "
          "expected from their probabilities", applied, expected);
}

int main(void) {
    if (!check_tmpdir("test_augment", tmpdir, sizeof tmpdir))
        return 1;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s tools/augment_ref.py '%s'", PY, tmpdir);
    int rc = system(cmd);
    CHECK(rc == 0, "'%s' failed (status %d); run from the repository root with torchvision "
                   "installed", cmd, rc);
    if (rc == 0) {
        test_tables();
        test_space_tables("RandAugment", "ra_tables", RN_AUG_BINS, rn_rand_augment_magnitude);
        test_space_tables("AutoAugment", "aa_tables", RN_AA_BINS, rn_auto_augment_magnitude);
        test_aa_policies();
        test_aa_cases();
        int n = test_operations();
        printf("compared %d operations on images with torchvision's\n", n);
    }
    test_draws();
    test_ra_draws();
    test_aa_draws();
    check_tmpdir_remove(tmpdir);
    return check_done("test_augment");
}
