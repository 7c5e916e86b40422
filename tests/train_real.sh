#!/usr/bin/env bash
# train_real.sh BUILD - a short real training run on the bundled Fashion-MNIST
# subset (5000 / 1000 images): d2l_resnet18 at 28x28, 3 epochs, SGD with
# momentum and a cosine schedule. Deterministic for a seed and a thread count;
# it must reach 0.70 test accuracy (it measures 0.775 on 2 threads). Then:
# the curves are valid SVG, `resnet eval` on the checkpoint agrees with the
# last epoch's test accuracy, and PyTorch loads the checkpoint strictly.
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
echo "train_real: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
