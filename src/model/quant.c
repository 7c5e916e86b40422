/*
 * quant.c - int8 models: BatchNorm folding, the units' int8 arrays, and
 * int8 model files.
 *
 * An int8 file is safetensors with metadata format = "resnet.c-int8" and,
 * per conv unit U (PyTorch's conv names):
 *     U.weight              I8  (cout, cin, k, k)   BatchNorm folded, w = q * scale
 *     U.weight_scale        F32 (cout)
 *     U.bias                F32 (cout)              the folded bias
 *     U.output_scale        F32 (1)                 the unit's output tensor:
 *     U.output_zero_point   I64 (1)                 x = (q - zp) * scale
 * and input_scale F32 (1), input_zero_point I64 (1) for the network input,
 * fc.weight / fc.bias F32 (the classifier stays float32).
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "ops/ops.h"
#include "ops/qconv.h"

int rn_model_units(rn_model *m, rn_unit **units) {
    int n = 0;
    if (units)
        units[n] = &m->stem;
    n++;
    for (int b = 0; b < m->n_blocks; b++) {
        rn_block *bl = &m->blocks[b];
        for (int i = 0; i < bl->n_main; i++, n++)
            if (units)
                units[n] = &bl->main[i];
        if (bl->has_shortcut) {
            if (units)
                units[n] = &bl->shortcut;
            n++;
        }
    }
    return n;
}

static size_t unit_weights(const rn_unit *u) {
    return (size_t)u->cout * (size_t)(u->cin / u->groups) * (size_t)(u->k * u->k);
}

void rn_unit_fold(const rn_unit *u, float *fw, float *fb) {
    size_t per_out = unit_weights(u) / (size_t)u->cout;
    for (int co = 0; co < u->cout; co++) {
        float s = 1.0f, t = u->b ? u->b[co] : 0.0f;
        if (u->has_bn) {
            batchnorm_scale_shift(1, &u->bn_weight[co], &u->bn_bias[co], &u->bn_mean[co],
                                  &u->bn_var[co], RN_BN_EPS, &s, &t);
            t += (u->b ? u->b[co] : 0.0f) * s;
        }
        for (size_t i = 0; i < per_out; i++)
            fw[(size_t)co * per_out + i] = u->w[(size_t)co * per_out + i] * s;
        fb[co] = t;
    }
}

int rn_model_is_quantized(const rn_model *m) { return m && m->quantized; }

int rn_model_quant_layers(const rn_model *m, rn_quant_layer *out, int cap) {
    if (!m || !m->quantized)
        return 0;
    int nu = rn_model_units((rn_model *)m, NULL);
    rn_unit **units = malloc((size_t)nu * sizeof *units);
    if (!units)
        return 0;
    rn_model_units((rn_model *)m, units);
    for (int i = 0; out && i < nu && i < cap; i++) {
        const rn_unit *u = units[i];
        rn_quant_layer *q = &out[i];
        q->name = u->conv_name;
        q->cout = u->cout;
        q->w_scale_min = q->w_scale_max = u->wq_scale[0];
        for (int c = 1; c < u->cout; c++) {
            q->w_scale_min = u->wq_scale[c] < q->w_scale_min ? u->wq_scale[c] : q->w_scale_min;
            q->w_scale_max = u->wq_scale[c] > q->w_scale_max ? u->wq_scale[c] : q->w_scale_max;
        }
        q->out_scale = u->q_out_scale;
        q->out_zp = u->q_out_zp;
    }
    free(units);
    return nu;
}

const char *rn_model_quant_input(const rn_model *m, float *scale, int *zp, int *images) {
    if (!m || !m->quantized)
        return NULL;
    if (scale)
        *scale = m->q_in_scale;
    if (zp)
        *zp = m->q_in_zp;
    if (images)
        *images = m->q_calib_images;
    return m->q_method;
}

/* ---- the units' int8 arrays ------------------------------------------------------------------ */

rn_status rn_quant_alloc(rn_model *m) {
    int nu = rn_model_units(m, NULL);
    rn_unit **units = malloc((size_t)nu * sizeof *units);
    if (!units)
        return rn_fail(RN_ERR_NOMEM, "out of memory quantizing");
    rn_model_units(m, units);
    size_t bytes = 0;
    for (int i = 0; i < nu; i++)
        bytes += (unit_weights(units[i]) + 15) / 16 * 16 + 2 * (size_t)units[i]->cout * sizeof(float);
    unsigned char *p = calloc(bytes ? bytes : 1, 1);
    if (!p) {
        free(units);
        return rn_fail(RN_ERR_NOMEM, "out of memory for int8 weights (%zu bytes)", bytes);
    }
    free(m->q_block);
    m->q_block = p;
    for (int i = 0; i < nu; i++) {
        rn_unit *u = units[i];
        u->wq_scale = (float *)p;
        u->q_bias = u->wq_scale + u->cout;
        p += 2 * (size_t)u->cout * sizeof(float);
        u->wq = (int8_t *)p;
        p += (unit_weights(u) + 15) / 16 * 16;
    }
    free(units);
    m->quantized = 1;
    return RN_OK;
}

/* ---- files ----------------------------------------------------------------------------------- */

#define INT8_FORMAT "resnet.c-int8"

int rn_quant_is_file(const st_file *f) {
    const char *fmt = st_meta_get(f, "format");
    return fmt && strcmp(fmt, INT8_FORMAT) == 0;
}

/* The tensor `name` of f with the given element count, as floats; with ndim > 0 also of
 * that shape (a scalar, ndim 0, may be stored with shape () or (1)). */
static rn_status want_shape(const st_file *f, const char *path, const char *name, size_t numel,
                            int ndim, const int64_t *shape, st_dtype dtype, const st_tensor **out) {
    const st_tensor *t = st_find(f, name);
    if (!t)
        return rn_fail(RN_ERR_MISMATCH, "%s: missing tensor '%s' (int8 model)", path, name);
    if (t->dtype != dtype)
        return rn_fail(RN_ERR_MISMATCH, "%s: tensor '%s' has dtype %s, expected %s", path, name,
                       st_dtype_name(t->dtype), st_dtype_name(dtype));
    if (t->numel != numel)
        return rn_fail(RN_ERR_MISMATCH, "%s: tensor '%s' has %zu elements, expected %zu", path,
                       name, t->numel, numel);
    const int64_t one[1] = {1};
    if (ndim == 0 && !(t->ndim == 0 || st_shape_is(t, 1, one)))
        return rn_fail(RN_ERR_MISMATCH, "%s: tensor '%s' is a scalar: its shape must be () or (1), "
                       "not of %d dimensions", path, name, t->ndim);
    if (ndim > 0 && !st_shape_is(t, ndim, shape)) {
        char want_s[96], got[96];
        rn_shape_str(want_s, sizeof want_s, ndim, shape);
        rn_shape_str(got, sizeof got, t->ndim, t->shape);
        return rn_fail(RN_ERR_MISMATCH, "%s: tensor '%s' has shape %s, expected %s", path, name,
                       got, want_s);
    }
    *out = t;
    return RN_OK;
}

/* A vector of numel (shape (numel)), or with numel 1 a scalar. */
static rn_status want(const st_file *f, const char *path, const char *name, size_t numel,
                      st_dtype dtype, const st_tensor **out) {
    const int64_t shape[1] = {(int64_t)numel};
    return want_shape(f, path, name, numel, numel == 1 ? 0 : 1, shape, dtype, out);
}

static int scale_ok(float s) { return s >= RN_Q_SCALE_MIN && s <= RN_Q_SCALE_MAX; }

static rn_status want_scale(const st_file *f, const char *path, const char *name, size_t numel,
                            float *dst) {
    const st_tensor *t;
    RN_TRY(want(f, path, name, numel, ST_F32, &t));
    for (size_t i = 0; i < numel; i++) {
        if (!scale_ok(t->f32[i])) /* NaN fails too */
            return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s'[%zu] = %g: a scale must be in [%g, %g]",
                           path, name, i, (double)t->f32[i], (double)RN_Q_SCALE_MIN,
                           (double)RN_Q_SCALE_MAX);
        dst[i] = t->f32[i];
    }
    return RN_OK;
}

/* Unit u's scales against the requantization's float32 arithmetic (ops/qconv.h): its
 * weight and output scales in range, and mult = in_scale * weight_scale (in_scale: the scale
 * of its input, `in` the unit that wrote it, NULL for the network input) finite. */
static rn_status check_unit_scales(const rn_unit *u, float in_scale, const rn_unit *in,
                                   const char *path) {
    const char *where = path ? path : "int8 model";
    const rn_status bad = path ? RN_ERR_FORMAT : RN_ERR_ARG;
    for (int co = 0; co < u->cout; co++) {
        if (!scale_ok(u->wq_scale[co]))
            return rn_fail(bad, "%s: tensor '%s.weight_scale'[%d] = %g: a scale must be in [%g, %g]",
                           where, u->conv_name, co, (double)u->wq_scale[co],
                           (double)RN_Q_SCALE_MIN, (double)RN_Q_SCALE_MAX);
        const float mult = in_scale * u->wq_scale[co]; /* as rn_int8_prepare computes it */
        if (!isfinite(mult))
            return rn_fail(bad, "%s: tensor '%s.weight_scale'[%d] = %g times the scale %g of its "
                           "input ('%s%s') overflows float32: the requantization would be infinite",
                           where, u->conv_name, co, (double)u->wq_scale[co], (double)in_scale,
                           in ? in->conv_name : "input_scale", in ? ".output_scale" : "");
    }
    if (!scale_ok(u->q_out_scale)) /* 1 / scale is then finite too */
        return rn_fail(bad, "%s: tensor '%s.output_scale' = %g: a scale must be in [%g, %g]", where,
                       u->conv_name, (double)u->q_out_scale, (double)RN_Q_SCALE_MIN,
                       (double)RN_Q_SCALE_MAX);
    return RN_OK;
}

rn_status rn_quant_check_scales(const rn_model *m, const char *path) {
    if (!scale_ok(m->q_in_scale))
        return rn_fail(path ? RN_ERR_FORMAT : RN_ERR_ARG, "%s: tensor 'input_scale' = %g: a scale "
                       "must be in [%g, %g]", path ? path : "int8 model", (double)m->q_in_scale,
                       (double)RN_Q_SCALE_MIN, (double)RN_Q_SCALE_MAX);
    /* the units' inputs as the schedule (graph.c) connects them: the stem reads the network
     * input; a block's first main unit and its shortcut read the block's input (the stem's
     * output through the max-pool, which keeps its scale, or the block before's last unit);
     * every other main unit the one before it */
    RN_TRY(check_unit_scales(&m->stem, m->q_in_scale, NULL, path));
    const rn_unit *cur = &m->stem;
    for (int b = 0; b < m->n_blocks; b++) {
        const rn_block *bl = &m->blocks[b];
        const rn_unit *in = cur;
        for (int i = 0; i < bl->n_main; i++) {
            RN_TRY(check_unit_scales(&bl->main[i], in->q_out_scale, in, path));
            in = &bl->main[i];
        }
        if (bl->has_shortcut)
            RN_TRY(check_unit_scales(&bl->shortcut, cur->q_out_scale, cur, path));
        cur = in;
    }
    return RN_OK;
}

static rn_status want_zp(const st_file *f, const char *path, const char *name, int *dst) {
    const st_tensor *t;
    RN_TRY(want(f, path, name, 1, ST_I64, &t));
    if (t->i64[0] < 0 || t->i64[0] > RN_Q_MAX)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s' = %lld: a zero point is in [0, %d]", path,
                       name, (long long)t->i64[0], RN_Q_MAX);
    *dst = (int)t->i64[0];
    return RN_OK;
}

/* The first float of p[0 .. n) that is not finite, or -1. */
static long not_finite_at(const float *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i]))
            return (long)i;
    return -1;
}

/* Every value of float32 tensor t (named name in path) finite. */
static rn_status want_finite(const st_tensor *t, const char *path, const char *name) {
    const long at = not_finite_at(t->f32, t->numel);
    return at < 0 ? RN_OK
                  : rn_fail(RN_ERR_FORMAT, "%s: tensor '%s'[%ld] is not finite", path, name, at);
}

static rn_status load_unit(rn_unit *u, const st_file *f, const char *path) {
    char key[RN_NAME_CAP + 32];
    const st_tensor *t;
    size_t nw = unit_weights(u);
    snprintf(key, sizeof key, "%s.weight", u->conv_name);
    const int64_t wshape[4] = {u->cout, u->cin / u->groups, u->k, u->k};
    RN_TRY(want_shape(f, path, key, nw, 4, wshape, ST_I8, &t));
    for (size_t i = 0; i < nw; i++) {
        if (t->f32[i] < -127.0f)
            return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s'[%zu] = -128: int8 weights are symmetric, "
                           "in [-127, 127]", path, key, i);
        u->wq[i] = (int8_t)t->f32[i];
    }
    snprintf(key, sizeof key, "%s.weight_scale", u->conv_name);
    RN_TRY(want_scale(f, path, key, (size_t)u->cout, u->wq_scale));
    snprintf(key, sizeof key, "%s.bias", u->conv_name);
    RN_TRY(want(f, path, key, (size_t)u->cout, ST_F32, &t));
    RN_TRY(want_finite(t, path, key));
    memcpy(u->q_bias, t->f32, (size_t)u->cout * sizeof(float));
    snprintf(key, sizeof key, "%s.output_scale", u->conv_name);
    RN_TRY(want_scale(f, path, key, 1, &u->q_out_scale));
    snprintf(key, sizeof key, "%s.output_zero_point", u->conv_name);
    return want_zp(f, path, key, &u->q_out_zp);
}

/* Every tensor of f is one an int8 model of these units has (each was read above): the first
 * that is not is named. */
static rn_status no_other_tensor(const st_file *f, const char *path, rn_unit *const *units, int nu,
                                 const char *arch) {
    static const char *const GLOBAL[] = {"input_scale", "input_zero_point", "fc.weight", "fc.bias"};
    static const char *const PER_UNIT[] = {"weight", "weight_scale", "bias", "output_scale",
                                           "output_zero_point"};
    for (size_t i = 0; i < f->count; i++) {
        const char *name = f->tensors[i].name, *dot = strrchr(name, '.');
        int known = 0;
        for (size_t g = 0; g < sizeof GLOBAL / sizeof GLOBAL[0] && !known; g++)
            known = strcmp(name, GLOBAL[g]) == 0;
        for (size_t s = 0; dot && s < sizeof PER_UNIT / sizeof PER_UNIT[0] && !known; s++)
            for (int u = 0; strcmp(dot + 1, PER_UNIT[s]) == 0 && u < nu && !known; u++)
                known = strlen(units[u]->conv_name) == (size_t)(dot - name) &&
                        strncmp(name, units[u]->conv_name, (size_t)(dot - name)) == 0;
        if (!known)
            return rn_fail(RN_ERR_MISMATCH, "%s: unexpected tensor '%s' for an int8 %s", path, name,
                           arch);
    }
    return RN_OK;
}

rn_status rn_quant_load(rn_model *m, const st_file *f, const char *path) {
    RN_TRY(rn_quant_alloc(m));
    int nu = rn_model_units(m, NULL);
    rn_unit **units = malloc((size_t)nu * sizeof *units);
    if (!units)
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory", path);
    rn_model_units(m, units);
    rn_status st = RN_OK;
    for (int i = 0; i < nu && st == RN_OK; i++)
        st = load_unit(units[i], f, path);
    if (st == RN_OK)
        st = no_other_tensor(f, path, units, nu, m->arch->name);
    free(units);
    RN_TRY(st);
    RN_TRY(want_scale(f, path, "input_scale", 1, &m->q_in_scale));
    RN_TRY(want_zp(f, path, "input_zero_point", &m->q_in_zp));
    RN_TRY(rn_quant_check_scales(m, path));
    const st_tensor *t;
    const int64_t fc_shape[2] = {m->num_classes, m->feat};
    RN_TRY(want_shape(f, path, "fc.weight", (size_t)m->num_classes * m->feat, 2, fc_shape, ST_F32,
                      &t));
    RN_TRY(want_finite(t, path, "fc.weight"));
    memcpy(m->fc_w, t->f32, t->numel * sizeof(float));
    RN_TRY(want(f, path, "fc.bias", (size_t)m->num_classes, ST_F32, &t));
    RN_TRY(want_finite(t, path, "fc.bias"));
    memcpy(m->fc_b, t->f32, t->numel * sizeof(float));
    const char *method = st_meta_get(f, "calibration_method");
    const char *images = st_meta_get(f, "calibration_images");
    snprintf(m->q_method, sizeof m->q_method, "%s", method ? method : "unknown");
    char *end = NULL;
    const long n_images = images ? strtol(images, &end, 10) : 0;
    m->q_calib_images = images && end != images && *end == 0 && n_images >= 0 &&
                                n_images <= INT_MAX
                            ? (int)n_images
                            : 0; /* only shown by `info`: an unreadable count is unknown (0) */
    rn_model_params_changed(m);
    return RN_OK;
}

/* What rn_quant_load checks, before m is written to path: a file it would refuse is never
 * written (a model whose int8 arrays were changed in memory). */
static rn_status check_savable(const rn_model *m, rn_unit *const *units, int nu, const char *path) {
    for (int i = 0; i < nu; i++) {
        const rn_unit *u = units[i];
        const size_t nw = unit_weights(u);
        for (size_t j = 0; j < nw; j++)
            if (u->wq[j] < -127)
                return rn_fail(RN_ERR_ARG, "saving %s: tensor '%s.weight'[%zu] = -128: int8 weights "
                               "are symmetric, in [-127, 127]", path, u->conv_name, j);
        const long at = not_finite_at(u->q_bias, (size_t)u->cout);
        if (at >= 0)
            return rn_fail(RN_ERR_ARG, "saving %s: tensor '%s.bias'[%ld] is not finite", path,
                           u->conv_name, at);
        if (u->q_out_zp < 0 || u->q_out_zp > RN_Q_MAX)
            return rn_fail(RN_ERR_ARG, "saving %s: tensor '%s.output_zero_point' = %d: a zero point "
                           "is in [0, %d]", path, u->conv_name, u->q_out_zp, RN_Q_MAX);
    }
    if (m->q_in_zp < 0 || m->q_in_zp > RN_Q_MAX)
        return rn_fail(RN_ERR_ARG, "saving %s: tensor 'input_zero_point' = %d: a zero point is in "
                       "[0, %d]", path, m->q_in_zp, RN_Q_MAX);
    rn_status st = rn_quant_check_scales(m, NULL);
    if (st != RN_OK)
        return rn_fail_context(st, "saving %s", path);
    long at = not_finite_at(m->fc_w, (size_t)m->num_classes * m->feat);
    if (at >= 0)
        return rn_fail(RN_ERR_ARG, "saving %s: tensor 'fc.weight'[%ld] is not finite", path, at);
    at = not_finite_at(m->fc_b, (size_t)m->num_classes);
    if (at >= 0)
        return rn_fail(RN_ERR_ARG, "saving %s: tensor 'fc.bias'[%ld] is not finite", path, at);
    return RN_OK;
}

rn_status rn_quant_write(const rn_model *m, rn_wfile *w, const char *const *keys,
                         const char *const *values, int count) {
    int nu = rn_model_units((rn_model *)m, NULL);
    rn_unit **units = malloc((size_t)nu * sizeof *units);
    size_t ne = (size_t)nu * 5 + 4;
    st_entry *e = calloc(ne, sizeof *e);
    char (*names)[RN_NAME_CAP + 32] = calloc(ne, sizeof *names);
    int64_t (*shapes)[4] = calloc(ne, sizeof *shapes);
    int64_t *zps = calloc((size_t)nu + 1, sizeof *zps);
    st_meta *meta = calloc((size_t)count + 8, sizeof *meta);
    rn_status st = RN_OK;
    if (!units || !e || !names || !shapes || !zps || !meta) {
        st = rn_fail(RN_ERR_NOMEM, "out of memory saving %s", w->path);
        goto done;
    }
    rn_model_units((rn_model *)m, units);
    if ((st = check_savable(m, units, nu, w->path)) != RN_OK)
        goto done;
    size_t k = 0;
#define ENTRY(dt, nd, data_, ...)                                                                 \
    do {                                                                                          \
        int64_t sh_[] = {__VA_ARGS__};                                                            \
        memcpy(shapes[k], sh_, sizeof sh_);                                                       \
        e[k] = (st_entry){names[k], dt, nd, shapes[k], data_};                                    \
        k++;                                                                                      \
    } while (0)
    for (int i = 0; i < nu; i++) {
        const rn_unit *u = units[i];
        zps[i] = u->q_out_zp;
        snprintf(names[k], sizeof names[k], "%s.weight", u->conv_name);
        ENTRY(ST_I8, 4, u->wq, u->cout, u->cin / u->groups, u->k, u->k);
        snprintf(names[k], sizeof names[k], "%s.weight_scale", u->conv_name);
        ENTRY(ST_F32, 1, u->wq_scale, u->cout);
        snprintf(names[k], sizeof names[k], "%s.bias", u->conv_name);
        ENTRY(ST_F32, 1, u->q_bias, u->cout);
        snprintf(names[k], sizeof names[k], "%s.output_scale", u->conv_name);
        ENTRY(ST_F32, 1, &u->q_out_scale, 1);
        snprintf(names[k], sizeof names[k], "%s.output_zero_point", u->conv_name);
        ENTRY(ST_I64, 1, &zps[i], 1);
    }
    zps[nu] = m->q_in_zp;
    snprintf(names[k], sizeof names[k], "input_scale");
    ENTRY(ST_F32, 1, &m->q_in_scale, 1);
    snprintf(names[k], sizeof names[k], "input_zero_point");
    ENTRY(ST_I64, 1, &zps[nu], 1);
    snprintf(names[k], sizeof names[k], "fc.weight");
    ENTRY(ST_F32, 2, m->fc_w, m->num_classes, m->feat);
    snprintf(names[k], sizeof names[k], "fc.bias");
    ENTRY(ST_F32, 1, m->fc_b, m->num_classes);
#undef ENTRY
    char in_ch[16], classes[16], images[16];
    snprintf(in_ch, sizeof in_ch, "%d", m->in_channels);
    snprintf(classes, sizeof classes, "%d", m->num_classes);
    snprintf(images, sizeof images, "%d", m->q_calib_images);
    int n = 0;
    meta[n++] = (st_meta){"format", INT8_FORMAT};
    meta[n++] = (st_meta){"arch", (char *)m->arch->name};
    meta[n++] = (st_meta){"in_channels", in_ch};
    meta[n++] = (st_meta){"num_classes", classes};
    meta[n++] = (st_meta){"quantization",
                          "weights int8 symmetric per output channel, BatchNorm folded; activations "
                          "uint8 [0,127] per tensor with a zero point; fc float32"};
    meta[n++] = (st_meta){"calibration_method", (char *)m->q_method};
    meta[n++] = (st_meta){"calibration_images", images};
    int fixed = n;
    for (int i = 0; i < count; i++) {
        int dup = 0;
        for (int j = 0; j < n && !dup; j++)
            dup = strcmp(meta[j].key, keys[i]) == 0;
        if (!dup && n < fixed + count)
            meta[n++] = (st_meta){(char *)keys[i], (char *)values[i]};
    }
    st = st_write_to(w, e, k, meta, (size_t)n);
done:
    free(units), free(e), free(names), free(shapes), free(zps), free(meta);
    return st;
}
