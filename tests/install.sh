#!/usr/bin/env bash
# install.sh BUILD - resnet.c installed as a library: `make install` into a temporary
# prefix, then, with nothing but that prefix and pkg-config:
#   - every file is where a packager expects it (libresnet.so with its soname and version
#     links, the static library, the header, resnet.pc, resnet.1, the bash completion);
#   - libresnet.so exports exactly the functions include/resnet.h declares (an RN_API forgotten
#     on a declaration fails here);
#   - the build lines written in examples/classify.c and examples/train_tiny.c work as
#     written (the installed ones with `pkg-config --cflags --libs resnet`, the in-tree
#     ones from the repository's root), and the programs run: classify --selftest,
#     train_tiny trains, saves, exports ONNX and reads both back;
#   - a static link with `pkg-config --static --libs resnet` works too;
#   - the man page renders without warnings and documents every command and flag that
#     `resnet COMMAND --help` lists; the bash completion completes commands, flags and
#     architecture names;
#   - a staged install (DESTDIR) keeps the prefix in resnet.pc; `make uninstall` removes
#     every installed file.
set -u
BUILD=${1:-build}
BUILD=$(cd "$BUILD" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/cli_lib.sh"

TMP=$(mktemp -d)
T=$TMP
trap 'rm -rf "$TMP"' EXIT
PREFIX="$TMP/prefix"
cd "$ROOT"

expect 0 "make install into $PREFIX" make -s install BUILD="$BUILD" PREFIX="$PREFIX"
version=$(sed -n 's/^#define RN_VERSION "\(.*\)"/\1/p' include/resnet.h)
major=${version%%.*}
for f in bin/resnet include/resnet.h lib/libresnet.a "lib/libresnet.so.$version" lib/pkgconfig/resnet.pc \
         share/man/man1/resnet.1 share/bash-completion/completions/resnet; do
    if [ -f "$PREFIX/$f" ]; then ok; else bad "missing $PREFIX/$f"; fi
done
[ "$(readlink "$PREFIX/lib/libresnet.so")" = "libresnet.so.$major" ] && ok \
    || bad "libresnet.so links to '$(readlink "$PREFIX/lib/libresnet.so")'"
[ "$(readlink "$PREFIX/lib/libresnet.so.$major")" = "libresnet.so.$version" ] && ok \
    || bad "libresnet.so.$major links to '$(readlink "$PREFIX/lib/libresnet.so.$major")'"
soname=$(readelf -d "$PREFIX/lib/libresnet.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libresnet.so.$major" ] && ok || bad "soname '$soname', expected libresnet.so.$major"

# ---- the exported symbols are the functions of the header ------------------------------------
# every function declared (a line starting with a type, not a typedef) is exported, and only those
grep -E '^[A-Za-z]' "$PREFIX/include/resnet.h" | grep -v '^typedef\|^extern\|^#' | grep -oE '\brn_[a-z0-9_]+\(' \
    | tr -d '(' | sort > "$TMP/declared"
nm -D --defined-only "$PREFIX/lib/libresnet.so.$version" | awk '{print $3}' | sort > "$TMP/exported"
if diff "$TMP/declared" "$TMP/exported" > "$TMP/symdiff"; then
    ok
else
    bad "exported symbols differ from the header's functions (< declared only, > exported only):"
    head -20 "$TMP/symdiff"
fi

# ---- the examples, built as their comments say ----------------------------------------------
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
export LD_LIBRARY_PATH="$PREFIX/lib"
mkdir -p "$TMP/work"
cp examples/classify.c examples/train_tiny.c "$TMP/work/"
for ex in classify train_tiny; do
    lines=$(sed -n 's/^ \*   \$ //p' "examples/$ex.c")
    installed=$(printf '%s\n' "$lines" | grep pkg-config)
    intree=$(printf '%s\n' "$lines" | grep -v pkg-config)
    [ -n "$installed" ] && [ -n "$intree" ] || bad "examples/$ex.c: no build lines found"
    expect 0 "$ex: built as written with pkg-config" bash -c "cd '$TMP/work' && $installed"
    expect 0 "$ex: linked against libresnet.so.$major" bash -c \
        "ldd '$TMP/work/$ex' | grep -q 'libresnet.so.$major => $PREFIX/lib/'"
    expect 0 "$ex: built as written in the source tree" bash -c \
        "$intree && mv $ex '$TMP/work/$ex-static'"
done
expect 0 "classify --selftest (shared library)" "$TMP/work/classify" --selftest
expect 0 "classify --selftest (in-tree static build)" "$TMP/work/classify-static" --selftest
expect 1 "classify rejects a missing file" "$TMP/work/classify" "$TMP/none.safetensors" "$TMP/none.npy"
expect 0 "train_tiny trains, saves, exports and reads back" "$TMP/work/train_tiny" "$TMP/work"
expect 0 "train_tiny's ONNX file classifies with the CLI" "$PREFIX/bin/resnet" forward \
    --weights "$TMP/work/tiny.onnx" --input "$ROOT/data/sample/fmnist_batch.npy" --output "$TMP/y.npy" --print

# static: resnet-static.pc links libresnet.a (resnet.pc with --static would pick libresnet.so)
expect 0 "classify linked with pkg-config resnet-static" bash -c \
    "cc '$TMP/work/classify.c' \$(pkg-config --cflags --libs resnet-static) -o '$TMP/work/classify-st' && '$TMP/work/classify-st' --selftest"
if ldd "$TMP/work/classify-st" 2>/dev/null | grep -q libresnet; then
    bad "resnet-static linked libresnet.so: $(ldd "$TMP/work/classify-st" | grep libresnet)"
else
    ok
fi
# resnet.pc's folders relative to its prefix: an install moved elsewhere is found with --define-prefix
grep -q '^libdir=${prefix}/lib$' "$PREFIX/lib/pkgconfig/resnet.pc" && ok ||
    bad "resnet.pc's libdir is not under \${prefix}: $(grep libdir= "$PREFIX/lib/pkgconfig/resnet.pc")"
static_libs=$(pkg-config --static --libs-only-other --libs-only-l resnet | sed 's/-lresnet//')
expect 0 "classify linked statically with pkg-config --static" bash -c \
    "cc '$TMP/work/classify.c' \$(pkg-config --cflags resnet) '$PREFIX/lib/libresnet.a' $static_libs -o '$TMP/work/classify-a' && '$TMP/work/classify-a' --selftest"
# ... defining nothing but the rn_ API: a program with names the library uses inside (json_parse,
# zip_open) links it (the library's own had clashed: "multiple definition of json_parse")
printf '%s\n' '#include <resnet.h>' 'int json_parse(const char *s) { return s != 0; }' \
    'int zip_open(void) { return 1; }' 'int main(void) {' '    rn_model *m = 0;' \
    '    int ok = rn_model_create("resnet18", 3, 10, &m) == RN_OK;' '    rn_model_free(m);' \
    '    return ok && json_parse("x") && zip_open() ? 0 : 1;' '}' >"$TMP/work/clash.c"
expect 0 "a program defining json_parse and zip_open links libresnet.a" bash -c \
    "cc '$TMP/work/clash.c' \$(pkg-config --cflags resnet) '$PREFIX/lib/libresnet.a' $static_libs -o '$TMP/work/clash' && '$TMP/work/clash'"
non_api=$(nm -g --defined-only "$PREFIX/lib/libresnet.a" | awk 'NF == 3 && $3 !~ /^rn_/' | wc -l)
[ "$non_api" -eq 0 ] && ok || bad "libresnet.a defines $non_api global names outside rn_"

# ---- the man page and the completion ----------------------------------------------------------
MAN="$PREFIX/share/man/man1/resnet.1"
expect 0 "the man page renders without warnings" bash -c "groff -man -Tutf8 -ww -z '$MAN' 2>&1 | (! grep .)"
man_text=$(MANWIDTH=200 man -l "$MAN" 2>/dev/null | sed 's/‐/-/g')
missing=0
for cmd in $("$PREFIX/bin/resnet" --help | sed -n 's/^  \([a-z]\+\)  .*/\1/p'); do
    [ "$cmd" = manpage ] || [ "$cmd" = completion ] && continue
    grep -q "^   $cmd\$" <<<"$man_text" || { bad "man page: no section for '$cmd'"; missing=1; }
    for flag in $("$PREFIX/bin/resnet" "$cmd" --help | sed -n 's/^  \(--[a-z0-9-]*\).*/\1/p'); do
        grep -q -- "^ *$flag\b" <<<"$man_text" || { bad "man page: '$cmd' lacks $flag"; missing=1; }
    done
done
[ $missing -eq 0 ] && ok

COMP="$PREFIX/share/bash-completion/completions/resnet"
complete_words() { # words... -> what the completion offers for the last word (under set -u, as some
    # users' shells run: an unset variable of the script had failed there)
    bash -c 'set -u; source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _resnet; echo "${COMPREPLY[*]}"' \
        _ "$COMP" "$@"
}
[ "$(complete_words resnet exp)" = "export" ] && ok \
    || bad "completion of 'resnet exp': '$(complete_words resnet exp)'"
[ "$(complete_words resnet export --fol)" = "--fold-bn" ] && ok \
    || bad "completion of 'resnet export --fol': '$(complete_words resnet export --fol)'"
[ "$(complete_words resnet train --arch wide)" = "wide_resnet50_2 wide_resnet101_2" ] \
    && ok \
    || bad "completion of '--arch wide': '$(complete_words resnet train --arch wide)'"
[ "$(complete_words resnet info --st)" = "--stem" ] && ok \
    || bad "completion of 'resnet info --st': '$(complete_words resnet info --st)'"
# the shell after completion (a second, generic branch had shadowed it), help and its commands,
# auto only where the command takes it, the values of flags with a fixed list
check_completion() { # expected words...
    local want=$1
    shift
    [ "$(complete_words "$@")" = "$want" ] && ok || bad "completion of '$*': '$(complete_words "$@")', expected '$want'"
}
check_completion "bash --help" resnet completion ""
check_completion "help" resnet he
check_completion "train" resnet help tr
check_completion "auto" resnet eval --arch a
check_completion "" resnet init --arch a
check_completion "fashion-mnist folder folder-gray" resnet eval --dataset f
check_completion "imagenet" resnet export --dataset i
check_completion "fp32 bf16" resnet train --precision ""
check_completion "auto fp32 bf16 int8" resnet predict --precision ""
check_completion "minmax" resnet quantize --method mi
# every word offered for a flag's value is one its --help names
unnamed=0
for cmd in $("$PREFIX/bin/resnet" --help | sed -n 's/^  \([a-z]\+\)  .*/\1/p'); do
    help=$("$PREFIX/bin/resnet" "$cmd" --help)
    for flag in $(sed -n 's/^  \(--[a-z0-9-]*\) VALUE.*/\1/p' <<<"$help"); do
        [ "$flag" = --arch ] && continue
        line=$(grep -- "^  $flag " <<<"$help")
        for w in $(complete_words resnet "$cmd" "$flag" ""); do
            [ -e "$w" ] && continue # file names
            grep -qF -- "$w" <<<"$line" || { bad "completion offers '$w' for $cmd $flag, which its --help does not name"; unnamed=1; }
        done
    done
done
[ $unnamed -eq 0 ] && ok

# ---- staged install and uninstall -----------------------------------------------------------------
expect 0 "make install DESTDIR=stage PREFIX=/usr" make -s install BUILD="$BUILD" DESTDIR="$TMP/stage" PREFIX=/usr
grep -q '^prefix=/usr$' "$TMP/stage/usr/lib/pkgconfig/resnet.pc" && ok \
    || bad "staged resnet.pc: $(grep '^prefix' "$TMP/stage/usr/lib/pkgconfig/resnet.pc")"
expect 0 "make uninstall" make -s uninstall BUILD="$BUILD" PREFIX="$PREFIX"
left=$(find "$PREFIX" -type f -o -type l)
[ -z "$left" ] && ok || bad "left after uninstall: $left"

echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
