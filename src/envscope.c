/*
 * envscope.c — CYMEMTRACK_SCOPES: scopes opened and closed from outside, on a program nobody
 * changed.
 *
 * Owns the setting's grammar and its three triggers: func:SYMBOL (an instance per call, from
 * an entry hook in memory, funchook.c, or from -finstrument-functions; where no hook can be
 * set, from the stack, walked at each allocation, with approximate instances), thread:GLOB (an
 * instance per matching thread, until it exits) and signal:SIGNAME (a process-wide window
 * toggled by the signal). A bad entry gets one "cymemtrack:" line naming it and its position;
 * the rest of the setting still applies. Never allocates through the tracked allocator, and
 * does nothing in a signal handler but set flags.
 */
#define _GNU_SOURCE
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "cmt.h"
#include "report-format.h"

#define ENTRIES_MAX 32
#define ARG_MAX 256
#define FUNC_DEPTH 128
#define INSPECT_OPEN 16     /* inspected calls with an open instance, at once on a thread */
#define INSPECT_DEPTH 128   /* frames an allocation's walk looks at, at most */

#ifdef HAVE_LIBUNWIND
#define CAN_INSPECT 1
#else
#define CAN_INSPECT 0       /* no unwinder: stack.c walks nothing */
#endif

enum opt { OPT_BULK = 0x1, OPT_QUIET = 0x2 };

struct entry {
    char name[128];
    char arg[ARG_MAX];          /* SYMBOL, GLOB or SIGNAME */
    enum cmt_scope_kind kind;
    unsigned opts;
    uint32_t name_id;
    void *func;                 /* func: the hooked function's address */
    size_t func_size;
    bool hooked;                /* func: entry hook installed */
    bool inspected;             /* func: not hooked, found on the stack instead */
    int signo;                  /* signal: */
};

/* The code of a func: entry's function that is found on the stack, [lo, hi). Switched off
 * when the program turns out to call -finstrument-functions' hooks for it. */
struct range {
    uintptr_t lo, hi;
    const struct entry *e;
    atomic_bool on;
};

static struct {
    struct entry e[ENTRIES_MAX];
    int n;
    bool any_thread;            /* some thread: entry exists */
    bool any_func;
    bool too_many_said;         /* the line about entries past ENTRIES_MAX was given */
    /* signal: windows, process-wide, toggled by a flag the handler sets. */
    atomic_uint window_requests;    /* bit i: entry i's signal arrived */
    struct cmt_instance *window[ENTRIES_MAX];
    cmt_spinlock window_lock;
    /* Inspected func: entries, appended at start and after a dlopen: a range is written
     * before the count that publishes it, and never removed. */
    struct range ranges[ENTRIES_MAX];
    atomic_uint nranges;
    pthread_key_t exit_key;     /* its destructor closes a thread's inspected instances */
    bool have_key;
    atomic_int open_full_said;
} es;

atomic_int cmt_envscope_inspect;

/* Per thread: the instances func: entries opened, innermost last; NULL marks a call whose
 * entry hook could not open one (so that its exit does not close another's). mark is the
 * call's stack pointer at entry, for the comparison with inspected frames. */
static __thread struct {
    struct cmt_instance *open[FUNC_DEPTH];
    uintptr_t mark[FUNC_DEPTH];
    int depth;
} fstack CMT_TLS;

/* Per thread: the instances of inspected calls open now, outermost first, each known by its
 * function and the CFA of the call's frame. They are on no scope stack (see inspect_open). */
struct inspected {
    struct cmt_instance *inst;
    const struct entry *e;
    uintptr_t cfa;
    uint64_t below;             /* handle of the thread's innermost scope when it opened */
};
static __thread struct {
    uint32_t n;
    bool exit_armed;            /* the thread-exit destructor will run */
    struct inspected open[INSPECT_OPEN];
} ist CMT_TLS;

/* ---- parsing ------------------------------------------------------------------------ */

static const struct { const char *name; int signo; } signals[] = {
    { "SIGHUP", SIGHUP }, { "SIGINT", SIGINT }, { "SIGQUIT", SIGQUIT },
    { "SIGUSR1", SIGUSR1 }, { "SIGUSR2", SIGUSR2 }, { "SIGPIPE", SIGPIPE },
    { "SIGALRM", SIGALRM }, { "SIGTERM", SIGTERM }, { "SIGCHLD", SIGCHLD },
    { "SIGCONT", SIGCONT }, { "SIGTSTP", SIGTSTP }, { "SIGTTIN", SIGTTIN },
    { "SIGTTOU", SIGTTOU }, { "SIGURG", SIGURG }, { "SIGXCPU", SIGXCPU },
    { "SIGVTALRM", SIGVTALRM }, { "SIGPROF", SIGPROF }, { "SIGWINCH", SIGWINCH },
    { "SIGPWR", SIGPWR }, { "SIGSYS", SIGSYS },
};

/* SIGNAME, NAME without SIG, a number, or SIGRTMIN+N. 0 when unknown or unusable. */
static int parse_signal(const char *s)
{
    const char *bare = strncmp(s, "SIG", 3) == 0 ? s + 3 : s;
    for (size_t i = 0; i < CMT_ARRAY_LEN(signals); i++)
        if (strcmp(signals[i].name + 3, bare) == 0)
            return signals[i].signo;
    if (strncmp(bare, "RTMIN+", 6) == 0 || strcmp(bare, "RTMIN") == 0) {
        const char *num = bare[5] ? bare + 6 : "0";
        size_t digits = strspn(num, "0123456789");
        if (digits == 0 || digits > 3 || num[digits] != '\0')
            return 0;
        int off = atoi(num);
        return SIGRTMIN + off <= SIGRTMAX ? SIGRTMIN + off : 0;
    }
    if (*bare >= '1' && *bare <= '9' && strspn(bare, "0123456789") <= 3 &&
        bare[strspn(bare, "0123456789")] == '\0') {
        int n = atoi(bare);
        /* A fault's handler returns to the faulting instruction: a window on one would
         * turn every crash into an endless loop. */
        bool fault = n == SIGSEGV || n == SIGBUS || n == SIGFPE || n == SIGILL ||
                     n == SIGTRAP || n == SIGABRT;
        return n <= SIGRTMAX && n != SIGKILL && n != SIGSTOP && !fault ? n : 0;
    }
    return 0;
}

/* Copies [s, end) into dst (size bytes); false when it does not fit or is empty. */
static bool take(char *dst, size_t size, const char *s, const char *end)
{
    size_t len = (size_t)(end - s);
    if (len == 0 || len >= size)
        return false;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return true;
}

/* Parses one "NAME=KIND:ARG[,OPTION...]" at offset pos of the setting. */
static void parse_entry(const char *s, const char *end, size_t pos)
{
    struct entry e = { 0 };
    const char *eq = memchr(s, '=', (size_t)(end - s));
    if (!eq || !take(e.name, sizeof e.name, s, eq)) {
        cmt_diag("CYMEMTRACK_SCOPES: entry at position %zu: expected NAME=KIND:ARG; ignored", pos);
        return;
    }
    const char *kind = eq + 1;
    const char *colon = memchr(kind, ':', (size_t)(end - kind));
    if (!colon) {
        cmt_diag("CYMEMTRACK_SCOPES: entry \"%s\" at position %zu: expected KIND:ARG after "
                 "'='; ignored", e.name, pos);
        return;
    }
    size_t klen = (size_t)(colon - kind);
    if (klen == 4 && memcmp(kind, "func", 4) == 0) {
        e.kind = CMT_KIND_FUNC;
    } else if (klen == 6 && memcmp(kind, "thread", 6) == 0) {
        e.kind = CMT_KIND_THREAD;
    } else if (klen == 6 && memcmp(kind, "signal", 6) == 0) {
        e.kind = CMT_KIND_SIGNAL;
    } else {
        cmt_diag("CYMEMTRACK_SCOPES: entry \"%s\" at position %zu: unknown kind \"%.*s\" "
                 "(func, thread or signal); ignored", e.name, pos + (size_t)(kind - s),
                 (int)klen, kind);
        return;
    }
    const char *arg = colon + 1;
    const char *comma = memchr(arg, ',', (size_t)(end - arg));
    const char *arg_end = comma ? comma : end;
    if (!take(e.arg, sizeof e.arg, arg, arg_end)) {
        cmt_diag("CYMEMTRACK_SCOPES: entry \"%s\" at position %zu: missing or over-long "
                 "argument after \"%.*s:\"; ignored", e.name, pos + (size_t)(arg - s),
                 (int)klen, kind);
        return;
    }
    for (const char *o = comma; o && o < end;) {
        const char *next = memchr(o + 1, ',', (size_t)(end - o - 1));
        const char *oend = next ? next : end;
        size_t olen = (size_t)(oend - o - 1);
        if (olen == 4 && memcmp(o + 1, "bulk", 4) == 0)
            e.opts |= OPT_BULK;
        else if (olen == 5 && memcmp(o + 1, "quiet", 5) == 0)
            e.opts |= OPT_QUIET;
        else
            cmt_diag("CYMEMTRACK_SCOPES: entry \"%s\" at position %zu: unknown option "
                     "\"%.*s\" (bulk or quiet); ignored", e.name, pos + (size_t)(o + 1 - s),
                     (int)olen, o + 1);
        o = next;
    }
    if (e.kind == CMT_KIND_SIGNAL && !(e.signo = parse_signal(e.arg))) {
        cmt_diag("CYMEMTRACK_SCOPES: entry \"%s\" at position %zu: unknown signal \"%s\"; "
                 "ignored", e.name, pos + (size_t)(arg - s), e.arg);
        return;
    }
    if (es.n == ENTRIES_MAX) {
        if (!es.too_many_said)
            cmt_diag("CYMEMTRACK_SCOPES: more than %d entries; \"%s\" and later ones ignored",
                     ENTRIES_MAX, e.name);
        es.too_many_said = true;
        return;
    }
    e.name_id = cmt_name_intern(e.name, e.kind);
    if (cmt_name_kind(e.name_id) != e.kind) {
        cmt_diag("CYMEMTRACK_SCOPES: entry \"%s\" at position %zu: that name is already a "
                 "scope of another kind; ignored", e.name, pos);
        return;
    }
    es.e[es.n++] = e;
}

/* ---- func: -------------------------------------------------------------------------- */

static void func_open(const struct entry *e, uintptr_t mark)
{
    struct cmt_thread *t = &cmt_self;
    struct cmt_instance *inst = NULL;
    if (!t->busy && atomic_load_explicit(&cmt_ready, memory_order_acquire)) {
        t = cmt_thread_self();
        if (t->state == CMT_THREAD_LIVE) {
            t->busy++;
            inst = cmt_instance_open(t, e->name_id, (e->opts & OPT_BULK) ? CMT_INST_BULK : 0);
            t->busy--;
        }
    }
    if (fstack.depth < FUNC_DEPTH) {
        fstack.open[fstack.depth] = inst;
        fstack.mark[fstack.depth] = mark;
    }
    fstack.depth++;
}

static void func_enter(void *arg)
{
    func_open(arg, cmt_funchook_entry_sp());
}

static void func_exit(void *arg)
{
    const struct entry *e = arg;
    if (fstack.depth == 0)
        return;
    fstack.depth--;
    struct cmt_instance *inst =
        fstack.depth < FUNC_DEPTH ? fstack.open[fstack.depth] : NULL;
    if (!inst)
        return;
    struct cmt_thread *t = &cmt_self;
    t->busy++;
    /* Scopes opened in the call and left open end with it. */
    while (t->top && t->top != inst && t->top->kind != CMT_KIND_GLOBAL) {
        if (!(e->opts & OPT_QUIET))
            cmt_diag("scope \"%s\" was still open when %s returned; closed it",
                     cmt_name_string(t->top->name), e->arg);
        cmt_instance_close(t, t->top);
    }
    if (t->top == inst)
        cmt_instance_close(t, inst);
    t->busy--;
}

/* ---- func: by inspecting the stack -------------------------------------------------- */

/* A function that cannot be hooked is looked for on the stack at every allocation instead.
 * A call is known by its frame's CFA: allocations seen with the same CFA are one instance;
 * the instance closes at the first allocation whose walk passes that CFA without the call's
 * frame there (it returned, or another call took its place). So an instance is only seen
 * once it allocates, and two calls in a row at the same depth with no allocation between
 * them outside count as one: instance counts are approximate, allocation counts are not. */

/* The instance of an inspected call, closed: compacted out of the thread's list. */
static void inspect_close(struct cmt_thread *t, uint32_t j)
{
    cmt_instance_close_detached(t, ist.open[j].inst);
    for (; j + 1 < ist.n; j++)
        ist.open[j] = ist.open[j + 1];
    ist.n--;
}

/* Thread exit (a key destructor): the thread's inspected instances close with it. */
static void inspect_thread_exit(void *arg)
{
    (void)arg;
    struct cmt_thread *t = &cmt_self;
    t->busy++;
    while (ist.n)
        inspect_close(t, ist.n - 1);
    ist.exit_armed = false;
    t->busy--;
}

/* Opens the instance of an inspected call at cfa, for an allocation made under top. */
static struct cmt_instance *inspect_open(struct cmt_thread *t, const struct entry *e,
                                         uintptr_t cfa, struct cmt_instance *top)
{
    if (ist.n == INSPECT_OPEN) {
        if (!atomic_exchange(&es.open_full_said, 1))
            cmt_diag("more than %d calls of inspected functions nested on one thread; deeper "
                     "ones are not seen as scope instances", INSPECT_OPEN);
        return NULL;
    }
    /* Owned by the thread, so that it counts with plain stores and keeps its peak like any
     * func: instance, but taken off the scope stack at once: its end is only seen at a later
     * allocation, and closing it from under scopes opened meanwhile would upset them. No
     * bulk: a close seen late is harmless, but a walk that missed a frame still running
     * would close it early, and a bulk-free then would free blocks the call still uses. */
    struct cmt_instance *inst = cmt_instance_open(t, e->name_id, 0);
    if (!inst)
        return NULL;
    t->top = inst->parent;
    inst->parent = NULL;
    if (!ist.exit_armed && es.have_key)
        ist.exit_armed = pthread_setspecific(es.exit_key, &ist) == 0;
    ist.open[ist.n++] = (struct inspected){ inst, e, cfa, cmt_instance_handle(top) };
    return inst;
}

/* What an allocation's walk saw. */
struct sight {
    const struct range *ranges;
    unsigned nranges;
    uintptr_t stop;             /* the outermost open instance's CFA */
    const struct entry *inner;  /* the innermost inspected frame, */
    uintptr_t inner_cfa;        /* and its CFA */
    uint32_t present;           /* bit j: ist.open[j]'s frame is there */
    uintptr_t passed;           /* the CFA of the last frame walked */
};

static bool inspect_frame(void *arg, uintptr_t pc, uintptr_t cfa)
{
    struct sight *s = arg;
    if (pc == 0) {              /* the walk starts over */
        s->inner = NULL;
        s->present = 0;
        s->passed = 0;
        return true;
    }
    s->passed = cfa;
    for (unsigned i = 0; i < s->nranges; i++) {
        const struct range *r = &s->ranges[i];
        /* pc - 1: the call instruction, in case the call was the function's last. */
        if (pc - 1 - r->lo >= r->hi - r->lo ||
            !atomic_load_explicit(&r->on, memory_order_relaxed))
            continue;
        if (!s->inner) {
            s->inner = r->e;
            s->inner_cfa = cfa;
        }
        for (uint32_t j = 0; j < ist.n; j++)
            if (ist.open[j].e == r->e && ist.open[j].cfa == cfa)
                s->present |= 1u << j;
        break;
    }
    /* Done once the innermost is known and every open instance's frame was passed. */
    return !s->inner || cfa < s->stop;
}

/* A hooked or instrumented call's stack pointer at entry; 0 when unknown. */
static uintptr_t func_mark(const struct cmt_instance *inst)
{
    for (int d = fstack.depth < FUNC_DEPTH ? fstack.depth : FUNC_DEPTH; d-- > 0;)
        if (fstack.open[d] == inst)
            return fstack.mark[d];
    return 0;
}

/* The innermost configured function wins: does an inspected frame at cfa (whose instance,
 * when open, is cur) run deeper than the scopes on the stack from top down? A scope opened
 * since cur opened is inside its call; a hooked call is inside the frame when it entered
 * below the frame's CFA; the global and thread: scopes are outside everything. An API
 * scope does not say how deep it was opened: the scope under it decides, so one opened
 * inside the inspected call before the call's first allocation is taken for an outer one. */
static bool inspected_wins(const struct cmt_instance *top, uintptr_t cfa,
                           const struct inspected *cur)
{
    int steps = 0;
    for (const struct cmt_instance *x = top; x && steps < FUNC_DEPTH; x = x->parent, steps++) {
        if (cur && cmt_instance_handle(x) == cur->below)
            return x == top;
        if (x->kind == CMT_KIND_FUNC)
            return cfa <= func_mark(x);
        if (x->kind != CMT_KIND_API)
            return true;
    }
    return true;
}

struct cmt_instance *cmt_envscope_owner(struct cmt_thread *t, struct cmt_instance *top)
{
    struct sight s = {
        .ranges = es.ranges,
        .nranges = atomic_load_explicit(&es.nranges, memory_order_acquire),
        .stop = ist.n ? ist.open[0].cfa : 0,
    };
    cmt_stack_walk(inspect_frame, &s, INSPECT_DEPTH);
    /* A frame the walk passed without finding it is gone. One it did not reach (the walk
     * stopped short) may still be running: its instance stays open. */
    for (uint32_t j = ist.n; j-- > 0;)
        if (!(s.present & (1u << j)) && s.passed >= ist.open[j].cfa)
            inspect_close(t, j);
    if (!s.inner)
        return top;
    /* Every open instance left is the inner frame's or an outer one's. */
    struct inspected *cur = ist.n ? &ist.open[ist.n - 1] : NULL;
    if (cur && (cur->e != s.inner || cur->cfa != s.inner_cfa))
        cur = NULL;
    if (!inspected_wins(top, s.inner_cfa, cur))
        return top;
    if (cur)
        return cur->inst;
    struct cmt_instance *inst = inspect_open(t, s.inner, s.inner_cfa, top);
    return inst ? inst : top;
}

/* Arms the inspection of a func: entry whose function could not be hooked (why): its
 * code's extent is its symbol's size or, without one, its unwind entry's. */
static void inspect_arm(struct entry *e, const char *why)
{
    size_t size = e->func_size ? e->func_size : cmt_elfsyms_func_size(e->func);
    if (!size)
        size = cmt_stack_code_extent(e->func);
    const char *cannot = !CAN_INSPECT ? "built without libunwind"
                       : !size ? "its extent is unknown: no symbol size, no unwind entry"
                       : NULL;
    if (!cannot) {
        unsigned n = atomic_load_explicit(&es.nranges, memory_order_relaxed);
        struct range *r = &es.ranges[n];
        r->lo = (uintptr_t)e->func;
        r->hi = r->lo + size;
        r->e = e;
        atomic_store_explicit(&r->on, true, memory_order_relaxed);
        atomic_store_explicit(&es.nranges, n + 1, memory_order_release);
        e->inspected = true;
        atomic_store_explicit(&cmt_envscope_inspect, 1, memory_order_release);
        cmt_young_retarget();   /* allocations now choose their instance the slow way */
    }
    if (e->opts & OPT_QUIET)
        return;
    if (cannot)
        cmt_diag("CYMEMTRACK_SCOPES: entry \"%s\": cannot hook %s (%s), nor look for it on the "
                 "stack (%s); its allocations are attributed only where the program was built "
                 "with -finstrument-functions", e->name, e->arg, why, cannot);
    else
        cmt_diag("CYMEMTRACK_SCOPES: entry \"%s\": cannot hook %s (%s); looking for it on the "
                 "stack at each allocation instead (instance counts approximate%s)", e->name,
                 e->arg, why, (e->opts & OPT_BULK) ? "; bulk not applied" : "");
}

/* The program calls -finstrument-functions' hooks for an inspected function: they say
 * exactly when its calls begin and end, so the inspection stops. */
static void inspect_stop(const struct entry *e)
{
    bool any = false;
    unsigned n = atomic_load_explicit(&es.nranges, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        if (es.ranges[i].e == e)
            atomic_store_explicit(&es.ranges[i].on, false, memory_order_relaxed);
        any |= atomic_load_explicit(&es.ranges[i].on, memory_order_relaxed);
    }
    if (!any)
        atomic_store_explicit(&cmt_envscope_inspect, 0, memory_order_relaxed);
}

/* Hooks every func: entry that is not hooked yet and whose symbol is loaded now. */
static void func_arm(bool first)
{
    for (int i = 0; i < es.n; i++) {
        struct entry *e = &es.e[i];
        if (e->kind != CMT_KIND_FUNC || e->hooked || e->func)
            continue;
        e->func = cmt_elfsyms_find(e->arg, &e->func_size);
        if (!e->func) {
            if (first && !(e->opts & OPT_QUIET))
                cmt_diag("CYMEMTRACK_SCOPES: entry \"%s\": no function \"%s\" in the program "
                         "or its libraries (yet); it will be looked for again after each "
                         "dlopen", e->name, e->arg);
            continue;
        }
        const struct entry *twin = NULL;
        for (int j = 0; j < es.n && !twin; j++)
            if (j != i && (es.e[j].hooked || es.e[j].inspected) && es.e[j].func == e->func)
                twin = &es.e[j];
        if (twin) {
            if (!(e->opts & OPT_QUIET))
                cmt_diag("CYMEMTRACK_SCOPES: entry \"%s\": %s is already the function of "
                         "entry \"%s\"; ignored", e->name, e->arg, twin->name);
            e->func = NULL;
            e->kind = CMT_KIND_GLOBAL;  /* inert from now on */
            continue;
        }
        const char *why = NULL;
        if (cmt_funchook_install(e->func, func_enter, func_exit, e, &why) == 0)
            e->hooked = true;
        else
            inspect_arm(e, why ? why : "unknown reason");
    }
}

void cmt_envscope_module_loaded(void)
{
    if (es.any_func)
        func_arm(false);
}

/* A program built with -finstrument-functions calls these around every function: they open
 * and close func: scopes whose functions could not be hooked in memory, exactly, so such a
 * function is no longer looked for on the stack. (GCC declares them only when it
 * instruments.) The mark is the instrumented function's stack pointer at the call. */
void __cyg_profile_func_enter(void *fn, void *call_site);
void __cyg_profile_func_exit(void *fn, void *call_site);
CMT_EXPORT void __cyg_profile_func_enter(void *fn, void *call_site)
{
    (void)call_site;
    for (int i = 0; i < es.n; i++) {
        if (es.e[i].func != fn || es.e[i].hooked)
            continue;
        if (atomic_load_explicit(&cmt_envscope_inspect, memory_order_relaxed))
            inspect_stop(&es.e[i]);
        func_open(&es.e[i], (uintptr_t)__builtin_dwarf_cfa());
    }
}

CMT_EXPORT void __cyg_profile_func_exit(void *fn, void *call_site)
{
    (void)call_site;
    for (int i = 0; i < es.n; i++)
        if (es.e[i].func == fn && !es.e[i].hooked)
            func_exit(&es.e[i]);
}

/* ---- thread: ------------------------------------------------------------------------ */

/* Opens the thread: scopes whose pattern matches the calling thread's name, once each. */
static void thread_match(struct cmt_thread *t, const char *name)
{
    for (int i = 0; i < es.n; i++) {
        const struct entry *e = &es.e[i];
        if (e->kind != CMT_KIND_THREAD || fnmatch(e->arg, name, 0) != 0)
            continue;
        bool open = false;
        for (struct cmt_instance *s = t->top; s; s = s->parent)
            open |= s->name == e->name_id;
        if (!open)
            cmt_instance_open(t, e->name_id, (e->opts & OPT_BULK) ? CMT_INST_BULK : 0);
    }
}

void cmt_envscope_thread_start(struct cmt_thread *t)
{
    if (!es.any_thread)
        return;
    char name[17] = { 0 };
    if (prctl(PR_GET_NAME, name, 0, 0, 0) == 0)
        thread_match(t, name);
}

/* Threads usually get their names after they start: a rename of the calling thread is
 * checked again. (Renaming another thread, or writing /proc/.../comm, is not seen.) */
CMT_EXPORT int pthread_setname_np(pthread_t thread, const char *name)
{
    static int (*next)(pthread_t, const char *);
    if (!next)
        next = (int (*)(pthread_t, const char *))dlsym(RTLD_NEXT, "pthread_setname_np");
    int rc = next ? next(thread, name) : ENOSYS;
    if (rc == 0 && es.any_thread && pthread_equal(thread, pthread_self()) &&
        atomic_load(&cmt_ready)) {
        struct cmt_thread *t = cmt_thread_self();
        if (t->state == CMT_THREAD_LIVE && !t->busy) {
            t->busy++;
            thread_match(t, name);
            t->busy--;
        }
    }
    return rc;
}

/* ---- signal: ------------------------------------------------------------------------ */

/* Only a flag: the window opens or closes at the next call into the tracker. */
static void on_window_signal(int signo)
{
    for (int i = 0; i < es.n; i++)
        if (es.e[i].kind == CMT_KIND_SIGNAL && es.e[i].signo == signo)
            atomic_fetch_or(&es.window_requests, 1u << i);
    atomic_fetch_or(&cmt_ready, CMT_READY_PENDING);
}

void cmt_envscope_pending(struct cmt_thread *t)
{
    unsigned req = atomic_exchange(&es.window_requests, 0);
    if (!req || !cmt_spin_trylock(&es.window_lock)) {
        atomic_fetch_or(&es.window_requests, req);
        return;
    }
    for (int i = 0; i < es.n; i++) {
        if (!(req & (1u << i)))
            continue;
        struct entry *e = &es.e[i];
        if (!es.window[i]) {
            es.window[i] = cmt_instance_open_detached(e->name_id,
                                                      (e->opts & OPT_BULK) ? CMT_INST_BULK : 0);
        } else {
            cmt_instance_close_detached(t, es.window[i]);
            es.window[i] = NULL;
            cmt_report_write(CMT_END_SNAPSHOT, 0, e->name);
        }
    }
    struct cmt_instance *w = NULL;
    for (int i = 0; i < es.n && !w; i++)
        w = es.window[i];
    atomic_store(&cmt_window, w);
    if (w)
        cmt_young_retarget();   /* the window may take what the target would */
    cmt_spin_unlock(&es.window_lock);
}

/* ---- start -------------------------------------------------------------------------- */

void cmt_envscope_init(void)
{
    const char *v = getenv("CYMEMTRACK_SCOPES");
    if (!v || !*v)
        return;
    for (const char *s = v; *s;) {
        const char *end = strchr(s, ';');
        if (!end)
            end = s + strlen(s);
        while (s < end && *s == ' ')
            s++;
        if (s < end)
            parse_entry(s, end, (size_t)(s - v));
        s = *end ? end + 1 : end;
    }
    for (int i = 0; i < es.n; i++) {
        struct entry *e = &es.e[i];
        es.any_thread |= e->kind == CMT_KIND_THREAD;
        es.any_func |= e->kind == CMT_KIND_FUNC;
        if (e->kind == CMT_KIND_SIGNAL) {
            struct sigaction sa = { 0 };
            sa.sa_handler = on_window_signal;
            sa.sa_flags = SA_RESTART;
            sigemptyset(&sa.sa_mask);
            if (sigaction(e->signo, &sa, NULL) != 0)
                cmt_diag("CYMEMTRACK_SCOPES: entry \"%s\": cannot handle %s", e->name, e->arg);
        }
    }
    if (es.any_func) {
        es.have_key = pthread_key_create(&es.exit_key, inspect_thread_exit) == 0;
        const char *why = NULL;
        if (cmt_elfsyms_watch_loads(&why) != 0)
            cmt_diag("CYMEMTRACK_SCOPES: cannot watch for libraries loaded later (%s); func: "
                     "entries are looked for at start only", why ? why : "unknown reason");
        func_arm(true);
    }
    /* The thread starting the program was attached before the setting was read. */
    struct cmt_thread *t = cmt_thread_self();
    if (es.any_thread && t->state == CMT_THREAD_LIVE)
        cmt_envscope_thread_start(t);
}
