#!/bin/sh
# startup-oom.sh — a program started under an address-space limit so tight that the tracker
# finds no memory at start must still run: for each limit from where the dynamic loader
# itself fails to where everything fits, a tracked /bin/true may fail as it would untracked,
# but never dies of a signal. (The tracker once dereferenced the "global" scope's name
# record that its first, failed allocation had not made.) LIB overrides the library.
lib=${LIB:-$PWD/.libs/libcymemtrack.so}
[ -f "$lib" ] || { echo "startup-oom: $lib is not built"; exit 99; }
killed=0 ran=0 v=2000
while [ $v -le 40000 ]; do
  (ulimit -v $v && LD_PRELOAD=$lib exec /bin/true) 2>/dev/null
  rc=$?
  if [ $rc -ge 128 ]; then
    echo "startup-oom: under ulimit -v $v, killed by signal $((rc - 128))"
    killed=$((killed + 1))
  fi
  [ $rc -eq 0 ] && ran=$((ran + 1))
  v=$((v + 100))
done
echo "startup-oom: ulimit -v 2000 to 40000 KiB by 100: $ran runs completed, $killed killed"
[ $killed -eq 0 ] && [ $ran -gt 0 ]
