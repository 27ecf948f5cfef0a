/*
 * unwind-bench.c — what capturing the stack costs at each allocation, for each unwinder.
 *
 * Calls malloc and free in a loop at the bottom of a chain of call frames, and captures the
 * stack (16 frames, the default) after each malloc the way the hooks would: always from one
 * call site, or ("mixed") from eight inner paths of 1 to 8 frames in turn, as real programs
 * allocate. Not part of
 * make check: build and run it with bench/unwind/run (see README.md there). One mode a
 * process, since libunwind's caching policy is process-wide.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "cmt.h"

/* stack.c's knobs (not in cmt.h): 0 cached rules, 1 libunwind alone. */
extern int cmt_stack_unwinder;

enum mode { NONE, UNW_BACKTRACE, UNW_BACKTRACE_PER_THREAD, CMT_LIBUNWIND, CMT_CACHED };
static const char *const names[] = { "none", "unw_backtrace", "unw_backtrace+per-thread",
                                     "cmt_stack_capture/libunwind", "cmt_stack_capture/cached" };

static enum mode mode;
static volatile uintptr_t sink;

static __attribute__((noinline)) void one(void)
{
    void *p = malloc(32);
    switch (mode) {
    case NONE:
        break;
    case UNW_BACKTRACE:
    case UNW_BACKTRACE_PER_THREAD: {
        void *buf[CMT_STACK_DEPTH_DEFAULT + 1];
        sink += (uintptr_t)unw_backtrace(buf, CMT_STACK_DEPTH_DEFAULT + 1);
        break;
    }
    case CMT_LIBUNWIND:
    case CMT_CACHED:
        sink += cmt_stack_capture();
        break;
    }
    free(p);
}

static int mixed;

/* levels frames, then one allocation: the inner paths of the mixed case. */
static __attribute__((noinline)) void inner(int levels)
{
    if (levels > 0)
        inner(levels - 1);
    else
        one();
    __asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) void inner_b(int levels)
{
    inner(levels);
    __asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) void loop(long n)
{
    if (!mixed) {
        for (long i = 0; i < n; i++)
            one();
    } else {
        for (long i = 0; i < n; i++) {
            int path = (int)(i & 7);
            if (path & 1)
                inner_b(path >> 1);
            else
                inner(path);
        }
    }
    __asm__ volatile("" ::: "memory");
}

/* depth frames of this function between main and the loop. */
static __attribute__((noinline)) void nest(int depth, long n)
{
    if (depth > 0)
        nest(depth - 1, n);
    else
        loop(n);
    __asm__ volatile("" ::: "memory");
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);   /* other load on the machine does not count */
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s MODE(0-4) CALL-DEPTH ITERATIONS [mixed]\n", argv[0]);
        return 2;
    }
    mixed = argc == 5;
    mode = (enum mode)atoi(argv[1]);
    int depth = atoi(argv[2]);
    long n = atol(argv[3]);
    if (mode > CMT_CACHED)
        return 2;
    if (mode == UNW_BACKTRACE_PER_THREAD)
        unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    if (mode == CMT_LIBUNWIND || mode == CMT_CACHED) {
        cmt_stack_unwinder = mode == CMT_LIBUNWIND;
        cmt_stack_init();
    }
    nest(depth, n / 10 + 1);   /* warm up: caches filled, pages touched */
    double best = 1e300;
    for (int rep = 0; rep < 5; rep++) {
        double t = now_ns();
        nest(depth, n);
        t = now_ns() - t;
        if (t < best)
            best = t;
    }
    printf("%-30s depth %3d%s  %8.1f ns per malloc+free\n", names[mode], depth,
           mixed ? " mixed" : "      ", best / n);
    return 0;
}
