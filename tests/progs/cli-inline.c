/*
 * cli-inline.c — one leak made through calls the compiler inlines: main -> outer_step
 * (inlined) -> inner_step (inlined) -> malloc, for check_cli's test that the symbolizer
 * shows one frame per inlined function, each with the line of its call (LEAK-SITE marks).
 */
#include <stdlib.h>

void *volatile cmt_kept;

static inline __attribute__((always_inline)) void *inner_step(size_t n)
{
    return malloc(n); /* LEAK-SITE inner_step */
}

static inline __attribute__((always_inline)) void *outer_step(size_t n)
{
    void *p = inner_step(n * 2); /* LEAK-SITE outer_step */
    return p;
}

int main(void)
{
    cmt_kept = outer_step(21); /* LEAK-SITE main */
    return 0;
}
