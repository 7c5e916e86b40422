#!/usr/bin/python3
"""make_fmnist_subset.py - the small Fashion-MNIST subset in data/fmnist-small/.

Takes the first TRAIN_PER_CLASS training and TEST_PER_CLASS test images of
every class, in their original order, from the full Fashion-MNIST IDX .gz
files and writes them in the same format and file names. The output is
reproducible byte for byte (gzip header without a time stamp or name).

usage: /usr/bin/python3 tools/make_fmnist_subset.py [SRC_DIR] [OUT_DIR]
  SRC_DIR defaults to /work/shared/data/fashion-mnist, OUT_DIR to data/fmnist-small
"""
import gzip
import io
import os
import struct
import sys

TRAIN_PER_CLASS = 500
TEST_PER_CLASS = 100
CLASSES = 10


def read_idx(path, magic):
    with gzip.open(path, "rb") as f:
        data = f.read()
    got, count = struct.unpack(">II", data[:8])
    if got != magic:
        sys.exit(f"{path}: magic 0x{got:08x}, expected 0x{magic:08x}")
    return data, count


def write_gz(path, payload):
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as g:
        g.write(payload)
    with open(path, "wb") as f:
        f.write(raw.getvalue())


def subset(src, out, split, per_class):
    images, n = read_idx(f"{src}/{split}-images-idx3-ubyte.gz", 0x803)
    labels, n_lab = read_idx(f"{src}/{split}-labels-idx1-ubyte.gz", 0x801)
    rows, cols = struct.unpack(">II", images[8:16])
    if n != n_lab or len(images) != 16 + n * rows * cols or len(labels) != 8 + n:
        sys.exit(f"{src}: {split} files are inconsistent")
    taken = [0] * CLASSES
    keep = []
    for i in range(n):
        c = labels[8 + i]
        if taken[c] < per_class:
            taken[c] += 1
            keep.append(i)
    if min(taken) < per_class:
        sys.exit(f"{src}: {split} has too few images of some class: {taken}")
    size = rows * cols
    img = bytearray(struct.pack(">IIII", 0x803, len(keep), rows, cols))
    lab = bytearray(struct.pack(">II", 0x801, len(keep)))
    for i in keep:
        img += images[16 + i * size:16 + (i + 1) * size]
        lab.append(labels[8 + i])
    write_gz(f"{out}/{split}-images-idx3-ubyte.gz", bytes(img))
    write_gz(f"{out}/{split}-labels-idx1-ubyte.gz", bytes(lab))
    print(f"{split}: {len(keep)} images ({per_class} per class)")


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/fashion-mnist"
    out = sys.argv[2] if len(sys.argv) > 2 else "data/fmnist-small"
    os.makedirs(out, exist_ok=True)
    subset(src, out, "train", TRAIN_PER_CLASS)
    subset(src, out, "t10k", TEST_PER_CLASS)


if __name__ == "__main__":
    main()
