/*
 * test_train_dp.c - the trainer's data-parallel hooks, without MPI: two
 * "processes" are two threads, each with its own model and trainer, joined
 * by an in-process group (a barrier and shared slots) that sums in rank
 * order, as an MPI or NCCL engine would through the same hooks.
 *
 *   sync-bn:  2 replicas at batch B/2 each (rank r takes images r, r+2, ...)
 *             match 1 trainer at batch B over 5 SGD steps (lr 0.001, momentum, weight
 *             decay): per-step losses and every tensor of the state_dict
 *             within its bound (max abs error / max |ref| per tensor), the
 *             correct counts equal. The bound is max(1e-5, 2 x what the single
 *             process itself moves when its input images are scaled by
 *             1 +- 1 ulp): after the first step this network's ReLUs and the
 *             2x2 BatchNorms of layer4 turn rounding-level differences into
 *             1e-3..1e-1 in some BatchNorm biases, and two correct summation
 *             orders (the 2 ranks' and the single batch's; or the portable
 *             and AVX2 kernels, which part by 1e-1 there) cannot agree closer
 *             than that. The bound has teeth: replicas with their own
 *             BatchNorm statistics (a different computation) must exceed it;
 *   hooks:    gradient ranges arrive from the end of the block to its start,
 *             contiguous, each float once; the BatchNorm hook is called
 *             2C + 1 long in forward and 2C long in backward for every
 *             BatchNorm, in the same order in both replicas;
 *   own BN:   without the BatchNorm hook the replicas still agree bitwise
 *             (weights; running statistics differ, each its own batch's),
 *             and the reported loss is the mean of the two replicas' losses;
 *   skip:     a non-finite loss on one replica makes both skip the step.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/model.h"
#include "resnet.h"

#define RANKS 2
#define BATCH 8
#define SIDE 16
#define STEPS 5
#define TOL 1e-5

/* ---- the in-process group -------------------------------------------------------- */

typedef struct group {
    pthread_barrier_t bar;
    double *dslot[RANKS];
    const float *fslot[RANKS];
} group;

typedef struct member {
    group *g;
    int rank;
    rn_model *m;
    rn_trainer *t;
    const float *x;          /* the whole batches: (STEPS, BATCH, 3, SIDE, SIDE) */
    const int32_t *labels;   /* (STEPS, BATCH) */
    int sync_bn, poison;     /* poison: step 2's images are NaN on this rank */
    float losses[STEPS];
    int correct[STEPS], skipped[STEPS];
    double tmp[4096];
    float *ftmp;
    size_t next_end;         /* gradient hook: where the next range must end */
    int bad_order, bn_calls, bn_bad_len;
    size_t bn_lens[256];
} member;

/* v <- sum over ranks of v, in rank order */
static void group_sum_doubles(member *me, double *v, size_t len) {
    group *g = me->g;
    g->dslot[me->rank] = v;
    pthread_barrier_wait(&g->bar);
    for (size_t i = 0; i < len; i++) {
        double s = 0.0;
        for (int r = 0; r < RANKS; r++)
            s += g->dslot[r][i];
        me->tmp[i] = s;
    }
    pthread_barrier_wait(&g->bar);
    memcpy(v, me->tmp, len * sizeof *v);
}

static void bn_hook(void *ctx, double *v, size_t len) {
    member *me = ctx;
    if (me->bn_calls < 256)
        me->bn_lens[me->bn_calls] = len;
    me->bn_calls++;
    if (len > sizeof me->tmp / sizeof me->tmp[0]) {
        me->bn_bad_len = 1;
        return;
    }
    group_sum_doubles(me, v, len);
}

static void grad_hook(void *ctx, float *grads, size_t offset, size_t count) {
    member *me = ctx;
    (void)grads;
    if (offset + count != me->next_end || count == 0)
        me->bad_order = 1;
    me->next_end = offset;
}

static void update_hook(void *ctx, float *grads, size_t count, float *loss, int *correct) {
    member *me = ctx;
    group *g = me->g;
    if (me->next_end != 0)
        me->bad_order = 1; /* the ranges did not reach the block's start */
    g->fslot[me->rank] = grads;
    pthread_barrier_wait(&g->bar);
    for (size_t i = 0; i < count; i++) {
        float s = 0.0f;
        for (int r = 0; r < RANKS; r++)
            s += g->fslot[r][i];
        me->ftmp[i] = s * (1.0f / RANKS);
    }
    pthread_barrier_wait(&g->bar);
    memcpy(grads, me->ftmp, count * sizeof *grads);
    double v[2] = {*loss, *correct};
    group_sum_doubles(me, v, 2);
    *loss = (float)(v[0] / RANKS);
    *correct = (int)v[1];
}

static void *replica_main(void *arg) {
    member *me = arg;
    const size_t per_image = 3 * SIDE * SIDE;
    float x[BATCH / RANKS * 3 * SIDE * SIDE];
    int32_t labels[BATCH / RANKS];
    for (int s = 0; s < STEPS; s++) {
        /* DistributedSampler's share: images rank, rank + RANKS, ... */
        for (int j = 0; j < BATCH / RANKS; j++) {
            int i = me->rank + RANKS * j;
            memcpy(x + j * per_image, me->x + ((size_t)s * BATCH + i) * per_image, per_image * sizeof *x);
            labels[j] = me->labels[s * BATCH + i];
            if (me->poison && s == 2)
                x[j * per_image] = NAN;
        }
        me->next_end = 0;
        for (int t = 0; t < me->m->n_tensors; t++)
            if (me->m->tensors[t].f32) {
                size_t end = (size_t)(me->m->tensors[t].f32 - me->m->params) + me->m->tensors[t].numel;
                me->next_end = end > me->next_end ? end : me->next_end;
            }
        rn_step_result res;
        if (rn_trainer_step(me->t, x, labels, BATCH / RANKS, SIDE, SIDE, &res) != RN_OK) {
            printf("rank %d step %d: %s\n", me->rank, s, rn_last_error());
            me->bad_order = 1;
            return NULL;
        }
        me->losses[s] = res.loss;
        me->correct[s] = res.correct;
        me->skipped[s] = res.skipped;
    }
    return NULL;
}

/* ---- runs ----------------------------------------------------------------------------- */

static rn_model *new_model(void) {
    rn_model *m = NULL;
    rn_status st = rn_model_create_stem("resnet18", 3, 10, RN_STEM_CIFAR, &m);
    CHECK(st == RN_OK, "create: %s", rn_last_error());
    if (st == RN_OK)
        rn_model_init(m, "default", 7);
    return m;
}

static rn_trainer *new_trainer(rn_model *m) {
    rn_train_config cfg;
    rn_train_config_default(&cfg);
    cfg.lr = 0.001;
    cfg.momentum = 0.9;
    cfg.weight_decay = 5e-4;
    cfg.conv_algo = "im2col"; /* Winograd's choice depends on the batch: B and B / 2 could differ */
    rn_trainer *t = NULL;
    rn_status st = rn_trainer_create(m, &cfg, &t);
    CHECK(st == RN_OK, "trainer: %s", rn_last_error());
    return t;
}

/* One trainer at the whole batch for STEPS steps, on the images times `scale`. */
static rn_model *single_process(const float *x, const int32_t *labels, float scale, float *loss, int *correct) {
    const size_t per_batch = (size_t)BATCH * 3 * SIDE * SIDE;
    rn_model *m = new_model();
    rn_trainer *t = m ? new_trainer(m) : NULL;
    float *xs = malloc(per_batch * sizeof *xs);
    for (int s = 0; t && xs && s < STEPS; s++) {
        for (size_t i = 0; i < per_batch; i++)
            xs[i] = x[s * per_batch + i] * scale;
        rn_step_result res;
        rn_status st = rn_trainer_step(t, xs, labels + s * BATCH, BATCH, SIDE, SIDE, &res);
        CHECK(st == RN_OK, "single process step %d: %s", s, rn_last_error());
        loss[s] = res.loss;
        correct[s] = res.correct;
    }
    free(xs);
    rn_trainer_free(t);
    if (!t) {
        rn_model_free(m);
        return NULL;
    }
    return m;
}

/* Runs RANKS replicas on threads; returns 0 if they could not run. */
static int run_replicas(member *mem, const float *x, const int32_t *labels, int sync_bn, int poison_rank) {
    group g;
    pthread_barrier_init(&g.bar, NULL, RANKS);
    pthread_t th[RANKS];
    for (int r = 0; r < RANKS; r++) {
        member *me = &mem[r];
        memset(me, 0, sizeof *me);
        me->g = &g;
        me->rank = r;
        me->x = x;
        me->labels = labels;
        me->sync_bn = sync_bn;
        me->poison = r == poison_rank;
        me->m = new_model();
        me->t = me->m ? new_trainer(me->m) : NULL;
        if (!me->t)
            return 0;
        me->ftmp = malloc(me->m->n_params * sizeof(float));
        rn_trainer_set_grad_hook(me->t, grad_hook, me);
        rn_trainer_set_update_hook(me->t, update_hook, me);
        if (sync_bn)
            rn_trainer_set_bn_sync(me->t, bn_hook, me);
    }
    for (int r = 0; r < RANKS; r++)
        pthread_create(&th[r], NULL, replica_main, &mem[r]);
    for (int r = 0; r < RANKS; r++)
        pthread_join(th[r], NULL);
    pthread_barrier_destroy(&g.bar);
    return 1;
}

static void free_replicas(member *mem) {
    for (int r = 0; r < RANKS; r++) {
        rn_trainer_free(mem[r].t);
        rn_model_free(mem[r].m);
        free(mem[r].ftmp);
    }
}

static int is_bn_stat(const rn_tensor_ref *r) { return strstr(r->name, "running_") != NULL; }

/* The tensor of `m` farthest from `ref`'s in units of its bound. */
static int worst_tensor(const rn_model *m, const rn_model *ref, const double *bound, int trainable_only) {
    int worst = 0;
    double worst_ratio = -1.0;
    for (int t = 0; t < ref->n_tensors; t++) {
        if (!ref->tensors[t].f32 || (trainable_only && is_bn_stat(&ref->tensors[t])))
            continue;
        double e = check_rel_err(m->tensors[t].f32, ref->tensors[t].f32, ref->tensors[t].numel) / bound[t];
        if (e > worst_ratio)
            worst_ratio = e, worst = t;
    }
    return worst;
}

int main(void) {
    rn_set_threads(1);
    const size_t per_image = 3 * SIDE * SIDE;
    float *x = malloc((size_t)STEPS * BATCH * per_image * sizeof *x);
    int32_t labels[STEPS * BATCH];
    check_fill(x, (size_t)STEPS * BATCH * per_image, -1.0f, 1.0f);
    for (int i = 0; i < STEPS * BATCH; i++)
        labels[i] = check_int(0, 9);

    /* the reference: one trainer, the whole batch; and its conditioning: the same
     * trainer on images scaled by 1 + 2^-23 and 1 - 2^-24 (one ulp either way) */
    float ref_loss[STEPS];
    int ref_correct[STEPS];
    rn_model *ref = single_process(x, labels, 1.0f, ref_loss, ref_correct);
    double *bound = NULL, loss_bound[STEPS];
    if (ref) {
        bound = calloc((size_t)ref->n_tensors, sizeof *bound);
        for (int s = 0; s < STEPS; s++)
            loss_bound[s] = TOL;
        for (int t = 0; t < ref->n_tensors; t++)
            bound[t] = TOL;
        const float scales[2] = {1.0f + 0x1p-23f, 1.0f - 0x1p-24f};
        for (int k = 0; k < 2; k++) {
            float loss[STEPS];
            int correct[STEPS];
            rn_model *p = single_process(x, labels, scales[k], loss, correct);
            if (!p)
                continue;
            for (int s = 0; s < STEPS; s++) {
                double e = 2.0 * fabs((double)loss[s] - ref_loss[s]) / fabs((double)ref_loss[s]);
                loss_bound[s] = e > loss_bound[s] ? e : loss_bound[s];
            }
            for (int t = 0; t < ref->n_tensors; t++)
                if (ref->tensors[t].f32) {
                    double e = 2.0 * check_rel_err(p->tensors[t].f32, ref->tensors[t].f32, ref->tensors[t].numel);
                    bound[t] = e > bound[t] ? e : bound[t];
                }
            rn_model_free(p);
        }
    }

    /* sync-bn replicas against it */
    member mem[RANKS];
    if (ref && run_replicas(mem, x, labels, 1, -1)) {
        int n_bn = 0;
        for (int t = 0; t < ref->n_tensors; t++)
            n_bn += strstr(ref->tensors[t].name, "running_mean") != NULL;
        for (int r = 0; r < RANKS; r++) {
            member *me = &mem[r];
            CHECK(!me->bad_order, "rank %d: gradient ranges out of order, overlapping or not reaching 0", r);
            CHECK(!me->bn_bad_len, "rank %d: a BatchNorm hook call longer than expected", r);
            CHECK(me->bn_calls == STEPS * 2 * n_bn, "rank %d: %d BatchNorm hook calls, expected %d", r,
                  me->bn_calls, STEPS * 2 * n_bn);
            int odd = 0;
            for (int i = 0; i < 2 * n_bn && i < 256; i++)
                odd += i < n_bn ? me->bn_lens[i] % 2 != 1 : me->bn_lens[i] % 2 != 0;
            CHECK(odd == 0, "rank %d: forward calls must be 2C + 1 long, backward 2C", r);
            for (int s = 0; s < STEPS; s++) {
                double e = fabs((double)me->losses[s] - ref_loss[s]) / fabs((double)ref_loss[s]);
                CHECK(e <= loss_bound[s], "rank %d step %d: loss %.8f, single process %.8f (rel %.2e, bound %.2e)",
                      r, s, me->losses[s], ref_loss[s], e, loss_bound[s]);
                CHECK(me->correct[s] == ref_correct[s], "rank %d step %d: %d correct, single process %d", r,
                      s, me->correct[s], ref_correct[s]);
            }
            int worst = worst_tensor(me->m, ref, bound, 0);
            double e = check_rel_err(me->m->tensors[worst].f32, ref->tensors[worst].f32, ref->tensors[worst].numel);
            CHECK(e <= bound[worst], "rank %d: %s differs from the single process by %.2e relative (bound %.2e)", r,
                  ref->tensors[worst].name, e, bound[worst]);
            printf("sync-bn rank %d: closest to its bound %s at %.2e relative (bound %.2e), last loss %.6f (single "
                   "process %.6f)\n", r, ref->tensors[worst].name, e, bound[worst], me->losses[STEPS - 1],
                   ref_loss[STEPS - 1]);
        }
        CHECK(memcmp(mem[0].m->params, mem[1].m->params, ref->n_params * sizeof(float)) == 0,
              "sync-bn replicas differ (weights or running statistics)");
        free_replicas(mem);
    }

    /* each replica's own BatchNorm statistics */
    if (ref && run_replicas(mem, x, labels, 0, -1)) {
        int same = 1;
        for (int t = 0; t < mem[0].m->n_tensors; t++) {
            const rn_tensor_ref *a = &mem[0].m->tensors[t], *b = &mem[1].m->tensors[t];
            if (a->f32 && !is_bn_stat(a) && memcmp(a->f32, b->f32, a->numel * sizeof(float)) != 0)
                same = 0;
        }
        CHECK(same, "replicas with their own BatchNorm statistics differ in a trainable tensor");
        /* the bounds' teeth: normalizing by per-replica statistics is another computation,
         * and the trainable tensors must show it */
        int worst = worst_tensor(mem[0].m, ref, bound, 1);
        double e = check_rel_err(mem[0].m->tensors[worst].f32, ref->tensors[worst].f32, ref->tensors[worst].numel);
        CHECK(e > bound[worst], "replicas with their own BatchNorm statistics pass for the single process: the "
              "bounds are too loose (%s at %.2e, bound %.2e)", ref->tensors[worst].name, e, bound[worst]);
        printf("own-bn: %s at %.2e relative, %.0fx its bound\n", ref->tensors[worst].name, e, e / bound[worst]);
        CHECK(mem[0].bn_calls == 0, "BatchNorm hook called without being set");
        for (int s = 0; s < STEPS; s++)
            CHECK(mem[0].losses[s] == mem[1].losses[s], "step %d: the replicas report different losses", s);
        free_replicas(mem);
    }

    /* a NaN on one replica: both skip */
    if (ref && run_replicas(mem, x, labels, 1, 1)) {
        CHECK(mem[0].skipped[2] && mem[1].skipped[2], "step 2: skipped %d and %d, expected both",
              mem[0].skipped[2], mem[1].skipped[2]);
        CHECK(!mem[0].skipped[3] && !mem[1].skipped[3], "step 3 should run again");
        CHECK(rn_trainer_steps(mem[0].t) == STEPS - 1 && rn_trainer_steps(mem[1].t) == STEPS - 1,
              "steps taken: %lld and %lld, expected %d", (long long)rn_trainer_steps(mem[0].t),
              (long long)rn_trainer_steps(mem[1].t), STEPS - 1);
        free_replicas(mem);
    }

    rn_model_free(ref);
    free(bound);
    free(x);
    return check_done("test_train_dp");
}
