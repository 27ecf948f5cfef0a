/*
 * funchook-bench.c — what an entry hook (src/funchook.c) adds to a call: a function that
 * allocates nothing, called N times unhooked, then hooked with callbacks that only count.
 * The scope a func: entry opens and closes comes on top (see bench/). Not a test: run
 * by hand, `tests/progs/funchook-bench [calls]`; prints ns per call.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cmt.h"

/* GCC's noipa keeps a function and its callers' view of it exactly as written; clang has no
 * such attribute, and noinline is the closest. */
#if defined(__clang__)
#define CMT_NOIPA __attribute__((noinline))
#else
#define CMT_NOIPA __attribute__((noipa))
#endif

volatile int fh_bench_sink = 1;

int fh_bench_target(int x);
CMT_NOIPA int fh_bench_target(int x)
{
    return x + fh_bench_sink;
}

static long entered, exited;

static void count_enter(void *arg)
{
    (void)arg;
    entered++;
}

static void count_exit(void *arg)
{
    (void)arg;
    exited++;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

#define REPS 40

/* The best of REPS runs of n calls, in ns per call: the machine may be busy with others. */
static double run(long n)
{
    double best = 1e30;
    for (int rep = 0; rep < REPS; rep++) {
        int acc = 0;
        double t0 = now();
        for (long i = 0; i < n; i++)
            acc = fh_bench_target(acc);
        double t = (now() - t0) / (double)n;
        if (acc == 42)
            putchar(' ');
        if (t < best)
            best = t;
    }
    return best;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    double plain = run(n);
    const char *why = NULL;
    if (cmt_funchook_install((void *)fh_bench_target, count_enter, count_exit, NULL, &why) != 0) {
        fprintf(stderr, "funchook-bench: cannot hook: %s\n", why);
        return 1;
    }
    double hooked = run(n);
    if (entered != REPS * n || exited != REPS * n) {
        fprintf(stderr, "funchook-bench: %ld entries, %ld exits, expected %ld\n", entered,
                exited, REPS * n);
        return 1;
    }
    printf("calls %ld: unhooked %.2f ns/call, hooked %.2f ns/call, hook adds %.2f ns/call\n",
           n, plain, hooked, hooked - plain);
    return 0;
}
