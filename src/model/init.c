/*
 * init.c - parameter initialisation, as PyTorch does it.
 *
 *   default, D2L ResNet: nn.Conv2d / nn.Linear defaults: weight and bias
 *            uniform in +-1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5));
 *   default, torchvision: convs kaiming_normal (fan_out, ReLU gain), no bias;
 *            Linear as above;
 *   xavier:  conv and linear weights xavier_uniform, biases as default
 *            (the D2L book's choice).
 * BatchNorm: weight 1, bias 0, running mean 0, running var 1, 0 batches.
 * The random stream is rn_rng with the given seed, so the values differ from
 * PyTorch's own but follow the same distributions.
 */
#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "core/status.h"
#include "model/model.h"

typedef enum { INIT_DEFAULT, INIT_XAVIER } init_scheme;

static void fill_uniform(rn_rng *r, float *p, size_t n, float bound) {
    for (size_t i = 0; i < n; i++)
        p[i] = (2.0f * rn_rng_uniform(r) - 1.0f) * bound;
}

static void fill_normal(rn_rng *r, float *p, size_t n, float std) {
    for (size_t i = 0; i < n; i++)
        p[i] = rn_rng_normal(r) * std;
}

static void fill_const(float *p, size_t n, float v) {
    for (size_t i = 0; i < n; i++)
        p[i] = v;
}

/* A weight of fan_in inputs and fan_out outputs (per receptive field). */
static void init_weight(rn_rng *r, float *w, size_t n, int fan_in, int fan_out,
                        init_scheme scheme, int kaiming_fan_out) {
    if (scheme == INIT_XAVIER)
        fill_uniform(r, w, n, sqrtf(6.0f / (float)(fan_in + fan_out)));
    else if (kaiming_fan_out)
        fill_normal(r, w, n, sqrtf(2.0f / (float)fan_out));
    else
        fill_uniform(r, w, n, 1.0f / sqrtf((float)fan_in));
}

static void init_unit(rn_rng *r, rn_unit *u, init_scheme scheme, int torchvision) {
    int rf = u->k * u->k;
    /* PyTorch: fan_in = weight.size(1) * rf, fan_out = weight.size(0) * rf */
    int fan_in = u->cin / u->groups * rf, fan_out = u->cout * rf;
    init_weight(r, u->w, (size_t)u->cout * (size_t)(u->cin / u->groups) * (size_t)rf,
                fan_in, fan_out, scheme, torchvision);
    if (u->b)
        fill_uniform(r, u->b, (size_t)u->cout, 1.0f / sqrtf((float)fan_in));
    if (u->has_bn) {
        fill_const(u->bn_weight, (size_t)u->cout, 1.0f);
        fill_const(u->bn_bias, (size_t)u->cout, 0.0f);
        fill_const(u->bn_mean, (size_t)u->cout, 0.0f);
        fill_const(u->bn_var, (size_t)u->cout, 1.0f);
        *u->bn_batches = 0;
    }
}

static void init_model(rn_model *m, init_scheme scheme, uint64_t seed) {
    rn_rng r;
    rn_rng_seed(&r, seed);
    int tv = m->arch->kind != RN_BLOCK_D2L;
    init_unit(&r, &m->stem, scheme, tv);
    for (int i = 0; i < m->n_blocks; i++) {
        rn_block *b = &m->blocks[i];
        for (int j = 0; j < b->n_main; j++)
            init_unit(&r, &b->main[j], scheme, tv);
        if (b->has_shortcut)
            init_unit(&r, &b->shortcut, scheme, tv);
    }
    init_weight(&r, m->fc_w, (size_t)m->num_classes * (size_t)m->feat, m->feat,
                m->num_classes, scheme, 0);
    fill_uniform(&r, m->fc_b, (size_t)m->num_classes, 1.0f / sqrtf((float)m->feat));
    rn_model_params_changed(m);
}

void rn_model_init_default(rn_model *m, uint64_t seed) { init_model(m, INIT_DEFAULT, seed); }

rn_status rn_model_init(rn_model *m, const char *scheme, uint64_t seed) {
    if (!m || !scheme)
        return rn_fail(RN_ERR_ARG, "rn_model_init: NULL argument");
    if (m->quantized) /* its convolutions are int8 and calibrated: only the classifier would move */
        return rn_fail(RN_ERR_UNSUPPORTED, "this is an int8 model: initialise a float32 model and "
                       "quantize it");
    if (strcmp(scheme, "default") == 0)
        init_model(m, INIT_DEFAULT, seed);
    else if (strcmp(scheme, "xavier") == 0)
        init_model(m, INIT_XAVIER, seed);
    else
        return rn_fail(RN_ERR_ARG, "unknown initialisation '%s' (expected default or xavier)", scheme);
    return RN_OK;
}
