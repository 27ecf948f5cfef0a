/*
 * check_bootstrap.c — the bootstrap area of src/hooks.c (issue 4): allocations made while
 * dlsym runs, before the tracker knows the next allocator, are served from a static area,
 * and their frees never reach the real free. This glibc's dlsym does not allocate, so the
 * path is forced: libtestdlsym.so, preloaded beside the tracker, puts a dlsym that allocates
 * in front of the real one, and tests/progs/bootstrap_prog frees and reallocs what it kept.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <stdio.h>
#include <string.h>

#include "report.h"
#include "testdlsym.h"

#ifndef CMT_TESTDLSYM_SO
#error "CMT_TESTDLSYM_SO must name tests/progs/.libs/libtestdlsym.so"
#endif

/* bootstrap_prog under the tracker with libtestdlsym.so preloaded after it (the harness puts
 * the tracker first); its report goes to rep.cmt in the run's directory. */
static void run_bootstrap_prog(struct cmt_run *r, const char *depth)
{
    char *argv[] = { (char *)cmt_test_prog("bootstrap_prog"), NULL };
    char depth_env[64];
    snprintf(depth_env, sizeof depth_env, "CYMEMTRACK_STACK_DEPTH=%s", depth);
    char *env[] = { "LD_PRELOAD=" CMT_TESTDLSYM_SO, "CYMEMTRACK_OUTPUT=rep.cmt",
                    "CYMEMTRACK_QUARANTINE=", "CYMEMTRACK_SCOPES=", depth_env, NULL };
    cmt_run(r, 1, argv, env);
}

static const struct cmt_scope *scope_named(const struct cmt_process *p, const char *name)
{
    for (size_t i = 0; i < p->nscopes; i++)
        if (strcmp(p->scopes[i].name, name) == 0)
            return &p->scopes[i];
    return NULL;
}

/* bootstrap_prog's run, its output and its report. */
static void check_run(const char *depth)
{
    struct cmt_run r;
    run_bootstrap_prog(&r, depth);
    /* The program ran as it would without the tracker: exit 0, every fact as expected, and
     * not one "cymemtrack:" line (an exhausted bootstrap area, or a bootstrap block's free
     * taken for an invalid one, would say so there). A bootstrap block handed to glibc's
     * free would have ended it with SIGABRT. */
    ck_assert_msg(r.signal == 0 && r.exit_code == 0,
                  "expected bootstrap_prog to exit 0, got exit %d signal %d; stdout:\n%s\n"
                  "stderr:\n%s", r.exit_code, r.signal, r.out, r.err);
    /* Each lookup of an allocator function by the tracker (hooks.c, cmt_hooks_resolve; ten
     * of them today) allocated and kept one block, every one of them in the tracker's
     * bootstrap area, with its content and size. */
    unsigned long long lookups = cmt_field(r.out, "lookups");
    unsigned long long kept = cmt_field(r.out, "kept");
    ck_assert_msg(lookups >= 4, "expected the tracker to look up malloc, calloc, realloc and "
                  "free at least, got %llu lookups", lookups);
    ck_assert_uint_eq(kept, lookups < TESTDLSYM_MAX_KEPT ? lookups : TESTDLSYM_MAX_KEPT);
    ck_assert_uint_eq(cmt_field(r.out, "failures"), 0);
    ck_assert_uint_eq(cmt_field(r.out, "in_tracker"), kept);
    ck_assert_uint_eq(cmt_field(r.out, "contents"), kept);
    ck_assert_uint_eq(cmt_field(r.out, "usable"), kept);
    /* realloc moved the first one out to the heap with its content, and on again. */
    ck_assert_uint_eq(cmt_field(r.out, "moved_out"), 1);
    ck_assert_uint_eq(cmt_field(r.out, "moved_kept"), 1);
    ck_assert_uint_eq(cmt_field(r.out, "grown_kept"), 1);
    /* The program's own work in scope "boot" leaves 200 + 400 + 600 + 800 bytes. */
    ck_assert_uint_eq(cmt_field(r.out, "live_at_close"), 4);
    ck_assert_msg(strstr(r.err, "cymemtrack:") == NULL,
                  "expected no diagnostic, got stderr:\n%s", r.err);

    char path[sizeof r.dir + 16];
    snprintf(path, sizeof path, "%s/rep.cmt", r.dir);
    struct cmt_process p;
    ck_assert_msg(cmt_report_read(path, &p) == 0, "expected a readable report at %s", path);
    ck_assert_msg(p.complete && !p.truncated, "expected a complete report");
    const struct cmt_totals *t = &p.totals;
    ck_assert_msg(t->invalid_frees == 0 && t->double_frees == 0 && t->stale_frees == 0,
                  "expected no bad free, got invalid %llu double %llu stale %llu",
                  (unsigned long long)t->invalid_frees, (unsigned long long)t->double_frees,
                  (unsigned long long)t->stale_frees);
    ck_assert_msg(t->allocations - t->frees == t->live_blocks,
                  "expected allocations - frees = live blocks, got %llu - %llu != %llu",
                  (unsigned long long)t->allocations, (unsigned long long)t->frees,
                  (unsigned long long)t->live_blocks);
    /* The bootstrap blocks are no allocations of the program's: "boot" holds exactly the
     * realloc out of the area (4000 B), the 8 blocks of 100..800 B and the second realloc
     * (8000 B); its frees are the 4 even blocks (1600 B), the second realloc's old block
     * (4000 B) and its new one (8000 B). The first realloc counts no free: its old block was
     * a bootstrap one. */
    const struct cmt_scope *s = scope_named(&p, "boot");
    ck_assert_msg(s != NULL, "expected a scope \"boot\" in the report");
    ck_assert_msg(s->instances == 1 && s->allocations == 10 && s->bytes_allocated == 15600 &&
                      s->frees == 6 && s->bytes_freed == 13600 && s->leaked_blocks == 4 &&
                      s->leaked_bytes == 2000 && s->outlived_at_close == 4 &&
                      s->bulk_freed_blocks == 0,
                  "expected boot: 1 instance, 10 allocations of 15600 B, 6 frees of 13600 B, "
                  "4 leaked of 2000 B, 4 outlived; got %llu, %llu of %llu B, %llu of %llu B, "
                  "%llu of %llu B, %llu",
                  (unsigned long long)s->instances, (unsigned long long)s->allocations,
                  (unsigned long long)s->bytes_allocated, (unsigned long long)s->frees,
                  (unsigned long long)s->bytes_freed, (unsigned long long)s->leaked_blocks,
                  (unsigned long long)s->leaked_bytes,
                  (unsigned long long)s->outlived_at_close);
    cmt_process_free(&p);
    cmt_run_free(&r);
}

START_TEST(bootstrap_blocks_are_served_freed_and_moved)
{
    check_run("0");
}
END_TEST

/* The same with stacks captured: capture runs only once the allocator is known. */
START_TEST(bootstrap_with_stacks)
{
    check_run("16");
}
END_TEST

static Suite *bootstrap_suite(void)
{
    Suite *s = suite_create("bootstrap");
    TCase *tc = tcase_create("dlsym allocates");
    tcase_add_test(tc, bootstrap_blocks_are_served_freed_and_moved);
    tcase_add_test(tc, bootstrap_with_stacks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cmt_run_suite(bootstrap_suite());
}
