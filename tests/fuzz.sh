#!/usr/bin/env bash
# fuzz.sh BUILD_DIR [--seconds S | --runs N] [--work DIR] [TARGET...]
#
# Runs the libFuzzer targets built by `make fuzz` (BUILD_DIR/fuzzers/fuzz_*),
# one at a time: first every regression input of tests/fuzz/regress/TARGET/
# (inputs that once crashed, kept after the fix), then fuzzing from the seed
# corpus tests/fuzz/corpus/TARGET/ for S seconds (default 20) or N executions.
# New inputs go to a work corpus (DIR/TARGET, default a temporary folder), never
# into the repository. A crash, a leak, a timeout (-timeout=10 s) or running out
# of memory (-rss_limit_mb=2048) fails the target; its input is saved in the
# work folder and named in the output; a timeout's input is replayed on its own
# and its time printed (libFuzzer counts wall-clock time, so a fuzzer that was
# stopped with SIGSTOP, or starved of CPU, times out on whatever input it held).
#
# Prints one line per target (executions, rate, coverage, corpus, result) and
# exits non-zero if any target failed. The long campaign of the README is
#     nice -n 19 tests/fuzz.sh build/fuzz --runs 10000000 --work build/fuzz-campaign
set -u
BUILD=${1:?usage: tests/fuzz.sh BUILD_DIR [--seconds S | --runs N] [--work DIR] [TARGET...]}
shift
HERE=$(cd "$(dirname "$0")" && pwd)
limit=(-max_total_time=20)
WORK=""
targets=()
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) limit=(-max_total_time="$2"); shift 2 ;;
    --runs) limit=(-runs="$2"); shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    *) targets+=("$1"); shift ;;
    esac
done
if [ ${#targets[@]} -eq 0 ]; then
    for src in "$HERE"/fuzz/fuzz_*.c; do
        t=${src##*/}
        targets+=("${t%.c}")
    done
fi
if [ -z "$WORK" ]; then
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/rn_fuzz.XXXXXX") || exit 1
    trap 'rm -rf "$WORK"' EXIT
fi

failed=0
for t in "${targets[@]}"; do
    bin="$BUILD/fuzzers/$t"
    if [ ! -x "$bin" ]; then
        echo "FAIL $t: $bin is missing (make fuzz builds it)"
        failed=$((failed + 1))
        continue
    fi
    mkdir -p "$WORK/$t"
    log="$WORK/$t.log"
    regress=("$HERE/fuzz/regress/$t"/*)
    if [ -e "${regress[0]}" ]; then
        if ! "$bin" -timeout=10 -rss_limit_mb=2048 "${regress[@]}" >"$log" 2>&1; then
            echo "FAIL $t: a regression input fails again:"
            grep -E "ERROR|Running:|SUMMARY" "$log" | tail -5
            failed=$((failed + 1))
            continue
        fi
    fi
    start=$SECONDS
    "$bin" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$WORK/$t-" "$WORK/$t" "$HERE/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    summary="${runs:-?} runs in $((SECONDS - start)) s (${rate:-?}/s), coverage ${cov:-?} edges / ${ft:-?} features, corpus ${corp:-?}"
    if [ $rc -ne 0 ]; then
        echo "FAIL $t: $summary"
        grep -E "ERROR|SUMMARY|Test unit written" "$log" | head -5
        unit=$(sed -n 's/.*Test unit written to //p' "$log" | head -1)
        if grep -q "libFuzzer: timeout" "$log" && [ -f "$unit" ]; then
            # libFuzzer's timeout is wall-clock time: a fuzzer that was stopped
            # (SIGSTOP) or starved of CPU times out on any input
            took=$("$bin" -timeout=10 "$unit" 2>&1 | sed -n 's/^Executed .* in \([0-9]*\) ms$/\1/p')
            echo "     that input replays in ${took:-?} ms on its own (far below 10 s: the fuzzer was" \
                "stopped or starved of CPU while it ran, the input is not slow)"
        fi
        failed=$((failed + 1))
    else
        echo "ok   $t: $summary, 0 crashes"
    fi
done
echo "fuzz: ${#targets[@]} targets, $failed failed"
[ $failed -eq 0 ]
