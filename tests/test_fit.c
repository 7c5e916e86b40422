/*
 * test_fit.c - planned memory and non-finite steps: rn_trainer_plan_bytes and
 * rn_session_plan_bytes give, before anything is allocated, the bytes that
 * rn_trainer_bytes and rn_session_bytes report once a step or a forward pass
 * has run (SGD, AdamW, a frozen backbone; two architectures); sizes that
 * cannot be addressed and bad arguments are refused. A step on data that
 * makes the loss non-finite is skipped with the weights, BatchNorm statistics,
 * optimizer state and step count unchanged, and a checkpoint of non-finite
 * weights is never written.
 */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "model/model.h"
#include "resnet.h"
#include "train/checkpoint.h"

/* ---- planned against used ------------------------------------------------------------------- */

static void trainer_case(const char *arch, const char *optimizer, int frozen, int n, int hw) {
    rn_model *m = NULL;
    CHECK(rn_model_create(arch, 3, 7, &m) == RN_OK, "%s: %s", arch, rn_last_error());
    if (!m)
        return;
    rn_train_config cfg;
    rn_train_config_default(&cfg);
    cfg.optimizer = optimizer;
    cfg.lr = 1e-4;
    cfg.freeze_backbone = frozen;
    size_t planned = 0;
    CHECK(rn_trainer_plan_bytes(m, &cfg, n, hw, hw, &planned) == RN_OK, "plan: %s", rn_last_error());
    rn_trainer *t = NULL;
    CHECK(rn_trainer_create(m, &cfg, &t) == RN_OK, "trainer: %s", rn_last_error());
    float *x = malloc((size_t)n * 3 * hw * hw * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    check_fill(x, (size_t)n * 3 * hw * hw, -1.0f, 1.0f);
    for (int i = 0; i < n; i++)
        y[i] = i % 7;
    rn_step_result r;
    CHECK(t && x && y && rn_trainer_step(t, x, y, n, hw, hw, &r) == RN_OK, "step: %s", rn_last_error());
    CHECK(t && planned == rn_trainer_bytes(t), "%s %s%s batch %d at %dx%d: planned %zu bytes, the trainer holds %zu",
          arch, optimizer, frozen ? " frozen" : "", n, hw, hw, planned, rn_trainer_bytes(t));
    free(x), free(y);
    rn_trainer_free(t);
    rn_model_free(m);
}

static void session_case(const char *arch, int n, int hw) {
    rn_model *m = NULL;
    CHECK(rn_model_create(arch, 1, 10, &m) == RN_OK, "%s: %s", arch, rn_last_error());
    if (!m)
        return;
    size_t planned = 0;
    CHECK(rn_session_plan_bytes(m, NULL, n, hw, hw, &planned) == RN_OK, "plan: %s", rn_last_error());
    rn_session *s = NULL;
    float *x = calloc((size_t)n * hw * hw, sizeof *x), y[4 * 10];
    CHECK(rn_session_create(m, NULL, &s) == RN_OK && x && rn_session_forward(s, x, n, hw, hw, RN_MODE_EVAL, y) == RN_OK,
          "forward: %s", rn_last_error());
    CHECK(planned == rn_session_bytes(s), "%s session batch %d at %dx%d: planned %zu bytes, the session holds %zu",
          arch, n, hw, hw, planned, rn_session_bytes(s));
    free(x);
    rn_session_free(s);
    rn_model_free(m);
}

static void test_refused(void) {
    rn_model *m = NULL;
    rn_model_create("resnet50", 3, 1000, &m);
    rn_train_config cfg;
    rn_train_config_default(&cfg);
    size_t bytes = 0;
    rn_status st = rn_trainer_plan_bytes(m, &cfg, 2000000000, 8192, 8192, &bytes);
    CHECK(st == RN_ERR_ARG && strstr(rn_last_error(), "is too large"),
          "an absurd batch is refused, past the kernels' int indices (%d: %s)", (int)st,
          rn_last_error());
    CHECK(rn_trainer_plan_bytes(m, &cfg, 0, 32, 32, &bytes) == RN_ERR_ARG, "batch 0 refused");
    CHECK(rn_session_plan_bytes(m, NULL, 1, 0, 32, &bytes) == RN_ERR_ARG, "height 0 refused");
    CHECK(rn_trainer_plan_bytes(NULL, &cfg, 1, 32, 32, &bytes) == RN_ERR_ARG, "no model refused");
    size_t with_defaults = 0;
    CHECK(rn_trainer_plan_bytes(m, NULL, 2, 32, 32, &with_defaults) == RN_OK &&
              rn_trainer_plan_bytes(m, &cfg, 2, 32, 32, &bytes) == RN_OK && with_defaults == bytes,
          "a NULL configuration plans the defaults (%zu, %zu bytes): %s", with_defaults, bytes,
          rn_last_error());
    rn_model_free(m);
    /* an evaluation's batch size is checked before buffers are sized by it (a negative one had
     * wrapped into a huge request, then "out of memory for evaluation") */
    uint8_t pixels[2 * 8 * 8] = {0};
    const int32_t labels[2] = {0, 1};
    rn_dataset *ds = NULL;
    m = NULL;
    CHECK(rn_model_create("d2l_resnet18", 1, 2, &m) == RN_OK &&
              rn_dataset_create(2, 1, 8, 8, 2, pixels, labels, NULL, &ds) == RN_OK,
          "a model and a dataset: %s", rn_last_error());
    rn_loader_config lc;
    rn_loader_config_default(&lc);
    lc.batch_size = -1;
    rn_eval_result ev;
    CHECK(m && ds && rn_evaluate(m, ds, &lc, NULL, NULL, &ev) == RN_ERR_ARG &&
              strstr(rn_last_error(), "batch size -1"),
          "evaluation with batch size -1 refused, naming it: %s", rn_last_error());
    rn_dataset_close(ds);
    rn_model_free(m);
}

/* ---- non-finite steps ------------------------------------------------------------------------ */

static void test_non_finite(void) {
    rn_model *m = NULL;
    rn_model_create("d2l_resnet18", 1, 10, &m);
    rn_train_config cfg;
    rn_train_config_default(&cfg);
    cfg.momentum = 0.9;
    cfg.lr = 1e-3;
    rn_trainer *t = NULL;
    CHECK(rn_trainer_create(m, &cfg, &t) == RN_OK, "trainer: %s", rn_last_error());
    float x[2 * 32 * 32];
    int32_t y[2] = {3, 4};
    check_fill(x, 2 * 32 * 32, 0.0f, 1.0f);
    rn_step_result r;
    CHECK(rn_trainer_step(t, x, y, 2, 32, 32, &r) == RN_OK && !r.skipped, "a finite step");
    char dir[] = "/tmp/rn_fit.XXXXXX", w[64], s[64];
    CHECK(mkdtemp(dir) != NULL, "temporary folder");
    snprintf(w, sizeof w, "%s/c.safetensors", dir);
    snprintf(s, sizeof s, "%s/c.optim.safetensors", dir);
    rn_checkpoint_spec spec = {w, s, "abc", NULL, NULL, 0, NULL, NULL, 0, NULL, NULL};
    CHECK(rn_checkpoint_save(&spec, m, t) == RN_OK, "a finite checkpoint is written: %s", rn_last_error());
    size_t n = m->n_params;
    float *before = malloc(n * sizeof *before);
    memcpy(before, m->params, n * sizeof *before);
    /* the optimizer state (momentum buffers, step) as the trainer saves it, to compare after */
    char o0[64], o1[64];
    snprintf(o0, sizeof o0, "%s/o0.safetensors", dir);
    snprintf(o1, sizeof o1, "%s/o1.safetensors", dir);
    CHECK(rn_trainer_save_state(t, o0, NULL, NULL, 0) == RN_OK, "the optimizer state before");
    size_t n0 = 0;
    unsigned char *state0 = check_read_file(o0, &n0);
    for (int k = 0; k < 3; k++) {
        x[5 + k] = k == 0 ? NAN : k == 1 ? INFINITY : 3e38f;
        CHECK(rn_trainer_step(t, x, y, 2, 32, 32, &r) == RN_OK && r.skipped, "input %g: the step is skipped",
              (double)x[5 + k]);
        CHECK(memcmp(before, m->params, n * sizeof *before) == 0 && rn_trainer_steps(t) == 1,
              "input %g: weights, BatchNorm statistics and step count unchanged", (double)x[5 + k]);
        size_t n1 = 0;
        CHECK(rn_trainer_save_state(t, o1, NULL, NULL, 0) == RN_OK, "the optimizer state after");
        unsigned char *state1 = check_read_file(o1, &n1);
        CHECK(state0 && state1 && n0 == n1 && memcmp(state0, state1, n0) == 0,
              "input %g: optimizer state unchanged", (double)x[5 + k]);
        free(state1);
        x[5 + k] = 0.5f;
    }
    free(state0);
    unlink(o0), unlink(o1);
    CHECK(rn_trainer_step(t, x, y, 2, 32, 32, &r) == RN_OK && !r.skipped && rn_trainer_steps(t) == 2,
          "a finite step afterwards is taken");
    /* non-finite weights are never written: the checkpoint on disk stays */
    spec.run_id = "abd";
    m->params[0] = NAN;
    CHECK(rn_checkpoint_save(&spec, m, t) == RN_ERR_ARG && strstr(rn_last_error(), "NaN or an infinity"),
          "non-finite weights are refused: %s", rn_last_error());
    rn_checkpoint_id id;
    CHECK(rn_checkpoint_read_id(w, &id) == RN_OK && strcmp(id.run_id, "abc") == 0 && id.step == 1,
          "the checkpoint on disk is still the finite one");
    unlink(w), unlink(s), rmdir(dir);
    free(before);
    rn_trainer_free(t);
    rn_model_free(m);
}

/* What rn_trainer_create refuses: AdamW's betas at or past 1 (every weight had become NaN in a
 * step reported as taken), a negative eps, a schedule without the counts it needs (they had been
 * taken as 1), a negative warm-up. */
static void test_trainer_config(void) {
    rn_model *m = NULL;
    CHECK(rn_model_create("d2l_resnet18", 1, 10, &m) == RN_OK, "model: %s", rn_last_error());
    struct {
        const char *opt, *schedule;
        double beta1, beta2, eps;
        int64_t warmup, per_epoch, total;
        int ok;
    } cases[] = {
        {"adamw", "constant", 0.9, 0.999, 1e-8, 0, 0, 0, 1},
        {"adamw", "constant", 1.0, 0.999, 1e-8, 0, 0, 0, 0},
        {"adamw", "constant", 0.9, 1.0, 1e-8, 0, 0, 0, 0},
        {"adamw", "constant", -0.1, 0.999, 1e-8, 0, 0, 0, 0},
        {"adamw", "constant", 0.9, 0.999, -1.0, 0, 0, 0, 0},
        {"sgd", "constant", 1.0, 1.0, -1.0, 0, 0, 0, 1}, /* SGD has no betas */
        {"sgd", "cosine", 0.9, 0.999, 1e-8, 0, 0, 0, 0},
        {"sgd", "cosine", 0.9, 0.999, 1e-8, 0, 0, 100, 1},
        {"sgd", "onecycle", 0.9, 0.999, 1e-8, 0, 10, 0, 0},
        {"sgd", "step:2", 0.9, 0.999, 1e-8, 0, 0, 100, 0},
        {"sgd", "step:2", 0.9, 0.999, 1e-8, 0, 10, 0, 1},
        {"sgd", "constant", 0.9, 0.999, 1e-8, -3, 0, 0, 0},
    };
    for (size_t i = 0; m && i < sizeof cases / sizeof cases[0]; i++) {
        rn_train_config cfg;
        rn_train_config_default(&cfg);
        cfg.optimizer = cases[i].opt, cfg.schedule = cases[i].schedule;
        cfg.beta1 = cases[i].beta1, cfg.beta2 = cases[i].beta2, cfg.eps = cases[i].eps;
        cfg.warmup_steps = cases[i].warmup, cfg.steps_per_epoch = cases[i].per_epoch;
        cfg.total_steps = cases[i].total;
        rn_trainer *t = NULL;
        rn_status st = rn_trainer_create(m, &cfg, &t);
        CHECK((st == RN_OK) == cases[i].ok && (cases[i].ok || st == RN_ERR_ARG),
              "trainer case %zu (%s, %s, betas %g %g, eps %g, warm-up %lld, %lld steps an epoch, %lld "
              "in all): %s, expected %s (%s)", i, cases[i].opt, cases[i].schedule, cases[i].beta1,
              cases[i].beta2, cases[i].eps, (long long)cases[i].warmup, (long long)cases[i].per_epoch,
              (long long)cases[i].total, st == RN_OK ? "made" : "refused", cases[i].ok ? "made" : "refused",
              rn_last_error());
        rn_trainer_free(t);
    }
    /* no configuration: the defaults, as rn_session_create takes it */
    rn_trainer *t = NULL;
    CHECK(m && rn_trainer_create(m, NULL, &t) == RN_OK && t,
          "rn_trainer_create with a NULL configuration: %s", rn_last_error());
    rn_trainer_free(t);
    rn_model_free(m);
}

/* The accessors and the config defaults take NULL (a load that failed leaves a NULL model). */
static void test_null_handles(void) {
    rn_onnx_options_default(NULL);
    rn_session_config_default(NULL);
    rn_train_config_default(NULL);
    rn_loader_config_default(NULL);
    char **names = NULL;
    CHECK(!strcmp(rn_model_arch(NULL), "") && rn_model_in_channels(NULL) == 0 &&
              rn_model_num_classes(NULL) == 0 && rn_model_param_count(NULL) == 0 &&
              rn_model_width(NULL) == 0 && !strcmp(rn_session_isa(NULL), "") &&
              !strcmp(rn_session_kernel(NULL), "") && !strcmp(rn_session_precision(NULL), "") &&
              rn_trainer_steps(NULL) == 0 && !strcmp(rn_trainer_isa(NULL), "") &&
              !strcmp(rn_trainer_kernel(NULL), "") && !strcmp(rn_trainer_precision(NULL), "") &&
              rn_checkpoint_class_names("x", 3, NULL) == RN_ERR_ARG &&
              rn_checkpoint_class_names(NULL, 3, &names) == RN_ERR_ARG && !names,
          "the accessors of NULL handles give \"\" and 0");
    /* a string that does not fit the caller's buffer fails (it had been cut short in silence) */
    rn_model *m = NULL;
    char dir[] = "/tmp/rn_fit_meta.XXXXXX", path[64], small[4] = "x", big[256] = "";
    CHECK(mkdtemp(dir) && rn_model_create("d2l_resnet18", 1, 10, &m) == RN_OK, "model: %s", rn_last_error());
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    CHECK(m && rn_model_save(m, path) == RN_OK && rn_weights_meta(path, "arch", small, sizeof small) == RN_ERR_ARG &&
              small[0] == 0 && rn_weights_meta(path, "arch", big, sizeof big) == RN_OK &&
              strcmp(big, "d2l_resnet18") == 0,
          "rn_weights_meta into 4 bytes refused, into 256 'd2l_resnet18': '%s' (%s)", big, rn_last_error());
    rn_session *s = NULL;
    float x[28 * 28] = {0}, y[10];
    CHECK(m && rn_session_create(m, NULL, &s) == RN_OK && rn_session_forward(s, x, 1, 28, 28, RN_MODE_EVAL, y) == RN_OK &&
              rn_session_algorithms(s, small, sizeof small) == RN_ERR_ARG && small[0] == 0 &&
              rn_session_algorithms(s, big, sizeof big) == RN_OK && strstr(big, " x"),
          "rn_session_algorithms into 4 bytes refused, into 256 '%s'", big);
    rn_session_free(s);
    rn_model_free(m);
    remove(path);
    rmdir(dir);
}

/* A session (and a trainer) that ran a large batch of small images, then one larger image: planned
 * for that image alone, as a fresh one (it had kept room for the large batch at the new size:
 * more memory, and a refusal past the kernels' indices). A smaller size keeps the room. */
static void test_size_change(void) {
    rn_model *m = NULL;
    CHECK(rn_model_create("d2l_resnet18", 1, 10, &m) == RN_OK, "model: %s", rn_last_error());
    if (!m)
        return;
    float *x = calloc(64 * 16 * 16, sizeof *x), *big = calloc(96 * 96, sizeof *big), y[64 * 10];
    int32_t labels[64] = {0};
    rn_session *s = NULL;
    size_t fresh = 0, fresh_t = 0;
    CHECK(x && big && rn_session_create(m, NULL, &s) == RN_OK &&
              rn_session_forward(s, x, 64, 16, 16, RN_MODE_EVAL, y) == RN_OK &&
              rn_session_forward(s, big, 1, 96, 96, RN_MODE_EVAL, y) == RN_OK &&
              rn_session_plan_bytes(m, NULL, 1, 96, 96, &fresh) == RN_OK,
          "session: %s", rn_last_error());
    CHECK(s && rn_session_bytes(s) == fresh, "session after batch 64 at 16x16, then 1 at 96x96: %zu bytes, "
          "a fresh one %zu", s ? rn_session_bytes(s) : 0, fresh);
    /* shorter but wider (16 x 200 after 96 x 96): a map the last plan's is not, planned anew */
    float *wide = calloc(16 * 200, sizeof *wide);
    size_t fresh_wide = 0;
    CHECK(s && wide && rn_session_forward(s, wide, 1, 16, 200, RN_MODE_EVAL, y) == RN_OK &&
              rn_session_plan_bytes(m, NULL, 1, 16, 200, &fresh_wide) == RN_OK &&
              rn_session_bytes(s) == fresh_wide,
          "then 1 at 16x200: %zu bytes, a fresh session %zu", s ? rn_session_bytes(s) : 0, fresh_wide);
    free(wide);
    CHECK(s && rn_session_forward(s, big, 1, 96, 96, RN_MODE_EVAL, y) == RN_OK, "back to 96x96: %s",
          rn_last_error());
    size_t before = s ? rn_session_bytes(s) : 0;
    CHECK(s && rn_session_forward(s, x, 16, 16, 16, RN_MODE_EVAL, y) == RN_OK && rn_session_bytes(s) <= before,
          "then 16 at 16x16: %zu bytes, no more than before (%zu)", s ? rn_session_bytes(s) : 0, before);
    rn_session_free(s);
    rn_train_config cfg;
    rn_train_config_default(&cfg);
    rn_trainer *t = NULL;
    rn_step_result r;
    CHECK(rn_trainer_create(m, &cfg, &t) == RN_OK && rn_trainer_step(t, x, labels, 64, 16, 16, &r) == RN_OK &&
              rn_trainer_step(t, big, labels, 1, 96, 96, &r) == RN_OK &&
              rn_trainer_plan_bytes(m, &cfg, 1, 96, 96, &fresh_t) == RN_OK,
          "trainer: %s", rn_last_error());
    CHECK(t && rn_trainer_bytes(t) == fresh_t, "trainer after batch 64 at 16x16, then 1 at 96x96: %zu bytes, "
          "a fresh one %zu", t ? rn_trainer_bytes(t) : 0, fresh_t);
    rn_trainer_free(t);
    free(x), free(big);
    rn_model_free(m);
}

/* ---- evaluation's top-1 is the confusion matrix's diagonal ---------------------------------- */

/* A classifier that gives every class the same logit (fc zero), then NaN: the prediction is
 * class 0 (the first largest; a row of NaNs class 0 too), so top-1 counts only the label-0
 * images and equals the confusion matrix's trace (ties had favoured the label: top-1 1.0). */
static void test_eval_ties(void) {
    enum { N = 6, K = 3 };
    uint8_t pixels[N * 8 * 8];
    for (size_t i = 0; i < sizeof pixels; i++)
        pixels[i] = (uint8_t)(i * 37);
    const int32_t labels[N] = {0, 1, 2, 1, 0, 2};
    rn_model *m = NULL;
    rn_dataset *ds = NULL;
    CHECK(rn_model_create("d2l_resnet18", 1, K, &m) == RN_OK &&
              rn_dataset_create(N, 1, 8, 8, K, pixels, labels, NULL, &ds) == RN_OK,
          "a model and a dataset: %s", rn_last_error());
    if (!m || !ds)
        return;
    rn_loader_config lc;
    rn_loader_config_default(&lc);
    lc.batch_size = 4;
    for (int nan = 0; nan < 2; nan++) {
        rn_model *e = m;
        const size_t feat = (size_t)m->feat;
        for (size_t i = 0; e && i < (size_t)K * feat; i++)
            e->fc_w[i] = 0.0f;
        for (int k = 0; e && k < K; k++)
            e->fc_b[k] = nan ? NAN : 0.5f;
        rn_eval_result ev = {0};
        CHECK(e && rn_evaluate(e, ds, &lc, NULL, NULL, &ev) == RN_OK, "evaluate: %s", rn_last_error());
        int64_t trace = 0;
        for (int k = 0; ev.confusion && k < K; k++)
            trace += ev.confusion[(size_t)k * K + k];
        CHECK(ev.count == N && ev.top1 == 2 && trace == 2 && ev.top5 == N,
              "%s logits: top-1 %lld (expected 2, the label-0 images), confusion trace %lld, top-5 %lld",
              nan ? "NaN" : "equal", (long long)ev.top1, (long long)trace, (long long)ev.top5);
        rn_eval_result_free(&ev);
    }
    rn_dataset_close(ds);
    rn_model_free(m);
}

int main(void) {
    trainer_case("d2l_resnet18", "sgd", 0, 3, 32);
    trainer_case("resnet50", "adamw", 0, 2, 40);
    trainer_case("resnet18", "sgd", 1, 4, 32);
    session_case("resnet18", 4, 40);
    session_case("resnext50_32x4d", 2, 64);
    test_refused();
    test_non_finite();
    test_eval_ties();
    test_size_change();
    test_trainer_config();
    test_null_handles();
    return check_done("test_fit");
}
