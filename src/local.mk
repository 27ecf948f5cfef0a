## The library: libcymemtrack.so, preloaded or linked, and the pieces tests link directly.

include_HEADERS = src/cymemtrack.h

# The data structures, free of any interposition, so that unit tests can link them.
noinst_LTLIBRARIES += libcmtcore.la
libcmtcore_la_SOURCES = \
	src/cmt.h \
	src/diag.c \
	src/rawmem.c \
	src/table.c
libcmtcore_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden

lib_LTLIBRARIES += libcymemtrack.la
libcymemtrack_la_SOURCES = \
	src/api.c \
	src/bulk.c \
	src/config.c \
	src/hooks.c \
	src/lifecycle.c \
	src/scope.c \
	src/thread.c \
	src/totals.c
# -fvisibility=hidden: only what CMT_EXPORT marks (the malloc family and cmt_* API) is seen.
# -ftls-model: every TLS access is initial-exec, so none allocates.
libcymemtrack_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden -ftls-model=initial-exec
libcymemtrack_la_LIBADD = libcmtcore.la
libcymemtrack_la_LDFLAGS = -avoid-version -no-undefined -Wl,-z,nodelete

# The API as no-ops, for programs that run with or without the preload (see cymemtrack(3)).
lib_LTLIBRARIES += libcymemtrack-api.la
libcymemtrack_api_la_SOURCES = src/api-noop.c
libcymemtrack_api_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden
libcymemtrack_api_la_LDFLAGS = -version-info 0:0:0 -no-undefined
