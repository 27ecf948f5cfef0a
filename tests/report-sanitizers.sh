#!/bin/sh
# report-sanitizers.sh — cymem-report on real report files, under valgrind (memcheck: any
# invalid access, uninitialized use or leak fails) and as built with AddressSanitizer +
# UndefinedBehaviorSanitizer (cymem-report's sources compiled again with -fsanitize=address,
# undefined into BUILDDIR/tests/asan/cymem-report, again only when a source changed). The
# reports come from the test programs run under the
# library just built: a fork family, an exec chain, a crash inside a scope, bad frees, 1024
# stacks; every view (text, --json, --folded, --html) and the filters run on them, and so do
# a file cut short and a corrupt one. Run by `make check-sanitizers` and by CI.
#
#   tests/report-sanitizers.sh SRCDIR BUILDDIR
#
# Exits 1 on any finding, printing the tool's report; a tool that is missing is skipped with
# a line saying so, and 77 when both are. Takes about a minute on two cores (the ASan build
# is most of it the first time).
set -u
srcdir=$(cd "${1:?usage: $0 SRCDIR BUILDDIR}" && pwd)
builddir=$(cd "${2:?usage: $0 SRCDIR BUILDDIR}" && pwd)
report=$builddir/tools/cymem-report
progs=$builddir/tests/progs
lib=$builddir/.libs/libcymemtrack.so
for f in "$report" "$lib" "$progs/fault_prog" "$progs/badfree_prog" "$progs/report_prog"; do
  [ -e "$f" ] || { echo "sanitizers: $f is missing (make check builds it)"; exit 2; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/cmt-sanitizers.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT INT TERM
mkdir "$work/in"

# ---- real reports ----------------------------------------------------------------------
track() {
  # The subshell waits (": " after the program), so that the shell's note about a program
  # that crashes on purpose goes to /dev/null too.
  (cd "$work/in" && env -u CYMEMTRACK_STACK_DEPTH -u CYMEMTRACK_SCOPES -u CYMEMTRACK_QUARANTINE \
     CYMEMTRACK_OUTPUT="$work/in/" LD_PRELOAD="$lib" "$@"; :) >/dev/null 2>&1
}
track "$progs/report_prog" fork 0
track "$progs/report_prog" exec /bin/true
track "$progs/fault_prog" segv-scope
track "$progs/badfree_prog"
mkdir "$work/fan"
(cd "$work/fan" && env -u CYMEMTRACK_STACK_DEPTH CYMEMTRACK_OUTPUT="$work/fan/" \
   LD_PRELOAD="$lib" "$progs/fault_prog" fan 0) >/dev/null 2>&1
set -- "$work"/in/*.cmt
[ $# -ge 6 ] || { echo "sanitizers: expected at least 6 report files, got $#"; exit 2; }
fan=$(ls "$work"/fan/*.cmt)
badfree=$(ls "$work"/in/cymemtrack.badfree_prog.*.cmt)
head -c 700 "$badfree" > "$work/cut.cmt"
cp "$badfree" "$work/corrupt.cmt"
printf '\377\377\377\177' | dd of="$work/corrupt.cmt" bs=1 seek=20 conv=notrunc 2>/dev/null
: > "$work/empty.cmt"
printf 'leak:main\nscope:global\n' > "$work/supp"
printf 'leak:main\nleek:typo\n' > "$work/bad.supp"

# The runs, one a line: cymem-report's options ("text" for none) and the files. The report
# with 1024 stacks is left to ASan: valgrind takes most of a minute to symbolize it.
runs() {
  all=$(echo "$work"/in/*.cmt)
  echo "text $all"
  echo "--json $all"
  echo "--folded $all"
  echo "--folded=allocated $all"
  echo "--html - $all"
  echo "--top 1 --min-bytes 1K --scope c* --suppressions $work/supp --fail-on-leak $all"
  if [ "$1" = all ]; then
    echo "text $fan"
    echo "--json $fan"
  fi
  echo "text $work/cut.cmt"
  echo "--json $work/corrupt.cmt"
  echo "text $work/empty.cmt"
  echo "--suppressions $work/bad.supp $badfree"
  echo "--top many $badfree"
}

# under NAME COMMAND...: every run with COMMAND in front of the options. A status of 99 (the
# tools' exit code for a finding) or a death by signal is a finding: its log is shown.
under() {
  name=$1
  shift
  runs "$heavy" > "$work/runs"
  while read -r opts; do
    case $opts in text\ *) opts=${opts#text } ;; esac
    n=$(($(wc -l < "$work/status") + 1))
    # The options are meant to split, but not to glob ("--scope c*").
    set -f
    # shellcheck disable=SC2086
    "$@" $opts > "$work/out" 2> "$work/log.$n" < /dev/null
    status=$?
    set +f
    echo "$status $name: cymem-report $opts" >> "$work/status"
    if [ "$status" -eq 99 ] || [ "$status" -gt 128 ]; then
      echo "sanitizers: $name: cymem-report $opts: FINDING (status $status)"
      head -60 "$work/log.$n"
    fi
  done < "$work/runs"
}

tools=0
: > "$work/status"
if command -v valgrind >/dev/null 2>&1; then
  tools=$((tools + 1))
  heavy=light
  under valgrind valgrind -q --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite,indirect,possible "$report"
  echo "sanitizers: valgrind: $(wc -l < "$work/status") runs"
else
  echo "sanitizers: valgrind not found: skipped"
fi

# The ASan + UBSan build of cymem-report: its sources, as the build's Makefile lists them,
# compiled straight into one program (no configure: the source tree may be configured in
# place), again only when a source is newer than the program.
asan=$builddir/tests/asan
cc=${SANITIZE_CC:-${CC:-cc}}
flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
mkvar() {   # the value of a variable of the build's Makefile, continuation lines joined
  awk -v n="$1" '$0 ~ "^" n " = " { on = 1; sub("^" n " = ", "") }
                 on { more = sub(/\\$/, ""); printf "%s ", $0; if (!more) exit }' "$builddir/Makefile"
}
sources=
for f in $(mkvar tools_libcmtreport_la_SOURCES) $(mkvar tools_cymem_report_SOURCES); do
  case $f in *.c) sources="$sources $srcdir/$f" ;; esac
done
for f in $(mkvar nodist_tools_libcmtreport_la_SOURCES); do
  case $f in *.c) sources="$sources $builddir/$f" ;; esac
done
printf 'int main(void) { return 0; }\n' > "$work/probe.c"
if [ -z "$sources" ]; then
  echo "sanitizers: no sources of cymem-report in $builddir/Makefile"; exit 2
elif ! $cc $flags "$work/probe.c" -o "$work/probe" >/dev/null 2>&1; then
  echo "sanitizers: $cc cannot build with $flags: ASan/UBSan skipped"
else
  tools=$((tools + 1))
  mkdir -p "$asan"
  # shellcheck disable=SC2086
  if [ ! -x "$asan/cymem-report" ] ||
     [ -n "$(find $sources "$srcdir"/tools/*.h "$builddir/config.h" -newer "$asan/cymem-report")" ]; then
    # shellcheck disable=SC2086
    $cc $flags -DHAVE_CONFIG_H -I"$builddir" -I"$builddir/tools" -I"$srcdir/src" \
      -I"$srcdir/tools" $(mkvar LIBDW_CFLAGS) $sources -o "$asan/cymem-report" \
      $(mkvar LIBDW_LIBS) > "$asan/build.log" 2>&1 ||
      { tail -30 "$asan/build.log"; echo "sanitizers: building cymem-report with ASan failed"; exit 1; }
  fi
  before=$(wc -l < "$work/status")
  ASAN_OPTIONS=exitcode=99:detect_leaks=1:abort_on_error=0
  UBSAN_OPTIONS=exitcode=99:halt_on_error=1:print_stacktrace=1
  export ASAN_OPTIONS UBSAN_OPTIONS
  heavy=all
  under asan "$asan/cymem-report"
  echo "sanitizers: asan+ubsan: $(( $(wc -l < "$work/status") - before )) runs"
fi
[ $tools -gt 0 ] || exit 77

ran=$(wc -l < "$work/status")
findings=$(awk '$1 == 99 || $1 > 128' "$work/status" | wc -l)
if [ "$findings" -gt 0 ]; then
  echo "sanitizers: $findings finding(s) in $ran runs (their output is above)"
  exit 1
fi
echo "sanitizers: $ran runs, no finding"
