#!/usr/bin/python3
"""predict_parity.py --resnet BUILD/resnet [--archs resnet18,resnet50] [--keep DIR]

Checks `resnet predict` against torchvision on the same files.

  ImageNet-style  torchvision resnet18 / resnet50 with random weights
                  (tools/rn_models.py randomize, 1000 classes, the fc layer
                  scaled by 8 for peaked probabilities), saved with
                  torch.save(state_dict) as .pth, on scikit-image's photographs
                  (PNG and JPEG, a gray one, an RGBA one, a palette one) and
                  generated odd-size images, in batches of 3. Reference:
                  pil_loader -> Resize(256) -> CenterCrop(224) -> ToTensor ->
                  Normalize(ImageNet) -> model.eval() -> softmax.
                  `predict --json --topk 5` must give the same top-5 indices
                  (two may swap only where their probabilities are within
                  1e-5), every probability within 1e-4, and the ImageNet names;
                  `--features F.npy` from the same run: what model.fc receives,
                  within 1e-4 of its largest; with `--feature-layer layer3` (resnet18)
                  or `stem` (resnet50), that module's output maps likewise.
  Datasets        a 1-channel d2l_resnet18 with 10 classes saved as safetensors
                  with metadata dataset=fashion-mnist, image_size=28 (with and
                  without normalize): PIL convert("L") -> Resize((28, 28)) ->
                  ToTensor [-> Normalize] -> model; probabilities within 1e-4
                  and the Fashion-MNIST names. The same for mnist (digit
                  names) and for a 3-channel resnet18 with dataset=cifar10,
                  image_size=32, normalize=CIFAR's (RGB, Resize((32, 32))).
  Folders         a folder argument stands for its images: its own files by
                  name, then each sub-folder's in ImageFolder's order for a class
                  folder (sorted(os.walk(sub)), files sorted; a class name with a
                  '-' beside one with a sub-folder, where a sort of the whole tree
                  by path differs): the same results as the files listed so; an
                  empty folder and one with a .bmp exit 1.
  CLI             --labels FILE overrides the names; a wrong count, a missing,
                  a corrupt and a truncated image each exit 1 with one stderr
                  line; text output names every image; a path with a quote is
                  JSON-escaped.

Prints one line per check and finally "predict_parity: N passed, M failed";
exits 1 on any failure.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rn_models import build_model, randomize  # noqa: E402
from st_io import save_safetensors  # noqa: E402

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
PROB_TOL = 1e-4
SWAP_TOL = 1e-5
FC_SCALE = 8.0
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

passed = 0
failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print("ok    " + what)
    else:
        failed += 1
        print("FAIL  " + what)


def pil_loader(path, mode="RGB"):
    with open(path, "rb") as f:
        return Image.open(f).convert(mode)


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

def make_images(d):
    """Photographs (PNG and JPEG) plus odd sizes and modes; returns paths."""
    import skimage.data as sd
    paths = []

    def save(img, name, **kw):
        p = os.path.join(d, name)
        img.save(p, **kw)
        paths.append(p)

    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        img = Image.fromarray(getattr(sd, name)())
        save(img, name + ".png")
        save(img, name + ".jpg", quality=90)
    save(Image.fromarray(sd.camera()), "camera_gray.png")             # L
    save(Image.fromarray(sd.camera()), "camera_gray.jpg", quality=85)
    save(Image.fromarray(sd.logo()), "logo_rgba.png")                 # RGBA
    save(Image.fromarray(sd.chelsea()).convert("P", palette=Image.ADAPTIVE), "chelsea_palette.png")
    rng = np.random.default_rng(7)
    for h, w in ((97, 301), (223, 223), (37, 1000), (257, 255), (513, 129)):
        # smooth gradients plus noise: something a resize has to average
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255.0 / w, yy * 255.0 / h, (xx + yy) * 127.0 / (h + w)], -1)
        arr = np.clip(base + rng.normal(0, 30, (h, w, 3)), 0, 255).astype(np.uint8)
        save(Image.fromarray(arr), "odd_%dx%d.png" % (w, h))
    save(Image.fromarray(sd.coffee()[::3, ::2]), "odd_coffee.jpg", quality=75)
    save(Image.fromarray(sd.rocket()), 'quote " name.png')            # JSON escaping
    return paths


# ---------------------------------------------------------------------------
# Running resnet
# ---------------------------------------------------------------------------

def run_predict(resnet, args):
    r = subprocess.run([resnet, "predict"] + args, capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def parse_json_lines(out):
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def compare(results, paths, ref_probs, names, what):
    """results: predict's JSON objects; ref_probs: (n, K) float64."""
    if len(results) != len(paths):
        check(False, "%s: %d results for %d images" % (what, len(results), len(paths)))
        return
    max_diff, agree, bad = 0.0, 0, []
    for res, path, ref in zip(results, paths, ref_probs):
        top = res["top"]
        idx = [t["index"] for t in top]
        k = len(idx)
        ref_order = np.argsort(-ref, kind="stable")[:k]
        diff = max(abs(t["prob"] - ref[t["index"]]) for t in top)
        max_diff = max(max_diff, diff)
        # same set, same order up to swaps of near-equal probabilities;
        # the k-th place may hold a different class only on a near tie
        order_ok = all(ref[idx[i]] >= ref[idx[i + 1]] - SWAP_TOL for i in range(k - 1))
        set_ok = set(idx) == set(ref_order.tolist()) or \
            min(ref[i] for i in idx) >= ref[ref_order[-1]] - SWAP_TOL
        labels_ok = names is None or all(t["label"] == names[t["index"]] for t in top)
        ok = res["image"] == path and order_ok and set_ok and diff <= PROB_TOL and labels_ok
        agree += idx == ref_order.tolist()
        if not ok:
            bad.append("%s (top %s vs %s, diff %.2e, labels %s)" % (
                os.path.basename(path), idx, ref_order.tolist(), diff, labels_ok))
    check(not bad, "%s: %d images, max |dprob| %.2e, exact top-%d order %d/%d%s" % (
        what, len(paths), max_diff, len(results[0]["top"]), agree, len(paths),
        "; " + "; ".join(bad) if bad else ""))
    return max_diff


def one_line_error(resnet, args, what):
    code, _, err = run_predict(resnet, args)
    lines = err.strip().splitlines()
    check(code == 1 and len(lines) == 1, "%s: exit %d, stderr %r" % (what, code, err.strip()[:200]))


# ---------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------

@torch.no_grad()
def imagenet_check(resnet, arch, d, paths, seed):
    from torchvision.models._meta import _IMAGENET_CATEGORIES as names
    model = randomize(build_model(arch, 3, 1000), seed=seed).eval()
    # sharper logits than randomize's O(1) ones, so that the top classes hold
    # probabilities of 0.1 to 0.9 rather than ~1/1000 each
    model.fc.weight.mul_(FC_SCALE)
    model.fc.bias.mul_(FC_SCALE)
    wpath = os.path.join(d, arch + ".pth")
    torch.save(model.state_dict(), wpath)
    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                             transforms.Normalize(MEAN, STD)])
    x = torch.stack([tf(pil_loader(p)) for p in paths])
    seen, maps = [], []
    layer = "layer3" if arch == "resnet18" else "stem"
    hook = model.fc.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0]))
    hook2 = getattr(model, "layer3" if layer == "layer3" else "maxpool").register_forward_hook(
        lambda mod, inp, out: maps.append(out))
    logits = torch.cat([model(x[i:i + 4]) for i in range(0, len(paths), 4)])
    hook.remove()
    hook2.remove()
    ref_feats = torch.cat(seen).double().numpy()
    ref_maps = torch.cat(maps).double().numpy()
    ref = torch.softmax(logits.double(), dim=1).numpy()
    fpath = os.path.join(d, arch + ".features.npy")
    code, out, err = run_predict(resnet, ["--weights", wpath, "--json", "--topk", "5",
                                          "--batch-size", "3", "--features", fpath] + paths)
    if code != 0:
        check(False, "%s: predict exit %d: %s" % (arch, code, err.strip()))
        return None, wpath
    feats = np.load(fpath)
    rel = float(np.abs(feats - ref_feats).max() / np.abs(ref_feats).max()) \
        if feats.shape == ref_feats.shape else float("inf")
    check(feats.shape == ref_feats.shape and rel <= 1e-4,
          "%s: --features %s (torchvision's fc input %s), max rel diff %.2e" % (
              arch, feats.shape, ref_feats.shape, rel))
    mpath = os.path.join(d, arch + ".maps.npy")
    mcode, _, merr = run_predict(resnet, ["--weights", wpath, "--batch-size", "3", "--features", mpath,
                                          "--feature-layer", layer] + paths)
    got = np.load(mpath) if mcode == 0 else np.zeros(0)
    mrel = float(np.abs(got - ref_maps).max() / np.abs(ref_maps).max()) \
        if got.shape == ref_maps.shape else float("inf")
    check(mcode == 0 and mrel <= 1e-4, "%s: --feature-layer %s %s (torchvision's %s), max rel diff %.2e %s" % (
        arch, layer, got.shape, ref_maps.shape, mrel, merr.strip()))
    return compare(parse_json_lines(out), paths, ref, names, arch + " (.pth, ImageNet)"), wpath


@torch.no_grad()
def dataset_check(resnet, d, paths, kind, arch, channels, size, normalize, names):
    """A checkpoint as `resnet train` writes it for an in-memory dataset."""
    model = randomize(build_model(arch, channels, 10), seed=11, calib_size=size).eval()
    tag = "norm" if normalize else "plain"
    wpath = os.path.join(d, "%s_%s.safetensors" % (kind, tag))
    norm_text = "none"
    if normalize:
        norm_text = ",".join("%g" % m for m in normalize[0]) + ":" + ",".join("%g" % s for s in normalize[1])
    meta = {"arch": arch, "in_channels": str(channels), "num_classes": "10", "image_size": str(size),
            "dataset": kind, "stem": "imagenet", "normalize": norm_text}
    save_safetensors(wpath, model.state_dict(), metadata=meta)
    steps = [transforms.Resize((size, size)), transforms.ToTensor()]
    if normalize:
        steps.append(transforms.Normalize(*normalize))
    tf = transforms.Compose(steps)
    x = torch.stack([tf(pil_loader(p, "L" if channels == 1 else "RGB")) for p in paths])
    ref = torch.softmax(model(x).double(), dim=1).numpy()
    code, out, err = run_predict(resnet, ["--weights", wpath, "--json", "--topk", "10"] + paths)
    what = "%s %s (%s, %dx%d, %d channel%s)" % (kind, arch, tag, size, size, channels, "s" * (channels > 1))
    if code != 0:
        check(False, "%s: predict exit %d: %s" % (what, code, err.strip()))
        return None, wpath
    return compare(parse_json_lines(out), paths, ref, names, what), wpath


def cli_checks(resnet, d, paths, fm_weights, in_weights):
    # --labels overrides the names
    lab = os.path.join(d, "labels.txt")
    names = ["class-%d \"q\"" % i for i in range(10)]
    with open(lab, "w") as f:
        f.write("\n".join(names) + "\n")
    code, out, err = run_predict(resnet, ["--weights", fm_weights, "--labels", lab, "--json", "--topk", "3",
                                          paths[0]])
    ok = code == 0
    if ok:
        res = parse_json_lines(out)
        ok = len(res) == 1 and all(t["label"] == names[t["index"]] for t in res[0]["top"]) and \
            len(res[0]["top"]) == 3
    check(ok, "--labels FILE overrides the class names (exit %d %s)" % (code, err.strip()))
    short = os.path.join(d, "labels_short.txt")
    with open(short, "w") as f:
        f.write("a\nb\nc\n")
    one_line_error(resnet, ["--weights", fm_weights, "--labels", short, paths[0]],
                   "--labels with 3 names for 10 classes")
    # broken inputs
    one_line_error(resnet, ["--weights", fm_weights, paths[0], os.path.join(d, "missing.png")],
                   "a missing image")
    garbage = os.path.join(d, "garbage.jpg")
    with open(garbage, "wb") as f:
        f.write(b"this is not an image at all" * 10)
    one_line_error(resnet, ["--weights", fm_weights, paths[0], garbage], "a corrupt image")
    trunc = os.path.join(d, "truncated.jpg")
    src = next(p for p in paths if p.endswith(".jpg"))
    with open(src, "rb") as f:
        data = f.read()
    with open(trunc, "wb") as f:
        f.write(data[:len(data) // 3])
    one_line_error(resnet, ["--weights", fm_weights, trunc], "a truncated JPEG")
    # a folder: its images in ImageFolder's order, as if listed so (one given twice, once inside)
    import shutil
    tree = os.path.join(d, "tree")
    os.makedirs(os.path.join(tree, "b", "a"))
    os.makedirs(os.path.join(tree, "A"))
    os.makedirs(os.path.join(tree, "b-c"))
    os.makedirs(os.path.join(d, "empty", "sub"))
    pngs = [p for p in paths if p.endswith(".png")][:3]
    jpg = next(p for p in paths if p.endswith(".jpg"))
    for src, dst in ((pngs[0], "z.png"), (jpg, "b/Y.JPG"), (pngs[1], "b/a/x.PNG"), (pngs[2], "A/w.png"),
                     (jpg, "a.jpeg"), (pngs[1], "b-c/v.png")):
        shutil.copy(src, os.path.join(tree, dst))
    with open(os.path.join(tree, "b", "notes.txt"), "w") as f:
        f.write("not an image\n")
    def images_of(names, root):
        return [os.path.join(root, n) for n in sorted(names) if n.lower().endswith((".png", ".jpg", ".jpeg"))]
    listed = images_of([n for n in os.listdir(tree) if os.path.isfile(os.path.join(tree, n))], tree)
    for sub in sorted(n for n in os.listdir(tree) if os.path.isdir(os.path.join(tree, n))):
        for root, _, names in sorted(os.walk(os.path.join(tree, sub), followlinks=True)):
            listed += images_of(names, root)
    code1, out1, err1 = run_predict(resnet, ["--weights", fm_weights, "--json", "--topk", "3", tree + "/", pngs[0]])
    code2, out2, err2 = run_predict(resnet, ["--weights", fm_weights, "--json", "--topk", "3"] + listed + [pngs[0]])
    got = [r["image"] for r in parse_json_lines(out1)] if code1 == 0 else []
    check(code1 == 0 and code2 == 0 and len(listed) == 6 and got == listed + [pngs[0]] and
          [r["top"] for r in parse_json_lines(out1)] == [r["top"] for r in parse_json_lines(out2)],
          "a folder stands for its images, its sub-folders in ImageFolder's order (exit %d %s): %s" % (
              code1, err1.strip(), got))
    one_line_error(resnet, ["--weights", fm_weights, pngs[0], os.path.join(d, "empty")], "a folder without images")
    with open(os.path.join(tree, "b", "a", "v.bmp"), "wb") as f:
        f.write(b"BM")
    one_line_error(resnet, ["--weights", fm_weights, tree], "a folder holding a .bmp")
    # --features: refused over an image it reads; a run that fails on an image leaves no file
    # (the truncated JPEG's header passes the probe; its decoding fails after the file is begun)
    before = open(paths[0], "rb").read()
    code, _, err = run_predict(resnet, ["--weights", fm_weights, "--features", paths[0], paths[0]])
    check(code == 2 and "is the same file as an IMAGE" in err and open(paths[0], "rb").read() == before,
          "--features naming an IMAGE refused: exit %d, stderr %r" % (code, err.strip()[:200]))
    fpath = os.path.join(d, "failed.features.npy")
    code, _, err = run_predict(resnet, ["--weights", fm_weights, "--features", fpath, paths[0], trunc])
    left = [f for f in os.listdir(d) if f.startswith(".failed") or f.startswith("failed")]
    check(code == 1 and not left, "a failed predict leaves no --features file: exit %d, left %s" % (code, left))
    one_line_error(resnet, ["--weights", os.path.join(d, "none.pth"), paths[0]], "a missing weights file")
    # text output: a block per image, with names
    code, out, err = run_predict(resnet, ["--weights", fm_weights, "--topk", "2"] + paths[:3])
    ok = code == 0 and all(p in out for p in paths[:3]) and any(n in out for n in FASHION)
    check(ok, "text output names every image and its classes")
    # the weird path round-trips through JSON
    q = next(p for p in paths if '"' in p)
    code, out, err = run_predict(resnet, ["--weights", in_weights, "--json", "--topk", "1", q])
    ok = code == 0 and parse_json_lines(out)[0]["image"] == q
    check(ok, "a path with a quote and spaces is JSON-escaped")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--resnet", required=True, help="the resnet binary")
    ap.add_argument("--archs", default="resnet18,resnet50")
    ap.add_argument("--keep", help="write the images and weights here instead of a temporary folder")
    args = ap.parse_args()
    torch.set_num_threads(2)
    resnet = os.path.abspath(args.resnet)
    with tempfile.TemporaryDirectory() as tmp:
        d = args.keep or tmp
        os.makedirs(d, exist_ok=True)
        paths = make_images(d)
        in_weights = None
        for i, arch in enumerate(args.archs.split(",")):
            _, w = imagenet_check(resnet, arch, d, paths, seed=3 + i)
            in_weights = in_weights or w
        fm_paths = [p for p in paths if "odd_" in p or "camera" in p or "coffee.png" in p]
        _, fm = dataset_check(resnet, d, fm_paths, "fashion-mnist", "d2l_resnet18", 1, 28, None, FASHION)
        dataset_check(resnet, d, fm_paths, "fashion-mnist", "d2l_resnet18", 1, 28, ([0.286], [0.353]), FASHION)
        dataset_check(resnet, d, fm_paths, "mnist", "d2l_resnet18", 1, 28, None, [str(i) for i in range(10)])
        dataset_check(resnet, d, fm_paths, "cifar10", "resnet18", 3, 32,
                      ([0.4914, 0.4822, 0.4465], [0.247, 0.243, 0.261]), CIFAR10)
        cli_checks(resnet, d, paths, fm, in_weights)
    print("predict_parity: %d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0  # no check run is a failure


if __name__ == "__main__":
    sys.exit(main())
