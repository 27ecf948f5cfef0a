/*
 * funchook.c — hooking a function's entry and return in memory, for func: scopes.
 *
 * Owns the trampolines (one page each, within ±2 GiB of the hooked function), the relocation
 * of the instructions the entry jump displaces (decoded by Zydis), the per-thread shadow
 * stack of redirected return addresses, and the interposed functions that unwind past hooked
 * frames (longjmp family, pthread_exit, the C++ unwinder's raise/rethrow/catch). Never
 * allocates through malloc, never uses stdio, never changes a byte it cannot give a reason
 * for. x86-64 only; elsewhere, and without Zydis, every install is refused.
 *
 * How a hooked call runs. The function's first 5 bytes (after an endbr64, which stays so
 * that indirect calls still land on it) become `jmp trampoline`. The trampoline loads its
 * hook into r11 and jumps to cmt_funchook_enter_stub (funchook-stub.S), which saves every
 * caller-saved register, calls on_enter, pushes (real return address, address of its stack
 * slot, hook) on the thread's shadow stack and replaces the return address with
 * cmt_funchook_return_stub, restores the registers and runs the relocated first
 * instructions, which jump back into the function. At return, the stub saves the registers
 * again, pops the entry, puts the real return address back, calls on_exit and jumps there.
 * Recursion and any mix of hooked functions nest on the shadow stack, 128 deep a thread;
 * calls beyond that run unhooked: neither on_enter nor on_exit, counted
 * (cmt_funchook_missed) and said once.
 *
 * Not preserved across the callbacks: the upper halves of ymm/zmm registers (so functions
 * taking or returning __m256/__m512 values must not be hooked) and the x87 stack (a long
 * double result survives because the callbacks do not use x87). A hooked function called by
 * a callback, or by a signal handler that interrupted one, runs unhooked.
 *
 * Leaving a hooked call other than by returning:
 *  - longjmp, _longjmp, siglongjmp, __longjmp_chk (interposed): every hooked call whose frame
 *    lies below the target's stack pointer gets on_exit, innermost first, before the jump.
 *    The target is read from the jmp_buf, whose stack pointer glibc mangles with the
 *    thread's pointer guard; the demangling is checked once against a setjmp of our own. If
 *    that check fails, every redirected return address is put back instead, and those calls
 *    get on_exit late: at the next hooked call on the thread made from a shallower frame.
 *  - C++ exceptions: when one is thrown or rethrown (_Unwind_RaiseException,
 *    _Unwind_Resume_or_Rethrow, interposed), every redirected return address of the thread is
 *    put back, so the unwinder sees only real frames. When it is caught (__cxa_begin_catch,
 *    interposed), the hooked calls it unwound get on_exit, innermost first; those still
 *    running (the catching function itself if hooked, and its callers) get their return
 *    redirected again, unless another exception is still in flight on the thread, in which
 *    case they get on_exit late, as above. An exception nobody catches ends in
 *    std::terminate with no on_exit. Programs linking libgcc/libstdc++ statically, and
 *    foreign catchers (Rust's catch_unwind), bypass the interposition: their hooked calls are
 *    closed late, never crash.
 *  - pthread_exit (interposed): every hooked call of the thread gets on_exit and its return
 *    address back before the thread unwinds. Cancellation (pthread_cancel) is not seen: its
 *    unwinding stops at the first hooked frame, C cleanup handlers still run, C++ destructors
 *    above that frame do not, and the thread's scopes close at its exit.
 *  - Switching stacks (swapcontext, coroutines) while hooked calls are active on more than
 *    one stack, or moving such a stack to another thread, is not supported: a return that
 *    matches no record ends the process with a "cymemtrack:" line.
 * A stack walk from inside a hooked call (gdb, perf, backtrace(3), libunwind) sees the
 * return stub as the caller and stops there; cmt_funchook_real_return() translates.
 *
 * Installing. A function shorter than the jump (a getter, a tail-call wrapper: `jmp f`) is
 * hooked only when it ends in ret or jmp and the bytes after it up to the next 16-byte
 * boundary are alignment padding (nop or int3), where no other function can start; the jump
 * then ends in that padding. A function is refused (nothing changed) when its size is unknown
 * or it is too short without such padding, when a displaced instruction is a relative branch that cannot move (loop,
 * jrcxz, xbegin, a call not last), a breakpoint or undecodable, when a rip-relative operand
 * would be out of reach from the trampoline, or when a direct branch anywhere in its body
 * targets the middle of the patched bytes. The 5 bytes are written under a temporary RWX
 * mapping, first as a 2-byte `jmp $` self-loop, so that a thread reaching the entry during
 * the write waits instead of running torn bytes. Hooks are meant to be installed at start,
 * while the process has one thread: a thread stopped inside the first instructions (not at
 * the entry) while a later install (after dlopen) writes them would resume in the middle of
 * the jump. Hooks are never removed.
 */
#undef _FORTIFY_SOURCE  /* it renames longjmp to __longjmp_chk, which is defined here too */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cmt.h"

#if defined(__x86_64__) && defined(HAVE_ZYDIS)
#define FUNCHOOK_ENABLED 1
#else
#define FUNCHOOK_ENABLED 0
#endif

static atomic_ullong missed_calls;

uint64_t cmt_funchook_missed(void)
{
    return atomic_load_explicit(&missed_calls, memory_order_relaxed);
}

#if !FUNCHOOK_ENABLED

int cmt_funchook_install(void *addr, cmt_funchook_cb on_enter, cmt_funchook_cb on_exit,
                         void *arg, const char **why)
{
    (void)addr, (void)on_enter, (void)on_exit, (void)arg;
#if defined(__x86_64__)
    *why = "built without the Zydis disassembler";
#else
    *why = "not supported on this architecture";
#endif
    return -1;
}

int cmt_funchook_install_notify(void *addr, cmt_funchook_cb fn, void *arg, const char **why)
{
    return cmt_funchook_install(addr, fn, NULL, arg, why);
}

uintptr_t cmt_funchook_real_return(uintptr_t pc, uintptr_t sp)
{
    (void)sp;
    return pc;
}

uintptr_t cmt_funchook_entry_sp(void)
{
    return 0;
}

#else /* FUNCHOOK_ENABLED */

#include <Zydis/Zydis.h>

#define SHADOW_DEPTH 128
#define GRAVE_SLOTS 32
#define HOOKS_MAX 256
#define JMP_LEN 5
#define PAGE 4096u

/* Hook flags. */
#define HOOK_ENTRY_ONLY 0x1u     /* on_enter only, no return redirection */
#define HOOK_PADDING 0x2u        /* a short function: the jump may end in its padding */

/* A hook lives at the start of its trampoline page, read-only once installed. The stub
 * jumps through `code`, which must stay first. */
struct cmt_hook {
    const uint8_t *code;        /* the relocated first instructions */
    cmt_funchook_cb on_enter, on_exit;
    void *arg;
    uint8_t *start;             /* where the jump is written */
    uint8_t jump[JMP_LEN];      /* what was written, to tell whether it is still there */
    uint8_t flags;
};

/* Assembly, funchook-stub.S (the return stub is in cmt.h). */
extern char cmt_funchook_enter_stub[];
/* Called by the stubs. */
void cmt_funchook_enter(const struct cmt_hook *h, uintptr_t *slot);
void cmt_funchook_return(uintptr_t *slot);

/* ---- the shadow stack --------------------------------------------------------------- */

enum { ENTRY_FILLING = 0, ENTRY_REDIRECTED = 1, ENTRY_RESTORED = 2 };

struct shadow_entry {
    uintptr_t ret;              /* the real return address */
    uintptr_t *slot;            /* where it was on the stack: the stack pointer at entry */
    const struct cmt_hook *hook;
    uintptr_t state;            /* ENTRY_*: RESTORED once the real address is back */
};

/* Entries closed by an unwinding (longjmp, catch) whose slot still held the return stub.
 * Should such a frame turn out to be alive after all (a stack we did not know was another),
 * its return still finds its way home through here. */
struct grave {
    uintptr_t *slot;
    uintptr_t ret;
};

struct shadow {
    int *errno_at;              /* this thread's errno: __errno_location() costs a call */
    uint32_t top;
    uint32_t in_cb;             /* inside on_enter/on_exit: hooked calls run unhooked */
    uint32_t restored;          /* entries in state ENTRY_RESTORED */
    uint32_t inflight;          /* C++ exceptions raised and not caught yet */
    uint32_t grave_next;
    uintptr_t *entering;        /* the slot of the call whose on_enter runs (entry sp) */
    struct shadow_entry e[SHADOW_DEPTH];
    struct grave grave[GRAVE_SLOTS];
};

static __thread struct shadow cmt_shadow CMT_TLS;

static struct {
    cmt_spinlock lock;          /* installs */
    struct cmt_hook *hooks[HOOKS_MAX];
    unsigned n;
    atomic_int any;             /* a hook exists: the interposers have work to do */
    int sp_demangle;            /* 1: jmp_buf stack pointers can be read; -1: they cannot */
    bool decoder_ready;
    ZydisDecoder decoder;
    atomic_int missed_said;
} fh;

/* A compiler barrier: a signal handler on this thread sees the stores in program order. */
#define SIGNAL_FENCE() atomic_signal_fence(memory_order_seq_cst)

static CMT_NOINLINE int *errno_slow(struct shadow *t)
{
    return t->errno_at = &errno;
}

/* errno is saved around the callbacks: a caller that cleared it before a call (strtol) and
 * reads it after must not see what a callback left there. */
static inline void call_cb(struct shadow *t, cmt_funchook_cb fn, void *arg)
{
    if (!fn)
        return;
    int *errno_at = t->errno_at;
    if (cmt_unlikely(!errno_at))
        errno_at = errno_slow(t);
    int saved_errno = *errno_at;
    uint32_t was = t->in_cb;
    t->in_cb = 1;
    SIGNAL_FENCE();
    fn(arg);
    SIGNAL_FENCE();
    t->in_cb = was;
    /* Only when changed: an unconditional store here measured at 8 ns of the 14 a call. */
    if (cmt_unlikely(*errno_at != saved_errno))
        *errno_at = saved_errno;
}

/* Reserve, fill, then mark valid: a signal handler that runs between the steps and makes
 * hooked calls of its own uses the entries above this one. */
static inline void push(struct shadow *t, const struct cmt_hook *h, uintptr_t *slot)
{
    uint32_t i = t->top;
    struct shadow_entry *e = &t->e[i];
    e->state = ENTRY_FILLING;
    SIGNAL_FENCE();
    t->top = i + 1;
    SIGNAL_FENCE();
    e->ret = *slot;
    e->slot = slot;
    e->hook = h;
    SIGNAL_FENCE();
    e->state = ENTRY_REDIRECTED;
    SIGNAL_FENCE();
    *slot = (uintptr_t)cmt_funchook_return_stub;
}

static void bury(struct shadow *t, uintptr_t *slot, uintptr_t ret)
{
    struct grave *g = &t->grave[t->grave_next++ % GRAVE_SLOTS];
    g->slot = slot;
    g->ret = ret;
}

/* Pops the innermost entry and gives it its on_exit. */
static void close_top(struct shadow *t)
{
    struct shadow_entry e = t->e[t->top - 1];
    SIGNAL_FENCE();
    t->top--;
    SIGNAL_FENCE();
    if (e.state == ENTRY_RESTORED)
        t->restored--;
    else if (e.state == ENTRY_REDIRECTED)
        bury(t, e.slot, e.ret);
    if (e.state != ENTRY_FILLING)
        call_cb(t, e.hook->on_exit, e.hook->arg);
}

/* The calls whose return-address slot lies below sp are over: their frames are gone. */
static void close_below(struct shadow *t, uintptr_t sp)
{
    while (t->top && (uintptr_t)t->e[t->top - 1].slot < sp)
        close_top(t);
}

/* Puts every redirected return address back, for an unwinder that must see real frames. A
 * slot that no longer holds the stub belongs to a frame that is gone: left alone. */
static void restore_all(struct shadow *t)
{
    for (uint32_t j = 0; j < t->top; j++) {
        struct shadow_entry *e = &t->e[j];
        if (e->state != ENTRY_REDIRECTED)
            continue;
        if (*e->slot == (uintptr_t)cmt_funchook_return_stub)
            *e->slot = e->ret;
        e->state = ENTRY_RESTORED;
        t->restored++;
    }
}

/* The opposite, for the calls an exception did not end. A slot that does not hold the real
 * return address any more is a frame that is gone, closed later. */
static void redirect_again(struct shadow *t)
{
    for (uint32_t j = 0; j < t->top; j++) {
        struct shadow_entry *e = &t->e[j];
        if (e->state != ENTRY_RESTORED || *e->slot != e->ret)
            continue;
        *e->slot = (uintptr_t)cmt_funchook_return_stub;
        e->state = ENTRY_REDIRECTED;
        t->restored--;
    }
}

static CMT_NOINLINE void enter_slow(struct shadow *t, const struct cmt_hook *h,
                                    uintptr_t *slot)
{
    if (t->in_cb)
        return;
    t->entering = slot;
    if (h->flags & HOOK_ENTRY_ONLY) {
        call_cb(t, h->on_enter, h->arg);
        return;
    }
    /* Calls whose return address was put back for an unwinding and that have ended since
     * (their slot is at or below this call's) are closed now, late. */
    while (t->top && t->e[t->top - 1].state == ENTRY_RESTORED &&
           t->e[t->top - 1].slot <= slot)
        close_top(t);
    if (t->top >= SHADOW_DEPTH) {
        atomic_fetch_add_explicit(&missed_calls, 1, memory_order_relaxed);
        if (!atomic_exchange(&fh.missed_said, 1))
            cmt_diag("more than %d hooked calls nested on one thread; deeper ones are not "
                     "seen as scope instances", SHADOW_DEPTH);
        return;
    }
    call_cb(t, h->on_enter, h->arg);
    push(t, h, slot);
}

void cmt_funchook_enter(const struct cmt_hook *h, uintptr_t *slot)
{
    struct shadow *t = &cmt_shadow;
    if (cmt_unlikely((t->in_cb | t->restored | (h->flags & HOOK_ENTRY_ONLY)) != 0 ||
                     t->top >= SHADOW_DEPTH)) {
        enter_slow(t, h, slot);
        return;
    }
    t->entering = slot;
    call_cb(t, h->on_enter, h->arg);
    push(t, h, slot);
}

uintptr_t cmt_funchook_entry_sp(void)
{
    return (uintptr_t)cmt_shadow.entering;
}

static CMT_NOINLINE void return_slow(struct shadow *t, uintptr_t *slot)
{
    /* Not the innermost entry: entries above it were left by frames that ended without us
     * (a longjmp we did not see) or live on another stack; only this one is taken out. */
    for (uint32_t j = t->top; j-- > 0;) {
        if (t->e[j].slot != slot || t->e[j].state != ENTRY_REDIRECTED)
            continue;
        struct shadow_entry e = t->e[j];
        *slot = e.ret;
        for (uint32_t k = j; k + 1 < t->top; k++)
            t->e[k] = t->e[k + 1];
        SIGNAL_FENCE();
        t->top--;
        call_cb(t, e.hook->on_exit, e.hook->arg);
        return;
    }
    for (uint32_t g = 0; g < GRAVE_SLOTS; g++) {
        if (t->grave[g].slot == slot) {
            *slot = t->grave[g].ret;    /* closed already: no second on_exit */
            t->grave[g].slot = NULL;
            return;
        }
    }
    cmt_diag("a hooked function returned on a stack with no record of its caller (was the "
             "stack switched or copied?); cannot continue");
    abort();
}

void cmt_funchook_return(uintptr_t *slot)
{
    struct shadow *t = &cmt_shadow;
    uint32_t i = t->top;
    if (cmt_likely(i != 0)) {
        struct shadow_entry *e = &t->e[i - 1];
        if (cmt_likely(e->slot == slot && e->state == ENTRY_REDIRECTED)) {
            const struct cmt_hook *h = e->hook;
            *slot = e->ret;
            SIGNAL_FENCE();
            t->top = i - 1;
            call_cb(t, h->on_exit, h->arg);
            return;
        }
    }
    return_slow(t, slot);
}

uintptr_t cmt_funchook_real_return(uintptr_t pc, uintptr_t sp)
{
    if (pc != (uintptr_t)cmt_funchook_return_stub)
        return pc;
    const struct shadow *t = &cmt_shadow;
    for (uint32_t j = t->top; j-- > 0;)
        if ((uintptr_t)t->e[j].slot == sp - sizeof(uintptr_t) &&
            t->e[j].state == ENTRY_REDIRECTED)
            return t->e[j].ret;
    return pc;
}

/* ---- the next definitions of the interposed functions ------------------------------- */

/* Found through the modules' dynamic symbol tables, skipping this library (elfsyms.c): no
 * dlsym, which may allocate and takes the loader's lock, since longjmp is often called from
 * signal handlers. Looked up once at load, and again on first use if that failed. */
static struct {
    _Atomic(void *) longjmp, _longjmp, siglongjmp, longjmp_chk;
    _Atomic(void *) raise, rethrow, begin_catch, pthread_exit;
} next;

static void *next_fn(_Atomic(void *) *cache, const char *name)
{
    void *p = atomic_load_explicit(cache, memory_order_relaxed);
    if (cmt_unlikely(!p)) {
        p = cmt_elfsyms_next(name);
        atomic_store_explicit(cache, p, memory_order_relaxed);
    }
    return p;
}

static CMT_NOINLINE void *next_required(_Atomic(void *) *cache, const char *name)
{
    void *p = next_fn(cache, name);
    if (!p) {
        cmt_diag("cannot find the next definition of %s; cannot continue", name);
        abort();
    }
    return p;
}

__attribute__((constructor)) static void funchook_resolve(void)
{
    next_fn(&next.longjmp, "longjmp");
    next_fn(&next._longjmp, "_longjmp");
    next_fn(&next.siglongjmp, "siglongjmp");
    next_fn(&next.longjmp_chk, "__longjmp_chk");
    next_fn(&next.pthread_exit, "pthread_exit");
    /* libgcc_s and libstdc++ may come later, with dlopen: looked up when first needed. */
}

/* ---- longjmp ------------------------------------------------------------------------ */

#define JB_RSP 6    /* glibc x86-64: rbx rbp r12 r13 r14 r15 rsp pc */

/* glibc stores the stack pointer as rol(sp ^ pointer_guard, 17); the guard is at %fs:0x30
 * in the thread control block. */
static uintptr_t jmpbuf_sp(const struct __jmp_buf_tag *env)
{
    uintptr_t guard, v = (uintptr_t)env->__jmpbuf[JB_RSP];
    __asm__("movq %%fs:0x30, %0" : "=r"(guard));
    v = (v >> 17) | (v << 47);
    return v ^ guard;
}

/* The check that the above is how this glibc does it: a setjmp's saved stack pointer must
 * be within this very frame. */
static CMT_NOINLINE int sp_demangle_works(void)
{
    jmp_buf jb;
    if (_setjmp(jb) != 0)
        return -1;
    uintptr_t sp = jmpbuf_sp(jb);
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    return (sp < here + 4096 && sp + 4096 > here) ? 1 : -1;
}

static void jumping(const struct __jmp_buf_tag *env)
{
    struct shadow *t = &cmt_shadow;
    if (!t->top)
        return;
    if (fh.sp_demangle > 0)
        close_below(t, jmpbuf_sp(env));
    else
        restore_all(t);
}

typedef void (*jump_fn)(struct __jmp_buf_tag *, int) __attribute__((noreturn));

CMT_EXPORT void longjmp(struct __jmp_buf_tag env[1], int val)
{
    if (atomic_load_explicit(&fh.any, memory_order_relaxed))
        jumping(env);
    ((jump_fn)next_required(&next.longjmp, "longjmp"))(env, val);
}

CMT_EXPORT void _longjmp(struct __jmp_buf_tag env[1], int val)
{
    if (atomic_load_explicit(&fh.any, memory_order_relaxed))
        jumping(env);
    ((jump_fn)next_required(&next._longjmp, "_longjmp"))(env, val);
}

CMT_EXPORT void siglongjmp(sigjmp_buf env, int val)
{
    if (atomic_load_explicit(&fh.any, memory_order_relaxed))
        jumping(env);
    ((jump_fn)next_required(&next.siglongjmp, "siglongjmp"))(env, val);
}

/* What longjmp becomes under _FORTIFY_SOURCE, which Debian builds with. */
CMT_EXPORT void __longjmp_chk(struct __jmp_buf_tag env[1], int val) __attribute__((noreturn));
CMT_EXPORT void __longjmp_chk(struct __jmp_buf_tag env[1], int val)
{
    if (atomic_load_explicit(&fh.any, memory_order_relaxed))
        jumping(env);
    ((jump_fn)next_required(&next.longjmp_chk, "__longjmp_chk"))(env, val);
}

/* ---- pthread_exit ------------------------------------------------------------------- */

CMT_EXPORT void pthread_exit(void *retval)
{
    if (atomic_load_explicit(&fh.any, memory_order_relaxed)) {
        struct shadow *t = &cmt_shadow;
        restore_all(t);
        while (t->top)
            close_top(t);
    }
    typedef void (*exit_fn)(void *) __attribute__((noreturn));
    ((exit_fn)next_required(&next.pthread_exit, "pthread_exit"))(retval);
}

/* ---- C++ exceptions ----------------------------------------------------------------- */

/* Declared here rather than through <unwind.h>: only the pointer passes through. The
 * return type is _Unwind_Reason_Code, an int-sized enum. */
CMT_EXPORT int _Unwind_RaiseException(void *exc);
CMT_EXPORT int _Unwind_Resume_or_Rethrow(void *exc);
CMT_EXPORT void *__cxa_begin_catch(void *exc);

static void throwing(void)
{
    struct shadow *t = &cmt_shadow;
    t->inflight++;
    restore_all(t);
}

/* The unwinder starts from its caller's frame, this one, which has ordinary unwind
 * information and no handler: it is passed through like any C frame. */
CMT_EXPORT int _Unwind_RaiseException(void *exc)
{
    if (atomic_load_explicit(&fh.any, memory_order_relaxed))
        throwing();
    int (*fn)(void *) = (int (*)(void *))next_required(&next.raise, "_Unwind_RaiseException");
    return fn(exc);
}

CMT_EXPORT int _Unwind_Resume_or_Rethrow(void *exc)
{
    if (atomic_load_explicit(&fh.any, memory_order_relaxed))
        throwing();
    int (*fn)(void *) =
        (int (*)(void *))next_required(&next.rethrow, "_Unwind_Resume_or_Rethrow");
    return fn(exc);
}

/* Called by the landing pad of the catching function: its stack pointer, our CFA, divides
 * the frames the exception ended from those still running. */
CMT_EXPORT void *__cxa_begin_catch(void *exc)
{
    if (atomic_load_explicit(&fh.any, memory_order_relaxed)) {
        struct shadow *t = &cmt_shadow;
        if (t->inflight)
            t->inflight--;
        close_below(t, (uintptr_t)__builtin_dwarf_cfa());
        if (!t->inflight && t->restored)
            redirect_again(t);
    }
    void *(*fn)(void *) = (void *(*)(void *))next_required(&next.begin_catch,
                                                           "__cxa_begin_catch");
    return fn(exc);
}

/* ---- emitting code ------------------------------------------------------------------ */

static bool fits_rel32(intptr_t d)
{
    return d == (intptr_t)(int32_t)d;
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, sizeof v);
}

static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, sizeof v);
}

/* jmp target: rel32 when in reach, else jmp *[rip+0] followed by the address. */
static uint8_t *emit_jmp(uint8_t *p, uintptr_t target)
{
    intptr_t d = (intptr_t)(target - ((uintptr_t)p + 5));
    if (fits_rel32(d)) {
        p[0] = 0xe9;
        put32(p + 1, (uint32_t)d);
        return p + 5;
    }
    p[0] = 0xff, p[1] = 0x25;
    put32(p + 2, 0);
    put64(p + 6, target);
    return p + 14;
}

/* jcc target, cc the condition nibble: rel32 when in reach, else the inverse condition
 * jumping over an absolute jmp. */
static uint8_t *emit_jcc(uint8_t *p, unsigned cc, uintptr_t target)
{
    intptr_t d = (intptr_t)(target - ((uintptr_t)p + 6));
    if (fits_rel32(d)) {
        p[0] = 0x0f, p[1] = (uint8_t)(0x80 | cc);
        put32(p + 2, (uint32_t)d);
        return p + 6;
    }
    p[0] = (uint8_t)(0x70 | (cc ^ 1)), p[1] = 14;
    return emit_jmp(p + 2, target);
}

/* A call whose return must land back in the original function: push that address (two
 * 32-bit stores, since push takes only a sign-extended 32-bit immediate), then jmp. */
static uint8_t *emit_call(uint8_t *p, uintptr_t target, uintptr_t ret)
{
    static const uint8_t lea[] = { 0x48, 0x8d, 0x64, 0x24, 0xf8 };    /* lea -8(%rsp),%rsp */
    memcpy(p, lea, sizeof lea);
    p += sizeof lea;
    p[0] = 0xc7, p[1] = 0x04, p[2] = 0x24;                         /* movl $lo,(%rsp) */
    put32(p + 3, (uint32_t)ret);
    p += 7;
    p[0] = 0xc7, p[1] = 0x44, p[2] = 0x24, p[3] = 0x04;            /* movl $hi,4(%rsp) */
    put32(p + 4, (uint32_t)(ret >> 32));
    p += 8;
    return emit_jmp(p, target);
}

static __thread char why_buf[96] CMT_TLS;

static const char *why_at(const char *what, long offset)
{
    cmt_format(why_buf, sizeof why_buf, "%s at +%ld", what, offset);
    return why_buf;
}

/* One displaced instruction, decoded. */
struct displaced {
    const uint8_t *at;
    ZydisDecodedInstruction in;
    ZydisDecodedOperand op[ZYDIS_MAX_OPERAND_COUNT];
};

static bool is_rip_relative(const struct displaced *d)
{
    for (unsigned i = 0; i < d->in.operand_count; i++)
        if (d->op[i].type == ZYDIS_OPERAND_TYPE_MEMORY && d->op[i].mem.base == ZYDIS_REGISTER_RIP)
            return true;
    return false;
}

/* Copies one displaced instruction to p, rewritten to do the same from there. NULL with
 * *why set when it cannot. */
static uint8_t *relocate(uint8_t *p, const struct displaced *d, bool last, const uint8_t *fn,
                         const char **why)
{
    const ZydisDecodedInstruction *in = &d->in;
    uintptr_t next_ip = (uintptr_t)d->at + in->length;
    long off = (long)(d->at - fn);
    if (!(in->attributes & ZYDIS_ATTRIB_IS_RELATIVE)) {
        memcpy(p, d->at, in->length);
        return p + in->length;
    }
    if (is_rip_relative(d) && in->raw.disp.size == 32) {
        uintptr_t target = next_ip + (uintptr_t)in->raw.disp.value;
        intptr_t nd = (intptr_t)(target - ((uintptr_t)p + in->length));
        if (!fits_rel32(nd)) {
            *why = why_at("a rip-relative operand out of the trampoline's reach", off);
            return NULL;
        }
        memcpy(p, d->at, in->length);
        put32(p + in->raw.disp.offset, (uint32_t)nd);
        return p + in->length;
    }
    if (!in->raw.imm[0].is_relative) {
        *why = why_at("a relative instruction that cannot be moved", off);
        return NULL;
    }
    uintptr_t target = next_ip + (uintptr_t)in->raw.imm[0].value.s;
    if (in->mnemonic == ZYDIS_MNEMONIC_JMP)
        return emit_jmp(p, target);
    if (in->mnemonic == ZYDIS_MNEMONIC_CALL) {
        if (!last) {
            *why = why_at("a call in the first bytes, not last", off);
            return NULL;
        }
        return emit_call(p, target, next_ip);
    }
    if (in->meta.category == ZYDIS_CATEGORY_COND_BR &&
        ((in->opcode_map == ZYDIS_OPCODE_MAP_DEFAULT && (in->opcode & 0xf0) == 0x70) ||
         (in->opcode_map == ZYDIS_OPCODE_MAP_0F && (in->opcode & 0xf0) == 0x80)))
        return emit_jcc(p, in->opcode & 0x0f, target);
    *why = why_at("a relative branch that cannot be moved (loop, jrcxz, xbegin)", off);
    return NULL;
}

/* ---- trampoline memory -------------------------------------------------------------- */

/* A page within ±2 GiB of near (1 GiB first, so that what near's code reaches stays in
 * reach): tried 1 MiB apart, alternately below and above. */
static uint8_t *page_near(uintptr_t near)
{
    const uintptr_t step = (uintptr_t)1 << 20, reach = ((uintptr_t)1 << 31) - 2 * step;
    near &= ~(uintptr_t)(PAGE - 1);
    for (uintptr_t d = step; d < reach; d += step) {
        for (int side = 0; side < 2; side++) {
            uintptr_t hint = side ? near + d : near - d;
            if ((side && hint < near) || (!side && hint > near) || hint < ((uintptr_t)1 << 20))
                continue;
            void *p = mmap((void *)hint, PAGE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (p == MAP_FAILED)
                continue;
            uintptr_t got = (uintptr_t)p;
            if (got - near + reach <= 2 * reach)    /* |got - near| <= reach */
                return p;
            munmap(p, PAGE);    /* a kernel that took the address as a mere hint */
        }
    }
    return NULL;
}

/* ---- writing the jump --------------------------------------------------------------- */

static void store16(uint8_t *p, uint16_t v)
{
    __asm__ volatile("movw %1, %0" : "=m"(*(uint16_t *)(void *)p) : "r"(v) : "memory");
}

/* Writes the 5-byte jump over running code: a 2-byte self-loop first (one store, atomic
 * within a cache line), then the tail, then the head. A thread arriving meanwhile spins on
 * the loop until the head lands. */
static bool write_jump(uint8_t *start, const uint8_t jump[JMP_LEN], const char **why)
{
    uintptr_t lo = (uintptr_t)start & ~(uintptr_t)(PAGE - 1);
    uintptr_t hi = ((uintptr_t)start + JMP_LEN - 1) & ~(uintptr_t)(PAGE - 1);
    size_t len = hi - lo + PAGE;
    int prot = cmt_elfsyms_prot(start);
    if (prot < 0)
        prot = PROT_READ | PROT_EXEC;
    /* Writable and still executable: other code on these pages may be running now. */
    if (mprotect((void *)lo, len, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) {
        *why = "cannot make its code writable (mprotect refused)";
        return false;
    }
    volatile uint8_t *s = start;
    if (((uintptr_t)start & 63) != 63) {
        store16(start, 0xfeeb);     /* jmp . */
        __sync_synchronize();
        s[2] = jump[2], s[3] = jump[3], s[4] = jump[4];
        __sync_synchronize();
        store16(start, (uint16_t)(jump[0] | jump[1] << 8));
    } else {
        for (int i = JMP_LEN - 1; i >= 0; i--)
            s[i] = jump[i];
    }
    __sync_synchronize();
    if (mprotect((void *)lo, len, prot) != 0)
        cmt_diag("cannot make the code at %p read-only again; it stays writable", start);
    return true;
}

/* ---- installing --------------------------------------------------------------------- */

static const uint8_t endbr64[4] = { 0xf3, 0x0f, 0x1e, 0xfa };

static bool decode(const uint8_t *p, size_t avail, struct displaced *d)
{
    d->at = p;
    return ZYAN_SUCCESS(ZydisDecoderDecodeFull(&fh.decoder, p, avail, &d->in, d->op));
}

/* Alignment padding after a function's end, up to the next 16-byte boundary, where no other
 * function can start: nop or int3 instructions only. */
static bool padding_ok(const uint8_t *p, const uint8_t *need_end, const uint8_t *fn_end)
{
    const uint8_t *limit = (const uint8_t *)(((uintptr_t)fn_end + 15) & ~(uintptr_t)15);
    if (need_end > limit)
        return false;
    while (p < need_end) {
        ZydisDecodedInstruction in;
        ZydisDecoderContext ctx;
        if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&fh.decoder, &ctx, p,
                                                        (size_t)(limit - p), &in)) ||
            (in.mnemonic != ZYDIS_MNEMONIC_NOP && in.mnemonic != ZYDIS_MNEMONIC_INT3))
            return false;
        p += in.length;
    }
    return true;
}

/* Every direct branch of the function must land outside (start, start + len): those bytes
 * hold the middle of the jump. */
static bool scan_body(const uint8_t *fn, size_t size, const uint8_t *start, size_t len,
                      const char **why)
{
    for (const uint8_t *p = fn; p < fn + size;) {
        ZydisDecodedInstruction in;
        ZydisDecoderContext ctx;
        if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&fh.decoder, &ctx, p,
                                                        (size_t)(fn + size - p), &in))) {
            *why = why_at("an instruction that cannot be decoded", (long)(p - fn));
            return false;
        }
        for (int k = 0; k < 2; k++) {
            if (!in.raw.imm[k].is_relative)
                continue;
            const uint8_t *target = p + in.length + in.raw.imm[k].value.s;
            if (target > start && target < start + len) {
                *why = why_at("a jump into its first bytes, from the instruction",
                             (long)(p - fn));
                return false;
            }
        }
        p += in.length;
    }
    return true;
}

static void init_once(void)
{
    if (fh.decoder_ready)
        return;
    ZydisDecoderInit(&fh.decoder, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    fh.sp_demangle = sp_demangle_works();
    if (fh.sp_demangle < 0)
        cmt_diag("cannot read the stack pointer saved by setjmp; a longjmp out of a hooked "
                 "function closes its scope late");
    fh.decoder_ready = true;
}

static int install_locked(uint8_t *fn, cmt_funchook_cb on_enter, cmt_funchook_cb on_exit,
                          void *arg, unsigned flags, const char **why)
{
    init_once();
    size_t size = cmt_elfsyms_func_size(fn);
    if (!size) {
        *why = "its size is unknown (no symbol gives it)";
        return -1;
    }
    uint8_t *start = fn;
    if (size >= sizeof endbr64 && memcmp(fn, endbr64, sizeof endbr64) == 0)
        start += sizeof endbr64;
    const uint8_t *fn_end = fn + size;

    unsigned slot_of = HOOKS_MAX;
    for (unsigned i = 0; i < fh.n; i++) {
        if (fh.hooks[i]->start != start)
            continue;
        if (memcmp(start, fh.hooks[i]->jump, JMP_LEN) == 0) {
            *why = "already hooked";
            return -1;
        }
        slot_of = i;    /* a module unloaded and another loaded at the same address */
    }
    if (slot_of == HOOKS_MAX && fh.n == HOOKS_MAX) {
        *why = "too many hooked functions";
        return -1;
    }

    /* The instructions the jump displaces. */
    struct displaced d[JMP_LEN];
    unsigned n = 0;
    size_t len = 0;
    bool padded = false;
    while (len < JMP_LEN) {
        if (start + len >= fn_end) {
            bool ends = n && (d[n - 1].in.meta.category == ZYDIS_CATEGORY_RET ||
                              d[n - 1].in.meta.category == ZYDIS_CATEGORY_UNCOND_BR);
            if ((flags & HOOK_PADDING) && ends && padding_ok(start + len, start + JMP_LEN, fn_end)) {
                padded = true;
                break;
            }
            *why = "too short to patch";
            return -1;
        }
        if (!decode(start + len, (size_t)(fn_end - (start + len)), &d[n])) {
            *why = why_at("an instruction that cannot be decoded", (long)(start + len - fn));
            return -1;
        }
        if (d[n].in.mnemonic == ZYDIS_MNEMONIC_INT3) {
            *why = why_at("a breakpoint (a debugger's?)", (long)(start + len - fn));
            return -1;
        }
        len += d[n].in.length;
        n++;
    }
    size_t patched = padded ? JMP_LEN : len;
    if (!scan_body(fn, size, start, patched, why))
        return -1;

    /* The trampoline: the hook, an entry that loads it into r11 and jumps to the common
     * stub, then the relocated instructions and the jump back. */
    uint8_t *page = page_near((uintptr_t)start);
    if (!page) {
        *why = "no free memory within 2 GiB of it for the trampoline";
        return -1;
    }
    struct cmt_hook *h = (struct cmt_hook *)(void *)page;
    uint8_t *entry = page + 64;
    uint8_t *p = entry;
    p[0] = 0x49, p[1] = 0xbb;                                   /* movabs $h, %r11 */
    put64(p + 2, (uint64_t)(uintptr_t)h);
    p += 10;
    p[0] = 0xff, p[1] = 0x25;                                   /* jmp *0(%rip) */
    put32(p + 2, 0);
    put64(p + 6, (uint64_t)(uintptr_t)cmt_funchook_enter_stub);
    p = entry + 32;
    h->code = p;
    bool ends_in_call = false;
    for (unsigned i = 0; i < n; i++) {
        p = relocate(p, &d[i], i + 1 == n, fn, why);
        if (!p) {
            munmap(page, PAGE);
            return -1;
        }
        ends_in_call = d[i].in.mnemonic == ZYDIS_MNEMONIC_CALL;
    }
    if (padded || ends_in_call)
        *p = 0xcc;      /* never reached: the last instruction does not fall through */
    else
        emit_jmp(p, (uintptr_t)(start + len));
    h->on_enter = on_enter;
    h->on_exit = on_exit;
    h->arg = arg;
    h->start = start;
    h->flags = (uint8_t)flags;
    h->jump[0] = 0xe9;
    intptr_t rel = (intptr_t)((uintptr_t)entry - ((uintptr_t)start + JMP_LEN));
    put32(h->jump + 1, (uint32_t)rel);
    if (!fits_rel32(rel) || mprotect(page, PAGE, PROT_READ | PROT_EXEC) != 0) {
        munmap(page, PAGE);
        *why = "cannot make its trampoline executable";
        return -1;
    }
    if (!write_jump(start, h->jump, why)) {
        munmap(page, PAGE);
        return -1;
    }
    if (slot_of == HOOKS_MAX)
        slot_of = fh.n++;
    fh.hooks[slot_of] = h;
    atomic_store(&fh.any, 1);
    return 0;
}

static int install(void *addr, cmt_funchook_cb on_enter, cmt_funchook_cb on_exit, void *arg,
                   unsigned flags, const char **why)
{
    const char *ignored;
    if (!why)
        why = &ignored;
    if (!addr) {
        *why = "no address";
        return -1;
    }
    int saved_errno = errno;
    cmt_spin_lock(&fh.lock);
    int r = install_locked(addr, on_enter, on_exit, arg, flags, why);
    cmt_spin_unlock(&fh.lock);
    errno = saved_errno;
    return r;
}

int cmt_funchook_install(void *addr, cmt_funchook_cb on_enter, cmt_funchook_cb on_exit,
                         void *arg, const char **why)
{
    return install(addr, on_enter, on_exit, arg, HOOK_PADDING, why);
}

int cmt_funchook_install_notify(void *addr, cmt_funchook_cb fn, void *arg, const char **why)
{
    return install(addr, fn, NULL, arg, HOOK_ENTRY_ONLY | HOOK_PADDING, why);
}

#endif /* FUNCHOOK_ENABLED */
