"""Writes the torch.save corpus that tests/test_pth.c reads.

    /usr/bin/python3 tools/make_pth_corpus.py OUTDIR

OUTDIR/valid/NAME.pth          a checkpoint the C reader must load, and
OUTDIR/valid/NAME.safetensors  the tensors it must produce, exactly: floating
                               tensors as F32 (half/bfloat16 widened exactly,
                               double rounded to nearest), integer and bool
                               tensors as I64.
OUTDIR/hostile/NAME.pth        a file the C reader must refuse; NAME says why.
OUTDIR/hostile/MANIFEST        the hostile names, one a line.
OUTDIR/other/NAME              files of other formats (ONNX, TorchScript, .npy,
                               .npz, text, ...) that the weights loader must
                               refuse, saying what they are.
OUTDIR/other/MANIFEST          their names, one a line.

Valid files come from torch.save itself, in the zip format and, as
legacy_NAME, in the legacy format (_use_new_zipfile_serialization=False):
protocols 2 and 4, views, shared storages, every storage type, wrappers with
an optimizer state; and from this script's own zip writer (ZIP64 records and
extra fields, an archive comment, no data descriptors) and pickle assembler,
whose output is checked with torch.load before it is trusted. Hostile files
are hand-assembled pickles inside zips written by zipfile (ZIP_STORED) or
after a legacy preamble, or valid files with one field broken.
"""
import collections
import gzip
import io
import os
import pickle
import struct
import sys
import zipfile
import zlib

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rn_models  # noqa: E402
import st_io  # noqa: E402

# ---------------------------------------------------------------------------
# Expected tensors
# ---------------------------------------------------------------------------


def expected(sd):
    """name -> tensor as the C reader returns it: float32 or int64."""
    out = collections.OrderedDict()
    for k, v in sd.items():
        v = v.detach()
        out[k] = v.float() if v.is_floating_point() else v.long()
    return out


def save_valid(outdir, name, obj, sd, **kw):
    """Saves obj as NAME.pth (zip format) and legacy_NAME.pth (legacy format)."""
    torch.save(obj, os.path.join(outdir, name + ".pth"), **kw)
    check_and_expect(outdir, name, sd)
    torch.save(obj, os.path.join(outdir, "legacy_" + name + ".pth"),
               _use_new_zipfile_serialization=False, **kw)
    check_and_expect(outdir, "legacy_" + name, sd)


def check_and_expect(outdir, name, sd, torch_loads=True):
    """Re-reads NAME.pth with torch.load (unless torch cannot), compares
    with sd, writes the expected safetensors."""
    path = os.path.join(outdir, name + ".pth")
    got = torch.load(path) if torch_loads else sd
    if isinstance(got, dict) and "state_dict" in got and isinstance(got["state_dict"], dict):
        got = got["state_dict"]
    elif isinstance(got, dict) and "model" in got and isinstance(got["model"], dict):
        got = got["model"]
    assert list(got.keys()) == list(sd.keys()), name
    for k in sd:
        a, b = got[k], sd[k]
        assert a.dtype == b.dtype and a.shape == b.shape, (name, k)
        assert torch.equal(a.float().nan_to_num(7.0), b.float().nan_to_num(7.0)), (name, k)
    st_io.save_safetensors(os.path.join(outdir, name + ".safetensors"), expected(sd))


def randomize_buffers(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.num_batches_tracked.fill_(int(torch.randint(1, 100000, (1,), generator=g)))
    return model


def tiny_model():
    torch.manual_seed(3)
    return randomize_buffers(nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)), 3)


# ---------------------------------------------------------------------------
# A pickle assembler (protocol 2, the opcodes torch.save uses)
# ---------------------------------------------------------------------------


def p_str(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return b"X" + struct.pack("<I", len(b)) + b


def p_int(v):
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    if -2 ** 31 <= v < 2 ** 31:
        return b"J" + struct.pack("<i", v)
    n = (v.bit_length() + 8) // 8
    return b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True)


def p_tuple(vals):
    return b"(" + b"".join(p_int(v) for v in vals) + b"t"


ORDERED_DICT = b"ccollections\nOrderedDict\n)R"


def p_tensor(stype, key, numel, offset, size, stride, legacy=False, s=p_str):
    """A _rebuild_tensor_v2 call; legacy: with the sixth persistent id item
    (view_metadata None), as the legacy format writes it."""
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" +
            b"(" + s("storage") + b"ctorch\n" + stype.encode() + b"\n" + s(key) +
            s("cpu") + p_int(numel) + (b"N" if legacy else b"") + b"tQ" +
            p_int(offset) + p_tuple(size) + p_tuple(stride) + b"\x89" + ORDERED_DICT + b"tR")


def p_state_dict(items, legacy=False):
    """items: (name, stype, key, numel, offset, size, stride)."""
    out = b"\x80\x02" + ORDERED_DICT + b"("
    for name, *spec in items:
        out += p_str(name) + p_tensor(*spec, legacy=legacy)
    return out + b"u."


def p_bstr(s):
    """A Python 2 str (SHORT_BINSTRING), as Python 2's torch.save wrote keys."""
    b = s.encode("utf-8")
    return b"U" + bytes([len(b)]) + b


def p_state_dict_py2(items):
    """As p_state_dict, the way PyTorch 0.3 under Python 2 wrote it: str as
    SHORT_BINSTRING, torch._utils._rebuild_tensor (no requires_grad, no hooks)."""
    out = b"\x80\x02" + ORDERED_DICT + b"("
    for name, stype, key, numel, offset, size, stride in items:
        out += (p_bstr(name) + b"ctorch._utils\n_rebuild_tensor\n(" +
                b"(" + p_bstr("storage") + b"ctorch\n" + stype.encode() + b"\n" + p_bstr(key) +
                p_bstr("cpu") + p_int(numel) + b"NtQ" +
                p_int(offset) + p_tuple(size) + p_tuple(stride) + b"tR")
    return out + b"u."


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
SYS_INFO = {"protocol_version": 1001, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4}}


def legacy_file(obj_pkl, storages, keys=None, magic=LEGACY_MAGIC, protocol=1001,
                sys_info=None, counts=None, tail=b""):
    """The legacy format around a hand-assembled object pickle. storages:
    key -> raw bytes (element size 4 unless counts gives the element count
    written before them); keys: the key list (default: sorted keys)."""
    out = pickle.dumps(magic, protocol=2) + pickle.dumps(protocol, protocol=2)
    out += pickle.dumps(SYS_INFO if sys_info is None else sys_info, protocol=2)
    out += obj_pkl
    keys = sorted(storages) if keys is None else keys
    out += pickle.dumps(keys, protocol=2)
    for k in sorted(storages):
        n = (counts or {}).get(k, len(storages[k]) // 4)
        out += struct.pack("<q", n) + storages[k]
    return out + tail


# ---------------------------------------------------------------------------
# Zip writers
# ---------------------------------------------------------------------------


def zipfile_archive(path, records, prefix="archive", version=b"3\n", method=zipfile.ZIP_STORED):
    """records: name (under prefix/) -> bytes; written by zipfile."""
    with zipfile.ZipFile(path, "w", method) as z:
        if version is not None:
            z.writestr(prefix + "/version", version)
        for name, data in records.items():
            z.writestr(prefix + "/" + name, data)


def raw_zip(entries, comment=b"", zip64=False, align=64):
    """entries: (name bytes, data bytes). Local headers carry sizes and CRC
    (no data descriptor), data aligned to `align` with a padding extra
    field. zip64: saturated 32-bit fields in the central directory with
    ZIP64 extra fields, and ZIP64 EOCD + locator records."""
    out = bytearray()
    central = bytearray()
    for name, data in entries:
        crc = zlib.crc32(data) & 0xFFFFFFFF
        off = len(out)
        base = off + 30 + len(name) + 4
        pad = (-base) % align
        extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, len(data), len(data),
                           len(name), len(extra)) + name + extra + data
        if zip64:
            cx = struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
            sizes = (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
        else:
            cx = b""
            sizes = (len(data), len(data), off)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc,
                               sizes[0], sizes[1], len(name), len(cx), 0, 0, 0, 0,
                               sizes[2]) + name + cx
    cd_off, cd_size, n = len(out), len(central), len(entries)
    out += central
    if zip64:
        eocd64 = len(out)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, cd_size, cd_off)
        out += struct.pack("<IIQI", 0x07064B50, 0, eocd64, 1)
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                           0xFFFFFFFF, len(comment)) + comment
    else:
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, cd_size, cd_off,
                           len(comment)) + comment
    return bytes(out)


def torch_entries(path):
    """The (name, data) entries of a zip, in order."""
    with zipfile.ZipFile(path) as z:
        return [(i.filename.encode(), z.read(i.filename)) for i in z.infolist()]


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------
# Valid files
# ---------------------------------------------------------------------------


def make_valid(d):
    torch.manual_seed(0)
    m = randomize_buffers(rn_models.build_model("resnet18", 3, 10), 1)
    save_valid(d, "resnet18_c3_state_dict", m.state_dict(), m.state_dict())
    torch.manual_seed(1)
    m = randomize_buffers(rn_models.build_model("resnet50", 1, 10), 2)
    save_valid(d, "resnet50_c1_state_dict", m.state_dict(), m.state_dict())
    torch.manual_seed(2)
    m = randomize_buffers(rn_models.build_model("d2l_resnet18", 1, 10), 3)
    save_valid(d, "d2l_resnet18_c1_state_dict", m.state_dict(), m.state_dict())

    # Training-script wrappers, with an SGD-momentum optimizer state.
    tiny = tiny_model()
    opt = torch.optim.SGD(tiny.parameters(), lr=0.1, momentum=0.9)
    tiny(torch.randn(2, 1, 6, 6)).square().sum().backward()
    opt.step()
    sd = tiny.state_dict()
    wrapper = {"epoch": 1, "state_dict": sd, "optimizer": opt.state_dict(), "best_acc": 0.875,
               "arch": "tiny",
               "history": [1, -1, 300, 70000, -(2 ** 40), 2 ** 62, 2 ** 63, 2 ** 64 + 5,
                           -(2 ** 70), 2.5, None, True, False, (1, "x")],
               "nested": {"a": {"b": [1, {"c": 2}]}, 3: "int key"},
               "unused_tensor": torch.ones(3)}
    save_valid(d, "wrapper_state_dict_sgd", wrapper, sd)
    save_valid(d, "wrapper_model_key", {"model": sd, "epoch": 7}, sd)
    save_valid(d, "wrapper_protocol4", wrapper, sd, pickle_protocol=4)
    dp = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
    save_valid(d, "dataparallel_prefix", dp, dp)
    params = collections.OrderedDict(tiny.named_parameters())
    save_valid(d, "parameters", params, params)
    save_valid(d, "empty_dict", {}, {})
    save_valid(d, "empty_ordered_dict", collections.OrderedDict(), {})

    # Every storage type, with special values.
    g = torch.Generator().manual_seed(5)
    f = torch.tensor([0.0, -0.0, 1.0, -2.5, float("inf"), -float("inf"), float("nan"),
                      1e-40, 6.1e-5, 65504.0, 3e38, 1e-8])
    dt = collections.OrderedDict([
        ("f32", torch.randn(3, 4, generator=g)),
        ("f16", torch.cat([f.half(), torch.randn(20, generator=g).half()])),
        ("bf16", torch.cat([f.bfloat16(), torch.randn(20, generator=g).bfloat16()])),
        ("f64", torch.tensor([1.0, -2.5, 1e-3, 1e300, -1e300, 2.0 ** -149, 0.1, 2.0 ** -160,
                              1 + 2.0 ** -30], dtype=torch.float64)),
        ("i64", torch.tensor([0, -1, 2 ** 63 - 1, -2 ** 63, 12345])),
        ("i32", torch.tensor([0, -1, 2 ** 31 - 1, -2 ** 31], dtype=torch.int32)),
        ("i16", torch.tensor([0, -1, 32767, -32768], dtype=torch.int16)),
        ("i8", torch.tensor([0, -1, 127, -128], dtype=torch.int8)),
        ("u8", torch.tensor([0, 1, 255, 128], dtype=torch.uint8)),
        ("bool", torch.tensor([True, False, True])),
        ("scalar", torch.tensor(2.75)),
        ("long_scalar", torch.tensor(99)),
        ("empty", torch.zeros(0, 3)),
        ("empty_half", torch.zeros(2, 0, dtype=torch.float16)),
    ])
    save_valid(d, "dtypes", dt, dt)

    # Views: transposes, steps, offsets, shared and expanded storages.
    base = torch.arange(60, dtype=torch.float32).reshape(5, 12) / 7
    w = torch.randn(8, 3, 3, 3, generator=g)
    h = torch.randn(6, 10, generator=g).half()
    views = collections.OrderedDict([
        ("base", base),
        ("t", base.t()),
        ("step", base[:, ::2]),
        ("narrow", base.narrow(1, 3, 4)),
        ("rows", base[1:4]),
        ("elem", base[2, 5]),
        ("tail", base.view(-1)[50:]),
        ("expand", base[0:1, 0:4].expand(3, 4)),
        ("permute", w.permute(1, 0, 2, 3)),
        ("w_step", w[::3, :, 1:, ::2]),
        ("half_t", h.t()),
        ("half_step", h[1::2, 3:9:3]),
        ("long_view", torch.arange(20).reshape(4, 5)[:, 1:4]),
        ("empty_view", base[2:2]),
    ])
    save_valid(d, "views_shared_storages", views, views)

    # A very small file for the truncation test.
    small = collections.OrderedDict([("w", torch.tensor([[1.0, 2.0], [3.0, 4.0]]).t()),
                                     ("n", torch.tensor(3))])
    save_valid(d, "small", small, small)

    # This script's own zip writer: ZIP64 extra fields and EOCD, a comment.
    ents = torch_entries(os.path.join(d, "views_shared_storages.pth"))
    write(os.path.join(d, "zip64_records.pth"), raw_zip(ents, zip64=True))
    check_and_expect(d, "zip64_records", views)
    write(os.path.join(d, "zip_comment.pth"), raw_zip(ents, comment=b"a comment"))
    check_and_expect(d, "zip_comment", views)
    # miniz (torch.load) takes the fake record in this comment for the real one.
    write(os.path.join(d, "zip_comment_fake_eocd.pth"),
          raw_zip(ents, comment=b"PK\x05\x06 a comment that looks like an EOCD"))
    check_and_expect(d, "zip_comment_fake_eocd", views, torch_loads=False)
    write(os.path.join(d, "zip64_comment_unaligned.pth"),
          raw_zip(ents, comment=b"c" * 300, zip64=True, align=1))
    check_and_expect(d, "zip64_comment_unaligned", views)

    # The assembler, checked by torch.load: a storage shared by four views.
    raw = struct.pack("<24f", *[i * 0.5 - 3 for i in range(24)])
    pkl = p_state_dict([
        ("a", "FloatStorage", "0", 24, 0, (4, 6), (6, 1)),
        ("b", "FloatStorage", "0", 24, 23, (2, 2), (0, 0)),
        ("c", "FloatStorage", "0", 24, 1, (3, 2, 2), (7, 2, 1)),
        ("d", "FloatStorage", "0", 24, 24, (0,), (1,)),
        ("e", "LongStorage", "1", 2, 1, (), ()),
    ])
    zipfile_archive(os.path.join(d, "assembled_views.pth"),
                    {"data.pkl": pkl, "data/0": raw, "data/1": struct.pack("<2q", -5, 2 ** 40)},
                    prefix="assembled_views")
    got = torch.load(os.path.join(d, "assembled_views.pth"))
    assert got["c"].shape == (3, 2, 2) and float(got["c"][2, 1, 1]) == (1 + 14 + 2 + 1) * 0.5 - 3
    check_and_expect(d, "assembled_views", got)

    # The legacy format as Python 2 and PyTorch 0.3 wrote it, checked by torch.load.
    items = [("a", "FloatStorage", "0", 24, 0, (4, 6), (6, 1)),
             ("b", "FloatStorage", "0", 24, 23, (2, 2), (0, 0)),
             ("c", "FloatStorage", "0", 24, 1, (3, 2, 2), (7, 2, 1)),
             ("e", "LongStorage", "1", 2, 1, (), ())]
    write(os.path.join(d, "legacy_assembled_py2.pth"),
          legacy_file(p_state_dict_py2(items), {"0": raw, "1": struct.pack("<2q", -5, 2 ** 40)},
                      counts={"1": 2}))
    got = torch.load(os.path.join(d, "legacy_assembled_py2.pth"))
    assert float(got["c"][2, 1, 1]) == (1 + 14 + 2 + 1) * 0.5 - 3 and int(got["e"]) == 2 ** 40
    check_and_expect(d, "legacy_assembled_py2", got)
    return ents


# ---------------------------------------------------------------------------
# Hostile files
# ---------------------------------------------------------------------------


class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def make_hostile(d, ents):
    names = []

    def put(name, data):
        write(os.path.join(d, name + ".pth"), data)
        names.append(name)

    def pickled(name, pkl, records=None, **kw):
        recs = {"data.pkl": pkl}
        recs.update(records or {})
        zipfile_archive(os.path.join(d, name + ".pth"), recs, **kw)
        names.append(name)

    def saved(name, obj, **kw):
        torch.save(obj, os.path.join(d, name + ".pth"), **kw)
        names.append(name)

    t = torch.arange(4.0)
    sd = tiny_model().state_dict()
    # Globals that must never be called.
    saved("whole_model_pickled", tiny_model())
    saved("reduce_os_system", {"x": Evil(os.system, "echo pwned")})
    saved("reduce_builtins_eval", {"x": Evil(eval, "1+1")})
    saved("numpy_scalar_in_wrapper", {"state_dict": sd, "best": np.float64(0.5)})
    saved("torch_size_global", {"shape": torch.Size([1, 2])})
    pickled("global_posix_system", b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.")
    pickled("global_builtins_eval", b"\x80\x02cbuiltins\neval\nX\x03\x00\x00\x001+1\x85R.")
    pickled("stack_global_os_system", b"\x80\x04\x8c\x02os\x8c\x06system\x93.")
    pickled("global_without_newline", b"\x80\x02ccollections")
    pickled("storage_called", b"\x80\x02ctorch\nFloatStorage\n)R.")
    # Stack, memo and MARK misuse.
    pickled("stack_underflow_setitem", b"\x80\x02}s.")
    pickled("stack_underflow_tuple1", b"\x80\x02\x85.")
    pickled("stack_underflow_below_mark", b"\x80\x02}(K\x01K\x02s.")
    pickled("memo_get_unset", b"\x80\x02}q\x00h\x05.")
    pickled("memo_long_get_unset", b"\x80\x02}j\xff\xff\xff\xff.")
    pickled("memo_put_huge_index", b"\x80\x02}r\xff\xff\xff\x7f.")
    pickled("mark_missing_setitems", b"\x80\x02}K\x01K\x02u.")
    pickled("mark_left_open", b"\x80\x02(}.")
    pickled("marks_too_many", b"\x80\x02" + b"(" * 100 + b"}.")
    pickled("nesting_too_deep", b"\x80\x02K\x00" + b"\x85" * 100 + b".")
    pickled("objects_too_many", b"\x80\x02" + b"N" * (1 << 20) + b"N.")
    pickled("string_length_huge", b"\x80\x02X\xf0\xff\xff\xff.")
    pickled("string_invalid_utf8", b"\x80\x02}X\x02\x00\x00\x00\xff\xfeK\x01s.")
    pickled("long1_bigint_in_shape",
            p_state_dict([("a", "FloatStorage", "0", 4, 0, (2 ** 64,), (1,))]),
            {"data/0": bytes(16)})
    pickled("opcode_unsupported_inst", b"\x80\x02iposix\nsystem\n.")
    pickled("opcode_unsupported_binbytes", b"\x80\x03C\x01a.")
    pickled("reduce_on_int", b"\x80\x02K\x01)R.")
    pickled("build_on_list", b"\x80\x02]}b.")
    pickled("persid_not_tuple", b"\x80\x02K\x01Q.")
    pickled("no_stop", b"\x80\x02}")
    pickled("bytes_after_stop", b"\x80\x02}.junk")
    pickled("stop_two_values", b"\x80\x02}}.")
    # Pickles that are not a state_dict.
    pickled("root_is_list", b"\x80\x02].")
    saved("nested_dict_no_wrapper", {"a": {"b": t}})
    saved("wrapper_nested_state_dict", {"state_dict": {"a": {"b": t}}})
    saved("non_str_key", {1: t})
    saved("nul_in_key", {"a\0b": t})
    pkl = p_state_dict([("a", "FloatStorage", "0", 4, 0, (4,), (1,)),
                        ("a", "FloatStorage", "0", 4, 0, (2,), (1,))])
    pickled("duplicate_key", pkl, {"data/0": bytes(16)})
    # Storages and views.
    f16 = bytes(16)
    pickled("storage_size_mismatch",
            p_state_dict([("a", "FloatStorage", "0", 5, 0, (5,), (1,))]), {"data/0": f16})
    pickled("view_outside_storage",
            p_state_dict([("a", "FloatStorage", "0", 4, 1, (2, 2), (2, 1))]), {"data/0": f16})
    pickled("view_offset_past_storage",
            p_state_dict([("a", "FloatStorage", "0", 4, 5, (0,), (1,))]), {"data/0": f16})
    pickled("view_stride_overflow",
            p_state_dict([("a", "FloatStorage", "0", 4, 0, (5,), (2 ** 62,))]),
            {"data/0": f16})
    pickled("view_expanded_too_far",
            p_state_dict([("a", "FloatStorage", "0", 4, 0, (2 ** 30,), (0,))]), {"data/0": f16})
    pickled("views_shared_too_often",
            p_state_dict([("t%d" % i, "FloatStorage", "0", 2 ** 20, 0, (2 ** 20,), (1,))
                          for i in range(80)]), {"data/0": bytes(4 << 20)})
    pickled("view_size_overflow",
            p_state_dict([("a", "FloatStorage", "0", 4, 0, (2 ** 40, 2 ** 40, 2 ** 40),
                           (0, 0, 0))]), {"data/0": f16})
    pickled("negative_stride",
            p_state_dict([("a", "FloatStorage", "0", 4, 3, (4,), (-1,))]), {"data/0": f16})
    pickled("negative_size",
            p_state_dict([("a", "FloatStorage", "0", 4, 0, (-4,), (1,))]), {"data/0": f16})
    pickled("negative_numel",
            p_state_dict([("a", "FloatStorage", "0", -4, 0, (4,), (1,))]), {"data/0": f16})
    pickled("too_many_dims",
            p_state_dict([("a", "FloatStorage", "0", 4, 0, (1,) * 9, (1,) * 9)]),
            {"data/0": f16})
    pickled("storage_record_missing",
            p_state_dict([("a", "FloatStorage", "7", 4, 0, (4,), (1,))]), {"data/0": f16})
    pickled("storage_type_conflict",
            p_state_dict([("a", "FloatStorage", "0", 4, 0, (4,), (1,)),
                          ("b", "LongStorage", "0", 2, 0, (2,), (1,))]), {"data/0": f16})
    pickled("storage_type_unknown",
            p_state_dict([("a", "ComplexFloatStorage", "0", 2, 0, (2,), (1,))]),
            {"data/0": f16})
    # The archive around the pickle.
    good_pkl = p_state_dict([("a", "FloatStorage", "0", 4, 0, (4,), (1,))])
    pickled("version_missing", good_pkl, {"data/0": f16}, version=None)
    pickled("version_garbage", good_pkl, {"data/0": f16}, version=b"three")
    pickled("byteorder_big", good_pkl, {"data/0": f16, "byteorder": b"big"})
    put("two_pickles", raw_zip([(b"archive/version", b"3\n"), (b"archive/data.pkl", good_pkl),
                                (b"archive/data/0", f16), (b"second/data.pkl", good_pkl)]))
    zipfile_archive(os.path.join(d, "entry_outside_folder.pth"),
                    {"data.pkl": good_pkl, "data/0": f16})
    with zipfile.ZipFile(os.path.join(d, "entry_outside_folder.pth"), "a") as z:
        z.writestr("other/data/0", f16)
    names.append("entry_outside_folder")
    zipfile_archive(os.path.join(d, "no_data_pkl.pth"), {"data/0": f16})
    names.append("no_data_pkl")
    put("not_a_zip", b"\x00" * 100)
    put("empty_file", b"")

    # Zip structure.
    zipfile_archive(os.path.join(d, "entry_compressed.pth"), {"data.pkl": good_pkl,
                    "data/0": f16}, method=zipfile.ZIP_DEFLATED)
    names.append("entry_compressed")
    zipfile_archive(os.path.join(d, "entry_duplicate.pth"), {"data.pkl": good_pkl,
                    "data/0": f16})
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(os.path.join(d, "entry_duplicate.pth"), "a") as z:
            z.writestr("archive/data/0", f16)
    names.append("entry_duplicate")
    z = bytearray(raw_zip(ents))
    eocd = len(z) - 22
    cd_off = struct.unpack_from("<I", z, eocd + 16)[0]

    def patched(name, pos, fmt, value, data=None):
        b = bytearray(data if data is not None else z)
        struct.pack_into(fmt, b, pos, *([value] * (len(fmt) - 1)))
        put(name, bytes(b))

    patched("eocd_cd_offset_past_eof", eocd + 16, "<I", len(z) + 1000)
    patched("eocd_cd_size_past_eocd", eocd + 12, "<I", len(z))
    patched("eocd_count_too_large", eocd + 8, "<HH", 5000)
    patched("eocd_count_too_small", eocd + 8, "<HH", 1)
    patched("eocd_multi_disk", eocd + 4, "<H", 1)
    patched("eocd_comment_length_wrong", eocd + 20, "<H", 3)
    put("eocd_trailing_garbage", bytes(z) + b"xyz")
    patched("central_bad_signature", cd_off, "<I", 0x02014B51)
    patched("central_method_deflate", cd_off + 10, "<H", 8)
    patched("central_encrypted_flag", cd_off + 8, "<H", 1)
    patched("central_sizes_differ", cd_off + 20, "<I", 1)
    patched("central_offset_past_directory", cd_off + 42, "<I", cd_off + 10)
    patched("central_saturated_without_zip64", cd_off + 24, "<I", 0xFFFFFFFF)
    patched("central_name_length_past_directory", cd_off + 28, "<H", 0xFFFF)
    patched("local_bad_signature", 0, "<I", 0x04034B51)
    patched("local_name_differs", 30, "<B", ord("X"))
    patched("local_size_differs", 22, "<I", 3)
    patched("local_crc_differs", 14, "<I", 0)
    data0 = 30 + len(ents[0][0]) + struct.unpack_from("<H", z, 28)[0]
    patched("data_crc_mismatch", data0, "<B", z[data0] ^ 1)
    # Overlap: entry B's record is hidden inside entry A's data.
    inner = raw_zip([(b"archive/data/9", b"inner!")], align=1)
    inner_local = inner[:struct.unpack_from("<I", inner, len(inner) - 6)[0]]
    outer = list(ents) + [(b"archive/blob", b"0123" + inner_local + b"4567")]
    zz = bytearray(raw_zip(outer, align=1))
    blob_data = zz.find(b"0123" + inner_local)
    # Append a central entry for B pointing inside the blob.
    e = len(zz) - 22
    n, cd_size, cd = struct.unpack_from("<HII", zz, e + 10)
    crc = zlib.crc32(b"inner!") & 0xFFFFFFFF
    extra_central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, crc, 6, 6,
                                14, 0, 0, 0, 0, 0, blob_data + 4) + b"archive/data/9"
    zz = zz[:e] + extra_central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n + 1, n + 1,
                                              cd_size + len(extra_central), cd, 0)
    put("entries_overlap", bytes(zz))
    # Two central entries for one local record.
    first = zz[cd:cd + 46 + struct.unpack_from("<H", zz, cd + 28)[0]]
    put("entries_same_record", bytes(zz[:cd]) + bytes(zz[cd:e]) + bytes(first) +
        struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n + 1, n + 1, cd_size + len(first), cd, 0))
    # ZIP64 records.
    z64 = bytearray(raw_zip(ents, zip64=True))
    loc = len(z64) - 22 - 20
    e64 = struct.unpack_from("<Q", z64, loc + 8)[0]
    patched("zip64_locator_past_eof", loc + 8, "<Q", len(z64) + 1, z64)
    patched("zip64_eocd_bad_signature", e64, "<I", 0x06064B51, z64)
    patched("zip64_cd_offset_huge", e64 + 48, "<Q", 2 ** 63, z64)
    patched("zip64_count_huge", e64 + 24, "<QQ", 2 ** 40, z64)
    cd64 = struct.unpack_from("<Q", z64, e64 + 48)[0]
    patched("zip64_extra_too_short", cd64 + 30, "<H", 8, z64)
    make_hostile_legacy(d, put, saved)
    with open(os.path.join(d, "MANIFEST"), "w") as f:
        f.write("".join(n + "\n" for n in names))


def make_hostile_legacy(d, put, saved):
    """The legacy format: its preamble, key list and storages broken one at a time."""
    f16 = bytes(16)
    one = [("a", "FloatStorage", "0", 4, 0, (4,), (1,))]
    good = p_state_dict(one, legacy=True)
    saved("legacy_whole_model_pickled", tiny_model(), _use_new_zipfile_serialization=False)
    saved("legacy_reduce_os_system", {"x": Evil(os.system, "echo pwned")},
          _use_new_zipfile_serialization=False)
    saved("legacy_numpy_in_wrapper", {"state_dict": {"a": torch.ones(2)}, "b": np.float64(1)},
          _use_new_zipfile_serialization=False)
    put("legacy_global_posix_system",
        legacy_file(b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.", {}))
    put("legacy_global_in_sys_info",
        legacy_file(good, {"0": f16}, sys_info=Evil(os.system, "echo pwned")))
    # The preamble.
    put("legacy_wrong_magic", legacy_file(good, {"0": f16}, magic=LEGACY_MAGIC + 1))
    put("legacy_magic_small_int", legacy_file(good, {"0": f16}, magic=7))
    put("legacy_magic_truncated", pickle.dumps(LEGACY_MAGIC, protocol=2)[:8])
    put("legacy_plain_pickle", pickle.dumps({"a": [1, 2, 3]}, protocol=2))
    put("legacy_wrong_protocol", legacy_file(good, {"0": f16}, protocol=1000))
    put("legacy_protocol_not_int", legacy_file(good, {"0": f16}, protocol="1001"))
    put("legacy_sys_info_not_dict", legacy_file(good, {"0": f16}, sys_info=[1001]))
    put("legacy_big_endian", legacy_file(good, {"0": f16},
                                         sys_info=dict(SYS_INFO, little_endian=False)))
    saved("legacy_pickle_protocol_1", {"a": torch.ones(2)}, _use_new_zipfile_serialization=False,
          pickle_protocol=1)
    # The object pickle.
    put("legacy_view_metadata", legacy_file(
        good.replace(p_int(4) + b"NtQ", p_int(4) + b"(" + p_str("1") + p_int(0) + p_int(4) +
                     b"ttQ"), {"0": f16}))
    preamble = len(legacy_file(b"", {})) - len(pickle.dumps([], protocol=2))
    put("legacy_object_truncated", legacy_file(good, {"0": f16})[:preamble + len(good) - 30])
    put("legacy_no_key_list", legacy_file(good, {"0": f16})[:preamble + len(good)])
    put("legacy_view_outside_storage", legacy_file(
        p_state_dict([("a", "FloatStorage", "0", 4, 1, (2, 2), (2, 1))], legacy=True),
        {"0": f16}))
    put("legacy_declared_twice_differently", legacy_file(
        p_state_dict(one + [("b", "FloatStorage", "0", 5, 0, (5,), (1,))], legacy=True),
        {"0": f16}))
    put("legacy_storage_type_conflict", legacy_file(
        p_state_dict(one + [("b", "LongStorage", "0", 2, 0, (2,), (1,))], legacy=True),
        {"0": f16}))
    put("legacy_nul_in_storage_key", legacy_file(
        p_state_dict([("a", "FloatStorage", "0\0x", 4, 0, (4,), (1,))], legacy=True),
        {"0\0x": f16}))
    # The key list.
    put("legacy_key_list_not_list", legacy_file(good, {"0": f16}, keys=("0",)))
    put("legacy_key_not_str", legacy_file(good, {"0": f16}, keys=[0]))
    put("legacy_key_missing_from_list", legacy_file(good, {}, keys=[]))
    put("legacy_key_unknown_in_list", legacy_file(good, {"0": f16, "9": f16}))
    put("legacy_key_twice_in_list", legacy_file(good, {"0": f16}, keys=["0", "0"]))
    # The storages.
    put("legacy_storage_count_differs", legacy_file(good, {"0": f16}, counts={"0": 3}))
    put("legacy_storage_count_negative", legacy_file(good, {"0": f16}, counts={"0": -1}))
    huge = [("a", "FloatStorage", "0", 2 ** 62 + 1, 0, (4,), (1,))]
    put("legacy_storage_size_overflow", legacy_file(
        p_state_dict(huge, legacy=True), {"0": f16}, counts={"0": 2 ** 62 + 1}))
    big = [("a", "FloatStorage", "0", 2 ** 40, 0, (4,), (1,))]
    put("legacy_storage_past_eof", legacy_file(
        p_state_dict(big, legacy=True), {"0": f16}, counts={"0": 2 ** 40}))
    put("legacy_storage_truncated", legacy_file(good, {"0": f16})[:-3])
    put("legacy_storage_count_truncated", legacy_file(good, {"0": f16})[:-(len(f16) + 3)])
    put("legacy_trailing_bytes", legacy_file(good, {"0": f16}, tail=b"junk"))


# ---------------------------------------------------------------------------
# Other formats
# ---------------------------------------------------------------------------


def make_other(d):
    """Files a user may mistake for weights; the loader must say what each is."""
    names = []

    def put(name, data):
        write(os.path.join(d, name), data)
        names.append(name)

    tiny = tiny_model().eval()
    path = os.path.join(d, "tiny.onnx")
    torch.onnx.export(tiny, torch.randn(1, 1, 6, 6), path)
    names.append("tiny.onnx")
    torch.jit.save(torch.jit.script(tiny), os.path.join(d, "torchscript.pt"))
    names.append("torchscript.pt")
    with zipfile.ZipFile(os.path.join(d, "torchscript.pt")) as z:   # every entry STORED
        zipfile_archive(os.path.join(d, "torchscript_stored.pt"),
                        {i.filename.split("/", 1)[1]: z.read(i) for i in z.infolist()},
                        prefix="torchscript", version=None)
    names.append("torchscript_stored.pt")
    buf = io.BytesIO()
    np.save(buf, np.ones((2, 3), np.float32))
    put("array.npy", buf.getvalue())
    np.savez(os.path.join(d, "arrays.npz"), a=np.ones(3))
    names.append("arrays.npz")
    buf = io.BytesIO()
    torch.save(tiny.state_dict(), buf)
    put("state_dict.pth.gz", gzip.compress(buf.getvalue()))
    put("pickled.pkl", pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    put("empty.pth", b"")
    put("notes.txt", "weights: see the README\n".encode())
    put("brace_at_byte_8.json", b'{"a": 1,{"b": 2}}\n')
    put("lfs_pointer.pth", b"version https://git-lfs.github.com/spec/v1\noid sha256:"
        + b"0" * 64 + b"\nsize 46830571\n")
    put("download.html", b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>\n")
    put("keras.h5", b"\x89HDF\r\n\x1a\n" + bytes(200))
    put("image.png", b"\x89PNG\r\n\x1a\n" + bytes(100))
    put("image.jpg", b"\xff\xd8\xff\xe0" + bytes(100))
    tar = bytearray(1024)
    tar[0:8] = b"storages"
    tar[257:262] = b"ustar"
    put("legacy_tar.pth", bytes(tar))
    put("random.bin", bytes((i * 97 + 13) % 256 for i in range(300)))
    put("short.bin", b"\x01\x02\x03")
    with open(os.path.join(d, "MANIFEST"), "w") as f:
        f.write("".join(n + "\n" for n in names))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_pth_corpus.py OUTDIR")
    out = sys.argv[1]
    torch.set_num_threads(1)
    for sub in ("valid", "hostile", "other"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    ents = make_valid(os.path.join(out, "valid"))
    make_hostile(os.path.join(out, "hostile"), ents)
    make_other(os.path.join(out, "other"))


if __name__ == "__main__":
    main()
