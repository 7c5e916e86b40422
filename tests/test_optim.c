/*
 * test_optim.c - SGD, AdamW and the learning-rate schedules against PyTorch.
 *
 * Runs `/usr/bin/python3 tools/optim_ref.py DIR` (from the repository root;
 * a failure of the script fails the test), then replays every case:
 *   optimizers: 5 steps with changing gradients and learning rates; after
 *     each step the parameters within 1e-6 of torch's (max abs error /
 *     max |ref|), the accumulated update p - p0 within 1e-5 of torch's (so a
 *     small update is checked too, not hidden in p), and the final state
 *     (momentum buffer, exp_avg, exp_avg_sq) within 1e-6;
 *   schedules: every step's lr within 1e-9 relative (double).
 * Plus spec parsing and checking, clamping beyond the last step, and the
 * thread-count independence of the updates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "resnet.h"
#include "train/optim.h"

#define PY "/usr/bin/python3"
#define STEPS 5
#define TOL_P 1e-6
#define TOL_DELTA 1e-5
#define TOL_LR 1e-9

static char tmpdir[512];

/* Reads DIR/NAME_SUFFIX.npy, expecting `numel` values. NULL (and a failed
 * check) otherwise. */
static float *load(const char *name, const char *suffix, size_t numel) {
    char path[768];
    snprintf(path, sizeof path, "%s/%s_%s.npy", tmpdir, name, suffix);
    float *data = NULL;
    int ndim = 0;
    int64_t shape[RN_NPY_MAX_DIMS];
    rn_status st = rn_npy_read(path, &data, &ndim, shape);
    CHECK(st == RN_OK, "read %s: %s", path, rn_last_error());
    if (st != RN_OK)
        return NULL;
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    CHECK(n == numel, "%s: %zu values, expected %zu", path, n, numel);
    if (n != numel) {
        free(data);
        return NULL;
    }
    return data;
}

/* ---------------------------------------------------------------------------
 * Optimizers
 * ------------------------------------------------------------------------- */

typedef struct opt_case {
    char kind[16], name[64];
    size_t n;
    double a, b, c, d;      /* sgd: momentum, wd, nesterov; adamw: beta1, beta2, eps, wd */
    double lr[STEPS];
} opt_case;

static void run_opt_case(const opt_case *oc) {
    size_t n = oc->n;
    int adam = strcmp(oc->kind, "adamw") == 0;
    int k = adam ? 2 : 1;
    float *p0 = load(oc->name, "p0", n);
    float *g = load(oc->name, "g", STEPS * n);
    float *ref = load(oc->name, "p", STEPS * n);
    float *ref_state = load(oc->name, "state", (size_t)k * n);
    float *p = malloc(n * sizeof *p);
    float *s1 = calloc(n, sizeof *s1), *s2 = calloc(n, sizeof *s2);
    float *delta = malloc(n * sizeof *delta), *ref_delta = malloc(n * sizeof *ref_delta);
    if (!p0 || !g || !ref || !ref_state || !p || !s1 || !s2 || !delta || !ref_delta) {
        CHECK(0, "%s: could not load the case", oc->name);
        goto done;
    }
    memcpy(p, p0, n * sizeof *p);
    for (int s = 0; s < STEPS; s++) {
        if (adam)
            rn_adamw_update(p, g + s * n, s1, s2, n, oc->lr[s], oc->a, oc->b, oc->c, oc->d,
                            s + 1);
        else
            rn_sgd_update(p, g + s * n, s1, n, (float)oc->lr[s], (float)oc->a, (float)oc->b,
                          (int)oc->c, s == 0);
        const float *r = ref + s * n;
        double e = check_rel_err(p, r, n);
        CHECK(e <= TOL_P, "%s step %d: params rel err %.3g > %g", oc->name, s + 1, e, TOL_P);
        for (size_t i = 0; i < n; i++) {
            delta[i] = p[i] - p0[i];
            ref_delta[i] = r[i] - p0[i];
        }
        e = check_rel_err(delta, ref_delta, n);
        CHECK(e <= TOL_DELTA, "%s step %d: update rel err %.3g > %g", oc->name, s + 1, e,
              TOL_DELTA);
    }
    double e1 = check_rel_err(s1, ref_state, n);
    if (adam || oc->a != 0.0)
        CHECK(e1 <= TOL_P, "%s: state[0] rel err %.3g", oc->name, e1);
    if (adam) {
        double e2 = check_rel_err(s2, ref_state + n, n);
        CHECK(e2 <= TOL_P, "%s: state[1] rel err %.3g", oc->name, e2);
    }
done:
    free(p0), free(g), free(ref), free(ref_state), free(p), free(s1), free(s2);
    free(delta), free(ref_delta);
}

static int test_optimizers(void) {
    char path[768];
    snprintf(path, sizeof path, "%s/optim_cases.txt", tmpdir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "open %s", path);
    if (!f)
        return 0;
    char line[4096];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        opt_case oc = {0};
        int used = 0, ok;
        if (strncmp(line, "sgd ", 4) == 0) {
            ok = sscanf(line, "%15s %63s %zu %lf %lf %lf%n", oc.kind, oc.name, &oc.n, &oc.a,
                        &oc.b, &oc.c, &used) == 6;
        } else {
            ok = sscanf(line, "%15s %63s %zu %lf %lf %lf %lf%n", oc.kind, oc.name, &oc.n,
                        &oc.a, &oc.b, &oc.c, &oc.d, &used) == 7 &&
                 strcmp(oc.kind, "adamw") == 0;
        }
        const char *s = line + used;
        for (int i = 0; ok && i < STEPS; i++) {
            int m = 0;
            ok = sscanf(s, "%lf%n", &oc.lr[i], &m) == 1;
            s += m;
        }
        CHECK(ok, "malformed case line: %s", line);
        if (!ok)
            continue;
        run_opt_case(&oc);
        cases++;
    }
    fclose(f);
    CHECK(cases >= 12, "only %d optimizer cases", cases);
    return cases;
}

/* The updates are element-wise: any thread count gives the same bits. */
static void test_threads(void) {
    enum { N = 200003 };
    float *g = malloc(N * sizeof *g), *p[2], *m[2], *v[2];
    for (int t = 0; t < 2; t++) {
        p[t] = malloc(N * sizeof(float));
        m[t] = calloc(N, sizeof(float));
        v[t] = calloc(N, sizeof(float));
    }
    check_fill(g, N, -1, 1);
    check_fill(p[0], N, -1, 1);
    memcpy(p[1], p[0], N * sizeof(float));
    for (int t = 0; t < 2; t++) {
        rn_set_threads(t == 0 ? 1 : 2);
        for (int s = 0; s < 3; s++) {
            rn_sgd_update(p[t], g, m[t], N, 0.1f, 0.9f, 5e-4f, s == 1, s == 0);
            rn_adamw_update(p[t], g, m[t], v[t], N, 1e-3, 0.9, 0.999, 1e-8, 0.01, s + 1);
        }
    }
    rn_set_threads(0);
    CHECK(memcmp(p[0], p[1], N * sizeof(float)) == 0, "1 and 2 threads differ");
    CHECK(memcmp(v[0], v[1], N * sizeof(float)) == 0, "1 and 2 threads differ (v)");
    /* momentum 0 needs no buffer */
    float q = 1.0f, dq = 2.0f;
    rn_sgd_update(&q, &dq, NULL, 1, 0.5f, 0.0f, 0.0f, 0, 1);
    CHECK(q == 0.0f, "plain SGD step: %g", q);
    free(g);
    for (int t = 0; t < 2; t++)
        free(p[t]), free(m[t]), free(v[t]);
}

/* ---------------------------------------------------------------------------
 * Schedules
 * ------------------------------------------------------------------------- */

static int test_schedules(void) {
    char path[768];
    snprintf(path, sizeof path, "%s/schedules.txt", tmpdir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "open %s", path);
    if (!f)
        return 0;
    static char line[1 << 16];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        char name[64], spec[128];
        double base, factor;
        long long spe, total, warm;
        int by_epoch, sequential, constant, used = 0;
        if (sscanf(line, "%63s %127s %lf %lld %lld %lld %d %d %d %lf%n", name, spec, &base, &spe,
                   &total, &warm, &by_epoch, &sequential, &constant, &factor, &used) != 10) {
            CHECK(0, "malformed schedule line: %.80s", line);
            continue;
        }
        rn_schedule s;
        rn_status st = rn_schedule_parse(spec, &s);
        CHECK(st == RN_OK, "%s: parse '%s': %s", name, spec, rn_last_error());
        if (st != RN_OK)
            continue;
        s.base_lr = base;
        s.steps_per_epoch = spe;
        s.total_steps = total;
        s.warmup_steps = warm;
        s.by_epoch = by_epoch;
        s.warmup_sequential = sequential;
        s.warmup_constant = constant;
        s.warmup_factor = factor;
        CHECK(rn_schedule_check(&s) == RN_OK, "%s: check: %s", name, rn_last_error());
        const char *p = line + used;
        int bad = 0;
        double worst = 0.0;
        for (long long t = 0; t < total; t++) {
            double ref;
            int m = 0;
            if (sscanf(p, "%lf%n", &ref, &m) != 1) {
                bad = 1;
                break;
            }
            p += m;
            double lr = rn_schedule_lr(&s, t);
            double e = fabs(lr - ref) / fabs(ref);
            if (!(e <= worst))
                worst = e;
            if (!(e <= TOL_LR)) {
                printf("  %s step %lld: lr %.17g, torch %.17g\n", name, t, lr, ref);
                bad = 1;
            }
        }
        CHECK(!bad, "%s: lr sequence differs from torch (worst rel err %.3g)", name, worst);
        cases++;
    }
    fclose(f);
    CHECK(cases >= 60, "only %d schedule cases", cases);
    return cases;
}

static void test_schedule_api(void) {
    rn_schedule s;
    const char *good[] = {"constant", "step:30", "step:30:0.2", "multistep:30,60,80",
                          "multistep:5:0.5", "cosine", "cosine:1e-5", "onecycle",
                          "onecycle:0.4", "onecycle:0.4:10:1000", "exponential:0.9",
                          "exponential:1.5"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CHECK(rn_schedule_parse(good[i], &s) == RN_OK, "'%s' refused: %s", good[i],
              rn_last_error());
    CHECK(rn_schedule_parse("multistep:30,60,80:0.5", &s) == RN_OK && s.n_milestones == 3 &&
              s.milestones[2] == 80 && s.gamma == 0.5, "multistep fields");
    CHECK(rn_schedule_parse("onecycle:0.4:10:1000", &s) == RN_OK && s.pct_start == 0.4 &&
              s.div_factor == 10.0 && s.final_div_factor == 1000.0, "onecycle fields");
    CHECK(rn_schedule_parse("onecycle", &s) == RN_OK && s.pct_start == 0.3 &&
              s.div_factor == 25.0 && s.final_div_factor == 1e4, "onecycle defaults");
    const char *bad[] = {"", "const", "constant:1", "step", "step:", "step:0", "step:-1",
                         "step:3:x", "step:3:0.1:2", "step:1,2", "multistep", "multistep:",
                         "multistep:5,3", "multistep:1,,2", "multistep:a", "cosine:-1",
                         "cosine:", "cosine:1:2", "onecycle:1.5", "onecycle:0.3:0",
                         "onecycle:0.3:10:1000:4", "linear", "step:30 ", "exponential",
                         "exponential:", "exponential:0", "exponential:-0.5", "exponential:0.9:1",
                         "multistep:1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rn_status st = rn_schedule_parse(bad[i], &s);
        CHECK(st == RN_ERR_ARG && strstr(rn_last_error(), bad[i]) != NULL,
              "'%s' accepted or unnamed (%s)", bad[i], rn_last_error());
    }
    CHECK(rn_schedule_parse(NULL, &s) == RN_ERR_ARG, "NULL spec");

    /* checks on the filled-in schedule */
    rn_schedule_parse("cosine", &s);
    s.base_lr = 0.1;
    CHECK(rn_schedule_check(&s) == RN_ERR_ARG, "cosine without total steps accepted");
    s.total_steps = 10;
    CHECK(rn_schedule_check(&s) == RN_OK, "cosine refused: %s", rn_last_error());
    s.warmup_steps = -1;
    CHECK(rn_schedule_check(&s) == RN_ERR_ARG, "negative warm-up accepted");
    s.warmup_steps = 0;
    s.base_lr = 0.0;
    CHECK(rn_schedule_check(&s) == RN_ERR_ARG, "lr 0 accepted");
    CHECK(rn_schedule_lr(&s, 3) == 0.0, "an invalid schedule gives base_lr");
    s.base_lr = 0.1;
    /* beyond the end: cosine stays at eta_min, one-cycle at its last value */
    CHECK(fabs(rn_schedule_lr(&s, 10)) < 1e-18 && fabs(rn_schedule_lr(&s, 1000)) < 1e-18,
          "cosine beyond T");
    CHECK(rn_schedule_lr(&s, -5) == rn_schedule_lr(&s, 0), "negative step");
    rn_schedule_parse("onecycle", &s);
    s.base_lr = 0.1;
    s.total_steps = 10;
    CHECK(rn_schedule_lr(&s, 9) == rn_schedule_lr(&s, 50), "onecycle beyond T");
    CHECK(fabs(rn_schedule_lr(&s, 9) - 0.1 / 25 / 1e4) < 1e-15, "onecycle ends at min_lr");
    rn_schedule_parse("step:1", &s);
    s.base_lr = 1.0;
    CHECK(rn_schedule_check(&s) == RN_ERR_ARG, "step without steps per epoch accepted");
    s.steps_per_epoch = 4;
    s.warmup_steps = 4;
    CHECK(rn_schedule_lr(&s, 0) == 0.25 && rn_schedule_lr(&s, 3) == 1.0 &&
              fabs(rn_schedule_lr(&s, 4) - 0.1) < 1e-15,
          "warm-up (t+1)/W then the main schedule");
    /* the warm-up's options: factor in (0, 1], whole epochs when stepped by epoch, no
     * one-cycle after a sequential warm-up */
    s.warmup_factor = 1.5;
    CHECK(rn_schedule_check(&s) == RN_ERR_ARG && strstr(rn_last_error(), "factor"),
          "warm-up factor 1.5 accepted");
    s.warmup_factor = -0.1;
    CHECK(rn_schedule_check(&s) == RN_ERR_ARG, "warm-up factor -0.1 accepted");
    s.warmup_factor = 0.5;
    CHECK(rn_schedule_check(&s) == RN_OK, "warm-up factor 0.5 refused: %s", rn_last_error());
    s.by_epoch = 1;
    s.warmup_steps = 6;
    CHECK(rn_schedule_check(&s) == RN_ERR_ARG && strstr(rn_last_error(), "whole epochs"),
          "a warm-up of 6 steps by epochs of 4 accepted");
    s.warmup_steps = 8;
    CHECK(rn_schedule_check(&s) == RN_OK, "two epochs' warm-up refused: %s", rn_last_error());
    /* by epoch: the rate holds within an epoch; linear from 0.5 over 2 epochs, times step:1's
     * 0.1 an epoch; sequential: step:1 from its epoch 0 after them */
    CHECK(rn_schedule_lr(&s, 0) == 0.5 && rn_schedule_lr(&s, 3) == 0.5 &&
              fabs(rn_schedule_lr(&s, 4) - 0.075) < 1e-15 &&
              fabs(rn_schedule_lr(&s, 7) - 0.075) < 1e-15,
          "by epoch: %g %g %g %g", rn_schedule_lr(&s, 0), rn_schedule_lr(&s, 3),
          rn_schedule_lr(&s, 4), rn_schedule_lr(&s, 7));
    s.warmup_sequential = 1;
    CHECK(rn_schedule_lr(&s, 4) == 0.75 && rn_schedule_lr(&s, 8) == 1.0 &&
              rn_schedule_lr(&s, 11) == 1.0 && fabs(rn_schedule_lr(&s, 12) - 0.1) < 1e-15,
          "sequential by epoch: %g %g %g %g", rn_schedule_lr(&s, 4), rn_schedule_lr(&s, 8),
          rn_schedule_lr(&s, 11), rn_schedule_lr(&s, 12));
    rn_schedule_parse("onecycle", &s);
    s.base_lr = 0.1;
    s.total_steps = 10;
    s.warmup_steps = 2;
    s.warmup_sequential = 1;
    CHECK(rn_schedule_check(&s) == RN_ERR_ARG && strstr(rn_last_error(), "onecycle"),
          "onecycle after a sequential warm-up accepted");
    s.warmup_sequential = 0;
    CHECK(rn_schedule_check(&s) == RN_OK, "onecycle times a warm-up refused");
}

/* ---------------------------------------------------------------------------
 * Main
 * ------------------------------------------------------------------------- */

int main(void) {
    if (!check_tmpdir("test_optim", tmpdir, sizeof tmpdir))
        return 1;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s tools/optim_ref.py '%s'", PY, tmpdir);
    int rc = system(cmd);
    CHECK(rc == 0, "'%s' failed (status %d); run from the repository root with PyTorch "
                   "installed", cmd, rc);
    if (rc == 0) {
        int n_opt = test_optimizers();
        int n_sched = test_schedules();
        printf("compared %d optimizer cases and %d schedules with PyTorch\n", n_opt, n_sched);
    }
    test_threads();
    test_schedule_api();

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    return check_done("test_optim");
}
