/*
 * trainer.c - optimizer steps on a model: forward + backward (backprop.c),
 * then SGD or AdamW on every trainable tensor, with the learning rate of
 * the schedule. The trainer owns the gradients and the optimizer state,
 * each one block with the layout of the parameters (two for AdamW), and
 * the training arena; the model only has its weights written.
 *
 * A step whose loss, gradients or new BatchNorm running statistics are not
 * finite changes nothing (weights, BatchNorm statistics, optimizer state and
 * step count stay as they were) and says so in its result; the caller
 * decides when to give up.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/finite.h"
#include "core/mem.h"
#include "core/status.h"
#include "engine/session.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "ops/conv_algo.h"
#include "ops/ops.h"
#include "train/backprop.h"
#include "train/optim.h"

struct rn_trainer {
    rn_model *m;
    rn_train_config cfg;
    char optimizer[16];
    char schedule_spec[128];
    int adamw;
    rn_schedule sched;
    const rn_kernels *k;      /* the products' kernels: fp32, or bf16 for precision bf16 */
    float *grads;             /* the loss gradient, the layout of m->params */
    float *state;             /* SGD: momentum buffers; AdamW: first moments */
    float *state2;            /* AdamW: second moments */
    int64_t steps;
    float *ema;               /* the weights' moving average (ema_decay > 0), m->params' layout */
    int64_t ema_updates;      /* updates since it was last a copy (torchvision's n_averaged) */
    rn_backprop *bp;          /* forward and backward through the whole model */
    rn_grad_hook hook;        /* during backward: ranges of final gradients (data parallel) */
    void *hook_ctx;
    rn_update_hook update_hook;  /* between backward and the update (data parallel) */
    void *update_ctx;
    /* --freeze-backbone: an eval-mode session for the features, the head's buffers */
    rn_session *frozen;
    float *logits, *dlogits;  /* (n, num_classes) */
    int head_batch;
};

void rn_train_config_default(rn_train_config *cfg) {
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->optimizer = "sgd";
    cfg->lr = 0.05;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = 1e-8;
    cfg->schedule = "constant";
    cfg->lr_backbone = -1.0;
    cfg->norm_weight_decay = -1.0;
    cfg->ema_every = 32;
}

/* The kernels of cfg's precision on the process's instruction set: fp32, or its bf16 twin. */
static rn_status train_kernels(const rn_train_config *cfg, const rn_kernels **out) {
    rn_isa isa;
    RN_TRY(rn_isa_default(&isa));
    const rn_kernels *k = rn_kernels_for(isa);
    const char *prec = cfg->precision && *cfg->precision ? cfg->precision : "fp32";
    if (strcmp(prec, "bf16") == 0) {
        const rn_kernels *kb = rn_kernels_bf16(k);
        if (!kb)
            return rn_fail(RN_ERR_UNSUPPORTED, "bf16 training needs bf16 products (AVX-512 BF16 "
                           "or AMX), which this CPU (%s, %s kernels) lacks; RN_ISA=portable runs "
                           "the portable bf16 kernels (slowly)", rn_cpu_name(), rn_isa_name(isa));
        k = kb;
    } else if (strcmp(prec, "fp32") != 0) {
        return rn_fail(RN_ERR_ARG, "unknown training precision '%s' (expected fp32 or bf16)", prec);
    }
    *out = k;
    return RN_OK;
}

/* An int8 model runs, but holds no weights a gradient could move. */
static rn_status refuse_int8(const rn_model *m) {
    if (m->quantized)
        return rn_fail(RN_ERR_UNSUPPORTED, "this is an int8 model: it can be evaluated and run, not "
                       "trained or differentiated; start from the float32 weights it was quantized from");
    return RN_OK;
}

rn_status rn_trainer_create(rn_model *m, const rn_train_config *cfg, rn_trainer **out) {
    if (!m || !out)
        return rn_fail(RN_ERR_ARG, "rn_trainer_create: NULL argument");
    *out = NULL;
    rn_train_config def;
    if (!cfg) { /* the defaults, as rn_session_create takes a NULL configuration */
        rn_train_config_default(&def);
        cfg = &def;
    }
    RN_TRY(refuse_int8(m));
    const char *opt = cfg->optimizer ? cfg->optimizer : "sgd";
    if (strcmp(opt, "sgd") != 0 && strcmp(opt, "adamw") != 0)
        return rn_fail(RN_ERR_ARG, "unknown optimizer '%s' (expected sgd or adamw)", opt);
    if (!(cfg->lr >= 0.0) || !(cfg->momentum >= 0.0) || !(cfg->weight_decay >= 0.0))
        return rn_fail(RN_ERR_ARG, "learning rate, momentum and weight decay must be >= 0");
    if (cfg->norm_weight_decay != cfg->norm_weight_decay) /* NaN; < 0 is "weight_decay's" */
        return rn_fail(RN_ERR_ARG, "the norm layers' weight decay is not a number");
    if (!(cfg->clip_grad_norm >= 0.0 && isfinite(cfg->clip_grad_norm)))
        return rn_fail(RN_ERR_ARG, "the gradient clipping norm must be a finite number >= 0 (0: no "
                       "clipping), got %g", cfg->clip_grad_norm);
    if (!(cfg->ema_decay >= 0.0 && cfg->ema_decay < 1.0) || cfg->ema_every < 0)
        return rn_fail(RN_ERR_ARG, "the weights' moving average needs a decay in [0, 1) (0: none) and "
                       "ema_every >= 0, got %g and %d", cfg->ema_decay, cfg->ema_every);
    if (!(cfg->label_smoothing >= 0.0f && cfg->label_smoothing <= 1.0f))
        return rn_fail(RN_ERR_ARG, "label smoothing must be in [0, 1]");
    if (cfg->nesterov && cfg->momentum <= 0.0)
        return rn_fail(RN_ERR_ARG, "Nesterov momentum requires a momentum > 0");
    /* AdamW's as PyTorch checks them: a beta of 1 had divided by a zero bias correction, every
     * weight NaN after a step reported as taken */
    if (strcmp(opt, "adamw") == 0 &&
        (!(cfg->beta1 >= 0.0 && cfg->beta1 < 1.0) || !(cfg->beta2 >= 0.0 && cfg->beta2 < 1.0) ||
         !(cfg->eps >= 0.0 && isfinite(cfg->eps))))
        return rn_fail(RN_ERR_ARG, "AdamW needs betas in [0, 1) and eps >= 0, got beta1 %g, beta2 %g, "
                       "eps %g", cfg->beta1, cfg->beta2, cfg->eps);
    const rn_kernels *k;
    RN_TRY(train_kernels(cfg, &k));
    int algo;
    RN_TRY(rn_conv_algo_parse(cfg->conv_algo, &algo));

    rn_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return rn_fail(RN_ERR_NOMEM, "out of memory creating a trainer");
    t->m = m;
    t->cfg = *cfg;
    t->cfg.conv_algo = NULL;
    t->cfg.precision = NULL;
    t->k = k;
    snprintf(t->optimizer, sizeof t->optimizer, "%s", opt);
    snprintf(t->schedule_spec, sizeof t->schedule_spec, "%s", cfg->schedule ? cfg->schedule : "constant");
    t->cfg.optimizer = t->optimizer;
    t->cfg.schedule = t->schedule_spec;
    t->adamw = strcmp(opt, "adamw") == 0;

    rn_status st = rn_schedule_parse(t->schedule_spec, &t->sched);
    if (st == RN_OK) {
        /* the counts the schedule needs, given (not taken as 1: a cosine schedule over 1 step had
         * left the learning rate at its floor from the first step on) */
        t->sched.warmup_steps = cfg->warmup_steps;
        t->sched.warmup_factor = cfg->warmup_factor;
        t->sched.warmup_constant = cfg->warmup_constant;
        t->sched.warmup_sequential = cfg->warmup_sequential;
        t->sched.by_epoch = cfg->schedule_by_epoch;
        rn_schedule given = t->sched;
        given.base_lr = cfg->lr > 0.0 ? cfg->lr : 1.0; /* a learning rate of 0 is allowed */
        given.steps_per_epoch = cfg->steps_per_epoch;
        given.total_steps = cfg->total_steps;
        st = rn_schedule_check(&given);
        if (st != RN_OK) {
            char why[256];
            snprintf(why, sizeof why, "%s", rn_last_error());
            st = rn_fail(st, "%s (rn_train_config: warmup_steps, steps_per_epoch for step, multistep, exponential "
                         "and schedule_by_epoch, total_steps for cosine and onecycle)", why);
        }
    }
    if (st == RN_OK) {
        t->sched.base_lr = cfg->lr;
        t->sched.steps_per_epoch = cfg->steps_per_epoch > 0 ? cfg->steps_per_epoch : 1;
        t->sched.total_steps = cfg->total_steps > 0 ? cfg->total_steps : 1;
        t->grads = rn_calloc(m->n_params, sizeof(float));
        t->state = rn_calloc(m->n_params, sizeof(float));
        if (t->adamw)
            t->state2 = rn_calloc(m->n_params, sizeof(float));
        if (cfg->ema_decay > 0.0 && (t->ema = rn_calloc(m->n_params, sizeof(float))) != NULL)
            memcpy(t->ema, m->params, m->n_params * sizeof(float));
        if (!t->grads || !t->state || (t->adamw && !t->state2) || (cfg->ema_decay > 0.0 && !t->ema))
            st = rn_fail(RN_ERR_NOMEM, "out of memory for the gradients and the optimizer state");
    }
    if (st == RN_OK && cfg->freeze_backbone) {
        /* the frozen backbone runs in an eval-mode session of the same precision */
        rn_session_config scfg;
        rn_session_config_default(&scfg);
        scfg.precision = rn_kernels_are_bf16(k) ? "bf16" : "fp32";
        st = rn_session_create(m, &scfg, &t->frozen);
    } else if (st == RN_OK) {
        st = rn_backprop_create(m, t->k, algo, &t->bp);
    }
    if (st != RN_OK) {
        rn_trainer_free(t);
        return st;
    }
    *out = t;
    return RN_OK;
}

void rn_trainer_free(rn_trainer *t) {
    if (!t)
        return;
    rn_backprop_free(t->bp);
    rn_session_free(t->frozen);
    rn_free(t->grads);
    rn_free(t->state);
    rn_free(t->state2);
    rn_free(t->ema);
    rn_free(t->logits);
    rn_free(t->dlogits);
    free(t);
}

int64_t rn_trainer_steps(const rn_trainer *t) { return t ? t->steps : 0; }

rn_status rn_trainer_set_grad_hook(rn_trainer *t, rn_grad_hook fn, void *ctx) {
    if (!t)
        return rn_fail(RN_ERR_ARG, "rn_trainer_set_grad_hook: NULL trainer");
    t->hook = fn;
    t->hook_ctx = ctx;
    return RN_OK;
}

rn_status rn_trainer_set_update_hook(rn_trainer *t, rn_update_hook fn, void *ctx) {
    if (!t)
        return rn_fail(RN_ERR_ARG, "rn_trainer_set_update_hook: NULL trainer");
    t->update_hook = fn;
    t->update_ctx = ctx;
    return RN_OK;
}

rn_status rn_trainer_set_bn_sync(rn_trainer *t, rn_bn_sync_hook fn, void *ctx) {
    if (!t)
        return rn_fail(RN_ERR_ARG, "rn_trainer_set_bn_sync: NULL trainer");
    if (t->bp)
        rn_backprop_set_bn_sync(t->bp, fn, ctx);
    return RN_OK;
}

size_t rn_trainer_bytes(const rn_trainer *t) {
    if (!t)
        return 0;
    /* gradients, optimizer state, the weights' moving average */
    size_t blocks = t->m->n_params * sizeof(float) * ((t->adamw ? 3 : 2) + (t->ema != NULL));
    size_t head = 2 * (size_t)t->head_batch * (size_t)t->m->num_classes * sizeof(float);
    return blocks + rn_backprop_bytes(t->bp) + rn_session_bytes(t->frozen) + head;
}

rn_status rn_trainer_plan_bytes(const rn_model *m, const rn_train_config *cfg, int n, int h, int w,
                                size_t *bytes) {
    if (!m || !bytes)
        return rn_fail(RN_ERR_ARG, "rn_trainer_plan_bytes: NULL argument");
    RN_TRY(refuse_int8(m)); /* what rn_trainer_create refuses plans nothing */
    rn_train_config def;
    if (!cfg) { /* the defaults, as rn_trainer_create takes them */
        rn_train_config_default(&def);
        cfg = &def;
    }
    if (n < 1 || h < 1 || w < 1)
        return rn_fail(RN_ERR_ARG, "rn_trainer_plan_bytes: batch %d at %dx%d", n, h, w);
    int adamw = cfg->optimizer && strcmp(cfg->optimizer, "adamw") == 0;
    size_t blocks, work, head = 0;
    if (!rn_size_mul(m->n_params, sizeof(float) * ((adamw ? 3 : 2) + (cfg->ema_decay > 0.0)), &blocks))
        return rn_fail(RN_ERR_NOMEM, "the optimizer state cannot be addressed");
    if (cfg->freeze_backbone) {
        RN_TRY(rn_session_plan_bytes(m, NULL, n, h, w, &work));
        if (!rn_size_mul((size_t)n, 2 * (size_t)m->num_classes * sizeof(float), &head))
            return rn_fail(RN_ERR_NOMEM, "a batch of %d cannot be addressed", n);
    } else {
        const rn_kernels *k;
        int algo;
        RN_TRY(train_kernels(cfg, &k));
        RN_TRY(rn_conv_algo_parse(cfg->conv_algo, &algo));
        RN_TRY(rn_backprop_plan_bytes(m, k, algo, n, h, w, &work));
    }
    if (!rn_size_add(blocks, work, bytes) || !rn_size_add(*bytes, head, bytes))
        return rn_fail(RN_ERR_NOMEM, "training for batch %d at %dx%d cannot be addressed", n, h, w);
    return RN_OK;
}

const char *rn_trainer_isa(const rn_trainer *t) { return t ? rn_isa_name(t->k->isa) : ""; }

const char *rn_trainer_kernel(const rn_trainer *t) { return t ? t->k->name : ""; }

const char *rn_trainer_precision(const rn_trainer *t) {
    return !t ? "" : rn_kernels_are_bf16(t->k) ? "bf16" : "fp32";
}

rn_status rn_trainer_algorithms(const rn_trainer *t, char *buf, size_t cap) {
    if (!t)
        return rn_fail(RN_ERR_ARG, "rn_trainer_algorithms: NULL trainer");
    return t->frozen ? rn_session_algorithms(t->frozen, buf, cap) : rn_backprop_algorithms(t->bp, buf, cap);
}

static int is_head(const rn_tensor_ref *r) { return strncmp(r->name, "fc.", 3) == 0; }

/* A frozen backbone runs in eval mode (running statistics, not updated);
 * only the classifier is differentiated. */
static rn_status head_forward_backward(rn_trainer *t, const float *x, const int32_t *labels,
                                       const int32_t *labels2, float lam, int n, int h, int w, float *loss,
                                       int *correct) {
    rn_model *m = t->m;
    int K = m->num_classes;
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= K || labels2[i] < 0 || labels2[i] >= K)
            return rn_fail(RN_ERR_ARG, "training batch: label %d of image %d is outside 0..%d",
                           (int)(labels[i] < 0 || labels[i] >= K ? labels[i] : labels2[i]), i, K - 1);
    if (t->head_batch < n) {
        rn_free(t->logits);
        rn_free(t->dlogits);
        t->logits = rn_alloc((size_t)n * K * sizeof(float));
        t->dlogits = rn_alloc((size_t)n * K * sizeof(float));
        t->head_batch = t->logits && t->dlogits ? n : 0;
        if (!t->head_batch)
            return rn_fail(RN_ERR_NOMEM, "out of memory for the classifier's buffers");
    }
    RN_TRY(rn_session_forward(t->frozen, x, n, h, w, RN_MODE_EVAL, t->logits));
    *loss = softmax_cross_entropy_mix(t->logits, (const int *)labels, (const int *)labels2, lam, n, K,
                                      t->cfg.label_smoothing, t->dlogits, correct);
    linear_backward(t->k, rn_session_features(t->frozen), m->feat, n, m->fc_w, K, t->dlogits, NULL,
                    t->grads + (m->fc_w - m->params), t->grads + (m->fc_b - m->params));
    if (t->hook) {
        size_t at = (size_t)(m->fc_w - m->params), end = (size_t)(m->fc_b - m->params) + (size_t)K;
        t->hook(t->hook_ctx, t->grads, at, end - at);
    }
    return RN_OK;
}

/* Whether the step updates tensor r: a trainable one (fc's alone with a frozen backbone). */
static int updated(const rn_trainer *t, const rn_tensor_ref *r) {
    return r->trainable && (!t->cfg.freeze_backbone || is_head(r));
}

/* Whether every gradient the update would read is finite. */
static int gradients_finite(const rn_trainer *t) {
    const rn_model *m = t->m;
    for (int i = 0; i < m->n_tensors; i++) {
        const rn_tensor_ref *r = &m->tensors[i];
        if (!updated(t, r))
            continue;
        if (!rn_floats_finite(t->grads + (r->f32 - m->params), r->numel))
            return 0;
    }
    return 1;
}

/* The sum of the squares of x[0 .. n), in double, in a fixed order (eight partial sums, so that
 * it vectorises) whatever the thread count. */
static double sum_squares(const float *x, size_t n) {
    double part[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            part[k] += (double)x[i + k] * x[i + k];
    for (int k = 0; i < n; i++, k++)
        part[k] += (double)x[i] * x[i];
    return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

/* torch.nn.utils.clip_grad_norm_ over the gradients the step applies (the head's alone with a
 * frozen backbone): their total L2 norm, and all of them scaled by clip / (norm + 1e-6) where
 * that is below 1. Returns the norm before clipping. */
static double clip_gradients(rn_trainer *t, double clip) {
    const rn_model *m = t->m;
    double sq = 0.0;
    for (int i = 0; i < m->n_tensors; i++) {
        const rn_tensor_ref *r = &m->tensors[i];
        if (updated(t, r))
            sq += sum_squares(t->grads + (r->f32 - m->params), r->numel);
    }
    const double norm = sqrt(sq), coef = clip / (norm + 1e-6);
    if (coef < 1.0)
        for (int i = 0; i < m->n_tensors; i++) {
            const rn_tensor_ref *r = &m->tensors[i];
            if (!updated(t, r))
                continue;
            float *g = t->grads + (r->f32 - m->params);
            for (size_t j = 0; j < r->numel; j++)
                g[j] *= (float)coef;
        }
    return norm;
}

/* After the update of the schedule's step `at` (from 0): the moving average's, after the
 * batches 0, every, 2 every, ... of each epoch (torchvision's reference: i % model_ema_steps
 * == 0, i the batch's index in its epoch; steps_per_epoch unknown, of the whole run); a copy
 * when it has no updates yet (AveragedModel's n_averaged 0), which it is made to have again
 * after each update within the warm-up (torchvision's reference resets it there). */
static void update_ema(rn_trainer *t, int64_t at) {
    const int every = t->cfg.ema_every > 0 ? t->cfg.ema_every : 1;
    const int64_t index = t->cfg.steps_per_epoch > 0 ? at % t->cfg.steps_per_epoch : at;
    if (!t->ema || index % every != 0)
        return;
    const rn_model *m = t->m;
    if (t->ema_updates == 0) {
        memcpy(t->ema, m->params, m->n_params * sizeof *t->ema);
    } else {
        const float d = (float)t->cfg.ema_decay, keep = (float)(1.0 - t->cfg.ema_decay);
        for (size_t i = 0; i < m->n_params; i++)
            t->ema[i] = d * t->ema[i] + keep * m->params[i];
    }
    t->ema_updates = at < t->cfg.warmup_steps ? 0 : t->ema_updates + 1;
}

rn_status rn_trainer_step(rn_trainer *t, const float *x, const int32_t *labels, int n, int h, int w,
                          rn_step_result *result) {
    return rn_trainer_step_mixed(t, x, labels, NULL, 1.0f, n, h, w, result);
}

rn_status rn_trainer_step_mixed(rn_trainer *t, const float *x, const int32_t *labels, const int32_t *labels2,
                                float lam, int n, int h, int w, rn_step_result *result) {
    if (!t || !x || !labels)
        return rn_fail(RN_ERR_ARG, "rn_trainer_step: NULL argument");
    if (!labels2) /* unmixed */
        labels2 = labels, lam = 1.0f;
    if (!(lam >= 0.0f && lam <= 1.0f))
        return rn_fail(RN_ERR_ARG, "rn_trainer_step_mixed: the first labels' share %g is not in [0, 1]",
                       (double)lam);
    rn_model *m = t->m;
    float loss = 0.0f;
    int correct = 0;
    if (t->cfg.freeze_backbone) {
        RN_TRY(head_forward_backward(t, x, labels, labels2, lam, n, h, w, &loss, &correct));
    } else {
        RN_TRY(rn_backprop_forward(t->bp, x, labels, labels2, lam, n, h, w, t->cfg.label_smoothing, &loss,
                                   &correct));
        RN_TRY(rn_backprop_backward(t->bp, t->grads, t->hook, t->hook_ctx));
    }
    /* the running statistics this step would set, this process's own (without a BatchNorm sync
     * hook, its share of the batch's): not finite, the step is skipped */
    const int bn_ok = t->cfg.freeze_backbone || rn_backprop_bn_finite(t->bp, m);
    /* with an update hook (data parallel: the hook adds up every process's loss), a local
     * failure poisons the loss, so that every process skips the step, not this one alone (the
     * others had stepped on, their weights parting from its) */
    if (t->update_hook && !bn_ok)
        loss = NAN;
    if (t->update_hook)
        t->update_hook(t->update_ctx, t->grads, m->n_params, &loss, &correct);
    const int64_t at = t->steps + t->cfg.schedule_offset; /* the schedule's step */
    double lr = rn_schedule_lr(&t->sched, at);
    if (result) {
        result->loss = loss;
        result->correct = correct;
        result->lr = lr;
        result->skipped = 0;
        result->grad_norm = 0.0;
    }
    if (!isfinite(loss) || !gradients_finite(t) || !bn_ok) {
        if (result)
            result->skipped = 1;
        return RN_OK;
    }

    if (t->cfg.clip_grad_norm > 0.0) {
        const double norm = clip_gradients(t, t->cfg.clip_grad_norm);
        if (result)
            result->grad_norm = norm;
    }
    if (!t->cfg.freeze_backbone)
        rn_backprop_update_bn(t->bp, m);
    /* the backbone's group: the schedule run from its own rate, as a PyTorch scheduler runs each
     * parameter group from its own initial lr (cosine's eta_min the floor of both; onecycle as
     * max_lr=[lr_backbone, lr]). It had been lr_backbone * lr / base_lr, which differs under a
     * cosine to eta_min > 0 and was 0 with --lr 0. */
    double lr_backbone = lr;
    if (t->cfg.lr_backbone >= 0.0) {
        rn_schedule group = t->sched;
        group.base_lr = t->cfg.lr_backbone;
        lr_backbone = rn_schedule_lr(&group, at);
    }
    t->steps++;
    for (int i = 0; i < m->n_tensors; i++) {
        const rn_tensor_ref *r = &m->tensors[i];
        if (!updated(t, r))
            continue;
        int head = is_head(r);
        float tensor_lr = (float)(head ? lr : lr_backbone);
        const double decay = r->norm && t->cfg.norm_weight_decay >= 0.0 ? t->cfg.norm_weight_decay
                                                                         : t->cfg.weight_decay;
        size_t off = (size_t)(r->f32 - m->params);
        const float *g = t->grads + off;
        if (t->adamw)
            rn_adamw_update(r->f32, g, t->state + off, t->state2 + off, r->numel, head ? lr : lr_backbone,
                            t->cfg.beta1, t->cfg.beta2, t->cfg.eps, decay, t->steps);
        else
            rn_sgd_update(r->f32, g, t->state + off, r->numel, tensor_lr, (float)t->cfg.momentum,
                          (float)decay, t->cfg.nesterov, t->steps == 1);
    }
    /* the classifier is read live by every forward; only the backbone is prepared */
    if (!t->cfg.freeze_backbone)
        rn_model_params_changed(m);
    update_ema(t, at);
    return RN_OK;
}

rn_status rn_trainer_ema_weights(const rn_trainer *t, rn_model *dst) {
    if (!t || !dst)
        return rn_fail(RN_ERR_ARG, "rn_trainer_ema_weights: NULL argument");
    if (!t->ema)
        return rn_fail(RN_ERR_ARG, "this trainer keeps no moving average of the weights (ema_decay 0)");
    const rn_model *m = t->m;
    if (dst == m || dst->quantized || strcmp(dst->arch->name, m->arch->name) != 0 ||
        dst->n_params != m->n_params || dst->n_tensors != m->n_tensors || dst->num_classes != m->num_classes ||
        dst->in_channels != m->in_channels || dst->width != m->width || dst->stem_kind != m->stem_kind)
        return rn_fail(RN_ERR_ARG, "rn_trainer_ema_weights: the model is not one of the trainer's "
                       "architecture, classes and shapes (%s)", m->arch->name);
    memcpy(dst->params, t->ema, m->n_params * sizeof *dst->params);
    for (int i = 0; i < m->n_tensors; i++) /* num_batches_tracked: the model's, not averaged */
        if (m->tensors[i].i64 && dst->tensors[i].i64)
            *dst->tensors[i].i64 = *m->tensors[i].i64;
    rn_model_params_changed(dst);
    return RN_OK;
}

/* ---- optimizer state in and out ------------------------------------------------------------- */

#include "train/checkpoint.h"   /* rn_trainer_write_state_to */

rn_status rn_trainer_write_state_to(const rn_trainer *t, rn_wfile *w, const char *const *keys,
                                    const char *const *values, int count) {
    if (!t || !w || !w->f || count < 0 || (count > 0 && (!keys || !values)))
        return rn_fail(RN_ERR_ARG, "rn_trainer_save_state: bad argument");
    const rn_model *m = t->m;
    if (!rn_floats_finite(t->state, m->n_params) || (t->adamw && !rn_floats_finite(t->state2, m->n_params)) ||
        (t->ema && !rn_floats_finite(t->ema, m->n_params)))
        return rn_fail(RN_ERR_ARG, "%s: not written: the optimizer state holds a NaN or an infinity", w->path);
    int64_t shape[1] = {(int64_t)m->n_params}, one[1] = {1};
    st_entry e[5];
    int ne = 0;
    e[ne++] = (st_entry){t->adamw ? "optimizer.exp_avg" : "optimizer.momentum_buffer", ST_F32, 1, shape, t->state};
    if (t->adamw)
        e[ne++] = (st_entry){"optimizer.exp_avg_sq", ST_F32, 1, shape, t->state2};
    e[ne++] = (st_entry){"optimizer.step", ST_I64, 1, one, &t->steps};
    if (t->ema) {
        e[ne++] = (st_entry){"optimizer.ema", ST_F32, 1, shape, t->ema};
        e[ne++] = (st_entry){"optimizer.ema_updates", ST_I64, 1, one, &t->ema_updates};
    }
    st_meta *meta = calloc((size_t)count + 3, sizeof *meta);
    if (!meta)
        return rn_fail(RN_ERR_NOMEM, "out of memory saving %s", w->path);
    char nparams[32];
    snprintf(nparams, sizeof nparams, "%zu", m->n_params);
    meta[0] = (st_meta){"optimizer", (char *)t->optimizer};
    meta[1] = (st_meta){"arch", (char *)m->arch->name};
    meta[2] = (st_meta){"n_params", nparams};
    for (int i = 0; i < count; i++)
        meta[3 + i] = (st_meta){(char *)keys[i], (char *)values[i]};
    rn_status st = st_write_to(w, e, (size_t)ne, meta, (size_t)count + 3);
    free(meta);
    return st;
}

rn_status rn_trainer_save_state(const rn_trainer *t, const char *path, const char *const *keys,
                                const char *const *values, int count) {
    if (!t || !path)
        return rn_fail(RN_ERR_ARG, "rn_trainer_save_state: bad argument");
    rn_wfile w;
    RN_TRY(rn_wfile_open(&w, path));
    rn_status st = rn_trainer_write_state_to(t, &w, keys, values, count);
    if (st != RN_OK) {
        rn_wfile_discard(&w);
        return st;
    }
    return rn_wfile_commit(&w);
}

/* The state tensor `name` of f: n float32 values, or a failure naming it. */
static rn_status find_vector(const st_file *f, const char *path, const char *name, size_t n,
                             const float **values) {
    const st_tensor *s = st_find(f, name);
    if (!s)
        return rn_fail(RN_ERR_MISMATCH, "%s: missing tensor '%s'", path, name);
    if (!s->f32 || s->ndim != 1 || s->numel != n)
        return rn_fail(RN_ERR_MISMATCH, "%s: tensor '%s' should be %zu floats", path, name, n);
    *values = s->f32;
    return RN_OK;
}

/* Every tensor and the step are checked before anything is copied: a file refused leaves the
 * trainer as it was. */
rn_status rn_trainer_load_state(rn_trainer *t, const char *path,
                                void (*get_meta)(void *ctx, const char *key, const char *value),
                                void *ctx) {
    if (!t || !path)
        return rn_fail(RN_ERR_ARG, "rn_trainer_load_state: NULL argument");
    st_file f;
    RN_TRY(st_read(path, &f));
    rn_status st = RN_OK;
    const char *opt = st_meta_get(&f, "optimizer");
    const char *arch = st_meta_get(&f, "arch");
    const size_t n = t->m->n_params;
    const float *first = NULL, *second = NULL, *ema = NULL;
    long long step = 0, ema_updates = 0;
    if (!opt || strcmp(opt, t->optimizer) != 0)
        st = rn_fail(RN_ERR_MISMATCH, "%s: optimizer state is for '%s', this run uses '%s'", path,
                     opt ? opt : "(none)", t->optimizer);
    else if (!arch || strcmp(arch, t->m->arch->name) != 0)
        st = rn_fail(RN_ERR_MISMATCH, "%s: optimizer state is for '%s', the model is '%s'", path,
                     arch ? arch : "(none)", t->m->arch->name);
    if (st == RN_OK)
        st = find_vector(&f, path, t->adamw ? "optimizer.exp_avg" : "optimizer.momentum_buffer", n,
                         &first);
    if (st == RN_OK && t->adamw)
        st = find_vector(&f, path, "optimizer.exp_avg_sq", n, &second);
    if (st == RN_OK) {
        const st_tensor *s = st_find(&f, "optimizer.step");
        const char *meta_step = st_meta_get(&f, "step");
        char text[32] = "";
        if (s && s->i64 && s->numel == 1)
            snprintf(text, sizeof text, "%lld", (long long)s->i64[0]);
        if (!s || !s->i64 || s->numel != 1 || s->i64[0] < 0)
            st = rn_fail(RN_ERR_MISMATCH, "%s: missing or bad 'optimizer.step'", path);
        else if (meta_step && strcmp(meta_step, text) != 0)
            st = rn_fail(RN_ERR_MISMATCH, "%s: 'optimizer.step' is %s but the metadata says step %.20s", path,
                         text, meta_step);
        else
            step = s->i64[0];
    }
    /* the moving average, where both the file and the trainer have one */
    if (st == RN_OK && t->ema && st_find(&f, "optimizer.ema")) {
        const st_tensor *u = st_find(&f, "optimizer.ema_updates");
        st = find_vector(&f, path, "optimizer.ema", n, &ema);
        if (st == RN_OK && (!u || !u->i64 || u->numel != 1 || u->i64[0] < 0))
            st = rn_fail(RN_ERR_MISMATCH, "%s: missing or bad 'optimizer.ema_updates'", path);
        else if (st == RN_OK)
            ema_updates = u->i64[0];
    }
    if (st == RN_OK) { /* all checked: now the trainer changes */
        memcpy(t->state, first, n * sizeof *t->state);
        if (second)
            memcpy(t->state2, second, n * sizeof *t->state2);
        t->steps = step;
        if (t->ema) { /* without one in the file, the average starts again from the weights */
            memcpy(t->ema, ema ? ema : t->m->params, n * sizeof *t->ema);
            t->ema_updates = ema ? ema_updates : 0;
        }
        if (get_meta)
            for (size_t i = 0; i < f.meta_count; i++)
                get_meta(ctx, f.meta[i].key, f.meta[i].value);
    }
    st_free(&f);
    return st;
}

/* ---- gradients for tests ------------------------------------------------------------------------ */

rn_status rn_model_save_gradients(rn_model *m, const float *x, const int32_t *labels, int n, int h,
                                  int w, float label_smoothing, const char *path, float *loss) {
    if (!m || !path)
        return rn_fail(RN_ERR_ARG, "rn_model_save_gradients: NULL argument");
    if (!(label_smoothing >= 0.0f && label_smoothing <= 1.0f))
        return rn_fail(RN_ERR_ARG, "label smoothing must be in [0, 1], got %g", (double)label_smoothing);
    RN_TRY(refuse_int8(m));
    rn_backprop *bp = NULL;
    float *grads = rn_calloc(m->n_params, sizeof(float));
    st_entry *e = calloc((size_t)m->n_tensors, sizeof *e);
    rn_status st = grads && e ? rn_backprop_create(m, NULL, RN_CONV_IM2COL, &bp)
                              : rn_fail(RN_ERR_NOMEM, "out of memory saving %s", path);
    if (st == RN_OK)
        st = rn_backprop_forward(bp, x, labels, NULL, 1.0f, n, h, w, label_smoothing, loss, NULL);
    if (st == RN_OK)
        st = rn_backprop_backward(bp, grads, NULL, NULL);
    if (st == RN_OK) {
        int k = 0;
        for (int i = 0; i < m->n_tensors; i++) {
            const rn_tensor_ref *r = &m->tensors[i];
            if (r->trainable)
                e[k++] = (st_entry){r->name, ST_F32, r->ndim, r->shape, grads + (r->f32 - m->params)};
        }
        st = st_write(path, e, (size_t)k, NULL, 0);
    }
    free(e);
    rn_free(grads);
    rn_backprop_free(bp);
    return st;
}
