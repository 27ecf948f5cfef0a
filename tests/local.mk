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
libcmttest_a_SOURCES = tests/harness.c tests/harness.h
libcmttest_a_CPPFLAGS = $(TEST_CPPFLAGS)
libcmttest_a_CFLAGS = $(TEST_CFLAGS)

check_PROGRAMS += tests/check_table
tests_check_table_SOURCES = tests/check_table.c
tests_check_table_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_table_CFLAGS = $(TEST_CFLAGS)
tests_check_table_LDADD = $(TEST_LDADD) libcmtcore.la

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

TESTS += $(check_PROGRAMS)
# Suites that run programs under the preload need the library built first.
$(check_PROGRAMS): libcymemtrack.la
endif
