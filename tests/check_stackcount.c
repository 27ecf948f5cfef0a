/*
 * check_stackcount.c — allocations per (scope, stack) (src/stackcount.c): every count lands
 * exactly once, from one thread or many, with caches evicting, across thread exit and fork,
 * and past the shared table's size (counted per scope, one diagnostic); then, end to end, a
 * program whose threads allocate from a thousand stacks leaves ALLOCSITE records that add
 * up exactly to its scopes' allocations and bytes, in its report and in a fork child's.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmt.h"
#include "report.h"

extern uint32_t cmt_stackcount_limit;

/* ---- the module, driven directly ----------------------------------------------------- */

#define NAMES 3u
#define STACKS 3000u

/* Counts per (name, stack): what was noted, and what foreach gave back. */
struct tally {
    uint64_t allocs[NAMES][STACKS + 1], bytes[NAMES][STACKS + 1];
    uint64_t entries, bad_keys;
};

static void tally_add(const struct cmt_stackcount_entry *e, void *arg)
{
    struct tally *t = arg;
    t->entries++;
    if (e->name >= NAMES || e->stack > STACKS) {
        t->bad_keys++;
        return;
    }
    t->allocs[e->name][e->stack] += e->allocs;
    t->bytes[e->name][e->stack] += e->bytes;
}

static struct cmt_instance inst[NAMES];

static void unit_setup(void)
{
    cmt_cfg.stack_depth = 16;
    for (uint32_t n = 0; n < NAMES; n++)
        inst[n].name = n;
}

/* Notes `count` allocations from thread t, keys and sizes drawn from seed; adds them to
 * *want. */
static void note_many(struct cmt_thread *t, uint64_t seed, unsigned count, struct tally *want)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15u + 7;
    for (unsigned i = 0; i < count; i++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        uint32_t name = (uint32_t)(x >> 60) % NAMES;
        uint32_t stack = 1 + (uint32_t)(x >> 32) % STACKS;
        size_t size = (size_t)(x >> 20) % 4096;
        cmt_stackcount_note(t, &inst[name], stack, size);
        if (want) {
            want->allocs[name][stack]++;
            want->bytes[name][stack] += size;
        }
    }
}

/* Compares what foreach gives now with want, key by key; returns the first difference, or
 * NULL. Measures only: the caller asserts. */
static char *tally_diff(const struct tally *want)
{
    static struct tally got;
    memset(&got, 0, sizeof got);
    cmt_stackcount_foreach(tally_add, &got);
    static char msg[256];
    if (got.bad_keys) {
        snprintf(msg, sizeof msg, "%llu entries with a key never noted",
                 (unsigned long long)got.bad_keys);
        return msg;
    }
    for (uint32_t n = 0; n < NAMES; n++)
        for (uint32_t s = 0; s <= STACKS; s++)
            if (got.allocs[n][s] != want->allocs[n][s] || got.bytes[n][s] != want->bytes[n][s]) {
                snprintf(msg, sizeof msg, "name %u stack %u: expected %llu allocations, %llu "
                         "bytes; got %llu, %llu", n, s,
                         (unsigned long long)want->allocs[n][s],
                         (unsigned long long)want->bytes[n][s],
                         (unsigned long long)got.allocs[n][s],
                         (unsigned long long)got.bytes[n][s]);
                return msg;
            }
    return NULL;
}

static struct tally want_all;

START_TEST(one_thread_counts_every_key_exactly)
{
    struct cmt_thread t = { .state = CMT_THREAD_LIVE, .number = 1 };
    memset(&want_all, 0, sizeof want_all);
    note_many(&t, 1, 200000, &want_all);
    char *diff = tally_diff(&want_all);
    ck_assert_msg(diff == NULL, "%s", diff);
    /* At thread exit the cache drains: the same counts, now all in the shared table. */
    cmt_stackcount_thread_exit();
    ck_assert_ptr_null(cmt_stackcount_mine);
    diff = tally_diff(&want_all);
    ck_assert_msg(diff == NULL, "after the thread's exit: %s", diff);
}
END_TEST

START_TEST(nothing_is_counted_without_stacks)
{
    cmt_cfg.stack_depth = 0;
    struct cmt_thread t = { .state = CMT_THREAD_LIVE, .number = 1 };
    note_many(&t, 2, 1000, NULL);
    struct tally *got = calloc(1, sizeof *got);
    cmt_stackcount_foreach(tally_add, got);
    uint64_t entries = got->entries;
    free(got);
    ck_assert_uint_eq(entries, 0);
    ck_assert_ptr_null(cmt_stackcount_mine);
}
END_TEST

#define WORKERS 4
#define PER_WORKER 150000u

static pthread_barrier_t noted, checked;
static struct tally want_threads;
static pthread_mutex_t want_lock = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg)
{
    struct cmt_thread t = { .state = CMT_THREAD_LIVE, .number = (uint32_t)(uintptr_t)arg };
    struct tally *mine = calloc(1, sizeof *mine);
    note_many(&t, (uintptr_t)arg, PER_WORKER, mine);
    pthread_mutex_lock(&want_lock);
    for (uint32_t n = 0; n < NAMES; n++)
        for (uint32_t s = 0; s <= STACKS; s++) {
            want_threads.allocs[n][s] += mine->allocs[n][s];
            want_threads.bytes[n][s] += mine->bytes[n][s];
        }
    pthread_mutex_unlock(&want_lock);
    free(mine);
    pthread_barrier_wait(&noted);
    pthread_barrier_wait(&checked);
    cmt_stackcount_thread_exit();
    /* A thread past its exit counts straight into the shared table. */
    t.state = CMT_THREAD_GONE;
    cmt_stackcount_note(&t, &inst[1], 5, 100);
    pthread_mutex_lock(&want_lock);
    want_threads.allocs[1][5]++;
    want_threads.bytes[1][5] += 100;
    pthread_mutex_unlock(&want_lock);
    return NULL;
}

static void start_workers(pthread_t *th, bool reset)
{
    if (reset)
        memset(&want_threads, 0, sizeof want_threads);
    pthread_barrier_init(&noted, NULL, WORKERS + 1);
    pthread_barrier_init(&checked, NULL, WORKERS + 1);
    for (uintptr_t i = 0; i < WORKERS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker, (void *)(i + 1)), 0);
    pthread_barrier_wait(&noted);
}

static void finish_workers(pthread_t *th)
{
    pthread_barrier_wait(&checked);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(th[i], NULL);
}

START_TEST(threads_count_every_key_exactly)
{
    pthread_t th[WORKERS];
    start_workers(th, true);
    /* The workers wait, alive, with their caches full: the report reads them there. */
    char *while_alive = tally_diff(&want_threads);
    finish_workers(th);
    ck_assert_msg(while_alive == NULL, "while the threads live: %s", while_alive);
    char *after = tally_diff(&want_threads);
    ck_assert_msg(after == NULL, "after they exited: %s", after);
    /* Their caches are recycled, emptied: new threads' counts add up as well. */
    start_workers(th, false);
    finish_workers(th);
    char *again = tally_diff(&want_threads);
    ck_assert_msg(again == NULL, "with recycled caches: %s", again);
}
END_TEST

/* fork_prepare and fork_child as lifecycle.c calls them: the child counts the caches of the
 * threads that did not follow it. */
START_TEST(a_fork_child_keeps_every_count)
{
    pthread_t th[WORKERS];
    start_workers(th, true);
    struct cmt_thread t = { .state = CMT_THREAD_LIVE, .number = 99 };
    cmt_stackcount_note(&t, &inst[2], 7, 33);
    want_threads.allocs[2][7]++;
    want_threads.bytes[2][7] += 33;
    cmt_stackcount_lock();
    pid_t pid = fork();
    if (pid == 0) {
        cmt_stackcount_after_fork_child();
        int bad = tally_diff(&want_threads) != NULL;
        /* And counting goes on in the child, the lock released. */
        cmt_stackcount_note(&t, &inst[0], 9, 1);
        want_threads.allocs[0][9]++;
        want_threads.bytes[0][9] += 1;
        cmt_stackcount_thread_exit();
        bad |= (tally_diff(&want_threads) != NULL) << 1;
        _exit(bad);
    }
    cmt_stackcount_unlock();
    int status = -1;
    waitpid(pid, &status, 0);
    char *parent = tally_diff(&want_threads);
    finish_workers(th);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the child's counts differ (status %#x: 1 at the fork, 2 after)", status);
    ck_assert_msg(parent == NULL, "the parent's counts: %s", parent);
}
END_TEST

/* Past the table's size, counts go on per name without a stack, with one diagnostic. */
START_TEST(a_full_table_counts_per_scope)
{
    cmt_stackcount_limit = 100;
    int saved = dup(2);
    char path[] = "/tmp/cmt-stackcount-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    dup2(fd, 2);
    struct cmt_thread t = { .state = CMT_THREAD_LIVE, .number = 1 };
    memset(&want_all, 0, sizeof want_all);
    note_many(&t, 3, 100000, &want_all);
    cmt_stackcount_thread_exit();
    dup2(saved, 2);
    close(saved);
    struct tally *got = calloc(1, sizeof *got);
    cmt_stackcount_foreach(tally_add, got);
    uint64_t keys = 0, bad = got->bad_keys;
    bool per_name = true;
    for (uint32_t n = 0; n < NAMES; n++) {
        uint64_t ga = 0, gb = 0, wa = 0, wb = 0;
        for (uint32_t s = 0; s <= STACKS; s++) {
            keys += s && got->allocs[n][s] != 0;
            ga += got->allocs[n][s];
            gb += got->bytes[n][s];
            wa += want_all.allocs[n][s];
            wb += want_all.bytes[n][s];
            /* A stack that was counted was counted whole: it had its entry first. */
            per_name &= !s || !got->allocs[n][s] ||
                        (got->allocs[n][s] == want_all.allocs[n][s] &&
                         got->bytes[n][s] == want_all.bytes[n][s]);
        }
        per_name &= ga == wa && gb == wb && got->allocs[n][0] > 0;
    }
    free(got);
    char *err = cmt_read_text(path);
    unlink(path);
    close(fd);
    ck_assert_uint_eq(bad, 0);
    ck_assert_uint_eq(keys, 100);
    ck_assert_msg(per_name, "per scope, the counts must add up exactly");
    ck_assert_int_eq(cmt_count_lines(err, "cymemtrack: more than 100 distinct (scope, stack) "
                                          "pairs allocated;"), 1);
    ck_assert_int_eq(cmt_count_lines(err, "cymemtrack:"), 1);
    free(err);
}
END_TEST

/* ---- a program under the preload ----------------------------------------------------- */

#define PROG_THREADS 4
#define PROG_ROUNDS 20000u

/* What stackcount_prog allocates in scope "odd" or "even", all threads together. */
static void expected(const char *scope, uint64_t *allocs, uint64_t *bytes)
{
    unsigned want_round = strcmp(scope, "odd") == 0 ? 1 : 3;
    *allocs = *bytes = 0;
    for (unsigned i = 0; i < PROG_ROUNDS; i++) {
        if ((i / 1000) % 4 != want_round)
            continue;
        uint64_t size = 1 + i % 97;
        *allocs += i % 4 == 2 ? 2 : 1;
        *bytes += i % 4 == 2 ? size + 1 : size;
    }
    *allocs *= PROG_THREADS;
    *bytes *= PROG_THREADS;
}

/* Checks one report: per scope, its allocation sites add up to its allocations and bytes;
 * "odd" and "even" hold what the program allocated in them. */
static void check_report_sums(const char *file, bool with_sites)
{
    struct cmt_process p;
    ck_assert_msg(cmt_report_read(file, &p) == 0, "cannot read %s", file);
    ck_assert_uint_eq(p.version, CMT_REPORT_VERSION);
    ck_assert_msg(p.has_allocsites == with_sites, "%s: expected %s allocation sites", file,
                  with_sites ? "" : "no");
    unsigned named = 0;
    size_t sites = p.nallocsites;
    for (size_t i = 0; i < p.nscopes; i++) {
        const struct cmt_scope *s = &p.scopes[i];
        uint64_t a = 0, b = 0;
        for (size_t k = 0; k < p.nallocsites; k++)
            if (p.allocsites[k].scope == s->id) {
                a += p.allocsites[k].allocations;
                b += p.allocsites[k].bytes;
            }
        if (!with_sites)
            ck_assert_uint_eq(a, 0);
        else
            ck_assert_msg(a == s->allocations && b == s->bytes_allocated,
                      "%s: scope %s allocated %llu blocks, %llu bytes; its sites add up to "
                          "%llu, %llu", file, s->name, (unsigned long long)s->allocations,
                          (unsigned long long)s->bytes_allocated, (unsigned long long)a,
                          (unsigned long long)b);
        if (!strcmp(s->name, "odd") || !strcmp(s->name, "even")) {
            uint64_t wa, wb;
            expected(s->name, &wa, &wb);
            ck_assert_uint_eq(s->allocations, wa);
            ck_assert_uint_eq(s->bytes_allocated, wb);
            named++;
        }
    }
    ck_assert_uint_eq(named, 2);
    /* A thousand paths, in three scopes: far more keys than a thread's cache holds. Built
     * without libunwind no stack is captured: one site a scope, under stack 0. */
    if (with_sites && cmt_test_have_stacks()) {
        ck_assert_uint_gt(sites, 2000);
    } else if (with_sites) {
        ck_assert_uint_eq(sites, 3);
        for (size_t k = 0; k < p.nallocsites; k++)
            ck_assert_uint_eq(p.allocsites[k].stack, 0);
    } else {
        ck_assert_uint_eq(sites, 0);
    }
    cmt_process_free(&p);
}

static size_t run_prog(struct cmt_run *r, const char *mode, const char *depth, glob_t *g)
{
    char *argv[] = { (char *)cmt_test_prog("stackcount_prog"), (char *)mode, NULL };
    char env_depth[64];
    snprintf(env_depth, sizeof env_depth, "CYMEMTRACK_STACK_DEPTH=%s", depth);
    char *const env[] = { "CYMEMTRACK_OUTPUT=", env_depth, NULL };
    cmt_run(r, 1, argv, env);
    ck_assert_msg(r->exit_code == 0, "stackcount_prog %s: status %d\n%s", mode, r->exit_code,
                  r->err);
    ck_assert_msg(r->err[0] == '\0', "stackcount_prog %s said:\n%s", mode, r->err);
    char pattern[PATH_MAX];
    snprintf(pattern, sizeof pattern, "%s/cymemtrack.stackcount_prog.*.cmt", r->dir);
    ck_assert_int_eq(glob(pattern, 0, NULL, g), 0);
    return g->gl_pathc;
}

START_TEST(threads_sites_add_up_to_scopes)
{
    struct cmt_run r;
    glob_t g;
    ck_assert_uint_eq(run_prog(&r, "threads", "16", &g), 1);
    check_report_sums(g.gl_pathv[0], true);
    globfree(&g);
    cmt_run_free(&r);
}
END_TEST

START_TEST(fork_child_sites_add_up_to_scopes)
{
    struct cmt_run r;
    glob_t g;
    ck_assert_uint_eq(run_prog(&r, "fork", "16", &g), 2);
    for (size_t i = 0; i < g.gl_pathc; i++)
        check_report_sums(g.gl_pathv[i], true);
    globfree(&g);
    cmt_run_free(&r);
}
END_TEST

/* Sites under a ten-thousandth of their scope's allocations and bytes are summed under no
 * stack; the others keep theirs; the scope still adds up. */
START_TEST(small_sites_are_summed_without_their_stacks)
{
    struct cmt_run r;
    glob_t g;
    ck_assert_uint_eq(run_prog(&r, "skewed", "16", &g), 1);
    struct cmt_process p;
    ck_assert_int_eq(cmt_report_read(g.gl_pathv[0], &p), 0);
    const struct cmt_scope *skew = NULL;
    for (size_t i = 0; i < p.nscopes; i++)
        if (!strcmp(p.scopes[i].name, "skew"))
            skew = &p.scopes[i];
    ck_assert_ptr_nonnull(skew);
    ck_assert_uint_eq(skew->allocations, 30000 + 20);
    ck_assert_uint_eq(skew->bytes_allocated, 30000 * 64 + 20);
    uint64_t listed = 0, listed_allocs = 0, listed_bytes = 0, rest_allocs = 0, rest_bytes = 0;
    for (size_t k = 0; k < p.nallocsites; k++) {
        const struct cmt_allocsite *a = &p.allocsites[k];
        if (a->scope != skew->id)
            continue;
        if (a->stack) {
            listed++;
            listed_allocs += a->allocations;
            listed_bytes += a->bytes;
        } else {
            rest_allocs += a->allocations;
            rest_bytes += a->bytes;
        }
    }
    if (cmt_test_have_stacks()) {
        ck_assert_uint_eq(listed, 1);
        ck_assert_uint_eq(listed_allocs, 30000);
        ck_assert_uint_eq(listed_bytes, 30000 * 64);
        ck_assert_uint_eq(rest_allocs, 20);
        ck_assert_uint_eq(rest_bytes, 20);
    } else {
        ck_assert_uint_eq(listed, 0);
        ck_assert_uint_eq(rest_allocs, 30000 + 20);
        ck_assert_uint_eq(rest_bytes, 30000 * 64 + 20);
    }
    cmt_process_free(&p);
    globfree(&g);
    cmt_run_free(&r);
}
END_TEST

START_TEST(no_sites_without_stacks)
{
    struct cmt_run r;
    glob_t g;
    ck_assert_uint_eq(run_prog(&r, "threads", "0", &g), 1);
    check_report_sums(g.gl_pathv[0], false);
    globfree(&g);
    cmt_run_free(&r);
}
END_TEST

static Suite *stackcount_suite(void)
{
    Suite *s = suite_create("stackcount");
    TCase *tc = tcase_create("module");
    tcase_add_checked_fixture(tc, unit_setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, one_thread_counts_every_key_exactly);
    tcase_add_test(tc, nothing_is_counted_without_stacks);
    tcase_add_test(tc, threads_count_every_key_exactly);
    tcase_add_test(tc, a_fork_child_keeps_every_count);
    tcase_add_test(tc, a_full_table_counts_per_scope);
    suite_add_tcase(s, tc);

    tc = tcase_create("program");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, threads_sites_add_up_to_scopes);
    tcase_add_test(tc, fork_child_sites_add_up_to_scopes);
    tcase_add_test(tc, no_sites_without_stacks);
    tcase_add_test(tc, small_sites_are_summed_without_their_stacks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cmt_run_suite(stackcount_suite());
}
