/*
 * inspectprog.c — a program that knows nothing of cymemtrack, for check_envscope's func:
 * scopes on functions no entry hook can take (tests/progs/inspect-asm.S), which the tracker
 * finds by inspecting the stack at each allocation. Each mode (argv[1]) makes a known
 * sequence of allocations; outside() is an allocation outside every configured function,
 * which closes the inspected instances before it. Mode "cyg" calls inspect_loop the way an
 * -finstrument-functions build would, between its entry and exit hooks. No stdio: it would
 * allocate.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void inspect_loop(size_t n, size_t size, void (*fn)(void *));
void inspect_short(void (*callee)(void *, size_t, void (*)(void *)), size_t size,
                   void (*fn)(void *));
void inspect_short_callee(void *self, size_t size, void (*fn)(void *));
void hooked_keep(void *p);
void hooked_outer(void);
/* What a program built with -finstrument-functions calls around each of its functions;
 * weak, so that the program also runs without the tracker. */
extern void __cyg_profile_func_enter(void *fn, void *call_site) __attribute__((weak));
extern void __cyg_profile_func_exit(void *fn, void *call_site) __attribute__((weak));

/* Kept by the program so the compiler cannot drop the allocations it leaks. */
void *volatile sink[256];
static unsigned nsink;

static void keep(void *p)
{
    sink[nsink++ % 256] = p;
}

static void drop(void *p)
{
    free(p);
}

static __attribute__((noinline)) void outside(void)
{
    void *p = malloc(8);
    sink[255] = p;
    free(p);
}

/* Hookable: an instance per call, which the 19-byte block goes to. */
__attribute__((noinline)) void hooked_keep(void *p)
{
    keep(p);
    keep(malloc(19));
}

/* Hookable, around an inspected call: its own blocks go to its scope, the inner call's to
 * the inspected scope. */
__attribute__((noinline)) void hooked_outer(void)
{
    keep(malloc(11));
    inspect_loop(2, 13, keep);
    keep(malloc(11));
}

static void *worker(void *arg)
{
    (void)arg;
    inspect_loop(4, 8, keep);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "counts") == 0) {
        inspect_loop(5, 24, keep);      /* an instance: 5 blocks of 24, kept */
        outside();
        inspect_loop(3, 40, drop);      /* another: 3 blocks of 40, freed at once */
        inspect_loop(2, 16, keep);      /* same frame, nothing between: the same instance */
        outside();
    } else if (strcmp(mode, "nest") == 0) {
        hooked_outer();
        inspect_loop(2, 17, hooked_keep);
        outside();
    } else if (strcmp(mode, "short") == 0) {
        inspect_short(inspect_short_callee, 21, keep);
        outside();
        inspect_short(inspect_short_callee, 21, keep);
        outside();
    } else if (strcmp(mode, "thread") == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, NULL) != 0 || pthread_join(t, NULL) != 0)
            return 2;
        outside();
    } else if (strcmp(mode, "cyg") == 0) {
        for (int i = 0; i < 3; i++) {   /* three calls in a row, each between its hooks */
            if (__cyg_profile_func_enter)
                __cyg_profile_func_enter((void *)inspect_loop, main);
            inspect_loop(2, 10, keep);
            if (__cyg_profile_func_exit)
                __cyg_profile_func_exit((void *)inspect_loop, main);
        }
    } else if (strcmp(mode, "dl") == 0 && argc > 2) {
        void *h = dlopen(argv[2], RTLD_NOW);
        void (*loop)(size_t, size_t, void (*)(void *)) =
            h ? (void (*)(size_t, size_t, void (*)(void *)))dlsym(h, "dl_inspect_loop") : NULL;
        if (!loop)
            return 3;
        loop(3, 9, keep);
        outside();
    } else {
        return 4;
    }
    static const char done[] = "done\n";
    return write(STDOUT_FILENO, done, sizeof done - 1) == sizeof done - 1 ? 0 : 1;
}
