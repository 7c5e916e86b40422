#!/usr/bin/python3
"""Reference gradients: one forward + backward of the mean cross-entropy loss.

    /usr/bin/python3 tools/grad_ref.py --arch A --weights W.safetensors \\
        --input X.npy --labels Y.npy --out G.safetensors \\
        [--label-smoothing S] [--f64] [--threads T]
    /usr/bin/python3 tools/grad_ref.py --selftest

Builds `A` (tools/rn_models.py; in_channels and num_classes from the file's
metadata, else from the first conv's and fc's shapes; --arch may be omitted
when the metadata names it), loads W with load_state_dict(strict=True),
converts the model and the input to float64, and in train mode (BatchNorm
normalizes with the batch statistics, biased variance) computes

    loss = CrossEntropyLoss(label_smoothing=S, reduction="mean")(model(X), Y)

and its gradient. Writes G.safetensors with one tensor per parameter, named
as in the state_dict (model.named_parameters(): weights and biases, not the
BatchNorm buffers), plus "loss" of shape (1,). Tensors are F32 (the float64
values rounded once) or F64 with --f64.

X.npy: float32/float64 (N, C, H, W). Y.npy: (N) class indices, integer or
whole-valued float (resnet.c writes float32 .npy only).
Exit status 0 on success, 1 on error (with a message).
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from rn_models import ARCHS, build_model, metadata, randomize  # noqa: E402
from st_io import load_safetensors, save_safetensors  # noqa: E402

# ---------------------------------------------------------------------------
# Shared with train_ref.py
# ---------------------------------------------------------------------------

FIRST_CONV_KEYS = ("conv.block.0.weight", "conv1.weight")


def load_model(weights, arch=None):
    """The model of `weights` (safetensors, PyTorch names), strictly loaded,
    float32, train mode. Returns (model, arch, in_channels, num_classes)."""
    tensors, meta = load_safetensors(weights)
    arch = arch or meta.get("arch")
    if not arch:
        raise ValueError("%s: no arch in the metadata; give --arch" % weights)
    if arch not in ARCHS:
        raise ValueError("unknown arch %r (known: %s)" % (arch, ", ".join(ARCHS)))
    if "in_channels" in meta and "num_classes" in meta:
        cin, k = int(meta["in_channels"]), int(meta["num_classes"])
    else:
        conv = next((tensors[n] for n in FIRST_CONV_KEYS if n in tensors), None)
        if conv is None or "fc.weight" not in tensors:
            raise ValueError("%s: cannot infer in_channels/num_classes" % weights)
        cin, k = int(conv.shape[1]), int(tensors["fc.weight"].shape[0])
    conv = next((tensors[n] for n in FIRST_CONV_KEYS if n in tensors), None)
    stem = "cifar" if conv is not None and conv.shape[2] == 3 else "imagenet"
    model = build_model(arch, cin, k, stem=stem)
    state = {n: t.float() if t.is_floating_point() else t for n, t in tensors.items()}
    model.load_state_dict(state, strict=True)
    missing = [n for n in model.state_dict() if n not in state]
    if missing:  # load_state_dict forgives a missing num_batches_tracked
        raise ValueError("%s: missing %s" % (weights, ", ".join(missing)))
    model.train()
    return model, arch, cin, k


def load_input(path):
    x = np.load(path)
    if x.ndim != 4 or x.dtype.kind != "f":
        raise ValueError("%s: expected a float (N, C, H, W) array, got %s %s"
                         % (path, x.dtype, x.shape))
    return torch.from_numpy(np.ascontiguousarray(x))


def load_labels(path, n, num_classes):
    y = np.load(path).reshape(-1)
    if y.shape[0] != n:
        raise ValueError("%s: %d labels for %d images" % (path, y.shape[0], n))
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError("%s: labels are not whole numbers" % path)
    elif y.dtype.kind not in "iu":
        raise ValueError("%s: labels of dtype %s" % (path, y.dtype))
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError("%s: labels outside 0..%d" % (path, num_classes - 1))
    return torch.from_numpy(y)


# ---------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------

def gradients(model, x, y, label_smoothing=0.0):
    """float64 train-mode loss and {name: grad} (model is converted in place)."""
    model.double().train()
    model.zero_grad(set_to_none=True)
    loss = nn.CrossEntropyLoss(label_smoothing=label_smoothing)(model(x.double()), y)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    return loss.detach(), grads


def write_gradients(path, loss, grads, f64=False):
    out = dict(grads)
    out["loss"] = loss.reshape(1)
    save_safetensors(path, out, dtype="F64" if f64 else "F32")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch")
    ap.add_argument("--weights")
    ap.add_argument("--input")
    ap.add_argument("--labels")
    ap.add_argument("--out")
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--f64", action="store_true", help="write F64 tensors (default F32)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--selftest", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.selftest:
        return selftest()
    for opt in ("weights", "input", "labels", "out"):
        if getattr(a, opt) is None:
            ap.error("--%s is required" % opt)
    try:
        model, arch, cin, k = load_model(a.weights, a.arch)
        x = load_input(a.input)
        if x.shape[1] != cin:
            raise ValueError("%s: %d channels, the model takes %d" % (a.input, x.shape[1], cin))
        y = load_labels(a.labels, x.shape[0], k)
        loss, grads = gradients(model, x, y, a.label_smoothing)
        write_gradients(a.out, loss, grads, a.f64)
    except (ValueError, OSError, RuntimeError) as e:
        print("grad_ref: %s" % e, file=sys.stderr)
        return 1
    print("grad_ref: %s, batch %d, loss %.10g, %d gradients -> %s"
          % (arch, x.shape[0], float(loss), len(grads), a.out))
    return 0


# ---------------------------------------------------------------------------
# Self-test: the CLI end to end, and the gradient against finite differences
# ---------------------------------------------------------------------------

def selftest():
    import copy
    import tempfile
    torch.manual_seed(0)
    arch, cin, k, n = "d2l_resnet18", 1, 10, 4
    model = randomize(build_model(arch, cin, k), seed=3)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(n, cin, 32, 32, generator=g)
    y = torch.tensor([3, 0, 9, 3])
    with tempfile.TemporaryDirectory() as d:
        w, xp, yp, gp = (os.path.join(d, f) for f in ("w.safetensors", "x.npy", "y.npy",
                                                        "g.safetensors"))
        save_safetensors(w, model.state_dict(), metadata(arch, cin, k))
        np.save(xp, x.numpy())
        np.save(yp, y.numpy().astype(np.float32))          # as resnet.c writes labels
        assert main(["--weights", w, "--input", xp, "--labels", yp, "--out", gp,
                     "--label-smoothing", "0.1", "--f64"]) == 0
        got, _ = load_safetensors(gp)
        names = [nm for nm, _ in model.named_parameters()]
        assert sorted(got) == sorted(names + ["loss"]), "tensor names"
        assert got["loss"].shape == (1,) and got["loss"].dtype == torch.float64
        # the same through the library functions, float32 output
        assert main(["--weights", w, "--input", xp, "--labels", yp, "--out", gp,
                     "--label-smoothing", "0.1"]) == 0
        got32, _ = load_safetensors(gp)
        assert got32["fc.weight"].dtype == torch.float32
        assert torch.allclose(got32["fc.weight"].double(), got["fc.weight"], rtol=1e-6,
                              atol=1e-9)
        # bad labels are refused with a message
        np.save(yp, np.array([0.5, 1, 2, 3], dtype=np.float32))
        assert main(["--weights", w, "--input", xp, "--labels", yp, "--out", gp]) == 1

    # central differences in float64 on a few entries of several tensors
    m64 = copy.deepcopy(model)
    loss0, grads = gradients(m64, x, y, 0.1)
    assert abs(float(loss0) - float(got["loss"][0])) < 1e-12
    params = dict(m64.named_parameters())
    gen = torch.Generator().manual_seed(5)
    worst = 0.0
    for name in ("conv.block.0.weight", "conv.block.1.weight", "conv.resnet_block2.0.conv3.bias",
                 "conv.resnet_block4.1.bn2.bias", "fc.weight", "fc.bias"):
        p = params[name]
        flat = p.detach().view(-1)
        for idx in torch.randint(0, flat.numel(), (3,), generator=gen).tolist():
            h = 1e-6
            with torch.no_grad():
                old = float(flat[idx])
                flat[idx] = old + h
                lp = nn.CrossEntropyLoss(label_smoothing=0.1)(m64(x.double()), y)
                flat[idx] = old - h
                lm = nn.CrossEntropyLoss(label_smoothing=0.1)(m64(x.double()), y)
                flat[idx] = old
            fd = float(lp - lm) / (2 * h)
            an = float(grads[name].view(-1)[idx])
            assert abs(fd - an) <= 1e-6 * max(1.0, abs(an)), (name, idx, fd, an)
            assert abs(an - float(got[name].view(-1)[idx])) <= 1e-12 * max(1.0, abs(an))
            worst = max(worst, abs(fd - an))
    print("grad_ref selftest OK (finite differences agree to %.2g)" % worst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
