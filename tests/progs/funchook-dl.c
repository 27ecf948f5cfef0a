/*
 * funchook-dl.c — a module tests/check_funchook.c dlopen()s after arming the loader watch:
 * its constructor calls fh_dl_func, which the suite hooks as soon as the module is added, so
 * that call must already be seen.
 */
volatile int fh_dl_sink = 5;
static volatile int ctor_result;

int fh_dl_func(int x);
int fh_dl_ctor_result(void);

__attribute__((noinline)) int fh_dl_func(int x)
{
    return x * 3 + fh_dl_sink;
}

__attribute__((constructor)) static void fh_dl_init(void)
{
    ctor_result = fh_dl_func(1);
}

int fh_dl_ctor_result(void)
{
    return ctor_result;
}
