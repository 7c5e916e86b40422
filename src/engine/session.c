/*
 * session.c - inference: planning, weight preparation and the forward pass
 * over the schedule (structure in session.h, contract in resnet.h).
 *
 * Eval mode folds each BatchNorm into its convolution (w' = w * s,
 * b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps)) and hands w' to
 * the node's algorithm to prepare; a node is then one convolution with bias,
 * residual add and ReLU in its epilogue. Train mode (BatchNorm with the
 * batch's statistics, running statistics untouched) runs the GEMM path on
 * the weights as they are, then applies BN, the residual and the ReLU in one
 * pass.
 *
 * Activations are channel-major, (C, N, H, W); the input is turned from
 * (N, C, H, W) into that layout (a batch of one is read in place).
 */
#include "engine/session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/threads.h"
#include "core/mem.h"
#include "core/status.h"
#include "engine/arena.h"
#include "ops/conv_algo.h"
#include "ops/ops.h"

/* ---- creation ------------------------------------------------------------------------- */

void rn_session_config_default(rn_session_config *cfg) {
    if (cfg)
        memset(cfg, 0, sizeof *cfg);
}

rn_status rn_session_create(const rn_model *m, const rn_session_config *cfg, rn_session **out) {
    if (!m || !out)
        return rn_fail(RN_ERR_ARG, "rn_session_create: NULL argument");
    *out = NULL;
    rn_session_config def;
    if (!cfg) {
        rn_session_config_default(&def);
        cfg = &def;
    }
    rn_isa isa;
    if (cfg->isa && *cfg->isa) {
        RN_TRY(rn_isa_parse(cfg->isa, &isa));
        if (!rn_isa_usable(isa))
            return rn_fail(RN_ERR_UNSUPPORTED, "this CPU (%s) cannot run the %s kernels",
                           rn_cpu_name(), cfg->isa);
    } else {
        RN_TRY(rn_isa_default(&isa));
    }
    int forced;
    RN_TRY(rn_conv_algo_parse(cfg->conv_algo, &forced));
    const char *prec = cfg->precision && *cfg->precision ? cfg->precision : "auto";
    int int8 = m->quantized, bf16 = 0;
    if (strcmp(prec, "int8") == 0) {
        if (!m->quantized)
            return rn_fail(RN_ERR_ARG, "precision int8 needs an int8 model: one that `resnet quantize` "
                           "(rn_calibrator_quantize) writes (resnet bench quantizes its random "
                           "weights itself)");
    } else if (strcmp(prec, "fp32") == 0 || strcmp(prec, "bf16") == 0) {
        bf16 = prec[0] == 'b';
        if (m->quantized)
            return rn_fail(RN_ERR_ARG, "this is an int8 model: it runs at precision int8 (or "
                           "auto), not %s", prec);
    } else if (strcmp(prec, "auto") != 0) {
        return rn_fail(RN_ERR_ARG, "unknown precision '%s' (expected auto, fp32, bf16 or int8)",
                       prec);
    }
    rn_session *s = calloc(1, sizeof *s);
    if (!s)
        return rn_fail(RN_ERR_NOMEM, "out of memory creating a session");
    s->m = m;
    s->k = rn_kernels_for(isa);
    s->kconv = s->k;
    if (bf16 && rn_kernels_bf16(s->k)) /* else fp32 kernels on bf16-rounded operands */
        s->kconv = rn_kernels_bf16(s->k);
    s->forced_algo = forced;
    s->int8 = int8;
    s->bf16 = bf16;
    *out = s;
    return RN_OK;
}

static void free_plan(rn_session *s) {
    rn_graph_free(s->sc);
    free(s->algo);
    free(s->value_at);
    free(s->value_at_train);
    free(s->prep_at);
    rn_free(s->arena);
    rn_free(s->ws);
    rn_free(s->bn);
    rn_free(s->prepared);
    rn_free(s->fold);
    free(s->qc);
    free(s->vq);
    free(s->q_claims);
    s->qc = NULL;
    s->vq = NULL;
    s->q_claims = NULL;
    s->q_claims_cap = 0;
    s->sc = NULL;
    s->algo = NULL;
    s->value_at = s->value_at_train = s->prep_at = NULL;
    s->value_now = NULL;
    s->arena = s->ws = s->bn = s->prepared = s->fold = NULL;
    s->n_cap = 0;
    s->prepared_valid = 0;
}

void rn_session_free(rn_session *s) {
    if (!s)
        return;
    free_plan(s);
    free(s);
}

const char *rn_session_isa(const rn_session *s) { return s ? rn_isa_name(s->k->isa) : ""; }

const char *rn_session_kernel(const rn_session *s) {
    return !s ? "" : s->int8 ? s->k->q_name : s->kconv->name;
}

const char *rn_session_precision(const rn_session *s) {
    return !s ? "" : s->int8 ? "int8" : s->bf16 ? "bf16" : "fp32";
}

/* ---- planning ------------------------------------------------------------------------- */

static size_t unit_weight_floats(const rn_unit *u) {
    return (size_t)u->cout * (size_t)(u->cin / u->groups) * (size_t)(u->k * u->k);
}

/* The algorithm of conv node nd for a batch of n: the forced one where it
 * applies, else the heuristic's; in a bf16 session, rn_conv_algo_for_bf16 of that. */
static int pick_algo(const rn_session *s, const rn_node *nd, int n) {
    rn_conv_shape cs = rn_node_conv_shape(nd, n);
    int a = s->forced_algo >= 0 && rn_conv_algo_get(s->forced_algo)->supports(&cs)
                ? s->forced_algo
                : (int)rn_conv_algo_choose(s->k, &cs);
    return s->bf16 ? (int)rn_conv_algo_for_bf16(s->kconv, a, s->forced_algo, 1, &cs) : a;
}

/* The kernels conv node i runs on: in a bf16 session the bf16 descriptor (s->kconv), whose
 * direct tile multiplies bf16 pairs (direct.h) and whose GEMMs take bf16 operands, Winograd's
 * products included since stop 50 (conv_winograd.c; but on matrix tiles, AMX, where Winograd
 * keeps the fp32 twin s->k: rn_conv_bf16_kernels). Until then Winograd stayed on fp32 products
 * here, bf16 ones having measured no faster (3x3 128->128 at 28x28, batch 32, 17-18.5 ms
 * against 8.3-9.6 on fp32): the bf16 GEMM kernel did not ask for U's panels ahead
 * (gemm_avx512bf16.c). With it, `resnet bench --precision bf16`, AMD EPYC Zen 5, 2 threads,
 * alternated with the binary before: resnet18 batch 32 180.8 -> 155.2 ms (3 rounds), for about
 * 3x bf16's error (tests/test_bf16). */
static const rn_kernels *conv_kernels(const rn_session *s, int i) {
    if (!rn_conv_algo_is_winograd(s->algo[i]))
        return s->kconv;
    return s->bf16 ? rn_conv_bf16_kernels(s->kconv, s->algo[i]) : s->k;
}

/* Whether a node before node i read value v as its input. */
static int read_before(const rn_graph *sc, int v, int i) {
    for (int j = 0; j < i; j++)
        if (sc->nodes[j].in == v)
            return 1;
    return 0;
}

/* Whether eval mode writes conv node i over its residual: the node is the residual's last
 * reader, and the residual is neither the node's input nor the caller's (value 0). The
 * algorithms take y == residual (conv_algo.h). The residual is read and the output written
 * in one pass over the same lines: a residual block's last conv then moves a third less
 * memory (resnet50's 1x1 64 -> 256 with the residual at 56x56, batch 32, wrote a new buffer
 * at half the speed of the same conv without a residual).
 * Not a direct convolution adding a residual that an earlier node read as its input (a
 * block's input, read by the block's first conv): where the direct tile runs (small maps,
 * whose weights outweigh their input) it splits the output channels over the threads, so
 * every thread had read all of that value, and writing over lines the other cores still hold
 * cost more than a new buffer. resnet50 at batch 1 (`profile_layers`, AMD EPYC Zen 5, 2
 * threads, five rounds alternated), 1x1 256 -> 1024 at 14x14 with the block's input: fp32
 * 0.39-0.52 ms in place against 0.32-0.46 in a buffer of its own (the stage's first, adding
 * its shortcut's output just written: 0.30-0.38 either way), bf16 0.31-0.32 against
 * 0.27-0.29. */
static int in_place(const rn_session *s, int i, int n) {
    const rn_node *nd = &s->sc->nodes[i];
    if (s->int8 || nd->op != RN_NODE_CONV || nd->res <= 0 || nd->res == nd->in ||
        s->sc->values[nd->res].last_use != i ||
        rn_value_floats(s->sc, nd->res, n) != rn_value_floats(s->sc, nd->out, n))
        return 0;
    return !(s->algo[i] == RN_CONV_DIRECT && read_before(s->sc, nd->res, i));
}

/* The arena for both modes: train mode's values each in a buffer of its own (bufs as made
 * by plan_for), eval mode's in-place outputs in their residual's; the arena holds the
 * larger of the two. */
static rn_status plan_arena(rn_session *s, rn_arena_buf *bufs, int n) {
    const rn_graph *sc = s->sc;
    size_t train_floats;
    RN_TRY(rn_arena_plan(bufs, sc->n_values, &train_floats));
    for (int v = 0; v < sc->n_values; v++)
        s->value_at_train[v] = bufs[v].offset;
    /* owner[v]: the value whose buffer v lives in (s->value_at holds it meanwhile) */
    size_t *owner = s->value_at;
    for (int v = 0; v < sc->n_values; v++)
        owner[v] = (size_t)v;
    for (int i = 0; i < sc->n_nodes; i++) {
        if (!in_place(s, i, n))
            continue;
        const rn_node *nd = &sc->nodes[i];
        const size_t root = owner[nd->res];
        owner[nd->out] = root;
        if (bufs[nd->out].last > bufs[root].last)
            bufs[root].last = bufs[nd->out].last;
        bufs[nd->out].floats = 0;
    }
    size_t eval_floats;
    RN_TRY(rn_arena_plan(bufs, sc->n_values, &eval_floats));
    for (int v = 0; v < sc->n_values; v++)
        s->value_at[v] = bufs[owner[v]].offset;
    s->arena_floats = train_floats > eval_floats ? train_floats : eval_floats;
    return RN_OK;
}

/* Plans for a batch of n at h x w: schedule, algorithms, arena, workspace,
 * prepared-weight layout. Keeps the current plan when it already fits. */
/* Plans (and allocates) for batches of up to n at h x w; with `dry`, only
 * computes the bytes rn_session_bytes would then give into *dry and leaves
 * no plan behind. */
static rn_status plan_for(rn_session *s, int n, int h, int w, size_t *dry) {
    if (s->sc && s->sc->h == h && s->sc->w == w && n <= s->n_cap && s->threads == rn_threads())
        return RN_OK;
    /* a new input size no taller and no wider than the last (every layer's map no larger): still
     * room for the largest batch so far, in no more memory than it held; any other is planned
     * for this batch only, which a batch of 1 at 2048x2048 after batches of 1000 at 1x1 had not
     * been (refused as too large) */
    if (s->n_cap > n && s->sc && h <= s->sc->h && w <= s->sc->w)
        n = s->n_cap;
    free_plan(s);
    s->threads = rn_threads(); /* workspaces are cut per thread: a new count plans anew */

    const rn_model *m = s->m;
    rn_status st = rn_graph_build(m, h, w, &s->sc);
    if (st == RN_OK)
        st = rn_graph_check_batch(s->sc, n);
    if (st != RN_OK) {
        free_plan(s);
        return st;
    }
    const rn_graph *sc = s->sc;
    s->algo = calloc((size_t)sc->n_nodes, sizeof *s->algo);
    s->value_at = calloc((size_t)sc->n_values, sizeof *s->value_at);
    s->value_at_train = calloc((size_t)sc->n_values, sizeof *s->value_at_train);
    s->prep_at = calloc((size_t)sc->n_nodes, sizeof *s->prep_at);
    rn_arena_buf *bufs = calloc((size_t)sc->n_values, sizeof *bufs);
    if (!s->algo || !s->value_at || !s->value_at_train || !s->prep_at || !bufs) {
        free(bufs);
        free_plan(s);
        return rn_fail(RN_ERR_NOMEM, "out of memory planning inference");
    }

    /* int8: every conv must be one the int8 path runs, before anything is sized for it */
    st = s->int8 ? rn_int8_plan(s) : RN_OK;
    if (st != RN_OK) {
        free(bufs);
        free_plan(s);
        return st;
    }

    /* activations: alive from their node to their last reader; the input (value
     * 0) is copied in before the first node */
    for (int v = 0; v < sc->n_values; v++) {
        const rn_value *val = &sc->values[v];
        bufs[v] = (rn_arena_buf){.floats = s->int8 ? rn_int8_value_floats(s, v, n)
                                                   : rn_value_floats(sc, v, n),
                                 .first = val->producer < 0 ? -1 : val->producer,
                                 .last = val->last_use < 0 ? sc->n_nodes : val->last_use};
    }
    /* the logits are written to the caller's buffer: their value is linear's scratch */
    size_t ws = 0, prep = 0, fold = 0;
    long claims = 0; /* int8: the most work items of a convolution */
    int chans = m->feat;
    for (int i = 0; i < sc->n_nodes; i++) {
        const rn_node *nd = &sc->nodes[i];
        if (nd->op != RN_NODE_CONV)
            continue;
        rn_conv_shape cs = rn_node_conv_shape(nd, n);
        if (s->int8) {
            size_t need = rn_int8_workspace_floats(s, nd, n);
            ws = need > ws ? need : ws;
            const long items = rn_int8_work_items(s, nd, n);
            claims = items > claims ? items : claims;
            s->prep_at[i] = prep;
            prep += (rn_int8_prepared_floats(nd) + 15) / 16 * 16;
            continue;
        }
        const rn_conv_algo *a = rn_conv_algo_get(s->algo[i] = pick_algo(s, nd, n));
        size_t need = a->workspace_floats(conv_kernels(s, i), &cs, s->threads);
        size_t train = conv2d_workspace_floats(s->k, &cs); /* train mode's GEMM path */
        ws = need > ws ? need : ws;
        ws = train > ws ? train : ws;
        s->prep_at[i] = prep;
        const size_t floats = a->prepared_floats(conv_kernels(s, i), &cs) + (size_t)nd->unit->cout;
        prep += (floats + 15) / 16 * 16;
        fold = unit_weight_floats(nd->unit) > fold ? unit_weight_floats(nd->unit) : fold;
        chans = nd->unit->cout > chans ? nd->unit->cout : chans;
    }
    st = plan_arena(s, bufs, n);
    free(bufs);
    if (st != RN_OK) {
        free_plan(s);
        return st;
    }
    s->ws_floats = ws;
    s->prepared_floats = prep;
    s->fold_floats = fold;
    s->max_channels = chans;
    if (dry) {
        size_t floats = s->arena_floats, bytes;
        if (!rn_size_add(floats, ws, &floats) || !rn_size_add(floats, prep, &floats) ||
            !rn_size_add(floats, fold, &floats) || !rn_size_add(floats, 4 * (size_t)chans, &floats) ||
            !rn_size_mul(floats, sizeof(float), &bytes)) {
            free_plan(s);
            return rn_fail(RN_ERR_NOMEM, "inference for batch %d at %dx%d needs more memory than can be "
                           "addressed", n, h, w);
        }
        *dry = bytes;
        free_plan(s);
        return RN_OK;
    }
    s->arena = rn_alloc((s->arena_floats ? s->arena_floats : 1) * sizeof(float));
    s->ws = rn_alloc((ws ? ws : 1) * sizeof(float));
    s->bn = rn_alloc((size_t)4 * (size_t)chans * sizeof(float));
    if (claims > 0) {
        s->q_claims = calloc((size_t)claims, sizeof *s->q_claims);
        s->q_claims_cap = s->q_claims ? claims : 0; /* without: static shares */
        s->q_gen = 0;
    }
    s->prepared = rn_alloc((prep ? prep : 1) * sizeof(float));
    s->fold = rn_alloc((fold ? fold : 1) * sizeof(float));
    if (!s->arena || !s->ws || !s->bn || !s->prepared || !s->fold) {
        size_t total = s->arena_floats + ws + prep + fold;
        free_plan(s);
        return rn_fail(RN_ERR_NOMEM, "out of memory: inference for batch %d at %dx%d needs %.1f MB",
                       n, h, w, (double)total * 4.0 / 1e6);
    }
    /* faulted in on every thread now, not page by page by the code that first writes it
     * (the BatchNorm fold, weight copies); the preparation writes all of it */
    rn_touch_pages(s->prepared, prep * sizeof(float));
    s->n_cap = n;
    return RN_OK;
}

/* ---- weight preparation (eval mode) ----------------------------------------------------- */

static void prepare_weights(rn_session *s) {
    if (s->prepared_valid && s->prepared_generation == s->m->generation)
        return;
    s->prepared_generation = s->m->generation;
    s->prepared_valid = 1;
    if (s->int8) {
        rn_int8_prepare(s);
        return;
    }
    const rn_graph *sc = s->sc;
    for (int i = 0; i < sc->n_nodes; i++) {
        const rn_node *nd = &sc->nodes[i];
        if (nd->op != RN_NODE_CONV)
            continue;
        rn_conv_shape cs = rn_node_conv_shape(nd, 1);
        const rn_conv_algo *a = rn_conv_algo_get(s->algo[i]);
        float *dst = s->prepared + s->prep_at[i];
        float *bias = dst + a->prepared_floats(conv_kernels(s, i), &cs);
        rn_unit_fold(nd->unit, s->fold, bias);
        if (s->bf16)
            rn_round_bf16(s->fold, conv2d_weight_floats(&cs));
        a->prepare(conv_kernels(s, i), &cs, s->fold, dst);
    }
}

/* ---- the forward pass ------------------------------------------------------------------- */

static float *value_ptr(const rn_session *s, int v) { return s->arena + s->value_now[v]; }

/* Whether conv node i hands its output to the max-pool after it blocked by 16 channels
 * (conv_algo.h's forward_blocked16, ResNet's stem): in eval mode, where the node's algorithm
 * has that form, without a residual, on a multiple of 16 channels, the pool its only reader.
 * The pool reads 16 channels at once; the results are the same bit for bit. resnet18's stem
 * and pool (`profile_layers`, AMD EPYC Zen 5, 2 threads, interleaved against the unfused
 * pair, medians, ms): batch 1 0.88 + 0.16 -> 0.72 + 0.16, batch 32 31.7 + 5.6 -> 24.4 + 7.0,
 * bf16 batch 1 0.65 + 0.18 -> 0.50 + 0.18. */
static int pool_fused(const rn_session *s, int i, rn_mode mode) {
    const rn_graph *sc = s->sc;
    const rn_node *nd = &sc->nodes[i];
    if (mode != RN_MODE_EVAL || nd->op != RN_NODE_CONV || nd->res >= 0 || i + 1 >= sc->n_nodes ||
        nd->unit->cout % 16 != 0)
        return 0;
    const rn_node *next = &sc->nodes[i + 1];
    return rn_conv_algo_get(s->algo[i])->forward_blocked16 && next->op == RN_NODE_MAXPOOL &&
           next->in == nd->out && sc->values[nd->out].last_use == i + 1;
}

/* blocked: pool_fused(s, i, mode) */
static void run_conv(rn_session *s, int i, int n, rn_mode mode, const float *x, int blocked) {
    const rn_node *nd = &s->sc->nodes[i];
    const rn_unit *u = nd->unit;
    rn_conv_shape cs = rn_node_conv_shape(nd, n);
    float *y = value_ptr(s, nd->out);
    const float *res = nd->res >= 0 ? value_ptr(s, nd->res) : NULL;
    if (mode == RN_MODE_EVAL || !u->has_bn) {
        const rn_conv_algo *a = rn_conv_algo_get(s->algo[i]);
        const float *prep = s->prepared + s->prep_at[i];
        const float *bias = prep + a->prepared_floats(conv_kernels(s, i), &cs);
        if (blocked)
            a->forward_blocked16(conv_kernels(s, i), &cs, x, prep, bias, nd->relu, y, s->ws,
                                 s->threads);
        else if (mode == RN_MODE_EVAL)
            a->forward(conv_kernels(s, i), &cs, x, prep, bias, res, nd->relu, y, s->ws,
                       s->threads);
        else /* train mode without BN: the weights as they are */
            conv2d_forward(s->k, &cs, x, u->w, u->b, res, nd->relu, y, s->ws);
        return;
    }
    /* train mode: batch statistics of the conv output, then BN + residual + ReLU */
    size_t M = (size_t)n * cs.ho * cs.wo;
    float *mean = s->bn, *var = mean + s->max_channels, *scale = var + s->max_channels,
          *shift = scale + s->max_channels;
    conv2d_forward(s->k, &cs, x, u->w, u->b, NULL, 0, y, s->ws);
    batchnorm_stats(y, u->cout, M, mean, var);
    batchnorm_scale_shift(u->cout, u->bn_weight, u->bn_bias, mean, var, RN_BN_EPS, scale, shift);
    batchnorm_apply(y, u->cout, M, scale, shift, res, nd->relu, y);
}

/* Value v of the pass just run, (c, n, h, w) in the arena (an int8 session's uint8 c16 values
 * dequantized), into out as (n, c, h, w); nothing where out is NULL. */
static rn_status copy_stage(const rn_session *s, int n, int v, float *out) {
    if (!out)
        return RN_OK;
    const rn_value *val = &s->sc->values[v];
    const size_t hw = (size_t)val->h * (size_t)val->w, pix = (size_t)n * hw;
    if (s->int8 && val->producer >= 0 && s->sc->nodes[val->producer].op != RN_NODE_AVGPOOL) {
        rn_int8_dequantize(s, v, n, out);
        return RN_OK;
    }
    const float *src = value_ptr(s, v);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < val->c; c++)
            memcpy(out + ((size_t)i * val->c + c) * hw, src + (size_t)c * pix + (size_t)i * hw,
                   hw * sizeof *out);
    return RN_OK;
}

/* The input shape a forward pass accepts (before anything is planned for it). */
static rn_status check_shape(const rn_session *s, int n, int h, int w) {
    if (n < 1 || h < 1 || w < 1 || n > 1000000 || h > 65536 || w > 65536)
        return rn_fail(RN_ERR_ARG, "forward: bad input shape (%d, %d, %d, %d)", n,
                       s->m->in_channels, h, w);
    size_t total;
    if (!rn_size_mul((size_t)n * (size_t)s->m->in_channels, (size_t)h * (size_t)w, &total) ||
        !rn_size_mul(total, 64, &total))
        return rn_fail(RN_ERR_NOMEM, "forward: input too large");
    return RN_OK;
}

rn_status rn_session_plan(rn_session *s, int n, int h, int w) {
    if (!s)
        return rn_fail(RN_ERR_ARG, "rn_session_plan: NULL argument");
    RN_TRY(check_shape(s, n, h, w));
    return plan_for(s, n, h, w, NULL);
}

/* The forward pass of rn_session_forward, _features and _stage: the nodes up to the one writing
 * stage `stage`'s output (with logits: all of them, the stage then RN_STAGE_POOL), that output
 * into `out` as (n, c, h, w) where out is not NULL; the logits where `logits` is not NULL (else
 * the classifier is skipped). A stage's maps are copied after the pass: with the logits, later
 * nodes would have written over them (eval mode's residual outputs in place, the arena's reuse). */
static rn_status forward_pass(rn_session *s, const float *x, int n, int h, int w, rn_mode mode,
                              float *logits, int stage, float *out) {
    const rn_model *m = s->m;
    RN_TRY(check_shape(s, n, h, w));
    if (mode != RN_MODE_EVAL && mode != RN_MODE_TRAIN)
        return rn_fail(RN_ERR_ARG, "rn_session_forward: unknown mode %d", (int)mode);
    if (s->int8 && mode != RN_MODE_EVAL)
        return rn_fail(RN_ERR_ARG, "an int8 model runs in eval mode only");
    RN_TRY(plan_for(s, n, h, w, NULL));
    s->value_now = mode == RN_MODE_EVAL ? s->value_at : s->value_at_train;
    if (mode == RN_MODE_EVAL)
        prepare_weights(s);
    if (logits && stage != RN_STAGE_POOL)
        return rn_fail(RN_ERR_ARG, "forward: the logits come with the pooled features only");
    const int v_out = rn_graph_stage_value(s->sc, stage);
    const int last = logits ? s->sc->n_nodes - 1 : s->sc->values[v_out].producer;
    if (s->int8) {
        rn_int8_forward(s, x, n, logits, last);
        RN_TRY(copy_stage(s, n, v_out, out));
        /* an image with a value that is not finite: NaN, as its logits (rn_int8_forward) */
        const rn_value *vo = &s->sc->values[v_out];
        const size_t per = (size_t)vo->c * (size_t)vo->h * (size_t)vo->w;
        for (int b = 0; out && b < n; b++)
            if (!rn_int8_image_finite(s, x, b))
                for (size_t j = 0; j < per; j++)
                    out[(size_t)b * per + j] = NAN;
        return RN_OK;
    }

    const rn_graph *sc = s->sc;
    /* bf16 products round their operands as they pack them (GEMM panels, the direct tile's
     * pairs), so activations stay float32 between layers; fp32 kernels standing in for bf16
     * ones ("emulated") have the activations rounded instead, after every convolution. A
     * separate pass over every output cost a bf16 session 5-8% of its time (resnet18 and
     * resnet50 at batch 1, perf, Zen 5). */
    const int round_values = s->bf16 && !rn_kernels_are_bf16(s->kconv);
    /* x: (N, C, H, W) -> value 0: (C, N, H, W); one image is the same either way */
    const float *in = x;
    if (n > 1 || round_values) {
        layout_nchw_to_cnhw(x, n, m->in_channels, (size_t)h * (size_t)w, value_ptr(s, 0));
        in = value_ptr(s, 0);
        if (round_values)
            rn_round_bf16(value_ptr(s, 0), rn_value_floats(sc, 0, n));
    }
    if (s->observe)
        s->observe(s->observe_ctx, 0, in, rn_value_floats(sc, 0, n), 0);
    int blocked = 0; /* the last node's output is blocked by 16 channels (pool_fused) */
    for (int i = 0; i <= last; i++) {
        const rn_node *nd = &sc->nodes[i];
        const rn_value *vi = &sc->values[nd->in];
        const float *src = nd->in == 0 ? in : value_ptr(s, nd->in);
        float *dst = value_ptr(s, nd->out);
        switch (nd->op) {
        case RN_NODE_CONV:
            blocked = pool_fused(s, i, mode);
            run_conv(s, i, n, mode, src, blocked);
            if (round_values)
                rn_round_bf16(dst, rn_value_floats(sc, nd->out, n));
            break;
        case RN_NODE_MAXPOOL:
            if (blocked)
                maxpool2d_forward_blocked16(s->k, src, vi->c / 16, n, vi->h, vi->w, nd->k,
                                            nd->stride, nd->pad, dst);
            else
                maxpool2d_forward(src, vi->c * n, vi->h, vi->w, nd->k, nd->stride, nd->pad, dst);
            blocked = 0;
            break;
        case RN_NODE_AVGPOOL:
            avgpool_global_forward(src, (size_t)vi->c * (size_t)n, (size_t)vi->h * (size_t)vi->w,
                                   dst);
            break;
        case RN_NODE_LINEAR:
            /* dst (num_classes, n) is the scratch; the logits land in (n, num_classes) */
            if (logits)
                linear_forward(s->k, src, vi->c, n, m->fc_w, m->fc_b, m->num_classes, logits,
                               dst);
            break;
        }
        if (s->observe && (nd->op == RN_NODE_CONV || nd->op == RN_NODE_MAXPOOL))
            s->observe(s->observe_ctx, nd->out, dst, rn_value_floats(sc, nd->out, n), blocked);
    }
    return copy_stage(s, n, v_out, out);
}

rn_status rn_session_forward(rn_session *s, const float *x, int n, int h, int w, rn_mode mode,
                             float *logits) {
    if (!s || !x || !logits)
        return rn_fail(RN_ERR_ARG, "rn_session_forward: NULL argument");
    return forward_pass(s, x, n, h, w, mode, logits, RN_STAGE_POOL, NULL);
}

rn_status rn_session_forward_features(rn_session *s, const float *x, int n, int h, int w,
                                      rn_mode mode, float *features, float *logits) {
    if (!s || !x || !features)
        return rn_fail(RN_ERR_ARG, "rn_session_forward_features: NULL argument");
    return forward_pass(s, x, n, h, w, mode, logits, RN_STAGE_POOL, features);
}

rn_status rn_session_forward_stage(rn_session *s, const float *x, int n, int h, int w,
                                   rn_mode mode, int stage, float *out) {
    if (!s || !x || !out)
        return rn_fail(RN_ERR_ARG, "rn_session_forward_stage: NULL argument");
    if (stage < 0 || stage > RN_STAGE_POOL)
        return rn_fail(RN_ERR_ARG, "rn_session_forward_stage: stage %d is not one of 0..%d", stage,
                       RN_STAGE_POOL);
    return forward_pass(s, x, n, h, w, mode, NULL, stage, out);
}

const float *rn_session_features(const rn_session *s) {
    int v = s->sc ? rn_graph_features(s->sc) : -1;
    return v >= 0 ? value_ptr(s, v) : NULL;
}

/* ---- what ran ------------------------------------------------------------------------- */

rn_status rn_session_algorithms(const rn_session *s, char *buf, size_t cap) {
    if (!s || !buf || cap == 0)
        return rn_fail(RN_ERR_ARG, "rn_session_algorithms: bad argument");
    buf[0] = 0;
    if (!s->sc)
        return rn_fail(RN_ERR_ARG, "rn_session_algorithms: the session has not run yet");
    char text[384], algos[192];
    int count[RN_CONV_ALGO_COUNT] = {0};
    for (int i = 0; i < s->sc->n_nodes; i++)
        if (s->sc->nodes[i].op == RN_NODE_CONV)
            count[s->algo[i]]++;
    rn_conv_algo_format(count, algos, sizeof algos);
    if (s->int8)
        snprintf(text, sizeof text, "int8 %s x%d", s->k->q_name, s->sc->n_convs);
    else if (!s->bf16)
        snprintf(text, sizeof text, "%s", algos);
    else if (s->kconv != s->k && rn_conv_bf16_kernels(s->kconv, RN_CONV_WINOGRAD) == s->kconv)
        snprintf(text, sizeof text, "bf16 %s: %s", s->kconv->name, algos);
    else if (s->kconv != s->k) /* matrix tiles: Winograd on the fp32 twin */
        snprintf(text, sizeof text, "bf16 %s (winograd on fp32 products): %s", s->kconv->name, algos);
    else
        snprintf(text, sizeof text, "bf16 emulated (fp32 kernels on bf16-rounded operands: the %s "
                 "kernels have no bf16 product on this CPU): %s", rn_isa_name(s->k->isa), algos);
    return rn_copy_text(buf, cap, text, "rn_session_algorithms");
}

rn_status rn_session_plan_bytes(const rn_model *m, const rn_session_config *cfg, int n, int h, int w,
                                size_t *bytes) {
    if (!m || !bytes)
        return rn_fail(RN_ERR_ARG, "rn_session_plan_bytes: NULL argument");
    if (n < 1 || h < 1 || w < 1)
        return rn_fail(RN_ERR_ARG, "rn_session_plan_bytes: batch %d at %dx%d", n, h, w);
    rn_session *s;
    RN_TRY(rn_session_create(m, cfg, &s));
    rn_status st = plan_for(s, n, h, w, bytes);
    rn_session_free(s);
    return st;
}

size_t rn_session_bytes(const rn_session *s) {
    if (!s)
        return 0;
    return (s->arena_floats + s->ws_floats + s->prepared_floats + s->fold_floats +
            4 * (size_t)s->max_channels) * sizeof(float);
}

/* ---- the one-call convenience -------------------------------------------------------------- */

rn_status rn_model_forward(rn_model *m, const float *x, int n, int h, int w, rn_mode mode,
                           float *logits) {
    if (!m || !x || !logits)
        return rn_fail(RN_ERR_ARG, "rn_model_forward: NULL argument");
    rn_session *s;
    RN_TRY(rn_session_create(m, NULL, &s));
    rn_status st = rn_session_forward(s, x, n, h, w, mode, logits);
    rn_session_free(s);
    return st;
}
