"""The README's scaling model for data-parallel `resnet train` past one
machine: prints, as Markdown, the bytes all-reduced per step for each
architecture, and the predicted efficiency at 8, 32 and 128 nodes on 10, 25
and 100 Gb/s links.

    dp_scaling.py [--core-s-per-image 0.31] [--cores 32] [--batch-per-node 64]
                  [--latency-us 20] [--bucket-mib 4]

Model (every input is a flag; defaults are the README's):
  compute per step   Tc = batch_per_node * core_s_per_image(arch) / cores,
                     core_s_per_image scaled from resnet18's by forward FLOPs,
                     linear in cores (an upper bound: memory bandwidth and
                     OpenMP overheads make 32 cores less than 32x one);
  ring all-reduce    Tar = 2 (N - 1) / N * bytes / bandwidth
                           + 2 (N - 1) * latency * buckets;
  efficiency         no overlap:   Tc / (Tc + Tar);
                     overlapped:   Tc / (Tf + max(Tb, Tar)), forward Tf = Tc / 3 and
                     backward Tb = 2 Tc / 3, the buckets running during backward.
"""
import argparse
import math

# `resnet info --arch A` (224x224, 1000 classes): parameters, forward GFLOP per image
ARCHS = [
    ("resnet18", 11689512, 3.628),
    ("resnet50", 25557032, 8.178),
    ("resnet152", 60192808, 23.027),
]
LINKS_GBPS = [10, 25, 100]
NODES = [8, 32, 128]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--core-s-per-image", type=float, default=0.31,
                    help="resnet18 at 224x224, one training image, seconds on one core")
    ap.add_argument("--cores", type=int, default=32)
    ap.add_argument("--batch-per-node", type=int, default=64)
    ap.add_argument("--latency-us", type=float, default=20.0)
    ap.add_argument("--bucket-mib", type=float, default=4.0)
    a = ap.parse_args()

    print("| architecture | MB all-reduced per step | compute per step (%d cores, %d images) | link "
          "| %s |" % (a.cores, a.batch_per_node,
                      " | ".join("%d nodes: all-reduce, efficiency" % n for n in NODES)))
    print("| --- | --- | --- | --- |%s" % (" --- |" * len(NODES)))
    base_gflop = ARCHS[0][2]
    for name, params, gflop in ARCHS:
        nbytes = params * 4
        buckets = math.ceil(nbytes / (a.bucket_mib * 2**20))
        tc = a.batch_per_node * a.core_s_per_image * gflop / base_gflop / a.cores
        for gbps in LINKS_GBPS:
            cells = []
            for n in NODES:
                tar = 2 * (n - 1) / n * nbytes / (gbps * 1e9 / 8) + 2 * (n - 1) * a.latency_us * 1e-6 * buckets
                e_no = tc / (tc + tar)
                e_ov = tc / (tc / 3 + max(2 * tc / 3, tar))
                cells.append("%.0f ms, %.2f / %.2f" % (tar * 1e3, e_no, e_ov))
            print("| %s | %.1f | %.2f s | %d Gb/s | %s |" % (name, nbytes / 1e6, tc, gbps, " | ".join(cells)))


if __name__ == "__main__":
    main()
