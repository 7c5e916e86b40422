#!/usr/bin/python3
"""Training parity: resnet.c's gradients and training steps against PyTorch.

    /usr/bin/python3 tools/train_parity.py --resnet build/resnet [--only grads|steps|resume]

1. grads: every parameter gradient of d2l_resnet18, resnet18, resnet50 and
   resnext50_32x4d (grouped convolutions), and of resnet18 with the CIFAR stem, on
   one small batch (train-mode BatchNorm, mean cross-entropy), from
   `resnet grad`, against PyTorch in float64 (tools/grad_ref.py). Per tensor:
   ||g - g_ref|| / ||g_ref|| <= max(1e-4, 2 x the worst error of PyTorch's own
   float32 gradients on the same input). Tensors whose true gradient is zero
   (a conv bias right before a train-mode BatchNorm) are held to an absolute
   bound instead: ||g - g_ref|| <= bound * ||all of g_ref|| / sqrt(#tensors).
   Each seeded input gets its ReLU kinks cleared (clear_relu_kinks shifts
   BatchNorm biases so no ReLU input lies near zero), and of a few seeded
   inputs the one farthest from any remaining kink (max-pool near-ties) is
   used (see kink_distance): at a kink two correct float32 implementations
   can differ by 1e-2.
2. steps: `resnet train --no-shuffle --augment none` for 6 SGD steps (lr 0.002, momentum
   0.9, weight decay 5e-4, BN in train mode; and weight decay 5 with --norm-weight-decay 0,
   torchvision's BatchNorm group, and the same groups under AdamW, its conv biases before
   BatchNorm aside; and lr 0.06 with --clip-grad-norm 1, every step clipped, its gradient
   norms before clipping within 1e-4 of clip_grad_norm_'s; mixup and CutMix with label
   smoothing, the reference mixing each batch as resnet.c's log says it did, with
   torchvision's transforms) from given weights on a small
   generated dataset, against the same steps in PyTorch (tools/train_ref.py,
   float64): per-step losses within 1e-4 relative, every parameter and
   running statistic after the last step within 1e-3 relative (by norm),
   num_batches_tracked equal. For d2l_resnet18 (Fashion-MNIST IDX) and
   resnet18 (CIFAR-10 binary).
3. resume: 10 steps straight versus 4 steps, stop, resume, 6 more (with
   shuffling and crop+flip augmentation): the checkpoints must be bitwise equal.

Prints one line per check and ends with `train_parity: N passed, M failed`.
"""
import argparse
import copy
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rn_models import build_model, metadata, randomize  # noqa: E402
from st_io import load_safetensors, save_safetensors  # noqa: E402
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from same_checkpoint import same_but_run_id  # noqa: E402

PY = "/usr/bin/python3"
results = {"passed": 0, "failed": 0}


def report(ok, what):
    results["passed" if ok else "failed"] += 1
    print("%s  %s" % ("PASS" if ok else "FAIL", what), flush=True)


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        print("command failed (%d): %s\n%s%s" % (p.returncode, " ".join(cmd), p.stdout[-2000:], p.stderr[-2000:]))
    return p.returncode == 0


def save_model(path, arch, model, in_ch, classes):
    save_safetensors(path, model.state_dict(), metadata(arch, in_ch, classes))


# ---- 1. gradients -----------------------------------------------------------------------

# A ReLU input within float32 rounding of zero, or a max-pool window whose two largest inputs
# are that close, is a kink: two correct float32 implementations may take different sides, and
# their gradients then differ by far more than rounding (seen: 1e-2 on resnet50 from one
# pre-ReLU value of 1e-7 times its layer's largest value). Deep nets have millions of
# activations, so some are always that close; the gradient checks shift BatchNorm biases so
# that no ReLU input is near zero (clear_relu_kinks), take, of several seeded inputs, the one
# whose activations then stay farthest from every kink (measured in float64; max-pool near-ties
# remain), and hold each tensor to max(1e-4, 2 x PyTorch float32's own worst error on that input).
KINK_TRIES = 12


class KinkMonitor:
    """While active, records the smallest relative distance to a kink of every ReLU and
    max-pool that runs (through torch.nn.functional, which nn.ReLU and nn.MaxPool2d use too):
    a ReLU input's |v| / max|v|, a pool window's gap between its two largest inputs / max|v|
    (exact ties, such as all-zero windows, are broken the same way everywhere)."""

    def __init__(self):
        self.distance = float("inf")

    def __enter__(self):
        F = torch.nn.functional
        self.saved = F.relu, F.max_pool2d
        relu, pool = self.saved

        def watched_relu(x, inplace=False):
            v = x.detach()
            scale = float(v.abs().max())
            if scale > 0:
                self.distance = min(self.distance, float(v.abs().min()) / scale)
            return relu(x, inplace=inplace)

        def watched_pool(x, kernel_size, stride=None, padding=0, *args, **kw):
            v = x.detach()
            scale = float(v.abs().max())
            k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
            st = stride if isinstance(stride, int) else (stride[0] if stride else k)
            p = padding if isinstance(padding, int) else padding[0]
            if scale > 0:
                lowest = float(v.min()) - 1.0  # padding: below every input
                win = F.unfold(F.pad(v, (p, p, p, p), value=lowest), k, stride=st)
                top2 = win.reshape(v.shape[0], v.shape[1], k * k, -1).topk(2, dim=2).values
                gap = top2[:, :, 0] - top2[:, :, 1]
                gap = gap[gap > 0]
                if gap.numel():
                    self.distance = min(self.distance, float(gap.min()) / scale)
            return pool(x, kernel_size, stride, padding, *args, **kw)

        F.relu, F.max_pool2d = watched_relu, watched_pool
        return self

    def __exit__(self, *exc):
        torch.nn.functional.relu, torch.nn.functional.max_pool2d = self.saved


def clear_relu_kinks(model, x, reach=0.1):
    """Returns a copy of `model` whose ReLU inputs on `x` (one float64 train-mode forward pass)
    stay away from zero: at every ReLU, each channel's input is shifted by the amount, at most
    `reach` x that channel's standard deviation, that centres zero in the widest gap between
    the channel's values, and the shift is added to the bias of the BatchNorm that ran last.
    In every ResNet here a ReLU's input is that BatchNorm's output (plus a residual that does
    not depend on it), and a train-mode BatchNorm's output moves by exactly its bias, so the
    shifted pass is the new model's own pass. Seeded inputs alone cannot do this: of a dozen,
    the best still had a value 1.5e-7 of its layer's largest from a kink on resnext50_32x4d,
    where AVX-512 and PyTorch took different sides (2.5e-3 in the gradients)."""
    m = copy.deepcopy(model).double().train()
    last_bn = []
    hooks = [mod.register_forward_hook(lambda mod, inp, out: last_bn.append(mod))
             for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    F = torch.nn.functional
    relu = F.relu

    def shifted_relu(x, inplace=False):
        if not last_bn or x.dim() != 4:
            return relu(x, inplace=inplace)
        v = x.detach().transpose(0, 1).reshape(x.shape[1], -1)  # (C, N*H*W)
        s = v.sort(dim=1).values
        gaps = s[:, 1:] - s[:, :-1]
        mids = (s[:, 1:] + s[:, :-1]) / 2
        limit = reach * v.std(dim=1, keepdim=True)
        gaps = torch.where(mids.abs() <= limit, gaps, torch.zeros_like(gaps))
        best = gaps.argmax(dim=1, keepdim=True)
        # no shift unless the widest gap in reach beats the channel's own distance from zero
        keep = gaps.gather(1, best).squeeze(1) / 2 <= v.abs().min(dim=1).values
        shift = torch.where(keep, torch.zeros_like(keep, dtype=v.dtype), -mids.gather(1, best).squeeze(1))
        bn = last_bn[-1]
        with torch.no_grad():
            bn.bias += shift
        return relu(x + shift.view(1, -1, 1, 1))

    F.relu = shifted_relu
    try:
        with torch.no_grad():
            m(torch.from_numpy(x).double())
    finally:
        F.relu = relu
        for h in hooks:
            h.remove()
    cleared = copy.deepcopy(model)
    cleared.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in m.state_dict().items()})
    return cleared


def kink_distance(model, x):
    """Smallest relative distance to a kink in one float64 train-mode forward pass."""
    m = copy.deepcopy(model).double().train()
    with KinkMonitor() as k, torch.no_grad():
        m(torch.from_numpy(x).double())
    return k.distance


def farthest_from_kinks(model, n, in_ch, size, classes, first_seed=7, tries=KINK_TRIES):
    """Of `tries` seeded batches, each with the model's ReLU kinks cleared for it, the one whose
    activations stay farthest from every kink (max-pool ties cannot be cleared by a shift).
    Returns (model, x, y, seed, distance)."""
    best = None
    for seed in range(first_seed, first_seed + tries):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n, in_ch, size, size)).astype(np.float32)
        y = rng.integers(0, classes, n).astype(np.float32)
        cleared = clear_relu_kinks(model, x)
        d = kink_distance(cleared, x)
        if best is None or d > best[4]:
            best = (cleared, x, y, seed, d)
    return best


def check_grads(resnet, tmp):
    # small batches (the more activations, the nearer the nearest kink), but at least 8 values
    # per channel in every BatchNorm (with 2, BatchNorm's input gradient is exactly zero)
    cases = [("d2l_resnet18", 1, 10, 4, 32, "imagenet"), ("resnet18", 3, 10, 2, 64, "imagenet"),
             ("resnet50", 3, 10, 2, 64, "imagenet"), ("resnet18", 3, 10, 4, 32, "cifar"),
             ("resnext50_32x4d", 3, 10, 2, 64, "imagenet")]
    for arch, in_ch, classes, n, size, stem in cases:
        model = randomize(build_model(arch, in_ch, classes, stem=stem), seed=11)
        model, x, y, seed, dist = farthest_from_kinks(model, n, in_ch, size, classes)
        w = os.path.join(tmp, arch + "_g.safetensors")
        save_model(w, arch, model, in_ch, classes)
        xp, yp = os.path.join(tmp, "gx.npy"), os.path.join(tmp, "gy.npy")
        np.save(xp, x)
        np.save(yp, y)
        ours, ref = os.path.join(tmp, "g_ours.safetensors"), os.path.join(tmp, "g_ref.safetensors")
        if not run([resnet, "grad", "--weights", w, "--input", xp, "--labels", yp, "--output", ours,
                    "--threads", "2"]) or \
           not run([PY, os.path.join(HERE, "grad_ref.py"), "--arch", arch, "--weights", w, "--input", xp,
                    "--labels", yp, "--out", ref, "--f64"]):
            report(False, "%s gradients: a command failed" % arch)
            continue
        g, _ = load_safetensors(ours)
        gr, _ = load_safetensors(ref)
        gr.pop("loss", None)
        missing = sorted(set(gr) ^ set(g))
        if missing:
            report(False, "%s gradients: tensor names differ: %s" % (arch, missing[:5]))
            continue
        total = float(np.sqrt(sum(float((t.double() ** 2).sum()) for t in gr.values())))

        def rel_error(got, name, bound):
            """|got - ref| / |ref|, or against a floor for tensors whose gradient is tiny
            (bound * the root-mean-square tensor norm), scaled to the same units."""
            d = float((got.double() - gr[name].double()).norm())
            r = float(gr[name].double().norm())
            floor = bound * total / np.sqrt(len(gr))
            return d / floor * bound if r * bound < floor else d / r

        m32 = build_model(arch, in_ch, classes, stem=stem)
        m32.load_state_dict(model.state_dict())
        m32.train()
        torch.nn.functional.cross_entropy(m32(torch.from_numpy(x)), torch.from_numpy(y).long()).backward()
        worst32 = max(rel_error(p.grad, k, 1e-4) for k, p in m32.named_parameters())
        bound = max(1e-4, 2.0 * worst32)
        worst, worst_name, bad = 0.0, "", []
        for name in gr:
            rel = rel_error(g[name], name, bound)
            if rel > worst:
                worst, worst_name = rel, name
            if rel > bound:
                bad.append(name)
        report(not bad, "%s gradients of %d tensors (batch %d, %dx%d, %s stem, input seed %d, nearest kink "
               "%.1e): worst rel error %.2e (%s)%s%s" % (
            arch, len(gr), n, size, size, stem, seed, dist, worst, worst_name,
            "; bound max(1e-4, 2 x PyTorch float32's error), PyTorch float32's worst %.2e" % worst32,
            "; failing: %s" % bad[:5] if bad else ""))


# ---- datasets on disk ------------------------------------------------------------------------

def write_idx(directory, images, labels):
    os.makedirs(directory, exist_ok=True)
    for split in ("train", "t10k"):
        with gzip.open(os.path.join(directory, "%s-images-idx3-ubyte.gz" % split), "wb") as f:
            f.write(struct.pack(">IIII", 0x803, len(images), 28, 28) + images.tobytes())
        with gzip.open(os.path.join(directory, "%s-labels-idx1-ubyte.gz" % split), "wb") as f:
            f.write(struct.pack(">II", 0x801, len(labels)) + labels.tobytes())


def write_cifar(directory, images, labels):
    os.makedirs(directory, exist_ok=True)
    rec = np.concatenate([labels[:, None], images.reshape(len(images), -1)], axis=1).astype(np.uint8)
    for name in ["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]:
        rec.tofile(os.path.join(directory, name))


# ---- 2. training steps ---------------------------------------------------------------------------

def check_steps(resnet, tmp):
    steps, batch = 6, 16
    # a small learning rate: a kink (a ReLU input within rounding of zero) that two float32
    # implementations take on different sides changes that step's gradient by up to ~1e-2
    # (see kink_distance), and the weights then part by lr times that, growing each step;
    # at lr 0.01 they part by ~1e-3 within six steps on some machines
    hyper = ["--lr", "0.002", "--momentum", "0.9", "--weight-decay", "5e-4"]
    # the BatchNorm parameters' own weight decay (torchvision's --norm-weight-decay): the rest
    # decayed hard enough (1% a step) that decaying them too would part them by 6%
    norm_decay = ["--lr", "0.002", "--momentum", "0.9", "--weight-decay", "5", "--norm-weight-decay", "0"]
    # and AdamW's decoupled decay by group (1% a step too)
    adamw_norm = ["--optimizer", "adamw", "--lr", "0.0001", "--weight-decay", "100", "--norm-weight-decay", "0"]
    # gradients clipped to a total norm of 1 (about a thirtieth of theirs) at 30 times the rate: the
    # same size of update as `hyper`, which would be thirty times too large unclipped
    clip = ["--lr", "0.06", "--momentum", "0.9", "--weight-decay", "5e-4", "--clip-grad-norm", "1"]
    # the moving average of the weights (torchvision's --model-ema), updated after steps 1, 4 and
    # 5 (batches 0 and 3 of the first epoch of 4, batch 0 of the second): a copy, then two averages
    ema = hyper + ["--ema", "0.5", "--ema-every", "3"]
    # mixup and CutMix (one of the two per batch), with label smoothing on the mixed targets: the
    # reference mixes each batch as the log says resnet.c mixed it (torchvision's transforms)
    mix = hyper + ["--mixup-alpha", "0.4", "--cutmix-alpha", "1", "--label-smoothing", "0.1", "--seed", "1"]
    cases = [("d2l_resnet18", "fashion-mnist", 1, 28, hyper), ("resnet18", "cifar10", 3, 32, hyper),
             ("d2l_resnet18", "fashion-mnist", 1, 28, norm_decay), ("d2l_resnet18", "fashion-mnist", 1, 28, adamw_norm),
             ("d2l_resnet18", "fashion-mnist", 1, 28, clip), ("d2l_resnet18", "fashion-mnist", 1, 28, ema),
             ("d2l_resnet18", "fashion-mnist", 1, 28, mix)]
    for arch, kind, in_ch, size, hyper in cases:
        what = arch + (" --optimizer adamw" if "adamw" in hyper else "") + \
            (" --norm-weight-decay 0" if "--norm-weight-decay" in hyper else "") + \
            (" --clip-grad-norm 1" if "--clip-grad-norm" in hyper else "") + \
            (" --ema 0.5 --ema-every 3" if "--ema" in hyper else "") + \
            (" --mixup-alpha 0.4 --cutmix-alpha 1 --label-smoothing 0.1" if "--mixup-alpha" in hyper else "")
        model = randomize(build_model(arch, in_ch, 10), seed=5)
        rng = np.random.default_rng(3)
        # the moving average's case crosses an epoch (4 steps each): its updates follow the
        # batches' index within their epoch (0 and 3, then 0 again: steps 1, 4 and 5)
        per_epoch = 4 if "--ema" in hyper else steps
        count = per_epoch * batch
        images = rng.integers(0, 256, (count, in_ch, size, size), dtype=np.uint8)
        labels = rng.integers(0, 10, count).astype(np.uint8)
        data = os.path.join(tmp, "data_" + kind)
        if kind == "cifar10":
            write_cifar(data, images, labels)
        else:
            write_idx(data, images.reshape(count, 28, 28), labels)
        bdir = os.path.join(tmp, "batches_" + arch)
        os.makedirs(bdir, exist_ok=True)
        for s in range(steps):
            sl = slice(s % per_epoch * batch, (s % per_epoch + 1) * batch)
            np.save(os.path.join(bdir, "x_%03d.npy" % s), images[sl].astype(np.float32) / 255.0)
            np.save(os.path.join(bdir, "y_%03d.npy" % s), labels[sl].astype(np.float32))
        w = os.path.join(tmp, arch + "_init.safetensors")
        save_model(w, arch, model, in_ch, 10)
        tag = what.replace(" --", "_").replace(" ", "_")
        ck = os.path.join(tmp, tag + "_ck.safetensors")
        log = os.path.join(tmp, tag + "_log.jsonl")
        ok = run([resnet, "train", "--arch", arch, "--data", data, "--dataset", kind, "--init", w,
                  "--batch-size", str(batch), "--max-steps", str(steps), "--no-shuffle", "--augment", "none",
                  "--save", ck, "--log", log, "--log-every", "1", "--threads", "2", "--quiet"] + hyper)
        losses_ref, state_ref = os.path.join(tmp, "losses.npy"), os.path.join(tmp, "state_ref.safetensors")
        norms_ref, ema_ref = os.path.join(tmp, "grad_norms.npy"), os.path.join(tmp, "ema_ref.safetensors")
        ref_hyper = [{"--ema": "--ema-decay"}.get(h, h) for h in hyper]
        if "--ema" in hyper:
            ref_hyper += ["--ema-epoch-steps", str(per_epoch)]
        if "--mixup-alpha" in hyper:  # the reference reads the mixing from the log
            at = ref_hyper.index("--mixup-alpha")
            ref_hyper = ref_hyper[:at] + ref_hyper[at + 4:] + ["--mix-log", log]
            at = ref_hyper.index("--seed")  # the seed drew the mixing, which the log holds
            ref_hyper = ref_hyper[:at] + ref_hyper[at + 2:]
        ok = ok and run([PY, os.path.join(HERE, "train_ref.py"), "--arch", arch, "--weights", w, "--batches", bdir,
                         "--steps", str(steps), "--out-losses", losses_ref, "--out-state", state_ref,
                         "--out-grad-norms", norms_ref, "--out-ema", ema_ref, "--double"] + ref_hyper)
        if not ok:
            report(False, "%s training steps: a command failed" % what)
            continue
        ours = [json.loads(l)["loss"] for l in open(log) if l.startswith('{"step"')]
        ref = np.load(losses_ref).astype(np.float64)
        rel = [abs(a - b) / abs(b) for a, b in zip(ours, ref)]
        report(len(ours) == steps and max(rel) <= 1e-4,
               "%s %d steps: losses %s, rel errors %s" % (
                   what, steps, " ".join("%.5f" % v for v in ours), " ".join("%.1e" % r for r in rel)))
        if "--mixup-alpha" in hyper:
            kinds = [json.loads(l).get("mix") for l in open(log) if l.startswith('{"step"')]
            report(set(kinds) == {"mixup", "cutmix"}, "%s: the %d steps mixed by %s" % (what, steps, " ".join(
                str(k) for k in kinds)))
        if "--clip-grad-norm" in hyper:
            # the norms before clipping, as clip_grad_norm_ returns them: each above the clip, so
            # that every step was clipped
            cap = float(hyper[hyper.index("--clip-grad-norm") + 1])
            ours = [json.loads(l).get("grad_norm") for l in open(log) if l.startswith('{"step"')]
            ref = np.load(norms_ref)
            rel = [abs(a - b) / b if a is not None else np.inf for a, b in zip(ours, ref)]
            report(len(ours) == steps and max(rel) <= 1e-4 and min(ref) > cap,
                   "%s %d steps: gradient norms before clipping %s (PyTorch's %s), rel errors %s" % (
                       what, steps, " ".join("%.4f" % v for v in ours if v is not None),
                       " ".join("%.4f" % v for v in ref), " ".join("%.1e" % r for r in rel)))
        compare_state(what + " after %d steps" % steps, ck, state_ref, hyper)
        if "--ema" in hyper:
            # the average's counters are the model's (torchvision's average counts), and it must
            # stand apart from the last weights, or the check could not tell them apart
            apart = compare_state(what + " moving average", ck[:-len(".safetensors")] + ".ema.safetensors",
                                  ema_ref, hyper, counters=False, other=state_ref)
            report(apart > 1e-2, "%s: the moving average is %.2e from the last weights (by norm, the "
                   "farthest tensor), apart enough for the check above" % (what, apart))


def compare_state(what, ours_path, ref_path, hyper, counters=True, other=None):
    """Every tensor of ref_path in ours_path within 1e-3 relative (by norm); the integer counters
    equal unless counters is False. Returns the farthest relative distance of ref_path's float
    tensors from other's (0 without other)."""
    got, _ = load_safetensors(ours_path)
    exp, _ = load_safetensors(ref_path)
    far = load_safetensors(other)[0] if other else {}
    worst, worst_name, bad, apart = 0.0, "", [], 0.0
    for name, t in exp.items():
        if name not in got:
            bad.append(name + " (missing)")
            continue
        # AdamW: a conv bias before a train-mode BatchNorm has a true gradient of zero, so its
        # gradient is rounding noise that Adam's normalisation turns into updates of about lr
        # either way (8e-3 apart after six steps); its decay is the group under test's neither
        weight = exp.get(name[:-len("bias")] + "weight")
        if "adamw" in hyper and name.endswith(".bias") and weight is not None and weight.dim() == 4:
            continue
        if t.dtype == torch.int64:
            if counters and not torch.equal(got[name], t):
                bad.append(name)
            continue
        r = max(float(t.double().norm()), 1e-12)
        d = float((got[name].double() - t.double()).norm())
        if name in far:
            apart = max(apart, float((far[name].double() - t.double()).norm()) / r)
        if d / r > worst:
            worst, worst_name = d / r, name
        if d / r > 1e-3:
            bad.append(name)
    report(not bad, "%s: %d tensors (parameters, running statistics%s), worst rel error %.2e (%s)%s" % (
        what, len(exp), ", counters" if counters else "", worst, worst_name,
        "; failing: %s" % bad[:5] if bad else ""))
    return apart


# ---- 3. resume ------------------------------------------------------------------------------------------

def check_resume(resnet, tmp):
    rng = np.random.default_rng(9)
    images = rng.integers(0, 256, (80, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 80).astype(np.uint8)
    data = os.path.join(tmp, "data_resume")
    write_idx(data, images, labels)
    common = [resnet, "train", "--arch", "d2l_resnet18", "--data", data, "--batch-size", "16", "--epochs", "3",
              "--momentum", "0.9", "--weight-decay", "1e-4", "--augment", "crop+flip", "--seed", "3",
              "--schedule", "cosine", "--threads", "2", "--quiet"]
    a, b = os.path.join(tmp, "straight.safetensors"), os.path.join(tmp, "part.safetensors")
    ok = run(common + ["--max-steps", "10", "--save", a, "--log", "none"])
    ok = ok and run(common + ["--max-steps", "4", "--save", b, "--log", "none"])
    ok = ok and run(common + ["--max-steps", "10", "--resume", b, "--save", b, "--log", "none"])
    if not ok:
        report(False, "resume: a command failed")
        return
    same = same_but_run_id(a, b)
    opt_same = same_but_run_id(a.replace(".safetensors", ".optim.safetensors"),
                                    b.replace(".safetensors", ".optim.safetensors"))
    report(same and opt_same, "resume: 4 steps + resume + 6 steps (crossing an epoch, shuffled, augmented, "
           "cosine schedule) is bitwise equal to 10 steps straight (weights %s, optimizer state %s)" % (
               "equal" if same else "DIFFER", "equal" if opt_same else "DIFFER"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resnet", default="build/resnet")
    ap.add_argument("--only", choices=("grads", "steps", "resume"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "grads"):
            check_grads(args.resnet, tmp)
        if args.only in (None, "steps"):
            check_steps(args.resnet, tmp)
        if args.only in (None, "resume"):
            check_resume(args.resnet, tmp)
    print("train_parity: %d passed, %d failed" % (results["passed"], results["failed"]))
    sys.exit(1 if results["failed"] or not results["passed"] else 0)  # no check run is a failure


if __name__ == "__main__":
    main()
