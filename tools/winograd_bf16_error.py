#!/usr/bin/python3
"""Rounding error of Winograd convolution on bf16 products, against direct convolution on bf16
operands: why resnet.c's bf16 sessions keep Winograd on float32 products (README, Performance,
stop 44). One 3x3 layer of C input channels on T random tiles of post-ReLU input, weights with
He initialisation; the transforms in double, U = G g G^T and V = B^T d B rounded to bf16 (nearest,
ties to even) as the bf16 products would read them, sums exact. Prints the RMS and max error of
each output relative to the exact convolution's. Needs numpy (Debian's python3-numpy).

    /usr/bin/python3 tools/winograd_bf16_error.py [--channels 64 256] [--tiles 200] [--seed 0]
"""
import argparse

import numpy as np


def bf16(x):
    """x rounded to bf16 (nearest, ties to even), as float32."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return r.astype(np.uint32).view(np.float32)


def toom_cook(m, r, points):
    """A^T, G, B^T of F(m x m, r x r) on the finite points (and infinity)."""
    n = m + r - 1
    assert len(points) == n - 1
    at, g = np.zeros((m, n)), np.zeros((n, r))
    for j, a in enumerate(points):
        at[:, j] = [a ** i for i in range(m)]
        f = np.prod([a - b for b in points if b != a])
        g[j] = [a ** k / f for k in range(r)]
    at[m - 1, n - 1] = g[n - 1, r - 1] = 1
    # B^T from the identity sum_j A^T[i, j] G[j, k] B^T[j, l] = [l == i + k]
    rows, rhs = [], []
    for i in range(m):
        for k in range(r):
            for l in range(n):
                e = np.zeros((n, n))
                e[:, l] = at[i, :] * g[:, k]
                rows.append(e.ravel())
                rhs.append(1.0 if l == i + k else 0.0)
    bt = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0].reshape(n, n)
    return at, g, bt


def errors(y, ref):
    scale = np.sqrt((ref ** 2).mean())
    return np.sqrt(((y - ref) ** 2).mean()) / scale, np.abs(y - ref).max() / np.abs(ref).max()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--channels", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--tiles", type=int, default=200)
    ap.add_argument("--out-channels", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    variants = [("F(4x4) points 0, +-1, +-2", 4, [0, 1, -1, 2, -2]),
                ("F(4x4) points 0, +-1, +-1/2", 4, [0, 1, -1, 0.5, -0.5]),
                ("F(3x3) points 0, +-1, 1/2", 3, [0, 1, -1, 0.5]),
                ("F(2x2) points 0, +-1", 2, [0, 1, -1])]
    print("%-8s %-30s %12s %12s" % ("channels", "algorithm on bf16 products", "rms error", "max error"))
    for c in args.channels:
        k, t = args.out_channels, args.tiles
        w = rng.standard_normal((k, c, 3, 3)) * np.sqrt(2.0 / (9 * c))
        for name, m, points in variants:
            at, g, bt = toom_cook(m, 3, points)
            a = m + 2
            d = np.maximum(rng.standard_normal((t, c, a, a)), 0)
            ref = np.zeros((t, k, m, m))
            direct = np.zeros((t, k, m, m))
            db, wb = bf16(d).astype(np.float64), bf16(w).astype(np.float64)
            for i in range(m):
                for j in range(m):
                    ref[:, :, i, j] = np.einsum("tcuv,kcuv->tk", d[:, :, i:i + 3, j:j + 3], w)
                    direct[:, :, i, j] = np.einsum("tcuv,kcuv->tk", db[:, :, i:i + 3, j:j + 3], wb)
            u = bf16(np.einsum("ij,kcjl,ml->kcim", g, w, g)).astype(np.float64)
            v = bf16(np.einsum("ij,tcjl,ml->tcim", bt, d, bt)).astype(np.float64)
            y = np.einsum("ij,tkjl,ml->tkim", at, np.einsum("kcij,tcij->tkij", u, v), at)
            print("%-8d %-30s %12.2e %12.2e" % ((c, name) + errors(y, ref)))
        print("%-8d %-30s %12.2e %12.2e" % ((c, "direct (same tiles as F(2x2))") + errors(direct, ref)))


if __name__ == "__main__":
    main()
