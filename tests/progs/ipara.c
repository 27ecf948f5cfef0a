/*
 * ipara.c — a caller that keeps values in caller-saved registers across calls, as GCC's
 * interprocedural register allocation (-fipa-ra, on at -O2) does when it knows the callee
 * leaves them alone. check_envscope hooks hooked_leaf with a func: scope: if the hook's
 * stubs clobbered such a register, the loop below would run wrong or forever.
 */
#include <stdio.h>

static volatile int sink;

int hooked_leaf(int x);
__attribute__((noinline)) int hooked_leaf(int x)
{
    sink = x;
    for (int i = 0; i < x; i++)
        sink += i;
    return sink;
}

int main(void)
{
    long acc = 0;
    for (int i = 0; i < 1000; i++)
        acc += hooked_leaf(i & 15);
    printf("%ld\n", acc);
    return 0;
}
