#!/usr/bin/python3
"""Export a (randomized) reference ResNet to ONNX, for the ONNX Runtime comparison.

    /usr/bin/python3 tools/export_onnx.py ARCH OUT.onnx [--batch B] [--size S]
        [--in-channels C] [--num-classes K] [--seed N] [--opset 13]
        [--dynamic-batch] [--weights FILE.safetensors]

Eval mode (BatchNorm folded by the exporter). Input "input" (B,C,S,S) float32,
output "logits" (B,K). Static shapes by default (what ORT optimizes best);
--dynamic-batch makes the batch axis symbolic. --weights loads a safetensors
file (e.g. one written by resnet.c) instead of random weights.
Needs only torch (not the `onnx` Python package).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from rn_models import ARCHS, build_model, randomize  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arch", choices=ARCHS)
    ap.add_argument("out")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--in-channels", type=int, default=3)
    ap.add_argument("--num-classes", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--dynamic-batch", action="store_true")
    ap.add_argument("--weights", help="safetensors file to load instead of random weights")
    args = ap.parse_args()

    torch.set_num_threads(min(2, torch.get_num_threads()))
    model = build_model(args.arch, args.in_channels, args.num_classes)
    if args.weights:
        from st_io import load_safetensors
        sd, _ = load_safetensors(args.weights)
        model.load_state_dict(sd, strict=True)
    else:
        randomize(model, seed=args.seed)
    model.eval()
    x = torch.randn(args.batch, args.in_channels, args.size, args.size)
    dyn = {"input": {0: "batch"}, "logits": {0: "batch"}} if args.dynamic_batch else None
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(model, x, args.out, input_names=["input"], output_names=["logits"],
                          dynamic_axes=dyn, opset_version=args.opset, do_constant_folding=True)
    print("wrote %s (%s, input %dx%dx%dx%d, %d classes, opset %d, %.1f MB)" % (
        args.out, args.arch, args.batch, args.in_channels, args.size, args.size,
        args.num_classes, args.opset, os.path.getsize(args.out) / 1e6))


if __name__ == "__main__":
    main()
