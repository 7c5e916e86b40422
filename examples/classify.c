/*
 * classify.c - embedding resnet.c: load weights, classify a batch of images.
 *
 *   classify WEIGHTS.safetensors IMAGES.npy    print the top class of each image
 *   classify --selftest                        build, save, reload and run a model
 *
 * Build (after `make install`):
 *   $ cc classify.c $(pkg-config --cflags --libs resnet) -o classify
 * Build in the source tree (after `make`), from the repository's root:
 *   $ cc -Iinclude examples/classify.c build/public/libresnet.a -fopenmp -lpng -ljpeg -lz -lm -lpthread -o classify
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp, under -std=c11 too */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resnet.h"

/* Prints the arg-max class of each row of logits (n, k). */
static void print_top(const float *logits, int n, int k) {
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int j = 1; j < k; j++)
            if (logits[i * k + j] > logits[i * k + best])
                best = j;
        printf("image %d: class %d (logit %.4f)\n", i, best, logits[i * k + best]);
    }
}

static int classify(const char *weights, const char *images) {
    rn_model *model = NULL;
    float *x = NULL;
    int ndim;
    int64_t shape[RN_NPY_MAX_DIMS];
    if (rn_model_load(weights, NULL, &model) != RN_OK ||
        rn_npy_read(images, &x, &ndim, shape) != RN_OK) {
        fprintf(stderr, "classify: %s\n", rn_last_error());
        rn_model_free(model);
        return 1;
    }
    if (ndim != 4 || shape[1] != rn_model_in_channels(model)) {
        fprintf(stderr, "classify: %s: expected (N, %d, H, W)\n", images, rn_model_in_channels(model));
        free(x);
        rn_model_free(model);
        return 1;
    }
    int n = (int)shape[0], k = rn_model_num_classes(model);
    float *logits = malloc(sizeof(float) * n * k);
    int status = 0;
    if (rn_model_forward(model, x, n, (int)shape[2], (int)shape[3], RN_MODE_EVAL, logits) != RN_OK) {
        fprintf(stderr, "classify: %s\n", rn_last_error());
        status = 1;
    } else {
        print_top(logits, n, k);
    }
    free(logits);
    free(x);
    rn_model_free(model);
    return status;
}

/* Creates a small model, saves it (in a temporary file), loads it back and
 * checks both agree. */
static int selftest(void) {
    char path[] = "/tmp/classify_selftest_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("classify: mkstemp");
        return 1;
    }
    close(fd);
    enum { N = 2, C = 3, H = 64, W = 64, K = 10 };
    static float x[N * C * H * W], a[N * K], b[N * K];
    for (int i = 0; i < N * C * H * W; i++)
        x[i] = (float)(i * 37 % 101) / 50.0f - 1.0f; /* a fixed pattern in [-1, 1] */
    rn_model *m1 = NULL, *m2 = NULL;
    int ok = rn_model_create("resnet18", C, K, &m1) == RN_OK && rn_model_save(m1, path) == RN_OK &&
             rn_model_load(path, NULL, &m2) == RN_OK &&
             rn_model_forward(m1, x, N, H, W, RN_MODE_EVAL, a) == RN_OK &&
             rn_model_forward(m2, x, N, H, W, RN_MODE_EVAL, b) == RN_OK;
    if (!ok)
        fprintf(stderr, "classify: %s\n", rn_last_error());
    for (int i = 0; ok && i < N * K; i++)
        ok = isfinite(a[i]) && a[i] == b[i];
    if (ok)
        print_top(a, N, K);
    rn_model_free(m1);
    rn_model_free(m2);
    remove(path);
    printf("selftest: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--selftest") == 0)
        return selftest();
    if (argc != 3) {
        fprintf(stderr, "usage: classify WEIGHTS.safetensors IMAGES.npy | classify --selftest\n");
        return 2;
    }
    return classify(argv[1], argv[2]);
}
