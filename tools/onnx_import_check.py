#!/usr/bin/python3
"""`--weights model.onnx`: ResNets exported by torch.onnx.export load by graph structure; others are refused.

    /usr/bin/python3 tools/onnx_import_check.py --resnet build/resnet [--tol 1e-4]

Models come from torchvision (and tools/rn_models.py for the D2L ResNet and the CIFAR stem)
with random weights and non-trivial BatchNorm statistics, exported by PyTorch 1.13's
torch.onnx.export in eval mode: with BatchNorm folded into the convolutions (the exporter's
default, with its Identity nodes over shared initializers) and kept (TrainingMode.PRESERVE,
no constant folding), with a dynamic or a fixed batch, opsets 13 to 17. The initializers'
names are torch's ("onnx::Conv_193"), so only the graph's structure can place them.

Accepted: `resnet convert` names the architecture expected, and `resnet forward --weights
X.onnx` gives PyTorch's logits, rel = max|y - y_ref| / max|y_ref| <= tol.
Refused (exit 1, one line on stderr naming the first ONNX node that does not fit):
a ReLU turned into a Sigmoid, a Softmax after the classifier, MobileNetV2, a normalisation
baked in front of the network, and a truncated file (named with its offset). Refused too,
naming the initializer: the stem's weights with values in a field that does not match their
type (FLOAT16 values in float_data, FLOAT ones in int64_data or double_data) or with raw_data
4 bytes short. Graphs edited as other exporters write them: the stem's or fc's weights behind
an Identity node and MaxPool's auto_pad NOTSET read as before; a Gemm of four inputs and an
attribute of the wrong type (BatchNorm's epsilon an INT) and weights stored as a
sparse_initializer refused. A BatchNorm of epsilon 1e-7
over variances of 0 gives PyTorch's logits.
"""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from rn_models import build_model, randomize  # noqa: E402


def export(model, path, size, in_ch, opset, folded=True, dynamic=True):
    x = torch.randn(2, in_ch, size, size)
    kw = {} if folded else {"training": torch.onnx.TrainingMode.PRESERVE, "do_constant_folding": False}
    dyn = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic else None
    with torch.no_grad():
        torch.onnx.export(model, x, path, input_names=["input"], output_names=["logits"],
                          dynamic_axes=dyn, opset_version=opset, **kw)


def resnet(args, *cmd):
    return subprocess.run([args.resnet] + list(cmd), capture_output=True, text=True)


# (name, arch, stem, in_channels, classes, opset, folded, dynamic, expected architecture[, width])
ACCEPT = [
    ("resnet18 folded, dynamic batch", "resnet18", "imagenet", 3, 10, 13, True, True, "resnet18"),
    ("resnet18 BatchNorm kept", "resnet18", "imagenet", 3, 10, 15, False, True, "resnet18"),
    ("resnet50 folded, fixed batch", "resnet50", "imagenet", 3, 10, 17, True, False, "resnet50"),
    ("resnext50_32x4d folded", "resnext50_32x4d", "imagenet", 3, 7, 14, True, True, "resnext50_32x4d"),
    ("D2L ResNet-18 BatchNorm kept", "d2l_resnet18", "imagenet", 1, 10, 13, False, True, "d2l_resnet18"),
    # folded, the D2L network is a resnet18 with conv biases: it loads as one
    ("D2L ResNet-18 folded", "d2l_resnet18", "imagenet", 1, 10, 13, True, True, "resnet18"),
    ("resnet18 CIFAR stem folded", "resnet18", "cifar", 3, 10, 16, True, True, "resnet18"),
    # narrower networks (resnet train --width): the width is read off the stem conv
    ("resnet50 width 32 folded", "resnet50", "imagenet", 3, 10, 13, True, True, "resnet50", 32),
    ("D2L ResNet-18 width 32 BatchNorm kept", "d2l_resnet18", "imagenet", 1, 10, 13, False, True, "d2l_resnet18",
     32),
]


def check_accept(args, tmp, case):
    name, arch, stem, in_ch, classes, opset, folded, dynamic, want = case[:9]
    width = case[9] if len(case) > 9 else 64
    size = 32 if stem == "cifar" else 64
    model = randomize(build_model(arch, in_ch, classes, stem, width), seed=3, calib_size=size).eval()
    path = os.path.join(tmp, "m.onnx")
    export(model, path, size, in_ch, opset, folded, dynamic)
    x = torch.randn(2, in_ch, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x).double().numpy()
    np.save(os.path.join(tmp, "x.npy"), x.numpy())
    conv = resnet(args, "convert", path, os.path.join(tmp, "m.safetensors"))
    if conv.returncode != 0:
        return "convert failed: " + conv.stderr.strip()
    if ": %s, width %d," % (want, width) not in conv.stdout:
        return "convert read it as another architecture: " + conv.stdout.strip()
    fwd = resnet(args, "forward", "--weights", path, "--input", os.path.join(tmp, "x.npy"), "--output",
                 os.path.join(tmp, "y.npy"))
    if fwd.returncode != 0:
        return "forward failed: " + fwd.stderr.strip()
    y = np.load(os.path.join(tmp, "y.npy"))
    rel = float(np.abs(y - ref).max() / np.abs(ref).max())
    if not rel <= args.tol:
        return "logits differ from PyTorch: rel %.2e > %g" % (rel, args.tol)
    return "ok (%s, rel %.1e)" % (want, rel)


class Normalized(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def refuse_models():
    import torchvision
    r = build_model("resnet18", 3, 10).eval()
    r.layer2[0].relu = nn.Sigmoid()
    yield "a ReLU turned into a Sigmoid", r, ["Sigmoid", "/layer2/layer2.0/relu/Sigmoid"]
    yield "a Softmax after the classifier", nn.Sequential(build_model("resnet18", 3, 10), nn.Softmax(1)).eval(), \
        ["Softmax", "classifier"]
    # its first conv (32 channels, 3x3) fits a ResNet stem of width 32 but for its stride 2
    yield "MobileNetV2", torchvision.models.mobilenet_v2(num_classes=10).eval(), \
        ["/features/features.0/features.0.0/Conv", "stride 1"]
    yield "a normalisation in front", Normalized(build_model("resnet18", 3, 10)).eval(), \
        ["Sub", "starts with a convolution"]


def check_refuse(args, tmp, name, model, words):
    path = os.path.join(tmp, "bad.onnx")
    export(model, path, 64, 3, 13)
    return expect_refusal(args, tmp, path, words)


def expect_refusal(args, tmp, path, words):
    p = resnet(args, "forward", "--weights", path, "--input", os.path.join(tmp, "x.npy"), "--output",
               os.path.join(tmp, "y.npy"))
    err = p.stderr.strip()
    if p.returncode != 1 or len(err.splitlines()) != 1:
        return "expected exit 1 and one line on stderr, got exit %d: %r" % (p.returncode, err)
    missing = [w for w in words if w not in err]
    if missing:
        return "the message lacks %s: %s" % (missing, err)
    return "refused: " + err.split(": ", 1)[1]


def bad_initializers(src):
    """(name, model, words): the stem conv's weights stored wrongly, one way each."""
    import onnx
    base = onnx.load(src)
    first = next(n for n in base.graph.node if n.op_type == "Conv").input[1]

    def edit(fn):
        m = onnx.ModelProto()
        m.CopyFrom(base)
        t = next(i for i in m.graph.initializer if i.name == first)
        count = int(np.prod(t.dims))
        t.ClearField("raw_data")
        fn(t, count)
        return m

    def f16_in_float_data(t, count):
        t.data_type = onnx.TensorProto.FLOAT16
        t.float_data.extend([1.0])

    def float_in_int64_data(t, count):
        t.int64_data.extend([1])

    def float_in_double_data(t, count):
        t.double_data.extend([0.5] * count)

    def short_raw_data(t, count):
        t.raw_data = np.zeros(count - 1, np.float32).tobytes()

    not_read = [first, "not read"]
    yield "FLOAT16 values in float_data", edit(f16_in_float_data), not_read
    yield "FLOAT values in int64_data", edit(float_in_int64_data), not_read
    yield "FLOAT values in double_data", edit(float_in_double_data), not_read
    yield "raw_data 4 bytes short", edit(short_raw_data), [first, "holds %d bytes" % (4 * (
        int(np.prod(next(i for i in base.graph.initializer if i.name == first).dims)) - 1))]


def graph_edits():
    """(name, edit, words): a BatchNorm-kept resnet18 edited as other exporters write it; words
    None: read as before (PyTorch's logits), else refused with them in the message."""
    import onnx
    from onnx import helper

    def through_identity(op):
        def edit(m):
            node = next(n for n in m.graph.node if n.op_type == op)
            w = node.input[1]
            node.input[1] = w + "_id"
            m.graph.node.insert(0, helper.make_node("Identity", [w], [w + "_id"]))
        return edit

    def maxpool_notset(m):
        next(n for n in m.graph.node if n.op_type == "MaxPool").attribute.append(
            helper.make_attribute("auto_pad", "NOTSET"))

    def gemm_fourth_input(m):
        g = next(n for n in m.graph.node if n.op_type == "Gemm")
        g.input.append(g.input[2])

    def epsilon_int(m):
        bn = next(n for n in m.graph.node if n.op_type == "BatchNormalization")
        keep = [a for a in bn.attribute if a.name != "epsilon"]
        del bn.attribute[:]
        bn.attribute.extend(keep + [helper.make_attribute("epsilon", 0)])

    def stem_sparse(m):
        from onnx import numpy_helper
        w = next(n for n in m.graph.node if n.op_type == "Conv").input[1]
        t = next(i for i in m.graph.initializer if i.name == w)
        a = numpy_helper.to_array(t).ravel()
        nz = np.nonzero(a)[0]
        values = numpy_helper.from_array(a[nz], w)
        indices = numpy_helper.from_array(nz.astype(np.int64), w + "_indices")
        m.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, list(t.dims)))
        m.graph.initializer.remove(t)

    yield "the stem's weights through Identity", through_identity("Conv"), None
    yield "fc's weights through Identity", through_identity("Gemm"), None
    yield "MaxPool auto_pad NOTSET", maxpool_notset, None
    yield "a Gemm of four inputs", gemm_fourth_input, ["Gemm", "4 inputs"]
    yield "BatchNorm epsilon an INT", epsilon_int, ["epsilon", "INT", "FLOAT"]
    yield "the stem's weights a sparse_initializer", stem_sparse, ["1 sparse initializer", "dense initializers"]


def check_edits(args, tmp):
    """Each of graph_edits on one exported model; returns the count of failures."""
    import onnx
    model = randomize(build_model("resnet18", 3, 10), seed=5, calib_size=64).eval()
    src = os.path.join(tmp, "kept.onnx")
    export(model, src, 64, 3, 13, folded=False)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = model(x).double().numpy()
    failed = 0
    for name, edit, words in graph_edits():
        m = onnx.load(src)
        edit(m)
        path = os.path.join(tmp, "edited.onnx")
        onnx.save(m, path)
        if words is not None:
            np.save(os.path.join(tmp, "x.npy"), x.numpy())
            msg = expect_refusal(args, tmp, path, words)
            failed += not msg.startswith("refused")
        else:
            msg = forward_matches(args, tmp, path, x, ref)
            failed += not msg.startswith("ok")
        print("%-34s %s" % (name, msg), flush=True)
    return failed + check_small_epsilon(args, tmp, model, x)


def forward_matches(args, tmp, path, x, ref):
    """`resnet forward --weights path` on x against PyTorch's logits ref: "ok (rel ...)" or why not."""
    np.save(os.path.join(tmp, "x.npy"), x.numpy())
    fwd = resnet(args, "forward", "--weights", path, "--input", os.path.join(tmp, "x.npy"),
                 "--output", os.path.join(tmp, "y.npy"))
    if fwd.returncode != 0:
        return "forward failed: " + fwd.stderr.strip()
    y = np.load(os.path.join(tmp, "y.npy"))
    rel = float(np.abs(y - ref).max() / np.abs(ref).max())
    return "ok (rel %.1e)" % rel if rel <= args.tol else "logits differ: rel %.2e" % rel


def check_small_epsilon(args, tmp, model, x):
    """A BatchNorm of epsilon 1e-7 over variances of 0 gives PyTorch's logits: resnet.c's
    BatchNorm adds 1e-5, so the import stores var + 1e-7 - 1e-5 (negative here, as PyTorch would
    hold it: only var + eps is ever used). Returns 1 on failure."""
    import copy
    m = copy.deepcopy(model)
    with torch.no_grad():
        m.bn1.eps = 1e-7
        m.bn1.running_var[:8] = 0.0
        ref = m(x).double().numpy()
    path = os.path.join(tmp, "eps.onnx")
    export(m, path, 64, 3, 13, folded=False)
    msg = forward_matches(args, tmp, path, x, ref)
    print("%-34s %s" % ("BatchNorm eps 1e-7, variances 0", msg), flush=True)
    return not msg.startswith("ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resnet", default="build/resnet")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="rn_onnx_import_") as tmp:
        for case in ACCEPT:
            msg = check_accept(args, tmp, case)
            failed += not msg.startswith("ok")
            print("%-34s %s" % (case[0], msg), flush=True)
        np.save(os.path.join(tmp, "x.npy"), np.zeros((1, 3, 64, 64), np.float32))
        for name, model, words in refuse_models():
            msg = check_refuse(args, tmp, name, model, words)
            failed += not msg.startswith("refused")
            print("%-34s %s" % (name, msg), flush=True)
        good = os.path.join(tmp, "good.onnx")
        export(build_model("resnet18", 3, 10).eval(), good, 64, 3, 13)
        import onnx
        for name, model, words in bad_initializers(good):
            path = os.path.join(tmp, "bad.onnx")
            onnx.save(model, path)
            msg = expect_refusal(args, tmp, path, words)
            failed += not msg.startswith("refused")
            print("%-34s %s" % (name, msg), flush=True)
        failed += check_edits(args, tmp)
        # a truncated file: a protobuf error with the offset
        with open(os.path.join(tmp, "m.onnx"), "rb") as f:
            data = f.read()
        cut = os.path.join(tmp, "cut.onnx")
        with open(cut, "wb") as f:
            f.write(data[: len(data) // 2])
        msg = expect_refusal(args, tmp, cut, ["malformed", "offset"])
        failed += not msg.startswith("refused")
        print("%-34s %s" % ("a truncated file", msg), flush=True)
    print("onnx_import_check: %d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
