/*
 * check_badinput.c — bad input, wherever users can give it. Garbage and out-of-range values in
 * each CYMEMTRACK_* variable (check_envscope has the bad-entry kinds of CYMEMTRACK_SCOPES;
 * here are its limits): exactly one "cymemtrack:" line naming the variable, and the program
 * runs as it would. Invalid, double and stale frees and realloc of pointers that are no live
 * blocks (tests/progs/badfree_prog): exact counts in the report's TOTALS and BADFREE records.
 * Report files that are empty, short, of another format or version, corrupted, cut short or
 * hundreds of MB large, fed to the cymem-report program (check_reader drives the reader on
 * built files in process; check_cli has one corrupt file and built files cut short): status
 * 2 and one error naming the file and the byte offset, or status 0 and one warning for a file
 * cut short; never a crash. Each passing test prints a "figures:" line for
 * tests/RELIABILITY.md.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag.h"
#include "report.h"

#ifndef CMT_TEST_TOOLS
#error "CMT_TEST_TOOLS must name the directory of the built cymem-report"
#endif
#define REPORT CMT_TEST_TOOLS "/cymem-report"

#define LEAK_BLOCKS 3
#define LEAK_BYTES (3000 + 3001 + 3002)

static void figures(const char *test, unsigned programs, uint64_t calls, unsigned bad_inputs)
{
    printf("figures: suite=badinput test=%s programs=%u calls=%llu faults=0 bad_inputs=%u "
           "crashes=0 lost=0\n", test, programs, (unsigned long long)calls, bad_inputs);
    fflush(stdout);
}

/* The one regular file in dir named PREFIX*SUFFIX into path; 0 files gives false, more
 * fail the test. */
static bool find_file(const char *dir, const char *prefix, const char *suffix, char *path,
                      size_t size)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "opendir %s: %s", dir, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || len < sl ||
            strcmp(e->d_name + len - sl, suffix) != 0 || e->d_type == DT_DIR)
            continue;
        snprintf(path, size, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    ck_assert_msg(n <= 1, "expected at most one file %s*%s in %s, found %d", prefix, suffix,
                  dir, n);
    return n == 1;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

static uint64_t leaked_blocks(const struct cmt_process *p)
{
    uint64_t n = 0;
    for (size_t i = 0; i < p->nleaks; i++)
        n += p->leaks[i].blocks;
    return n;
}

/* ---- settings ----------------------------------------------------------------------- */

/* One value of one variable, and what the tracker must make of it. */
struct setting_case {
    const char *var;
    const char *value;          /* NULL: built by make_value() */
    int lines;                  /* "cymemtrack:" lines expected: 1 refused, 0 accepted */
    const char *says;           /* in that line, besides the variable's name */
    int report;                 /* 1: the report is in the run's directory; 0: none */
    const char *prefix;         /* the report's name starts so (NULL: any *.cmt) */
};

#define SD "CYMEMTRACK_STACK_DEPTH"
#define QU "CYMEMTRACK_QUARANTINE"
#define OU "CYMEMTRACK_OUTPUT"
#define SC "CYMEMTRACK_SCOPES"

static const struct setting_case settings[] = {
    /* Garbage and out-of-range values: refused in one line, the default used. */
    { SD, "abc", 1, "expected a number of frames", 1, NULL },
    { SD, "-1", 1, "using 16", 1, NULL },
    { SD, "65", 1, "from 0 to 64", 1, NULL },
    { SD, "1K", 1, "using 16", 1, NULL },
    { SD, "99999999999999999999999", 1, "using 16", 1, NULL },
    { SD, " 8", 1, "using 16", 1, NULL },
    { SD, "8 ", 1, "using 16", 1, NULL },
    { SD, "0x10", 1, "using 16", 1, NULL },
    { SD, "1e3", 1, "using 16", 1, NULL },
    { SD, "\xff\xfe", 1, "using 16", 1, NULL },
    { SD, NULL, 1, "=777", 1, NULL },                          /* 100 000 digits */
    { SD, "1\nfake: a second line", 1, "using 16", 1, NULL },  /* a newline in the value */
    { QU, "-5", 1, "expected a size in bytes", 1, NULL },
    { QU, "abc", 1, "using 16777216", 1, NULL },
    { QU, "2T", 1, "using 16777216", 1, NULL },
    { QU, "1025G", 1, "using 16777216", 1, NULL },
    { QU, "18446744073709551616", 1, "using 16777216", 1, NULL },
    { QU, "16MBx", 1, "using 16777216", 1, NULL },
    { QU, "K", 1, "using 16777216", 1, NULL },
    { QU, "1.5M", 1, "using 16777216", 1, NULL },
    { QU, "16 M", 1, "using 16777216", 1, NULL },
    { OU, "", 1, "expected a file name template", 1, "cymemtrack.fault_prog." },
    { OU, NULL, 1, "expected a file name template", 1, "cymemtrack.fault_prog." },  /* 5000 */
    { OU, NULL, 1, "too long", 0, NULL },           /* 1500 x "%e": expands past PATH_MAX */
    { SC, NULL, 1, "more than 32 entries", 1, NULL },          /* 40 entries */
    { SC, NULL, 1, "entry at position 0", 1, NULL },           /* a 200-byte name */
    { SC, NULL, 1, "over-long argument", 1, NULL },            /* a 300-byte glob */
    { SC, "a=signal:0", 1, "unknown signal", 1, NULL },
    { SC, "a=signal:9", 1, "unknown signal", 1, NULL },
    { SC, "a=signal:65", 1, "unknown signal", 1, NULL },
    { SC, "a=signal:RTMIN+abc", 1, "RTMIN+abc", 1, NULL },
    { SC, "a=signal:32", 1, "cannot handle", 1, NULL },
    { SC, "a=signal:11", 1, "\"11\"", 1, NULL },               /* SIGSEGV: see below */
    { SC, "\xff=thread:x,\xfe", 1, "unknown option", 1, NULL },
    /* Edge values that are fine: nothing said, the setting used. */
    { SD, "0", 0, NULL, 1, NULL },
    { SD, "64", 0, NULL, 1, NULL },
    { SD, "", 0, NULL, 1, NULL },
    { QU, "0", 0, NULL, 1, NULL },
    { QU, "1024G", 0, NULL, 1, NULL },
    { QU, "64KiB", 0, NULL, 1, NULL },
    { QU, "", 0, NULL, 1, NULL },
    { OU, "%", 0, NULL, 1, "%" },
    { OU, "x-%%-%p-%q.cmt", 0, NULL, 1, "x-%-" },
    { SC, ";;;", 0, NULL, 1, NULL },
    { SC, "   ", 0, NULL, 1, NULL },
    { SC, "", 0, NULL, 1, NULL },
};

/* The values too long or too many to write inline, by case index. */
static char *make_value(size_t i)
{
    const struct setting_case *c = &settings[i];
    char *v = calloc(1, 200000);
    ck_assert_ptr_nonnull(v);
    if (strcmp(c->var, SD) == 0) {
        memset(v, '7', 100000);
    } else if (strcmp(c->var, OU) == 0 && c->report) {
        memset(v, 'a', 5000);
    } else if (strcmp(c->var, OU) == 0) {
        for (int k = 0; k < 1500; k++)
            strcat(v, "%e");
    } else if (strstr(c->says, "32 entries")) {
        for (int k = 0; k < 40; k++)
            sprintf(v + strlen(v), "n%d=thread:x;", k);
    } else if (strstr(c->says, "position 0")) {
        memset(v, 'n', 200);
        strcat(v, "=thread:x");
    } else {
        strcpy(v, "a=thread:");
        memset(v + strlen(v), 'g', 300);
    }
    return v;
}

/* Runs `fault_prog basic 0` under the preload with VAR set to exactly value (empty and
 * odd bytes included, hence env(1) rather than the harness's environment list). */
static void run_with_setting(struct cmt_run *r, const char *var, const char *value)
{
    size_t len = strlen(var) + strlen(value) + 2;
    char *assign = malloc(len), preload[PATH_MAX + 16];
    ck_assert_ptr_nonnull(assign);
    snprintf(assign, len, "%s=%s", var, value);
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", cmt_test_library());
    char *argv[] = { "/usr/bin/env", "CYMEMTRACK_OUTPUT=rep.%p.cmt", preload, assign,
                     (char *)cmt_test_prog("fault_prog"), "basic", "0", NULL };
    char *env[] = { "CYMEMTRACK_STACK_DEPTH=", "CYMEMTRACK_QUARANTINE=", "CYMEMTRACK_SCOPES=",
                    "CYMEMTRACK_OUTPUT=", NULL };
    cmt_run(r, 0, argv, env);
    free(assign);
}

START_TEST(each_setting_refuses_garbage_in_one_line)
{
    const struct setting_case *c = &settings[_i];
    char *made = c->value ? NULL : make_value((size_t)_i);
    const char *value = c->value ? c->value : made;
    char shown[64];
    snprintf(shown, sizeof shown, "%.40s%s", value, strlen(value) > 40 ? "..." : "");
    struct cmt_run r;
    run_with_setting(&r, c->var, value);
    ck_assert_msg(r.exit_code == 0 && r.signal == 0 && strcmp(r.out, "leaked=3\n") == 0,
                  "%s=%s: expected the program to run as always (exit 0, \"leaked=3\"), got "
                  "exit %d signal %d, stdout:\n%s", c->var, shown, r.exit_code, r.signal, r.out);
    /* Exactly the lines expected, each whole, each naming the variable. */
    int diags = cmt_count_lines(r.err, "cymemtrack:");
    ck_assert_msg(diags == c->lines && count_lines(r.err) == c->lines,
                  "%s=%s: expected %d line(s) on stderr, each \"cymemtrack: ...%s...\", got:\n%s",
                  c->var, shown, c->lines, c->var, r.err);
    if (c->lines) {
        ck_assert_msg(strstr(r.err, c->var) && strstr(r.err, c->says),
                      "%s=%s: expected the line to name %s and say \"%s\", got:\n%s", c->var,
                      shown, c->var, c->says, r.err);
    }
    char path[PATH_MAX];
    bool have = find_file(r.dir, c->prefix ? c->prefix : "", c->prefix ? "" : ".cmt", path,
                          sizeof path);
    ck_assert_msg(have == (c->report == 1), "%s=%s: expected %s report file in %s", c->var,
                  shown, c->report ? "a" : "no", r.dir);
    uint64_t calls = 0;
    if (have) {
        struct cmt_process p;
        ck_assert_msg(cmt_report_read(path, &p) == 0 && p.complete,
                      "%s=%s: expected %s complete", c->var, shown, path);
        ck_assert_uint_eq(p.totals.live_blocks, LEAK_BLOCKS);
        ck_assert_uint_eq(p.totals.live_bytes, LEAK_BYTES);
        ck_assert_uint_eq(leaked_blocks(&p), LEAK_BLOCKS);
        /* The stack depth asked for, or the default; in a build without stack capture,
         * whatever the setting, none. */
        bool stacks = cmt_test_have_stacks() &&
                      !(strcmp(c->var, SD) == 0 && strcmp(value, "0") == 0);
        if (strcmp(c->var, SD) == 0 || !stacks)
            ck_assert_msg((p.nstacks != 0) == stacks, "%s=%s: expected %s stacks, got %zu",
                          c->var, shown, stacks ? "some" : "no", p.nstacks);
        calls = p.totals.allocations;
        cmt_process_free(&p);
    }
    figures("each_setting_refuses_garbage_in_one_line", 1, calls, (unsigned)c->lines);
    cmt_run_free(&r);
    free(made);
}
END_TEST

/* A signal: window on a signal that reports a fault would return from the fault into the
 * same fault for ever: the program must still die of it. */
START_TEST(signal_scope_on_a_fault_signal_keeps_the_crash)
{
    /* A guard against the endless loop: CPU time, not wall time. */
    struct rlimit cpu = { 3, 5 };
    ck_assert_int_eq(setrlimit(RLIMIT_CPU, &cpu), 0);
    struct cmt_run r;
    char *argv[] = { (char *)cmt_test_prog("fault_prog"), "segv-scope", NULL };
    char *env[] = { "CYMEMTRACK_STACK_DEPTH=", "CYMEMTRACK_QUARANTINE=",
                    "CYMEMTRACK_OUTPUT=rep.%p.cmt", "CYMEMTRACK_SCOPES=w=signal:11", NULL };
    cmt_run(&r, 1, argv, env);
    ck_assert_msg(r.signal == SIGSEGV, "expected death by SIGSEGV, as without the tracker; got "
                  "exit %d signal %d (SIGXCPU %d: it looped on the fault)", r.exit_code,
                  r.signal, SIGXCPU);
    ck_assert_int_eq(cmt_count_lines(r.err, "cymemtrack: CYMEMTRACK_SCOPES:"), 1);
    figures("signal_scope_on_a_fault_signal_keeps_the_crash", 1, 0, 1);
    cmt_run_free(&r);
}
END_TEST

/* ---- bad frees ------------------------------------------------------------------------- */

START_TEST(bad_frees_are_counted_exactly)
{
    struct cmt_run r;
    char *argv[] = { (char *)cmt_test_prog("badfree_prog"), NULL };
    char *env[] = { "CYMEMTRACK_STACK_DEPTH=", "CYMEMTRACK_QUARANTINE=", "CYMEMTRACK_SCOPES=",
                    "CYMEMTRACK_OUTPUT=rep.%p.cmt", NULL };
    cmt_run(&r, 1, argv, env);
    ck_assert_msg(r.exit_code == 0 && !strstr(r.out, "FAILED"),
                  "expected every check of badfree_prog to pass, got exit %d:\n%s", r.exit_code,
                  r.out);
    uint64_t want[3] = { cmt_field(r.out, "expect_invalid"), cmt_field(r.out, "expect_double"),
                         cmt_field(r.out, "expect_stale") };
    char path[PATH_MAX];
    ck_assert(find_file(r.dir, "rep.", ".cmt", path, sizeof path));
    struct cmt_process p;
    ck_assert_int_eq(cmt_report_read(path, &p), 0);
    ck_assert(p.complete);
    const struct cmt_totals *t = &p.totals;
    uint64_t rec[3] = { 0, 0, 0 };
    for (size_t i = 0; i < p.nbadfrees; i++) {
        const struct cmt_badfree *b = &p.badfrees[i];
        rec[b->kind] += b->count;
        /* A stale free names the scope that bulk-freed the block. */
        const struct cmt_scope *s = cmt_process_scope(&p, b->scope);
        ck_assert_msg(b->kind == CMT_REPORT_BADFREE_STALE ? s && strcmp(s->name, "pool") == 0
                                                          : b->scope == UINT32_MAX,
                      "expected a stale free to name scope pool and no other to name one");
        ck_assert_msg((b->stack != 0) == cmt_test_have_stacks(), "expected %s",
                      cmt_test_have_stacks() ? "the stack of every bad free"
                                             : "no stack (built without stack capture)");
    }
    ck_assert_msg(t->invalid_frees == want[0] && t->double_frees == want[1] &&
                      t->stale_frees == want[2] && rec[0] == want[0] && rec[1] == want[1] &&
                      rec[2] == want[2],
                  "expected %llu invalid, %llu double, %llu stale frees; TOTALS say %llu, %llu, "
                  "%llu and BADFREE records %llu, %llu, %llu",
                  (unsigned long long)want[0], (unsigned long long)want[1],
                  (unsigned long long)want[2], (unsigned long long)t->invalid_frees,
                  (unsigned long long)t->double_frees, (unsigned long long)t->stale_frees,
                  (unsigned long long)rec[0], (unsigned long long)rec[1],
                  (unsigned long long)rec[2]);
    /* The good blocks are counted as if nothing had happened. */
    ck_assert_uint_eq(t->live_blocks, cmt_field(r.out, "expect_live_blocks"));
    ck_assert_uint_eq(t->live_bytes, cmt_field(r.out, "expect_live_bytes"));
    uint64_t bulk = 0;
    for (size_t i = 0; i < p.nscopes; i++)
        bulk += p.scopes[i].bulk_freed_blocks;
    ck_assert_uint_eq(bulk, 3);
    ck_assert_uint_eq(t->allocations - t->frees - bulk, t->live_blocks);
    ck_assert_uint_eq(leaked_blocks(&p), t->live_blocks);
    /* One line a refused call (they are under the budget of 20), one for the realloc of
     * the custom allocator's block. */
    uint64_t all = want[0] + want[1] + want[2];
    ck_assert_int_eq(cmt_count_lines(r.err, "cymemtrack:"), (int)all + 1);
    figures("bad_frees_are_counted_exactly", 1, t->allocations, (unsigned)all);
    cmt_process_free(&p);
    cmt_run_free(&r);
}
END_TEST

/* ---- broken report files fed to cymem-report ------------------------------------------- */

static void scratch_setup(void)
{
    cmt_scratch_setup("badinput");
}

static void put_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static unsigned char *get_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    unsigned char *b = malloc((size_t)st.st_size + 1);
    ck_assert_int_eq(read(fd, b, (size_t)st.st_size), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return b;
}

/* cymem-report ARGS... FILE. */
static void report_run(struct cmt_run *r, const char *opt, const char *file)
{
    char *argv[] = { REPORT, (char *)(opt ? opt : file), (char *)(opt ? file : NULL), NULL };
    char *env[] = { "COLUMNS=100", NULL };
    cmt_run(r, 0, argv, env);
}

/* What cymem-report must do with a bad file: status 2, nothing else on stderr than one
 * "error:" line naming the file and "offset N"; or, with want_offset SIZE_MAX, any offset. A
 * crash is never an answer. */
static void assert_rejected(const struct cmt_run *r, const char *path, size_t want_offset,
                            const char *what)
{
    ck_assert_msg(r->signal == 0, "%s: cymem-report died of signal %d", what, r->signal);
    char head[PATH_MAX + 64];
    snprintf(head, sizeof head, "cymem-report: error: %s: offset ", path);
    ck_assert_msg(r->exit_code == 2 && count_lines(r->err) == 1 && strstr(r->err, head) == r->err,
                  "%s: expected status 2 and one line \"%s...\", got status %d and:\n%s", what,
                  head, r->exit_code, r->err);
    if (want_offset != SIZE_MAX) {
        size_t got = strtoull(r->err + strlen(head), NULL, 10);
        ck_assert_msg(got == want_offset, "%s: expected offset %zu, got:\n%s", what,
                      want_offset, r->err);
    }
}

/* Status 0, one warning naming the file and an offset, and the process shown as incomplete. */
static void assert_cut_short(const struct cmt_run *r, const char *path, bool json,
                             const char *what)
{
    ck_assert_msg(r->signal == 0, "%s: cymem-report died of signal %d", what, r->signal);
    char head[PATH_MAX + 64];
    snprintf(head, sizeof head, "cymem-report: warning: %s: offset ", path);
    ck_assert_msg(r->exit_code == 0 && count_lines(r->err) == 1 && strstr(r->err, head) == r->err,
                  "%s: expected status 0 and one line \"%s...\", got status %d and:\n%s", what,
                  head, r->exit_code, r->err);
    ck_assert_msg(strstr(r->out, json ? "\"complete\": false" : "(incomplete)"),
                  "%s: expected the process shown incomplete, got:\n%s", what, r->out);
}

/* A real report, from badfree_prog under the preload: every record type there is. */
static unsigned char *real_report(size_t *len)
{
    struct cmt_run r;
    char *argv[] = { (char *)cmt_test_prog("badfree_prog"), NULL };
    char *env[] = { "CYMEMTRACK_STACK_DEPTH=", "CYMEMTRACK_QUARANTINE=", "CYMEMTRACK_SCOPES=",
                    "CYMEMTRACK_OUTPUT=rep.%p.cmt", NULL };
    cmt_run(&r, 1, argv, env);
    char path[PATH_MAX];
    ck_assert(find_file(r.dir, "rep.", ".cmt", path, sizeof path));
    unsigned char *b = get_file(path, len);
    cmt_run_free(&r);
    return b;
}

static uint32_t le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Where each record of a well-formed report starts; returns how many. */
static size_t record_offsets(const unsigned char *b, size_t len, size_t *off, size_t max)
{
    size_t n = 0;
    for (size_t o = 16; o + 8 <= len && n < max; o += 8 + le32(b + o + 4))
        off[n++] = o;
    return n;
}

START_TEST(files_that_are_not_reports)
{
    unsigned bad = 0;
    struct cmt_run r;
    static const struct { const char *name; const char *data; size_t len; size_t off; } cases[] = {
        { "empty.cmt", "", 0, 0 },
        { "short.cmt", "CYMEM", 5, 5 },
        { "magic.cmt", "CYMEMTRK", 8, 8 },
        { "text.cmt", "hello, world\n", 13, 0 },
        { "v0.cmt", "CYMEMTRK\0\0\0\0\x10\0\0\0", 16, 8 },
        { "vnext.cmt", NULL, 16, 8 },       /* CMT_REPORT_VERSION + 1 */
        { "vmax.cmt", "CYMEMTRK\xff\xff\xff\xff\x10\0\0\0", 16, 8 },
        { "hdr8.cmt", "CYMEMTRK\x01\0\0\0\x08\0\0\0", 16, 12 },
        { "hdrbig.cmt", "CYMEMTRK\x01\0\0\0\xff\xff\xff\x7f", 16, 12 },
        /* A record whose length is over the reader's limit. */
        { "reclen.cmt", "CYMEMTRK\x01\0\0\0\x10\0\0\0\x63\0\0\0\xf0\xff\xff\xff", 24, 20 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = cmt_scratch_path(cases[i].name);
        unsigned char next[16] = "CYMEMTRK";
        uint32_t v = CMT_REPORT_VERSION + 1;
        memcpy(next + 8, (unsigned char[]){ (unsigned char)v, (unsigned char)(v >> 8),
                                            (unsigned char)(v >> 16), (unsigned char)(v >> 24),
                                            16, 0, 0, 0 }, 8);
        put_file(path, cases[i].data ? (const void *)cases[i].data : next, cases[i].len);
        for (int json = 0; json < 2; json++) {
            report_run(&r, json ? "--json" : NULL, path);
            assert_rejected(&r, path, cases[i].off, cases[i].name);
            cmt_run_free(&r);
            bad++;
        }
    }
    /* An executable, /dev/null, a directory. */
    const char *others[] = { REPORT, "/dev/null", cmt_scratch_dir() };
    for (size_t i = 0; i < 3; i++) {
        report_run(&r, NULL, others[i]);
        ck_assert_msg(r.exit_code == 2 && r.signal == 0 && count_lines(r.err) == 1 &&
                          strstr(r.err, "cymem-report: error: ") == r.err &&
                          strstr(r.err, others[i]),
                      "%s: expected status 2 and one error naming it, got %d:\n%s", others[i],
                      r.exit_code, r.err);
        cmt_run_free(&r);
        bad++;
    }
    figures("files_that_are_not_reports", 0, 0, bad);
}
END_TEST

/* A real report with one byte changed at every record's type and length, and at a spread of
 * payload bytes: rejected with the offset, or read; never a crash. */
START_TEST(corrupted_real_reports)
{
    size_t len;
    unsigned char *good = real_report(&len);
    size_t rec[512];
    size_t nrec = record_offsets(good, len, rec, 512);
    ck_assert_uint_ge(nrec, 8);
    /* The first record of each type, and bytes spread over the file (check_reader changes
     * every byte of a built file, in process). */
    size_t where[1024], n = 0;
    bool seen[256] = { false };
    for (size_t i = 0; i < nrec; i++) {
        uint32_t type = le32(good + rec[i]);
        if (type < 256 && seen[type])
            continue;
        seen[type & 255] = true;
        where[n++] = rec[i];            /* type */
        where[n++] = rec[i] + 7;        /* high byte of the length */
        where[n++] = rec[i] + 4;        /* low byte of the length */
    }
    for (size_t o = 3; o < len && n < 1024; o += len / 24)
        where[n++] = o;
    unsigned rejected = 0, read = 0;
    const char *path = cmt_scratch_path("flip.cmt");
    for (size_t k = 0; k < n; k++) {
        unsigned char *b = malloc(len);
        memcpy(b, good, len);
        b[where[k]] ^= 0xa5;
        put_file(path, b, len);
        free(b);
        struct cmt_run r;
        report_run(&r, k % 4 == 3 ? "--json" : NULL, path);
        char what[64];
        snprintf(what, sizeof what, "byte %zu of %zu changed", where[k], len);
        ck_assert_msg(r.signal == 0, "%s: cymem-report died of signal %d", what, r.signal);
        if (r.exit_code == 2) {
            assert_rejected(&r, path, SIZE_MAX, what);
            rejected++;
        } else {
            /* Read: the change hit a value no check can tell (a count, an address). */
            ck_assert_msg(r.exit_code == 0 && r.out_len > 0 &&
                              cmt_count_lines(r.err, "cymem-report: error") == 0,
                          "%s: expected status 0 or 2, got %d:\n%s", what, r.exit_code, r.err);
            read++;
        }
        cmt_run_free(&r);
    }
    printf("corrupted_real_reports: %zu changes of a %zu-byte report: %u rejected, %u read\n",
           n, len, rejected, read);
    ck_assert_uint_gt(rejected, n / 3);
    figures("corrupted_real_reports", 1, 0, (unsigned)n);
    free(good);
}
END_TEST

START_TEST(real_reports_cut_short)
{
    size_t len;
    unsigned char *good = real_report(&len);
    size_t rec[512];
    size_t nrec = record_offsets(good, len, rec, 512);
    /* Inside the header of a record, inside a record, just before END. */
    size_t cuts[] = { rec[1] + 3, rec[nrec / 2] + 11, rec[nrec - 1] };
    const char *path = cmt_scratch_path("cut.cmt");
    unsigned n = 0;
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        put_file(path, good, cuts[i]);
        for (int json = 0; json < 2; json++) {
            struct cmt_run r;
            report_run(&r, json ? "--json" : NULL, path);
            char what[64];
            snprintf(what, sizeof what, "cut at %zu of %zu", cuts[i], len);
            assert_cut_short(&r, path, json, what);
            cmt_run_free(&r);
            n++;
        }
    }
    figures("real_reports_cut_short", 1, 0, n);
    free(good);
}
END_TEST

/* Writes `head`, then `holes` unknown records of the largest length a reader accepts, all
 * holes (a sparse file), then tail: a file of hundreds of MB on no disk space. */
static size_t write_huge(const char *path, const unsigned char *head, size_t head_len,
                         int holes, const unsigned char *tail, size_t tail_len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, head, head_len), (ssize_t)head_len);
    off_t at = (off_t)head_len;
    for (int i = 0; i < holes; i++) {
        unsigned char rec[8] = { 0x63, 0, 0, 0 };
        uint32_t l = 64u << 20;     /* CMT_REPORT_MAX_RECORD */
        memcpy(rec + 4, (unsigned char[]){ (unsigned char)l, (unsigned char)(l >> 8),
                                           (unsigned char)(l >> 16), (unsigned char)(l >> 24) },
               4);
        ck_assert_int_eq(pwrite(fd, rec, 8, at), 8);
        at += 8 + (off_t)l;
    }
    if (tail_len)
        ck_assert_int_eq(pwrite(fd, tail, tail_len, at), (ssize_t)tail_len);
    else
        ck_assert_int_eq(ftruncate(fd, at), 0);
    close(fd);
    return (size_t)at + tail_len;
}

START_TEST(huge_files)
{
    size_t len;
    unsigned char *good = real_report(&len);
    const char *small = cmt_scratch_path("small.cmt"), *huge = cmt_scratch_path("huge.cmt");
    put_file(small, good, len);
    struct cmt_run want, r;
    report_run(&want, NULL, small);
    ck_assert_int_eq(want.exit_code, 0);

    /* 256 MiB of records of a later format version before the real ones: skipped, and the
     * report shown as it is. */
    size_t size = write_huge(huge, good, 16, 4, good + 16, len - 16);
    report_run(&r, NULL, huge);
    ck_assert_msg(r.exit_code == 0 && r.err_len == 0 && strcmp(r.out, want.out) == 0,
                  "a %zu-byte report with unknown records: expected status 0, no message and "
                  "the output of the same report without them; got %d:\n%s", size, r.exit_code,
                  r.err);
    cmt_run_free(&r);

    /* 192 MiB of them and no END: cut short. */
    write_huge(huge, good, 16, 3, NULL, 0);
    report_run(&r, NULL, huge);
    assert_cut_short(&r, huge, false, "192 MiB of unknown records");
    cmt_run_free(&r);

    /* The real report, then 200 MB of nothing: corrupt, at the END record's end. */
    int fd = open(huge, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, good, len), (ssize_t)len);
    ck_assert_int_eq(ftruncate(fd, (off_t)len + 200000000), 0);
    close(fd);
    report_run(&r, "--json", huge);
    assert_rejected(&r, huge, len, "200 MB after END");
    cmt_run_free(&r);

    /* 128 MiB of zeros after a header: records of type 0 and length 0, which this version
     * does not know and skips, and no END. */
    fd = open(huge, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, good, 16), 16);
    ck_assert_int_eq(ftruncate(fd, (off_t)16 + (128 << 20)), 0);
    close(fd);
    report_run(&r, NULL, huge);
    assert_cut_short(&r, huge, false, "128 MiB of zeros");
    cmt_run_free(&r);

    cmt_run_free(&want);
    figures("huge_files", 1, 0, 4);
    free(good);
}
END_TEST

static Suite *badinput_suite(void)
{
    Suite *s = suite_create("badinput");
    TCase *tc = tcase_create("settings");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, each_setting_refuses_garbage_in_one_line, 0,
                        (int)(sizeof settings / sizeof settings[0]));
    tcase_add_test(tc, signal_scope_on_a_fault_signal_keeps_the_crash);
    suite_add_tcase(s, tc);

    tc = tcase_create("frees");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, bad_frees_are_counted_exactly);
    suite_add_tcase(s, tc);

    tc = tcase_create("report files");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, scratch_setup, cmt_scratch_teardown);
    tcase_add_test(tc, files_that_are_not_reports);
    tcase_add_test(tc, corrupted_real_reports);
    tcase_add_test(tc, real_reports_cut_short);
    tcase_add_test(tc, huge_files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cmt_run_suite(badinput_suite());
}
