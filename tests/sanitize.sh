#!/usr/bin/env bash
# sanitize.sh BUILD_DIR - the C test suites and the CLI's malformed-file suites
# under AddressSanitizer + UndefinedBehaviorSanitizer (BUILD_DIR is what
# `make sanitize` builds with clang -fsanitize=address,undefined). Any report
# (an invalid access, a leak, undefined behaviour) fails the suite it came
# from: the sanitizers abort with a non-zero status. RN_TEST_QUICK=1 makes
# test_model compare one architecture per kind of block with its reference
# forward (the reference convolutions are slow under the sanitizers). Prints
# one line per suite and exits non-zero if any failed.
set -u
BUILD=${1:?usage: tests/sanitize.sh BUILD_DIR}
# allocator_may_return_null: an allocation too large for memory returns NULL, as malloc does, so that
# the code's out-of-memory paths run (cli.sh's model too wide for memory) instead of ASan aborting
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=87
export OMP_NUM_THREADS=2 RN_TEST_QUICK=1
passed=0
failed=0
run() { # name command...
    local name=$1 start=$SECONDS
    shift
    if "$@" >"$BUILD/sanitize_$name.log" 2>&1; then
        passed=$((passed + 1))
        echo "ok   $name ($((SECONDS - start)) s)"
    else
        failed=$((failed + 1))
        echo "FAIL $name ($((SECONDS - start)) s):"
        grep -E "ERROR|SUMMARY|runtime error|FAIL" "$BUILD/sanitize_$name.log" | head -5
    fi
}
for src in tests/test_*.c; do
    t=$(basename "$src" .c)
    if [ ! -x "$BUILD/tests/$t" ]; then
        echo "FAIL $t: $BUILD/tests/$t is missing"
        failed=$((failed + 1))
        continue
    fi
    run "$t" "$BUILD/tests/$t"
done
run malformed_cli tests/malformed_cli.sh "$BUILD"
run cli tests/cli.sh "$BUILD"
echo "sanitize: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
