## Check suites, one per module or capability, and the programs they run under the preload.

if HAVE_CHECK
# Every suite gets the shared harness; the library under test is the one just built.
TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests \
	-DCMT_TEST_LIBRARY='"$(abs_top_builddir)/.libs/libcymemtrack.so"' \
	-DCMT_TEST_PROGS='"$(abs_top_builddir)/tests/progs"'
# Tests call malloc and free for their effect: the compiler must not fold them away.
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -fno-builtin
TEST_LDADD = libcmttest.a $(CHECK_LIBS)

noinst_LIBRARIES = libcmttest.a
libcmttest_a_SOURCES = tests/harness.c tests/harness.h tests/stats-delta.c
libcmttest_a_CPPFLAGS = $(TEST_CPPFLAGS)
libcmttest_a_CFLAGS = $(TEST_CFLAGS)

check_PROGRAMS += tests/check_table
tests_check_table_SOURCES = tests/check_table.c
tests_check_table_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_table_CFLAGS = $(TEST_CFLAGS)
tests_check_table_LDADD = $(TEST_LDADD) libcmtcore.la

# Stack capture, linked in; -export-dynamic so that dladdr names the suite's own frames.
check_PROGRAMS += tests/check_stack
tests_check_stack_SOURCES = tests/check_stack.c
tests_check_stack_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_stack_CFLAGS = $(TEST_CFLAGS) -pthread
tests_check_stack_LDFLAGS = -export-dynamic
tests_check_stack_LDADD = $(TEST_LDADD) libcmtcore.la -ldl -lpthread

check_PROGRAMS += tests/check_malloc
tests_check_malloc_SOURCES = tests/check_malloc.c
tests_check_malloc_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_malloc_CFLAGS = $(TEST_CFLAGS)
# The suite runs under the preload and asks the tracker through the API, linked the way a
# user's program links it: the preloaded library's definitions win over the no-ops.
tests_check_malloc_LDADD = $(TEST_LDADD) libcymemtrack-api.la

check_PROGRAMS += tests/check_scope
tests_check_scope_SOURCES = tests/check_scope.c
tests_check_scope_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_scope_CFLAGS = $(TEST_CFLAGS) -pthread
tests_check_scope_LDADD = $(TEST_LDADD) libcymemtrack-api.la -lpthread
EXTRA_tests_check_scope_DEPENDENCIES = tests/progs/pool-calls$(EXEEXT)
EXTRA_PROGRAMS += tests/progs/pool-calls
tests_progs_pool_calls_SOURCES = tests/progs/pool-calls.c
tests_progs_pool_calls_LDADD = libcymemtrack-api.la
# A real binary (rpath to the build tree), not libtool's wrapper script.
tests_progs_pool_calls_LDFLAGS = -no-install
CLEANFILES += tests/progs/pool-calls$(EXEEXT)
# The quarantine's budget and eviction, seen through a scope allocator of the program's own.
EXTRA_tests_check_scope_DEPENDENCIES += tests/progs/bulk_quarantine$(EXEEXT)
EXTRA_PROGRAMS += tests/progs/bulk_quarantine
tests_progs_bulk_quarantine_SOURCES = tests/progs/bulk_quarantine.c
tests_progs_bulk_quarantine_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_progs_bulk_quarantine_LDADD = libcymemtrack-api.la
tests_progs_bulk_quarantine_LDFLAGS = -no-install
CLEANFILES += tests/progs/bulk_quarantine$(EXEEXT)

# cmttotals.so: preloaded after the tracker into real programs, it writes each process's
# totals at exit (tests/progs/totals.c). A module, not a program, so it is no test itself.
check_LTLIBRARIES = tests/progs/cmttotals.la
tests_progs_cmttotals_la_SOURCES = tests/progs/totals.c
tests_progs_cmttotals_la_CPPFLAGS = $(AM_CPPFLAGS)
tests_progs_cmttotals_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
CMT_TOTALS_CPPFLAGS = \
	-DCMT_TOTALS_SO='"$(abs_top_builddir)/tests/progs/.libs/cmttotals.so"' \
	-DCMT_JEMALLOC_SO='"$(JEMALLOC_SO)"'

check_PROGRAMS += tests/check_compat
tests_check_compat_SOURCES = tests/check_compat.c
tests_check_compat_CPPFLAGS = $(TEST_CPPFLAGS) $(CMT_TOTALS_CPPFLAGS)
tests_check_compat_CFLAGS = $(TEST_CFLAGS)
tests_check_compat_LDADD = $(TEST_LDADD)

# The young slots: blocks of a single-threaded process kept out of the table.
check_PROGRAMS += tests/check_young
tests_check_young_SOURCES = tests/check_young.c
tests_check_young_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_young_CFLAGS = $(TEST_CFLAGS) -pthread
tests_check_young_LDADD = $(TEST_LDADD) libcymemtrack-api.la -lpthread

check_PROGRAMS += tests/check_threads
tests_check_threads_SOURCES = tests/check_threads.c
tests_check_threads_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_threads_CFLAGS = $(TEST_CFLAGS) -pthread
tests_check_threads_LDADD = $(TEST_LDADD) libcymemtrack-api.la -lpthread

check_PROGRAMS += tests/check_fork
tests_check_fork_SOURCES = tests/check_fork.c
tests_check_fork_CPPFLAGS = $(TEST_CPPFLAGS) $(CMT_TOTALS_CPPFLAGS)
tests_check_fork_CFLAGS = $(TEST_CFLAGS) -pthread
tests_check_fork_LDADD = $(TEST_LDADD) libcymemtrack-api.la -lpthread

# Allocations per (scope, stack): src/stackcount.c linked in and driven directly, then
# stackcount_prog (threads, a thousand stacks, a fork) under the preload, its reports read by
# the tools' reader.
EXTRA_PROGRAMS += tests/progs/stackcount_prog
tests_progs_stackcount_prog_SOURCES = tests/progs/stackcount_prog.c
tests_progs_stackcount_prog_CFLAGS = $(AM_CFLAGS) -fno-builtin -pthread
tests_progs_stackcount_prog_LDFLAGS = -no-install
tests_progs_stackcount_prog_LDADD = libcymemtrack-api.la -lpthread
CLEANFILES += tests/progs/stackcount_prog$(EXEEXT)
check_PROGRAMS += tests/check_stackcount
tests_check_stackcount_SOURCES = tests/check_stackcount.c
tests_check_stackcount_CPPFLAGS = $(TEST_CPPFLAGS) -I$(top_srcdir)/tools
tests_check_stackcount_CFLAGS = $(TEST_CFLAGS) -pthread
tests_check_stackcount_LDADD = $(TEST_LDADD) tools/libcmtreport.la libcmtcore.la -ldl \
	-lpthread
EXTRA_tests_check_stackcount_DEPENDENCIES = tests/progs/stackcount_prog$(EXEEXT)

# The report reader, on files built byte by byte (tests/report-builder.c), never by the
# library's writer; then the same suite under valgrind, which fails on any overrun or leak.
check_PROGRAMS += tests/check_reader
tests_check_reader_SOURCES = tests/check_reader.c tests/report-builder.c tests/report-builder.h
tests_check_reader_CPPFLAGS = $(TEST_CPPFLAGS) -I$(top_srcdir)/tools
tests_check_reader_CFLAGS = $(TEST_CFLAGS)
tests_check_reader_LDADD = $(TEST_LDADD) tools/libcmtreport.la
TESTS += tests/reader-valgrind.sh
TESTS += tests/startup-oom.sh
EXTRA_DIST += tests/startup-oom.sh
EXTRA_DIST += tests/reader-valgrind.sh tests/fuzz

# cymem-report's stages, the program and the cymemtrack wrapper; golden output in
# tests/golden/. cli-sym and cli-leak are programs it runs, not suites, hence not in
# check_PROGRAMS; -g, for file:line in their stacks.
EXTRA_PROGRAMS += tests/progs/cli-sym tests/progs/cli-leak tests/progs/cli-inline
tests_progs_cli_sym_SOURCES = tests/progs/cli-sym.c
tests_progs_cli_sym_CFLAGS = $(AM_CFLAGS) -g
tests_progs_cli_leak_SOURCES = tests/progs/cli-leak.c
tests_progs_cli_leak_CFLAGS = $(AM_CFLAGS) -g
tests_progs_cli_inline_SOURCES = tests/progs/cli-inline.c
# -O2: the inlining under test; -fno-builtin: malloc stays a call.
tests_progs_cli_inline_CFLAGS = $(AM_CFLAGS) -g -O2 -fno-builtin
CLEANFILES += tests/progs/cli-sym$(EXEEXT) tests/progs/cli-leak$(EXEEXT) \
	tests/progs/cli-inline$(EXEEXT)
check_PROGRAMS += tests/check_cli
tests_check_cli_SOURCES = tests/check_cli.c tests/report-builder.c tests/report-builder.h
tests_check_cli_CPPFLAGS = $(TEST_CPPFLAGS) -I$(top_srcdir)/tools \
	-DCMT_TEST_TOOLS='"$(abs_top_builddir)/tools"' -DCMT_TEST_SRCDIR='"$(abs_top_srcdir)"'
tests_check_cli_CFLAGS = $(TEST_CFLAGS)
tests_check_cli_LDADD = $(TEST_LDADD) tools/libcmtreport.la -lutil
EXTRA_tests_check_cli_DEPENDENCIES = tests/progs/cli-sym$(EXEEXT) tests/progs/cli-leak$(EXEEXT) \
	tests/progs/cli-inline$(EXEEXT) \
	tools/cymem-report$(EXEEXT) tools/cymemtrack$(EXEEXT)
EXTRA_DIST += tests/golden

# --folded, the TIMELINE record and --html; the page is checked in headless Chromium by
# tests/html-browser.py (skipped, with a message, where Chromium is missing). flame leaks
# from known three-frame chains: -g for names, -no-install for a real binary to preload.
EXTRA_PROGRAMS += tests/progs/flame
tests_progs_flame_SOURCES = tests/progs/flame.c
tests_progs_flame_CFLAGS = $(AM_CFLAGS) -g -O0 -fno-builtin
tests_progs_flame_LDFLAGS = -no-install
tests_progs_flame_LDADD = libcymemtrack-api.la
CLEANFILES += tests/progs/flame$(EXEEXT) tests/html-screenshot.png
check_PROGRAMS += tests/check_html
tests_check_html_SOURCES = tests/check_html.c tests/report-builder.c tests/report-builder.h
tests_check_html_CPPFLAGS = $(TEST_CPPFLAGS) -I$(top_srcdir)/tools \
	-DCMT_TEST_TOOLS='"$(abs_top_builddir)/tools"' -DCMT_TEST_SRCDIR='"$(abs_top_srcdir)"' \
	-DCMT_TEST_BUILDDIR='"$(abs_top_builddir)"'
tests_check_html_CFLAGS = $(TEST_CFLAGS)
tests_check_html_LDADD = $(TEST_LDADD) tools/libcmtreport.la
EXTRA_tests_check_html_DEPENDENCIES = tests/progs/flame$(EXEEXT) \
	tests/progs/cli-leak$(EXEEXT) tools/cymem-report$(EXEEXT) tools/cymemtrack$(EXEEXT)
EXTRA_DIST += tests/html-browser.py

# The report file and every ending that writes it: report_prog runs under the preload and
# ends in each way; report_dtor.so is the library it dlopen()s, whose destructor frees.
EXTRA_PROGRAMS += tests/progs/report_prog
tests_progs_report_prog_SOURCES = tests/progs/report_prog.c tests/progs/say.h
tests_progs_report_prog_CFLAGS = $(AM_CFLAGS) -fno-builtin
CLEANFILES += tests/progs/report_prog$(EXEEXT)
check_LTLIBRARIES += tests/progs/report_dtor.la
tests_progs_report_dtor_la_SOURCES = tests/progs/report_dtor.c
tests_progs_report_dtor_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
check_PROGRAMS += tests/check_report
tests_check_report_SOURCES = tests/check_report.c
tests_check_report_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_report_CFLAGS = $(TEST_CFLAGS) -pthread
tests_check_report_LDADD = $(TEST_LDADD) libcmtcore.la -lpthread
EXTRA_tests_check_report_DEPENDENCIES = tests/progs/report_prog$(EXEEXT)

# Entry hooks (src/funchook.c) and the symbol lookup (src/elfsyms.c), linked into a plain
# program, no preload. funchook-cxx throws C++ exceptions through hooked functions;
# funchook-dl.so is dlopen()ed under the loader watch; funchook-bench, run by hand, times a
# hooked call.
if HAVE_ZYDIS
EXTRA_PROGRAMS += tests/progs/funchook-cxx tests/progs/funchook-bench
tests_progs_funchook_cxx_SOURCES = tests/progs/funchook-cxx.cc
tests_progs_funchook_cxx_LDADD = libcmtfunchook.la libcmtcore.la
tests_progs_funchook_bench_SOURCES = tests/progs/funchook-bench.c
tests_progs_funchook_bench_LDADD = libcmtfunchook.la libcmtcore.la
CLEANFILES += tests/progs/funchook-cxx$(EXEEXT) tests/progs/funchook-bench$(EXEEXT)
check_LTLIBRARIES += tests/progs/funchook-dl.la
tests_progs_funchook_dl_la_SOURCES = tests/progs/funchook-dl.c
tests_progs_funchook_dl_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
check_PROGRAMS += tests/check_funchook
tests_check_funchook_SOURCES = tests/check_funchook.c
tests_check_funchook_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_funchook_CFLAGS = $(TEST_CFLAGS) -pthread
tests_check_funchook_LDADD = $(TEST_LDADD) libcmtfunchook.la libcmtcore.la -ldl -lpthread
EXTRA_tests_check_funchook_DEPENDENCIES = tests/progs/funchook-cxx$(EXEEXT) \
	tests/progs/funchook-bench$(EXEEXT)
endif

# Suites that run under the preload leave report files as any program does: into one
# directory of the build tree (a template ending in / names a directory), which clean
# removes, rather than into the build directory.
AM_TESTS_ENVIRONMENT = mkdir -p '$(abs_top_builddir)/tests/reports' && \
	CYMEMTRACK_OUTPUT='$(abs_top_builddir)/tests/reports/' && export CYMEMTRACK_OUTPUT;
clean-local: clean-test-reports
clean-test-reports:
	-rm -rf tests/reports

# CYMEMTRACK_SCOPES on an unchanged program (needs func: hooking, hence Zydis).
if HAVE_ZYDIS
EXTRA_PROGRAMS += tests/progs/envprog tests/progs/ipara
tests_progs_ipara_SOURCES = tests/progs/ipara.c
tests_progs_ipara_CFLAGS = $(AM_CFLAGS) -O2
CLEANFILES += tests/progs/ipara$(EXEEXT)
tests_progs_envprog_SOURCES = tests/progs/envprog.c
# -O2 -fno-builtin: its functions stay real calls, and its allocations stay as written.
tests_progs_envprog_CFLAGS = $(AM_CFLAGS) -g -O2 -fno-builtin -pthread
tests_progs_envprog_LDADD = -lpthread
CLEANFILES += tests/progs/envprog$(EXEEXT)
# func: scopes found on the stack: functions no hook can take (inspect-asm.S), in the program
# and in a module it dlopen()s.
EXTRA_PROGRAMS += tests/progs/inspectprog
tests_progs_inspectprog_SOURCES = tests/progs/inspectprog.c tests/progs/inspect-asm.S
tests_progs_inspectprog_CFLAGS = $(AM_CFLAGS) -g -O2 -fno-builtin -pthread
tests_progs_inspectprog_LDADD = -ldl -lpthread
CLEANFILES += tests/progs/inspectprog$(EXEEXT)
check_LTLIBRARIES += tests/progs/inspect-dl.la
tests_progs_inspect_dl_la_SOURCES = tests/progs/inspect-asm.S
tests_progs_inspect_dl_la_CPPFLAGS = $(AM_CPPFLAGS) -DINSPECT_DL
tests_progs_inspect_dl_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
check_PROGRAMS += tests/check_envscope
tests_check_envscope_SOURCES = tests/check_envscope.c
tests_check_envscope_CPPFLAGS = $(TEST_CPPFLAGS) -I$(top_srcdir)/tools
tests_check_envscope_CFLAGS = $(TEST_CFLAGS)
tests_check_envscope_LDADD = $(TEST_LDADD) tools/libcmtreport.la
EXTRA_tests_check_envscope_DEPENDENCIES = tests/progs/envprog$(EXEEXT) tests/progs/ipara$(EXEEXT) \
	tests/progs/inspectprog$(EXEEXT)
endif

# Faults (check_faults) and bad input (check_badinput, which also feeds broken and huge
# files to the cymem-report program): fault_prog and badfree_prog run under the preload and
# call the API, linked -no-install so that the preload tracks them and not libtool's
# wrapper script. Each suite prints "figures:" lines for tests/RELIABILITY.md.
EXTRA_PROGRAMS += tests/progs/fault_prog tests/progs/badfree_prog
tests_progs_fault_prog_SOURCES = tests/progs/fault_prog.c
tests_progs_fault_prog_CFLAGS = $(AM_CFLAGS) -fno-builtin -pthread
tests_progs_fault_prog_LDFLAGS = -no-install
tests_progs_fault_prog_LDADD = libcymemtrack-api.la -lpthread
tests_progs_badfree_prog_SOURCES = tests/progs/badfree_prog.c tests/progs/say.h
tests_progs_badfree_prog_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_progs_badfree_prog_LDFLAGS = -no-install
tests_progs_badfree_prog_LDADD = libcymemtrack-api.la
CLEANFILES += tests/progs/fault_prog$(EXEEXT) tests/progs/badfree_prog$(EXEEXT)
check_PROGRAMS += tests/check_faults
tests_check_faults_SOURCES = tests/check_faults.c
tests_check_faults_CPPFLAGS = $(TEST_CPPFLAGS) -I$(top_srcdir)/tools
tests_check_faults_CFLAGS = $(TEST_CFLAGS)
tests_check_faults_LDADD = $(TEST_LDADD) tools/libcmtreport.la
EXTRA_tests_check_faults_DEPENDENCIES = tests/progs/fault_prog$(EXEEXT)
check_PROGRAMS += tests/check_badinput
tests_check_badinput_SOURCES = tests/check_badinput.c
tests_check_badinput_CPPFLAGS = $(TEST_CPPFLAGS) -I$(top_srcdir)/tools \
	-DCMT_TEST_TOOLS='"$(abs_top_builddir)/tools"'
tests_check_badinput_CFLAGS = $(TEST_CFLAGS)
tests_check_badinput_LDADD = $(TEST_LDADD) tools/libcmtreport.la
EXTRA_tests_check_badinput_DEPENDENCIES = tests/progs/fault_prog$(EXEEXT) \
	tests/progs/badfree_prog$(EXEEXT) tools/cymem-report$(EXEEXT)

# The tracker's descriptors (libunwind's pipe, src/unwind-pipe.c): fdprog allocates from code
# without unwind tables (nocfi.S), which only libunwind walks.
EXTRA_PROGRAMS += tests/progs/fdprog
tests_progs_fdprog_SOURCES = tests/progs/fdprog.c tests/progs/nocfi.S tests/progs/say.h
tests_progs_fdprog_CFLAGS = $(AM_CFLAGS) -fno-builtin -pthread
tests_progs_fdprog_LDADD = -lpthread
CLEANFILES += tests/progs/fdprog$(EXEEXT)
check_PROGRAMS += tests/check_fds
tests_check_fds_SOURCES = tests/check_fds.c
tests_check_fds_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_fds_CFLAGS = $(TEST_CFLAGS)
tests_check_fds_LDADD = $(TEST_LDADD)
EXTRA_tests_check_fds_DEPENDENCIES = tests/progs/fdprog$(EXEEXT) libcymemtrack.la

# The bootstrap area (issue 4): libtestdlsym.so, preloaded beside the tracker, is a dlsym
# that allocates, as glibc's did before 2.34; bootstrap_prog frees and reallocs the blocks
# the tracker served it. A module, not a program, so it is no test itself.
check_LTLIBRARIES += tests/progs/libtestdlsym.la
tests_progs_libtestdlsym_la_SOURCES = tests/progs/testdlsym.c tests/testdlsym.h
tests_progs_libtestdlsym_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
tests_progs_libtestdlsym_la_LIBADD = -ldl
EXTRA_PROGRAMS += tests/progs/bootstrap_prog
tests_progs_bootstrap_prog_SOURCES = tests/progs/bootstrap_prog.c tests/testdlsym.h
tests_progs_bootstrap_prog_CFLAGS = $(AM_CFLAGS) -fno-builtin
tests_progs_bootstrap_prog_LDADD = libcymemtrack-api.la -ldl
tests_progs_bootstrap_prog_LDFLAGS = -no-install
CLEANFILES += tests/progs/bootstrap_prog$(EXEEXT)
check_PROGRAMS += tests/check_bootstrap
tests_check_bootstrap_SOURCES = tests/check_bootstrap.c
tests_check_bootstrap_CPPFLAGS = $(TEST_CPPFLAGS) -I$(top_srcdir)/tools \
	-DCMT_TESTDLSYM_SO='"$(abs_top_builddir)/tests/progs/.libs/libtestdlsym.so"'
tests_check_bootstrap_CFLAGS = $(TEST_CFLAGS)
tests_check_bootstrap_LDADD = $(TEST_LDADD) tools/libcmtreport.la
EXTRA_tests_check_bootstrap_DEPENDENCIES = tests/progs/bootstrap_prog$(EXEEXT)

# On demand and in CI, not in make check (each takes a minute or more):
# check-sanitizers: cymem-report on real reports under valgrind and ASan+UBSan (a tools-only
#   build in tests/asan); lint: cppcheck and clang-tidy against tests/lint-baseline.txt;
# reliability: the suites, a fuzz run and check-sanitizers, then tests/RELIABILITY.md.
CMT_SANITIZER_PROGS = tools/cymem-report$(EXEEXT) tests/progs/fault_prog$(EXEEXT) \
	tests/progs/badfree_prog$(EXEEXT) tests/progs/report_prog$(EXEEXT) libcymemtrack.la
check-sanitizers: $(CMT_SANITIZER_PROGS)
	$(SHELL) $(srcdir)/tests/report-sanitizers.sh $(abs_top_srcdir) $(abs_top_builddir)
lint:
	$(SHELL) $(srcdir)/tests/lint.sh $(abs_top_srcdir) $(abs_top_builddir)
CMT_RELIABILITY_SUITES = tests/check_compat tests/check_threads tests/check_fork \
	tests/check_report tests/check_faults tests/check_badinput tests/check_envscope \
	tests/check_reader tests/reader-valgrind.sh tests/check_cli
reliability: $(CMT_SANITIZER_PROGS)
	-$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(CMT_RELIABILITY_SUITES)'
	-$(SHELL) $(srcdir)/tests/fuzz/run-fuzz.sh 30 > tests/reliability-fuzz.log 2>&1
	-$(SHELL) $(srcdir)/tests/report-sanitizers.sh $(abs_top_srcdir) $(abs_top_builddir) \
	  > tests/reliability-sanitizers.log 2>&1
	python3 $(srcdir)/tests/reliability-figures --builddir . \
	  --fuzz-log tests/reliability-fuzz.log --sanitizers-log tests/reliability-sanitizers.log \
	  -o $(srcdir)/tests/RELIABILITY.md
	@echo "wrote $(srcdir)/tests/RELIABILITY.md"
clean-local: clean-cmt-reliability
clean-cmt-reliability:
	-rm -rf tests/asan tests/reliability-fuzz.log tests/reliability-sanitizers.log
EXTRA_DIST += tests/report-sanitizers.sh tests/lint.sh tests/lint-baseline.txt \
	tests/reliability-figures tests/RELIABILITY.md

TESTS += $(check_PROGRAMS)
# Suites that run programs under the preload need the library built first.
$(check_PROGRAMS): libcymemtrack.la
endif
