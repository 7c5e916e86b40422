#!/usr/bin/python3
"""torchvision's TrivialAugmentWide, RandAugment and AutoAugment, for tests/test_augment.c.

    /usr/bin/python3 tools/augment_ref.py OUTDIR

Writes into OUTDIR (which must exist):

tables.npy    (5, 31) float32: TrivialAugmentWide's magnitude tables as torch
              holds them: linspace(0, 0.99) (shears, colours), linspace(0, 32)
              (translations), linspace(0, 135) (rotation), linspace(255, 0)
              (solarize), and posterize's bits
ra_tables.npy (4, 7, 31) float32: RandAugment's magnitude tables for the images of
              ra_sizes.txt (H W per line): ShearX, TranslateX, TranslateY, Rotate,
              Brightness, Posterize (bits), Solarize
aa_tables.npy (4, 7, 10) float32: AutoAugment's tables, as ra_tables.npy's
aa_policies.txt one line per step: POLICY ID K OP PROB BIN (POLICY 0..2:
              imagenet, cifar10, svhn; BIN -1 for none), from AutoAugment's
              own lists
cases.txt     one line per case: OP MAGNITUDE (%.17g) BILINEAR, OP 0..13 in
              TrivialAugmentWide's order, 14 invert; every bin of every
              operation with a magnitude, both signs where torchvision draws
              one, with nearest interpolation, and invert; then the five
              geometric ones again with bilinear
aa_cases.txt  one line per AutoAugment case: POLICY ID PROB0 PROB1 SIGN0 SIGN1
              BILINEAR, the draws torchvision's forward takes (probabilities
              %.9g float32; sign 0 negates): every sub-policy of every policy
              with both steps applied (signs 1 1, nearest; 0 0, bilinear),
              the second's probability a float32 step above its own (skipped;
              0 1, nearest), the first's so (1 0, bilinear)
images.txt    one line per image: NAME C H W
NAME_in.npy   (C, H, W) float32 holding the image's bytes
NAME_out.npy  (cases, C, H, W) float32: torchvision's _apply_op on the PIL
              image ("L" or "RGB"), fill None, with the case's interpolation
NAME_aa.npy   (aa cases, C, H, W) float32: AutoAugment(policy, interpolation)
              on the PIL image with get_params returning the case's draws

Exit status 0 on success; any exception is a failure.
"""
import gzip
import os
import sys

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.autoaugment import (AutoAugment, AutoAugmentPolicy, RandAugment,
                                                TrivialAugmentWide, _apply_op)

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fashion_images(n):
    path = os.path.join(HERE, "data", "fmnist-small", "t10k-images-idx3-ubyte.gz")
    data = gzip.open(path).read()
    return [np.frombuffer(data[16 + i * 784:16 + (i + 1) * 784], np.uint8).reshape(1, 28, 28)
            for i in range(n)]


def images():
    rng = np.random.default_rng(7)
    out = []
    for i, img in enumerate(fashion_images(2)):
        out.append(("fmnist%d" % i, img))
    out.append(("gray_low", rng.integers(60, 170, (1, 23, 23), dtype=np.uint8)))
    out.append(("rgb32", rng.integers(0, 256, (3, 32, 32), dtype=np.uint8)))
    # a smooth colour image of low contrast, not square
    y, x = np.mgrid[0:20, 0:27]
    smooth = np.stack([40 + 3 * x, 90 + 2 * y + x, 200 - 4 * y]).clip(0, 255).astype(np.uint8)
    out.append(("rgb_smooth", smooth))
    out.append(("flat", np.full((3, 9, 9), 77, np.uint8)))
    return out


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        sys.exit("usage: augment_ref.py OUTDIR (an existing directory)")
    outdir = sys.argv[1]
    torch.set_num_threads(1)
    space = TrivialAugmentWide()._augmentation_space(31)
    names = list(space.keys())
    tables = np.stack([space["ShearX"][0].numpy(), space["TranslateX"][0].numpy(),
                       space["Rotate"][0].numpy(), space["Solarize"][0].numpy(),
                       space["Posterize"][0].numpy().astype(np.float32)]).astype(np.float32)
    np.save(os.path.join(outdir, "tables.npy"), tables)
    sizes = [(28, 28), (32, 32), (224, 224), (20, 27)]
    for name, policy, bins in (("ra", RandAugment(), 31), ("aa", AutoAugment(), 10)):
        tables = []
        for h, w in sizes:
            sp = policy._augmentation_space(bins, (h, w))
            tables.append([sp[k][0].numpy().astype(np.float32) for k in
                           ("ShearX", "TranslateX", "TranslateY", "Rotate", "Brightness",
                            "Posterize", "Solarize")])
        np.save(os.path.join(outdir, name + "_tables.npy"), np.array(tables, np.float32))
    op_index = {name: i for i, name in enumerate(names + ["Invert"])}
    policies = [AutoAugmentPolicy.IMAGENET, AutoAugmentPolicy.CIFAR10, AutoAugmentPolicy.SVHN]
    with open(os.path.join(outdir, "aa_policies.txt"), "w") as f:
        for pi, policy in enumerate(policies):
            for sid, sub in enumerate(AutoAugment(policy).policies):
                for k, (name, prob, mbin) in enumerate(sub):
                    f.write("%d %d %d %d %.17g %d\n" % (pi, sid, k, op_index[name], prob,
                                                        -1 if mbin is None else mbin))
    aa_cases = []
    for pi, policy in enumerate(policies):
        for sid, sub in enumerate(AutoAugment(policy).policies):
            at = [np.float32(sub[0][1]), np.float32(sub[1][1])]
            above = [np.nextafter(v, np.float32(2)) for v in at]
            aa_cases += [(pi, sid, at[0], at[1], 1, 1, 0), (pi, sid, at[0], at[1], 0, 0, 1),
                         (pi, sid, at[0], above[1], 0, 1, 0), (pi, sid, above[0], at[1], 1, 0, 1)]
    with open(os.path.join(outdir, "aa_cases.txt"), "w") as f:
        for c in aa_cases:
            f.write("%d %d %.9g %.9g %d %d %d\n" % c)
    with open(os.path.join(outdir, "ra_sizes.txt"), "w") as f:
        for h, w in sizes:
            f.write("%d %d\n" % (h, w))
    cases = []
    for op, name in enumerate(names):
        magnitudes, signed = space[name]
        if magnitudes.ndim == 0:
            cases.append((op, name, 0.0, 0))
            continue
        for b in range(len(magnitudes)):
            m = float(magnitudes[b].item())
            cases.append((op, name, m, 0))
            if signed:
                cases.append((op, name, m * -1.0, 0))
    cases.append((len(names), "Invert", 0.0, 0))
    # the geometric operations again with bilinear interpolation (the reference script's default)
    for op, name in enumerate(names):
        if name in ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"):
            for b in range(31):
                m = float(space[name][0][b].item())
                cases += [(op, name, m, 1), (op, name, m * -1.0, 1)]
    with open(os.path.join(outdir, "cases.txt"), "w") as f:
        for op, _, m, bil in cases:
            f.write("%d %.17g %d\n" % (op, m, bil))
    with open(os.path.join(outdir, "images.txt"), "w") as f:
        for name, img in images():
            c, h, w = img.shape
            f.write("%s %d %d %d\n" % (name, c, h, w))
            np.save(os.path.join(outdir, name + "_in.npy"), img.astype(np.float32))
            pil = Image.fromarray(img[0] if c == 1 else img.transpose(1, 2, 0),
                                  "L" if c == 1 else "RGB")
            outs = []
            for _, opname, m, bil in cases:
                mode = InterpolationMode.BILINEAR if bil else InterpolationMode.NEAREST
                r = np.asarray(_apply_op(pil, opname, m, mode, None))
                outs.append(r[None] if c == 1 else r.transpose(2, 0, 1))
            np.save(os.path.join(outdir, name + "_out.npy"), np.stack(outs).astype(np.float32))
            outs = []
            for pi, sid, p0, p1, s0, s1, bil in aa_cases:
                mode = InterpolationMode.BILINEAR if bil else InterpolationMode.NEAREST
                t = AutoAugment(policies[pi], mode)
                draws = (sid, torch.tensor([p0, p1], dtype=torch.float32), torch.tensor([s0, s1]))
                t.get_params = lambda n, d=draws: d
                r = np.asarray(t(pil))
                outs.append(r[None] if c == 1 else r.transpose(2, 0, 1))
            np.save(os.path.join(outdir, name + "_aa.npy"), np.stack(outs).astype(np.float32))
    print("augment_ref: %d operations at %d magnitudes and %d AutoAugment cases on %d images "
          "written to %s" % (len(names) + 1, len(cases), len(aa_cases), len(images()), outdir))


if __name__ == "__main__":
    main()
