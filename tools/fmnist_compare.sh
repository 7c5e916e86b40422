#!/usr/bin/env bash
# fmnist_compare.sh - the D2L book's Fashion-MNIST training of d2l_resnet18,
# in resnet.c and in PyTorch, one after the other on the same machine:
# SGD lr 0.05, batch 256, Xavier initialisation, no momentum, images at
# --image-size (28, or 96 as in the book). Prints per-epoch test accuracy and
# training seconds of both, and the throughput ratio.
#
#   tools/fmnist_compare.sh [--data ../shared/data/fashion-mnist] [--epochs 10]
#       [--image-size 28] [--threads 2] [--max-steps 0] [--only resnet|torch]
#       [--resnet build/resnet] [--out DIR]
# --max-steps K measures throughput on the first K steps only (no accuracy).
# PyTorch's first few dozen steps at a new shape are much slower than its
# steady state (at 28x28: ~300 img/s over 30 steps, ~765 img/s over whole
# epochs), so compare whole epochs where the time allows.
set -eu
DATA=../shared/data/fashion-mnist
EPOCHS=10
SIZE=28
THREADS=2
MAX_STEPS=0
ONLY=""
RESNET=build/resnet
OUT=build/fmnist_compare
while [ $# -gt 0 ]; do
    case "$1" in
    --data) DATA=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    --image-size) SIZE=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --max-steps) MAX_STEPS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --resnet) RESNET=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "fmnist_compare: unknown argument $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$OUT"
tag="s${SIZE}_e${EPOCHS}_m${MAX_STEPS}"

if [ "$ONLY" != "torch" ]; then
    echo "== resnet.c: d2l_resnet18, ${SIZE}x${SIZE}, $EPOCHS epochs, $THREADS threads"
    "$RESNET" train --arch d2l_resnet18 --data "$DATA" --epochs "$EPOCHS" --batch-size 256 --lr 0.05 \
        --init xavier --image-size "$SIZE" --threads "$THREADS" --max-steps "$MAX_STEPS" \
        --log "$OUT/resnet_$tag.jsonl" --log-every 10 --quiet | tee "$OUT/resnet_$tag.txt"
fi
if [ "$ONLY" != "resnet" ]; then
    echo "== PyTorch: the same run"
    /usr/bin/python3 tools/fmnist_torch.py --data "$DATA" --epochs "$EPOCHS" --batch-size 256 --lr 0.05 \
        --image-size "$SIZE" --threads "$THREADS" --max-steps "$MAX_STEPS" | tee "$OUT/torch_$tag.txt"
fi
[ -n "$ONLY" ] && exit 0

/usr/bin/python3 - "$OUT/resnet_$tag.txt" "$OUT/torch_$tag.txt" "$OUT/resnet_$tag.jsonl" <<'PY'
import json, re, sys
ours_txt, torch_txt, ours_log = sys.argv[1:4]
ours = [json.loads(l) for l in open(ours_log) if '"epoch"' in l and '"step"' not in l]
steps = [json.loads(l) for l in open(ours_log) if l.startswith('{"step"')]
t = json.loads([l for l in open(torch_txt) if l.startswith("{")][-1])
m = re.search(r"trained on (\d+) images in ([\d.]+) s of training \((\d+) img/s\)", open(ours_txt).read())
ours_ips = float(m.group(3)) if m else float("nan")
print("\n%-10s %10s %12s %12s" % ("", "test acc", "s / epoch", "images/s"))
if ours:
    print("%-10s %10.4f %12.1f %12.0f" % ("resnet.c", ours[-1]["test_acc"],
                                         sum(r["seconds"] for r in ours) / len(ours), ours_ips))
else:
    print("%-10s %10s %12s %12.0f" % ("resnet.c", "-", "-", ours_ips))
ta = t.get("test_acc")
spe = t.get("seconds_per_epoch") or []
print("%-10s %10s %12s %12.0f" % ("PyTorch", "%.4f" % ta if ta is not None else "-",
                                  "%.1f" % (sum(spe) / len(spe)) if spe and ta is not None else "-",
                                  t["images_per_second"]))
print("resnet.c / PyTorch training throughput: %.2fx" % (ours_ips / t["images_per_second"]))
PY
