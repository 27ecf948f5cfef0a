/*
 * testdlsym.h — what libtestdlsym.so (progs/testdlsym.c) tells progs/bootstrap_prog about
 * the allocations it made inside dlsym while the tracker was resolving the allocator.
 */
#ifndef CMT_TESTDLSYM_H
#define CMT_TESTDLSYM_H

#define TESTDLSYM_MAX_KEPT 16
#define TESTDLSYM_FIRST_SIZE 64     /* the message buffer, as first allocated */
#define TESTDLSYM_KEPT_SIZE 128     /* and as kept, after one realloc */
#define TESTDLSYM_ALIGN 64          /* posix_memalign's alignment */

struct testdlsym_state {
    int allocator_calls;            /* dlsym(RTLD_NEXT, <an allocator function>) calls */
    int failures;                   /* allocations that failed or came back wrong */
    int kept_count;
    char *kept[TESTDLSYM_MAX_KEPT]; /* "dlsym: NAME", TESTDLSYM_KEPT_SIZE bytes each */
};

/* Defined by libtestdlsym.so; the program declares it weak, to run without it too. */
const struct testdlsym_state *testdlsym_state(void);

#endif
