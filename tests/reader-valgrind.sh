#!/bin/sh
# reader-valgrind.sh — runs the reader's suite (tests/check_reader) under valgrind, in
# one process (CK_FORK=no) so that the leak check sees every allocation the reader made:
# any invalid read or write, or any leak, fails it. Skipped (77) where valgrind is missing.
command -v valgrind >/dev/null 2>&1 || { echo "valgrind not found: skipped"; exit 77; }
# valgrind runs the suite some 30 times slower; on a busy machine Check's per-test timeouts
# would fire long before anything is wrong.
CK_TIMEOUT_MULTIPLIER=30
export CK_TIMEOUT_MULTIPLIER
CK_FORK=no exec ./libtool --mode=execute valgrind -q --error-exitcode=1 --leak-check=full \
  --errors-for-leak-kinds=definite,indirect,possible tests/check_reader
