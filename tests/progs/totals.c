/*
 * totals.c — cmttotals.so, preloaded after libcymemtrack.so into programs nobody here wrote:
 * at exit it appends one line with the tracker's process totals to the file named by
 * $CMT_TOTALS_FILE, so a test can check the accounting of any program and of every process
 * it starts. Never writes to the program's stdout or stderr; takes the snapshot after its own
 * lookups (a failed dlsym allocates its error message), so the line is consistent.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cymemtrack.h"

/* Weak, and not linked against anything that defines it: resolved from the preloaded
 * tracker when there is one, NULL otherwise. */
extern int cmt_process_stats(struct cmt_process_stats *stats) __attribute__((weak));

/* A destructor, not atexit: the dynamic linker runs destructors after every atexit handler,
 * and in load order, so with this object preloaded after the tracker, the line is written
 * after the program's own exit handlers, its destructors and the tracker's have run. */
__attribute__((destructor)) static void cmt_totals_write(void)
{
    const char *path = getenv("CMT_TOTALS_FILE");
    if (!path || !*path)
        return;
    char exe[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';

    /* With jemalloc chained behind the tracker: how many bytes it handed out to this thread,
     * which proves that it is the allocator serving. */
    char jemalloc[64] = "";
    int (*mallctl)(const char *, void *, size_t *, void *, size_t) =
        (int (*)(const char *, void *, size_t *, void *, size_t))dlsym(RTLD_DEFAULT, "mallctl");
    uint64_t thread_allocated = 0;
    size_t size = sizeof thread_allocated;
    if (mallctl && mallctl("thread.allocated", &thread_allocated, &size, NULL, 0) == 0)
        snprintf(jemalloc, sizeof jemalloc, "jemalloc_thread_allocated=%llu ",
                 (unsigned long long)thread_allocated);

    struct cmt_process_stats s;
    int active = cmt_process_stats && cmt_process_stats(&s) == 0;
    char line[1024];
    int len;
    if (active)
        len = snprintf(line, sizeof line,
                       "pid=%d active=1 allocations=%llu frees=%llu live_blocks=%llu "
                       "live_bytes=%llu bytes_allocated=%llu peak_live_bytes=%llu "
                       "invalid_frees=%llu double_frees=%llu stale_frees=%llu "
                       "bulk_freed_blocks=%llu %sexe=%s\n",
                       (int)getpid(), (unsigned long long)s.allocations,
                       (unsigned long long)s.frees, (unsigned long long)s.live_blocks,
                       (unsigned long long)s.live_bytes, (unsigned long long)s.bytes_allocated,
                       (unsigned long long)s.peak_live_bytes,
                       (unsigned long long)s.invalid_frees, (unsigned long long)s.double_frees,
                       (unsigned long long)s.stale_frees,
                       (unsigned long long)s.bulk_freed_blocks, jemalloc, exe);
    else
        len = snprintf(line, sizeof line, "pid=%d active=0 exe=%s\n", (int)getpid(), exe);
    if (len <= 0)
        return;
    if ((size_t)len >= sizeof line)
        len = sizeof line - 1;
    /* One write with O_APPEND: lines from processes exiting at once never interleave. */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    ssize_t ignored = write(fd, line, (size_t)len);
    (void)ignored;
    close(fd);
}
