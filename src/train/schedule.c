/*
 * schedule.c - learning-rate schedules: parsing a spec and the closed-form
 * learning rate of each optimizer step. optim.h states the semantics and
 * the PyTorch loop they reproduce.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "train/optim.h"

/* ---------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------- */

/* A number ending at ':' or the end of the spec; *s advances past it. */
static int parse_double(const char **s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(*s, &end);
    if (end == *s || errno != 0 || !isfinite(v) || (*end != '\0' && *end != ':'))
        return 0;
    *out = v;
    *s = end;
    return 1;
}

/* A positive int ending at ',', ':' or the end. */
static int parse_int(const char **s, int *out) {
    char *end;
    if (**s < '0' || **s > '9')
        return 0;
    errno = 0;
    long v = strtol(*s, &end, 10);
    if (errno != 0 || v > 1000000000L || (*end != '\0' && *end != ':' && *end != ','))
        return 0;
    *out = (int)v;
    *s = end;
    return 1;
}

/* Optional ":NUMBER" fields: fills up to n of them, in order. */
static int parse_tail(const char *s, double *fields[], int n) {
    for (int i = 0; i < n && *s == ':'; i++) {
        s++;
        if (!parse_double(&s, fields[i]))
            return 0;
    }
    return *s == '\0';
}

static const char *after(const char *spec, const char *name) {
    size_t len = strlen(name);
    if (strncmp(spec, name, len) != 0 || (spec[len] != '\0' && spec[len] != ':'))
        return NULL;
    return spec + len;
}

rn_status rn_schedule_parse(const char *spec, rn_schedule *out) {
    if (!out)
        return rn_fail(RN_ERR_ARG, "rn_schedule_parse: NULL output");
    memset(out, 0, sizeof *out);
    out->gamma = 0.1;
    out->eta_min = 0.0;
    out->pct_start = 0.3;
    out->div_factor = 25.0;
    out->final_div_factor = 1e4;
    if (!spec)
        return rn_fail(RN_ERR_ARG, "rn_schedule_parse: NULL spec");

    const char *s;
    if ((s = after(spec, "constant")) != NULL) {
        out->kind = RN_SCHED_CONSTANT;
        if (*s == '\0')
            return RN_OK;
        return rn_fail(RN_ERR_ARG, "schedule '%s': constant takes no parameters", spec);
    } else if ((s = after(spec, "step")) != NULL) {
        out->kind = RN_SCHED_STEP;
        if (*s == ':') {
            s++;
            if (parse_int(&s, &out->step_size) && *s != ',' && out->step_size > 0 &&
                parse_tail(s, (double *[]){&out->gamma}, 1) && out->gamma >= 0.0)
                return RN_OK;
        }
        return rn_fail(RN_ERR_ARG, "schedule '%s': expected step:STEP_SIZE[:GAMMA] with "
                                   "STEP_SIZE a positive number of epochs, GAMMA >= 0", spec);
    } else if ((s = after(spec, "multistep")) != NULL) {
        out->kind = RN_SCHED_MULTISTEP;
        if (*s == ':') {
            s++;
            int ok = 1, prev = -1;
            for (;;) {
                int m;
                if (out->n_milestones == RN_SCHED_MAX_MILESTONES)
                    return rn_fail(RN_ERR_ARG, "schedule '%s': more than %d milestones", spec,
                                   RN_SCHED_MAX_MILESTONES);
                if (!parse_int(&s, &m) || m < prev) {
                    ok = 0;
                    break;
                }
                out->milestones[out->n_milestones++] = prev = m;
                if (*s != ',')
                    break;
                s++;
            }
            if (ok && parse_tail(s, (double *[]){&out->gamma}, 1) && out->gamma >= 0.0)
                return RN_OK;
        }
        return rn_fail(RN_ERR_ARG, "schedule '%s': expected multistep:M1,M2,...[:GAMMA] with "
                                   "non-decreasing epoch milestones, GAMMA >= 0", spec);
    } else if ((s = after(spec, "cosine")) != NULL) {
        out->kind = RN_SCHED_COSINE;
        if (parse_tail(s, (double *[]){&out->eta_min}, 1) && out->eta_min >= 0.0)
            return RN_OK;
        return rn_fail(RN_ERR_ARG, "schedule '%s': expected cosine[:ETA_MIN], ETA_MIN >= 0",
                       spec);
    } else if ((s = after(spec, "onecycle")) != NULL) {
        out->kind = RN_SCHED_ONECYCLE;
        if (parse_tail(s, (double *[]){&out->pct_start, &out->div_factor,
                                       &out->final_div_factor}, 3) &&
            out->pct_start >= 0.0 && out->pct_start <= 1.0 && out->div_factor > 0.0 &&
            out->final_div_factor > 0.0)
            return RN_OK;
        return rn_fail(RN_ERR_ARG, "schedule '%s': expected onecycle[:PCT_START[:DIV_FACTOR"
                                   "[:FINAL_DIV_FACTOR]]], 0 <= PCT_START <= 1, factors > 0",
                       spec);
    } else if ((s = after(spec, "exponential")) != NULL) {
        out->kind = RN_SCHED_EXPONENTIAL;
        if (*s == ':' && parse_tail(s, (double *[]){&out->gamma}, 1) && out->gamma > 0.0)
            return RN_OK;
        return rn_fail(RN_ERR_ARG, "schedule '%s': expected exponential:GAMMA, the factor per "
                                   "epoch, GAMMA > 0 (0.9, say)", spec);
    }
    return rn_fail(RN_ERR_ARG, "unknown schedule '%s' (expected constant, step:N[:GAMMA], "
                               "multistep:M1,M2,..[:GAMMA], cosine[:ETA_MIN], "
                               "onecycle[:PCT_START[:DIV[:FINAL_DIV]]], exponential:GAMMA)", spec);
}

/* With report == 0 a failure sets no message (rn_schedule_lr checks every
 * call and must leave the caller's message alone). */
#define BAD(...) (report ? rn_fail(RN_ERR_ARG, __VA_ARGS__) : RN_ERR_ARG)

static rn_status check(const rn_schedule *s, int report) {
    if (!s)
        return BAD("rn_schedule_check: NULL schedule");
    if (!(s->base_lr > 0.0) || !isfinite(s->base_lr))
        return BAD("schedule: learning rate %g is not a positive number",
                       s->base_lr);
    if (s->warmup_steps < 0)
        return BAD("schedule: negative warm-up (%lld steps)",
                       (long long)s->warmup_steps);
    if (!(s->warmup_factor >= 0.0 && s->warmup_factor <= 1.0))
        return BAD("schedule: warm-up factor %g out of range (0, 1]", s->warmup_factor);
    if (s->by_epoch && s->steps_per_epoch <= 0)
        return BAD("schedule: steps per epoch must be positive (got %lld)",
                   (long long)s->steps_per_epoch);
    if (s->by_epoch && s->warmup_steps % s->steps_per_epoch != 0)
        return BAD("schedule: a warm-up of %lld steps is not whole epochs of %lld, and the rate "
                   "changes only between epochs", (long long)s->warmup_steps,
                   (long long)s->steps_per_epoch);
    if (s->warmup_sequential && s->warmup_steps > 0 && s->kind == RN_SCHED_ONECYCLE)
        return BAD("schedule: onecycle after a warm-up: its rising phase is a warm-up already "
                   "(set its share with onecycle:PCT)");
    switch (s->kind) {
    case RN_SCHED_CONSTANT:
        return RN_OK;
    case RN_SCHED_STEP:
    case RN_SCHED_MULTISTEP:
    case RN_SCHED_EXPONENTIAL:
        if (s->steps_per_epoch <= 0)
            return BAD("schedule: steps per epoch must be positive (got %lld)",
                           (long long)s->steps_per_epoch);
        if (!isfinite(s->gamma) || s->gamma < 0.0)
            return BAD("schedule: gamma %g out of range", s->gamma);
        if (s->kind == RN_SCHED_STEP && s->step_size <= 0)
            return BAD("schedule: step size must be positive (got %d)",
                           s->step_size);
        if (s->kind == RN_SCHED_MULTISTEP &&
            (s->n_milestones < 0 || s->n_milestones > RN_SCHED_MAX_MILESTONES))
            return BAD("schedule: %d milestones", s->n_milestones);
        return RN_OK;
    case RN_SCHED_COSINE:
    case RN_SCHED_ONECYCLE:
        if (s->total_steps <= 0)
            return BAD("schedule: total steps must be positive (got %lld)",
                           (long long)s->total_steps);
        if (s->kind == RN_SCHED_COSINE && !(s->eta_min >= 0.0 && isfinite(s->eta_min)))
            return BAD("schedule: eta_min %g out of range", s->eta_min);
        if (s->kind == RN_SCHED_ONECYCLE &&
            !(s->pct_start >= 0.0 && s->pct_start <= 1.0 && s->div_factor > 0.0 &&
              s->final_div_factor > 0.0 && isfinite(s->div_factor) &&
              isfinite(s->final_div_factor)))
            return BAD("schedule: one-cycle parameters out of range "
                                       "(pct_start %g, div_factor %g, final_div_factor %g)",
                           s->pct_start, s->div_factor, s->final_div_factor);
        return RN_OK;
    }
    return BAD("schedule: unknown kind %d", (int)s->kind);
}

#undef BAD

rn_status rn_schedule_check(const rn_schedule *s) { return check(s, 1); }

rn_status rn_schedule_build(const char *spec, double base_lr, int64_t warmup_steps,
                            int64_t steps_per_epoch, int64_t total_steps, rn_schedule *out) {
    RN_TRY(rn_schedule_parse(spec, out));
    out->base_lr = base_lr;
    out->warmup_steps = warmup_steps;
    out->steps_per_epoch = steps_per_epoch > 0 ? steps_per_epoch : 1;
    out->total_steps = total_steps > 0 ? total_steps : 1;
    return rn_schedule_check(out);
}

/* ---------------------------------------------------------------------------
 * Learning rates
 * ------------------------------------------------------------------------- */

static const double PI = 3.14159265358979323846;

/* OneCycleLR._annealing_cos */
static double cos_anneal(double start, double end, double pct) {
    return end + (start - end) / 2.0 * (cos(PI * pct) + 1.0);
}

/* The main schedule at t of T, counted in units of which E make an epoch. */
static double main_lr(const rn_schedule *s, int64_t t, int64_t T, int64_t E) {
    switch (s->kind) {
    case RN_SCHED_CONSTANT:
        return s->base_lr;
    case RN_SCHED_STEP: {
        int64_t epoch = t / E;
        return s->base_lr * pow(s->gamma, (double)(epoch / s->step_size));
    }
    case RN_SCHED_EXPONENTIAL:
        return s->base_lr * pow(s->gamma, (double)(t / E));
    case RN_SCHED_MULTISTEP: {
        int64_t epoch = t / E;
        int passed = 0;
        for (int i = 0; i < s->n_milestones; i++)
            passed += s->milestones[i] <= epoch;
        return s->base_lr * pow(s->gamma, (double)passed);
    }
    case RN_SCHED_COSINE: {
        if (t > T)
            t = T;
        return s->eta_min +
               (s->base_lr - s->eta_min) * (1.0 + cos(PI * (double)t / (double)T)) / 2.0;
    }
    case RN_SCHED_ONECYCLE: {
        if (t > T - 1)
            t = T - 1;
        double max_lr = s->base_lr;
        double initial_lr = max_lr / s->div_factor;
        double min_lr = initial_lr / s->final_div_factor;
        double a = s->pct_start * (double)T - 1.0;  /* end of the rising phase */
        double x = (double)t;
        if (x <= a)
            return cos_anneal(initial_lr, max_lr, a > 0.0 ? x / a : 1.0);
        double span = (double)(T - 1) - a;
        return cos_anneal(max_lr, min_lr, span > 0.0 ? (x - a) / span : 1.0);
    }
    }
    return s->base_lr;
}

double rn_schedule_lr(const rn_schedule *s, int64_t step) {
    if (!s)
        return 0.0;
    if (check(s, 0) != RN_OK)
        return s->base_lr;
    if (step < 0)
        step = 0;
    /* the units the schedulers are stepped in: steps, or epochs */
    int64_t t = step, T = s->total_steps, W = s->warmup_steps, E = s->steps_per_epoch;
    if (s->by_epoch) {
        t = step / E;
        T = (T + E - 1) / E;
        W /= E;
        E = 1;
    }
    double warm = 1.0;
    if (W > 0 && t < W) {
        const double F = s->warmup_factor;
        if (s->warmup_constant)
            warm = F > 0.0 ? F : 1.0 / 3.0;
        else
            warm = F > 0.0 ? F + (1.0 - F) * (double)t / (double)W : (double)(t + 1) / (double)W;
    }
    if (!s->warmup_sequential)
        return main_lr(s, t, T, E) * warm;
    if (t < W)
        return s->base_lr * warm;
    return main_lr(s, t - W, T - W > 0 ? T - W : 1, E);
}
