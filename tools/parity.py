#!/usr/bin/python3
"""Parity test: resnet.c's `resnet forward` against PyTorch.

    /usr/bin/python3 tools/parity.py --resnet build/resnet [--quick] [--only ARCH]
    /usr/bin/python3 tools/parity.py --check-load FILE [ARCH IN_CH CLASSES] [--compare REF]

Forward parity: for each case, builds the PyTorch model (tools/rn_models.py),
randomizes it (random weights, non-trivial BN statistics), writes the weights
(safetensors, metadata arch/in_channels/num_classes) and a random float32
N,C,H,W input (.npy) to a temp dir, runs

    RESNET forward --arch A --weights W --input X.npy --output Y.npy --mode M --threads T

and compares Y with PyTorch in the same mode (eval: running stats, train:
batch stats), computed in float64 so the error measured is resnet.c's:
rel = max|y - y_ref| / max|y_ref| must be <= --tol (1e-4). The same pass also writes the
features (`--features F.npy`: the classifier's input), compared likewise with what PyTorch's
fc receives (a forward pre-hook on model.fc); and a second run writes one stage's maps
(`--feature-layer`: stem, layer1 .. layer4 in turn over the cases), compared with that module's
output (a forward hook).
Ends with `parity: N passed, M failed`; exit status 1 if M > 0.

--check-load: loads a safetensors file (e.g. written by rn_model_save) into
the PyTorch model with load_state_dict(strict=True); ARCH/IN_CH/CLASSES
default to the file's metadata. --compare REF also requires every tensor to
equal REF's. Exit status 0 when it loads (and matches), else 1.
"""
import argparse
import copy
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rn_models import ARCHS, build_model, metadata, randomize  # noqa: E402
from st_io import load_safetensors, save_safetensors  # noqa: E402

# (arch, mode, (H, W), in_channels, num_classes, batch). Per arch: both modes,
# 224 and a small size, in_channels 1 and 3, 10 and 1000 classes.
CASES = [
    ("d2l_resnet18", "eval", (224, 224), 1, 10, 2),
    ("d2l_resnet18", "train", (32, 32), 1, 10, 4),
    ("d2l_resnet18", "eval", (96, 96), 1, 10, 4),        # the bundled sample's shape
    ("d2l_resnet18", "train", (224, 224), 3, 1000, 2),
    ("resnet18", "eval", (224, 224), 3, 1000, 2),
    ("resnet18", "train", (64, 64), 1, 10, 4),
    ("resnet18", "eval", (64, 48), 3, 10, 3),            # non-square
    ("resnet18", "eval", (57, 57), 1, 1000, 1),          # odd size, batch 1
    ("resnet34", "eval", (64, 64), 1, 1000, 4),
    ("resnet34", "train", (224, 224), 3, 10, 2),
    ("resnet50", "eval", (224, 224), 3, 1000, 2),
    ("resnet50", "train", (32, 32), 1, 10, 4),
    ("resnet101", "eval", (64, 64), 3, 10, 4),
    ("resnet101", "train", (224, 224), 1, 1000, 2),
    ("resnet152", "eval", (224, 224), 3, 1000, 2),
    ("resnet152", "train", (64, 64), 1, 10, 4),
    # the wider family (grouped convolutions for ResNeXt)
    ("wide_resnet50_2", "eval", (224, 224), 3, 1000, 1),
    ("wide_resnet50_2", "train", (64, 64), 1, 10, 4),
    ("wide_resnet101_2", "eval", (64, 64), 3, 10, 2),
    ("resnext50_32x4d", "eval", (224, 224), 3, 1000, 2),
    ("resnext50_32x4d", "train", (64, 64), 1, 10, 4),
    ("resnext101_32x8d", "train", (64, 48), 3, 1000, 2),
    # the CIFAR stem (3x3 stride-1 conv, no max-pool)
    ("d2l_resnet18", "train", (28, 28), 1, 10, 4, "cifar"),
    ("resnet18", "eval", (32, 32), 3, 10, 2, "cifar"),
    ("resnet50", "train", (32, 32), 3, 100, 4, "cifar"),
]

QUICK = [
    ("d2l_resnet18", "eval", (96, 96), 1, 10, 4),
    ("d2l_resnet18", "train", (32, 32), 1, 10, 4),
    ("resnet18", "eval", (224, 224), 3, 1000, 1),
    ("resnet50", "train", (32, 32), 3, 1000, 4),
    ("resnet152", "eval", (64, 64), 1, 10, 2),
]


def run_case(idx, case, args, tmp):
    arch, mode, (h, w), cin, k, n = case[:6]
    stem = case[6] if len(case) > 6 else "imagenet"
    seed = 1000 + idx
    model = build_model(arch, cin, k, stem=stem)
    randomize(model, seed=seed)
    wpath = os.path.join(tmp, "w%d.safetensors" % idx)
    xpath = os.path.join(tmp, "x%d.npy" % idx)
    ypath = os.path.join(tmp, "y%d.npy" % idx)
    fpath = os.path.join(tmp, "f%d.npy" % idx)
    save_safetensors(wpath, model.state_dict(), metadata(arch, cin, k))
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(n, cin, h, w, generator=g)
    np.save(xpath, x.numpy().astype(np.float32))

    cmd = [args.resnet, "forward", "--arch", arch, "--weights", wpath, "--input", xpath,
           "--output", ypath, "--features", fpath, "--mode", mode, "--threads", str(args.threads)]
    t0 = time.time()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=args.timeout)
        rc, err = p.returncode, p.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        rc, err = -1, "timed out after %ds" % args.timeout
    t_cli = time.time() - t0

    t0 = time.time()
    ref = copy.deepcopy(model)
    if args.ref_dtype == "float64":
        ref = ref.double()
    ref.train(mode == "train")
    seen = []
    hook = ref.fc.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].detach()))
    stage = idx % 5
    stage_name = ("stem", "layer1", "layer2", "layer3", "layer4")[stage]
    d2l = arch == "d2l_resnet18"
    module = (["conv.block"] + ["conv.resnet_block%d" % k for k in range(1, 5)] if d2l else
              ["maxpool"] + ["layer%d" % k for k in range(1, 5)])[stage]
    maps = []
    hook2 = dict(ref.named_modules())[module].register_forward_hook(
        lambda mod, inp, out: maps.append(out.detach()))
    with torch.no_grad():
        y_ref = ref(x.to(next(ref.parameters()).dtype)).double().numpy()
    hook.remove()
    hook2.remove()
    f_ref = seen[0].double().numpy()
    s_ref = maps[0].double().numpy()
    t_ref = time.time() - t0
    ymax = float(np.abs(y_ref).max())

    msg = ""
    rel = frel = srel = float("nan")
    if rc != 0:
        msg = "CLI exit status %d\n  command: %s\n  stderr: %s" % (
            rc, " ".join(cmd), err.strip().replace("\n", "\n  stderr: "))
    else:
        try:
            y = np.load(ypath)
        except Exception as e:  # noqa: BLE001
            y = None
            msg = "cannot read output %s: %s" % (ypath, e)
        if y is not None:
            if tuple(y.shape) != tuple(y_ref.shape):
                msg = "output shape %s, expected %s" % (tuple(y.shape), tuple(y_ref.shape))
            else:
                rel = float(np.abs(y.astype(np.float64) - y_ref).max()) / ymax
        if not msg:
            try:
                f = np.load(fpath)
            except Exception as e:  # noqa: BLE001
                f = None
                msg = "cannot read features %s: %s" % (fpath, e)
            if f is not None and tuple(f.shape) != tuple(f_ref.shape):
                msg = "features shape %s, expected %s" % (tuple(f.shape), tuple(f_ref.shape))
            elif f is not None:
                frel = float(np.abs(f.astype(np.float64) - f_ref).max()) / float(np.abs(f_ref).max())
        spath = os.path.join(tmp, "s%d.npy" % idx)
        scmd = [args.resnet, "forward", "--arch", arch, "--weights", wpath, "--input", xpath,
                "--features", spath, "--feature-layer", stage_name, "--mode", mode,
                "--threads", str(args.threads)]
        p = subprocess.run(scmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=args.timeout)
        if not msg and p.returncode != 0:
            msg = "--feature-layer %s: exit status %d: %s" % (stage_name, p.returncode,
                                                              p.stderr.decode("utf-8", "replace").strip())
        elif not msg:
            s_maps = np.load(spath)
            if tuple(s_maps.shape) != tuple(s_ref.shape):
                msg = "%s maps shape %s, expected %s" % (stage_name, tuple(s_maps.shape), tuple(s_ref.shape))
            else:
                srel = float(np.abs(s_maps.astype(np.float64) - s_ref).max()) / float(np.abs(s_ref).max())
    ok = not msg and rel <= args.tol and frel <= args.tol and srel <= args.tol
    extra = ""
    if args.torch32:
        m32 = copy.deepcopy(model).train(mode == "train")
        with torch.no_grad():
            y32 = m32(x).double().numpy()
        extra = "  torch32 rel=%.2e" % (np.abs(y32 - y_ref).max() / ymax)
    print("%-12s %-5s %3dx%-3d in=%d classes=%-4d batch=%d%s  rel=%.2e  features %.2e  %s %.2e  max|y_ref|=%.3g  %s"
          "  (cli %.1fs, ref %.1fs)%s" % (arch, mode, h, w, cin, k, n, " stem=cifar" if stem == "cifar" else "",
                                          rel, frel, stage_name, srel, ymax,
                                          "PASS" if ok else "FAIL", t_cli, t_ref, extra),
          flush=True)
    if msg:
        print("  " + msg, flush=True)
    return ok


def forward_parity(args):
    cases = QUICK if args.quick else CASES
    if args.only:
        if args.only not in ARCHS:
            print("unknown arch %s (known: %s)" % (args.only, " ".join(ARCHS)))
            return 1
        cases = [c for c in cases if c[0] == args.only]
    if not cases:
        print("parity: no case selected (--only %s%s)" % (args.only, " --quick" if args.quick else ""))
        print("parity: 0 passed, 0 failed")
        return 1
    if not (os.path.isfile(args.resnet) and os.access(args.resnet, os.X_OK)):
        print("parity: %s not found or not executable" % args.resnet)
        print("parity: 0 passed, %d failed" % len(cases))
        return 1
    torch.set_num_threads(args.threads)
    passed = failed = 0
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="rn_parity_") as tmp:
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            tmp = args.keep
        for i, case in enumerate(cases):
            try:
                ok = run_case(i, case, args, tmp)
            except Exception as e:  # noqa: BLE001
                print("%s: error: %r" % (case, e), flush=True)
                ok = False
            passed += ok
            failed += not ok
            if not args.keep:
                for f in os.listdir(tmp):
                    os.unlink(os.path.join(tmp, f))
    print("(%.0fs)" % (time.time() - t0))
    print("parity: %d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


def check_load(args):
    rest = args.check_load
    path = rest[0]
    try:
        sd, meta = load_safetensors(path)
    except Exception as e:  # noqa: BLE001
        print("check-load: cannot read %s: %s" % (path, e))
        return 1
    if len(rest) not in (1, 4):
        print("check-load: give FILE, or FILE ARCH IN_CH CLASSES")
        return 1
    if len(rest) == 4:
        arch, cin, k = rest[1], int(rest[2]), int(rest[3])
    else:
        try:
            arch, cin, k = meta["arch"], int(meta["in_channels"]), int(meta["num_classes"])
        except (KeyError, ValueError) as e:
            print("check-load: %s: metadata lacks %s; give ARCH IN_CH CLASSES" % (path, e))
            return 1
    bad = []
    for key, want in (("arch", arch), ("in_channels", str(cin)), ("num_classes", str(k))):
        if key in meta and meta[key] != want:
            bad.append("metadata %s=%r, expected %r" % (key, meta[key], want))
    model = build_model(arch, cin, k)
    # load_state_dict alone forgives a missing num_batches_tracked (BN's
    # old-checkpoint compatibility), so compare the key sets first.
    want = set(model.state_dict())
    if set(sd) != want:
        bad.append("missing %s; unexpected %s" % (sorted(want - set(sd))[:8], sorted(set(sd) - want)[:8]))
    try:
        model.load_state_dict(sd, strict=True)
    except Exception as e:  # noqa: BLE001
        bad.append("load_state_dict(strict=True): %s" % e)
    for name, t in sd.items():
        if t.is_floating_point() and not torch.isfinite(t.float()).all():
            bad.append("%s has non-finite values" % name)
    if args.compare and not bad:
        ref, _ = load_safetensors(args.compare)
        if set(ref) != set(sd):
            bad.append("tensor names differ from %s: only in file %s, only in ref %s" % (
                args.compare, sorted(set(sd) - set(ref))[:5], sorted(set(ref) - set(sd))[:5]))
        for name in sorted(set(ref) & set(sd)):
            a, b = sd[name].double(), ref[name].double()
            if a.shape != b.shape or not torch.equal(a, b):
                d = (a - b).abs().max().item() if a.shape == b.shape else float("nan")
                bad.append("%s differs from %s (max |diff| %.3g)" % (name, args.compare, d))
    if bad:
        for b in bad[:20]:
            print("check-load: " + b)
        print("check-load: FAIL %s" % path)
        return 1
    dtypes = sorted({"%s" % t.dtype for t in sd.values()})
    print("check-load: OK %s (%s, in=%d, classes=%d, %d tensors, %s)%s" % (
        path, arch, cin, k, len(sd), "/".join(dtypes),
        ", equal to " + args.compare if args.compare else ""))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resnet", default="build/resnet", help="path of the resnet CLI")
    ap.add_argument("--quick", action="store_true", help="a small subset of the cases")
    ap.add_argument("--only", metavar="ARCH", help="only cases of this architecture")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--timeout", type=int, default=600, help="seconds per CLI run")
    ap.add_argument("--ref-dtype", choices=("float64", "float32"), default="float64")
    ap.add_argument("--torch32", action="store_true",
                    help="also print PyTorch float32's own error against the float64 reference")
    ap.add_argument("--keep", metavar="DIR", help="keep weights/inputs/outputs in DIR")
    ap.add_argument("--check-load", nargs="+", metavar="ARG",
                    help="FILE [ARCH IN_CH CLASSES]: strict-load a safetensors file")
    ap.add_argument("--compare", metavar="REF", help="with --check-load: tensors must equal REF's")
    args = ap.parse_args()
    if args.check_load:
        return check_load(args)
    return forward_parity(args)


if __name__ == "__main__":
    sys.exit(main())
