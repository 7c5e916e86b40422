#!/usr/bin/env bash
# train_safety.sh BUILD - `resnet train` when things go wrong:
#   SIGINT and SIGTERM: exit 4 after the step, a checkpoint, the command that
#     resumes, and that command carries the run to the same weights as a run
#     never interrupted; a second Ctrl-C ends the process at once with the
#     last committed checkpoint intact;
#   a second run writing the same --save is refused (the lock);
#   a full disk (a file-size limit, and a small tmpfs where one can be
#     mounted) and a read-only folder (before training and in the middle of
#     it): exit 3, a message naming the file, the previous checkpoint intact;
#   a mismatched weights / optimizer-state pair is refused naming both files;
#   a temporary file of an interrupted write is never loaded;
#   a learning rate far too high: non-finite steps skipped, the run stopped
#     after --max-bad-steps of them in a row, its checkpoint finite.
# Read-only folders are made the way the system allows: chmod when not root,
# else a read-only bind mount in a private mount namespace (unshare) or
# chattr +i; a test that has none of them says SKIP.
set -u
BUILD=${1:-build}
R="$PWD/$BUILD/resnet"
BASE=/tmp
[ -w /dev/shm ] && BASE=/dev/shm
T=$(mktemp -d "$BASE/rn_safety.XXXXXX")
trap 'chattr -R -i "$T" 2>/dev/null; chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "PASS  $*"; }
bad() { failed=$((failed + 1)); echo "FAIL  $*"; }
check() { # description command...
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}

A=(--data data/fmnist-small --epochs 1 --batch-size 4 --threads 1 --quiet --seed 5 --log-every 1)
export OMP_NUM_THREADS=1

# same CKPT REF: equal tensors and metadata (but the run id) in the weights and the optimizer state
same() { /usr/bin/python3 tests/same_checkpoint.py "$1" "$2"; }
step_of() { # the step in a checkpoint's metadata
    /usr/bin/python3 -c "
import json, sys
raw = open(sys.argv[1], 'rb').read(); n = int.from_bytes(raw[:8], 'little')
print(json.loads(raw[8:8 + n])['__metadata__']['step'])" "$1"
}
log_steps() { # the step records of a log, space-separated
    /usr/bin/python3 -c "
import json, sys
print(' '.join(str(json.loads(l)['step']) for l in open(sys.argv[1]) if l.startswith('{\"step\"')))" "$1"
}
wait_for() { # FILE PATTERN [SECONDS]: waits until FILE has a line matching PATTERN
    local n=$((${3:-60} * 20))
    while [ $n -gt 0 ]; do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
        n=$((n - 1))
    done
    return 1
}
temps() { ls -A "$1" | grep -cE '^\..*\.tmp-[0-9]+-[a-z0-9]{6}$'; }

"$R" train "${A[@]}" --max-steps 10 --save "$T/ref.safetensors" >/dev/null ||
    { bad "the reference run failed"; exit 1; }
ALL="1 2 3 4 5 6 7 8 9 10"

# ---- SIGINT, SIGTERM ---------------------------------------------------------------------------
for sig in INT TERM; do
    d="$T/$sig"
    mkdir -p "$d"
    "$R" train "${A[@]}" --max-steps 10 --save "$d/s.safetensors" >"$d/out" 2>"$d/err" &
    pid=$!
    wait_for "$d/s.log.jsonl" '"step": 3' && kill -$sig $pid
    wait $pid
    rc=$?
    check "SIG$sig: exit 4 (got $rc)" [ $rc -eq 4 ]
    check "SIG$sig: says so, where the checkpoint is and how to resume" \
        grep -q "interrupted by SIG$sig after step" "$d/out"
    resume=$(grep -A1 '^resume with:' "$d/out" | tail -1)
    check "SIG$sig: the resume command names the checkpoint" grep -q -- "--resume $d/s.safetensors" <<<"$resume"
    (eval "\"$R\"${resume#  resnet}" >/dev/null)
    check "SIG$sig: the printed command resumes and finishes" [ $? -eq 0 ]
    check "SIG$sig: resumed to the weights of the run never interrupted" same "$d/s.safetensors" "$T/ref.safetensors"
    check "SIG$sig: the log has each step once" [ "$(log_steps "$d/s.log.jsonl")" = "$ALL" ]
done
# without --save the signal's answer promises no checkpoint (it had said "with a checkpoint")
d="$T/nosave"
mkdir -p "$d"
"$R" train "${A[@]}" --max-steps 10 --log "$d/l.jsonl" --log-every 1 >"$d/out" 2>"$d/err" &
pid=$!
wait_for "$d/l.jsonl" '"step": 3' && kill -INT $pid
wait $pid
check "SIGINT without --save: exit 4 (got $?)" grep -q "no checkpoint written (no --save)" "$d/out"
check "SIGINT without --save: the answer says no checkpoint" grep -q "no --save: no checkpoint" "$d/err"

# ---- a second Ctrl-C ends at once ------------------------------------------------------------------
d="$T/twice"
mkdir -p "$d"
RESNET_TEST_SAVE_PAUSE_MS=2000 "$R" train "${A[@]}" --max-steps 10 --save-every 2 --save "$d/s.safetensors" \
    >"$d/out" 2>"$d/err" &
pid=$!
if wait_for "$d/err" "checkpoint step 2 done" && wait_for "$d/s.log.jsonl" '"step": 3'; then
    kill -INT $pid
    wait_for "$d/err" "checkpoint step [34] begin" && sleep 0.2 && kill -INT $pid
fi
wait $pid
rc=$?
check "second SIGINT: the process ends at once, by the signal (status $rc)" [ $rc -eq 130 ]
check "second SIGINT: the last committed checkpoint (step 2) is on disk" [ "$(step_of "$d/s.safetensors")" = 2 ]
# each signal is answered on stderr as it comes (the second had ended the run without a word)
check "second SIGINT: the first is answered at once" grep -q "stopping after this step, with a checkpoint" "$d/err"
check "second SIGINT: the second says it stopped at once" grep -q "a second signal: stopped at once" "$d/err"
"$R" train "${A[@]}" --max-steps 10 --save "$d/s.safetensors" --resume "$d/s.safetensors" >/dev/null 2>&1
check "second SIGINT: it resumes to the uninterrupted run's weights" same "$d/s.safetensors" "$T/ref.safetensors"
check "second SIGINT: no temporary file is left after the resumed run" [ "$(temps "$d")" -eq 0 ]

# ---- the lock --------------------------------------------------------------------------------------
d="$T/lock"
mkdir -p "$d"
RESNET_TEST_SAVE_PAUSE_MS=1000 "$R" train "${A[@]}" --max-steps 10 --save-every 2 --save "$d/s.safetensors" \
    >/dev/null 2>"$d/err1" &
pid=$!
wait_for "$d/err1" "checkpoint step 2 begin"
"$R" train "${A[@]}" --max-steps 2 --save "$d/s.safetensors" --overwrite >/dev/null 2>"$d/err2"
rc=$?
check "a second run on the same --save is refused (exit $rc)" [ $rc -eq 1 ]
check "... naming the checkpoint and the process that holds it" grep -q "in use by another training run (process $pid" "$d/err2"
kill -KILL $pid
wait $pid 2>/dev/null
"$R" train "${A[@]}" --max-steps 2 --save "$d/s.safetensors" --overwrite >/dev/null 2>&1
check "the lock of a killed run is free" [ $? -eq 0 ]

# ---- a full disk -----------------------------------------------------------------------------------
d="$T/full"
mkdir -p "$d"
"$R" train "${A[@]}" --max-steps 2 --save "$d/s.safetensors" >/dev/null
(   # the signal of the limit as a user's shell leaves it (resnet ignores it: the write fails)
    ulimit -f 20000 # 20 MB per file: less than one weights file
    exec "$R" train "${A[@]}" --max-steps 4 --save "$d/s.safetensors" --resume "$d/s.safetensors" >/dev/null 2>"$d/err"
)
rc=$?
check "a file-size limit: exit 3 (got $rc)" [ $rc -eq 3 ]
check "... the message names the file and the reason" grep -q "$d/s.safetensors: write failed: File too large" "$d/err"
check "... and says which checkpoint is intact" grep -q "the last checkpoint, $d/s.safetensors at step 2, is intact" "$d/err"
check "... the checkpoint on disk is still step 2, with no temporary file" \
    [ "$(step_of "$d/s.safetensors")" = 2 -a "$(temps "$d")" -eq 0 ]
"$R" train "${A[@]}" --max-steps 10 --save "$d/s.safetensors" --resume "$d/s.safetensors" >/dev/null 2>&1
check "... and it resumes to the uninterrupted run's weights" same "$d/s.safetensors" "$T/ref.safetensors"

if [ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null; then
    d="$T/tmpfs"
    mkdir -p "$d"
    unshare -m bash -c "
        mount -t tmpfs -o size=120m tmpfs '$d' || exit 99
        '$R' train ${A[*]} --max-steps 2 --save '$d/s.safetensors' >/dev/null || exit 98
        '$R' train ${A[*]} --max-steps 4 --save '$d/s.safetensors' --resume '$d/s.safetensors' >/dev/null 2>'$T/tmpfs.err'
        echo \$? >'$T/tmpfs.rc'
        '$R' train ${A[*]} --max-steps 2 --save '$d/s.safetensors' --resume '$d/s.safetensors' >'$T/tmpfs.out' 2>&1
        echo \$? >>'$T/tmpfs.rc'
        ls -A '$d' | grep -cE '^\..*\.tmp-[0-9]+-[a-z0-9]{6}\$' >>'$T/tmpfs.rc'
    "
    if [ $? -eq 99 ]; then
        echo "SKIP  a full tmpfs: cannot mount one here"
    else
        check "a full tmpfs: exit 3 ($(head -1 "$T/tmpfs.rc"))" [ "$(sed -n 1p "$T/tmpfs.rc")" = 3 ]
        check "... the message names the file and says no space is left" \
            grep -q "$d/s.safetensors: write failed: No space left on device" "$T/tmpfs.err"
        check "... the step-2 checkpoint loads afterwards, no temporary file left" \
            [ "$(sed -n 2p "$T/tmpfs.rc")" = 0 -a "$(sed -n 3p "$T/tmpfs.rc")" = 0 ]
        check "... (it says there is nothing left to do at step 2)" grep -q "already at step 2" "$T/tmpfs.out"
    fi
else
    echo "SKIP  a full tmpfs: needs root and unshare -m to mount one"
fi

# ---- a read-only folder ------------------------------------------------------------------------------
# How a folder is made read-only (ro_probe DIR sets RO_WAY, RO_ON, RO_OFF, WRAP): chmod when not root;
# as root, a read-only bind mount in a private mount namespace (EROFS) or chattr +i (EPERM). A remount
# is refused while a file is open for writing in the folder, so the folder that turns read-only in
# the middle of a run uses chmod or chattr.
ro_probe() { # DIR MOUNT_OK
    RO_WAY=""
    WRAP=(bash -c)
    if [ "$(id -u)" -ne 0 ]; then
        RO_WAY="chmod"; RO_ON="chmod a-w"; RO_OFF="chmod u+w"
    elif [ "$2" = 1 ] && unshare -m true 2>/dev/null; then
        RO_WAY="read-only bind mount"; RO_ON="mount --bind '$1' '$1' && mount -o remount,ro,bind"
        RO_OFF="mount -o remount,rw,bind"; WRAP=(unshare -m bash -c)
    elif chattr +i "$1" 2>/dev/null; then
        if touch "$1/probe" 2>/dev/null; then rm -f "$1/probe"; else RO_WAY="chattr +i"; fi
        chattr -i "$1"
        RO_ON="chattr +i"; RO_OFF="chattr -i"
    fi
}
d="$T/ro"
mkdir -p "$d"
"$R" train "${A[@]}" --max-steps 2 --save "$d/s.safetensors" >/dev/null
ro_probe "$d" 1
if [ -z "$RO_WAY" ]; then
    echo "SKIP  a read-only folder: no way to make one here"
else
    "${WRAP[@]}" "
        $RO_ON '$d' || exit 99
        touch '$d/probe' 2>/dev/null && exit 99
        '$R' train ${A[*]} --max-steps 4 --save '$d/s.safetensors' --resume '$d/s.safetensors' >/dev/null 2>'$T/ro1.err'
        echo \$? >'$T/ro1.rc'
        $RO_OFF '$d'
    "
    if [ $? -eq 99 ]; then
        echo "SKIP  a read-only folder: $RO_WAY does not stop writes here"
    else
        check "a read-only folder ($RO_WAY) is refused before training: exit 3 ($(cat "$T/ro1.rc"))" \
            [ "$(cat "$T/ro1.rc")" = 3 ]
        check "... naming the file" grep -q "$d/s.safetensors.lock: cannot create the lock file" "$T/ro1.err"
    fi
fi
ro_probe "$d" 0
if [ -z "$RO_WAY" ]; then
    echo "SKIP  a folder that turns read-only during training: no way to make one here"
else
    RESNET_TEST_SAVE_PAUSE_MS=300 "$R" train "${A[@]}" --max-steps 8 --save-every 2 --save "$d/s.safetensors" \
        --resume "$d/s.safetensors" >/dev/null 2>"$T/ro2.err" &
    pid=$!
    wait_for "$T/ro2.err" "checkpoint step 4 done" && bash -c "$RO_ON '$d'"
    wait $pid
    rc=$?
    bash -c "$RO_OFF '$d'"
    check "a folder that turns read-only during training ($RO_WAY): exit 3 at the next save ($rc)" [ $rc -eq 3 ]
    check "... naming the file" grep -q "$d/s.safetensors: cannot create a file in $d" "$T/ro2.err"
    check "... the step-4 checkpoint is intact" [ "$(step_of "$d/s.safetensors")" = 4 ]
    "$R" train "${A[@]}" --max-steps 10 --save "$d/s.safetensors" --resume "$d/s.safetensors" >/dev/null 2>&1
    check "... and it resumes to the uninterrupted run's weights" same "$d/s.safetensors" "$T/ref.safetensors"
fi

# ---- a mismatched pair, a temporary file -----------------------------------------------------------
d="$T/pair"
mkdir -p "$d"
"$R" train "${A[@]}" --max-steps 2 --save "$d/s.safetensors" >/dev/null
cp "$T/ref.optim.safetensors" "$d/s.optim.safetensors"
"$R" train "${A[@]}" --max-steps 4 --save "$d/s.safetensors" --resume "$d/s.safetensors" >/dev/null 2>"$d/err"
rc=$?
check "a mismatched pair is refused (exit $rc)" [ $rc -eq 1 ]
check "... naming both files" grep -q "$d/s.safetensors (run [0-9a-f]* at step 2) and its optimizer state are not one checkpoint: $d/s.optim.safetensors is run [0-9a-f]* at step 10" "$d/err"
cp "$T/ref.safetensors" "$d/.w.safetensors.tmp-4000000-abcdef"
"$R" forward --weights "$d/.w.safetensors.tmp-4000000-abcdef" --input data/sample/fmnist_batch.npy \
    --output "$d/y.npy" >/dev/null 2>"$d/err"
check "a temporary file of an interrupted write is never loaded" grep -q "never loaded" "$d/err"

# ---- --overwrite stopped before its first save ----------------------------------------------------------
# the new log is written beside the old one and takes its place at the first save: killed before
# then, the old checkpoint keeps its own log (it had been emptied at the start)
d="$T/ow"
mkdir -p "$d"
"$R" train "${A[@]}" --max-steps 3 --save "$d/s.safetensors" >/dev/null 2>&1
cp "$d/s.log.jsonl" "$T/ow.log" && cp "$d/s.safetensors" "$T/ow.safetensors"
"$R" train "${A[@]}" --overwrite --save "$d/s.safetensors" >/dev/null 2>&1 &
pid=$!
n=600
until grep -qs '"step"' "$d"/.s.log.jsonl.tmp-* || [ $n -eq 0 ]; do sleep 0.05; n=$((n - 1)); done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
check "--overwrite killed before its first save: the old log is intact" cmp -s "$d/s.log.jsonl" "$T/ow.log"
check "... beside its checkpoint, intact too" cmp -s "$d/s.safetensors" "$T/ow.safetensors"
"$R" train "${A[@]}" --overwrite --max-steps 2 --save "$d/s.safetensors" >/dev/null 2>&1
check "--overwrite run to its save: the log is the new run's" [ "$(log_steps "$d/s.log.jsonl")" = "1 2" ]
check "... and no temporary file is left (the killed run's removed)" [ "$(temps "$d")" -eq 0 ]

# ---- the progress line's ETA is the run's -------------------------------------------------------------
# 40 epochs of 250 steps: 50 steps in, the ETA counts the 39 epochs after this one (it had counted
# this epoch's 200 steps only)
d="$T/eta"
mkdir -p "$d"
"$R" train --data data/fmnist-small --epochs 40 --batch-size 20 --threads 1 --seed 5 --no-report \
    >/dev/null 2>"$d/err" &
pid=$!
wait_for "$d/err" "step 50/250" 120
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
eta=$(sed -n 's|.*step 50/250 .*ETA \([0-9]*\)s.*|\1|p' "$d/err")
steps_s=$(sed -n 's|.*step 50/250 .* \([0-9]*\) img/s.*|\1|p' "$d/err")
eta_ok() { [ -n "$eta" ] && [ -n "$steps_s" ] && [ "$eta" -ge $((9950 * 20 / (steps_s + 1) * 9 / 10)) ]; }
check "the ETA is the run's: ${eta:-none} s for 9950 steps at ${steps_s:-?} img/s" eta_ok
# stopped by --max-steps inside the epoch: nothing left at its last step, no evaluation counted
"$R" train --data data/fmnist-small --epochs 40 --batch-size 20 --threads 1 --seed 5 --no-report \
    --max-steps 50 >/dev/null 2>"$d/err2"
check "... with --max-steps, 0 s at the last step (no evaluation follows)" grep -q "step 50/250 .*ETA 0s" "$d/err2"

# ---- non-finite numbers: a learning rate far too high -------------------------------------------------
d="$T/nan"
mkdir -p "$d"
"$R" train "${A[@]}" --lr 1e6 --max-bad-steps 3 --save "$d/s.safetensors" >"$d/out" 2>"$d/err"
rc=$?
check "a diverging run (--lr 1e6) stops with exit 1 ($rc)" [ $rc -eq 1 ]
check "... after 3 skipped steps in a row (--max-bad-steps 3)" \
    [ "$(grep -c "skipped: .*unchanged ([123] in a row)" "$d/err")" = 3 ]
check "... saying why and what to do" grep -q "stopped: 3 steps in a row had a non-finite.*try --lr 100000" "$d/out"
check "... with the command that resumes at a lower learning rate" \
    grep -q -- "--lr 100000 --resume $d/s.safetensors" "$d/out"
good=$(sed -n 's/.*the weights are those of step \([0-9]*\).*/\1/p' "$d/out")
check "... its checkpoint is the last good step's (${good:-none})" [ -n "$good" ] &&
    [ "$(step_of "$d/s.safetensors")" = "$good" ]
finite() { # CKPT: every float of the weights and of the optimizer state is finite
    /usr/bin/python3 - "$1" "${1%.safetensors}.optim.safetensors" <<'PYEOF'
import json, math, struct, sys
for path in sys.argv[1:]:
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    for name, t in json.loads(raw[8:8 + n]).items():
        if name != "__metadata__" and t["dtype"] == "F32":
            a, b = t["data_offsets"]
            if not all(map(math.isfinite, struct.unpack("<%df" % ((b - a) // 4), raw[8 + n + a:8 + n + b]))):
                sys.exit(f"{path}: {name} is not finite")
PYEOF
}
check "... and holds only finite numbers (weights, BatchNorm statistics, optimizer state)" finite "$d/s.safetensors"
check "... the log has a record for each good step only" [ "$(log_steps "$d/s.log.jsonl")" = "$(seq -s ' ' 1 "${good:-0}")" ]

echo "train_safety: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
