#!/usr/bin/python3
"""PyTorch CPU inference timing for the resnet.c comparison.

    /usr/bin/python3 tools/torch_bench.py [--arch resnet18] [--batch 1] [--size 224]
        [--in-channels 3] [--num-classes 1000] [--threads 2] [--warmup 3] [--repeats 10]

Eval mode, torch.no_grad(), torch.set_num_threads(THREADS) (inter-op 1).
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
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    from rn_models import build_model, randomize
    model = build_model(args.arch, args.in_channels, args.num_classes)
    randomize(model, seed=0, calib_size=32, calib_batch=4)
    model.eval()
    x = torch.randn(args.batch, args.in_channels, args.size, args.size,
                    generator=torch.Generator().manual_seed(0))
    times = []
    with torch.no_grad():
        for _ in range(args.warmup):
            model(x)
        for _ in range(max(1, args.repeats)):
            t0 = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t0) * 1e3)
    med = statistics.median(times)
    print(json.dumps({
        "runtime": "pytorch", "version": torch.__version__, "arch": args.arch,
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
