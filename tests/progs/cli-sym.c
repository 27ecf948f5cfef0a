/*
 * cli-sym.c — gives check_cli's symbolization tests return addresses whose function and
 * line are known: it prints, for two call sites marked CALL-SITE below, the return address
 * and the /proc/self/maps line that holds it ("NAME PC START END OFFSET PATH"). It must
 * keep the calls real calls (no inlining, no tail calls), or the addresses mean nothing.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GCC's noipa keeps a function and its callers' view of it exactly as written; clang has no
 * such attribute, and noinline is the closest. */
#if defined(__clang__)
#define CMT_NOIPA __attribute__((noinline))
#else
#define CMT_NOIPA __attribute__((noipa))
#endif

void *volatile cmt_sink;

CMT_NOIPA static void *where(void)
{
    return __builtin_return_address(0);
}

/* static, so that only the full symbol table (.symtab) names it. */
CMT_NOIPA static void *static_caller(void)
{
    void *pc = where(); /* CALL-SITE static_caller */
    cmt_sink = pc;      /* work after the call: it cannot become a jump */
    return pc;
}

CMT_NOIPA void *cmt_global_caller(void);
CMT_NOIPA void *cmt_global_caller(void)
{
    void *pc = where(); /* CALL-SITE cmt_global_caller */
    cmt_sink = pc;
    return pc;
}

static void show(const char *name, void *pc)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[4096];
    uintptr_t a = (uintptr_t)pc;
    while (maps && fgets(line, sizeof line, maps)) {
        unsigned long start, end, off;
        char perms[8], path[4096] = "";
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %4095[^\n]", &start, &end, perms, &off,
                   path) >= 4 && a >= start && a < end) {
            printf("%s 0x%" PRIxPTR " 0x%lx 0x%lx 0x%lx %s\n", name, a, start, end, off,
                   path + strspn(path, " "));
            break;
        }
    }
    if (maps)
        fclose(maps);
}

int main(void)
{
    show("static_caller", static_caller());
    show("cmt_global_caller", cmt_global_caller());
    return 0;
}
