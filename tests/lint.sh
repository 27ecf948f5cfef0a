#!/bin/sh
# lint.sh — cppcheck and clang-tidy over src/ and tools/, compared with the committed baseline
# tests/lint-baseline.txt: a finding that is not in the baseline fails, one that has gone is
# only mentioned (and the baseline should then be refreshed). A finding is keyed by file,
# check and message, without line numbers, so that editing a file elsewhere does not turn its
# old findings into new ones; a key that now occurs more often than the baseline says is new.
#
#   tests/lint.sh SRCDIR BUILDDIR            check (make lint; CI)
#   tests/lint.sh SRCDIR BUILDDIR --update   rewrite the baseline from the current findings
#
# BUILDDIR is a configured build directory (for config.h). A tool that is missing is skipped
# with a line saying so (exit 77 when both are). Takes about a minute on two cores; JOBS
# (default: the number of processors) clang-tidy processes run at once.
#
# Reading the baseline: every line is "COUNT<TAB>FILE: CHECK: MESSAGE". Fix a finding, or,
# for a false positive, leave it in the baseline with a note in the commit saying why.
set -u
srcdir=$(cd "${1:?usage: $0 SRCDIR BUILDDIR [--update]}" && pwd)
builddir=$(cd "${2:?usage: $0 SRCDIR BUILDDIR [--update]}" && pwd)
mode=${3:-check}
baseline=$srcdir/tests/lint-baseline.txt
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
work=$(mktemp -d "${TMPDIR:-/tmp}/cmt-lint.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT INT TERM
cd "$srcdir" || exit 2

# What both tools are told about the build: the defines configure and the makefiles give.
defs="-DHAVE_CONFIG_H -D_GNU_SOURCE -DCMT_LIBDIR=\"/usr/lib\" -DCMT_BINDIR=\"/usr/bin\""
incs="-I$builddir -I$builddir/tools -Isrc -Itools"
files=$(ls src/*.c tools/*.c)
: > "$work/found"
tools=0

if command -v cppcheck >/dev/null 2>&1; then
  tools=$((tools + 1))
  # shellcheck disable=SC2086
  cppcheck --quiet --enable=warning,style,performance,portability --std=c11 \
    --inline-suppr $defs $incs --template='{file}: cppcheck-{id}: {message}' $files \
    2> "$work/cppcheck" > /dev/null
  cat "$work/cppcheck" >> "$work/found"
  echo "lint: cppcheck $(cppcheck --version | sed 's/Cppcheck //'): $(wc -l < "$work/cppcheck") findings"
else
  echo "lint: cppcheck not found: skipped"
fi

# clang-analyzer's checks and bugprone's, less the ones that only restate the style this code
# chose (short swappable parameters, reserved-looking names of the C library's own kind,
# assignments in conditions) or that object to every memcpy.
checks='-*,clang-analyzer-*,bugprone-*,-bugprone-easily-swappable-parameters'
checks="$checks,-bugprone-reserved-identifier,-bugprone-narrowing-conversions"
checks="$checks,-bugprone-assignment-in-if-condition"
checks="$checks,-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling"
if command -v clang-tidy >/dev/null 2>&1; then
  tools=$((tools + 1))
  # One process per file, JOBS at a time; only the lines that name a finding are kept.
  # shellcheck disable=SC2086
  printf '%s\n' $files | xargs -P "$jobs" -I{} sh -c \
    'clang-tidy --quiet -checks="$1" "$2" -- -std=gnu11 $3 $4 > "$5/tidy.$(echo "$2" | tr / _)" 2>/dev/null; :' \
    sh "$checks" {} "$defs" "$incs" "$work"
  cat "$work"/tidy.* 2>/dev/null |
    sed -n -E "s#^$srcdir/##; s#^([^:]+):[0-9]+:[0-9]+: (warning|error): (.*) \[([^]]+)\]\$#\1: \4: \3#p" \
    > "$work/tidy"
  cat "$work/tidy" >> "$work/found"
  echo "lint: $(clang-tidy --version | sed -n 's/.*LLVM version //p'): $(wc -l < "$work/tidy") findings"
else
  echo "lint: clang-tidy not found: skipped"
fi
[ $tools -gt 0 ] || exit 77

# Counted keys: "COUNT<TAB>KEY".
sort "$work/found" | uniq -c | sed -E 's/^ *([0-9]+) /\1\t/' > "$work/now"
if [ "$mode" = --update ]; then
  cp "$work/now" "$baseline"
  echo "lint: wrote $(wc -l < "$baseline") keys to $baseline"
  exit 0
fi
awk -F'\t' -v base="$baseline" '
  BEGIN { while ((getline line < base) > 0) { split(line, f, "\t"); old[f[2]] = f[1] } }
  { if ($1 > old[$2] + 0) printf "new: %s%s\n", $2, (old[$2] ? " (" $1 " now, " old[$2] " before)" : "")
    seen[$2] = 1 }
  END { for (k in old) if (!(k in seen)) printf "gone: %s\n", k }' "$work/now" > "$work/diff"
grep '^gone: ' "$work/diff" | sed 's/^/lint: /'
if grep -q '^new: ' "$work/diff"; then
  grep '^new: ' "$work/diff" | sed 's/^/lint: /'
  echo "lint: $(grep -c '^new: ' "$work/diff") new finding(s): fix them, or, if one is a false"
  echo "lint: positive, run tests/lint.sh SRCDIR BUILDDIR --update and say why in the commit"
  exit 1
fi
echo "lint: nothing new against tests/lint-baseline.txt ($(wc -l < "$work/now") keys)"
