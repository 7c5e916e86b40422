"""Minimal safetensors reader/writer (no `safetensors` package needed).

Format: 8-byte little-endian header length L, L bytes of JSON
  {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
   "__metadata__": {"key": "value"}}
(padded with spaces to a multiple of 8), then the raw little-endian data;
offsets are relative to the end of the header.

    save_safetensors(path, {name: tensor}, metadata=None, dtype=None)
    load_safetensors(path) -> ({name: torch.Tensor}, metadata dict)

Tensors may be torch tensors or numpy arrays. By default floating tensors are
written as F32 and integer/bool ones as I64; `dtype` ("F32", "F16", "BF16",
"F64", "I64", or a dict name -> dtype) overrides that.
"""
import json
import struct

import numpy as np

try:
    import torch
except ImportError:  # reading into numpy still works
    torch = None

_NP = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "F64": np.dtype("<f8"),
       "I64": np.dtype("<i8"), "BF16": np.dtype("<u2"), "I32": np.dtype("<i4"),
       "U8": np.dtype("u1")}


def _to_numpy(t):
    if torch is not None and isinstance(t, torch.Tensor):
        t = t.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.contiguous().numpy()
    return np.asarray(t)


def _encode(arr, dt):
    """numpy array -> bytes in safetensors dtype `dt`."""
    if dt == "BF16":
        f = np.ascontiguousarray(arr, dtype="<f4")
        u = f.view("<u4").astype(np.uint64)
        # round to nearest even, like torch's float -> bfloat16 conversion
        u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
        nan = np.isnan(f)
        out = u.astype("<u2")
        out[nan] = 0x7FC0
        return out.tobytes()
    return np.ascontiguousarray(arr, dtype=_NP[dt]).tobytes()


def save_safetensors(path, tensors, metadata=None, dtype=None):
    header = {}
    blobs = []
    off = 0
    for name, t in tensors.items():
        arr = _to_numpy(t)
        if isinstance(dtype, dict):
            dt = dtype.get(name)
        else:
            dt = dtype
        if dt is None:
            dt = "F32" if arr.dtype.kind in "fc" else "I64"
        if dt not in _NP:
            raise ValueError("unsupported dtype %r for %s" % (dt, name))
        data = _encode(arr, dt)
        header[name] = {"dtype": dt, "shape": [int(s) for s in arr.shape],
                        "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((-len(hb)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def load_safetensors(path, as_numpy=False):
    """Returns ({name: tensor}, metadata). BF16 is returned as float32 numpy
    (as_numpy) or torch.bfloat16; other dtypes keep their type."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ValueError("%s: too short" % path)
    (n,) = struct.unpack("<Q", buf[:8])
    if 8 + n > len(buf):
        raise ValueError("%s: header length %d beyond file" % (path, n))
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    data = memoryview(buf)[8 + n:]
    out = {}
    for name, info in header.items():
        dt = info["dtype"]
        if dt not in _NP:
            raise ValueError("%s: %s has unsupported dtype %s" % (path, name, dt))
        b, e = info["data_offsets"]
        shape = tuple(info["shape"])
        if not (0 <= b <= e <= len(data)):
            raise ValueError("%s: %s offsets out of range" % (path, name))
        arr = np.frombuffer(data[b:e], dtype=_NP[dt])
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError("%s: %s size mismatch" % (path, name))
        arr = arr.reshape(shape).copy()
        if dt == "BF16":
            f32 = (arr.astype(np.uint32) << 16).view(np.float32)
            if as_numpy or torch is None:
                out[name] = f32
            else:
                out[name] = torch.from_numpy(f32).to(torch.bfloat16)
            continue
        out[name] = arr if (as_numpy or torch is None) else torch.from_numpy(arr)
    return out, meta


def _selftest():
    import os
    import tempfile
    rng = np.random.default_rng(0)
    t = {"a": torch.randn(3, 4), "b": torch.arange(5, dtype=torch.int64),
         "c": torch.randn(2, 2, 2).double(), "s": torch.tensor(7)}
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x.safetensors")
        save_safetensors(p, t, {"arch": "resnet18", "num_classes": 10})
        got, meta = load_safetensors(p)
        assert meta == {"arch": "resnet18", "num_classes": "10"}, meta
        assert got["a"].dtype == torch.float32 and torch.equal(got["a"], t["a"])
        assert got["b"].dtype == torch.int64 and torch.equal(got["b"], t["b"])
        assert got["c"].dtype == torch.float32 and torch.allclose(got["c"].double(), t["c"])
        assert got["s"].shape == () and int(got["s"]) == 7
        with open(p, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
        assert n % 8 == 0
        x = torch.from_numpy(rng.standard_normal((4, 5)).astype(np.float32))
        for dt, tdt in (("F16", torch.float16), ("BF16", torch.bfloat16), ("F64", torch.float64)):
            save_safetensors(p, {"x": x}, dtype=dt)
            got, _ = load_safetensors(p)
            assert torch.equal(got["x"], x.to(tdt)), dt
    print("st_io selftest OK")


if __name__ == "__main__":
    _selftest()
