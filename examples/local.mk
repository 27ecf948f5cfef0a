## examples: small programs a newcomer reads first. request-loop is the README demo.

noinst_PROGRAMS += examples/request-loop
examples_request_loop_SOURCES = examples/request-loop.c
# -g: the demo's report shows file:line; -O0 -fno-builtin: its leaks stay as written.
examples_request_loop_CFLAGS = $(AM_CFLAGS) -g -O0 -fno-builtin
examples_request_loop_LDADD = libcymemtrack-api.la
