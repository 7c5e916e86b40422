#!/usr/bin/python3
"""PyTorch CPU timing for the resnet.c comparisons: inference, or a training step.

    /usr/bin/python3 tools/torch_bench.py [--arch resnet18] [--batch 1] [--size 224]
        [--in-channels 3] [--num-classes 1000] [--stem imagenet|cifar] [--threads 2]
        [--warmup 3] [--repeats 10] [--train] [--channels-last] [--bf16]
        [--int8 [--qengine onednn|fbgemm|x86]]

Inference: eval mode, torch.no_grad(). --train: one SGD step per batch (train-mode
BatchNorm, cross-entropy on fixed random labels, backward, SGD lr 0.01 momentum 0.9),
as `resnet bench --train`. --channels-last: model and input in channels_last (PyTorch's
fastest CPU layout for convolutions); --bf16: the forward pass under
torch.autocast("cpu", dtype=torch.bfloat16); --int8: FX graph mode post-training static
quantization (default qconfig mapping of --qengine, calibrated on 8 random batches),
inference only. torch.set_num_threads(THREADS), inter-op 1.
Prints one JSON object: images_per_second (batch / median), ms_per_batch_median, ...
"""
import argparse
import json
import resource
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--in-channels", type=int, default=3)
    ap.add_argument("--num-classes", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--stem", default="imagenet", choices=("imagenet", "cifar"))
    ap.add_argument("--width", type=int, default=64, help="base width (64 as published)")
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--int8", action="store_true")
    ap.add_argument("--qengine", default="onednn")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    from rn_models import build_model, randomize
    model = build_model(args.arch, args.in_channels, args.num_classes, stem=args.stem, width=args.width)
    if not args.train:
        randomize(model, seed=0, calib_size=32, calib_batch=4)
    x = torch.randn(args.batch, args.in_channels, args.size, args.size,
                    generator=torch.Generator().manual_seed(0))
    if args.int8 and not args.train:
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import prepare_fx, convert_fx
        torch.backends.quantized.engine = args.qengine
        model.eval()
        prepared = prepare_fx(model, get_default_qconfig_mapping(args.qengine), (x,))
        with torch.no_grad():
            for i in range(8):
                prepared(torch.randn(x.shape, generator=torch.Generator().manual_seed(10 + i)))
        model = convert_fx(prepared)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16)
    if args.train:
        model.train()
        labels = torch.randint(0, args.num_classes, (args.batch,), generator=torch.Generator().manual_seed(1))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()

        def run():
            opt.zero_grad(set_to_none=True)
            with autocast:
                loss = loss_fn(model(x), labels)
            loss.backward()
            opt.step()
    else:
        model.eval()

        def run():
            with torch.no_grad(), autocast:
                model(x)
    times = []
    for _ in range(args.warmup):
        run()
    for _ in range(max(1, args.repeats)):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1e3)
    med = statistics.median(times)
    print(json.dumps({
        "runtime": "pytorch", "version": torch.__version__, "arch": args.arch,
        "mode": "train-step" if args.train else "inference", "stem": args.stem,
        "channels_last": args.channels_last, "bf16": args.bf16,
        "int8": args.int8 and not args.train, "qengine": args.qengine if args.int8 else None,
        "batch": args.batch, "size": args.size, "channels": args.in_channels,
        "threads": args.threads, "warmup": args.warmup, "repeats": len(times),
        "images_per_second": args.batch / (med / 1e3),
        "ms_per_batch_median": med, "ms_per_batch_min": min(times),
        "ms_per_batch_mean": sum(times) / len(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "times_ms": [round(t, 3) for t in times],
    }))


if __name__ == "__main__":
    main()
