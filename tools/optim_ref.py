#!/usr/bin/python3
"""PyTorch references for tests/test_optim.c: optimizer steps and lr schedules.

    /usr/bin/python3 tools/optim_ref.py OUTDIR

Writes into OUTDIR (which must exist):

optim_cases.txt, one line per optimizer case:
    sgd   NAME N MOMENTUM WEIGHT_DECAY NESTEROV LR_1 ... LR_S
    adamw NAME N BETA1 BETA2 EPS WEIGHT_DECAY LR_1 ... LR_S
  (S = 5 steps, numbers as %.17g so C reads back the same doubles) and, per
  case, float32 .npy files:
    NAME_p0.npy    (N,)    initial parameters
    NAME_g.npy     (S, N)  the gradient of each step
    NAME_p.npy     (S, N)  parameters after each step (torch.optim, float32)
    NAME_state.npy (K, N)  final optimizer state: SGD momentum_buffer (K = 1,
                           zeros when momentum is 0), AdamW exp_avg, exp_avg_sq (K = 2)

schedules.txt, one line per schedule case:
    NAME SPEC BASE_LR STEPS_PER_EPOCH TOTAL_STEPS WARMUP BY_EPOCH SEQUENTIAL
         CONSTANT FACTOR LR_0 ... LR_{TOTAL-1}
  LR_t is param_groups[0]["lr"] during optimizer step t of the loop that
  src/train/optim.h documents (main scheduler stepped per epoch for StepLR /
  MultiStepLR / ExponentialLR, per step otherwise; warm-up LinearLR(1/W, 1,
  W-1) per step), or of its variants there: BY_EPOCH 1, every scheduler
  stepped once an epoch; SEQUENTIAL 1, SequentialLR([warm-up, main],
  milestones=[W]); CONSTANT 1, ConstantLR(FACTOR, W) as the warm-up; FACTOR
  > 0, LinearLR(FACTOR, 1, W). WARMUP is in steps (whole epochs with
  BY_EPOCH). SPEC is the rn_schedule_parse spec of the same schedule.

Exit status 0 on success; any exception is a failure.
"""
import os
import sys
import warnings

import numpy as np
import torch

STEPS = 5
EPOCHS, STEPS_PER_EPOCH = 3, 7
BASE_LR = 0.1


def g17(x):
    return "%.17g" % x


# ---------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------

def make_data(seed, n, zero_some=False):
    g = torch.Generator().manual_seed(seed)
    p0 = torch.randn(n, generator=g)
    grads = []
    for s in range(STEPS):
        scale = [1.0, 0.3, 3.0, 0.01, 1.0][s]
        gr = torch.randn(n, generator=g) * scale
        if zero_some:      # exact zeros and tiny values: the eps path of AdamW
            gr[::17] = 0.0
            gr[5::23] *= 1e-7
        grads.append(gr)
    return p0, torch.stack(grads)


def run_sgd(p0, grads, lrs, momentum, wd, nesterov):
    p = torch.nn.Parameter(p0.clone())
    opt = torch.optim.SGD([p], lr=lrs[0], momentum=momentum, weight_decay=wd,
                          nesterov=nesterov, dampening=0, foreach=False)
    out = []
    for s in range(STEPS):
        opt.param_groups[0]["lr"] = lrs[s]
        p.grad = grads[s].clone()
        opt.step()
        out.append(p.detach().clone())
    buf = opt.state[p].get("momentum_buffer")
    state = (buf if buf is not None else torch.zeros_like(p0)).reshape(1, -1)
    return torch.stack(out), state


def run_adamw(p0, grads, lrs, b1, b2, eps, wd):
    p = torch.nn.Parameter(p0.clone())
    opt = torch.optim.AdamW([p], lr=lrs[0], betas=(b1, b2), eps=eps, weight_decay=wd,
                            amsgrad=False, foreach=False)
    out = []
    for s in range(STEPS):
        opt.param_groups[0]["lr"] = lrs[s]
        p.grad = grads[s].clone()
        opt.step()
        out.append(p.detach().clone())
    st = opt.state[p]
    return torch.stack(out), torch.stack([st["exp_avg"], st["exp_avg_sq"]])


SGD_CASES = [  # name, n, momentum, weight_decay, nesterov, lrs
    ("sgd_plain", 1000, 0.0, 0.0, False, [0.1] * 5),
    ("sgd_wd", 1037, 0.0, 5e-4, False, [0.1, 0.05, 0.2, 0.1, 0.01]),
    ("sgd_mom", 1001, 0.9, 0.0, False, [0.1] * 5),
    ("sgd_mom_wd", 999, 0.9, 5e-4, False, [0.1, 0.05, 0.2, 0.1, 0.01]),
    ("sgd_nest", 1003, 0.9, 0.0, True, [0.1] * 5),
    ("sgd_nest_wd", 1024, 0.9, 5e-4, True, [0.1, 0.05, 0.2, 0.1, 0.01]),
    ("sgd_nest_bigwd", 77, 0.8, 0.05, True, [0.5, 0.4, 0.3, 0.2, 0.1]),
    ("sgd_one", 1, 0.9, 5e-4, False, [0.1] * 5),
]

ADAMW_CASES = [  # name, n, beta1, beta2, eps, weight_decay, lrs
    ("adamw_default", 1000, 0.9, 0.999, 1e-8, 0.01, [1e-3] * 5),
    ("adamw_nowd", 1037, 0.9, 0.999, 1e-8, 0.0, [0.05, 0.02, 0.05, 0.01, 0.03]),
    ("adamw_betas", 999, 0.8, 0.99, 1e-6, 0.1, [0.05] * 5),
    ("adamw_slow", 515, 0.95, 0.9999, 1e-8, 0.05, [0.01, 0.02, 0.03, 0.04, 0.05]),
    ("adamw_bigeps", 64, 0.9, 0.999, 1e-2, 0.01, [0.1] * 5),
]


def write_optim(outdir):
    lines = []
    seed = 100
    for name, n, mom, wd, nest, lrs in SGD_CASES:
        seed += 1
        p0, grads = make_data(seed, n)
        ps, state = run_sgd(p0, grads, lrs, mom, wd, nest)
        save_case(outdir, name, p0, grads, ps, state)
        lines.append(" ".join(["sgd", name, str(n), g17(mom), g17(wd), str(int(nest))]
                              + [g17(x) for x in lrs]))
    for name, n, b1, b2, eps, wd, lrs in ADAMW_CASES:
        seed += 1
        p0, grads = make_data(seed, n, zero_some=True)
        ps, state = run_adamw(p0, grads, lrs, b1, b2, eps, wd)
        save_case(outdir, name, p0, grads, ps, state)
        lines.append(" ".join(["adamw", name, str(n), g17(b1), g17(b2), g17(eps), g17(wd)]
                              + [g17(x) for x in lrs]))
    with open(os.path.join(outdir, "optim_cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return len(lines)


def save_case(outdir, name, p0, grads, ps, state):
    for suffix, t in (("p0", p0), ("g", grads), ("p", ps), ("state", state)):
        arr = t.detach().numpy().astype(np.float32)
        np.save(os.path.join(outdir, "%s_%s.npy" % (name, suffix)), arr)


# ---------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------

SCHEDULES = [  # name, spec, factory(opt, total), per_step, chainable
    ("constant", "constant", None, True, True),
    ("step", "step:1:0.5",
     lambda o, T: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5), False, True),
    ("step2", "step:2",
     lambda o, T: torch.optim.lr_scheduler.StepLR(o, step_size=2), False, True),
    ("multistep", "multistep:1,2:0.3",
     lambda o, T: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[1, 2], gamma=0.3),
     False, True),
    ("multistep_dup", "multistep:0,2,2",
     lambda o, T: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[0, 2, 2]), False, True),
    ("cosine", "cosine",
     lambda o, T: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=T), True, True),
    ("cosine_min", "cosine:0.001",
     lambda o, T: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=T, eta_min=0.001),
     True, False),
    ("onecycle", "onecycle",
     lambda o, T: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=BASE_LR, total_steps=T,
                                                      cycle_momentum=False), True, False),
    ("onecycle_args", "onecycle:0.25:10:100",
     lambda o, T: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=BASE_LR, total_steps=T,
                                                      pct_start=0.25, div_factor=10.0,
                                                      final_div_factor=100.0,
                                                      cycle_momentum=False), True, False),
]
WARMUPS = (0, 1, 5, 10)


def lr_sequence(factory, per_step, warmup, total):
    """param_groups[0]['lr'] during each optimizer step of the documented loop,
    with the main scheduler and (warmup > 0) LinearLR on the same optimizer."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=BASE_LR)
    main = factory(opt, total) if factory else None
    warm = (torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0 / warmup, end_factor=1.0,
                                              total_iters=warmup - 1) if warmup > 0 else None)
    lrs = []
    for t in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if warm:
            warm.step()
        if main and (per_step or (t + 1) % STEPS_PER_EPOCH == 0):
            main.step()
    return lrs


# torchvision's classification reference: a warm-up (LinearLR or ConstantLR with
# --lr-warmup-decay) and the main scheduler in a SequentialLR, both stepped once an
# epoch; and the variants of optim.h (stepped per step; the warm-up's factor given).
TV_EPOCHS, TV_PER_EPOCH = 9, 3
TV_MAINS = [  # name, spec, factory(opt, total units)
    ("constant", "constant", lambda o, T: torch.optim.lr_scheduler.ConstantLR(o, factor=1.0,
                                                                             total_iters=0)),
    ("cosine", "cosine", lambda o, T: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=T)),
    ("cosine_min", "cosine:0.002",
     lambda o, T: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=T, eta_min=0.002)),
    ("step", "step:2:0.5", lambda o, T: torch.optim.lr_scheduler.StepLR(o, step_size=2,
                                                                        gamma=0.5)),
    ("multistep", "multistep:2,4:0.3",
     lambda o, T: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[2, 4], gamma=0.3)),
    ("exponential", "exponential:0.8",
     lambda o, T: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.8)),
]


def warm_factory(constant, factor, units):
    if constant:
        return lambda o: torch.optim.lr_scheduler.ConstantLR(o, factor=factor, total_iters=units)
    return lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=factor, total_iters=units)


def tv_sequence(main, warm, units, per_unit, warm_units):
    """lr during each step of `units` units of `per_unit` steps, the schedulers
    stepped after each unit; with a warm-up of `warm_units` units in a SequentialLR,
    the main scheduler built for the units after it (torchvision's reference)."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=BASE_LR)
    m = main(opt, units - warm_units)
    sched = m
    if warm:
        sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm(opt), m],
                                                      milestones=[warm_units])
    lrs = []
    for _ in range(units):
        for _ in range(per_unit):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
        sched.step()
    return lrs


def tv_line(name, spec, per_epoch, total, warmup, by_epoch, sequential, constant, factor, lrs):
    assert len(lrs) == total
    return " ".join([name, spec, g17(BASE_LR), str(per_epoch), str(total), str(warmup),
                     str(by_epoch), str(sequential), str(constant), g17(factor)]
                    + [g17(x) for x in lrs])


def torchvision_style_schedules():
    lines = []
    total = TV_EPOCHS * TV_PER_EPOCH
    for name, spec, main in TV_MAINS:
        # by epoch: no warm-up; a linear one (torchvision's default decay 0.01); a constant one
        for tag, we, constant, factor in (("", 0, 0, 0.0), ("_lin", 2, 0, 0.01),
                                          ("_const", 3, 1, 0.1)):
            warm = warm_factory(constant, factor, we) if we else None
            lrs = tv_sequence(main, warm, TV_EPOCHS, TV_PER_EPOCH, we)
            lines.append(tv_line("tv_" + name + tag, spec, TV_PER_EPOCH, total, we * TV_PER_EPOCH,
                                 1, 1 if we else 0, constant, factor, lrs))
        if name in ("constant", "cosine", "cosine_min"):  # stepped every step, sequential
            for tag, w, constant, factor in (("_lin", 5, 0, 0.01), ("_const", 4, 1, 0.25)):
                lrs = tv_sequence(main, warm_factory(constant, factor, w), total, 1, w)
                lines.append(tv_line("seq_" + name + tag, spec, TV_PER_EPOCH, total, w, 0, 1,
                                     constant, factor, lrs))
    # one-cycle stepped once an epoch
    lrs = tv_sequence(lambda o, T: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=BASE_LR, total_steps=T, cycle_momentum=False), None, TV_EPOCHS, TV_PER_EPOCH, 0)
    lines.append(tv_line("tv_onecycle", "onecycle", TV_PER_EPOCH, total, 0, 1, 0, 0, 0.0, lrs))
    # chained (the product), the warm-up's factor given: per step over per-epoch or per-step mains
    for name, spec, main, per_step in (("step", "step:1:0.5", lambda o, T: torch.optim.lr_scheduler.
                                        StepLR(o, step_size=1, gamma=0.5), False),
                                       ("cosine", "cosine", lambda o, T: torch.optim.lr_scheduler.
                                        CosineAnnealingLR(o, T_max=T), True)):
        base = (tv_sequence(main, None, total, 1, 0) if per_step else
                tv_sequence(main, None, TV_EPOCHS, TV_PER_EPOCH, 0))
        for tag, w, constant, factor in (("_lin", 5, 0, 0.1), ("_const", 4, 1, 0.5)):
            p = torch.nn.Parameter(torch.zeros(1))
            opt = torch.optim.SGD([p], lr=BASE_LR)
            warm = warm_factory(constant, factor, w)(opt)
            f = []
            for _ in range(total):
                f.append(opt.param_groups[0]["lr"] / BASE_LR)
                opt.step()
                warm.step()
            lines.append(tv_line("chain_" + name + tag, spec, TV_PER_EPOCH, total, w, 0, 0,
                                 constant, factor, [a * b for a, b in zip(base, f)]))
    return lines


def write_schedules(outdir):
    total = EPOCHS * STEPS_PER_EPOCH
    lines = []
    for name, spec, factory, per_step, chainable in SCHEDULES:
        base = lr_sequence(factory, per_step, 0, total)
        for w in WARMUPS:
            if w == 0:
                lrs = base
            else:
                # ChainedScheduler semantics: the product of the two schedules.
                factor = [x / BASE_LR for x in lr_sequence(None, True, w, total)]
                lrs = [a * b for a, b in zip(base, factor)]
                expect = [min(t + 1, w) / w for t in range(total)]
                assert all(abs(a - b) <= 1e-12 for a, b in zip(factor, expect)), (w, factor)
                if chainable:  # the same loop on one optimizer gives the product
                    same = lr_sequence(factory, per_step, w, total)
                    assert all(abs(a - b) <= 1e-12 * abs(b) for a, b in zip(same, lrs)), name
            lines.append(" ".join([name + ("_w%d" % w if w else ""), spec, g17(BASE_LR),
                                   str(STEPS_PER_EPOCH), str(total), str(w), "0 0 0 0"]
                                  + [g17(x) for x in lrs]))
    lines += torchvision_style_schedules()
    with open(os.path.join(outdir, "schedules.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return len(lines)


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        sys.exit("usage: optim_ref.py OUTDIR (an existing directory)")
    warnings.simplefilter("ignore")   # lr_scheduler's advisory warnings
    torch.set_num_threads(1)
    n_opt = write_optim(sys.argv[1])
    n_sched = write_schedules(sys.argv[1])
    print("optim_ref: %d optimizer cases, %d schedules written to %s"
          % (n_opt, n_sched, sys.argv[1]))


if __name__ == "__main__":
    main()
