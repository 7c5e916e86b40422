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
    int h, w, method;
    long images;
    int nvals;
    vstat *v;
};

static void observe(void *ctx, int value, const float *x, size_t count, int blocked16) {
    (void)blocked16; /* the same values in another order: the same range and histogram */
    rn_calibrator *c = ctx;
    if (!c->v) /* the planning pass */
        return;
    vstat *v = &c->v[value];
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < count; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
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
    rn_session_config cfg;
    rn_session_config_default(&cfg);
    cfg.precision = "fp32";
    rn_status st = rn_session_create(m, &cfg, &c->s);
    if (st != RN_OK) {
        free(c);
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
    free(c->v);
    free(c);
}

rn_status rn_calibrator_add(rn_calibrator *c, const float *x, int n) {
    if (!c || !x || n < 1)
        return rn_fail(RN_ERR_ARG, "rn_calibrator_add: bad argument");
    float *logits = malloc((size_t)n * c->m->num_classes * sizeof *logits);
    if (!logits)
        return rn_fail(RN_ERR_NOMEM, "out of memory for calibration");
    if (!c->v) { /* the schedule's values are known once planned: plan with a dry forward */
        rn_status st = rn_session_forward(c->s, x, n, c->h, c->w, RN_MODE_EVAL, logits);
        if (st != RN_OK) {
            free(logits);
            return st;
        }
        c->nvals = c->s->sc->n_values;
        c->v = calloc((size_t)c->nvals, sizeof *c->v);
        if (!c->v) {
            free(logits);
            return rn_fail(RN_ERR_NOMEM, "out of memory for calibration statistics");
        }
    }
    rn_status st = rn_session_forward(c->s, x, n, c->h, c->w, RN_MODE_EVAL, logits);
    free(logits);
    if (st == RN_OK)
        c->images += n;
    return st;
}

long rn_calibrator_images(const rn_calibrator *c) { return c ? c->images : 0; }
int rn_calibrator_convs(const rn_calibrator *c) { return c && c->s->sc ? c->s->sc->n_convs : 0; }

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

static rn_qparam range_of(const rn_calibrator *c, const vstat *v) {
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
    return rn_qparam_for_range(lo, hi);
}

/* ---- the int8 model ------------------------------------------------------------------------- */

static rn_status quantize_unit(const rn_unit *u, rn_unit *q, float *fw) {
    size_t per_out = (size_t)(u->cin / u->groups) * u->k * u->k;
    rn_unit_fold(u, fw, q->q_bias);
    for (int co = 0; co < u->cout; co++) {
        const float *row = fw + (size_t)co * per_out;
        float amax = 0.0f;
        for (size_t i = 0; i < per_out; i++)
            amax = fabsf(row[i]) > amax ? fabsf(row[i]) : amax;
        if (!isfinite(amax))
            return rn_fail(RN_ERR_ARG, "%s: output channel %d has a weight that is not finite",
                           u->conv_name, co);
        float scale = amax > 0.0f ? amax / 127.0f : 1.0f;
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
    const rn_graph *sc = c->s->sc;
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
        for (int j = 0; j < nu; j++)
            if (su[j] == nd->unit) {
                rn_qparam p = range_of(c, &c->v[nd->out]);
                qu[j]->q_out_scale = p.scale;
                qu[j]->q_out_zp = p.zp;
            }
    }
    if (st == RN_OK) {
        rn_qparam p = range_of(c, &c->v[0]);
        q->q_in_scale = p.scale;
        q->q_in_zp = p.zp;
        memcpy(q->fc_w, m->fc_w, (size_t)m->num_classes * m->feat * sizeof(float));
        memcpy(q->fc_b, m->fc_b, (size_t)m->num_classes * sizeof(float));
        snprintf(q->q_method, sizeof q->q_method, "%s", METHODS[c->method]);
        q->q_calib_images = (int)(c->images > 1000000000 ? 1000000000 : c->images);
        rn_model_params_changed(q);
    }
    free(su), free(qu), free(fw);
    if (st != RN_OK) {
        rn_model_free(q);
        return st;
    }
    *out = q;
    return RN_OK;
}

/* 8 images: the calibration of a timing run, whose scales fit no real image anyway. */
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
    if (st == RN_OK)
        st = rn_calibrator_add(c, x, SYNTHETIC_IMAGES);
    if (st == RN_OK)
        st = rn_calibrator_quantize(c, out);
    rn_calibrator_free(c);
    free(x);
    return st;
}
