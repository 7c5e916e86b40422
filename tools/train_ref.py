#!/usr/bin/python3
"""Reference training trajectory: N optimizer steps on given batches.

    /usr/bin/python3 tools/train_ref.py --arch A --weights W.safetensors \\
        --batches DIR --steps N --lr LR [--momentum M] [--weight-decay WD] \\
        [--nesterov] [--optimizer sgd|adamw] [--beta1 B1] [--beta2 B2] [--eps E] \\
        [--label-smoothing S] [--norm-weight-decay NWD] [--clip-grad-norm C] \\
        [--ema-decay D --ema-every K --ema-epoch-steps E --out-ema E.safetensors] \\
        [--mix-log LOG] \\
        [--double] [--threads T] --out-losses L.npy --out-state S.safetensors \\
        [--out-grad-norms G.npy]
    /usr/bin/python3 tools/train_ref.py --selftest

Loads W into `A` (as tools/grad_ref.py: metadata or tensor shapes give
in_channels and num_classes; strict), puts it in train mode and runs, for
t = 0 .. N-1 on DIR/x_{t:03d}.npy (float (B, C, H, W)) and DIR/y_{t:03d}.npy
(B class indices, integer or whole-valued float):

    [--mix-log: x, y mixed as resnet.c's log says it mixed step t: torchvision's
     RandomMixup / RandomCutmix with that lam (and box), y the mixed one-hot targets]
    opt.zero_grad(); loss = CrossEntropyLoss(label_smoothing=S)(model(x), y)
    loss.backward(); [torch.nn.utils.clip_grad_norm_(model.parameters(), C)]; opt.step()
    [after the batches i = t % E = 0, K, 2K, ... of each epoch: ema.update_parameters(model)]

with one parameter group holding every parameter (weight decay applies to
all, BatchNorm and biases included), or with --norm-weight-decay NWD two, as
torchvision's references/classification/utils.set_weight_decay makes them
(the BatchNorm modules' weights and biases at NWD, the rest at WD), and
    sgd:   torch.optim.SGD(lr, momentum, weight_decay, nesterov, dampening=0)
    adamw: torch.optim.AdamW(lr, betas=(B1, B2), eps, weight_decay)
           (defaults 0.9, 0.999, 1e-8; --momentum and --nesterov are ignored).
Computes in float32 (as resnet.c does) or, with --double, in float64.
BatchNorm's running statistics and num_batches_tracked advance every step.

Writes L.npy: float32 (N,) the loss of each step (before its update),
E.safetensors (with --ema-decay): the moving average's state_dict, ema.module of
torch.optim.swa_utils.AveragedModel(model, avg_fn=D * avg + (1 - D) * w,
use_buffers=True) as torchvision's ExponentialMovingAverage makes it (its
num_batches_tracked an average of counts, truncated), G.npy (with --clip-grad-norm): float64 (N,) each step's total gradient norm
before clipping, as clip_grad_norm_ returns it, and S.safetensors: the final
full state_dict (parameters and running stats as F32, num_batches_tracked as
I64) with arch/in_channels/num_classes metadata, loadable by rn_model_load. Exit status 0 on success, 1 on error.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from grad_ref import load_input, load_labels, load_model  # noqa: E402
from rn_models import build_model, metadata, randomize  # noqa: E402
from st_io import load_safetensors, save_safetensors  # noqa: E402


def param_groups(model, a):
    """Every parameter, or with --norm-weight-decay the BatchNorm modules' apart."""
    if a.norm_weight_decay is None:
        return model.parameters()
    norm, rest = [], []
    for module in model.modules():
        own = list(module.parameters(recurse=False))
        (norm if isinstance(module, nn.modules.batchnorm._BatchNorm) else rest).extend(own)
    return [{"params": norm, "weight_decay": a.norm_weight_decay},
            {"params": rest, "weight_decay": a.weight_decay}]


def make_optimizer(model, a):
    groups = param_groups(model, a)
    if a.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=a.lr, momentum=a.momentum,
                               weight_decay=a.weight_decay, nesterov=a.nesterov, dampening=0,
                               foreach=False)
    return torch.optim.AdamW(groups, lr=a.lr, betas=(a.beta1, a.beta2), eps=a.eps,
                             weight_decay=a.weight_decay, foreach=False)


def train(model, batches, a, num_classes):
    """batches: list of (x path, y path). Returns the per-step losses, gradient norms before
    clipping (none without --clip-grad-norm) and the moving average (None without --ema-decay)."""
    dtype = torch.float64 if a.double else torch.float32
    model.to(dtype).train()
    opt = make_optimizer(model, a)
    crit = nn.CrossEntropyLoss(label_smoothing=a.label_smoothing)
    cin = next(model.parameters()).shape[1]
    losses, norms = [], []
    ema = None
    if a.ema_decay:  # torchvision's references/classification/utils.ExponentialMovingAverage
        ema = torch.optim.swa_utils.AveragedModel(
            model, avg_fn=lambda avg, w, n: a.ema_decay * avg + (1 - a.ema_decay) * w, use_buffers=True)
    mixes = read_mixes(a.mix_log) if a.mix_log else {}
    for t, (xp, yp) in enumerate(batches):
        x = load_input(xp).to(dtype)
        if x.shape[1] != cin:
            raise ValueError("%s: %d channels, the model takes %d" % (xp, x.shape[1], cin))
        y = load_labels(yp, x.shape[0], num_classes)
        if t + 1 in mixes:
            x, y = mix_batch(x, y, mixes[t + 1], num_classes)
        opt.zero_grad(set_to_none=True)
        loss = crit(model(x), y)
        loss.backward()
        if a.clip_grad_norm:  # torchvision's references/classification/train.py --clip-grad-norm
            norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), a.clip_grad_norm)))
        opt.step()
        if ema is not None and t % a.ema_epoch_steps % a.ema_every == 0:  # torchvision: i % steps
            ema.update_parameters(model)
        losses.append(float(loss))
        if not np.isfinite(losses[-1]):
            raise ValueError("step %d: loss is %r" % (t, losses[-1]))
    return losses, norms, ema


def read_mixes(path):
    """{step: (kind, lam, box)} from the step lines of a resnet.c training log."""
    out = {}
    for line in open(path):
        rec = json.loads(line)
        if "step" in rec and "mix" in rec:
            out[rec["step"]] = (rec["mix"], rec["mix_lam"], rec.get("mix_box"))
    return out


def mix_batch(x, y, mix, num_classes):
    """torchvision 0.14's references/classification/transforms.py RandomMixup / RandomCutmix
    forward with the given lam (and, for CutMix, the box it drew)."""
    kind, lam, box = mix
    target = nn.functional.one_hot(y, num_classes=num_classes).to(dtype=x.dtype)
    batch_rolled, target_rolled = x.roll(1, 0), target.roll(1, 0)
    if kind == "mixup":
        batch_rolled.mul_(1.0 - lam)
        x = x.mul(lam).add_(batch_rolled)
    else:
        y1, y2, x1, x2 = box
        x = x.clone()
        x[:, :, y1:y2, x1:x2] = batch_rolled[:, :, y1:y2, x1:x2]
    target_rolled.mul_(1.0 - lam)
    return x, target.mul_(lam).add_(target_rolled)


def batch_files(d, n):
    out = []
    for t in range(n):
        xp, yp = (os.path.join(d, "%s_%03d.npy" % (k, t)) for k in ("x", "y"))
        for p in (xp, yp):
            if not os.path.isfile(p):
                raise ValueError("%s: missing (need %d batches)" % (p, n))
        out.append((xp, yp))
    return out


def write_state(path, model, arch, cin, k):
    state = {n: (t.float() if t.is_floating_point() else t) for n, t in model.state_dict().items()}
    save_safetensors(path, state, metadata(arch, cin, k))


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch")
    ap.add_argument("--weights")
    ap.add_argument("--batches")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--nesterov", action="store_true")
    ap.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.999)
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--norm-weight-decay", type=float, default=None)
    ap.add_argument("--double", action="store_true", help="compute in float64")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clip-grad-norm", type=float, default=0.0)
    ap.add_argument("--out-grad-norms")
    ap.add_argument("--ema-decay", type=float, default=0.0)
    ap.add_argument("--ema-every", type=int, default=1)
    ap.add_argument("--ema-epoch-steps", type=int, default=1 << 62)
    ap.add_argument("--out-ema")
    ap.add_argument("--mix-log")
    ap.add_argument("--out-losses")
    ap.add_argument("--out-state")
    ap.add_argument("--selftest", action="store_true")
    a = ap.parse_args(argv)
    if not a.selftest:
        for opt in ("weights", "batches", "steps", "lr", "out_losses", "out_state"):
            if getattr(a, opt) is None:
                ap.error("--%s is required" % opt.replace("_", "-"))
        if a.steps < 1:
            ap.error("--steps must be at least 1")
        if a.nesterov and a.optimizer == "sgd" and a.momentum <= 0:
            ap.error("--nesterov needs --momentum > 0")
    return a


def main(argv=None):
    a = parse(argv)
    torch.set_num_threads(a.threads)
    if a.selftest:
        return selftest()
    try:
        model, arch, cin, k = load_model(a.weights, a.arch)
        losses, norms, ema = train(model, batch_files(a.batches, a.steps), a, k)
        if ema is not None and a.out_ema:
            write_state(a.out_ema, ema.module, arch, cin, k)
        np.save(a.out_losses, np.asarray(losses, dtype=np.float32))
        if a.out_grad_norms:
            np.save(a.out_grad_norms, np.asarray(norms, dtype=np.float64))
        write_state(a.out_state, model, arch, cin, k)
    except (ValueError, OSError, RuntimeError) as e:
        print("train_ref: %s" % e, file=sys.stderr)
        return 1
    print("train_ref: %s, %d %s steps, loss %.6g -> %.6g" % (arch, a.steps, a.optimizer,
                                                            losses[0], losses[-1]))
    return 0


# ---------------------------------------------------------------------------
# Self-test: the CLI against a hand-written loop with the update written out
# ---------------------------------------------------------------------------

def manual_run(model, batches, lr, mom, wd, nesterov):
    """SGD by hand (buf = g first, then mom*buf + g), float64."""
    model.double().train()
    bufs = {}
    losses = []
    for x, y in batches:
        model.zero_grad(set_to_none=True)
        loss = nn.CrossEntropyLoss()(model(x.double()), y)
        loss.backward()
        losses.append(float(loss))
        with torch.no_grad():
            for n, p in model.named_parameters():
                g = p.grad + wd * p
                if mom:
                    bufs[n] = g.clone() if n not in bufs else mom * bufs[n] + g
                    g = g + mom * bufs[n] if nesterov else bufs[n]
                p -= lr * g
    return losses


def selftest():
    import copy
    import tempfile
    arch, cin, k, bsz, steps = "resnet18", 1, 10, 4, 3
    model = randomize(build_model(arch, cin, k), seed=7)
    g = torch.Generator().manual_seed(8)
    batches = [(torch.randn(bsz, cin, 32, 32, generator=g), torch.randint(0, k, (bsz,), generator=g))
               for _ in range(steps)]
    with tempfile.TemporaryDirectory() as d:
        w = os.path.join(d, "w.safetensors")
        save_safetensors(w, model.state_dict(), metadata(arch, cin, k))
        for t, (x, y) in enumerate(batches):
            np.save(os.path.join(d, "x_%03d.npy" % t), x.numpy())
            np.save(os.path.join(d, "y_%03d.npy" % t), y.numpy().astype(np.float32))
        lp, sp = os.path.join(d, "l.npy"), os.path.join(d, "s.safetensors")
        common = ["--weights", w, "--batches", d, "--steps", str(steps), "--out-losses", lp,
                  "--out-state", sp]

        # SGD, nesterov, weight decay, float64: matches the hand-written loop
        assert main(common + ["--lr", "0.1", "--momentum", "0.9", "--weight-decay", "0.01",
                              "--nesterov", "--double"]) == 0
        losses = np.load(lp)
        state, meta = load_safetensors(sp)
        ref = copy.deepcopy(model)
        ref_losses = manual_run(ref, batches, 0.1, 0.9, 0.01, True)
        assert losses.shape == (steps,) and losses.dtype == np.float32
        assert np.allclose(losses, ref_losses, rtol=1e-6), (losses, ref_losses)
        assert meta == metadata(arch, cin, k)
        ref_state = ref.state_dict()
        assert sorted(state) == sorted(ref_state)
        for n, t in state.items():
            r = ref_state[n]
            if n.endswith("num_batches_tracked"):
                assert t.dtype == torch.int64 and int(t) == int(model.state_dict()[n]) + steps
            else:
                assert t.dtype == torch.float32
                err = float((t.double() - r).abs().max()) / max(float(r.abs().max()), 1e-30)
                assert err < 1e-6, (n, err)
        # the state loads back strictly
        build_model(arch, cin, k).load_state_dict(state, strict=True)

        # float32 SGD stays close to float64; AdamW runs and lowers the loss
        assert main(common + ["--lr", "0.1", "--momentum", "0.9", "--weight-decay", "0.01",
                              "--nesterov"]) == 0
        assert np.allclose(np.load(lp), ref_losses, rtol=1e-3)
        assert main(common + ["--lr", "1e-3", "--optimizer", "adamw", "--weight-decay", "0.05"]) == 0
        assert main(common[:4] + ["--steps", str(steps + 1)] + common[6:] + ["--lr", "0.1"]) == 1
    print("train_ref selftest OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
