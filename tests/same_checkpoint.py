#!/usr/bin/env python3
"""same_checkpoint.py CKPT REF - exits 0 when the two checkpoints hold the same
training state: equal headers (tensors, offsets, metadata) and equal bytes in
the weights file and in the optimizer-state file beside it (CKPT.optim.safetensors),
and in the moving average of the weights (CKPT.ema.safetensors, where either has one),
the run id aside (a resumed run keeps the id of the run it continues, a run
started afresh gets its own), the wall-clock times (the run's elapsed seconds
and those of the epoch in progress), and how often and where the run logs steps and saves
(plan.log-every, plan.save-every, plan.log: a run killed between saves is resumed by one
that saves more often than its reference, to the same state). Exits 1, naming the first file that differs, if not."""
import json
import os
import sys


def same_but_run_id(a, b):
    """Whether two safetensors files hold the same header and the same bytes of
    data, the "run_id" metadata and the wall-clock times aside (also imported by
    tools/train_parity.py)."""
    def parts(path):
        raw = open(path, "rb").read()
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + n])
        for key in ("run_id", "elapsed", "tally.seconds", "plan.log-every", "plan.save-every", "plan.log"):
            header.get("__metadata__", {}).pop(key, None)
        return header, raw[8 + n:]
    return parts(a) == parts(b)


def optim(path):
    return path[:-len(".safetensors")] + ".optim.safetensors"


def ema(path):
    return path[:-len(".safetensors")] + ".ema.safetensors"


def main():
    if len(sys.argv) != 3 or not all(a.endswith(".safetensors") for a in sys.argv[1:]):
        print("usage: same_checkpoint.py CKPT.safetensors REF.safetensors", file=sys.stderr)
        return 2
    a, b = sys.argv[1], sys.argv[2]
    pairs = [(a, b), (optim(a), optim(b))]
    if os.path.exists(ema(a)) or os.path.exists(ema(b)):
        pairs.append((ema(a), ema(b)))
    for x, y in pairs:
        if not (os.path.exists(x) and os.path.exists(y)) or not same_but_run_id(x, y):
            print(f"same_checkpoint: {x} and {y} differ", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
