/*
 * check_fds.c — the tracker's own file descriptors stay out of the program's way. libunwind,
 * when a stack needs it, holds a pipe to check addresses with (src/unwind-pipe.c): it must
 * not take the numbers a program gets from open(), nor ever read or write a file of the
 * program's that has come to sit where that pipe was. tests/progs/fdprog allocates from
 * code without unwind tables (nocfi.S), so that its stacks go through libunwind.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "fdprog"

/* Runs fdprog MODE with the preload or without it, stacks at depth (NULL: the default). */
static void run_mode(struct cmt_run *r, int preload, const char *mode, const char *depth)
{
    char setting[64];
    snprintf(setting, sizeof setting, "CYMEMTRACK_STACK_DEPTH=%s", depth ? depth : "");
    cmt_run(r, preload, (char *[]){ (char *)cmt_test_prog(PROG), (char *)mode, NULL },
            (char *[]){ "CYMEMTRACK_OUTPUT=", setting, NULL });
    ck_assert_msg(r->exit_code == 0, "fdprog %s: exit %d signal %d; stderr:\n%s", mode,
                  r->exit_code, r->signal, r->err);
}

/* The first open() of a tracked program gets the descriptor it gets untracked, stacks on
 * or off. */
START_TEST(first_open_gets_the_usual_descriptor)
{
    struct cmt_run plain, tracked;
    run_mode(&plain, 0, "first", NULL);
    unsigned long long want = cmt_field(plain.out, "fd");
    const char *depths[] = { "0", NULL, "64" };
    for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
        run_mode(&tracked, 1, "first", depths[i]);
        ck_assert_msg(cmt_field(tracked.out, "fd") == want,
                      "stack depth %s: expected the first open() to give %llu, as without the "
                      "tracker; got %llu", depths[i] ? depths[i] : "default", want,
                      cmt_field(tracked.out, "fd"));
        ck_assert_int_eq(cmt_count_lines(tracked.err, "cymemtrack:"), 0);
        cmt_run_free(&tracked);
    }
    cmt_run_free(&plain);
}
END_TEST

/* A program that closes every descriptor and opens its files as 3 and 4 finds them as it
 * left them after allocations whose stacks libunwind walks. */
START_TEST(files_on_low_descriptors_are_never_touched)
{
    struct cmt_run r;
    run_mode(&r, 1, "reuse", "64");
    ck_assert_uint_eq(cmt_field(r.out, "in_offset"), 0);
    ck_assert_uint_eq(cmt_field(r.out, "out_size"), 0);
    ck_assert_int_eq(cmt_count_lines(r.err, "cymemtrack:"), 0);
    cmt_run_free(&r);
}
END_TEST

/* A program that puts its own file where libunwind's pipe was: libunwind is not used again
 * (one line says so), and the file is left alone. */
START_TEST(a_pipe_taken_over_bars_libunwind)
{
    struct cmt_run r;
    run_mode(&r, 1, "takeover", "64");
    bool stacks = cmt_test_have_stacks();
    ck_assert_uint_eq(cmt_field(r.out, "taken"), (stacks ? 2 : 0));
    ck_assert_uint_eq(cmt_field(r.out, "in_offset"), 0);
    ck_assert_int_eq(cmt_count_lines(r.err, "cymemtrack: descriptor "), (stacks ? 1 : 0));
    ck_assert_int_eq(cmt_count_lines(r.err, "cymemtrack:"), (stacks ? 1 : 0));
    cmt_run_free(&r);
}
END_TEST

static Suite *fds_suite(void)
{
    Suite *s = suite_create("fds");
    TCase *tc = tcase_create("libunwind's pipe");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, first_open_gets_the_usual_descriptor);
    tcase_add_test(tc, files_on_low_descriptors_are_never_touched);
    tcase_add_test(tc, a_pipe_taken_over_bars_libunwind);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cmt_run_suite(fds_suite());
}
