#!/usr/bin/env bash
# report.sh BUILD - the training report as a user gets it. A tiny model is
# trained for 2 epochs on 128 images of the bundled Fashion-MNIST subset;
# `resnet train` writes the report next to --save, and tools/check_report.py
# checks it: every SVG parses, every PNG decodes at its size, the page refers
# to nothing outside its folder, and headless Chromium loads it without a
# console error or a failed request and renders a screenshot that is not
# blank. Then `resnet report` by hand (no log, SVG only), its errors, the run
# record in the log, --no-report, and `resnet forward --print` with names.
set -u
BUILD=${1:-build}
R="$BUILD/resnet"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "PASS  $*"; }
bad() { failed=$((failed + 1)); echo "FAIL  $*"; }

# expect STATUS DESCRIPTION command...: exit status and, for errors, one stderr line
expect() {
    local want=$1 what=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    local got=$?
    if [ "$got" -ne "$want" ]; then
        bad "$what: exit $got, expected $want ($(head -c 300 "$T/err"))"
    elif [ "$want" -ne 0 ] && [ "$(wc -l <"$T/err")" -ne 1 ]; then
        bad "$what: expected a one-line message on stderr, got: $(cat "$T/err")"
    else
        ok "$what"
    fi
}

# 128 training and 128 test images of data/fmnist-small, as IDX .gz files
mkdir -p "$T/data" "$T/run" "$T/nr"
"$PY" - "$T/data" <<'EOF'
import gzip, struct, sys
for prefix in ("train", "t10k"):
    for kind, per in (("images-idx3", 28 * 28), ("labels-idx1", 1)):
        name = f"{prefix}-{kind}-ubyte.gz"
        d = gzip.open(f"data/fmnist-small/{name}").read()
        ndim = d[3]
        dims = list(struct.unpack(">" + "I" * ndim, d[4:4 + 4 * ndim]))
        dims[0] = 128
        head = d[:4] + struct.pack(">" + "I" * ndim, *dims)
        body = d[4 + 4 * ndim:4 + 4 * ndim + 128 * per]
        gzip.open(f"{sys.argv[1]}/{name}", "wb").write(head + body)
EOF

# ---- train writes the report ------------------------------------------------------------------
if "$R" train --data "$T/data" --epochs 2 --batch-size 32 --lr 0.05 --momentum 0.9 --schedule cosine \
    --threads 2 --seed 1 --quiet --save "$T/run/m.safetensors" >"$T/train.out" 2>"$T/train.err"; then
    ok "training ran"
else
    bad "training failed: $(tail -3 "$T/train.err")"
fi
grep -q "^report: $T/run/m_report/report.html (128 images" "$T/train.out" &&
    ok "train prints the report's path" || bad "train does not print the report: $(tail -2 "$T/train.out")"
if "$PY" tools/check_report.py "$T/run/m_report" --screenshot "$T/shot.png"; then
    ok "the report after training: files valid, page loads cleanly in Chromium, screenshot not blank"
else
    bad "the report after training fails its checks"
fi
grep -q "T-shirt/top" "$T/run/m_report/report.html" && grep -q "Ankle boot" "$T/run/m_report/report.html" &&
    ok "the page names the classes" || bad "class names missing from the page"

# the checker itself fails on a broken page: a missing image, a console error, an outside request
cp -r "$T/run/m_report" "$T/broken"
"$PY" - "$T/broken/report.html" <<'EOF'
import sys
page = open(sys.argv[1]).read().replace("</main>", '<img src="gone.png"><script>console.error("boom")</script>'
                                                   '<img src="http://10.255.255.1/x.png"></main>')
open(sys.argv[1], "w").write(page)
EOF
"$PY" tools/check_report.py "$T/broken" >"$T/broken.out" 2>&1
if [ $? -ne 0 ] && grep -q "chromium: failed request: net::ERR_FILE_NOT_FOUND" "$T/broken.out" &&
    grep -q 'chromium: console error: .*boom' "$T/broken.out" && grep -q "chromium: request leaves the machine" "$T/broken.out"; then
    ok "the checker catches a missing image, a console error and an outside request"
else
    bad "the checker let a broken page pass: $(cat "$T/broken.out")"
fi

# the run record: what the report's facts come from
"$PY" - "$T/run/m.log.jsonl" "$T/run/m_report/report.html" <<'EOF' && ok "the log's run record has the run's facts, and the page shows them" || bad "run record or facts missing"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
run = lines[0]["run"]
for key in ("version", "started", "command", "flags", "given", "arch", "params", "cpu", "cores", "threads",
            "seed", "train_images", "test_images", "steps_per_epoch"):
    assert key in run, key
assert run["threads"] == 2 and run["seed"] == 1 and run["train_images"] == 128, run
assert run["flags"]["lr"] == "0.05" and run["flags"]["nesterov"] is False and "momentum" in run["given"]
epochs = [l for l in lines if "epoch" in l]
assert len(epochs) == 2 and all("seconds" in e and "images_per_second" in e for e in epochs)
page = open(sys.argv[2]).read()
for text in (run["cpu"], "0.1.0", "--momentum", "d2l_resnet18", "Time per epoch", "Throughput"):
    assert text in page, text
assert "not recorded" not in page
EOF

# ---- resnet report by hand --------------------------------------------------------------------
expect 0 "report --help" "$R" report --help
n_flags=$(grep -c '^  --' "$T/out")
n_described=$(grep -c -E '\((default: .*|required)\)$' "$T/out")
[ "$n_described" -eq $((n_flags - 1)) ] && ok "report --help gives every flag's default" ||
    bad "report --help: $n_flags flags, $n_described with a default"
expect 0 "report without a log, SVG only" "$R" report --weights "$T/run/m.safetensors" --data "$T/data" \
    --log none --no-png --grid 8 --output "$T/bare" --threads 2 --quiet
[ ! -e "$T/bare/curves.svg" ] && [ -z "$(ls "$T/bare"/*.png 2>/dev/null)" ] &&
    ok "no curves without a log, no PNG with --no-png" || bad "unexpected files in $T/bare: $(ls "$T/bare")"
grep -q "not recorded" "$T/bare/report.html" && grep -q "No training log" "$T/bare/report.html" &&
    ok "the page says what is missing without a log" || bad "the page does not say the log is missing"
if "$PY" tools/check_report.py "$T/bare" --no-png --expect confusion,per_class,wrong >"$T/check.out"; then
    ok "the report without a log passes its checks in Chromium"
else
    cat "$T/check.out"
    bad "the report without a log fails its checks"
fi
expect 0 "report finds the log beside the checkpoint" "$R" report --weights "$T/run/m.safetensors" \
    --data "$T/data" --output "$T/auto" --no-png --threads 2 --quiet
[ -s "$T/auto/curves.svg" ] && ok "--log auto found m.log.jsonl" || bad "--log auto did not find the log"
printf '{"epoch": 1, "train_loss": 1}\n{"epoch": 2, broken\n{"epoch": 3}\n' >"$T/bad.jsonl"
expect 0 "a broken log still gives a report" "$R" report --weights "$T/run/m.safetensors" --data "$T/data" \
    --log "$T/bad.jsonl" --output "$T/badlog" --no-png --threads 2 --quiet
grep -q "warning: the report has no curves: .*bad.jsonl:2" "$T/err" && grep -q "could not be read" "$T/badlog/report.html" &&
    ok "a broken log is a warning naming the line, and the page says so" || bad "broken log: $(cat "$T/err")"

expect 2 "report without --weights" "$R" report --data "$T/data"
expect 2 "report with --grid 0" "$R" report --weights "$T/run/m.safetensors" --data "$T/data" --grid 0
expect 2 "report with a bad --split" "$R" report --weights "$T/run/m.safetensors" --data "$T/data" --split dev
# --log auto finds the --log FILE a run trained with, as its checkpoint's plan records it (the report
# of such a run had had no curves)
"$R" train --data "$T/data" --epochs 1 --batch-size 64 --width 8 --threads 2 --seed 1 --quiet --no-report \
    --save "$T/cl/m.safetensors" --log "$T/cl/elsewhere.jsonl" >/dev/null 2>&1
expect 0 "report of a run with its own --log FILE" "$R" report --weights "$T/cl/m.safetensors" --data "$T/data" \
    --output "$T/cl/rep" --no-png --threads 2 --quiet
[ -s "$T/cl/rep/curves.svg" ] && ok "--log auto found the run's --log FILE" || bad "no curves from the run's --log FILE: $(ls "$T/cl/rep")"
expect 2 "report with a bad --png-scale" "$R" report --weights "$T/run/m.safetensors" --data "$T/data" --png-scale 9
expect 2 "report --png-scale with --no-png" "$R" report --weights "$T/run/m.safetensors" --data "$T/data" \
    --no-png --png-scale 3
grep -q "which --no-png leaves out" "$T/err" && ok || bad "--png-scale with --no-png: $(cat "$T/err")"
expect 2 "report --classes on an IDX dataset" "$R" report --weights "$T/run/m.safetensors" --data "$T/data" \
    --classes position
grep -q "labels image folders" "$T/err" && ok || bad "--classes on IDX: $(cat "$T/err")"
expect 2 "eval --classes on an IDX dataset" "$R" eval --weights "$T/run/m.safetensors" --data "$T/data" \
    --classes names
grep -q "labels image folders" "$T/err" && ok || bad "eval --classes on IDX: $(cat "$T/err")"
expect 1 "report with a missing checkpoint" "$R" report --weights "$T/none.safetensors" --data "$T/data"
expect 0 "report into missing folders" "$R" report --weights "$T/run/m.safetensors" --data "$T/data" \
    --output "$T/new/a/b" --no-png --threads 2 --quiet
[ -s "$T/new/a/b/report.html" ] && grep -q "created the folder $T/new/a/b" "$T/err" &&
    ok "report creates missing folders and says so" || bad "missing folders: $(cat "$T/err")"
expect 3 "report into an unwritable folder" "$R" report --weights "$T/run/m.safetensors" --data "$T/data" \
    --output "$T/run/m.safetensors/sub" --quiet
grep -q "$T/run/m.safetensors" "$T/err" && ok "the error names the file in the way" ||
    bad "unwritable folder: $(cat "$T/err")"
expect 1 "report on a dataset of another shape" "$R" report --weights "$T/run/m.safetensors" --data "$T/data" \
    --dataset cifar10

# ---- --no-report, and names in forward --print ------------------------------------------------
expect 0 "train --no-report" "$R" train --data "$T/data" --epochs 1 --max-steps 1 --batch-size 16 --threads 2 \
    --quiet --no-report --save "$T/nr/m.safetensors"
[ -s "$T/nr/m.safetensors" ] && [ ! -e "$T/nr/m_report" ] && ok "--no-report writes no report" || bad "--no-report still wrote $T/nr/m_report"
expect 0 "forward --print with true labels" "$R" forward --weights "$T/run/m.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/y.npy" --print --true-labels data/sample/fmnist_batch_labels.txt
grep -q -E "^image 0: (T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot) +\(class [0-9], logit" "$T/out" &&
    grep -q "label Sandal: " "$T/out" && grep -q -E "^[0-8] of 8 right$" "$T/out" &&
    ok "forward --print names the classes and counts the right ones" || bad "forward --print: $(cat "$T/out")"
echo "5 6 2" >"$T/short.txt"
expect 1 "forward with too few true labels" "$R" forward --weights "$T/run/m.safetensors" \
    --input data/sample/fmnist_batch.npy --output "$T/y.npy" --print --true-labels "$T/short.txt"

echo "report: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
