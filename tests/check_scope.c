/*
 * check_scope.c — scopes (src/scope.c, src/bulk.c, src/api.c), run inside a process that has
 * the library under test preloaded: nesting, threads, cross-thread frees, bulk-free and the
 * stale frees after it, custom allocators, pool semantics, and every misuse. Counts exact.
 *
 * Check's assertions allocate, and so does the test's own stderr capture: each test measures
 * in a window without them and asserts afterwards.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cymemtrack.h"

static struct cmt_scope_stats stats_of(cmt_scope_t s)
{
    struct cmt_scope_stats st;
    if (cmt_scope_stats(s, &st) != 0)
        memset(&st, 0xff, sizeof st);   /* every field UINT64_MAX: "no such scope" */
    return st;
}

#define ASSERT_SCOPE(st, a, f, live, bytes_live)                                           \
    ck_assert_msg((st).allocations == (a) && (st).frees == (f) &&                          \
                      (st).live_blocks == (uint64_t)(live) &&                              \
                      (st).live_bytes == (uint64_t)(bytes_live),                           \
                  "expected allocations %d frees %d live %d/%dB, got %lu %lu %lu/%luB",    \
                  (a), (f), (live), (bytes_live), (unsigned long)(st).allocations,         \
                  (unsigned long)(st).frees, (unsigned long)(st).live_blocks,              \
                  (unsigned long)(st).live_bytes)

/* stderr of the code between begin and end, for checking the "cymemtrack:" lines. */
static int saved_stderr = -1;
static char capture_path[64];

static void capture_begin(void)
{
    snprintf(capture_path, sizeof capture_path, "/tmp/cmt-scope-err.XXXXXX");
    int fd = mkstemp(capture_path);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

static char *capture_end(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    static char buf[8192];
    int fd = open(capture_path, O_RDONLY);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    unlink(capture_path);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

START_TEST(open_count_close)
{
    cmt_scope_t s = cmt_scope_open("request", 0);
    void *a = malloc(10), *b = malloc(20), *c = malloc(30);
    free(b);
    struct cmt_scope_stats st = stats_of(s);
    int64_t live = cmt_scope_close(s);
    ck_assert_uint_ne(s, CMT_SCOPE_NONE);
    ASSERT_SCOPE(st, 3, 1, 2, 40);
    ck_assert_uint_eq(st.bytes_allocated, 60);
    ck_assert_uint_eq(st.peak_live_bytes, 60);
    ck_assert_int_eq(live, 2);
    free(a);
    free(c);
}
END_TEST

START_TEST(nesting_innermost_wins)
{
    cmt_scope_t outer = cmt_scope_open("outer", 0);
    void *a = malloc(1);
    cmt_scope_t inner = cmt_scope_open("inner", 0);
    void *b = malloc(2), *c = malloc(3);
    struct cmt_scope_stats in_st = stats_of(inner);
    int64_t inner_live = cmt_scope_close(inner);
    void *d = malloc(4);
    struct cmt_scope_stats out_st = stats_of(outer);
    int64_t outer_live = cmt_scope_close(outer);
    ASSERT_SCOPE(in_st, 2, 0, 2, 5);
    ASSERT_SCOPE(out_st, 2, 0, 2, 5);
    ck_assert_int_eq(inner_live, 2);
    ck_assert_int_eq(outer_live, 2);
    free(a);
    free(b);
    free(c);
    free(d);
}
END_TEST

START_TEST(outside_any_scope_is_global)
{
    cmt_scope_t s = cmt_scope_open("idle", 0);
    cmt_scope_close(s);
    void *p = malloc(8);
    cmt_scope_t s2 = cmt_scope_open("idle2", 0);
    struct cmt_scope_stats st = stats_of(s2);
    cmt_scope_close(s2);
    free(p);
    ASSERT_SCOPE(st, 0, 0, 0, 0);
}
END_TEST

/* Frees after close: the scope lives on until its last block goes, then its handle does not. */
START_TEST(outlived_blocks_keep_the_scope)
{
    cmt_scope_t s = cmt_scope_open("outliving", 0);
    void *a = malloc(100), *b = malloc(200);
    int64_t live = cmt_scope_close(s);
    struct cmt_scope_stats after_close = stats_of(s);
    free(a);
    struct cmt_scope_stats after_one = stats_of(s);
    free(b);
    struct cmt_scope_stats st;
    int gone = cmt_scope_stats(s, &st);
    ck_assert_int_eq(live, 2);
    ASSERT_SCOPE(after_close, 2, 0, 2, 300);
    ASSERT_SCOPE(after_one, 2, 1, 1, 200);
    ck_assert_int_eq(gone, -1);
}
END_TEST

START_TEST(realloc_keeps_the_owner)
{
    cmt_scope_t s = cmt_scope_open("owner", 0);
    char *p = malloc(16);
    cmt_scope_close(s);
    strcpy(p, "kept");
    p = realloc(p, 4096);   /* in the global scope now, but the block stays the scope's */
    struct cmt_scope_stats st = stats_of(s);
    free(p);
    ck_assert_str_eq(p == NULL ? "" : "kept", "kept");
    ASSERT_SCOPE(st, 2, 1, 1, 4096);
}
END_TEST

struct thread_arg {
    const char *name;
    int n;
    struct cmt_scope_stats st;
    int64_t live;
};

static void *scoped_worker(void *argp)
{
    struct thread_arg *arg = argp;
    void **blocks = calloc((size_t)arg->n, sizeof *blocks);
    cmt_scope_t s = cmt_scope_open(arg->name, 0);
    for (int i = 0; i < arg->n; i++)
        blocks[i] = malloc((size_t)i + 1);
    for (int i = 0; i < arg->n; i += 2)
        free(blocks[i]);
    arg->st = stats_of(s);
    arg->live = cmt_scope_close(s);
    for (int i = 1; i < arg->n; i += 2)
        free(blocks[i]);
    free(blocks);
    return NULL;
}

START_TEST(threads_have_their_own_stacks)
{
    struct thread_arg args[2] = { { "worker-a", 1000, { 0 }, 0 }, { "worker-b", 3000, { 0 }, 0 } };
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, scoped_worker, &args[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    /* n blocks of sizes 1..n; the even-indexed (odd sizes) freed while open. */
    ASSERT_SCOPE(args[0].st, 1000, 500, 500, 500 * 501);
    ASSERT_SCOPE(args[1].st, 3000, 1500, 1500, 1500 * 1501);
    ck_assert_int_eq(args[0].live, 500);
    ck_assert_int_eq(args[1].live, 1500);
}
END_TEST

/* The other thread is started before the scope opens (pthread_create allocates) and waits
 * for the blocks on a pipe. */
struct handoff {
    void **blocks;
    int n;
    int go[2];
};

static void *free_them(void *argp)
{
    struct handoff *h = argp;
    char c;
    if (read(h->go[0], &c, 1) != 1)
        return NULL;
    for (int i = 0; i < h->n; i++)
        free(h->blocks[i]);
    return NULL;
}

START_TEST(cross_thread_frees_leave_the_owner)
{
    enum { N = 5000 };
    static void *blocks[N];
    struct handoff h = { blocks, N, { -1, -1 } };
    ck_assert_int_eq(pipe(h.go), 0);
    pthread_t th;
    pthread_create(&th, NULL, free_them, &h);
    cmt_scope_t s = cmt_scope_open("producer", 0);
    for (int i = 0; i < N; i++)
        blocks[i] = malloc(32);
    ssize_t w = write(h.go[1], "x", 1);
    pthread_join(th, NULL);
    (void)w;
    struct cmt_scope_stats st = stats_of(s);
    int64_t live = cmt_scope_close(s);
    ASSERT_SCOPE(st, N, N, 0, 0);
    ck_assert_int_eq(live, 0);
}
END_TEST

START_TEST(bulk_free_frees_what_is_left)
{
    struct cmt_process_stats p0, p1;
    cmt_process_stats(&p0);
    cmt_scope_t s = cmt_scope_open("pool", CMT_BULK_FREE);
    void *blocks[100];
    for (int i = 0; i < 100; i++)
        blocks[i] = malloc((size_t)i + 1);
    for (int i = 0; i < 10; i++)
        free(blocks[i]);                /* sizes 1..10: 55 bytes */
    struct cmt_scope_stats before = stats_of(s);
    int64_t closed_with = cmt_scope_close(s);
    cmt_process_stats(&p1);
    ASSERT_SCOPE(before, 100, 10, 90, 5050 - 55);
    ck_assert_int_eq(closed_with, 90);
    ck_assert_uint_eq(p1.bulk_freed_blocks - p0.bulk_freed_blocks, 90);
    ck_assert_uint_eq(p1.bulk_freed_bytes - p0.bulk_freed_bytes, 5050 - 55);
    ck_assert_uint_eq(p1.live_blocks, p0.live_blocks);
    ck_assert_uint_eq(p1.live_bytes, p0.live_bytes);
    ck_assert_uint_eq(p1.allocations - p1.frees - p1.bulk_freed_blocks, p1.live_blocks);
    /* Fully bulk-freed: the scope is gone. */
    struct cmt_scope_stats st;
    ck_assert_int_eq(cmt_scope_stats(s, &st), -1);
}
END_TEST

START_TEST(stale_free_and_realloc_are_ignored)
{
    cmt_scope_t s = cmt_scope_open("stale", CMT_BULK_FREE);
    char *p = malloc(64), *q = malloc(64);
    cmt_scope_close(s);
    struct cmt_process_stats p0, p1;
    cmt_process_stats(&p0);
    capture_begin();
    free(p);
    errno = 0;
    void *r = realloc(q, 128);
    int e = errno;
    char *err = capture_end();
    cmt_process_stats(&p1);
    ck_assert_uint_eq(p1.stale_frees - p0.stale_frees, 2);
    ck_assert_uint_eq(p1.invalid_frees - p0.invalid_frees, 0);
    ck_assert_uint_eq(p1.double_frees - p0.double_frees, 0);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(e, ENOMEM);
    ck_assert_int_eq(cmt_count_lines(err, "cymemtrack: free of 0x"), 1);
    ck_assert_int_eq(cmt_count_lines(err, "cymemtrack: realloc of 0x"), 1);
    ck_assert_ptr_nonnull(strstr(err, "which scope \"stale\" bulk-freed when it closed"));
    /* The heap is intact. */
    void *x = malloc(64);
    ck_assert_ptr_nonnull(x);
    free(x);
}
END_TEST

/* A close of thousands of blocks, over many shards and several of the walk's batches (bulk.c),
 * some freed before it and another scope's blocks allocated between them: counts exact,
 * the other scope untouched, and every bulk-freed block, still in quarantine, recognized. */
#define MANY 5000
static size_t many_size(int i)
{
    return 1 + (size_t)(i * 37) % 700;
}

START_TEST(bulk_free_of_many_blocks_counts_exactly)
{
    static void *mine[MANY], *theirs[MANY / 5];
    uint64_t bytes = 0, early = 0, early_bytes = 0;
    cmt_scope_t other = cmt_scope_open("bystander", 0);
    cmt_scope_t s = cmt_scope_open("many", CMT_BULK_FREE);
    for (int i = 0; i < MANY; i++) {
        mine[i] = malloc(many_size(i));
        bytes += many_size(i);
        if (i % 5 == 0)
            theirs[i / 5] = cmt_scope_alloc(other, 1, 24);
    }
    for (int i = 0; i < MANY; i += 7) {
        free(mine[i]);
        mine[i] = NULL;
        early++;
        early_bytes += many_size(i);
    }
    struct cmt_process_stats p0, p1, p2;
    cmt_process_stats(&p0);
    int64_t closed_with = cmt_scope_close(s);
    cmt_process_stats(&p1);
    for (int i = 0; i < MANY; i++)
        free(mine[i]);      /* NULL for the early ones; stale for the others */
    for (int i = 0; i < MANY / 5; i++)
        free(theirs[i]);
    cmt_process_stats(&p2);
    struct cmt_scope_stats ost = stats_of(other);
    cmt_scope_close(other);

    uint64_t bulk = MANY - early, bulk_bytes = bytes - early_bytes;
    ck_assert_int_eq(closed_with, (int64_t)bulk);
    ck_assert_uint_eq(p1.bulk_freed_blocks - p0.bulk_freed_blocks, bulk);
    ck_assert_uint_eq(p1.bulk_freed_bytes - p0.bulk_freed_bytes, bulk_bytes);
    ck_assert_uint_eq(p0.live_blocks - p1.live_blocks, bulk);
    ck_assert_uint_eq(p0.live_bytes - p1.live_bytes, bulk_bytes);
    ck_assert_uint_eq(p1.frees, p0.frees);
    ck_assert_uint_eq(p2.stale_frees - p1.stale_frees, bulk);
    ck_assert_uint_eq(p2.invalid_frees - p1.invalid_frees, 0);
    ck_assert_uint_eq(p2.double_frees - p1.double_frees, 0);
    ck_assert_uint_eq(p2.frees - p1.frees, MANY / 5);
    ASSERT_SCOPE(ost, MANY / 5, MANY / 5, 0, 0);
}
END_TEST

/* tests/progs/bulk_quarantine SIZE COUNT CLOSES under a quarantine of `quarantine` bytes:
 * its blocks come from an allocator of its own that counts what the tracker gives back. */
static void run_bulk_quarantine(struct cmt_run *r, const char *quarantine, const char *size,
                                const char *count, const char *closes)
{
    char *argv[] = { (char *)cmt_test_prog("bulk_quarantine"), (char *)size, (char *)count,
                     (char *)closes, NULL };
    char env_q[64];
    snprintf(env_q, sizeof env_q, "CYMEMTRACK_QUARANTINE=%s", quarantine);
    char *env[] = { env_q, "CYMEMTRACK_STACK_DEPTH=0", "CYMEMTRACK_SCOPES=", NULL };
    cmt_run(r, 1, argv, env);
}

static void assert_bulk_quarantine(const char *quarantine, const char *size, const char *count,
                                   const char *closes, const char *expected)
{
    struct cmt_run r;
    run_bulk_quarantine(&r, quarantine, size, count, closes);
    ck_assert_msg(r.exit_code == 0 && r.signal == 0,
                  "expected exit 0, got exit %d signal %d; stderr:\n%s", r.exit_code, r.signal,
                  r.err);
    ck_assert_msg(strcmp(r.out, expected) == 0, "expected:\n%s\ngot:\n%s", expected, r.out);
    cmt_run_free(&r);
}

/* 16 KiB of quarantine and closes of 1000 blocks of 64 B: each close gives the first 744
 * back at once and keeps the last 256 (16 KiB), which the next close evicts, oldest first,
 * to make room for its own. Only the last close's 256 are still recognized as stale. */
START_TEST(quarantine_keeps_the_latest_within_its_budget)
{
    assert_bulk_quarantine("16384", "64", "1000", "2",
                           "tracked: 1\n"
                           "close 1: 1000 blocks, given back so far: 744\n"
                           "close 2: 1000 blocks, given back so far: 1744\n"
                           "stale frees: 256\n"
                           "invalid frees: 1744\n"
                           "given back in all: 1744\n");
}
END_TEST

/* Blocks of size 0 count for 16 bytes each in the budget: without that they would never
 * fill it, and the quarantine would hold any number of them. */
START_TEST(quarantine_counts_empty_blocks)
{
    assert_bulk_quarantine("4096", "0", "1000", "1",
                           "tracked: 1\n"
                           "close 1: 1000 blocks, given back so far: 744\n"
                           "stale frees: 256\n"
                           "invalid frees: 744\n"
                           "given back in all: 744\n");
}
END_TEST

/* With the quarantine off, a close gives everything back at once. */
START_TEST(quarantine_off_gives_back_at_close)
{
    assert_bulk_quarantine("0", "64", "300", "1",
                           "tracked: 1\n"
                           "close 1: 300 blocks, given back so far: 300\n"
                           "stale frees: 0\n"
                           "invalid frees: 300\n"
                           "given back in all: 300\n");
}
END_TEST

/* A scope's own allocator, counting its calls: a bump allocator over a static arena, so its
 * blocks are unknown to malloc and must never reach free. */
static char arena[1 << 16];
static size_t arena_used;
static int arena_mallocs, arena_frees;

static void *arena_malloc(size_t n)
{
    arena_mallocs++;
    size_t start = (arena_used + 15) & ~(size_t)15;
    if (start + n > sizeof arena)
        return NULL;
    arena_used = start + n;
    memset(arena + start, 0xAB, n);     /* dirty: the pool call must zero it */
    return arena + start;
}

static void arena_free(void *p)
{
    (void)p;
    arena_frees++;
}

START_TEST(custom_allocator_serves_pool_calls_and_bulk_free)
{
    arena_used = 0;
    arena_mallocs = arena_frees = 0;
    cmt_scope_t s = cmt_scope_open_with("arena", CMT_BULK_FREE, arena_malloc, arena_free);
    unsigned char *a = cmt_scope_alloc(s, 10, 8);
    void *b = cmt_scope_alloc(s, 1, 100);
    void *c = cmt_scope_alloc(s, 3, 3);
    int zeroed = 1;
    for (int i = 0; i < 80; i++)
        zeroed &= a[i] == 0;
    int freed = cmt_scope_free(s, b);
    struct cmt_scope_stats st = stats_of(s);
    int64_t live = cmt_scope_close(s);
    ck_assert_int_eq(zeroed, 1);
    ck_assert_int_eq(freed, 0);
    ASSERT_SCOPE(st, 3, 1, 2, 89);
    ck_assert_int_eq(live, 2);
    ck_assert_int_eq(arena_mallocs, 3);
    /* One by cmt_scope_free; the other two by the bulk-free, now or when they leave the
     * quarantine, which the next test drains. */
    ck_assert_int_ge(arena_frees, 1);
    (void)c;
}
END_TEST

static int counting_mallocs, counting_frees;

static void *counting_malloc(size_t n)
{
    counting_mallocs++;
    return malloc(n);
}

static void counting_free(void *p)
{
    counting_frees++;
    free(p);
}

START_TEST(custom_allocator_built_on_malloc_counts_once)
{
    counting_mallocs = counting_frees = 0;
    struct cmt_process_stats p0, p1;
    cmt_process_stats(&p0);
    cmt_scope_t s = cmt_scope_open_with("wrapped", 0, counting_malloc, counting_free);
    void *a = cmt_scope_alloc(s, 4, 4);
    void *b = cmt_scope_alloc(s, 8, 8);
    int rc_a = cmt_scope_free(s, a);
    struct cmt_scope_stats st = stats_of(s);
    int rc_b = cmt_scope_free(s, b);
    int64_t live = cmt_scope_close(s);
    cmt_process_stats(&p1);
    ck_assert_int_eq(rc_a, 0);
    ck_assert_int_eq(rc_b, 0);
    ASSERT_SCOPE(st, 2, 1, 1, 64);
    ck_assert_int_eq(live, 0);
    ck_assert_int_eq(counting_mallocs, 2);
    ck_assert_int_eq(counting_frees, 2);
    ck_assert_uint_eq(p1.invalid_frees - p0.invalid_frees, 0);
    ck_assert_uint_eq(p1.live_blocks, p0.live_blocks);
}
END_TEST

START_TEST(plain_free_of_a_custom_block_goes_to_its_allocator)
{
    arena_used = 0;
    arena_mallocs = arena_frees = 0;
    cmt_scope_t s = cmt_scope_open_with("arena2", 0, arena_malloc, arena_free);
    void *a = cmt_scope_alloc(s, 1, 32);
    capture_begin();
    free(a);
    char *err = capture_end();
    struct cmt_scope_stats st = stats_of(s);
    cmt_scope_close(s);
    ck_assert_int_eq(arena_frees, 1);
    ASSERT_SCOPE(st, 1, 1, 0, 0);
    ck_assert_int_eq(cmt_count_lines(err, "cymemtrack: free of 0x"), 1);
}
END_TEST

START_TEST(pool_alloc_is_zeroed_and_recorded_in_its_scope)
{
    cmt_scope_t pool = cmt_scope_open("pool", 0);
    cmt_scope_t other = cmt_scope_open("other", 0);   /* innermost now */
    unsigned char *p = cmt_scope_alloc(pool, 100, 3);
    struct cmt_scope_stats pool_st = stats_of(pool), other_st = stats_of(other);
    errno = 0;
    void *overflow = cmt_scope_alloc(pool, SIZE_MAX / 2, 3);
    int e = errno;
    int zeroed = 1;
    for (int i = 0; i < 300; i++)
        zeroed &= p[i] == 0;
    cmt_scope_close(other);
    cmt_scope_free(pool, p);
    cmt_scope_close(pool);
    ck_assert_int_eq(zeroed, 1);
    ASSERT_SCOPE(pool_st, 1, 0, 1, 300);
    ASSERT_SCOPE(other_st, 0, 0, 0, 0);
    ck_assert_ptr_null(overflow);
    ck_assert_int_eq(e, ENOMEM);
}
END_TEST

START_TEST(pool_realloc_keeps_contents_and_zeroes_the_rest)
{
    cmt_scope_t pool = cmt_scope_open("grow", 0);
    char *p = cmt_scope_alloc(pool, 1, 8);
    memcpy(p, "abcdefgh", 8);
    char *q = cmt_scope_realloc(pool, p, 16);
    struct cmt_scope_stats st = stats_of(pool);
    int tail_zero = 1;
    for (int i = 8; i < 16; i++)
        tail_zero &= q[i] == 0;
    int same = memcmp(q, "abcdefgh", 8) == 0;
    cmt_scope_free(pool, q);
    cmt_scope_close(pool);
    ck_assert(same);
    ck_assert(tail_zero);
    ASSERT_SCOPE(st, 2, 1, 1, 16);
}
END_TEST

START_TEST(pool_free_of_a_foreign_block_is_refused)
{
    cmt_scope_t a = cmt_scope_open("a", 0);
    cmt_scope_t b = cmt_scope_open("b", 0);
    void *in_b = malloc(8);
    capture_begin();
    int rc = cmt_scope_free(a, in_b);
    int rc_null = cmt_scope_free(a, NULL);
    char *err = capture_end();
    struct cmt_scope_stats st = stats_of(b);
    cmt_scope_close(b);
    cmt_scope_close(a);
    free(in_b);
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(rc_null, 0);
    ASSERT_SCOPE(st, 1, 0, 1, 8);
    ck_assert_int_eq(cmt_count_lines(err, "cymemtrack: cmt_scope_free: 0x"), 1);
}
END_TEST

START_TEST(misuse_close_twice)
{
    cmt_scope_t s = cmt_scope_open("twice", 0);
    int64_t first = cmt_scope_close(s);
    capture_begin();
    int64_t second = cmt_scope_close(s);
    char *err = capture_end();
    ck_assert_int_eq(first, 0);
    ck_assert_int_eq(second, -1);
    ck_assert_int_eq(cmt_count_lines(err, "cymemtrack: cmt_scope_close:"), 1);
}
END_TEST

START_TEST(misuse_close_outer_first_closes_inner)
{
    cmt_scope_t outer = cmt_scope_open("outer", 0);
    cmt_scope_t inner = cmt_scope_open("inner", 0);
    void *p = malloc(5);
    capture_begin();
    int64_t outer_live = cmt_scope_close(outer);
    int64_t inner_again = cmt_scope_close(inner);
    char *err = capture_end();
    void *q = malloc(7);    /* global again */
    struct cmt_scope_stats inner_st = stats_of(inner);
    free(p);
    free(q);
    ck_assert_int_eq(outer_live, 0);
    ck_assert_int_eq(inner_again, -1);
    ASSERT_SCOPE(inner_st, 1, 0, 1, 5);
    ck_assert_ptr_nonnull(strstr(err, "closing \"inner\" first"));
}
END_TEST

static cmt_scope_t to_close;
static int close_go[2];

static void *close_it(void *arg)
{
    (void)arg;
    char c;
    if (read(close_go[0], &c, 1) != 1)
        return NULL;
    return (void *)(intptr_t)cmt_scope_close(to_close);
}

START_TEST(misuse_close_from_another_thread)
{
    ck_assert_int_eq(pipe(close_go), 0);
    pthread_t th;
    pthread_create(&th, NULL, close_it, NULL);
    capture_begin();
    cmt_scope_t s = cmt_scope_open("mine", 0);
    to_close = s;
    ssize_t w = write(close_go[1], "x", 1);
    void *ret;
    pthread_join(th, &ret);
    char *err = capture_end();
    (void)w;
    void *p = malloc(3);    /* still in "mine" */
    struct cmt_scope_stats st = stats_of(s);
    int64_t live = cmt_scope_close(s);
    free(p);
    ck_assert_int_eq((intptr_t)ret, -1);
    ASSERT_SCOPE(st, 1, 0, 1, 3);
    ck_assert_int_eq(live, 1);
    ck_assert_ptr_nonnull(strstr(err, "opened by another thread"));
}
END_TEST

START_TEST(misuse_null_and_garbage_handles)
{
    struct cmt_scope_stats st;
    capture_begin();
    int64_t a = cmt_scope_close(CMT_SCOPE_NONE);
    int64_t b = cmt_scope_close((cmt_scope_t)0xdeadbeefcafe);
    int64_t c = cmt_scope_close((cmt_scope_t)UINT64_MAX);
    int d = cmt_scope_stats((cmt_scope_t)12345, &st);
    void *e = cmt_scope_alloc((cmt_scope_t)777, 1, 1);
    int f = cmt_scope_free((cmt_scope_t)888, (void *)0x1000);
    char *err = capture_end();
    ck_assert_int_eq(a, -1);
    ck_assert_int_eq(b, -1);
    ck_assert_int_eq(c, -1);
    ck_assert_int_eq(d, -1);
    ck_assert_ptr_null(e);
    ck_assert_int_eq(f, -1);
    ck_assert_int_eq(cmt_count_lines(err, "cymemtrack: "), 6);
}
END_TEST

START_TEST(misuse_null_and_long_names)
{
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    capture_begin();
    cmt_scope_t a = cmt_scope_open(NULL, 0);
    cmt_scope_t b = cmt_scope_open(longname, 0);
    void *p = malloc(9);
    int64_t bl = cmt_scope_close(b);
    int64_t al = cmt_scope_close(a);
    char *err = capture_end();
    free(p);
    ck_assert_uint_ne(a, CMT_SCOPE_NONE);
    ck_assert_uint_ne(b, CMT_SCOPE_NONE);
    ck_assert_int_eq(bl, 1);
    ck_assert_int_eq(al, 0);
    ck_assert_ptr_nonnull(strstr(err, "the scope name is NULL"));
    ck_assert_ptr_nonnull(strstr(err, "longer than 127 bytes"));
}
END_TEST

START_TEST(many_scopes_recycle)
{
    /* A scope per request, a million times over: instance records must be reused. */
    for (int i = 0; i < 200000; i++) {
        cmt_scope_t s = cmt_scope_open("req", (i & 1) ? CMT_BULK_FREE : 0);
        void *p = malloc(16);
        if (!(i & 1))
            free(p);
        if (cmt_scope_close(s) != (i & 1))
            ck_abort_msg("close %d returned the wrong live count", i);
    }
    struct cmt_process_stats st;
    cmt_process_stats(&st);
    ck_assert_uint_eq(st.allocations - st.frees - st.bulk_freed_blocks, st.live_blocks);
}
END_TEST

/* A program using the API runs the same with the tracker and without it: same output, same
 * status. (Without it, the pool calls fall back to calloc/free and its custom allocator.) */
START_TEST(same_program_with_and_without_the_tracker)
{
    const char *progs[] = { "pool-calls", "../../examples/request-loop" };
    for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
        char *argv[] = { (char *)cmt_test_prog(progs[i]), NULL };
        struct cmt_run plain, tracked;
        cmt_run(&plain, 0, argv, NULL);
        cmt_run(&tracked, 1, argv, NULL);
        ck_assert_int_eq(plain.exit_code, 0);
        ck_assert_int_eq(tracked.exit_code, 0);
        ck_assert_str_eq(plain.out, tracked.out);
        ck_assert_msg(plain.out_len > 20, "%s printed too little: %s", progs[i], plain.out);
        cmt_run_free(&plain);
        cmt_run_free(&tracked);
    }
}
END_TEST

static Suite *scope_suite(void)
{
    Suite *s = suite_create("scope");
    TCase *tc = tcase_create("accounting");
    tcase_add_test(tc, open_count_close);
    tcase_add_test(tc, nesting_innermost_wins);
    tcase_add_test(tc, outside_any_scope_is_global);
    tcase_add_test(tc, outlived_blocks_keep_the_scope);
    tcase_add_test(tc, realloc_keeps_the_owner);
    tcase_add_test(tc, many_scopes_recycle);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_add_test(tc, threads_have_their_own_stacks);
    tcase_add_test(tc, cross_thread_frees_leave_the_owner);
    suite_add_tcase(s, tc);

    tc = tcase_create("bulk");
    tcase_add_test(tc, bulk_free_frees_what_is_left);
    tcase_add_test(tc, stale_free_and_realloc_are_ignored);
    tcase_add_test(tc, bulk_free_of_many_blocks_counts_exactly);
    suite_add_tcase(s, tc);

    tc = tcase_create("quarantine");
    tcase_add_test(tc, quarantine_keeps_the_latest_within_its_budget);
    tcase_add_test(tc, quarantine_counts_empty_blocks);
    tcase_add_test(tc, quarantine_off_gives_back_at_close);
    suite_add_tcase(s, tc);

    tc = tcase_create("pool");
    tcase_add_test(tc, custom_allocator_serves_pool_calls_and_bulk_free);
    tcase_add_test(tc, custom_allocator_built_on_malloc_counts_once);
    tcase_add_test(tc, plain_free_of_a_custom_block_goes_to_its_allocator);
    tcase_add_test(tc, pool_alloc_is_zeroed_and_recorded_in_its_scope);
    tcase_add_test(tc, pool_realloc_keeps_contents_and_zeroes_the_rest);
    tcase_add_test(tc, pool_free_of_a_foreign_block_is_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("misuse");
    tcase_add_test(tc, misuse_close_twice);
    tcase_add_test(tc, misuse_close_outer_first_closes_inner);
    tcase_add_test(tc, misuse_close_from_another_thread);
    tcase_add_test(tc, misuse_null_and_garbage_handles);
    tcase_add_test(tc, misuse_null_and_long_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("without");
    tcase_add_test(tc, same_program_with_and_without_the_tracker);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    cmt_reexec_preloaded(argv);
    return cmt_run_suite(scope_suite());
}
