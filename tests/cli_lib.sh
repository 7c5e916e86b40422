# cli_lib.sh - sourced by the CLI test scripts (cli.sh, cli_files.sh): the pass / fail
# counters and expect(). The sourcing script sets T, a temporary folder, first.
passed=0
failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

# expect STATUS DESCRIPTION command...: the exit status and, for errors, one stderr line;
# returns non-zero (after counting a failure) when either is wrong
expect() {
    local want=$1 what=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    local got=$?
    if [ "$got" -ne "$want" ]; then
        bad "$what: exit $got, expected $want ($(head -c 400 "$T/err"))"
        return 1
    fi
    if [ "$want" -ne 0 ] && [ "$(wc -l <"$T/err")" -ne 1 ]; then
        bad "$what: expected a one-line message on stderr, got: $(cat "$T/err")"
        return 1
    fi
    ok
}
