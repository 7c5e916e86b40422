/*
 * test_model.c - the model tables, weights in and out, and the forward pass
 * against an unfused forward built from the reference ops only (with
 * RN_TEST_QUICK=1 in the environment, for one architecture of each kind of
 * block only). int8 quantization and calibration: test_quantize.c.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "io/safetensors.h"
#include "model/graph.h"
#include "model/model.h"
#include "ops/conv2d.h"
#include "ops/conv_algo.h"
#include "ops/ops.h"
#include "resnet.h"
#include "train/backprop.h"

/* Where the tests' files go: a fresh directory (check_tmpdir), not the build tree, which a
 * sanitizer build in a fresh clone does not have. */
static char tmpdir[512];

/* ---- a reference forward: the schedule run with reference ops, BN never folded ---- */

/* A conv node: reference conv, then BN (running or batch statistics),
 * residual and ReLU with the reference apply. */
static void ref_conv(const rn_node *nd, const float *x, int n, rn_mode mode, const float *res,
                     float *y) {
    const rn_unit *u = nd->unit;
    rn_conv_shape s = rn_node_conv_shape(nd, n);
    size_t M = (size_t)n * s.ho * s.wo;
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
    batchnorm_apply_ref(y, u->cout, M, scale, shift, res, nd->relu, y);
    free(scale), free(shift);
}

static void ref_forward(const rn_model *m, const float *x_nchw, int n, int h, int w, rn_mode mode,
                        float *logits) {
    rn_graph *g = NULL;
    if (rn_graph_build(m, h, w, &g) != RN_OK) {
        CHECK(0, "graph %s %dx%d: %s", m->arch->name, h, w, rn_last_error());
        return;
    }
    float **val = calloc((size_t)g->n_values, sizeof *val);
    for (int v = 0; v < g->n_values; v++)
        val[v] = malloc(rn_value_floats(g, v, n) * sizeof(float));
    layout_nchw_to_cnhw(x_nchw, n, m->in_channels, (size_t)h * w, val[0]);
    for (int i = 0; i < g->n_nodes; i++) {
        const rn_node *nd = &g->nodes[i];
        const rn_value *vi = &g->values[nd->in];
        switch (nd->op) {
        case RN_NODE_CONV:
            ref_conv(nd, val[nd->in], n, mode, nd->res >= 0 ? val[nd->res] : NULL, val[nd->out]);
            break;
        case RN_NODE_MAXPOOL:
            maxpool2d_forward_ref(val[nd->in], vi->c * n, vi->h, vi->w, nd->k, nd->stride, nd->pad,
                                  val[nd->out]);
            break;
        case RN_NODE_AVGPOOL:
            avgpool_global_forward_ref(val[nd->in], (size_t)vi->c * n, (size_t)vi->h * vi->w,
                                       val[nd->out]);
            break;
        case RN_NODE_LINEAR:
            linear_forward_ref(val[nd->in], vi->c, n, m->fc_w, m->fc_b, m->num_classes, logits);
            break;
        }
    }
    for (int v = 0; v < g->n_values; v++)
        free(val[v]);
    free(val);
    rn_graph_free(g);
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
    rn_model_params_changed(m);
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

/* ---- base width ------------------------------------------------------------------------- */

/* Writes m's tensors to path with no metadata: the architecture and width
 * must then be read off the tensor names and shapes. */
static void save_bare(const rn_model *m, const char *path) {
    st_entry *e = calloc((size_t)m->n_tensors, sizeof *e);
    for (int i = 0; e && i < m->n_tensors; i++)
        e[i] = (st_entry){m->tensors[i].name, m->tensors[i].i64 ? ST_I64 : ST_F32, m->tensors[i].ndim,
                          m->tensors[i].shape,
                          m->tensors[i].i64 ? (void *)m->tensors[i].i64 : (void *)m->tensors[i].f32};
    CHECK(e && st_write(path, e, (size_t)m->n_tensors, NULL, 0) == RN_OK, "write %s", path);
    free(e);
}

static void test_widths(void) {
    /* torchvision / D2L models rebuilt at base width 32 (tools/rn_models.py build_model(..., width=32)),
     * 1 input channel, 10 classes */
    static const struct { const char *arch; int64_t params; } want[] = {
        {"d2l_resnet18", 2799818}, {"resnet18", 2798314}, {"resnet50", 5899754}, {"resnext50_32x4d", 5771498},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        rn_model *m = NULL;
        CHECK(rn_model_create_width(want[i].arch, 1, 10, RN_STEM_IMAGENET, 32, &m) == RN_OK, "create %s width 32: %s",
              want[i].arch, rn_last_error());
        if (!m)
            continue;
        CHECK(rn_model_width(m) == 32 && rn_model_param_count(m) == want[i].params,
              "%s width 32: %lld params, PyTorch has %lld", want[i].arch, (long long)rn_model_param_count(m),
              (long long)want[i].params);
        rn_model_free(m);
    }
    rn_model *m = NULL, *m2 = NULL;
    CHECK(rn_model_create_width("resnet18", 1, 10, RN_STEM_IMAGENET, 0, &m) == RN_ERR_ARG &&
              strstr(rn_last_error(), "width 0"), "width 0 refused: %s", rn_last_error());
    CHECK(rn_model_create_width("resnet18", 1, 10, RN_STEM_IMAGENET, 4097, &m) == RN_ERR_ARG, "width 4097 refused");
    CHECK(rn_model_create_width("resnext50_32x4d", 1, 10, RN_STEM_IMAGENET, 8, &m) == RN_ERR_ARG &&
              strstr(rn_last_error(), "multiple of 64"), "ResNeXt width 8 refused: %s", rn_last_error());
    CHECK(m == NULL, "no model after a refusal");
    rn_model_create("resnet18", 1, 10, &m);
    CHECK(rn_model_width(m) == RN_DEFAULT_WIDTH, "default width");
    rn_model_free(m);

    /* the forward pass at other widths, against the reference ops */
    static const struct { const char *arch; rn_stem stem; int width; } fw[] = {
        {"d2l_resnet18", RN_STEM_CIFAR, 16}, {"resnet50", RN_STEM_IMAGENET, 24},
    };
    for (size_t i = 0; i < sizeof fw / sizeof fw[0]; i++) {
        const int n = 2, h = 32, w = 40, classes = 7;
        CHECK(rn_model_create_width(fw[i].arch, 1, classes, fw[i].stem, fw[i].width, &m) == RN_OK, "create");
        rn_model_init(m, "default", 99);
        randomize_bn(m);
        float x[2 * 32 * 40], y[2 * 7], yr[2 * 7];
        check_fill(x, (size_t)n * h * w, -1.0f, 1.0f);
        for (int mode = 0; mode < 2; mode++) {
            CHECK(rn_model_forward(m, x, n, h, w, (rn_mode)mode, y) == RN_OK, "forward: %s", rn_last_error());
            ref_forward(m, x, n, h, w, (rn_mode)mode, yr);
            double err = check_rel_err(y, yr, (size_t)n * classes);
            CHECK(err < 1e-4, "%s width %d mode %d: fast vs reference rel err %.3g", fw[i].arch, fw[i].width, mode, err);
        }
        rn_model_free(m);
    }

    /* the width survives a save and load, with the metadata and without it */
    char path[600];
    snprintf(path, sizeof path, "%s/width.safetensors", tmpdir);
    static const struct { const char *arch; rn_stem stem; int width; } rt[] = {
        {"d2l_resnet18", RN_STEM_CIFAR, 32}, {"resnet50", RN_STEM_IMAGENET, 32},
        {"wide_resnet50_2", RN_STEM_IMAGENET, 32}, {"resnext50_32x4d", RN_STEM_IMAGENET, 48},
    };
    for (size_t i = 0; i < sizeof rt / sizeof rt[0]; i++) {
        CHECK(rn_model_create_width(rt[i].arch, 1, 10, rt[i].stem, rt[i].width, &m) == RN_OK, "create %s",
              rt[i].arch);
        rn_model_init(m, "default", 5);
        randomize_bn(m);
        for (int bare = 0; bare < 2; bare++) {
            if (bare)
                save_bare(m, path);
            else
                CHECK(rn_model_save(m, path) == RN_OK, "save: %s", rn_last_error());
            CHECK(rn_model_load(path, NULL, &m2) == RN_OK, "load %s width %d%s: %s", rt[i].arch, rt[i].width,
                  bare ? " (no metadata)" : "", rn_last_error());
            if (!m2)
                continue;
            CHECK(strcmp(rn_model_arch(m2), rt[i].arch) == 0 && rn_model_width(m2) == rt[i].width &&
                      rn_model_stem(m2) == rt[i].stem && m2->n_params == m->n_params &&
                      memcmp(m->params, m2->params, m->n_params * sizeof *m->params) == 0,
                  "%s width %d%s: loaded as %s width %d", rt[i].arch, rt[i].width, bare ? " (no metadata)" : "",
                  rn_model_arch(m2), rn_model_width(m2));
            rn_model_free(m2);
            m2 = NULL;
        }
        rn_model_free(m);
    }
    remove(path);
}

/* ---- weights in and out ------------------------------------------------------------------- */

static void test_save_load(void) {
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", tmpdir);
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
    e[1] = (st_entry){m->tensors[1].name, ST_F32, m->tensors[1].ndim, m->tensors[1].shape,
                      m->tensors[1].f32};
    /* a file that does not fit leaves the model as it was: every float doubled in the file,
     * then one unexpected tensor (found after the others were checked), then the last
     * tensor's shape wrong; the file without a defect then loads the doubled values */
    float **orig = calloc(m->n_tensors, sizeof *orig), **twice = calloc(m->n_tensors, sizeof *twice);
    for (int i = 0; i < m->n_tensors; i++) {
        if (m->tensors[i].i64)
            continue;
        const size_t bytes = m->tensors[i].numel * sizeof(float);
        orig[i] = malloc(bytes), twice[i] = malloc(bytes);
        memcpy(orig[i], m->tensors[i].f32, bytes);
        for (size_t j = 0; j < m->tensors[i].numel; j++)
            twice[i][j] = 2.0f * orig[i][j] + 1.0f;
        e[i].data = twice[i];
    }
    int last = m->n_tensors - 1; /* the last float tensor: given one more axis, the same values */
    while (last > 0 && m->tensors[last].i64)
        last--;
    int64_t last_bad[4] = {1, 1, 1, 1};
    for (int d = 0; d < m->tensors[last].ndim && d < 3; d++)
        last_bad[d + 1] = m->tensors[last].shape[d];
    for (int defect = 0; defect < 3; defect++) {
        e[last].shape = defect == 1 ? last_bad : m->tensors[last].shape;
        e[last].ndim = m->tensors[last].ndim + (defect == 1);
        st_write(path, e, m->n_tensors + (defect == 0), NULL, 0);
        const rn_status st = rn_model_load_weights(m, path);
        int kept = 1, loaded = 1;
        for (int i = 0; i < m->n_tensors; i++)
            if (orig[i]) {
                const size_t bytes = m->tensors[i].numel * sizeof(float);
                kept = kept && memcmp(m->tensors[i].f32, orig[i], bytes) == 0;
                loaded = loaded && memcmp(m->tensors[i].f32, twice[i], bytes) == 0;
            }
        if (defect < 2)
            CHECK(st == RN_ERR_MISMATCH && kept, "%s: refused (%d), the model unchanged",
                  defect == 0 ? "an unexpected tensor" : "the last tensor's shape", (int)st);
        else
            CHECK(st == RN_OK && loaded, "the file without a defect loads: %s", rn_last_error());
    }
    for (int i = 0; i < m->n_tensors; i++)
        free(orig[i]), free(twice[i]);
    free(orig);
    free(twice);
    free(e);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/does-not-exist.safetensors", tmpdir);
    CHECK(rn_model_load(missing, NULL, &m2) == RN_ERR_IO, "missing file");
    remove(path);
    /* metadata with a NULL key or value: refused with a status, nothing written (a NULL key had
     * crashed the save, either on the ONNX export) */
    const char *nk[] = {NULL}, *nv[] = {"x"}, *gk[] = {"k"}, *gv[] = {NULL};
    snprintf(path, sizeof path, "%s/null_meta.safetensors", tmpdir);
    CHECK(rn_model_save_meta(m, path, nk, nv, 1) == RN_ERR_ARG && strstr(rn_last_error(), "NULL key"),
          "a NULL metadata key refused: %s", rn_last_error());
    CHECK(rn_model_save_meta(m, path, gk, gv, 1) == RN_ERR_ARG && strstr(rn_last_error(), "NULL value"),
          "a NULL metadata value refused: %s", rn_last_error());
    rn_onnx_options o;
    rn_onnx_options_default(&o);
    o.meta_keys = nk, o.meta_values = nv, o.meta_count = 1;
    snprintf(path, sizeof path, "%s/null_meta.onnx", tmpdir);
    CHECK(rn_model_export_onnx(m, path, &o) == RN_ERR_ARG && strstr(rn_last_error(), "NULL key"),
          "ONNX export: a NULL metadata key refused: %s", rn_last_error());
    o.meta_keys = gk, o.meta_values = gv;
    CHECK(rn_model_export_onnx(m, path, &o) == RN_ERR_ARG && strstr(rn_last_error(), "NULL value"),
          "ONNX export: a NULL metadata value refused: %s", rn_last_error());
    FILE *f = fopen(path, "rb");
    CHECK(!f, "no ONNX file written");
    if (f)
        fclose(f);
    rn_model_free(m);
}

/* ---- sessions: concurrency, weight changes, batch sizes ---------------------------------- */

typedef struct job {
    rn_session *s;
    const float *x;
    int n, h, w, rounds;
    float *y;
    int ok;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    j->ok = 1;
    for (int r = 0; r < j->rounds; r++)
        j->ok &= rn_session_forward(j->s, j->x, j->n, j->h, j->w, RN_MODE_EVAL, j->y) == RN_OK;
    return NULL;
}

static void test_sessions(void) {
    rn_model *m = NULL;
    rn_model_create("resnet18", 3, 10, &m);
    rn_model_init(m, "default", 5);
    randomize_bn(m);
    const int n = 3, h = 40, w = 36, k = 10;
    size_t nx = (size_t)n * 3 * h * w;
    float *xa = malloc(nx * sizeof *xa), *xb = malloc(nx * sizeof *xb);
    check_fill(xa, nx, -1.0f, 1.0f);
    check_fill(xb, nx, -1.0f, 1.0f);
    float ya[30], yb[30], ra[30], rb[30];

    /* two sessions on one model, one thread each, against the same sessions run alone */
    rn_session *sa = NULL, *sb = NULL;
    CHECK(rn_session_create(m, NULL, &sa) == RN_OK && rn_session_create(m, NULL, &sb) == RN_OK,
          "create sessions: %s", rn_last_error());
    rn_set_threads(1);
    rn_session_forward(sa, xa, n, h, w, RN_MODE_EVAL, ra);
    rn_session_forward(sb, xb, n, h, w, RN_MODE_EVAL, rb);
    job ja = {sa, xa, n, h, w, 20, ya, 0}, jb = {sb, xb, n, h, w, 20, yb, 0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, run_job, &ja);
    pthread_create(&tb, NULL, run_job, &jb);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    rn_set_threads(0);
    CHECK(ja.ok && jb.ok && memcmp(ya, ra, sizeof ra) == 0 && memcmp(yb, rb, sizeof rb) == 0,
          "two sessions on one model, two threads at once: the same logits as alone");

    /* new weights: the session prepares them again */
    rn_model_init(m, "default", 6);
    randomize_bn(m);
    rn_session *fresh = NULL;
    rn_session_create(m, NULL, &fresh);
    rn_session_forward(fresh, xa, n, h, w, RN_MODE_EVAL, ra);
    rn_session_forward(sa, xa, n, h, w, RN_MODE_EVAL, ya);
    CHECK(memcmp(ya, ra, sizeof ra) == 0, "a session sees the model's new weights");

    /* eval mode writes residual blocks over their residual, train mode does not: the modes
     * in turn in one session, against each mode in a session of its own */
    float ye[30], yt[30], rt[30];
    rn_session *train = NULL;
    rn_session_create(m, NULL, &train);
    rn_session_forward(train, xa, n, h, w, RN_MODE_TRAIN, rt);
    rn_session_forward(sa, xa, n, h, w, RN_MODE_TRAIN, yt);
    rn_session_forward(sa, xa, n, h, w, RN_MODE_EVAL, ye);
    CHECK(memcmp(yt, rt, sizeof rt) == 0 && memcmp(ye, ra, sizeof ra) == 0,
          "eval, train, eval in one session: each mode's logits as in a session of its own");
    rn_session_free(train);

    /* a smaller batch, then another input size, in the same session */
    float y1[2 * 10], r1[10];  /* up to batch 2 of k = 10 classes */
    rn_session_forward(sa, xb, 1, h, w, RN_MODE_EVAL, y1);
    rn_session *one = NULL;
    rn_session_create(m, NULL, &one);
    rn_session_forward(one, xb, 1, h, w, RN_MODE_EVAL, r1);
    CHECK(check_rel_err(y1, r1, (size_t)k) < 1e-5, "batch 1 after batch 3 in one session");
    size_t bytes = rn_session_bytes(sa);
    rn_session_forward(sa, xb, 2, h, w, RN_MODE_EVAL, y1);
    CHECK(rn_session_bytes(sa) == bytes, "a smaller batch runs in the same memory");
    CHECK(rn_session_forward(sa, xb, 1, 32, 32, RN_MODE_EVAL, y1) == RN_OK, "another input size");

    /* configuration errors name the culprit */
    rn_session_config cfg;
    rn_session_config_default(&cfg);
    cfg.conv_algo = "fft";
    rn_session *bad = NULL;
    CHECK(rn_session_create(m, &cfg, &bad) == RN_ERR_ARG && strstr(rn_last_error(), "fft"),
          "unknown algorithm refused: %s", rn_last_error());
    cfg.conv_algo = NULL;
    cfg.isa = "sse9";
    CHECK(rn_session_create(m, &cfg, &bad) == RN_ERR_ARG && strstr(rn_last_error(), "sse9"),
          "unknown ISA refused: %s", rn_last_error());

    /* every kernel path the host supports, each forcing every algorithm, against the reference */
    ref_forward(m, xa, n, h, w, RN_MODE_EVAL, ra);
    static const char *const algos[] = {"auto", "im2col", "winograd", "winograd2", "direct",
                                        "smallmap"};
    static const char *const isas[] = {"amx", "avx512", "avx2", "portable"};
    for (int i = 0; i < 4; i++) {
        const char *isa = isas[i];
        if (!rn_isa_supported(isa)) {
            printf("test_model: sessions on %s not run: this CPU (%s) lacks it\n", isa, rn_cpu_model());
            continue;
        }
        for (int a = 0; a < (int)(sizeof algos / sizeof algos[0]); a++) {
            rn_session_config c2;
            rn_session_config_default(&c2);
            c2.isa = isa;
            c2.conv_algo = algos[a];
            rn_session *si = NULL;
            char used[128] = "";
            CHECK(rn_session_create(m, &c2, &si) == RN_OK &&
                      rn_session_forward(si, xa, n, h, w, RN_MODE_EVAL, ya) == RN_OK &&
                      rn_session_algorithms(si, used, sizeof used) == RN_OK,
                  "session on %s: %s", isa, rn_last_error());
            double err = check_rel_err(ya, ra, (size_t)n * k);
            CHECK(err < 1e-4 && strcmp(rn_session_isa(si), isa) == 0, "%s %s: rel err %.2e", isa,
                  algos[a], err);
            if (!strcmp(algos[a], "smallmap")) /* at 40x36 the last stage is 2x2: it takes it */
                CHECK(strstr(used, "smallmap") != NULL, "%s: smallmap forced, ran %s", isa, used);
            printf("test_model: resnet18 on %s, --conv-algo %s (%s): rel err %.2e\n", isa, algos[a],
                   used, err);
            rn_session_free(si);
        }
    }

    rn_session_free(sa);
    rn_session_free(sb);
    rn_session_free(fresh);
    rn_session_free(one);
    free(xa), free(xb);
    rn_model_free(m);
}

/* ---- the trainer's memory ---------------------------------------------------------------- */

static void test_trainer_memory(void) {
    rn_model *m = NULL;
    rn_model_create("resnet18", 1, 10, &m);
    rn_train_config cfg;
    rn_train_config_default(&cfg);
    rn_trainer *t = NULL;
    CHECK(rn_trainer_create(m, &cfg, &t) == RN_OK, "trainer: %s", rn_last_error());
    float x[4 * 32 * 32];
    int32_t y[4] = {1, 2, 3, 4};
    check_fill(x, 4 * 32 * 32, -1.0f, 1.0f);
    rn_step_result r;
    CHECK(rn_trainer_step(t, x, y, 4, 32, 32, &r) == RN_OK, "step, batch 4: %s", rn_last_error());
    size_t bytes = rn_trainer_bytes(t);
    CHECK(rn_trainer_step(t, x, y, 3, 32, 32, &r) == RN_OK && rn_trainer_bytes(t) == bytes,
          "a smaller last batch runs in the same memory (%zu -> %zu bytes)", bytes, rn_trainer_bytes(t));
    CHECK(rn_trainer_steps(t) == 2 && !r.skipped, "two steps counted");
    CHECK(r.grad_norm == 0.0, "no gradient norm without clipping");
    rn_trainer_free(t);
    /* gradient clipping: a norm that is not a finite number >= 0 is refused; a step reports the
     * norm before clipping */
    const double bad_clip[] = {NAN, -1.0, INFINITY};
    for (int i = 0; i < 3; i++) {
        cfg.clip_grad_norm = bad_clip[i];
        t = NULL;
        CHECK(rn_trainer_create(m, &cfg, &t) == RN_ERR_ARG && !t && strstr(rn_last_error(), "clipping"),
              "clipping norm %g refused", bad_clip[i]);
    }
    cfg.clip_grad_norm = 1e-3;
    CHECK(rn_trainer_create(m, &cfg, &t) == RN_OK, "trainer with clipping: %s", rn_last_error());
    CHECK(rn_trainer_step(t, x, y, 4, 32, 32, &r) == RN_OK && !r.skipped && r.grad_norm > 1e-3 &&
          isfinite(r.grad_norm), "a clipped step reports the norm before clipping (%g)", r.grad_norm);
    rn_trainer_free(t);
    rn_model_free(m);
}

/* ---- the training step's stamps (dev/profile_train) ---------------------------------------- */

typedef struct stamp_log {
    int count, bad_order;
    int last_node;          /* forward: rising; backward: falling */
    int backward;           /* set by the test between the two passes */
    int seen[64][RN_BP_PARTS];
} stamp_log;

static void log_stamp(void *ctx, int node, rn_bp_part part) {
    stamp_log *l = ctx;
    const int back_part = part >= RN_BP_NORM_BACK && part <= RN_BP_DATA_GRAD;
    const int fwd_part = part <= RN_BP_NORM;
    if ((!l->backward && (node < l->last_node || back_part)) ||
        (l->backward && (node > l->last_node || fwd_part)))
        l->bad_order++;
    l->last_node = node;
    if (node + 1 >= 0 && node + 1 < 64)
        l->seen[node + 1][part]++;
    l->count++;
}

static void test_step_stamps(void) {
    rn_model *m = NULL;
    CHECK(rn_model_create("resnet18", 3, 10, &m) == RN_OK, "create: %s", rn_last_error());
    rn_model_init(m, "default", 3);
    rn_backprop *bp = NULL, *plain = NULL;
    CHECK(rn_backprop_create(m, NULL, -1, &bp) == RN_OK && rn_backprop_create(m, NULL, -1, &plain) == RN_OK,
          "backprop: %s", rn_last_error());
    enum { B = 2, S = 32 };
    float x[B * 3 * S * S];
    int32_t y[B] = {1, 7};
    check_fill(x, B * 3 * S * S, -1.0f, 1.0f);
    float *g1 = calloc(m->n_params, sizeof *g1), *g2 = calloc(m->n_params, sizeof *g2);
    stamp_log l = {0};
    rn_backprop_set_stamp(bp, log_stamp, &l);
    float loss1 = 0, loss2 = 0;
    int c1, c2;
    l.last_node = -1;
    CHECK(rn_backprop_forward(bp, x, y, NULL, 1.0f, B, S, S, 0.0f, &loss1, &c1) == RN_OK, "forward with stamps: %s",
          rn_last_error());
    l.backward = 1, l.last_node = 1 << 30;
    CHECK(rn_backprop_backward(bp, g1, NULL, NULL) == RN_OK, "backward with stamps: %s", rn_last_error());
    CHECK(rn_backprop_forward(plain, x, y, NULL, 1.0f, B, S, S, 0.0f, &loss2, &c2) == RN_OK &&
              rn_backprop_backward(plain, g2, NULL, NULL) == RN_OK,
          "step without: %s", rn_last_error());
    CHECK(loss1 == loss2 && memcmp(g1, g2, m->n_params * sizeof *g1) == 0,
          "the stamps change nothing computed");
    rn_graph *g = NULL;
    CHECK(rn_graph_build(m, S, S, &g) == RN_OK && g->n_nodes + 2 <= 64, "graph");
    int convs = 0, missing = 0, algo_ok = 1;
    for (int i = 0; g && i < g->n_nodes; i++) {
        const rn_node *nd = &g->nodes[i];
        const int *seen = l.seen[i + 1];
        if (nd->op != RN_NODE_CONV) {
            missing += seen[RN_BP_OTHER] != 2; /* forward and backward */
            algo_ok &= rn_backprop_conv_algo(bp, i) == -1;
            continue;
        }
        convs++;
        const int prepared = rn_conv_algo_own_weights(rn_backprop_conv_algo(bp, i));
        missing += seen[RN_BP_CONV] != 1 || seen[RN_BP_NORM] != 1 || seen[RN_BP_NORM_BACK] != 1 ||
                   seen[RN_BP_WEIGHT_GRAD] != 1 || seen[RN_BP_DATA_GRAD] != (nd->in != 0) ||
                   seen[RN_BP_PREPARE] != prepared;
        algo_ok &= rn_backprop_conv_algo(bp, i) >= 0;
    }
    CHECK(convs == 20 && missing == 0, "every part of every node stamped once (%d convs, %d wrong)", convs,
          missing);
    CHECK(g && l.seen[0][RN_BP_OTHER] == 1 && l.seen[g->n_nodes + 1][RN_BP_OTHER] == 1,
          "the input's layout and the loss stamped");
    CHECK(l.bad_order == 0, "forward stamps in schedule order, backward in reverse (%d out of order)",
          l.bad_order);
    CHECK(algo_ok && rn_backprop_conv_algo(bp, -1) == -1, "rn_backprop_conv_algo on convs and others");
    rn_graph_free(g);
    free(g1), free(g2);
    rn_backprop_free(bp), rn_backprop_free(plain);
    rn_model_free(m);
}

/* Batches and inputs past the kernels' int indices: refused as too large, before anything is
 * sized, with the right message (not "too small"). */
static void test_index_limits(void) {
    rn_model *m = NULL;
    CHECK(rn_model_create("resnet18", 3, 1000, &m) == RN_OK, "create: %s", rn_last_error());
    if (!m)
        return;
    size_t bytes = 1;
    rn_status st = rn_session_plan_bytes(m, NULL, 200000, 224, 224, &bytes);
    CHECK(st == RN_ERR_ARG && strstr(rn_last_error(), "batch 200000 at 224x224 is too large") &&
              strstr(rn_last_error(), "conv1"),
          "a batch of 200000 x 112 x 112 stem pixels refused: %d %s", st, rn_last_error());
    CHECK(rn_session_plan_bytes(m, NULL, 100000, 224, 224, &bytes) == RN_ERR_ARG,
          "100000 images of 224x224 (5e9 input pixels) refused too: %s", rn_last_error());
    CHECK(rn_session_plan_bytes(m, NULL, 32, 224, 224, &bytes) == RN_OK && bytes > 0,
          "batch 32 planned: %s", rn_last_error());
    st = rn_session_plan_bytes(m, NULL, 1, 46341, 46341, &bytes);
    CHECK(st == RN_ERR_ARG && strstr(rn_last_error(), "too large") &&
              !strstr(rn_last_error(), "too small"),
          "46341x46341 (past INT_MAX pixels) is too large, not too small: %s", rn_last_error());
    rn_session *s = NULL;
    float x[3] = {0}, logits[1000];
    CHECK(rn_session_create(m, NULL, &s) == RN_OK, "session: %s", rn_last_error());
    st = rn_session_forward(s, x, 1, 65536, 65536, RN_MODE_EVAL, logits);
    CHECK(st == RN_ERR_ARG && strstr(rn_last_error(), "65536x65536 is too large"),
          "forward at 65536x65536 refused as too large: %s", rn_last_error());
    CHECK(rn_session_forward(s, x, 1, 1, 1, RN_MODE_EVAL, logits) == RN_OK,
          "the session runs after the refusal (1x1): %s", rn_last_error());
    rn_session_free(s);
    rn_model_free(m);
}

/* rn_set_threads: a count past RN_THREADS_MAX is capped, <= 0 the default. */
static void test_thread_counts(void) {
    rn_set_threads(1 << 30);
    CHECK(rn_get_threads() == RN_THREADS_MAX, "rn_set_threads(2^30): %d threads", rn_get_threads());
    rn_set_threads(3);
    CHECK(rn_get_threads() == 3, "rn_set_threads(3): %d threads", rn_get_threads());
    rn_set_threads(-5);
    CHECK(rn_get_threads() >= 1, "rn_set_threads(-5): the default, %d", rn_get_threads());
    rn_set_threads(0);
}

int main(void) {
    if (!check_tmpdir("test_model", tmpdir, sizeof tmpdir))
        return 1;
    test_thread_counts();
    test_param_counts();
    test_save_load();
    test_widths();
    test_sessions();
    test_trainer_memory();
    test_step_stamps();
    test_forward_vs_reference();
    test_index_limits();
    check_tmpdir_remove(tmpdir);
    return check_done("test_model");
}
