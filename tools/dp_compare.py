"""Compares two `resnet train` runs for tests/mpi.sh: the checkpoints (model
and optimizer state, every tensor) and the per-step losses of the logs
(--log-every 1).

    dp_compare.py GOT REF [--tol T | --exact] [--steps N]

GOT and REF are checkpoint paths (X.safetensors; X.optim.safetensors and
X.log.jsonl beside them). --tol: every tensor within T relative (max abs
error / max |ref| per tensor) and every step's loss within T relative;
--exact: the same bits. --steps: both logs must hold N step lines (the last
N of each are compared). Exits non-zero on a mismatch, printing the worst.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st_io import load_safetensors  # noqa: E402


def stem(path):
    return path[:-len(".safetensors")] if path.endswith(".safetensors") else path


def step_losses(log):
    with open(log) as f:
        rows = [json.loads(line) for line in f if line.startswith('{"step"')]
    return [(r["step"], r["loss"]) for r in rows]


def compare_tensors(got_path, ref_path, tol, exact):
    got, _ = load_safetensors(got_path)
    ref, _ = load_safetensors(ref_path)
    if sorted(got) != sorted(ref):
        return False, "tensor names differ: %s" % sorted(set(got) ^ set(ref))
    worst, worst_name = 0.0, None
    for name in ref:
        a, b = np.asarray(got[name]), np.asarray(ref[name])
        if a.shape != b.shape:
            return False, "%s: shape %s, reference %s" % (name, a.shape, b.shape)
        if exact:
            if a.tobytes() != b.tobytes():
                return False, "%s: not the same bits" % name
            continue
        a, b = a.astype(np.float64), b.astype(np.float64)
        scale = np.abs(b).max() if b.size else 0.0
        err = np.abs(a - b).max() / (scale if scale > 0 else 1.0) if b.size else 0.0
        if err > worst:
            worst, worst_name = err, name
    if exact:
        return True, "%d tensors, the same bits" % len(ref)
    return worst <= tol, "%d tensors, worst %s at %.2e relative" % (len(ref), worst_name, worst)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("got")
    ap.add_argument("ref")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--exact", action="store_true")
    ap.add_argument("--steps", type=int, default=0)
    a = ap.parse_args()
    ok = True
    for suffix in (".safetensors", ".optim.safetensors"):
        good, what = compare_tensors(stem(a.got) + suffix, stem(a.ref) + suffix, a.tol, a.exact)
        print("%s %s: %s" % ("ok " if good else "BAD", suffix[1:], what))
        ok &= good
    got, ref = step_losses(stem(a.got) + ".log.jsonl"), step_losses(stem(a.ref) + ".log.jsonl")
    if a.steps:
        if len(got) < a.steps or len(ref) < a.steps:
            print("BAD losses: %d and %d step lines, expected %d" % (len(got), len(ref), a.steps))
            return 1
        got, ref = got[-a.steps:], ref[-a.steps:]
    worst = 0.0
    for (sg, lg), (sr, lr) in zip(got, ref):
        if sg != sr:
            print("BAD losses: step %d against step %d" % (sg, sr))
            return 1
        err = 0.0 if lg == lr else (float("inf") if a.exact else abs(lg - lr) / max(abs(lr), 1e-30))
        worst = max(worst, err)
    good = worst <= (0.0 if a.exact else a.tol)
    print("%s losses: %d steps, worst %.2e relative" % ("ok " if good else "BAD", min(len(got), len(ref)), worst))
    ok &= good
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
