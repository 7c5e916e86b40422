#!/usr/bin/env bash
# train_bench_vs_torch.sh - training-step speed, resnet.c against PyTorch, in one run.
#
#   tools/train_bench_vs_torch.sh [--workloads all|1,2,3,4] [--threads 2] [--rounds 3]
#                                 [--warmup 3] [--torch-warmup 10] [--repeats 5] [--resnet build/resnet]
#                                 [--rn-args "--conv-algo im2col"] [--torch-layouts both]
#                                 [--precision fp32|bf16|both]
#
# The four workloads of part 6:
#   1  d2l_resnet18, 1x28x28, 10 classes, batch 256
#   2  d2l_resnet18, 1x96x96, 10 classes, batch 128
#   3  resnet18, 3x224x224, 1000 classes, batch 32
#   4  resnet18 with the CIFAR stem, 3x32x32, 10 classes, batch 128
#   5  (not in "all") the network of `--recipe fmnist-fast`: resnet18, CIFAR stem, width 16,
#      1x28x28, 10 classes, batch 128
# Each round times, per workload, `resnet bench --train` (forward, backward, SGD with
# momentum) and PyTorch's same step (tools/torch_bench.py --train: train-mode BatchNorm,
# cross-entropy, backward, SGD momentum 0.9), one after the other; each runtime reports
# the median over REPEATS steps after its warm-up (WARMUP steps for resnet.c; PyTorch's
# first steps at a new shape are several times slower than its steady state, so it gets
# TORCH_WARMUP). PyTorch runs in the contiguous layout and
# in channels_last (--torch-layouts both, the default) and its faster one counts.
# The table shows medians over rounds and the ratio resnet.c / PyTorch in images/s
# (> 1: resnet.c faster), then each runtime's peak resident set (largest over rounds).
# --precision bf16: resnet.c `bench --train --precision bf16` (bf16 products, fp32 master
# weights) against PyTorch's training step under torch.autocast("cpu", dtype=torch.bfloat16)
# (torch_bench.py --train --bf16); both: fp32 and bf16 side by side in each round, with the
# ratio of resnet.c's bf16 to its own fp32 too.
# Needs /usr/bin/python3 with torch.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PY=/usr/bin/python3
WORKLOADS=all THREADS=2 ROUNDS=3 WARMUP=3 TORCH_WARMUP=10 REPEATS=5 RN_ARGS="" LAYOUTS=both PRECISION=fp32
RESNET="$ROOT/build/resnet"
while [ $# -gt 0 ]; do
  case "$1" in
    --workloads) WORKLOADS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --torch-warmup) TORCH_WARMUP=$2; shift 2 ;;
    --resnet) RESNET=$2; shift 2 ;;
    --rn-args) RN_ARGS=$2; shift 2 ;;
    --torch-layouts) LAYOUTS=$2; shift 2 ;;
    --precision) PRECISION=$2; shift 2 ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "train_bench_vs_torch: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$RESNET" ] || { echo "train_bench_vs_torch: $RESNET not found (make first)" >&2; exit 2; }
"$PY" -c 'import torch' 2>/dev/null || { echo "train_bench_vs_torch: no torch for $PY" >&2; exit 2; }
case "$LAYOUTS" in
  both) TORCH_LAYOUTS="contiguous channels_last" ;;
  contiguous|channels_last) TORCH_LAYOUTS=$LAYOUTS ;;
  *) echo "train_bench_vs_torch: --torch-layouts both|contiguous|channels_last" >&2; exit 2 ;;
esac
[ "$WORKLOADS" = all ] && WORKLOADS=1,2,3,4
case "$PRECISION" in
  fp32|bf16) PRECISIONS=$PRECISION ;;
  both) PRECISIONS="fp32 bf16" ;;
  *) echo "train_bench_vs_torch: --precision fp32|bf16|both" >&2; exit 2 ;;
esac

# workload -> "arch stem in_channels classes size batch width"
spec() {
  case "$1" in
    1) echo "d2l_resnet18 imagenet 1 10 28 256 64" ;;
    2) echo "d2l_resnet18 imagenet 1 10 96 128 64" ;;
    3) echo "resnet18 imagenet 3 1000 224 32 64" ;;
    4) echo "resnet18 cifar 3 10 32 128 64" ;;
    5) echo "resnet18 cifar 1 10 28 128 16" ;;
    *) echo "train_bench_vs_torch: unknown workload $1 (1..5)" >&2; exit 2 ;;
  esac
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rn_trainbench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
RES="$WORK/results.txt"   # lines: workload<TAB>runtime<TAB>json
: > "$RES"
first_json() { grep -m1 '^[[:space:]]*{' || true; }

echo "train_bench_vs_torch: workloads $WORKLOADS, precision $PRECISION, $THREADS threads, $ROUNDS rounds x ($WARMUP warm-up + $REPEATS timed steps)" >&2
for r in $(seq 1 "$ROUNDS"); do
  for w in ${WORKLOADS//,/ }; do
    read -r arch stem ch cls size batch width <<< "$(spec "$w")"
    for prec in $PRECISIONS; do
      # shellcheck disable=SC2086
      j=$("$RESNET" bench --train --arch "$arch" --stem "$stem" --width "$width" --in-channels "$ch" --num-classes "$cls" \
            --image-size "$size" --batch-size "$batch" --threads "$THREADS" --warmup "$WARMUP" \
            --repeats "$REPEATS" --precision "$prec" --json $RN_ARGS 2>"$WORK/rn.err" | first_json)
      if [ -n "$j" ]; then printf '%s\t%s\tresnet.c\t%s\n' "$w" "$prec" "$j" >> "$RES"
      else echo "train_bench_vs_torch: round $r workload $w $prec: resnet bench failed: $(tail -3 "$WORK/rn.err")" >&2; fi
      bf=(); [ "$prec" = bf16 ] && bf=(--bf16)
      for layout in $TORCH_LAYOUTS; do
        cl=(); [ "$layout" = channels_last ] && cl=(--channels-last)
        j=$("$PY" "$HERE/torch_bench.py" --train --arch "$arch" --stem "$stem" --width "$width" --in-channels "$ch" \
              --num-classes "$cls" --size "$size" --batch "$batch" --threads "$THREADS" \
              --warmup "$TORCH_WARMUP" --repeats "$REPEATS" "${cl[@]}" "${bf[@]}" 2>"$WORK/pt.err" | first_json)
        if [ -n "$j" ]; then printf '%s\t%s\tpytorch %s\t%s\n' "$w" "$prec" "$layout" "$j" >> "$RES"
        else echo "train_bench_vs_torch: round $r workload $w $prec: torch_bench failed: $(tail -3 "$WORK/pt.err")" >&2; fi
      done
    done
  done
  echo "  round $r done" >&2
done

"$PY" - "$RES" "$THREADS" "$WORKLOADS" "$PRECISIONS" <<'EOF'
import json, statistics, sys
res, threads, workloads, precs = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4].split()
names = {"1": "d2l_resnet18 28x28, batch 256", "2": "d2l_resnet18 96x96, batch 128",
         "3": "resnet18 224x224, batch 32", "4": "resnet18 CIFAR stem 32x32, batch 128",
         "5": "fmnist-fast: w16 CIFAR stem 28x28, b128"}
runs, info, rss = {}, {}, {}
for line in open(res):
    w, prec, name, j = line.rstrip("\n").split("\t", 3)
    w = (w, prec)
    try:
        d = json.loads(j)
    except ValueError:
        continue
    runs.setdefault((w, name), []).append((float(d["ms_per_batch_median"]), int(d.get("batch_size", d.get("batch", 0)))))
    if "peak_rss_mb" in d:
        rss[(w, name)] = max(rss.get((w, name), 0.0), float(d["peak_rss_mb"]))
    if name == "resnet.c":
        info[w] = "%s %s; %s" % (d.get("isa", "?"), d.get("precision", "fp32"), d.get("conv_algorithms", ""))
rn_ips = {}
status = 0
for prec in precs:
  print("training step, %s, %s threads, medians over rounds (img/s)%s" % (prec, threads,
        "; PyTorch under bf16 autocast" if prec == "bf16" else ""))
  print("%-38s %10s %16s %16s %8s" % ("workload", "resnet.c", "PyTorch contig", "PyTorch ch_last", "ratio"))
  for wl in workloads:
    w = (wl, prec)
    def ips(name):
        r = runs.get((w, name))
        if not r:
            return None
        return r[0][1] * 1e3 / statistics.median(ms for ms, _ in r)
    rn, pc, pl = ips("resnet.c"), ips("pytorch contiguous"), ips("pytorch channels_last")
    rn_ips[w] = rn
    best = max([v for v in (pc, pl) if v is not None], default=None)
    fmt = lambda v: "n/a" if v is None else "%.1f" % v
    ratio = "n/a" if rn is None or best is None else "%.2f" % (rn / best)
    print("%-38s %10s %16s %16s %8s" % (names[wl], fmt(rn), fmt(pc), fmt(pl), ratio))
    if rn is None or best is None:
        status = 1
if len(precs) == 2:
  print("resnet.c bf16 over its own fp32 (images/s)")
  for wl in workloads:
    a, b = rn_ips.get((wl, "bf16")), rn_ips.get((wl, "fp32"))
    print("%-38s %10s" % (names[wl], "n/a" if not a or not b else "%.2f" % (a / b)))
print("peak resident set of the process, MB (largest over rounds; PyTorch's includes the Python interpreter)")
print("%-38s %5s %10s %16s %16s" % ("workload", "prec", "resnet.c", "PyTorch contig", "PyTorch ch_last"))
for prec in precs:
  for wl in workloads:
    w = (wl, prec)
    fmt = lambda name: "n/a" if (w, name) not in rss else "%.0f" % rss[(w, name)]
    print("%-38s %5s %10s %16s %16s" % (names[wl], prec, fmt("resnet.c"), fmt("pytorch contiguous"),
                                         fmt("pytorch channels_last")))
for prec in precs:
  for wl in workloads:
    if (wl, prec) in info:
        print("resnet.c workload %s ran: %s" % (wl, info[(wl, prec)]))
print("ratio: resnet.c images/s over PyTorch's faster layout at the same precision (> 1: resnet.c faster)")
sys.exit(status)
EOF
