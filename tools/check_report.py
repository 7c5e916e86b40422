#!/usr/bin/python3
"""check_report.py - checks a report folder written by `resnet report`.

    check_report.py REPORT_DIR [--screenshot OUT.png] [--expect FIG,...] [--no-png]
                    [--png-scale S] [--chromium PATH] [--no-browser]

1. Files: report.html and every figure; each SVG parses as XML (an <svg>
   root with a viewBox and a <title>), each PNG decodes with Pillow at twice
   its SVG's size (or the scale given), and every file is within size bounds.
2. The page is self-contained: no <script>, no <link>, no src/href/url() that
   leaves the folder (only data: URIs, #anchors and files beside it, which
   must exist), and every inline data:image/png decodes.
3. Headless Chromium (Debian's chromium, started with the flags a closed
   network needs) loads the page through the DevTools protocol over a pipe
   (--remote-debugging-pipe: no websocket, nothing to download): no console
   error, no uncaught exception, no failed or non-local request; the page
   has its sections and figures; a full-page screenshot is taken and must
   not be blank (pixel spread, share of the most common colour).
Exits 1 with one line per failure.
"""
import argparse
import base64
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.dom.minidom
from html.parser import HTMLParser

from PIL import Image, ImageStat

FIGURES = ["curves", "confusion", "per_class", "wrong", "correct"]
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL  " + msg)


def ok(msg):
    print("PASS  " + msg)


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------

def check_svg(path):
    size = os.path.getsize(path)
    if not 500 <= size <= 5_000_000:
        fail(f"{path}: {size} bytes, outside 500..5000000")
    try:
        doc = xml.dom.minidom.parse(path)
    except Exception as e:  # noqa: BLE001 - any parse error is the finding
        fail(f"{path}: not well-formed XML: {e}")
        return None
    root = doc.documentElement
    if root.tagName != "svg" or root.getAttribute("xmlns") != "http://www.w3.org/2000/svg":
        fail(f"{path}: root is <{root.tagName}>, not an SVG <svg>")
        return None
    vb = root.getAttribute("viewBox").split()
    if len(vb) != 4 or not root.getElementsByTagName("title"):
        fail(f"{path}: no viewBox or no <title>")
        return None
    w, h = float(vb[2]), float(vb[3])
    if not (200 <= w <= 4000 and 100 <= h <= 8000):
        fail(f"{path}: size {w}x{h} is implausible")
    if len(root.getElementsByTagName("text")) < 3:
        fail(f"{path}: fewer than 3 <text> elements")
    for img in root.getElementsByTagName("image"):
        check_data_png(img.getAttribute("xlink:href"), path)
    return w, h


def check_png(path, want_w, want_h):
    size = os.path.getsize(path)
    if not 1000 <= size <= 20_000_000:
        fail(f"{path}: {size} bytes, outside 1000..20000000")
    try:
        with Image.open(path) as im:
            im.verify()
        im = Image.open(path)
        im.load()
    except Exception as e:  # noqa: BLE001
        fail(f"{path}: not a valid PNG: {e}")
        return
    if im.format != "PNG" or im.mode != "RGB":
        fail(f"{path}: {im.format} {im.mode}, expected an RGB PNG")
    if want_w and abs(im.width - want_w) > 1 or want_h and abs(im.height - want_h) > 1:
        fail(f"{path}: {im.width}x{im.height}, expected {want_w}x{want_h}")
    check_not_blank(im, path)


def check_not_blank(im, what):
    rgb = im.convert("RGB")
    spread = max(ImageStat.Stat(rgb).stddev)
    small = rgb.resize((200, max(1, 200 * rgb.height // rgb.width)))
    colours = small.getcolors(small.width * small.height)
    top = max(c for c, _ in colours) / (small.width * small.height)
    if spread < 10 or top > 0.97:
        fail(f"{what}: looks blank (pixel spread {spread:.1f}, most common colour {top:.1%})")
    return spread, top


def check_data_png(uri, where):
    prefix = "data:image/png;base64,"
    if not uri.startswith(prefix):
        fail(f"{where}: image source is not a PNG data URI: {uri[:60]}")
        return
    try:
        im = Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):], validate=True)))
        im.load()
    except Exception as e:  # noqa: BLE001
        fail(f"{where}: an inline PNG does not decode: {e}")


# ---------------------------------------------------------------------------
# The page's references
# ---------------------------------------------------------------------------

class Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.tags, self.ids = [], [], set()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href", "xlink:href", "action", "poster", "data"):
                self.refs.append((tag, v or ""))
            if k == "id":
                self.ids.add(v)


def check_html(folder):
    before = len(failures)
    path = os.path.join(folder, "report.html")
    text = open(path, encoding="utf-8").read()
    size = len(text.encode())
    if not 5_000 <= size <= 30_000_000:
        fail(f"{path}: {size} bytes, outside 5000..30000000")
    p = Refs()
    p.feed(text)
    for tag in ("script", "link", "iframe", "object", "embed"):
        if tag in p.tags:
            fail(f"{path}: has a <{tag}> element")
    for tag, ref in p.refs:
        if ref.startswith("#"):
            if ref[1:] not in p.ids:
                fail(f"{path}: anchor {ref} has no target")
        elif ref.startswith("data:"):
            if tag == "image":
                check_data_png(ref, path)
        elif re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//", ref):
            fail(f"{path}: <{tag}> refers outside: {ref[:80]}")
        elif not os.path.isfile(os.path.join(folder, ref)):
            fail(f"{path}: <{tag}> refers to {ref}, which is not beside it")
    for url in re.findall(r"url\(([^)]*)\)", text):
        if not url.strip("'\" ").startswith("data:"):
            fail(f"{path}: CSS url({url[:60]}) is not a data URI")
    for section in ("confusion", "classes", "run"):
        if section not in p.ids:
            fail(f"{path}: no section #{section}")
    n_svg = p.tags.count("svg")
    if n_svg < 3:
        fail(f"{path}: only {n_svg} inline SVG figures")
    if len(failures) == before:
        ok(f"report.html: {size} bytes, {n_svg} inline figures, {len(p.refs)} references, all local")
    return text


# ---------------------------------------------------------------------------
# Chromium through the DevTools protocol over a pipe
# ---------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe"]


class Browser:
    def __init__(self, exe, profile):
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()

        def fds():  # the protocol's fixed descriptors: 3 commands in, 4 replies out
            r, w = os.dup(to_child_r), os.dup(from_child_w)  # out of the way of 3 and 4
            os.dup2(r, 3)
            os.dup2(w, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=fds, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        self.buf = b""
        self.next_id = 0
        self.events = []

    def _read_message(self, deadline):
        while b"\0" not in self.buf:
            if time.time() > deadline:
                raise TimeoutError("no reply from chromium")
            chunk = os.read(self.from_child, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, name, timeout=30):
        deadline = time.time() + timeout
        for m in self.events:
            if m.get("method") == name:
                return m
        while True:
            m = self._read_message(deadline)
            self.events.append(m)
            if m.get("method") == name:
                return m

    def drain(self, seconds):
        """Collects events for a while (late console messages)."""
        deadline = time.time() + seconds
        import select
        while True:
            left = deadline - time.time()
            if left <= 0:
                return
            if b"\0" not in self.buf:
                r, _, _ = select.select([self.from_child], [], [], left)
                if not r:
                    return
            self.events.append(self._read_message(deadline + 5))

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001 - it may already be gone
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def check_in_browser(folder, exe, shot):
    page = "file://" + os.path.abspath(os.path.join(folder, "report.html"))
    profile = tempfile.mkdtemp(prefix="check_report_chromium_")
    b = Browser(exe, profile)
    try:
        target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            b.call(f"{domain}.enable", session=s)
        b.call("Emulation.setDeviceMetricsOverride",
               {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=s)
        b.call("Page.navigate", {"url": page}, session=s)
        b.wait_event("Page.loadEventFired", timeout=60)
        b.drain(1.0)
        info = b.call("Runtime.evaluate", {"returnByValue": True, "expression": """JSON.stringify({
            height: document.documentElement.scrollHeight,
            width: document.documentElement.scrollWidth,
            svgs: [...document.querySelectorAll('svg')].map(e => [e.getBoundingClientRect().width,
                                                               e.getBoundingClientRect().height]),
            sections: [...document.querySelectorAll('section.card h2')].map(e => e.textContent),
            title: document.title})"""}, session=s)
        facts = json.loads(info["result"]["value"])
        height = min(int(facts["height"]), 16000)
        shot_b64 = b.call("Page.captureScreenshot",
                          {"format": "png", "captureBeyondViewport": True,
                           "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}},
                          session=s, timeout=60)["data"]
    finally:
        b.close()
        shutil.rmtree(profile, ignore_errors=True)

    problems = []
    for m in b.events:
        meth, p = m.get("method", ""), m.get("params", {})
        if meth == "Runtime.exceptionThrown":
            problems.append("uncaught exception: " + json.dumps(p.get("exceptionDetails", {}))[:200])
        elif meth == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            problems.append("console error: " + json.dumps(p.get("args", []))[:200])
        elif meth == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            problems.append("log error: " + p["entry"].get("text", "")[:200])
        elif meth == "Network.loadingFailed":
            problems.append("failed request: " + p.get("errorText", "") + " " + p.get("requestId", ""))
        elif meth == "Network.requestWillBeSent":
            url = p.get("request", {}).get("url", "")
            if not (url.startswith("file://") or url.startswith("data:")):
                problems.append("request leaves the machine: " + url[:120])
    for pr in problems:
        fail(f"chromium: {pr}")
    if not problems:
        ok(f"chromium loaded {page} without console errors, exceptions or failed/outside requests")
    if not facts["title"]:
        fail("chromium: the page has no title")
    if facts["width"] > 1300:
        fail(f"chromium: the page is {facts['width']} px wide in a 1280 px window (horizontal scrolling)")
    small = [wh for wh in facts["svgs"] if wh[0] < 300 or wh[1] < 100]
    if len(facts["svgs"]) < 3 or small:
        fail(f"chromium: figures laid out too small or missing: {facts['svgs']}")
    else:
        ok(f"chromium: {len(facts['svgs'])} figures laid out, sections: {', '.join(facts['sections'])}")
    png = base64.b64decode(shot_b64)
    im = Image.open(io.BytesIO(png))
    im.load()
    if shot:
        with open(shot, "wb") as f:
            f.write(png)
    if im.height < 1500:
        fail(f"chromium: the page is only {im.height} px tall")
    spread, top = check_not_blank(im, "screenshot")
    ok(f"screenshot {im.width}x{im.height}: pixel spread {spread:.1f}, most common colour {top:.1%}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--screenshot", help="keep the full-page screenshot here")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--no-browser", action="store_true", help="check the files only")
    ap.add_argument("--png-scale", type=float, default=2.0, help="PNG pixels per SVG unit")
    ap.add_argument("--no-png", action="store_true", help="the report was written without PNGs")
    ap.add_argument("--expect", default=",".join(FIGURES), help="figures that must be there")
    args = ap.parse_args()

    expected = [f for f in args.expect.split(",") if f]
    for name in FIGURES:
        svg = os.path.join(args.folder, name + ".svg")
        png = os.path.join(args.folder, name + ".png")
        if not os.path.exists(svg):
            if name in expected:
                fail(f"{svg} is missing")
            continue
        wh = check_svg(svg)
        if args.no_png:
            if os.path.exists(png):
                fail(f"{png} exists, though the report was written without PNGs")
        elif os.path.exists(png):
            check_png(png, math.ceil(wh[0] * args.png_scale) if wh else 0,
                      math.ceil(wh[1] * args.png_scale) if wh else 0)
        else:
            fail(f"{png} is missing")
    ok(f"figures checked: {', '.join(expected)}")
    check_html(args.folder)
    if not args.no_browser:
        if not os.path.exists(args.chromium):
            fail(f"no chromium at {args.chromium} (tools/install_deps.sh installs it)")
        else:
            check_in_browser(args.folder, args.chromium, args.screenshot)
    if failures:
        print(f"check_report: {len(failures)} failure(s)")
        return 1
    print("check_report: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
