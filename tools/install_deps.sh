#!/usr/bin/env bash
# install_deps.sh - install what resnet.c's build and tests need, if missing.
#   build: a C compiler and make
#   libs:  zlib, libpng and libjpeg-turbo development files
#   tests: Debian's python3-torch, python3-torchvision, python3-pil, python3-skimage and python3-numpy for
#          /usr/bin/python3 (the PyTorch parity tests); chromium and a font (fonts-dejavu-core) to
#          render the training report headless (tests/report.sh); python3-onnx (the ONNX checker),
#          node + npm and, from the npm registry, onnxruntime-node into tools/node_modules (ONNX
#          Runtime for tools/onnx_check.py); groff, man-db, pkgconf and binutils (tests/install.sh);
#          Debian's OpenMPI (libopenmpi-dev for mpicc, openmpi-bin for mpirun) for the
#          data-parallel build and tests/mpi.sh
#   --clang: only clang 14 with its sanitizer and libFuzzer runtimes (`make sanitize`, `make fuzz`)
set -eu

missing=()
if [ "${1:-}" = "--clang" ]; then
    command -v clang-14 >/dev/null 2>&1 || missing+=(clang-14)
    ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
        missing+=(libclang-rt-14-dev)
    [ -f /usr/lib/llvm-14/lib/libomp.so ] || missing+=(libomp-14-dev)
else
    command -v cc >/dev/null 2>&1 || missing+=(gcc)
    command -v make >/dev/null 2>&1 || missing+=(make)
    # libraries: zlib (IDX .gz), libpng, libjpeg-turbo (images)
    for pair in zlib.h:zlib1g-dev png.h:libpng-dev jpeglib.h:libjpeg62-turbo-dev; do
        [ -f "/usr/include/${pair%%:*}" ] || missing+=("${pair#*:}")
    done
    if ! [ -x /usr/bin/python3 ] || ! /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1; then
        missing+=(python3 python3-numpy)
    fi
    if ! /usr/bin/python3 -c 'import torch, torchvision, PIL' >/dev/null 2>&1; then
        missing+=(python3-torch python3-torchvision python3-pil)
    fi
    # sample photographs for the preprocessing parity test
    if ! /usr/bin/python3 -c 'import skimage' >/dev/null 2>&1; then
        missing+=(python3-skimage)
    fi
    # the training report is checked in headless Chromium, which needs a font to lay text out
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
    # ONNX: the checker (python3-onnx), ONNX Runtime through node (npm, below), groff for resnet.1
    /usr/bin/python3 -c 'import onnx' >/dev/null 2>&1 || missing+=(python3-onnx)
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
    command -v groff >/dev/null 2>&1 || missing+=(groff-base)
    # tests/install.sh: pkg-config, man (reads the man page back), binutils' nm and readelf
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkgconf)
    command -v man >/dev/null 2>&1 || missing+=(man-db)
    command -v nm >/dev/null 2>&1 || missing+=(binutils)
    # data-parallel training: mpicc builds the MPI-enabled resnet, mpirun runs tests/mpi.sh
    command -v mpicc >/dev/null 2>&1 || missing+=(libopenmpi-dev)
    command -v mpirun >/dev/null 2>&1 || missing+=(openmpi-bin)
fi

# onnxruntime-node from the npm registry, as tools/package-lock.json pins it. --ignore-scripts:
# its install script only fetches GPU binaries; the CPU library ships in the package.
install_ort() {
    [ -f "$(dirname "$0")/node_modules/onnxruntime-node/package.json" ] && return 0
    echo "install_deps: installing onnxruntime-node into tools/node_modules" >&2
    if ! (cd "$(dirname "$0")" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null); then
        echo "install_deps: npm could not install onnxruntime-node (the ONNX Runtime tests need it)" >&2
        exit 1
    fi
}

# ONNX Runtime for the default set only (not with --clang)
deps_done() { [ "${1:-}" = "--clang" ] || install_ort; }

if [ ${#missing[@]} -eq 0 ]; then
    deps_done "${1:-}"
    exit 0
fi

echo "install_deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_deps: need root (or sudo) to apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
deps_done "${1:-}"
