#!/bin/sh
# run-fuzz.sh — a short libFuzzer session on the report reader (tests/fuzz/fuzz_reader.c),
# built from the sources with clang and AddressSanitizer + UndefinedBehaviorSanitizer, seeded
# from tests/fuzz/corpus/ (copied: the committed corpus is never changed by a run).
#
#   tests/fuzz/run-fuzz.sh [SECONDS]   fuzz for SECONDS (default 60); exits 1 on any finding,
#                                      keeping the input as ./fuzz-reader-crash-* in the
#                                      current directory
#   tests/fuzz/run-fuzz.sh --seeds     regenerate the committed seed corpus with make-seeds.c
#
# Exits 0 with a "skipped" line where clang or its fuzzer runtime (Debian: clang,
# libclang-rt-dev) is missing, so that it never fails a machine for lack of a tool.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cc=${CLANG:-clang}
work=$(mktemp -d "${TMPDIR:-/tmp}/cmt-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM

if [ "${1:-}" = --seeds ]; then
  ${CC:-cc} -O1 -I"$top/src" -I"$top/tests" "$here/make-seeds.c" "$top/tests/report-builder.c" \
    -o "$work/make-seeds" && rm -f "$here"/corpus/*.seed && "$work/make-seeds" "$here/corpus" &&
    ls "$here/corpus"
  exit
fi
secs=${1:-60}

skip() { echo "fuzz: $*: skipped"; exit 0; }
command -v "$cc" >/dev/null 2>&1 || skip "$cc not found"
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\n%s\n' \
  'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' \
  > "$work/probe.c"
"$cc" -fsanitize=fuzzer,address "$work/probe.c" -o "$work/probe" >/dev/null 2>&1 ||
  skip "$cc cannot build a libFuzzer target (Debian: libclang-rt-dev)"

"$cc" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -Wall -Wextra -I"$top/src" -I"$top/tools" \
  "$here/fuzz_reader.c" "$top/tools/reader.c" "$top/tools/diag.c" -o "$work/fuzz_reader" ||
  { echo "fuzz: building the fuzz target failed"; exit 1; }

mkdir "$work/corpus" && cp "$here"/corpus/* "$work/corpus/"
echo "fuzz: the report reader for ${secs}s, from $(ls "$work/corpus" | wc -l) seeds"
# -max_len: real reports grow with distinct stacks, but every check in the reader is reached
# by small files; 16 KiB keeps the executions fast.
"$work/fuzz_reader" -max_total_time="$secs" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
  -dict="$here/reader.dict" -artifact_prefix=./fuzz-reader- -print_final_stats=1 \
  "$work/corpus" > "$work/log" 2>&1
status=$?
grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+.*DONE' "$work/log"
if [ $status -ne 0 ]; then
  tail -40 "$work/log"
  echo "fuzz: the reader broke its contract or crashed (input kept as ./fuzz-reader-*)"
  exit 1
fi
echo "fuzz: no finding in ${secs}s, corpus grew to $(ls "$work/corpus" | wc -l) inputs"
