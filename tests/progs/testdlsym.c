/*
 * testdlsym.c — libtestdlsym.so, a dlsym that allocates, as glibc's did before 2.34 (its
 * dlerror state came from calloc): preloaded beside libcymemtrack.so, it makes the tracker's
 * own dlsym(RTLD_NEXT, "malloc"...) calls allocate while the tracker does not yet know the
 * next allocator, so that tests/check_bootstrap.c can run the bootstrap path of src/hooks.c.
 * It keeps one block of each such call for bootstrap_prog to free and realloc later. Never
 * writes to stdout or stderr: what it saw is read through testdlsym_state().
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../testdlsym.h"

static struct testdlsym_state st;
static void *(*real_dlsym)(void *, const char *);

const struct testdlsym_state *testdlsym_state(void)
{
    return &st;
}

/* The names the tracker resolves first, before it can record anything: only these calls
 * allocate, so that nothing this library allocates later is counted as the program's. */
static int is_allocator(const char *name)
{
    static const char *const names[] = { "malloc", "calloc", "realloc", "free",
                                         "posix_memalign", "aligned_alloc", "memalign",
                                         "valloc", "pvalloc", "malloc_usable_size" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return 1;
    return 0;
}

/* What an allocating dlsym does: a message buffer grown once, a zeroed state freed again, an
 * aligned scratch block freed again. The message ("dlsym: NAME") is kept. */
static void allocate_like_glibc(const char *name)
{
    char *msg = malloc(TESTDLSYM_FIRST_SIZE);
    int *state = calloc(8, sizeof *state);
    void *aligned = NULL;
    int align_rc = posix_memalign(&aligned, TESTDLSYM_ALIGN, 100);
    if (!msg || !state || align_rc != 0) {
        st.failures++;
        free(msg);
        free(state);
        return;
    }
    for (int i = 0; i < 8; i++)
        if (state[i] != 0)
            st.failures++;
    if ((uintptr_t)aligned % TESTDLSYM_ALIGN != 0)
        st.failures++;
    size_t len = strlen(name);
    if (len > TESTDLSYM_FIRST_SIZE - 8)
        len = TESTDLSYM_FIRST_SIZE - 8;
    memcpy(msg, "dlsym: ", 7);
    memcpy(msg + 7, name, len);
    msg[7 + len] = '\0';
    char *grown = realloc(msg, TESTDLSYM_KEPT_SIZE);
    if (!grown || strncmp(grown, "dlsym: ", 7) != 0 || strcmp(grown + 7, name) != 0) {
        st.failures++;
        free(grown ? grown : msg);
    } else if (st.kept_count < TESTDLSYM_MAX_KEPT) {
        st.kept[st.kept_count++] = grown;
    } else {
        free(grown);
    }
    free(state);
    free(aligned);
}

/* Preloaded after libcymemtrack.so, this definition still wins the tracker's lookup of
 * dlsym (the tracker defines none), and the call below, made from here, gives RTLD_NEXT the
 * meaning it had for the tracker: the objects after this one are the objects after the
 * tracker, less this one, which defines no allocator. (Preloaded before the tracker, the
 * forwarding call would have to be a jump that keeps the tracker's return address, which the
 * real dlsym reads to know its caller.) For other callers RTLD_NEXT is only approximated. */
void *dlsym(void *restrict handle, const char *restrict name)
{
    if (!real_dlsym) {
        real_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
        /* Before 2.34, in libdl, under the architecture's first version. */
        static const char *const older[] = { "GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.0" };
        for (size_t i = 0; !real_dlsym && i < sizeof older / sizeof older[0]; i++)
            real_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", older[i]);
        if (!real_dlsym)
            abort();
    }
    if (handle == RTLD_NEXT && is_allocator(name)) {
        st.allocator_calls++;
        allocate_like_glibc(name);
    }
    return real_dlsym(handle, name);
}
