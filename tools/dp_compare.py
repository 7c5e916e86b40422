"""Compares two `resnet train` runs for tests/mpi.sh: the checkpoints (model
and optimizer state, every tensor) and the per-step losses of the logs
(--log-every 1).

    dp_compare.py GOT REF [--tol T | --exact] [--steps N] [--noise RUN ...] [--beyond]

GOT and REF are checkpoint paths (X.safetensors; X.optim.safetensors and
X.log.jsonl beside them). --tol: every tensor within T relative (max abs
error / max |ref| per tensor) and every step's loss within T relative;
--exact: the same bits. --steps: both logs must hold N step lines (the last
N of each are compared). Exits non-zero on a mismatch, printing the worst.

--noise RUN (repeatable): runs of REF's own command with a rounding-level
perturbation (its --lr changed by a few ulps). Each tensor's and each step
loss's bound becomes max(T, 2 x the largest difference of a noise run from
REF): where training amplifies rounding (ReLU kinks, BatchNorm over a few
values), no two summation orders agree closer than REF agrees with itself
perturbed, and a fixed T would only measure luck. --beyond inverts the
verdict for a check that the bounds have teeth: GOT, a different
computation, must exceed the bound of some trainable tensor (BatchNorm
running statistics are not counted).
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


def rel_err(a, b):
    """max |a - b| / max |b|"""
    a, b = np.asarray(a).astype(np.float64), np.asarray(b).astype(np.float64)
    if not b.size:
        return 0.0
    scale = np.abs(b).max()
    return float(np.abs(a - b).max() / (scale if scale > 0 else 1.0))


def compare_tensors(got_path, ref_path, tol, exact, noise_paths=(), beyond=False):
    got, _ = load_safetensors(got_path)
    ref, _ = load_safetensors(ref_path)
    noise = [load_safetensors(p)[0] for p in noise_paths]
    if sorted(got) != sorted(ref):
        return False, "tensor names differ: %s" % sorted(set(got) ^ set(ref))
    worst, worst_name, worst_err, worst_bound = -1.0, None, 0.0, tol
    for name in ref:
        a, b = np.asarray(got[name]), np.asarray(ref[name])
        if a.shape != b.shape:
            return False, "%s: shape %s, reference %s" % (name, a.shape, b.shape)
        if exact:
            if a.tobytes() != b.tobytes():
                return False, "%s: not the same bits" % name
            continue
        if beyond and "running_" in name:
            continue
        bound = max([tol] + [2.0 * rel_err(n[name], b) for n in noise])
        err = rel_err(a, b)
        if err / bound > worst:
            worst, worst_name, worst_err, worst_bound = err / bound, name, err, bound
    if exact:
        return True, "%d tensors, the same bits" % len(ref)
    what = "%d tensors, %s %s at %.2e relative (bound %.2e)" % (
        len(ref), "farthest beyond its bound:" if beyond else "closest to its bound:", worst_name, worst_err,
        worst_bound)
    return (worst > 1.0) if beyond else (worst <= 1.0), what


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("got")
    ap.add_argument("ref")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--exact", action="store_true")
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--noise", action="append", default=[], metavar="RUN")
    ap.add_argument("--beyond", action="store_true")
    a = ap.parse_args()
    if a.beyond:
        good = False
        for suffix in (".safetensors", ".optim.safetensors"):
            beyond, what = compare_tensors(stem(a.got) + suffix, stem(a.ref) + suffix, a.tol, False,
                                           [stem(n) + suffix for n in a.noise], beyond=True)
            print("%s %s: %s" % ("beyond" if beyond else "within", suffix[1:], what))
            good |= beyond
        print("%s some tensor beyond its bound" % ("ok " if good else "BAD no"))
        return 0 if good else 1
    ok = True
    for suffix in (".safetensors", ".optim.safetensors"):
        good, what = compare_tensors(stem(a.got) + suffix, stem(a.ref) + suffix, a.tol, a.exact,
                                     [stem(n) + suffix for n in a.noise])
        print("%s %s: %s" % ("ok " if good else "BAD", suffix[1:], what))
        ok &= good
    got, ref = step_losses(stem(a.got) + ".log.jsonl"), step_losses(stem(a.ref) + ".log.jsonl")
    noise = [dict(step_losses(stem(n) + ".log.jsonl")) for n in a.noise]
    if a.steps:
        if len(got) < a.steps or len(ref) < a.steps:
            print("BAD losses: %d and %d step lines, expected %d" % (len(got), len(ref), a.steps))
            return 1
        got, ref = got[-a.steps:], ref[-a.steps:]
    worst, worst_err, worst_bound = -1.0, 0.0, a.tol
    for (sg, lg), (sr, lr) in zip(got, ref):
        if sg != sr:
            print("BAD losses: step %d against step %d" % (sg, sr))
            return 1
        if a.exact:
            worst_err = max(worst_err, 0.0 if lg == lr else float("inf"))
            continue
        bound = max([a.tol] + [2.0 * abs(n[sr] - lr) / max(abs(lr), 1e-30) for n in noise if sr in n])
        err = abs(lg - lr) / max(abs(lr), 1e-30)
        if err / bound > worst:
            worst, worst_err, worst_bound = err / bound, err, bound
    good = worst_err == 0.0 if a.exact else worst <= 1.0
    print("%s losses: %d steps, worst %.2e relative%s" % (
        "ok " if good else "BAD", min(len(got), len(ref)), worst_err,
        "" if a.exact else " (bound %.2e)" % worst_bound))
    ok &= good
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
