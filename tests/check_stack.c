/*
 * check_stack.c — stack capture and the stack table (src/stack.c), linked straight into this
 * program: exact frames for known call chains (resolved by name, so the program is linked
 * with -export-dynamic), both unwinders agreeing, deduplication, the depth limit, threads,
 * a full table, and no allocation at all while capturing (this program interposes malloc and
 * counts every call).
 */
#define _GNU_SOURCE
#include "config.h"
#include "harness.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmt.h"

/* GCC's noipa keeps a function and its callers' view of it exactly as written; clang has no
 * such attribute, and noinline is the closest. */
#if defined(__clang__)
#define CMT_NOIPA __attribute__((noinline))
#else
#define CMT_NOIPA __attribute__((noipa))
#endif

/* stack.c's knobs for tests, not part of cmt.h. */
extern int cmt_stack_unwinder;
extern uint32_t cmt_stack_limit;
extern atomic_ulong cmt_stack_fallbacks;

/* ---- counting every allocation made in this process ----------------------------------- */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

/* Per thread, so that a window measures exactly what its own thread did. Volatile: the
 * compiler otherwise assumes that a libc call cannot change a variable it cannot see. */
static __thread volatile unsigned long allocations;

void *malloc(size_t size)
{
    allocations++;
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    allocations++;
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    allocations++;
    return __libc_realloc(p, size);
}

void *memalign(size_t align, size_t size);
void *memalign(size_t align, size_t size)
{
    allocations++;
    return __libc_memalign(align, size);
}

void *aligned_alloc(size_t align, size_t size)
{
    allocations++;
    return __libc_memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    allocations++;
    void *p = __libc_memalign(align, size);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void free(void *p)
{
    __libc_free(p);
}

/* ---- known call chains --------------------------------------------------------------- */

/* Global, not inlined, not cloned and never tail-calling, so that each is a frame of its own
 * that dladdr can name. */
#define FRAME __attribute__((noinline)) CMT_NOIPA
#define NO_TAIL_CALL() __asm__ volatile("" ::: "memory")

uint32_t stack_chain_a(void);
uint32_t stack_chain_b(void);
uint32_t stack_chain_c(void);
uint32_t stack_recurse(int levels);
uint32_t stack_site(int unwinder, int levels);
uint32_t stack_path_zero(unsigned bits, int levels);
uint32_t stack_path_one(unsigned bits, int levels);
void stack_on_signal(int sig);
uint32_t stack_raiser(void);

FRAME uint32_t stack_chain_c(void)
{
    uint32_t id = cmt_stack_capture();
    NO_TAIL_CALL();
    return id;
}

FRAME uint32_t stack_chain_b(void)
{
    uint32_t id = stack_chain_c();
    NO_TAIL_CALL();
    return id;
}

FRAME uint32_t stack_chain_a(void)
{
    uint32_t id = stack_chain_b();
    NO_TAIL_CALL();
    return id;
}

FRAME uint32_t stack_recurse(int levels)
{
    uint32_t id = levels > 0 ? stack_recurse(levels - 1) : cmt_stack_capture();
    NO_TAIL_CALL();
    return id;
}

/* A stack of levels + 1 frames of stack_recurse and this function's, and nothing of its
 * caller's: every call gives the same stack, from wherever it is made (the compiler may copy
 * a call site, unrolling a loop). */
FRAME uint32_t stack_site(int unwinder, int levels)
{
    cmt_stack_unwinder = unwinder;
    cmt_cfg.stack_depth = levels + 2;
    uint32_t id = stack_recurse(levels);
    NO_TAIL_CALL();
    return id;
}

/* A path of `levels` calls, each to stack_path_zero or stack_path_one as the bits say: 2^levels
 * distinct stacks from two functions. */
FRAME uint32_t stack_path_zero(unsigned bits, int levels)
{
    uint32_t id = levels == 0 ? cmt_stack_capture()
                : (bits & 1) ? stack_path_one(bits >> 1, levels - 1)
                             : stack_path_zero(bits >> 1, levels - 1);
    NO_TAIL_CALL();
    return id;
}

FRAME uint32_t stack_path_one(unsigned bits, int levels)
{
    uint32_t id = levels == 0 ? cmt_stack_capture()
                : (bits & 1) ? stack_path_one(bits >> 1, levels - 1)
                             : stack_path_zero(bits >> 1, levels - 1);
    NO_TAIL_CALL();
    return id;
}

static const char *name_of(uintptr_t pc)
{
    Dl_info info;
    /* pc is a return address: the call that made the frame is just before it. */
    if (dladdr((void *)(pc - 1), &info) && info.dli_sname)
        return info.dli_sname;
    return "?";
}

/* The frames of id by name, " > "-separated, innermost first: for failure messages. */
static const char *describe(uint32_t id)
{
    static char buf[2048];
    const uintptr_t *pcs;
    uint32_t depth;
    if (!cmt_stack_get(id, &pcs, &depth))
        return "(no such stack)";
    size_t len = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < depth && len < sizeof buf - 1; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i ? " > " : "",
                                name_of(pcs[i]));
    return buf;
}

static void start(void)
{
    cmt_cfg.stack_depth = CMT_STACK_DEPTH_DEFAULT;
    cmt_stack_init();
}

#ifdef HAVE_LIBUNWIND

/* Test loops run once with each unwinder: 0 the cached rules, 1 libunwind alone. */
static void use_unwinder(int which)
{
    cmt_stack_unwinder = which;
}

START_TEST(chain_frames_in_order)
{
    use_unwinder(_i);
    uint32_t id = stack_chain_a();
    const uintptr_t *pcs;
    uint32_t depth;
    ck_assert_msg(id != 0, "expected a stack, got id 0");
    ck_assert(cmt_stack_get(id, &pcs, &depth));
    ck_assert_msg(depth >= 4, "expected at least c, b, a and the test, got %s", describe(id));
    ck_assert_msg(strcmp(name_of(pcs[0]), "stack_chain_c") == 0 &&
                      strcmp(name_of(pcs[1]), "stack_chain_b") == 0 &&
                      strcmp(name_of(pcs[2]), "stack_chain_a") == 0,
                  "expected stack_chain_c > stack_chain_b > stack_chain_a > ..., got %s",
                  describe(id));
    ck_assert_msg(strcmp(name_of(pcs[3]), "stack_chain_a") != 0,
                  "expected the test function after stack_chain_a, got %s", describe(id));
}
END_TEST

/* The two unwinders give the very same frames, so the same id. */
START_TEST(unwinders_agree)
{
    uint32_t ids[2][3];
    for (int u = 0; u < 2; u++)
        for (int i = 0; i < 3; i++)
            ids[u][i] = stack_site(u, 20 * i);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(ids[0][i] == ids[1][i] && ids[0][i] != 0,
                      "depth %d: cached rules gave %u (%s), libunwind %u", 20 * i, ids[0][i],
                      describe(ids[0][i]), ids[1][i]);
    ck_assert_uint_eq(cmt_stack_count(), 3);
}
END_TEST

START_TEST(same_site_same_id)
{
    uint32_t ids[100];
    for (int i = 0; i < 100; i++)
        ids[i] = stack_site(_i, 3);
    for (int i = 1; i < 100; i++)
        ck_assert_uint_eq(ids[i], ids[0]);
    ck_assert_uint_eq(ids[0], 1);

    /* The same chain from two call sites: two stacks. */
    use_unwinder(_i);
    cmt_cfg.stack_depth = CMT_STACK_DEPTH_DEFAULT;
    uint32_t here = stack_chain_a();
    uint32_t there = stack_chain_a();
    uint32_t deeper = stack_site(_i, 4);
    ck_assert_msg(here != there && here > 1 && there > 1,
                  "expected two new ids for two call sites, got %u and %u", here, there);
    ck_assert_msg(deeper != ids[0] && deeper != here && deeper != there && deeper != 0,
                  "expected a new id for a deeper chain, got %u", deeper);
    ck_assert_uint_eq(cmt_stack_count(), 4);
}
END_TEST

START_TEST(depth_limit_is_honoured)
{
    use_unwinder(_i);
    const uintptr_t *pcs;
    uint32_t depth;

    cmt_cfg.stack_depth = 2;
    uint32_t two = stack_chain_a();
    ck_assert(cmt_stack_get(two, &pcs, &depth));
    ck_assert_uint_eq(depth, 2);
    ck_assert_str_eq(name_of(pcs[0]), "stack_chain_c");
    ck_assert_str_eq(name_of(pcs[1]), "stack_chain_b");

    cmt_cfg.stack_depth = 1;
    uint32_t one = stack_chain_a();
    ck_assert(cmt_stack_get(one, &pcs, &depth));
    ck_assert_uint_eq(depth, 1);
    ck_assert_str_eq(name_of(pcs[0]), "stack_chain_c");
    ck_assert_uint_ne(one, two);

    cmt_cfg.stack_depth = CMT_STACK_MAX_DEPTH;
    uint32_t deep = stack_recurse(100);
    ck_assert(cmt_stack_get(deep, &pcs, &depth));
    ck_assert_uint_eq(depth, CMT_STACK_MAX_DEPTH);
    for (uint32_t i = 0; i < depth; i++)
        ck_assert_msg(strcmp(name_of(pcs[i]), "stack_recurse") == 0,
                      "frame %u: expected stack_recurse, got %s", i, name_of(pcs[i]));

    cmt_cfg.stack_depth = 0;
    uint32_t none = stack_chain_a();
    uint32_t count = cmt_stack_count();
    ck_assert_uint_eq(none, 0);
    ck_assert_uint_eq(count, 3);
}
END_TEST

START_TEST(unknown_ids_are_refused)
{
    const uintptr_t *pcs = NULL;
    uint32_t depth = 99;
    uint32_t id = stack_chain_a();
    ck_assert_uint_eq(id, 1);
    ck_assert(!cmt_stack_get(0, &pcs, &depth));
    ck_assert(!cmt_stack_get(2, &pcs, &depth));
    ck_assert(!cmt_stack_get(UINT32_MAX, &pcs, &depth));
    ck_assert_ptr_null(pcs);
    ck_assert_uint_eq(depth, 99);
}
END_TEST

START_TEST(capture_before_init_is_none)
{
    uint32_t id = cmt_stack_capture();
    ck_assert_uint_eq(id, 0);
    ck_assert_uint_eq(cmt_stack_count(), 0);
}
END_TEST

/* 4096 distinct stacks: the table grows past its first size and keeps every id. */
START_TEST(many_stacks_keep_their_ids)
{
    enum { LEVELS = 12, N = 1 << LEVELS };
    use_unwinder(0);
    cmt_cfg.stack_depth = LEVELS + 1;     /* the path's frames, whoever calls it */
    static uint32_t first[N], again[N];
    for (unsigned b = 0; b < N; b++)
        first[b] = stack_path_zero(b, LEVELS);
    for (unsigned b = 0; b < N; b++)
        again[b] = stack_path_zero(b, LEVELS);
    for (unsigned b = 0; b < N; b++) {
        ck_assert_msg(first[b] == b + 1, "path %u: expected id %u, got %u", b, b + 1,
                      first[b]);
        ck_assert_uint_eq(again[b], first[b]);
    }
    ck_assert_uint_eq(cmt_stack_count(), N);
    const uintptr_t *pcs;
    uint32_t depth;
    /* Path 5 = 0b101, from the outermost call: zero, then one, zero, one (bits 0, 1, 2), then
     * zero down to the innermost frame. */
    ck_assert(cmt_stack_get(first[5], &pcs, &depth));
    ck_assert_str_eq(name_of(pcs[LEVELS]), "stack_path_zero");
    ck_assert_str_eq(name_of(pcs[LEVELS - 1]), "stack_path_one");
    ck_assert_str_eq(name_of(pcs[LEVELS - 2]), "stack_path_zero");
    ck_assert_str_eq(name_of(pcs[LEVELS - 3]), "stack_path_one");
    for (int i = 0; i < LEVELS - 3; i++)
        ck_assert_str_eq(name_of(pcs[i]), "stack_path_zero");
}
END_TEST

START_TEST(full_table_says_so_once)
{
    use_unwinder(0);
    cmt_stack_limit = 5;
    char path[] = "/tmp/check_stack.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    int saved = dup(2);
    dup2(fd, 2);
    uint32_t ids[2][10];
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 10; i++)
            ids[round][i] = stack_site(0, i);
    dup2(saved, 2);
    close(saved);
    char err[1024] = "";
    ssize_t got = pread(fd, err, sizeof err - 1, 0);
    close(fd);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 5; i++)     /* the stacks the table took are still found */
            ck_assert_uint_eq(ids[round][i], (uint32_t)i + 1);
        for (int i = 5; i < 10; i++)
            ck_assert_uint_eq(ids[round][i], 0);
    }
    ck_assert_uint_eq(cmt_stack_count(), 5);
    ck_assert_int_gt(got, 0);
    err[got] = '\0';
    ck_assert_int_eq(cmt_count_lines(err, "cymemtrack: stack table full"), 1);
    ck_assert_int_eq(cmt_count_lines(err, "cymemtrack:"), 1);
}
END_TEST

/* ---- signal frames ------------------------------------------------------------------- */

static volatile uint32_t signal_id;

FRAME void stack_on_signal(int sig)
{
    (void)sig;
    signal_id = cmt_stack_capture();
    NO_TAIL_CALL();
}

FRAME uint32_t stack_raiser(void)
{
    raise(SIGUSR1);
    NO_TAIL_CALL();
    return signal_id;
}

/* A stack through a signal frame: the cached rules hand it to libunwind, and the frames go
 * on past the signal into the code it interrupted. */
START_TEST(through_a_signal_frame)
{
    signal(SIGUSR1, stack_on_signal);
    cmt_cfg.stack_depth = CMT_STACK_MAX_DEPTH;
    uint32_t ids[2];
    unsigned long slow[2];
    for (int u = 0; u < 2; u++) {
        use_unwinder(u);
        unsigned long before = atomic_load(&cmt_stack_fallbacks);
        ids[u] = stack_raiser();
        slow[u] = atomic_load(&cmt_stack_fallbacks) - before;
    }
    /* Up to stack_raiser the two stacks are the same (the calls above it, from a loop the
     * compiler may unroll, need not be). */
    uint32_t upto[2] = { 0, 0 };
    const uintptr_t *pcs[2];
    uint32_t depth[2];
    for (int u = 0; u < 2; u++) {
        ck_assert(cmt_stack_get(ids[u], &pcs[u], &depth[u]));
        ck_assert_msg(strcmp(name_of(pcs[u][0]), "stack_on_signal") == 0,
                      "expected stack_on_signal first, got %s", describe(ids[u]));
        for (uint32_t i = 1; i < depth[u] && !upto[u]; i++)
            if (strcmp(name_of(pcs[u][i]), "stack_raiser") == 0)
                upto[u] = i;
        ck_assert_msg(upto[u] >= 2, "expected stack_raiser past the signal frame, got %s",
                      describe(ids[u]));
    }
    ck_assert_uint_eq(upto[0], upto[1]);
    ck_assert(memcmp(pcs[0], pcs[1], (upto[0] + 1) * sizeof(uintptr_t)) == 0);
    ck_assert_uint_eq(slow[0], 1);      /* the cached rules gave this stack to libunwind */
    ck_assert_uint_eq(slow[1], 0);
}
END_TEST

/* ---- threads ------------------------------------------------------------------------- */

enum { THREADS = 4, VARIANTS = 41, ROUNDS = 25 };    /* 41: prime, every order visits all */

struct worker {
    pthread_barrier_t *start;
    unsigned index;
    uint32_t ids[VARIANTS];
    uint32_t chain;
    bool consistent;
    unsigned long allocations;
};

static void *worker(void *arg)
{
    struct worker *w = arg;
    pthread_barrier_wait(w->start);
    unsigned long before = allocations;
    w->consistent = true;
    for (unsigned r = 0; r < ROUNDS; r++) {
        for (unsigned k = 0; k < VARIANTS; k++) {
            unsigned v = (k * (2 * w->index + 1) + r) % VARIANTS;  /* each thread its order */
            uint32_t id = stack_recurse((int)v);
            if (w->ids[v] == 0)
                w->ids[v] = id;
            else if (w->ids[v] != id)
                w->consistent = false;
        }
    }
    w->chain = stack_chain_a();
    w->allocations = allocations - before;
    return NULL;
}

/* Threads capturing the same stacks at once, each in its own order, get the same ids. */
START_TEST(threads_agree_on_ids)
{
    use_unwinder(_i);
    cmt_cfg.stack_depth = CMT_STACK_MAX_DEPTH;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    static struct worker w[THREADS];
    pthread_t tid[THREADS];
    for (unsigned t = 0; t < THREADS; t++) {
        w[t] = (struct worker){ .start = &start, .index = t };
        ck_assert_int_eq(pthread_create(&tid[t], NULL, worker, &w[t]), 0);
    }
    for (unsigned t = 0; t < THREADS; t++)
        pthread_join(tid[t], NULL);
    pthread_barrier_destroy(&start);
    for (unsigned t = 0; t < THREADS; t++) {
        ck_assert_msg(w[t].consistent, "thread %u got different ids for one stack", t);
        ck_assert_uint_eq(w[t].allocations, 0);
        ck_assert_uint_eq(w[t].chain, w[0].chain);
        for (unsigned v = 0; v < VARIANTS; v++) {
            ck_assert_msg(w[t].ids[v] == w[0].ids[v] && w[t].ids[v] != 0,
                          "variant %u: thread %u got %u, thread 0 got %u", v, t, w[t].ids[v],
                          w[0].ids[v]);
            for (unsigned u = 0; u < v; u++)
                ck_assert_uint_ne(w[0].ids[u], w[0].ids[v]);
        }
    }
    ck_assert_uint_eq(cmt_stack_count(), VARIANTS + 1);
}
END_TEST

/* ---- no allocation while capturing ---------------------------------------------------- */

struct alloc_probe {
    unsigned long allocations;
    uint32_t id;
};

static void *probe_thread(void *arg)
{
    struct alloc_probe *p = arg;
    unsigned long before = allocations;
    uint32_t a = stack_site(0, 3);
    uint32_t b = stack_site(1, 3);
    p->allocations = allocations - before;
    p->id = a == b ? a : 0;
    return NULL;
}

START_TEST(interposed_malloc_counts)
{
    unsigned long before = allocations;
    char *s = strdup("counted");    /* libc calls malloc: it must reach the counter */
    unsigned long n = allocations - before;
    free(s);
    ck_assert_uint_eq(n, 1);
}
END_TEST

START_TEST(capture_never_allocates)
{
    cmt_cfg.stack_depth = CMT_STACK_MAX_DEPTH;
    unsigned long before = allocations;
    cmt_stack_init();
    unsigned long init = allocations - before;

    /* First captures: rules read from .eh_frame, stacks added, libunwind started. */
    before = allocations;
    uint32_t site[4];
    for (int i = 0; i < 4; i++)
        site[i] = stack_site(0, 3);
    for (int i = 0; i < 20; i++)
        stack_site(0, i);
    uint32_t plain = stack_site(1, 3);
    for (int i = 0; i < 20; i++)
        stack_site(1, i);
    signal(SIGUSR1, stack_on_signal);
    use_unwinder(0);
    cmt_cfg.stack_depth = CMT_STACK_MAX_DEPTH;
    uint32_t through_signal = stack_raiser();
    unsigned long during = allocations - before;

    /* A thread's first captures, with both unwinders. */
    struct alloc_probe probe = { 0, 0 };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, probe_thread, &probe), 0);
    pthread_join(t, NULL);

    ck_assert_uint_eq(init, 0);
    ck_assert_uint_eq(during, 0);
    ck_assert_uint_eq(probe.allocations, 0);
    ck_assert_uint_ne(site[0], 0);
    for (int i = 1; i < 4; i++)
        ck_assert_uint_eq(site[i], site[0]);
    ck_assert_uint_eq(plain, site[0]);
    ck_assert_uint_ne(through_signal, 0);
    ck_assert_uint_ne(probe.id, 0);
}
END_TEST

static Suite *stack_suite(void)
{
    Suite *s = suite_create("stack");
    TCase *tc = tcase_create("capture");
    tcase_add_checked_fixture(tc, start, NULL);
    tcase_add_loop_test(tc, chain_frames_in_order, 0, 2);
    tcase_add_test(tc, unwinders_agree);
    tcase_add_loop_test(tc, same_site_same_id, 0, 2);
    tcase_add_loop_test(tc, depth_limit_is_honoured, 0, 2);
    tcase_add_test(tc, unknown_ids_are_refused);
    tcase_add_test(tc, through_a_signal_frame);
    suite_add_tcase(s, tc);

    tc = tcase_create("table");
    tcase_add_checked_fixture(tc, start, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, many_stacks_keep_their_ids);
    tcase_add_test(tc, full_table_says_so_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_add_checked_fixture(tc, start, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, threads_agree_on_ids, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("allocation");
    tcase_add_test(tc, interposed_malloc_counts);
    tcase_add_test(tc, capture_never_allocates);
    tcase_add_test(tc, capture_before_init_is_none);
    suite_add_tcase(s, tc);
    return s;
}

#else /* !HAVE_LIBUNWIND */

START_TEST(no_stacks_without_libunwind)
{
    uint32_t id = stack_chain_a();
    ck_assert_msg(id == 0, "expected no stack without libunwind, got %u: %s", id, describe(id));
    ck_assert_uint_eq(cmt_stack_count(), 0);
}
END_TEST

static Suite *stack_suite(void)
{
    Suite *s = suite_create("stack");
    TCase *tc = tcase_create("capture");
    tcase_add_checked_fixture(tc, start, NULL);
    tcase_add_test(tc, no_stacks_without_libunwind);
    suite_add_tcase(s, tc);
    return s;
}

#endif

int main(void)
{
    return cmt_run_suite(stack_suite());
}
