/*
 * check_funchook.c — entry hooks (src/funchook.c) and the symbol lookup (src/elfsyms.c),
 * linked into this plain program, no preload: the suite hooks its own functions, written in
 * C and, where the exact bytes matter, in assembly, and counts on_enter/on_exit exactly.
 * C++ exceptions run in tests/progs/funchook-cxx; the loader watch loads funchook-dl.so.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cmt.h"

/* GCC's noipa keeps a function and its callers' view of it exactly as written; clang has no
 * such attribute, and noinline is the closest. */
#if defined(__clang__)
#define CMT_NOIPA __attribute__((noinline))
#else
#define CMT_NOIPA __attribute__((noipa))
#endif

/* ---- functions to hook -------------------------------------------------------------- */

/* Exact bytes, so that each refusal and relocation is the one intended. */
__asm__(
    "        .text\n"
    /* A lone ret with another function right after it: too short. */
    "        .p2align 4\n"
    "        .globl fh_short\n"
    "        .hidden fh_short\n"
    "        .type fh_short, @function\n"
    "fh_short:\n"
    "        ret\n"
    "        .size fh_short, .-fh_short\n"
    "        .globl fh_short_next\n"
    "        .hidden fh_short_next\n"
    "        .type fh_short_next, @function\n"
    "fh_short_next:\n"
    "        movl $7, %eax\n"
    "        ret\n"
    "        .size fh_short_next, .-fh_short_next\n"
    /* *p, then alignment padding: short, hooked through the padding. */
    "        .p2align 4\n"
    "        .globl fh_getter\n"
    "        .hidden fh_getter\n"
    "        .type fh_getter, @function\n"
    "fh_getter:\n"
    "        movl (%rdi), %eax\n"
    "        ret\n"
    "        .size fh_getter, .-fh_getter\n"
    /* A tail call in 2 bytes, as gcc makes of a wrapper: hooked through the padding. */
    "        .p2align 4\n"
    "        .globl fh_tail\n"
    "        .hidden fh_tail\n"
    "        .type fh_tail, @function\n"
    "fh_tail:\n"
    "        jmp fh_short_next\n"
    "        .size fh_tail, .-fh_tail\n"
    /* The same, for the padding-tolerant entry-only hook. */
    "        .p2align 4\n"
    "        .globl fh_lone_ret\n"
    "        .hidden fh_lone_ret\n"
    "        .type fh_lone_ret, @function\n"
    "fh_lone_ret:\n"
    "        ret\n"
    "        .size fh_lone_ret, .-fh_lone_ret\n"
    /* n + (n-1) + ... + 1, its loop head at +2: a jump into the patched bytes. */
    "        .p2align 4\n"
    "        .globl fh_jump_into\n"
    "        .hidden fh_jump_into\n"
    "        .type fh_jump_into, @function\n"
    "fh_jump_into:\n"
    "        xorl %eax, %eax\n"
    "1:      addl %edi, %eax\n"
    "        decl %edi\n"
    "        jnz 1b\n"
    "        ret\n"
    "        .size fh_jump_into, .-fh_jump_into\n"
    /* fh_data + x, the load rip-relative. */
    "        .p2align 4\n"
    "        .globl fh_riprel\n"
    "        .hidden fh_riprel\n"
    "        .type fh_riprel, @function\n"
    "fh_riprel:\n"
    "        movl fh_data(%rip), %eax\n"
    "        addl %edi, %eax\n"
    "        ret\n"
    "        .size fh_riprel, .-fh_riprel\n"
    /* x ? x + 1 : -1, starting with a short conditional jump. */
    "        .p2align 4\n"
    "        .globl fh_shortjcc\n"
    "        .hidden fh_shortjcc\n"
    "        .type fh_shortjcc, @function\n"
    "fh_shortjcc:\n"
    "        testl %edi, %edi\n"
    "        je 1f\n"
    "        leal 1(%rdi), %eax\n"
    "        ret\n"
    "1:      movl $-1, %eax\n"
    "        ret\n"
    "        .size fh_shortjcc, .-fh_shortjcc\n"
    /* fh_helper() + 1, the call among the displaced bytes. */
    "        .p2align 4\n"
    "        .globl fh_callfirst\n"
    "        .hidden fh_callfirst\n"
    "        .type fh_callfirst, @function\n"
    "fh_callfirst:\n"
    "        pushq %rbx\n"
    "        call fh_helper\n"
    "        addl $1, %eax\n"
    "        popq %rbx\n"
    "        ret\n"
    "        .size fh_callfirst, .-fh_callfirst\n"
    /* 2x, behind an endbr64 that must stay where it is. */
    "        .p2align 4\n"
    "        .globl fh_endbr\n"
    "        .hidden fh_endbr\n"
    "        .type fh_endbr, @function\n"
    "fh_endbr:\n"
    "        endbr64\n"
    "        leal (%rdi,%rdi), %eax\n"
    "        addl $0, %eax\n"
    "        ret\n"
    "        .size fh_endbr, .-fh_endbr\n"
    /* jrcxz has no 32-bit form: it cannot move. */
    "        .p2align 4\n"
    "        .globl fh_jrcxz\n"
    "        .hidden fh_jrcxz\n"
    "        .type fh_jrcxz, @function\n"
    "fh_jrcxz:\n"
    "        movq %rdi, %rcx\n"
    "        jrcxz 1f\n"
    "        movl $1, %eax\n"
    "        ret\n"
    "1:      xorl %eax, %eax\n"
    "        ret\n"
    "        .size fh_jrcxz, .-fh_jrcxz\n");

int fh_short(void);
int fh_short_next(void);
int fh_getter(const int *p);
int fh_tail(void);
void fh_lone_ret(void);
int fh_jump_into(int n);
int fh_riprel(int x);
int fh_shortjcc(int x);
int fh_callfirst(void);
int fh_endbr(int x);
int fh_jrcxz(long rcx);

int fh_data = 1000;
int fh_helper(void);
CMT_NOIPA int fh_helper(void)
{
    return 41;
}

static volatile long sink;

CMT_NOIPA static int fh_plain(int x)
{
    sink = x;
    return x * 2 + 1;
}

CMT_NOIPA static int fh_recurse(int n)
{
    if (n == 0)
        return 0;
    int r = fh_recurse(n - 1);
    sink = r;   /* after the call: no tail recursion to turn into a loop */
    return r + 1;
}

/* Seven integers and nine doubles: one of each goes on the stack. */
CMT_NOIPA static double fh_many(int a, int b, int c, int d, int e, int f, int g,
                                             double x1, double x2, double x3, double x4,
                                             double x5, double x6, double x7, double x8,
                                             double x9)
{
    sink = a;
    return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + x1 + 2 * x2 + 3 * x3 + 4 * x4 +
           5 * x5 + 6 * x6 + 7 * x7 + 8 * x8 + 9 * x9;
}

struct big { long a, b, c, d; };            /* returned through memory (rdi, rax) */
struct pair { long a, b; };                 /* returned in rax:rdx */
struct dpair { double x, y; };              /* returned in xmm0:xmm1 */

CMT_NOIPA static struct big fh_big(long v)
{
    sink = v;
    return (struct big){ v, v + 1, v + 2, v + 3 };
}

CMT_NOIPA static struct pair fh_pair(long v)
{
    sink = v;
    return (struct pair){ v * 10, v * 20 };
}

CMT_NOIPA static struct dpair fh_dpair(double v)
{
    sink = (long)v;
    return (struct dpair){ v / 2, v * 4 };
}

CMT_NOIPA static long double fh_longdouble(long double v)
{
    sink = (long)v;
    return v * 3;
}

/* Varargs: al says how many vector registers carry arguments. */
CMT_NOIPA static double fh_varargs(int n, ...)
{
    va_list ap;
    va_start(ap, n);
    double s = 0;
    for (int i = 0; i < n; i++)
        s += va_arg(ap, double) * (i + 1);
    va_end(ap);
    sink = n;
    return s;
}

static jmp_buf jump_back;

CMT_NOIPA static void fh_jumper(int v)
{
    sink = v;
    if (v)
        longjmp(jump_back, v);
    sink = 0;
}

CMT_NOIPA static int fh_jump_outer(int v)
{
    sink = v;
    fh_jumper(v);
    return 5;
}

/* setjmp inside a hooked function, longjmp from a hooked callee: only the callee ends. */
CMT_NOIPA static int fh_setjmp_holder(int v)
{
    jmp_buf here;
    volatile int r = 0;
    if (setjmp(here) == 0) {
        sink = v;
        fh_jumper(0);
        r = 1;
        longjmp(here, 2);
    }
    return r + 10;
}

static sigjmp_buf signal_back;

static void jump_from_handler(int sig)
{
    (void)sig;
    siglongjmp(signal_back, 1);
}

CMT_NOIPA static void fh_raiser(int v)
{
    sink = v;
    raise(SIGUSR1);
    sink = 0;
}

CMT_NOIPA static void fh_exiter(int v)
{
    sink = v;
    pthread_exit((void *)7);
}

static void *exiting_thread(void *arg)
{
    fh_exiter((int)(long)arg);
    return NULL;
}

CMT_NOIPA static int fh_plain2(int x)
{
    sink = x;
    return x + 2;
}

CMT_NOIPA static int fh_sets_errno(int v)
{
    sink = v;
    if (v)
        errno = ERANGE;
    return v;
}

static uintptr_t seen_ra, seen_real;

CMT_NOIPA static int fh_where(int v)
{
    seen_ra = (uintptr_t)__builtin_return_address(0);
    seen_real = cmt_funchook_real_return(seen_ra, (uintptr_t)__builtin_dwarf_cfa());
    sink = v;
    return v;
}

CMT_NOIPA static int call_where(int v)
{
    int r = fh_where(v);
    sink = r;
    return r + 1;
}

CMT_NOIPA static int fh_static_target(int v)
{
    sink = v;
    return v - 3;
}

/* ---- counting ----------------------------------------------------------------------- */

struct counter {
    atomic_long enter, exit;
    atomic_int depth, max_depth;
};

static void count_enter(void *arg)
{
    struct counter *c = arg;
    atomic_fetch_add(&c->enter, 1);
    int d = atomic_fetch_add(&c->depth, 1) + 1;
    if (d > atomic_load(&c->max_depth))
        atomic_store(&c->max_depth, d);
}

static void count_exit(void *arg)
{
    struct counter *c = arg;
    atomic_fetch_add(&c->exit, 1);
    atomic_fetch_sub(&c->depth, 1);
}

/* Hooks fn, counting into c; the reason it was refused, or NULL. */
static const char *hook(void *fn, struct counter *c)
{
    const char *why = NULL;
    return cmt_funchook_install(fn, count_enter, count_exit, c, &why) == 0 ? NULL : why;
}

#define ASSERT_HOOKED(fn, c)                                                               \
    do {                                                                                   \
        const char *why_ = hook((void *)(fn), (c));                                        \
        ck_assert_msg(why_ == NULL, "expected " #fn " to be hooked, refused: %s", why_);   \
    } while (0)

#define ASSERT_COUNTS(c, en, ex)                                                           \
    ck_assert_msg(atomic_load(&(c)->enter) == (en) && atomic_load(&(c)->exit) == (ex),     \
                  "expected %ld entries and %ld exits, got %ld and %ld", (long)(en),       \
                  (long)(ex), atomic_load(&(c)->enter), atomic_load(&(c)->exit))

void *run_calls(void *arg);

/* ---- hooks: plain calls ------------------------------------------------------------- */

START_TEST(plain_calls_counted)
{
    static struct counter c;
    ASSERT_HOOKED(fh_plain, &c);
    int sum = 0;
    for (int i = 0; i < 1000; i++)
        sum += fh_plain(i);
    ASSERT_COUNTS(&c, 1000, 1000);
    ck_assert_int_eq(sum, 1000 * 999 + 1000);
    ck_assert_int_eq(atomic_load(&c.max_depth), 1);
}
END_TEST

START_TEST(recursion_nests)
{
    static struct counter c;
    ASSERT_HOOKED(fh_recurse, &c);
    int r = fh_recurse(50);
    ck_assert_int_eq(r, 50);
    ASSERT_COUNTS(&c, 51, 51);
    ck_assert_int_eq(atomic_load(&c.max_depth), 51);
    ck_assert_int_eq(atomic_load(&c.depth), 0);
}
END_TEST

START_TEST(deeper_than_shadow_stack)
{
    static struct counter c;
    ASSERT_HOOKED(fh_recurse, &c);
    uint64_t missed = cmt_funchook_missed();
    int r = fh_recurse(199);    /* 200 calls, 128 fit */
    ck_assert_int_eq(r, 199);
    ASSERT_COUNTS(&c, 128, 128);
    ck_assert_uint_eq(cmt_funchook_missed() - missed, 72);
    r = fh_recurse(3);
    ASSERT_COUNTS(&c, 132, 132);
}
END_TEST

START_TEST(arguments_and_results_unchanged)
{
    static struct counter c;
    double many = fh_many(1, 2, 3, 4, 5, 6, 7, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5);
    struct big b = fh_big(100);
    struct pair p = fh_pair(3);
    struct dpair d = fh_dpair(8.0);
    long double ld = fh_longdouble(1.25L);
    double va = fh_varargs(4, 1.0, 2.0, 3.0, 4.0);
    ASSERT_HOOKED(fh_many, &c);
    ASSERT_HOOKED(fh_big, &c);
    ASSERT_HOOKED(fh_pair, &c);
    ASSERT_HOOKED(fh_dpair, &c);
    ASSERT_HOOKED(fh_longdouble, &c);
    ASSERT_HOOKED(fh_varargs, &c);
    double many2 = fh_many(1, 2, 3, 4, 5, 6, 7, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5);
    struct big b2 = fh_big(100);
    struct pair p2 = fh_pair(3);
    struct dpair d2 = fh_dpair(8.0);
    long double ld2 = fh_longdouble(1.25L);
    double va2 = fh_varargs(4, 1.0, 2.0, 3.0, 4.0);
    ASSERT_COUNTS(&c, 6, 6);
    ck_assert(many == 140.0 + 0.5 + 3 + 7.5 + 14 + 22.5 + 33 + 45.5 + 60 + 76.5);
    ck_assert(many2 == many);
    ck_assert(b2.a == 100 && b2.b == 101 && b2.c == 102 && b2.d == 103 && b.d == b2.d);
    ck_assert(p2.a == 30 && p2.b == 60 && p.b == p2.b);
    ck_assert(d2.x == 4.0 && d2.y == 32.0 && d.y == d2.y);
    ck_assert(ld2 == 3.75L && ld == ld2);
    ck_assert(va2 == 30.0 && va == va2);
}
END_TEST

START_TEST(two_threads_one_function)
{
    static struct counter c;
    ASSERT_HOOKED(fh_plain, &c);
    enum { CALLS = 200000 };
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, run_calls, (void *)(long)CALLS), 0);
    long sums[2];
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(th[i], &r);
        sums[i] = (long)r;
    }
    ASSERT_COUNTS(&c, 2L * CALLS, 2L * CALLS);
    ck_assert_int_eq(sums[0], sums[1]);
}
END_TEST

/* ---- hooks: what moves and what is refused ------------------------------------------ */

START_TEST(too_short_refused)
{
    static struct counter c;
    const char *why = hook((void *)fh_short, &c);
    ck_assert_ptr_nonnull(why);
    ck_assert_str_eq(why, "too short to patch");
    ck_assert_uint_eq(((const unsigned char *)fh_short)[0], 0xc3);     /* untouched */
}
END_TEST

START_TEST(short_function_hooked_through_padding)
{
    static struct counter c;
    ASSERT_HOOKED(fh_getter, &c);
    ASSERT_HOOKED(fh_tail, &c);
    int v = 1234;
    int a = fh_getter(&v);
    int b = fh_tail();
    ASSERT_COUNTS(&c, 2, 2);
    ck_assert_int_eq(a, 1234);
    ck_assert_int_eq(b, 7);
}
END_TEST

START_TEST(jump_into_first_bytes_refused)
{
    static struct counter c;
    unsigned char before[8];
    memcpy(before, (const void *)fh_jump_into, sizeof before);
    const char *why = hook((void *)fh_jump_into, &c);
    ck_assert_ptr_nonnull(why);
    ck_assert_msg(strncmp(why, "a jump into its first bytes", 27) == 0, "got \"%s\"", why);
    ck_assert(memcmp(before, (const void *)fh_jump_into, sizeof before) == 0);
    ck_assert_int_eq(fh_jump_into(4), 10);
}
END_TEST

START_TEST(unmovable_branch_refused)
{
    static struct counter c;
    const char *why = hook((void *)fh_jrcxz, &c);
    ck_assert_ptr_nonnull(why);
    ck_assert_msg(strncmp(why, "a relative branch that cannot be moved", 38) == 0, "got \"%s\"",
                  why);
    ck_assert_int_eq(fh_jrcxz(0), 0);
    ck_assert_int_eq(fh_jrcxz(7), 1);
}
END_TEST

START_TEST(rip_relative_relocated)
{
    static struct counter c;
    ASSERT_HOOKED(fh_riprel, &c);
    int a = fh_riprel(5);
    fh_data = 2000;
    int b = fh_riprel(6);
    ASSERT_COUNTS(&c, 2, 2);
    ck_assert_int_eq(a, 1005);
    ck_assert_int_eq(b, 2006);
}
END_TEST

START_TEST(short_jump_relocated)
{
    static struct counter c;
    ASSERT_HOOKED(fh_shortjcc, &c);
    int a = fh_shortjcc(0), b = fh_shortjcc(9);
    ASSERT_COUNTS(&c, 2, 2);
    ck_assert_int_eq(a, -1);
    ck_assert_int_eq(b, 10);
}
END_TEST

START_TEST(call_in_first_bytes_relocated)
{
    static struct counter c;
    ASSERT_HOOKED(fh_callfirst, &c);
    int a = fh_callfirst();
    ASSERT_COUNTS(&c, 1, 1);
    ck_assert_int_eq(a, 42);
}
END_TEST

START_TEST(endbr64_kept)
{
    static struct counter c;
    ASSERT_HOOKED(fh_endbr, &c);
    int a = fh_endbr(21);
    ASSERT_COUNTS(&c, 1, 1);
    ck_assert_int_eq(a, 42);
    static const unsigned char endbr[4] = { 0xf3, 0x0f, 0x1e, 0xfa };
    ck_assert(memcmp((const void *)fh_endbr, endbr, 4) == 0);
    ck_assert_uint_eq(((const unsigned char *)fh_endbr)[4], 0xe9);
}
END_TEST

START_TEST(second_install_refused)
{
    static struct counter c;
    ASSERT_HOOKED(fh_plain, &c);
    const char *why = hook((void *)fh_plain, &c);
    ck_assert_ptr_nonnull(why);
    ck_assert_str_eq(why, "already hooked");
    fh_plain(1);
    ASSERT_COUNTS(&c, 1, 1);
}
END_TEST

static atomic_int notified;

static void notify(void *arg)
{
    (void)arg;
    atomic_fetch_add(&notified, 1);
}

START_TEST(entry_only_hook_in_padding)
{
    const char *why = NULL;
    int r = cmt_funchook_install_notify((void *)fh_lone_ret, notify, NULL, &why);
    ck_assert_msg(r == 0, "refused: %s", why);
    fh_lone_ret();
    fh_lone_ret();
    ck_assert_int_eq(atomic_load(&notified), 2);
}
END_TEST

/* ---- hooks: leaving by longjmp ------------------------------------------------------ */

START_TEST(longjmp_out_closes_once)
{
    static struct counter c;
    ASSERT_HOOKED(fh_jumper, &c);
    volatile int rounds = 0;
    int v = setjmp(jump_back);
    if (v == 0 || ++rounds < 3)
        fh_jumper(rounds + 1);
    ASSERT_COUNTS(&c, 3, 3);
    ck_assert_int_eq(atomic_load(&c.depth), 0);
    fh_jumper(0);
    ASSERT_COUNTS(&c, 4, 4);
}
END_TEST

START_TEST(longjmp_through_two_frames)
{
    static struct counter outer, inner;
    ASSERT_HOOKED(fh_jump_outer, &outer);
    ASSERT_HOOKED(fh_jumper, &inner);
    if (setjmp(jump_back) == 0)
        fh_jump_outer(1);
    ASSERT_COUNTS(&outer, 1, 1);
    ASSERT_COUNTS(&inner, 1, 1);
    ck_assert_int_eq(fh_jump_outer(0), 5);
    ASSERT_COUNTS(&outer, 2, 2);
}
END_TEST

START_TEST(longjmp_within_hooked_function)
{
    static struct counter holder, inner;
    ASSERT_HOOKED(fh_setjmp_holder, &holder);
    ASSERT_HOOKED(fh_jumper, &inner);
    int r = fh_setjmp_holder(1);
    ck_assert_int_eq(r, 11);
    ASSERT_COUNTS(&holder, 1, 1);
    ASSERT_COUNTS(&inner, 1, 1);
}
END_TEST

START_TEST(siglongjmp_from_handler_closes_once)
{
    static struct counter c;
    struct sigaction sa = { 0 };
    sa.sa_handler = jump_from_handler;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    ASSERT_HOOKED(fh_raiser, &c);
    if (sigsetjmp(signal_back, 1) == 0)
        fh_raiser(1);
    ASSERT_COUNTS(&c, 1, 1);
    if (sigsetjmp(signal_back, 1) == 0)
        fh_raiser(2);
    ASSERT_COUNTS(&c, 2, 2);
    ck_assert_int_eq(atomic_load(&c.depth), 0);
}
END_TEST

/* ---- hooks: pthread_exit ------------------------------------------------------------ */

START_TEST(pthread_exit_closes_once)
{
    static struct counter c;
    ASSERT_HOOKED(fh_exiter, &c);
    pthread_t th;
    void *ret = NULL;
    ck_assert_int_eq(pthread_create(&th, NULL, exiting_thread, (void *)1L), 0);
    ck_assert_int_eq(pthread_join(th, &ret), 0);
    ck_assert_ptr_eq(ret, (void *)7);
    ASSERT_COUNTS(&c, 1, 1);
}
END_TEST

/* ---- hooks: what the callbacks see -------------------------------------------------- */

static struct counter inner_counter;

static void enter_calling_hooked(void *arg)
{
    count_enter(arg);
    fh_plain2(1);
}

START_TEST(callbacks_call_hooked_functions_unhooked)
{
    static struct counter c;
    const char *why = NULL;
    ck_assert_int_eq(cmt_funchook_install((void *)fh_plain, enter_calling_hooked, count_exit,
                                          &c, &why), 0);
    ASSERT_HOOKED(fh_plain2, &inner_counter);
    fh_plain(1);
    fh_plain(2);
    ASSERT_COUNTS(&c, 2, 2);
    ASSERT_COUNTS(&inner_counter, 0, 0);
    fh_plain2(3);
    ASSERT_COUNTS(&inner_counter, 1, 1);
}
END_TEST

static void clobber_errno(void *arg)
{
    (void)arg;
    errno = EBADF;
}

START_TEST(errno_preserved)
{
    const char *why = NULL;
    ck_assert_int_eq(cmt_funchook_install((void *)fh_sets_errno, clobber_errno, clobber_errno,
                                          NULL, &why), 0);
    errno = 0;
    fh_sets_errno(0);
    int e1 = errno;
    fh_sets_errno(1);
    int e2 = errno;
    ck_assert_int_eq(e1, 0);
    ck_assert_int_eq(e2, ERANGE);
}
END_TEST

START_TEST(return_address_translated)
{
    static struct counter c;
    call_where(1);
    uintptr_t real = seen_ra;
    ck_assert_uint_eq(seen_real, real);
    ASSERT_HOOKED(fh_where, &c);
    call_where(2);
    ck_assert_uint_ne(seen_ra, real);   /* the return stub */
    ck_assert_uint_eq(seen_real, real);
    ck_assert_uint_eq(cmt_funchook_real_return(real, 0), real);
}
END_TEST

/* ---- C++ exceptions, in their own program ------------------------------------------- */

START_TEST(cxx_exceptions)
{
    struct cmt_run r;
    char *argv[] = { (char *)cmt_test_prog("funchook-cxx"), NULL };
    cmt_run(&r, 0, argv, NULL);
    ck_assert_msg(r.exit_code == 0, "exit %d, signal %d, stderr: %s", r.exit_code, r.signal,
                  r.err);
    const char *expected =
        "through: +middle +thrower -thrower -middle |caught\n"
        "inside: +catches_inside +thrower -thrower |caught -catches_inside |seven\n"
        "rethrow: +rethrower +thrower -thrower |rethrow -rethrower |caught\n"
        "deep: +deep +deep +deep +deep +thrower -thrower -deep -deep -deep -deep |caught\n"
        "after: +thrower -thrower\n";
    ck_assert_str_eq(r.out, expected);
    cmt_run_free(&r);
}
END_TEST

/* ---- elfsyms ------------------------------------------------------------------------ */

START_TEST(finds_static_function_in_symtab)
{
    size_t size = 0;
    void *p = cmt_elfsyms_find("fh_static_target", &size);
    ck_assert_ptr_eq(p, (void *)fh_static_target);
    ck_assert_uint_gt(size, 0);
    ck_assert_uint_eq(cmt_elfsyms_func_size(p), size);
    ck_assert_int_eq(fh_static_target(5), 2);
}
END_TEST

START_TEST(finds_asm_function_with_size)
{
    size_t size = 0;
    void *p = cmt_elfsyms_find("fh_jump_into", &size);
    ck_assert_ptr_eq(p, (void *)fh_jump_into);
    ck_assert_uint_eq(size, 9);
}
END_TEST

START_TEST(finds_libc_function)
{
    size_t size = 0;
    void *p = cmt_elfsyms_find("qsort", &size);
    ck_assert_ptr_eq(p, (void *)qsort);
    ck_assert_uint_gt(size, 0);
    ck_assert_ptr_eq(cmt_elfsyms_next("qsort"), (void *)qsort);
}
END_TEST

START_TEST(resolves_ifunc)
{
    size_t size = 1;
    void *p = cmt_elfsyms_find("strlen", &size);
    /* The program's own calls reach the implementation the resolver picked. */
    ck_assert_ptr_eq(p, (void *)strlen);
}
END_TEST

START_TEST(missing_symbol_is_null)
{
    size_t size = 99;
    ck_assert_ptr_null(cmt_elfsyms_find("fh_no_such_function_anywhere", &size));
    ck_assert_uint_eq(size, 0);
    ck_assert_ptr_null(cmt_elfsyms_find("", &size));
    ck_assert_ptr_null(cmt_elfsyms_find("fh_data", &size));     /* an object, not code */
}
END_TEST

START_TEST(code_protection)
{
    ck_assert_int_eq(cmt_elfsyms_prot((void *)fh_plain), PROT_READ | PROT_EXEC);
    ck_assert_int_eq(cmt_elfsyms_prot((void *)&fh_data), PROT_READ | PROT_WRITE);
}
END_TEST

/* ---- the loader watch --------------------------------------------------------------- */

static struct counter dl_counter;
static atomic_int modules_loaded;
static atomic_int dl_hooked;

/* Normally envscope.c's: here, hooks the module's function as soon as it is added. */
void cmt_envscope_module_loaded(void)
{
    atomic_fetch_add(&modules_loaded, 1);
    void *f = cmt_elfsyms_find("fh_dl_func", NULL);
    if (f && !atomic_load(&dl_hooked) && hook(f, &dl_counter) == NULL)
        atomic_store(&dl_hooked, 1);
}

START_TEST(dlopen_seen_before_constructors)
{
    const char *why = NULL;
    ck_assert_msg(cmt_elfsyms_watch_loads(&why) == 0, "cannot watch: %s", why);
    ck_assert_int_eq(cmt_elfsyms_watch_loads(&why), 0);
    ck_assert_ptr_null(cmt_elfsyms_find("fh_dl_func", NULL));
    char path[4096];
    snprintf(path, sizeof path, "%s/.libs/funchook-dl.so", CMT_TEST_PROGS);
    void *h = dlopen(path, RTLD_NOW);
    ck_assert_msg(h != NULL, "dlopen: %s", dlerror());
    ck_assert_int_ge(atomic_load(&modules_loaded), 1);
    ck_assert_int_eq(atomic_load(&dl_hooked), 1);
    int (*fn)(int) = (int (*)(int))dlsym(h, "fh_dl_func");
    int (*ctor_result)(void) = (int (*)(void))dlsym(h, "fh_dl_ctor_result");
    ck_assert_ptr_nonnull(fn);
    ck_assert_int_eq(ctor_result(), 8);
    ASSERT_COUNTS(&dl_counter, 1, 1);      /* the constructor's call */
    ck_assert_int_eq(fn(2), 11);
    ASSERT_COUNTS(&dl_counter, 2, 2);
}
END_TEST

/* ---- the suite ---------------------------------------------------------------------- */

void *run_calls(void *arg)
{
    long n = (long)arg, sum = 0;
    for (long i = 0; i < n; i++)
        sum += fh_plain((int)(i & 1023));
    return (void *)sum;
}

static Suite *funchook_suite(void)
{
    Suite *s = suite_create("funchook");
    TCase *tc = tcase_create("calls");
    tcase_add_test(tc, plain_calls_counted);
    tcase_add_test(tc, recursion_nests);
    tcase_add_test(tc, deeper_than_shadow_stack);
    tcase_add_test(tc, arguments_and_results_unchanged);
    tcase_add_test(tc, two_threads_one_function);
    suite_add_tcase(s, tc);

    tc = tcase_create("install");
    tcase_add_test(tc, too_short_refused);
    tcase_add_test(tc, short_function_hooked_through_padding);
    tcase_add_test(tc, jump_into_first_bytes_refused);
    tcase_add_test(tc, unmovable_branch_refused);
    tcase_add_test(tc, rip_relative_relocated);
    tcase_add_test(tc, short_jump_relocated);
    tcase_add_test(tc, call_in_first_bytes_relocated);
    tcase_add_test(tc, endbr64_kept);
    tcase_add_test(tc, second_install_refused);
    tcase_add_test(tc, entry_only_hook_in_padding);
    tcase_add_test(tc, callbacks_call_hooked_functions_unhooked);
    tcase_add_test(tc, errno_preserved);
    tcase_add_test(tc, return_address_translated);
    suite_add_tcase(s, tc);

    tc = tcase_create("unwinding");
    tcase_add_test(tc, longjmp_out_closes_once);
    tcase_add_test(tc, longjmp_through_two_frames);
    tcase_add_test(tc, longjmp_within_hooked_function);
    tcase_add_test(tc, siglongjmp_from_handler_closes_once);
    tcase_add_test(tc, pthread_exit_closes_once);
    tcase_add_test(tc, cxx_exceptions);
    suite_add_tcase(s, tc);

    tc = tcase_create("elfsyms");
    tcase_add_test(tc, finds_static_function_in_symtab);
    tcase_add_test(tc, finds_asm_function_with_size);
    tcase_add_test(tc, finds_libc_function);
    tcase_add_test(tc, resolves_ifunc);
    tcase_add_test(tc, missing_symbol_is_null);
    tcase_add_test(tc, code_protection);
    tcase_add_test(tc, dlopen_seen_before_constructors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cmt_run_suite(funchook_suite());
}
