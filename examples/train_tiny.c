/*
 * train_tiny.c - training through the public API alone: a ResNet-18 learns
 * four kinds of synthetic 28x28 images held in memory, then is evaluated,
 * saved with its class names, exported to ONNX and read back.
 *
 *   train_tiny [DIR]     writes DIR/tiny.safetensors and DIR/tiny.onnx (DIR: ".")
 *
 * Exits 0 when the test accuracy reaches 90% and the saved and exported
 * models give the trained model's predictions; 1 otherwise.
 *
 * Build (after `make install`):
 *   $ cc train_tiny.c $(pkg-config --cflags --libs resnet) -o train_tiny
 * Build in the source tree (after `make`), from the repository's root:
 *   $ cc -Iinclude examples/train_tiny.c build/public/libresnet.a -fopenmp -lpng -ljpeg -lz -lm -lpthread -o train_tiny
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resnet.h"

enum { SIZE = 28, CLASSES = 4, TRAIN = 256, TEST = 64, BATCH = 32, EPOCHS = 3 };

static const char *const NAMES[CLASSES] = {"horizontal", "vertical", "checkerboard", "diagonal"};

/* ---------------------------------------------------------------------------
 * The data: stripes of four orientations at a random phase, with noise
 * ------------------------------------------------------------------------- */

static uint32_t rng_state = 12345;

static int rnd(int n) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 17, rng_state ^= rng_state << 5;
    return (int)(rng_state % (uint32_t)n);
}

/* Draws image `img` (SIZE x SIZE, one channel) of class c: bright where the
 * pattern (period 6) is on, dark elsewhere, noise on both. */
static void draw(uint8_t *img, int c) {
    int py = rnd(6), px = rnd(6);
    for (int y = 0; y < SIZE; y++)
        for (int x = 0; x < SIZE; x++) {
            int h = (y + py) % 6 < 3, v = (x + px) % 6 < 3;
            int on = c == 0 ? h : c == 1 ? v : c == 2 ? h ^ v : (x + y + px) % 6 < 3;
            img[y * SIZE + x] = (uint8_t)(on ? 150 + rnd(100) : rnd(100));
        }
}

/* count images with labels 0, 1, 2, 3, 0, ... as an in-memory dataset */
static rn_status make_dataset(int count, rn_dataset **out) {
    uint8_t *pixels = malloc((size_t)count * SIZE * SIZE);
    int32_t *labels = malloc((size_t)count * sizeof *labels);
    rn_status st = RN_ERR_NOMEM;
    if (pixels && labels) {
        for (int i = 0; i < count; i++) {
            labels[i] = i % CLASSES;
            draw(pixels + (size_t)i * SIZE * SIZE, labels[i]);
        }
        st = rn_dataset_create(count, 1, SIZE, SIZE, CLASSES, pixels, labels, NAMES, out);
    }
    free(pixels);
    free(labels);
    return st;
}

/* ---------------------------------------------------------------------------
 * Training and checking
 * ------------------------------------------------------------------------- */

static int fail(const char *what) {
    fprintf(stderr, "train_tiny: %s: %s\n", what, rn_last_error());
    return 0;
}

/* One epoch of SGD over the loader's batches; prints the mean loss. */
static int train_epoch(rn_trainer *tr, rn_loader *loader, float *x, int32_t *y, int epoch) {
    double loss = 0.0;
    int images = 0, correct = 0, n;
    for (;;) {
        if (rn_loader_next(loader, x, y, &n) != RN_OK)
            return fail("next batch");
        if (n == 0)
            break;
        rn_step_result r;
        if (rn_trainer_step(tr, x, y, n, SIZE, SIZE, &r) != RN_OK)
            return fail("training step");
        loss += r.loss * n, images += n, correct += r.correct;
    }
    printf("epoch %d: loss %.4f, train accuracy %.3f\n", epoch, loss / images, (double)correct / images);
    return 1;
}

/* The top class of each test image through a session of `m`. */
static int predict(const rn_model *m, rn_dataset *test, const rn_loader_config *cfg, int *top) {
    rn_session *s = NULL;
    rn_loader *l = NULL;
    float *x = malloc(sizeof(float) * BATCH * SIZE * SIZE), logits[BATCH * CLASSES];
    int32_t y[BATCH];
    int ok = x && rn_session_create(m, NULL, &s) == RN_OK && rn_loader_create(test, cfg, &l) == RN_OK;
    for (int done = 0, n; ok;) {
        ok = rn_loader_next(l, x, y, &n) == RN_OK &&
             (n == 0 || rn_session_forward(s, x, n, SIZE, SIZE, RN_MODE_EVAL, logits) == RN_OK);
        if (!ok || n == 0)
            break;
        for (int i = 0; i < n; i++, done++) {
            top[done] = 0;
            for (int k = 1; k < CLASSES; k++)
                if (logits[i * CLASSES + k] > logits[i * CLASSES + top[done]])
                    top[done] = k;
        }
    }
    if (!ok)
        fail("predicting");
    rn_loader_free(l);
    rn_session_free(s);
    free(x);
    return ok;
}

/* Saves, exports and reloads the model; both copies must predict as it does. */
static int save_and_reload(const rn_model *m, rn_dataset *test, const rn_loader_config *eval_cfg,
                           const char *dir) {
    char st_path[1024], onnx_path[1024];
    snprintf(st_path, sizeof st_path, "%s/tiny.safetensors", dir);
    snprintf(onnx_path, sizeof onnx_path, "%s/tiny.onnx", dir);
    /* the class names and preprocessing travel in the metadata */
    char names[256], size[16];
    snprintf(names, sizeof names, "%s\n%s\n%s\n%s", NAMES[0], NAMES[1], NAMES[2], NAMES[3]);
    snprintf(size, sizeof size, "%d", SIZE);
    const char *keys[] = {"class_names", "image_size", "normalize"};
    const char *vals[] = {names, size, "0.5:0.25"};
    rn_onnx_options o;
    rn_onnx_options_default(&o);
    o.height = o.width = SIZE;
    o.meta_keys = keys, o.meta_values = vals, o.meta_count = 3;
    if (rn_model_save_meta(m, st_path, keys, vals, 3) != RN_OK || rn_model_export_onnx(m, onnx_path, &o) != RN_OK)
        return fail("saving");
    printf("wrote %s and %s\n", st_path, onnx_path);

    int want[TEST], got[TEST], ok = predict(m, test, eval_cfg, want);
    const char *paths[2] = {st_path, onnx_path};
    for (int f = 0; f < 2 && ok; f++) {
        rn_model *back = NULL;
        if (rn_model_load(paths[f], NULL, &back) != RN_OK)
            return fail(paths[f]);
        ok = predict(back, test, eval_cfg, got) && memcmp(want, got, sizeof want) == 0;
        printf("%s read back (%s): %s\n", paths[f], rn_model_arch(back), ok ? "same predictions" : "DIFFERENT");
        rn_model_free(back);
    }
    return ok;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    rn_set_threads(2);
    rn_dataset *train = NULL, *test = NULL;
    rn_model *m = NULL;
    rn_trainer *tr = NULL;
    rn_loader *loader = NULL;
    float *x = malloc(sizeof(float) * BATCH * SIZE * SIZE);
    int32_t y[BATCH];
    int ok = x != NULL;

    /* data: shuffled batches, random flips, normalised to about zero mean */
    rn_loader_config lcfg;
    rn_loader_config_default(&lcfg);
    lcfg.batch_size = BATCH;
    lcfg.shuffle = 1, lcfg.flip = 1, lcfg.seed = 1;
    lcfg.normalize = 1, lcfg.mean[0] = 0.5f, lcfg.std[0] = 0.25f;
    rn_loader_config eval_cfg = lcfg;
    eval_cfg.shuffle = eval_cfg.flip = 0;
    ok = ok && (make_dataset(TRAIN, &train) == RN_OK || fail("training data")) &&
         (make_dataset(TEST, &test) == RN_OK || fail("test data")) &&
         (rn_loader_create(train, &lcfg, &loader) == RN_OK || fail("loader"));

    /* the model and its optimizer: SGD with momentum, cosine schedule */
    rn_train_config tcfg;
    rn_train_config_default(&tcfg);
    tcfg.lr = 0.003, tcfg.momentum = 0.9, tcfg.weight_decay = 5e-4;
    tcfg.schedule = "cosine";
    tcfg.steps_per_epoch = ok ? rn_loader_steps(loader) : 1;
    tcfg.total_steps = tcfg.steps_per_epoch * EPOCHS;
    ok = ok && (rn_model_create("resnet18", 1, CLASSES, &m) == RN_OK || fail("model")) &&
         (rn_trainer_create(m, &tcfg, &tr) == RN_OK || fail("trainer"));
    if (ok)
        printf("%s: %lld parameters, %d training and %d test images of %dx%d, %d classes\n",
               rn_model_arch(m), (long long)rn_model_param_count(m), rn_dataset_count(train),
               rn_dataset_count(test), SIZE, SIZE, rn_dataset_num_classes(train));
    for (int e = 1; ok && e <= EPOCHS; e++)
        ok = train_epoch(tr, loader, x, y, e);

    /* evaluation: loss, accuracy and the confusion matrix */
    rn_eval_result ev = {0};
    ok = ok && (rn_evaluate(m, test, &eval_cfg, NULL, NULL, &ev) == RN_OK || fail("evaluation"));
    double acc = ok ? (double)ev.top1 / (double)ev.count : 0.0;
    if (ok) {
        printf("test: loss %.4f, accuracy %.3f\n", ev.loss, acc);
        for (int c = 0; c < CLASSES; c++) {
            printf("  %-15s", rn_dataset_class_name(test, c));
            for (int k = 0; k < CLASSES; k++)
                printf(" %3lld", (long long)ev.confusion[c * CLASSES + k]);
            printf("\n");
        }
    }
    rn_eval_result_free(&ev);
    ok = ok && save_and_reload(m, test, &eval_cfg, dir);
    if (ok && acc < 0.9) {
        fprintf(stderr, "train_tiny: test accuracy %.3f < 0.9\n", acc);
        ok = 0;
    }
    rn_loader_free(loader);
    rn_trainer_free(tr);
    rn_model_free(m);
    rn_dataset_close(train);
    rn_dataset_close(test);
    free(x);
    printf("train_tiny: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
