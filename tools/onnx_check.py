#!/usr/bin/python3
"""`resnet export` checked by the ONNX checker and ONNX Runtime, for every architecture.

    /usr/bin/python3 tools/onnx_check.py --resnet build/resnet [--arch A ...] [--tol 1e-4]

For each case (the ten architectures with the ImageNet stem at 64x64, resnet18 and
d2l_resnet18 with the CIFAR stem at 32x32), with random weights and non-trivial BatchNorm
statistics (rn_models.randomize), saved as safetensors with class names and a normalisation:

  1. `resnet forward` gives the reference logits for a batch of 1 and a batch of 3;
  2. `resnet export` writes the model twice: BatchNorm kept, dynamic batch, opset 17; and
     --fold-bn --batch 3 --opset 13;
  3. Debian's python3-onnx checker (onnx.checker.check_model, full_check: with shape
     inference) accepts both files, and their metadata_props hold the class names,
     image_size, mean and std;
  4. ONNX Runtime (tools/onnx_run.js, onnxruntime-node) gives the same logits as step 1:
     rel = max|y - y_ref| / max|y_ref| <= tol (1e-4) for batch 1 and 3 (the dynamic file)
     and batch 3 (the fixed one);
  5. `resnet forward --weights FILE.onnx` reads both back: the same logits, bit for bit
     from the file with BatchNorm kept, within tol from the folded one.

Exits 1 if any check fails; a missing onnx module or ONNX Runtime is a failure, not a skip.
"""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rn_models import ARCHS, build_model, randomize  # noqa: E402
from st_io import save_safetensors  # noqa: E402

CLASSES = ["class %d" % i for i in range(9)] + ["a name, with \"quotes\""]
NORMALIZE = "0.485,0.456,0.406:0.229,0.224,0.225"


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd[:2]), p.returncode, (p.stderr or p.stdout).strip()))
    return p.stdout


def rel(y, ref):
    return float(np.abs(y.astype(np.float64) - ref).max() / max(np.abs(ref).max(), 1e-30))


def check_file(path, size):
    import onnx
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    meta = {p.key: p.value for p in m.metadata_props}
    want = {"class_names": "\n".join(CLASSES), "image_size": str(size), "mean": "0.485,0.456,0.406",
            "std": "0.229,0.224,0.225"}
    for k, v in want.items():
        if meta.get(k) != v:
            raise RuntimeError("%s: metadata_props %r is %r, expected %r" % (path, k, meta.get(k), v))
    return len(m.graph.node)


def run_case(args, arch, stem, tmp):
    size = 32 if stem == "cifar" else 64
    name = arch + ("_cifar" if stem == "cifar" else "")
    model = randomize(build_model(arch, 3, len(CLASSES), stem), seed=7, calib_size=size)
    model.eval()
    st = os.path.join(tmp, name + ".safetensors")
    sd = model.state_dict()
    save_safetensors(st, sd, {"arch": arch, "stem": stem, "in_channels": "3",
                              "num_classes": str(len(CLASSES)), "image_size": str(size),
                              "normalize": NORMALIZE, "class_names": "\n".join(CLASSES)})
    g = torch.Generator().manual_seed(11)
    xs, ys = {}, {}
    for b in (1, 3):
        xs[b] = os.path.join(tmp, "x%d.npy" % b)
        ys[b] = os.path.join(tmp, "%s_y%d.npy" % (name, b))
        np.save(xs[b], torch.randn(b, 3, size, size, generator=g).numpy())
        run([args.resnet, "forward", "--weights", st, "--input", xs[b], "--output", ys[b]])
    dyn = os.path.join(tmp, name + ".onnx")
    fold = os.path.join(tmp, name + "_folded.onnx")
    run([args.resnet, "export", st, dyn])
    run([args.resnet, "export", "--fold-bn", "--batch", "3", "--opset", "13", st, fold])
    nodes = (check_file(dyn, size), check_file(fold, size))
    lines = []
    for f, batches in ((dyn, (1, 3)), (fold, (3,))):
        pairs = [p for b in batches for p in (xs[b], ys[b])]
        p = subprocess.run(["node", os.path.join(HERE, "onnx_run.js"), f] + pairs + ["--tol", str(args.tol)],
                           capture_output=True, text=True)
        out = (p.stdout + p.stderr).strip()
        if p.returncode != 0:
            raise RuntimeError("ONNX Runtime: " + out.replace("\n", "; "))
        lines += [line.split(" rel ")[1].split(" ")[0] for line in out.splitlines()]
    back = os.path.join(tmp, name + "_back.npy")
    ref3 = np.load(ys[3])
    run([args.resnet, "forward", "--weights", dyn, "--input", xs[3], "--output", back])
    if not np.array_equal(np.load(back), ref3):
        raise RuntimeError("%s read back: logits differ (rel %.2e)" % (dyn, rel(np.load(back), ref3)))
    run([args.resnet, "forward", "--weights", fold, "--input", xs[3], "--output", back])
    r_fold = rel(np.load(back), ref3)
    if r_fold > args.tol:
        raise RuntimeError("%s read back: rel %.2e > %g" % (fold, r_fold, args.tol))
    for f in (st, dyn, fold):
        os.remove(f)
    return "nodes %d/%d  ORT rel b1 %s b3 %s folded-b3 %s  read back: exact, folded %.1e" % (
        nodes[0], nodes[1], lines[0], lines[1], lines[2], r_fold)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resnet", default="build/resnet")
    ap.add_argument("--arch", nargs="*", default=None, help="cases to run (default: all)")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    torch.set_num_threads(2)
    try:
        import onnx  # noqa: F401
    except ImportError:
        print("onnx_check: the onnx Python module is missing (Debian python3-onnx; tools/install_deps.sh)")
        return 1
    cases = [(a, "imagenet") for a in ARCHS] + [("resnet18", "cifar"), ("d2l_resnet18", "cifar")]
    if args.arch:
        cases = [c for c in cases if c[0] in args.arch or "%s_%s" % c in args.arch]
    failed = 0
    with tempfile.TemporaryDirectory(prefix="rn_onnx_") as tmp:
        for arch, stem in cases:
            try:
                msg = run_case(args, arch, stem, tmp)
                print("%-18s %-8s ok    %s" % (arch, stem, msg), flush=True)
            except Exception as e:  # noqa: BLE001 - report every case
                failed += 1
                print("%-18s %-8s FAIL  %s" % (arch, stem, e), flush=True)
    print("onnx_check: %d of %d cases passed" % (len(cases) - failed, len(cases)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
