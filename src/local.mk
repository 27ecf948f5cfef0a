## The library: libcymemtrack.so, preloaded or linked, and the pieces tests link directly.

include_HEADERS = src/cymemtrack.h

# The data structures, free of any interposition, so that unit tests can link them.
noinst_LTLIBRARIES += libcmtcore.la
libcmtcore_la_SOURCES = \
	src/badfree.c \
	src/cmt.h \
	src/config.c \
	src/diag.c \
	src/parse-size.h \
	src/rawmem.c \
	src/stack.c \
	src/stackcount.c \
	src/table.c
libcmtcore_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden
# Stack capture (stack.c) uses libunwind when configure found it.
libcmtcore_la_CPPFLAGS = $(AM_CPPFLAGS) $(LIBUNWIND_CFLAGS)
libcmtcore_la_LIBADD = $(LIBUNWIND_LIBS)

# Entry hooks for func: scopes (funchook.c and its stubs; elfsyms.c finds the functions): a
# library of their own, linked by the shim and by the suite that hooks a plain program.
noinst_LTLIBRARIES += libcmtfunchook.la
libcmtfunchook_la_SOURCES = src/elfsyms.c src/funchook.c src/funchook-stub.S
libcmtfunchook_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden -ftls-model=initial-exec
libcmtfunchook_la_LIBADD = $(ZYDIS_LIBS)

lib_LTLIBRARIES += libcymemtrack.la
libcymemtrack_la_SOURCES = \
	src/api.c \
	src/bulk.c \
	src/ending.c \
	src/envscope.c \
	src/hooks.c \
	src/lifecycle.c \
	src/report.c \
	src/scope.c \
	src/thread.c \
	src/timeline.c \
	src/totals.c \
	src/unwind-pipe.c \
	src/young.c
# -fvisibility=hidden: only what CMT_EXPORT marks (the malloc family and cmt_* API) is seen.
# -ftls-model: every TLS access is initial-exec, so none allocates.
libcymemtrack_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden -ftls-model=initial-exec
libcymemtrack_la_LIBADD = libcmtcore.la
libcymemtrack_la_LIBADD += libcmtfunchook.la
libcymemtrack_la_LDFLAGS = -avoid-version -no-undefined -Wl,-z,nodelete

# The API as no-ops, for programs that run with or without the preload (see cymemtrack(3)).
lib_LTLIBRARIES += libcymemtrack-api.la
libcymemtrack_api_la_SOURCES = src/api-noop.c
libcymemtrack_api_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden
libcymemtrack_api_la_LDFLAGS = -version-info 0:0:0 -no-undefined
