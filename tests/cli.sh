#!/usr/bin/env bash
# cli.sh BUILD - the `resnet` command as a user meets it: help, exit codes,
# one-line errors, info totals, init -> forward, bench JSON.
set -u
BUILD=${1:-build}
R="$BUILD/resnet"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/cli_lib.sh"

expect 0 "resnet --help" "$R" --help
grep -q "forward" "$T/out" && grep -q "resnet152" "$T/out" && ok || bad "--help lists commands and architectures"
expect 2 "no command" "$R"
expect 2 "unknown command" "$R" frobnicate
for cmd in info forward bench init; do
    expect 0 "$cmd --help" "$R" "$cmd" --help
    # every flag is listed with its default (or marked required / off)
    n_flags=$(grep -c '^  --' "$T/out")
    n_described=$(grep -c -E '\((default: .*|required)\)$' "$T/out")
    [ "$n_flags" -gt 1 ] && [ "$n_described" -eq $((n_flags - 1)) ] && ok ||
        bad "$cmd --help: $n_flags flags, $n_described with a default"
done
expect 2 "info without --arch" "$R" info
expect 2 "info with an unknown arch" "$R" info --arch resnet19
expect 2 "info with a bad integer" "$R" info --arch resnet18 --image-size 12x
expect 2 "unknown flag" "$R" info --arch resnet18 --frob 1
# a typo is answered with the flag or command meant; a flag where a value belongs is refused (`--save
# --overwrite` had saved to a file named --overwrite); resnet help COMMAND is the command's --help
expect 2 "a misspelt flag" "$R" info --arch resnet18 --image-sise 64
grep -qF "unknown flag '--image-sise': did you mean --image-size?" "$T/err" && ok || bad "no suggestion: $(cat "$T/err")"
expect 2 "a misspelt command" "$R" inof --arch resnet18
grep -qF "unknown command 'inof': did you mean info?" "$T/err" && ok || bad "no suggestion: $(cat "$T/err")"
expect 2 "a flag as a value" "$R" init --arch resnet18 --output --seed 3
grep -qF "flag '--output' needs a value, and the next argument is the flag '--seed'" "$T/err" && [ ! -e ./--seed ] &&
    ok || bad "a flag taken as a value: $(cat "$T/err")"
# out of memory is a run-time failure, not bad usage; convert does not write safetensors under an ONNX
# name; completion names the shell it was given; every environment variable read is in --help
expect 1 "info of a model too wide for memory" "$R" info --arch resnet18 --width 4096
expect 2 "convert into a .onnx name" "$R" convert "$T/w.safetensors" "$T/c.onnx"
grep -q "resnet export writes ONNX" "$T/err" && [ ! -e "$T/c.onnx" ] && ok || bad "convert to .onnx: $(cat "$T/err")"
expect 2 "completion zsh" "$R" completion zsh
grep -q "got 'zsh'" "$T/err" && ok || bad "completion zsh: $(cat "$T/err")"
expect 0 "resnet --help (environment)" "$R" --help
for v in $(grep -rhoE 'getenv\("[A-Z_]+"\)' src cli | sed -E 's/getenv\("([A-Z_]+)"\)/\1/' | sort -u); do
    # the tests' own hooks, and the reproducible-build convention `resnet manpage` dates its page by
    case $v in RESNET_TEST_* | SOURCE_DATE_EPOCH) continue ;; esac
    grep -q "^  $v " "$T/out" && ok || bad "the environment variable $v is read but not in resnet --help"
done
expect 2 "resnet help trian" "$R" help trian
grep -qF "unknown command 'trian': did you mean train?" "$T/err" && ok || bad "help of an unknown command: $(cat "$T/err")"
expect 2 "resnet --version extra" "$R" --version extra
grep -qF -- "--version takes no arguments, got 'extra'" "$T/err" && ok || bad "--version extra: $(cat "$T/err")"
# (a log of its own: the copy of one no test had written had made plot fail on the missing file,
# so that the check could not fail)
mkdir -p "$T/plotdir/auto" &&
    printf '{"epoch": 1, "train_loss": 1.5, "test_acc": 0.5}\n{"epoch": 2, "train_loss": 1.2, "test_acc": 0.6}\n' \
        >"$T/plotdir/l.jsonl"
R_ABS=$(realpath "$R")
(cd "$T/plotdir" && "$R_ABS" plot --log l.jsonl >/dev/null 2>"$T/plotdir/err")
pst=$?
[ "$pst" -eq 0 ] && [ -s "$T/plotdir/l.svg" ] && ! grep -q "is a folder" "$T/plotdir/err" && ok ||
    bad "plot's default --output refused beside a folder named auto (exit $pst): $(cat "$T/plotdir/err"; ls "$T/plotdir")"
expect 0 "resnet help info" "$R" help info
grep -q "^usage: resnet info" "$T/out" && ok || bad "resnet help info is not info's help: $(head -3 "$T/out")"

expect 0 "info resnet18" "$R" info --arch resnet18
grep -q "Total params: 11,689,512" "$T/out" && ok || bad "resnet18 has 11,689,512 parameters"
grep -q "layer4.1.bn2" "$T/out" && grep -q "3.628 GFLOP" "$T/out" && ok || bad "info rows and FLOPs"
expect 0 "info d2l" "$R" info --arch d2l_resnet18 --in-channels 1 --num-classes 10 --image-size 96
grep -q "conv.resnet_block4.1.conv2" "$T/out" && ok || bad "d2l module names in info"

expect 0 "init" "$R" init --arch d2l_resnet18 --in-channels 1 --num-classes 10 --output "$T/w.safetensors"
expect 0 "forward" "$R" forward --weights "$T/w.safetensors" --input data/sample/fmnist_batch.npy \
    --output "$T/y.npy" --print
[ "$(grep -c '^image ' "$T/out")" -eq 8 ] && ok || bad "forward --print prints 8 images"
/usr/bin/python3 -c "import numpy as np, sys; y = np.load('$T/y.npy'); sys.exit(0 if y.shape == (8, 10) and np.isfinite(y).all() else 1)" &&
    ok || bad "forward output is a finite (8, 10) array"
expect 1 "forward with the wrong arch" "$R" forward --arch resnet18 --weights "$T/w.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/y.npy"
expect 1 "forward with a missing file" "$R" forward --weights "$T/none.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/y.npy"
expect 2 "forward with a bad mode" "$R" forward --weights "$T/w.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/y.npy" --mode test
"$R" init --arch resnet18 --in-channels 3 --num-classes 10 --output "$T/r18.safetensors" >/dev/null
# int8: calibration images of the wrong channel count, bad flags, and a quantize / run round trip
expect 1 "quantize with 1-channel images for a 3-channel model" "$R" quantize --weights "$T/r18.safetensors" \
    --data data/fmnist-small --calib-images 8 --image-size 32 --output "$T/q.safetensors" --quiet
expect 2 "quantize --method unknown" "$R" quantize --weights "$T/w.safetensors" --data data/fmnist-small \
    --method kl --output "$T/q.safetensors"
expect 2 "quantize --calib-images 0" "$R" quantize --weights "$T/w.safetensors" --data data/fmnist-small \
    --calib-images 0 --output "$T/q.safetensors"
expect 0 "quantize (entropy)" "$R" quantize --weights "$T/w.safetensors" --data data/fmnist-small \
    --calib-images 64 --method entropy --output "$T/q/w.int8.safetensors" --quiet
# the int8 file records the size and normalisation calibration used (eval and predict apply them),
# and --dataset where the checkpoint names none: they had been the checkpoint's, or the
# defaults, whatever the flags said
expect 0 "quantize with --dataset, --image-size and --normalize" "$R" quantize --weights "$T/w.safetensors" \
    --data data/fmnist-small --dataset mnist --image-size 32 --normalize 0.5:0.25 --calib-images 8 \
    --output "$T/q/flags.safetensors" --quiet
"$R" train --data data/fmnist-small --width 8 --batch-size 8 --max-steps 1 --normalize 0.3:0.3 --no-report --quiet \
    --threads 1 --save "$T/q/n.safetensors" >/dev/null 2>&1
expect 0 "quantize with --normalize none a model trained normalised" "$R" quantize --weights "$T/q/n.safetensors" \
    --data data/fmnist-small --normalize none --calib-images 8 --output "$T/q/n8.safetensors" --quiet
grep -qF "warning: calibrated with --normalize none, where $T/q/n.safetensors records normalize 0.3" "$T/err" &&
    ok || bad "the override is not warned about: $(cat "$T/err")"
# the same values spelled otherwise are no override; another dataset is calibration's, not the classes'
expect 0 "quantize with --normalize 0.3:0.3 and --dataset mnist" "$R" quantize --weights "$T/q/n.safetensors" \
    --data data/fmnist-small --normalize 0.3:0.3 --dataset mnist --calib-images 8 --output "$T/q/nm.safetensors" --quiet
! grep -q "normalize" "$T/err" && grep -qF "calibrated on --dataset mnist, where $T/q/n.safetensors records dataset \
fashion-mnist (its classes'): the int8 file keeps dataset fashion-mnist" "$T/err" && ok ||
    bad "0.3:0.3 taken as an override, or --dataset mnist not warned about: $(cat "$T/err")"
/usr/bin/python3 - "$T/q/flags.safetensors" "$T/q/n8.safetensors" "$T/q/nm.safetensors" <<'PY' && ok || bad "the int8 files' metadata is not what calibration used"
import json, struct, sys
def meta(p):
    b = open(p, "rb").read()
    return json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])["__metadata__"]
m = meta(sys.argv[1])
assert (m["dataset"], m["image_size"], m["normalize"]) == ("mnist", "32", "0.5:0.25"), m
assert meta(sys.argv[2])["normalize"] == "none", meta(sys.argv[2])
m = meta(sys.argv[3])
assert (m["dataset"], m["calibration_dataset"]) == ("fashion-mnist", "mnist"), m
PY
# --normalize imagenet, as predict and export take it, in train, eval, quantize and report too: for
# these gray images ImageNet's averages, 0.449:0.226 (it had been refused but by predict and export)
expect 0 "train --normalize imagenet" "$R" train --data data/fmnist-small --width 8 --batch-size 8 --max-steps 1 \
    --normalize imagenet --no-report --quiet --threads 1 --save "$T/q/in.safetensors"
expect 0 "resume it" "$R" train --data data/fmnist-small --resume "$T/q/in.safetensors" --save "$T/q/in.safetensors" \
    --max-steps 2 --no-report --quiet --threads 1
expect 0 "quantize --normalize imagenet" "$R" quantize --weights "$T/w.safetensors" --data data/fmnist-small \
    --normalize imagenet --calib-images 8 --output "$T/q/in8.safetensors" --quiet
/usr/bin/python3 - "$T/q/in.safetensors" "$T/q/in8.safetensors" <<'PY' && ok || bad "--normalize imagenet is not recorded as its gray values"
import json, struct, sys
for p in sys.argv[1:]:
    b = open(p, "rb").read()
    m = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])["__metadata__"]
    mean, std = (float(v) for v in m["normalize"].split(":"))
    assert abs(mean - 0.449) < 1e-6 and abs(std - 0.226) < 1e-6, (p, m["normalize"])
PY
expect 0 "eval --normalize imagenet" "$R" eval --weights "$T/w.safetensors" --data data/fmnist-small \
    --normalize imagenet --threads 1
cp "$T/out" "$T/q/imagenet.out"
expect 0 "eval --normalize 0.449:0.226" "$R" eval --weights "$T/w.safetensors" --data data/fmnist-small \
    --normalize 0.449:0.226 --threads 1
cmp -s "$T/out" "$T/q/imagenet.out" && ok || bad "eval --normalize imagenet is not 0.449:0.226"
expect 0 "report --normalize imagenet" "$R" report --weights "$T/w.safetensors" --data data/fmnist-small \
    --normalize imagenet --threads 1 --quiet --no-png --grid 4 --output "$T/q/report"
expect 2 "eval --normalize imagenot" "$R" eval --weights "$T/w.safetensors" --data data/fmnist-small --normalize imagenot
grep -q "none, imagenet or MEAN" "$T/err" && ok || bad "the refusal does not name imagenet: $(cat "$T/err")"
# an output that is a folder is refused before any work (it had been found at the write: quantize and
# grad calibrated or differentiated first, and exited 3)
mkdir -p "$T/outdir"
expect 2 "quantize --output a folder" "$R" quantize --weights "$T/w.safetensors" --data data/fmnist-small \
    --calib-images 8 --output "$T/outdir" --quiet
grep -q "is a folder: name the file to write in it" "$T/err" && ok || bad "quantize --output a folder: $(cat "$T/err")"
for cmd in "init --arch resnet18" "convert $T/w.safetensors" "export $T/w.safetensors"; do
    if [ "${cmd%% *}" = init ]; then out=(--output "$T/outdir/"); else out=("$T/outdir"); fi
    expect 2 "${cmd%% *} into a folder" "$R" $cmd "${out[@]}"
    grep -q "is a folder" "$T/err" && ok || bad "${cmd%% *} into a folder: $(cat "$T/err")"
done
expect 3 "quantize into an unwritable path" "$R" quantize --weights "$T/w.safetensors" \
    --data data/fmnist-small --calib-images 8 --output "$T/w.safetensors/q.safetensors" --quiet
expect 0 "forward an int8 model" "$R" forward --weights "$T/q/w.int8.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/q/y.npy"
# the same logits on 1 and 3 threads (3 on this machine's 2 cores: a thread often stalled, its
# work items claimed by the others), bit for bit
expect 0 "forward an int8 model on 1 thread" "$R" forward --weights "$T/q/w.int8.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/q/y1.npy" --threads 1
expect 0 "forward an int8 model on 3 threads" "$R" forward --weights "$T/q/w.int8.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/q/y3.npy" --threads 3
cmp -s "$T/q/y1.npy" "$T/q/y3.npy" && cmp -s "$T/q/y1.npy" "$T/q/y.npy" && ok ||
    bad "int8 logits differ between 1, 3 and all threads"
# an int8 file edited: a tensor added is named, a scalar of shape (1, 1) refused naming it
/usr/bin/python3 - "$T/q/w.int8.safetensors" "$T/q" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
head, data = json.loads(b[8:8 + n]), b[8 + n:]
def write(path, h, d):
    t = json.dumps(h).encode()
    open(path, "wb").write(struct.pack("<Q", len(t)) + t + d)
extra = dict(head)
extra["conv.block.0.extra_scale"] = {"dtype": "F32", "shape": [1], "data_offsets": [len(data), len(data) + 4]}
write(sys.argv[2] + "/extra.safetensors", extra, data + b"\0\0\x80\x3f")
unknown = dict(head)
unknown["__metadata__"] = dict(head["__metadata__"], calibration_images="-5")
write(sys.argv[2] + "/unknown_count.safetensors", unknown, data)
scalar = [k for k in head if k.endswith(".output_scale")][0]
head[scalar]["shape"] = [1, 1]
write(sys.argv[2] + "/shape11.safetensors", head, data)
print(scalar)
PY
expect 0 "info of an int8 file whose calibration count is unreadable" "$R" info --weights "$T/q/unknown_count.safetensors"
grep -q "^calibration: entropy on an unknown number of images" "$T/out" && ok ||
    bad "the unreadable count is not shown as unknown: $(grep calibration "$T/out")"
expect 1 "an int8 file with a tensor added" "$R" forward --weights "$T/q/extra.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/q/y.npy"
grep -q "unexpected tensor 'conv.block.0.extra_scale'" "$T/err" && ok || bad "the added tensor is not named: $(cat "$T/err")"
expect 1 "an int8 scale of shape (1, 1)" "$R" forward --weights "$T/q/shape11.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/q/y.npy"
grep -q "output_scale' is a scalar: its shape must be () or (1)" "$T/err" && ok ||
    bad "the (1, 1) scale is not refused by name: $(cat "$T/err")"
expect 1 "convert an int8 model (PyTorch could not load the output)" "$R" convert "$T/q/w.int8.safetensors" \
    "$T/q/w2.safetensors"
[ ! -e "$T/q/w2.safetensors" ] && ok || bad "convert wrote an int8 model"
expect 0 "bench --precision int8 (random weights quantized)" "$R" bench --arch resnet18 --batch-size 2 \
    --image-size 64 --repeats 2 --warmup 1 --precision int8 --json
grep -q '"precision": "int8"' "$T/out" && grep -q '"kernel": "[a-z0-9-]* [0-9]*x[0-9]*"' "$T/out" && ok ||
    bad "bench --json does not name the int8 precision and kernel: $(cat "$T/out")"
# bf16 training: on the CPU's bf16 products, on the portable ones, or refused where the kernels have none
TB=(bench --train --arch resnet18 --stem cifar --width 8 --in-channels 1 --num-classes 10 --image-size 16
    --batch-size 4 --repeats 1 --warmup 1 --json)
expect 2 "bench --train --precision int8" "$R" "${TB[@]}" --precision int8
RN_ISA=portable expect 0 "bench --train --precision bf16 (portable bf16 kernels)" "$R" "${TB[@]}" --precision bf16
grep -q '"precision": "bf16"' "$T/out" && grep -q '"isa": "portable"' "$T/out" &&
    grep -q '"kernel": "portable-bf16 4x16"' "$T/out" &&
    ok || bad "bench --train --json at bf16: $(cat "$T/out")"
if grep -q -w 'avx512_bf16\|amx_bf16' /proc/cpuinfo; then
    expect 0 "bench --train --precision bf16 (the CPU's bf16 products)" "$R" "${TB[@]}" --precision bf16
    grep -q '"precision": "bf16"' "$T/out" && ok || bad "bench --train --json at bf16: $(cat "$T/out")"
    expect 0 "train --precision bf16" "$R" train --data data/fmnist-small --arch resnet18 --stem cifar \
        --width 8 --epochs 1 --max-steps 3 --batch-size 16 --precision bf16 --quiet
fi
if grep -q -w avx2 /proc/cpuinfo; then
    RN_ISA=avx2 expect 1 "bench --train --precision bf16 on AVX2 kernels (no bf16 products)" "$R" "${TB[@]}" \
        --precision bf16
    grep -q "bf16 training needs bf16 products" "$T/err" && ok || bad "the refusal names what is missing: $(cat "$T/err")"
fi
# a grouped network (ResNeXt, 1-channel groups at this width, gathered 16 at a time): int8 near float32
"$R" init --arch resnext50_32x4d --width 16 --in-channels 1 --num-classes 10 \
    --output "$T/q/rx.safetensors" > /dev/null
expect 0 "quantize a ResNeXt" "$R" quantize --weights "$T/q/rx.safetensors" --data data/fmnist-small \
    --calib-images 64 --output "$T/q/rx.int8.safetensors" --quiet
expect 0 "forward a ResNeXt in float32" "$R" forward --weights "$T/q/rx.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/q/rx32.npy"
expect 0 "forward a ResNeXt in int8" "$R" forward --weights "$T/q/rx.int8.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/q/rx8.npy"
/usr/bin/python3 - "$T/q/rx32.npy" "$T/q/rx8.npy" <<'PY' && ok || bad "ResNeXt int8 logits far from float32"
import sys
import numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
err = float(np.abs(a - b).max() / np.abs(a).max())
print(f"ResNeXt int8 vs float32: max |dl| / max |l| = {err:.4f}")
sys.exit(0 if np.isfinite(b).all() and err < 0.15 else 1)
PY
# a weights file that cannot run at the --precision asked is the file's problem, found once it is
# loaded: exit 1 in every command (a --precision that names nothing is bad usage: exit 2, below)
expect 1 "forward --precision int8 on a float32 model" "$R" forward --weights "$T/w.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/q/y.npy" --precision int8
expect 1 "forward --precision fp32 on an int8 model" "$R" forward --weights "$T/q/w.int8.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/q/y.npy" --precision fp32
expect 1 "eval --precision bf16 on an int8 model" "$R" eval --weights "$T/q/w.int8.safetensors" \
    --data data/fmnist-small --precision bf16
grep -qF "$T/q/w.int8.safetensors: this is an int8 model" "$T/err" && ok || bad "the int8 file is not named: $(cat "$T/err")"
# training from an int8 file names it and says what it is (resuming had complained of a missing optimizer file)
expect 1 "train --init an int8 model" "$R" train --data data/fmnist-small --init "$T/q/w.int8.safetensors" --max-steps 1
grep -qF "$T/q/w.int8.safetensors is an int8 model, quantized for inference" "$T/err" && ok || bad "train --init int8: $(cat "$T/err")"
expect 1 "train --resume an int8 model" "$R" train --data data/fmnist-small --resume "$T/q/w.int8.safetensors" \
    --save "$T/q/w.int8.safetensors"
grep -qF -- "--resume $T/q/w.int8.safetensors is an int8 model" "$T/err" && ok || bad "train --resume int8: $(cat "$T/err")"
expect 1 "eval --precision int8 on a float32 model" "$R" eval --weights "$T/w.safetensors" \
    --data data/fmnist-small --precision int8
expect 1 "forward with the wrong channel count" "$R" forward --weights "$T/r18.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/y.npy"
expect 3 "forward into an unwritable path" "$R" forward --weights "$T/w.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/w.safetensors/y.npy"

# too big to fit: refused from the plan, before anything large is allocated
expect 1 "train too big to fit" "$R" train --data data/fmnist-small --batch-size 256 --image-size 2048 \
    --epochs 1 --quiet --no-report
grep -q "too big to fit: training d2l_resnet18 on batches of 256 images of 2048x2048 (the trainer [0-9.]* GiB, the \
evaluation [0-9.]* GiB) needs about [0-9.]* GiB, but [0-9.]* GiB is available (.*); a --batch-size of [0-9]* or \
less would fit" "$T/err" && ok || bad "too big to fit: the estimate, what is available and what would fit: $(cat "$T/err")"
expect 1 "eval too big to fit" "$R" eval --weights "$T/w.safetensors" --data data/fmnist-small \
    --batch-size 256 --image-size 2048
grep -q "too big to fit: inference of d2l_resnet18 on batches of 256 images of 2048x2048 needs about" "$T/err" &&
    ok || bad "eval too big to fit: $(cat "$T/err")"
# more pixels in a batch than the kernels' int indices reach: refused by name, whatever the memory
expect 1 "eval past the index limit" "$R" eval --weights "$T/w.safetensors" --data data/fmnist-small \
    --batch-size 65536 --image-size 2048
grep -q "batch 65536 at 2048x2048 is too large: .* would index [0-9]* pixels" "$T/err" &&
    ok || bad "eval past the index limit: $(cat "$T/err")"
expect 1 "bench too big to fit" "$R" bench --arch resnet50 --batch-size 1024 --image-size 1024 --train
grep -q "too big to fit: training resnet50 on batches of 1024 images of 1024x1024 needs about" "$T/err" &&
    ok || bad "bench too big to fit: $(cat "$T/err")"
# bench --precision int8 quantizes on 8 synthetic images first: refused from its plan, not by a
# failed allocation (or the kernel's OOM killer) while calibrating
expect 1 "bench int8: calibration too big to fit" "$R" bench --precision int8 --image-size 16384 --batch-size 64 \
    --width 512
grep -q "too big to fit: int8 calibration (float32 passes of one image) of resnet18 on batches of 1 images of 16384x16384 needs about" "$T/err" &&
    ok || bad "bench int8: calibration too big to fit: $(cat "$T/err")"
expect 2 "train with a negative --max-bad-steps" "$R" train --data data/fmnist-small --max-bad-steps -1
expect 2 "train --augment crop:0" "$R" train --data data/fmnist-small --augment crop:0
expect 2 "train --augment crop:2+flop" "$R" train --data data/fmnist-small --augment crop:2+flop
expect 0 "train --augment crop:2+flip (2 steps)" "$R" train --data data/fmnist-small --augment crop:2+flip \
    --width 8 --batch-size 16 --max-steps 2 --threads 1 --save "$T/crop/c.safetensors"
/usr/bin/python3 - "$T/crop/c.optim.safetensors" <<'PY' && ok || bad "the plan does not record --augment crop:2+flip"
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
meta = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])["__metadata__"]
sys.exit(0 if meta.get("plan.augment") == "crop:2+flip" else 1)
PY
# --eval-every is part of the plan a resume keeps
TE=(train --data data/fmnist-small --width 8 --batch-size 500 --epochs 3 --threads 1 --quiet --no-report
    --save "$T/ev/e.safetensors")
expect 0 "train --eval-every 3, stopped after epoch 1" "$R" "${TE[@]}" --eval-every 3 --max-steps 10
expect 0 "resume it without --eval-every" "$R" "${TE[@]}" --resume "$T/ev/e.safetensors"
/usr/bin/python3 - "$T/ev/e.log.jsonl" <<'PY' && ok || bad "the resumed run did not keep --eval-every 3: $(cat "$T/ev/e.log.jsonl")"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"epoch"')]
tested = [r["epoch"] for r in recs if r["test_acc"] is not None]
sys.exit(0 if [r["epoch"] for r in recs] == [1, 2, 3] and tested == [3] else 1)
PY
# an epoch resumed inside is logged whole: its train figures those of the run without the stop, and
# "elapsed" goes on from the checkpoint's
TR=(train --data data/fmnist-small --width 8 --batch-size 500 --epochs 2 --threads 1 --quiet --no-report)
expect 0 "train 2 epochs without a stop" "$R" "${TR[@]}" --save "$T/tr/a.safetensors"
expect 0 "train 2 epochs, stopped at step 4" "$R" "${TR[@]}" --save "$T/tr/b.safetensors" --max-steps 4
cp "$T/tr/b.optim.safetensors" "$T/tr/b_stop.optim.safetensors"
expect 0 "resume it" "$R" "${TR[@]}" --save "$T/tr/b.safetensors" --resume "$T/tr/b.safetensors"
/usr/bin/python3 - "$T/tr/a.log.jsonl" "$T/tr/b.log.jsonl" "$T/tr/b_stop.optim.safetensors" <<'PY' && ok ||
import json, struct, sys
def epochs(p):
    return [json.loads(l) for l in open(p) if l.startswith('{"epoch"')]
a, b = epochs(sys.argv[1]), epochs(sys.argv[2])
raw = open(sys.argv[3], "rb").read()
meta = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])["__metadata__"]
assert len(a) == len(b) == 2, (a, b)
for x, y in zip(a, b):
    assert (x["train_loss"], x["train_acc"], x["test_acc"]) == (y["train_loss"], y["train_acc"], y["test_acc"]), (x, y)
assert meta["tally.images"] == "2000" and float(meta["tally.seconds"]) > 0, meta
assert b[0]["elapsed"] > float(meta["elapsed"]) > 0 and b[1]["elapsed"] > b[0]["elapsed"], (meta, b)
assert b[0]["seconds"] > float(meta["tally.seconds"]), (meta, b)
# the resumed command's run record describes the model it trains, not the flags' defaults
runs = [json.loads(l)["run"] for l in open(sys.argv[2]) if l.startswith('{"run"')]
assert len(runs) == 2 and runs[1]["flags"]["width"] == "8" and runs[1]["flags"]["num-classes"] == "10", runs[1]["flags"]
PY
    bad "the resumed epoch's record differs from the uninterrupted run's: $(cat "$T/tr/a.log.jsonl" "$T/tr/b.log.jsonl")"
# a checkpoint saved inside an epoch: the report says how far past the last logged epoch it is
expect 0 "train to step 13 (3 steps into epoch 2)" "$R" "${TR[@]}" --save "$T/tr/c.safetensors" --max-steps 13
expect 0 "report on it" "$R" report --weights "$T/tr/c.safetensors" --data data/fmnist-small --no-png --quiet
grep -q "the checkpoint is 3 steps past the end of epoch 1" "$T/tr/c_report/report.html" && ok ||
    bad "the report does not say the checkpoint is 3 steps past epoch 1"

expect 0 "bench --json" "$R" bench --arch resnet18 --batch-size 2 --image-size 32 --warmup 0 --repeats 2 --json
/usr/bin/python3 -c "
import json, sys
d = json.load(open('$T/out'))
sys.exit(0 if d['images_per_second'] > 0 and d['ms_per_batch_median'] > 0 else 1)" && ok || bad "bench --json fields"
expect 0 "bench text" "$R" bench --arch d2l_resnet18 --in-channels 1 --num-classes 10 --batch-size 2 \
    --image-size 32 --warmup 1 --repeats 1 --mode train
grep -q "images/s" "$T/out" && ok || bad "bench prints images/s"

# ---- values that train but not as meant are warned about (a cosine floor above --lr, --lr 0, a warm-up
# longer than the run); momentum 1 or more is refused below (it diverged, the message blaming --lr) ----
expect 0 "train with a cosine floor above --lr, a warm-up past the end" "$R" train --data data/fmnist-small --width 8 \
    --batch-size 8 --max-steps 1 --schedule cosine:1 --warmup 100000 --no-report --quiet --threads 1
grep -qF "warning: --schedule cosine:1 ends at 1, above --lr 0.05" "$T/err" &&
    grep -qF "warning: --warmup 100000 is longer than the run's" "$T/err" && ok || bad "no warnings: $(cat "$T/err")"
expect 0 "train --lr 0" "$R" train --data data/fmnist-small --width 8 --batch-size 8 --max-steps 1 --lr 0 \
    --no-report --quiet --threads 1
grep -qF "warning: --lr 0: the weights will not change" "$T/err" && ok || bad "no warning: $(cat "$T/err")"

# ---- a bad value is exit 2, found before any file is read or written ---------------------------
# --data names no folder: a value checked only after loading the data would fail with 1
for bad in "--warmup -1" "--lr-backbone x" "--norm-weight-decay -1" "--norm-weight-decay x" "--clip-grad-norm -1" "--clip-grad-norm inf" "--ema 1" "--ema -0.1" "--ema-every 0" "--ema-every 4" "--random-erase 2" "--random-erase x" "--mixup-alpha -1" "--cutmix-alpha x" "--mixup-alpha 1e39" "--cutmix-alpha 1e-50" "--lr -1" "--lr 0x10" "--momentum -0.5" "--momentum 1" "--label-smoothing 2" "--arch bogus" \
    "--optimizer bogus" "--schedule bogus" "--schedule cosine:-1" "--dataset bogus" "--precision bogus" \
    "--schedule exponential" "--schedule exponential:0" "--schedule-by bogus" "--warmup-epochs -1" \
    "--warmup-method bogus --warmup 2" "--warmup-factor 0 --warmup 2" "--warmup-factor 1.5 --warmup 2" \
    "--warmup-factor x --warmup 2" "--warmup-factor 0.1" "--warmup-method constant" "--warmup 2 --warmup-epochs 1" \
    "--warmup 2 --schedule-by epoch" "--schedule onecycle --warmup-epochs 1" "--auto-augment augmix" \
    "--auto-augment bogus" "--auto-augment ra --ra-magnitude 31" "--ra-magnitude 5" \
    "--auto-augment ra --aa-interpolation bicubic" "--val-image-size -1" "--val-resize-size 30" "--ra-reps 4" "--ra-sampler --ra-reps 1" \
    "--ra-sampler --ra-reps 65" \
    "--conv-algo bogus" "--nesterov" "--stem bogus" "--save-every 2 --log none" "--log-every 2" \
    "--resume $T/w.safetensors" "--save-every 2" "--log-every 2 --save $T/x.safetensors --log none"; do
    # shellcheck disable=SC2086
    expect 2 "train $bad" "$R" train --data "$T/no-data" --max-steps 1 $bad
done
for bad in "--conv-algo bogus" "--precision bogus" "--dataset bogus" "--arch bogus" "--split bogus" "--tta x" \
    "--normalize 1:0"; do
    # shellcheck disable=SC2086
    expect 2 "eval $bad" "$R" eval --weights "$T/w.safetensors" --data "$T/no-data" $bad
done
for bad in "--conv-algo bogus" "--precision bogus" "--arch bogus"; do
    # shellcheck disable=SC2086
    expect 2 "bench $bad" "$R" bench --batch-size 1 --image-size 32 --repeats 1 --warmup 0 $bad
    # shellcheck disable=SC2086
    expect 2 "forward $bad" "$R" forward --weights "$T/w.safetensors" --input data/sample/fmnist_batch.npy \
        --output "$T/bad.npy" $bad
    # shellcheck disable=SC2086
    expect 2 "predict $bad" "$R" predict --weights "$T/w.safetensors" $bad "$T/none.png"
done
expect 2 "quantize --dataset bogus" "$R" quantize --weights "$T/w.safetensors" --data "$T/no-data" \
    --dataset bogus --output "$T/q/b.safetensors"
expect 2 "export --dataset bogus" "$R" export --dataset bogus "$T/w.safetensors" "$T/b.onnx"
grep -q "unknown --dataset 'bogus'" "$T/err" && [ ! -e "$T/b.onnx" ] && ok || bad "export --dataset bogus: $(cat "$T/err")"
# a dataset whose classes or channels are not the model's is not recorded (eval and predict would
# have taken a 10-class gray model for ImageNet's or CIFAR-10's)
expect 2 "export --dataset imagenet, a 10-class model" "$R" export --dataset imagenet "$T/w.safetensors" "$T/b.onnx"
grep -q "imagenet has 1000 classes" "$T/err" && [ ! -e "$T/b.onnx" ] && ok || bad "export --dataset imagenet: $(cat "$T/err")"
expect 2 "export --dataset cifar10, a gray model" "$R" export --dataset cifar10 "$T/w.safetensors" "$T/b.onnx"
grep -q "cifar10 has images of 3 channels" "$T/err" && [ ! -e "$T/b.onnx" ] && ok || bad "export --dataset cifar10: $(cat "$T/err")"
expect 0 "export --dataset mnist, a gray 10-class model" "$R" export --dataset mnist "$T/w.safetensors" "$T/b.onnx"
rm -f "$T/b.onnx"
# a normalisation predict and eval would refuse is not recorded: two values for a gray model, a std
# too large for a float (both had been written, and predict then blamed a flag never given)
expect 2 "export --normalize of two channels for a gray model" "$R" export --normalize 1,2:1,2 "$T/w.safetensors" \
    "$T/b.onnx"
grep -q "gives 2 values for a model of 1 channel" "$T/err" && [ ! -e "$T/b.onnx" ] && ok ||
    bad "export --normalize 1,2:1,2: $(cat "$T/err")"
expect 2 "export --normalize 0:1e39" "$R" export --normalize 0:1e39 "$T/w.safetensors" "$T/b.onnx"
grep -qF -- "--normalize must be" "$T/err" && ok || bad "export --normalize 0:1e39: $(cat "$T/err")"
expect 2 "train --normalize 0:1e39" "$R" train --normalize 0:1e39 --data data/fmnist-small --max-steps 1 --no-report
grep -qF -- "--normalize must be" "$T/err" && ok || bad "train --normalize 0:1e39: $(cat "$T/err")"
expect 2 "init --output ''" "$R" init --arch resnet18 --output ""
grep -q -- "flag '--output' needs a value, got an empty one" "$T/err" && ok || bad "init --output '': $(cat "$T/err")"
# no flag takes an empty value: --weights "" had been opened as the file "" (exit 1, no flag named)
for cmd in "eval --data data/fmnist-small" "predict x.png" info bench; do
    expect 2 "${cmd%% *} --weights ''" "$R" $cmd --weights ""
    grep -q -- "flag '--weights' needs a value, got an empty one" "$T/err" && ok || bad "$cmd --weights '': $(cat "$T/err")"
done
# --resume and --save-every need --save, --log-every a log
expect 2 "train --resume without --save" "$R" train --data data/fmnist-small --resume "$T/w.safetensors"
grep -q -- "needs --save" "$T/err" && ok || bad "train --resume alone: $(cat "$T/err")"
# a train that fails on a bad value leaves no folder behind
expect 2 "train --lr -1 into a new folder" "$R" train --data data/fmnist-small --lr -1 --save "$T/new/m.safetensors"
[ ! -e "$T/new" ] && ok || bad "train --lr -1 left the folder $T/new"
# with --weights the model is the file's: the flags describing a new one are refused
expect 2 "info --weights --width" "$R" info --weights "$T/w.safetensors" --width 8
expect 2 "bench --weights --stem" "$R" bench --weights "$T/w.safetensors" --stem cifar --batch-size 1 \
    --image-size 32 --repeats 1 --warmup 0
# --version is listed
"$R" --help | grep -q -- "--version" && ok || bad "resnet --help does not list --version"
# predict's message for a 1-channel model names one value, not "1 or 1"
/usr/bin/python3 -c "
from PIL import Image
Image.new('L', (28, 28), 128).save('$T/gray.png')" || bad "writing a PNG"
expect 2 "predict --normalize bogus" "$R" predict --weights "$T/w.safetensors" --normalize 1,2:3 "$T/gray.png"
grep -q "1 or 1" "$T/err" && bad "predict says '1 or 1 values': $(cat "$T/err")" || ok

# ---- forward --print --true-labels: read before anything is written; needs --print ---------------
rm -f "$T/tl.npy"
expect 1 "forward --true-labels missing" "$R" forward --weights "$T/w.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/tl.npy" --print --true-labels "$T/missing.txt"
[ ! -e "$T/tl.npy" ] && ok || bad "forward wrote its output before failing on the labels"
expect 2 "forward --true-labels without --print" "$R" forward --weights "$T/w.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/tl.npy" --true-labels data/sample/fmnist_batch_labels.txt
[ ! -e "$T/tl.npy" ] && ok || bad "forward --true-labels without --print wrote its output"

# ---- grad: an int8 model is refused, as train refuses it; labels and smoothing are checked --------
/usr/bin/python3 -c "
import numpy as np
for name, v in (('ok', [0, 1, 2, 3, 4, 5, 6, 7]), ('half', [0, 0.5, 2, 3, 4, 5, 6, 7]),
                ('frac', [1.7, 1, 2, 3, 4, 5, 6, 7]), ('nan', [float('nan')] + [1] * 7), ('neg', [-1] + [1] * 7),
                ('big', [10] + [1] * 7)):
    np.save('$T/lab_%s.npy' % name, np.array(v, np.float32))" || bad "writing the labels"
G=(grad --input data/sample/fmnist_batch.npy --output "$T/g.safetensors")
expect 1 "grad on an int8 model" "$R" "${G[@]}" --weights "$T/q/w.int8.safetensors" --labels "$T/lab_ok.npy"
grep -q "int8 model" "$T/err" && ok || bad "grad on an int8 model: $(cat "$T/err")"
expect 2 "grad --label-smoothing 2" "$R" "${G[@]}" --weights "$T/w.safetensors" --labels "$T/lab_ok.npy" \
    --label-smoothing 2
expect 2 "grad --label-smoothing -0.1" "$R" "${G[@]}" --weights "$T/w.safetensors" --labels "$T/lab_ok.npy" \
    --label-smoothing -0.1
for l in half frac nan neg big; do
    expect 1 "grad with labels $l" "$R" "${G[@]}" --weights "$T/w.safetensors" --labels "$T/lab_$l.npy"
    grep -q "whole numbers in 0..9" "$T/err" && ok || bad "grad labels $l: $(cat "$T/err")"
done
# an --output that is one of the files read is refused before anything is written (forward and grad
# had replaced their input, labels or the model itself)
cp "$T/w.safetensors" "$T/w_keep.safetensors"
cp data/sample/fmnist_batch.npy "$T/in_keep.npy"
expect 2 "grad --output the weights" "$R" grad --input "$T/in_keep.npy" --labels "$T/lab_ok.npy" \
    --weights "$T/w_keep.safetensors" --output "$T/w_keep.safetensors"
grep -q "the same file as --weights" "$T/err" && cmp -s "$T/w.safetensors" "$T/w_keep.safetensors" && ok ||
    bad "grad --output the weights: $(cat "$T/err")"
expect 2 "grad --output the labels" "$R" grad --input "$T/in_keep.npy" --labels "$T/lab_ok.npy" \
    --weights "$T/w_keep.safetensors" --output "$T/lab_ok.npy"
expect 2 "forward --output the input" "$R" forward --input "$T/in_keep.npy" --weights "$T/w_keep.safetensors" \
    --output "$T/./in_keep.npy"
grep -q "the same file as --input" "$T/err" && cmp -s data/sample/fmnist_batch.npy "$T/in_keep.npy" && ok ||
    bad "forward --output the input: $(cat "$T/err")"

# ---- convert IN OUT with flags -----------------------------------------------------------------------
expect 0 "convert IN OUT --arch" "$R" convert "$T/w.safetensors" "$T/cv.safetensors" --arch d2l_resnet18
expect 0 "convert --arch IN OUT" "$R" convert --arch d2l_resnet18 "$T/w.safetensors" "$T/cv2.safetensors"
expect 2 "convert IN" "$R" convert "$T/w.safetensors"
grep -q "expected IN and OUT" "$T/err" && ok || bad "convert IN: $(cat "$T/err")"
expect 0 "convert --help" "$R" convert --help
grep -q "^usage: resnet convert .*IN OUT" "$T/out" && ok || bad "convert --help shows no IN OUT: $(head -2 "$T/out")"

# ---- plot: a log that cannot be read is exit 1 (3 is for files not written) --------------------------
expect 1 "plot --log FOLDER" "$R" plot --log "$T" --output "$T/p.svg"

# ---- features: forward --features, eval --features / --feature-labels ------------------------------
# the pass that writes the logits writes the features: the classifier applied to them gives the logits;
# eval's files hold every image of the split in order, with its label, and give eval's loss and top-1
expect 0 "forward --features alone" "$R" forward --weights "$T/w.safetensors" \
    --input data/sample/fmnist_batch.npy --features "$T/feat/f.npy"
expect 0 "forward --output --features" "$R" forward --weights "$T/w.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/fy.npy" --features "$T/f2.npy"
/usr/bin/python3 - "$T" <<'PY' && ok || bad "forward --features: not the classifier's input"
import os, sys
import numpy as np
sys.path.insert(0, "tools")
from st_io import load_safetensors
t = sys.argv[1]
f, f2, y, y0 = (np.load(os.path.join(t, p)) for p in ("feat/f.npy", "f2.npy", "fy.npy", "y.npy"))
sd, _ = load_safetensors(os.path.join(t, "w.safetensors"))
w, b = (np.asarray(sd[k], dtype=np.float64) for k in ("fc.weight", "fc.bias"))
z = f.astype(np.float64) @ w.T + b
ok = (f.shape == (8, 512) and f.dtype == np.float32 and (f == f2).all() and (y == y0).all()
      and np.abs(z - y).max() <= 1e-5 * np.abs(y).max() and (f > 0).mean() > 0.2)
sys.exit(0 if ok else 1)
PY
expect 2 "forward with neither --output nor --features" "$R" forward --weights "$T/w.safetensors" \
    --input data/sample/fmnist_batch.npy
grep -qF "give --output (the logits), --features, or both" "$T/err" && ok || bad "forward without outputs: $(cat "$T/err")"
expect 2 "forward --features the --output" "$R" forward --weights "$T/w.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/same.npy" --features "$T/same.npy"
expect 2 "forward --features the input" "$R" forward --weights "$T/w.safetensors" \
    --input data/sample/fmnist_batch.npy --features data/sample/fmnist_batch.npy
for p in fp32 bf16; do
    expect 0 "eval --features ($p)" "$R" eval --weights "$T/w.safetensors" --data data/fmnist-small \
        --dataset fashion-mnist --image-size 0 --precision $p --json --features "$T/ev/$p.npy" \
        --feature-labels "$T/ev/$p.labels.npy" || continue
    /usr/bin/python3 - "$T" "$p" "$T/out" <<'PY' && ok || bad "eval --features ($p): not the split's features and labels"
import gzip, json, os, sys
import numpy as np
sys.path.insert(0, "tools")
from st_io import load_safetensors
t, p, out = sys.argv[1:4]
f = np.load(os.path.join(t, "ev", p + ".npy"))
lab = np.load(os.path.join(t, "ev", p + ".labels.npy"))
with gzip.open("data/fmnist-small/t10k-labels-idx1-ubyte.gz") as g:
    truth = np.frombuffer(g.read()[8:], dtype=np.uint8)
r = json.load(open(out))
sd, _ = load_safetensors(os.path.join(t, "w.safetensors"))
z = f.astype(np.float64) @ np.asarray(sd["fc.weight"], np.float64).T + np.asarray(sd["fc.bias"], np.float64)
z -= z.max(axis=1, keepdims=True)
loss = float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(lab)), lab]))
top1 = float(np.mean(z.argmax(axis=1) == lab))
ok = (f.shape == (len(truth), 512) and lab.dtype == np.int64 and (lab == truth).all()
      and abs(loss - r["loss"]) < 1e-4 and abs(top1 - r["top1"]) < 1e-6)
if not ok:
    print(f.shape, lab.dtype, (lab == truth).all(), loss, r["loss"], top1, r["top1"])
sys.exit(0 if ok else 1)
PY
done
expect 2 "eval --feature-labels the --features" "$R" eval --weights "$T/w.safetensors" --data data/fmnist-small \
    --dataset fashion-mnist --features "$T/same.npy" --feature-labels "$T/same.npy"
expect 2 "eval --features a folder" "$R" eval --weights "$T/w.safetensors" --data data/fmnist-small \
    --dataset fashion-mnist --features "$T"
expect 1 "eval --features on a missing dataset" "$R" eval --weights "$T/w.safetensors" --data "$T/nodata" \
    --dataset fashion-mnist --features "$T/ev/none.npy"
[ ! -e "$T/ev/none.npy" ] && ok || bad "eval that failed wrote --features"
# --feature-layer: a stage's maps, (N, C, H, W), by the generic name or the architecture's own; eval's
# rows are forward's on the same images (the sample batch is the split's first 8, preprocessed alike)
expect 0 "forward --feature-layer layer3" "$R" forward --weights "$T/w.safetensors" \
    --input data/sample/fmnist_batch.npy --features "$T/l3.npy" --feature-layer layer3
expect 0 "forward --feature-layer conv.resnet_block3" "$R" forward --weights "$T/w.safetensors" \
    --input data/sample/fmnist_batch.npy --features "$T/rb3.npy" --feature-layer conv.resnet_block3
expect 0 "eval --feature-layer layer3" "$R" eval --weights "$T/w.safetensors" --data data/fmnist-small \
    --dataset fashion-mnist --image-size 0 --features "$T/ev/l3.npy" --feature-layer layer3
/usr/bin/python3 - "$T" <<'PY' && ok || bad "--feature-layer layer3: forward's and eval's maps differ"
import os, sys
import numpy as np
t = sys.argv[1]
a, b, e = (np.load(os.path.join(t, p)) for p in ("l3.npy", "rb3.npy", "ev/l3.npy"))
ok = (a.shape == (8, 256, 2, 2) and (a == b).all() and e.shape == (1000, 256, 2, 2)
      and np.abs(e[:8] - a).max() <= 1e-5 * np.abs(a).max() and (a > 0).mean() > 0.2)
sys.exit(0 if ok else 1)
PY
expect 2 "forward --feature-layer maxpool on d2l (its stem ends in conv.block.3)" "$R" forward \
    --weights "$T/w.safetensors" --input data/sample/fmnist_batch.npy --features "$T/mp.npy" --feature-layer maxpool
grep -qF "d2l_resnet18 has no layer of that name" "$T/err" && [ ! -e "$T/mp.npy" ] && ok ||
    bad "--feature-layer maxpool on d2l: $(cat "$T/err")"
expect 2 "--feature-layer without --features" "$R" forward --weights "$T/w.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/y3.npy" --feature-layer layer2
expect 2 "--feature-layer layer5" "$R" predict --weights "$T/w.safetensors" --features "$T/p.npy" \
    --feature-layer layer5 data/sample/fmnist_batch.npy
expect 2 "eval --feature-layer with --tta flip" "$R" eval --weights "$T/w.safetensors" --data data/fmnist-small \
    --dataset fashion-mnist --features "$T/ev/t.npy" --feature-layer layer1 --tta flip
# a write that fails (the file-size limit) is exit 3 and leaves no file, of either output; eval's outputs
# may not be files of the dataset it reads (they had replaced its labels, and eval then succeeded)
mkdir -p "$T/fsz" && cp -r data/fmnist-small "$T/fsz/data"
( trap '' XFSZ; ulimit -f 100; "$R" eval --weights "$T/w.safetensors" --data data/fmnist-small --dataset fashion-mnist \
    --image-size 0 --quiet --features "$T/fsz/f.npy" --feature-labels "$T/fsz/l.npy" >/dev/null 2>"$T/err" )
st=$?
[ "$st" -eq 3 ] && [ -z "$(ls "$T/fsz" | grep -v '^data$')" ] && [ -z "$(ls -A "$T/fsz" | grep tmp)" ] && ok ||
    bad "eval --features past the file-size limit: exit $st, left $(ls -A "$T/fsz"): $(cat "$T/err")"
( trap '' XFSZ; ulimit -f 4; "$R" forward --weights "$T/w.safetensors" --input data/sample/fmnist_batch.npy \
    --output "$T/fsz/y.npy" --features "$T/fsz/s.npy" --feature-layer stem >/dev/null 2>"$T/err" )
st=$?
[ "$st" -eq 3 ] && [ -z "$(ls -A "$T/fsz" | grep -v '^data$')" ] && ok ||
    bad "forward --output --features past the file-size limit: exit $st, left $(ls -A "$T/fsz"): $(cat "$T/err")"
cp "$T/fsz/data/t10k-labels-idx1-ubyte.gz" "$T/fsz/labels.before"
expect 2 "eval --feature-labels onto the dataset's labels" "$R" eval --weights "$T/w.safetensors" \
    --data "$T/fsz/data" --dataset fashion-mnist --feature-labels "$T/fsz/data/t10k-labels-idx1-ubyte.gz"
grep -qF "is a file inside --data" "$T/err" && cmp -s "$T/fsz/labels.before" "$T/fsz/data/t10k-labels-idx1-ubyte.gz" &&
    ok || bad "eval onto its dataset: $(cat "$T/err")"
expect 0 "eval --features a new file inside --data" "$R" eval --weights "$T/w.safetensors" --data "$T/fsz/data" \
    --dataset fashion-mnist --image-size 0 --features "$T/fsz/data/new.npy"

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
