/*
 * calibrate.c - post-training static quantization: the activation ranges of
 * a float32 model on calibration images, then the int8 model (scheme in
 * ops/qconv.h, file format in model/quant.c).
 *
 * Each activation the forward pass writes (eval mode, BatchNorm folded:
 * the values int8 inference stores) is observed: its min and max, and a
 * histogram of 2048 bins over [-R, R] whose R doubles (merging bin pairs)
 * whenever a value falls outside. The range [lo, hi] of a tensor is then
 *   minmax      the observed min and max;
 *   percentile  the 0.01% and 99.99% quantiles (outliers clipped);
 *   entropy     per side of 0, the clipping threshold whose 128-level
 *               quantized histogram is closest to the observed one in
 *               Kullback-Leibler divergence (TensorRT's calibration).
 *
 * Failures leave the calibrator as it was: rn_calibrator_add takes a batch
 * whole or not at all. It plans for the batch before it reads the images (a
 * batch too large for the kernels' indices or for memory is refused and
 * nothing read), refuses an image with a value that is not finite (naming
 * the image), and a batch whose activations are not finite anywhere (the
 * model's weights or BatchNorm statistics, or an overflow of float32): the
 * statistics are those of the batches before it, restored from a copy
 * taken before the batch ran. The histograms therefore only ever see finite
 * values. The schedule the statistics are indexed by is the calibrator's
 * own (built once for h x w), not the session's plan, which a failed
 * planning frees.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/status.h"
#include "engine/session.h"
#include "model/model.h"
#include "ops/qconv.h"

#define BINS 2048
#define HALF (BINS / 2)

enum { M_MINMAX, M_PERCENTILE, M_ENTROPY };
static const char *const METHODS[] = {"minmax", "percentile", "entropy"};

typedef struct vstat {
    int seen;
    float lo, hi;
    double r;                 /* histogram range [-r, r]; 0: not started */
    uint64_t hist[BINS];
} vstat;

struct rn_calibrator {
    const rn_model *m;
    rn_session *s;
    rn_graph *g;              /* the schedule at h x w: the values observed, the convs quantized */
    int h, w, method;
    long images;
    int nvals;
    vstat *v;                 /* per value of g */
    vstat *saved;             /* v before the batch that runs (a failed batch restores it) */
    int bad_value;            /* the batch's first value with a non-finite element; -1: none */
};

static void observe(void *ctx, int value, const float *x, size_t count, int blocked16) {
    (void)blocked16; /* the same values in another order: the same range and histogram */
    rn_calibrator *c = ctx;
    if (c->bad_value >= 0 || value < 0 || value >= c->nvals) /* the batch is refused already */
        return;
    vstat *v = &c->v[value];
    float lo = INFINITY, hi = -INFINITY;
    int nan = 0;
    for (size_t i = 0; i < count; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        nan |= x[i] != x[i];
    }
    if (count == 0)
        return;
    if (nan || !isfinite(lo) || !isfinite(hi)) { /* refused: rn_calibrator_add restores */
        c->bad_value = value;
        return;
    }
    if (!v->seen || lo < v->lo)
        v->lo = lo;
    if (!v->seen || hi > v->hi)
        v->hi = hi;
    v->seen = 1;
    if (c->method == M_MINMAX)
        return;
    double amax = fmax(fabs((double)lo), fabs((double)hi));
    if (v->r == 0.0)
        v->r = amax > 0.0 ? amax : 1e-6;
    while (amax > v->r) { /* double the range: bin i -> HALF / 2 + i / 2 */
        uint64_t merged[BINS] = {0};
        for (int i = 0; i < BINS; i++)
            merged[HALF / 2 + i / 2] += v->hist[i];
        memcpy(v->hist, merged, sizeof merged);
        v->r *= 2.0;
    }
    double scale = HALF / v->r;
    for (size_t i = 0; i < count; i++) {
        int b = (int)floor((double)x[i] * scale) + HALF;
        b = b < 0 ? 0 : b >= BINS ? BINS - 1 : b;
        v->hist[b]++;
    }
}

rn_status rn_calibrator_create(const rn_model *m, int h, int w, const char *method,
                               rn_calibrator **out) {
    if (!m || !out || h < 1 || w < 1)
        return rn_fail(RN_ERR_ARG, "rn_calibrator_create: bad argument");
    *out = NULL;
    if (m->quantized)
        return rn_fail(RN_ERR_ARG, "the model is already int8: quantize its float32 weights");
    int meth = -1;
    for (int i = 0; i < 3; i++)
        if (method && strcmp(method, METHODS[i]) == 0)
            meth = i;
    if (!method)
        meth = M_PERCENTILE;
    if (meth < 0)
        return rn_fail(RN_ERR_ARG, "unknown calibration method '%s' (expected minmax, percentile "
                       "or entropy)", method);
    rn_calibrator *c = calloc(1, sizeof *c);
    if (!c)
        return rn_fail(RN_ERR_NOMEM, "out of memory for calibration");
    c->m = m;
    c->h = h;
    c->w = w;
    c->method = meth;
    c->bad_value = -1;
    rn_status st = rn_graph_build(m, h, w, &c->g);
    if (st == RN_OK) {
        c->nvals = c->g->n_values;
        c->v = calloc((size_t)c->nvals, sizeof *c->v);
        c->saved = malloc((size_t)c->nvals * sizeof *c->saved);
        if (!c->v || !c->saved)
            st = rn_fail(RN_ERR_NOMEM, "out of memory for calibration statistics");
    }
    rn_session_config cfg;
    rn_session_config_default(&cfg);
    cfg.precision = "fp32";
    if (st == RN_OK)
        st = rn_session_create(m, &cfg, &c->s);
    if (st != RN_OK) {
        rn_calibrator_free(c);
        return st;
    }
    c->s->observe = observe;
    c->s->observe_ctx = c;
    *out = c;
    return RN_OK;
}

void rn_calibrator_free(rn_calibrator *c) {
    if (!c)
        return;
    rn_session_free(c->s);
    rn_graph_free(c->g);
    free(c->v);
    free(c->saved);
    free(c);
}

/* The name of the layer that writes value v of g. */
static const char *value_layer(const rn_graph *g, int v) {
    const int p = v > 0 && v < g->n_values ? g->values[v].producer : -1;
    if (p < 0)
        return "the input";
    const rn_node *nd = &g->nodes[p];
    return nd->op == RN_NODE_CONV ? nd->unit->conv_name
           : nd->op == RN_NODE_MAXPOOL ? g->model->pool_name : "the head";
}

rn_status rn_calibrator_add(rn_calibrator *c, const float *x, int n) {
    if (!c || !x || n < 1)
        return rn_fail(RN_ERR_ARG, "rn_calibrator_add: bad argument");
    /* planned first: a batch that cannot run is refused before its images are read */
    RN_TRY(rn_session_plan(c->s, n, c->h, c->w));
    const size_t per = (size_t)c->m->in_channels * (size_t)c->h * (size_t)c->w; /* planned: fits */
    for (int i = 0; i < n; i++) {
        const float *img = x + (size_t)i * per;
        for (size_t j = 0; j < per; j++)
            if (!isfinite(img[j])) {
                const size_t hw = (size_t)c->h * (size_t)c->w;
                return rn_fail(RN_ERR_ARG, "calibration image %ld (image %d of this batch): the "
                               "value at channel %zu, row %zu, column %zu is %g: images must be "
                               "finite", c->images + i, i, j / hw, j % hw / (size_t)c->w,
                               j % (size_t)c->w, (double)img[j]);
            }
    }
    float *logits = malloc((size_t)n * c->m->num_classes * sizeof *logits);
    if (!logits)
        return rn_fail(RN_ERR_NOMEM, "out of memory for calibration");
    memcpy(c->saved, c->v, (size_t)c->nvals * sizeof *c->v);
    c->bad_value = -1;
    rn_status st = rn_session_forward(c->s, x, n, c->h, c->w, RN_MODE_EVAL, logits);
    free(logits);
    if (st == RN_OK && c->bad_value >= 0)
        st = rn_fail(RN_ERR_ARG, "calibration batch of %d images (from image %ld): %s's output "
                     "has values that are not finite (weights or BatchNorm statistics not "
                     "finite, or activations past float32's range): the batch is left out", n,
                     c->images, value_layer(c->g, c->bad_value));
    if (st != RN_OK) {
        memcpy(c->v, c->saved, (size_t)c->nvals * sizeof *c->v);
        c->bad_value = -1;
        return st;
    }
    c->images += n;
    return RN_OK;
}

long rn_calibrator_images(const rn_calibrator *c) { return c ? c->images : 0; }
int rn_calibrator_convs(const rn_calibrator *c) { return c && c->images > 0 ? c->g->n_convs : 0; }

/* ---- ranges ---------------------------------------------------------------------------------- */

/* The bin edge below which a fraction p of the histogram's count lies. */
static double quantile(const vstat *v, double p) {
    uint64_t total = 0;
    for (int i = 0; i < BINS; i++)
        total += v->hist[i];
    double want = p * (double)total, cum = 0.0;
    for (int i = 0; i < BINS; i++) {
        cum += (double)v->hist[i];
        if (cum >= want)
            return ((double)(i + 1) - HALF) * v->r / HALF;
    }
    return v->r;
}

/* Entropy calibration of one side: bins[0 .. n) from 0 outwards; returns
 * the number of bins to keep. */
static int kl_bins(const uint64_t *bins, int n) {
    const int levels = RN_Q_MAX + 1;
    double best = INFINITY;
    int best_i = n;
    double *p = malloc((size_t)n * sizeof *p), *q = malloc((size_t)n * sizeof *q);
    if (!p || !q) {
        free(p), free(q);
        return n;
    }
    double tail = 0.0;
    for (int i = 0; i < n; i++)
        tail += (double)bins[i];
    if (tail == 0.0) {
        free(p), free(q);
        return n;
    }
    double outside = tail;
    for (int i = 0; i < levels && i < n; i++)
        outside -= (double)bins[i];
    for (int i = levels; i <= n; i++) {
        if (i > levels)
            outside -= (double)bins[i - 1];
        double psum = 0.0;
        for (int j = 0; j < i; j++)
            p[j] = (double)bins[j];
        p[i - 1] += outside;
        for (int j = 0; j < i; j++)
            psum += p[j];
        for (int l = 0; l < levels; l++) {
            int a = (int)((long)l * i / levels), b = (int)((long)(l + 1) * i / levels);
            double tot = 0.0;
            int nz = 0;
            for (int j = a; j < b; j++) {
                tot += (double)bins[j];
                nz += bins[j] != 0;
            }
            for (int j = a; j < b; j++)
                q[j] = bins[j] && nz ? tot / nz : 0.0;
        }
        double qsum = 0.0;
        for (int j = 0; j < i; j++)
            qsum += q[j];
        double kl = 0.0;
        for (int j = 0; j < i && psum > 0.0; j++) {
            if (p[j] <= 0.0)
                continue;
            double pj = p[j] / psum, qj = qsum > 0.0 ? q[j] / qsum : 0.0;
            kl += pj * log(pj / (qj > 1e-12 ? qj : 1e-12));
        }
        if (kl < best) {
            best = kl;
            best_i = i;
        }
    }
    free(p), free(q);
    return best_i;
}

/* The entropy threshold of one side of the histogram (dir +1: the positive side, read outwards
 * from zero; -1: the negative side), in the tensor's units. The bin next to zero is left out:
 * the ReLU's spike there would dominate the divergence. */
static float entropy_side(const vstat *v, int dir) {
    uint64_t side[HALF];
    for (int i = 0; i < HALF; i++)
        side[i] = v->hist[dir > 0 ? HALF + i : HALF - 1 - i];
    side[0] = 0;
    return (float)(kl_bins(side, HALF) * v->r / HALF);
}

/* The quantization of value vi from its statistics: RN_ERR_ARG, naming the layer that writes
 * it, where its range is too wide for a scale the int8 model can hold (model.h RN_Q_SCALE_MAX); a range so
 * narrow that its scale would be below RN_Q_SCALE_MIN gets that scale (its values are 0 to
 * int8). */
static rn_status range_of(const rn_calibrator *c, int vi, rn_qparam *out) {
    const vstat *v = &c->v[vi];
    float lo = v->lo, hi = v->hi;
    if (c->method == M_PERCENTILE) {
        lo = (float)fmax((double)lo, quantile(v, 1e-4));
        hi = (float)fmin((double)hi, quantile(v, 1.0 - 1e-4));
    } else if (c->method == M_ENTROPY) {
        float t = entropy_side(v, +1);
        hi = hi < t ? hi : t;
        t = entropy_side(v, -1);
        lo = lo > -t ? lo : -t;
    }
    /* lo and hi are finite (observe refuses batches with any other value) */
    const float wide = (hi > 0.0f ? hi : 0.0f) - (lo < 0.0f ? lo : 0.0f);
    if (!(wide <= RN_Q_SCALE_MAX * (float)RN_Q_MAX))
        return rn_fail(RN_ERR_ARG, "%s: activations range over [%g, %g]: too wide for an int8 "
                       "scale (at most %g)", value_layer(c->g, vi), (double)lo, (double)hi,
                       (double)RN_Q_SCALE_MAX);
    rn_qparam p = rn_qparam_for_range(lo, hi);
    if (p.scale < RN_Q_SCALE_MIN) {
        const int zp = (int)nearbyintf(-(lo < 0.0f ? lo : 0.0f) / RN_Q_SCALE_MIN);
        p.scale = RN_Q_SCALE_MIN;
        p.zp = zp < 0 ? 0 : zp > RN_Q_MAX ? RN_Q_MAX : zp;
    }
    *out = p;
    return RN_OK;
}

/* ---- the int8 model ------------------------------------------------------------------------- */

/* Unit u folded and quantized into q (fw: scratch for its folded weights). Refuses (RN_ERR_ARG,
 * naming the layer) a negative or non-finite BatchNorm variance, folded weights or biases that
 * are not finite (a weight, bias or BatchNorm parameter not finite, or the fold overflowing), and
 * weights too large for an int8 scale. */
static rn_status quantize_unit(const rn_unit *u, rn_unit *q, float *fw) {
    size_t per_out = (size_t)(u->cin / u->groups) * u->k * u->k;
    for (int co = 0; u->has_bn && co < u->cout; co++)
        if (!(u->bn_var[co] >= 0.0f) || !isfinite(u->bn_var[co]))
            return rn_fail(RN_ERR_ARG, "%s: %s.running_var[%d] = %g: a variance must be finite and "
                           "not negative", u->conv_name, u->bn_name, co, (double)u->bn_var[co]);
    rn_unit_fold(u, fw, q->q_bias);
    for (int co = 0; co < u->cout; co++) {
        const float *row = fw + (size_t)co * per_out;
        float amax = 0.0f;
        int finite = isfinite(q->q_bias[co]);
        for (size_t i = 0; i < per_out; i++) {
            finite &= isfinite(row[i]) != 0;
            amax = fabsf(row[i]) > amax ? fabsf(row[i]) : amax;
        }
        if (!finite)
            return rn_fail(RN_ERR_ARG, "%s: weight/bias not finite after folding BatchNorm (output "
                           "channel %d%s%s)", u->conv_name, co, u->has_bn ? ", " : "",
                           u->has_bn ? u->bn_name : "");
        float scale = amax > 0.0f ? amax / 127.0f : 1.0f;
        if (scale > RN_Q_SCALE_MAX)
            return rn_fail(RN_ERR_ARG, "%s: output channel %d has a weight of %g after folding "
                           "BatchNorm: too large for an int8 scale (at most %g)", u->conv_name, co,
                           (double)amax, (double)RN_Q_SCALE_MAX);
        scale = scale > RN_Q_SCALE_MIN ? scale : RN_Q_SCALE_MIN; /* |w| < 1.3e-28: int8 0s */
        q->wq_scale[co] = scale;
        for (size_t i = 0; i < per_out; i++) {
            float r = nearbyintf(row[i] / scale);
            q->wq[(size_t)co * per_out + i] = (int8_t)(r > 127.0f ? 127 : r < -127.0f ? -127 : r);
        }
    }
    return RN_OK;
}

rn_status rn_calibrator_quantize(rn_calibrator *c, rn_model **out) {
    if (!c || !out)
        return rn_fail(RN_ERR_ARG, "rn_calibrator_quantize: NULL argument");
    *out = NULL;
    if (c->images == 0)
        return rn_fail(RN_ERR_ARG, "the calibration set is empty: quantizing needs activations of "
                       "real images");
    const rn_model *m = c->m;
    const rn_graph *sc = c->g;
    rn_model *q;
    RN_TRY(rn_model_create_zero(m->arch->name, m->in_channels, m->num_classes, m->stem_kind, m->width, &q));
    rn_status st = rn_quant_alloc(q);
    for (int i = 0; i < sc->n_nodes && st == RN_OK; i++) {
        const rn_node *nd = &sc->nodes[i];
        rn_qconv qc;
        char why[160];
        if (nd->op == RN_NODE_CONV && !rn_qconv_init(&qc, &nd->shape, nd->in != 0, why, sizeof why))
            st = rn_fail(RN_ERR_UNSUPPORTED, "%s: the int8 path cannot run this convolution: %s",
                         nd->unit->conv_name, why);
    }
    int nu = rn_model_units((rn_model *)m, NULL);
    rn_unit **su = malloc((size_t)nu * sizeof *su), **qu = malloc((size_t)nu * sizeof *qu);
    float *fw = NULL;
    size_t most = 0;
    if (st == RN_OK && (!su || !qu))
        st = rn_fail(RN_ERR_NOMEM, "out of memory quantizing");
    if (st == RN_OK) {
        rn_model_units((rn_model *)m, su);
        rn_model_units(q, qu);
        for (int i = 0; i < nu; i++) {
            size_t nw = (size_t)su[i]->cout * (su[i]->cin / su[i]->groups) * su[i]->k * su[i]->k;
            most = nw > most ? nw : most;
        }
        fw = malloc(most * sizeof *fw);
        if (!fw && st == RN_OK)
            st = rn_fail(RN_ERR_NOMEM, "out of memory quantizing");
    }
    for (int i = 0; i < nu && st == RN_OK; i++)
        st = quantize_unit(su[i], qu[i], fw);
    /* activations: each conv unit's output value */
    for (int i = 0; i < sc->n_nodes && st == RN_OK; i++) {
        const rn_node *nd = &sc->nodes[i];
        if (nd->op != RN_NODE_CONV)
            continue;
        for (int j = 0; j < nu && st == RN_OK; j++)
            if (su[j] == nd->unit) {
                rn_qparam p = {1.0f, 0};
                st = range_of(c, nd->out, &p);
                qu[j]->q_out_scale = p.scale;
                qu[j]->q_out_zp = p.zp;
            }
    }
    rn_qparam p = {1.0f, 0};
    if (st == RN_OK)
        st = range_of(c, 0, &p);
    if (st == RN_OK) {
        q->q_in_scale = p.scale;
        q->q_in_zp = p.zp;
        memcpy(q->fc_w, m->fc_w, (size_t)m->num_classes * m->feat * sizeof(float));
        memcpy(q->fc_b, m->fc_b, (size_t)m->num_classes * sizeof(float));
        snprintf(q->q_method, sizeof q->q_method, "%s", METHODS[c->method]);
        q->q_calib_images = (int)(c->images > 1000000000 ? 1000000000 : c->images);
        rn_model_params_changed(q);
        /* each scale is in range; their products (a conv's mult) must be finite too: the file
         * must load again (rn_quant_load checks the same) */
        st = rn_quant_check_scales(q, NULL);
    }
    free(su), free(qu), free(fw);
    if (st != RN_OK) {
        rn_model_free(q);
        return st;
    }
    *out = q;
    return RN_OK;
}

/* 8 images: the calibration of a timing run, whose scales fit no real image anyway. Added one
 * at a time, so that the float32 session that observes them holds one image's activations:
 * `resnet bench --precision int8` on resnet18 at 224x224, batch 1, peaked at 324 MB resident
 * with the 8 in one batch, for an int8 engine of 12 MB. */
#define SYNTHETIC_IMAGES 8

rn_status rn_quantize_synthetic(const rn_model *m, int h, int w, rn_model **out) {
    if (out)
        *out = NULL;
    if (!m || !out || h < 1 || w < 1)
        return rn_fail(RN_ERR_ARG, "rn_quantize_synthetic: bad argument");
    size_t bytes;
    if (!rn_size_mul((size_t)SYNTHETIC_IMAGES * (size_t)m->in_channels, (size_t)h, &bytes) ||
        !rn_size_mul(bytes, (size_t)w, &bytes) || !rn_size_mul(bytes, sizeof(float), &bytes))
        return rn_fail(RN_ERR_NOMEM, "synthetic calibration: images of %dx%d too large", h, w);
    float *x = malloc(bytes);
    if (!x)
        return rn_fail(RN_ERR_NOMEM, "synthetic calibration: out of memory for %d images of %dx%d",
                       SYNTHETIC_IMAGES, h, w);
    uint32_t seed = 777; /* uniform in [-1, 1), a linear congruential generator's top 24 bits */
    for (size_t i = 0; i < bytes / sizeof(float); i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / 16777216.0f * 2.0f - 1.0f;
    }
    rn_calibrator *c = NULL;
    rn_status st = rn_calibrator_create(m, h, w, "percentile", &c);
    const size_t image = bytes / sizeof(float) / SYNTHETIC_IMAGES;
    for (int i = 0; i < SYNTHETIC_IMAGES && st == RN_OK; i++)
        st = rn_calibrator_add(c, x + (size_t)i * image, 1);
    if (st == RN_OK)
        st = rn_calibrator_quantize(c, out);
    rn_calibrator_free(c);
    free(x);
    return st;
}
