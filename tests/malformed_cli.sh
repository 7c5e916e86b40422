#!/usr/bin/env bash
# malformed_cli.sh BUILD_DIR - `resnet forward` must refuse every malformed
# weights file and input cleanly.
#
# Builds tests/gen_malformed.c (standalone, no library), writes its corpus
# into a temporary directory, then runs
#     BUILD_DIR/resnet forward --arch resnet18 --weights W --input X --output Y
# once per case: a malformed W with the valid input, or the valid weights
# with a malformed X. A case fails if the command exits 0, is killed by a
# signal (exit code >= 128), times out, or prints nothing on stderr (or more
# than the promised one line).
# A control run with both files valid must succeed, or the corpus proves
# nothing. Prints one line per case, then "malformed_cli: N passed, M failed",
# and exits non-zero if M > 0.
set -u

BUILD=${1:?usage: tests/malformed_cli.sh BUILD_DIR}
CC=${CC:-cc}
CLI="$BUILD/resnet"
HERE=$(cd "$(dirname "$0")" && pwd)

if [ ! -x "$CLI" ]; then
    echo "malformed_cli: $CLI not found or not executable" >&2
    exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/malformed_cli.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

if ! "$CC" -std=c11 -D_GNU_SOURCE -O1 -o "$TMP/gen_malformed" "$HERE/gen_malformed.c"; then
    echo "malformed_cli: cannot compile gen_malformed.c" >&2
    exit 1
fi
mkdir -p "$TMP/corpus"
"$TMP/gen_malformed" "$TMP/corpus" > /dev/null || exit 1

TIMEOUT=""
if command -v timeout > /dev/null 2>&1; then
    TIMEOUT="timeout 60"
fi

passed=0
failed=0

# run_case NAME WEIGHTS INPUT: the command must fail cleanly.
run_case() {
    local name=$1 weights=$2 input=$3 rc msg
    rm -f "$TMP/out.npy" "$TMP/stderr"
    $TIMEOUT "$CLI" forward --arch resnet18 --weights "$weights" --input "$input" \
        --output "$TMP/out.npy" > /dev/null 2> "$TMP/stderr"
    rc=$?
    msg=$(head -c 300 "$TMP/stderr" | head -n 1)
    if [ "$rc" -eq 0 ]; then
        echo "FAIL $name: exited 0"
    elif [ "$rc" -eq 124 ] && [ -n "$TIMEOUT" ]; then
        echo "FAIL $name: timed out"
    elif [ "$rc" -ge 128 ]; then
        echo "FAIL $name: killed by signal $((rc - 128)): $msg"
    elif [ ! -s "$TMP/stderr" ]; then
        echo "FAIL $name: exit $rc with nothing on stderr"
    elif [ "$(wc -l < "$TMP/stderr")" -gt 1 ]; then
        echo "FAIL $name: exit $rc with more than one line on stderr: $msg"
    else
        echo "ok   $name: exit $rc: $msg"
        passed=$((passed + 1))
        return
    fi
    failed=$((failed + 1))
}

C="$TMP/corpus"

# Control: both files valid.
$TIMEOUT "$CLI" forward --arch resnet18 --weights "$C/valid_weights.safetensors" \
    --input "$C/valid_input.npy" --output "$TMP/out.npy" > /dev/null 2> "$TMP/stderr"
rc=$?
if [ "$rc" -eq 0 ] && [ -s "$TMP/out.npy" ]; then
    echo "ok   control: valid weights and input succeed"
    passed=$((passed + 1))
else
    echo "FAIL control: valid weights and input: exit $rc: $(head -n 1 "$TMP/stderr")"
    failed=$((failed + 1))
fi

for f in "$C"/st/*.safetensors; do
    name=${f##*/}
    run_case "st/$name" "$f" "$C/valid_input.npy"
done
for f in "$C"/npy/*.npy; do
    name=${f##*/}
    run_case "npy/$name" "$C/valid_weights.safetensors" "$f"
done
run_case "missing weights file" "$C/does-not-exist.safetensors" "$C/valid_input.npy"
run_case "missing input file" "$C/valid_weights.safetensors" "$C/does-not-exist.npy"
run_case "weights is a directory" "$C/st" "$C/valid_input.npy"

echo "malformed_cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
