## bench: the benchmarks against baseline glibc and the tools people use instead (issue 9).
## `make bench` is the full run (minutes); `make bench-quick` is the short one CI runs. Both
## print the table and write bench/results.json and bench/results.md in the build tree; copy
## the latter over bench/RESULTS.md to refresh the committed results.

# The micro workloads, linked against the no-op API so that they run with or without the
# preload (the scope workloads need the scopes API of cymemtrack.h).
noinst_PROGRAMS += bench/micro
bench_micro_SOURCES = bench/micro.c
bench_micro_LDADD = libcymemtrack-api.la
# -no-install: a real binary, not libtool's wrapper script, so that nothing else runs
# under the preload; -fno-builtin: the loops call malloc and free for their own sake.
bench_micro_LDFLAGS = -no-install
bench_micro_CFLAGS = $(AM_CFLAGS) -O2 -fno-builtin

# glibc's mtrace only starts when the program calls mtrace(); this preloadable module calls
# it. noinst, but shared (-rpath), since it is meant for LD_PRELOAD.
noinst_LTLIBRARIES += bench/libmtracestart.la
bench_libmtracestart_la_SOURCES = bench/mtrace-start.c
bench_libmtracestart_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere

# Two yardsticks for micro pairs (bench/reference.c): a preload that only forwards, and the
# least an exact tracker does per pair. Preloadable like the module above.
noinst_LTLIBRARIES += bench/libref-forward.la bench/libref-floor.la
bench_libref_forward_la_SOURCES = bench/reference.c
bench_libref_forward_la_CFLAGS = $(AM_CFLAGS) -O2
bench_libref_forward_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
bench_libref_floor_la_SOURCES = bench/reference.c
bench_libref_floor_la_CFLAGS = $(AM_CFLAGS) -O2 -DREF_FLOOR
bench_libref_floor_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere

EXTRA_DIST += bench/run bench/README.md bench/RESULTS.md

BENCH_ARGS = --lib $(abs_top_builddir)/.libs/libcymemtrack.so \
	--micro $(abs_top_builddir)/bench/micro \
	--mtrace-start $(abs_top_builddir)/bench/.libs/libmtracestart.so \
	--references $(abs_top_builddir)/bench/.libs \
	--json bench/results.json --markdown bench/results.md

.PHONY: bench bench-quick
bench: bench/micro bench/libmtracestart.la bench/libref-forward.la bench/libref-floor.la \
		libcymemtrack.la
	/usr/bin/python3 $(top_srcdir)/bench/run $(BENCH_ARGS) $(BENCH_FLAGS)
bench-quick: bench/micro bench/libmtracestart.la bench/libref-forward.la \
		bench/libref-floor.la libcymemtrack.la
	/usr/bin/python3 $(top_srcdir)/bench/run --quick $(BENCH_ARGS) $(BENCH_FLAGS)

CLEANFILES += bench/results.json bench/results.md
