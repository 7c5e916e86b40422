"""make_image_folder.py - a small ImageFolder and torchvision's view of it,
for tests/test_folder.c.

    /usr/bin/python3 tools/make_image_folder.py DIR

writes
  DIR/good/{train,val}/CLASS/...   3 classes x 6 images of odd sizes: JPEG
                                   (RGB, L) and PNG (RGB, L, RGBA, P with
                                   transparency), upper-case extensions, a
                                   nested folder, and files ImageFolder ignores
  DIR/classes.txt                  ImageFolder's classes, one a line
  DIR/{train,val}_files.txt        its samples' paths relative to DIR/good
  DIR/{train,val}_labels.npy       its targets (float32)
  DIR/val_eval.npy                 (N, 3, S, S) float32: ImageFolder (pil_loader) +
                                   Resize(int(S / 0.875)) + CenterCrop(S) +
                                   ToTensor + Normalize(ImageNet), S = 64
  DIR/val_gray.npy                 (N, 1, S, S): the same on convert("L"),
                                   Normalize(0.449, 0.226)
  DIR/val_resize66.npy             (N, 3, S, S): as val_eval.npy with Resize(66)
                                   (torchvision's --val-resize-size)
and the broken folders the C test expects to fail:
  DIR/corrupt   a truncated JPEG and a PNG of garbage in class b of train
  DIR/emptyclass  class b of train holds no image
  DIR/nosplit   no val split
  DIR/bmp       a .bmp file ImageFolder would take
  DIR/noclasses a train split without class folders
"""
import os
import sys

import numpy as np
import torch
from PIL import Image
from torchvision import datasets, transforms

S = 64
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
CLASSES = ["Zebra", "ant", "bee cat"]     # sorted: upper case first
SIZES = [(37, 91), (120, 65), (64, 64), (73, 73), (200, 50), (29, 33), (96, 128), (81, 57)]


def picture(rng, w, h):
    """Smooth gradients plus noise, so resizing has something to do."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), (x + y) / max(w + h - 2, 1)], -1)
    img = base * rng.uniform(80, 255, 3) + rng.normal(0, 25, (h, w, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def save(img, path, mode, fmt):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if mode == "L":
        img = img.convert("L")
    elif mode == "RGBA":
        img = img.convert("RGBA")
        alpha = np.array(img)[:, :, 3]
        alpha[::3] = 40
        img.putalpha(Image.fromarray(alpha))
    elif mode == "P":
        img = img.convert("P", palette=Image.ADAPTIVE, colors=50)
        img.info["transparency"] = 0
    if fmt == "JPEG":
        img.save(path, "JPEG", quality=88)
    elif mode == "P":
        img.save(path, "PNG", transparency=0)
    else:
        img.save(path, "PNG")


KINDS = [("RGB", "JPEG", ".jpg"), ("L", "JPEG", ".JPEG"), ("RGBA", "PNG", ".png"),
         ("P", "PNG", ".png"), ("RGB", "PNG", ".PNG"), ("L", "PNG", ".jpeg")]


def make_good(root, rng):
    for split in ("train", "val"):
        for c, name in enumerate(CLASSES):
            folder = os.path.join(root, split, name)
            for i, (mode, fmt, ext) in enumerate(KINDS):
                w, h = SIZES[(i + 3 * c + (split == "val")) % len(SIZES)]
                # one image in a nested folder, as os.walk finds it
                sub = "more" if (i == 4 and c == 1) else ""
                # a JPEG named .jpeg holding PNG data is read by content
                fmt_here = "PNG" if ext == ".jpeg" else fmt
                save(picture(rng, w, h), os.path.join(folder, sub, f"img_{5 - i}{ext}"),
                     mode, fmt_here)
            with open(os.path.join(folder, "notes.txt"), "w") as f:
                f.write("not an image\n")
            with open(os.path.join(folder, "readme.md"), "w") as f:
                f.write("ignored\n")


def write_reference(out, good):
    norm = transforms.Normalize(MEAN, STD)
    eval_tf = transforms.Compose([transforms.Resize(int(S / 0.875)), transforms.CenterCrop(S),
                                  transforms.ToTensor(), norm])
    gray_tf = transforms.Compose([transforms.Resize(int(S / 0.875)), transforms.CenterCrop(S),
                                  transforms.ToTensor(), transforms.Normalize([0.449], [0.226])])
    for split in ("train", "val"):
        ds = datasets.ImageFolder(os.path.join(good, split))
        if split == "train":
            with open(os.path.join(out, "classes.txt"), "w") as f:
                f.write("".join(c + "\n" for c in ds.classes))
        with open(os.path.join(out, f"{split}_files.txt"), "w") as f:
            f.write("".join(os.path.relpath(p, good) + "\n" for p, _ in ds.samples))
        np.save(os.path.join(out, f"{split}_labels.npy"), np.array(ds.targets, np.float32))
    val = datasets.ImageFolder(os.path.join(good, "val"), transform=eval_tf)
    np.save(os.path.join(out, "val_eval.npy"),
            torch.stack([val[i][0] for i in range(len(val))]).numpy().astype(np.float32))
    resized = datasets.ImageFolder(os.path.join(good, "val"), transform=transforms.Compose(
        [transforms.Resize(66), transforms.CenterCrop(S), transforms.ToTensor(), norm]))
    np.save(os.path.join(out, "val_resize66.npy"),
            torch.stack([resized[i][0] for i in range(len(resized))]).numpy().astype(np.float32))
    gray = datasets.ImageFolder(os.path.join(good, "val"), transform=gray_tf,
                                loader=lambda p: datasets.folder.pil_loader(p).convert("L"))
    np.save(os.path.join(out, "val_gray.npy"),
            torch.stack([gray[i][0] for i in range(len(gray))]).numpy().astype(np.float32))


def make_broken(out, rng):
    def good_image(path):
        save(picture(rng, 40, 30), path, "RGB", "JPEG" if path.endswith(".jpg") else "PNG")

    c = os.path.join(out, "corrupt")
    for split in ("train", "val"):
        for i in range(3):
            good_image(os.path.join(c, split, "a", f"{i}.png"))
        good_image(os.path.join(c, split, "b", "0.jpg"))
        good_image(os.path.join(c, split, "b", "1.jpg"))
        good_image(os.path.join(c, split, "b", "4.png"))
    # train: positions 5 and 6 of the unshuffled order fail; 5 is reported
    trunc = os.path.join(c, "train", "b", "2_truncated.jpg")
    good_image(trunc)
    data = open(trunc, "rb").read()
    open(trunc, "wb").write(data[: len(data) // 2])
    open(os.path.join(c, "train", "b", "3_garbage.png"), "wb").write(bytes(range(256)) * 4)

    e = os.path.join(out, "emptyclass")
    for split in ("train", "val"):
        good_image(os.path.join(e, split, "a", "x.png"))
        os.makedirs(os.path.join(e, split, "b"), exist_ok=True)
        open(os.path.join(e, split, "b", "notes.txt"), "w").write("no images here\n")

    good_image(os.path.join(out, "nosplit", "train", "a", "x.png"))

    good_image(os.path.join(out, "bmp", "train", "a", "x.png"))
    picture(rng, 20, 20).save(os.path.join(out, "bmp", "train", "a", "y.bmp"))

    # val's classes matched to train's by name: val lacks b (its c is train's label 2), and a
    # val with a class train lacks
    for split, names in (("train", "abc"), ("val", "ac")):
        for name in names:
            good_image(os.path.join(out, "subset", split, name, "x.png"))
    for split, names in (("train", "ab"), ("val", "abz")):
        for name in names:
            good_image(os.path.join(out, "extra", split, name, "x.png"))

    os.makedirs(os.path.join(out, "noclasses", "train"), exist_ok=True)
    open(os.path.join(out, "noclasses", "train", "x.png"), "wb").write(b"")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_image_folder.py DIR")
    out = sys.argv[1]
    rng = np.random.default_rng(7)
    good = os.path.join(out, "good")
    make_good(good, rng)
    write_reference(out, good)
    make_broken(out, rng)


if __name__ == "__main__":
    main()
