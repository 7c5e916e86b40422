/*
 * test_quantize.c - int8 quantization of a model: rn_quantize_synthetic (its layers, the
 * same scales on a second call, the file round trip), the calibrator's contract (a refused
 * batch leaves it as it was; non-finite images, activations, weights and BatchNorm statistics
 * refused by name) and the int8 loader's checks of its scales; rn_session_forward_features in
 * every precision (the classifier applied to its features gives its logits), and
 * rn_session_forward_stage's maps (their shapes and names; bf16's and int8's near fp32's).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/session.h"
#include "model/model.h"
#include "resnet.h"

/* Where the tests' files go: a fresh directory (check_tmpdir), not the build tree, which a
 * sanitizer build in a fresh clone does not have. */
static char tmpdir[512];

/* Rewrites the safetensors file at path with `from` replaced by `to` in its header (the
 * length prefix updated); 0 if `from` is not there. */
static int patch_header(const char *path, const char *from, const char *to) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    const long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len);
    const int read_ok = b && fread(b, 1, (size_t)len, f) == (size_t)len;
    fclose(f);
    uint64_t n = 0;
    for (int i = 0; read_ok && i < 8; i++)
        n |= (uint64_t)b[i] << (8 * i);
    char *hdr = read_ok && n + 8 <= (uint64_t)len ? strndup((const char *)b + 8, (size_t)n) : NULL;
    char *at = hdr ? strstr(hdr, from) : NULL;
    if (!at) {
        free(b), free(hdr);
        return 0;
    }
    const size_t head = (size_t)(at - hdr), nn = n - strlen(from) + strlen(to);
    f = fopen(path, "wb");
    unsigned char prefix[8];
    for (int i = 0; i < 8; i++)
        prefix[i] = (unsigned char)(nn >> (8 * i));
    int ok = f && fwrite(prefix, 1, 8, f) == 8 && fwrite(hdr, 1, head, f) == head &&
             fputs(to, f) >= 0 && fputs(at + strlen(from), f) >= 0 &&
             fwrite(b + 8 + n, 1, (size_t)len - 8 - n, f) == (size_t)len - 8 - n;
    if (f)
        ok = fclose(f) == 0 && ok;
    free(b), free(hdr);
    return ok;
}

/* Sets float32 values [i0, i1) of tensor `name` in the safetensors file at path to v (its
 * data_offsets read from the header); 0 if the tensor is not there. */
static int patch_f32(const char *path, const char *name, long i0, long i1, float v) {
    FILE *f = fopen(path, "r+b");
    if (!f)
        return 0;
    unsigned char len8[8];
    uint64_t n = 0;
    int ok = fread(len8, 1, 8, f) == 8;
    for (int i = 0; ok && i < 8; i++)
        n |= (uint64_t)len8[i] << (8 * i);
    char *hdr = ok && n < (1u << 24) ? calloc(1, (size_t)n + 1) : NULL;
    ok = hdr && fread(hdr, 1, (size_t)n, f) == (size_t)n;
    char key[128];
    snprintf(key, sizeof key, "\"%s\"", name);
    const char *at = ok ? strstr(hdr, key) : NULL;
    const char *offs = at ? strstr(at, "\"data_offsets\"") : NULL;
    const char *num = offs ? strchr(offs, '[') : NULL;
    ok = num != NULL;
    const long start = ok ? strtol(num + 1, NULL, 10) : 0;
    for (long i = i0; ok && i < i1; i++)
        ok = fseek(f, (long)(8 + n) + start + 4 * i, SEEK_SET) == 0 && fwrite(&v, 4, 1, f) == 1;
    free(hdr);
    return fclose(f) == 0 && ok;
}

/* rn_quantize_synthetic: an int8 model of the same architecture, its layers listed; the same
 * scales on a second call (fixed seed); bad arguments and an int8 input refused with a status. */
static void test_quantize_synthetic(void) {
    rn_model *m = NULL, *q = NULL, *q2 = NULL, *bad = NULL;
    CHECK(rn_model_create("resnet18", 3, 10, &m) == RN_OK, "create: %s", rn_last_error());
    if (!m)
        return;
    rn_model_init(m, "default", 3);
    CHECK(rn_quantize_synthetic(m, 32, 32, &q) == RN_OK, "quantize: %s", rn_last_error());
    CHECK(rn_quantize_synthetic(m, 32, 32, &q2) == RN_OK, "quantize again: %s", rn_last_error());
    if (q && q2) {
        CHECK(rn_model_is_quantized(q) && !rn_model_is_quantized(m), "int8 model out, input kept");
        int n = rn_model_quant_layers(q, NULL, 0);
        rn_quant_layer *a = calloc((size_t)n, sizeof *a), *b = calloc((size_t)n, sizeof *b);
        CHECK(n == 20 && rn_model_quant_layers(q2, b, n) == n && rn_model_quant_layers(q, a, n) == n,
              "resnet18's 20 convs quantized: %d", n);
        for (int i = 0; a && b && i < n; i++)
            CHECK(a[i].out_scale == b[i].out_scale && a[i].out_zp == b[i].out_zp,
                  "%s: the same scale on both calls", a[i].name);
        free(a);
        free(b);
        bad = (rn_model *)1;
        CHECK(rn_quantize_synthetic(q, 32, 32, &bad) == RN_ERR_ARG && bad == NULL,
              "an int8 model refused, out cleared");
        /* a NaN or an infinity in an image: its logits NaN, as float32's, the other image's as
         * alone (the quantizer had taken the NaN to the zero point: an ordinary image's logits) */
        float img[2 * 3 * 32 * 32], lg[20], clean[20];
        for (int i = 0; i < 2 * 3 * 32 * 32; i++)
            img[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
        rn_session *s = NULL;
        CHECK(rn_session_create(q, NULL, &s) == RN_OK &&
                  rn_session_forward(s, img, 2, 32, 32, RN_MODE_EVAL, clean) == RN_OK,
              "int8 session: %s", rn_last_error());
        for (int bad = 0; s && bad < 2; bad++) {
            img[300] = bad ? INFINITY : NAN;
            CHECK(rn_session_forward(s, img, 2, 32, 32, RN_MODE_EVAL, lg) == RN_OK, "int8 forward: %s",
                  rn_last_error());
            int nan = 1, same = 1;
            for (int k = 0; k < 10; k++)
                nan &= isnan(lg[k]) != 0, same &= lg[10 + k] == clean[10 + k];
            CHECK(nan && same, "%s in image 0: its logits NaN (%d), image 1's as without it (%d)",
                  bad ? "an infinity" : "a NaN", nan, same);
        }
        rn_session_free(s);
        /* what would move weights an int8 model does not train: refused, not applied to the
         * float32 classifier or the float32 copy it keeps (its outputs had changed) */
        char gpath[600];
        snprintf(gpath, sizeof gpath, "%s/int8_grads.safetensors", tmpdir);
        float x[2 * 3 * 32 * 32] = {0}, loss = 0;
        int32_t lab[2] = {1, 2};
        CHECK(rn_model_init(q, "default", 7) == RN_ERR_UNSUPPORTED && strstr(rn_last_error(), "int8"),
              "rn_model_init refuses an int8 model: %s", rn_last_error());
        CHECK(rn_model_save_gradients(q, x, lab, 2, 32, 32, 0.0f, gpath, &loss) == RN_ERR_UNSUPPORTED &&
              strstr(rn_last_error(), "int8"), "rn_model_save_gradients refuses an int8 model: %s",
              rn_last_error());
        size_t planned = 0;
        CHECK(rn_trainer_plan_bytes(q, NULL, 2, 32, 32, &planned) == RN_ERR_UNSUPPORTED,
              "rn_trainer_plan_bytes refuses the int8 model rn_trainer_create refuses: %s", rn_last_error());
        FILE *g = fopen(gpath, "rb");
        CHECK(!g, "no gradient file written");
        if (g)
            fclose(g);
        /* metadata with a NULL key or value: refused with a status (a NULL key had crashed) */
        const char *nk[] = {NULL}, *nv[] = {"x"}, *gk[] = {"k"}, *gv[] = {NULL};
        CHECK(rn_model_save_meta(q, gpath, nk, nv, 1) == RN_ERR_ARG && strstr(rn_last_error(), "NULL key"),
              "int8 save: a NULL metadata key refused: %s", rn_last_error());
        CHECK(rn_model_save_meta(q, gpath, gk, gv, 1) == RN_ERR_ARG && strstr(rn_last_error(), "NULL value"),
              "int8 save: a NULL metadata value refused: %s", rn_last_error());
        /* the int8 file round trip; then a conv's weights reshaped (the same count) refused */
        char qpath[600];
        snprintf(qpath, sizeof qpath, "%s/model_int8_shape.safetensors", tmpdir);
        rn_model *back = NULL;
        CHECK(rn_model_save(q, qpath) == RN_OK && rn_model_load(qpath, NULL, &back) == RN_OK &&
                  rn_model_is_quantized(back) && rn_model_quant_layers(back, NULL, 0) == 20,
              "int8 file round trip: %s", rn_last_error());
        /* saved again, the loaded model writes the same bytes (every tensor and scale kept) */
        char qpath2[640];
        snprintf(qpath2, sizeof qpath2, "%s.again", qpath);
        size_t n1 = 0, n2 = 0;
        unsigned char *b1 = NULL, *b2 = NULL;
        if (back && rn_model_save(back, qpath2) == RN_OK) {
            b1 = check_read_file(qpath, &n1);
            b2 = check_read_file(qpath2, &n2);
        }
        CHECK(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0,
              "an int8 file loaded and saved again: the same %zu bytes (%zu)", n1, n2);
        free(b1);
        free(b2);
        remove(qpath2);
        rn_model_free(back);
        back = NULL;
        CHECK(patch_header(qpath, "\"layer1.0.conv1.weight\":{\"dtype\":\"I8\",\"shape\":[64,64,3,3]",
                           "\"layer1.0.conv1.weight\":{\"dtype\":\"I8\",\"shape\":[64,576,1,1]"),
              "a conv's shape patched in the header");
        CHECK(rn_model_load(qpath, NULL, &back) == RN_ERR_MISMATCH && back == NULL &&
                  strstr(rn_last_error(), "layer1.0.conv1.weight") &&
                  strstr(rn_last_error(), "[64, 576, 1, 1]"),
              "int8 weights of another shape refused: %s", rn_last_error());
        remove(qpath);
        /* float32 weights into an int8 model: refused, not copied beside the int8 ones */
        char path[600];
        snprintf(path, sizeof path, "%s/model_float_into_int8.safetensors", tmpdir);
        CHECK(rn_model_save(m, path) == RN_OK, "save: %s", rn_last_error());
        CHECK(rn_model_load_weights(q, path) == RN_ERR_UNSUPPORTED && strstr(rn_last_error(), "int8"),
              "float32 weights into an int8 model refused: %s", rn_last_error());
        remove(path);
    }
    bad = (rn_model *)1;
    CHECK(rn_quantize_synthetic(m, 0, 32, &bad) == RN_ERR_ARG && bad == NULL, "height 0 refused");
    CHECK(rn_quantize_synthetic(NULL, 32, 32, &bad) == RN_ERR_ARG, "NULL model refused");
    CHECK(rn_quantize_synthetic(m, 32, 32, NULL) == RN_ERR_ARG, "NULL out refused");
    rn_model_free(q);
    rn_model_free(q2);
    rn_model_free(m);
}

/* ---- calibration and int8 models: refusals that leave state valid ---------------------------- */

/* n images of a ResNet input (c, h, w) with values in [-1, 1]. */
static float *test_images(int n, int c, int h, int w) {
    size_t count = (size_t)n * c * h * w;
    float *x = malloc(count * sizeof *x);
    for (size_t i = 0; x && i < count; i++)
        x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    return x;
}

/* A failed rn_calibrator_add (planning refuses the batch; a non-finite image) leaves the
 * calibrator as it was: quantize then works on the batches before it and gives the model a
 * calibrator without the failed batch gives. */
static void test_calibrator_failed_add(void) {
    rn_model *m = NULL, *q = NULL, *q_ref = NULL;
    CHECK(rn_model_create("resnet18", 3, 10, &m) == RN_OK, "create: %s", rn_last_error());
    if (!m)
        return;
    rn_model_init(m, "default", 11);
    const int H = 64, W = 64, per = 3 * H * W;
    float *x = test_images(2, 3, H, W);
    rn_calibrator *c = NULL, *ref = NULL;
    CHECK(rn_calibrator_create(m, H, W, "percentile", &c) == RN_OK, "create: %s", rn_last_error());
    CHECK(rn_calibrator_create(m, H, W, "percentile", &ref) == RN_OK, "create: %s", rn_last_error());
    if (!c || !ref || !x) {
        rn_calibrator_free(c), rn_calibrator_free(ref), free(x), rn_model_free(m);
        return;
    }
    CHECK(rn_calibrator_add(c, x, 2) == RN_OK && rn_calibrator_add(ref, x, 2) == RN_OK,
          "add: %s", rn_last_error());
    /* 10^6 images of 64x64: past the kernels' INT_MAX pixels, refused while planning, before
     * the (absent) images are read */
    rn_status st = rn_calibrator_add(c, x, 1000000);
    CHECK(st == RN_ERR_ARG && strstr(rn_last_error(), "batch 1000000 at 64x64 is too large"),
          "an impossible batch refused: %d %s", st, rn_last_error());
    /* quantize right after it (the session has no plan now): the batches before it */
    CHECK(rn_calibrator_convs(c) == 20, "convs after the refused batch: %d", rn_calibrator_convs(c));
    st = rn_calibrator_quantize(c, &q);
    CHECK(st == RN_OK && q, "quantize after a refused batch: %d %s", st, rn_last_error());
    rn_model_free(q);
    q = NULL;
    /* a non-finite pixel in the second image of a batch: refused naming the image */
    float *y = test_images(2, 3, H, W);
    y[per + 5] = INFINITY;
    st = rn_calibrator_add(c, y, 2);
    CHECK(st == RN_ERR_ARG && strstr(rn_last_error(), "calibration image 3 (image 1 of this batch)") &&
              strstr(rn_last_error(), "finite"),
          "an inf pixel refused naming the image: %s", rn_last_error());
    y[per + 5] = NAN;
    st = rn_calibrator_add(c, y, 2);
    CHECK(st == RN_ERR_ARG && strstr(rn_last_error(), "image 1 of this batch"),
          "a NaN pixel refused: %s", rn_last_error());
    free(y);
    CHECK(rn_calibrator_images(c) == 2 && rn_calibrator_convs(c) == 20,
          "the failed adds counted nothing: %ld images, %d convs", rn_calibrator_images(c),
          rn_calibrator_convs(c));
    st = rn_calibrator_quantize(c, &q);
    CHECK(st == RN_OK && q, "quantize after failed adds: %s", rn_last_error());
    CHECK(rn_calibrator_quantize(ref, &q_ref) == RN_OK, "quantize: %s", rn_last_error());
    if (q && q_ref) {
        rn_quant_layer a[20], b[20];
        float sa, sb;
        int za, zb;
        rn_model_quant_input(q, &sa, &za, NULL);
        rn_model_quant_input(q_ref, &sb, &zb, NULL);
        int same = sa == sb && za == zb && rn_model_quant_layers(q, a, 20) == 20 &&
                   rn_model_quant_layers(q_ref, b, 20) == 20;
        for (int i = 0; same && i < 20; i++)
            same = a[i].out_scale == b[i].out_scale && a[i].out_zp == b[i].out_zp;
        CHECK(same, "the failed batches left the statistics as they were");
    }
    rn_model_free(q), rn_model_free(q_ref);
    rn_calibrator_free(c), rn_calibrator_free(ref);
    free(x);
    rn_model_free(m);
}

/* Weights or BatchNorm statistics that are not finite, or a negative running variance: the
 * batch whose activations they make non-finite is refused naming the layer (no NaN reaches the
 * histograms), and quantize refuses what calibration could not see. */
static void test_calibrator_bad_weights(void) {
    const int H = 32, W = 32;
    float *x = test_images(2, 3, H, W);
    for (int kind = 0; kind < 4 && x; kind++) {
        rn_model *m = NULL, *q = NULL;
        CHECK(rn_model_create_stem("resnet18", 3, 10, RN_STEM_CIFAR, &m) == RN_OK, "create: %s",
              rn_last_error());
        if (!m)
            break;
        rn_model_init(m, "default", 5);
        rn_unit *u = &m->blocks[1].main[0]; /* layer1.1.conv1 */
        if (kind == 0)
            u->w[5] = NAN;
        if (kind == 1)
            u->bn_mean[3] = NAN;
        if (kind == 2)
            u->bn_var[3] = -2.0f; /* sqrt of a negative: NaN activations */
        if (kind == 3)
            u->bn_var[3] = -1e-7f; /* var + eps still positive: finite activations */
        rn_model_params_changed(m);
        rn_calibrator *c = NULL;
        CHECK(rn_calibrator_create(m, H, W, kind == 1 ? "entropy" : "percentile", &c) == RN_OK,
              "create: %s", rn_last_error());
        rn_status st = rn_calibrator_add(c, x, 2);
        if (kind < 3) {
            CHECK(st == RN_ERR_ARG && strstr(rn_last_error(), "layer1.1.conv1") &&
                      strstr(rn_last_error(), "not finite") && rn_calibrator_images(c) == 0,
                  "case %d: non-finite activations refused naming the layer: %d %s", kind, st,
                  rn_last_error());
            CHECK(rn_calibrator_quantize(c, &q) == RN_ERR_ARG && !q, "case %d: nothing to quantize",
                  kind);
        } else {
            CHECK(st == RN_OK, "case 3: calibrates: %s", rn_last_error());
            st = rn_calibrator_quantize(c, &q);
            CHECK(st == RN_ERR_ARG && !q && strstr(rn_last_error(), "layer1.1.conv1") &&
                      strstr(rn_last_error(), "layer1.1.bn1.running_var[3]"),
                  "a negative running variance refused: %d %s", st, rn_last_error());
            /* a weight made NaN after calibration: refused as the fold's */
            u->bn_var[3] = 1.0f;
            u->w[7] = NAN;
            rn_model_params_changed(m);
            st = rn_calibrator_quantize(c, &q);
            CHECK(st == RN_ERR_ARG && !q &&
                      strstr(rn_last_error(), "layer1.1.conv1: weight/bias not finite after folding "
                                              "BatchNorm"),
                  "a NaN weight refused at quantize: %d %s", st, rn_last_error());
        }
        rn_model_free(q);
        rn_calibrator_free(c);
        rn_model_free(m);
    }
    free(x);
}

/* int8 files whose scales would make the requantization infinite (a denormal output scale,
 * an input scale x weight scale past float32) are refused naming the tensor, as is running such
 * a model; a float32 model asked to load an int8 file is told the file is an int8 model. */
static void test_int8_scales(void) {
    char dir[256], path[300];
    if (!check_tmpdir("test_model", dir, sizeof dir))
        return;
    snprintf(path, sizeof path, "%s/q.safetensors", dir);
    rn_model *m = NULL, *q = NULL, *back = NULL;
    CHECK(rn_model_create_stem("resnet18", 3, 10, RN_STEM_CIFAR, &m) == RN_OK, "create: %s",
          rn_last_error());
    rn_model_init(m, "default", 3);
    CHECK(rn_quantize_synthetic(m, 32, 32, &q) == RN_OK, "quantize: %s", rn_last_error());
    if (!q) {
        rn_model_free(m);
        check_tmpdir_remove(dir);
        return;
    }
    CHECK(rn_model_save(q, path) == RN_OK, "save: %s", rn_last_error());
    rn_status st = rn_model_load_weights(m, path);
    CHECK(st == RN_ERR_UNSUPPORTED && strstr(rn_last_error(), "is an int8 model") &&
              !strstr(rn_last_error(), "not an int8 model") && strstr(rn_last_error(), path),
          "an int8 file into a float32 model: %d %s", st, rn_last_error());
    float *x = test_images(1, 3, 32, 32), logits[10];
    /* scales out of range, or whose products overflow, and classifier values that are not
     * finite: neither saved nor (a file changed by hand) loaded nor run, each named */
    for (int kind = 0; kind < 5; kind++) {
        rn_model *bad = NULL;
        CHECK(rn_quantize_synthetic(m, 32, 32, &bad) == RN_OK, "quantize: %s", rn_last_error());
        if (!bad)
            continue;
        const char *want = NULL, *tensor = NULL;
        long i0 = 0, i1 = 1;
        float v = 0.0f;
        if (kind == 0) {
            bad->stem.q_out_scale = v = 1e-40f; /* positive, finite, denormal: 1 / scale = inf */
            want = "'conv1.output_scale'", tensor = "conv1.output_scale";
        } else if (kind == 1) {
            bad->q_in_scale = 1e30f; /* in range, but in_scale x weight_scale overflows */
            for (int i = 0; i < bad->stem.cout; i++)
                bad->stem.wq_scale[i] = 1e30f;
            want = "'conv1.weight_scale'[0]";
        } else if (kind == 2) {
            bad->blocks[2].main[1].wq_scale[4] = v = 1e31f;
            want = "'layer2.0.conv2.weight_scale'[4]", tensor = "layer2.0.conv2.weight_scale";
            i0 = 4, i1 = 5;
        } else if (kind == 3) {
            bad->fc_w[7] = v = NAN;
            want = "'fc.weight'[7] is not finite", tensor = "fc.weight", i0 = 7, i1 = 8;
        } else {
            bad->fc_b[2] = v = INFINITY;
            want = "'fc.bias'[2] is not finite", tensor = "fc.bias", i0 = 2, i1 = 3;
        }
        CHECK(rn_model_save(q, path) == RN_OK, "save: %s", rn_last_error());
        st = rn_model_save(bad, path);
        CHECK(st == RN_ERR_ARG && strstr(rn_last_error(), want) && strstr(rn_last_error(), path),
              "case %d: not saved, naming %s: %d %s", kind, want, st, rn_last_error());
        rn_model *same = NULL; /* and the file there is the good one still */
        CHECK(rn_model_load(path, NULL, &same) == RN_OK, "case %d: the file kept: %s", kind,
              rn_last_error());
        rn_model_free(same);
        if (kind == 1) { /* the file's two scales, each in range */
            CHECK(patch_f32(path, "input_scale", 0, 1, 1e30f) &&
                      patch_f32(path, "conv1.weight_scale", 0, bad->stem.cout, 1e30f),
                  "case %d: file patched", kind);
        } else {
            CHECK(patch_f32(path, tensor, i0, i1, v), "case %d: file patched", kind);
        }
        st = rn_model_load(path, NULL, &back);
        CHECK(st == RN_ERR_FORMAT && !back && strstr(rn_last_error(), want) &&
                  strstr(rn_last_error(), path),
              "case %d: refused naming %s: %d %s", kind, want, st, rn_last_error());
        rn_model_free(back);
        back = NULL;
        if (kind < 3) {
            st = rn_model_forward(bad, x, 1, 32, 32, RN_MODE_EVAL, logits);
            CHECK(st == RN_ERR_ARG && strstr(rn_last_error(), want),
                  "case %d: the model in memory refused to run: %d %s", kind, st, rn_last_error());
        }
        rn_model_free(bad);
    }
    free(x);
    rn_model_free(q);
    rn_model_free(m);
    check_tmpdir_remove(dir);
}

/* rn_session_forward_features on a session of `prec` over model m (fc_w, fc_b: the float32
 * classifier, the same in the int8 model), batches of 1 and 3: the logits of the same pass
 * equal rn_session_forward's bit for bit, the features equal with or without the logits, and
 * the classifier applied to them in double gives the logits within float32 sums' error. */
static void check_features(const rn_model *m, const char *prec, const float *fc_w,
                           const float *fc_b) {
    enum { H = 32, W = 32, NMAX = 3 };
    const int K = rn_model_num_classes(m), D = rn_model_feature_dim(m);
    float *x = malloc(sizeof(float) * NMAX * 3 * H * W);
    float *lg = malloc(sizeof(float) * NMAX * K), *lg2 = malloc(sizeof(float) * NMAX * K);
    float *f = malloc(sizeof(float) * NMAX * D), *f2 = malloc(sizeof(float) * NMAX * D);
    rn_session_config cfg;
    rn_session_config_default(&cfg);
    cfg.precision = prec;
    rn_session *s = NULL;
    CHECK(x && lg && lg2 && f && f2 && rn_session_create(m, &cfg, &s) == RN_OK,
          "%s session: %s", prec, rn_last_error());
    for (int i = 0; i < NMAX * 3 * H * W; i++)
        x[i] = (float)((i * 53) % 127) / 63.0f - 1.0f;
    for (int n = 1; s && n <= NMAX; n += 2) {
        CHECK(rn_session_forward(s, x, n, H, W, RN_MODE_EVAL, lg) == RN_OK &&
                  rn_session_forward_features(s, x, n, H, W, RN_MODE_EVAL, f, lg2) == RN_OK,
              "%s batch %d: %s", prec, n, rn_last_error());
        CHECK(memcmp(lg, lg2, sizeof(float) * n * K) == 0,
              "%s batch %d: the logits of the features' pass are rn_session_forward's", prec, n);
        for (int i = 0; i < n * D; i++)
            f2[i] = NAN;
        CHECK(rn_session_forward_features(s, x, n, H, W, RN_MODE_EVAL, f2, NULL) == RN_OK &&
                  memcmp(f, f2, sizeof(float) * n * D) == 0,
              "%s batch %d: the features without the logits are those with them", prec, n);
        double worst = 0.0, top = 0.0;
        int positive = 0;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < K; k++) {
                double z = fc_b[k];
                for (int c = 0; c < D; c++)
                    z += (double)f[(size_t)i * D + c] * fc_w[(size_t)k * D + c];
                worst = fmax(worst, fabs(z - lg[(size_t)i * K + k]));
                top = fmax(top, fabs(lg[(size_t)i * K + k]));
            }
        for (int i = 0; i < n * D; i++)
            positive += f[i] > 0.0f;
        CHECK(worst <= 1e-5 * top + 1e-6 && positive > n * D / 8,
              "%s batch %d: fc(features) = logits (max |diff| %g of %g; %d of %d features > 0)",
              prec, n, worst, top, positive, n * D);
    }
    CHECK(rn_session_forward_features(s, x, 1, H, W, RN_MODE_EVAL, NULL, lg) == RN_ERR_ARG,
          "%s: NULL features refused", prec);
    rn_session_free(s);
    free(x), free(lg), free(lg2), free(f), free(f2);
}

/* Every stage's maps of a batch of 3 in `prec` (on model mp) against fp32's (on m): the shapes
 * rn_model_stage_shape gives, within `tol` of the fp32 maps' largest value in RMS; the pool stage
 * equals rn_session_forward_features bit for bit. */
static void check_stages(const rn_model *m, const rn_model *mp, const char *prec, double tol) {
    enum { N = 3, H = 32, W = 32 };
    static const int want[6][3] = {{64, 8, 8}, {64, 8, 8}, {128, 4, 4}, {256, 2, 2}, {512, 1, 1},
                                   {512, 1, 1}};
    float *x = malloc(sizeof(float) * N * 3 * H * W);
    float *a = malloc(sizeof(float) * N * 64 * 8 * 8), *b = malloc(sizeof(float) * N * 64 * 8 * 8);
    rn_session_config cfg;
    rn_session_config_default(&cfg);
    rn_session *s32 = NULL, *sp = NULL;
    CHECK(x && a && b && rn_session_create(m, NULL, &s32) == RN_OK, "fp32 session: %s", rn_last_error());
    cfg.precision = prec;
    CHECK(rn_session_create(mp, &cfg, &sp) == RN_OK, "%s session: %s", prec, rn_last_error());
    for (int i = 0; i < N * 3 * H * W; i++)
        x[i] = (float)((i * 53) % 127) / 63.0f - 1.0f;
    for (int st = 0; s32 && sp && st <= RN_STAGE_POOL; st++) {
        int c, oh, ow;
        CHECK(rn_model_stage_shape(mp, st, H, W, &c, &oh, &ow) == RN_OK && c == want[st][0] &&
                  oh == want[st][1] && ow == want[st][2],
              "stage %d (%s) of resnet18 at 32x32: (%d, %d, %d)", st, rn_model_stage_name(mp, st), c,
              oh, ow);
        CHECK(rn_session_forward_stage(s32, x, N, H, W, RN_MODE_EVAL, st, a) == RN_OK &&
                  rn_session_forward_stage(sp, x, N, H, W, RN_MODE_EVAL, st, b) == RN_OK,
              "%s stage %d: %s", prec, st, rn_last_error());
        const size_t count = (size_t)N * c * oh * ow;
        double top = 0.0, err = 0.0;
        for (size_t i = 0; i < count; i++) {
            top = fmax(top, fabs(a[i]));
            err += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        }
        err = sqrt(err / (double)count);
        CHECK(top > 0.0 && err <= tol * top, "%s stage %d (%s): RMS difference from fp32 %g of %g",
              prec, st, rn_model_stage_name(mp, st), err, top);
    }
    /* the pool stage is the features */
    float f[N * 512];
    CHECK(sp && rn_session_forward_features(sp, x, N, H, W, RN_MODE_EVAL, f, NULL) == RN_OK &&
              memcmp(f, b, sizeof f) == 0, "%s: the pool stage is rn_session_forward_features'", prec);
    CHECK(rn_session_forward_stage(s32, x, 1, H, W, RN_MODE_EVAL, 6, a) == RN_ERR_ARG &&
              rn_session_forward_stage(s32, x, 1, H, W, RN_MODE_EVAL, -1, a) == RN_ERR_ARG,
          "stages outside 0..5 refused");
    CHECK(rn_model_stage_index(m, "layer3") == 3 && rn_model_stage_index(m, "maxpool") == 0 &&
              rn_model_stage_index(m, "stem") == 0 && rn_model_stage_index(m, "flatten") == 5 &&
              rn_model_stage_index(m, "avgpool") == 5 && rn_model_stage_index(m, "conv.resnet_block2") < 0 &&
              rn_model_stage_index(m, "layer5") < 0 && strcmp(rn_model_stage_name(m, 4), "layer4") == 0,
          "resnet18's stage names");
    rn_session_free(s32);
    rn_session_free(sp);
    free(x), free(a), free(b);
}

static void test_session_features(void) {
    rn_model *m = NULL, *q = NULL;
    CHECK(rn_model_create("resnet18", 3, 10, &m) == RN_OK && rn_model_init(m, "default", 3) == RN_OK,
          "create: %s", rn_last_error());
    if (!m)
        return;
    CHECK(rn_model_feature_dim(m) == 512 && rn_model_feature_dim(NULL) == 0, "resnet18's 512 features");
    check_features(m, "fp32", m->fc_w, m->fc_b);
    check_features(m, "bf16", m->fc_w, m->fc_b);
    check_stages(m, m, "bf16", 0.005);
    CHECK(rn_quantize_synthetic(m, 32, 32, &q) == RN_OK, "quantize: %s", rn_last_error());
    if (q) {
        check_features(q, "int8", m->fc_w, m->fc_b);
        check_stages(m, q, "int8", 0.03);
        /* a NaN in image 0: its features NaN (as float32's), image 1's as without it */
        float img[2 * 3 * 32 * 32], clean[2 * 512], f[2 * 512];
        for (int i = 0; i < 2 * 3 * 32 * 32; i++)
            img[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
        rn_session *s = NULL;
        CHECK(rn_session_create(q, NULL, &s) == RN_OK &&
                  rn_session_forward_features(s, img, 2, 32, 32, RN_MODE_EVAL, clean, NULL) == RN_OK,
              "int8 features: %s", rn_last_error());
        img[300] = NAN;
        CHECK(s && rn_session_forward_features(s, img, 2, 32, 32, RN_MODE_EVAL, f, NULL) == RN_OK,
              "int8 features: %s", rn_last_error());
        int nan = 1, same = 1;
        for (int c = 0; s && c < 512; c++)
            nan &= isnan(f[c]) != 0, same &= f[512 + c] == clean[512 + c];
        CHECK(nan && same, "a NaN in image 0: its int8 features NaN (%d), image 1's kept (%d)", nan,
              same);
        rn_session_free(s);
    }
    rn_model_free(q);
    rn_model_free(m);
}

int main(void) {
    if (!check_tmpdir("test_quantize", tmpdir, sizeof tmpdir))
        return 1;
    test_session_features();
    test_quantize_synthetic();
    test_calibrator_failed_add();
    test_calibrator_bad_weights();
    test_int8_scales();
    check_tmpdir_remove(tmpdir);
    return check_done("test_quantize");
}
