#!/usr/bin/env bash
# time_to_accuracy.sh - how long a training recipe takes to reach its test
# accuracy, in resnet.c and (with --torch) in PyTorch with the same recipe,
# model and number of epochs, one after the other on the same machine.
#
#   tools/time_to_accuracy.sh [--data ../shared/data/fashion-mnist] [--recipe fmnist-fast]
#       [--threads 2] [--epochs E] [--target 0.94] [--torch] [--resnet build/resnet]
#       [--out build/time_to_accuracy] [--torch-only] [-- EXTRA resnet train FLAGS]
#
# resnet.c runs `resnet train --recipe R --data DIR --threads T` (plus --epochs
# and the extra flags when given); PyTorch runs tools/fmnist_torch.py with the
# recipe's flags as `resnet train --recipe list` prints them, PyTorch's default
# initialisation (resnet.c's) and torch.set_num_threads(T). Both logs record,
# per epoch, "elapsed": wall seconds since the command started (data loading
# and every evaluation so far included) and the test accuracy. Writes, in OUT:
#   resnet.jsonl, torch.jsonl      the two training logs
#   resnet.txt, torch.txt          what each printed, and the command line
#   time_to_accuracy.md            the table: epoch, seconds and test accuracy of both,
#                                  the whole command's wall time, the first epoch at --target
#   time_to_accuracy.svg           test accuracy against seconds, a line per run (resnet plot --time)
# --torch-only runs PyTorch alone and keeps OUT's resnet.c log and output from an earlier run
# (the table and curve then show both).
# Time only on a quiet machine: anything else running shifts every second.
set -eu
DATA=../shared/data/fashion-mnist
RECIPE=fmnist-fast
THREADS=2
EPOCHS=""
TARGET=0.94
TORCH=0
TORCH_ONLY=0
RESNET=build/resnet
OUT=build/time_to_accuracy
while [ $# -gt 0 ]; do
    case "$1" in
    --data) DATA=$2; shift 2 ;;
    --recipe) RECIPE=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    --target) TARGET=$2; shift 2 ;;
    --torch) TORCH=1; shift ;;
    --torch-only) TORCH=1; TORCH_ONLY=1; shift ;;
    --resnet) RESNET=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "time_to_accuracy: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
mkdir -p "$OUT"
if [ "$TORCH_ONLY" = 1 ] && [ ! -s "$OUT/resnet.jsonl" ]; then
    echo "time_to_accuracy: --torch-only needs an earlier run's $OUT/resnet.jsonl" >&2
    exit 2
fi
[ "$TORCH_ONLY" = 1 ] || rm -f "$OUT/resnet.jsonl"
rm -f "$OUT/torch.jsonl"
now() { date +%s.%N; }

# ---- resnet.c ------------------------------------------------------------------------------------
if [ "$TORCH_ONLY" = 0 ]; then
    cmd=("$RESNET" train --recipe "$RECIPE" --data "$DATA" --threads "$THREADS" --log "$OUT/resnet.jsonl"
         --quiet --no-report)
    [ -n "$EPOCHS" ] && cmd+=(--epochs "$EPOCHS")
    cmd+=("$@")
    echo "== resnet.c: ${cmd[*]}"
    echo "${cmd[*]}" > "$OUT/resnet.txt"
    t0=$(now)
    "${cmd[@]}" | tee -a "$OUT/resnet.txt"
    t1=$(now)
    echo "wall seconds: $(echo "$t1 - $t0" | bc)" | tee -a "$OUT/resnet.txt"
fi

# ---- PyTorch, the same recipe ---------------------------------------------------------------------
if [ "$TORCH" = 1 ]; then
    # the recipe's flags, as `resnet train --recipe list` prints them, then the script's
    flags=$("$RESNET" train --recipe list | awk -v r="$RECIPE:" '$1 == r { getline; print; exit }')
    if [ -z "$flags" ]; then
        echo "time_to_accuracy: no recipe '$RECIPE' in resnet train --recipe list" >&2
        exit 2
    fi
    # fmnist_torch.py takes the model and optimizer flags; SGD is its only optimizer
    tflags=$(echo "$flags" | sed -e 's/--dataset [^ ]*//' -e 's/--optimizer sgd//')
    [ -n "$EPOCHS" ] && tflags="$(echo "$tflags" | sed 's/--epochs [^ ]*//') --epochs $EPOCHS"
    tcmd="/usr/bin/python3 tools/fmnist_torch.py --data $DATA $tflags --image-size 28 --init default \
--threads $THREADS --log $OUT/torch.jsonl"
    echo "== PyTorch: $tcmd"
    echo "$tcmd" > "$OUT/torch.txt"
    t0=$(now)
    # shellcheck disable=SC2086
    PYTHONUNBUFFERED=1 $tcmd | tee -a "$OUT/torch.txt"
    t1=$(now)
    echo "wall seconds: $(echo "$t1 - $t0" | bc)" | tee -a "$OUT/torch.txt"
fi

# ---- the table and the curve ------------------------------------------------------------------
/usr/bin/python3 - "$OUT" "$TARGET" "$RECIPE" "$THREADS" <<'PY'
import json, os, re, sys
out, target, recipe, threads = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]

def epochs(path):
    if not os.path.exists(path):
        return []
    recs = [json.loads(l) for l in open(path) if l.strip()]
    return [r for r in recs if "epoch" in r and "step" not in r]

def wall(path):
    m = re.search(r"^wall seconds: ([\d.]+)", open(path).read(), re.M) if os.path.exists(path) else None
    return float(m.group(1)) if m else None

runs = [("resnet.c", epochs(os.path.join(out, "resnet.jsonl")), wall(os.path.join(out, "resnet.txt")))]
if os.path.exists(os.path.join(out, "torch.jsonl")):
    runs.append(("PyTorch", epochs(os.path.join(out, "torch.jsonl")), wall(os.path.join(out, "torch.txt"))))
n = max(len(r[1]) for r in runs)
head = "| epoch |" + "".join(" %s seconds | %s test acc |" % (name, name) for name, _, _ in runs)
lines = ["Recipe `%s`, %s threads; seconds: wall time since the command started, data loading and "
         "every evaluation included." % (recipe, threads), "", head,
         "|---:|" + "---:|---:|" * len(runs)]
for i in range(n):
    row = "| %d |" % (i + 1)
    for _, recs, _ in runs:
        if i >= len(recs):
            row += " | |"
        elif recs[i]["test_acc"] is None:   # an epoch --eval-every skipped
            row += " %.1f | - |" % recs[i]["elapsed"]
        else:
            row += " %.1f | %.4f |" % (recs[i]["elapsed"], recs[i]["test_acc"])
    lines.append(row)
lines.append("")
for name, recs, w in runs:
    recs = [r for r in recs if r["test_acc"] is not None]
    hit = next((r for r in recs if r["test_acc"] >= target), None)
    best = max((r["test_acc"] for r in recs), default=float("nan"))
    lines.append("- %s: %s; final test accuracy %.4f (best %.4f); whole command %s s." % (
        name, "test accuracy >= %g at epoch %d, %.1f s" % (target, hit["epoch"], hit["elapsed"]) if hit
        else "never reached %g" % target, recs[-1]["test_acc"] if recs else float("nan"), best,
        "%.1f" % w if w is not None else "?"))
text = "\n".join(lines) + "\n"
open(os.path.join(out, "time_to_accuracy.md"), "w").write(text)
print(text, end="")
PY
logs=(--log "$OUT/resnet.jsonl")
labels="resnet.c"
if [ -f "$OUT/torch.jsonl" ]; then
    logs+=(--compare "$OUT/torch.jsonl")
    labels="resnet.c,PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__.split("a")[0])')"
fi
"$RESNET" plot "${logs[@]}" --time --labels "$labels" --output "$OUT/time_to_accuracy.svg"
echo "table: $OUT/time_to_accuracy.md"
