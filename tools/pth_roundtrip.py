#!/usr/bin/python3
"""PyTorch checkpoints of every architecture through resnet.c and back.

    /usr/bin/python3 tools/pth_roundtrip.py --resnet build/resnet

For each of the ten architectures: a torchvision (or D2L) model with random
weights is saved with torch.save(model.state_dict()) (every third one wrapped
as {"state_dict": ..., "epoch": 1}, as training scripts do), once in the zip
format and once in the legacy format (_use_new_zipfile_serialization=False);
`resnet convert` turns each into safetensors; every tensor of the result must
be bit-identical to PyTorch's (names, shapes, values, num_batches_tracked),
and the result must load into the PyTorch model with
load_state_dict(strict=True).
Ends with `pth_roundtrip: N passed, M failed`.
"""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

from rn_models import ARCHS, build_model  # noqa: E402
from st_io import load_safetensors  # noqa: E402


def check_one(resnet, tmp, arch, in_ch, classes, sd, obj, legacy):
    """Saves obj, converts it, compares with sd; returns (ok, problems)."""
    pth, out = os.path.join(tmp, arch + ".pth"), os.path.join(tmp, arch + ".safetensors")
    torch.save(obj, pth, _use_new_zipfile_serialization=not legacy)
    p = subprocess.run([resnet, "convert", pth, out], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    problems = []
    if p.returncode != 0:
        problems.append("convert failed: " + p.stderr.strip())
    else:
        got, _ = load_safetensors(out)
        if set(got) != set(sd):
            problems.append("names differ: %s" % sorted(set(got) ^ set(sd))[:4])
        for k, v in sd.items():
            if k in got and (got[k].shape != v.shape or not torch.equal(got[k], v.to(got[k].dtype))
                             or got[k].dtype != v.dtype):
                problems.append("tensor %s differs" % k)
                break
        try:
            build_model(arch, in_ch, classes).load_state_dict(got, strict=True)
        except Exception as e:  # noqa: BLE001
            problems.append("strict load failed: %s" % str(e)[:200])
    for f in (pth, out):
        if os.path.exists(f):
            os.remove(f)
    return not problems, problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--resnet", default="build/resnet")
    args = ap.parse_args()
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, arch in enumerate(ARCHS):
            torch.manual_seed(i)
            in_ch, classes = (1, 10) if i % 2 else (3, 1000)
            model = build_model(arch, in_ch, classes)
            for name, buf in model.named_buffers():   # non-trivial statistics and counters
                if name.endswith("running_mean"):
                    buf.normal_(0, 0.1)
                elif name.endswith("running_var"):
                    buf.uniform_(0.5, 2.0)
                elif name.endswith("num_batches_tracked"):
                    buf.fill_(1000 + i)
            sd = model.state_dict()
            obj = {"state_dict": sd, "epoch": 1} if i % 3 == 0 else sd
            for legacy in (False, True):
                ok, problems = check_one(args.resnet, tmp, arch, in_ch, classes, sd, obj, legacy)
                passed += ok
                failed += not ok
                print("%s  %-17s in=%d classes=%-4d %d tensors%s, %s format: .pth -> convert -> "
                      "bit-identical, strict load%s" % (
                          "PASS" if ok else "FAIL", arch, in_ch, classes, len(sd),
                          " (wrapped)" if i % 3 == 0 else "", "legacy" if legacy else "zip",
                          "" if ok else ": " + "; ".join(problems)), flush=True)
    print("pth_roundtrip: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed or not passed else 0)  # no case run is a failure


if __name__ == "__main__":
    main()
