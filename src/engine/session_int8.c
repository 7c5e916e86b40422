/*
 * session_int8.c - inference on an int8 model (scheme in ops/qconv.h),
 * over the same schedule and arena plan as float32 inference (session.c).
 *
 * Values: the input is quantized into plain uint8 (C, N, H, W); every conv
 * and max-pool writes c16 uint8; the global average pool dequantizes into
 * float32 features and the classifier runs in float32 (linear_forward): it
 * is 0.03% of a ResNet-18's work and the logits keep full precision.
 * A max-pool keeps its input's quantization (max commutes with it).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/finite.h"
#include "core/status.h"
#include "core/threads.h"
#include "engine/session.h"
#include "model/model.h"
#include "ops/ops.h"
#include "ops/qconv.h"

static int is_float_value(const rn_session *s, int v) {
    int p = s->sc->values[v].producer;
    return p >= 0 && (s->sc->nodes[p].op == RN_NODE_AVGPOOL || s->sc->nodes[p].op == RN_NODE_LINEAR);
}

size_t rn_int8_value_floats(const rn_session *s, int v, int n) {
    const rn_value *val = &s->sc->values[v];
    if (is_float_value(s, v))
        return rn_value_floats(s->sc, v, n);
    size_t pix = (size_t)n * val->h * val->w;
    size_t bytes = v == 0 ? (size_t)val->c * pix : (size_t)rn_q_cblocks(val->c) * 16 * pix;
    return (bytes + 3) / 4;
}

/* The conv of node nd: shape, input layout, super-groups, K and channel blocks (rn_int8_plan
 * has checked that the int8 path runs it). */
static rn_qconv qconv_of(const rn_node *nd) {
    rn_qconv c = {0};
    rn_qconv_init(&c, &nd->shape, nd->in != 0, NULL, 0);
    return c;
}

size_t rn_int8_prepared_floats(const rn_node *nd) {
    rn_qconv c = qconv_of(nd);
    /* packed weights (kpad is a multiple of 16), then comp, mult, bias */
    return rn_qconv_packed_bytes(&c) / 4 + 3 * rn_qconv_channels(&c);
}

size_t rn_int8_workspace_floats(const rn_session *s, const rn_node *nd, int n) {
    rn_qconv c = qconv_of(nd);
    c.s.n = n;
    return (rn_qconv_workspace_bytes(s->k, &c, s->threads) + 3) / 4;
}

long rn_int8_work_items(const rn_session *s, const rn_node *nd, int n) {
    rn_qconv c = qconv_of(nd);
    c.s.n = n;
    return rn_qconv_items(s->k, &c, n, s->threads);
}

rn_status rn_int8_plan(rn_session *s) {
    s->qc = calloc((size_t)s->sc->n_nodes, sizeof *s->qc);
    s->vq = calloc((size_t)s->sc->n_values, sizeof *s->vq);
    if (!s->qc || !s->vq)
        return rn_fail(RN_ERR_NOMEM, "out of memory planning int8 inference");
    /* the loader and the calibrator check the scales; a model changed since is refused here
     * rather than requantized with an infinite 1 / scale or mult (rn_int8_prepare) */
    RN_TRY(rn_quant_check_scales(s->m, NULL));
    for (int i = 0; i < s->sc->n_nodes; i++) {
        const rn_node *nd = &s->sc->nodes[i];
        rn_qconv c;
        char why[160];
        if (nd->op == RN_NODE_CONV && !rn_qconv_init(&c, &nd->shape, nd->in != 0, why, sizeof why))
            return rn_fail(RN_ERR_UNSUPPORTED, "int8: %s: %s", nd->unit->conv_name, why);
    }
    return RN_OK;
}

void rn_int8_prepare(rn_session *s) {
    const rn_graph *sc = s->sc;
    const rn_model *m = s->m;
    s->vq[0] = (rn_qparam){m->q_in_scale, m->q_in_zp};
    for (int i = 0; i < sc->n_nodes; i++) {
        const rn_node *nd = &sc->nodes[i];
        if (nd->op == RN_NODE_MAXPOOL)
            s->vq[nd->out] = s->vq[nd->in];
        if (nd->op != RN_NODE_CONV)
            continue;
        const rn_unit *u = nd->unit;
        rn_qparam in = s->vq[nd->in], out = {u->q_out_scale, u->q_out_zp};
        s->vq[nd->out] = out;
        rn_qconv *c = &s->qc[i];
        *c = qconv_of(nd);
        int8_t *w = (int8_t *)(s->prepared + s->prep_at[i]);
        size_t nch = rn_qconv_channels(c);
        int32_t *comp = (int32_t *)(s->prepared + s->prep_at[i] + rn_qconv_packed_bytes(c) / 4);
        float *mult = (float *)(comp + nch), *bias = mult + nch;
        rn_qconv_pack_weights(c, u->wq, in.zp, w, comp);
        for (size_t co = 0; co < nch; co++) {
            mult[co] = co < (size_t)u->cout ? in.scale * u->wq_scale[co] : 0.0f;
            bias[co] = co < (size_t)u->cout ? u->q_bias[co] : 0.0f;
        }
        c->w = w;
        c->rq = (rn_qreq){.comp = comp, .mult = mult, .bias = bias, .inv_out = 1.0f / out.scale,
                          .out_zp = out.zp, .relu = nd->relu};
        if (nd->res >= 0) {
            c->rq.r_scale = s->vq[nd->res].scale;
            c->rq.r_zp = s->vq[nd->res].zp;
        }
    }
}

static uint8_t *bytes_of(const rn_session *s, int v) {
    return (uint8_t *)(s->arena + s->value_at[v]);
}

/* One parallel region for the whole pass, the nodes one after the other in it with a barrier
 * between them, each op doing its thread's share (the ops' _team forms): a region per node had
 * cost 3 us of its start alone per convolution (Zen 5, 2 threads; resnet50 has 53). A
 * classifier on a batch runs after the region: its GEMM opens regions of its own. */
void rn_int8_forward(rn_session *s, const float *x, int n, float *logits, int last) {
    const rn_graph *sc = s->sc;
    const rn_model *m = s->m;
    int nodes = last + 1; /* the nodes to run */
    if (nodes > 0 && sc->nodes[nodes - 1].op == RN_NODE_LINEAR && !logits)
        nodes--;
    int in_team = nodes; /* the nodes the team runs: all but a batch's classifier */
    if (in_team > 0 && sc->nodes[in_team - 1].op == RN_NODE_LINEAR &&
        (n > 1 || rn_kernels_are_bf16(rn_kernels_or_default(s->k))))
        in_team--;
    /* a generation of claims per node (rn_claims), none used before: flags cleared at wrap */
    if (s->q_gen > UINT32_MAX - (uint32_t)in_team - 1) {
        if (s->q_claims)
            memset(s->q_claims, 0, (size_t)s->q_claims_cap * sizeof *s->q_claims);
        s->q_gen = 0;
    }
    const uint32_t gen0 = s->q_gen;
    s->q_gen += (uint32_t)in_team;
#pragma omp parallel num_threads(s->threads) if (s->threads > 1)
    {
        const rn_team team = rn_team_here();
        rn_quantize_input_team(s->k, x, n, m->in_channels, sc->h, sc->w, s->vq[0], bytes_of(s, 0),
                               team);
        for (int i = 0; i < in_team; i++) {
            const rn_node *nd = &sc->nodes[i];
            const rn_value *vi = &sc->values[nd->in], *vo = &sc->values[nd->out];
            const uint8_t *src = bytes_of(s, nd->in);
#pragma omp barrier
            if (s->observe && team.id == 0) /* the node before is complete (timing) */
                s->observe(s->observe_ctx, i > 0 ? sc->nodes[i - 1].out : 0, NULL, 0, 0);
            switch (nd->op) {
            case RN_NODE_CONV:
                rn_qconv_forward_team(s->k, &s->qc[i], n, src, s->vq[nd->in].zp,
                                      nd->res >= 0 ? bytes_of(s, nd->res) : NULL,
                                      bytes_of(s, nd->out), (uint8_t *)s->ws,
                                      (rn_claims){.flags = s->q_claims, .cap = s->q_claims_cap,
                                                  .gen = gen0 + (uint32_t)i + 1},
                                      team);
                break;
            case RN_NODE_MAXPOOL:
                rn_qmaxpool_c16_team(s->k, src, vi->c, n, vi->h, vi->w, nd->k, nd->stride,
                                     nd->pad, vo->h, vo->w, bytes_of(s, nd->out), team);
                break;
            case RN_NODE_AVGPOOL:
                rn_qavgpool_c16_team(src, vi->c, n, vi->h * vi->w, s->vq[nd->in],
                                     s->arena + s->value_at[nd->out], team);
                break;
            case RN_NODE_LINEAR: /* batch 1 on fp32 kernels (in_team) */
                linear_forward_gemv_team(s->k, s->arena + s->value_at[nd->in], vi->c, m->fc_w,
                                         m->fc_b, m->num_classes, logits, team);
                break;
            }
        }
    }
    if (s->observe && in_team > 0)
        s->observe(s->observe_ctx, sc->nodes[in_team - 1].out, NULL, 0, 0);
    for (int i = in_team; i < nodes; i++) { /* the classifier of a batch */
        const rn_node *nd = &sc->nodes[i];
        linear_forward(s->k, s->arena + s->value_at[nd->in], sc->values[nd->in].c, n, m->fc_w,
                       m->fc_b, m->num_classes, logits, s->arena + s->value_at[nd->out]);
        if (s->observe)
            s->observe(s->observe_ctx, nd->out, NULL, 0, 0);
    }
    /* a value that is not finite has no int8 code (the quantizer takes NaN to the zero point,
     * an infinity to an end of the range): that image's logits are NaN, as float32's are, not
     * those of an image with an ordinary pixel there */
    for (int b = 0; logits && b < n; b++)
        if (!rn_int8_image_finite(s, x, b))
            for (int k = 0; k < m->num_classes; k++)
                logits[(size_t)b * (size_t)m->num_classes + (size_t)k] = NAN;
}

int rn_int8_image_finite(const rn_session *s, const float *x, int b) {
    const size_t per = (size_t)s->m->in_channels * (size_t)s->sc->h * (size_t)s->sc->w;
    return rn_floats_finite(x + (size_t)b * per, per);
}

void rn_int8_dequantize(const rn_session *s, int v, int n, float *out) {
    const rn_value *val = &s->sc->values[v];
    const uint8_t *q = bytes_of(s, v);
    const rn_qparam p = s->vq[v];
    const size_t hw = (size_t)val->h * (size_t)val->w, pix = (size_t)n * hw;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < val->c; c++) {
            float *dst = out + ((size_t)i * val->c + c) * hw;
            for (size_t j = 0; j < hw; j++) {
                const size_t p_at = (size_t)i * hw + j; /* the pixel, over n * h * w */
                const uint8_t b = v == 0 ? q[(size_t)c * pix + p_at]
                                         : q[((size_t)(c / RN_Q_CB) * pix + p_at) * RN_Q_CB + c % RN_Q_CB];
                dst[j] = (float)(b - p.zp) * p.scale;
            }
        }
}
