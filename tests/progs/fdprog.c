/*
 * fdprog.c — run by tests/check_fds.c under the preload: what a program sees of the file
 * descriptors while the tracker runs, with stacks that only libunwind can walk (nocfi.S).
 * Uses write(2) for its lines: stdio would open nothing, but keeps the output plain.
 *
 *   fdprog first      "fd=N": the descriptor its first open() gets, after allocations
 *   fdprog reuse      closes 3..255 as daemons do, opens its own executable (3) and
 *                     out.bin (4), allocates through nocfi_alloc on a new thread, then says
 *                     "in_offset=N out_size=N"
 *   fdprog takeover   allocates through nocfi_alloc, puts its own executable on every pipe
 *                     that appeared meanwhile (libunwind's), allocates again on a new
 *                     thread, then says
 *                     "taken=N in_offset=N"
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "say.h"

void *nocfi_alloc(size_t size);


static bool is_fifo(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

static void allocate_unwindable_only(int n)
{
    for (int i = 0; i < n; i++) {
        char *p = nocfi_alloc(32 + (size_t)i);
        if (!p)
            _exit(121);
        p[0] = 1;
        free(p);
    }
}

static void *allocate_50(void *arg)
{
    (void)arg;
    allocate_unwindable_only(50);
    return NULL;
}

/* The same, on a new thread: libunwind remembers the stack pages it has checked, and a new
 * stack makes it check again, through its pipe. */
static void allocate_on_a_new_stack(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, allocate_50, NULL) != 0 || pthread_join(t, NULL) != 0)
        _exit(122);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    const char *in = "/proc/self/exe", *out = "out.bin";
    if (strcmp(mode, "first") == 0) {
        allocate_unwindable_only(10);
        say("fd=%d\n", open("/dev/null", O_RDONLY | O_CLOEXEC));
        return 0;
    }
    if (strcmp(mode, "reuse") == 0) {
        allocate_unwindable_only(10);
        for (int fd = 3; fd < 256; fd++)
            close(fd);
        int a = open(in, O_RDONLY), b = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (a != 3 || b != 4)
            return 3;
        allocate_on_a_new_stack();
        struct stat st;
        if (fstat(b, &st) != 0)
            return 4;
        say("in_offset=%ld out_size=%ld\n", (long)lseek(a, 0, SEEK_CUR), (long)st.st_size);
        return 0;
    }
    if (strcmp(mode, "takeover") == 0) {
        /* The pipes that appear with the first stacks libunwind walks are its own. */
        bool was_fifo[1024];
        for (int fd = 0; fd < 1024; fd++)
            was_fifo[fd] = is_fifo(fd);
        allocate_unwindable_only(10);
        int a = open(in, O_RDONLY);
        if (a < 0)
            return 3;
        int taken = 0;
        for (int fd = 3; fd < 1024; fd++)
            if (fd != a && !was_fifo[fd] && is_fifo(fd) && dup2(a, fd) == fd)
                taken++;
        allocate_on_a_new_stack();
        say("taken=%d in_offset=%ld\n", taken, (long)lseek(a, 0, SEEK_CUR));
        return 0;
    }
    return 2;
}
