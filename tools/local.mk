## tools: rules for this part of the tree (see Makefile.am).

# Every stage of cymem-report (read, symbolize, merge, suppress, render) as one convenience
# library, linked by the program and by the tests, which drive each stage on processes they
# build in memory.
noinst_LTLIBRARIES += tools/libcmtreport.la
tools_libcmtreport_la_SOURCES = \
	tools/report.h \
	tools/render.h \
	tools/diag.c tools/diag.h \
	tools/reader.c \
	tools/symbolize.c \
	tools/merge.c \
	tools/suppress.c \
	tools/render-text.c \
	tools/render-json.c
tools_libcmtreport_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tools $(LIBDW_CFLAGS)
tools_libcmtreport_la_LIBADD = $(LIBDW_LIBS)

bin_PROGRAMS += tools/cymem-report
tools_cymem_report_SOURCES = tools/main.c
tools_cymem_report_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tools $(LIBDW_CFLAGS)
tools_cymem_report_LDADD = tools/libcmtreport.la

# The wrapper: a C program rather than a script, so that it can pass a signal death on
# exactly and tell "not found" from "not executable" the way a shell does.
bin_PROGRAMS += tools/cymemtrack
tools_cymemtrack_SOURCES = tools/cymemtrack.c tools/diag.c tools/diag.h
tools_cymemtrack_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tools \
	-DCMT_LIBDIR='"$(libdir)"' -DCMT_BINDIR='"$(bindir)"'

# The JSON Schema of `cymem-report --json`, documented in cymem-report(1).
dist_pkgdata_DATA = tools/cymem-report.schema.json
