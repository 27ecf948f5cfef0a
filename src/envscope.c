/*
 * envscope.c — CYMEMTRACK_SCOPES: scopes opened and closed from outside, on a program nobody
 * changed.
 *
 * Owns the setting's grammar and its three triggers: func:SYMBOL (an instance per call, from
 * an entry hook in memory, funchook.c, or from -finstrument-functions), thread:GLOB (an
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
    int signo;                  /* signal: */
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
} es;

/* Per thread: the instances func: entries opened, innermost last; NULL marks a call whose
 * entry hook could not open one (so that its exit does not close another's). */
static __thread struct {
    struct cmt_instance *open[FUNC_DEPTH];
    int depth;
} fstack CMT_TLS;

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

static void func_enter(void *arg)
{
    const struct entry *e = arg;
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
    if (fstack.depth < FUNC_DEPTH)
        fstack.open[fstack.depth] = inst;
    fstack.depth++;
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
            if (j != i && es.e[j].hooked && es.e[j].func == e->func)
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
        if (cmt_funchook_install(e->func, func_enter, func_exit, e, &why) == 0) {
            e->hooked = true;
        } else if (!(e->opts & OPT_QUIET)) {
            cmt_diag("CYMEMTRACK_SCOPES: entry \"%s\": cannot hook %s (%s); allocations are "
                     "attributed by -finstrument-functions where the program has it, else not",
                     e->name, e->arg, why ? why : "unknown reason");
        }
    }
}

void cmt_envscope_module_loaded(void)
{
    if (es.any_func)
        func_arm(false);
}

/* A program built with -finstrument-functions calls these around every function: they open
 * and close func: scopes whose functions could not be hooked in memory. (GCC declares them
 * only when it instruments.) */
void __cyg_profile_func_enter(void *fn, void *call_site);
void __cyg_profile_func_exit(void *fn, void *call_site);
CMT_EXPORT void __cyg_profile_func_enter(void *fn, void *call_site)
{
    (void)call_site;
    for (int i = 0; i < es.n; i++)
        if (es.e[i].func == fn && !es.e[i].hooked)
            func_enter(&es.e[i]);
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
