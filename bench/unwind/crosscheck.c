/*
 * crosscheck.c — a preload that checks the cached-rule unwinder against libunwind on real
 * programs: at every Nth malloc it captures the stack with both and compares the frames.
 *
 *   LD_PRELOAD=crosscheck.so CROSSCHECK_EVERY=1 program ...
 *
 * Prints one summary line on stderr at exit, and the first few mismatching stacks. A test
 * tool, not the tracker: it serves malloc from glibc's __libc_malloc and tracks nothing.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmt.h"

extern int cmt_stack_unwinder;
extern atomic_ulong cmt_stack_fallbacks;
extern void *__libc_malloc(size_t);

static __thread int busy;
static atomic_ulong calls, compared, mismatched;
static atomic_int reports = 5;
static unsigned long every = 1;
static atomic_int ready;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        write(2, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void dump(const char *label, uint32_t id)
{
    const uintptr_t *pcs;
    uint32_t depth;
    if (!cmt_stack_get(id, &pcs, &depth)) {
        say("  %s: no stack\n", label);
        return;
    }
    say("  %s: %u frames\n", label, depth);
    for (uint32_t i = 0; i < depth; i++) {
        Dl_info info;
        const char *name = "?", *file = "?";
        if (dladdr((void *)(pcs[i] - 1), &info)) {
            name = info.dli_sname ? info.dli_sname : "?";
            file = info.dli_fname ? info.dli_fname : "?";
        }
        say("    %#lx %s (%s)\n", (unsigned long)pcs[i], name, file);
    }
}

static void check(void)
{
    cmt_stack_unwinder = 0;
    uint32_t a = cmt_stack_capture();
    cmt_stack_unwinder = 1;
    uint32_t b = cmt_stack_capture();
    cmt_stack_unwinder = 0;
    atomic_fetch_add(&compared, 1);
    if (a != b) {
        atomic_fetch_add(&mismatched, 1);
        if (atomic_fetch_sub(&reports, 1) > 0) {
            say("crosscheck: stacks differ\n");
            dump("cached", a);
            dump("libunwind", b);
        }
    }
}

void *malloc(size_t size)
{
    void *p = __libc_malloc(size);
    if (!busy && atomic_load_explicit(&ready, memory_order_acquire)) {
        busy = 1;
        if (atomic_fetch_add(&calls, 1) % every == 0)
            check();
        busy = 0;
    }
    return p;
}

__attribute__((constructor)) static void start(void)
{
    busy = 1;
    const char *e = getenv("CROSSCHECK_EVERY");
    if (e && atol(e) > 0)
        every = (unsigned long)atol(e);
    cmt_cfg.stack_depth = CMT_STACK_MAX_DEPTH;
    const char *d = getenv("CROSSCHECK_DEPTH");
    if (d && atoi(d) > 0 && atoi(d) <= CMT_STACK_MAX_DEPTH)
        cmt_cfg.stack_depth = atoi(d);
    cmt_stack_init();
    atomic_store(&ready, 1);
    busy = 0;
}

__attribute__((destructor)) static void finish(void)
{
    busy = 1;
    say("crosscheck: %lu mallocs, %lu compared, %lu differ, %lu needed libunwind, "
        "%u distinct stacks\n", atomic_load(&calls), atomic_load(&compared),
        atomic_load(&mismatched), atomic_load(&cmt_stack_fallbacks), cmt_stack_count());
}
