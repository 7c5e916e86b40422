/*
 * test_model.c - the model tables, weights in and out, and the forward pass
 * against an unfused forward built from the reference ops only (with
 * RN_TEST_QUICK=1 in the environment, for one architecture of each kind of
 * block only).
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "ops/conv2d.h"
#include "ops/ops.h"
#include "resnet.h"

/* ---- a reference forward: reference ops, BatchNorm never folded ------------------ */

static float *ref_unit(const rn_unit *u, const float *x, int n, int *h, int *w, rn_mode mode,
                       const float *res, int relu) {
    rn_conv_shape s = {.n = n, .cin = u->cin, .h = *h, .w = *w, .cout = u->cout, .kh = u->k,
                       .kw = u->k, .stride = u->stride, .pad = u->pad, .groups = u->groups};
    conv2d_shape_init(&s);
    size_t M = (size_t)n * s.ho * s.wo;
    float *y = malloc(M * u->cout * sizeof *y);
    conv2d_forward_ref(&s, x, u->w, u->b, NULL, 0, y);
    float *scale = malloc(u->cout * sizeof *scale), *shift = malloc(u->cout * sizeof *shift);
    if (u->has_bn) {
        float *mean = malloc(u->cout * sizeof *mean), *var = malloc(u->cout * sizeof *var);
        if (mode == RN_MODE_TRAIN)
            batchnorm_stats_ref(y, u->cout, M, mean, var);
        else
            memcpy(mean, u->bn_mean, u->cout * sizeof *mean), memcpy(var, u->bn_var, u->cout * sizeof *var);
        batchnorm_scale_shift(u->cout, u->bn_weight, u->bn_bias, mean, var, RN_BN_EPS, scale, shift);
        free(mean), free(var);
    } else {
        for (int c = 0; c < u->cout; c++)
            scale[c] = 1.0f, shift[c] = 0.0f;
    }
    batchnorm_apply_ref(y, u->cout, M, scale, shift, res, relu, y);
    free(scale), free(shift);
    *h = s.ho, *w = s.wo;
    return y;
}

static void ref_forward(const rn_model *m, const float *x_nchw, int n, int h, int w, rn_mode mode,
                        float *logits) {
    float *x = malloc((size_t)n * m->in_channels * h * w * sizeof *x);
    layout_nchw_to_cnhw(x_nchw, n, m->in_channels, (size_t)h * w, x);
    float *y = ref_unit(&m->stem, x, n, &h, &w, mode, NULL, 1);
    free(x);
    int ph = maxpool2d_out_size(h, 3, 2, 1), pw = maxpool2d_out_size(w, 3, 2, 1);
    float *cur = malloc((size_t)64 * n * ph * pw * sizeof *cur);
    maxpool2d_forward_ref(y, 64 * n, h, w, 3, 2, 1, cur);
    free(y);
    h = ph, w = pw;
    for (int b = 0; b < m->n_blocks; b++) {
        const rn_block *blk = &m->blocks[b];
        int bh = h, bw = w;
        float *t = cur;
        for (int j = 0; j < blk->n_main; j++) {
            int last = j == blk->n_main - 1;
            float *sc = NULL;
            if (last && blk->has_shortcut) {
                int sh = bh, sw = bw;
                sc = ref_unit(&blk->shortcut, cur, n, &sh, &sw, mode, NULL, 0);
            }
            float *next = ref_unit(&blk->main[j], t, n, &h, &w, mode, last ? (sc ? sc : cur) : NULL, 1);
            if (t != cur)
                free(t);
            free(sc);
            t = next;
        }
        free(cur);
        cur = t;
    }
    float *feat = malloc((size_t)m->feat * n * sizeof *feat);
    avgpool_global_forward_ref(cur, (size_t)m->feat * n, (size_t)h * w, feat);
    linear_forward_ref(feat, m->feat, n, m->fc_w, m->fc_b, m->num_classes, logits);
    free(cur), free(feat);
}

/* Non-trivial BatchNorm statistics, so folding and batch statistics matter.
 * The last BN of each residual branch is damped (weight ~0.2), as in a
 * trained network: with full-size branches 50+ blocks of train-mode BN on
 * tiny feature maps amplify float32 rounding until no two float
 * implementations agree. */
static void fill_bn(rn_unit *u, float weight_lo, float weight_hi) {
    if (!u->has_bn)
        return;
    check_fill(u->bn_weight, u->cout, weight_lo, weight_hi);
    check_fill(u->bn_bias, u->cout, -0.1f, 0.1f);
    check_fill(u->bn_mean, u->cout, -0.2f, 0.2f);
    check_fill(u->bn_var, u->cout, 0.5f, 2.0f);
}

static void randomize_bn(rn_model *m) {
    fill_bn(&m->stem, 0.5f, 1.5f);
    for (int b = 0; b < m->n_blocks; b++) {
        rn_block *blk = &m->blocks[b];
        for (int j = 0; j < blk->n_main; j++)
            fill_bn(&blk->main[j], j == blk->n_main - 1 ? 0.1f : 0.5f, j == blk->n_main - 1 ? 0.3f : 1.5f);
        if (blk->has_shortcut)
            fill_bn(&blk->shortcut, 0.5f, 1.5f);
    }
    m->version++;
}

static void test_forward_vs_reference(void) {
    /* RN_TEST_QUICK=1 (the sanitizer run, where the reference ops are slow):
     * one architecture per kind of block */
    const char *quick = getenv("RN_TEST_QUICK");
    const char *kinds = "d2l_resnet18 resnet18 resnet50 resnext50_32x4d";
    for (int a = 0; a < rn_arch_count(); a++) {
        /* the 101-layer wide and ResNeXt nets run the same code as their 50-layer twins */
        if (strstr(rn_arch_name(a), "101_"))
            continue;
        if (quick && *quick == '1' && !strstr(kinds, rn_arch_name(a)))
            continue;
        for (int mode = 0; mode < 2; mode++) {
            rn_model *m = NULL;
            int in_ch = 1 + 2 * (a % 2), classes = a % 2 ? 10 : 7, n = 2, h = 32 + 8 * (a % 2), w = 40;
            CHECK(rn_model_create(rn_arch_name(a), in_ch, classes, &m) == RN_OK, "create %s", rn_arch_name(a));
            rn_model_init(m, "default", 1234 + a);
            randomize_bn(m);
            size_t nx = (size_t)n * in_ch * h * w;
            float *x = malloc(nx * sizeof *x), *y = malloc(n * classes * sizeof *y),
                  *yr = malloc(n * classes * sizeof *yr);
            check_fill(x, nx, -1.0f, 1.0f);
            CHECK(rn_model_forward(m, x, n, h, w, (rn_mode)mode, y) == RN_OK, "forward %s: %s",
                  rn_arch_name(a), rn_last_error());
            ref_forward(m, x, n, h, w, (rn_mode)mode, yr);
            double err = check_rel_err(y, yr, (size_t)n * classes);
            CHECK(err < 1e-4, "%s mode %d: fast vs reference forward rel err %.3g", rn_arch_name(a), mode, err);
            printf("%-13s %s: fast vs reference forward, rel err %.2e\n", rn_arch_name(a),
                   mode ? "train" : "eval ", err);
            /* determinism across thread counts */
            float *y1 = malloc(n * classes * sizeof *y1);
            rn_set_threads(1);
            rn_model_forward(m, x, n, h, w, (rn_mode)mode, y1);
            rn_set_threads(2);
            rn_model_forward(m, x, n, h, w, (rn_mode)mode, y);
            rn_set_threads(0);
            CHECK(memcmp(y, y1, n * classes * sizeof *y) == 0, "%s: 1 and 2 threads differ", rn_arch_name(a));
            free(x), free(y), free(yr), free(y1);
            rn_model_free(m);
        }
    }
}

/* ---- structure -------------------------------------------------------------------------- */

static void test_param_counts(void) {
    /* torchvision's parameter counts for 3 input channels and 1000 classes */
    static const struct { const char *arch; int64_t params; } want[] = {
        {"resnet18", 11689512}, {"resnet34", 21797672}, {"resnet50", 25557032},
        {"resnet101", 44549160}, {"resnet152", 60192808}, {"wide_resnet50_2", 68883240},
        {"wide_resnet101_2", 126886696}, {"resnext50_32x4d", 25028904}, {"resnext101_32x8d", 88791336},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        rn_model *m = NULL;
        CHECK(rn_model_create(want[i].arch, 3, 1000, &m) == RN_OK, "create %s", want[i].arch);
        CHECK(rn_model_param_count(m) == want[i].params, "%s: %lld params, torchvision has %lld",
              want[i].arch, (long long)rn_model_param_count(m), (long long)want[i].params);
        rn_model_free(m);
    }
    rn_model *m = NULL;
    rn_model_create("resnet18", 3, 1000, &m);
    double gflop = rn_model_flops(m, 224, 224) / 1e9;
    CHECK(fabs(gflop - 3.628) < 0.005, "resnet18 at 224: %.4f GFLOP, expected 3.628", gflop);
    int count = 0;
    CHECK(rn_model_summary(m, 224, 224, NULL, 0, &count) == RN_OK && count > 50, "summary rows");
    CHECK(rn_model_summary(m, 8, 8, NULL, 0, &count) == RN_OK, "8x8 still has non-empty outputs");
    float x[3 * 2 * 2] = {0}, y[1000];
    CHECK(rn_model_forward(m, x, 1, 2, 2, RN_MODE_EVAL, y) == RN_OK, "2x2 input: %s", rn_last_error());
    CHECK(rn_model_forward(m, x, 1, 0, 2, RN_MODE_EVAL, y) == RN_ERR_ARG, "0x2 input refused");
    CHECK(rn_model_forward(m, x, 0, 2, 2, RN_MODE_EVAL, y) == RN_ERR_ARG, "batch 0 refused");
    rn_model_free(m);
    CHECK(rn_model_create("resnet19", 3, 10, &m) == RN_ERR_ARG && strstr(rn_last_error(), "resnet19"),
          "unknown arch named: %s", rn_last_error());
    rn_model_free(NULL);
    rn_model_create("resnet18", 3, 1000, &m);
    CHECK(strcmp(m->tensors[0].name, "conv1.weight") == 0, "first tensor %s", m->tensors[0].name);
    rn_model_free(m);
    rn_model_create("d2l_resnet18", 1, 10, &m);
    int found = 0;
    for (int i = 0; i < m->n_tensors; i++)
        found += strcmp(m->tensors[i].name, "conv.resnet_block2.0.conv3.bias") == 0 ||
                 strcmp(m->tensors[i].name, "conv.block.1.num_batches_tracked") == 0;
    CHECK(found == 2, "d2l names");
    rn_model_free(m);
}

/* ---- weights in and out ------------------------------------------------------------------- */

static void test_save_load(void) {
    const char *path = "build/tests/tmp_model.safetensors";
    rn_model *m = NULL, *m2 = NULL;
    rn_model_create("resnet18", 2, 5, &m);
    rn_model_init(m, "default", 7);
    randomize_bn(m);
    m->counters[3] = 42;
    CHECK(rn_model_save(m, path) == RN_OK, "save: %s", rn_last_error());
    CHECK(rn_model_load(path, NULL, &m2) == RN_OK, "load: %s", rn_last_error());
    if (!m2)
        return;
    CHECK(rn_model_in_channels(m2) == 2 && rn_model_num_classes(m2) == 5, "shapes from the file");
    CHECK(memcmp(m->params, m2->params, m->n_params * 4) == 0, "parameters round trip");
    CHECK(m2->counters[3] == 42, "num_batches_tracked round trip");
    rn_model_free(m2);

    /* every tensor is checked: rewrite the file with one defect at a time */
    st_entry *e = calloc(m->n_tensors + 1, sizeof *e);
    for (int i = 0; i < m->n_tensors; i++)
        e[i] = (st_entry){m->tensors[i].name, m->tensors[i].i64 ? ST_I64 : ST_F32, m->tensors[i].ndim,
                          m->tensors[i].shape,
                          m->tensors[i].i64 ? (void *)m->tensors[i].i64 : (void *)m->tensors[i].f32};
    int victim = 7;
    const char *vname = m->tensors[victim].name;
    /* missing */
    st_entry saved = e[victim];
    e[victim] = e[m->n_tensors - 1];
    st_write(path, e, m->n_tensors - 1, NULL, 0);
    CHECK(rn_model_load(path, "resnet18", &m2) == RN_ERR_MISMATCH && strstr(rn_last_error(), "missing") &&
              strstr(rn_last_error(), vname), "missing key: %s", rn_last_error());
    e[victim] = saved;
    /* unexpected */
    int64_t one = 1;
    float extra = 1.0f;
    e[m->n_tensors] = (st_entry){"layer9.0.weight", ST_F32, 1, &one, &extra};
    st_write(path, e, m->n_tensors + 1, NULL, 0);
    CHECK(rn_model_load(path, "resnet18", &m2) == RN_ERR_MISMATCH && strstr(rn_last_error(), "layer9.0.weight"),
          "unexpected key: %s", rn_last_error());
    /* wrong shape */
    int64_t bad_shape[4] = {64, 2, 3, 3};
    e[0].shape = bad_shape;
    st_write(path, e, m->n_tensors, NULL, 0);
    CHECK(rn_model_load_weights(m, path) == RN_ERR_MISMATCH && strstr(rn_last_error(), "conv1.weight"),
          "wrong shape: %s", rn_last_error());
    e[0].shape = m->tensors[0].shape;
    /* wrong dtype: a float tensor stored as I64 */
    e[1].dtype = ST_I64;
    e[1].data = calloc(m->tensors[1].numel, 8);
    st_write(path, e, m->n_tensors, NULL, 0);
    CHECK(rn_model_load_weights(m, path) == RN_ERR_MISMATCH && strstr(rn_last_error(), m->tensors[1].name) &&
              strstr(rn_last_error(), "dtype"), "wrong dtype: %s", rn_last_error());
    free((void *)e[1].data);
    free(e);
    CHECK(rn_model_load("build/tests/does-not-exist.safetensors", NULL, &m2) == RN_ERR_IO, "missing file");
    remove(path);
    rn_model_free(m);
}

int main(void) {
    test_param_counts();
    test_save_load();
    test_forward_vs_reference();
    return check_done("test_model");
}
