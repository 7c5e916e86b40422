#!/usr/bin/env bash
# train_real.sh BUILD - a short real training run on the bundled Fashion-MNIST
# subset (5000 / 1000 images): d2l_resnet18 at 28x28, 3 epochs, SGD with
# momentum and a cosine schedule. Deterministic for a seed and a thread count;
# it must reach 0.70 test accuracy (it measures 0.775 on 2 threads). Then:
# the curves are valid SVG, `resnet eval` on the checkpoint agrees with the
# last epoch's test accuracy, and PyTorch loads the checkpoint strictly; its int8
# quantization (resnet quantize) stays within 1 point of it (measured: 0.1 point).
set -u
BUILD=${1:-build}
R="$BUILD/resnet"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "PASS  $*"; }
bad() { failed=$((failed + 1)); echo "FAIL  $*"; }

if "$R" train --data data/fmnist-small --epochs 3 --batch-size 128 --lr 0.05 --momentum 0.9 \
    --weight-decay 5e-4 --schedule cosine --threads 2 --seed 0 --quiet --save "$T/fm.safetensors" >"$T/out"; then
    ok "training ran"
else
    bad "training failed: $(tail -3 "$T/out")"
fi
cat "$T/out"
acc=$(/usr/bin/python3 -c "
import json
rows = [json.loads(l) for l in open('$T/fm.log.jsonl') if '\"epoch\"' in l]
print(rows[-1]['test_acc'] if len(rows) == 3 else -1)" 2>/dev/null || echo -1)
/usr/bin/python3 -c "import sys; sys.exit(0 if float('$acc') >= 0.70 else 1)" &&
    ok "test accuracy $acc >= 0.70 after 3 epochs" || bad "test accuracy $acc < 0.70"
/usr/bin/python3 -c "
import xml.dom.minidom, sys
d = xml.dom.minidom.parse('$T/fm.svg')
sys.exit(0 if d.documentElement.tagName == 'svg' and d.getElementsByTagName('polyline') else 1)" &&
    ok "curves are an SVG with polylines" || bad "curves missing or not valid SVG"
if "$R" eval --weights "$T/fm.safetensors" --data data/fmnist-small --json >"$T/eval.json"; then
    /usr/bin/python3 -c "
import json, sys
e = json.load(open('$T/eval.json'))
sys.exit(0 if abs(e['top1'] - float('$acc')) < 1e-6 and len(e['confusion']) == 10 else 1)" &&
        ok "resnet eval agrees with the training log's test accuracy" || bad "resnet eval disagrees: $(cat "$T/eval.json" | head -c 200)"
else
    bad "resnet eval failed"
fi
/usr/bin/python3 tools/parity.py --check-load "$T/fm.safetensors" >/dev/null &&
    ok "PyTorch loads the checkpoint with strict=True" || bad "PyTorch cannot load the checkpoint"
# int8: quantize the trained model on 512 training images, evaluate it on the test split
if "$R" quantize --weights "$T/fm.safetensors" --data data/fmnist-small --calib-images 512 \
    --output "$T/fm.int8.safetensors" --threads 2 --quiet &&
    "$R" eval --weights "$T/fm.int8.safetensors" --data data/fmnist-small --json >"$T/int8.json"; then
    /usr/bin/python3 -c "
import json, sys
e = json.load(open('$T/int8.json'))
print('int8 top-1 %.4f, float32 %.4f' % (e['top1'], float('$acc')))
sys.exit(0 if float('$acc') - e['top1'] <= 0.01 else 1)" &&
        ok "int8 test accuracy within 1 point of float32" || bad "int8 accuracy drop too large"
    "$R" info --weights "$T/fm.int8.safetensors" --image-size 28 >"$T/info.txt" &&
        grep -q 'conv.resnet_block4.1.conv2 .*512' "$T/info.txt" && grep -q '^calibration: percentile on 512 images' "$T/info.txt" &&
        ok "info --weights shows the int8 layers' scales" || bad "info --weights on the int8 model: $(tail -3 "$T/info.txt")"
    "$R" eval --weights "$T/fm.int8.safetensors" --data data/fmnist-small --precision fp32 >/dev/null 2>"$T/err"
    [ $? -eq 1 ] && grep -q 'int8 model' "$T/err" && ok "eval --precision fp32 refuses an int8 model" ||
        bad "eval --precision fp32 on an int8 model: $(cat "$T/err")"
    "$R" train --data data/fmnist-small --init "$T/fm.int8.safetensors" --max-steps 1 --quiet >/dev/null 2>"$T/err"
    [ $? -ne 0 ] && grep -q 'int8 model' "$T/err" && ok "train --init refuses an int8 model" ||
        bad "train --init with an int8 model: $(cat "$T/err")"
    "$R" export "$T/fm.int8.safetensors" "$T/x.onnx" >/dev/null 2>"$T/err"
    [ $? -eq 1 ] && grep -q 'int8 model' "$T/err" && ok "export refuses an int8 model" ||
        bad "export of an int8 model: $(cat "$T/err")"
else
    bad "quantize or int8 eval failed"
fi
echo "train_real: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
