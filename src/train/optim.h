/*
 * optim.h - optimizers and learning-rate schedules with PyTorch's semantics.
 *
 * Updates work on one parameter tensor at a time (p, its gradient g, and
 * its state buffers), so the caller decides which tensors are trained and
 * with which learning rate. They allocate nothing, are element-wise (so
 * bitwise deterministic for any thread count) and round every operation to
 * float32 in the order torch.optim's single-tensor CPU path does.
 */
#ifndef RN_TRAIN_OPTIM_H
#define RN_TRAIN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "resnet.h"

/* torch.optim.SGD, one step (dampening 0, maximize False):
 *   g = g + weight_decay * p                     (when weight_decay != 0)
 *   buf = g on the first step (first != 0), else buf = momentum * buf + g
 *   g = g + momentum * buf if nesterov, else buf (when momentum != 0)
 *   p = p - lr * g
 * buf: n floats (unused, may be NULL, when momentum == 0). g is not
 * modified. PyTorch casts these scalars to float32 too, so float arguments
 * lose nothing. */
void rn_sgd_update(float *p, const float *g, float *buf, size_t n, float lr, float momentum,
                   float weight_decay, int nesterov, int first);

/* torch.optim.AdamW (amsgrad False), one step; step counts from 1 and m, v
 * start at zero:
 *   p = p * (1 - lr * weight_decay)
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p = p - lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps)
 * The scalar coefficients (1 - lr wd, 1 - b1, the bias corrections, the step
 * size) are computed in double from double hyper-parameters, as Python does,
 * then rounded to float32: pass 0.999, not 0.999f, to match PyTorch. */
void rn_adamw_update(float *p, const float *g, float *m, float *v, size_t n, double lr,
                     double beta1, double beta2, double eps, double weight_decay, int64_t step);

/* ---- learning-rate schedules ------------------------------------------------- */

/* rn_schedule_lr(s, t) is the learning rate of 0-based optimizer step t, in
 * double, equal (to rounding) to param_groups[0]["lr"] during step t of this
 * PyTorch loop (E = steps_per_epoch, T = total_steps, W = warmup_steps):
 *
 *     opt = SGD(params, lr=base_lr)
 *     main = <the scheduler below>
 *     warm = LinearLR(opt, start_factor=1/W, end_factor=1, total_iters=W-1)  # W > 0
 *     for t in range(T):
 *         opt.step()
 *         warm.step()                                 # every step
 *         main.step()     # every step (cosine, onecycle), or after the
 *                         # last step of each epoch (step, multistep)
 *
 * i.e. lr(t) = main(t) * warm(t), where epoch = t / E (integer division),
 *   constant   main(t) = base_lr
 *   step       main(t) = base_lr * gamma^(epoch / step_size)           StepLR
 *   multistep  main(t) = base_lr * gamma^(#milestones <= epoch)        MultiStepLR
 *   cosine     main(t) = eta_min + (base_lr - eta_min)(1 + cos(pi t / T)) / 2
 *                        CosineAnnealingLR(T_max=T, eta_min), closed form
 *   onecycle   OneCycleLR(max_lr=base_lr, total_steps=T, pct_start,
 *              anneal_strategy="cos", div_factor, final_div_factor,
 *              three_phase=False, cycle_momentum=False): with a = pct_start*T - 1,
 *              lr0 = base_lr/div_factor, lr1 = lr0/final_div_factor,
 *              cosanneal(x, y, f) = y + (x - y)(1 + cos(pi f))/2,
 *                t <= a: cosanneal(lr0, base_lr, t / a)
 *                else:   cosanneal(base_lr, lr1, (t - a) / (T - 1 - a))
 *              (momentum is not cycled: the caller's momentum stays fixed)
 *   exponential main(t) = base_lr * gamma^epoch                        ExponentialLR,
 *                        stepped per epoch (as torchvision's reference steps it)
 *   warm(t) = (t + 1) / W for t < W, else 1 (1 when W == 0): the first step
 *             runs at main(0) / W, step W-1 at the full rate.
 *
 * Three options change that loop (all 0, as a zeroed struct has them: the
 * loop above):
 *   warmup_factor F > 0: warm = LinearLR(start_factor=F, total_iters=W),
 *             warm(t) = F + (1 - F) t / W for t < W;
 *   warmup_constant: warm = ConstantLR(factor=F, total_iters=W), warm(t) = F
 *             for t < W (F 0: ConstantLR's default, 1/3);
 *   warmup_sequential: the main schedule starts after the warm-up, as
 *             SequentialLR([warm, main], milestones=[W]) runs them: lr(t) =
 *             base_lr * warm(t) for t < W, then main(t - W) with T - W in
 *             place of T (torchvision's classification reference);
 *   by_epoch: the schedulers are stepped once an epoch, not once a step (as
 *             torchvision's reference steps them): t, T and W above are
 *             counted in epochs (t / E; T / E rounded up; W / E, W a whole
 *             number of epochs), so the rate holds within an epoch.
 * Sequential with onecycle is refused (its own rising phase is its warm-up).
 * For the chainable schedulers (all but onecycle, and cosine with
 * eta_min != 0) the loop above gives exactly this product; for those two it
 * is the product of the two schedulers run separately (ChainedScheduler
 * semantics). Steps at or beyond T use t = T - 1 for onecycle and t = T for
 * cosine (eta_min), where PyTorch would raise or restart the cycle. */
typedef enum rn_schedule_kind {
    RN_SCHED_CONSTANT,
    RN_SCHED_STEP,
    RN_SCHED_MULTISTEP,
    RN_SCHED_COSINE,
    RN_SCHED_ONECYCLE,
    RN_SCHED_EXPONENTIAL
} rn_schedule_kind;

#define RN_SCHED_MAX_MILESTONES 16

typedef struct rn_schedule {
    rn_schedule_kind kind;
    double base_lr;                /* onecycle: max_lr */
    int64_t steps_per_epoch;       /* step, multistep */
    int64_t total_steps;           /* cosine, onecycle */
    int64_t warmup_steps;          /* W above; 0: no warm-up */
    double warmup_factor;          /* F above; 0: (t + 1) / W (linear), 1/3 (constant) */
    int warmup_constant;           /* ConstantLR instead of LinearLR */
    int warmup_sequential;         /* SequentialLR instead of the product */
    int by_epoch;                  /* the schedulers stepped once an epoch */
    int step_size;                 /* epochs, step */
    int milestones[RN_SCHED_MAX_MILESTONES], n_milestones;  /* epochs, multistep */
    double gamma;                  /* step, multistep, exponential; default 0.1 */
    double eta_min;                /* cosine; default 0 */
    double pct_start, div_factor, final_div_factor;  /* onecycle; 0.3, 25, 1e4 */
} rn_schedule;

/* Parses a schedule spec:
 *   "constant"
 *   "step:STEP_SIZE[:GAMMA]"                 e.g. "step:30:0.1"
 *   "multistep:M1,M2,...[:GAMMA]"            e.g. "multistep:30,60,80:0.1"
 *   "cosine[:ETA_MIN]"
 *   "onecycle[:PCT_START[:DIV_FACTOR[:FINAL_DIV_FACTOR]]]"
 *   "exponential:GAMMA"                      e.g. "exponential:0.9"
 * Zeroes *out, fills kind, its parameters and the defaults above. The caller
 * then sets base_lr, steps_per_epoch, total_steps and warmup_steps (and
 * should call rn_schedule_check). Fails with RN_ERR_ARG naming the spec. */
rn_status rn_schedule_parse(const char *spec, rn_schedule *out);

/* Checks a filled-in schedule: base_lr > 0 and finite, warmup_steps >= 0,
 * steps_per_epoch > 0 for step/multistep/exponential and by_epoch, total_steps
 * > 0 for cosine and onecycle, the kind's parameters in range, warmup_factor
 * 0 or in (0, 1], by_epoch's warm-up whole epochs, no sequential onecycle.
 * RN_ERR_ARG with a message. */
rn_status rn_schedule_check(const rn_schedule *s);

/* rn_schedule_parse(spec) with base_lr, warmup_steps, steps_per_epoch and
 * total_steps filled in (a count <= 0 taken as 1), as the trainer builds
 * its schedule, then rn_schedule_check. */
rn_status rn_schedule_build(const char *spec, double base_lr, int64_t warmup_steps,
                            int64_t steps_per_epoch, int64_t total_steps, rn_schedule *out);

/* The learning rate for 0-based optimizer step `step` (see above). A
 * schedule that fails rn_schedule_check gives base_lr; a negative step is
 * taken as 0. */
double rn_schedule_lr(const rn_schedule *s, int64_t step);

#endif
