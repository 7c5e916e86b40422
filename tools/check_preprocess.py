#!/usr/bin/python3
"""check_preprocess.py --tool BUILD/tests/test_image [--images DIR] [--resize N] [--crop N]

The PIL parity check of resnet.c's image pipeline. For every image of DIR
(default: a fresh corpus from tools/make_test_images.py, which includes
scikit-image's sample photos when python3-skimage is installed):

  decode      resnet.c's decoded RGB and L planes (`TOOL --decode`) against
              torchvision's pil_loader, Image.open(f).convert("RGB") / ("L"):
              must be identical (both sides use the system libjpeg-turbo and
              libpng/zlib with Pillow's conversions).
  preprocess  resnet.c's ImageNet eval tensor (`TOOL --preprocess`) against
              torchvision's Resize(N) -> CenterCrop(N) -> ToTensor ->
              Normalize(mean, std): differences are measured in [0, 1] pixel
              units (times std); at most 1/255 on 99.9% of the values and
              2/255 on all.

Prints one line per image and finally "preprocess_pil: N passed, M failed";
exits non-zero on any failure.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
EXTS = (".png", ".jpg", ".jpeg")


def pil_loader(path, mode="RGB"):
    # torchvision.datasets.folder.pil_loader
    with open(path, "rb") as f:
        img = Image.open(f)
        return img.convert(mode)


def run_tool(tool, args):
    r = subprocess.run([tool] + args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join([tool] + args)}: {r.stderr.strip() or r.returncode}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tool", required=True, help="build/tests/test_image")
    ap.add_argument("--images", help="directory of images (default: generate a corpus)")
    ap.add_argument("--resize", type=int, default=256)
    ap.add_argument("--crop", type=int, default=224)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)

    tmp = tempfile.TemporaryDirectory(prefix="check_preprocess_")
    images = args.images
    if not images:
        images = os.path.join(tmp.name, "corpus")
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run([sys.executable, os.path.join(here, "make_test_images.py"), images],
                       check=True, stderr=subprocess.DEVNULL)
    names = sorted(n for n in os.listdir(images)
                   if n.lower().endswith(EXTS) and os.path.isfile(os.path.join(images, n)))
    pipeline = transforms.Compose([
        transforms.Resize(args.resize),
        transforms.CenterCrop(args.crop),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])
    std = np.array(STD, np.float64)[:, None, None]
    out = os.path.join(tmp.name, "out.npy")
    passed = failed = 0
    total_vals = total_within1 = 0
    worst = 0.0
    for name in names:
        path = os.path.join(images, name)
        problems = []
        # decode parity, RGB and L
        for mode, extra in (("RGB", []), ("L", ["--gray"])):
            ref = np.asarray(pil_loader(path, mode), np.float32)
            ref = ref.transpose(2, 0, 1) if ref.ndim == 3 else ref[None]
            try:
                run_tool(args.tool, ["--decode", path, out] + extra)
                got = np.load(out)
            except RuntimeError as e:
                problems.append(str(e))
                continue
            if got.shape != ref.shape:
                problems.append(f"decode {mode}: shape {got.shape} != PIL {ref.shape}")
            elif (got != ref).any():
                problems.append(f"decode {mode}: {(got != ref).sum()} of {ref.size} differ, "
                                f"max {np.abs(got - ref).max():.0f}")
        # preprocess parity
        ref = pipeline(pil_loader(path)).numpy().astype(np.float64)
        try:
            run_tool(args.tool, ["--preprocess", path, out,
                                 "--resize", str(args.resize), "--crop", str(args.crop)])
            got = np.load(out).astype(np.float64)
        except RuntimeError as e:
            problems.append(str(e))
            got = None
        line = ""
        if got is not None and got.shape != ref.shape:
            problems.append(f"preprocess: shape {got.shape} != torchvision {ref.shape}")
        elif got is not None:
            diff = np.abs(got - ref) * std            # [0, 1] pixel units
            within1 = int((diff <= 1 / 255 + 1e-6).sum())
            frac = within1 / diff.size
            mx = float(diff.max())
            worst = max(worst, mx)
            total_vals += diff.size
            total_within1 += within1
            exact = int((got == ref).sum())
            line = (f"max {mx * 255:.4f}/255, within 1/255 {frac * 100:.3f}%, "
                    f"bit-identical {exact / diff.size * 100:.2f}%")
            if frac < 0.999 or mx > 2 / 255 + 1e-6:
                problems.append("preprocess tolerance exceeded")
        size = Image.open(path).size
        status = "ok  " if not problems else "FAIL"
        print(f"{status} {name:38s} {size[0]:5d}x{size[1]:<5d} {line}"
              + ("" if not problems else "  [" + "; ".join(problems) + "]"))
        if problems:
            failed += 1
        else:
            passed += 1
    if total_vals:
        print(f"overall: max abs diff {worst * 255:.4f}/255, "
              f"{total_within1 / total_vals * 100:.4f}% of {total_vals} values within 1/255")
    print(f"preprocess_pil: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
