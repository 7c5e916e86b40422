#!/usr/bin/env bash
# resnet.c vs ONNX Runtime (onnxruntime-node) vs PyTorch, CPU inference.
#
#   tools/bench_vs_peers.sh [--arch resnet18] [--batch 32] [--size 224] [--threads 2]
#                           [--repeats 5] [--warmup 2] [--rounds 3] [--resnet build/resnet]
#                           [--precision fp32|bf16|int8]
#
# --precision int8: resnet.c runs `bench --precision int8` (its random weights
# quantized on synthetic calibration input) and PyTorch its int8 model (FX static
# quantization, oneDNN engine; tools/torch_bench.py --int8); ONNX Runtime stays
# float32, the baseline the int8 speed-ups are quoted against. --precision bf16: resnet.c
# `--precision bf16`, PyTorch under bf16 autocast in channels_last.
#
# Each round runs the three one after another (resnet.c, ORT, PyTorch), each
# timing REPEATS batches after WARMUP; the table shows, per runtime, the median
# over rounds of each round's median ms/batch, and the speed ratios.
# A runtime that is missing (no build/resnet bench, no onnxruntime-node) is
# shown as n/a. Needs /usr/bin/python3 with torch (export + PyTorch timing);
# ORT needs node and `cd tools && npm install --ignore-scripts onnxruntime-node`.
# Extra arguments for `resnet bench` can be given in RESNET_BENCH_ARGS.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PY=/usr/bin/python3

ARCH=resnet18 BATCH=32 SIZE=224 THREADS=2 REPEATS=5 WARMUP=2 ROUNDS=3 PRECISION=fp32
RESNET="$ROOT/build/resnet"
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) ARCH=$2; shift 2 ;;
    --batch|--batch-size) BATCH=$2; shift 2 ;;
    --size|--image-size) SIZE=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --resnet) RESNET=$2; shift 2 ;;
    --precision) PRECISION=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_vs_peers: unknown option $1" >&2; exit 2 ;;
  esac
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rn_bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
RES="$WORK/results.txt"     # lines: runtime<TAB>json
: > "$RES"

# --- what is available -------------------------------------------------------
HAVE_RN=0 RN_EXTRA=()
if [ -x "$RESNET" ]; then
  help=$("$RESNET" bench --help 2>&1 || true)
  case "$help" in *--repeats*) RN_EXTRA+=(--repeats "$REPEATS") ;; esac
  case "$help" in *--warmup*) RN_EXTRA+=(--warmup "$WARMUP") ;; esac
  # shellcheck disable=SC2206
  [ -n "${RESNET_BENCH_ARGS:-}" ] && RN_EXTRA+=($RESNET_BENCH_ARGS)
  HAVE_RN=1
else
  echo "bench_vs_peers: $RESNET not found: resnet.c column n/a" >&2
fi

HAVE_ORT=0
ONNX="$WORK/${ARCH}_b${BATCH}_s${SIZE}.onnx"
if ! command -v node >/dev/null; then
  echo "bench_vs_peers: node not found: ORT column n/a" >&2
elif ! (cd "$HERE" && node -e "require('onnxruntime-node')" 2>/dev/null); then
  echo "bench_vs_peers: onnxruntime-node missing (cd tools && npm install --ignore-scripts onnxruntime-node): ORT column n/a" >&2
elif ! "$PY" "$HERE/export_onnx.py" "$ARCH" "$ONNX" --batch "$BATCH" --size "$SIZE" >"$WORK/export.log" 2>&1; then
  echo "bench_vs_peers: ONNX export failed: ORT column n/a" >&2; tail -5 "$WORK/export.log" >&2
else
  HAVE_ORT=1
fi

HAVE_PT=1
"$PY" -c 'import torch' 2>/dev/null || { HAVE_PT=0; echo "bench_vs_peers: no torch for $PY: PyTorch column n/a" >&2; }

# first JSON object line of a command's stdout, or nothing
first_json() { grep -m1 '^[[:space:]]*{' || true; }

PT_EXTRA=""
[ "$PRECISION" = int8 ] && PT_EXTRA="--int8"
[ "$PRECISION" = bf16 ] && PT_EXTRA="--bf16 --channels-last"
echo "bench: $PRECISION $ARCH batch $BATCH ${SIZE}x${SIZE} threads $THREADS, $ROUNDS rounds x ($WARMUP warm-up + $REPEATS timed)" >&2
for r in $(seq 1 "$ROUNDS"); do
  if [ $HAVE_RN = 1 ]; then
    j=$("$RESNET" bench --arch "$ARCH" --batch-size "$BATCH" --image-size "$SIZE" --threads "$THREADS" \
          --precision "$PRECISION" --json "${RN_EXTRA[@]}" 2>"$WORK/rn.err" | first_json)
    if [ -n "$j" ]; then printf 'resnet.c\t%s\n' "$j" >> "$RES"
    else echo "bench_vs_peers: round $r: resnet bench gave no JSON: $(tail -3 "$WORK/rn.err")" >&2; fi
  fi
  if [ $HAVE_ORT = 1 ]; then
    j=$(cd "$HERE" && node ort_bench.js "$ONNX" "$BATCH" "$SIZE" 3 "$THREADS" "$WARMUP" "$REPEATS" 2>"$WORK/ort.err" | first_json)
    if [ -n "$j" ]; then printf 'onnxruntime\t%s\n' "$j" >> "$RES"
    else echo "bench_vs_peers: round $r: ort_bench failed: $(tail -3 "$WORK/ort.err")" >&2; fi
  fi
  if [ $HAVE_PT = 1 ]; then
    j=$("$PY" "$HERE/torch_bench.py" --arch "$ARCH" --batch "$BATCH" --size "$SIZE" --threads "$THREADS" \
          --warmup "$WARMUP" --repeats "$REPEATS" $PT_EXTRA 2>"$WORK/pt.err" | first_json)
    if [ -n "$j" ]; then printf 'pytorch\t%s\n' "$j" >> "$RES"
    else echo "bench_vs_peers: round $r: torch_bench failed: $(tail -3 "$WORK/pt.err")" >&2; fi
  fi
  echo "  round $r done" >&2
done

"$PY" - "$RES" "$ARCH" "$BATCH" "$SIZE" "$THREADS" "$PRECISION" <<'EOF'
import json, statistics, sys
res, arch, batch, size, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
prec = sys.argv[6]
runs, rss, extra = {}, {}, {}
for line in open(res):
    name, j = line.rstrip("\n").split("\t", 1)
    try:
        d = json.loads(j)
        runs.setdefault(name, []).append(float(d["ms_per_batch_median"]))
        rss[name] = max(rss.get(name, 0.0), float(d.get("peak_rss_mb", 0.0)))
        if "isa" in d:
            extra[name] = "%s %s; %s" % (d.get("precision", "fp32"), d.get("kernel", d["isa"]), d.get("conv_algorithms", ""))
    except (ValueError, KeyError):
        pass
print("%s, batch %d, %sx%s, %s threads; resnet.c and PyTorch in %s, ONNX Runtime in fp32"
      % (arch, batch, size, size, threads, prec))
print("%-12s %8s %14s %12s %12s %14s" % ("runtime", "rounds", "ms/batch med", "min round", "images/s",
                                         "peak RSS MB"))
med = {}
for name in ("resnet.c", "onnxruntime", "pytorch"):
    ms = runs.get(name)
    if not ms:
        print("%-12s %8s %14s %12s %12s %14s" % (name, "-", "n/a", "n/a", "n/a", "n/a"))
        continue
    med[name] = statistics.median(ms)
    print("%-12s %8d %14.2f %12.2f %12.2f %14.0f" % (name, len(ms), med[name], min(ms), batch * 1e3 / med[name],
                                                      rss.get(name, 0.0)))
for name, e in extra.items():
    print("%s ran: %s" % (name, e))
for peer in ("onnxruntime", "pytorch"):
    if "resnet.c" in med and peer in med:
        print("resnet.c / %-11s speed ratio %.3f  (images/s of resnet.c / of %s; >1 = resnet.c faster)"
              % (peer, med[peer] / med["resnet.c"], peer))
    else:
        print("resnet.c / %-11s n/a" % peer)
EOF
