/*
 * check_envscope.c — CYMEMTRACK_SCOPES (src/envscope.c) on programs that were not changed
 * for it (tests/progs/envprog.c, inspectprog.c): func: on global and static functions, with
 * and without bulk; func: on functions no hook can take, found on the stack instead, alone,
 * nested with hooked ones, in threads and in a dlopen()ed module; thread: by name; signal:
 * windows and their snapshot; the diagnostics for every kind of bad entry. Counts are read
 * from the report with the tools' reader, and are exact.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "render.h"
#include "report.h"

/* Runs envprog under the preload with scopes, reports in the run's directory. */
static void run_envprog(struct cmt_run *r, const char *scopes)
{
    char setting[1024], output[64];
    snprintf(setting, sizeof setting, "CYMEMTRACK_SCOPES=%s", scopes);
    snprintf(output, sizeof output, "CYMEMTRACK_OUTPUT=envprog.%%p.cmt");
    char *env[] = { setting, output, NULL };
    char *argv[] = { (char *)cmt_test_prog("envprog"),
                     strstr(scopes, "=signal:SIGUSR2") || strstr(scopes, "=signal:USR2")
                         ? "signals" : NULL, NULL };
    cmt_run(r, 1, argv, env);
    ck_assert_msg(r->exit_code == 0, "envprog exited %d: %s", r->exit_code, r->err);
    ck_assert_str_eq(r->out, "done\n");
}

/* Reads the run's report whose name ends in suffix ("snapshot.cmt", or a digit + ".cmt"). */
static void read_report(const struct cmt_run *r, bool snapshot, struct cmt_process *p)
{
    DIR *d = opendir(r->dir);
    ck_assert_ptr_nonnull(d);
    char path[512] = "";
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        bool is_snap = n > 13 && strcmp(e->d_name + n - 13, ".snapshot.cmt") == 0;
        if (n > 4 && strcmp(e->d_name + n - 4, ".cmt") == 0 && is_snap == snapshot)
            snprintf(path, sizeof path, "%s/%s", r->dir, e->d_name);
    }
    closedir(d);
    ck_assert_msg(path[0], "no %s report in %s", snapshot ? "snapshot" : "final", r->dir);
    ck_assert_int_eq(cmt_report_read(path, p), 0);
}

static const struct cmt_scope *scope_named(const struct cmt_process *p, const char *name)
{
    for (size_t i = 0; i < p->nscopes; i++)
        if (strcmp(p->scopes[i].name, name) == 0)
            return &p->scopes[i];
    ck_abort_msg("no scope \"%s\" in the report", name);
    return NULL;
}

#define ASSERT_ROW(s, kind_, inst_, allocs_, frees_, lblocks_, lbytes_)                     \
    do {                                                                                     \
        ck_assert_int_eq((s)->kind, (kind_));                                                \
        ck_assert_msg((s)->instances == (inst_) && (s)->allocations == (allocs_) &&           \
                          (s)->frees == (frees_) && (s)->leaked_blocks == (lblocks_) &&       \
                          (s)->leaked_bytes == (lbytes_),                                     \
                      "scope %s: expected instances %d allocations %d frees %d leaked %d/%dB, " \
                      "got %lu %lu %lu %lu/%luB", (s)->name, (inst_), (allocs_), (frees_),    \
                      (lblocks_), (lbytes_), (unsigned long)(s)->instances,                   \
                      (unsigned long)(s)->allocations, (unsigned long)(s)->frees,             \
                      (unsigned long)(s)->leaked_blocks, (unsigned long)(s)->leaked_bytes);   \
    } while (0)

START_TEST(func_scopes_count_each_call)
{
    struct cmt_run r;
    run_envprog(&r, "request=func:handle_request;helper=func:static_helper");
    struct cmt_process p;
    read_report(&r, false, &p);
    /* Ten calls of two blocks; the odd calls free both, the even ones leak 100+i bytes. */
    ASSERT_ROW(scope_named(&p, "request"), CMT_REPORT_KIND_FUNC, 10, 20, 15, 5,
               100 + 102 + 104 + 106 + 108);
    ASSERT_ROW(scope_named(&p, "helper"), CMT_REPORT_KIND_FUNC, 3, 3, 3, 0, 0);
    ck_assert_int_eq(cmt_count_lines(r.err, "cymemtrack:"), 0);
    if (!cmt_test_have_stacks()) {
        /* Built without stack capture: no stack at all, the scope's leaks in one site. */
        const struct cmt_scope *req = scope_named(&p, "request");
        size_t sites = 0;
        for (size_t i = 0; i < p.nleaks; i++) {
            const struct cmt_leak *l = &p.leaks[i];
            if (l->scope == req->id) {
                sites++;
                ck_assert_msg(l->stack == 0 && l->blocks == 5 && l->bytes == 520,
                              "expected 5 blocks of 520 B without stack, got %lu of %lu B "
                              "from stack %u", (unsigned long)l->blocks,
                              (unsigned long)l->bytes, (unsigned)l->stack);
            }
        }
        ck_assert_uint_eq(sites, 1);
        ck_assert_uint_eq(p.nstacks, 0);
        cmt_process_free(&p);
        cmt_run_free(&r);
        return;
    }
    /* The leak's stack goes on past the hooked function, whose return address the hook
     * redirects: handle_request, then main. */
    struct cmt_symbolizer *sym = cmt_symbolizer_new();
    cmt_symbolize(sym, &p);
    const struct cmt_scope *req = scope_named(&p, "request");
    const struct cmt_stack *st = NULL;
    for (size_t i = 0; i < p.nleaks && !st; i++)
        if (p.leaks[i].scope == req->id)
            st = cmt_process_stack(&p, p.leaks[i].stack);
    ck_assert_ptr_nonnull(st);
    ck_assert_uint_ge(st->depth, 2);
    ck_assert_str_eq(st->frames[0].function ? st->frames[0].function : "?", "handle_request");
    ck_assert_str_eq(st->frames[1].function ? st->frames[1].function : "?", "main");
    cmt_symbolizer_free(sym);
    cmt_process_free(&p);
    cmt_run_free(&r);
}
END_TEST

START_TEST(func_scope_with_bulk_frees_at_return)
{
    struct cmt_run r;
    run_envprog(&r, "pool=func:build_pool,bulk");
    struct cmt_process p;
    read_report(&r, false, &p);
    const struct cmt_scope *s = scope_named(&p, "pool");
    ASSERT_ROW(s, CMT_REPORT_KIND_FUNC, 1, 4, 0, 0, 0);
    ck_assert_uint_eq(s->bulk_freed_blocks, 4);
    ck_assert_uint_eq(s->bulk_freed_bytes, 64);
    cmt_process_free(&p);
    cmt_run_free(&r);
}
END_TEST

START_TEST(thread_scope_by_name)
{
    struct cmt_run r;
    run_envprog(&r, "workers=thread:worker-*");
    struct cmt_process p;
    read_report(&r, false, &p);
    /* worker-1 matches and leaks its ten blocks of 7; "other" does not match. */
    ASSERT_ROW(scope_named(&p, "workers"), CMT_REPORT_KIND_THREAD, 1, 10, 0, 10, 70);
    cmt_process_free(&p);
    cmt_run_free(&r);
}
END_TEST

START_TEST(signal_window_and_its_snapshot)
{
    struct cmt_run r;
    run_envprog(&r, "window=signal:SIGUSR2");
    struct cmt_process final, snap;
    read_report(&r, false, &final);
    read_report(&r, true, &snap);
    ASSERT_ROW(scope_named(&final, "window"), CMT_REPORT_KIND_SIGNAL, 1, 3, 0, 3, 33);
    ASSERT_ROW(scope_named(&snap, "window"), CMT_REPORT_KIND_SIGNAL, 1, 3, 0, 3, 33);
    ck_assert_int_eq(snap.how, CMT_END_SNAPSHOT);
    ck_assert_str_eq(snap.label, "window");
    cmt_process_free(&final);
    cmt_process_free(&snap);
    cmt_run_free(&r);
}
END_TEST

START_TEST(all_kinds_together)
{
    struct cmt_run r;
    run_envprog(&r, "request=func:handle_request;workers=thread:worker-*;"
                    "window=signal:USR2;pool=func:build_pool,bulk");
    struct cmt_process p;
    read_report(&r, false, &p);
    ASSERT_ROW(scope_named(&p, "request"), CMT_REPORT_KIND_FUNC, 10, 20, 15, 5, 520);
    ASSERT_ROW(scope_named(&p, "workers"), CMT_REPORT_KIND_THREAD, 1, 10, 0, 10, 70);
    ASSERT_ROW(scope_named(&p, "window"), CMT_REPORT_KIND_SIGNAL, 1, 3, 0, 3, 33);
    ck_assert_uint_eq(scope_named(&p, "pool")->bulk_freed_blocks, 4);
    cmt_process_free(&p);
    cmt_run_free(&r);
}
END_TEST

/* Each bad entry gets exactly one line naming it, and the good entries still work. */
START_TEST(bad_entries_are_named_and_skipped)
{
    struct cmt_run r;
    run_envprog(&r, "a=nokind:x;b=func;c=signal:SIGNOPE;=func:handle_request;"
                    "d=func:static_helper,sparkly;e=func:no_such_function;"
                    "request=func:handle_request;twice=func:handle_request");
    struct cmt_process p;
    read_report(&r, false, &p);
    ASSERT_ROW(scope_named(&p, "request"), CMT_REPORT_KIND_FUNC, 10, 20, 15, 5, 520);
    ASSERT_ROW(scope_named(&p, "d"), CMT_REPORT_KIND_FUNC, 3, 3, 3, 0, 0);
    /* Positions point at what is wrong: the kind, the separator, the signal, the entry, the
     * option. */
    ck_assert_ptr_nonnull(strstr(r.err, "entry \"a\" at position 2: unknown kind \"nokind\""));
    ck_assert_ptr_nonnull(strstr(r.err, "entry \"b\" at position 11: expected KIND:ARG"));
    ck_assert_ptr_nonnull(strstr(r.err, "entry \"c\" at position 27: unknown signal \"SIGNOPE\""));
    ck_assert_ptr_nonnull(strstr(r.err, "entry at position 35: expected NAME=KIND:ARG"));
    ck_assert_ptr_nonnull(strstr(r.err, "entry \"d\" at position 77: unknown option \"sparkly\""));
    ck_assert_ptr_nonnull(strstr(r.err, "entry \"e\": no function \"no_such_function\""));
    ck_assert_ptr_nonnull(strstr(r.err, "entry \"twice\": handle_request is already the "
                                        "function of entry \"request\""));
    ck_assert_int_eq(cmt_count_lines(r.err, "cymemtrack: CYMEMTRACK_SCOPES:"), 7);
    ck_assert_int_eq(cmt_count_lines(r.err, "cymemtrack:"), 7);
    cmt_process_free(&p);
    cmt_run_free(&r);
}
END_TEST

START_TEST(quiet_silences_an_entry)
{
    struct cmt_run r;
    run_envprog(&r, "e=func:no_such_function,quiet");
    ck_assert_int_eq(cmt_count_lines(r.err, "cymemtrack:"), 0);
    cmt_run_free(&r);
}
END_TEST

/* A real program from the system, with scopes on libxml2's entry points: one instance per
 * document, and the tree a parse builds outlives the parse until xmlFreeDoc frees it. */
START_TEST(xmllint_scopes_on_libxml2)
{
    if (access("/usr/bin/xmllint", X_OK) != 0) {
        fprintf(stderr, "xmllint_scopes_on_libxml2: skipped, /usr/bin/xmllint not installed\n");
        return;
    }
    char dir[] = "/tmp/cmt-xml.XXXXXX", files[3][64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    for (int i = 0; i < 3; i++) {
        snprintf(files[i], sizeof files[i], "%s/f%d.xml", dir, i);
        FILE *f = fopen(files[i], "w");
        fprintf(f, "<?xml version=\"1.0\"?>\n<root>");
        for (int j = 0; j < 50 * (i + 1); j++)
            fprintf(f, "<item id=\"%d\">text %d</item>", j, j);
        fprintf(f, "</root>\n");
        fclose(f);
    }
    char *env[] = { "CYMEMTRACK_SCOPES=read=func:xmlReadFile;parse=func:xmlParseDocument;"
                    "free=func:xmlFreeDoc", "CYMEMTRACK_OUTPUT=xmllint.cmt", NULL };
    char *argv[] = { "/usr/bin/xmllint", "--noout", files[0], files[1], files[2], NULL };
    struct cmt_run r;
    cmt_run(&r, 1, argv, env);
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_int_eq(cmt_count_lines(r.err, "cymemtrack:"), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/xmllint.cmt", r.dir);
    struct cmt_process p;
    ck_assert_int_eq(cmt_report_read(path, &p), 0);
    const struct cmt_scope *read = scope_named(&p, "read"), *parse = scope_named(&p, "parse"),
                           *fr = scope_named(&p, "free");
    ck_assert_uint_eq(read->instances, 3);
    ck_assert_uint_eq(parse->instances, 3);
    ck_assert_uint_eq(fr->instances, 3);
    /* Everything a parse allocates is freed by the program: nothing leaks, and what was
     * still live when xmlParseDocument returned (the tree) outlived it. */
    ck_assert_uint_gt(parse->allocations, 300);
    ck_assert_uint_eq(parse->frees, parse->allocations);
    ck_assert_uint_eq(parse->leaked_blocks, 0);
    ck_assert_uint_gt(parse->outlived_blocks, 300);
    ck_assert_uint_eq(read->leaked_blocks, 0);
    ck_assert_uint_eq(fr->allocations, 0);
    cmt_process_free(&p);
    cmt_run_free(&r);
    for (int i = 0; i < 3; i++)
        unlink(files[i]);
    rmdir(dir);
}
END_TEST

/* A caller built at -O2 keeps loop state in caller-saved registers the hooked function
 * never touches: the hook must leave them alone too (once, it clobbered rcx and the loop
 * never ended). */
START_TEST(hook_keeps_the_callers_registers)
{
    char *argv[] = { (char *)cmt_test_prog("ipara"), NULL };
    char *env[] = { "CYMEMTRACK_SCOPES=leaf=func:hooked_leaf", NULL };
    struct cmt_run plain, hooked;
    cmt_run(&plain, 0, argv, NULL);
    cmt_run(&hooked, 1, argv, env);
    ck_assert_int_eq(plain.exit_code, 0);
    ck_assert_int_eq(hooked.exit_code, 0);
    ck_assert_str_eq(hooked.out, plain.out);
    ck_assert_int_eq(cmt_count_lines(hooked.err, "cymemtrack:"), 0);
    cmt_run_free(&plain);
    cmt_run_free(&hooked);
}
END_TEST

/* ---- func: scopes found on the stack (tests/progs/inspectprog.c) -------------------- */

/* Runs inspectprog MODE under the preload with scopes (and extra, a "NAME=VALUE" or NULL),
 * and reads its report; inspect_done frees both. */
static void inspect_run(struct cmt_run *r, struct cmt_process *p, const char *mode,
                        const char *scopes, char *extra)
{
    char setting[1024], dl[512];
    snprintf(setting, sizeof setting, "CYMEMTRACK_SCOPES=%s", scopes);
    snprintf(dl, sizeof dl, "%s/.libs/inspect-dl.so", CMT_TEST_PROGS);
    char *env[] = { setting, "CYMEMTRACK_OUTPUT=inspect.%p.cmt", extra, NULL };
    char *argv[] = { (char *)cmt_test_prog("inspectprog"), (char *)mode, dl, NULL };
    cmt_run(r, 1, argv, env);
    ck_assert_msg(r->exit_code == 0, "inspectprog %s exited %d: %s", mode, r->exit_code,
                  r->err);
    ck_assert_str_eq(r->out, "done\n");
    read_report(r, false, p);
}

static void inspect_done(struct cmt_run *r, struct cmt_process *p)
{
    cmt_process_free(p);
    cmt_run_free(r);
}

/* The run said exactly `lines` "cymemtrack:" lines, text (when not NULL) among them. */
static void assert_said(const struct cmt_run *r, int lines, const char *text)
{
    ck_assert_int_eq(cmt_count_lines(r->err, "cymemtrack:"), lines);
    if (text)
        ck_assert_msg(strstr(r->err, text), "expected \"%s\" on stderr, got: %s", text, r->err);
}

#define LOOP_DIAG "cymemtrack: CYMEMTRACK_SCOPES: entry \"ins\": cannot hook inspect_loop " \
    "(a jump into its first bytes, from the instruction at +"
#define INSPECT_DIAG "); looking for it on the stack at each allocation instead (instance " \
    "counts approximate)"

/* The function's loop jumps into its first bytes: one line says so, and its allocations
 * are counted exactly, whatever the stack depth setting. Two calls with an allocation outside
 * between are two instances; two in a row, at the same depth, one. */
START_TEST(unhookable_function_found_on_the_stack)
{
    static char *depths[] = { NULL, "CYMEMTRACK_STACK_DEPTH=0" };
    for (size_t d = 0; d < sizeof depths / sizeof depths[0]; d++) {
        struct cmt_run r;
        struct cmt_process p;
        inspect_run(&r, &p, "counts", "ins=func:inspect_loop", depths[d]);
        const struct cmt_scope *s = scope_named(&p, "ins");
        /* 5 x 24 kept; 3 x 40 freed; 2 x 16 kept. */
        ASSERT_ROW(s, CMT_REPORT_KIND_FUNC, 2, 10, 3, 7, 5 * 24 + 2 * 16);
        ck_assert_uint_eq(s->bytes_allocated, 5 * 24 + 3 * 40 + 2 * 16);
        ck_assert_uint_eq(s->peak_live_bytes, 5 * 24);
        ASSERT_ROW(scope_named(&p, "global"), CMT_REPORT_KIND_GLOBAL, 1, 2, 2, 0, 0);
        assert_said(&r, 1, LOOP_DIAG);
        ck_assert_ptr_nonnull(strstr(r.err, INSPECT_DIAG "\n"));
        inspect_done(&r, &p);
    }
}
END_TEST

/* Built without libunwind there is no stack walk: the line says that the function is
 * looked for nowhere, and its allocations stay where they would be without the entry. */
START_TEST(unhookable_function_without_an_unwinder)
{
    struct cmt_run r;
    struct cmt_process p;
    inspect_run(&r, &p, "counts", "ins=func:inspect_loop", NULL);
    const struct cmt_scope *s = scope_named(&p, "ins");
    ck_assert_msg(s == NULL || s->allocations == 0,
                  "expected no allocation in scope ins, got %llu",
                  s ? (unsigned long long)s->allocations : 0ULL);
    ASSERT_ROW(scope_named(&p, "global"), CMT_REPORT_KIND_GLOBAL, 1, 12, 5, 7, 152);
    assert_said(&r, 1, LOOP_DIAG);
    ck_assert_ptr_nonnull(strstr(r.err, "), nor look for it on the stack (built without "
                                        "libunwind); its allocations are attributed only "
                                        "where the program was built with "
                                        "-finstrument-functions\n"));
    inspect_done(&r, &p);
}
END_TEST

/* A function shorter than the jump, with code right after it. */
START_TEST(too_short_function_found_on_the_stack)
{
    struct cmt_run r;
    struct cmt_process p;
    inspect_run(&r, &p, "short", "short=func:inspect_short", NULL);
    ASSERT_ROW(scope_named(&p, "short"), CMT_REPORT_KIND_FUNC, 2, 2, 0, 2, 42);
    assert_said(&r, 1, "cymemtrack: CYMEMTRACK_SCOPES: entry \"short\": cannot hook "
                       "inspect_short (too short to patch" INSPECT_DIAG);
    inspect_done(&r, &p);
}
END_TEST

/* The innermost configured function wins, hooked or inspected: a hooked call's allocations
 * around an inspected one go to the hooked scope, and the inspected call's to its own; a
 * hooked call inside an inspected one takes its allocations back. */
START_TEST(inspected_and_hooked_functions_nest)
{
    struct cmt_run r;
    struct cmt_process p;
    inspect_run(&r, &p, "nest", "ins=func:inspect_loop;outer=func:hooked_outer;"
                                "inner=func:hooked_keep", NULL);
    /* hooked_outer: 2 x 11 of its own around inspect_loop's 2 x 13; then inspect_loop's
     * 2 x 17, each handed to hooked_keep, which adds 19 of its own. */
    ASSERT_ROW(scope_named(&p, "outer"), CMT_REPORT_KIND_FUNC, 1, 2, 0, 2, 22);
    ASSERT_ROW(scope_named(&p, "ins"), CMT_REPORT_KIND_FUNC, 2, 4, 0, 4, 2 * 13 + 2 * 17);
    ASSERT_ROW(scope_named(&p, "inner"), CMT_REPORT_KIND_FUNC, 2, 2, 0, 2, 38);
    assert_said(&r, 1, LOOP_DIAG);
    inspect_done(&r, &p);
}
END_TEST

/* bulk is refused for an inspected function, in the same line: its instances close when an
 * allocation shows the call gone, which a walk that missed a frame could get wrong. */
START_TEST(inspected_function_refuses_bulk)
{
    struct cmt_run r;
    struct cmt_process p;
    inspect_run(&r, &p, "counts", "ins=func:inspect_loop,bulk", NULL);
    const struct cmt_scope *s = scope_named(&p, "ins");
    ASSERT_ROW(s, CMT_REPORT_KIND_FUNC, 2, 10, 3, 7, 152);
    ck_assert_uint_eq(s->bulk_freed_blocks, 0);
    assert_said(&r, 1, "(instance counts approximate; bulk not applied)\n");
    inspect_done(&r, &p);
}
END_TEST

/* A thread that calls the function and ends: its instance closes with the thread. */
START_TEST(inspected_instance_closes_with_its_thread)
{
    struct cmt_run r;
    struct cmt_process p;
    inspect_run(&r, &p, "thread", "ins=func:inspect_loop,quiet", NULL);
    const struct cmt_scope *s = scope_named(&p, "ins");
    ASSERT_ROW(s, CMT_REPORT_KIND_FUNC, 1, 4, 0, 4, 32);
    uint64_t in_closed = 0;
    for (size_t i = 0; i < p.nleaks; i++)
        if (p.leaks[i].scope == s->id)
            in_closed += p.leaks[i].blocks_in_closed;
    ck_assert_uint_eq(in_closed, 4);
    ck_assert_uint_eq(s->outlived_at_close, 4);
    assert_said(&r, 0, NULL);   /* quiet */
    inspect_done(&r, &p);
}
END_TEST

/* The function is in a module loaded later: looked for again at the dlopen, as a hooked one
 * would be, and found on the stack from then on. */
START_TEST(inspected_function_in_a_module_loaded_later)
{
    struct cmt_run r;
    struct cmt_process p;
    inspect_run(&r, &p, "dl", "dl=func:dl_inspect_loop", NULL);
    ASSERT_ROW(scope_named(&p, "dl"), CMT_REPORT_KIND_FUNC, 1, 3, 0, 3, 27);
    assert_said(&r, 2, "entry \"dl\": no function \"dl_inspect_loop\"");
    ck_assert_ptr_nonnull(strstr(r.err, "entry \"dl\": cannot hook dl_inspect_loop (a jump "
                                        "into its first bytes"));
    inspect_done(&r, &p);
}
END_TEST

/* A program built with -finstrument-functions says when each call begins and ends: three
 * calls in a row, which the stack alone would take for one, are three instances. */
START_TEST(instrumented_calls_replace_the_inspection)
{
    struct cmt_run r;
    struct cmt_process p;
    inspect_run(&r, &p, "cyg", "ins=func:inspect_loop", NULL);
    ASSERT_ROW(scope_named(&p, "ins"), CMT_REPORT_KIND_FUNC, 3, 6, 0, 6, 60);
    assert_said(&r, 1, LOOP_DIAG);
    inspect_done(&r, &p);
}
END_TEST

static Suite *envscope_suite(void)
{
    Suite *s = suite_create("envscope");
    TCase *tc = tcase_create("kinds");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, func_scopes_count_each_call);
    tcase_add_test(tc, func_scope_with_bulk_frees_at_return);
    tcase_add_test(tc, thread_scope_by_name);
    tcase_add_test(tc, signal_window_and_its_snapshot);
    tcase_add_test(tc, all_kinds_together);
    tcase_add_test(tc, xmllint_scopes_on_libxml2);
    tcase_add_test(tc, hook_keeps_the_callers_registers);
    suite_add_tcase(s, tc);
    tc = tcase_create("inspected");
    tcase_set_timeout(tc, 30);
    if (cmt_test_have_stacks()) {
        tcase_add_test(tc, unhookable_function_found_on_the_stack);
        tcase_add_test(tc, too_short_function_found_on_the_stack);
        tcase_add_test(tc, inspected_and_hooked_functions_nest);
        tcase_add_test(tc, inspected_function_refuses_bulk);
        tcase_add_test(tc, inspected_instance_closes_with_its_thread);
        tcase_add_test(tc, inspected_function_in_a_module_loaded_later);
    } else {
        fprintf(stderr, "check_envscope: built without libunwind: no stack walk, so the "
                        "inspection tests are replaced by one that checks it says so\n");
        tcase_add_test(tc, unhookable_function_without_an_unwinder);
    }
    tcase_add_test(tc, instrumented_calls_replace_the_inspection);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, bad_entries_are_named_and_skipped);
    tcase_add_test(tc, quiet_silences_an_entry);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cmt_run_suite(envscope_suite());
}
