#!/usr/bin/env bash
# run_all.sh BUILD - every test of resnet.c, in order of cost. Each suite is a
# program that exits non-zero on any failure; this script runs them all,
# prints one line per suite, and exits non-zero if any failed.
#
# It first brings BUILD up to date (make: what is stale is rebuilt), and takes
# the C suites from the sources (tests/test_*.c), so a suite whose binary is
# missing fails instead of being skipped. With RN_CI=1 (`make ci`; CI itself,
# .ci/run, runs `make test`) it also runs the sanitizer and fuzzing suites,
# which build their own trees (BUILD/sanitize, BUILD/fuzz) with clang and take
# about ten minutes.
set -u
BUILD=${1:-build}
PY=/usr/bin/python3
if ! make -s --no-print-directory BUILD="$BUILD" all; then
    echo "run_all: the build failed"
    exit 1
fi
passed=0
failed=0
failures=()

run() { # name command...
    local name=$1
    shift
    local start=$SECONDS
    echo "=== $name"
    if "$@"; then
        passed=$((passed + 1))
        echo "=== $name: ok ($((SECONDS - start)) s)"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "=== $name: FAILED ($((SECONDS - start)) s)"
    fi
}

missing() {
    echo "$1 is missing"
    return 1
}
for src in tests/test_*.c; do
    t="$BUILD/tests/$(basename "$src" .c)"
    if [ -x "$t" ]; then
        run "$(basename "$t")" "$t"
    else
        run "$(basename "$t")" missing "$t"
    fi
done
run "example" "$BUILD/example" --selftest
run "install" tests/install.sh "$BUILD"
run "cli" tests/cli.sh "$BUILD"
run "cli_files" tests/cli_files.sh "$BUILD"
run "malformed_cli" tests/malformed_cli.sh "$BUILD"
run "report" tests/report.sh "$BUILD"
run "mpi" tests/mpi.sh "$BUILD"
run "pytorch_load" tests/pytorch_load.sh "$BUILD"
run "resize_pil" "$PY" tools/check_resize_pil.py "$BUILD/tests/test_data"
run "preprocess_pil" "$PY" tools/check_preprocess.py --tool "$BUILD/tests/test_image"
run "train_parity" "$PY" tools/train_parity.py --resnet "$BUILD/resnet"
run "train_real" tests/train_real.sh "$BUILD"
run "finetune_parity" "$PY" tools/finetune_parity.py --resnet "$BUILD/resnet"
run "predict_parity" "$PY" tools/predict_parity.py --resnet "$BUILD/resnet"
run "onnx_export" "$PY" tools/onnx_check.py --resnet "$BUILD/resnet"
run "onnx_import" "$PY" tools/onnx_import_check.py --resnet "$BUILD/resnet"
run "pth_roundtrip" "$PY" tools/pth_roundtrip.py --resnet "$BUILD/resnet"
run "parity" "$PY" tools/parity.py --resnet "$BUILD/resnet"
run "train_safety" tests/train_safety.sh "$BUILD"
run "kill_harness" "$PY" tests/kill_harness.py --resnet "$BUILD/resnet" --kills 25
if [ "${RN_CI:-0}" = 1 ]; then
    run "sanitize" make -s --no-print-directory BUILD="$BUILD" sanitize
    run "fuzz" make -s --no-print-directory BUILD="$BUILD" fuzz
fi

echo
if [ $failed -gt 0 ]; then
    echo "failed suites: ${failures[*]}"
fi
echo "suites: $passed passed, $failed failed"
[ $failed -eq 0 ]
