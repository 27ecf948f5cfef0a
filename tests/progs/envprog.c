/*
 * envprog.c — a program that knows nothing of cymemtrack, for check_envscope: its functions,
 * threads and signals are what CYMEMTRACK_SCOPES names. Every allocation it makes between
 * them is counted by the suite, so the suite can expect exact numbers.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int handle_request(int i);
void build_pool(void);

/* Kept by the program so the compiler cannot drop the allocations it leaks. */
void *volatile sink[64];
static int nsink;

/* Two blocks a call; the second always freed, the first on odd calls only. */
__attribute__((noinline)) int handle_request(int i)
{
    char *a = malloc(100 + (size_t)i);
    char *b = malloc(50);
    memset(a, 0, 100 + (size_t)i);
    free(b);
    if (i % 2)
        free(a);
    else
        sink[nsink++] = a;
    return i;
}

/* A static function: found through .symtab. One block, freed. */
static __attribute__((noinline)) void static_helper(void)
{
    void *p = malloc(33);
    sink[63] = p;
    free(p);
}

/* Builds four blocks and keeps none: a bulk scope frees them when the call returns. */
__attribute__((noinline)) void build_pool(void)
{
    for (int i = 0; i < 4; i++)
        sink[60] = malloc(16);
}

static void *named_worker(void *name)
{
    pthread_setname_np(pthread_self(), name);
    for (int i = 0; i < 10; i++)
        sink[40 + i] = malloc(7);
    return NULL;
}

int main(int argc, char **argv)
{
    for (int i = 0; i < 10; i++)
        handle_request(i);
    for (int i = 0; i < 3; i++)
        static_helper();
    build_pool();

    pthread_t t;
    pthread_create(&t, NULL, named_worker, "worker-1");
    pthread_join(t, NULL);
    pthread_create(&t, NULL, named_worker, "other");
    pthread_join(t, NULL);

    /* Only when asked: without a signal: scope, SIGUSR2 would end the program. */
    if (argc > 1 && strcmp(argv[1], "signals") == 0) {
        raise(SIGUSR2);
        for (int i = 0; i < 3; i++)
            sink[50 + i] = malloc(11);  /* the first of these opens the window */
        raise(SIGUSR2);
        sink[55] = malloc(5);           /* closes it, and lands in the global scope */
    }

    static const char done[] = "done\n";
    return write(STDOUT_FILENO, done, sizeof done - 1) == sizeof done - 1 ? 0 : 1;
}
