"""Writes the seed corpora of the libFuzzer targets (tests/fuzz/corpus/TARGET/).

    /usr/bin/python3 tools/make_fuzz_seeds.py [OUTDIR]     (default tests/fuzz/corpus)

Small valid files of every kind the targets read, and a few that must be
refused, so the fuzzers start from inside the formats. The seeds are committed;
this script says where they came from and rebuilds them. Input layouts are
those of tests/fuzz/fuzz_*.c: IDX and CIFAR inputs are two files behind a
2-byte little-endian length of the first; image inputs start with a flag byte;
.pth inputs are either a zip as it is or a list of records (u8 name length,
name, u32 data length, data) that the target packs into a zip; ONNX inputs are
models exported by PyTorch's torch.onnx.export (narrow ResNets, BatchNorm folded
and kept).
"""
import gzip
import io
import json
import os
import struct
import sys
import tempfile
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402


def write(d, name, data):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def two_files(a, b):
    return struct.pack("<H", len(a)) + a + b


# ---- safetensors and checkpoints ------------------------------------------------


def st_bytes(tensors, metadata=None, dtype=None):
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "x.safetensors")
        st_io.save_safetensors(p, tensors, metadata=metadata, dtype=dtype)
        return open(p, "rb").read()


def safetensors_seeds(d):
    rng = np.random.default_rng(0)
    write(d, "f32_meta.safetensors", st_bytes(
        {"a": rng.standard_normal((2, 3)).astype(np.float32), "b": np.arange(4, dtype=np.int64)},
        metadata={"arch": "resnet18", "note": "caf\u00e9"}))
    write(d, "dtypes.safetensors", st_bytes(
        {"h": np.array([1.0, -2.0, np.inf], np.float32), "bf": np.array([0.5, np.nan], np.float32),
         "d": np.array([[1e-40, 3.0]], np.float64), "s": np.array(7.0, np.float32)},
        dtype={"h": "F16", "bf": "BF16", "d": "F64", "s": "F32"}))
    write(d, "empty.safetensors", st_bytes({}))
    write(d, "zero_size.safetensors", st_bytes({"z": np.zeros((0, 4), np.float32)}))
    write(d, "bad_overlap.safetensors", struct.pack("<Q", 96) + json.dumps(
        {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}).encode().ljust(96) + bytes(12))


def checkpoint_seeds(d):
    """Checkpoint metadata: a weights file and its optimizer state as `resnet
    train` writes them (two files behind a length), the tensors shrunk."""
    weights = st_bytes(
        {"conv1.weight": np.zeros((2, 3, 7, 7), np.float32), "fc.weight": np.zeros((10, 2), np.float32)},
        metadata={"format": "pt", "arch": "resnet18", "in_channels": "3", "num_classes": "10",
                  "image_size": "32", "normalize": "0.4914,0.4822,0.4465:0.247,0.243,0.261",
                  "dataset": "cifar10", "stem": "cifar", "class_names": "airplane\nautomobile",
                  "run_id": "3f2a9c41d07b6e85", "step": "120"})
    state = st_bytes(
        {"optimizer.momentum_buffer": np.zeros(4, np.float32), "optimizer.step": np.array([120], np.int64)},
        metadata={"optimizer": "sgd", "arch": "resnet18", "n_params": "4", "epoch": "3",
                  "position": "1280", "seed": "7", "run_id": "3f2a9c41d07b6e85", "step": "120"})
    other = st_bytes(
        {"optimizer.step": np.array([5], np.int64)},
        metadata={"optimizer": "adamw", "arch": "resnet50", "epoch": "-1", "position": "1e3",
                  "seed": "99999999999999999999", "run_id": "zz", "step": " 5"})
    write(d, "pair.ckpt", two_files(weights, state))
    write(d, "mismatched.ckpt", two_files(weights, other))
    write(d, "no_state.ckpt", two_files(weights, b""))


# ---- .pth ------------------------------------------------------------------------


def records(zip_bytes):
    out = b""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as z:
        for info in z.infolist():
            name, data = info.filename.encode(), z.read(info)
            out += bytes([len(name)]) + name + struct.pack("<I", len(data)) + data
    return out


def pth_seeds(d):
    import torch
    import make_pth_corpus
    with tempfile.TemporaryDirectory() as tmp:
        for sub in ("valid", "hostile"):
            os.makedirs(os.path.join(tmp, sub))
        ents = make_pth_corpus.make_valid(os.path.join(tmp, "valid"))
        make_pth_corpus.make_hostile(os.path.join(tmp, "hostile"), ents)
        for sub in ("valid", "hostile"):
            for name in sorted(os.listdir(os.path.join(tmp, sub))):
                if not name.endswith(".pth"):
                    continue
                data = open(os.path.join(tmp, sub, name), "rb").read()
                if len(data) > 6000:
                    continue
                write(d, "%s_%s" % (sub, name), data)
                try:
                    write(d, "%s_%s.records" % (sub, name[:-4]), records(data))
                except Exception:  # noqa: BLE001 (hostile archives zipfile cannot read)
                    pass
        sd = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "n": torch.tensor(3)}
        buf = io.BytesIO()
        torch.save(sd, buf)
        write(d, "tiny_state_dict.pth", buf.getvalue())
        write(d, "tiny_state_dict.records", records(buf.getvalue()))


# ---- .npy -------------------------------------------------------------------------


def npy_bytes(arr, version=None, fortran=False):
    b = io.BytesIO()
    if version:
        np.lib.format.write_array(b, np.asfortranarray(arr) if fortran else arr, version=version)
    else:
        np.save(b, np.asfortranarray(arr) if fortran else arr)
    return b.getvalue()


def npy_seeds(d):
    a = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    write(d, "f4_4d.npy", npy_bytes(a))
    write(d, "f4_scalar.npy", npy_bytes(np.float32(1.5)))
    write(d, "f4_empty.npy", npy_bytes(np.zeros((0, 3), np.float32)))
    write(d, "f4_v2.npy", npy_bytes(a[0, 0], version=(2, 0)))
    write(d, "f4_fortran.npy", npy_bytes(a[0, 0], fortran=True))
    write(d, "f8.npy", npy_bytes(a[0, 0].astype(np.float64)))
    write(d, "f4_big_endian.npy", npy_bytes(a[0, 0].astype(">f4")))


# ---- IDX and CIFAR-10 -----------------------------------------------------------------


def idx_seeds(d):
    n, r, c = 3, 4, 5
    images = struct.pack(">IIII", 0x803, n, r, c) + bytes(range(n * r * c))
    labels = struct.pack(">II", 0x801, n) + bytes([0, 9, 4])
    write(d, "raw.idx", two_files(images, labels))
    write(d, "gzip.idx", two_files(gzip.compress(images, mtime=0), gzip.compress(labels, mtime=0)))
    write(d, "label_out_of_range.idx", two_files(images, labels[:-1] + b"\x0a"))
    write(d, "count_mismatch.idx", two_files(images, struct.pack(">II", 0x801, 2) + b"\x01\x02"))


def cifar_seeds(d):
    record = bytes([3]) + bytes((i * 7) % 256 for i in range(3072))
    names = "\n".join(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                       "truck"]).encode() + b"\n"
    write(d, "one_record_names.cifar", two_files(record, names))
    write(d, "two_records.cifar", two_files(record + bytes([9]) + record[1:], b""))
    write(d, "bad_label.cifar", two_files(bytes([10]) + record[1:], b""))


# ---- images -------------------------------------------------------------------------


def image_seeds(d):
    from PIL import Image
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), "RGB")
    gray = rgb.convert("L")

    def save(img, fmt, **kw):
        b = io.BytesIO()
        img.save(b, fmt, **kw)
        return b.getvalue()

    seeds = {
        "rgb.png": save(rgb, "PNG"),
        "gray.png": save(gray, "PNG"),
        "gray1.png": save(gray.convert("1"), "PNG"),
        "palette_trns.png": save(rgb.convert("P"), "PNG", transparency=3),
        "rgba.png": save(rgb.convert("RGBA"), "PNG"),
        "gray16.png": save(Image.fromarray((np.arange(48, dtype=np.uint16) * 1000).reshape(6, 8)), "PNG"),
        "rgb.jpg": save(rgb, "JPEG", quality=80),
        "gray.jpg": save(gray, "JPEG"),
        "progressive.jpg": save(rgb, "JPEG", progressive=True),
        "cmyk.jpg": save(rgb.convert("CMYK"), "JPEG"),
        "rgb444.jpg": save(rgb, "JPEG", subsampling=0),
    }
    for name, data in seeds.items():
        write(d, name, b"\x00" + data)
    write(d, "gray_default_limits.png", b"\x03" + seeds["gray.png"])


# ---- training logs ---------------------------------------------------------------------


def log_seeds(d):
    rows = [{"step": 10, "epoch": 1, "loss": 2.1, "acc": 0.2, "lr": 0.05},
            {"epoch": 1, "train_loss": 1.5, "train_acc": 0.5, "test_loss": 1.2, "test_acc": 0.6,
             "test_top5": 0.9, "lr": 0.05, "seconds": 3.5, "images_per_second": 1400.0, "steps": 20},
            {"epoch": 2, "train_loss": 0.9, "train_acc": 0.7, "test_loss": 0.8, "test_acc": 0.75,
             "test_top5": 0.97, "lr": 0.025, "seconds": 3.4, "images_per_second": 1450.0, "steps": 40}]
    text = "".join(json.dumps(r) + "\n" for r in rows).encode()
    write(d, "log.jsonl", text)
    write(d, "cut_short.jsonl", text[:-20])
    write(d, "nan.jsonl", b'{"epoch": 1, "train_loss": NaN, "test_acc": null}\n')


# ---- ONNX ----------------------------------------------------------------------------------


def onnx_seeds(d):
    """Narrow ResNets (width 2) as torch.onnx.export writes them: BatchNorm folded (its Identity
    nodes over shared initializers) and kept, a basic and a bottleneck network, two stems."""
    import torch
    from rn_models import build_model, randomize
    os.makedirs(d, exist_ok=True)
    cases = [("resnet18_cifar_folded.onnx", "resnet18", "cifar", 1, 16, True),
             ("resnet50_folded.onnx", "resnet50", "imagenet", 3, 32, True),
             ("d2l_resnet18_bn.onnx", "d2l_resnet18", "imagenet", 1, 32, False)]
    for name, arch, stem, in_ch, size, folded in cases:
        model = randomize(build_model(arch, in_ch, 2, stem, 2), seed=3, calib_size=size).eval()
        kw = {} if folded else {"training": torch.onnx.TrainingMode.PRESERVE,
                                "do_constant_folding": False}
        with torch.no_grad():
            torch.onnx.export(model, torch.zeros(1, in_ch, size, size), os.path.join(d, name),
                              input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                              opset_version=13, **kw)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join("tests", "fuzz", "corpus")
    safetensors_seeds(os.path.join(out, "fuzz_safetensors"))
    checkpoint_seeds(os.path.join(out, "fuzz_checkpoint"))
    pth_seeds(os.path.join(out, "fuzz_pth"))
    npy_seeds(os.path.join(out, "fuzz_npy"))
    idx_seeds(os.path.join(out, "fuzz_idx"))
    cifar_seeds(os.path.join(out, "fuzz_cifar"))
    image_seeds(os.path.join(out, "fuzz_image"))
    log_seeds(os.path.join(out, "fuzz_log"))
    onnx_seeds(os.path.join(out, "fuzz_onnx"))
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(out) for f in fs)
    print("make_fuzz_seeds: %d bytes in %s" % (total, out))


if __name__ == "__main__":
    main()
