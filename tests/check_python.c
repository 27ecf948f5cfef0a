/*
 * check_python.c — the cymemtrack Python package (python/cymemtrack), its Cython declarations
 * and the wrapper's PYTHONMALLOC handling. Runs tests/python/cases.py with the interpreter
 * configure found (/usr/bin/python3 by default, never whatever `python3` is on PATH), with and
 * without the library just built, and a Cython extension built at test time; asserts exactly
 * what the cases print and what cymem-report --json says of their reports. Never uses an
 * installed copy of the package or of the library.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CMT_TEST_PYTHON
#error "CMT_TEST_PYTHON must name the Python interpreter under test"
#endif
#ifndef CMT_TEST_CYTHON
#error "CMT_TEST_CYTHON must say whether Cython and cymem are there (1 or 0)"
#endif

#define CASES CMT_TEST_SRCDIR "/tests/python/cases.py"
#define FIELDS CMT_TEST_SRCDIR "/tests/python/report_fields.py"
#define WRAPPER CMT_TEST_BUILDDIR "/tools/cymemtrack"
#define REPORT CMT_TEST_BUILDDIR "/tools/cymem-report"

/* Where main() built tests/python/cyleak.pyx, and whether that worked. */
static char cy_dir[PATH_MAX];
static int cy_built;

/* Environment of every run: the package from the source tree, no bytecode written into it,
 * reports into the run's own directory, and Python's allocator as the case needs it ("" for
 * the default pymalloc). */
#define PY_ENV(pymalloc)                                                                    \
    (char *const[]) {                                                                       \
        "PYTHONPATH=" CMT_TEST_SRCDIR "/python", "PYTHONDONTWRITEBYTECODE=1",               \
            "CYMEMTRACK_OUTPUT=cymemtrack.%e.%p.cmt", "PYTHONMALLOC=" pymalloc, NULL         \
    }

/* Runs cases.py CASE [ARG] and checks that it ran to the end. */
static void run_case(struct cmt_run *r, int preload, char *const env[], const char *name,
                     const char *arg)
{
    char *argv[] = { CMT_TEST_PYTHON, CASES, (char *)name, (char *)arg, NULL };
    cmt_run(r, preload, argv, env);
    ck_assert_msg(r->exit_code == 0, "cases.py %s: expected status 0, got %d (signal %d)\n"
                  "stdout:\n%s\nstderr:\n%s", name, r->exit_code, r->signal, r->out, r->err);
}

/* The per-scope numbers of every final report r left, as report_fields.py prints them. The
 * caller frees the text. */
static char *report_fields(const struct cmt_run *r)
{
    struct cmt_run rep;
    char *argv[] = { CMT_TEST_PYTHON, FIELDS, REPORT, (char *)r->dir, NULL };
    cmt_run(&rep, 0, argv, (char *const[]) { "PYTHONDONTWRITEBYTECODE=1", NULL });
    ck_assert_msg(rep.exit_code == 0, "report_fields.py: status %d\n%s", rep.exit_code,
                  rep.err);
    char *out = strdup(rep.out);
    cmt_run_free(&rep);
    return out;
}

#define ASSERT_FIELD(text, key, expected)                                                  \
    do {                                                                                   \
        unsigned long long got_ = cmt_field((text), (key));                                \
        ck_assert_msg(got_ == (unsigned long long)(expected),                              \
                      "%s: expected %llu, got %llu", (key),                                \
                      (unsigned long long)(expected), got_);                               \
    } while (0)

#define ASSERT_STATS(text, prefix, allocs, bytes, frees, live, live_bytes)                 \
    do {                                                                                   \
        ASSERT_FIELD(text, prefix ".allocations", allocs);                                 \
        ASSERT_FIELD(text, prefix ".bytes_allocated", bytes);                              \
        ASSERT_FIELD(text, prefix ".frees", frees);                                        \
        ASSERT_FIELD(text, prefix ".live_blocks", live);                                   \
        ASSERT_FIELD(text, prefix ".live_bytes", live_bytes);                              \
    } while (0)

/* ---- the package without the preload ----------------------------------------------- */

START_TEST(noop_without_preload)
{
    struct cmt_run r;
    run_case(&r, 0, PY_ENV(""), "noop", NULL);
    ASSERT_FIELD(r.out, "active", 0);
    ASSERT_FIELD(r.out, "enter_returns_self", 1);
    ASSERT_FIELD(r.out, "decorator_is_identity", 1);
    ASSERT_FIELD(r.out, "decorated_result", 42);
    ASSERT_FIELD(r.out, "close", 0);
    ASSERT_FIELD(r.out, "close_again", 0);
    ASSERT_FIELD(r.out, "stats_none", 1);
    ASSERT_FIELD(r.out, "scope_stats_none", 1);
    ASSERT_FIELD(r.out, "snapshot", 0);
    ASSERT_FIELD(r.out, "process_stats_none", 1);
    ASSERT_FIELD(r.out, "typeerror", 1);
    ASSERT_FIELD(r.out, "stats_typeerror", 1);
    ck_assert_msg(strstr(r.out, "raised TypeError: cymemtrack: the scope name must be a str, "
                                "not int\n"), "%s", r.out);
    /* Nothing of the tracker's: no diagnostics, no report. */
    ck_assert_msg(r.err_len == 0, "expected no stderr, got:\n%s", r.err);
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q '\\.cmt$'", r.dir);
    ck_assert_msg(system(cmd) != 0, "a report was written without the preload");
    cmt_run_free(&r);
}
END_TEST

/* ---- the package under the preload: exact counts (pymalloc keeps Python's own small
 * objects out of sight, so a scope holds exactly the blocks malloc'd through ctypes) ---- */

START_TEST(scopes_count_exactly)
{
    struct cmt_run r;
    run_case(&r, 1, PY_ENV(""), "basic", NULL);
    ASSERT_FIELD(r.out, "active", 1);
    /* with scope("basic"): malloc 1000, malloc 2000, free the first. */
    ASSERT_STATS(r.out, "open", 2, 3000, 1, 1, 2000);
    ASSERT_FIELD(r.out, "open.peak_live_bytes", 3000);
    ASSERT_STATS(r.out, "closed", 2, 3000, 1, 1, 2000);
    ASSERT_STATS(r.out, "object", 2, 3000, 1, 1, 2000);
    ASSERT_FIELD(r.out, "unknown_none", 1);
    /* outer: 100 and 400 around inner's 200 and 300; closing outer says what it kept. */
    ASSERT_FIELD(r.out, "outer_left", 2);
    ASSERT_STATS(r.out, "outer", 2, 500, 0, 2, 500);
    ASSERT_STATS(r.out, "inner", 2, 500, 0, 2, 500);
    /* One instance per recursive call, each seeing only its own block. */
    ck_assert_msg(strstr(r.out, "recursive_live_bytes=10,11,12\n"), "%s", r.out);
    ASSERT_STATS(r.out, "bulk", 2, 1100, 0, 0, 0);
    ASSERT_FIELD(r.out, "bulk.bulk_freed_blocks", 2);
    ASSERT_FIELD(r.out, "bulk.bulk_freed_bytes", 1100);
    ck_assert_msg(strstr(r.out, "repr=cymemtrack.scope('bulk', bulk=True)\n"), "%s", r.out);
    ck_assert_msg(cmt_count_lines(r.err, "cymemtrack: cmt_") == 0,
                  "expected no API diagnostics, got:\n%s", r.err);

    /* The report agrees: scopes by name, what they leaked and what bulk-free freed. */
    char *f = report_fields(&r);
    ASSERT_FIELD(f, "basic.instances", 1);
    ASSERT_FIELD(f, "basic.leaked_blocks", 1);
    ASSERT_FIELD(f, "basic.leaked_bytes", 2000);
    ASSERT_FIELD(f, "outer.leaked_bytes", 500);
    ASSERT_FIELD(f, "inner.leaked_bytes", 500);
    ASSERT_FIELD(f, "recursive.instances", 3);
    ASSERT_FIELD(f, "recursive.leaked_blocks", 3);
    ASSERT_FIELD(f, "recursive.leaked_bytes", 33);
    ASSERT_FIELD(f, "bulk.bulk_freed_blocks", 2);
    ASSERT_FIELD(f, "bulk.leaked_blocks", 0);
    free(f);
    cmt_run_free(&r);
}
END_TEST

START_TEST(exceptions_close_scopes)
{
    struct cmt_run r;
    run_case(&r, 1, PY_ENV(""), "exceptions", NULL);
    ck_assert_msg(strstr(r.out, "caught=inside\n"), "%s", r.out);
    /* After the exception left "boom", the next block is outer's again. */
    ASSERT_STATS(r.out, "outer_open", 1, 222, 0, 1, 222);
    ASSERT_STATS(r.out, "boom", 1, 111, 0, 1, 111);
    ASSERT_FIELD(r.out, "depth_after", 0);
    ASSERT_FIELD(r.out, "deco_raises", 1);
    ASSERT_STATS(r.out, "deco", 1, 333, 0, 1, 333);
    ASSERT_FIELD(r.out, "depth_after_deco", 0);
    /* A block that closed its own scope and raised: its exception wins. */
    ASSERT_FIELD(r.out, "original_kept", 1);
    ASSERT_FIELD(r.out, "deep_raises", 1);
    ASSERT_STATS(r.out, "deep_inner", 1, 444, 0, 1, 444);
    ASSERT_STATS(r.out, "deep_outer", 0, 0, 0, 0, 0);
    ASSERT_FIELD(r.out, "depth_end", 0);
    /* The one misuse (the second close of "self-closed") said once by the library. */
    ck_assert_int_eq(cmt_count_lines(r.err, "cymemtrack: cmt_scope_close:"), 1);
    ck_assert_int_eq(cmt_count_lines(r.err, "cymemtrack: cmt_"), 1);
    char *f = report_fields(&r);
    ASSERT_FIELD(f, "boom.leaked_bytes", 111);
    ASSERT_FIELD(f, "deep-inner.leaked_bytes", 444);
    ASSERT_FIELD(f, "deep-outer.leaked_blocks", 0);
    ASSERT_FIELD(f, "deep-outer.instances", 1);
    free(f);
    cmt_run_free(&r);
}
END_TEST

START_TEST(misuse_raises)
{
    struct cmt_run r;
    run_case(&r, 1, PY_ENV(""), "misuse", NULL);
    ASSERT_FIELD(r.out, "first_close", 0);
    ASSERT_FIELD(r.out, "second_close_error", 1);
    ASSERT_FIELD(r.out, "with_close_error", 1);
    ASSERT_FIELD(r.out, "never_opened_error", 1);
    ASSERT_FIELD(r.out, "int_name", 1);
    ASSERT_FIELD(r.out, "bytes_name", 1);
    ASSERT_FIELD(r.out, "none_name", 1);
    ASSERT_FIELD(r.out, "nul_name", 1);
    ASSERT_FIELD(r.out, "long_label", 1);
    ASSERT_FIELD(r.out, "int_label", 1);
    ASSERT_FIELD(r.out, "other_thread_error", 1);
    ASSERT_FIELD(r.out, "owner_closed_live_blocks", 1);
    ASSERT_FIELD(r.out, "still_fine", 1);
    ck_assert_msg(strstr(r.out, "raised Error: cymemtrack: scope \"twice\" is not open on this "
                                "thread: closed already, or never opened\n"), "%s", r.out);
    ck_assert_msg(strstr(r.out, "raised Error: cymemtrack: scope \"shared\" was opened by "
                                "another thread; only that thread can close it\n"), "%s", r.out);
    ck_assert_msg(strstr(r.out, "raised TypeError: cymemtrack: the scope name must be a str, "
                                "not bytes\n"), "%s", r.out);
    /* The library said each refusal itself, one line each: the two second closes, the
     * other thread's close, the long label and the long name. "never" had no instance, so
     * there was nothing to hand the library. */
    ck_assert_int_eq(cmt_count_lines(r.err, "cymemtrack: cmt_scope_close: "), 3);
    ck_assert_msg(strstr(r.err, "cymemtrack: cmt_scope_close: scope \"shared\" was opened by "
                                "another thread; not closed\n"), "%s", r.err);
    ck_assert_int_eq(cmt_count_lines(r.err, "cymemtrack: cmt_snapshot: "), 1);
    ck_assert_int_eq(cmt_count_lines(r.err, "cymemtrack: cmt_scope_open: "), 1);
    ck_assert_int_eq(cmt_count_lines(r.err, "cymemtrack: cmt_"), 5);
    ck_assert_int_eq(cmt_count_lines(r.err, "Traceback"), 0);
    cmt_run_free(&r);
}
END_TEST

START_TEST(threads_have_their_own_stacks)
{
    struct cmt_run r;
    run_case(&r, 1, PY_ENV(""), "threads", "4");
    char key[64];
    for (int i = 0; i < 4; i++) {
        /* Each thread's "shared" instance holds its block only; its own scope too. */
        snprintf(key, sizeof key, "t%d.shared_live_bytes", i);
        ASSERT_FIELD(r.out, key, 10 + i);
        snprintf(key, sizeof key, "t%d.depth", i);
        ASSERT_FIELD(r.out, key, 2);
        snprintf(key, sizeof key, "t%d.own_live_bytes", i);
        ASSERT_FIELD(r.out, key, 1000 + i);
    }
    ASSERT_FIELD(r.out, "main_depth", 0);
    char *f = report_fields(&r);
    ASSERT_FIELD(f, "shared.instances", 4);
    ASSERT_FIELD(f, "shared.leaked_blocks", 4);
    ASSERT_FIELD(f, "shared.leaked_bytes", 10 + 11 + 12 + 13);
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "t%d.leaked_blocks", i);
        ASSERT_FIELD(f, key, 1);
        snprintf(key, sizeof key, "t%d.leaked_bytes", i);
        ASSERT_FIELD(f, key, 1000 + i);
    }
    free(f);
    cmt_run_free(&r);
}
END_TEST

START_TEST(snapshot_and_process_stats)
{
    struct cmt_run r;
    run_case(&r, 1, PY_ENV(""), "snapshot", NULL);
    ASSERT_FIELD(r.out, "snapshot", 1);
    ASSERT_FIELD(r.out, "snapshot_nolabel", 1);
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "test $(ls '%s' | grep -c '\\.snapshot.*\\.cmt$') -eq 2", r.dir);
    ck_assert_msg(system(cmd) == 0, "expected two snapshot files in %s", r.dir);
    cmt_run_free(&r);

    run_case(&r, 1, PY_ENV(""), "process_stats", NULL);
    ASSERT_FIELD(r.out, "live_blocks_delta", 1);
    ASSERT_FIELD(r.out, "live_bytes_delta", 5000);
    ASSERT_FIELD(r.out, "allocations_delta", 1);
    cmt_run_free(&r);
}
END_TEST

/* Under PYTHONMALLOC=malloc every Python object is a tracked block: the package's own
 * bookkeeping must leave none of its objects live in a scope. */
START_TEST(malloc_mode_bookkeeping_is_invisible)
{
    struct cmt_run r;
    run_case(&r, 1, PY_ENV("malloc"), "malloc_mode", NULL);
    ASSERT_FIELD(r.out, "pythonmalloc_seen", 1);
    ck_assert_int_eq(cmt_count_lines(r.out, "tidy_left=0"), 3);
    ck_assert_int_eq(cmt_count_lines(r.out, "tidy_live=0"), 3);
    ASSERT_FIELD(r.out, "c_block.live_blocks", 1);
    ASSERT_FIELD(r.out, "c_block.live_bytes", 3000);
    ASSERT_FIELD(r.out, "strings_live_at_least_1000", 1);
    ASSERT_FIELD(r.out, "close_left", 1);
    ck_assert_msg(cmt_count_lines(r.err, "cymemtrack: cmt_") == 0,
                  "expected no API diagnostics, got:\n%s", r.err);
    cmt_run_free(&r);
}
END_TEST

/* ---- the wrapper and PYTHONMALLOC ----------------------------------------------------- */

static const char show_env[] =
    "import os; print('PYTHONMALLOC=' + os.environ.get('PYTHONMALLOC', 'unset'))";

/* The wrapper's environment: the library just built, reports in a private directory, and
 * PATH able to find the interpreter by its name. */
#define WRAP_ENV(pymalloc)                                                                  \
    (char *const[]) {                                                                       \
        "CYMEMTRACK_LIBRARY=" CMT_TEST_LIBRARY, "CYMEMTRACK_OUTPUT=",                       \
            "PYTHONDONTWRITEBYTECODE=1", "PYTHONPATH=" CMT_TEST_SRCDIR "/python",             \
            "PYTHONMALLOC=" pymalloc, NULL                                                   \
    }

static void wrap(struct cmt_run *r, char *const argv[], char *const env[])
{
    cmt_run(r, 0, argv, env);
    ck_assert_msg(r->exit_code == 0, "%s: expected status 0, got %d\nstdout:\n%s\nstderr:\n%s",
                  argv[1], r->exit_code, r->out, r->err);
}

START_TEST(wrapper_sets_pythonmalloc)
{
    struct cmt_run r;
    wrap(&r, (char *const[]) { WRAPPER, CMT_TEST_PYTHON, "-c", (char *)show_env, NULL },
         WRAP_ENV(""));
    ck_assert_str_eq(r.out, "PYTHONMALLOC=malloc\n");
    cmt_run_free(&r);

    /* Found on PATH by its name. */
    const char *name = strrchr(CMT_TEST_PYTHON, '/') + 1;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "PATH=%.*s:/usr/bin:/bin",
             (int)(name - 1 - CMT_TEST_PYTHON), CMT_TEST_PYTHON);
    wrap(&r, (char *const[]) { WRAPPER, (char *)name, "-c", (char *)show_env, NULL },
         (char *const[]) { "CYMEMTRACK_LIBRARY=" CMT_TEST_LIBRARY, "CYMEMTRACK_OUTPUT=",
                           "PYTHONMALLOC=", path, NULL });
    ck_assert_str_eq(r.out, "PYTHONMALLOC=malloc\n");
    cmt_run_free(&r);
}
END_TEST

START_TEST(wrapper_keeps_user_setting)
{
    struct cmt_run r;
    wrap(&r, (char *const[]) { WRAPPER, CMT_TEST_PYTHON, "-c", (char *)show_env, NULL },
         WRAP_ENV("pymalloc_debug"));
    ck_assert_str_eq(r.out, "PYTHONMALLOC=pymalloc_debug\n");
    cmt_run_free(&r);

    wrap(&r, (char *const[]) { WRAPPER, "--keep-pymalloc", CMT_TEST_PYTHON, "-c",
                               (char *)show_env, NULL },
         WRAP_ENV(""));
    ck_assert_str_eq(r.out, "PYTHONMALLOC=unset\n");
    cmt_run_free(&r);
}
END_TEST

START_TEST(wrapper_leaves_other_programs_alone)
{
    struct cmt_run r;
    wrap(&r, (char *const[]) { WRAPPER, "/bin/sh", "-c",
                               "echo PYTHONMALLOC=${PYTHONMALLOC-unset}", NULL },
         WRAP_ENV(""));
    ck_assert_str_eq(r.out, "PYTHONMALLOC=unset\n");
    cmt_run_free(&r);
}
END_TEST

/* A symlink with another name, and scripts whose "#!" line runs Python directly or through
 * env: each is found to be Python. */
START_TEST(wrapper_follows_links_and_scripts)
{
    char dir[] = "/tmp/cmt-py.XXXXXX", link[PATH_MAX], direct[PATH_MAX], viaenv[PATH_MAX];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(link, sizeof link, "%s/interp", dir);
    ck_assert_int_eq(symlink(CMT_TEST_PYTHON, link), 0);
    snprintf(direct, sizeof direct, "%s/direct-script", dir);
    snprintf(viaenv, sizeof viaenv, "%s/env-script", dir);
    FILE *f = fopen(direct, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "#!%s\n%s\n", link, show_env);
    fclose(f);
    f = fopen(viaenv, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "#!/usr/bin/env -S interp -u\n%s\n", show_env);
    fclose(f);
    ck_assert_int_eq(chmod(direct, 0755), 0);
    ck_assert_int_eq(chmod(viaenv, 0755), 0);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "PATH=%s:/usr/bin:/bin", dir);

    const char *progs[] = { link, direct, viaenv };
    for (int i = 0; i < 3; i++) {
        struct cmt_run r;
        wrap(&r, (char *const[]) { WRAPPER, (char *)progs[i], "-c", (char *)show_env, NULL },
             (char *const[]) { "CYMEMTRACK_LIBRARY=" CMT_TEST_LIBRARY, "CYMEMTRACK_OUTPUT=",
                               "PYTHONMALLOC=", path, NULL });
        ck_assert_msg(strcmp(r.out, "PYTHONMALLOC=malloc\n") == 0, "%s: got %s", progs[i],
                      r.out);
        cmt_run_free(&r);
    }
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* What the setting is for: Python's small objects reach the tracker. */
START_TEST(wrapper_pythonmalloc_shows_small_objects)
{
    struct cmt_run r;
    wrap(&r, (char *const[]) { WRAPPER, CMT_TEST_PYTHON, CASES, "strings", NULL },
         WRAP_ENV(""));
    unsigned long long seen = cmt_field(r.out, "strings_live_blocks");
    cmt_run_free(&r);
    wrap(&r, (char *const[]) { WRAPPER, "--keep-pymalloc", CMT_TEST_PYTHON, CASES, "strings",
                               NULL },
         WRAP_ENV(""));
    unsigned long long hidden = cmt_field(r.out, "strings_live_blocks");
    cmt_run_free(&r);
    ck_assert_msg(seen >= 1000, "PYTHONMALLOC=malloc: expected the 1000 strings, got %llu "
                  "blocks", seen);
    ck_assert_msg(hidden < 10, "pymalloc: expected the strings hidden, got %llu blocks",
                  hidden);
}
END_TEST

/* ---- a Cython extension built at test time ----------------------------------------- */

static void require_extension(void)
{
    ck_assert_msg(cy_built, "building tests/python/cyleak.pyx failed; see %s/build.log",
                  cy_dir);
}

START_TEST(cython_counts_exactly)
{
    require_extension();
    struct cmt_run r;
    run_case(&r, 1, PY_ENV("malloc"), "cython", cy_dir);
    ASSERT_FIELD(r.out, "cy_active", 1);
    /* 10 blocks of 100..109 bytes, all but the last 3 freed, twice. */
    ASSERT_FIELD(r.out, "cy_malloc_close", 3);
    ASSERT_FIELD(r.out, "cy_malloc_close_again", 3);
    ASSERT_FIELD(r.out, "cy_bulk_close", 5);
    ASSERT_FIELD(r.out, "cy_pool_blocks_live", 0);
    ASSERT_FIELD(r.out, "cy_pool_python_left", 0);
    ASSERT_FIELD(r.out, "cy_kept_blocks_live", 12);
    ASSERT_FIELD(r.out, "cy_default_pool_close", 0);
    ASSERT_FIELD(r.out, "py_around_live_blocks", 4);
    ck_assert_msg(cmt_count_lines(r.err, "cymemtrack: cmt_") == 0,
                  "expected no API diagnostics, got:\n%s", r.err);

    char *f = report_fields(&r);
    ck_assert_msg(strstr(f, "process.ended=exit\n") && strstr(f, "process.complete=1\n"), "%s",
                  f);
    ASSERT_FIELD(f, "cy-malloc.instances", 2);
    ASSERT_FIELD(f, "cy-malloc.allocations", 20);
    ASSERT_FIELD(f, "cy-malloc.bytes_allocated", 2 * (10 * 100 + 45));
    ASSERT_FIELD(f, "cy-malloc.frees", 14);
    ASSERT_FIELD(f, "cy-malloc.leaked_blocks", 6);
    ASSERT_FIELD(f, "cy-malloc.leaked_bytes", 2 * (107 + 108 + 109));
    ASSERT_FIELD(f, "cy-malloc.outlived_blocks", 0);
    /* A bulk scope frees what its 5 blocks of 100..104 bytes left. */
    ASSERT_FIELD(f, "cy-bulk.allocations", 5);
    ASSERT_FIELD(f, "cy-bulk.bulk_freed_blocks", 5);
    ASSERT_FIELD(f, "cy-bulk.bulk_freed_bytes", 510);
    ASSERT_FIELD(f, "cy-bulk.leaked_blocks", 0);
    /* A cymem.Pool on the scope's pool calls: 20 blocks of 64..83 bytes, freed with it. */
    ASSERT_FIELD(f, "cy-pool-blocks.allocations", 20);
    ASSERT_FIELD(f, "cy-pool-blocks.bytes_allocated", 20 * 64 + 190);
    ASSERT_FIELD(f, "cy-pool-blocks.frees", 20);
    ASSERT_FIELD(f, "cy-pool-blocks.leaked_blocks", 0);
    ASSERT_FIELD(f, "cy-pool-python.leaked_blocks", 0);
    /* The same Pool kept alive for ever: its 12 blocks of 64..75 bytes leak. */
    ASSERT_FIELD(f, "cy-kept-blocks.allocations", 12);
    ASSERT_FIELD(f, "cy-kept-blocks.leaked_blocks", 12);
    ASSERT_FIELD(f, "cy-kept-blocks.leaked_bytes", 12 * 64 + 66);
    /* cymem's default allocator: every block the Pool and its Python side took, given back. */
    unsigned long long allocs = cmt_field(f, "cy-default-pool.allocations");
    ck_assert_msg(allocs >= 31, "cy-default-pool: expected the Pool and its 30 blocks at "
                  "least, got %llu allocations", allocs);
    ASSERT_FIELD(f, "cy-default-pool.frees", allocs);
    ASSERT_FIELD(f, "cy-default-pool.leaked_blocks", 0);
    /* C leaks inside a Python scope are that scope's: 4 blocks of 300..303 bytes. */
    ASSERT_FIELD(f, "py-around-cy.leaked_blocks", 4);
    ASSERT_FIELD(f, "py-around-cy.leaked_bytes", 1206);
    free(f);
    cmt_run_free(&r);
}
END_TEST

START_TEST(cython_without_preload)
{
    require_extension();
    struct cmt_run r;
    run_case(&r, 0, PY_ENV(""), "cython_noop", cy_dir);
    ASSERT_FIELD(r.out, "cy_active", 0);
    ASSERT_FIELD(r.out, "py_active", 0);
    ASSERT_FIELD(r.out, "cy_malloc_close", 0);
    ck_assert_msg(strstr(r.out, "cy_pool=0,0\n"), "%s", r.out);
    ck_assert_msg(r.err_len == 0, "expected no stderr, got:\n%s", r.err);
    cmt_run_free(&r);
}
END_TEST

/* Builds tests/python/cyleak.pyx once, before the tests fork: cython, then the compiler, in a
 * directory of its own. */
static void build_extension(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(cy_dir, sizeof cy_dir, "%s/cmt-cyleak.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(cy_dir)) {
        perror("mkdtemp");
        return;
    }
    char cmd[4 * PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "PYTHONDONTWRITEBYTECODE=1 '%s' '%s/python/build_ext.py' --srcdir '%s' "
             "--builddir '%s' --out '%s' --cc '%s' '%s/tests/python/cyleak.pyx' "
             ">'%s/build.log' 2>&1",
             CMT_TEST_PYTHON, CMT_TEST_SRCDIR, CMT_TEST_SRCDIR, CMT_TEST_BUILDDIR, cy_dir,
             CMT_TEST_CC, CMT_TEST_SRCDIR, cy_dir);
    cy_built = system(cmd) == 0;
    if (!cy_built) {
        snprintf(cmd, sizeof cmd, "cat '%s/build.log' >&2", cy_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot show %s/build.log\n", cy_dir);
    }
}

static Suite *python_suite(void)
{
    Suite *s = suite_create("python");
    TCase *tc = tcase_create("package");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, noop_without_preload);
    tcase_add_test(tc, scopes_count_exactly);
    tcase_add_test(tc, exceptions_close_scopes);
    tcase_add_test(tc, misuse_raises);
    tcase_add_test(tc, threads_have_their_own_stacks);
    tcase_add_test(tc, snapshot_and_process_stats);
    tcase_add_test(tc, malloc_mode_bookkeeping_is_invisible);
    suite_add_tcase(s, tc);

    tc = tcase_create("wrapper");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, wrapper_sets_pythonmalloc);
    tcase_add_test(tc, wrapper_keeps_user_setting);
    tcase_add_test(tc, wrapper_leaves_other_programs_alone);
    tcase_add_test(tc, wrapper_follows_links_and_scripts);
    tcase_add_test(tc, wrapper_pythonmalloc_shows_small_objects);
    suite_add_tcase(s, tc);

    if (CMT_TEST_CYTHON) {
        tc = tcase_create("cython");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, cython_counts_exactly);
        tcase_add_test(tc, cython_without_preload);
        suite_add_tcase(s, tc);
    } else {
        fprintf(stderr, "check_python: Cython or cymem not found by configure; the Cython "
                        "tests are left out (Debian: cython3 python3-cymem)\n");
    }
    return s;
}

int main(void)
{
    if (CMT_TEST_CYTHON)
        build_extension();
    int status = cmt_run_suite(python_suite());
    if (cy_dir[0]) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", cy_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", cy_dir);
    }
    return status;
}
