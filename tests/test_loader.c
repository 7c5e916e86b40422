/*
 * test_loader.c - the loader: batching, shuffling, determinism and state
 * restore, data-parallel shards, augmentation, normalisation and resizing,
 * one epoch of the bundled Fashion-MNIST subset.
 *
 * Run from the repository root (it reads data/fmnist-small). Exits non-zero
 * on any failure; the last line reads "test_loader: N passed, M failed".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resnet.h"
#include "check.h"
#include "data/augment.h"
#include "data/dataset.h"
#include "data/resize.h"

#define SUBSET_DIR "data/fmnist-small"

/* ---------------------------------------------------------------------------
 * The loader
 * ------------------------------------------------------------------------- */

/* count random images (c, h, w); channel 0 starts with the index i as two
 * bytes (low, high); label i % 10. */
static rn_dataset make_synth(int count, int c, int h, int w) {
    rn_dataset ds = {.count = count, .channels = c, .height = h, .width = w, .num_classes = 10};
    size_t per = (size_t)c * h * w;
    ds.pixels = malloc((size_t)count * per);
    ds.labels = malloc((size_t)count * sizeof *ds.labels);
    for (int i = 0; i < count; i++) {
        for (size_t k = 0; k < per; k++)
            ds.pixels[i * per + k] = (uint8_t)check_int(0, 255);
        ds.pixels[i * per] = (uint8_t)(i & 255);
        ds.pixels[i * per + 1] = (uint8_t)(i >> 8);
        ds.labels[i] = i % 10;
    }
    return ds;
}

static rn_loader_config base_config(int batch_size) {
    rn_loader_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.batch_size = batch_size;
    cfg.seed = 42;
    return cfg;
}

/* The index encoded in an unaugmented, unnormalised output image. */
static int decode_index(const float *img) {
    return (int)(img[0] * 255.0f + 0.5f) + 256 * (int)(img[1] * 255.0f + 0.5f);
}

/* calls x rn_loader_next; batch i goes to xs + i * stride, ls + i * bs. */
static int collect(rn_loader *l, int calls, size_t stride, int bs, float *xs, int32_t *ls,
                   int *ns, int slow) {
    for (int i = 0; i < calls; i++) {
        if (slow)
            usleep(300);
        if (rn_loader_next(l, xs + i * stride, ls + (size_t)i * bs, &ns[i]) != RN_OK)
            return 0;
    }
    return 1;
}

/* Whether calls batches of a and b agree in size and in their n images. */
static int same_batches(const float *a, const int *na, const float *b, const int *nb, int calls,
                        size_t stride, size_t per_image) {
    for (int i = 0; i < calls; i++)
        if (na[i] != nb[i] || memcmp(a + i * stride, b + i * stride, na[i] * per_image * 4))
            return 0;
    return 1;
}

static void test_loader_batching(void) {
    rn_dataset ds = make_synth(10, 1, 6, 7);
    rn_loader_config cfg = base_config(4);
    float x[4 * 42];
    int32_t lab[4];
    for (int drop = 0; drop <= 1; drop++) {
        cfg.drop_last = drop;
        rn_loader *l;
        CHECK(rn_loader_create(&ds, &cfg, &l) == RN_OK, "create: %s", rn_last_error());
        CHECK(rn_loader_steps(l) == (drop ? 2 : 3), "steps %d (drop_last %d)",
              rn_loader_steps(l), drop);
        static const int want[2][5] = {{4, 4, 2, 0, 4}, {4, 4, 0, 4, 4}};
        int order_ok = 1, seen = 0;
        for (int i = 0; i < 5; i++) {
            int n = -1;
            rn_loader_next(l, x, lab, &n);
            CHECK(n == want[drop][i], "call %d: batch of %d, expected %d (drop_last %d)", i, n,
                  want[drop][i], drop);
            for (int b = 0; b < n && seen < 10; b++, seen++)
                order_ok &= decode_index(x + b * 42) == seen % (drop ? 8 : 10) &&
                            lab[b] == seen % (drop ? 8 : 10) % 10;
        }
        CHECK(order_ok, "without shuffling the order is the dataset's (drop_last %d)", drop);
        rn_loader_state st;
        rn_loader_get_state(l, &st);
        CHECK(st.epoch == 1 && st.position == (drop ? 8 : 4), "state (%lld, %lld)",
              (long long)st.epoch, (long long)st.position);
        int c, h, w;
        rn_loader_shape(l, &c, &h, &w);
        CHECK(c == 1 && h == 6 && w == 7, "shape %dx%dx%d", c, h, w);
        rn_loader_free(l);
    }
    rn_dataset_free(&ds);
}

static void test_loader_shuffle(void) {
    rn_dataset ds = make_synth(37, 1, 5, 5);
    rn_loader_config cfg = base_config(8);
    cfg.shuffle = 1;
    rn_loader *l;
    rn_loader_create(&ds, &cfg, &l);
    float x[8 * 25];
    int32_t lab[8];
    int order[3][37], perm_ok = 1;
    for (int e = 0; e < 3; e++) {
        int seen[37] = {0}, k = 0, n;
        while (rn_loader_next(l, x, lab, &n) == RN_OK && n > 0)
            for (int b = 0; b < n; b++, k++) {
                int idx = decode_index(x + b * 25);
                perm_ok &= k < 37 && idx < 37 && !seen[idx] && lab[b] == idx % 10;
                if (k < 37 && idx < 37)
                    seen[idx] = 1, order[e][k] = idx;
            }
        perm_ok &= k == 37;
    }
    CHECK(perm_ok, "every epoch is a permutation of the dataset");
    int identity = 1;
    for (int i = 0; i < 37; i++)
        identity &= order[0][i] == i;
    CHECK(!identity && memcmp(order[0], order[1], sizeof order[0]) != 0 &&
              memcmp(order[1], order[2], sizeof order[0]) != 0, "epochs are shuffled differently");
    rn_loader_free(l);
    rn_dataset_free(&ds);
}

static void test_loader_determinism(void) {
    rn_dataset ds = make_synth(45, 3, 8, 8);
    rn_loader_config cfg = base_config(10);
    cfg.shuffle = cfg.flip = cfg.normalize = 1;
    cfg.crop_padding = 2;
    for (int c = 0; c < 3; c++)
        cfg.mean[c] = 0.5f, cfg.std[c] = 0.25f;
    enum { CALLS = 14 };   /* 5 batches + marker per epoch: crosses two boundaries */
    size_t stride = 10 * 3 * 64;
    float *a = calloc(CALLS * stride, 4), *b = calloc(CALLS * stride, 4);
    int32_t la[CALLS * 10] = {0}, lb[CALLS * 10] = {0};
    int na[CALLS], nb[CALLS];
    rn_loader *l1, *l2;
    rn_loader_create(&ds, &cfg, &l1);
    rn_loader_create(&ds, &cfg, &l2);
    CHECK(collect(l1, CALLS, stride, 10, a, la, na, 0) &&
              collect(l2, CALLS, stride, 10, b, lb, nb, 1), "collect: %s", rn_last_error());
    CHECK(same_batches(a, na, b, nb, CALLS, stride, 3 * 64) && memcmp(la, lb, sizeof la) == 0,
          "same seed, same batches (fast and slow consumer)");
    rn_loader_free(l2);

    /* Restore a saved state into a fresh loader and into the same one. */
    rn_loader_state st = {0, 20}, got;
    rn_loader_create(&ds, &cfg, &l2);
    CHECK(rn_loader_set_state(l2, &st) == RN_OK, "set_state: %s", rn_last_error());
    collect(l2, CALLS - 2, stride, 10, b, lb, nb, 0);
    CHECK(same_batches(a + 2 * stride, na + 2, b, nb, CALLS - 2, stride, 3 * 64),
          "a restored loader continues identically");
    rn_loader_get_state(l1, &got);
    st.epoch = 1, st.position = 30;
    rn_loader_set_state(l1, &st);
    collect(l1, 5, stride, 10, b, lb, nb, 0);
    CHECK(same_batches(a + 9 * stride, na + 9, b, nb, 5, stride, 3 * 64),
          "rewinding the same loader");
    st.epoch = 0, st.position = 45;
    rn_loader_set_state(l1, &st);
    collect(l1, 2, stride, 10, b, lb, nb, 0);
    CHECK(nb[0] == 0 && memcmp(a + 6 * stride, b + stride, stride * 4) == 0,
          "a state at the end of an epoch gives the marker, then the next epoch");
    CHECK(got.epoch == 2 && got.position == 20, "state after 14 calls: (%lld, %lld)",
          (long long)got.epoch, (long long)got.position);
    st.position = 46;
    CHECK(rn_loader_set_state(l1, &st) == RN_ERR_ARG && strstr(rn_last_error(), "position 46 outside 0..45"),
          "position past the epoch refused: %s", rn_last_error());
    st.epoch = -1, st.position = 0;
    CHECK(rn_loader_set_state(l1, &st) == RN_ERR_ARG && strstr(rn_last_error(), "epoch -1 is negative"),
          "a negative epoch refused as the fault: %s", rn_last_error());
    rn_loader_free(l1);
    rn_loader_free(l2);

    cfg.seed = 43;
    rn_loader_create(&ds, &cfg, &l1);
    collect(l1, 1, stride, 10, b, lb, nb, 0);
    CHECK(memcmp(a, b, stride * 4) != 0, "different seeds differ");
    rn_loader_free(l1);
    free(a);
    free(b);
    rn_dataset_free(&ds);
}

/* Data parallel: S loaders with shards = S hand out, between them, each
 * step's images of the unsharded loader - shard s its positions s, s + S,
 * ... of the window, bitwise, augmentation included - the last window
 * padded with the epoch's first images; the state is the unsharded one. */
static void test_loader_shards(void) {
    rn_dataset ds = make_synth(45, 3, 8, 8);
    enum { B = 12, PER = 3 * 64, STEPS = 4 };   /* windows 12, 12, 12, 9 */
    for (int aug = 0; aug <= 1; aug++) {
        rn_loader_config cfg = base_config(B);
        cfg.shuffle = 1;
        cfg.flip = aug;
        cfg.crop_padding = aug ? 2 : 0;
        rn_loader *whole;
        rn_loader_create(&ds, &cfg, &whole);
        float *ref = calloc((size_t)STEPS * B * PER, 4);
        int32_t rl[STEPS * B];
        int rn[STEPS];
        collect(whole, STEPS, (size_t)B * PER, B, ref, rl, rn, 0);
        for (int S = 2; S <= 4; S++) {
            int same = 1, padded_ok = 1, states_ok = 1;
            for (int sh = 0; sh < S; sh++) {
                rn_loader_config c = cfg;
                c.shards = S, c.shard = sh;
                rn_loader *l = NULL;
                CHECK(rn_loader_create(&ds, &c, &l) == RN_OK, "shards %d: %s", S, rn_last_error());
                if (!l)
                    continue;
                CHECK(rn_loader_steps(l) == STEPS, "shards %d: %d steps", S, rn_loader_steps(l));
                float x[B * PER];
                int32_t lab[B];
                for (int k = 0; k < STEPS; k++) {
                    int n = -1, window = rn[k];
                    rn_loader_next(l, x, lab, &n);
                    same &= n == (window + S - 1) / S;
                    for (int b = 0; b < n; b++) {
                        int at = sh + S * b;
                        if (at < window) {
                            same &= memcmp(x + b * PER, ref + ((size_t)k * B + at) * PER, PER * 4) == 0 &&
                                    lab[b] == rl[k * B + at];
                        } else if (!aug) {
                            /* padding: the epoch's first images again */
                            int first = at - window;
                            padded_ok &= decode_index(x + b * PER) == decode_index(ref + (size_t)first * PER);
                        }
                    }
                    rn_loader_state st;
                    rn_loader_get_state(l, &st);
                    states_ok &= st.position == (k + 1 < STEPS ? (k + 1) * B : 45);
                }
                rn_loader_free(l);
            }
            CHECK(same, "%d shards (augment %d): each shard's images are its share of the unsharded batch", S,
                  aug);
            CHECK(padded_ok, "%d shards: the last window is padded with the epoch's first images", S);
            CHECK(states_ok, "%d shards: the state is the unsharded loader's", S);
        }
        /* a state saved unsharded restores sharded */
        rn_loader_config c = cfg;
        c.shards = 3, c.shard = 1;
        rn_loader *l;
        rn_loader_create(&ds, &c, &l);
        rn_loader_state st = {0, 24};
        rn_loader_set_state(l, &st);
        float x[B * PER];
        int32_t lab[B];
        int n = 0;
        rn_loader_next(l, x, lab, &n);
        CHECK(n == B / 3 && memcmp(x, ref + ((size_t)2 * B + 1) * PER, PER * 4) == 0,
              "restored sharded loader continues with its share of step 3");
        rn_loader_free(l);
        rn_loader_free(whole);
        free(ref);
    }
    rn_loader_config c = base_config(10);
    c.shards = 4;
    rn_loader *l = NULL;
    CHECK(rn_loader_create(&ds, &c, &l) == RN_ERR_ARG && !l && strstr(rn_last_error(), "multiple"),
          "a batch that is not a multiple of the shards is refused: %s", rn_last_error());
    c.shards = 2, c.shard = 2;
    CHECK(rn_loader_create(&ds, &c, &l) == RN_ERR_ARG && !l, "shard index out of range refused");
    rn_dataset_free(&ds);
}

/* Whether out (c, h, w) is src cropped at (oy, ox) from its zero padding
 * by pad, then mirrored when flip, scaled to [0, 1]. */
static int is_transform(const float *out, const uint8_t *src, int c, int h, int w, int pad,
                        int oy, int ox, int flip) {
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int sy = y + oy - pad, sx = (flip ? w - 1 - x : x) + ox - pad;
                int u = sy >= 0 && sy < h && sx >= 0 && sx < w
                            ? src[((size_t)ch * h + sy) * w + sx] : 0;
                if (out[((size_t)ch * h + y) * w + x] != (float)u / 255.0f)
                    return 0;
            }
    return 1;
}

static void test_loader_augment(void) {
    enum { N = 32, C = 2, H = 6, W = 7, PAD = 2 };
    rn_dataset ds = make_synth(N, C, H, W);
    float x[N * C * H * W];
    int32_t lab[N];
    for (int pad = 0; pad <= PAD; pad += PAD) {
        rn_loader_config cfg = base_config(N);
        cfg.flip = 1;
        cfg.crop_padding = pad;
        rn_loader *l;
        rn_loader_create(&ds, &cfg, &l);
        int n, unmatched = 0, flips = 0, offsets = 0, in_range = 1;
        rn_loader_next(l, x, lab, &n);
        for (int i = 0; i < n; i++) {
            const float *o = x + (size_t)i * C * H * W;
            for (int k = 0; k < C * H * W; k++)
                in_range &= o[k] >= 0.0f && o[k] <= 1.0f;
            int found = 0;
            for (int f = 0; f <= 1 && !found; f++)
                for (int oy = 0; oy <= 2 * pad && !found; oy++)
                    for (int ox = 0; ox <= 2 * pad && !found; ox++)
                        if (is_transform(o, ds.pixels + (size_t)i * C * H * W, C, H, W, pad, oy,
                                         ox, f)) {
                            found = 1;
                            flips += f;
                            offsets += oy != pad || ox != pad;
                        }
            unmatched += !found;
        }
        CHECK(n == N && unmatched == 0, "pad %d: %d images are no crop/flip of their source",
              pad, unmatched);
        CHECK(flips > 4 && flips < N - 4, "pad %d: %d of %d flipped", pad, flips, N);
        CHECK(pad == 0 || offsets > N / 2, "pad %d: %d of %d shifted", pad, offsets, N);
        CHECK(in_range, "pad %d: values in [0, 1]", pad);
        rn_loader_free(l);
    }
    rn_dataset_free(&ds);
}

static void test_loader_normalize_resize(void) {
    rn_dataset ds = make_synth(5, 3, 28, 28);
    rn_loader_config cfg = base_config(5);
    cfg.normalize = 1;
    const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, sd[3] = {0.247f, 0.243f, 0.261f};
    memcpy(cfg.mean, mean, sizeof mean);
    memcpy(cfg.std, sd, sizeof sd);
    static float x[5 * 3 * 32 * 32];
    int32_t lab[5];
    int n, bad = 0;
    rn_loader *l;
    rn_loader_create(&ds, &cfg, &l);
    rn_loader_next(l, x, lab, &n);
    for (int i = 0; i < 5 * 3 * 784; i++) {
        int c = i / 784 % 3;
        bad += x[i] != ((float)ds.pixels[i] / 255.0f - mean[c]) / sd[c];
    }
    CHECK(n == 5 && bad == 0, "normalisation is (u / 255 - mean) / std: %d differ", bad);
    rn_loader_free(l);

    cfg.normalize = 0;
    cfg.image_size = 32;
    rn_loader_create(&ds, &cfg, &l);
    rn_loader_next(l, x, lab, &n);
    static uint8_t want[5 * 3 * 32 * 32];
    rn_resize_bilinear_u8(ds.pixels, 5 * 3, 28, 28, want, 32, 32);
    bad = 0;
    for (int i = 0; i < 5 * 3 * 1024; i++)
        bad += x[i] != (float)want[i] / 255.0f;
    int c, h, w;
    rn_loader_shape(l, &c, &h, &w);
    CHECK(bad == 0 && c == 3 && h == 32 && w == 32, "resize to 32 then scale: %d differ", bad);
    rn_loader_free(l);

    /* Bad configurations. */
    rn_loader_config badcfg[5];
    for (int i = 0; i < 5; i++)
        badcfg[i] = base_config(5);
    badcfg[0].batch_size = 0;
    badcfg[1].drop_last = 1, badcfg[1].batch_size = 6;
    badcfg[2].normalize = 1, badcfg[2].std[0] = 1, badcfg[2].std[1] = 0, badcfg[2].std[2] = 1;
    badcfg[3].crop_padding = -1;
    badcfg[4].image_size = -3;
    for (int i = 0; i < 5; i++) {
        l = (rn_loader *)&bad;
        CHECK(rn_loader_create(&ds, &badcfg[i], &l) == RN_ERR_ARG && l == NULL,
              "bad config %d refused", i);
    }
    ds.labels[3] = 10;
    CHECK(rn_loader_create(&ds, &cfg, &l) == RN_ERR_ARG && strstr(rn_last_error(), "image 3"),
          "a label out of range is refused: %s", rn_last_error());
    rn_dataset_free(&ds);
}

static void test_loader_subset(void) {
    rn_dataset ds;
    if (rn_dataset_load(SUBSET_DIR, "fashion-mnist", 0, &ds) != RN_OK) {
        CHECK(0, "the bundled subset loads: %s", rn_last_error());
        return;
    }
    rn_loader_config cfg = base_config(128);
    cfg.shuffle = cfg.flip = 1;
    cfg.crop_padding = 4;
    rn_loader *l;
    CHECK(rn_loader_create(&ds, &cfg, &l) == RN_OK, "subset loader: %s", rn_last_error());
    static float x[128 * 784];
    int32_t lab[128];
    int hist[10] = {0}, n, batches = 0, last = 0, total = 0;
    while (rn_loader_next(l, x, lab, &n) == RN_OK && n > 0) {
        for (int b = 0; b < n; b++)
            hist[lab[b]]++;
        batches++, last = n, total += n;
    }
    int balanced = 1;
    for (int c = 0; c < 10; c++)
        balanced &= hist[c] == 100;
    CHECK(batches == 8 && last == 1000 - 7 * 128 && total == 1000 && balanced,
          "one epoch of the subset: %d batches, last %d, balanced %d", batches, last, balanced);
    rn_loader_free(l);
    rn_dataset_free(&ds);
}

/* ---------------------------------------------------------------------------
 * Main
 * ------------------------------------------------------------------------- */

/* RandomErasing (erase_prob): a rectangle of every channel set to 0, of torchvision's area and
 * aspect ranges, the rest of the image as without it (its draws apart from the flip's); as often
 * as asked; the same twice. */
static void test_loader_erase(void) {
    enum { N = 400, C = 3, H = 32, W = 32 };
    rn_dataset ds = make_synth(N, C, H, W);
    for (size_t k = 0; k < (size_t)N * C * H * W; k++) /* no zero but the erased */
        ds.pixels[k] |= ds.pixels[k] == 0;
    const size_t per = (size_t)C * H * W;
    float *x[4];
    int32_t lab[N];
    const float probs[4] = {0.0f, 1.0f, 0.5f, 1.0f};
    for (int run = 0; run < 4; run++) {
        rn_loader_config cfg = base_config(N);
        cfg.flip = 1;
        cfg.erase_prob = probs[run];
        rn_loader *l = NULL;
        x[run] = malloc(N * per * sizeof(float));
        int n = 0;
        CHECK(rn_loader_create(&ds, &cfg, &l) == RN_OK && rn_loader_next(l, x[run], lab, &n) == RN_OK && n == N,
              "erase_prob %g: a batch: %s", probs[run], rn_last_error());
        rn_loader_free(l);
    }
    int erased = 0, rect_ok = 1, rest_same = 1, taller = 0, wider = 0, half = 0;
    double area_sum = 0.0;
    for (int i = 0; i < N; i++) {
        const float *plain = x[0] + i * per, *e = x[1] + i * per;
        int y0 = H, y1 = -1, x0 = W, x1 = -1;
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++)
                if (e[y * W + xx] == 0.0f) {
                    y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
                    x0 = xx < x0 ? xx : x0, x1 = xx > x1 ? xx : x1;
                }
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    const size_t k = ((size_t)c * H + y) * W + xx;
                    const int inside = y >= y0 && y <= y1 && xx >= x0 && xx <= x1;
                    rect_ok &= !inside || e[k] == 0.0f;
                    rest_same &= inside || e[k] == plain[k];
                }
        if (y1 >= 0) {
            const int h = y1 - y0 + 1, w = x1 - x0 + 1;
            erased++;
            area_sum += (double)h * w / (H * W);
            rect_ok &= h * w >= 0.02 * H * W * 0.7 && h * w <= 0.33 * H * W * 1.3 && h < H && w < W &&
                       (double)h / w >= 0.3 * 0.7 && (double)h / w <= 3.3 / 0.7;
            taller += h > w, wider += w > h;
        }
        int any = 0;
        for (size_t k = 0; k < per; k++)
            any |= x[2][i * per + k] == 0.0f;
        half += any;
    }
    CHECK(erased >= N - 1, "erase_prob 1: %d of %d images erased", erased, N);
    CHECK(rect_ok, "each erased part is a rectangle of every channel, of torchvision's area and aspect ranges");
    CHECK(rest_same, "the rest of each image is as without erasing (the flip's draws unchanged)");
    CHECK(erased && area_sum / erased > 0.12 && area_sum / erased < 0.22,
          "mean erased area %.3f of the image (uniform in 0.02..0.33, the largest not fitting)",
          erased ? area_sum / erased : 0.0);
    CHECK(taller > N / 4 && wider > N / 4, "taller %d and wider %d rectangles alike (log-uniform aspect)", taller,
          wider);
    CHECK(half > N * 4 / 10 && half < N * 6 / 10, "erase_prob 0.5: %d of %d erased", half, N);
    CHECK(memcmp(x[1], x[3], N * per * sizeof(float)) == 0, "the same erasing twice");
    for (int run = 0; run < 4; run++)
        free(x[run]);
    const float bad[2] = {1.5f, -0.25f};
    for (int k = 0; k < 2; k++) {
        rn_loader_config cfg = base_config(4);
        cfg.erase_prob = bad[k];
        rn_loader *l = NULL;
        CHECK(rn_loader_create(&ds, &cfg, &l) == RN_ERR_ARG && !l && strstr(rn_last_error(), "erasing"),
              "erase_prob %g refused", bad[k]);
    }
    rn_dataset_free(&ds);
}

/* TrivialAugmentWide (auto_augment): each image the crop and flip's as without it, then one of
 * its operations at one of its magnitudes (found among all of them); most images changed, several
 * operations drawn; the same twice; gray and colour images alike. */
static int bytes_of(const float *x, size_t n, uint8_t *out) {
    int exact = 1;
    for (size_t k = 0; k < n; k++) {
        const float v = x[k] * 255.0f;
        out[k] = (uint8_t)(v + 0.5f);
        exact &= fabsf(v - (float)out[k]) < 1e-3f;
    }
    return exact;
}

/* One unshuffled batch of all n images, cropped from a padding of 2 and flipped, then auto_augment
 * (RN_AUTO_AUGMENT_*) with its geometry bilinear or nearest: malloc'ed (c, h, w) floats. */
static float *policy_batch(const rn_dataset *ds, int n, int auto_augment, int bilinear) {
    rn_loader_config cfg = base_config(n);
    cfg.flip = 1;
    cfg.crop_padding = 2;
    cfg.auto_augment = auto_augment;
    cfg.auto_augment_bilinear = bilinear;
    rn_loader *l = NULL;
    float *x = malloc((size_t)n * ds->channels * ds->height * ds->width * sizeof *x);
    int32_t *lab = malloc((size_t)n * sizeof *lab);
    int got = 0;
    CHECK(x && lab && rn_loader_create(ds, &cfg, &l) == RN_OK && rn_loader_next(l, x, lab, &got) == RN_OK &&
              got == n, "auto_augment %d: a batch: %s", auto_augment, rn_last_error());
    rn_loader_free(l);
    free(lab);
    return x;
}

static void test_loader_trivial(void) {
    enum { N = 120, H = 14, W = 14 };
    for (int C = 1; C <= 3; C += 2) {
        rn_dataset ds = make_synth(N, C, H, W);
        const size_t per = (size_t)C * H * W;
        float *x[3];
        for (int run = 0; run < 3; run++)
            x[run] = policy_batch(&ds, N, run > 0 ? RN_AUTO_AUGMENT_TA_WIDE : RN_AUTO_AUGMENT_NONE, 0);
        uint8_t plain[3 * H * W], aug[3 * H * W], cand[3 * H * W], scratch[3 * H * W];
        int found = 0, changed = 0, exact = 1, seen[RN_AUG_WIDE_OPS] = {0};
        for (int i = 0; i < N; i++) {
            exact &= bytes_of(x[0] + i * per, per, plain) & bytes_of(x[1] + i * per, per, aug);
            changed += memcmp(plain, aug, per) != 0;
            int hit = -1;
            for (int op = 0; op < RN_AUG_WIDE_OPS && hit < 0; op++)
                for (int b = 0; b < (rn_augment_op_has_magnitude(op) ? RN_AUG_BINS : 1) && hit < 0; b++)
                    for (int sign = 0; sign < (rn_augment_op_signed(op) ? 2 : 1) && hit < 0; sign++) {
                        memcpy(cand, plain, per);
                        const double m = rn_augment_magnitude(op, b);
                        rn_augment_apply(cand, C, H, W, op, sign ? -m : m, 0, scratch);
                        if (memcmp(cand, aug, per) == 0)
                            hit = op;
                    }
            if (hit >= 0) {
                found++;
                seen[hit]++;
            }
        }
        int kinds = 0;
        for (int op = 0; op < RN_AUG_WIDE_OPS; op++)
            kinds += seen[op] > 0;
        CHECK(exact, "%d channels: the outputs are bytes / 255 (no normalisation)", C);
        CHECK(found == N, "%d channels: %d of %d images are one operation of the crop and flip's image", C,
              found, N);
        CHECK(changed > N / 2, "%d channels: %d of %d images changed", C, changed, N);
        CHECK(kinds >= 8, "%d channels: %d kinds of operation found", C, kinds);
        CHECK(memcmp(x[1], x[2], N * per * sizeof(float)) == 0, "%d channels: the same augmentation twice", C);
        for (int run = 0; run < 3; run++)
            free(x[run]);
        rn_dataset_free(&ds);
    }
    rn_dataset ds = make_synth(4, 2, 8, 8);
    rn_loader_config cfg = base_config(4);
    cfg.auto_augment = RN_AUTO_AUGMENT_TA_WIDE;
    rn_loader *l = NULL;
    CHECK(rn_loader_create(&ds, &cfg, &l) == RN_ERR_ARG && !l && strstr(rn_last_error(), "TrivialAugment"),
          "2 channels refused");
    rn_dataset_free(&ds);
}

/* RandAugment (auto_augment RA, magnitude 9, 2 operations, bilinear): each image two of its operations in turn
 * on the crop and flip's image (found among all pairs), the same twice. */
static void test_loader_randaugment(void) {
    enum { N = 40, C = 3, H = 12, W = 12 };
    rn_dataset ds = make_synth(N, C, H, W);
    const size_t per = (size_t)C * H * W;
    float *x[3];
    int32_t lab[N];
    for (int run = 0; run < 3; run++) {
        rn_loader_config cfg;
        rn_loader_config_default(&cfg);
        cfg.batch_size = N;
        cfg.seed = 42;
        cfg.flip = 1;
        cfg.crop_padding = 2;
        cfg.auto_augment = run > 0 ? RN_AUTO_AUGMENT_RA : RN_AUTO_AUGMENT_NONE;
        cfg.auto_augment_bilinear = 1;
        rn_loader *l = NULL;
        x[run] = malloc(N * per * sizeof(float));
        int n = 0;
        CHECK(rn_loader_create(&ds, &cfg, &l) == RN_OK && rn_loader_next(l, x[run], lab, &n) == RN_OK && n == N,
              "RandAugment %d: a batch: %s", run > 0, rn_last_error());
        rn_loader_free(l);
    }
    uint8_t plain[C * H * W], aug[C * H * W], one[C * H * W], two[C * H * W], scratch[C * H * W];
    int found = 0;
    for (int i = 0; i < N; i++) {
        bytes_of(x[0] + i * per, per, plain);
        bytes_of(x[1] + i * per, per, aug);
        int hit = 0;
        for (int a = 0; a < 2 * RN_AUG_WIDE_OPS && !hit; a++) {
            const int op1 = a / 2, neg1 = a % 2;
            if (neg1 && !rn_augment_op_signed(op1))
                continue;
            const double m1 = rn_rand_augment_magnitude(op1, 9, H, W);
            memcpy(one, plain, per);
            rn_augment_apply(one, C, H, W, op1, neg1 ? -m1 : m1, 1, scratch);
            for (int b = 0; b < 2 * RN_AUG_WIDE_OPS && !hit; b++) {
                const int op2 = b / 2, neg2 = b % 2;
                if (neg2 && !rn_augment_op_signed(op2))
                    continue;
                const double m2 = rn_rand_augment_magnitude(op2, 9, H, W);
                memcpy(two, one, per);
                rn_augment_apply(two, C, H, W, op2, neg2 ? -m2 : m2, 1, scratch);
                hit = memcmp(two, aug, per) == 0;
            }
        }
        found += hit;
    }
    CHECK(found == N, "RandAugment: %d of %d images are two operations in turn of the crop and flip's image",
          found, N);
    CHECK(memcmp(x[1], x[2], N * per * sizeof(float)) == 0, "RandAugment: the same twice");
    for (int run = 0; run < 3; run++)
        free(x[run]);
    rn_loader_config cfg;
    rn_loader_config_default(&cfg);
    cfg.auto_augment = RN_AUTO_AUGMENT_RA;
    cfg.ra_magnitude = 31;
    rn_loader *l = NULL;
    CHECK(rn_loader_create(&ds, &cfg, &l) == RN_ERR_ARG && !l && strstr(rn_last_error(), "magnitude"),
          "RandAugment magnitude 31 refused");
    cfg.ra_magnitude = 9;
    cfg.auto_augment = RN_AUTO_AUGMENT_SVHN + 1;
    CHECK(rn_loader_create(&ds, &cfg, &l) == RN_ERR_ARG && !l, "auto_augment %d refused",
          RN_AUTO_AUGMENT_SVHN + 1);
    cfg.auto_augment = RN_AUTO_AUGMENT_NONE;
    cfg.resize_size = 40; /* the image folders' evaluation resize: none in memory */
    CHECK(rn_loader_create(&ds, &cfg, &l) == RN_ERR_ARG && !l && strstr(rn_last_error(), "resize size 40"),
          "resize_size refused for images in memory: %s", rn_last_error());
    rn_dataset_free(&ds);
}

/* AutoAugment (auto_augment IMAGENET, CIFAR10, SVHN): each image one of the policy's sub-policies
 * on the crop and flip's image, each step applied or not, either sign (found among all of them);
 * a quarter or more changed; the same twice. */
static void test_loader_autoaugment(void) {
    enum { N = 40, C = 3, H = 12, W = 12 };
    rn_dataset ds = make_synth(N, C, H, W);
    const size_t per = (size_t)C * H * W;
    for (int policy = RN_AUTO_AUGMENT_IMAGENET; policy <= RN_AUTO_AUGMENT_SVHN; policy++) {
        const int bilinear = policy != RN_AUTO_AUGMENT_CIFAR10;
        float *x[3];
        for (int run = 0; run < 3; run++)
            x[run] = policy_batch(&ds, N, run > 0 ? policy : RN_AUTO_AUGMENT_NONE, bilinear);
        uint8_t plain[C * H * W], aug[C * H * W], cand[C * H * W], scratch[C * H * W];
        int found = 0, changed = 0;
        for (int i = 0; i < N; i++) {
            bytes_of(x[0] + i * per, per, plain);
            bytes_of(x[1] + i * per, per, aug);
            changed += memcmp(plain, aug, per) != 0;
            int hit = 0;
            for (int id = 0; id < RN_AA_SUBPOLICIES && !hit; id++)
                for (int v = 0; v < 16 && !hit; v++) { /* steps applied (2 bits), signs (2 bits) */
                    const float probs[2] = {v & 1 ? 0.0f : 2.0f, v & 2 ? 0.0f : 2.0f};
                    const int negative[2] = {(v >> 2) & 1, (v >> 3) & 1};
                    memcpy(cand, plain, per);
                    rn_auto_augment_apply(cand, C, H, W, RN_AA_IMAGENET + policy - RN_AUTO_AUGMENT_IMAGENET,
                                          id, probs, negative, bilinear, scratch);
                    hit = memcmp(cand, aug, per) == 0;
                }
            found += hit;
        }
        CHECK(found == N, "AutoAugment %d: %d of %d images are a sub-policy of the crop and flip's image",
              policy, found, N);
        CHECK(changed >= N / 4, "AutoAugment %d: %d of %d images changed", policy, changed, N);
        CHECK(memcmp(x[1], x[2], N * per * sizeof(float)) == 0, "AutoAugment %d: the same twice", policy);
        for (int run = 0; run < 3; run++)
            free(x[run]);
    }
    rn_dataset_free(&ds);
}

/* Repeated augmentation (repeat_aug, torchvision's RASampler): each image of the order R times in a
 * row, the epoch (600 / 256) * 256 = 512 positions (170 images three times, then one twice), the
 * repetitions augmented apart; the order differs the next epoch; shards take the whole loader's
 * positions in turn; too few images refused. */
static void test_loader_repeat(void) {
    enum { N = 600, C = 1, H = 8, W = 8, PER = C * H * W, B = 64, LEN = 512 };
    rn_dataset ds = make_synth(N, C, H, W);
    float *x = malloc((size_t)2 * LEN * PER * sizeof *x), *aug = malloc((size_t)LEN * PER * sizeof *x);
    int32_t lab[B];
    int idx[2][LEN];
    for (int run = 0; run < 2; run++) { /* run 1: flips, whose draws follow the position */
        rn_loader_config cfg = base_config(B);
        cfg.shuffle = 1;
        cfg.repeat_aug = 3;
        cfg.flip = run;
        rn_loader *l = NULL;
        CHECK(rn_loader_create(&ds, &cfg, &l) == RN_OK && rn_loader_steps(l) == LEN / B,
              "repeat_aug 3: %d steps, expected %d: %s", l ? rn_loader_steps(l) : -1, LEN / B,
              rn_last_error());
        if (!l)
            continue;
        static float end_call[B * PER];
        const int epochs = run ? 1 : 2;
        int got = 0, ends = 0, n = 0;
        for (int e = 0; e < epochs; e++) {
            float *dst = run ? aug : x + (size_t)e * LEN * PER;
            for (int k = 0; k < LEN / B && rn_loader_next(l, dst + (size_t)got % LEN * PER, lab, &n) == RN_OK; k++)
                got += n;
            ends += rn_loader_next(l, end_call, lab, &n) == RN_OK && n == 0; /* the epoch's end */
        }
        CHECK(got == epochs * LEN && ends == epochs, "repeat_aug 3: %d epochs of %d images, got %d (%d ends)",
              epochs, LEN, got, ends);
        rn_loader_free(l);
    }
    int runs_ok = 1, distinct = 1, differs = 0, flipped_apart = 0;
    for (int e = 0; e < 2; e++)
        for (int p = 0; p < LEN; p++)
            idx[e][p] = decode_index(x + ((size_t)e * LEN + p) * PER);
    for (int p = 0; p < LEN; p++) {
        runs_ok &= idx[0][p] == idx[0][p - p % 3] && idx[1][p] == idx[1][p - p % 3];
        differs += idx[0][p] != idx[1][p];
    }
    static char seen[N];
    for (int p = 0; p < LEN; p += 3) {
        distinct &= !seen[idx[0][p]];
        seen[idx[0][p]] = 1;
    }
    for (int p = 0; p + 2 < LEN; p += 3) /* the epoch's second pass, flipped or not per position */
        flipped_apart += memcmp(aug + (size_t)p * PER, aug + (size_t)(p + 1) * PER, PER * sizeof *x) != 0;
    CHECK(runs_ok, "repeat_aug 3: each image three times in a row");
    CHECK(distinct, "repeat_aug 3: 171 distinct images an epoch");
    CHECK(differs > LEN / 2, "repeat_aug 3: the next epoch's order differs at %d of %d", differs, LEN);
    CHECK(flipped_apart > 170 / 4, "repeat_aug 3 with flips: %d of 170 repetitions augmented apart",
          flipped_apart);
    /* two shards: positions sh, sh + 2, ... of each window, 256 each an epoch */
    int shards_ok = 1;
    for (int sh = 0; sh < 2; sh++) {
        rn_loader_config cfg = base_config(B);
        cfg.shuffle = 1;
        cfg.repeat_aug = 3;
        cfg.shards = 2, cfg.shard = sh;
        rn_loader *l = NULL;
        shards_ok &= rn_loader_create(&ds, &cfg, &l) == RN_OK && rn_loader_steps(l) == LEN / B;
        float y[B / 2 * PER];
        for (int k = 0; l && k < LEN / B; k++) {
            int n = 0;
            shards_ok &= rn_loader_next(l, y, lab, &n) == RN_OK && n == B / 2;
            for (int b = 0; b < n; b++)
                shards_ok &= decode_index(y + (size_t)b * PER) == idx[0][k * B + sh + 2 * b];
        }
        rn_loader_free(l);
    }
    CHECK(shards_ok, "repeat_aug 3 on 2 shards: each the whole loader's positions in turn");
    rn_dataset small = make_synth(255, C, H, W);
    rn_loader_config cfg = base_config(8);
    cfg.repeat_aug = 2;
    rn_loader *l = NULL;
    CHECK(rn_loader_create(&small, &cfg, &l) == RN_ERR_ARG && !l && strstr(rn_last_error(), "RASampler"),
          "repeat_aug on 255 images refused: %s", rn_last_error());
    cfg.repeat_aug = 65;
    CHECK(rn_loader_create(&ds, &cfg, &l) == RN_ERR_ARG && !l, "repeat_aug 65 refused");
    rn_dataset_free(&small);
    rn_dataset_free(&ds);
    free(x);
    free(aug);
}

/* rn_batch_mix: torchvision's RandomMixup and RandomCutmix on a batch rolled by one, the labels
 * alike, lam ~ Beta(alpha, alpha); the draws a function of (seed, epoch, position). */
static void test_batch_mix(void) {
    enum { N = 5, C = 2, H = 9, W = 11 };
    const size_t per = (size_t)C * H * W;
    float orig[N * C * H * W], x[N * C * H * W], again[N * C * H * W];
    int32_t labels[N] = {3, 1, 4, 1, 5}, l2[N];
    for (size_t k = 0; k < N * per; k++)
        orig[k] = (float)check_int(-1000, 1000) / 7.0f;
    rn_mix_config mixup = {0.4f, 0.0f, 7}, cutmix = {0.0f, 1.0f, 7}, both = {0.4f, 1.0f, 7};
    rn_mix_info info;
    memcpy(x, orig, sizeof x);
    CHECK(rn_batch_mix(&mixup, 2, 40, x, labels, l2, N, C, H, W, &info) == RN_OK && info.kind == RN_MIX_MIXUP &&
              info.lam >= 0.0f && info.lam <= 1.0f, "mixup: %s", rn_last_error());
    double worst = 0.0;
    for (int i = 0; i < N; i++)
        for (size_t k = 0; k < per; k++) {
            const double want = (double)info.lam * orig[i * per + k] +
                                (1.0 - info.lam) * orig[(i > 0 ? i - 1 : N - 1) * per + k];
            worst = fmax(worst, fabs(x[i * per + k] - want) / (1.0 + fabs(want)));
        }
    int rolled = 1;
    for (int i = 0; i < N; i++)
        rolled &= l2[i] == labels[i > 0 ? i - 1 : N - 1];
    CHECK(worst < 1e-6 && rolled, "mixup: each image lam of itself and 1 - lam of the one before (off by %.1e), "
          "the labels rolled alike", worst);
    memcpy(again, orig, sizeof again);
    rn_mix_info info2;
    rn_batch_mix(&mixup, 2, 40, again, labels, l2, N, C, H, W, &info2);
    CHECK(memcmp(x, again, sizeof x) == 0 && info2.lam == info.lam, "mixup: the same draws at the same place");
    memcpy(again, orig, sizeof again);
    rn_batch_mix(&mixup, 2, 41, again, labels, l2, N, C, H, W, &info2);
    CHECK(info2.lam != info.lam, "mixup: other draws at another position");

    int cut_ok = 1, cuts = 0;
    for (int pos = 0; pos < 20; pos++) {
        memcpy(x, orig, sizeof x);
        if (rn_batch_mix(&cutmix, 0, pos, x, labels, l2, N, C, H, W, &info) != RN_OK || info.kind != RN_MIX_CUTMIX) {
            cut_ok = 0;
            break;
        }
        const int y0 = info.box[0], y1 = info.box[1], x0 = info.box[2], x1 = info.box[3];
        cut_ok &= 0 <= y0 && y0 <= y1 && y1 <= H && 0 <= x0 && x0 <= x1 && x1 <= W &&
                  info.lam == (float)(1.0 - (double)(x1 - x0) * (y1 - y0) / (H * W));
        cuts += y1 > y0 && x1 > x0;
        for (int i = 0; i < N; i++)
            for (int c = 0; c < C; c++)
                for (int y = 0; y < H; y++)
                    for (int xx = 0; xx < W; xx++) {
                        const size_t off = ((size_t)c * H + y) * W + xx;
                        const int in = y >= y0 && y < y1 && xx >= x0 && xx < x1;
                        cut_ok &= x[i * per + off] == orig[(in ? (i > 0 ? i - 1 : N - 1) : i) * per + off];
                    }
    }
    CHECK(cut_ok && cuts > 10, "CutMix: the box from the image before, the rest as it was, lam the share left "
          "(%d of 20 boxes not empty)", cuts);

    /* lam ~ Beta(alpha, alpha): mean 1/2, variance 1 / (4 (2 alpha + 1)); both on: each kind half the time */
    const float alphas[2] = {0.4f, 1.0f};
    for (int j = 0; j < 2; j++) {
        rn_mix_config one = {alphas[j], 0.0f, 11};
        double sum = 0.0, sq = 0.0;
        const int draws = 4000;
        for (int pos = 0; pos < draws; pos++) {
            float v = 1.0f;
            int32_t lab = 0, lab2 = -1;
            rn_batch_mix(&one, 1, pos, &v, &lab, &lab2, 1, 1, 1, 1, &info);
            sum += info.lam, sq += (double)info.lam * info.lam;
        }
        const double mean = sum / draws, var = sq / draws - mean * mean, want = 1.0 / (4.0 * (2.0 * alphas[j] + 1.0));
        CHECK(fabs(mean - 0.5) < 0.03 && fabs(var - want) < 0.15 * want,
              "Beta(%g, %g): mean %.4f (0.5), variance %.4f (%.4f) over %d draws", alphas[j], alphas[j], mean, var,
              want, draws);
    }
    int kinds[3] = {0, 0, 0};
    for (int pos = 0; pos < 400; pos++) {
        memcpy(x, orig, sizeof x);
        rn_batch_mix(&both, 3, pos, x, labels, l2, N, C, H, W, &info);
        kinds[info.kind]++;
    }
    CHECK(kinds[RN_MIX_NONE] == 0 && kinds[RN_MIX_MIXUP] > 150 && kinds[RN_MIX_CUTMIX] > 150,
          "both on: %d mixup and %d CutMix batches of 400", kinds[RN_MIX_MIXUP], kinds[RN_MIX_CUTMIX]);
    rn_mix_config off = {0.0f, 0.0f, 1}, bad = {-1.0f, 0.0f, 1};
    memcpy(x, orig, sizeof x);
    CHECK(rn_batch_mix(&off, 0, 0, x, labels, l2, N, C, H, W, &info) == RN_OK && info.kind == RN_MIX_NONE &&
              info.lam == 1.0f && memcmp(x, orig, sizeof x) == 0, "both alphas 0: nothing mixed");
    CHECK(rn_batch_mix(&bad, 0, 0, x, labels, l2, N, C, H, W, &info) == RN_ERR_ARG &&
              strstr(rn_last_error(), "alpha"), "a negative alpha refused");
}

int main(void) {
    test_loader_batching();
    test_loader_shuffle();
    test_loader_determinism();
    test_loader_augment();
    test_loader_erase();
    test_loader_trivial();
    test_loader_randaugment();
    test_loader_autoaugment();
    test_loader_repeat();
    test_batch_mix();
    test_loader_normalize_resize();
    test_loader_subset();
    test_loader_shards();
    return check_done("test_loader");
}
