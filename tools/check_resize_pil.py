#!/usr/bin/python3
"""check_resize_pil.py - rn_resize_bilinear_* against PIL, bit for bit.

Runs `TEST_DATA --resize-dump TMP` (the tests/test_data.c binary), which
writes random images and the library's bilinear resizes of them as .npy
files, then resizes the same inputs with Pillow's Image.resize(...,
BILINEAR) and compares:
  - uint8 planes against mode "L", each plane on its own, and 3-plane images
    also against mode "RGB": every byte must be equal;
  - float32 planes against mode "F": every float must be bitwise equal.
The last line reads "resize_pil: N passed, M failed"; the exit status is
non-zero on any failure.

usage: /usr/bin/python3 tools/check_resize_pil.py [build/tests/test_data]
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "build/tests/test_data"
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="resize_pil_") as tmp:
        run = subprocess.run([binary, "--resize-dump", tmp])
        if run.returncode != 0:
            print(f"{binary} --resize-dump failed with status {run.returncode}")
            print("resize_pil: 0 passed, 1 failed")
            return 1
        with open(os.path.join(tmp, "cases.txt")) as f:
            cases = [int(line) for line in f if line.strip()]
        for k in cases:
            load = lambda name: np.load(os.path.join(tmp, f"{name}_{k}.npy"))
            u8_in, u8_out = load("u8_in").astype(np.uint8), load("u8_out").astype(np.uint8)
            f_in, f_out = load("f32_in"), load("f32_out")
            c, ih, iw = u8_in.shape
            _, oh, ow = u8_out.shape
            size = (ow, oh)
            problems = []
            for p in range(c):
                ref = np.asarray(Image.fromarray(u8_in[p], "L").resize(size, Image.BILINEAR))
                if not np.array_equal(ref, u8_out[p]):
                    diff = np.abs(ref.astype(int) - u8_out[p].astype(int))
                    problems.append(f"L plane {p}: {np.count_nonzero(diff)} bytes differ, "
                                    f"max {diff.max()}")
                ref = np.asarray(Image.fromarray(f_in[p], "F").resize(size, Image.BILINEAR))
                if not np.array_equal(ref.view(np.uint32), f_out[p].view(np.uint32)):
                    diff = np.abs(ref.astype(np.float64) - f_out[p])
                    problems.append(f"F plane {p}: {np.count_nonzero(diff)} values differ, "
                                    f"max {diff.max():.3g}")
            if c == 3:
                rgb = Image.fromarray(np.ascontiguousarray(u8_in.transpose(1, 2, 0)), "RGB")
                ref = np.asarray(rgb.resize(size, Image.BILINEAR)).transpose(2, 0, 1)
                if not np.array_equal(ref, u8_out):
                    problems.append("RGB differs")
            if problems:
                failed += 1
                print(f"FAIL case {k}: {c}x{ih}x{iw} -> {oh}x{ow}: " + "; ".join(problems))
            else:
                passed += 1
    print(f"resize_pil: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
