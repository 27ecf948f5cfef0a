/*
 * check_young.c — the young sets (src/young.c): each thread's newest blocks, kept out of the
 * live table, must be accounted for exactly as if they were in it.
 *
 * Runs inside a process with the library under test preloaded; Check forks each test from a
 * process that has one thread. Every test first asserts that premise, then moves blocks
 * across the edges of the design: more blocks than slots, scopes closing on young blocks,
 * realloc between scopes, double frees, fork, the live count the API reports, and other
 * threads freeing, reallocating and sizing young blocks, before and after their maker exits.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cymemtrack.h"

#define SLOTS 256       /* CMT_YOUNG_SLOTS in src/cmt.h */

/* The case under test needs a process that has had one thread only. */
static void assert_alone(void)
{
    ck_assert_msg(__libc_single_threaded, "expected a single-threaded process: the young "
                  "slots are not in use and the test would not exercise them");
    ck_assert_msg(cmt_active(), "expected the tracker preloaded");
}

static size_t size_of(unsigned i)
{
    return 1 + (i * 37u) % 700u;
}

/* ---- a second thread ----------------------------------------------------------------- */

struct handover {
    void **blocks;
    unsigned n;
};

static void *free_all(void *arg)
{
    struct handover *h = arg;
    for (unsigned i = 0; i < h->n; i++)
        free(h->blocks[i]);
    return NULL;
}

/* Blocks made while the process was alone are freed by a thread started later, which finds
 * them in the main thread's young set. */
START_TEST(blocks_made_alone_are_freed_by_a_later_thread)
{
    assert_alone();
    enum { N = 100 };
    static void *blocks[N];
    uint64_t bytes = 0;
    cmt_stats_snap();
    for (unsigned i = 0; i < N; i++) {
        blocks[i] = malloc(size_of(i));
        bytes += size_of(i);
    }
    struct cmt_process_stats mid = cmt_stats_delta();
    struct handover h = { blocks, N };
    pthread_t th;
    int made = pthread_create(&th, NULL, free_all, &h);
    if (made == 0)
        pthread_join(th, NULL);
    struct cmt_process_stats d = cmt_stats_delta();
    ck_assert_int_eq(made, 0);
    ck_assert_msg(mid.live_blocks == N && mid.live_bytes == bytes,
                  "expected %d young blocks of %llu bytes live, got %lld of %lld", N,
                  (unsigned long long)bytes, (long long)mid.live_blocks,
                  (long long)mid.live_bytes);
    /* pthread_create allocates the thread's own structures: count only the blocks here. */
    ck_assert_msg(d.frees >= N && d.invalid_frees == 0 && d.double_frees == 0,
                  "expected the %d blocks freed by the other thread, found by it (%llu frees, "
                  "%llu invalid, %llu double)", N, (unsigned long long)d.frees,
                  (unsigned long long)d.invalid_frees, (unsigned long long)d.double_frees);
    ck_assert_msg(d.allocations - d.frees == d.live_blocks,
                  "allocations - frees = %lld, live blocks %lld",
                  (long long)(d.allocations - d.frees), (long long)d.live_blocks);
}
END_TEST

/* ---- more blocks than slots ---------------------------------------------------------- */

/* Most of these blocks leave their slot for the table when a neighbour takes it; they are
 * freed in another order than they were made, and realloc'ed on the way. */
START_TEST(more_blocks_than_slots_balance_exactly)
{
    assert_alone();
    enum { N = 40 * SLOTS };
    static void *blocks[N];
    static size_t sizes[N];
    cmt_stats_snap();
    for (unsigned i = 0; i < N; i++) {
        sizes[i] = size_of(i);
        blocks[i] = malloc(sizes[i]);
        if (blocks[i])
            memset(blocks[i], (int)i, sizes[i]);
    }
    uint64_t bad = 0;
    for (unsigned i = 0; i < N; i += 3) {
        void *q = realloc(blocks[i], sizes[i] + 100);
        if (q) {
            blocks[i] = q;
            sizes[i] += 100;
        }
    }
    struct cmt_process_stats mid = cmt_stats_delta();
    for (unsigned k = 0; k < N; k++) {
        unsigned i = (k * 7919u) % N;   /* 7919 is prime to N: each block once */
        if (!blocks[i] || ((unsigned char *)blocks[i])[0] != (unsigned char)i)
            bad++;
        free(blocks[i]);
    }
    struct cmt_process_stats d = cmt_stats_delta();
    uint64_t bytes = 0;
    for (unsigned i = 0; i < N; i++)
        bytes += sizes[i];
    ck_assert_uint_eq(bad, 0);
    ck_assert_msg(mid.live_blocks == N && mid.live_bytes == bytes,
                  "expected %d blocks of %llu bytes live, got %lld of %lld", N,
                  (unsigned long long)bytes, (long long)mid.live_blocks,
                  (long long)mid.live_bytes);
    ck_assert_msg(d.allocations == N + (N + 2) / 3 && d.frees == d.allocations &&
                      d.live_blocks == 0 && d.live_bytes == 0,
                  "expected %d allocations and as many frees, nothing live; got %llu, %llu, "
                  "%lld blocks of %lld bytes", N + (N + 2) / 3,
                  (unsigned long long)d.allocations, (unsigned long long)d.frees,
                  (long long)d.live_blocks, (long long)d.live_bytes);
    ck_assert_uint_eq(d.invalid_frees + d.double_frees + d.stale_frees, 0);
}
END_TEST

/* ---- scopes ------------------------------------------------------------------------- */

/* A scope that closes on blocks still in the young slots owns them as it would in the table:
 * they are live in it, and their later frees count to it. */
START_TEST(scope_closes_on_young_blocks)
{
    assert_alone();
    cmt_scope_t s = cmt_scope_open("young", 0);
    void *a = malloc(10), *b = malloc(20), *c = malloc(30);
    free(b);
    cmt_scope_close(s);
    struct cmt_scope_stats at_close, later;
    int got_close = cmt_scope_stats(s, &at_close);
    free(a);
    int got_later = cmt_scope_stats(s, &later);
    free(c);
    struct cmt_scope_stats gone;
    int got_gone = cmt_scope_stats(s, &gone);
    ck_assert_int_eq(got_close, 0);
    ck_assert_msg(at_close.allocations == 3 && at_close.bytes_allocated == 60 &&
                      at_close.frees == 1 && at_close.live_blocks == 2 &&
                      at_close.live_bytes == 40 && at_close.peak_live_bytes == 60,
                  "at close expected 3 allocations of 60 bytes, 1 free, 2 live of 40, peak 60; "
                  "got %llu of %llu, %llu, %llu of %llu, peak %llu",
                  (unsigned long long)at_close.allocations,
                  (unsigned long long)at_close.bytes_allocated,
                  (unsigned long long)at_close.frees, (unsigned long long)at_close.live_blocks,
                  (unsigned long long)at_close.live_bytes,
                  (unsigned long long)at_close.peak_live_bytes);
    ck_assert_int_eq(got_later, 0);
    ck_assert_msg(later.frees == 2 && later.live_blocks == 1 && later.live_bytes == 30,
                  "after a free past the close expected 2 frees, 1 live of 30 bytes; got %llu, "
                  "%llu of %llu", (unsigned long long)later.frees,
                  (unsigned long long)later.live_blocks, (unsigned long long)later.live_bytes);
    /* Its last block freed, the closed scope owns nothing and its handle is spent. */
    ck_assert_int_eq(got_gone, -1);
}
END_TEST

/* A scope with more live blocks than there are slots: some went to the table when a
 * neighbour took their slot, the others are still young when it closes. Every one must be
 * live in it after the close, and each free must count. */
START_TEST(scope_closes_on_young_and_evicted_blocks)
{
    assert_alone();
    enum { N = 3 * SLOTS };
    static void *blocks[N];
    uint64_t bytes = 0;
    cmt_scope_t s = cmt_scope_open("many", 0);
    for (unsigned i = 0; i < N; i++) {
        blocks[i] = malloc(size_of(i));
        bytes += size_of(i);
    }
    cmt_scope_close(s);
    struct cmt_scope_stats at_close, half;
    int got_close = cmt_scope_stats(s, &at_close);
    for (unsigned i = 0; i < N; i += 2)
        free(blocks[i]);
    int got_half = cmt_scope_stats(s, &half);
    for (unsigned i = 1; i < N; i += 2)
        free(blocks[i]);
    struct cmt_scope_stats gone;
    int got_gone = cmt_scope_stats(s, &gone);
    ck_assert_int_eq(got_close, 0);
    ck_assert_msg(at_close.allocations == N && at_close.live_blocks == N &&
                      at_close.live_bytes == bytes,
                  "at close expected %d blocks of %llu bytes live; got %llu allocations, %llu "
                  "live of %llu", N, (unsigned long long)bytes,
                  (unsigned long long)at_close.allocations,
                  (unsigned long long)at_close.live_blocks,
                  (unsigned long long)at_close.live_bytes);
    ck_assert_int_eq(got_half, 0);
    ck_assert_msg(half.frees == N / 2 && half.live_blocks == N / 2,
                  "after half the frees expected %d frees and %d live; got %llu and %llu",
                  N / 2, N / 2, (unsigned long long)half.frees,
                  (unsigned long long)half.live_blocks);
    ck_assert_int_eq(got_gone, -1);
}
END_TEST

/* Nested scopes take turns as the target; a realloc keeps the block in the scope that made
 * it, whichever is innermost when it runs: with the inner scope the target already (_i 1),
 * or not yet (_i 0: the realloc is the inner scope's first call). */
START_TEST(realloc_keeps_the_scope_across_targets)
{
    assert_alone();
    int inner_first = _i;
    cmt_scope_t outer = cmt_scope_open("outer", 0);
    char *p = malloc(16);
    cmt_scope_t inner = cmt_scope_open("inner", 0);
    char *q = inner_first ? malloc(8) : NULL;
    p = realloc(p, 4000);
    free(q);
    struct cmt_scope_stats in, out;
    int got_in = cmt_scope_stats(inner, &in);
    cmt_scope_close(inner);
    int got_out = cmt_scope_stats(outer, &out);
    free(p);
    cmt_scope_close(outer);
    ck_assert_int_eq(got_in, 0);
    ck_assert_int_eq(got_out, 0);
    uint64_t inner_allocs = inner_first ? 1 : 0;
    ck_assert_msg(in.allocations == inner_allocs && in.frees == inner_allocs &&
                      in.live_blocks == 0,
                  "inner: expected %llu allocations, as many freed; got %llu, %llu, %llu live",
                  (unsigned long long)inner_allocs, (unsigned long long)in.allocations,
                  (unsigned long long)in.frees, (unsigned long long)in.live_blocks);
    ck_assert_msg(out.allocations == 2 && out.bytes_allocated == 4016 && out.frees == 1 &&
                      out.live_blocks == 1 && out.live_bytes == 4000,
                  "outer: expected the block and its realloc (2 allocations of 4016 bytes, "
                  "1 free, 1 live of 4000); got %llu of %llu, %llu, %llu of %llu",
                  (unsigned long long)out.allocations, (unsigned long long)out.bytes_allocated,
                  (unsigned long long)out.frees, (unsigned long long)out.live_blocks,
                  (unsigned long long)out.live_bytes);
}
END_TEST

/* ---- bad frees, sizes, fork ---------------------------------------------------------- */

START_TEST(second_free_of_a_young_block_is_a_double_free)
{
    assert_alone();
    cmt_stats_snap();
    char *p = malloc(48);
    free(p);
    free(p);    /* the tracker must catch it: glibc would abort */
    struct cmt_process_stats d = cmt_stats_delta();
    ck_assert_msg(d.allocations == 1 && d.frees == 1 && d.double_frees == 1 &&
                      d.invalid_frees == 0,
                  "expected 1 allocation, 1 free, 1 double free; got %llu, %llu, %llu (and "
                  "%llu invalid)", (unsigned long long)d.allocations,
                  (unsigned long long)d.frees, (unsigned long long)d.double_frees,
                  (unsigned long long)d.invalid_frees);
}
END_TEST

START_TEST(usable_size_of_a_young_block)
{
    assert_alone();
    void *p = malloc(100);
    size_t usable = malloc_usable_size(p);
    free(p);
    size_t after = malloc_usable_size(NULL);
    ck_assert_msg(usable >= 100 && usable < 100 + 32, "expected 100 to 131 bytes usable, "
                  "got %zu", usable);
    ck_assert_uint_eq(after, 0);
}
END_TEST

/* Frees blocks[0 .. n) in a fork child, and asserts that the child counted n frees of
 * inherited blocks and nothing invalid or double. The parent's blocks are untouched. */
static void assert_child_frees(void *const *blocks, unsigned n)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        cmt_stats_snap();
        for (unsigned i = 0; i < n; i++)
            free(blocks[i]);
        struct cmt_process_stats d = cmt_stats_delta();
        ssize_t w = write(fds[1], &d, sizeof d);
        _exit(w == (ssize_t)sizeof d ? 0 : 1);
    }
    ck_assert_int_gt(pid, 0);
    struct cmt_process_stats d;
    ssize_t got = read(fds[0], &d, sizeof d);
    int status;
    waitpid(pid, &status, 0);
    close(fds[0]);
    close(fds[1]);
    ck_assert_int_eq(got, (ssize_t)sizeof d);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_msg(d.frees == n && d.live_blocks == (uint64_t)-(int64_t)n &&
                      d.invalid_frees == 0 && d.double_frees == 0,
                  "child: expected %u frees of inherited blocks, none invalid or double; got "
                  "%llu frees, live moved by %lld, %llu invalid, %llu double", n,
                  (unsigned long long)d.frees, (long long)d.live_blocks,
                  (unsigned long long)d.invalid_frees, (unsigned long long)d.double_frees);
}

/* A fork child inherits the young blocks and frees them as its own. */
START_TEST(fork_child_frees_the_young_blocks)
{
    assert_alone();
    enum { N = 50 };
    void *blocks[N];
    for (unsigned i = 0; i < N; i++)
        blocks[i] = malloc(size_of(i));
    assert_child_frees(blocks, N);
    for (unsigned i = 0; i < N; i++)
        free(blocks[i]);
}
END_TEST

/* ---- other threads' young blocks ------------------------------------------------------ */

/* A thread that makes blocks in a scope of its own, hands them over and waits, alive, while
 * the main thread does something with them; then frees whatever the main thread gave back
 * and closes its scope. 64 blocks of 24 bytes lie in 64 chunks of 32 bytes: 128 granules,
 * one slot each, so that every block is still young when it is handed over. */
enum { HANDED = 64, HANDED_SIZE = 24 };

struct maker {
    pthread_barrier_t made, done;
    void *blocks[HANDED];
    cmt_scope_t scope;
    int64_t live_at_close;
    struct cmt_scope_stats before_close;
};

static void *make_and_wait(void *arg)
{
    struct maker *m = arg;
    m->scope = cmt_scope_open("made-elsewhere", 0);
    for (unsigned i = 0; i < HANDED; i++) {
        m->blocks[i] = malloc(HANDED_SIZE);
        if (m->blocks[i])
            memset(m->blocks[i], (int)i, HANDED_SIZE);
    }
    pthread_barrier_wait(&m->made);
    pthread_barrier_wait(&m->done);     /* the main thread works on the blocks meanwhile */
    for (unsigned i = 0; i < HANDED; i++)
        free(m->blocks[i]);             /* what it handed back, NULL for what it freed */
    cmt_scope_stats(m->scope, &m->before_close);
    m->live_at_close = cmt_scope_close(m->scope);
    return NULL;
}

/* Starts a maker and waits until its blocks are made; false when no thread could start. */
static bool start_maker(struct maker *m, pthread_t *th)
{
    memset(m, 0, sizeof *m);
    pthread_barrier_init(&m->made, NULL, 2);
    pthread_barrier_init(&m->done, NULL, 2);
    if (pthread_create(th, NULL, make_and_wait, m) != 0)
        return false;
    pthread_barrier_wait(&m->made);
    return true;
}

static void finish_maker(struct maker *m, pthread_t th)
{
    pthread_barrier_wait(&m->done);
    pthread_join(th, NULL);
    pthread_barrier_destroy(&m->made);
    pthread_barrier_destroy(&m->done);
}

/* The maker's scope, just before it closed: `allocations` blocks made in it, as many freed,
 * whichever thread freed them; it closed owning none. */
static void assert_maker_balanced(const struct maker *m, uint64_t allocations)
{
    const struct cmt_scope_stats *st = &m->before_close;
    ck_assert_msg(st->allocations == allocations && st->frees == allocations &&
                      st->live_blocks == 0 && st->live_bytes == 0,
                  "the maker's scope: expected %llu allocations, as many frees, none live; got "
                  "%llu, %llu, %llu of %llu bytes", (unsigned long long)allocations,
                  (unsigned long long)st->allocations, (unsigned long long)st->frees,
                  (unsigned long long)st->live_blocks, (unsigned long long)st->live_bytes);
    ck_assert_int_eq(m->live_at_close, 0);
}

/* Freed by another thread while their maker is alive: each free finds its block in the
 * maker's young set and counts in the maker's scope. */
START_TEST(young_blocks_freed_by_another_thread)
{
    assert_alone();
    static struct maker m;
    pthread_t th;
    ck_assert(start_maker(&m, &th));
    cmt_stats_snap();
    unsigned intact = 0;
    for (unsigned i = 0; i < HANDED; i++) {
        unsigned char *p = m.blocks[i];
        intact += p && p[0] == (unsigned char)i && p[HANDED_SIZE - 1] == (unsigned char)i;
        free(p);
        m.blocks[i] = NULL;
    }
    struct cmt_process_stats d = cmt_stats_delta();
    finish_maker(&m, th);
    ck_assert_uint_eq(intact, HANDED);
    ck_assert_msg(d.frees == HANDED && d.allocations == 0 && d.invalid_frees == 0 &&
                      d.double_frees == 0 && d.live_blocks == (uint64_t)-HANDED &&
                      d.live_bytes == (uint64_t)-(HANDED * HANDED_SIZE),
                  "expected %d frees of %d bytes, nothing invalid or double; got %llu frees, "
                  "%llu invalid, %llu double, live moved by %lld blocks and %lld bytes",
                  HANDED, HANDED * HANDED_SIZE, (unsigned long long)d.frees,
                  (unsigned long long)d.invalid_frees, (unsigned long long)d.double_frees,
                  (long long)d.live_blocks, (long long)d.live_bytes);
    assert_maker_balanced(&m, HANDED);
}
END_TEST

/* Another thread asks the size of the maker's young blocks and reallocs them; the blocks it
 * gets back stay in the maker's scope, and the maker frees them. */
START_TEST(young_blocks_realloced_by_another_thread)
{
    assert_alone();
    static struct maker m;
    pthread_t th;
    ck_assert(start_maker(&m, &th));
    cmt_stats_snap();
    unsigned sized = 0, intact = 0;
    for (unsigned i = 0; i < HANDED; i++) {
        size_t usable = malloc_usable_size(m.blocks[i]);
        sized += usable >= HANDED_SIZE && usable < HANDED_SIZE + 32;
        unsigned char *q = realloc(m.blocks[i], HANDED_SIZE + 1000);
        if (q) {
            intact += q[0] == (unsigned char)i && q[HANDED_SIZE - 1] == (unsigned char)i;
            m.blocks[i] = q;
        }
    }
    struct cmt_process_stats d = cmt_stats_delta();
    finish_maker(&m, th);
    ck_assert_uint_eq(sized, HANDED);
    ck_assert_uint_eq(intact, HANDED);
    ck_assert_msg(d.allocations == HANDED && d.frees == HANDED && d.invalid_frees == 0 &&
                      d.live_blocks == 0 && d.live_bytes == HANDED * 1000,
                  "expected %d reallocs (one allocation and one free each) growing live "
                  "bytes by %d; got %llu allocations, %llu frees, %llu invalid, live moved "
                  "by %lld blocks and %lld bytes", HANDED, HANDED * 1000,
                  (unsigned long long)d.allocations, (unsigned long long)d.frees,
                  (unsigned long long)d.invalid_frees, (long long)d.live_blocks,
                  (long long)d.live_bytes);
    assert_maker_balanced(&m, 2 * HANDED);
}
END_TEST

/* Half the blocks are freed while their maker lives, the rest after it has exited: its
 * exit moves them to the table, and lets go of the slots the first half were claimed from. */
START_TEST(young_blocks_outlive_their_thread)
{
    assert_alone();
    static struct maker m;
    pthread_t th;
    ck_assert(start_maker(&m, &th));
    cmt_stats_snap();
    for (unsigned i = 0; i < HANDED / 2; i++) {
        free(m.blocks[i]);
        m.blocks[i] = NULL;
    }
    struct cmt_process_stats alive = cmt_stats_delta();
    void *rest[HANDED / 2];
    memcpy(rest, m.blocks + HANDED / 2, sizeof rest);
    memset(m.blocks + HANDED / 2, 0, sizeof rest);  /* the maker frees none of them */
    finish_maker(&m, th);
    cmt_stats_snap();
    for (unsigned i = 0; i < HANDED / 2; i++)
        free(rest[i]);
    struct cmt_process_stats gone = cmt_stats_delta();
    ck_assert_msg(alive.frees == HANDED / 2 && alive.invalid_frees == 0,
                  "while the maker lives: expected %d frees, none invalid; got %llu, %llu",
                  HANDED / 2, (unsigned long long)alive.frees,
                  (unsigned long long)alive.invalid_frees);
    ck_assert_msg(gone.frees == HANDED / 2 && gone.invalid_frees == 0 &&
                      gone.double_frees == 0 && gone.live_blocks == (uint64_t)-(HANDED / 2) &&
                      gone.live_bytes == (uint64_t)-(HANDED / 2 * HANDED_SIZE),
                  "after the maker exited: expected %d frees, nothing invalid or double; got "
                  "%llu frees, %llu invalid, %llu double, live moved by %lld blocks and %lld "
                  "bytes", HANDED / 2, (unsigned long long)gone.frees,
                  (unsigned long long)gone.invalid_frees, (unsigned long long)gone.double_frees,
                  (long long)gone.live_blocks, (long long)gone.live_bytes);
    ck_assert_int_eq(m.live_at_close, HANDED / 2);  /* its scope closed on the rest */
}
END_TEST

/* A fork child inherits the young blocks of a thread it does not have: it can free them,
 * and each free counts once. */
START_TEST(fork_child_frees_another_threads_young_blocks)
{
    assert_alone();
    static struct maker m;
    pthread_t th;
    ck_assert(start_maker(&m, &th));
    assert_child_frees(m.blocks, HANDED);
    finish_maker(&m, th);
    /* The parent's maker frees them all itself: nothing the child did reached it. */
    assert_maker_balanced(&m, HANDED);
}
END_TEST

/* ---- more threads than young sets ---------------------------------------------------- */

/* RING threads, more than there are young sets (CMT_YOUNG_SETS, 64): some allocate through
 * the table only. Each passes its blocks to its neighbour, which frees them: most frees are
 * of another thread's block, young or not. */
enum { RING = 80, RING_BLOCKS = 4000, RING_PLACES = 16 };

static void *ring_place[RING][RING_PLACES];
static pthread_barrier_t ring_start;
static unsigned ring_damaged[RING];

static void *ring_worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    unsigned char tag = (unsigned char)(id + 1);
    pthread_barrier_wait(&ring_start);
    for (unsigned i = 0; i < RING_BLOCKS; i++) {
        size_t size = 16 + i % 200;
        unsigned char *p = malloc(size);
        if (!p)
            abort();
        p[0] = tag;
        p[size - 1] = tag;
        /* Take what the neighbour on one side left here, hand p to the other side, and get
         * back whatever of this thread's that neighbour has not taken yet. */
        unsigned char *in = __atomic_exchange_n(&ring_place[id][i % RING_PLACES], NULL,
                                                __ATOMIC_ACQ_REL);
        unsigned char *back = __atomic_exchange_n(
            &ring_place[(id + 1) % RING][i % RING_PLACES], p, __ATOMIC_ACQ_REL);
        if (in && in[0] != (unsigned char)((id + RING - 1) % RING + 1))
            ring_damaged[id]++;
        if (back && back[0] != tag)
            ring_damaged[id]++;
        free(in);
        free(back);
    }
    return NULL;
}

START_TEST(more_threads_than_young_sets)
{
    assert_alone();
    memset(ring_place, 0, sizeof ring_place);
    memset(ring_damaged, 0, sizeof ring_damaged);
    pthread_barrier_init(&ring_start, NULL, RING);
    cmt_stats_snap();
    pthread_t th[RING];
    for (unsigned i = 0; i < RING; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, ring_worker, (void *)(uintptr_t)i), 0);
    for (unsigned i = 0; i < RING; i++)
        pthread_join(th[i], NULL);
    unsigned damaged = 0;
    for (unsigned i = 0; i < RING; i++) {
        damaged += ring_damaged[i];
        for (unsigned k = 0; k < RING_PLACES; k++)
            free(ring_place[i][k]);     /* the last blocks, not yet taken */
    }
    struct cmt_process_stats d = cmt_stats_delta();
    pthread_barrier_destroy(&ring_start);
    ck_assert_uint_eq(damaged, 0);
    /* Thread creation allocates too (and frees most of it at join): the program's own
     * blocks are at least RING * RING_BLOCKS, every one of them freed. */
    ck_assert_msg(d.invalid_frees == 0 && d.double_frees == 0 &&
                      d.allocations >= RING * RING_BLOCKS && d.frees >= RING * RING_BLOCKS &&
                      d.allocations - d.frees == d.live_blocks,
                  "expected at least %d allocations and frees, balanced, none invalid or "
                  "double; got %llu allocations, %llu frees, live moved by %lld, %llu invalid, "
                  "%llu double", RING * RING_BLOCKS, (unsigned long long)d.allocations,
                  (unsigned long long)d.frees, (long long)d.live_blocks,
                  (unsigned long long)d.invalid_frees, (unsigned long long)d.double_frees);
}
END_TEST

static Suite *young_suite(void)
{
    Suite *s = suite_create("young");
    TCase *tc = tcase_create("one thread");
    tcase_add_test(tc, more_blocks_than_slots_balance_exactly);
    tcase_add_test(tc, scope_closes_on_young_blocks);
    tcase_add_test(tc, scope_closes_on_young_and_evicted_blocks);
    tcase_add_loop_test(tc, realloc_keeps_the_scope_across_targets, 0, 2);
    tcase_add_test(tc, second_free_of_a_young_block_is_a_double_free);
    tcase_add_test(tc, usable_size_of_a_young_block);
    tcase_add_test(tc, fork_child_frees_the_young_blocks);
    suite_add_tcase(s, tc);

    tc = tcase_create("then two");
    tcase_add_test(tc, blocks_made_alone_are_freed_by_a_later_thread);
    tcase_add_test(tc, young_blocks_freed_by_another_thread);
    tcase_add_test(tc, young_blocks_realloced_by_another_thread);
    tcase_add_test(tc, young_blocks_outlive_their_thread);
    tcase_add_test(tc, fork_child_frees_another_threads_young_blocks);
    tcase_add_test(tc, more_threads_than_young_sets);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    cmt_reexec_preloaded(argv);
    return cmt_run_suite(young_suite());
}
