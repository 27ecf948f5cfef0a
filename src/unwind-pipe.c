/*
 * unwind-pipe.c — keeps libunwind's memory-check pipe out of the program's way.
 *
 * libunwind (built with conservative checks, as Debian's is) opens a pipe when it starts and
 * writes a byte from an address into it to learn whether the address can be read; when a
 * read from the pipe fails it opens a new one. The pipe took the lowest free descriptors, so
 * a tracked program's first open() returned 5 instead of 3, a program started with stdin
 * closed found the pipe as its stdin, and a program that closed every descriptor and opened
 * its own files as 3 and 4 had libunwind read and write those files (seen in a sweep of
 * Python's test suite). stack.c now starts libunwind only when a stack needs it, and marks
 * the calls it makes into libunwind; a pipe made during one is moved here to descriptors
 * far above the ones programs count on (from 960, or below a lower RLIMIT_NOFILE), and
 * before each use stack.c asks whether those descriptors still hold that pipe.
 *
 * Exports pipe and pipe2, which forward every other call to the next definition unchanged.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cmt.h"

/* Where moved descriptors start: high enough that programs do not pick them by number (bash
 * keeps its own from 10 and 255 up), low enough not to make the kernel grow the process's
 * descriptor table much. */
#define PIPE_FD_BASE 960
#define PIPE_FD_ROOM 64     /* kept free below a lower RLIMIT_NOFILE */

/* The pipe libunwind holds now, as moved: its descriptors and the files they were. */
static struct {
    atomic_int fd[2];       /* -1 until a pipe was made */
    dev_t dev[2];
    ino_t ino[2];
    atomic_bool said;
} up = { { -1, -1 }, { 0, 0 }, { 0, 0 }, false };

typedef int (*pipe2_fn)(int[2], int);
typedef int (*pipe_fn)(int[2]);

static int sys_pipe2(int fds[2], int flags)
{
    return (int)syscall(SYS_pipe2, fds, flags);
}

static int sys_pipe(int fds[2])
{
    return sys_pipe2(fds, 0);
}

/* The definitions the program's calls go on to (another preloaded library's, or libc's),
 * found at start; until then, and when there is none, the system call itself, which is all
 * libc's are. Not looked up at the first call: that may be in a signal handler that
 * interrupted the loader. */
static pipe2_fn next_pipe2 = sys_pipe2;
static pipe_fn next_pipe = sys_pipe;

void cmt_unwind_pipe_init(void)
{
    pipe2_fn f2 = (pipe2_fn)cmt_elfsyms_next("pipe2");
    pipe_fn f = (pipe_fn)cmt_elfsyms_next("pipe");
    if (f2)
        __atomic_store_n(&next_pipe2, f2, __ATOMIC_RELAXED);
    if (f)
        __atomic_store_n(&next_pipe, f, __ATOMIC_RELAXED);
}

/* The lowest descriptor a moved one may take. */
static int fd_base(void)
{
    struct rlimit r;
    if (syscall(SYS_getrlimit, RLIMIT_NOFILE, &r) != 0 || r.rlim_cur >= PIPE_FD_BASE + PIPE_FD_ROOM)
        return PIPE_FD_BASE;
    return r.rlim_cur > 3 + PIPE_FD_ROOM ? (int)r.rlim_cur - PIPE_FD_ROOM : -1;
}

/* Moves *fd to a descriptor at or above base, with the same close-on-exec flag; leaves it
 * where it is when that cannot be done. */
static void move_high(int *fd, int base)
{
    int fdflags = (int)syscall(SYS_fcntl, *fd, F_GETFD);
    if (fdflags < 0)
        return;
    int cmd = (fdflags & FD_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD;
    int high = (int)syscall(SYS_fcntl, *fd, cmd, base);
    if (high < 0)
        return;
    syscall(SYS_close, *fd);
    *fd = high;
}

/* A pipe just made for libunwind: moved high and remembered. */
static void adopt(int fds[2])
{
    int e = errno;
    int base = fd_base();
    for (int i = 0; i < 2; i++) {
        if (base >= 0)
            move_high(&fds[i], base);
        struct stat st;
        if (syscall(SYS_fstat, fds[i], &st) == 0) {
            up.dev[i] = st.st_dev;
            up.ino[i] = st.st_ino;
        }
        atomic_store_explicit(&up.fd[i], fds[i], memory_order_release);
    }
    errno = e;
}

CMT_EXPORT int pipe2(int fds[2], int flags)
{
    int rc = __atomic_load_n(&next_pipe2, __ATOMIC_RELAXED)(fds, flags);
    if (rc == 0 && cmt_in_libunwind)
        adopt(fds);
    return rc;
}

CMT_EXPORT int pipe(int fds[2])
{
    int rc = __atomic_load_n(&next_pipe, __ATOMIC_RELAXED)(fds);
    if (rc == 0 && cmt_in_libunwind)
        adopt(fds);
    return rc;
}

/* Do libunwind's descriptors still hold its pipe? True too when it has none yet, or when the
 * program closed them (libunwind's next read fails, and it makes a new pipe, moved here).
 * False when the program has put files of its own there: libunwind must not be used again. */
bool cmt_unwind_pipe_intact(void)
{
    for (int i = 0; i < 2; i++) {
        int fd = atomic_load_explicit(&up.fd[i], memory_order_acquire);
        if (fd < 0)
            continue;
        struct stat st;
        if (syscall(SYS_fstat, fd, &st) != 0)
            continue;       /* closed: libunwind will notice */
        if (st.st_dev != up.dev[i] || st.st_ino != up.ino[i]) {
            if (!atomic_exchange(&up.said, true))
                cmt_diag("descriptor %d, which held the unwinder's pipe, is now one of the "
                         "program's own; stacks that need libunwind are cut short from now on",
                         fd);
            return false;
        }
    }
    return true;
}
