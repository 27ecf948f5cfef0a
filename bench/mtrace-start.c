/*
 * bench/mtrace-start.c — starts glibc's mtrace in a program that never calls mtrace(3), so
 * that the benchmarks can compare against it. Preloaded after libc_malloc_debug.so.0, whose
 * mtrace() (libc's own is a stub since glibc 2.34) writes every call to $MALLOC_TRACE.
 * Does nothing else; never part of the tracker.
 */
#include <mcheck.h>

__attribute__((constructor)) static void start_mtrace(void)
{
    mtrace();
}
