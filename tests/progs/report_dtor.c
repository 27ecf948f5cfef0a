/*
 * report_dtor.c — report_dtor.so, which tests/progs/report_prog dlopen()s: allocates a block
 * in its constructor and frees it in its destructor (unless CMT_TEST_KEEP is set), so that
 * tests/check_report.c can see that a library's destructor runs before the report is written.
 */
#include <stdlib.h>

#define LIB_BLOCK_SIZE 777

static void *block;

__attribute__((constructor)) static void report_dtor_init(void)
{
    block = malloc(LIB_BLOCK_SIZE);
}

__attribute__((destructor)) static void report_dtor_fini(void)
{
    if (!getenv("CMT_TEST_KEEP"))
        free(block);
}
