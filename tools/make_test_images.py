#!/usr/bin/python3
"""make_test_images.py OUTDIR [--ref] - the image-decoding test corpus.

Writes into OUTDIR:
  *.png, *.jpg   valid images of odd sizes and modes, written with PIL or, for
                 what PIL cannot write (16-bit RGB/RGBA/LA, 2/4-bit gray,
                 interlaced, out-of-range palette indices), by a small PNG
                 writer below; plus copies of scikit-image's sample photos
                 when python3-skimage is installed.
  broken/        files every decoder must refuse cleanly: truncated JPEG/PNG,
                 headers claiming 100000 x 100000 / 60000 x 60000 pixels,
                 bad CRCs, garbage, an empty file, a GIF.
  large/         a valid 8000 x 8000 1-bit PNG of 8 KB (a decompression bomb
                 under tight limits).
  ref/NAME.npy   with --ref: PIL's Image.open(f).convert("RGB") as float32
                 (3, H, W) and ref/NAME.L.npy with convert("L") as (1, H, W).

Deterministic: the same files on every run.
"""
import io
import os
import shutil
import struct
import sys
import zlib

import numpy as np
from PIL import Image

SKIMAGE_PHOTOS = [
    "astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "camera.png",
    "hubble_deep_field.jpg", "logo.png", "horse.png", "foo3x5x4indexed.png",
    "green_palette.png", "palette_color.png", "palette_gray.png",
    "checker_bilevel.png", "motorcycle_left.png",
]


def photo(w, h, seed):
    """A smooth, photo-like RGB image with some noise and sharp edges."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    sx, sy = max(w, 2), max(h, 2)
    r = 128 + 100 * np.sin(2 * np.pi * x / sx * 1.5 + seed) * np.cos(np.pi * y / sy)
    g = 255 * (x + y) / (sx + sy)
    b = 128 + 120 * np.sin(2 * np.pi * (x * 0.7 - y * 1.3) / 37.0)
    img = np.stack([r, g, b], -1) + rng.normal(0, 12, (h, w, 3))
    img[(x // 9 + y // 7) % 5 == 0] = [250, 20, 30]     # hard edges
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------
# A minimal PNG writer for what PIL cannot write
# ---------------------------------------------------------------------------

def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def pack_rows(a, depth):
    """a: (h, w, c) integer samples -> list of packed row bytes (no filter byte)."""
    h, w, c = a.shape
    rows = []
    for yy in range(h):
        s = a[yy].reshape(-1)
        if depth == 16:
            rows.append(s.astype(">u2").tobytes())
        elif depth == 8:
            rows.append(s.astype(np.uint8).tobytes())
        else:
            per = 8 // depth
            n = (len(s) + per - 1) // per * per
            p = np.zeros(n, np.uint8)
            p[:len(s)] = s
            p = p.reshape(-1, per)
            byte = np.zeros(len(p), np.uint16)
            for k in range(per):
                byte |= p[:, k].astype(np.uint16) << (8 - depth * (k + 1))
            rows.append(byte.astype(np.uint8).tobytes())
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
         (1, 0, 2, 2), (0, 1, 1, 2)]


def png_bytes(a, depth, color, plte=None, trns=None, interlace=False):
    h, w, _ = a.shape
    raw = b""
    if interlace:
        for xs, ys, dx, dy in ADAM7:
            sub = a[ys::dy, xs::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += b"".join(b"\0" + r for r in pack_rows(sub, depth))
    else:
        raw = b"".join(b"\0" + r for r in pack_rows(a, depth))
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, int(interlace)))
    if plte is not None:
        out += chunk(b"PLTE", bytes(plte))
    if trns is not None:
        out += chunk(b"tRNS", bytes(trns))
    out += chunk(b"IDAT", zlib.compress(raw, 9))
    out += chunk(b"IEND", b"")
    return out


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------

def valid_images(out):
    sizes = [(1, 37), (37, 1), (17, 9), (333, 500), (640, 480)]
    for i, (w, h) in enumerate(sizes):
        rgb = Image.fromarray(photo(w, h, i))
        tag = f"{w}x{h}"
        rgb.save(f"{out}/rgb_{tag}.png")
        rgb.save(f"{out}/rgb_q90_{tag}.jpg", quality=90)
        if (w, h) in [(17, 9), (333, 500)]:
            rgb.convert("L").save(f"{out}/l_{tag}.png")
            rgb.convert("L").save(f"{out}/gray_{tag}.jpg", quality=85)
            la = rgb.convert("LA")
            la.putalpha(Image.fromarray(photo(w, h, 7)[..., 0]))
            la.save(f"{out}/la_{tag}.png")
            rgba = rgb.convert("RGBA")
            rgba.putalpha(Image.fromarray(photo(w, h, 9)[..., 1]))
            rgba.save(f"{out}/rgba_{tag}.png")
            p = rgb.quantize(200)
            p.save(f"{out}/p_{tag}.png")
            p.save(f"{out}/p_trns_{tag}.png", transparency=bytes(range(0, 200)))
            p.save(f"{out}/p_trns1_{tag}.png", transparency=3)
            rgb.quantize(16).save(f"{out}/p4bit_{tag}.png", bits=4)
            rgb.convert("1").save(f"{out}/bilevel_{tag}.png")
            rgb.convert("L").save(f"{out}/l_trns_{tag}.png", transparency=17)
            rgb.save(f"{out}/rgb_trns_{tag}.png", transparency=(250, 20, 30))
            i16 = (photo(w, h, 3)[..., 1].astype(np.uint16) * 4)   # 0..1020: clipping matters
            Image.fromarray(i16).save(f"{out}/i16_{tag}.png")
            rgb.save(f"{out}/progressive_{tag}.jpg", quality=80, progressive=True)
            rgb.save(f"{out}/q95_444_{tag}.jpg", quality=95, subsampling=0)
            rgb.save(f"{out}/q75_422_{tag}.jpg", quality=75, subsampling=1)
            rgb.save(f"{out}/optimized_{tag}.jpg", quality=70, optimize=True)
            rgb.convert("CMYK").save(f"{out}/cmyk_{tag}.jpg", quality=90)
            a = photo(w, h, 5).astype(np.uint16)
            wide = a * 257 + np.arange(w)[None, :, None] % 200
            write(f"{out}/rgb16_{tag}.png", png_bytes(wide, 16, 2))
            alpha = wide[..., :1] ^ 0x5A5A
            write(f"{out}/rgba16_{tag}.png", png_bytes(np.concatenate([wide, alpha], -1), 16, 6))
            write(f"{out}/la16_{tag}.png", png_bytes(wide[..., 1:3], 16, 4))
            g = a[..., :1] % 4
            write(f"{out}/gray2bit_{tag}.png", png_bytes(g, 2, 0))
            write(f"{out}/gray4bit_{tag}.png", png_bytes(a[..., :1] % 16, 4, 0))
            write(f"{out}/rgb_interlaced_{tag}.png", png_bytes(a.astype(np.uint8), 8, 2,
                                                               interlace=True))
            write(f"{out}/gray2bit_interlaced_{tag}.png", png_bytes(g, 2, 0, interlace=True))
            idx = (a[..., :1] % 12).astype(np.uint8)              # 8 palette entries, 12 indices
            plte = [v for k in range(8) for v in (k * 30, 255 - k * 30, (k * 77) % 256)]
            write(f"{out}/p_short_palette_{tag}.png", png_bytes(idx, 8, 3, plte=plte))
    # Trailing garbage after IEND.
    buf = io.BytesIO()
    Image.fromarray(photo(20, 20, 12)).save(buf, "PNG")
    write(f"{out}/trailing_20x20.png", buf.getvalue() + b"garbage after IEND")


def skimage_photos(out):
    try:
        import skimage.data
    except ImportError:
        print("make_test_images: python3-skimage not installed; no sample photos", file=sys.stderr)
        return
    src = os.path.dirname(skimage.data.__file__)
    for name in SKIMAGE_PHOTOS:
        if os.path.exists(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), os.path.join(out, "sk_" + name))


def jpeg_with_size(data, w, h):
    """Rewrites the SOFn marker of a JPEG to claim w x h."""
    data = bytearray(data)
    i = 2
    while i < len(data):
        assert data[i] == 0xFF
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[i + 5:i + 9] = struct.pack(">HH", h, w)
            return bytes(data)
        i += 2 + length
    raise ValueError("no SOF")


def broken_images(out):
    b = f"{out}/broken"
    os.makedirs(b, exist_ok=True)
    rgb = Image.fromarray(photo(333, 500, 1))
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=90)
    jpg = buf.getvalue()
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=90, progressive=True)
    prog = buf.getvalue()
    buf = io.BytesIO()
    rgb.save(buf, "PNG")
    png = buf.getvalue()

    write(f"{b}/truncated_half.jpg", jpg[:len(jpg) // 2])
    write(f"{b}/truncated_header.jpg", jpg[:100])
    write(f"{b}/no_eoi.jpg", jpg[:-2])                      # Pillow: "image file is truncated"
    write(f"{b}/truncated_progressive.jpg", prog[:len(prog) * 6 // 10])
    write(f"{b}/truncated_half.png", png[:len(png) // 2])
    write(f"{b}/truncated_ihdr.png", png[:20])
    write(f"{b}/signature_only.png", png[:8])
    write(f"{b}/bomb_100000x100000.png",
          png_bytes(np.zeros((1, 1, 3), np.uint8), 8, 2).replace(
              chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)),
              chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))))
    write(f"{b}/bomb_60000x60000.jpg", jpeg_with_size(jpg, 60000, 60000))
    bad = bytearray(png)
    bad[16] ^= 0x01                                     # inside IHDR: CRC mismatch
    write(f"{b}/bad_crc_ihdr.png", bytes(bad))
    idat = png.index(b"IDAT")
    bad = bytearray(png)
    for k in range(idat + 40, idat + 60):
        bad[k] ^= 0xA5
    write(f"{b}/corrupt_idat.png", bytes(bad))
    rng = np.random.default_rng(99)
    noise = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    write(f"{b}/garbage.bin", noise)
    write(f"{b}/garbage_after_soi.jpg", b"\xff\xd8\xff" + noise)
    write(f"{b}/garbage_after_sig.png", b"\x89PNG\r\n\x1a\n" + noise)
    write(f"{b}/empty.png", b"")
    write(f"{b}/text.jpg", b"this is not a JPEG file\n")
    bad = bytearray(jpg)
    bad[len(bad) // 3:len(bad) // 3 + 400] = noise[:400]   # with stray markers: PIL refuses it
    write(f"{b}/corrupt_markers.jpg", bytes(bad))
    bad = bytearray(jpg)
    bad[len(bad) // 3:len(bad) // 3 + 400] = noise[:400].replace(b"\xff", b"\x00")
    write(f"{out}/corrupt_entropy_333x500.jpg", bytes(bad))      # bad Huffman codes: PIL decodes it
    write(f"{b}/zeros_sof.jpg", jpeg_with_size(jpg, 0, 0))
    gif = io.BytesIO()
    rgb.convert("P").save(gif, "GIF")
    write(f"{b}/image.gif", gif.getvalue())
    try:
        import skimage.data
        src = os.path.join(os.path.dirname(skimage.data.__file__), "truncated.jpg")
        if os.path.exists(src):
            shutil.copy(src, f"{b}/sk_truncated.jpg")
    except ImportError:
        pass

    lg = f"{out}/large"
    os.makedirs(lg, exist_ok=True)
    write(f"{lg}/bomb_8000x8000_1bit.png", png_bytes(np.zeros((8000, 8000, 1), np.uint8), 1, 0))


def references(out):
    ref = f"{out}/ref"
    os.makedirs(ref, exist_ok=True)
    for name in sorted(os.listdir(out)):
        path = os.path.join(out, name)
        if not os.path.isfile(path):
            continue
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32).transpose(2, 0, 1)
            gray = np.asarray(im.convert("L"), dtype=np.float32)[None]
        np.save(f"{ref}/{name}.npy", np.ascontiguousarray(rgb))
        np.save(f"{ref}/{name}.L.npy", np.ascontiguousarray(gray))


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    out = args[0]
    os.makedirs(out, exist_ok=True)
    valid_images(out)
    skimage_photos(out)
    broken_images(out)
    if "--ref" in sys.argv[1:]:
        references(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
