## examples: small programs a newcomer reads first. request-loop is the README demo.

noinst_PROGRAMS += examples/request-loop
examples_request_loop_SOURCES = examples/request-loop.c
# -g: the demo's report shows file:line; -fno-builtin: its leaks stay as written.
examples_request_loop_CFLAGS = $(AM_CFLAGS) -g -fno-builtin
examples_request_loop_LDADD = libcymemtrack-api.la
# -no-install: a real binary (with an rpath to the build tree), not libtool's wrapper
# script, so that `make demo` tracks the demo and not a shell.
examples_request_loop_LDFLAGS = -no-install

# make demo: the README's first command ends here. The demo runs under the wrapper with the
# library just built, and the per-scope report is printed.
.PHONY: demo
demo: examples/request-loop libcymemtrack.la tools/cymemtrack tools/cymem-report
	@CYMEMTRACK_LIBRARY=$(abs_top_builddir)/.libs/libcymemtrack.so \
	  $(abs_top_builddir)/tools/cymemtrack $(abs_top_builddir)/examples/request-loop
