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
	tools/render-json.c \
	tools/render-folded.c \
	tools/render-html.c
# The HTML page's markup, style and script are source files of their own, built into the
# program as C strings (tools/html/embed.sh, sed only), so that the page it writes needs
# nothing from anywhere else.
nodist_tools_libcmtreport_la_SOURCES = tools/html-assets.c
CMT_HTML_ASSETS = $(srcdir)/tools/html/page.html $(srcdir)/tools/html/report.css \
	$(srcdir)/tools/html/report.js
tools/html-assets.c: $(CMT_HTML_ASSETS) $(srcdir)/tools/html/embed.sh
	$(AM_V_GEN)$(MKDIR_P) tools && \
	  $(SHELL) $(srcdir)/tools/html/embed.sh $(CMT_HTML_ASSETS) > $@.tmp && mv $@.tmp $@
CLEANFILES += tools/html-assets.c
EXTRA_DIST += tools/html/page.html tools/html/report.css tools/html/report.js \
	tools/html/embed.sh
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
