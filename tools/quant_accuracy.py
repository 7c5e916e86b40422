#!/usr/bin/python3
"""Accuracy of lower-precision models against their float32 original, image by image.

    /usr/bin/python3 tools/quant_accuracy.py --fp32 M.safetensors --other M.int8.safetensors
        [--other-precision auto] [--data ../shared/data/fashion-mnist] [--resnet build/resnet]
        [--threads 2] [--limit 0]

Reads the test split of an IDX dataset (Fashion-MNIST / MNIST, .gz or raw), preprocesses it as
`resnet eval` would for these checkpoints (pixels / 255, then the checkpoint's recorded
normalisation; the images' own size), runs `resnet forward` with both models on the same
images and prints, as markdown: top-1 of each, the agreement rate (same top-1 class), the
per-class accuracy of both, and the logit error of the other model relative to float32
(max |dl| / max |l| over the whole set, and the mean of per-image relative errors).
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

CLASSES = {"fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                             "Shirt", "Sneaker", "Bag", "Ankle boot"]}


def read_idx(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            data = (gzip.open if p.endswith(".gz") else open)(p, "rb").read()
            ndim = data[3]
            dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
            return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)
    sys.exit("quant_accuracy: %s(.gz) not found" % path)


def metadata(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fp32", required=True)
    ap.add_argument("--other", required=True)
    ap.add_argument("--other-precision", default="auto")
    ap.add_argument("--data", default="../shared/data/fashion-mnist")
    ap.add_argument("--resnet", default="build/resnet")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()

    x = read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte")).astype(np.float32) / 255.0
    y = read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte")).astype(np.int64)
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]
    x = x[:, None, :, :]
    meta = metadata(args.fp32)
    norm = meta.get("normalize", "none")
    if norm not in ("", "none"):
        mean, std = [np.array([float(v) for v in part.split(",")], np.float32) for part in norm.split(":")]
        x = (x - mean[None, :, None, None]) / std[None, :, None, None]
    size = int(meta.get("image_size", "0") or 0)
    if size not in (0, x.shape[2]):
        sys.exit("quant_accuracy: the checkpoint wants %dx%d images; only the dataset's own size is supported" % (size, size))
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "x.npy"), np.ascontiguousarray(x, np.float32))
        logits = []
        for w, prec in ((args.fp32, "auto"), (args.other, args.other_precision)):
            out = os.path.join(tmp, "y.npy")
            subprocess.run([args.resnet, "forward", "--weights", w, "--input", os.path.join(tmp, "x.npy"),
                            "--output", out, "--threads", str(args.threads), "--precision", prec], check=True)
            logits.append(np.load(out))
    a, b = logits
    pa, pb = a.argmax(1), b.argmax(1)
    k = a.shape[1]
    names = CLASSES.get(meta.get("dataset", ""), [str(c) for c in range(k)])
    print("| | float32 | %s |" % os.path.basename(args.other))
    print("| --- | --- | --- |")
    print("| test top-1 (%d images) | %.4f | %.4f |" % (len(y), (pa == y).mean(), (pb == y).mean()))
    print("| agreement with float32 (same top-1) | | %.4f |" % (pa == pb).mean())
    rel = np.abs(b - a).max(1) / np.maximum(np.abs(a).max(1), 1e-30)
    print("| logit error: max abs / max abs logit, whole set | | %.4f |" % (np.abs(b - a).max() / np.abs(a).max()))
    print("| logit error: mean over images of max abs / max abs | | %.4f |" % rel.mean())
    for c in range(k):
        m = y == c
        if m.any():
            print("| class %d %s | %.4f | %.4f |" % (c, names[c] if c < len(names) else "", (pa[m] == c).mean(), (pb[m] == c).mean()))


if __name__ == "__main__":
    main()
