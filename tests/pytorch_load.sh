#!/usr/bin/env bash
# pytorch_load.sh BUILD - what resnet.c writes loads in PyTorch with
# load_state_dict(strict=True), for every architecture.
set -u
BUILD=${1:-build}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
passed=0
failed=0
for arch in d2l_resnet18 resnet18 resnet34 resnet50 resnet101 resnet152 wide_resnet50_2 wide_resnet101_2 resnext50_32x4d resnext101_32x8d; do
    f="$T/$arch.safetensors"
    if "$BUILD/resnet" init --arch "$arch" --in-channels 2 --num-classes 7 --seed 3 --output "$f" >/dev/null &&
        /usr/bin/python3 tools/parity.py --check-load "$f"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $arch"
    fi
done
echo "pytorch_load: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
