#!/usr/bin/env bash
# mpi.sh BUILD - data-parallel `resnet train` under mpirun (an MPI-enabled
# build; skipped, passing, when the build has no MPI):
#   reducer:       build/tests/mpi_reduce with 2 and 3 ranks (rank-order sums,
#                  buckets, broadcast, gather);
#   equivalence:   2 ranks with --sync-bn at global batch 32 match 1 process at
#                  batch 32: after 1 SGD step (the momentum buffer is then the
#                  gradient) every tensor within 1e-5 relative; over 10 steps
#                  (momentum, weight decay, shuffling) per-step losses, every
#                  weight, BatchNorm statistic and momentum buffer within the
#                  noise bound (below); 2 ranks without --sync-bn (each
#                  normalizing by its own half batch) must exceed it;
#                  --ra-sampler likewise after 1 step (and not the plain order's);
#   deterministic: two 2-rank --deterministic runs are bitwise identical;
#   resume:        5 steps on 2 ranks, then 5 more on 1 rank, match the 10
#                  steps above (noise bound); resumed on 2 ranks, bitwise the
#                  2-rank run;
#   refusals:      a batch not divisible by the ranks, ranks with different
#                  flags, ranks with different data: exit 2 with a message;
#   faults:        one of two ranks killed mid-run, or stopped (hung): the
#                  job exits non-zero within 60 s (the stopped case through
#                  --dist-timeout's watchdog, which names what it waited for).
# The learning rate is small (1e-4) on purpose: at 28x28 the d2l network's
# last stages run BatchNorm on maps of 2x2 and 1x1, where larger steps
# amplify rounding-level differences a thousandfold within a few steps (one
# process whose --lr is changed by 1e-5 relative differs by 1e-3 in loss
# after 4 steps at lr 0.01, and by 2e-2 in some tensors after 10 steps at
# lr 2e-4), so no two summation orders can agree to 1e-5 there. Even at 1e-4
# ReLU kinks do it within 10 steps (3e-2 in a BatchNorm bias, 9e-2 in the
# momentum buffer with the portable kernels; the portable and AVX2 kernels
# part by 1e-1 in one process), so the 10-step comparisons take their bound
# from the single process itself: per tensor and per step loss, max(1e-5,
# 2 x the largest difference of four runs with --lr 1e-4 x (1 +- 1e-6) and
# x (1 +- 3e-6) from it) (tools/dp_compare.py --noise). --conv-algo im2col: the automatic
# choice may pick Winograd (relative error ~1e-5 per convolution) by the
# number of tiles, which depends on the per-rank batch.
set -u
BUILD=${1:-build}
R="$BUILD/resnet"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/cli_lib.sh"
PY=/usr/bin/python3

if [ ! -x "$BUILD/tests/mpi_reduce" ] || ! command -v mpirun >/dev/null 2>&1; then
    echo "mpi: this build has no MPI (no mpicc when it was built); nothing to test"
    exit 0
fi
MPIRUN=(mpirun --oversubscribe -x OMP_NUM_THREADS)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
export OMP_NUM_THREADS=1

# ---- the reducer and the collectives -----------------------------------------------------------
for n in 2 3; do
    if "${MPIRUN[@]}" -np $n "$BUILD/tests/mpi_reduce" >"$T/out" 2>&1; then
        ok
        tail -1 "$T/out"
    else
        bad "mpi_reduce with $n ranks: $(tail -5 "$T/out")"
    fi
done

# ---- training: equivalence, determinism, resume ------------------------------------------------
TRAIN=(train --data data/fmnist-small --batch-size 32 --lr 0.0001 --momentum 0.9 --weight-decay 5e-4 --conv-algo im2col
       --seed 3 --log-every 1 --no-report --quiet --threads 1)

run_ok() { # NAME command...: runs, keeps the output in $T/NAME.out
    local name=$1
    shift
    if "$@" >"$T/$name.out" 2>&1; then
        ok
    else
        bad "$name: exit $? ($(tail -3 "$T/$name.out"))"
    fi
}
compare() { # WHAT GOT REF ARGS...
    local what=$1 got=$2 ref=$3
    shift 3
    if "$PY" tools/dp_compare.py "$T/$got.safetensors" "$T/$ref.safetensors" "$@" >"$T/cmp" 2>&1; then
        ok
        echo "$what: $(tr '\n' ';' <"$T/cmp")"
    else
        bad "$what: $(tr '\n' ';' <"$T/cmp")"
    fi
}

run_ok one1 "$R" "${TRAIN[@]}" --max-steps 1 --save "$T/one1.safetensors"
run_ok two1 "${MPIRUN[@]}" -np 2 "$R" "${TRAIN[@]}" --max-steps 1 --sync-bn --save "$T/two1.safetensors"
compare "1 step: 2 ranks --sync-bn vs 1 process" two1 one1 --tol 1e-5 --steps 1
# --ra-sampler: the ranks are dealt the repeated order's positions in turn, together the one process's batch
# (each image's repetitions on both ranks); its batch is not the plain order's
run_ok ras1 "$R" "${TRAIN[@]}" --max-steps 1 --ra-sampler --save "$T/ras1.safetensors"
run_ok ras2 "${MPIRUN[@]}" -np 2 "$R" "${TRAIN[@]}" --max-steps 1 --sync-bn --ra-sampler --save "$T/ras2.safetensors"
compare "1 step with --ra-sampler: 2 ranks --sync-bn vs 1 process" ras2 ras1 --tol 1e-5 --steps 1
compare "1 step with --ra-sampler is not the plain order's step" ras1 one1 --tol 1e-5 --steps 1 --beyond

run_ok one "$R" "${TRAIN[@]}" --max-steps 10 --save "$T/one.safetensors"
run_ok noise1 "$R" "${TRAIN[@]}" --max-steps 10 --lr 0.0001000001 --save "$T/noise1.safetensors"
run_ok noise2 "$R" "${TRAIN[@]}" --max-steps 10 --lr 0.0000999999 --save "$T/noise2.safetensors"
run_ok noise3 "$R" "${TRAIN[@]}" --max-steps 10 --lr 0.0001000003 --save "$T/noise3.safetensors"
run_ok noise4 "$R" "${TRAIN[@]}" --max-steps 10 --lr 0.0000999997 --save "$T/noise4.safetensors"
NOISE=(--noise "$T/noise1.safetensors" --noise "$T/noise2.safetensors" --noise "$T/noise3.safetensors"
       --noise "$T/noise4.safetensors")
run_ok two "${MPIRUN[@]}" -np 2 "$R" "${TRAIN[@]}" --max-steps 10 --sync-bn --save "$T/two.safetensors"
grep -q "data parallel over 2 ranks" "$T/two.out" && grep -q "all-reduced per step" "$T/two.out" && ok ||
    bad "the 2-rank run says it is data parallel and reports its all-reduce: $(head -5 "$T/two.out")"
compare "2 ranks --sync-bn vs 1 process" two one --steps 10 "${NOISE[@]}"
run_ok own "${MPIRUN[@]}" -np 2 "$R" "${TRAIN[@]}" --max-steps 10 --save "$T/own.safetensors"
compare "2 ranks without --sync-bn exceed the bounds (their teeth)" own one --steps 10 "${NOISE[@]}" --beyond
run_ok det1 "${MPIRUN[@]}" -np 2 "$R" "${TRAIN[@]}" --max-steps 10 --sync-bn --deterministic \
    --save "$T/det1.safetensors"
run_ok det2 "${MPIRUN[@]}" -np 2 "$R" "${TRAIN[@]}" --max-steps 10 --sync-bn --deterministic \
    --save "$T/det2.safetensors"
compare "2 ranks --deterministic, twice" det2 det1 --exact --steps 10
compare "2 ranks --deterministic vs 1 process" det1 one --steps 10 "${NOISE[@]}"

run_ok half "${MPIRUN[@]}" -np 2 "$R" "${TRAIN[@]}" --max-steps 5 --sync-bn --deterministic \
    --save "$T/half.safetensors"
run_ok res1 "$R" train --data data/fmnist-small --resume "$T/half.safetensors" --max-steps 10 --threads 1 --quiet --no-report \
    --log-every 1 --conv-algo im2col --save "$T/res1.safetensors"
grep -q "written by a run on 2 ranks" "$T/res1.out" && ok || bad "resume on 1 rank names the 2-rank checkpoint"
compare "5 steps on 2 ranks + 5 on 1 vs 10 on 1" res1 one --steps 5 "${NOISE[@]}"
run_ok res2 "${MPIRUN[@]}" -np 2 "$R" train --data data/fmnist-small --resume "$T/half.safetensors" \
    --max-steps 10 --threads 1 --quiet --no-report --log-every 1 --deterministic --conv-algo im2col \
    --save "$T/res2.safetensors"
compare "5 + 5 steps on 2 ranks vs 10 on 2 (--deterministic)" res2 det1 --exact --steps 5

# --ema: every rank evaluates rank 0's moving average (the ranks' BatchNorm statistics part without
# --sync-bn), the one saved: the epoch's EMA figures are what eval gives on the saved file
run_ok ema2 "${MPIRUN[@]}" -np 2 "$R" train --data data/fmnist-small --width 16 --batch-size 128 --epochs 1 \
    --lr 0.05 --momentum 0.9 --ema 0.9 --ema-every 2 --seed 3 --no-report --quiet --threads 1 \
    --save "$T/ema2.safetensors"
run_ok ema2eval "$R" eval --weights "$T/ema2.ema.safetensors" --data data/fmnist-small --json --threads 1
"$PY" - "$T/ema2.log.jsonl" "$T/ema2eval.out" <<'PY' && ok || bad "2 ranks --ema: the epoch's EMA test figures are not eval's of the saved average"
import json, sys
last = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"epoch"')][-1]
ev = json.load(open(sys.argv[2]))
print("2 ranks --ema: EMA test acc %.4f, eval of the saved average %.4f" % (last["ema_test_acc"], ev["top1"]))
sys.exit(not (abs(ev["top1"] - last["ema_test_acc"]) < 1e-6 and abs(ev["loss"] - last["ema_test_loss"]) < 1e-5))
PY

# ---- refusals ------------------------------------------------------------------------------------
# every rank prints its own error line; none is killed (no MPI_Abort)
"${MPIRUN[@]}" -np 2 "$R" "${TRAIN[@]}" --batch-size 33 --max-steps 1 >"$T/out" 2>"$T/err"
st=$?
[ $st -eq 2 ] && grep -q "rank 0: --batch-size 33 is the global batch: it must be a multiple of the 2 ranks" \
    "$T/err" && ! grep -q MPI_ABORT "$T/err" && ok || bad "a batch not divisible by the ranks: exit $st, $(cat "$T/err")"

"${MPIRUN[@]}" -np 1 "$R" "${TRAIN[@]}" --log-every 0 --max-steps 1 : -np 1 "$R" "${TRAIN[@]}" --log-every 0 --max-steps 1 --lr 0.001 \
    >"$T/out" 2>"$T/err"
st=$?
[ $st -eq 2 ] && grep -q "rank 1 does not match rank 0: --lr 0.001 (rank 0: --lr 0.0001)" "$T/err" && ok ||
    bad "ranks with different flags: exit $st, $(head -c 600 "$T/err")"

mkdir -p "$T/other"
cp data/fmnist-small/*.gz "$T/other/"
"$PY" - "$T/other/train-labels-idx1-ubyte.gz" <<'EOF'
import gzip, sys
b = bytearray(gzip.open(sys.argv[1]).read())
b[8 + 100] = (b[8 + 100] + 1) % 10   # one label changed
gzip.open(sys.argv[1], "wb").write(bytes(b))
EOF
"${MPIRUN[@]}" -np 1 "$R" "${TRAIN[@]}" --log-every 0 --max-steps 1 : -np 1 "$R" "${TRAIN[@]}" --log-every 0 --max-steps 1 --data "$T/other" \
    >"$T/out" 2>"$T/err"
st=$?
[ $st -eq 2 ] && grep -q "rank 1 does not match rank 0: training data" "$T/err" && ok ||
    bad "ranks with different data: exit $st, $(head -c 600 "$T/err")"

# a run of batch 33 on 3 ranks resumes on 3 without --batch-size (the default 256, which 3 does
# not divide, had been refused before the checkpoint's 33 was read); on 2, the 33 is refused as
# the checkpoint's
SMALL=(train --data data/fmnist-small --width 8 --threads 1 --no-report --quiet --save "$T/b33/m.safetensors")
run_ok b33 "${MPIRUN[@]}" -np 3 "$R" "${SMALL[@]}" --batch-size 33 --max-steps 1
run_ok b33resume "${MPIRUN[@]}" -np 3 "$R" "${SMALL[@]}" --max-steps 2 --resume "$T/b33/m.safetensors"
"${MPIRUN[@]}" -np 2 "$R" "${SMALL[@]}" --max-steps 3 --resume "$T/b33/m.safetensors" >"$T/out" 2>"$T/err"
st=$?
[ $st -eq 2 ] && grep -q "batch-size 33 (the --resume checkpoint's) is the global batch" "$T/err" && ok ||
    bad "batch 33 resumed on 2 ranks: exit $st, $(head -c 600 "$T/err")"

# the same numbers spelled otherwise are the same flags
"${MPIRUN[@]}" -np 1 "$R" "${TRAIN[@]}" --log-every 0 --max-steps 1 : -np 1 "$R" "${TRAIN[@]}" --log-every 0 --max-steps 1 --lr 1e-4 \
    >"$T/out" 2>"$T/err" && ok || bad "--lr 0.0001 on one rank, 1e-4 on the other, refused: $(head -c 600 "$T/err")"

# image folders of the same names whose one image differs (in size): refused as well
"$PY" - "$T/f1" "$T/f2" <<'EOF'
import os, random, sys
from PIL import Image
random.seed(1)
for root in sys.argv[1:]:
    for split in ("train", "val"):
        for c in ("a", "b"):
            os.makedirs(os.path.join(root, split, c))
            for i in range(4):
                v = [random.randrange(256) if (root, split, c, i) == (sys.argv[2], "train", "b", 3) else 40 * i
                     for _ in range(64)]
                img = Image.new("L", (8, 8))
                img.putdata(v)
                img.save(os.path.join(root, split, c, "%d.png" % i))
EOF
FOLDER=(train --dataset folder-gray --image-size 8 --stem cifar --width 8 --batch-size 4 --max-steps 1 --no-report
        --quiet --threads 1)
"${MPIRUN[@]}" -np 1 "$R" "${FOLDER[@]}" --data "$T/f1" : -np 1 "$R" "${FOLDER[@]}" --data "$T/f2" >"$T/out" 2>"$T/err"
st=$?
[ $st -eq 2 ] && grep -q "rank 1 does not match rank 0: training data" "$T/err" && ok ||
    bad "ranks with image folders whose one image differs: exit $st, $(head -c 600 "$T/err")"

# too many non-finite steps in a row: every rank stops at the same step; rank 0 saves the checkpoint
# and says how to resume, and no rank aborts the job under it (they had: no checkpoint was left)
"${MPIRUN[@]}" -np 2 "$R" train --data data/fmnist-small --batch-size 32 --lr 1e30 --seed 3 --no-report --quiet \
    --threads 1 --max-bad-steps 2 --max-steps 6 --save "$T/nan/m.safetensors" >"$T/out" 2>"$T/err"
st=$?
[ $st -eq 1 ] && [ -f "$T/nan/m.safetensors" ] && grep -q "^checkpoint: .*nan/m.safetensors" "$T/out" &&
    grep -q "resume with a lower learning rate" "$T/out" && ! grep -q MPI_ABORT "$T/err" && ok ||
    bad "2 ranks stopped by --max-bad-steps: exit $st, $(ls "$T/nan" 2>&1), $(tail -c 600 "$T/err")"

# ---- faults --------------------------------------------------------------------------------------
# rank_pid MPIRUN_PID RANK: the process of that rank (a child of mpirun)
rank_pid() {
    local p
    for p in $(pgrep -P "$1"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && echo "$p" && return
    done
}
# fault SIGNAL WHAT: a long 2-rank run; once it trains, SIGNAL to rank 1; the job must end non-zero in 60 s
fault() {
    local sig=$1 what=$2
    "${MPIRUN[@]}" -np 2 "$R" "${TRAIN[@]}" --log-every 0 --epochs 50 --dist-timeout 15 >"$T/fault.out" 2>&1 &
    local mp=$! victim="" i
    for i in $(seq 1 600); do # up to 60 s to start training
        grep -q "data parallel over" "$T/fault.out" && victim=$(rank_pid $mp 1)
        [ -n "$victim" ] && break
        sleep 0.1
    done
    if [ -z "$victim" ]; then
        bad "$what: the run did not start ($(tail -3 "$T/fault.out"))"
        kill $mp 2>/dev/null
        wait $mp
        return
    fi
    sleep 2
    local start=$SECONDS
    kill -"$sig" "$victim"
    while kill -0 $mp 2>/dev/null && [ $((SECONDS - start)) -lt 90 ]; do
        # stopped again in case something continues it (mpirun forwards the SIGCONT it gets)
        [ "$sig" = STOP ] && kill -STOP "$victim" 2>/dev/null
        sleep 0.5
    done
    local took=$((SECONDS - start))
    if kill -0 $mp 2>/dev/null; then
        bad "$what: the job still runs after 90 s"
        kill -KILL $mp "$victim" 2>/dev/null
    fi
    wait $mp
    local st=$?
    kill -KILL "$victim" 2>/dev/null
    [ $st -ne 0 ] && [ $took -le 60 ] && ok || bad "$what: exit $st after $took s"
    echo "$what: exit $st after $took s"
}
fault KILL "rank 1 killed"
fault STOP "rank 1 stopped (hangs)"
grep -q "no answer from the other ranks for .* while" "$T/fault.out" && ok ||
    bad "the watchdog names what it waited for: $(tail -5 "$T/fault.out")"

echo "mpi: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
