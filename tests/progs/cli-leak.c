/*
 * cli-leak.c — leaks known blocks from known call chains, for check_cli's end-to-end tests
 * of cymemtrack and cymem-report: 3 blocks of 100 bytes from main -> make_leaks ->
 * leak_leaf (static) -> malloc, at the line marked LEAK-SITE. Arguments: "clean" frees them
 * instead; "family" also forks a child that leaks 1 block of 64 bytes, then execs itself as
 * "after-exec", which leaks 2 blocks of 32 bytes. Uses no stdio, so that the C library's
 * own buffers do not show up as leaks.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* GCC's noipa keeps a function and its callers' view of it exactly as written; clang has no
 * such attribute, and noinline is the closest. */
#if defined(__clang__)
#define CMT_NOIPA __attribute__((noinline))
#else
#define CMT_NOIPA __attribute__((noipa))
#endif

void *volatile cmt_keep[8];

CMT_NOIPA static void *leak_leaf(size_t size)
{
    void *p = malloc(size); /* LEAK-SITE leak_leaf */
    cmt_keep[7] = p;        /* work after the call: it cannot become a jump */
    return p;
}

CMT_NOIPA void cmt_make_leaks(int n, size_t size);
CMT_NOIPA void cmt_make_leaks(int n, size_t size)
{
    for (int i = 0; i < n; i++)
        cmt_keep[i] = leak_leaf(size); /* LEAK-SITE cmt_make_leaks */
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "after-exec") == 0) {
        cmt_make_leaks(2, 32);
        return 0;
    }
    cmt_make_leaks(3, 100); /* LEAK-SITE main */
    if (strcmp(mode, "clean") == 0) {
        for (int i = 0; i < 3; i++)
            free(cmt_keep[i]);
        return 0;
    }
    if (strcmp(mode, "family") == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            cmt_make_leaks(1, 64);
            _exit(0);
        }
        int status;
        waitpid(pid, &status, 0);
        execl("/proc/self/exe", argv[0], "after-exec", (char *)NULL);
        return 1;
    }
    return 0;
}
