/*
 * harness.h — what every test suite shares: running a program under the library just built
 * (never an installed copy), capturing its exit status and output, and the Check main loop.
 */
#ifndef CMT_TEST_HARNESS_H
#define CMT_TEST_HARNESS_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>

/* The outcome of one run. */
struct cmt_run {
    int exit_code;      /* the program's exit status, or -1 when a signal ended it */
    int signal;         /* the signal that ended it, or 0 */
    char *out;          /* everything it wrote on stdout, NUL-terminated */
    size_t out_len;
    char *err;          /* everything it wrote on stderr, NUL-terminated */
    size_t err_len;
    char dir[256];      /* the fresh directory it ran in; report files land here */
};

/* The library under test: $(abs_top_builddir)/.libs/libcymemtrack.so. */
const char *cmt_test_library(void);
/* A test program built in tests/progs/. */
const char *cmt_test_prog(const char *name);
/* Whether the library under test captures stacks: false in a build configured
 * --without-libunwind, where every leak and bad free has stack 0 and a report no STACK
 * record. Tests that look at stacks expect exactly that there. */
bool cmt_test_have_stacks(void);

/* Runs argv in a fresh temporary directory with stdin from /dev/null. When preload is true,
 * the library under test is prepended to LD_PRELOAD. extra_env is NULL or a NULL-terminated
 * list of "NAME=VALUE" strings added to the environment ("NAME=" alone removes NAME).
 * Aborts the test when the program cannot be started at all. */
void cmt_run(struct cmt_run *r, int preload, char *const argv[], char *const extra_env[]);
/* Removes the run's directory and frees its buffers. */
void cmt_run_free(struct cmt_run *r);

/* Counts the lines of text that start with prefix. */
int cmt_count_lines(const char *text, const char *prefix);
/* Finds "key=NUMBER" in text and returns NUMBER; fails the test when absent. */
unsigned long long cmt_field(const char *text, const char *key);

/* For suites that must run inside a preloaded process: re-executes the test binary with the
 * library under test preloaded, unless it already is. Call first thing in main. */
void cmt_reexec_preloaded(char **argv);

/* A scratch directory for one test: a fixture's setup makes it ($TMPDIR/cmt-TAG.XXXXXX),
 * its teardown removes it with everything in it. */
void cmt_scratch_setup(const char *tag);
void cmt_scratch_teardown(void);
const char *cmt_scratch_dir(void);
/* dir/name in the scratch directory, in one of a few rotating buffers. */
const char *cmt_scratch_path(const char *name);
/* Writes text to path, failing the test when it cannot. */
void cmt_write_text(const char *path, const char *text);
/* The whole file, NUL-terminated and malloc'd; NULL when it cannot be opened. */
char *cmt_read_text(const char *path);

/* tests/stats-delta.c, for suites linked with the cymemtrack API and run under the preload:
 * the change in each process total (peak: its value now) since the last snap. */
struct cmt_process_stats;
void cmt_stats_snap(void);
struct cmt_process_stats cmt_stats_delta(void);

/* Runs the suite with CK_FORK on and Check's summary printed; returns the exit status. */
int cmt_run_suite(Suite *s);

#endif
